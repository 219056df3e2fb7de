/* routes: learned route trees (see routes.h and docs/shapes.md).
 *
 * The one thing to know: nodes live in one array and are never freed. A
 * literal proven to be a value is not removed: it becomes an alias of the
 * parameter it was merged into, so the old literal still resolves (and a
 * saved model reloads the same way), and its children move under the
 * parameter. Literal children are found through one chained hash table
 * keyed by (parent, segment); parameters, few per node, by walking the
 * node's children. */
#include "routes_int.h"

#include "kw_hash.h"

#include <stdlib.h>
#include <string.h>

/* Segments come from request paths: keyed (kw_hash.h). The chains are
 * rebuilt on load (routes_db.c), so the key never needs to persist. */
static uint32_t hkey(uint32_t parent, const char *s, size_t n)
{
    struct kw_sip h;
    kw_sip_init(&h, kw_hkey_process());
    kw_sip_update(&h, &parent, sizeof parent);
    kw_sip_update(&h, s, n);
    return (uint32_t)kw_sip_final(&h);
}

static const char *seg_of(const struct routes *r, const struct rt_node *x)
{
    return r->arena + x->seg;
}

/* ---- storage ---- */

bool rt_arena_put(struct routes *r, const char *s, size_t n, uint32_t *off)
{
    if (r->alen + n + 1 > r->acap) {
        size_t nc = r->acap ? r->acap * 2 : 65536;
        while (nc < r->alen + n + 1)
            nc *= 2;
        if (nc > r->amax) nc = r->amax;
        if (r->alen + n + 1 > nc) return false;
        char *a = realloc(r->arena, nc);
        if (!a) return false;
        r->arena = a;
        r->acap = nc;
    }
    memcpy(r->arena + r->alen, s, n);
    r->arena[r->alen + n] = 0;
    *off = (uint32_t)r->alen;
    r->alen += n + 1;
    return true;
}

bool rt_reserve(struct routes *r, uint32_t n)
{
    if (n <= r->ncap) return true;
    if (n > r->c.max_nodes) return false;
    uint32_t nc = r->ncap ? r->ncap : 1024;
    while (nc < n)
        nc *= 2;
    if (nc > r->c.max_nodes) nc = r->c.max_nodes;
    struct rt_node *a = realloc(r->n, (size_t)nc * sizeof *a);
    if (!a) return false;
    r->n = a;
    uint8_t *d = realloc(r->dirty, nc);
    if (!d) return false;
    memset(d + r->ncap, 0, nc - r->ncap);
    r->dirty = d;
    r->ncap = nc;
    return true;
}

void rt_hash_insert(struct routes *r, uint32_t id)
{
    struct rt_node *x = &r->n[id];
    uint32_t b = hkey(x->parent, r->arena + x->seg, x->seg_len) & (r->nb - 1);
    x->hnext = r->bucket[b];
    r->bucket[b] = id;
}

static uint32_t node_new(struct routes *r, uint32_t parent, const char *seg, size_t n,
                         uint8_t flags, kw_ts ts)
{
    if (r->nn >= r->c.max_nodes || !rt_reserve(r, r->nn + 1)) return NIL;
    uint32_t off;
    if (!rt_arena_put(r, seg, n, &off)) return NIL;
    uint32_t id = r->nn++;
    struct rt_node *x = &r->n[id];
    memset(x, 0, sizeof *x);
    x->parent = parent;
    x->child = x->next = x->hnext = NIL;
    x->seg = off;
    x->seg_len = (uint16_t)n;
    x->flags = flags;
    x->first = x->last = ts;
    rt_touch(r, id);
    if (parent != NIL) {
        struct rt_node *p = &r->n[parent];
        x->depth = (uint16_t)(p->depth + 1);
        x->next = p->child;
        p->child = id;
        rt_touch(r, parent);
        if (!(flags & RT_PARAM)) rt_hash_insert(r, id);
    }
    r->st.nodes = r->nn;
    return id;
}

static uint32_t resolve(const struct routes *r, uint32_t id)
{
    while (id != NIL && r->n[id].alias)
        id = r->n[id].alias - 1;
    return id;
}

/* The literal child `seg` of parent (resolved through merges), or NIL. */
static uint32_t find_literal(const struct routes *r, uint32_t parent, const char *s, size_t n)
{
    uint32_t b = hkey(parent, s, n) & (r->nb - 1);
    for (uint32_t i = r->bucket[b]; i != NIL; i = r->n[i].hnext) {
        const struct rt_node *x = &r->n[i];
        if (x->parent == parent && x->seg_len == n && !memcmp(seg_of(r, x), s, n))
            return resolve(r, i);
    }
    return NIL;
}

static uint32_t find_param(const struct routes *r, uint32_t parent, const char *suf, size_t n)
{
    for (uint32_t i = r->n[parent].child; i != NIL; i = r->n[i].next) {
        const struct rt_node *x = &r->n[i];
        if ((x->flags & RT_PARAM) && !x->alias && x->seg_len == n && !memcmp(seg_of(r, x), suf, n))
            return i;
    }
    return NIL;
}

static void hash_unlink(struct routes *r, uint32_t id)
{
    struct rt_node *x = &r->n[id];
    uint32_t b = hkey(x->parent, seg_of(r, x), x->seg_len) & (r->nb - 1);
    for (uint32_t *p = &r->bucket[b]; *p != NIL; p = &r->n[*p].hnext)
        if (*p == id) {
            *p = x->hnext;
            x->hnext = NIL;
            return;
        }
}

