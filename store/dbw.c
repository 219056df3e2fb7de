/* dbw: the database writer thread (see dbw.h). */
#include "dbw.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kw_cond.h"
#include "kw_log.h"
#include "kw_thread.h"
#include "store.h"

/* SQLite's own busy handler waits this long inside one attempt; between
 * attempts the writer looks at whether it should give up (flush, stop). */
#define DBW_BUSY_SLICE_MS 100
/* What the writer thread is doing, so that dbw_submit wakes it only when
 * it must: waiting for a first job, or gathering (lazy or eager jobs)
 * until a deadline a new job may change. Every wake-up of a thread costs
 * a system call on both sides (~4,000 a second in the small bench, with
 * the submitter then blocking on the mutex the woken writer held). */
enum dbw_state { W_BUSY, W_IDLE, W_GATHER };

struct dbw {
    char *path;
    sqlite3 *db;
    kw_ts stop_wait;
    kw_ts gather_us; /* dbw_config.gather */
    kw_ts eager_us;  /* dbw_config.eager_gather */

    pthread_t thr;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    struct dbw_job *head, *tail;
    uint64_t submitted, finished;
    unsigned eager; /* queued jobs that are not lazy */
    unsigned lazy;  /* queued lazy jobs */
    kw_ts lazy_due;  /* kw_mono_now() time: the oldest queued lazy job's gathering ends */
    kw_ts eager_due; /* the same for the oldest queued eager job */
    enum dbw_state state;
    bool kicked;
    atomic_bool stop;
    atomic_uint flushers;
    struct dbw_stats st; /* under mu */

    /* writer thread only: each distinct cause is named once per process
     * (a disk that is nearly full fails some transactions and not others) */
    char named[8][128];
    unsigned n_named;
    bool failing;        /* the last transaction failed */
    bool announce;       /* a cause was named in this failing stretch: say when it ends */
    uint64_t fail_count; /* transactions failed in this stretch */
    kw_ts busy_since;    /* 0: not waiting for the lock */
    atomic_bool locked;  /* busy_since != 0, for other threads (dbw_locked) */
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } stmts[DBW_STMTS]; /* dbw_stmt() */
    unsigned n_stmts;
};

static bool is_busy(int rc)
{
    return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* Runs count jobs from first (all of the chain when count is 0) in one
 * transaction. */
static int attempt(struct dbw *w, struct dbw_job *first, unsigned count)
{
    int rc = sqlite3_exec(w->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) return sqlite3_extended_errcode(w->db);
    unsigned i = 0;
    for (struct dbw_job *j = first; j && (!count || i < count); j = j->next, i++) {
        rc = j->run(j, w->db);
        if (rc != SQLITE_OK) {
            store_rollback(w->db);
            return rc;
        }
    }
    rc = sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = sqlite3_extended_errcode(w->db);
        store_rollback(w->db);
    }
    return rc;
}

static void busy_note(struct dbw *w, kw_ts now)
{
    if (!w->busy_since) {
        w->busy_since = now;
        atomic_store(&w->locked, true);
        kw_warn("database %s is locked by another connection; writes wait for it (a live "
                "capture's audit rows are refused, and said, only if their queue fills)",
                w->path);
    }
    pthread_mutex_lock(&w->mu);
    w->st.busy_retries++;
    pthread_mutex_unlock(&w->mu);
}

static void busy_over(struct dbw *w, kw_ts now)
{
    if (!w->busy_since) return;
    kw_ts waited = now - w->busy_since;
    pthread_mutex_lock(&w->mu);
    w->st.busy_ms += (uint64_t)(waited / 1000);
    pthread_mutex_unlock(&w->mu);
    kw_info("database %s: the lock was released after %.1f s", w->path, (double)waited / 1e6);
    w->busy_since = 0;
    atomic_store(&w->locked, false);
}

/* attempt() until it is not busy, or until a flush or stop has waited
 * stop_wait for the lock. */
