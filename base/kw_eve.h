/* kw_eve: the EVE JSON line writer (file or stdout) shared by every module
 * that emits records. One record per line, written whole (never half a
 * line, even on a full disk), flushed at least once a second; a mutex
 * makes it safe to call from the packet thread and the alert thread. Also
 * builds the common header of flow-bound records. */
#ifndef KW_EVE_H
#define KW_EVE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "kw_err.h"
#include "kw_time.h"
#include "kw_txn.h"

struct kw_eve;

/* Each of the writer's two buffers (records, or packed transactions). */
#define KW_EVE_BUF (512u << 10)

/* path "-" is stdout. The directory must exist. A new file is created
 * 0600. An incomplete last line (a run killed mid-write) is cut off
 * before anything is appended. A thread writes buffered records at least
 * every 500 ms. */
enum kw_err kw_eve_open(const char *path, struct kw_eve **out) KW_WUR;
/* Writes what is buffered, closes; records that still cannot be written
 * are counted as dropped (and said so in one line). */
void kw_eve_close(struct kw_eve *e);
/* Log rotation (SIGHUP): writes what is buffered to the old file, then
 * opens the path again (a new file after a rename). On failure keeps the
 * old file. */
enum kw_err kw_eve_reopen(struct kw_eve *e);
/* Writes and releases the caller's reference to rec. NULL e: just releases.
 * Records are written by a thread of the writer's own, a buffer at a time;
 * when both buffers are full the caller waits for the write under way
 * (back-pressure). Never blocks on a failing output: while a write fails
 * (full disk, read-only file system, file-size limit) records wait in the
 * two KW_EVE_BUF buffers, then are dropped and counted; the failure is logged once with
 * its cause and writing resumes (retried every second) when it works. */
void kw_eve_write(struct kw_eve *e, json_t *rec);
/* Writes what is buffered now and returns when it was written (or the
 * output failed): the end of a run, a test. */
void kw_eve_flush(struct kw_eve *e);
/* Hands what is buffered to the writing thread now, without waiting for
 * the write (after an alert: on disk within the time of a write). */
void kw_eve_push(struct kw_eve *e);
struct kw_eve_stats {
    uint64_t written;      /* records written to the output */
    uint64_t dropped;      /* records lost: output failing and buffer full, or at close */
    uint64_t write_errors; /* failed write attempts */
    uint64_t recoveries;   /* times writing resumed after a failure */
    uint64_t reopens;      /* kw_eve_reopen() that opened the file again */
    uint64_t torn_cut;     /* incomplete last lines cut at open */
    uint64_t buffered;     /* records waiting in memory now */
    bool failing;          /* the last write attempt failed */
};
void kw_eve_get_stats(struct kw_eve *e, struct kw_eve_stats *out);
/* stats.dropped */
uint64_t kw_eve_dropped(struct kw_eve *e);
/* Writes one record already rendered as JSON text (no newline). */
void kw_eve_write_text(struct kw_eve *e, const char *text, size_t len);
/* Writes the "http" record of t (kw_eve_jw_http_record), rendered by the
 * writer's thread from a packed copy: the caller pays for the copy only.
 * In order with every other record written through e. */
void kw_eve_write_txn(struct kw_eve *e, const struct kw_txn *t);

struct kw_jw;
/* The common fields of a flow-bound record, written as members of the
 * object open in w: timestamp, flow_id, event_type, addresses, ports,
 * proto, vlan, tunnel. */
void kw_eve_jw_txn_header(struct kw_jw *w, const struct kw_txn *t, const char *event_type,
                          kw_ts ts);
/* "http":{...}, "credential":{...} (absent without one) and
 * "identity":{...} (absent when unattributed) of a transaction. */
void kw_eve_jw_http(struct kw_jw *w, const struct kw_txn *t);
void kw_eve_jw_cred(struct kw_jw *w, const struct kw_txn *t);
/* The `dpop` object of a credential (RFC 9449 proof, what was read of it). */
void kw_eve_jw_dpop(struct kw_jw *w, const struct kw_dpop *d);
void kw_eve_jw_identity(struct kw_jw *w, const struct kw_txn *t);
/* The whole EVE "http" record of a transaction, as one object: header,
 * http, tls (when on TLS), credential, identity. */
void kw_eve_jw_http_record(struct kw_jw *w, const struct kw_txn *t);

/* {"timestamp":..,"flow_id":..,"event_type":..,"src_ip":..,...,"tunnel":..}
 * for a transaction. New reference. */
json_t *kw_eve_txn_header(const struct kw_txn *t, const char *event_type, kw_ts ts);
/* The "http", "credential" and "identity" objects of a transaction; each
 * a new reference, credential/identity NULL when absent. */
json_t *kw_eve_http_obj(const struct kw_txn *t);
json_t *kw_eve_cred_obj(const struct kw_txn *t);
/* "bearer", "jwt", "basic", "api_key", ... of enum kw_cred_kind (the
 * credential.kind of the records). */
const char *kw_eve_cred_kind_name(unsigned kind);
json_t *kw_eve_identity_obj(const struct kw_txn *t);
const char *kw_tunnel_type_name(unsigned type);

#endif
