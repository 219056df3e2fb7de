/* baseline: learning and detections over fixed-size profiles (see
 * baseline.h for the contract and docs/baselines.md for the policies).
 *
 * The one thing to know: every decision is a pure function of the profile
 * and the transaction (packet time, no wall clock, no global state), so a
 * profile saved and loaded continues exactly as if it had never left
 * memory. Old behaviour fades by a weekly decay applied lazily when a
 * profile's epoch week changes. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_int.h"
#include "kw_hash.h"
#include "kw_log.h"
#include "store.h"

#define DECAY_PER_WEEK 0.9f /* half-life ~6.6 weeks */
#define VOL_MIN_HOURS 8

/* Thresholds per sensitivity (low, medium, high); see docs/baselines.md. */
struct sens {
    int hour_tol;         /* neighbouring hours that count as usual */
    float hour_support;   /* decayed active-hour count that makes an hour usual */
    float vol_k;          /* robust z: median + k * 1.4826 * MAD */
    float vol_ratio;      /* and at least ratio x median */
    float vol_min_req;    /* and at least median + this many requests */
    float vol_min_bytes;  /* bytes: at least median + this */
    kw_ts share_window;   /* two networks within this = concurrent */
    bool endpoint_method; /* a known template under a new method is new */
    bool net_wide;        /* low: a new /24 inside a known /16 is not new */
    uint32_t roam_nets;   /* a /16 (/32) with this many known /24s (/48s) is
                           * one roaming network (a campus handing out
                           * addresses by DHCP); 0 = off */
};

static const struct sens sens_tab[3] = {
    {2, 0.25f, 10.f, 10.f, 100.f, 50e6f, (kw_ts)120 * 1000000, false, true, 0},
    {1, 0.5f, 6.f, 5.f, 50.f, 10e6f, (kw_ts)300 * 1000000, true, false, 3},
    {1, 1.0f, 4.f, 3.f, 20.f, 2e6f, (kw_ts)600 * 1000000, true, false, 0},
};

enum { F_HOUR, F_ENDPOINT, F_SOURCE, F_VOLUME, F_SHARING, F_CLIENT, F_GRANT };
static const enum alert_kind fkind[] = {ALERT_UNUSUAL_HOUR, ALERT_NEW_ENDPOINT, ALERT_NEW_SOURCE,
                                        ALERT_VOLUME_SPIKE, ALERT_KEY_SHARING, ALERT_NEW_CLIENT,
                                        ALERT_SCOPE_ESCALATION};

/* Per-observation context: the transaction in local time. */
struct obs {
    const struct kw_txn *t;
    struct bl_profile *p;
    const char *tz;
    int64_t local_sec, local_day, local_hour; /* since the epoch, local time */
    int wd, hod, cls;                         /* Mon=0..Sun=6, 0..23, weekend? */
    bool learning;
    void (*emit)(void *user, struct alert_finding *f);
    void *user;
};

static const char *const wd_names[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

uint64_t bl_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    return h ? h : 1;
}

static void set_text(char *dst, size_t n, const char *src)
{
    memset(dst, 0, n);
    size_t l = strnlen(src, n - 1);
    memcpy(dst, src, l);
}

