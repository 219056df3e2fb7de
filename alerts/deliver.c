/* deliver: the delivery thread. It owns its own SQLite connection and a
 * libcurl multi handle; each turn it leases due outbox rows per sink
 * (next_attempt_at pushed past the request timeout, attempts + 1, in one
 * transaction), starts their requests, and records each answer: 2xx done,
 * permanent 4xx failed, everything else retried with full-jitter backoff
 * or after the 429's Retry-After (which also pauses the whole sink).
 *
 * The one thing to know: the lease IS the in-flight marker. A process that
 * dies mid-request leaves rows whose lease expires after timeout + 1 s, and
 * the next run (or a concurrent `alerts flush`) sends them again with the
 * same alert id: at least once, never lost. */
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

struct dl_job {
    struct dl_job *next;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    unsigned sink;
    bool digest;
    int64_t *rows, one_row;
    size_t n_rows;
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
};

struct al_deliver {
    struct alerts *a;
    sqlite3 *db;
    CURLM *multi;
    pthread_t thr;
    atomic_bool stop;
    struct dl_sink sinks[ALERTS_MAX_SINKS];
    struct dl_job *jobs; /* in flight */
    uint64_t rng;
    sqlite3_stmt *q_count, *q_due, *q_min, *q_lease, *q_state, *q_retry, *q_digest;
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
    if (j->rows != &j->one_row) free(j->rows);
    free(j);
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

/* ---- SQL ---- */

#define DUE_WHERE                                                                                  \
    " FROM alert_outbox o JOIN alerts a ON a.id=o.alert_id WHERE o.sink=?1 AND o.state=0 AND "     \
    "o.next_attempt_at<=?2"

static enum kw_err prepare(struct al_deliver *d)
{
    static const char *const sql[] = {
        "SELECT COUNT(*) FROM (SELECT 1" DUE_WHERE " LIMIT 100001)",
        "SELECT o.rowid, o.alert_id, o.attempts, a.record, a.tz" DUE_WHERE
        " ORDER BY o.next_attempt_at, o.rowid LIMIT ?3",
        "SELECT MIN(next_attempt_at) FROM alert_outbox WHERE sink=?1 AND state=0",
        "UPDATE alert_outbox SET attempts=attempts+1, next_attempt_at=?2, updated=?3 WHERE "
        "rowid=?1",
        "UPDATE alert_outbox SET state=?2, last_status=?3, last_error=?4, updated=?5 WHERE "
        "rowid=?1",
        "UPDATE alert_outbox SET next_attempt_at=?2, last_status=?3, last_error=?4, updated=?5 "
        "WHERE rowid=?1",
        "SELECT o.rowid, a.kind, a.who, a.findings, a.ts" DUE_WHERE " ORDER BY o.rowid LIMIT ?3",
    };
    sqlite3_stmt **st[] = {&d->q_count, &d->q_due,   &d->q_min,   &d->q_lease,
                           &d->q_state, &d->q_retry, &d->q_digest};
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++)
        if (sqlite3_prepare_v2(d->db, sql[i], -1, st[i], NULL) != SQLITE_OK) {
            kw_err_log("alerts: delivery SQL: %s", sqlite3_errmsg(d->db));
            return KW_E_DB;
        }
    return KW_E_OK;
}

static int64_t q_int(sqlite3_stmt *st, const char *sink, kw_ts now)
{
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

static void lease(struct al_deliver *d, int64_t row, kw_ts now)
{
    sqlite3_stmt *st = d->q_lease;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, row);
    sqlite3_bind_int64(st, 2, now + (kw_ts)(d->a->cfg.timeout_ms + 1000) * 1000);
    sqlite3_bind_int64(st, 3, now);
    if (sqlite3_step(st) != SQLITE_DONE) d->a->n.db_errors++;
}

static void set_state(struct al_deliver *d, int64_t row, enum al_state state, long status,
                      const char *err, kw_ts now)
{
    sqlite3_stmt *st = d->q_state;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, row);
    sqlite3_bind_int(st, 2, state);
    sqlite3_bind_int64(st, 3, status);
    sqlite3_bind_text(st, 4, err, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    if (sqlite3_step(st) != SQLITE_DONE) d->a->n.db_errors++;
}

