/* deliver_ob: the delivery thread's items and its side of the outbox:
 * items handed over by al_deliver_add, pending rows of earlier runs loaded
 * a page at a time, a loaded row read again before each send, and the
 * leases and answers queued to the database writer (see deliver.c). */
#include <stdlib.h>
#include <string.h>

#include "deliver_int.h"
#include "kw_log.h"
#include "store.h"

/* ---- outbox changes (through the writer) ---- */

static int upd_run(struct dbw_job *jb, sqlite3 *db)
{
    struct dl_upd_job *j = (struct dl_upd_job *)jb;
    static const char *const sql[] = {
        "UPDATE alert_outbox SET attempts=?3, next_attempt_at=?4, updated=?5 WHERE alert_id=?1 "
        "AND sink=?2",
        "UPDATE alert_outbox SET state=?3, last_status=?4, last_error=?6, updated=?5 WHERE "
        "alert_id=?1 AND sink=?2",
        "UPDATE alert_outbox SET next_attempt_at=?3, last_status=?4, last_error=?6, updated=?5 "
        "WHERE alert_id=?1 AND sink=?2",
    };
    int rc = SQLITE_OK;
    kw_ts now = kw_ts_wall();
    for (size_t i = 0; rc == SQLITE_OK && i < j->n; i++) {
        const struct dl_upd *u = &j->u[i];
        sqlite3_stmt *s = NULL; /* kept by the writer (dbw_stmt), returned reset */
        if ((rc = dbw_stmt(db, sql[u->op], &s)) != SQLITE_OK) break;
        sqlite3_bind_text(s, 1, u->alert_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, j->d->a->sink_keys[u->sink], -1, SQLITE_STATIC);
        if (u->op == DL_LEASE) {
            sqlite3_bind_int64(s, 3, u->attempts);
            sqlite3_bind_int64(s, 4, u->at);
        } else {
            sqlite3_bind_int64(s, 3, u->op == DL_STATE ? u->state : u->at);
            sqlite3_bind_int64(s, 4, u->status);
            sqlite3_bind_text(s, 6, u->err, -1, SQLITE_STATIC);
        }
        sqlite3_bind_int64(s, 5, now);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(db);
        sqlite3_reset(s); /* its bindings point into this job */
    }
    return rc;
}

static void upd_done(struct dbw_job *jb, int rc)
{
    struct dl_upd_job *j = (struct dl_upd_job *)jb;
    if (rc != SQLITE_OK) { /* memory keeps the truth; the next run may send them again */
        j->d->a->n.state_unsaved += j->n;
        j->d->a->n.db_errors++;
    }
    bool freed = false;
    for (size_t i = 0; i < j->n; i++)
        if (j->u[i].op == DL_STATE) {
            atomic_fetch_sub(&j->d->sinks[j->u[i].sink].doubt, 1);
            freed = true;
        }
    if (freed) curl_multi_wakeup(j->d->multi); /* room for the next request */
    atomic_fetch_sub(&j->d->upd_pending, 1);
    free(j);
}

/* Queues a change of it's outbox row (none for an alert the database
 * refused: it has no row). */
void dl_upd_add(struct al_deliver *d, const struct dl_item *it, enum dl_op op, enum al_state state,
                long status, kw_ts at, const char *err)
{
    if (atomic_load(&it->m->verdict) == AL_V_UNSTORED) return;
    struct dl_upd_job *j = d->upd;
    if (!j || j->n == j->cap) {
        size_t cap = j ? j->cap * 2 : 64;
        struct dl_upd_job *n = realloc(j, sizeof *n + cap * sizeof n->u[0]);
        if (!n) {
            d->a->n.state_unsaved++;
            return;
        }
        if (!j) n->n = 0;
        n->cap = cap;
        d->upd = j = n;
    }
    struct dl_upd *u = &j->u[j->n++];
    memset(u, 0, sizeof *u);
    snprintf(u->alert_id, sizeof u->alert_id, "%s", it->m->id);
    u->op = (uint8_t)op;
    u->state = (uint8_t)state;
    u->sink = (uint16_t)it->sink;
    u->attempts = it->attempts;
    u->status = status;
    u->at = at;
    snprintf(u->err, sizeof u->err, "%s", err ? err : "");
    if (op == DL_STATE) atomic_fetch_add(&d->sinks[it->sink].doubt, 1);
}

