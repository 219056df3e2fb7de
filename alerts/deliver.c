/* deliver: the delivery thread. It owns a libcurl multi handle and the
 * alerts waiting for delivery, in memory: one item per (alert, sink),
 * handed over by al_route() or loaded from the outbox rows that earlier
 * runs left pending. Each turn it starts what each sink may send (rate
 * limits, Slack digests), and records each answer: 2xx done, a permanent
 * 3xx/4xx failed, everything else retried with full-jitter backoff or
 * after the 429's Retry-After (which also pauses the whole sink).
 *
 * The one thing to know: memory is the truth for this process, SQLite the
 * record for the next one. Leases and answers are queued to the database
 * writer (dbw.h) and never read back, so a database that is locked, full
 * or read-only neither stops delivery nor makes it send an alert twice
 * (the issue saw one alert POSTed 67 times in 0.43 s when its lease could
 * not be written). The lease in the outbox row is still the in-flight
 * marker between processes: a process that dies mid-request leaves rows
 * whose lease expires after timeout + 1 s, and the next run (or an
 * `alerts flush`) sends them again with the same alert id; before sending
 * a row it loaded, delivery reads it again, so a row another process
 * delivered or leased meanwhile is not sent. At least once, never lost
 * while it is stored. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "alerts_int.h"
#include "al_util.h"
#include "kw_log.h"
#include "store.h"

#define DL_TICK_MS 200
#define DL_DIGEST_MAX 100000
#define DL_PAGE 1000

/* One (alert, sink) delivery. */
struct dl_item {
    struct dl_item *next;
    struct al_msg *m; /* a reference */
    unsigned sink;
    unsigned attempts;
    kw_ts next_at, gate_until;
    int64_t rowid; /* loaded from the outbox: its row (checked before each send) */
    bool inflight, done;
    bool settled; /* done, and already taken off the backlog */
};

struct dl_job {
    struct dl_job *next;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    unsigned sink;
    bool digest;
    struct dl_item **items, *one;
    size_t n_items;
    unsigned attempts; /* including this one */
    char alert_id[AL_ID_LEN + 1];
    char retry_after[64];
    char resp[128];
    size_t resp_len;
    char errbuf[CURL_ERROR_SIZE];
};

struct dl_sink {
    double tokens;
    kw_ts refilled, paused_until, last_digest;
    unsigned inflight;
    bool digest_inflight;
    struct dl_item *head, *tail; /* its items, oldest first */
};

/* One outbox change, queued to the writer. */
enum dl_op { DL_LEASE, DL_STATE, DL_RETRY };
struct dl_upd {
    char alert_id[AL_ID_LEN + 1];
    uint8_t op, state;
    uint16_t sink;
    unsigned attempts;
    long status;
    kw_ts at;
    char err[160];
};
struct dl_upd_job {
    struct dbw_job job;
    struct al_deliver *d;
    size_t n, cap;
    struct dl_upd u[];
};

struct al_deliver {
    struct alerts *a;
    sqlite3 *db; /* reads only: loading and re-checking outbox rows */
    sqlite3_stmt *q_page, *q_check;
    CURLM *multi;
    pthread_t thr;
    atomic_bool stop;
    struct dl_sink sinks[ALERTS_MAX_SINKS];
    struct dl_job *jobs; /* in flight */
    uint64_t rng;

    pthread_mutex_t in_mu; /* the inbox: items handed over by al_deliver_add */
    struct dl_item *in_head, *in_tail;
    atomic_long mem; /* items held (inbox included) */

    struct dl_upd_job *upd;     /* changes of this turn */
    atomic_long upd_pending;    /* update jobs in the writer */
    kw_ts next_retention;       /* wall clock */
    int64_t page_from, page_to; /* outbox rows of earlier runs still to load */
};

/* ---- HTTP requests ---- */

static size_t on_header(char *b, size_t size, size_t n, void *ud)
{
    struct dl_job *j = ud;
    size_t len = size * n;
    if (len > 12 && strncasecmp(b, "Retry-After:", 12) == 0)
        snprintf(j->retry_after, sizeof j->retry_after, "%.*s", (int)(len - 12), b + 12);
    return len;
}

static size_t on_body(char *b, size_t size, size_t n, void *ud)
{
    struct dl_job *j = ud;
    size_t len = size * n, room = sizeof j->resp - 1 - j->resp_len;
    size_t c = len < room ? len : room;
    memcpy(j->resp + j->resp_len, b, c);
    j->resp_len += c;
    j->resp[j->resp_len] = 0;
    return len;
}

