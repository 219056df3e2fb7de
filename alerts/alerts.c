/* alerts: the judge-side half of the alert pipeline (see alerts.h):
 * suppression windows in a fixed pool found through an open-addressing
 * index, the EVE record,
 * the outbox insert, the human line and the syslog hand-off.
 *
 * The one thing to know: suppression runs on PACKET time. The first
 * finding of a (who, kind, subject) alerts at once with count 1; repeats
 * inside suppress_window only count; when the window is closed (a later
 * finding past its end, a sweep, eviction, drain or destroy) the repeats
 * not yet reported go out as one "N more" update alert with its own id. */
#include <assert.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "alerts_int.h"
#include "al_util.h"
#include "kw_cond.h"
#include "kw_hash.h"
#include "kw_jw.h"
#include "kw_log.h"
#include "store.h"

void alerts_sink_default(struct alerts_sink_cfg *s, enum alerts_sink_kind kind)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->min_severity = 3;
    s->rate_per_min = kind == ALERTS_SINK_SLACK ? 20 : 0;
    s->burst = 5;
}

void alerts_config_default(struct alerts_config *c)
{
    memset(c, 0, sizeof *c);
    c->suppress_window = KW_TS_SEC(3600);
    c->drain_timeout = KW_TS_SEC(10);
    c->timeout_ms = 10000;
    c->max_attempts = 0;
    c->backoff_base_ms = 1000;
    c->backoff_cap_ms = 300000;
    c->retry_after_max_ms = 3600000;
    c->digest_interval_ms = 60000;
    c->dedup_max = 4096;
    c->max_inflight = 8;
}

void alerts_sink_key(const struct alerts_sink_cfg *s, char out[40])
{
    char h[65];
    al_sha256_hex(s->url, strlen(s->url), h);
    snprintf(out, 40, "%s:%.16s", s->kind == ALERTS_SINK_SLACK ? "slack" : "webhook", h);
}

/* ---- suppression windows ----
 *
 * The windows (~1 KB each) live in a pool of dedup_max; an open-addressing
 * index of 8-byte slots (twice as many, linear probing) finds them. Probing
 * and the backward shift on removal touch only the index, so a window is
 * never moved and a fresh one is first touched by the write that fills it
 * (the free windows are handed out from the bottom up, and walks over the
 * pool stop at the highest one handed out so far).
 * (The windows used to be the table itself: each insert probed 1 KB slots,
 * its first read of a never-used page mapped the shared zero page and the
 * write that followed took a copy-on-write fault with a TLB shootdown on
 * every core; a storm of distinct alerts spent ~3 % of the packet thread in
 * those faults, and removal copied whole windows.) */

static uint64_t hash_of(const uint8_t key[32])
{
    /* the key is a SHA-256 of fields a sender partly chooses, so anyone
     * can compute it: place it under the process key (kw_hash.h) */
    return kw_siphash(kw_hkey_process(), key, 32);
}

/* The index slot holding window `w` (it is there: callers found it). */
static size_t slot_of_window(const struct alerts *a, uint32_t w)
{
    size_t mask = a->win_cap - 1;
    size_t i = (size_t)hash_of(a->win[w].key) & mask;
    while (a->win_ix[i].w != w + 1)
        i = (i + 1) & mask;
    return i;
}

struct al_window *al_win_find(struct alerts *a, const uint8_t key[32])
{
    uint64_t h = hash_of(key);
    size_t mask = a->win_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const struct al_slot *s = &a->win_ix[i];
        if (!s->w) return NULL;
        if (s->tag == (uint32_t)h && memcmp(a->win[s->w - 1].key, key, 32) == 0)
            return &a->win[s->w - 1];
    }
}

struct al_window *al_win_insert(struct alerts *a, const uint8_t key[32])
{
    uint64_t h = hash_of(key);
    size_t mask = a->win_cap - 1, i = (size_t)h & mask;
    while (a->win_ix[i].w)
        i = (i + 1) & mask;
    assert(a->win_nfree > 0); /* callers evict at win_max */
    uint32_t w = a->win_free[--a->win_nfree];
    if (w >= a->win_hwm) a->win_hwm = w + 1;
    a->win_ix[i] = (struct al_slot){.tag = (uint32_t)h, .w = w + 1};
    struct al_window *d = &a->win[w];
    memset(d, 0, sizeof *d);
    d->used = true;
    memcpy(d->key, key, 32);
    a->win_used++;
    return d;
}