static int64_t floordiv(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
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

void bl_reindex(struct baseline *b)
{
    memset(b->index, 0, b->cap * sizeof *b->index);
    for (uint32_t i = 0; i < b->n; i++)
        index_put(b, i);
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
    long v = -1;
    for (uint32_t i = 0; i < b->n; i++)
        if (b->p[i].is_cred && (v < 0 || b->p[i].last_seen < b->p[v].last_seen ||
                                (b->p[i].last_seen == b->p[v].last_seen &&
                                 strcmp(b->p[i].key, b->p[v].key) < 0)))
            v = (long)i;
    return v;
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
    set_text(p->key, sizeof p->key, key);
    p->is_cred = is_cred;
    p->first_seen = p->last_seen = ts;
    p->week = floordiv(ts, BL_WEEK_US);
    p->local_hour = p->cur_hour = p->conc_hour = INT64_MIN;
    p->last_day = INT32_MIN;
    index_put(b, slot);
    b->n_cred += is_cred;
    b->dirty[slot] = 1;
    b->st.profiles = b->n;
    return p;
}

/* ---- decay and small tables ---- */

static void decay(struct bl_profile *p, kw_ts ts)
{
    int64_t w = floordiv(ts, BL_WEEK_US);
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
static uint32_t min_slot(const float *first, size_t stride, uint32_t n)
{
    uint32_t m = 0;
    for (uint32_t i = 1; i < n; i++)
        if (*(const float *)((const char *)first + i * stride) <
            *(const float *)((const char *)first + m * stride))
            m = i;
    return m;
}

static long find_end(const struct bl_profile *p, uint64_t h)
{
    for (uint32_t i = 0; i < p->n_end; i++)
        if (p->end[i].h == h) return i;
    return -1;
}

/* An evicted endpoint with hash h (or, h == 0, template hash th), or -1. */
static long find_gone(const struct bl_profile *p, uint64_t h, uint64_t th)
{
    for (uint32_t i = 0; i < p->n_gone; i++)
        if (p->gone[i].h && (h ? p->gone[i].h == h : p->gone[i].th == th)) return i;
    return -1;
}

/* end[i] leaves the table: remembered by hash, the oldest evicted forgotten
 * first (a slot freed by a rename is used before). */
static void end_evict(struct bl_profile *p, uint32_t i)
{
    uint32_t at = p->gone_next;
    for (uint32_t k = 0; k < p->n_gone; k++)
        if (!p->gone[k].h) {
            at = k;
            break;
        }
    struct bl_gone *g = &p->gone[at];
    bool ring = at == p->gone_next;
    memset(g, 0, sizeof *g);
    g->h = p->end[i].h;
    g->th = p->end[i].th;
    size_t ml = strcspn(p->end[i].text, " ");
    if (ml >= sizeof g->method) ml = sizeof g->method - 1; /* a longer method: cut */
    memcpy(g->method, p->end[i].text, ml);
    if (!ring) return;
    p->gone_next = (p->gone_next + 1) % BL_K_GONE;
    if (p->n_gone < BL_K_GONE) p->n_gone++;
}

static void learn_end(struct baseline *b, struct bl_profile *p, uint64_t h, uint64_t th,
                      const char *text, float n, int32_t day)
{
    long i = find_end(p, h);
    if (i < 0) {
        /* known by hash: it stays there (bringing it back would evict
         * another, which would churn the ring) */
        if (find_gone(p, h, 0) >= 0) return;
        if (p->n_end == BL_K_END) {
            i = min_slot(&p->end[0].count, sizeof p->end[0], p->n_end);
            end_evict(p, (uint32_t)i);
            b->st.evict_endpoint++;
        } else {
            i = p->n_end++;
        }
        memset(&p->end[i], 0, sizeof p->end[i]);
        p->end[i].h = h;
        p->end[i].th = th;
        set_text(p->end[i].text, BL_TXT, text);
    }
    p->end[i].count += n;
    p->end[i].last_day = day;
}

static void net_of(const struct kw_addr *a, uint8_t out[16])
{
    memset(out, 0, 16);
    memcpy(out, a->a, a->family == 4 ? 3 : 6); /* /24 or /48 */
}

static long find_net(const struct bl_profile *p, uint8_t fam, const uint8_t a[16], size_t cmp)
{
    for (uint32_t i = 0; i < p->n_net; i++)
        if (p->net[i].family == fam && !memcmp(p->net[i].a, a, cmp)) return i;
    return -1;
}

static void learn_net(struct baseline *b, struct bl_profile *p, uint8_t fam, const uint8_t a[16],
                      float n, int32_t day)
{
    long i = find_net(p, fam, a, 16);
    if (i < 0) {
        if (p->n_net == BL_K_NET) {
            i = min_slot(&p->net[0].count, sizeof p->net[0], p->n_net);
            b->st.evict_network++;
        } else {
            i = p->n_net++;
        }
        memset(&p->net[i], 0, sizeof p->net[i]);
        p->net[i].family = fam;
        memcpy(p->net[i].a, a, 16);
    }
    p->net[i].count += n;
    p->net[i].last_day = day;
}

static void learn_agent(struct baseline *b, struct bl_profile *p, const char *ua)
{
    if (!ua[0]) return;
    uint64_t h = bl_hash(ua, strlen(ua));
    uint32_t i;
    for (i = 0; i < p->n_ua && p->ua[i].h != h; i++)
        ;
    if (i == p->n_ua) {
        if (p->n_ua == BL_K_UA) {
            i = min_slot(&p->ua[0].count, sizeof p->ua[0], p->n_ua);
            b->st.evict_agent++;
        } else {
            p->n_ua++;
        }
        memset(&p->ua[i], 0, sizeof p->ua[i]);
        p->ua[i].h = h;
        set_text(p->ua[i].text, BL_TXT, ua);
    }
    p->ua[i].count += 1.f;
}

/* ---- quarantine ---- */

/* Finds or adds the pending entry (type, h). *fresh: just created. */
static struct bl_pending *pend_get(struct baseline *b, struct obs *o, int type, uint64_t h,
                                   bool *fresh)
{
    struct bl_profile *p = o->p;
    *fresh = false;
    for (uint32_t i = 0; i < p->n_pend; i++)
        if (p->pend[i].type == type && p->pend[i].h == h) return &p->pend[i];
    uint32_t i = p->n_pend;
    if (i == BL_K_PEND) { /* evict the oldest */
        i = 0;
        for (uint32_t k = 1; k < p->n_pend; k++)
            if (p->pend[k].first_ts < p->pend[i].first_ts) i = k;
        b->st.evict_pending++;
    } else {
        p->n_pend++;
    }
    struct bl_pending *e = &p->pend[i];
    memset(e, 0, sizeof *e);
    e->type = (uint8_t)type;
    e->h = h;
    e->first_ts = o->t->ts;
    e->last_day = INT32_MIN;
    *fresh = true;
    return e;
}

/* Records a sighting; true when the entry has now recurred on two local
 * days at least `quarantine` apart, and is removed to be learned. */
static bool pend_see(struct baseline *b, struct obs *o, struct bl_pending *e)
{
    b->st.quarantined++;
    e->count++;
    if (e->last_day != (int32_t)o->local_day) {
        e->last_day = (int32_t)o->local_day;
        if (e->days < 255) e->days++;
    }
    if (e->days < 2 || o->t->ts - e->first_ts < b->quarantine) return false;
    b->st.promoted++;
    return true;
}

static void pend_drop(struct bl_profile *p, struct bl_pending *e)
{
    uint32_t i = (uint32_t)(e - p->pend);
    memmove(&p->pend[i], &p->pend[i + 1], (p->n_pend - i - 1) * sizeof *e);
    p->n_pend--;
    memset(&p->pend[p->n_pend], 0, sizeof *e);
}

/* ---- findings ---- */

static void emit(struct baseline *b, struct obs *o, int f, const char *subject, json_t *expected,
                 json_t *observed, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static void emit(struct baseline *b, struct obs *o, int f, const char *subject, json_t *expected,
                 json_t *observed, const char *fmt, ...)
{
    struct alert_finding a;
    memset(&a, 0, sizeof a);
    a.kind = fkind[f];
    a.ts = o->t->ts;
    set_text(a.subject, sizeof a.subject, subject);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a.summary, sizeof a.summary, fmt, ap);
    va_end(ap);
    set_text(a.timezone, sizeof a.timezone, o->tz ? o->tz : "");
    a.evidence = json_pack("{s:o,s:o}", "expected", expected, "observed", observed);
    a.txn = o->t;
    b->st.findings[f]++;
    if (o->emit)
        o->emit(o->user, &a);
    else
        json_decref(a.evidence);
}

static const char *who(const struct obs *o)
{
    return o->p->is_cred ? o->t->cred.hint[0] ? o->t->cred.hint : o->p->key : o->p->key;
}

/* ---- hours ---- */

static float hour_support(const struct bl_profile *p, int cls, int hod)
{
    float s = 0;
    for (int d = cls ? 5 : 0; d < (cls ? 7 : 5); d++)
        s += p->how[d * 24 + ((hod + 24) % 24)];
    return s;
}

void bl_usual_hours(const struct bl_profile *p, int cls, char *buf, size_t n)
{
    int lo = -1, hi = -1;
    for (int h = 0; h < 24; h++)
        if (hour_support(p, cls, h) >= 0.5f) {
            if (lo < 0) lo = h;
            hi = h;
        }
    if (lo < 0)
        snprintf(buf, n, "%s never", cls ? "weekends" : "weekdays");
    else
        snprintf(buf, n, "%s %02d:00-%02d:00", cls ? "weekends" : "weekdays", lo, hi + 1);
}

/* unusual_hour: no activity in this local hour (+-tol) of this day class in
 * the decayed history. Quarantined hours re-alert once per local day. */
static void check_hour(struct baseline *b, struct obs *o, bool has_schedule, bool *learn_hour)
{
    const struct sens *s = &sens_tab[b->sens];
    struct bl_profile *p = o->p;
    *learn_hour = true;
    if (o->learning) return;
    for (int d = -s->hour_tol; d <= s->hour_tol; d++)
        if (hour_support(p, o->cls, o->hod + d) >= s->hour_support) return;
    *learn_hour = false;
    bool fresh;
    struct bl_pending *e = pend_get(b, o, BL_P_HOUR, (uint64_t)(o->cls * 24 + o->hod + 1), &fresh);
    bool new_day = e->last_day != (int32_t)o->local_day;
    if (pend_see(b, o, e)) {
        p->how[o->wd * 24 + o->hod] += (float)e->days - 1.f; /* this one is added by the caller */
        pend_drop(p, e);
        *learn_hour = true;
        return;
    }
    if (!new_day || has_schedule) return;
    char usual[64], subj[32];
    bl_usual_hours(p, o->cls, usual, sizeof usual);
    snprintf(subj, sizeof subj, "hour:%s %02d", wd_names[o->wd], o->hod);
    int mm = (int)((o->local_sec % 3600 + 3600) % 3600 / 60);
    char lt[8];
    snprintf(lt, sizeof lt, "%02d:%02d", o->hod, mm);
    emit(b, o, F_HOUR, subj,
         json_pack("{s:s,s:f}", "usual_hours", usual, "support", hour_support(p, o->cls, o->hod)),
         json_pack("{s:s,s:i,s:s}", "local_time", lt, "hour", o->hod, "weekday", wd_names[o->wd]),
         "%s active at %s %s (%s), an hour it does not use; usually %s", who(o), lt,
         wd_names[o->wd], o->tz && o->tz[0] ? o->tz : "UTC", usual);
}

/* ---- endpoints ---- */

static void top_endpoints(const struct bl_profile *p, char *buf, size_t n)
{
    long best = -1;
    for (uint32_t i = 0; i < p->n_end; i++)
        if (best < 0 || p->end[i].count > p->end[best].count) best = i;
    if (best < 0)
        snprintf(buf, n, "none");
    else
        snprintf(buf, n, "%s", p->end[best].text);
}

/* Is tmpl[0..n) (a prefix ending at a segment boundary) a prefix of the
 * template of a stored text "METHOD template"? 1 yes, 0 no, -1 cannot tell
 * (the text was cut at BL_TXT inside or right after it). */
static int text_has_prefix(const char *text, const char *tmpl, size_t n)
{
    const char *tt = strchr(text, ' ');
    if (!tt) return 0;
    tt++;
    size_t l = strlen(tt);
    bool cut = strlen(text) >= BL_TXT - 1;
    if (l < n) return cut && !memcmp(tt, tmpl, l) ? -1 : 0;
    if (memcmp(tt, tmpl, n)) return 0;
    if (tt[n] == '/') return 1;
    if (!tt[n]) return cut ? -1 : 1;
    return 0;
}

/* A new endpoint inside a new area of the API that already raised one:
 * its first segment the identity never reached (no known endpoint under
 * that prefix) is a literal below the first segment and not the last one
 * (/api/projects/nova-media/... after /api/projects/northingest/...: a new
 * account, a new language, a new zone), and an endpoint waiting in
 * quarantine lies under the same prefix. A small pool of word values
 * stays literal in the learned templates (docs/shapes.md), so the first
 * request with a new value opens a new area and each further call in it
 * would be one more new endpoint; one alert says it. New endpoints that
 * differ in a collection (/v1/cinema/..., /v1/company/...) or in their
 * last segment each still alert. */
static bool fold_endpoint(const struct bl_profile *p, const struct bl_pending *self,
                          const char *tmpl)
{
    size_t n = strlen(tmpl), pos = 0;
    for (unsigned seg = 1; pos < n && tmpl[pos] == '/'; seg++) {
        size_t e = pos + 1;
        while (e < n && tmpl[e] != '/')
            e++;
        if (e == pos + 1) return false; /* a trailing '/' */
        bool known = false;
        for (uint32_t i = 0; i < p->n_end && !known; i++)
            known = text_has_prefix(p->end[i].text, tmpl, e) != 0;
        if (!known) {
            bool last = e >= n || e + 1 == n; /* "/x" or "/x/" ends the template */
            if (seg < 2 || last || memchr(tmpl + pos + 1, '{', e - pos - 1)) return false;
            for (uint32_t i = 0; i < p->n_pend; i++) {
                const struct bl_pending *o = &p->pend[i];
                if (o != self && o->type == BL_P_ENDPOINT && text_has_prefix(o->text, tmpl, e) == 1)
                    return true;
            }
            return false;
        }
        pos = e;
    }
    return false;
}

/* The extension of the last segment of a[0..n): ".json", ".kml" (1-5
 * letters and digits, a letter first); its offset, or n when none. */
static size_t ext_at(const char *a, size_t n)
{
    size_t d = n;
    while (d > 0 && a[d - 1] != '.' && a[d - 1] != '/')
        d--;
    if (d == 0 || a[d - 1] != '.' || n - d < 1 || n - d > 5 || !isalpha((unsigned char)a[d]))
        return n;
    for (size_t i = d; i < n; i++)
        if (!isalnum((unsigned char)a[i])) return n;
    return d - 1;
}

/* Two templates of one endpoint, written differently: the same but for
 * the format extension (/distance.json, /distance.kml), or the same but
 * for one segment before the last, a parameter in one and a literal in
 * the other (/v2/portalingest/traces, /v2/{id}/traces: a value kept
 * literal beside its parameter, docs/shapes.md). */
static bool same_endpoint(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    size_t ea = ext_at(a, na), eb = ext_at(b, nb);
    if (ea < na && eb < nb && ea == eb && !memcmp(a, b, ea) && !memchr(a + ea, '/', na - ea))
        return na != nb || memcmp(a, b, na);
    unsigned diff = 0, at = 0, segs = 0;
    bool param = false;
    size_t i = 0, j = 0;
    while (i < na && j < nb) {
        size_t ie = i + 1, je = j + 1;
        while (ie < na && a[ie] != '/')
            ie++;
        while (je < nb && b[je] != '/')
            je++;
        segs++;
        if (ie - i != je - j || memcmp(a + i, b + j, ie - i)) {
            diff++;
            at = segs;
            param = (memchr(a + i, '{', ie - i) != NULL) != (memchr(b + j, '{', je - j) != NULL);
        }
        i = ie;
        j = je;
    }
    if (i < na || j < nb || diff != 1 || !param) return false;
    bool slash = na > 1 && a[na - 1] == '/'; /* "/x/" ends with an empty segment */
    return at < segs - (slash ? 1u : 0u);
}

/* A new endpoint that is one already waiting in quarantine (same method)
 * written differently (same_endpoint). */
static bool fold_variant(const struct bl_profile *p, const struct bl_pending *self,
                         const char *method, const char *tmpl)
{
    size_t ml = strlen(method);
    for (uint32_t i = 0; i < p->n_pend; i++) {
        const struct bl_pending *o = &p->pend[i];
        if (o == self || o->type != BL_P_ENDPOINT || strlen(o->text) >= BL_TXT - 1) continue;
        if (strncmp(o->text, method, ml) || o->text[ml] != ' ') continue;
        if (same_endpoint(tmpl, o->text + ml + 1)) return true;
    }
    return false;
}

/* new_endpoint: a method x template never seen (low sensitivity: a
 * template never seen under any method). */
static void check_endpoint(struct baseline *b, struct obs *o)
{
    const struct kw_txn *t = o->t;
    struct bl_profile *p = o->p;
    if (!t->method[0] || !t->template_[0])
        return; /* a response without its request has no endpoint */
    char text[BL_TXT + 32];
    snprintf(text, sizeof text, "%s %.*s", t->method, BL_TXT, t->template_);
    char full[600];
    int fl = snprintf(full, sizeof full, "%s %s", t->method, t->template_);
    uint64_t h = bl_hash(full, (size_t)fl < sizeof full ? (size_t)fl : sizeof full - 1);
    uint64_t th = bl_hash(t->template_, strlen(t->template_));
    int32_t day = (int32_t)o->local_day;
    if (o->learning || find_end(p, h) >= 0 || find_gone(p, h, 0) >= 0) {
        learn_end(b, p, h, th, text, 1.f, day);
        return;
    }
    if (!sens_tab[b->sens].endpoint_method) {
        bool known = find_gone(p, 0, th) >= 0;
        for (uint32_t i = 0; i < p->n_end && !known; i++)
            known = p->end[i].th == th;
        if (known) {
            learn_end(b, p, h, th, text, 1.f, day);
            return;
        }
    }
    bool fresh;
    struct bl_pending *e = pend_get(b, o, BL_P_ENDPOINT, h, &fresh);
    if (fresh) set_text(e->text, BL_TXT, text);
    if (pend_see(b, o, e)) {
        learn_end(b, p, h, th, text, (float)e->count, day);
        pend_drop(p, e);
        return;
    }
    if (!fresh) return;
    if (fold_endpoint(p, e, t->template_) || fold_variant(p, e, t->method, t->template_)) {
        b->st.endpoint_folded++; /* quarantined as any other, not alerted */
        return;
    }
    char top[BL_TXT];
    top_endpoints(p, top, sizeof top);
    emit(b, o, F_ENDPOINT, text,
         json_pack("{s:i,s:s}", "known_endpoints", p->n_end, "most_used", top),
         json_pack("{s:s,s:s,s:s}", "method", t->method, "template", t->template_, "path", t->path),
         "%s called %s for the first time; it knows %u endpoints, most used %s", who(o), text,
         p->n_end, top);
}

/* ---- template merges (analyzer/shapes) ---- */

/* "GET /v1/x" -> hash of "GET " + tmpl, the key check_endpoint uses. */
static uint64_t method_hash(const char *text, const char *tmpl)
{
    const char *sp = strchr(text, ' ');
    size_t ml = sp ? (size_t)(sp - text) : strlen(text);
    char full[600];
    int fl = snprintf(full, sizeof full, "%.*s %s", (int)ml, text, tmpl);
    return bl_hash(full, (size_t)fl < sizeof full ? (size_t)fl : sizeof full - 1);
}

static void method_text(char *dst, const char *text, const char *tmpl)
{
    const char *sp = strchr(text, ' ');
    size_t ml = sp ? (size_t)(sp - text) : strlen(text);
    char t[BL_TXT + 32];
    snprintf(t, sizeof t, "%.*s %.*s", (int)ml, text, BL_TXT, tmpl);
    set_text(dst, BL_TXT, t);
}

static bool rename_profile(struct bl_profile *p, uint64_t th_old, const char *old_tmpl,
                           const char *new_tmpl)
{
    bool changed = false;
    uint64_t th_new = bl_hash(new_tmpl, strlen(new_tmpl));
    for (uint32_t i = 0; i < p->n_end; i++) {
        struct bl_endpoint *e = &p->end[i];
        if (e->th != th_old || e->h != method_hash(e->text, old_tmpl)) continue;
        uint64_t h = method_hash(e->text, new_tmpl);
        long j = find_end(p, h);
        changed = true;
        if (j >= 0 && (uint32_t)j != i) { /* the parameter is known: counts merge */
            p->end[j].count += e->count;
            if (e->last_day > p->end[j].last_day) p->end[j].last_day = e->last_day;
            memmove(e, e + 1, (p->n_end - i - 1) * sizeof *e);
            memset(&p->end[--p->n_end], 0, sizeof *e);
            i--;
            continue;
        }
        e->h = h;
        e->th = th_new;
        method_text(e->text, e->text, new_tmpl);
    }
    for (uint32_t i = 0; i < p->n_gone; i++) {
        struct bl_gone *g = &p->gone[i];
        if (!g->h || g->th != th_old || g->h != method_hash(g->method, old_tmpl)) continue;
        uint64_t h = method_hash(g->method, new_tmpl);
        changed = true;
        long k = find_gone(p, h, 0);
        if (find_end(p, h) >= 0 || (k >= 0 && (uint32_t)k != i)) { /* known under the new name */
            memset(g, 0, sizeof *g);
            continue;
        }
        g->h = h;
        g->th = th_new;
    }
    for (uint32_t i = 0; i < p->n_pend; i++) {
        struct bl_pending *e = &p->pend[i];
        if (e->type != BL_P_ENDPOINT || e->h != method_hash(e->text, old_tmpl)) continue;
        uint64_t h = method_hash(e->text, new_tmpl);
        changed = true;
        if (find_end(p, h) >= 0) { /* now a known endpoint: nothing to wait for */
            pend_drop(p, e);
            i--;
            continue;
        }
        e->h = h;
        method_text(e->text, e->text, new_tmpl);
        for (uint32_t k = 0; k < p->n_pend; k++) {
            struct bl_pending *o = &p->pend[k];
            if (k == i || o->type != BL_P_ENDPOINT || o->h != h) continue;
            o->count += e->count; /* two names of one endpoint: one entry */
            if (e->first_ts < o->first_ts) o->first_ts = e->first_ts;
            if (e->days > o->days) o->days = e->days;
            if (e->last_day > o->last_day) o->last_day = e->last_day;
            pend_drop(p, e);
            i--;
            break;
        }
    }
    return changed;
}

void baseline_rename_template(struct baseline *b, const char *old_tmpl, const char *new_tmpl)
{
    uint64_t th = bl_hash(old_tmpl, strlen(old_tmpl));
    for (uint32_t i = 0; i < b->n; i++)
        if (rename_profile(&b->p[i], th, old_tmpl, new_tmpl)) {
            b->dirty[i] = 1;
            b->st.renamed++;
        }
}

/* ---- sources ---- */

void bl_net_str(uint8_t fam, const uint8_t a[16], char *buf, size_t n)
{
    struct kw_addr x;
    memset(&x, 0, sizeof x);
    x.family = fam;
    memcpy(x.a, a, 16);
    char s[48]; /* INET6_ADDRSTRLEN is 46 */
    kw_addr_str(&x, s, sizeof s);
    snprintf(buf, n, "%s/%d", s, fam == 4 ? 24 : 48);
}

void baseline_net_str(const struct kw_addr *a, char *buf, size_t n)
{
    uint8_t net[16];
    net_of(a, net);
    bl_net_str(a->family, net, buf, n);
}

static void known_nets(const struct bl_profile *p, char *buf, size_t n)
{
    float total = 0;
    for (uint32_t i = 0; i < p->n_net; i++)
        total += p->net[i].count;
    size_t w = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < p->n_net && i < 3 && w < n; i++) {
        char ns[64];
        bl_net_str(p->net[i].family, p->net[i].a, ns, sizeof ns);
        w += (size_t)snprintf(buf + w, n - w, "%s%s (%.0f %%)", i ? ", " : "", ns,
                              total > 0 ? 100.0 * p->net[i].count / total : 0.0);
    }
    if (!p->n_net) snprintf(buf, n, "none");
}

/* Known /24s (/48s) of the profile inside the /16 (/32) of a. */
static uint32_t nets_in_wide(const struct bl_profile *p, uint8_t fam, const uint8_t a[16])
{
    size_t cmp = fam == 4 ? 2 : 4;
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->n_net; i++)
        n += p->net[i].family == fam && !memcmp(p->net[i].a, a, cmp);
    return n;
}