static int with_retries(struct dbw *w, struct dbw_job *first, unsigned count)
{
    for (;;) {
        int rc = attempt(w, first, count);
        kw_ts now = kw_ts_wall();
        if (!is_busy(rc)) {
            busy_over(w, now);
            return rc;
        }
        busy_note(w, now);
        if ((atomic_load(&w->stop) || atomic_load(&w->flushers)) &&
            now - w->busy_since >= w->stop_wait) {
            kw_err_log("database %s still locked after %.0f s at shutdown: giving up", w->path,
                       (double)(now - w->busy_since) / 1e6);
            busy_over(w, now);
            return rc;
        }
    }
}

static void note_fail(struct dbw *w, int rc, uint64_t jobs)
{
    char cause[128];
    store_cause(w->db, rc, cause, sizeof cause);
    bool named = (rc & 0xff) == SQLITE_READONLY && w->st.read_only;
    if (named) /* named at open, with the reason access(2) gave */
        memcpy(cause, w->st.cause, sizeof cause);
    for (unsigned i = 0; i < w->n_named && !named; i++)
        named = strcmp(w->named[i], cause) == 0;
    if (!named) {
        kw_err_log("database %s: cannot write: %s; what is not stored is counted (the summary "
                   "and the stats record say what)",
                   w->path, cause);
        if (w->n_named < sizeof w->named / sizeof w->named[0])
            memcpy(w->named[w->n_named++], cause, sizeof cause);
        w->announce = true;
    }
    if (!w->failing) w->fail_count = 0;
    w->failing = true;
    w->fail_count++;
    pthread_mutex_lock(&w->mu);
    w->st.failures++;
    w->st.jobs_failed += jobs;
    memcpy(w->st.cause, cause, sizeof cause);
    pthread_mutex_unlock(&w->mu);
}

static void note_ok(struct dbw *w, uint64_t jobs)
{
    if (w->failing && w->announce) {
        kw_warn("database %s: writing again (%llu transactions had failed)", w->path,
                (unsigned long long)w->fail_count);
        w->announce = false;
    }
    w->failing = false;
    pthread_mutex_lock(&w->mu);
    w->st.transactions++;
    w->st.jobs_done += jobs;
    pthread_mutex_unlock(&w->mu);
}

/* Runs a chain: one transaction; when it fails, each job alone (a
 * constraint or a full disk may sink one job and not the next). done() is
 * called with next read first: it may free or resubmit the job. */
static void run_chain(struct dbw *w, struct dbw_job *list, unsigned n)
{
    int rc = with_retries(w, list, 0);
    if (rc == SQLITE_OK) {
        note_ok(w, n);
        for (struct dbw_job *j = list, *nx; j; j = nx) {
            nx = j->next;
            j->next = NULL;
            j->done(j, SQLITE_OK);
        }
        return;
    }
    for (struct dbw_job *j = list, *nx; j; j = nx) {
        nx = j->next;
        int r = n > 1 && !is_busy(rc) ? with_retries(w, j, 1) : rc;
        if (r == SQLITE_OK)
            note_ok(w, 1);
        else
            note_fail(w, r, 1);
        j->next = NULL;
        j->done(j, r);
    }
}

/* Lazy jobs wait up to the gathering time from the oldest one's submission
 * for company: one transaction costs about as much as hundreds of rows.
 * Eager jobs wait DBW_EAGER_GATHER_US (or until DBW_EAGER_MAX are queued).
 * Called with mu held; returns when a kick, a flush or a stop came, or
 * when the first deadline is over. */
static void gather(struct dbw *w)
{
    for (;;) {
        if (w->kicked || atomic_load(&w->stop) || atomic_load(&w->flushers)) return;
        if (!w->eager && !w->lazy) return;
        kw_ts now = kw_mono_now(), until = w->lazy_due;
        if (w->eager) {
            if (w->eager >= DBW_EAGER_MAX || now >= w->eager_due) return;
            if (!w->lazy || w->eager_due < w->lazy_due) until = w->eager_due;
        }
        if (w->lazy && now >= w->lazy_due) return;
        w->state = W_GATHER;
        int rc = kw_cond_wait_until(&w->work, &w->mu, until);
        w->state = W_BUSY;
        if (rc == ETIMEDOUT) return;
    }
}

