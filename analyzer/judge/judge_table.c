/* judge_table: the judge's bounded state (see judge_int.h). One fixed
 * table of keys per detection and one shared table of pairs, set-associative
 * with least-recently-seen eviction, so no input can grow them; their
 * checkpoint for restarts; and the sliding-window counter the windowed
 * detections use: two fixed buckets (the current and the previous window,
 * the previous one weighted by how much of it still overlaps), the classic
 * bounded approximation, exact when all events fall in one window. */
#include <stdlib.h>
#include <string.h>

#include "judge_int.h"

struct judge_policy *judge_policy_new(const struct judge_policy_limits *lim)
{
    size_t nk = lim && lim->keys ? lim->keys : 16384;
    size_t np = lim && lim->pairs ? lim->pairs : 65536;
    struct judge_policy *jp = calloc(1, sizeof *jp);
    if (!jp) return NULL;
    jp->key_sets = (nk + WAYS - 1) / WAYS;
    jp->pair_sets = (np + WAYS - 1) / WAYS;
    bool ok = true;
    for (int i = 0; i < TAG__KEYS; i++)
        ok &= (jp->keys[i] = calloc(jp->key_sets * WAYS, sizeof *jp->keys[i])) != NULL;
    jp->pairs = calloc(jp->pair_sets * WAYS, sizeof *jp->pairs);
    if (!ok || !jp->pairs) {
        judge_policy_destroy(jp);
        return NULL;
    }
    jp->key = kw_hkey_random(); /* replaced by a saved state's own (load) */
    return jp;
}

void judge_policy_destroy(struct judge_policy *jp)
{
    if (!jp) return;
    for (int i = 0; i < TAG__KEYS; i++)
        free(jp->keys[i]);
    free(jp->pairs);
    free(jp);
}

void judge_policy_get_counters(const struct judge_policy *jp, struct judge_policy_counters *out)
{
    *out = jp->cnt;
}

size_t judge_policy_keys_used(const struct judge_policy *jp)
{
    size_t n = 0;
    for (int t = 0; t < TAG__KEYS; t++)
        for (size_t i = 0; i < jp->key_sets * WAYS; i++)
            n += jp->keys[t][i].h != 0;
    return n;
}

size_t judge_policy_pairs_used(const struct judge_policy *jp)
{
    size_t n = 0;
    for (size_t i = 0; i < jp->pair_sets * WAYS; i++)
        n += jp->pairs[i].h != 0;
    return n;
}

/* ---- checkpoint ----------------------------------------------------- */

#define JP_MAGIC 0x3253504au /* "JPS2": JPS1 had no key (unkeyed FNV-1a) */

struct jp_blob_head {
    uint32_t magic, key_size, pair_size, ways;
    uint64_t key_sets, pair_sets;
    uint64_t k0, k1; /* the hash key every saved entry was placed with */
};

/* Appends the used slots of one table: a count, then (index, slot). */
static uint8_t *put_table(uint8_t *w, const void *tab, size_t slots, size_t size)
{
    uint64_t n = 0;
    uint8_t *count = w;
    w += sizeof n;
    for (uint64_t i = 0; i < slots; i++) {
        const uint8_t *slot = (const uint8_t *)tab + i * size;
        uint64_t h;
        memcpy(&h, slot, sizeof h); /* both slot types start with h; 0 = empty */
        if (!h) continue;
        memcpy(w, &i, sizeof i);
        memcpy(w + sizeof i, slot, size);
        w += sizeof i + size;
        n++;
    }
    memcpy(count, &n, sizeof n);
    return w;
}

enum kw_err judge_policy_save(const struct judge_policy *jp, uint8_t **blob, size_t *len)
{
    size_t nk = jp->key_sets * WAYS, np = jp->pair_sets * WAYS;
    size_t used_k = 0, used_p = judge_policy_pairs_used(jp);
    used_k = judge_policy_keys_used(jp);
    size_t cap = sizeof(struct jp_blob_head) + (TAG__KEYS + 1) * 8 +
                 used_k * (8 + sizeof(struct jp_key)) + used_p * (8 + sizeof(struct jp_pair));
    uint8_t *b = malloc(cap), *w = b;
    if (!b) return KW_E_NOMEM;
    struct jp_blob_head h = {JP_MAGIC,     sizeof(struct jp_key), sizeof(struct jp_pair), WAYS,
                             jp->key_sets, jp->pair_sets,           jp->key.k0,
                             jp->key.k1};
    memcpy(w, &h, sizeof h);
    w += sizeof h;
    for (int t = 0; t < TAG__KEYS; t++)
        w = put_table(w, jp->keys[t], nk, sizeof(struct jp_key));
    w = put_table(w, jp->pairs, np, sizeof(struct jp_pair));
    *blob = b;
    *len = (size_t)(w - b);
    return KW_E_OK;
}

static const uint8_t *get_table(const uint8_t *r, const uint8_t *end, void *tab, size_t slots,
                                size_t size)
{
    uint64_t n;
    if (!r || (size_t)(end - r) < sizeof n) return NULL;
    memcpy(&n, r, sizeof n);
    r += sizeof n;
    if (n > slots || (size_t)(end - r) < n * (8 + size)) return NULL;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t i;
        memcpy(&i, r, sizeof i);
        if (i >= slots) return NULL;
        memcpy((uint8_t *)tab + i * size, r + sizeof i, size);
        r += sizeof i + size;
    }
    return r;
}