/* new_client: a TLS client fingerprint (JA4 of the ClientHello) never
 * seen for the identity after its learning period: another program, or
 * another machine's TLS stack, holds the identity's credential or
 * certificate. Learned at once (one alert per new client); the table keeps
 * the BL_K_CLIENT most used, the least used one is forgotten. */
static void check_client(struct baseline *b, struct obs *o)
{
    const char *ja4 = o->t->tls.ja4;
    struct bl_profile *p = o->p;
    if (!ja4[0]) return;
    uint64_t h = bl_hash(ja4, strlen(ja4));
    uint32_t victim = 0;
    for (uint32_t i = 0; i < p->n_client; i++) {
        if (p->client[i].h == h) {
            p->client[i].count++;
            p->client[i].last_day = (int32_t)o->local_day;
            return;
        }
        if (p->client[i].count < p->client[victim].count) victim = i;
    }
    if (!o->learning && p->n_client) {
        char known[4 * 48 + 16] = "";
        size_t k = 0;
        for (uint32_t i = 0; i < p->n_client && i < 4; i++)
            k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "",
                                  p->client[i].text);
        emit(b, o, F_CLIENT, ja4, json_pack("{s:s,s:i}", "known_clients", known, "count", p->n_client),
             json_pack("{s:s,s:s}", "ja4", ja4, "sni", o->t->tls.sni),
             "%s connected with a TLS client never seen for it (JA4 %s) to %s%s; it used %u other "
             "client%s so far",
             who(o), ja4, o->t->tls.sni[0] ? o->t->tls.sni : "(no SNI)",
             o->t->flags & KW_TXN_F(TLS_SESSION) ? " in an encrypted TLS session" : "",
             p->n_client, p->n_client == 1 ? "" : "s");
    }
    struct bl_client *c = p->n_client < BL_K_CLIENT ? &p->client[p->n_client++] : &p->client[victim];
    memset(c, 0, sizeof *c);
    c->h = h;
    c->count = 1;
    c->last_day = (int32_t)o->local_day;
    set_text(c->text, sizeof c->text, ja4);
}