/* ---- services ---- */

static uint32_t service_get(struct routes *r, const char *key, bool create, kw_ts ts)
{
    size_t n = strlen(key);
    uint32_t h = hkey(NIL, key, n);
    for (uint32_t i = h & (r->svc_cap - 1);; i = (i + 1) & (r->svc_cap - 1)) {
        uint32_t v = r->svc_index[i];
        if (!v) {
            if (!create) return NIL;
            if (r->nsvc >= r->c.max_services) {
                r->st.limit_services++;
                return NIL;
            }
            uint32_t root = node_new(r, NIL, "", 0, RT_VERSION, ts), off;
            if (root == NIL || !rt_arena_put(r, key, n, &off)) {
                r->st.limit_nodes++;
                return NIL;
            }
            r->svc[r->nsvc] = (struct rt_service){root, off, (uint16_t)n};
            r->svc_index[i] = ++r->nsvc;
            r->st.services = r->nsvc;
            return root;
        }
        const struct rt_service *s = &r->svc[v - 1];
        if (s->key_len == n && !memcmp(r->arena + s->key, key, n)) return s->root;
    }
}

enum kw_err rt_add_service(struct routes *r, const char *key, uint32_t root)
{
    size_t n = strlen(key);
    uint32_t h = hkey(NIL, key, n), off;
    if (r->nsvc >= r->c.max_services) return KW_E_LIMIT;
    for (uint32_t i = h & (r->svc_cap - 1);; i = (i + 1) & (r->svc_cap - 1)) {
        uint32_t v = r->svc_index[i];
        if (v) {
            const struct rt_service *s = &r->svc[v - 1];
            if (s->key_len == n && !memcmp(r->arena + s->key, key, n)) return KW_E_OK;
            continue;
        }
        if (!rt_arena_put(r, key, n, &off)) return KW_E_NOMEM;
        r->svc[r->nsvc] = (struct rt_service){root, off, (uint16_t)n};
        r->svc_index[i] = ++r->nsvc;
        return KW_E_OK;
    }
}

static const char *service_key_of(const struct routes *r, uint32_t node)
{
    while (r->n[node].parent != NIL)
        node = r->n[node].parent;
    for (uint32_t i = 0; i < r->nsvc; i++)
        if (r->svc[i].root == node) return r->arena + r->svc[i].key;
    return "";
}

/* ---- templates ---- */

struct tbuf {
    char *p;
    size_t cap, len;
};

static void tput(struct tbuf *t, const char *s, size_t n)
{
    for (size_t i = 0; i < n && t->len + 1 < t->cap; i++)
        t->p[t->len++] = s[i];
    if (t->cap) t->p[t->len] = 0;
}

/* A parameter's segment is its affix: what surrounds the value, with
 * AFFIX_VALUE where the value goes ("\1" plain, "\1.json", "\1:cancel",
 * "Updates('\1')"); no normalised path holds that byte. */
#define AFFIX_VALUE '\1'

static void put_node(const struct routes *r, struct tbuf *t, const struct rt_node *x)
{
    tput(t, "/", 1);
    if (!(x->flags & RT_PARAM)) {
        tput(t, seg_of(r, x), x->seg_len);
        return;
    }
    const char *a = seg_of(r, x), *v = memchr(a, AFFIX_VALUE, x->seg_len);
    size_t pl = v ? (size_t)(v - a) : 0;
    tput(t, a, pl);
    tput(t, "{id}", 4);
    if (v) tput(t, v + 1, x->seg_len - pl - 1);
}

/* The affix of segment s[0..n) into buf (cap >= 64); its length. */
static size_t affix_of(const char *s, size_t n, char *buf, size_t cap)
{
    size_t pre, core = shape_split(s, n, &pre), suf = n - pre - core;
    if (pre + suf + 1 > cap) pre = suf = 0;
    memcpy(buf, s, pre);
    buf[pre] = AFFIX_VALUE;
    memcpy(buf + pre + 1, s + pre + core, suf);
    return pre + 1 + suf;
}

/* The template of a (live) node; slash: with a trailing '/'. */
static size_t node_template(const struct routes *r, uint32_t id, bool slash, char *out, size_t cap)
{
    uint32_t path[256];
    unsigned k = 0;
    for (uint32_t i = id; r->n[i].parent != NIL && k < 256; i = r->n[i].parent)
        path[k++] = i;
    struct tbuf t = {out, cap, 0};
    if (cap) out[0] = 0;
    while (k)
        put_node(r, &t, &r->n[path[--k]]);
    if (!t.len || slash) tput(&t, "/", 1);
    return t.len;
}

/* ---- merging ---- */

static void merge_into(struct routes *r, uint32_t src, uint32_t dst);

/* Moves child c (of a node being merged) under dst. */
static void adopt(struct routes *r, uint32_t c, uint32_t dst)
{
    struct rt_node *x = &r->n[c];
    rt_touch(r, c);
    rt_touch(r, dst);
    uint32_t same = x->flags & RT_PARAM ? find_param(r, dst, seg_of(r, x), x->seg_len)
                                        : find_literal(r, dst, seg_of(r, x), x->seg_len);
    if (!(x->flags & RT_PARAM)) hash_unlink(r, c);
    if (same != NIL) {
        x->parent = dst; /* for merge_into's bookkeeping only: x becomes an alias */
        merge_into(r, c, same);
        return;
    }
    x->parent = dst;
    x->next = r->n[dst].child;
    r->n[dst].child = c;
    if (!(x->flags & RT_PARAM)) rt_hash_insert(r, c);
}

