/* classify: the nDPI 4.2 wrapper (see classify.h). The one thing to know:
 * every nDPI call of keywarden is in this file, so an nDPI upgrade changes
 * only this file. The flow record keeps the result (protocol ids and host
 * name) after the ~700-byte nDPI state has gone back to its pool. */
#include "classify.h"

#include <ndpi_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLAB_ELEMS 256

/* A pool of fixed-size elements in slabs of SLAB_ELEMS, grown on demand up
 * to max elements; a free list threads through unused elements. */
struct pool {
    size_t elem, max, used_slabs, n_slabs;
    void **slabs;
    void *free;
};

enum cf_state { CF_ACTIVE, CF_DONE };

struct classify_flow {
    union {
        struct ndpi_flow_struct *nf; /* while CF_ACTIVE */
        struct classify_flow *next;  /* while on the free list */
    } u;
    uint16_t master, app;
    uint8_t state, packets;
    char host[80]; /* same size as nDPI's host_server_name */
};

/* The nDPI state, in its own pool element. The free-list link overlays
 * the start of the element, so `used` comes after it; nf is first so a
 * struct ndpi_flow_struct * converts back to its slot. */
struct nf_slot {
    struct ndpi_flow_struct nf;
    bool used; /* so destroy can free nDPI's allocations of live flows */
};

struct classify_ctx {
    struct ndpi_detection_module_struct *mod;
    struct pool flows, states;
    struct classify_stats st;
};

static enum kw_err pool_init(struct pool *p, size_t elem, size_t max)
{
    memset(p, 0, sizeof *p);
    p->elem = elem;
    p->max = max;
    p->n_slabs = (max + SLAB_ELEMS - 1) / SLAB_ELEMS;
    p->slabs = calloc(p->n_slabs, sizeof *p->slabs);
    return p->slabs ? KW_E_OK : KW_E_NOMEM;
}

static void pool_fini(struct pool *p)
{
    for (size_t i = 0; i < p->used_slabs; i++)
        free(p->slabs[i]);
    free(p->slabs);
    memset(p, 0, sizeof *p);
}

/* An element, or NULL with *err = LIMIT or NOMEM. */
static void *pool_get(struct pool *p, enum kw_err *err)
{
    if (!p->free) {
        if (p->used_slabs == p->n_slabs) {
            *err = KW_E_LIMIT;
            return NULL;
        }
        size_t n = p->max - p->used_slabs * SLAB_ELEMS;
        n = n < SLAB_ELEMS ? n : SLAB_ELEMS;
        char *s = calloc(n, p->elem); /* zeroed: nf_slot.used starts false */
        if (!s) {
            *err = KW_E_NOMEM;
            return NULL;
        }
        p->slabs[p->used_slabs++] = s;
        for (size_t i = n; i-- > 0;) {
            *(void **)(s + i * p->elem) = p->free;
            p->free = s + i * p->elem;
        }
    }
    void *e = p->free;
    p->free = *(void **)e;
    return e;
}

static void pool_put(struct pool *p, void *e)
{
    *(void **)e = p->free;
    p->free = e;
}

enum kw_err classify_ctx_new_limits(struct classify_ctx **out, size_t max_flows, size_t max_active)
{
    *out = NULL;
    if (max_flows == 0 || max_active == 0) return KW_E_INVAL;
    struct classify_ctx *c = calloc(1, sizeof *c);
    if (!c) return KW_E_NOMEM;
    enum kw_err e = pool_init(&c->flows, sizeof(struct classify_flow), max_flows);
    if (e == KW_E_OK) e = pool_init(&c->states, sizeof(struct nf_slot), max_active);
    if (e == KW_E_OK) {
        c->mod = ndpi_init_detection_module(ndpi_no_prefs);
        e = c->mod ? KW_E_OK : KW_E_NOMEM;
    }
    if (e != KW_E_OK) {
        classify_ctx_destroy(c);
        return e;
    }
    NDPI_PROTOCOL_BITMASK all;
    NDPI_BITMASK_SET_ALL(all);
    ndpi_set_protocol_detection_bitmask2(c->mod, &all);
    ndpi_finalize_initialization(c->mod);
    *out = c;
    return KW_E_OK;
}

size_t classify_pools_mem(size_t max_flows, size_t max_active)
{
    /* whole slabs, plus the slab pointer arrays */
    size_t sf = (max_flows + SLAB_ELEMS - 1) / SLAB_ELEMS,
           sa = (max_active + SLAB_ELEMS - 1) / SLAB_ELEMS;
    return sf * SLAB_ELEMS * sizeof(struct classify_flow) +
           sa * SLAB_ELEMS * sizeof(struct nf_slot) + (sf + sa) * sizeof(void *);
}

enum kw_err classify_ctx_new(struct classify_ctx **out)
{
    return classify_ctx_new_limits(out, CLASSIFY_DEFAULT_MAX_FLOWS, CLASSIFY_DEFAULT_MAX_ACTIVE);
}

