/* audit: the audit trail, "every POST, every GET, every failed attempt" of
 * each identity, kept in SQLite so the team can see what a contractor did
 * before and after an alert.
 *
 * The one thing to know: audit_record() never allocates, and never blocks
 * during live capture (a full ring drops, counted); with block_when_full
 * (offline replay) it waits for the writer instead of losing rows.
 * It copies the fields it needs (the used bytes of each text) into a ring
 * allocated at audit_new(); the
 * database writer (dbw.h, shared with alerts and baselines) drains the
 * ring and inserts a batch per SQLite transaction (DEPENDENCIES.md: ~150k
 * rows/s that way). When the ring is full the record is dropped and
 * counted (`dropped`), so a slow disk costs audit rows, never packets; a
 * batch the database refuses (disk full, read-only) is counted in
 * `errors` and the writer names the cause once.
 *
 * Replays are idempotent: each row carries a natural key (a hash of packet
 * time, both ends, method, host, path, status and sizes, and the number of
 * identical transactions just before it), unique in the table, so reading
 * a capture again adds nothing (`duplicates`).
 *
 * What is recorded: every transaction that carries a credential
 * (fingerprint) or an identity. Anonymous traffic (no credential, no
 * identity) is counted as `skipped` and not stored: it cannot be
 * attributed to anyone, and the EVE http records already hold it.
 *
 * No secrets: the row keeps the normalised path (kw_txn.path, which has no
 * query), never the raw request target (kw_txn.url), whose query may carry
 * `?api_key=...`. As a second guard anything from a '?' on is cut from the
 * stored path. The credential is stored as its fingerprint and its
 * redacted hint only. */
#ifndef KW_AUDIT_H
#define KW_AUDIT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "dbw.h"
#include "kw_err.h"
#include "kw_time.h"
#include "kw_txn.h"

#define AUDIT_DEFAULT_RETENTION ((kw_ts)90 * 86400 * 1000000)
#define AUDIT_DEFAULT_BATCH_MAX 4096u
#define AUDIT_DEFAULT_QUEUE_MAX 16384u
#define AUDIT_DEFAULT_DB "./keywarden-state/keywarden.db"

struct audit_config {
    const char *db_path;   /* NULL: AUDIT_DEFAULT_DB */
    kw_ts retention;       /* 0: AUDIT_DEFAULT_RETENTION (90 days), on packet time */
    unsigned batch_max;    /* rows per SQLite transaction; 0: 4096 */
    unsigned queue_max;    /* rows the ring holds (512 bytes of ring each, rows take their
                              size: ~200 bytes for an API call); 0: 16384 (8 MB) */
    kw_ts retention_every; /* how often (packet time) old rows are deleted; 0: 1 hour */
    kw_ts text_gc_every;   /* at most how often (packet time) the texts of deleted rows are
                              deleted (a pass over every row); 0: 1 day */
    bool block_when_full;  /* offline replay: wait for the writer instead of dropping, since
                              nothing is lost by slowing a file read down */
    struct dbw *writer;    /* borrowed, outlives the audit; NULL: a private writer */
};

struct audit;

/* Opens the database (WAL), migrates module "audit" (on a connection of
 * its own, also used for reads), and writes through c->writer. */
enum kw_err audit_new(const struct audit_config *c, struct audit **out) KW_WUR;

/* Copies the transaction into the ring (waits only with block_when_full).
 * Thread-safe. */
void audit_record(struct audit *a, const struct kw_txn *t);

/* Waits until everything queued so far is written (or failed). */
void audit_flush(struct audit *a);

/* Flushes, stops the writer, closes the database. NULL is a no-op. */
void audit_destroy(struct audit *a);

struct audit_stats {
    uint64_t queued;  /* accepted into the ring */
    uint64_t written; /* rows committed */
    uint64_t duplicates; /* already recorded (same natural key: a replay): not added */
    uint64_t dropped; /* ring full: not recorded */
    uint64_t batches; /* SQLite transactions committed */
    uint64_t skipped; /* no credential and no identity: not an audit event */
    uint64_t errors;  /* rows lost to a database error (logged) */
    uint64_t expired; /* rows deleted by retention */
    uint64_t texts_collected; /* interned texts no row named any more, deleted */
};
void audit_get_stats(struct audit *a, struct audit_stats *out);

/* ---- queries, for `keywarden audit` ---- */

/* Every filter is optional (NULL / 0). */
struct audit_query {
    const char *identity;    /* identity id; "" matches unattributed rows */
    const char *fingerprint; /* "sha256:..." */
    const char *path_glob;   /* SQLite GLOB on the normalised path: '*' also
                                matches '/', '?' one character, [..] a set */
    kw_ts since, until;      /* since <= ts < until; 0 = open */
    int status_class;        /* 0 any; 1..5 = 1xx..5xx; -1 = no response */
    unsigned limit;          /* 0: no limit; otherwise the NEWEST `limit` rows */
};

/* Creates/migrates the audit tables on db (for a reader that may be first). */
enum kw_err audit_schema(sqlite3 *db) KW_WUR;

/* Calls row() for each match in time order (oldest first). The kw_txn is
 * borrowed for the call: url is empty (never stored), identity.id,
 * cred.fingerprint/hint/kind, addresses, ports, method, hostname, path,
 * template_, status, sizes, flow_id and flags are filled. */
enum kw_err audit_query_run(sqlite3 *db, const struct audit_query *q,
                            void (*row)(void *user, const struct kw_txn *t), void *user) KW_WUR;

/* Counts of the rows a query selects, grouped, for `keywarden report`:
 * fn() is called once per group, in no particular order; the strings of
 * the row are borrowed for the call. q->limit must be 0. */
enum audit_group {
    AUDIT_BY_QUARTER,    /* identity, quarter hour (UTC, bucket = its start): every
                            real UTC offset is a multiple of 15 min, so local hours
                            are exact */
    AUDIT_BY_PATH,       /* identity, method, host, normalised path, template */
    AUDIT_BY_SOURCE,     /* identity, source address */
    AUDIT_BY_CREDENTIAL, /* identity, fingerprint, hint, credential kind */
};
struct audit_group_row {
    const char *identity; /* "" = unattributed */
    kw_ts bucket;
    const char *method, *host, *path, *template_;
    struct kw_addr src;
    const char *fingerprint, *hint;
    int cred_kind;
    uint64_t n;       /* rows */
    uint64_t n_error; /* rows with status >= 400 */
    kw_ts first, last;
};
enum kw_err audit_group_run(sqlite3 *db, const struct audit_query *q, enum audit_group g,
                            void (*fn)(void *user, const struct audit_group_row *r),
                            void *user) KW_WUR;

/* Newest recorded ts (0 when empty) — "relative to the newest record". */
enum kw_err audit_newest(sqlite3 *db, kw_ts *out) KW_WUR;

/* Parses a CLI time: RFC 3339 ("2026-03-28T02:13:05Z", fraction and
 * +hh:mm offsets allowed, or a date "2026-03-28" = midnight UTC), or a
 * relative "-90s" "-30m" "-2h" "-7d" "-1w" counted back from `newest`.
 * KW_E_INVAL on anything else. */
enum kw_err audit_parse_time(const char *s, kw_ts newest, kw_ts *out) KW_WUR;

#endif
