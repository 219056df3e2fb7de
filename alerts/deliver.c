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
 * not be written). An answer keeps its request slot until the writer has
 * committed it (except while the lock is held elsewhere), which bounds the
 * repeats after a kill by max_inflight. The lease in the outbox row is still the in-flight
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

#include "al_util.h"
#include "deliver_int.h"
#include "kw_log.h"
#include "kw_thread.h"
#include "store.h"

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
            dl_item_free(d, it);
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
        dl_upd_add(d, it, DL_STATE, AL_FAILED, 0, 0, "stored record unreadable");
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
    dl_upd_add(d, it, DL_LEASE, 0, 0, now + (kw_ts)(d->a->cfg.timeout_ms + 1000) * 1000, NULL);
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
        if (!due(d, it, now, next, &drop) || (it->rowid && !dl_still_ours(d, it, now))) continue;
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
        dl_upd_add(d, it, DL_LEASE, 0, 0, now + (kw_ts)(d->a->cfg.timeout_ms + 1000) * 1000, NULL);
    }
    if (!job_start(d, j)) {
        for (size_t k = 0; k < j->n_items; k++)
            j->items[k]->inflight = false;
        job_free(j);
    }
}

/* Answers of the sink not yet committed: they hold a request slot, so a
 * process killed at any moment repeats at most max_inflight deliveries per
 * sink. Not while another connection holds the database's lock: alerts go
 * out at once even then (a kill in that stretch may repeat more). */
static unsigned in_doubt(struct al_deliver *d, struct dl_sink *s)
{
    return d->a->w && dbw_locked(d->a->w) ? 0 : atomic_load(&s->doubt);
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
    unsigned busy = s->inflight + in_doubt(d, s);
    if (s->digest_inflight || busy >= max_inflight) {
        scan(d, i, now, next, cand, 0);
        return;
    }
    int64_t ndue = (int64_t)scan(d, i, now, next, cand, 64);
    if (ndue <= 0) return;
    bool limited = c->rate_per_min > 0, storm = false;
    int64_t k = ndue, room = (int64_t)max_inflight - busy;
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
        if (it->rowid && !dl_still_ours(d, it, now)) continue;
        start_single(d, it, now);
        s->tokens -= 1;
    }
    if (storm && s->inflight + in_doubt(d, s) < max_inflight) {
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
            dl_upd_add(d, it, DL_STATE, j->digest ? AL_DIGESTED : AL_DELIVERED, status, 0, "");
            it->done = it->settled = true;
        } else if (act == AL_PERMANENT) {
            dl_upd_add(d, it, DL_STATE, AL_FAILED, status, 0, err);
            al_note_failure(a, it->m->id, it->sink, err);
            it->done = it->settled = true;
        } else {
            dl_upd_add(d, it, DL_RETRY, 0, status, at, err);
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
    dl_take_inbox(d);
    if (d->db) dl_load_page(d);
    if (now >= d->next_retention) { /* alerts_new queued the first pass */
        if (d->next_retention) al_retention(d->a);
        d->next_retention = now + KW_TS_SEC(3600);
    }
    for (unsigned i = 0; i < d->a->cfg.n_sinks; i++)
        dispatch(d, i, now, &next);
    int running = 0;
    curl_multi_perform(d->multi, &running);
    collect(d);
    dl_upd_submit(d);
    kw_ts wait = (next - kw_ts_wall()) / 1000;
    if (wait > DL_TICK_MS) wait = DL_TICK_MS;
    if (wait < 0) wait = 0;
    curl_multi_poll(d->multi, NULL, 0, (int)wait, NULL);
    curl_multi_perform(d->multi, &running);
    collect(d);
    dl_upd_submit(d);
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
            dl_upd_add(d, j->items[k], DL_RETRY, 0, 0, now, "abandoned at shutdown");
        }
        job_free(j);
    }
    dl_upd_submit(d);
    dl_take_inbox(d);
    int64_t lost = 0;
    for (unsigned i = 0; i < ALERTS_MAX_SINKS; i++) {
        for (struct dl_item *it = d->sinks[i].head, *nx; it; it = nx) {
            nx = it->next;
            if (!it->done && atomic_load(&it->m->verdict) == AL_V_UNSTORED) lost++;
            dl_item_free(d, it);
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
    kw_thread_role("kw-alerts", false);
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
    dl_open_reader(d);
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
