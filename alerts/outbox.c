/* outbox: the alerts module's SQLite tables (migrated under module name
 * "alerts") and the judge-side insert. An alert row holds the exact EVE
 * record; alert_outbox has one row per (alert, sink) with the delivery
 * state, so each sink retries on its own.
 *
 * The one thing to know: sinks are keyed by a hash of their URL, never
 * the URL (a Slack webhook URL is a secret) and never a signing secret. */
#include <stdlib.h>
#include <string.h>

#include "alerts_int.h"
#include "kw_log.h"
#include "store.h"

static const char *const schema[] = {
    /* 1 */
    "CREATE TABLE alerts("
    " id TEXT PRIMARY KEY,"      /* alert.id, the idempotency id */
    " ts INTEGER NOT NULL,"      /* packet time (µs) of the finding */
    " created INTEGER NOT NULL," /* wall clock (µs) of the insert */
    " kind TEXT NOT NULL,"
    " severity INTEGER NOT NULL,"
    " who TEXT NOT NULL," /* identity id, credential hint or source */
    " subject TEXT NOT NULL,"
    " findings INTEGER NOT NULL," /* findings this message reports (1, or N more) */
    " tz TEXT NOT NULL DEFAULT '',"
    " record TEXT NOT NULL);" /* the EVE alert record, exact bytes */
    "CREATE TABLE alert_outbox("
    " alert_id TEXT NOT NULL REFERENCES alerts(id),"
    " sink TEXT NOT NULL,"               /* alerts_sink_key() */
    " state INTEGER NOT NULL DEFAULT 0," /* 0 pending 1 delivered 2 failed 3 digested */
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_at INTEGER NOT NULL," /* wall clock µs; also the in-flight lease */
    " last_status INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " updated INTEGER NOT NULL,"
    " PRIMARY KEY(alert_id, sink));"
    "CREATE INDEX alert_outbox_due ON alert_outbox(sink, state, next_attempt_at);",
};

enum kw_err al_ob_open(const char *path, sqlite3 **out)
{
    sqlite3 *db = NULL;
    enum kw_err e = store_db_open(path, &db);
    if (e != KW_E_OK) return e;
    e = store_migrate(db, "alerts", schema, sizeof schema / sizeof schema[0]);
    if (e != KW_E_OK) {
        store_db_close(db);
        return e;
    }
    *out = db;
    return KW_E_OK;
}

bool al_sink_accepts(const struct alerts_sink_cfg *s, enum alert_kind kind, int sev)
{
    if (s->min_severity > 0 && sev > s->min_severity) return false;
    return !s->kinds_mask || (s->kinds_mask & (UINT32_C(1) << kind));
}

struct al_msg *al_msg_new(const char *id, char *record, const char *kind, int sev, const char *who,
                          uint64_t findings, const char *tz, kw_ts ts)
{
    struct al_msg *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    atomic_init(&m->refs, 1);
    atomic_init(&m->verdict, AL_V_UNKNOWN);
    snprintf(m->id, sizeof m->id, "%s", id);
    snprintf(m->kind, sizeof m->kind, "%s", kind);
    snprintf(m->who, sizeof m->who, "%s", who);
    snprintf(m->tz, sizeof m->tz, "%s", tz);
    m->sev = (uint8_t)sev;
    m->findings = findings;
    m->ts = ts;
    m->record = record;
    return m;
}

void al_msg_unref(struct al_msg *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) {
        free(m->record);
        free(m);
    }
}

/* The store job of one alert: the alert row and one outbox row per sink
 * that takes it, inside the writer's transaction. */
struct al_store_job {
    struct dbw_job job;
    struct alerts *a;
    struct al_msg *m;
    enum alert_kind kind;
    char subject[256];
    int rows;
    bool inserted;
};

