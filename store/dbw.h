/* dbw: the database writer, the one thread that writes keywarden's SQLite
 * database during a run. Audit rows, alerts, outbox state and baseline
 * saves are queued to it as jobs; it runs the jobs queued so far in one
 * transaction on its own connection, and calls each job's done() after the
 * COMMIT or when the job failed for good.
 *
 * The one thing to know: submitting never waits on SQLite, and a job is
 * never dropped because the database is busy. SQLITE_BUSY (another process
 * or connection holds the write lock) is retried until the lock goes away;
 * only when the writer is being flushed or stopped does it give up, after
 * stop_wait. Any other failure (disk full, read-only file or file system,
 * damaged database) is named once on stderr with its cause, counted, and
 * handed to the jobs' done() with the SQLite code, so each owner decides
 * what "not stored" means (the audit trail counts the rows lost, alerts
 * are kept in memory and still delivered, baselines are saved again).
 * After a failed batch each job is tried alone, so one bad job does not
 * sink the others; a later success is reported once ("writing again"). */
#ifndef KW_DBW_H
#define KW_DBW_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "kw_err.h"
#include "kw_time.h"

struct dbw_job {
    struct dbw_job *next; /* the writer's queue */
    /* Runs inside the writer's transaction; may run more than once (the
     * transaction is rolled back and retried when the database is busy,
     * and a failed batch is retried job by job). Returns SQLITE_OK or the
     * SQLite error. */
    int (*run)(struct dbw_job *j, sqlite3 *db);
    /* Called once, on the writer thread, after COMMIT (rc SQLITE_OK) or
     * when the job failed for good (rc the SQLite error). May free the job
     * or submit it again. */
    void (*done)(struct dbw_job *j, int rc);
    /* May wait up to the gathering time (DBW_GATHER_MS) for company
     * (audit batches, saves); eager jobs (alerts) wait only
     * DBW_EAGER_GATHER_US for each other (or until DBW_EAGER_MAX are
     * queued), without the lazy ones still gathering. Lazy jobs must not
     * be something an eager job reads: their order against eager jobs is
     * not kept. */
    bool lazy;
};

#define DBW_GATHER_MS 100
/* An alert is stored within milliseconds either way; a storm of them
 * (credential stuffing from many sources: ~2,000 alerts a second in
 * bench/run.sh's small capture) commits several per transaction instead
 * of one each. */
#define DBW_EAGER_GATHER_US 2000
#define DBW_EAGER_MAX 256
#define DBW_DEFAULT_STOP_WAIT KW_TS_SEC(60)

struct dbw_config {
    const char *path;
    kw_ts stop_wait;  /* how long a flush or stop waits for a busy lock; 0: 60 s */
    bool quick_check; /* run PRAGMA quick_check at open; a damaged file is refused */
    kw_ts gather;     /* how long lazy jobs wait for company; 0: DBW_GATHER_MS */
    kw_ts eager_gather; /* how long eager jobs wait for company; 0: DBW_EAGER_GATHER_US */
};

struct dbw;

/* Opens (creating, mode 0600) the database and starts the thread. With
 * quick_check, a damaged database is refused (KW_E_DB, logged with the
 * first problem SQLite found). A read-only file is accepted: the writes
 * fail, named once, counted. */
enum kw_err dbw_new(const struct dbw_config *c, struct dbw **out) KW_WUR;

/* Queues j (never waits). */
void dbw_submit(struct dbw *w, struct dbw_job *j);

/* A lazy job may start now (its batch is full). */
void dbw_kick(struct dbw *w);

/* Waits until every job submitted before the call is done. */
void dbw_flush(struct dbw *w);

/* Flushes, stops the thread, closes the connection. NULL is a no-op. */
void dbw_destroy(struct dbw *w);

/* The writer is waiting for another connection's lock (any thread). */
bool dbw_locked(struct dbw *w);

/* Jobs queued and not yet done (all owners). */
uint64_t dbw_pending(struct dbw *w);

const char *dbw_path(const struct dbw *w);

/* A statement on the writer's connection, prepared the first time a job
 * asks for it (SQLITE_PREPARE_PERSISTENT) and kept until the writer closes
 * the connection: a prepare costs dozens of allocations, and a writer job
 * runs thousands of times. For a job's run() only (the writer's thread);
 * sql must be a string that lives as long as the writer (its address is
 * the key). *out is reset, with the bindings of its last use. Returns
 * SQLITE_OK, the SQLite error of the prepare, or SQLITE_MISUSE outside a
 * job's run() or past DBW_STMTS distinct statements. */
#define DBW_STMTS 64
int dbw_stmt(sqlite3 *db, const char *sql, sqlite3_stmt **out);

struct dbw_stats {
    uint64_t transactions; /* committed */
    uint64_t jobs_done;    /* committed jobs */
    uint64_t jobs_failed;  /* jobs that failed for good */
    uint64_t failures;     /* transactions that failed (not counting busy retries) */
    uint64_t busy_retries; /* transactions retried because the database was locked */
    uint64_t busy_ms;      /* time spent waiting for the lock */
    bool read_only;        /* the file could only be opened read-only */
    char cause[128];       /* last failure, named ("disk full (ENOSPC)"); "" = none */
};
void dbw_get_stats(struct dbw *w, struct dbw_stats *out);

#endif