/* Backward-shift deletion keeps linear probing correct without tombstones;
 * the slot's tag holds the low 32 bits of the hash, enough for its home
 * (win_cap <= 2^32). */
void al_win_remove(struct alerts *a, struct al_window *win)
{
    uint32_t w = (uint32_t)(win - a->win);
    size_t mask = a->win_cap - 1, i = slot_of_window(a, w), j = i;
    a->win_ix[i].w = 0;
    win->used = false;
    a->win_free[a->win_nfree++] = w;
    a->win_used--;
    for (;;) {
        j = (j + 1) & mask;
        if (!a->win_ix[j].w) return;
        size_t home = a->win_ix[j].tag & mask;
        /* move j back to i when its home is not in (i, j] circularly */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            a->win_ix[i] = a->win_ix[j];
            a->win_ix[j].w = 0;
            i = j;
        }
    }
}

/* Empties the table (state load). */
void al_win_clear(struct alerts *a)
{
    /* through the index: a pool page no window reached stays untouched */
    for (size_t i = 0; i < a->win_cap; i++)
        if (a->win_ix[i].w) a->win[a->win_ix[i].w - 1].used = false;
    memset(a->win_ix, 0, a->win_cap * sizeof *a->win_ix);
    for (uint32_t k = 0; k < a->win_max; k++)
        a->win_free[k] = a->win_max - 1 - k; /* handed out from 0 up */
    a->win_nfree = a->win_max;
    a->win_used = 0;
    a->win_hwm = 0;
}

/* ---- emitting ---- */

static void syslog_push(struct alerts *a, const char *line)
{
    pthread_mutex_lock(&a->sl_mu);
    if (a->sl_len == AL_SYSLOG_RING) {
        a->n.syslog_dropped++;
    } else {
        /* cut to the ring's line size: syslog lines are short by design */
        char *dst = a->sl_ring[(a->sl_head + a->sl_len) % AL_SYSLOG_RING];
        size_t l = strnlen(line, AL_SYSLOG_LINE - 1);
        memcpy(dst, line, l);
        dst[l] = 0;
        a->sl_len++;
    }
    pthread_mutex_unlock(&a->sl_mu);
}

/* Hands the record written in w (a->rec) to EVE, the outbox, stdout and
 * syslog. */
static void emit(struct alerts *a, const struct kw_jw *w, const struct al_line *hl, const char *who,
                 const char *subject, uint64_t findings, const char *tz, kw_ts ts)
{
    a->n.alerts++;
    a->n.by_kind[hl->kind < ALERT__COUNT ? hl->kind : 0]++;
    a->n.by_severity[hl->sev >= 1 && hl->sev <= 3 ? hl->sev : 3]++;
    /* one text for the outbox and EVE */
    char *body = NULL;
    if (kw_jw_ok(w)) {
        kw_eve_write_text(a->eve, w->buf, w->len);
        if ((body = malloc(w->len + 1))) memcpy(body, w->buf, w->len + 1);
    } else {
        /* never a cut record: say which alert is missing (counted lost) */
        kw_warn("alerts: the record of alert %s (%s) is larger than %zu bytes; not written", hl->id,
                alert_kind_name(hl->kind), (size_t)AL_RECORD_CAP);
    }
    if (body) {
        al_route(a, hl->id, body, hl->kind, hl->sev, who, subject, findings, tz, ts); /* takes */
    } else {
        a->n.not_stored++;
        a->n.lost++;
    }
    if (a->cfg.stdout_alerts || a->cfg.syslog) {
        char line[1024];
        al_human_line(hl, line, sizeof line);
        if (a->cfg.stdout_alerts) {
            FILE *f = a->cfg.human_stderr ? stderr : stdout;
            fprintf(f, "%s\n", line);
            fflush(f);
        }
        if (a->cfg.syslog) syslog_push(a, line);
    }
    kw_eve_push(a->eve); /* an alert goes to disk at once, not with the next batch */
}