void *al_request_new(const struct alerts_sink_cfg *s, const char *body, const char *alert_id,
                     struct curl_slist **hdrs, long timeout_ms)
{
    CURL *e = curl_easy_init();
    if (!e) return NULL;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    if (s->kind == ALERTS_SINK_WEBHOOK) {
        char line[160], ts[32], sig[80];
        snprintf(ts, sizeof ts, "%lld", (long long)(kw_ts_wall() / 1000000));
        snprintf(line, sizeof line, "X-Keywarden-Timestamp: %s", ts);
        h = curl_slist_append(h, line);
        if (s->secret[0] && al_sign(s->secret, ts, body, strlen(body), sig)) {
            snprintf(line, sizeof line, "X-Keywarden-Signature: %s", sig);
            h = curl_slist_append(h, line);
        }
        snprintf(line, sizeof line, "Idempotency-Key: %s", alert_id);
        h = curl_slist_append(h, line);
        snprintf(line, sizeof line, "X-Keywarden-Alert-Id: %s", alert_id);
        h = curl_slist_append(h, line);
    }
    *hdrs = h;
    curl_easy_setopt(e, CURLOPT_URL, s->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body); /* not copied: the job keeps body */
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "keywarden-alerts/1");
    return e;
}

static void job_free(struct dl_job *j)
{
    if (!j) return;
    if (j->easy) curl_easy_cleanup(j->easy);
    curl_slist_free_all(j->hdrs);
    free(j->body);
    if (j->items != &j->one) free(j->items);
    free(j);
}

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
    sqlite3_stmt *st[3] = {NULL, NULL, NULL};
    int rc = SQLITE_OK;
    kw_ts now = kw_ts_wall();
    for (size_t i = 0; rc == SQLITE_OK && i < j->n; i++) {
        const struct dl_upd *u = &j->u[i];
        if (!st[u->op] && (rc = sqlite3_prepare_v2(db, sql[u->op], -1, &st[u->op], NULL))) break;
        sqlite3_stmt *s = st[u->op];
        sqlite3_reset(s);
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
    }
    for (int i = 0; i < 3; i++)
        sqlite3_finalize(st[i]);
    return rc;
}

static void upd_done(struct dbw_job *jb, int rc)
{
    struct dl_upd_job *j = (struct dl_upd_job *)jb;
    if (rc != SQLITE_OK) { /* memory keeps the truth; the next run may send them again */
        j->d->a->n.state_unsaved += j->n;
        j->d->a->n.db_errors++;
    }
    atomic_fetch_sub(&j->d->upd_pending, 1);
    free(j);
}

/* Queues a change of it's outbox row (none for an alert the database
 * refused: it has no row). */
static void upd_add(struct al_deliver *d, const struct dl_item *it, enum dl_op op,
                    enum al_state state, long status, kw_ts at, const char *err)
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
}

static void upd_submit(struct al_deliver *d)
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

static void item_free(struct al_deliver *d, struct dl_item *it)
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

static void take_inbox(struct al_deliver *d)
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
static void load_page(struct al_deliver *d)
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
static bool still_ours(struct al_deliver *d, struct dl_item *it, kw_ts now)
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

/* ---- scheduling ---- */

static void refill(struct dl_sink *s, const struct alerts_sink_cfg *c, kw_ts now)
{
    double burst = c->burst ? c->burst : 5;
    s->tokens += (double)(now - s->refilled) / 60e6 * c->rate_per_min;
    if (s->tokens > burst) s->tokens = burst;
    s->refilled = now;
}

static kw_ts min_ts(kw_ts a, kw_ts b)
{
    return a < b ? a : b;
}

/* May it be sent now? Drops finished items and replays from the list's
 * point of view (the caller unlinks when *drop). */
static bool due(struct al_deliver *d, struct dl_item *it, kw_ts now, kw_ts *next, bool *drop)
{
    *drop = false;
    if (it->inflight) return false;
    int v = atomic_load(&it->m->verdict);
    if (it->done || v == AL_V_REPLAY) {
        *drop = true;
        return false;
    }
    if (v == AL_V_UNKNOWN && now < it->gate_until) {
        *next = min_ts(*next, it->gate_until);
        return false;
    }
    if (it->next_at > now) {
        *next = min_ts(*next, it->next_at);
        return false;
    }
    return true;
}