static void set_retry(struct al_deliver *d, int64_t row, kw_ts at, long status, const char *err,
                      kw_ts now)
{
    sqlite3_stmt *st = d->q_retry;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, row);
    sqlite3_bind_int64(st, 2, at);
    sqlite3_bind_int64(st, 3, status);
    sqlite3_bind_text(st, 4, err, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    if (sqlite3_step(st) != SQLITE_DONE) d->a->n.db_errors++;
}

/* ---- scheduling ---- */

static void refill(struct dl_sink *s, const struct alerts_sink_cfg *c, kw_ts now)
{
    double burst = c->burst ? c->burst : 5;
    s->tokens += (double)(now - s->refilled) / 60e6 * c->rate_per_min;
    if (s->tokens > burst) s->tokens = burst;
    s->refilled = now;
}

struct dl_row {
    int64_t row;
    unsigned attempts;
    char id[AL_ID_LEN + 1];
    char tz[64];
    char *record;
};

static void start_single(struct al_deliver *d, unsigned i, struct dl_row *r, kw_ts now)
{
    const struct alerts_sink_cfg *c = &d->a->cfg.sinks[i];
    struct dl_job *j = calloc(1, sizeof *j);
    if (!j) return;
    j->sink = i;
    j->one_row = r->row;
    j->rows = &j->one_row;
    j->n_rows = 1;
    snprintf(j->alert_id, sizeof j->alert_id, "%s", r->id);
    j->attempts = r->attempts + 1;
    if (c->kind == ALERTS_SINK_SLACK) {
        json_t *rec = json_loads(r->record, 0, NULL);
        json_t *msg = rec ? al_slack_alert(rec, r->tz) : NULL;
        j->body = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
        json_decref(msg);
        json_decref(rec);
    } else {
        j->body = r->record;
        r->record = NULL;
    }
    if (!j->body) {
        /* an unreadable stored record can never be sent: fail it visibly */
        set_state(d, j->one_row, AL_FAILED, 0, "stored record unreadable", now);
        d->a->n.failed_permanent++;
        d->a->n.sink_failed[j->sink]++;
        d->a->n.backlog--;
        job_free(j);
        return;
    }
    lease(d, j->one_row, now);
    if (!job_start(d, j)) job_free(j); /* the lease expires and the row is retried */
}

/* Reads up to k due rows of sink i (the statement is reset before any of
 * them is leased: no UPDATE under a live SELECT cursor). */
static size_t fetch_due(struct al_deliver *d, unsigned i, kw_ts now, int64_t k, struct dl_row *out)
{
    sqlite3_stmt *st = d->q_due;
    size_t n = 0;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, d->a->sink_keys[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, k);
    while ((int64_t)n < k && sqlite3_step(st) == SQLITE_ROW) {
        struct dl_row *r = &out[n];
        r->row = sqlite3_column_int64(st, 0);
        snprintf(r->id, sizeof r->id, "%s", (const char *)sqlite3_column_text(st, 1));
        r->attempts = (unsigned)sqlite3_column_int(st, 2);
        const char *rec = (const char *)sqlite3_column_text(st, 3);
        const char *tz = (const char *)sqlite3_column_text(st, 4);
        snprintf(r->tz, sizeof r->tz, "%s", tz ? tz : "");
        r->record = strdup(rec ? rec : "");
        if (r->record) n++;
    }
    sqlite3_reset(st);
    return n;
}