static int store_run(struct dbw_job *jb, sqlite3 *db)
{
    struct al_store_job *j = (struct al_store_job *)jb;
    struct alerts *a = j->a;
    const struct al_msg *m = j->m;
    kw_ts now = kw_ts_wall();
    static const char alert_sql[] =
        "INSERT OR IGNORE INTO alerts(id,ts,created,kind,severity,who,subject,findings,tz,record)"
        " VALUES(?,?,?,?,?,?,?,?,?,?)";
    static const char row_sql[] =
        "INSERT OR IGNORE INTO alert_outbox(alert_id,sink,next_attempt_at,updated) VALUES(?,?,?,?)";
    sqlite3_stmt *st = NULL, *row = NULL; /* kept by the writer (dbw_stmt) */
    j->rows = 0;
    j->inserted = false;
    int rc = dbw_stmt(db, alert_sql, &st);
    if (rc == SQLITE_OK) rc = dbw_stmt(db, row_sql, &row);
    if (rc != SQLITE_OK) return rc;
    sqlite3_bind_text(st, 1, m->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, m->ts);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_text(st, 4, m->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, m->sev);
    sqlite3_bind_text(st, 6, m->who, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, j->subject, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)m->findings);
    sqlite3_bind_text(st, 9, m->tz, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, m->record, -1, SQLITE_STATIC);
    if ((rc = sqlite3_step(st)) != SQLITE_DONE) goto out;
    rc = SQLITE_OK;
    /* an existing id is a replay of an alert already in the outbox */
    j->inserted = sqlite3_changes(db) == 1;
    for (unsigned i = 0; j->inserted && i < a->cfg.n_sinks; i++) {
        if (!(m->mask & (UINT32_C(1) << i))) continue;
        sqlite3_reset(row);
        sqlite3_bind_text(row, 1, m->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(row, 2, a->sink_keys[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(row, 3, now);
        sqlite3_bind_int64(row, 4, now);
        if ((rc = sqlite3_step(row)) != SQLITE_DONE) goto out;
        rc = SQLITE_OK;
        j->rows += sqlite3_changes(db);
    }
out:
    if (rc != SQLITE_OK) rc = sqlite3_extended_errcode(db);
    sqlite3_reset(st); /* the bindings point into the message */
    sqlite3_reset(row);
    return rc;
}

static void store_done(struct dbw_job *jb, int rc)
{
    struct al_store_job *j = (struct al_store_job *)jb;
    struct alerts *a = j->a;
    struct al_msg *m = j->m;
    unsigned sinks = (unsigned)__builtin_popcount(m->mask);
    if (rc != SQLITE_OK) {
        /* the writer named the cause; delivery sends it from memory */
        a->n.not_stored++;
        a->n.db_errors++;
        atomic_store(&m->verdict, AL_V_UNSTORED);
        if (m->deferred && sinks) {
            a->n.lost += sinks;
            kw_warn("alerts: alert %s is neither stored nor held for delivery (memory full)",
                    m->id);
        }
    } else if (j->inserted) {
        a->n.stored++;
        atomic_store(&m->verdict, AL_V_NEW);
        if (m->deferred) { /* waits in the outbox for the next run or `alerts flush` */
            al_backlog_add(a, j->rows);
        }
    } else {
        a->n.replayed++;
        atomic_store(&m->verdict, AL_V_REPLAY);
    }
    if (a->dl) al_deliver_wake(a->dl);
    al_msg_unref(m);
    free(j);
}

void al_route(struct alerts *a, const char *id, char *record, enum alert_kind kind, int sev,
              const char *who, const char *subject, uint64_t findings, const char *tz, kw_ts ts)
{
    struct al_msg *m = al_msg_new(id, record, alert_kind_name(kind), sev, who, findings, tz, ts);
    struct al_store_job *j = m ? calloc(1, sizeof *j) : NULL;
    if (!j) {
        if (!m) free(record);
        al_msg_unref(m);
        a->n.not_stored++;
        a->n.lost++;
        return;
    }
    for (unsigned i = 0; i < a->cfg.n_sinks; i++) {
        if (al_sink_accepts(&a->cfg.sinks[i], kind, sev))
            m->mask |= UINT32_C(1) << i;
        else
            a->n.filtered++;
    }
    /* delivery first: the writer's verdict may come at once */
    m->deferred = !m->mask || !a->dl || !al_deliver_add(a->dl, m);
    if (m->mask && a->dl && m->deferred) a->n.mem_full++;
    j->job.run = store_run;
    j->job.done = store_done;
    j->a = a;
    j->m = m; /* the route's reference goes to the job */
    j->kind = kind;
    snprintf(j->subject, sizeof j->subject, "%s", subject);
    dbw_submit(a->w, &j->job);
}

/* Retention: outbox rows that settled (delivered, failed, digested) more
 * than `retention` ago, and the alerts left with no row, on the wall clock
 * (created/updated), so neither a replay of an old capture nor one dated
 * in the future decides what is deleted. Pending rows stay. */
struct al_ret_job {
    struct dbw_job job;
    struct alerts *a;
    uint64_t deleted;
};

static int ret_run(struct dbw_job *jb, sqlite3 *db)
{
    struct al_ret_job *j = (struct al_ret_job *)jb;
    kw_ts keep = j->a->cfg.retention > 0 ? j->a->cfg.retention : KW_TS_SEC(90 * 86400);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "DELETE FROM alert_outbox WHERE state!=0 AND updated<?1", -1,
                                &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, kw_ts_wall() - keep);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(db);
        sqlite3_finalize(st);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "DELETE FROM alerts WHERE created<?1 AND NOT EXISTS (SELECT 1 "
                                "FROM alert_outbox o WHERE o.alert_id=alerts.id)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, kw_ts_wall() - keep);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(db);
        j->deleted = rc == SQLITE_OK ? (uint64_t)sqlite3_changes(db) : 0;
        sqlite3_finalize(st);
    }
    return rc;
}

