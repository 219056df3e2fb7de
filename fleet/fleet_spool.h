/* fleet_spool: the sensor's bounded queue on disk. Every record a sensor
 * publishes passes through it: appended here, read back to be published,
 * released once JetStream has acknowledged it. While NATS is unreachable
 * the spool simply grows (up to `max` bytes) and drains when NATS is back;
 * a sensor restarted meanwhile finds what it had not delivered and sends
 * it first.
 *
 * Layout: a folder of segment files (%016llx.kws, ~4 MB each), frames of
 * [u32 length][u32 CRC-32][record], and a small `acked` file with the
 * position everything before which was acknowledged (rewritten by rename,
 * at most once a second). Whole segments before that position are
 * deleted.
 *
 * The one thing to know: append refuses (KW_E_LIMIT) when the segments on
 * disk would exceed `max`; the caller counts what it could not keep. A
 * torn or damaged frame (a crash in the middle of a write) ends its
 * segment: the spool is cut there on open and the cut is counted. Not
 * thread-safe: the sensor's publisher thread owns it. */
#ifndef KW_FLEET_SPOOL_H
#define KW_FLEET_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kw_err.h"

struct fsp_pos {
    uint64_t seg, off;
};

struct fsp;

struct fsp_stats {
    uint64_t bytes;    /* segment bytes on disk */
    uint64_t segments; /* segment files on disk */
    uint64_t cut;      /* damaged frames found on open (their segment was cut there) */
    uint64_t io_errors;
};

/* Opens (creating) the folder; finds the segments left by an earlier run. */
enum kw_err fsp_open(const char *dir, uint64_t max, struct fsp **out) KW_WUR;
/* Writes what is buffered, saves the acknowledged position, closes. */
void fsp_close(struct fsp *s);

/* KW_E_LIMIT when it does not fit under `max`; KW_E_IO on a write error. */
enum kw_err fsp_append(struct fsp *s, const uint8_t *rec, size_t len) KW_WUR;
/* Hands the buffered appends to the kernel (readers see them after). */
enum kw_err fsp_flush(struct fsp *s) KW_WUR;

/* The first record not acknowledged yet (where a reader starts). */
struct fsp_pos fsp_acked(const struct fsp *s);
/* The record at *pos: *rec points into the spool's read buffer, valid
 * until the next fsp_read; *pos moves past it. KW_E_NOTFOUND at the end
 * (nothing more appended and flushed). */
enum kw_err fsp_read(struct fsp *s, struct fsp_pos *pos, const uint8_t **rec, size_t *len) KW_WUR;
/* Everything before `pos` is acknowledged: deletes the segments it
 * covers and remembers it (saved at most once a second, and on close). */
void fsp_release(struct fsp *s, struct fsp_pos pos);
/* True when no record waits (everything appended was released). */
int fsp_empty(const struct fsp *s);

void fsp_get_stats(const struct fsp *s, struct fsp_stats *out);

#endif