/* scope_escalation from the baseline: a token of the identity holds an
 * OAuth grant (scope, role, group) its tokens never held before, after its
 * learning period: a token minted with more rights than the contractor has
 * ever used. One finding per transaction naming every new grant, which is
 * then learned (one alert per new grant). The table keeps the BL_K_GRANT
 * most used. */
static void check_grants(struct baseline *b, struct obs *o)
{
    const struct kw_txn *t = o->t;
    struct bl_profile *p = o->p;
    if (t->cred.kind != KW_CRED_JWT || !t->cred.jwt.has_scope) return;
    /* grants have a learning period of their own from the first token
     * that showed any: an identity that moves to JWTs, or a profile kept
     * from before grants were learned, is not judged on its first ones */
    if (!p->grants_since) p->grants_since = t->ts;
    bool quiet = o->learning || t->ts - p->grants_since < b->learning;
    char fresh[256] = "", known[4 * 48 + 16] = "";
    size_t nf = 0, nk = 0;
    unsigned n_new = 0;
    for (uint32_t i = 0; i < p->n_grant && i < 4; i++)
        nk += (size_t)snprintf(known + nk, sizeof known - nk, "%s%s", i ? " " : "",
                               p->grant[i].text);
    uint32_t known_before = p->n_grant;
    for (const char *g = t->cred.jwt.scope; *g;) {
        size_t l = strcspn(g, " ");
        char text[48];
        snprintf(text, sizeof text, "%.*s", (int)l, g);
        uint64_t h = bl_hash(text, strlen(text));
        uint32_t victim = 0, i;
        for (i = 0; i < p->n_grant && p->grant[i].h != h; i++)
            if (p->grant[i].count < p->grant[victim].count) victim = i;
        if (i < p->n_grant) {
            p->grant[i].count++;
            p->grant[i].last_day = (int32_t)o->local_day;
        } else {
            if (!quiet) {
                n_new++;
                if (nf < sizeof fresh)
                    nf += (size_t)snprintf(fresh + nf, sizeof fresh - nf, "%s%s", nf ? " " : "",
                                           text);
            }
            struct bl_grant *e =
                p->n_grant < BL_K_GRANT ? &p->grant[p->n_grant++] : &p->grant[victim];
            memset(e, 0, sizeof *e);
            e->h = h;
            e->count = 1;
            e->last_day = (int32_t)o->local_day;
            set_text(e->text, sizeof e->text, text);
        }
        g += l;
        while (*g == ' ')
            g++;
    }
    if (!n_new) return;
    char subj[280];
    snprintf(subj, sizeof subj, "grants %s", fresh);
    emit(b, o, F_GRANT, subj,
         json_pack("{s:s,s:i}", "known_grants", known, "count", known_before),
         json_pack("{s:s,s:s}", "new_grants", fresh, "grants", t->cred.jwt.scope),
         "%s used a token holding %s \"%s\" that its tokens never held in its baseline (%u "
         "grant%s known: %s%s); the token grants \"%s\"",
         who(o), n_new == 1 ? "the grant" : "the grants", fresh, known_before,
         known_before == 1 ? "" : "s", known, known_before > 4 ? " ..." : "", t->cred.jwt.scope);
}

