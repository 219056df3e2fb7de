/* fleet_merge: the judge's merge of its sources in event time. A source is
 * one (partition, sensor) subject, read in order from its consumer; the
 * merge gives the judge stage one record at a time, in the order a single
 * `run` over all the sensors' captures would have judged them: by the
 * sensor's packet clock (head.time), then sensor name, epoch and the
 * sensor's emission number (gseq).
 *
 * Within a source, records are put back in their partition sequence
 * (pseq, gap-free per sensor epoch): one sent twice is skipped, one that
 * overtook another waits for it (a gap that does not fill within
 * FM_GAP_WAIT of wall time is given up and counted `lost`). A record is
 * released only when every other source has shown that it holds nothing
 * earlier: a record of its own that sorts later, or its clock (the last
 * record or mark seen) past it. A source whose input ended (END mark) is
 * not waited for; neither is one whose clock lags the most advanced
 * source by more than `lateness` of packet time while nothing more of it
 * waits on the server (a sensor that died or is cut off): what it sends
 * later is judged at once and counted `late`.
 *
 * The one thing to know: this is pure bookkeeping, no I/O and no clock of
 * its own (wall time comes in as an argument), so tests drive it
 * directly. Positions (the last judged pseq per source) are what the
 * judge commits before acknowledging; a source's acknowledgement point is
 * the last stream sequence before which every message was judged or
 * skipped. */
#ifndef KW_FLEET_MERGE_H
#define KW_FLEET_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet_wire.h"
#include "kw_err.h"

#define FM_GAP_WAIT KW_TS_SEC(10)
#define FM_REPLY_MAX 256

struct fm;

struct fm_config {
    kw_ts lateness;       /* packet time */
    size_t source_max;    /* messages buffered per source; 0: 4096 */
};

/* Where a source stands (committed by the judge, loaded at start). */
struct fm_position {
    uint32_t partition;
    char sensor[FW_SENSOR_MAX];
    uint64_t epoch;
    uint64_t pseq; /* last judged */
    uint64_t gseq;
    kw_ts clock;
    bool ended;
};

/* A record to judge: its bytes are valid until the next fm_next or
 * fm_ack_point. */
struct fm_rec {
    struct fw_head h;
    const uint8_t *data;
    size_t len;
    bool late; /* sorts before something already released */
};

struct fm_counters {
    uint64_t messages;  /* pushed */
    uint64_t released;  /* handed to the judge */
    uint64_t duplicates; /* already judged (a resend, a replay after a restart) */
    uint64_t stale;     /* of an epoch the source had left */
    uint64_t late;      /* released after something that sorts after them */
    uint64_t lost;      /* pseq never arrived (gap given up) */
    uint64_t malformed; /* could not be decoded, or another version */
    uint64_t wrong_partition;
};

enum kw_err fm_new(const struct fm_config *c, struct fm **out) KW_WUR;
void fm_destroy(struct fm *m);

/* The source of (partition, sensor), created when new (with its committed
 * position, when one was loaded). Returns its index, or -1 (no memory). */
int fm_source(struct fm *m, uint32_t partition, const char *sensor);
size_t fm_sources(const struct fm *m);
/* A committed position, before the first fm_source of that pair. */
enum kw_err fm_load_position(struct fm *m, const struct fm_position *p) KW_WUR;

/* One message of source `src`, in its stream order (copied). */
enum kw_err fm_push(struct fm *m, int src, const uint8_t *data, size_t len, uint64_t stream_seq,
                    const char *reply) KW_WUR;
/* The source has room for `n` more messages. */
bool fm_wants(const struct fm *m, int src, size_t *n);
/* Whether the source's last fetch emptied its consumer (fewer messages
 * than asked for). Only a drained source can be judged stale: one with
 * more waiting on the server is read first, however far behind it is. */
void fm_set_drained(struct fm *m, int src, bool drained);

enum fm_state {
    FM_RECORD, /* *out is the next record */
    FM_WAIT,   /* a source must be heard from first */
    FM_EMPTY,  /* nothing buffered */
};
enum fm_state fm_next(struct fm *m, kw_ts wall, struct fm_rec *out);
/* True when every source has ended (END mark) and nothing is buffered. */
bool fm_all_ended(const struct fm *m);
/* The source fm_next is waiting for (-1 when none). */
int fm_waiting_for(const struct fm *m);
/* Since when (wall) source src waits for a missing pseq; 0 when it does
 * not. */
kw_ts fm_gap_since(const struct fm *m, int src);
/* Forgets what source src holds and has not judged (its consumer is
 * being started again from its acknowledged floor: the messages come
 * again; those judged meanwhile are skipped as duplicates). */
void fm_source_reset(struct fm *m, int src);

/* Positions to commit: fn for each source. */
void fm_positions(const struct fm *m, void (*fn)(void *user, const struct fm_position *p),
                  void *user);
/* The message up to which source `src` can be acknowledged, when it moved
 * since the last call: its ack subject is copied to reply. */
bool fm_ack_point(struct fm *m, int src, uint64_t *stream_seq, char reply[FM_REPLY_MAX]);

void fm_get_counters(const struct fm *m, struct fm_counters *out);
/* Per sensor: records emitted and dropped by its spool, summed over its
 * runs (epochs), each run's as its last mark released by this judge said
 * (counted since this judge started). */
void fm_sensor_each(const struct fm *m,
                    void (*fn)(void *user, const char *sensor, uint64_t records, uint64_t dropped,
                               kw_ts clock, bool ended),
                    void *user);

#endif
