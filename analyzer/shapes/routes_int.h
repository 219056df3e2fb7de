/* routes_int: the route tree's layout, shared by routes.c (learning) and
 * routes_db.c (persistence). The one thing to know: nodes are never freed
 * and their ids never change, so a saved node is the same node after a
 * reload; the literal hash chain (hnext) is the only field not saved. */
#ifndef KW_ROUTES_INT_H
#define KW_ROUTES_INT_H

#include <pthread.h>

#include "dbw.h"
#include "routes.h"
#include "shape.h"

#define NIL UINT32_MAX
#define MAX_SEG 1024
#define MAX_GROUP 64 /* weak siblings looked at per evidence check */

enum {
    RT_PARAM = 1,     /* a parameter ({id}); else a literal */
    RT_VERSION = 2,   /* a version or API root: its children never merge */
    RT_END = 4,       /* a request ended here */
    RT_END_SLASH = 8, /* a request ended here with a trailing '/' */
    RT_STRONG = 16,   /* a literal of an id shape, waiting for a second value */
    RT_VPOS = 32,     /* a literal word in a value position (/{id}/servers/x) */
    RT_ECHO = 64,     /* a parameter only rule 6 (echo) made */
    RT_ROUTE = 128    /* a word rule 6 proved a route: no rule merges it */
};

/* Methods that address one item of a collection (RFC 9110 9.3.4-5,
 * RFC 5789): seen ending at two sibling words, they say the words are
 * items (rule 5). Saved in bits 8-15 of the flags column. */
enum { RT_M_DELETE = 1 };

struct rt_node {
    uint32_t parent, child, next; /* tree: first child, next sibling */
    uint32_t hnext;               /* hash chain of literals */
    uint32_t alias;               /* merged into (node + 1); 0: live */
    uint32_t seg;                 /* arena offset: the literal, or a parameter's suffix */
    uint16_t seg_len, depth;
    uint16_t kinds;         /* value shapes seen (1 << SHAPE_x); a literal: its own */
    uint8_t flags, methods; /* methods: RT_M_x of the requests that ended here */
    uint32_t count, ends, ends_slash;
    kw_ts first, last;
};

struct rt_service {
    uint32_t root;
    uint32_t key; /* arena offset of "host:port" */
    uint16_t key_len;
};

struct routes {
    struct routes_config c;
    struct rt_node *n;
    uint32_t nn, ncap;
    uint32_t *bucket; /* [nb], node or NIL */
    uint32_t nb;
    char *arena;
    size_t alen, acap, amax;
    struct rt_service *svc;
    uint32_t nsvc;
    uint32_t *svc_index; /* [2 * max_services], service + 1 */
    uint32_t svc_cap;
    struct routes_stats st;
    /* persistence (routes_db.c): nodes changed since the last save, the
     * services saved so far, the writer */
    uint8_t *dirty; /* [ncap] */
    uint32_t svc_saved;
    struct dbw *w;
    bool own_w, save_failed, smu_ready;
    pthread_mutex_t smu; /* save_failed and the save counters (writer thread) */
    kw_ts last_save, save_every;
};

/* A node changed: the next save writes it. */
static inline void rt_touch(struct routes *r, uint32_t id)
{
    if (id != NIL && r->dirty) r->dirty[id] = 1;
}

/* A parameter's segment is its affix: what surrounds the value, with
 * AFFIX_VALUE where the value goes ("\1" plain, "\1.json", "\1:cancel",
 * "Updates('\1')"); no normalised path holds that byte. */
#define AFFIX_VALUE '\1'
/* Value shapes that only evidence makes a parameter (words, names). */
#define WEAK_KINDS ((1u << SHAPE_WORD) | (1u << SHAPE_NAME))

/* routes.c: the tree, shared with routes_merge.c. */
static inline const char *rt_seg_of(const struct routes *r, const struct rt_node *x)
{
    return r->arena + x->seg;
}
uint32_t rt_node_new(struct routes *r, uint32_t parent, const char *seg, size_t n, uint8_t flags,
                     kw_ts ts);
/* The live node an alias chain ends at. */
uint32_t rt_resolve(const struct routes *r, uint32_t id);
uint32_t rt_find_literal(const struct routes *r, uint32_t parent, const char *s, size_t n);
uint32_t rt_find_param(const struct routes *r, uint32_t parent, const char *suf, size_t n);
void rt_hash_unlink(struct routes *r, uint32_t id);
const char *rt_service_key_of(const struct routes *r, uint32_t node);
/* The affix of segment s[0..n) into buf (cap >= 64); its length. */
size_t rt_affix_of(const char *s, size_t n, char *buf, size_t cap);
size_t rt_node_template(const struct routes *r, uint32_t id, bool slash, char *out, size_t cap);

/* routes_merge.c: the evidence rules (docs/shapes.md). */
/* Rules 0-4 on the children of parent (a literal appeared below it). */
void rt_evidence(struct routes *r, uint32_t parent, kw_ts ts);
/* Rule 6: the literals among nodes[0..n) (nodes[d] holds segment d) whose
 * bit in echo is set, named back by the answer, become parameters. True
 * when one did. */
bool rt_echo(struct routes *r, const uint32_t *nodes, unsigned n, uint32_t echo, kw_ts ts);
/* Rule 5: sibling words each the target of a DELETE. */
void rt_items(struct routes *r, uint32_t parent, kw_ts ts);
/* The '.' extension of s[0..n): its offset, or 0 when it has none. */
size_t rt_ext_at(const char *s, size_t n);
/* The affix of a value in the extension of a stem: "directions.\1". */
size_t rt_ext_affix(const char *s, size_t stem, char *buf, size_t cap);

/* Shared with routes_db.c: grow the node arrays to hold n nodes. */
bool rt_reserve(struct routes *r, uint32_t n);
bool rt_arena_put(struct routes *r, const char *s, size_t n, uint32_t *off);
void rt_hash_insert(struct routes *r, uint32_t id);
/* Registers a loaded service whose root node exists. */
enum kw_err rt_add_service(struct routes *r, const char *key, uint32_t root);
/* Waits for the saves in flight, stops an own writer (routes_db.c). */
void rt_db_close(struct routes *r);

#endif