enum kw_err judge_policy_load(struct judge_policy *jp, const uint8_t *blob, size_t len)
{
    size_t nk = jp->key_sets * WAYS, np = jp->pair_sets * WAYS;
    for (int t = 0; t < TAG__KEYS; t++)
        memset(jp->keys[t], 0, nk * sizeof *jp->keys[t]);
    memset(jp->pairs, 0, np * sizeof *jp->pairs);
    struct jp_blob_head h;
    if (len < sizeof h) return KW_E_UNSUPPORTED;
    memcpy(&h, blob, sizeof h);
    if (h.magic != JP_MAGIC || h.key_size != sizeof(struct jp_key) ||
        h.pair_size != sizeof(struct jp_pair) || h.ways != WAYS || h.key_sets != jp->key_sets ||
        h.pair_sets != jp->pair_sets)
        return KW_E_UNSUPPORTED;
    const uint8_t *r = blob + sizeof h, *end = blob + len;
    for (int t = 0; t < TAG__KEYS; t++)
        r = get_table(r, end, jp->keys[t], nk, sizeof(struct jp_key));
    r = get_table(r, end, jp->pairs, np, sizeof(struct jp_pair));
    if (r != end) {
        for (int t = 0; t < TAG__KEYS; t++)
            memset(jp->keys[t], 0, nk * sizeof *jp->keys[t]);
        memset(jp->pairs, 0, np * sizeof *jp->pairs);
        return KW_E_MALFORMED;
    }
    jp->key = (struct kw_hkey){h.k0, h.k1}; /* the entries were placed with it */
    return KW_E_OK;
}

/* ---- bounded tables ------------------------------------------------- */


static void feed(struct hasher *s, const void *p, size_t n)
{
    if (s->n + n > sizeof s->buf) {
        kw_sip_update(&s->s, s->buf, s->n);
        s->n = 0;
        if (n > sizeof s->buf) {
            kw_sip_update(&s->s, p, n);
            return;
        }
    }
    memcpy(s->buf + s->n, p, n);
    s->n += n;
}

void jp_hash_bytes(struct hasher *s, const void *p, size_t n)
{
    uint64_t len = n; /* length first: fields never run into each other */
    feed(s, &len, sizeof len);
    feed(s, p, n);
}

void jp_hash_str(struct hasher *s, const char *str)
{
    jp_hash_bytes(s, str, strlen(str));
}

uint64_t jp_hash_done(struct hasher *s)
{
    kw_sip_update(&s->s, s->buf, s->n);
    s->n = 0;
    uint64_t z = kw_sip_final(&s->s);
    return z ? z : 1; /* 0 marks a free slot */
}

struct hasher jp_hash_begin(const struct judge_policy *jp, enum jp_tag tag)
{
    struct hasher s;
    kw_sip_init(&s.s, &jp->key);
    s.n = 0;
    uint8_t t = (uint8_t)tag;
    jp_hash_bytes(&s, &t, 1);
    return s;
}

struct jp_key *jp_key_get(struct judge_policy *jp, enum jp_tag tag, uint64_t h, kw_ts now)
{
    struct jp_key *set = &jp->keys[tag][(h % jp->key_sets) * WAYS], *victim = NULL;
    for (int i = 0; i < WAYS; i++) {
        if (set[i].h == h) return &set[i];
        if (!victim || (victim->h && (!set[i].h || set[i].last < victim->last))) victim = &set[i];
    }
    if (victim->h) jp->cnt.key_evictions++;
    memset(victim, 0, sizeof *victim);
    victim->h = h;
    victim->last = now;
    victim->bucket = INT64_MIN;
    return victim;
}

/* True when h was not seen within `window` (and remembers it now). */
bool jp_pair_new(struct judge_policy *jp, uint64_t h, kw_ts now, kw_ts window)
{
    struct jp_pair *set = &jp->pairs[(h % jp->pair_sets) * WAYS], *victim = NULL;
    for (int i = 0; i < WAYS; i++) {
        if (set[i].h == h) {
            bool fresh = now - set[i].last >= window;
            set[i].last = now > set[i].last ? now : set[i].last;
            return fresh;
        }
        if (!victim || (victim->h && (!set[i].h || set[i].last < victim->last))) victim = &set[i];
    }
    if (victim->h && now - victim->last < window) jp->cnt.pair_evictions++;
    victim->h = h;
    victim->last = now;
    return true;
}

int64_t jp_floor_div(int64_t a, int64_t b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* Adds n events; returns true once when the estimate reaches threshold.
 * *est is the estimated count in the sliding window ending now. */
bool jp_slide_add(struct judge_policy *jp, struct jp_key *e, kw_ts now, kw_ts win, uint32_t n,
                  uint32_t threshold, uint32_t *est)
{
    int64_t b = jp_floor_div(now, win);
    if (now < e->last) jp->cnt.time_backwards++;
    if (e->bucket == INT64_MIN || b > e->bucket + 1) {
        e->cur = e->prev = 0;
        e->bucket = b;
    } else if (b == e->bucket + 1) {
        e->prev = e->cur;
        e->cur = 0;
        e->bucket = b;
    } /* b <= bucket: late event, counted in the current bucket */
    e->last = now > e->last ? now : e->last;
    e->cur = e->cur + n < e->cur ? UINT32_MAX : e->cur + n;
    kw_ts el = now - e->bucket * win;
    if (el < 0) el = 0;
    if (el > win) el = win;
    unsigned __int128 scaled = (unsigned __int128)e->cur * (uint64_t)win +
                               (unsigned __int128)e->prev * (uint64_t)(win - el);
    *est = (uint32_t)(scaled / (uint64_t)win);
    bool over = scaled >= (unsigned __int128)threshold * (uint64_t)win;
    if (!over) {
        e->fired &= (uint8_t)~1u;
        return false;
    }
    if (e->fired & 1) return false;
    e->fired |= 1;
    return true;
}