/* The "N more" follow-up record of window w, into jw. */
static void write_update(struct kw_jw *jw, const struct al_window *w, uint64_t more, const char *id,
                         const char *summary, const char *last)
{
    char t0[40];
    kw_jw_obj_begin(jw, NULL);
    kw_jw_str(jw, "timestamp", last);
    kw_jw_str(jw, "event_type", "alert");
    kw_jw_obj_begin(jw, "alert");
    kw_jw_str(jw, "kind", alert_kind_name(w->kind));
    kw_jw_str(jw, "signature", al_kind_signature(w->kind));
    kw_jw_str(jw, "category", alert_kind_category(w->kind));
    kw_jw_int(jw, "severity", w->severity);
    kw_jw_str_opt(jw, "summary", summary);
    kw_jw_str_opt(jw, "subject", w->subject);
    kw_jw_int(jw, "count", (int64_t)w->count);
    kw_jw_int(jw, "more", (int64_t)more);
    kw_jw_str(jw, "first_seen", kw_ts_format(w->start, t0, sizeof t0));
    kw_jw_str(jw, "last_seen", last);
    kw_jw_str(jw, "id", id);
    kw_jw_str(jw, "update_of", w->id);
    kw_jw_obj_end(jw);
    if (w->ident_id[0]) {
        /* the same fields as kw_eve_jw_identity writes */
        kw_jw_obj_begin(jw, "identity");
        kw_jw_str_opt(jw, "id", w->ident_id);
        kw_jw_str_opt(jw, "name", w->ident_name);
        kw_jw_str_opt(jw, "kind", w->ident_kind);
        kw_jw_str_opt(jw, "attribution", w->ident_via);
        struct kw_identity_ref ref = {0};
        snprintf(ref.via, sizeof ref.via, "%s", w->ident_via);
        if (kw_identity_claimed(&ref)) kw_jw_bool(jw, "claimed", true);
        kw_jw_obj_end(jw);
    }
    if (w->fp[0]) {
        kw_jw_obj_begin(jw, "credential");
        kw_jw_str_opt(jw, "fingerprint", w->fp);
        kw_jw_str_opt(jw, "hint", w->hint);
        kw_jw_obj_end(jw);
    }
    kw_jw_obj_end(jw);
}

/* The "N more" follow-up of a window whose repeats were not reported. */
static void emit_update(struct alerts *a, struct al_window *w)
{
    if (w->count <= w->reported) return;
    uint64_t more = w->count - w->reported;
    char extra[48], id[AL_ID_LEN + 1], t0[40], t1[40], summary[640];
    snprintf(extra, sizeof extra, "more:%llu", (unsigned long long)w->count);
    al_alert_id(w->kind, w->who_key, w->subject, w->start, extra, id);
    kw_ts_format_rfc3339(w->start, t0, sizeof t0);
    snprintf(summary, sizeof summary, "%llu more %s by %s on %s since %s (%llu in all)",
             (unsigned long long)more, alert_kind_name(w->kind), w->who, w->subject, t0,
             (unsigned long long)w->count);
    kw_ts_format(w->last, t1, sizeof t1);
    struct kw_jw jw;
    kw_jw_init(&jw, a->rec, AL_RECORD_CAP);
    write_update(&jw, w, more, id, summary, t1);
    a->n.updates++;
    w->reported = w->count;
    struct al_line hl = {.ts = t1,
                         .sev = w->severity,
                         .kind = w->kind,
                         .who = w->ident_id,
                         .summary = summary,
                         .summary_len = strlen(summary),
                         .id = id};
    emit(a, &jw, &hl, w->who, w->subject, more, w->tz, w->last);
}

static int by_start_id(const void *x, const void *y)
{
    const struct al_window *a = *(struct al_window *const *)x, *b = *(struct al_window *const *)y;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    return strcmp(a->id, b->id);
}

/* The updates of the windows that are due, in the order of their start
 * (then id): the table's order follows its hash key, drawn per process, and
 * a replay must write the same EVE lines in the same order every time. */