static void start_digest(struct al_deliver *d, unsigned i, kw_ts now)
{
    struct dl_job *j = calloc(1, sizeof *j);
    struct al_digest *dg = calloc(1, sizeof *dg);
    size_t cap = 256;
    if (j) j->rows = malloc(cap * sizeof *j->rows);
    if (!j || !dg || !j->rows) {
        free(dg);
        if (j && !j->rows) j->rows = &j->one_row;
        job_free(j);
        return;
    }
    j->sink = i;
    j->digest = true;
    sqlite3_stmt *st = d->q_digest;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, d->a->sink_keys[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, DL_DIGEST_MAX);
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (j->n_rows == cap) {
            int64_t *n = realloc(j->rows, 2 * cap * sizeof *n);
            if (!n) break;
            j->rows = n;
            cap *= 2;
        }
        j->rows[j->n_rows++] = sqlite3_column_int64(st, 0);
        al_digest_add(dg, (const char *)sqlite3_column_text(st, 1),
                      (const char *)sqlite3_column_text(st, 2),
                      (uint64_t)sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4));
    }
    sqlite3_reset(st);
    json_t *msg = al_slack_digest(dg);
    j->body = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    free(dg);
    snprintf(j->alert_id, sizeof j->alert_id, "digest");
    if (!j->body || j->n_rows == 0) {
        job_free(j);
        return;
    }
    for (size_t k = 0; k < j->n_rows; k++)
        lease(d, j->rows[k], now);
    if (!job_start(d, j)) job_free(j);
}

static kw_ts min_ts(kw_ts a, kw_ts b)
{
    return a < b ? a : b;
}

/* Starts what sink i may send now; lowers *next to when it may send more. */
static void dispatch(struct al_deliver *d, unsigned i, kw_ts now, kw_ts *next)
{
    struct dl_sink *s = &d->sinks[i];
    const struct alerts_sink_cfg *c = &d->a->cfg.sinks[i];
    const char *key = d->a->sink_keys[i];
    unsigned max_inflight = d->a->cfg.max_inflight ? d->a->cfg.max_inflight : 8;
    if (s->paused_until > now) {
        *next = min_ts(*next, s->paused_until);
        return;
    }
    if (s->digest_inflight || s->inflight >= max_inflight) return;
    int64_t due = q_int(d->q_count, key, now);
    if (due <= 0) {
        int64_t m = q_int(d->q_min, key, now);
        if (m > 0) *next = min_ts(*next, m);
        return;
    }
    bool limited = c->rate_per_min > 0, storm = false;
    int64_t k = due, room = max_inflight - s->inflight;
    if (limited) {
        refill(s, c, now);
        if (s->tokens < 1) {
            *next = min_ts(*next, now + (kw_ts)((1 - s->tokens) * 60e6 / c->rate_per_min) + 1);
            return;
        }
        if (c->kind == ALERTS_SINK_SLACK && due > (int64_t)s->tokens) {
            /* a Slack storm: all but one token individually, the rest as one
             * digest, at most one digest per interval; rows wait meanwhile */
            kw_ts at = s->last_digest + (kw_ts)d->a->cfg.digest_interval_ms * 1000;
            if (s->last_digest && now < at) {
                *next = min_ts(*next, at);
                return;
            }
            storm = true;
            k = (int64_t)s->tokens - 1;
        } else if (due > (int64_t)s->tokens) {
            k = (int64_t)s->tokens; /* webhooks are paced, never summarised */
        }
    }
    if (k > room) k = room;
    struct dl_row rows[64];
    if (k > 64) k = 64;
    size_t n = k > 0 ? fetch_due(d, i, now, k, rows) : 0;
    for (size_t r = 0; r < n; r++) {
        start_single(d, i, &rows[r], now);
        free(rows[r].record);
        s->tokens -= 1;
    }
    if (storm && s->inflight < max_inflight) {
        start_digest(d, i, now);
        s->tokens -= 1;
        s->last_digest = now;
    }
}

/* ---- answers ---- */

