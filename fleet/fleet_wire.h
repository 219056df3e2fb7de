/* fleet_wire: the one wire format of the fleet (docs/fleet.md). A sensor
 * encodes every record its packet path hands to the judge stage (a
 * transaction, an ended flow) and its clock marks; a judge decodes them.
 * One encode/decode pair for every kind, so a field added to kw_txn has
 * exactly one place to be serialised (tests/test_fleet_wire.c fills every
 * byte of a kw_txn with random data and fails until it is).
 *
 * The one thing to know: a record is a fixed 40-byte head (little endian)
 * and a body of LEB128 varints and length-prefixed strings, in field
 * order. The head's `pseq` sits at a fixed offset so the sensor's
 * publisher can number a record only when it is accepted for publishing
 * (fw_set_pseq), which keeps a partition's numbers gap-free even when the
 * spool overflows. A decoder accepts its own and older versions (fields a
 * version adds come last and stay zero when absent), never newer ones.
 * Bad input is an error return, never a crash (fuzz/fuzz_fleet_wire.c). */
#ifndef KW_FLEET_WIRE_H
#define KW_FLEET_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "flow.h"
#include "kw_err.h"
#include "kw_txn.h"
#include "tls_conn.h"

/* 2: JWT grants, auth_time, cnf.jkt, DPoP (issue 17); 3: HTTP/2 stream id,
 * gRPC status and message (issue 11); 4: method and URL overrides (issue 15) */
#define FW_VERSION 6

enum fw_kind {
    FW_TXN = 1,  /* a transaction (or a TLS session record) for the judge */
    FW_FLOW = 2, /* an ended flow (EVE `flow` record) */
    FW_MARK = 3, /* the sensor's clock: progress, hour ticks, end of input */
    FW_TLS = 4,  /* a TLS session (its kw_txn and what the handshake said) */
};

/* FW_MARK flags */
#define FW_MARK_TICK 0x01 /* the single run's baseline tick happens here */
#define FW_MARK_END 0x02  /* the sensor's input ended: nothing more from this epoch */

#define FW_SENSOR_MAX 64  /* sensor name, NUL included: [A-Za-z0-9_-], a NATS token */
#define FW_HEAD_SIZE 40
#define FW_PSEQ_OFFSET 16

struct fw_head {
    uint8_t kind;  /* enum fw_kind */
    uint8_t flags; /* FW_MARK_* */
    uint32_t partition;
    uint64_t epoch; /* the sensor run (start time, µs): numbers restart with it */
    uint64_t pseq;  /* per (sensor, epoch, partition), 1, 2, 3...: gap-free */
    uint64_t gseq;  /* per (sensor, epoch): emission order across partitions */
    kw_ts time;     /* emission time: the sensor's packet clock when the record left
                       its packet path (never goes back within an epoch) */
    char sensor[FW_SENSOR_MAX];
};

/* An ended flow as pipeline_judge_flow takes it (f.app is not carried). */
struct fw_flow {
    struct flow f;
    char app[64], sni[256];
    int64_t http_txns; /* < 0: not HTTP */
    uint8_t why;       /* enum flow_end_reason */
    kw_ts ts;
};

/* A sensor's clock mark; the counters are cumulative for the epoch. */
struct fw_mark {
    uint64_t records; /* records the sensor emitted before this mark */
    uint64_t dropped; /* records lost because the spool was full */
};

/* The body of a record: the one matching head.kind is used. fw_encode
 * reads through the pointer; fw_decode writes the whole struct (zeroing
 * what the record does not carry). */
struct fw_body {
    struct kw_txn *txn; /* FW_TXN, FW_TLS */
    struct fw_flow *flow;
    struct fw_mark *mark;
    struct tls_info *tls; /* FW_TLS */
};

/* Bytes any record may take (a transaction with every field full). */
size_t fw_max_size(void);

/* Encodes; returns the length, or 0 when `size` is too small or the head
 * is invalid (unknown kind, sensor name empty or too long). */
size_t fw_encode(const struct fw_head *h, const struct fw_body *b, uint8_t *buf, size_t size);

/* Decodes a whole record. KW_E_MALFORMED on anything the encoder cannot
 * have written (short buffer, over-long string, bad magic, trailing
 * bytes), KW_E_UNSUPPORTED on a newer version. `b` may be NULL to read
 * the head only; otherwise the pointer of the record's kind must be set. */
enum kw_err fw_decode(const uint8_t *p, size_t len, struct fw_head *h,
                      const struct fw_body *b) KW_WUR;

/* Numbers an encoded record (see above). */
void fw_set_pseq(uint8_t *buf, uint64_t pseq);

/* The partition of a record, part of the contract between sensors and
 * judges: a transaction goes by its identity (the sensor attributes it
 * with the same rules as the judge), so everything a judge keeps per
 * identity (limits, baselines, key sharing across sites) meets in one
 * partition; without an identity by its client address, so what is kept
 * per source (credential stuffing: many unknown keys from one address)
 * does too. A flow goes by its client address. FNV-1a 64 over a tagged
 * key, splitmix64's finaliser, modulo `partitions`. */
uint32_t fw_partition_txn(const struct kw_txn *t, uint32_t partitions);
uint32_t fw_partition_addr(const struct kw_addr *a, uint32_t partitions);

/* True when s is a usable sensor name. */
bool fw_sensor_name_ok(const char *s);

#endif