/* Folds src (and its subtree) into dst; src becomes an alias of dst. */
static void merge_into(struct routes *r, uint32_t src, uint32_t dst)
{
    struct rt_node *s = &r->n[src], *d = &r->n[dst];
    rt_touch(r, src);
    rt_touch(r, dst);
    d->count += s->count;
    d->ends += s->ends;
    d->ends_slash += s->ends_slash;
    d->flags |= s->flags & (RT_END | RT_END_SLASH);
    d->kinds |= s->kinds;
    d->methods |= s->methods;
    if (s->first < d->first) d->first = s->first;
    if (s->last > d->last) d->last = s->last;
    uint32_t c = s->child;
    s->child = NIL;
    s->alias = dst + 1;
    while (c != NIL) {
        uint32_t next = r->n[c].next;
        r->n[c].next = NIL;
        adopt(r, c, dst);
        c = next;
    }
}

struct endref {
    uint32_t node;
    uint8_t slash;
    char *old;
};

static void collect_ends(const struct routes *r, uint32_t id, struct endref **v, size_t *n,
                         size_t *cap)
{
    const struct rt_node *x = &r->n[id];
    for (int s = 0; s < 2; s++) {
        if (!(x->flags & (s ? RT_END_SLASH : RT_END))) continue;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            struct endref *a = realloc(*v, nc * sizeof *a);
            if (!a) return;
            *v = a;
            *cap = nc;
        }
        (*v)[(*n)++] = (struct endref){id, (uint8_t)s, NULL};
    }
    for (uint32_t c = x->child; c != NIL; c = r->n[c].next)
        collect_ends(r, c, v, n, cap);
}

/* Merges the weak literals lits[0..n) of parent into its parameter with
 * suffix `suf` (created when missing) and reports renamed templates. */
static void merge_group(struct routes *r, uint32_t parent, const uint32_t *lits, size_t n,
                        const char *suf, size_t suflen, kw_ts ts)
{
    uint32_t p = find_param(r, parent, suf, suflen);
    if (p == NIL) p = node_new(r, parent, suf, suflen, RT_PARAM, ts);
    if (p == NIL) {
        r->st.limit_nodes++;
        return;
    }
    struct endref *v = NULL;
    size_t nv = 0, cap = 0;
    for (size_t i = 0; i < n; i++)
        collect_ends(r, lits[i], &v, &nv, &cap);
    char buf[512];
    for (size_t i = 0; i < nv; i++) {
        node_template(r, v[i].node, v[i].slash, buf, sizeof buf);
        v[i].old = strdup(buf);
    }
    for (size_t i = 0; i < n; i++) {
        merge_into(r, lits[i], p);
        r->st.merges++;
    }
    const char *svc = service_key_of(r, parent);
    for (size_t i = 0; i < nv; i++) {
        node_template(r, resolve(r, v[i].node), v[i].slash, buf, sizeof buf);
        if (v[i].old && strcmp(v[i].old, buf)) {
            r->st.renamed++;
            if (r->c.on_merge) r->c.on_merge(r->c.user, svc, v[i].old, buf);
        }
        free(v[i].old);
    }
    free(v);
}

static size_t lit_affix(const struct routes *r, uint32_t id, char *buf, size_t cap)
{
    return affix_of(seg_of(r, &r->n[id]), r->n[id].seg_len, buf, cap);
}

/* Do a and b continue alike: a literal child of the same name (a merged
 * one counts: it resolves to the parameter), or with params, a parameter
 * child with the same suffix? */
static bool share(const struct routes *r, uint32_t a, uint32_t b, bool params)
{
    for (uint32_t c = r->n[a].child; c != NIL; c = r->n[c].next) {
        const struct rt_node *x = &r->n[c];
        if (x->alias || (x->flags & RT_VERSION)) continue; /* /svc/a/v3, /svc/b/v3: APIs */
        if (x->flags & RT_PARAM) {
            if (params && find_param(r, b, seg_of(r, x), x->seg_len) != NIL) return true;
        } else if (find_literal(r, b, seg_of(r, x), x->seg_len) != NIL) {
            return true;
        }
    }
    return false;
}

/* Do a and b continue alike two segments deep, through a literal
 * (/zones/us-east-1/clusters/{id} and /zones/eu-west-1/clusters/{id})? */
static bool share_deep(const struct routes *r, uint32_t a, uint32_t b)
{
    for (uint32_t c = r->n[a].child; c != NIL; c = r->n[c].next) {
        const struct rt_node *x = &r->n[c];
        if (x->alias || (x->flags & (RT_VERSION | RT_PARAM))) continue;
        uint32_t cb = find_literal(r, b, seg_of(r, x), x->seg_len);
        if (cb != NIL && cb != c && (share(r, c, cb, true) || share(r, cb, c, true))) return true;
    }
    return false;
}

