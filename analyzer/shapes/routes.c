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
#include "echo.h"

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

uint32_t rt_node_new(struct routes *r, uint32_t parent, const char *seg, size_t n, uint8_t flags,
                     kw_ts ts)
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

uint32_t rt_resolve(const struct routes *r, uint32_t id)
{
    while (id != NIL && r->n[id].alias)
        id = r->n[id].alias - 1;
    return id;
}

/* The literal child `seg` of parent (resolved through merges), or NIL. */
uint32_t rt_find_literal(const struct routes *r, uint32_t parent, const char *s, size_t n)
{
    uint32_t b = hkey(parent, s, n) & (r->nb - 1);
    for (uint32_t i = r->bucket[b]; i != NIL; i = r->n[i].hnext) {
        const struct rt_node *x = &r->n[i];
        if (x->parent == parent && x->seg_len == n && !memcmp(rt_seg_of(r, x), s, n))
            return rt_resolve(r, i);
    }
    return NIL;
}

uint32_t rt_find_param(const struct routes *r, uint32_t parent, const char *suf, size_t n)
{
    for (uint32_t i = r->n[parent].child; i != NIL; i = r->n[i].next) {
        const struct rt_node *x = &r->n[i];
        if ((x->flags & RT_PARAM) && !x->alias && x->seg_len == n &&
            !memcmp(rt_seg_of(r, x), suf, n))
            return i;
    }
    return NIL;
}

void rt_hash_unlink(struct routes *r, uint32_t id)
{
    struct rt_node *x = &r->n[id];
    uint32_t b = hkey(x->parent, rt_seg_of(r, x), x->seg_len) & (r->nb - 1);
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
            uint32_t root = rt_node_new(r, NIL, "", 0, RT_VERSION, ts), off;
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

const char *rt_service_key_of(const struct routes *r, uint32_t node)
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

static void put_node(const struct routes *r, struct tbuf *t, const struct rt_node *x)
{
    tput(t, "/", 1);
    if (!(x->flags & RT_PARAM)) {
        tput(t, rt_seg_of(r, x), x->seg_len);
        return;
    }
    const char *a = rt_seg_of(r, x), *v = memchr(a, AFFIX_VALUE, x->seg_len);
    size_t pl = v ? (size_t)(v - a) : 0;
    tput(t, a, pl);
    tput(t, "{id}", 4);
    if (v) tput(t, v + 1, x->seg_len - pl - 1);
}

/* The affix of a segment split as shape_split splits it. */
static size_t affix_split(const char *s, size_t n, size_t pre, size_t core, char *buf, size_t cap)
{
    size_t suf = n - pre - core;
    if (pre + suf + 1 > cap) pre = suf = 0;
    memcpy(buf, s, pre);
    buf[pre] = AFFIX_VALUE;
    memcpy(buf + pre + 1, s + pre + core, suf);
    return pre + 1 + suf;
}

/* The affix of segment s[0..n) into buf (cap >= 64); its length. */
size_t rt_affix_of(const char *s, size_t n, char *buf, size_t cap)
{
    size_t pre, core = shape_split(s, n, &pre);
    return affix_split(s, n, pre, core, buf, cap);
}

/* The template of a (live) node; slash: with a trailing '/'. */
size_t rt_node_template(const struct routes *r, uint32_t id, bool slash, char *out, size_t cap)
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
    g->alen = affix_split(s, n, g->pre, g->core, g->affix, sizeof g->affix); /* split once */
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
    return routes_template_echo(r, service, method, path, len, learn, 0, ts, out, cap);
}