/* new_source: a /24 (/48) never seen. Not new: inside a known /16 (/32)
 * at low sensitivity, or, at medium, inside a /16 where the identity has
 * already used several /24s (its address moves around a campus; seen in
 * the simulator's employees on 10.50.0.0/16, a new /24 on most days). */
static void check_source(struct baseline *b, struct obs *o)
{
    const struct kw_txn *t = o->t;
    struct bl_profile *p = o->p;
    if (t->src.family != 4 && t->src.family != 6) return;
    uint8_t a[16];
    net_of(&t->src, a);
    int32_t day = (int32_t)o->local_day;
    const struct sens *s = &sens_tab[b->sens];
    if (o->learning || find_net(p, t->src.family, a, 16) >= 0 ||
        (s->net_wide && find_net(p, t->src.family, a, t->src.family == 4 ? 2 : 4) >= 0) ||
        (s->roam_nets && nets_in_wide(p, t->src.family, a) >= s->roam_nets)) {
        learn_net(b, p, t->src.family, a, 1.f, day);
        return;
    }
    bool fresh;
    struct bl_pending *e =
        pend_get(b, o, BL_P_NET, bl_hash((const char *)a, 16) ^ t->src.family, &fresh);
    if (fresh) {
        e->family = t->src.family;
        memcpy(e->a, a, 16);
    }
    if (pend_see(b, o, e)) {
        learn_net(b, p, t->src.family, a, (float)e->count, day);
        pend_drop(p, e);
        return;
    }
    if (!fresh) return;
    char ns[64], ip[64], known[256];
    bl_net_str(t->src.family, a, ns, sizeof ns);
    kw_addr_str(&t->src, ip, sizeof ip);
    known_nets(p, known, sizeof known);
    emit(b, o, F_SOURCE, ns, json_pack("{s:s,s:i}", "known_networks", known, "count", p->n_net),
         json_pack("{s:s,s:s}", "src_ip", ip, "network", ns),
         "%s used from %s (%s), a network it has never used; known: %s", who(o), ip, ns, known);
}