/* Walks sink i's list: unlinks dropped items (backlog down), returns the
 * number due now, and fills out[] with up to k of them. */
static size_t scan(struct al_deliver *d, unsigned i, kw_ts now, kw_ts *next, struct dl_item **out,
                   size_t k)
{
    struct dl_sink *s = &d->sinks[i];
    struct dl_item *prev = NULL, *it = s->head;
    size_t n = 0;
    while (it) {
        bool drop;
        bool ok = due(d, it, now, next, &drop);
        if (drop) {
            struct dl_item *nx = it->next;
            if (prev)
                prev->next = nx;
            else
                s->head = nx;
            if (s->tail == it) s->tail = prev;
            if (!it->settled) al_backlog_add(d->a, -1); /* a replay, or done elsewhere */
            item_free(d, it);
            it = nx;
            continue;
        }
        if (ok) {
            if (n < k) out[n] = it;
            n++;
        }
        prev = it;
        it = it->next;
    }
    return n;
}

static bool job_start(struct al_deliver *d, struct dl_job *j);

static void start_single(struct al_deliver *d, struct dl_item *it, kw_ts now)
{
    const struct alerts_sink_cfg *c = &d->a->cfg.sinks[it->sink];
    struct dl_job *j = calloc(1, sizeof *j);
    if (!j) return;
    j->sink = it->sink;
    j->one = it;
    j->items = &j->one;
    j->n_items = 1;
    snprintf(j->alert_id, sizeof j->alert_id, "%s", it->m->id);
    j->attempts = it->attempts + 1;
    if (c->kind == ALERTS_SINK_SLACK) {
        json_t *rec = json_loads(it->m->record, 0, NULL);
        json_t *msg = rec ? al_slack_alert(rec, it->m->tz) : NULL;
        j->body = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
        json_decref(msg);
        json_decref(rec);
    } else {
        j->body = strdup(it->m->record);
    }
    if (!j->body) {
        /* an unreadable stored record can never be sent: fail it visibly */
        upd_add(d, it, DL_STATE, AL_FAILED, 0, 0, "stored record unreadable");
        d->a->n.failed_permanent++;
        d->a->n.sink_failed[j->sink]++;
        al_note_failure(d->a, it->m->id, it->sink, "stored record unreadable");
        it->done = it->settled = true;
        al_backlog_add(d->a, -1);
        job_free(j);
        return;
    }
    it->attempts++;
    it->inflight = true;
    upd_add(d, it, DL_LEASE, 0, 0, now + (kw_ts)(d->a->cfg.timeout_ms + 1000) * 1000, NULL);
    if (!job_start(d, j)) {
        it->inflight = false;
        it->next_at = now + (kw_ts)d->a->cfg.backoff_base_ms * 1000;
        job_free(j);
    }
}

static void start_digest(struct al_deliver *d, unsigned i, kw_ts now, kw_ts *next)
{
    struct dl_job *j = calloc(1, sizeof *j);
    struct al_digest *dg = calloc(1, sizeof *dg);
    size_t cap = 256;
    if (j) j->items = malloc(cap * sizeof *j->items);
    if (!j || !dg || !j->items) {
        free(dg);
        if (j && !j->items) j->items = &j->one;
        job_free(j);
        return;
    }
    j->sink = i;
    j->digest = true;
    for (struct dl_item *it = d->sinks[i].head; it && j->n_items < DL_DIGEST_MAX; it = it->next) {
        bool drop;
        if (!due(d, it, now, next, &drop) || (it->rowid && !still_ours(d, it, now))) continue;
        if (j->n_items == cap) {
            struct dl_item **n = realloc(j->items, 2 * cap * sizeof *n);
            if (!n) break;
            j->items = n;
            cap *= 2;
        }
        j->items[j->n_items++] = it;
        al_digest_add(dg, it->m->kind, it->m->who, it->m->findings, it->m->ts);
    }
    json_t *msg = al_slack_digest(dg);
    j->body = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    free(dg);
    snprintf(j->alert_id, sizeof j->alert_id, "digest");
    if (!j->body || j->n_items == 0) {
        job_free(j);
        return;
    }
    for (size_t k = 0; k < j->n_items; k++) {
        struct dl_item *it = j->items[k];
        it->attempts++;
        it->inflight = true;
        upd_add(d, it, DL_LEASE, 0, 0, now + (kw_ts)(d->a->cfg.timeout_ms + 1000) * 1000, NULL);
    }
    if (!job_start(d, j)) {
        for (size_t k = 0; k < j->n_items; k++)
            j->items[k]->inflight = false;
        job_free(j);
    }
}