void classify_ctx_destroy(struct classify_ctx *c)
{
    if (!c) return;
    /* states still in use may own nDPI allocations (TLS certificate
     * names, ...): free them; the flow records themselves own nothing */
    for (size_t i = 0; i < c->states.used_slabs; i++) {
        size_t n = c->states.max - i * SLAB_ELEMS;
        n = n < SLAB_ELEMS ? n : SLAB_ELEMS;
        struct nf_slot *slab = c->states.slabs[i];
        for (size_t j = 0; j < n; j++)
            if (slab[j].used) ndpi_free_flow_data(&slab[j].nf);
    }
    if (c->mod) ndpi_exit_detection_module(c->mod);
    pool_fini(&c->flows);
    pool_fini(&c->states);
    free(c);
}

struct classify_flow *classify_flow_new(struct classify_ctx *c)
{
    enum kw_err e = KW_E_OK;
    struct classify_flow *f = pool_get(&c->flows, &e);
    struct nf_slot *s = f ? pool_get(&c->states, &e) : NULL;
    if (!s) {
        if (f) pool_put(&c->flows, f);
        if (e == KW_E_NOMEM)
            c->st.nomem++;
        else if (f)
            c->st.limit_active++;
        else
            c->st.limit_flows++;
        return NULL;
    }
    memset(f, 0, sizeof *f);
    memset(s, 0, sizeof *s); /* nDPI 4.2 requires a zeroed flow struct */
    s->used = true;
    f->u.nf = &s->nf;
    f->state = CF_ACTIVE;
    c->st.flows++;
    return f;
}

/* Keeps what the result needs and returns the nDPI state to its pool. */
static void release_state(struct classify_ctx *c, struct classify_flow *f, ndpi_protocol p)
{
    struct ndpi_flow_struct *nf = f->u.nf;
    f->master = p.master_protocol;
    f->app = p.app_protocol;
    size_t i = 0;
    /* the name is network bytes: keep printable ASCII only (SNI and Host
     * are ASCII; IDNs travel as punycode, RFC 5890) */
    for (; i + 1 < sizeof f->host && nf->host_server_name[i]; i++) {
        unsigned char ch = (unsigned char)nf->host_server_name[i];
        f->host[i] = ch > 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    f->host[i] = '\0';
    if (f->master == NDPI_PROTOCOL_UNKNOWN && f->app == NDPI_PROTOCOL_UNKNOWN) c->st.unknown++;
    ndpi_free_flow_data(nf);
    ((struct nf_slot *)(void *)nf)->used = false;
    pool_put(&c->states, nf);
    f->u.nf = NULL;
    f->state = CF_DONE;
}

void classify_flow_free(struct classify_ctx *c, struct classify_flow *f)
{
    if (!f) return;
    if (f->state == CF_ACTIVE && f->u.nf) {
        ndpi_free_flow_data(f->u.nf);
        ((struct nf_slot *)(void *)f->u.nf)->used = false;
        pool_put(&c->states, f->u.nf);
    }
    pool_put(&c->flows, f);
}

void classify_giveup(struct classify_ctx *c, struct classify_flow *f)
{
    if (!f || f->state != CF_ACTIVE) return;
    uint8_t guessed = 0;
    ndpi_protocol p = ndpi_detection_giveup(c->mod, f->u.nf, 1, &guessed);
    c->st.gave_up++;
    release_state(c, f, p);
}

bool classify_packet(struct classify_ctx *c, struct classify_flow *f, const uint8_t *l3,
                     uint32_t l3_len, kw_ts ts, bool to_server)
{
    (void)to_server;
    if (!f || f->state != CF_ACTIVE) return false;
    if (l3_len > 0xffff) {
        c->st.oversize++;
        l3_len = 0xffff; /* nDPI 4.2 takes a u16; the headers are what matter */
    }
    uint64_t ms = ts > 0 ? (uint64_t)(ts / 1000) : 0;
    ndpi_protocol p =
        ndpi_detection_process_packet(c->mod, f->u.nf, l3, (unsigned short)l3_len, ms);
    c->st.packets++;
    f->packets++;
    if (p.master_protocol != NDPI_PROTOCOL_UNKNOWN || p.app_protocol != NDPI_PROTOCOL_UNKNOWN) {
        c->st.decided++;
        release_state(c, f, p);
        return false;
    }
    if (f->packets >= CLASSIFY_MAX_PACKETS) {
        classify_giveup(c, f);
        return false;
    }
    return true;
}

bool classify_done(const struct classify_flow *f)
{
    return f && f->state == CF_DONE;
}

void classify_result(struct classify_ctx *c, struct classify_flow *f, char *app, size_t applen,
                     char *sni, size_t snilen)
{
    if (!f) {
        snprintf(app, applen, "Unknown");
        snprintf(sni, snilen, "%s", "");
        return;
    }
    classify_giveup(c, f);
    ndpi_protocol p = {.master_protocol = f->master, .app_protocol = f->app};
    char buf[64];
    snprintf(app, applen, "%s", ndpi_protocol2name(c->mod, p, buf, sizeof buf));
    snprintf(sni, snilen, "%s", f->host);
}

void classify_get_stats(const struct classify_ctx *c, struct classify_stats *out)
{
    *out = c->st;
}