static bool lazy_due(const struct dbw *w)
{
    return kw_mono_now() >= w->lazy_due;
}

/* Takes the jobs to run now off the queue, in submission order: all of
 * them, or, when eager jobs (alerts) came while lazy ones (audit rows,
 * saves) are still gathering, the eager ones alone. The lazy jobs then
 * keep gathering to their own deadline instead of being committed in
 * every alert's transaction: with an alert every few dozen requests that
 * cut audit batches to ~300 rows, and each commit rewrites the index
 * pages it touched (issue 13). Lazy jobs are background persistence that
 * no eager job reads, so their order against eager jobs does not matter;
 * among themselves order is kept. Called with mu held. */
static struct dbw_job *take(struct dbw *w, unsigned *n)
{
    bool all = !w->eager || !w->lazy || w->kicked || atomic_load(&w->stop) ||
               atomic_load(&w->flushers) || lazy_due(w);
    struct dbw_job *run = NULL, **rt = &run, *keep = NULL, **kt = &keep, *ktail = NULL;
    *n = 0;
    for (struct dbw_job *j = w->head, *nx; j; j = nx) {
        nx = j->next;
        j->next = NULL;
        if (all || !j->lazy) {
            *rt = j;
            rt = &j->next;
            ++*n;
        } else {
            *kt = j;
            kt = &j->next;
            ktail = j;
        }
    }
    w->head = keep;
    w->tail = ktail;
    w->eager = 0;
    if (all) {
        w->lazy = 0;
        w->kicked = false;
    }
    return run;
}

bool dbw_locked(struct dbw *w)
{
    return atomic_load(&w->locked);
}

/* The writer whose thread this is (dbw_stmt finds its cache). */
static _Thread_local struct dbw *tl_writer;

int dbw_stmt(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
    struct dbw *w = tl_writer;
    *out = NULL;
    if (!w || w->db != db) return SQLITE_MISUSE; /* not inside a job's run() */
    for (unsigned i = 0; i < w->n_stmts; i++)
        if (w->stmts[i].sql == sql) {
            sqlite3_reset(w->stmts[i].st);
            *out = w->stmts[i].st;
            return SQLITE_OK;
        }
    if (w->n_stmts == DBW_STMTS) {
        kw_err_log("database writer: more than %d kept statements (a bug)", DBW_STMTS);
        return SQLITE_MISUSE;
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return sqlite3_extended_errcode(db);
    }
    w->stmts[w->n_stmts].sql = sql;
    w->stmts[w->n_stmts++].st = st;
    *out = st;
    return SQLITE_OK;
}

static void *thread_main(void *arg)
{
    struct dbw *w = arg;
    kw_thread_role("kw-db", true);
    tl_writer = w;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !atomic_load(&w->stop)) {
            w->state = W_IDLE;
            pthread_cond_wait(&w->work, &w->mu);
        }
        w->state = W_BUSY;
        if (!w->head) break;
        gather(w);
        unsigned n;
        struct dbw_job *list = take(w, &n);
        pthread_mutex_unlock(&w->mu);
        run_chain(w, list, n);
        pthread_mutex_lock(&w->mu);
        w->finished += n;
        pthread_cond_broadcast(&w->idle);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

void dbw_submit(struct dbw *w, struct dbw_job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    w->submitted++;
    bool wake = w->state == W_IDLE;
    if (!j->lazy) {
        if (!w->eager++) { /* the first eager job waiting: its gathering starts */
            w->eager_due = kw_mono_now() + w->eager_us;
            wake |= w->state == W_GATHER; /* an earlier deadline than the lazy one */
        }
        wake |= w->eager == DBW_EAGER_MAX;
    } else if (!w->lazy++) { /* the first lazy job waiting: its gathering starts */
        w->lazy_due = kw_mono_now() + w->gather_us;
    }
    pthread_mutex_unlock(&w->mu);
    /* after the unlock: the writer wakes to a free mutex */
    if (wake) pthread_cond_signal(&w->work);
}