/* A route number still waiting for a second value (/api/7/..., rule of
 * first sight): every literal number in the paths of the 281 public APIs
 * is one (37: apitore's /api/{n}/, spectrocoin's /api/merchant/1/), and
 * each heads one API, the way a version does. Until a sibling number makes
 * it a value, its children are routes under an API root: not in a value
 * position, and rule 3 asks for the top thresholds. */
static bool route_number(const struct routes *r, uint32_t id)
{
    const struct rt_node *x = &r->n[id];
    return (x->flags & RT_STRONG) && !x->alias && x->kinds == 1u << SHAPE_INT && x->seg_len <= 2;
}

static bool is_leaf(const struct routes *r, uint32_t a)
{
    for (uint32_t c = r->n[a].child; c != NIL; c = r->n[c].next)
        if (!r->n[c].alias) return false;
    return true;
}

struct group {
    uint32_t m[MAX_GROUP + 1];
    uint8_t uf[MAX_GROUP + 1];
    size_t n;
};

static void uf_join(struct group *g, size_t a, size_t b)
{
    uint8_t from = g->uf[b], to = g->uf[a];
    if (from == to) return;
    for (size_t k = 0; k < g->n; k++)
        if (g->uf[k] == from) g->uf[k] = to;
}

/* Merges the literals of the first component of g (members linked by
 * link()) with at least `min` members, the parameter x (if present)
 * counting as one; true when a merge happened. */
static bool merge_component(struct routes *r, uint32_t parent, struct group *g, uint32_t x,
                            unsigned min, kw_ts spread, const char *suf, size_t sl, kw_ts ts)
{
    for (size_t c = 0; c < g->n; c++) {
        uint32_t lits[MAX_GROUP];
        size_t nl = 0, members = 0;
        bool with_x = false;
        kw_ts lo = INT64_MAX, hi = INT64_MIN;
        for (size_t k = 0; k < g->n; k++) {
            if (g->uf[k] != c) continue;
            members++;
            if (g->m[k] == x) {
                with_x = true;
                continue;
            }
            lits[nl++] = g->m[k];
            if (r->n[g->m[k]].first < lo) lo = r->n[g->m[k]].first;
            if (r->n[g->m[k]].first > hi) hi = r->n[g->m[k]].first;
        }
        /* siblings first seen together are the API's routes; one that
         * comes a day later and continues like them is a new value (a
         * parameter already there needs no more proof) */
        if (nl && members >= 2 && members >= min && (with_x || hi - lo >= spread)) {
            merge_group(r, parent, lits, nl, suf, sl, ts);
            return true;
        }
    }
    return false;
}

/* The first segments of a path are the API's prefixes (/v1, /users,
 * /orders), and a contractor uses the ones it needs from its first day.
 * When they are values (S3's path-style /{Bucket}/..., /{tenant}/...) new
 * ones keep coming: a component of root_min or more first segments that
 * continue alike, root_late of them first seen `settle` or more after the
 * service's first request, is one parameter. */
static bool root_late(struct routes *r, uint32_t root, struct group *g, const char *suf, size_t sl,
                      kw_ts ts)
{
    kw_ts t0 = r->n[root].first;
    for (size_t c = 0; c < g->n; c++) {
        uint32_t lits[MAX_GROUP];
        size_t nl = 0, late = 0;
        bool with_x = false;
        for (size_t k = 0; k < g->n; k++) {
            if (g->uf[k] != c) continue;
            if (r->n[g->m[k]].flags & RT_PARAM) {
                with_x = true;
                continue;
            }
            lits[nl++] = g->m[k];
            late += r->n[g->m[k]].first - t0 >= r->c.settle;
        }
        /* once the parameter exists, a newcomer that continues like it
         * joins it (it would have matched it had it been a leaf value) */
        if (nl && (with_x || (nl >= r->c.root_min && late >= r->c.root_late))) {
            merge_group(r, root, lits, nl, suf, sl, ts);
            return true;
        }
    }
    /* Path-style buckets used only as a whole (S3's /{Bucket}?acl) are
     * leaves that continue with nothing. Leaf first segments are rare in
     * APIs: 277 of the 281 public specs have fewer than 5 (the others: aws
     * iot 14, zalando 8, motaword 7, solarvps 5), so root_leaves_min leaves,
     * root_late of them late, are values too. */
    uint32_t lits[MAX_GROUP];
    size_t nl = 0, late = 0;
    for (size_t k = 0; k < g->n; k++)
        if (!(r->n[g->m[k]].flags & RT_PARAM) && is_leaf(r, g->m[k])) {
            lits[nl++] = g->m[k];
            late += r->n[g->m[k]].first - t0 >= r->c.settle;
        }
    if (nl >= r->c.root_leaves_min && late >= r->c.root_late) {
        merge_group(r, root, lits, nl, suf, sl, ts);
        return true;
    }
    return false;
}

/* The '.' extension of segment s[0..n) (shape_core's suffix): its
 * offset, or 0 when it has none. */
static size_t ext_at(const char *s, size_t n)
{
    size_t core = shape_core(s, n);
    return core && core < n && s[core] == '.' ? core : 0;
}

/* The affix of a value in the extension of a stem: "directions.\1". */
static size_t ext_affix(const char *s, size_t stem, char *buf, size_t cap)
{
    if (stem + 2 > cap) return 0;
    memcpy(buf, s, stem + 1);
    buf[stem + 1] = AFFIX_VALUE;
    return stem + 2;
}