/* Starts what sink i may send now; lowers *next to when it may send more. */
static void dispatch(struct al_deliver *d, unsigned i, kw_ts now, kw_ts *next)
{
    struct dl_sink *s = &d->sinks[i];
    const struct alerts_sink_cfg *c = &d->a->cfg.sinks[i];
    unsigned max_inflight = d->a->cfg.max_inflight ? d->a->cfg.max_inflight : 8;
    struct dl_item *cand[64];
    if (s->paused_until > now) {
        *next = min_ts(*next, s->paused_until);
        scan(d, i, now, next, cand, 0); /* still drop finished items */
        return;
    }
    if (s->digest_inflight || s->inflight >= max_inflight) {
        scan(d, i, now, next, cand, 0);
        return;
    }
    int64_t ndue = (int64_t)scan(d, i, now, next, cand, 64);
    if (ndue <= 0) return;
    bool limited = c->rate_per_min > 0, storm = false;
    int64_t k = ndue, room = max_inflight - s->inflight;
    if (limited) {
        refill(s, c, now);
        if (s->tokens < 1) {
            *next = min_ts(*next, now + (kw_ts)((1 - s->tokens) * 60e6 / c->rate_per_min) + 1);
            return;
        }
        if (c->kind == ALERTS_SINK_SLACK && ndue > (int64_t)s->tokens) {
            /* a Slack storm: all but one token individually, the rest as one
             * digest, at most one digest per interval; items wait meanwhile */
            kw_ts at = s->last_digest + (kw_ts)d->a->cfg.digest_interval_ms * 1000;
            if (s->last_digest && now < at) {
                *next = min_ts(*next, at);
                return;
            }
            storm = true;
            k = (int64_t)s->tokens - 1;
        } else if (ndue > (int64_t)s->tokens) {
            k = (int64_t)s->tokens; /* webhooks are paced, never summarised */
        }
    }
    if (k > room) k = room;
    if (k > 64) k = 64;
    for (int64_t r = 0; r < k && r < ndue; r++) {
        struct dl_item *it = cand[r];
        if (it->rowid && !still_ours(d, it, now)) continue;
        start_single(d, it, now);
        s->tokens -= 1;
    }
    if (storm && s->inflight < max_inflight) {
        start_digest(d, i, now, next);
        s->tokens -= 1;
        s->last_digest = now;
    }
}

/* ---- answers ---- */

static kw_ts retry_delay(struct al_deliver *d, struct dl_job *j, long status, kw_ts now)
{
    const struct alerts_config *c = &d->a->cfg;
    long ms = -1;
    if (status == 429 && j->retry_after[0]) {
        ms = al_retry_after_ms(j->retry_after, (time_t)(now / 1000000));
        if (ms > c->retry_after_max_ms) ms = c->retry_after_max_ms;
    }
    if (ms < 0) ms = al_backoff_ms(j->attempts, c->backoff_base_ms, c->backoff_cap_ms, &d->rng);
    if (status == 429) /* the sink told us to slow down, not just this row */
        d->sinks[j->sink].paused_until = now + (kw_ts)ms * 1000;
    return (kw_ts)ms * 1000;
}