static void backlog_done(struct al_deliver *d, int64_t n)
{
    pthread_mutex_lock(&d->a->bl_mu);
    d->a->n.backlog -= n;
    pthread_cond_broadcast(&d->a->bl_cv);
    pthread_mutex_unlock(&d->a->bl_mu);
}

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
    if (act == AL_DONE) {
        for (size_t k = 0; k < j->n_rows; k++)
            set_state(d, j->rows[k], j->digest ? AL_DIGESTED : AL_DELIVERED, status, "", now);
        if (j->digest) {
            a->n.digests++;
            a->n.digested += j->n_rows;
        } else {
            a->n.delivered++;
        }
        a->n.sink_delivered[j->sink] += j->n_rows;
        backlog_done(d, (int64_t)j->n_rows);
    } else if (act == AL_PERMANENT) {
        for (size_t k = 0; k < j->n_rows; k++)
            set_state(d, j->rows[k], AL_FAILED, status, err, now);
        a->n.failed_permanent += j->n_rows;
        a->n.sink_failed[j->sink] += j->n_rows;
        kw_warn("alerts: %s to sink %s failed for good: %s", j->digest ? "digest" : j->alert_id,
                a->sink_keys[j->sink], err);
        backlog_done(d, (int64_t)j->n_rows);
    } else {
        kw_ts at = now + retry_delay(d, j, status, now);
        for (size_t k = 0; k < j->n_rows; k++)
            set_retry(d, j->rows[k], at, status, err, now);
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

static void collect(struct al_deliver *d)
{
    CURLMsg *m;
    int left;
    bool began = false;
    while ((m = curl_multi_info_read(d->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        struct dl_job *j = NULL;
        long status = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        int code = (int)m->data.result;
        unlink_job(d, j);
        if (!began) began = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
        finish(d, j, code, status, kw_ts_wall());
        job_free(j);
    }
    if (began && sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        d->a->n.db_errors++;
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
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
    if (sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        d->a->n.db_errors++;
    } else {
        for (unsigned i = 0; i < d->a->cfg.n_sinks; i++)
            dispatch(d, i, now, &next);
        if (sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            d->a->n.db_errors++;
            sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        }
    }
    int running = 0;
    curl_multi_perform(d->multi, &running);
    collect(d);
    kw_ts wait = (next - kw_ts_wall()) / 1000;
    if (wait > DL_TICK_MS) wait = DL_TICK_MS;
    if (wait < 0) wait = 0;
    curl_multi_poll(d->multi, NULL, 0, (int)wait, NULL);
    curl_multi_perform(d->multi, &running);
    collect(d);
}

static void *thread_main(void *arg)
{
    struct al_deliver *d = arg;
    while (!d->stop) {
        if (d->a->cfg.syslog) syslog_drain(d->a);
        turn(d);
    }
    if (d->a->cfg.syslog) syslog_drain(d->a);
    /* abandoned requests: release their leases so the next run resends at once */
    kw_ts now = kw_ts_wall();
    bool began = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
    while (d->jobs) {
        struct dl_job *j = d->jobs;
        unlink_job(d, j);
        for (size_t k = 0; k < j->n_rows; k++)
            set_retry(d, j->rows[k], now, 0, "abandoned at shutdown", now);
        job_free(j);
    }
    if (began) sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
    return NULL;
}

static void deliver_free(struct al_deliver *d)
{
    sqlite3_stmt *st[] = {d->q_count, d->q_due,   d->q_min,   d->q_lease,
                          d->q_state, d->q_retry, d->q_digest};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
        sqlite3_finalize(st[i]);
    if (d->db) store_db_close(d->db);
    if (d->multi) curl_multi_cleanup(d->multi);
    free(d);
}

enum kw_err al_deliver_start(struct alerts *a, struct al_deliver **out)
{
    struct al_deliver *d = calloc(1, sizeof *d);
    if (!d) return KW_E_NOMEM;
    d->a = a;
    d->rng = (uint64_t)kw_ts_wall() ^ (uint64_t)(uintptr_t)d;
    kw_ts now = kw_ts_wall();
    for (unsigned i = 0; i < a->cfg.n_sinks; i++) {
        d->sinks[i].tokens = a->cfg.sinks[i].burst ? a->cfg.sinks[i].burst : 5;
        d->sinks[i].refilled = now;
    }
    enum kw_err e = store_db_open(a->cfg.db_path, &d->db);
    if (e == KW_E_OK) e = prepare(d);
    if (e == KW_E_OK && !(d->multi = curl_multi_init())) e = KW_E_NOMEM;
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
    deliver_free(d);
}