/* Rule 0, formats: one stem seen with two extensions (/directions.json,
 * /directions.kml) is one resource in several formats, and the extension
 * is its value (/directions.{id}). Formats end a path: among the 281
 * public APIs' route words, stems with several extensions that are leaves
 * are one pair (europeana's search.json and search.rss, two documented
 * endpoints); the others are Azure's providers (Microsoft.Sql/servers,
 * Microsoft.Cdn/profiles), never leaves. */
static bool formats(struct routes *r, uint32_t parent, kw_ts ts)
{
    for (uint32_t c = r->n[parent].child; c != NIL; c = r->n[c].next) {
        const struct rt_node *x = &r->n[c];
        const char *s = seg_of(r, x);
        size_t e = x->alias || (x->flags & RT_PARAM) || !is_leaf(r, c) ? 0 : ext_at(s, x->seg_len);
        if (!e) continue;
        uint32_t lits[MAX_GROUP];
        size_t nl = 0;
        for (uint32_t d = r->n[parent].child; d != NIL && nl < MAX_GROUP; d = r->n[d].next) {
            const struct rt_node *y = &r->n[d];
            const char *t = seg_of(r, y);
            if (!y->alias && !(y->flags & RT_PARAM) && is_leaf(r, d) &&
                ext_at(t, y->seg_len) == e && !memcmp(s, t, e))
                lits[nl++] = d;
        }
        char af[64];
        size_t al = ext_affix(s, e, af, sizeof af);
        if (nl >= 2 && al) {
            merge_group(r, parent, lits, nl, af, al, ts);
            return true;
        }
    }
    return false;
}

/* Runs the evidence rules on the children of parent (docs/shapes.md):
 * 1. siblings ending in the same ":verb" are one value (AIP-136);
 * 2. id-shaped literals, and words in a value position, are one value
 *    with any sibling that continues alike or is a leaf;
 * 3. other words are one value when they share a continuation, or when
 *    there are many distinct leaves.
 * The first segment of a path (children of the root) never merges; under
 * a version or a first segment the thresholds of rule 3 are higher. */
static void evidence(struct routes *r, uint32_t parent, kw_ts ts)
{
    if (r->n[parent].alias || formats(r, parent, ts)) return;
    const struct rt_node *p = &r->n[parent];
    /* the root's children are the API's prefixes (/v1, /api, /users):
     * only file-like leaves there (/ohio.json) can be values */
    bool root = p->parent == NIL;
    bool top =
        root || (p->flags & RT_VERSION) || route_number(r, parent) || r->n[p->parent].parent == NIL;
    uint32_t lits[MAX_GROUP];
    size_t nl = 0;
    for (uint32_t c = p->child; c != NIL && nl < MAX_GROUP; c = r->n[c].next) {
        const struct rt_node *x = &r->n[c];
        if (!x->alias && !(x->flags & (RT_PARAM | RT_VERSION))) lits[nl++] = c;
    }
    if (!nl) return;
    /* words after a route number and a literal are in a value position
     * only once the number is a value (it resolves to a parameter) */
    uint8_t idf = p->parent != NIL && route_number(r, p->parent) ? RT_STRONG : RT_STRONG | RT_VPOS;
    char af[64], a2[64];
    unsigned smin = top ? r->c.shared_min_top : r->c.shared_min;
    unsigned lmin = top                     ? r->c.leaves_min_top
                    : (p->flags & RT_PARAM) ? r->c.leaves_min_param
                                            : r->c.leaves_min;
    /* Each rule looks at the siblings with one affix (plain, ".json",
     * ":cancel", "Orders(\1)") and the parameter with that affix. */
    for (int rule = 1; rule <= 3; rule++)
        for (size_t i = 0; i < nl; i++) {
            const struct rt_node *li = &r->n[lits[i]];
            bool idv = li->flags & idf;
            size_t al = lit_affix(r, lits[i], af, sizeof af);
            bool verb = al >= 3 && af[0] == AFFIX_VALUE && af[1] == ':';
            if ((rule == 1 && !verb) || (rule == 2 && (verb || !idv)) ||
                (rule == 3 && (verb || idv)) || (root && rule != 3))
                continue;
            /* plain first segments: only the late-arrivals rule below */
            bool root_plain = root && al < 2;
            struct group g = {.n = 0};
            uint32_t x = find_param(r, parent, af, al);
            if (x != NIL) g.m[g.n++] = x;
            size_t leaves = 0;
            for (size_t k = 0; k < nl; k++) {
                const struct rt_node *lk = &r->n[lits[k]];
                bool idk = lk->flags & idf;
                size_t l2 = lit_affix(r, lits[k], a2, sizeof a2);
                if (l2 != al || memcmp(a2, af, al) || (rule == 2 && !idk) || (rule == 3 && idk))
                    continue;
                g.m[g.n++] = lits[k];
                leaves += is_leaf(r, lits[k]);
            }
            for (size_t k = 0; k < g.n; k++)
                g.uf[k] = (uint8_t)(rule == 1 ? 0 : k);
            /* at the root a shared parameter counts too: path-style
             * buckets (/{Bucket}/{Key}) continue with a value, nothing else */
            bool withp = rule == 2 || root_plain;
            for (size_t a = 0; rule > 1 && a < g.n; a++)
                for (size_t b = a + 1; b < g.n; b++)
                    if ((rule == 2 && (is_leaf(r, g.m[a]) || is_leaf(r, g.m[b]))) ||
                        share(r, g.m[a], g.m[b], withp) || share(r, g.m[b], g.m[a], withp))
                        uf_join(&g, a, b);
            if (root_plain) {
                if (root_late(r, parent, &g, af, al, ts)) return;
                continue;
            }
            /* ids wait for nothing but a second value; words for time */
            /* words that continue alike two segments deep, through a
             * literal, are values at once: of the 281 public APIs' route
             * words only 7 pairs (5 APIs) below a second segment do that
             * (docs/shapes.md); at the top, route words do it often */
            if (rule >= 2 && !top && g.n >= 2) {
                struct group d = g;
                for (size_t k = 0; k < d.n; k++)
                    d.uf[k] = (uint8_t)k;
                for (size_t a = 0; a < d.n; a++)
                    for (size_t b = a + 1; b < d.n; b++)
                        if (share_deep(r, d.m[a], d.m[b])) uf_join(&d, a, b);
                if (merge_component(r, parent, &d, x, 2, 0, af, al, ts)) return;
            }
            kw_ts spread = rule == 3 ? r->c.settle : 0;
            for (size_t k = 0; rule == 2 && k < g.n; k++)
                if (r->n[g.m[k]].flags & idf) spread = r->c.settle;
            if (!root &&
                merge_component(r, parent, &g, x, rule == 3 ? smin : 2, spread, af, al, ts))
                return;
            if (rule != 3 || leaves < lmin) continue;
            /* many leaves, and new ones kept coming after the first day */
            uint32_t pick[MAX_GROUP];
            size_t m = 0, late = 0;
            for (size_t k = 0; k < g.n; k++)
                if (g.m[k] != x && is_leaf(r, g.m[k])) {
                    pick[m++] = g.m[k];
                    late += r->n[g.m[k]].first - p->first >= r->c.settle;
                }
            if (late < 3) continue;
            merge_group(r, parent, pick, m, af, al, ts);
            return;
        }
}

