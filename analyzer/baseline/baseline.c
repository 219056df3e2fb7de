/* baseline: the profile table and the observation flow (see baseline.h
 * for the contract and docs/baselines.md for the policies). This file
 * finds or makes a transaction's profile, applies the weekly decay, runs
 * the detections in order and owns the life cycle; each detection lives in
 * a file of its own (baseline_hours.c, baseline_endpoints.c,
 * baseline_sources.c, baseline_clients.c, baseline_grants.c,
 * baseline_volume.c) over the shared quarantine (baseline_quarantine.c),
 * so a change to one of them can be read and reviewed alone.
 *
 * The one thing to know: every decision is a pure function of the profile
 * and the transaction (packet time, no wall clock, no global state), so a
 * profile saved and loaded continues exactly as if it had never left
 * memory. Old behaviour fades by a weekly decay applied lazily when a
 * profile's epoch week changes. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_int.h"
#include "kw_hash.h"
#include "kw_log.h"
#include "store.h"
#include "kw_str.h"

#define DECAY_PER_WEEK 0.9f /* half-life ~6.6 weeks */

/* Thresholds per sensitivity (low, medium, high); see docs/baselines.md. */
const struct bl_sens bl_sens_tab[3] = {
    {2, 0.25f, 10.f, 10.f, 100.f, 50e6f, (kw_ts)120 * 1000000, false, true, 0},
    {1, 0.5f, 6.f, 5.f, 50.f, 10e6f, (kw_ts)300 * 1000000, true, false, 3},
    {1, 1.0f, 4.f, 3.f, 20.f, 2e6f, (kw_ts)600 * 1000000, true, false, 0},
};

static const enum alert_kind fkind[] = {ALERT_UNUSUAL_HOUR,    ALERT_NEW_ENDPOINT, ALERT_NEW_SOURCE,
                                        ALERT_VOLUME_SPIKE,    ALERT_KEY_SHARING,  ALERT_NEW_CLIENT,
                                        ALERT_SCOPE_ESCALATION};

uint64_t bl_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    return h ? h : 1;
}

/* ---- profile table ---- */

/* Profile keys carry credential fingerprints and claimed names anyone can
 * send, so the index is keyed (kw_hash.h); bl_hash stays the persisted
 * content hash and never places anything. The index is rebuilt on load. */
static uint64_t index_hash(const char *key)
{
    return kw_siphash(kw_hkey_process(), key, strlen(key));
}

long bl_find(const struct baseline *b, const char *key)
{
    uint64_t h = index_hash(key);
    for (uint32_t i = (uint32_t)h & (b->cap - 1), k = 0; k < b->cap;
         i = (i + 1) & (b->cap - 1), k++) {
        uint32_t v = b->index[i];
        if (!v) return -1;
        if (!strcmp(b->p[v - 1].key, key)) return (long)v - 1;
    }
    return -1;
}

static void index_put(struct baseline *b, uint32_t slot)
{
    uint64_t h = index_hash(b->p[slot].key);
    uint32_t i = (uint32_t)h & (b->cap - 1);
    while (b->index[i])
        i = (i + 1) & (b->cap - 1);
    b->index[i] = slot + 1;
}

/* ---- the eviction order of unattributed profiles ---- */

/* x goes before y: seen less recently, or as recently and a smaller key
 * (the key makes the order the same in every run). */
static bool lru_before(const struct baseline *b, uint32_t x, uint32_t y)
{
    const struct bl_profile *p = &b->p[x], *q = &b->p[y];
    return p->last_seen < q->last_seen || (p->last_seen == q->last_seen && strcmp(p->key, q->key) < 0);
}

static void lru_unlink(struct baseline *b, uint32_t i)
{
    uint32_t pv = b->lru_prev[i], nx = b->lru_next[i];
    if (pv != BL_LRU_NONE)
        b->lru_next[pv] = nx;
    else
        b->lru_head = nx;
    if (nx != BL_LRU_NONE)
        b->lru_prev[nx] = pv;
    else
        b->lru_tail = pv;
}

/* Links i at its place, looking from the most recent end: a profile just
 * seen goes there at once; only packets out of time order walk back. */