size_t routes_template_echo(struct routes *r, const char *service, const char *method,
                            const char *path, size_t len, bool learn, uint32_t echo, kw_ts ts,
                            char *out, size_t cap)
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
    uint32_t news[64], walked[32]; /* walked[d]: the node of segment d */
    unsigned nnew = 0, depth = 0, nwalk = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && path[i] == '/')
            i++;
        if (i >= len) break;
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        struct segc g = {.s = path + i, .n = j - i};
        if (g.n > MAX_SEG || depth >= r->c.max_depth) {
            if (!off_tree && learn && depth >= r->c.max_depth) r->st.too_deep++;
            off_tree = true;
        }
        bool not_item = false; /* rule 6: a GET answered whole without naming it */
        uint32_t next = NIL;
        /* A segment the model holds as a literal needs no shape: most
         * segments are the routes' own words, and classifying each was a
         * third of this walk (issue 13). */
        if (!off_tree) next = rt_find_literal(r, node, g.s, g.n);
        bool classified = next == NIL, idsh = false;
        if (classified) {
            classify(&g, g.s, g.n);
            idsh = id_shaped(&g, depth, prefix);
        }
        if (!off_tree) {
            if (next == NIL) {
                uint32_t pp = rt_find_param(r, node, g.affix, g.alen);
                /* a plain parameter at the root exists only by evidence
                 * (root_late): then a first segment may be its value */
                /* a word is taken for a value of a parameter of words,
                 * but not of one only echoes made beside a version
                 * (/v1/{name} and /v1/projects side by side, Google's
                 * shape): there only its own echo makes it one (rule 6) */
                const struct rt_node *nd = &r->n[node];
                bool echo_pp = pp != NIL && (r->n[pp].flags & RT_ECHO);
                bool by_echo_only = echo_pp && (nd->flags & RT_VERSION) && nd->parent != NIL;
                /* and not when a GET of it, answered whole, did not name
                 * it: a route word beside the items, not one of them
                 * (RabbitMQ's /api/users/without-permissions answers []) */
                bool last = true;
                for (size_t k = j; k < len && last; k++)
                    last = path[k] == '/';
                not_item = echo_pp && last && method && !strcmp(method, "GET") &&
                           (echo & ECHO_WHOLE) && !(echo & (1u << (depth & 31)));
                if (pp != NIL && (idsh || ((r->n[pp].kinds & WEAK_KINDS) &&
                                           g.k != SHAPE_VERSION && !by_echo_only && !not_item)))
                    next = pp;
                /* a new format of a stem seen in several (rule 0) */
                size_t e = next == NIL && !g.pre ? rt_ext_at(g.s, g.n) : 0;
                char ea[64];
                size_t el = e ? rt_ext_affix(g.s, e, ea, sizeof ea) : 0;
                if (el) next = rt_find_param(r, node, ea, el);
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
                if (not_item && !first_sight) fl |= RT_ROUTE;
                next = first_sight ? rt_node_new(r, node, g.affix, g.alen, fl, ts)
                                   : rt_node_new(r, node, g.s, g.n, fl, ts);
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
                if (x->flags & RT_PARAM) {
                    if (!classified) classify(&g, g.s, g.n);
                    x->kinds |= (uint16_t)(1u << g.k);
                }
                if (ts > x->last) x->last = ts;
            }
            put_node(r, &t, x);
            node = next;
            if (nwalk == depth && nwalk < 32) walked[nwalk++] = next;
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
    /* words the answer named back are values (rule 6) */
    bool echoed = echo && rt_echo(r, walked, nwalk, echo, ts);
    if (!created && !item && !echoed) return t.len;
    /* New literals: the evidence at their parents (a new sibling) and
     * grandparents (a sibling's continuation grew) may merge them. */
    for (unsigned k = 0; k < nnew; k++) {
        uint32_t x = rt_resolve(r, news[k]);
        uint32_t par = r->n[x].parent;
        if (par == NIL) continue;
        rt_evidence(r, par, ts);
        x = rt_resolve(r, news[k]);
        par = r->n[x].parent;
        if (par != NIL && r->n[par].parent != NIL) rt_evidence(r, r->n[par].parent, ts);
    }
    if (item) {
        uint32_t x = rt_resolve(r, node);
        if (!(r->n[x].flags & RT_PARAM) && r->n[x].parent != NIL) rt_items(r, r->n[x].parent, ts);
    }
    return rt_node_template(r, rt_resolve(r, node), slash, out, cap);
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
    /* the save counters are the database writer's (save_done, under smu);
     * the rest is the caller's thread's, the model's owner */
    struct routes *m = (struct routes *)r; /* the lock, not the data, changes */
    if (m->smu_ready) pthread_mutex_lock(&m->smu);
    *out = r->st;
    if (m->smu_ready) pthread_mutex_unlock(&m->smu);
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
        rt_node_template(r, id, s, c->buf, sizeof c->buf);
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