#define WEAK_KINDS ((1u << SHAPE_WORD) | (1u << SHAPE_NAME))

/* Rule 5, item methods: two sibling words each the target of a DELETE are
 * items of a collection, not its routes (DELETE removes the one resource
 * the path names). Among the 281 public APIs, 12 parents have two or more
 * literal children that are documented DELETE targets: 8 of them are
 * parameters, whose children are an item's sub-resources (box's
 * /files/{id}/trash and /watermark, workdocs, spotify, clarify,
 * bitbucket), so a parameter's children are left alone; the 4 literal
 * ones (sendgrid /v3/suppression and /v3/contactdb, spotify /v1/me,
 * gitlab's repository/{files,merged_branches}) merge when a contractor
 * deletes two of their routes. A parameter of word values already there
 * counts as one. Not at the root (rule 4 decides first segments). */
static void items(struct routes *r, uint32_t parent, kw_ts ts)
{
    const struct rt_node *p = &r->n[parent];
    if (p->alias || p->parent == NIL || (p->flags & RT_PARAM)) return;
    for (uint32_t c = p->child; c != NIL; c = r->n[c].next) {
        const struct rt_node *x = &r->n[c];
        if (x->alias || (x->flags & (RT_PARAM | RT_VERSION)) || !(x->methods & RT_M_DELETE))
            continue;
        char af[64], a2[64];
        size_t al = lit_affix(r, c, af, sizeof af);
        uint32_t lits[MAX_GROUP];
        size_t nl = 0;
        for (uint32_t d = c; d != NIL && nl < MAX_GROUP; d = r->n[d].next) {
            const struct rt_node *y = &r->n[d];
            if (y->alias || (y->flags & (RT_PARAM | RT_VERSION)) || !(y->methods & RT_M_DELETE))
                continue;
            size_t l2 = lit_affix(r, d, a2, sizeof a2);
            if (l2 == al && !memcmp(a2, af, al)) lits[nl++] = d;
        }
        uint32_t xp = find_param(r, parent, af, al);
        bool with_x = xp != NIL && (r->n[xp].kinds & WEAK_KINDS);
        if (nl + with_x >= 2) {
            merge_group(r, parent, lits, nl, af, al, ts);
            return;
        }
    }
}

static unsigned method_bit(const char *m)
{
    return m && !strcmp(m, "DELETE") ? RT_M_DELETE : 0;
}

/* ---- the walk ---- */

struct segc {
    const char *s;
    size_t n, pre, core, alen;
    enum shape_kind k;
    char affix[64];
};

static void classify(struct segc *g, const char *s, size_t n)
{
    g->s = s;
    g->n = n;
    g->core = shape_split(s, n, &g->pre);
    g->k = shape_classify(s + g->pre, g->core);
    g->alen = affix_of(s, n, g->affix, sizeof g->affix);
}

/* An API's version: the first version, date (/2015-03-31/functions,
 * /amazonclouddirectory/2017-01-11) or, as the first segment, number
 * (/2/tweets) in the literal prefix (no value above), within the first
 * three segments (a v-version: four). Its children never merge by
 * evidence. */