void dl_upd_submit(struct al_deliver *d)
{
    struct dl_upd_job *j = d->upd;
    if (!j) return;
    d->upd = NULL;
    if (!j->n) {
        free(j);
        return;
    }
    memset(&j->job, 0, sizeof j->job);
    j->job.run = upd_run;
    j->job.done = upd_done;
    j->d = d;
    atomic_fetch_add(&d->upd_pending, 1);
    dbw_submit(d->a->w, &j->job);
}

/* ---- items ---- */

static struct dl_item *item_new(struct al_msg *m, unsigned sink)
{
    struct dl_item *it = calloc(1, sizeof *it);
    if (!it) return NULL;
    atomic_fetch_add(&m->refs, 1);
    it->m = m;
    it->sink = sink;
    return it;
}

void dl_item_free(struct al_deliver *d, struct dl_item *it)
{
    al_msg_unref(it->m);
    free(it);
    atomic_fetch_sub(&d->mem, 1);
}

bool al_deliver_add(struct al_deliver *d, struct al_msg *m)
{
    long n = __builtin_popcount(m->mask);
    if (atomic_fetch_add(&d->mem, n) + n > AL_MEM_MAX) {
        atomic_fetch_sub(&d->mem, n);
        return false;
    }
    struct dl_item *first = NULL, **link = &first, *last = NULL;
    kw_ts gate = kw_ts_wall() + (kw_ts)AL_GATE_MS * 1000;
    long made = 0;
    for (unsigned i = 0; i < d->a->cfg.n_sinks; i++) {
        if (!(m->mask & (UINT32_C(1) << i))) continue;
        struct dl_item *it = item_new(m, i);
        if (!it) break;
        it->gate_until = gate;
        *link = last = it;
        link = &it->next;
        made++;
    }
    if (made < n) { /* out of memory: none of them */
        for (struct dl_item *it = first, *nx; it; it = nx) {
            nx = it->next;
            al_msg_unref(it->m);
            free(it);
        }
        atomic_fetch_sub(&d->mem, n);
        return false;
    }
    al_backlog_add(d->a, n);
    pthread_mutex_lock(&d->in_mu);
    if (d->in_tail)
        d->in_tail->next = first;
    else
        d->in_head = first;
    d->in_tail = last;
    pthread_mutex_unlock(&d->in_mu);
    al_deliver_wake(d);
    return true;
}

static void sink_append(struct dl_sink *s, struct dl_item *it)
{
    it->next = NULL;
    if (s->tail)
        s->tail->next = it;
    else
        s->head = it;
    s->tail = it;
}

void dl_take_inbox(struct al_deliver *d)
{
    pthread_mutex_lock(&d->in_mu);
    struct dl_item *it = d->in_head;
    d->in_head = d->in_tail = NULL;
    pthread_mutex_unlock(&d->in_mu);
    for (struct dl_item *nx; it; it = nx) {
        nx = it->next;
        sink_append(&d->sinks[it->sink], it);
    }
}

/* Rows earlier runs left pending, a page at a time while memory allows
 * (rows of this run are in memory already: only rowids up to the last one
 * at start are read). */