static void emit_updates_sorted(struct alerts *a, kw_ts now, bool all)
{
    if (!a->win_used) return;
    struct al_window **due = malloc(a->win_used * sizeof *due);
    size_t n = 0;
    for (size_t i = 0; i < a->win_hwm; i++) {
        struct al_window *w = &a->win[i];
        if (w->used && w->count > w->reported &&
            (all || now >= w->start + a->cfg.suppress_window)) {
            if (!due) { /* out of memory: table order, nothing lost */
                emit_update(a, w);
                continue;
            }
            due[n++] = w;
        }
    }
    if (due) {
        qsort(due, n, sizeof *due, by_start_id);
        for (size_t i = 0; i < n; i++)
            emit_update(a, due[i]);
        free(due);
    }
}

static void sweep(struct alerts *a, kw_ts now, bool all)
{
    emit_updates_sorted(a, now, all); /* then the removals emit nothing more */
    for (size_t i = 0; i < a->win_hwm; i++) {
        struct al_window *w = &a->win[i];
        if (w->used && (all || now >= w->start + a->cfg.suppress_window)) {
            emit_update(a, w);
            al_win_remove(a, w);
        }
    }
}

/* ---- the windows by age (alerts_int.h) ----
 *
 * Evicting the oldest window used to scan the whole table (2 x dedup_max
 * slots of ~940 bytes) for every alert once dedup_max windows were open:
 * a storm of distinct alerts (40,000 unknown credentials, each its own
 * window) spent 7.5 s of an 8.1 s run in that scan. */

