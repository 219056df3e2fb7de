/* outbox: the alerts module's SQLite tables (migrated under module name
 * "alerts") and the judge-side insert. An alert row holds the exact EVE
 * record; alert_outbox has one row per (alert, sink) with the delivery
 * state, so each sink retries on its own.
 *
 * The one thing to know: sinks are keyed by a hash of their URL, never
 * the URL (a Slack webhook URL is a secret) and never a signing secret. */
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

enum kw_err al_ob_prepare(struct alerts *a)
{
    if (sqlite3_prepare_v2(a->db,
                           "INSERT OR IGNORE INTO alerts(id,ts,created,kind,severity,who,subject,"
                           "findings,tz,record) VALUES(?,?,?,?,?,?,?,?,?,?)",
                           -1, &a->ins_alert, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(a->db,
                           "INSERT OR IGNORE INTO alert_outbox(alert_id,sink,next_attempt_at,"
                           "updated) VALUES(?,?,?,?)",
                           -1, &a->ins_row, NULL) != SQLITE_OK) {
        kw_err_log("alerts: cannot prepare outbox statements: %s", sqlite3_errmsg(a->db));
        return KW_E_DB;
    }
    return KW_E_OK;
}

bool al_sink_accepts(const struct alerts_sink_cfg *s, enum alert_kind kind, int sev)
{
    if (s->min_severity > 0 && sev > s->min_severity) return false;
    return !s->kinds_mask || (s->kinds_mask & (UINT32_C(1) << kind));
}

static int insert_rows(struct alerts *a, const char *id, enum alert_kind kind, int sev, kw_ts now)
{
    int rows = 0;
    for (unsigned i = 0; i < a->cfg.n_sinks; i++) {
        if (!al_sink_accepts(&a->cfg.sinks[i], kind, sev)) {
            a->n.filtered++;
            continue;
        }
        sqlite3_stmt *st = a->ins_row;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, a->sink_keys[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_int64(st, 4, now);
        if (sqlite3_step(st) != SQLITE_DONE) return -1;
        rows += sqlite3_changes(a->db);
    }
    return rows;
}

int al_ob_insert(struct alerts *a, const char *id, const char *record, enum alert_kind kind,
                 int sev, const char *who, const char *subject, uint64_t findings, const char *tz,
                 kw_ts ts)
{
    kw_ts now = kw_ts_wall();
    if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) goto fail;
    sqlite3_stmt *st = a->ins_alert;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, ts);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_text(st, 4, alert_kind_name(kind), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, sev);
    sqlite3_bind_text(st, 6, who, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, subject, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)findings);
    sqlite3_bind_text(st, 9, tz, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, record, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) goto rollback;
    int rows = 0;
    /* an existing id is a replay of an alert already in the outbox */
    if (sqlite3_changes(a->db) == 1 && (rows = insert_rows(a, id, kind, sev, now)) < 0)
        goto rollback;
    if (sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) goto rollback;
    return rows;
rollback:
    sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
fail:
    kw_warn("alerts: outbox insert of alert %s failed: %s", id, sqlite3_errmsg(a->db));
    return -1;
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