void dbw_kick(struct dbw *w)
{
    pthread_mutex_lock(&w->mu);
    w->kicked = true;
    pthread_mutex_unlock(&w->mu);
    pthread_cond_signal(&w->work);
}

void dbw_flush(struct dbw *w)
{
    if (!w) return;
    atomic_fetch_add(&w->flushers, 1);
    pthread_mutex_lock(&w->mu);
    uint64_t target = w->submitted;
    pthread_cond_signal(&w->work);
    while (w->finished < target)
        pthread_cond_wait(&w->idle, &w->mu);
    pthread_mutex_unlock(&w->mu);
    atomic_fetch_sub(&w->flushers, 1);
}

uint64_t dbw_pending(struct dbw *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t n = w->submitted - w->finished;
    pthread_mutex_unlock(&w->mu);
    return n;
}

const char *dbw_path(const struct dbw *w)
{
    return w->path;
}

void dbw_get_stats(struct dbw *w, struct dbw_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->st;
    pthread_mutex_unlock(&w->mu);
}

/* A database that opened read-only is named once, here, with the reason
 * access(2) gives: every write will fail the same way. */
static void name_read_only(struct dbw *w)
{
    if (!sqlite3_db_readonly(w->db, "main")) return;
    w->st.read_only = true;
    const char *why = "read-only";
    if (access(w->path, W_OK) != 0)
        why = errno == EROFS ? "on a read-only file system (EROFS)"
                             : "not writable by this user (EACCES)";
    snprintf(w->st.cause, sizeof w->st.cause, "the database is %s", why);
    kw_err_log("database %s is %s: audit rows, alerts and baselines cannot be stored (alerts "
               "are still delivered; what is lost is counted)",
               w->path, why);
}

static enum kw_err check_open(struct dbw *w)
{
    char msg[512];
    int ok = store_check(w->db, false, msg, sizeof msg);
    if (ok == 1) return KW_E_OK;
    for (char *p = msg; (p = strchr(p, '\n'));) /* one line: ';' between problems */
        *p = ';';
    if (ok == 0)
        kw_err_log("database %s is damaged: %s. Keep a copy, see `keywarden db check --db %s`, "
                   "and move it aside to start with a new one",
                   w->path, msg, w->path);
    else
        kw_err_log("database %s cannot be checked: %s", w->path, msg);
    return KW_E_DB;
}

enum kw_err dbw_new(const struct dbw_config *c, struct dbw **out)
{
    struct dbw *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(c->path))) {
        free(w);
        return KW_E_NOMEM;
    }
    w->stop_wait = c->stop_wait > 0 ? c->stop_wait : DBW_DEFAULT_STOP_WAIT;
    w->gather_us = c->gather > 0 ? c->gather : (kw_ts)DBW_GATHER_MS * 1000;
    w->eager_us = c->eager_gather > 0 ? c->eager_gather : DBW_EAGER_GATHER_US;
    pthread_mutex_init(&w->mu, NULL);
    kw_cond_init(&w->work); /* gathering deadlines on the monotonic clock */
    pthread_cond_init(&w->idle, NULL);
    enum kw_err e = store_db_open(c->path, &w->db);
    if (e == KW_E_OK && c->quick_check) e = check_open(w);
    if (e != KW_E_OK) goto fail;
    sqlite3_busy_timeout(w->db, DBW_BUSY_SLICE_MS);
    name_read_only(w);
    if (pthread_create(&w->thr, NULL, thread_main, w) != 0) {
        e = KW_E_NOMEM;
        goto fail;
    }
    w->started = true;
    *out = w;
    return KW_E_OK;
fail:
    dbw_destroy(w);
    return e;
}

void dbw_destroy(struct dbw *w)
{
    if (!w) return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        atomic_store(&w->stop, true);
        pthread_cond_signal(&w->work);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thr, NULL);
    }
    for (unsigned i = 0; i < w->n_stmts; i++) /* the thread has ended: they are ours */
        sqlite3_finalize(w->stmts[i].st);
    if (w->db) store_db_close(w->db);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->idle);
    pthread_mutex_destroy(&w->mu);
    free(w->path);
    free(w);
}