/* ---- key sharing ---- */

static uint32_t min_slot_ts(const struct bl_profile *p)
{
    uint32_t m = 0;
    for (uint32_t i = 1; i < p->n_recent; i++)
        if (p->recent[i].last_ts < p->recent[m].last_ts) m = i;
    return m;
}

static uint64_t pair_key(uint64_t x, uint64_t y)
{
    uint64_t k[2] = {x < y ? x : y, x < y ? y : x};
    return bl_hash((const char *)k, sizeof k);
}

static long find_pair(const struct bl_profile *p, uint64_t x, uint64_t y)
{
    uint64_t lo = x < y ? x : y, hi = x < y ? y : x;
    for (uint32_t i = 0; i < p->n_pair; i++)
        if (p->pair[i].a == lo && p->pair[i].b == hi) return i;
    return -1;
}

static void learn_pair(struct baseline *b, struct bl_profile *p, uint64_t x, uint64_t y, float n,
                       int32_t day)
{
    long i = find_pair(p, x, y);
    if (i < 0) {
        if (p->n_pair == BL_K_PAIR) {
            i = min_slot(&p->pair[0].count, sizeof p->pair[0], p->n_pair);
            b->st.evict_pair++;
        } else {
            i = p->n_pair++;
        }
        memset(&p->pair[i], 0, sizeof p->pair[i]);
        p->pair[i].a = x < y ? x : y;
        p->pair[i].b = x < y ? y : x;
    }
    p->pair[i].count += n;
    p->pair[i].last_day = day;
}

/* Share of the profile's (decayed) requests from a network, in %. */
static float net_share(const struct bl_profile *p, uint8_t fam, const uint8_t a[16])
{
    float total = 0, mine = 0;
    for (uint32_t i = 0; i < p->n_net; i++) {
        total += p->net[i].count;
        if (p->net[i].family == fam && !memcmp(p->net[i].a, a, 16)) mine = p->net[i].count;
    }
    return total > 0 ? 100.f * mine / total : 0.f;
}

/* key_sharing: the same credential from two networks within the window,
 * when that concurrency is new for it: a network it never used, or two
 * networks it never used at the same time while its history shows one
 * network at a time (concurrent hours below 5 % of active hours). At most
 * one finding per credential and hour; the evidence says which. */
static void check_sharing(struct baseline *b, struct obs *o)
{
    const struct kw_txn *t = o->t;
    struct bl_profile *p = o->p;
    if (t->src.family != 4 && t->src.family != 6) return;
    const char *cred = t->cred.fingerprint[0] ? t->cred.fingerprint : p->key;
    uint64_t fp = bl_hash(cred, strlen(cred));
    uint8_t a[16];
    net_of(&t->src, a);
    uint64_t net = bl_hash((const char *)a, 16) ^ t->src.family;
    kw_ts win = sens_tab[b->sens].share_window;
    long self = -1, other = -1;
    for (uint32_t i = 0; i < p->n_recent; i++) {
        struct bl_recent *r = &p->recent[i];
        if (r->fp != fp) continue;
        if (r->net == net)
            self = i;
        else if (t->ts - r->last_ts <= win && r->last_ts - t->ts <= win)
            other = i;
    }
    if (self < 0) {
        self = p->n_recent < BL_K_RECENT ? (long)p->n_recent++ : (long)min_slot_ts(p);
        memset(&p->recent[self], 0, sizeof p->recent[self]);
        p->recent[self].fp = fp;
        p->recent[self].net = net;
        p->recent[self].family = t->src.family;
        memcpy(p->recent[self].a, a, 16);
    }
    if (t->ts > p->recent[self].last_ts) p->recent[self].last_ts = t->ts;
    if (other < 0) return;
    /* one finding per episode: sharing that goes on extends it */
    bool episode = p->last_share_alert && t->ts - p->last_share_alert < BL_HOUR_US;
    if (episode) p->last_share_alert = t->ts;
    int64_t hour = floordiv(t->ts, BL_HOUR_US);
    if (p->conc_hour == hour) return;
    p->conc_hour = hour;
    /* New concurrency is what matters: two networks this credential has
     * been used from at the same time before (office and VPN) are its
     * habit; so is a known network beside another known one for a
     * credential that is often used from several at once. A network
     * never seen, or two that were never used together by a credential
     * that works from one at a time, is new. */
    const struct bl_recent *ro = &p->recent[other];
    long pi = find_pair(p, net, ro->net);
    bool known_self = find_net(p, t->src.family, a, 16) >= 0;
    bool known_other = find_net(p, ro->family, ro->a, 16) >= 0;
    bool shared_before = p->conc_hours >= 1.f && p->conc_hours >= 0.05f * p->active_hours;
    if (o->learning || pi >= 0 || (shared_before && known_self && known_other)) {
        p->conc_hours += 1.f;
        learn_pair(b, p, net, ro->net, 1.f, (int32_t)o->local_day);
        return;
    }
    bool fresh;
    struct bl_pending *e = pend_get(b, o, BL_P_CONC, fp ^ pair_key(net, ro->net), &fresh);
    if (pend_see(b, o, e)) {
        p->conc_hours += (float)e->days;
        learn_pair(b, p, net, ro->net, (float)e->days, (int32_t)o->local_day);
        pend_drop(p, e);
        return;
    }
    if (episode) return;
    p->last_share_alert = t->ts;
    char ns[64], ns2[64], ip[64];
    bl_net_str(t->src.family, a, ns, sizeof ns);
    bl_net_str(ro->family, ro->a, ns2, sizeof ns2);
    kw_addr_str(&t->src, ip, sizeof ip);
    float pct_self = net_share(p, t->src.family, a), pct_other = net_share(p, ro->family, ro->a);
    char why[160];
    if (!known_self || !known_other)
        snprintf(why, sizeof why, "%s was never used by it", !known_self ? ns : ns2);
    else
        snprintf(why, sizeof why, "it never used these two networks at the same time");
    emit(b, o, F_SHARING, cred,
         json_pack("{s:s,s:f,s:f,s:b,s:i}", "pattern",
                   shared_before ? "several networks at once" : "one network at a time",
                   "concurrent_hours", p->conc_hours, "active_hours", p->active_hours,
                   "seen_together_before", 0, "known_pairs", p->n_pair),
         json_pack("{s:s,s:[{s:s,s:b,s:f},{s:s,s:b,s:f}],s:I}", "src_ip", ip, "networks", "net",
                   ns2, "known", known_other, "share", pct_other, "net", ns, "known", known_self,
                   "share", pct_self, "window_s", (json_int_t)(win / 1000000)),
         "credential %s of %s active from %s (%s) and %s (%s) within %lld min; %s (%.0f of %.0f "
         "active hours shared)",
         t->cred.hint[0] ? t->cred.hint : "?", p->key, ns2,
         known_other ? "known" : "never seen", ns, known_self ? "known" : "never seen",
         (long long)(win / 60000000), why, p->conc_hours, p->active_hours);
}

/* ---- volume ---- */