static void finish(struct al_deliver *d, struct dl_job *j, int code, long status, kw_ts now)
{
    struct alerts *a = d->a;
    enum al_action act = al_classify(code, status);
    char err[300];
    if (code)
        snprintf(err, sizeof err, "curl %d: %s", code,
                 j->errbuf[0] ? j->errbuf : curl_easy_strerror((CURLcode)code));
    else
        snprintf(err, sizeof err, "HTTP %ld%s%.120s", status, j->resp_len ? ": " : "", j->resp);
    if (act == AL_RETRY && a->cfg.max_attempts && !j->digest &&
        j->attempts >= a->cfg.max_attempts) {
        act = AL_PERMANENT;
        snprintf(err + strlen(err), sizeof err - strlen(err), " (gave up after %u attempts)",
                 j->attempts);
    }
    kw_ts at = act == AL_RETRY ? now + retry_delay(d, j, status, now) : 0;
    for (size_t k = 0; k < j->n_items; k++) {
        struct dl_item *it = j->items[k];
        it->inflight = false;
        if (act == AL_DONE) {
            upd_add(d, it, DL_STATE, j->digest ? AL_DIGESTED : AL_DELIVERED, status, 0, "");
            it->done = it->settled = true;
        } else if (act == AL_PERMANENT) {
            upd_add(d, it, DL_STATE, AL_FAILED, status, 0, err);
            al_note_failure(a, it->m->id, it->sink, err);
            it->done = it->settled = true;
        } else {
            upd_add(d, it, DL_RETRY, 0, status, at, err);
            it->next_at = at;
        }
    }
    if (act == AL_DONE) {
        if (j->digest) {
            a->n.digests++;
            a->n.digested += j->n_items;
        } else {
            a->n.delivered++;
        }
        a->n.sink_delivered[j->sink] += j->n_items;
        al_backlog_add(a, -(int64_t)j->n_items);
    } else if (act == AL_PERMANENT) {
        a->n.failed_permanent += j->n_items;
        a->n.sink_failed[j->sink] += j->n_items;
        /* named once per sink; the rest are counted and listed at the end */
        if (a->n.sink_failed[j->sink] == j->n_items)
            kw_warn("alerts: %s to sink %s failed for good: %s (further failures of this sink "
                    "are counted and listed in the summary)",
                    j->digest ? "digest" : j->alert_id, a->sink_keys[j->sink], err);
        else
            kw_debug("alerts: %s to sink %s failed for good: %s",
                     j->digest ? "digest" : j->alert_id, a->sink_keys[j->sink], err);
        al_backlog_add(a, -(int64_t)j->n_items);
    } else {
        a->n.retries++;
        a->n.sink_retries[j->sink]++;
        kw_debug("alerts: %s to %s: %s; retry in %lld ms", j->alert_id, a->sink_keys[j->sink], err,
                 (long long)(at - now) / 1000);
    }
}