static void ret_done(struct dbw_job *jb, int rc)
{
    struct al_ret_job *j = (struct al_ret_job *)jb;
    if (rc == SQLITE_OK) j->a->n.expired += j->deleted;
    free(j);
}

void al_retention(struct alerts *a)
{
    struct al_ret_job *j = calloc(1, sizeof *j);
    if (!j) return;
    j->job.run = ret_run;
    j->job.done = ret_done;
    j->job.lazy = true;
    j->a = a;
    dbw_submit(a->w, &j->job);
}

void al_note_failure(struct alerts *a, const char *id, unsigned sink, const char *why)
{
    pthread_mutex_lock(&a->fail_mu);
    if (a->n_fails < AL_FAIL_LIST) {
        struct alerts_failure *f = &a->fails[a->n_fails];
        snprintf(f->id, sizeof f->id, "%s", id);
        memcpy(f->sink, a->sink_keys[sink], sizeof f->sink); /* both 40 bytes */
        f->sink[sizeof f->sink - 1] = 0;
        snprintf(f->why, sizeof f->why, "%s", why);
    }
    a->n_fails++;
    pthread_mutex_unlock(&a->fail_mu);
}

int64_t al_ob_backlog(sqlite3 *db, char keys[][40], unsigned n, int64_t *orphaned)
{
    sqlite3_stmt *st = NULL;
    int64_t mine = 0, all = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT sink, COUNT(*) FROM alert_outbox WHERE state=0 GROUP BY sink",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        int64_t c = sqlite3_column_int64(st, 1);
        all += c;
        for (unsigned i = 0; i < n; i++)
            if (k && strcmp(k, keys[i]) == 0) {
                mine += c;
                break;
            }
    }
    sqlite3_finalize(st);
    if (orphaned) *orphaned = all - mine;
    return mine;
}

enum kw_err alerts_read(sqlite3 *db, kw_ts since, kw_ts until,
                        void (*fn)(void *user, kw_ts ts, const char *record), void *user)
{
    if (!store_has_table(db, "alerts")) return KW_E_OK;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT ts, record FROM alerts WHERE ts >= ?1 AND (?2 = 0 OR ts < ?2) "
                           "ORDER BY ts, created, id",
                           -1, &s, NULL) != SQLITE_OK) {
        kw_err_log("alerts: read: %s", sqlite3_errmsg(db));
        return KW_E_DB;
    }
    sqlite3_bind_int64(s, 1, since);
    sqlite3_bind_int64(s, 2, until);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *rec = (const char *)sqlite3_column_text(s, 1);
        fn(user, sqlite3_column_int64(s, 0), rec ? rec : "");
    }
    enum kw_err e = KW_E_OK;
    if (rc != SQLITE_DONE) {
        kw_err_log("alerts: read: %s", sqlite3_errmsg(db));
        e = KW_E_DB;
    }
    sqlite3_finalize(s);
    return e;
}

enum kw_err alerts_newest(sqlite3 *db, kw_ts *out)
{
    *out = 0;
    if (!store_has_table(db, "alerts")) return KW_E_OK;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT max(ts) FROM alerts", -1, &s, NULL) != SQLITE_OK) {
        kw_err_log("alerts: read: %s", sqlite3_errmsg(db));
        return KW_E_DB;
    }
    if (sqlite3_step(s) == SQLITE_ROW) *out = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return KW_E_OK;
}