static void lru_place(struct baseline *b, uint32_t i)
{
    uint32_t at = b->lru_tail;
    while (at != BL_LRU_NONE && lru_before(b, i, at))
        at = b->lru_prev[at];
    uint32_t nx = at == BL_LRU_NONE ? b->lru_head : b->lru_next[at];
    b->lru_prev[i] = at;
    b->lru_next[i] = nx;
    if (at != BL_LRU_NONE)
        b->lru_next[at] = i;
    else
        b->lru_head = i;
    if (nx != BL_LRU_NONE)
        b->lru_prev[nx] = i;
    else
        b->lru_tail = i;
}

static int lru_cmp(const void *x, const void *y, void *arg)
{
    const struct baseline *b = arg;
    uint32_t a = *(const uint32_t *)x, c = *(const uint32_t *)y;
    return lru_before(b, a, c) ? -1 : lru_before(b, c, a) ? 1 : 0;
}

static void lru_rebuild(struct baseline *b)
{
    b->lru_head = b->lru_tail = BL_LRU_NONE;
    uint32_t n = 0, *order = b->lru_prev; /* sorted in place, then linked */
    for (uint32_t i = 0; i < b->n; i++)
        if (b->p[i].is_cred) order[n++] = i;
    qsort_r(order, n, sizeof *order, lru_cmp, b);
    for (uint32_t k = 0; k < n; k++)
        b->lru_next[order[k]] = k + 1 < n ? order[k + 1] : BL_LRU_NONE;
    b->lru_head = n ? order[0] : BL_LRU_NONE;
    b->lru_tail = n ? order[n - 1] : BL_LRU_NONE;
    for (uint32_t k = b->lru_head, pv = BL_LRU_NONE; k != BL_LRU_NONE; pv = k, k = b->lru_next[k])
        b->lru_prev[k] = pv;
}

void bl_reindex(struct baseline *b)
{
    memset(b->index, 0, b->cap * sizeof *b->index);
    for (uint32_t i = 0; i < b->n; i++)
        index_put(b, i);
    lru_rebuild(b);
}

/* Removes profile `slot` from the index (backward-shift deletion: the
 * entries after it in its probe run move up, so no tombstones build up). */
static void index_del(struct baseline *b, uint32_t slot)
{
    uint32_t mask = b->cap - 1, pos = (uint32_t)index_hash(b->p[slot].key) & mask;
    while (b->index[pos] != slot + 1) {
        if (!b->index[pos]) return; /* not indexed */
        pos = (pos + 1) & mask;
    }
    for (uint32_t j = (pos + 1) & mask; b->index[j]; j = (j + 1) & mask) {
        uint32_t home = (uint32_t)index_hash(b->p[b->index[j] - 1].key) & mask;
        /* the entry at j may move to pos when its home is not in (pos, j] */
        bool stays = pos <= j ? (home > pos && home <= j) : (home > pos || home <= j);
        if (stays) continue;
        b->index[pos] = b->index[j];
        pos = j;
    }
    b->index[pos] = 0;
}

/* The unattributed profile seen least recently: the one a new profile
 * takes over when room is short. -1 when there is none. */
static long lru_unattributed(const struct baseline *b)
{
    return b->lru_head == BL_LRU_NONE ? -1 : (long)b->lru_head;
}

/* Frees slot i for a new profile: its key is deleted from the database
 * by the next save (bl_db_*), and it leaves the index. */
void bl_del_push(struct baseline *b, const char *key)
{
    if (b->n_del == b->cap_del) {
        uint32_t nc = b->cap_del ? 2 * b->cap_del : 16;
        char(*d)[BL_KEYLEN] = realloc(b->del, nc * sizeof *d);
        if (!d) { /* the stale row stays in the database: loaded later as the
                     old profile it was, counted */
            b->st.save_errors++;
            return;
        }
        b->del = d;
        b->cap_del = nc;
    }
    memcpy(b->del[b->n_del++], key, BL_KEYLEN);
}