static void sort_f(float *v, unsigned n)
{
    for (unsigned i = 1; i < n; i++) {
        float x = v[i];
        unsigned j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

static float median_mad(float *v, unsigned n, float *mad)
{
    sort_f(v, n);
    float med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    float dev[2 * BL_VOL_N];
    for (unsigned i = 0; i < n; i++)
        dev[i] = fabsf(v[i] - med);
    sort_f(dev, n);
    *mad = n % 2 ? dev[n / 2] : (dev[n / 2 - 1] + dev[n / 2]) / 2;
    return med;
}

bool bl_volstat(const struct bl_profile *p, int cls, struct bl_volstat *out)
{
    float r[2 * BL_VOL_N], y[2 * BL_VOL_N];
    unsigned n = 0;
    out->cls = cls;
    for (int c = 0; c < 2; c++) {
        if (p->vol[cls].n >= VOL_MIN_HOURS && c != cls)
            continue; /* the day class has enough hours of its own */
        for (uint32_t i = 0; i < p->vol[c].n; i++) {
            r[n] = (float)p->vol[c].req[i];
            y[n++] = p->vol[c].bytes[i];
        }
    }
    if (p->vol[cls].n < VOL_MIN_HOURS) out->cls = 2;
    out->n = n;
    if (n < VOL_MIN_HOURS) return false;
    out->med = median_mad(r, n, &out->mad);
    out->p10 = r[n / 10];
    out->p90 = r[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1];
    out->bmed = median_mad(y, n, &out->bmad);
    return true;
}

static void open_bucket(struct baseline *b, struct bl_profile *p, int64_t hour, int cls)
{
    const struct sens *s = &sens_tab[b->sens];
    p->cur_hour = hour;
    p->cur_req = 0;
    p->cur_bytes = 0;
    p->cur_alerted = 0;
    p->cur_cls = (uint8_t)cls;
    memset(p->top, 0, sizeof p->top);
    p->active_hours += 1.f;
    struct bl_volstat v;
    p->thr_req = p->thr_bytes = 0;
    if (!bl_volstat(p, cls, &v)) return;
    p->thr_req = fmaxf(fmaxf(v.med + s->vol_k * 1.4826f * v.mad, v.med * s->vol_ratio),
                       v.med + s->vol_min_req);
    p->thr_bytes = fmaxf(fmaxf(v.bmed + s->vol_k * 1.4826f * v.bmad, v.bmed * s->vol_ratio),
                         v.bmed + s->vol_min_bytes);
}

static void ring_add(struct bl_profile *p, int cls, uint32_t req, float bytes)
{
    struct bl_vol *v = &p->vol[cls];
    v->req[v->next] = req;
    v->bytes[v->next] = bytes;
    v->next = (v->next + 1) % BL_VOL_N;
    if (v->n < BL_VOL_N) v->n++;
}

/* Learns the closed hour; a spike hour is quarantined instead, and the
 * held spike hours are learned once they span `quarantine` over two days
 * (a lasting new level of work, not a one-off). */
static void close_bucket(struct baseline *b, struct bl_profile *p)
{
    if (p->cur_req == 0) return;
    if (!p->cur_alerted) {
        ring_add(p, p->cur_cls, p->cur_req, (float)p->cur_bytes);
    } else {
        b->st.quarantined++;
        if (p->n_vpend == BL_K_VPEND) {
            memmove(&p->vpend[0], &p->vpend[1], (BL_K_VPEND - 1) * sizeof p->vpend[0]);
            p->n_vpend--;
            b->st.evict_pending++;
        }
        struct bl_vpend *e = &p->vpend[p->n_vpend++];
        memset(e, 0, sizeof *e);
        e->hour_ts = p->cur_hour * BL_HOUR_US;
        e->req = p->cur_req;
        e->bytes = (float)p->cur_bytes;
        e->cls = p->cur_cls;
        kw_ts first = p->vpend[0].hour_ts;
        if (e->hour_ts - first >= b->quarantine &&
            floordiv(e->hour_ts, BL_DAY_US) != floordiv(first, BL_DAY_US)) {
            for (uint32_t i = 0; i < p->n_vpend; i++)
                ring_add(p, p->vpend[i].cls, p->vpend[i].req, p->vpend[i].bytes);
            memset(p->vpend, 0, sizeof p->vpend);
            p->n_vpend = 0;
            b->st.promoted++;
        }
    }
    p->cur_req = 0;
    p->cur_bytes = 0;
}

static void hourtop_add(struct bl_profile *p, const char *text)
{
    uint64_t h = bl_hash(text, strlen(text));
    for (int i = 0; i < BL_K_HOURTOP; i++)
        if (p->top[i].count && p->top[i].h == h) {
            p->top[i].count++;
            return;
        }
    for (int i = 0; i < BL_K_HOURTOP; i++)
        if (!p->top[i].count) {
            memset(&p->top[i], 0, sizeof p->top[i]);
            p->top[i].h = h;
            p->top[i].count = 1;
            set_text(p->top[i].text, BL_TXT, text);
            return;
        }
    for (int i = 0; i < BL_K_HOURTOP; i++) /* Misra-Gries: all pay for the newcomer */
        p->top[i].count--;
}

void bl_fmt_count(double v, char *buf, size_t n)
{
    if (v >= 1e9)
        snprintf(buf, n, "%.1fG", v / 1e9);
    else if (v >= 1e7)
        snprintf(buf, n, "%.1fM", v / 1e6);
    else if (v >= 1000) {
        long long x = llround(v);
        if (x >= 1000000)
            snprintf(buf, n, "%lld,%03lld,%03lld", x / 1000000, x / 1000 % 1000, x % 1000);
        else
            snprintf(buf, n, "%lld,%03lld", x / 1000, x % 1000);
    } else
        snprintf(buf, n, "%.0f", v);
}

static void check_volume(struct baseline *b, struct obs *o)
{
    struct bl_profile *p = o->p;
    if (o->learning || p->cur_alerted) return;
    bool req = p->thr_req > 0 && (float)p->cur_req > p->thr_req;
    bool by = p->thr_bytes > 0 && (float)p->cur_bytes > p->thr_bytes;
    if (!req && !by) return;
    p->cur_alerted = 1;
    struct bl_volstat v;
    if (!bl_volstat(p, p->cur_cls, &v)) return;
    int ti = 0;
    for (int i = 1; i < BL_K_HOURTOP; i++)
        if (p->top[i].count > p->top[ti].count) ti = i;
    double share = p->cur_req ? 100.0 * p->top[ti].count / p->cur_req : 0;
    char focus[BL_TXT + 32] = "spread over several endpoints";
    if (share >= 25) /* Misra-Gries counts are lower bounds: only a clear leader */
        snprintf(focus, sizeof focus, "%.0f %% to %s", share, p->top[ti].text);
    const char *days = v.cls == 0 ? "on weekdays" : v.cls == 1 ? "on weekends" : "";
    char lo[32], hi[32], now[32], hour[32];
    kw_ts_format_rfc3339(p->cur_hour * BL_HOUR_US, hour, sizeof hour);
    if (req) {
        bl_fmt_count(v.p10, lo, sizeof lo);
        bl_fmt_count(v.p90, hi, sizeof hi);
        bl_fmt_count(p->cur_req, now, sizeof now);
    } else {
        bl_fmt_count(v.bmed, lo, sizeof lo);
        bl_fmt_count(v.bmad, hi, sizeof hi);
        bl_fmt_count((double)p->cur_bytes, now, sizeof now);
    }
    emit(b, o, F_VOLUME, req ? "requests/h" : "bytes/h",
         json_pack("{s:f,s:f,s:f,s:f,s:f,s:f,s:i,s:f,s:f}", "requests_median", v.med,
                   "requests_mad", v.mad, "requests_p10", v.p10, "requests_p90", v.p90,
                   "bytes_median", v.bmed, "bytes_mad", v.bmad, "hours", v.n, "threshold_requests",
                   p->thr_req, "threshold_bytes", p->thr_bytes),
         json_pack("{s:I,s:I,s:s,s:s,s:f}", "requests", (json_int_t)p->cur_req, "bytes",
                   (json_int_t)p->cur_bytes, "hour", hour, "top_endpoint", p->top[ti].text,
                   "top_share", share),
         req ? "%s usually %s-%s requests/h %s; %s in the hour from %s so far, %s"
             : "%s usually %s bytes/h (MAD %s) %s; %s bytes in the hour from %s so far, %s",
         p->key, lo, hi, days, now, hour, focus);
}

/* ---- observe ---- */

static bool in_learning(const struct baseline *b, const struct bl_profile *p, kw_ts ts)
{
    return ts - p->first_seen < b->learning || p->active_days < b->min_days;
}

static void local_time(struct baseline *b, struct obs *o, const char *tz)
{
    int32_t off = 0;
    int64_t sec = floordiv(o->t->ts, 1000000);
    if (!bl_tz_offset(&b->tzc, tz, sec, &off)) b->st.tz_unknown++;
    o->local_sec = sec + off;
    o->local_day = floordiv(o->local_sec, 86400);
    o->local_hour = floordiv(o->local_sec, 3600);
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
    struct obs o = {.t = t, .p = p, .tz = tz, .emit = emit_fn, .user = user};
    local_time(b, &o, tz);
    decay(p, t->ts);
    if (o.local_day != p->last_day) {
        p->active_days++;
        p->last_day = (int32_t)o.local_day;
    }
    o.learning = in_learning(b, p, t->ts);
    b->st.learning += o.learning;

    int64_t hour = floordiv(t->ts, BL_HOUR_US);
    if (hour > p->cur_hour) { /* a late transaction counts in the open hour */
        close_bucket(b, p);
        open_bucket(b, p, hour, o.cls);
    }

    bool learn_hour;
    check_hour(b, &o, has_schedule, &learn_hour);
    check_endpoint(b, &o);
    check_source(b, &o);
    check_sharing(b, &o);
    check_client(b, &o);
    check_grants(b, &o);

    p->cur_req++;
    p->cur_bytes += t->resp_len;
    if (t->method[0] && t->template_[0]) {
        char text[BL_TXT + 32];
        snprintf(text, sizeof text, "%s %.*s", t->method, BL_TXT, t->template_);
        hourtop_add(p, text);
    }
    check_volume(b, &o);

    if (learn_hour && o.local_hour != p->local_hour) {
        p->how[o.wd * 24 + o.hod] += 1.f;
        p->local_hour = o.local_hour;
    }
    learn_agent(b, p, t->user_agent);
    p->requests++;
    if (t->ts > p->last_seen) p->last_seen = t->ts;
    set_text(p->tz, sizeof p->tz, tz ? tz : "");
    b->dirty[p - b->p] = 1;
}

/* volume_spike of one encrypted session: the bytes it moved against the
 * identity's sessions (baseline.h). Sessions are bucketed by log2 of their
 * bytes, so the test is "this many powers of two beyond where 99 % of its
 * sessions end", which needs no per-session memory and is not moved by one
 * large transfer among thousands. */
void baseline_observe_session(struct baseline *b, const struct kw_txn *t, const char *tz,
                              void (*emit_fn)(void *user, struct alert_finding *f), void *user)
{
    long i = t->identity.id[0] ? bl_find(b, t->identity.id) : -1;
    if (i < 0) return;
    struct bl_profile *p = &b->p[i];
    uint64_t bytes = t->req_len + t->resp_len;
    int k = bytes ? 63 - __builtin_clzll(bytes) : 0;
    if (k >= BL_SESS_B) k = BL_SESS_B - 1;
    static const int margin[] = {4, 3, 2}; /* low, medium, high: 16x, 8x, 4x */
    if (!in_learning(b, p, t->ts) && p->n_sess >= 20.f && bytes >= (1u << 20)) {
        float cum = 0, need = 0.99f * p->n_sess;
        int m = 0;
        for (; m < BL_SESS_B - 1; m++)
            if ((cum += p->sess[m]) >= need) break;
        if (k >= m + margin[b->sens]) {
            struct obs o = {.t = t, .p = p, .tz = tz, .emit = emit_fn, .user = user};
            local_time(b, &o, tz);
            char got[32], up[32], cs[32], sc[32], subj[300];
            bl_fmt_count((double)bytes, got, sizeof got);
            bl_fmt_count((double)((uint64_t)2 << m), up, sizeof up);
            bl_fmt_count((double)t->req_len, cs, sizeof cs);
            bl_fmt_count((double)t->resp_len, sc, sizeof sc);
            snprintf(subj, sizeof subj, "TLS session to %s",
                     t->tls.sni[0] ? t->tls.sni : "(no SNI)");
            emit(b, &o, F_VOLUME, subj,
                 json_pack("{s:I,s:i}", "session_bytes_p99_below", (json_int_t)((uint64_t)2 << m),
                           "sessions", (int)p->n_sess),
                 json_pack("{s:I,s:I,s:I}", "bytes", (json_int_t)bytes, "to_server",
                           (json_int_t)t->req_len, "to_client", (json_int_t)t->resp_len),
                 "%s moved %s bytes in one encrypted TLS session to %s (%s sent, %s received); "
                 "99 %% of its %.0f sessions moved less than %s",
                 p->key, got, t->tls.sni[0] ? t->tls.sni : "(no SNI)", cs, sc, p->n_sess, up);
        }
    }
    p->sess[k] += 1.f;
    p->n_sess += 1.f;
    if (p->n_sess > 10000.f) { /* old sessions weigh less, and floats stay exact */
        p->n_sess = 0;
        for (int j = 0; j < BL_SESS_B; j++)
            p->n_sess += (p->sess[j] *= 0.5f);
    }
    b->dirty[i] = 1;
}

void baseline_advance(struct baseline *b, kw_ts now)
{
    int64_t hour = floordiv(now, BL_HOUR_US);
    if (hour > b->swept_hour) {
        b->swept_hour = hour;
        for (uint32_t i = 0; i < b->n; i++)
            if (b->p[i].cur_req && b->p[i].cur_hour < hour) {
                close_bucket(b, &b->p[i]);
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
    e = KW_E_NOMEM;
    if (!b->p || !b->dirty || !b->index) goto fail;
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
        n += in_learning(b, &b->p[i], now);
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