static void unlink_job(struct al_deliver *d, struct dl_job *j)
{
    for (struct dl_job **p = &d->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    d->sinks[j->sink].inflight--;
    if (j->digest) d->sinks[j->sink].digest_inflight = false;
    curl_multi_remove_handle(d->multi, j->easy);
}

static bool job_start(struct al_deliver *d, struct dl_job *j)
{
    const struct alerts_sink_cfg *s = &d->a->cfg.sinks[j->sink];
    j->easy = al_request_new(s, j->body, j->alert_id, &j->hdrs, d->a->cfg.timeout_ms);
    if (!j->easy) return false;
    curl_easy_setopt(j->easy, CURLOPT_PRIVATE, j);
    curl_easy_setopt(j->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(j->easy, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(j->easy, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(j->easy, CURLOPT_ERRORBUFFER, j->errbuf);
    if (curl_multi_add_handle(d->multi, j->easy) != CURLM_OK) return false;
    j->next = d->jobs;
    d->jobs = j;
    d->sinks[j->sink].inflight++;
    if (j->digest) d->sinks[j->sink].digest_inflight = true;
    return true;
}

static void collect(struct al_deliver *d)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(d->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        struct dl_job *j = NULL;
        long status = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        int code = (int)m->data.result;
        unlink_job(d, j);
        finish(d, j, code, status, kw_ts_wall());
        job_free(j);
    }
}

/* ---- the thread ---- */

static void syslog_drain(struct alerts *a)
{
    char line[AL_SYSLOG_LINE];
    for (;;) {
        pthread_mutex_lock(&a->sl_mu);
        bool have = a->sl_len > 0;
        if (have) {
            memcpy(line, a->sl_ring[a->sl_head], sizeof line);
            a->sl_head = (a->sl_head + 1) % AL_SYSLOG_RING;
            a->sl_len--;
        }
        pthread_mutex_unlock(&a->sl_mu);
        if (!have) return;
        syslog(LOG_WARNING, "%s", line);
    }
}

static void turn(struct al_deliver *d)
{
    kw_ts now = kw_ts_wall(), next = now + DL_TICK_MS * 1000;
    take_inbox(d);
    if (d->db) load_page(d);
    if (now >= d->next_retention) { /* alerts_new queued the first pass */
        if (d->next_retention) al_retention(d->a);
        d->next_retention = now + KW_TS_SEC(3600);
    }
    for (unsigned i = 0; i < d->a->cfg.n_sinks; i++)
        dispatch(d, i, now, &next);
    int running = 0;
    curl_multi_perform(d->multi, &running);
    collect(d);
    upd_submit(d);
    kw_ts wait = (next - kw_ts_wall()) / 1000;
    if (wait > DL_TICK_MS) wait = DL_TICK_MS;
    if (wait < 0) wait = 0;
    curl_multi_poll(d->multi, NULL, 0, (int)wait, NULL);
    curl_multi_perform(d->multi, &running);
    collect(d);
    upd_submit(d);
}

/* Requests in flight are abandoned: their leases are released so the next
 * run resends at once. Items the database never took die with the process:
 * lost, counted. */
static void shutdown_items(struct al_deliver *d)
{
    kw_ts now = kw_ts_wall();
    while (d->jobs) {
        struct dl_job *j = d->jobs;
        unlink_job(d, j);
        for (size_t k = 0; k < j->n_items; k++) {
            j->items[k]->inflight = false;
            upd_add(d, j->items[k], DL_RETRY, 0, 0, now, "abandoned at shutdown");
        }
        job_free(j);
    }
    upd_submit(d);
    take_inbox(d);
    int64_t lost = 0;
    for (unsigned i = 0; i < ALERTS_MAX_SINKS; i++) {
        for (struct dl_item *it = d->sinks[i].head, *nx; it; it = nx) {
            nx = it->next;
            if (!it->done && atomic_load(&it->m->verdict) == AL_V_UNSTORED) lost++;
            item_free(d, it);
        }
        d->sinks[i].head = d->sinks[i].tail = NULL;
    }
    if (lost) {
        d->a->n.lost += (uint64_t)lost;
        al_backlog_add(d->a, -lost);
        kw_err_log("alerts: %lld deliveries of alerts the database did not take were still "
                   "pending at the end: lost",
                   (long long)lost);
    }
}

static void *thread_main(void *arg)
{
    struct al_deliver *d = arg;
    while (!d->stop) {
        if (d->a->cfg.syslog) syslog_drain(d->a);
        turn(d);
    }
    if (d->a->cfg.syslog) syslog_drain(d->a);
    shutdown_items(d);
    return NULL;
}

static void deliver_free(struct al_deliver *d)
{
    sqlite3_finalize(d->q_page);
    sqlite3_finalize(d->q_check);
    if (d->db) store_db_close(d->db);
    if (d->multi) curl_multi_cleanup(d->multi);
    pthread_mutex_destroy(&d->in_mu);
    free(d);
}

/* The read connection: loading earlier runs' rows and re-checking them.
 * Without it (a damaged or unreadable file) delivery still sends what
 * this run raises. */
static void open_reader(struct al_deliver *d)
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

enum kw_err al_deliver_start(struct alerts *a, struct al_deliver **out)
{
    struct al_deliver *d = calloc(1, sizeof *d);
    if (!d) return KW_E_NOMEM;
    d->a = a;
    d->rng = (uint64_t)kw_ts_wall() ^ (uint64_t)(uintptr_t)d;
    pthread_mutex_init(&d->in_mu, NULL);
    kw_ts now = kw_ts_wall();
    for (unsigned i = 0; i < a->cfg.n_sinks; i++) {
        d->sinks[i].tokens = a->cfg.sinks[i].burst ? a->cfg.sinks[i].burst : 5;
        d->sinks[i].refilled = now;
    }
    open_reader(d);
    enum kw_err e = KW_E_OK;
    if (!(d->multi = curl_multi_init())) e = KW_E_NOMEM;
    if (e == KW_E_OK && pthread_create(&d->thr, NULL, thread_main, d) != 0) e = KW_E_IO;
    if (e != KW_E_OK) {
        deliver_free(d);
        return e;
    }
    *out = d;
    return KW_E_OK;
}

void al_deliver_wake(struct al_deliver *d)
{
    curl_multi_wakeup(d->multi);
}

void al_deliver_stop(struct al_deliver *d)
{
    if (!d) return;
    d->stop = true;
    curl_multi_wakeup(d->multi);
    pthread_join(d->thr, NULL);
    dbw_flush(d->a->w); /* its update jobs point at d */
    deliver_free(d);
}