static void evict(struct baseline *b, uint32_t i)
{
    if (b->w && b->smu_ready) { /* the list goes to save jobs under smu */
        pthread_mutex_lock(&b->smu);
        bl_del_push(b, b->p[i].key);
        pthread_mutex_unlock(&b->smu);
    }
    index_del(b, i);
    if (b->p[i].is_cred) lru_unlink(b, i);
    b->n_cred -= b->p[i].is_cred;
    b->st.evict_unattributed++;
}

/* A new profile's slot. Unattributed profiles (accepted credentials no
 * identity claims) hold at most max_unattributed slots: past that a new
 * one takes over the least recently seen of them, so a flood of unknown
 * credentials the API accepts churns among themselves and never takes the
 * room kept for configured identities. An identity that finds the table
 * full takes over an unattributed slot too; only identities themselves
 * filling every slot drop one (profile_limit). */
static struct bl_profile *get_profile(struct baseline *b, const char *key, bool is_cred, kw_ts ts)
{
    long i = bl_find(b, key);
    if (i >= 0) return &b->p[i];
    uint32_t slot = b->n;
    if (is_cred ? b->n_cred >= b->max_cred || b->n == b->max : b->n == b->max) {
        long v = lru_unattributed(b);
        if (v < 0) {
            b->st.profile_limit++;
            return NULL;
        }
        slot = (uint32_t)v;
        evict(b, slot);
    } else {
        b->n++;
    }
    struct bl_profile *p = &b->p[slot];
    memset(p, 0, sizeof *p);
    bl_set_text(p->key, sizeof p->key, key);
    p->is_cred = is_cred;
    p->first_seen = p->last_seen = ts;
    p->week = bl_floordiv(ts, BL_WEEK_US);
    p->local_hour = p->cur_hour = p->conc_hour = INT64_MIN;
    p->last_day = INT32_MIN;
    index_put(b, slot);
    if (is_cred) lru_place(b, slot);
    b->n_cred += is_cred;
    b->dirty[slot] = 1;
    b->st.profiles = b->n;
    return p;
}

/* ---- decay and small tables ---- */

static void decay(struct bl_profile *p, kw_ts ts)
{
    int64_t w = bl_floordiv(ts, BL_WEEK_US);
    if (w <= p->week) return;
    float f = 1.f;
    for (int64_t k = p->week; k < w && f > 1e-6f; k++)
        f *= DECAY_PER_WEEK;
    p->week = w;
    for (int i = 0; i < BL_HOW; i++)
        p->how[i] *= f;
    for (uint32_t i = 0; i < p->n_end; i++)
        p->end[i].count *= f;
    for (uint32_t i = 0; i < p->n_net; i++)
        p->net[i].count *= f;
    for (uint32_t i = 0; i < p->n_ua; i++)
        p->ua[i].count *= f;
    for (uint32_t i = 0; i < p->n_pair; i++)
        p->pair[i].count *= f;
    p->conc_hours *= f;
    p->active_hours *= f;
}

/* Index of the smallest count among n float fields spaced `stride` apart. */
uint32_t bl_min_slot(const float *first, size_t stride, uint32_t n)
{
    uint32_t m = 0;
    for (uint32_t i = 1; i < n; i++)
        if (*(const float *)((const char *)first + i * stride) <
            *(const float *)((const char *)first + m * stride))
            m = i;
    return m;
}

/* ---- findings ---- */

void bl_emit(struct baseline *b, struct bl_obs *o, int f, const char *subject, json_t *expected,
             json_t *observed, const char *fmt, ...)
{
    struct alert_finding a;
    memset(&a, 0, sizeof a);
    a.kind = fkind[f];
    a.ts = o->t->ts;
    bl_set_text(a.subject, sizeof a.subject, subject);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a.summary, sizeof a.summary, fmt, ap);
    va_end(ap);
    bl_set_text(a.timezone, sizeof a.timezone, o->tz ? o->tz : "");
    a.evidence = json_pack("{s:o,s:o}", "expected", expected, "observed", observed);
    a.txn = o->t;
    b->st.findings[f]++;
    if (o->emit)
        o->emit(o->user, &a);
    else
        json_decref(a.evidence);
}

const char *bl_who(const struct bl_obs *o)
{
    return o->p->is_cred ? o->t->cred.hint[0] ? o->t->cred.hint : o->p->key : o->p->key;
}

/* ---- observe ---- */

