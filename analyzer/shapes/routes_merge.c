/* routes_merge: the evidence rules that turn literal route words into
 * parameters, and the merge that does it (docs/shapes.md, rules 0-6).
 * routes.c walks each request down the tree and calls rt_evidence when
 * new literals appeared (at their parent and grandparent) and rt_items
 * when a word was first the target of a DELETE.
 *
 * The one thing to know: a merge never frees a node. Each merged literal
 * becomes an alias of the parameter (its subtree moves under it), every
 * endpoint template that changes name is reported once through on_merge,
 * and the baselines rename it (stable names: a parameter never turns
 * back into literals). */
#include "routes_int.h"

#include <stdlib.h>
#include <string.h>

static void merge_into(struct routes *r, uint32_t src, uint32_t dst);

/* Moves child c (of a node being merged) under dst. */
static void adopt(struct routes *r, uint32_t c, uint32_t dst)
{
    struct rt_node *x = &r->n[c];
    rt_touch(r, c);
    rt_touch(r, dst);
    uint32_t same = x->flags & RT_PARAM ? rt_find_param(r, dst, rt_seg_of(r, x), x->seg_len)
                                        : rt_find_literal(r, dst, rt_seg_of(r, x), x->seg_len);
    if (!(x->flags & RT_PARAM)) rt_hash_unlink(r, c);
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
static void merge_group_by(struct routes *r, uint32_t parent, const uint32_t *in, size_t nin,
                           const char *suf, size_t suflen, kw_ts ts, bool echo)
{
    /* words an answer proved routes (rule 6) stay, whatever rule asks */
    uint32_t lits[MAX_GROUP + 1];
    size_t n = 0;
    for (size_t i = 0; i < nin && n < MAX_GROUP + 1; i++)
        if (!(r->n[in[i]].flags & RT_ROUTE)) lits[n++] = in[i];
    if (!n) return;
    uint32_t p = rt_find_param(r, parent, suf, suflen);
    if (p == NIL) {
        p = rt_node_new(r, parent, suf, suflen, RT_PARAM | (echo ? RT_ECHO : 0), ts);
    } else if (!echo && (r->n[p].flags & RT_ECHO)) {
        r->n[p].flags &= (uint8_t)~RT_ECHO; /* proved by the other rules too */
        rt_touch(r, p);
    }
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
        rt_node_template(r, v[i].node, v[i].slash, buf, sizeof buf);
        v[i].old = strdup(buf);
    }
    for (size_t i = 0; i < n; i++) {
        merge_into(r, lits[i], p);
        r->st.merges++;
    }
    const char *svc = rt_service_key_of(r, parent);
    for (size_t i = 0; i < nv; i++) {
        rt_node_template(r, rt_resolve(r, v[i].node), v[i].slash, buf, sizeof buf);
        if (v[i].old && strcmp(v[i].old, buf)) {
            r->st.renamed++;
            if (r->c.on_merge) r->c.on_merge(r->c.user, svc, v[i].old, buf);
        }
        free(v[i].old);
    }
    free(v);
}

static void merge_group(struct routes *r, uint32_t parent, const uint32_t *lits, size_t n,
                        const char *suf, size_t suflen, kw_ts ts)
{
    merge_group_by(r, parent, lits, n, suf, suflen, ts, false);
}

static size_t lit_affix(const struct routes *r, uint32_t id, char *buf, size_t cap)
{
    return rt_affix_of(rt_seg_of(r, &r->n[id]), r->n[id].seg_len, buf, cap);
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
            if (params && rt_find_param(r, b, rt_seg_of(r, x), x->seg_len) != NIL) return true;
        } else if (rt_find_literal(r, b, rt_seg_of(r, x), x->seg_len) != NIL) {
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
        uint32_t cb = rt_find_literal(r, b, rt_seg_of(r, x), x->seg_len);
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
size_t rt_ext_at(const char *s, size_t n)
{
    size_t core = shape_core(s, n);
    return core && core < n && s[core] == '.' ? core : 0;
}

/* The affix of a value in the extension of a stem: "directions.\1". */
size_t rt_ext_affix(const char *s, size_t stem, char *buf, size_t cap)
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
        const char *s = rt_seg_of(r, x);
        size_t e =
            x->alias || (x->flags & RT_PARAM) || !is_leaf(r, c) ? 0 : rt_ext_at(s, x->seg_len);
        if (!e) continue;
        uint32_t lits[MAX_GROUP];
        size_t nl = 0;
        for (uint32_t d = r->n[parent].child; d != NIL && nl < MAX_GROUP; d = r->n[d].next) {
            const struct rt_node *y = &r->n[d];
            const char *t = rt_seg_of(r, y);
            if (!y->alias && !(y->flags & RT_PARAM) && is_leaf(r, d) &&
                rt_ext_at(t, y->seg_len) == e && !memcmp(s, t, e))
                lits[nl++] = d;
        }
        char af[64];
        size_t al = rt_ext_affix(s, e, af, sizeof af);
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
void rt_evidence(struct routes *r, uint32_t parent, kw_ts ts)
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
            uint32_t x = rt_find_param(r, parent, af, al);
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
void rt_items(struct routes *r, uint32_t parent, kw_ts ts)
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
        uint32_t xp = rt_find_param(r, parent, af, al);
        bool with_x = xp != NIL && (r->n[xp].kinds & WEAK_KINDS);
        if (nl + with_x >= 2) {
            merge_group(r, parent, lits, nl, af, al, ts);
            return;
        }
    }
}

/* Rule 6 (echo.h): REST answers a request for an item with the item, and
 * the item carries its own name or id, while a route word is not returned
 * as the id or name of its own answer. A literal the answer named back
 * that way is a value when it sits where REST puts an item: below the
 * first segment, under a literal (a collection, or a version: Google's
 * /v1/{name}; stronger evidence than rule 3's, which never merges a
 * version's children) (/policies/api-green, /api/queues/%2F/orders).
 * Under a parameter it is an action or a sub-collection, so it does not
 * count there. One echo is enough: it is what the item said of itself.
 * Its siblings wait for their own echo or the other rules. */
bool rt_echo(struct routes *r, const uint32_t *nodes, unsigned n, uint32_t echo, kw_ts ts)
{
    bool any = false;
    for (unsigned d = 1; d < n && d < 32; d++) {
        if (!(echo & (1u << d))) continue;
        uint32_t x = rt_resolve(r, nodes[d]);
        const struct rt_node *nx = &r->n[x];
        if (nx->flags & (RT_PARAM | RT_VERSION) || nx->parent == NIL) continue;
        const struct rt_node *p = &r->n[nx->parent];
        if (p->alias || p->parent == NIL || (p->flags & RT_PARAM)) continue;
        /* the whole segment came back: a plain value, whatever its
         * shape suggests of an extension (ines.rossi is not ines + .rossi) */
        const char af[] = {AFFIX_VALUE};
        r->n[x].flags &= (uint8_t)~RT_ROUTE; /* named now: its own answer says so */
        merge_group_by(r, nx->parent, &x, 1, af, 1, ts, true);
        r->st.echoed++;
        any = true;
    }
    return any;
}