static bool is_versionish(const struct segc *g, unsigned depth, bool prefix)
{
    if (!prefix || depth > 3) return false;
    /* a v-version as deep as the fourth segment (/_ah/api/airportsapi/v1,
     * the only route version that deep in the 281 public APIs); a dotted
     * number there is a release (/bots/{name}/versions/3.1.9) */
    if (depth == 3) return g->k == SHAPE_VERSION && (g->s[0] == 'v' || g->s[0] == 'V');
    return g->k == SHAPE_VERSION || g->k == SHAPE_DATE || (depth == 0 && g->k == SHAPE_INT);
}

/* An id shape: a value unless it is the API's version. A first segment
 * is never a value. */
static bool id_shaped(const struct segc *g, unsigned depth, bool prefix)
{
    if (g->pre) return true; /* an OData key, Updates('x'): always a value */
    if (depth == 0 || is_versionish(g, depth, prefix)) return false;
    return shape_is_strong(g->k) || g->k == SHAPE_VERSION;
}

size_t routes_template(struct routes *r, const char *service, const char *method, const char *path,
                       size_t len, bool learn, kw_ts ts, char *out, size_t cap)
{
    struct tbuf t = {out, cap, 0};
    if (cap) out[0] = 0;
    uint32_t node = service_get(r, service, learn, ts);
    if (node == NIL) learn = false;
    if (learn)
        r->st.learned++;
    else
        r->st.looked_up++;
    bool prefix = true, created = false, off_tree = node == NIL;
    uint32_t news[64];
    unsigned nnew = 0, depth = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && path[i] == '/')
            i++;
        if (i >= len) break;
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        struct segc g;
        classify(&g, path + i, j - i);
        if (g.n > MAX_SEG || depth >= r->c.max_depth) {
            if (!off_tree && learn && depth >= r->c.max_depth) r->st.too_deep++;
            off_tree = true;
        }
        bool idsh = id_shaped(&g, depth, prefix);
        uint32_t next = NIL;
        if (!off_tree) {
            next = find_literal(r, node, g.s, g.n);
            if (next == NIL) {
                uint32_t pp = find_param(r, node, g.affix, g.alen);
                /* a plain parameter at the root exists only by evidence
                 * (root_late): then a first segment may be its value */
                if (pp != NIL && (idsh || ((r->n[pp].kinds & WEAK_KINDS) && g.k != SHAPE_VERSION)))
                    next = pp;
                /* a new format of a stem seen in several (rule 0) */
                size_t e = next == NIL && !g.pre ? ext_at(g.s, g.n) : 0;
                char ea[64];
                size_t el = e ? ext_affix(g.s, e, ea, sizeof ea) : 0;
                if (el) next = find_param(r, node, ea, el);
            }
            if (next == NIL && learn) {
                /* a value position: after a parameter and a literal
                 * (/{id}/servers/x), where REST puts the next value */
                const struct rt_node *nd = &r->n[node];
                bool vpos = !prefix && !(nd->flags & (RT_PARAM | RT_VERSION)) &&
                            nd->parent != NIL &&
                            (r->n[nd->parent].flags & (RT_PARAM | RT_STRONG | RT_VPOS));
                /* an id shape is a parameter at first sight, but for a
                 * route number: the literal numbers of the 281 public
                 * APIs have one or two digits and lie in the literal
                 * prefix, second or third segment (/api/16/...,
                 * /api/merchant/1/...); such a number waits for a second
                 * value (/users/42 may be either) */
                bool route_number =
                    g.k == SHAPE_INT && prefix && (depth == 1 || depth == 2) && g.core <= 2;
                bool first_sight = idsh && !route_number;
                uint8_t fl = first_sight                        ? RT_PARAM
                             : idsh                             ? RT_STRONG
                             : is_versionish(&g, depth, prefix) ? RT_VERSION
                             : vpos                             ? RT_VPOS
                                                                : 0;
                next = first_sight ? node_new(r, node, g.affix, g.alen, fl, ts)
                                   : node_new(r, node, g.s, g.n, fl, ts);
                if (next == NIL) {
                    r->st.limit_nodes++;
                } else {
                    r->n[next].kinds = (uint16_t)(1u << g.k);
                    created = true;
                    if (!first_sight && nnew < 64) news[nnew++] = next;
                }
            }
            if (next == NIL) off_tree = true;
        }
        if (off_tree) { /* not in the model: by shape alone */
            tput(&t, "/", 1);
            if (idsh) {
                tput(&t, g.s, g.pre);
                tput(&t, "{id}", 4);
                tput(&t, g.s + g.pre + g.core, g.n - g.pre - g.core);
            } else {
                tput(&t, g.s, g.n);
            }
        } else {
            struct rt_node *x = &r->n[next];
            if (learn) {
                rt_touch(r, next);
                x->count++;
                if (x->flags & RT_PARAM) x->kinds |= (uint16_t)(1u << g.k);
                if (ts > x->last) x->last = ts;
            }
            put_node(r, &t, x);
            node = next;
            if (x->flags & (RT_PARAM | RT_VERSION | RT_STRONG)) prefix = false;
        }
        depth++;
        i = j;
    }
    bool slash = len > 1 && path[len - 1] == '/';
    if (!t.len || slash) tput(&t, "/", 1);
    if (off_tree || !learn) return t.len;
    struct rt_node *e = &r->n[node];
    rt_touch(r, node);
    if (slash) {
        e->flags |= RT_END_SLASH;
        e->ends_slash++;
    } else {
        e->flags |= RT_END;
        e->ends++;
    }
    /* a word first seen as the target of an item method (rule 5) */
    unsigned mb = method_bit(method);
    bool item = mb && !(e->methods & mb) && !(e->flags & (RT_PARAM | RT_VERSION));
    e->methods |= (uint8_t)mb;
    if (!created && !item) return t.len;
    /* New literals: the evidence at their parents (a new sibling) and
     * grandparents (a sibling's continuation grew) may merge them. */
    for (unsigned k = 0; k < nnew; k++) {
        uint32_t x = resolve(r, news[k]);
        uint32_t par = r->n[x].parent;
        if (par == NIL) continue;
        evidence(r, par, ts);
        x = resolve(r, news[k]);
        par = r->n[x].parent;
        if (par != NIL && r->n[par].parent != NIL) evidence(r, r->n[par].parent, ts);
    }
    if (item) {
        uint32_t x = resolve(r, node);
        if (!(r->n[x].flags & RT_PARAM) && r->n[x].parent != NIL) items(r, r->n[x].parent, ts);
    }
    return node_template(r, resolve(r, node), slash, out, cap);
}