static void age_down(struct al_age *h, unsigned n, unsigned i)
{
    for (;;) {
        unsigned l = 2 * i + 1, m = i;
        if (l < n && h[l].start < h[m].start) m = l;
        if (l + 1 < n && h[l + 1].start < h[m].start) m = l + 1;
        if (m == i) return;
        struct al_age t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* The entry's window is open, with this start. */
static struct al_window *age_live(struct alerts *a, const struct al_age *e)
{
    struct al_window *w = al_win_find(a, e->key);
    return w && w->start == e->start ? w : NULL;
}

/* Drops the entries of windows that are gone, then restores the heap. */
static void age_compact(struct alerts *a)
{
    unsigned n = 0;
    for (unsigned i = 0; i < a->age_n; i++)
        if (age_live(a, &a->age[i])) a->age[n++] = a->age[i];
    a->age_n = n;
    for (unsigned i = n / 2; i-- > 0;)
        age_down(a->age, n, i);
}

void al_age_reset(struct alerts *a)
{
    a->age_n = 0;
    a->age_lost = false;
}

void al_age_push(struct alerts *a, const struct al_window *w)
{
    if (a->age_n == a->age_cap && a->age_cap >= 4 * a->win_max)
        age_compact(a); /* at most win_max are open: room for 3 x win_max more */
    if (a->age_n == a->age_cap) {
        unsigned cap = a->age_cap ? 2 * a->age_cap : 64;
        struct al_age *h = realloc(a->age, cap * sizeof *h);
        if (!h) {
            a->age_lost = true;
            return;
        }
        a->age = h;
        a->age_cap = cap;
    }
    struct al_age e = {.start = w->start};
    memcpy(e.key, w->key, sizeof e.key);
    unsigned i = a->age_n++;
    while (i > 0 && a->age[(i - 1) / 2].start > e.start) {
        a->age[i] = a->age[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    a->age[i] = e;
}

static void evict_oldest(struct alerts *a)
{
    struct al_window *old = NULL;
    while (!a->age_lost && a->age_n && !old) {
        struct al_age top = a->age[0];
        a->age[0] = a->age[--a->age_n];
        age_down(a->age, a->age_n, 0);
        old = age_live(a, &top);
    }
    if (!old) /* the heap missed a window (no memory): the table says */
        for (size_t i = 0; i < a->win_hwm; i++)
            if (a->win[i].used && (!old || a->win[i].start < old->start)) old = &a->win[i];
    if (old) {
        emit_update(a, old);
        al_win_remove(a, old);
        a->n.dedup_evicted++;
    }
}

static void window_fill(struct al_window *w, const struct alert_finding *f, int sev,
                        const char *who_key, const char *who)
{
    w->kind = (uint8_t)f->kind;
    w->severity = (uint8_t)sev;
    w->start = w->last = f->ts;
    w->count = w->reported = 1;
    snprintf(w->who_key, sizeof w->who_key, "%s", who_key);
    snprintf(w->who, sizeof w->who, "%s", who);
    snprintf(w->subject, sizeof w->subject, "%s", f->subject);
    snprintf(w->tz, sizeof w->tz, "%s", f->timezone);
    if (f->txn) {
        snprintf(w->ident_id, sizeof w->ident_id, "%s", f->txn->identity.id);
        snprintf(w->ident_name, sizeof w->ident_name, "%s", f->txn->identity.name);
        snprintf(w->ident_kind, sizeof w->ident_kind, "%s", f->txn->identity.kind);
        snprintf(w->ident_via, sizeof w->ident_via, "%s", f->txn->identity.via);
        snprintf(w->fp, sizeof w->fp, "%s", f->txn->cred.fingerprint);
        snprintf(w->hint, sizeof w->hint, "%s", f->txn->cred.hint);
    }
    al_alert_id(f->kind, who_key, f->subject, f->ts, NULL, w->id);
}

/* The start of alerts_submit, under a->mu: counts the finding, runs a due
 * sweep, and when f repeats a window still open counts it there (true). */
static bool count_repeat(struct alerts *a, const struct alert_finding *f, const uint8_t key[32],
                         struct al_window **wp)
{
    a->n.findings++;
    if (f->ts >= a->sweep_at) {
        sweep(a, f->ts, false);
        kw_ts step =
            a->cfg.suppress_window < KW_TS_SEC(60) ? a->cfg.suppress_window : KW_TS_SEC(60);
        a->sweep_at = f->ts + step;
    }
    struct al_window *w = al_win_find(a, key);
    *wp = w;
    if (w && f->ts < w->start + a->cfg.suppress_window) {
        w->count++;
        if (f->ts > w->last) w->last = f->ts;
        a->n.suppressed++;
        return true;
    }
    return false;
}

/* Who a finding is about and its suppression window's key: the same for
 * alerts_repeat and alerts_submit, so a repeat is counted where submit
 * would count it. */
static void finding_key(struct alert_finding *f, char who_key[96], char who[72], uint8_t key[32])
{
    f->subject[sizeof f->subject - 1] = 0;
    al_who(f, who_key, 96, who, 72);
    al_window_key(f->kind, who_key, f->subject, key);
}

bool alerts_repeat(struct alerts *a, struct alert_finding *f)
{
    if ((unsigned)f->kind >= ALERT__COUNT) return false;
    char who_key[96], who[72];
    uint8_t key[32];
    finding_key(f, who_key, who, key);
    pthread_mutex_lock(&a->mu);
    bool rep = false;
    struct al_window *w = al_win_find(a, key);
    if (w && f->ts < w->start + a->cfg.suppress_window && f->ts < a->sweep_at)
        rep = count_repeat(a, f, key, &w); /* no sweep is due: exactly what submit would do */
    pthread_mutex_unlock(&a->mu);
    return rep;
}

void alerts_submit(struct alerts *a, struct alert_finding *f)
{
    json_t *ev = f->evidence;
    f->evidence = NULL;
    if ((unsigned)f->kind >= ALERT__COUNT) {
        json_decref(ev);
        return;
    }
    int sev =
        f->severity >= 1 && f->severity <= 3 ? f->severity : alert_kind_default_severity(f->kind);
    char who_key[96], who[72];
    uint8_t key[32];
    finding_key(f, who_key, who, key);

    pthread_mutex_lock(&a->mu);
    struct al_window *w;
    if (count_repeat(a, f, key, &w)) {
        pthread_mutex_unlock(&a->mu);
        json_decref(ev);
        return;
    }
    if (w) {
        emit_update(a, w);
        al_win_remove(a, w);
    }
    if (a->win_used >= a->win_max) evict_oldest(a);
    w = al_win_insert(a, key);
    window_fill(w, f, sev, who_key, who);
    al_age_push(a, w);
    f->evidence = ev;
    struct kw_jw jw;
    kw_jw_init(&jw, a->rec, AL_RECORD_CAP);
    al_record_write(&jw, f, sev, w->id);
    f->evidence = NULL;
    json_decref(ev);
    char tsb[40];
    struct al_line hl = {.ts = kw_ts_format(f->ts, tsb, sizeof tsb),
                         .sev = sev,
                         .kind = f->kind,
                         .who = f->txn ? f->txn->identity.id : "",
                         .t = f->txn,
                         .summary = f->summary,
                         .summary_len = strnlen(f->summary, sizeof f->summary),
                         .id = w->id};
    emit(a, &jw, &hl, who, f->subject, 1, f->timezone, f->ts);
    pthread_mutex_unlock(&a->mu);
}

static void flush_updates(struct alerts *a)
{
    pthread_mutex_lock(&a->mu);
    emit_updates_sorted(a, 0, true);
    pthread_mutex_unlock(&a->mu);
}

/* ---- life cycle ---- */

static enum kw_err check_config(const struct alerts_config *c)
{
    if (!c->db_path || !c->db_path[0]) {
        kw_err_log("alerts: no database path; set storage.database or --db");
        return KW_E_CONFIG;
    }
    if (c->n_sinks > ALERTS_MAX_SINKS) {
        kw_err_log("alerts: %u sinks configured, at most %d", c->n_sinks, ALERTS_MAX_SINKS);
        return KW_E_CONFIG;
    }
    for (unsigned i = 0; i < c->n_sinks; i++) {
        const char *u = c->sinks[i].url;
        if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
            kw_err_log("alerts: sink %u has no http(s) URL; give the full https://... URL", i + 1);
            return KW_E_CONFIG;
        }
        if (c->sinks[i].kind == ALERTS_SINK_WEBHOOK && !c->sinks[i].secret[0])
            kw_warn("alerts: webhook sink %u has no secret: its requests are not signed", i + 1);
    }
    return KW_E_OK;
}

static enum kw_err alloc_tables(struct alerts *a)
{
    a->win_max = a->cfg.dedup_max ? a->cfg.dedup_max : 4096;
    a->win_cap = 16;
    while (a->win_cap < 2 * a->win_max)
        a->win_cap *= 2;
    a->win = calloc(a->win_max, sizeof *a->win);
    a->win_ix = calloc(a->win_cap, sizeof *a->win_ix);
    a->win_free = calloc(a->win_max, sizeof *a->win_free);
    if (!a->win || !a->win_ix || !a->win_free) return KW_E_NOMEM;
    al_win_clear(a);
    a->sl_ring = calloc(AL_SYSLOG_RING, sizeof *a->sl_ring);
    a->rec = malloc(AL_RECORD_CAP);
    return a->sl_ring && a->rec ? KW_E_OK : KW_E_NOMEM;
}

enum kw_err alerts_new(const struct alerts_config *c, struct kw_eve *eve, struct alerts **out)
{
    enum kw_err e = check_config(c);
    if (e != KW_E_OK) return e;
    struct alerts *a = calloc(1, sizeof *a);
    if (!a) return KW_E_NOMEM;
    a->cfg = *c;
    a->eve = eve;
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->bl_mu, NULL);
    kw_cond_init(&a->bl_cv); /* alerts_drain's deadline is on the monotonic clock */
    pthread_mutex_init(&a->sl_mu, NULL);
    pthread_mutex_init(&a->fail_mu, NULL);
    for (unsigned i = 0; i < c->n_sinks; i++)
        alerts_sink_key(&c->sinks[i], a->sink_keys[i]);
    a->sweep_at = INT64_MIN;
    if ((e = alloc_tables(a)) != KW_E_OK || (e = al_ob_open(c->db_path, &a->db)) != KW_E_OK)
        goto fail;
    if (c->writer) {
        a->w = c->writer;
    } else {
        struct dbw_config wc = {.path = c->db_path};
        if ((e = dbw_new(&wc, &a->w)) != KW_E_OK) goto fail;
        a->own_w = true;
    }
    al_retention(a);
    int64_t orphaned = 0;
    a->n.backlog = al_ob_backlog(a->db, a->sink_keys, c->n_sinks, &orphaned);
    a->n.orphaned = orphaned;
    if (orphaned)
        kw_warn("alerts: %lld outbox rows belong to sinks that are no longer configured",
                (long long)orphaned);
    if (c->syslog)
        openlog("keywarden", LOG_PID | LOG_NDELAY,
                c->syslog_facility ? c->syslog_facility : LOG_AUTHPRIV);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!c->no_delivery && (e = al_deliver_start(a, &a->dl)) != KW_E_OK) goto fail;
    *out = a;
    return KW_E_OK;
fail:
    a->cfg.syslog = false;
    alerts_destroy(a);
    return e;
}

void alerts_drain(struct alerts *a)
{
    if (!a) return;
    flush_updates(a);
    /* the verdicts first (a locked database may hold them a while): the
     * drain timeout is for delivery, not for the lock */
    dbw_flush(a->w);
    kw_ts deadline = kw_mono_now() + a->cfg.drain_timeout;
    if (a->dl) {
        pthread_mutex_lock(&a->bl_mu);
        while (a->n.backlog > 0) {
            kw_ts now = kw_mono_now();
            if (now >= deadline) break;
            kw_ts until = now + KW_TS_SEC(1) / 10 < deadline ? now + KW_TS_SEC(1) / 10 : deadline;
            kw_cond_wait_until(&a->bl_cv, &a->bl_mu, until);
        }
        pthread_mutex_unlock(&a->bl_mu);
        al_deliver_stop(a->dl);
        a->dl = NULL;
    }
    dbw_flush(a->w);
}

void alerts_destroy(struct alerts *a)
{
    if (!a) return;
    if (a->win && a->w) flush_updates(a);
    if (a->dl) al_deliver_stop(a->dl);
    if (a->w) dbw_flush(a->w); /* store jobs point at a */
    if (a->own_w) dbw_destroy(a->w);
    if (a->db) store_db_close(a->db);
    if (a->cfg.syslog) closelog();
    free(a->win);
    free(a->win_ix);
    free(a->win_free);
    free(a->age);
    free(a->sl_ring);
    free(a->rec);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->bl_mu);
    pthread_cond_destroy(&a->bl_cv);
    pthread_mutex_destroy(&a->sl_mu);
    pthread_mutex_destroy(&a->fail_mu);
    memset(&a->cfg.sinks, 0, sizeof a->cfg.sinks); /* no secret left in freed memory */
    free(a);
}