bool bl_in_learning(const struct baseline *b, const struct bl_profile *p, kw_ts ts)
{
    return ts - p->first_seen < b->learning || p->active_days < b->min_days;
}

void bl_local_time(struct baseline *b, struct bl_obs *o, const char *tz)
{
    int32_t off = 0;
    int64_t sec = bl_floordiv(o->t->ts, 1000000);
    if (!bl_tz_offset(&b->tzc, tz, sec, &off)) b->st.tz_unknown++;
    o->local_sec = sec + off;
    o->local_day = bl_floordiv(o->local_sec, 86400);
    o->local_hour = bl_floordiv(o->local_sec, 3600);
    o->wd = (int)(((o->local_day + 3) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    o->hod = (int)(o->local_hour - o->local_day * 24);
    o->cls = o->wd >= 5;
}

void baseline_observe(struct baseline *b, const struct kw_txn *t, const char *tz, bool has_schedule,
                      void (*emit_fn)(void *user, struct alert_finding *f), void *user)
{
    bool is_cred = !t->identity.id[0];
    const char *key = is_cred ? t->cred.fingerprint : t->identity.id;
    if (!key[0]) {
        b->st.skipped++;
        return;
    }
    /* Nothing is learned from a request the server refused: a spray of
     * random tokens (each answered 401) would otherwise take a persisted
     * profile per token and fill max_profiles for good, and a refused
     * request says nothing of what the identity may do. (failed_auth_burst
     * in the judge sees them.) */
    if (kw_txn_refused(t)) {
        b->st.refused++;
        return;
    }
    b->st.observed++;
    struct bl_profile *p = get_profile(b, key, is_cred, t->ts);
    if (!p) return;
    struct bl_obs o = {.t = t, .p = p, .tz = tz, .emit = emit_fn, .user = user};
    bl_local_time(b, &o, tz);
    decay(p, t->ts);
    if (o.local_day != p->last_day) {
        p->active_days++;
        p->last_day = (int32_t)o.local_day;
    }
    o.learning = bl_in_learning(b, p, t->ts);
    b->st.learning += o.learning;

    int64_t hour = bl_floordiv(t->ts, BL_HOUR_US);
    if (hour > p->cur_hour) { /* a late transaction counts in the open hour */
        bl_close_bucket(b, p);
        bl_open_bucket(b, p, hour, o.cls);
    }

    bool learn_hour;
    bl_check_hour(b, &o, has_schedule, &learn_hour);
    bl_check_endpoint(b, &o);
    bl_check_source(b, &o);
    bl_check_sharing(b, &o);
    bl_check_client(b, &o);
    bl_check_grants(b, &o);

    p->cur_req++;
    p->cur_bytes += t->resp_len;
    if (t->method[0] && t->template_[0]) {
        char text[BL_TXT + 32], *te = text + sizeof text;
        kw_stpencpy(kw_stpecpy(kw_stpecpy(text, te, t->method), te, " "), te, t->template_,
                    BL_TXT);
        bl_hourtop_add(p, text);
    }
    bl_check_volume(b, &o);

    if (learn_hour && o.local_hour != p->local_hour) {
        p->how[o.wd * 24 + o.hod] += 1.f;
        p->local_hour = o.local_hour;
    }
    bl_learn_agent(b, p, t->user_agent);
    p->requests++;
    if (t->ts > p->last_seen) {
        p->last_seen = t->ts;
        if (p->is_cred) { /* later in the eviction order */
            uint32_t slot = (uint32_t)(p - b->p);
            lru_unlink(b, slot);
            lru_place(b, slot);
        }
    }
    bl_set_text(p->tz, sizeof p->tz, tz ? tz : "");
    b->dirty[p - b->p] = 1;
}

void baseline_advance(struct baseline *b, kw_ts now)
{
    int64_t hour = bl_floordiv(now, BL_HOUR_US);
    if (hour > b->swept_hour) {
        b->swept_hour = hour;
        for (uint32_t i = 0; i < b->n; i++)
            if (b->p[i].cur_req && b->p[i].cur_hour < hour) {
                bl_close_bucket(b, &b->p[i]);
                b->dirty[i] = 1;
            }
    }
    if (!b->db || b->save_every < 0) return;
    if (!b->last_save) b->last_save = now;
    if (now - b->last_save >= b->save_every) {
        b->last_save = now;
        bl_save_async(b);
    }
}

/* ---- life cycle ---- */

enum kw_err baseline_new(const struct baseline_config *c, struct baseline **out)
{
    struct baseline *b = calloc(1, sizeof *b);
    if (!b) return KW_E_NOMEM;
    b->learning = c->learning > 0 ? c->learning : BASELINE_DEFAULT_LEARNING;
    b->quarantine = c->quarantine > 0 ? c->quarantine : BASELINE_DEFAULT_QUARANTINE;
    b->save_every = c->save_every ? c->save_every : BL_HOUR_US;
    b->sens = c->sensitivity < 0 ? 0 : c->sensitivity > 2 ? 2 : c->sensitivity;
    b->min_days = c->learning_min_days ? c->learning_min_days : 3;
    b->max = c->max_profiles ? c->max_profiles : BASELINE_DEFAULT_MAX_PROFILES;
    /* a tenth of the slots is kept for configured identities by default */
    b->max_cred = c->max_unattributed ? c->max_unattributed : b->max - b->max / 10;
    if (b->max_cred > b->max) b->max_cred = b->max;
    b->swept_hour = INT64_MIN;
    b->read_only = c->read_only;
    enum kw_err e = KW_E_OK;
    bool have_table = false;
    if (c->db_path && c->read_only) {
        /* A reader sizes itself to what is stored (the writer's
         * max_profiles may differ). */
        uint32_t rows = 0;
        e = bl_db_open_ro(b, c->db_path, &have_table, &rows);
        if (e != KW_E_OK) goto fail;
        if (!c->max_profiles) b->max = rows ? rows : 1;
    }
    for (b->cap = 16; b->cap < 2 * b->max; b->cap *= 2)
        ;
    b->p = calloc(b->max, sizeof *b->p);
    b->dirty = calloc(b->max, 1);
    b->index = calloc(b->cap, sizeof *b->index);
    b->lru_prev = malloc(b->max * sizeof *b->lru_prev);
    b->lru_next = malloc(b->max * sizeof *b->lru_next);
    b->lru_head = b->lru_tail = BL_LRU_NONE;
    e = KW_E_NOMEM;
    if (!b->p || !b->dirty || !b->index || !b->lru_prev || !b->lru_next) goto fail;
    e = KW_E_OK;
    if (c->db_path && c->read_only) {
        if (have_table) e = bl_db_load(b);
    } else if (c->db_path) {
        e = bl_db_open(b, c->db_path, c->writer);
        if (e == KW_E_OK) e = bl_db_load(b);
    }
    if (e != KW_E_OK) goto fail;
    *out = b;
    return KW_E_OK;
fail:
    baseline_destroy(b);
    return e;
}

void baseline_destroy(struct baseline *b)
{
    if (!b) return;
    bl_saver_stop(b);
    if (b->db) store_db_close(b->db);
    bl_tz_free(&b->tzc);
    free(b->p);
    free(b->dirty);
    free(b->index);
    free(b->lru_prev);
    free(b->lru_next);
    free(b->del);
    free(b);
}

void baseline_get_stats(const struct baseline *b, struct baseline_stats *out)
{
    struct baseline *m = (struct baseline *)b; /* the lock, not the data, changes */
    if (m->smu_ready) pthread_mutex_lock(&m->smu);
    *out = b->st;
    if (m->smu_ready) pthread_mutex_unlock(&m->smu);
    out->profiles = b->n;
}

size_t baseline_learning_count(const struct baseline *b, kw_ts now)
{
    size_t n = 0;
    for (uint32_t i = 0; i < b->n; i++)
        n += bl_in_learning(b, &b->p[i], now);
    return n;
}

size_t baseline_profile_size(void)
{
    return sizeof(struct bl_profile) + 1 + 2 * sizeof(uint32_t);
}

size_t baseline_count(const struct baseline *b)
{
    return b->n;
}

const char *baseline_key(const struct baseline *b, size_t i)
{
    return i < b->n ? b->p[i].key : NULL;
}