/* ---- life cycle, reading ---- */

enum kw_err routes_new(const struct routes_config *c, struct routes **out)
{
    struct routes *r = calloc(1, sizeof *r);
    if (!r) return KW_E_NOMEM;
    r->c = *c;
    if (!r->c.max_nodes) r->c.max_nodes = 262144;
    if (!r->c.max_services) r->c.max_services = 4096;
    if (!r->c.max_depth) r->c.max_depth = 32;
    if (!r->c.shared_min) r->c.shared_min = 2;
    if (!r->c.shared_min_top) r->c.shared_min_top = 3;
    if (!r->c.leaves_min) r->c.leaves_min = 5;
    if (!r->c.leaves_min_top) r->c.leaves_min_top = 8;
    if (!r->c.leaves_min_param) r->c.leaves_min_param = 10;
    if (!r->c.root_min) r->c.root_min = 6;
    if (!r->c.root_late) r->c.root_late = 3;
    if (!r->c.root_leaves_min) r->c.root_leaves_min = 5;
    if (!r->c.settle) r->c.settle = (kw_ts)24 * 3600 * 1000000;
    r->amax = (size_t)r->c.max_nodes * 64 + 65536;
    for (r->nb = 1024; r->nb < r->c.max_nodes; r->nb *= 2)
        ;
    for (r->svc_cap = 16; r->svc_cap < 2 * r->c.max_services; r->svc_cap *= 2)
        ;
    r->bucket = malloc((size_t)r->nb * sizeof *r->bucket);
    r->svc = calloc(r->c.max_services, sizeof *r->svc);
    r->svc_index = calloc(r->svc_cap, sizeof *r->svc_index);
    if (!r->bucket || !r->svc || !r->svc_index) {
        routes_destroy(r);
        return KW_E_NOMEM;
    }
    memset(r->bucket, 0xff, (size_t)r->nb * sizeof *r->bucket);
    *out = r;
    return KW_E_OK;
}

void routes_destroy(struct routes *r)
{
    if (!r) return;
    rt_db_close(r);
    free(r->n);
    free(r->dirty);
    free(r->bucket);
    free(r->arena);
    free(r->svc);
    free(r->svc_index);
    free(r);
}

void routes_set_on_merge(struct routes *r,
                         void (*fn)(void *user, const char *service, const char *old_tmpl,
                                    const char *new_tmpl),
                         void *user)
{
    r->c.on_merge = fn;
    r->c.user = user;
}

void routes_get_stats(const struct routes *r, struct routes_stats *out)
{
    *out = r->st;
}

struct each_ctx {
    const struct routes *r;
    const char *service;
    bool (*fn)(void *, const struct routes_endpoint *);
    void *user;
    char buf[512];
};

static bool each_node(struct each_ctx *c, uint32_t id)
{
    const struct routes *r = c->r;
    const struct rt_node *x = &r->n[id];
    for (int s = 0; s < 2; s++) {
        if (!(x->flags & (s ? RT_END_SLASH : RT_END))) continue;
        struct routes_endpoint e = {.service = c->service,
                                    .tmpl = c->buf,
                                    .count = s ? x->ends_slash : x->ends,
                                    .first = x->first,
                                    .last = x->last};
        node_template(r, id, s, c->buf, sizeof c->buf);
        uint32_t path[256];
        unsigned k = 0;
        for (uint32_t i = id; r->n[i].parent != NIL && k < 256; i = r->n[i].parent)
            path[k++] = i;
        while (k--)
            if ((r->n[path[k]].flags & RT_PARAM) && e.n_params < 16)
                e.param_kinds[e.n_params++] = r->n[path[k]].kinds;
        if (!c->fn(c->user, &e)) return false;
    }
    for (uint32_t ch = x->child; ch != NIL; ch = r->n[ch].next)
        if (!r->n[ch].alias && !each_node(c, ch)) return false;
    return true;
}

void routes_each_endpoint(const struct routes *r, const char *service,
                          bool (*fn)(void *user, const struct routes_endpoint *e), void *user)
{
    struct each_ctx c = {.r = r, .fn = fn, .user = user};
    for (uint32_t i = 0; i < r->nsvc; i++) {
        c.service = r->arena + r->svc[i].key;
        if (service && strcmp(service, c.service)) continue;
        if (!each_node(&c, r->svc[i].root)) return;
    }
}