void alerts_get_stats(struct alerts *a, struct alerts_stats *st)
{
    memset(st, 0, sizeof *st);
    st->findings = a->n.findings;
    st->alerts = a->n.alerts;
    st->suppressed = a->n.suppressed;
    st->delivered = a->n.delivered;
    st->failed_permanent = a->n.failed_permanent;
    st->retries = a->n.retries;
    int64_t b = a->n.backlog;
    st->backlog = b > 0 ? (uint64_t)b : 0;
    st->updates = a->n.updates;
    st->digests = a->n.digests;
    st->digested = a->n.digested;
    st->dedup_evicted = a->n.dedup_evicted;
    st->db_errors = a->n.db_errors;
    st->stored = a->n.stored;
    st->replayed = a->n.replayed;
    st->not_stored = a->n.not_stored;
    st->lost = a->n.lost;
    st->state_unsaved = a->n.state_unsaved;
    st->expired = a->n.expired;
    st->syslog_dropped = a->n.syslog_dropped;
    int64_t o = a->n.orphaned;
    st->orphaned = o > 0 ? (uint64_t)o : 0;
    st->filtered = a->n.filtered;
    for (int k = 0; k < ALERT__COUNT; k++)
        st->by_kind[k] = a->n.by_kind[k];
    for (int v = 0; v < 4; v++)
        st->by_severity[v] = a->n.by_severity[v];
    st->n_sinks = a->cfg.n_sinks;
    for (unsigned i = 0; i < a->cfg.n_sinks && i < ALERTS_MAX_SINKS; i++) {
        memcpy(st->sinks[i].key, a->sink_keys[i], sizeof st->sinks[i].key);
        st->sinks[i].delivered = a->n.sink_delivered[i];
        st->sinks[i].failed = a->n.sink_failed[i];
        st->sinks[i].retries = a->n.sink_retries[i];
    }
}

unsigned alerts_failures(struct alerts *a, struct alerts_failure *out, unsigned max)
{
    pthread_mutex_lock(&a->fail_mu);
    unsigned n = a->n_fails;
    for (unsigned i = 0; i < n && i < max && i < AL_FAIL_LIST; i++)
        out[i] = a->fails[i];
    pthread_mutex_unlock(&a->fail_mu);
    return n;
}