void dl_load_page(struct al_deliver *d)
{
    if (d->page_from >= d->page_to || atomic_load(&d->mem) > AL_MEM_MAX / 2) return;
    struct alerts *a = d->a;
    sqlite3_stmt *st = d->q_page;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, d->page_from);
    sqlite3_bind_int64(st, 2, d->page_to);
    sqlite3_bind_int64(st, 3, DL_PAGE);
    int rc, got = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        got++;
        d->page_from = sqlite3_column_int64(st, 0);
        const char *sink = (const char *)sqlite3_column_text(st, 2);
        unsigned i = 0;
        while (i < a->cfg.n_sinks && (!sink || strcmp(sink, a->sink_keys[i]) != 0))
            i++;
        if (i == a->cfg.n_sinks) continue; /* a sink no longer configured (orphaned) */
        const char *rec = (const char *)sqlite3_column_text(st, 5);
        char *record = strdup(rec ? rec : "");
        const char *txt[] = {
            (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 7),
            (const char *)sqlite3_column_text(st, 8), (const char *)sqlite3_column_text(st, 6)};
        struct al_msg *m = record ? al_msg_new(txt[0] ? txt[0] : "", record, txt[1] ? txt[1] : "",
                                               sqlite3_column_int(st, 11), txt[2] ? txt[2] : "",
                                               (uint64_t)sqlite3_column_int64(st, 9),
                                               txt[3] ? txt[3] : "", sqlite3_column_int64(st, 10))
                                  : NULL;
        struct dl_item *it = m ? item_new(m, i) : NULL;
        al_msg_unref(m);
        if (!it) {
            free(m ? NULL : record);
            continue;
        }
        atomic_store(&m->verdict, AL_V_FROM_DB);
        atomic_fetch_add(&d->mem, 1);
        it->rowid = sqlite3_column_int64(st, 0);
        it->attempts = (unsigned)sqlite3_column_int(st, 3);
        it->next_at = sqlite3_column_int64(st, 4);
        sink_append(&d->sinks[i], it);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        char c[128];
        kw_err_log("alerts: cannot read the outbox: %s", store_cause(d->db, rc, c, sizeof c));
        d->page_from = d->page_to; /* counted as waiting; the next run tries again */
    } else if (got < DL_PAGE) {
        d->page_from = d->page_to;
    }
}

/* A row loaded from the outbox may have been delivered or leased by
 * another process (a concurrent `alerts flush`) since: read it again. */
bool dl_still_ours(struct al_deliver *d, struct dl_item *it, kw_ts now)
{
    sqlite3_stmt *st = d->q_check;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, it->rowid);
    int rc = sqlite3_step(st);
    bool ours = true;
    if (rc == SQLITE_DONE || (rc == SQLITE_ROW && sqlite3_column_int(st, 0) != AL_PENDING)) {
        it->done = true; /* done elsewhere */
        ours = false;
    } else if (rc == SQLITE_ROW && (unsigned)sqlite3_column_int(st, 1) > it->attempts) {
        it->attempts = (unsigned)sqlite3_column_int(st, 1);
        kw_ts at = sqlite3_column_int64(st, 2);
        it->next_at = at > now ? at : now + (kw_ts)d->a->cfg.timeout_ms * 1000;
        ours = false;
    }
    sqlite3_reset(st);
    return ours; /* a read error: send (at least once) */
}

void dl_open_reader(struct al_deliver *d)
{
    struct alerts *a = d->a;
    if (!a->cfg.n_sinks || store_db_open_ro(a->cfg.db_path, &d->db) != KW_E_OK) return;
    sqlite3_stmt *mx = NULL;
    if (sqlite3_prepare_v2(d->db, "SELECT max(rowid) FROM alert_outbox", -1, &mx, NULL) ==
            SQLITE_OK &&
        sqlite3_step(mx) == SQLITE_ROW)
        d->page_to = sqlite3_column_int64(mx, 0);
    sqlite3_finalize(mx);
    if (sqlite3_prepare_v2(d->db,
                           "SELECT o.rowid, o.alert_id, o.sink, o.attempts, o.next_attempt_at, "
                           "a.record, a.tz, a.kind, a.who, a.findings, a.ts, a.severity FROM "
                           "alert_outbox o JOIN alerts a ON a.id=o.alert_id WHERE o.state=0 AND "
                           "o.rowid>?1 AND o.rowid<=?2 ORDER BY o.rowid LIMIT ?3",
                           -1, &d->q_page, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(d->db,
                           "SELECT state, attempts, next_attempt_at FROM alert_outbox WHERE "
                           "rowid=?1",
                           -1, &d->q_check, NULL) != SQLITE_OK) {
        char c[128];
        kw_err_log("alerts: cannot read the outbox of %s: %s", a->cfg.db_path,
                   store_cause(d->db, sqlite3_errcode(d->db), c, sizeof c));
        sqlite3_finalize(d->q_page);
        sqlite3_finalize(d->q_check);
        d->q_page = d->q_check = NULL;
        store_db_close(d->db);
        d->db = NULL;
    }
}
