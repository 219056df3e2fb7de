/* h1_fifo: the pending-request FIFO of a connection, its ring arena, its
 * buffers (small at birth, grown on demand, charged to a budget), and
 * the matching of responses to requests (also after loss).
 *
 * The one thing to know: requests are released strictly in FIFO order, so
 * their head copies live in a ring (allocated again only when it must
 * grow, up to its limit); a request is reported only with its response,
 * when known lost, when evicted because the FIFO or ring is full, or at
 * close. */
#include "h1_int.h"

#include <stdlib.h>
#include <string.h>

void h1_limits_default(struct h1_limits *l)
{
    l->max_header_bytes = 64 * 1024;
    l->max_headers = 128;
    l->max_pending = 64;
    l->resync_scan_max = 256 * 1024;
    l->req_arena_bytes = 32 * 1024;
    l->resp_arena_bytes = 8 * 1024;
    l->salvage_bytes = 8 * 1024;
    l->max_conns = 262144;
    l->memcap = UINT64_C(1) << 30;
}

/* ---- lifecycle and buffers: charged to the connection and its budget ---- */

static bool limits_ok(const struct h1_limits *l)
{
    return l->max_header_bytes >= 256 && l->max_headers > 0 && l->max_pending > 0 &&
           l->resync_scan_max > 0 && l->req_arena_bytes >= 1024 && l->resp_arena_bytes >= 512 &&
           l->salvage_bytes > 0;
}

/* A new connection: the FIFO and header array start this small. */
enum { PEND_BASE = 4, HDRS_BASE = 16 };

static uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

size_t h1_conn_mem(const struct h1_limits *l)
{
    return sizeof(struct h1_conn) + (size_t)l->max_pending * sizeof(struct h1_pend) +
           l->req_arena_bytes + l->resp_arena_bytes + 2 * (size_t)l->salvage_bytes +
           (size_t)l->max_headers * sizeof(struct kw_hdr);
}

size_t h1_conn_base_mem(const struct h1_limits *l)
{
    return sizeof(struct h1_conn) + min_u32(PEND_BASE, l->max_pending) * sizeof(struct h1_pend) +
           min_u32(HDRS_BASE, l->max_headers) * sizeof(struct kw_hdr);
}

size_t h1_conn_mem_used(const struct h1_conn *c)
{
    return c->mem;
}

/* More room for header lines (they were cut at the array's size). */
bool h1i_more_headers(struct h1_conn *c)
{
    uint32_t n = min_u32(c->scratch_cap * 2, c->lim.max_headers);
    if (n <= c->scratch_cap) return false;
    struct kw_hdr *p = h1i_mem_alloc(c, n * sizeof(*p), false);
    if (!p) return false;
    h1i_mem_free(c, c->scratch, c->scratch_cap * sizeof(*p));
    c->scratch = p;
    c->scratch_cap = n;
    return true;
}

static void *echo_alloc(void *c, size_t n)
{
    return h1i_mem_alloc(c, n, false);
}

static void echo_free(void *c, void *p, size_t n)
{
    h1i_mem_free(c, p, n);
}

struct h1_conn *h1_conn_new_in(const struct h1_limits *l, struct h1_budget *b, h1_txn_cb cb,
                               void *user)
{
    struct h1_limits def;
    if (!l) {
        h1_limits_default(&def);
        l = &def;
    }
    if (!cb || !limits_ok(l)) return NULL;
    /* Only the state is zeroed; buffers are allocated small and grown
     * when a message needs them (h1i_grow, ring_grow, pend_room). */
    struct h1_conn *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->lim = *l;
    c->budget = b;
    c->mem = sizeof(*c);
    c->echo_mem = (struct h1_echo_mem){echo_alloc, echo_free, c};
    if (b) b->bytes += sizeof(*c);
    c->pcap = min_u32(PEND_BASE, l->max_pending);
    c->scratch_cap = min_u32(HDRS_BASE, l->max_headers);
    c->pend = h1i_mem_alloc(c, c->pcap * sizeof(*c->pend), true);
    c->scratch = h1i_mem_alloc(c, c->scratch_cap * sizeof(*c->scratch), true);
    if (!c->pend || !c->scratch) {
        h1_conn_destroy(c);
        return NULL;
    }
    h1_conn_reset(c, cb, user);
    return c;
}

struct h1_conn *h1_conn_new(const struct h1_limits *l, h1_txn_cb cb, void *user)
{
    return h1_conn_new_in(l, NULL, cb, user);
}

void h1_conn_destroy(struct h1_conn *c)
{
    if (!c) return;
    h1i_mem_free(c, c->pend, c->pcap * sizeof(*c->pend));
    h1i_mem_free(c, c->ring, c->rcap);
    h1i_mem_free(c, c->rbuf, c->rbuf_cap);
    h1_echo_release(&c->echo);
    h1i_mem_free(c, c->scratch, c->scratch_cap * sizeof(*c->scratch));
    h1i_mem_free(c, c->d[0].salv, c->d[0].salv_cap);
    h1i_mem_free(c, c->d[1].salv, c->d[1].salv_cap);
    if (c->budget) c->budget->bytes -= sizeof(*c);
    free(c);
}

void *h1i_mem_alloc(struct h1_conn *c, size_t n, bool must)
{
    struct h1_budget *b = c->budget;
    if (!must && b && b->max_bytes && b->bytes + n > b->max_bytes) {
        b->refused++;
        c->ctr.memcap_refusals++;
        return NULL;
    }
    void *p = malloc(n);
    if (!p) return NULL;
    c->mem += n;
    if (b) {
        b->bytes += n;
        if (b->bytes > b->peak) b->peak = b->bytes;
    }
    return p;
}

/* Every buffer here may hold request heads (Authorization, cookies, keys
 * in the target): wiped before it goes back to the allocator, so a later
 * allocation, a core or a heap dump does not find them (issue 15). */
void h1i_mem_free(struct h1_conn *c, void *p, size_t n)
{
    if (!p) return;
    explicit_bzero(p, n);
    free(p);
    c->mem -= n;
    if (c->budget) c->budget->bytes -= n;
}

bool h1i_grow(struct h1_conn *c, uint8_t **buf, uint32_t *cap, size_t want, size_t min, size_t max)
{
    size_t n = *cap ? 2 * (size_t)*cap : min;
    while (n < want)
        n *= 2;
    if (n > max) n = max;
    if (n <= *cap) return false;
    uint8_t *p = h1i_mem_alloc(c, n, false);
    if (!p) return false;
    if (*cap) memcpy(p, *buf, *cap);
    h1i_mem_free(c, *buf, *cap);
    *buf = p;
    *cap = (uint32_t)n;
    return true;
}

const struct h1_counters *h1_conn_counters(const struct h1_conn *c)
{
    return &c->ctr;
}

/* ---- pending-request FIFO and its ring arena ---------------------------- */

struct h1_pend *h1i_pend_at(struct h1_conn *c, uint32_t i)
{
    uint32_t k = c->ph + i; /* i < pcap: no division on this path */
    return &c->pend[k >= c->pcap ? k - c->pcap : k];
}

static struct h1_pend *cur_req(struct h1_conn *c)
{
    struct h1_dir *d = &c->d[0];
    if (!d->has_cur || d->seq < c->pseq || d->seq >= c->pseq + c->pn) return NULL;
    return h1i_pend_at(c, (uint32_t)(d->seq - c->pseq));
}

static void ring_fix_head(struct h1_conn *c)
{
    if (c->rlive == 0) {
        c->rhead = c->rtail = 0;
        return;
    }
    for (uint32_t i = 0; i < c->pn; i++) {
        struct h1_pend *e = h1i_pend_at(c, i);
        if (e->size) {
            c->rhead = e->off;
            return;
        }
    }
}

/* FIFO-ordered allocation; the live region is [rhead, rtail) or wraps. */
static bool ring_try(struct h1_conn *c, uint32_t n, uint32_t *off)
{
    uint32_t cap = c->rcap;
    if (c->rlive == 0) c->rhead = c->rtail = 0;
    if (c->rtail >= c->rhead) {
        if (cap - c->rtail >= n) {
            *off = c->rtail;
            return true;
        }
        if (c->rhead > n) {
            *off = 0;
            return true;
        }
        return false;
    }
    if (c->rhead - c->rtail > n) {
        *off = c->rtail;
        return true;
    }
    return false;
}

/* Largest free run (8-aligned) when a full copy cannot fit. */
static uint32_t ring_best(struct h1_conn *c, uint32_t *off)
{
    uint32_t cap = c->rcap, a, b = 0;
    if (c->rlive == 0) {
        *off = 0;
        return cap & ~7u;
    }
    if (c->rtail >= c->rhead) {
        a = cap - c->rtail;
        b = c->rhead > 0 ? c->rhead - 1 : 0;
        *off = a >= b ? c->rtail : 0;
        return (a >= b ? a : b) & ~7u;
    }
    *off = c->rtail;
    return (c->rhead - c->rtail - 1) & ~7u;
}

static struct kw_slice move_slice(struct kw_slice s, const uint8_t *from, const uint8_t *to)
{
    if (s.p) s.p = (const char *)to + (s.p - (const char *)from);
    return s;
}

/* Grow the ring so that `need` more bytes fit: a new buffer with the live
 * heads packed at its start, in FIFO order, their views moved along. */
static bool ring_grow(struct h1_conn *c, uint32_t need)
{
    size_t live = 0, cap = c->rcap ? 2 * (size_t)c->rcap : 1024;
    for (uint32_t i = 0; i < c->pn; i++)
        live += h1i_pend_at(c, i)->size;
    while (cap < live + need + 8)
        cap *= 2;
    if (cap > c->lim.req_arena_bytes) cap = c->lim.req_arena_bytes;
    if (cap <= c->rcap || cap < live + need) return false;
    uint8_t *nw = h1i_mem_alloc(c, cap, false);
    if (!nw) return false;
    uint32_t o = 0;
    for (uint32_t i = 0; i < c->pn; i++) {
        struct h1_pend *e = h1i_pend_at(c, i);
        if (!e->size) continue;
        const uint8_t *from = c->ring + e->off;
        uint8_t *to = nw + o;
        memcpy(to, from, e->size);
        struct h1_msg_view *v = &e->v;
        v->method = move_slice(v->method, from, to);
        v->target = move_slice(v->target, from, to);
        v->version = move_slice(v->version, from, to);
        v->reason = move_slice(v->reason, from, to);
        if (v->hdrs) {
            struct kw_hdr *h = (struct kw_hdr *)(void *)(to + ((const uint8_t *)v->hdrs - from));
            for (size_t k = 0; k < v->n_hdrs; k++) {
                h[k].name = move_slice(h[k].name, from, to);
                h[k].value = move_slice(h[k].value, from, to);
            }
            v->hdrs = h;
        }
        e->off = o;
        o += e->size;
    }
    h1i_mem_free(c, c->ring, c->rcap);
    c->ring = nw;
    c->rcap = (uint32_t)cap;
    c->rhead = 0;
    c->rtail = o;
    return true;
}

/* Room for one more FIFO entry, growing the FIFO up to max_pending. */
static bool pend_room(struct h1_conn *c)
{
    if (c->pn < c->pcap) return true;
    if (c->pcap >= c->lim.max_pending) return false;
    uint32_t cap = c->pcap * 2 < c->lim.max_pending ? c->pcap * 2 : c->lim.max_pending;
    struct h1_pend *nw = h1i_mem_alloc(c, cap * sizeof(*nw), false);
    if (!nw) return false;
    for (uint32_t i = 0; i < c->pn; i++)
        nw[i] = *h1i_pend_at(c, i);
    h1i_mem_free(c, c->pend, c->pcap * sizeof(*nw));
    c->pend = nw;
    c->pcap = cap;
    c->ph = 0;
    return true;
}

static void emit(struct h1_conn *c, struct h1_pend *e, const struct h1_msg_view *resp)
{
    struct h1_txn_view t = {e ? &e->v : NULL, resp};
    c->ctr.transactions++;
    if (!e) c->ctr.unmatched_responses++;
    if (!resp) c->ctr.unmatched_requests++;
    c->cb(c->user, &t);
}

/* An entry leaves the FIFO: keep the counts of requests in step. */
static void pend_gone(struct h1_conn *c, const struct h1_pend *e)
{
    if (e->size) c->rlive--;
    if (e->kind != PEND_REQ) return;
    c->nreq--;
    if (!(e->v.flags & KW_TXN_F(PIPELINED))) c->unpiped--;
}

/* A reported head's bytes in the ring are wiped at once rather than when
 * the ring slot is reused: a quiet keep-alive connection would otherwise
 * keep its last Authorization header in memory for as long as it lives. */
static void pend_wipe(struct h1_conn *c, const struct h1_pend *e)
{
    if (e->size && c->ring) explicit_bzero(c->ring + e->off, e->size);
}

static void pend_pop(struct h1_conn *c)
{
    struct h1_pend *e = h1i_pend_at(c, 0);
    pend_wipe(c, e); /* every caller has reported it (emit) already */
    pend_gone(c, e);
    if (c->d[0].has_cur && c->d[0].seq == c->pseq && c->d[0].st != ST_IDLE &&
        c->d[0].st != ST_RESYNC && c->d[0].st != ST_CONNECT_WAIT)
        c->ctr.early_responses++;
    c->ph = c->ph + 1 == c->pcap ? 0 : c->ph + 1;
    c->pn--;
    c->pseq++;
    ring_fix_head(c);
}

/* Report the FIFO head as a request without response, and drop it. */
void h1i_pop_lone(struct h1_conn *c, uint32_t flags)
{
    struct h1_pend *e = h1i_pend_at(c, 0);
    if (e->kind == PEND_REQ) {
        e->v.flags |= flags;
        emit(c, e, NULL);
    }
    pend_pop(c);
}

/* Make room by reporting the oldest request not being answered right now
 * as unanswered. Its response, if the server is alive, will be the next
 * one after the current: skip_resp reports that one as NO_REQUEST. */
static bool evict_one(struct h1_conn *c)
{
    if (c->pn == 0) return false;
    c->ctr.pending_evicted++;
    bool in_use = c->resp_active && c->resp_matched;
    if (!in_use) {
        if (h1i_pend_at(c, 0)->kind == PEND_REQ && c->server_seen) c->skip_resp++;
        h1i_pop_lone(c, 0);
        return true;
    }
    if (c->pn < 2) return false;
    struct h1_pend victim = *h1i_pend_at(c, 1);
    *h1i_pend_at(c, 1) = *h1i_pend_at(c, 0);
    c->ph = c->ph + 1 == c->pcap ? 0 : c->ph + 1;
    c->pn--;
    c->pseq++;
    if (c->d[0].has_cur && c->d[0].seq == c->pseq)
        c->d[0].has_cur = false; /* the victim was receiving its body */
    else if (c->d[0].has_cur && c->d[0].seq == c->pseq - 1)
        c->d[0].seq = c->pseq;
    pend_gone(c, &victim);
    if (victim.kind == PEND_REQ) {
        if (c->server_seen) c->skip_resp++;
        emit(c, &victim, NULL);
    }
    pend_wipe(c, &victim);
    return true;
}

/* Room for one more entry, evicting the oldest while there is none. An
 * eviction because the FIFO holds max_pending entries is that limit's hit
 * (limits: http.max_pending); one because memory is short is not. */
static bool make_room(struct h1_conn *c)
{
    while (!pend_room(c)) {
        bool at_limit = c->pcap >= c->lim.max_pending;
        if (!evict_one(c)) return false;
        if (at_limit) c->ctr.pending_limit_hits++;
    }
    return true;
}

static struct h1_pend *pend_push(struct h1_conn *c)
{
    if (!make_room(c)) return NULL;
    struct h1_pend *e = h1i_pend_at(c, c->pn);
    memset(e, 0, sizeof(*e));
    c->pn++;
    return e;
}

void h1i_push_lost(struct h1_conn *c, kw_ts ts)
{
    if (c->pn > 0 && h1i_pend_at(c, c->pn - 1)->kind == PEND_LOST) return;
    struct h1_pend *e = pend_push(c);
    if (!e) return;
    e->kind = PEND_LOST;
    e->v.ts_start = e->v.ts_end = ts;
    c->ctr.lost_markers++;
}

/* Copy a completed request head into the ring and queue it. Returns its
 * sequence number (or UINT64_MAX when it could not be queued). */
uint64_t h1i_push_request(struct h1_conn *c, const struct h1_head *h, kw_ts t0, kw_ts t1,
                          uint32_t flags)
{
    if (c->nreq && c->server_seen && c->d[1].st != ST_RESYNC) {
        flags |= KW_TXN_F(PIPELINED);
        c->ctr.pipelined++;
    }
    (void)make_room(c);
    /* A head complete in one buffer is copied as sent, in one piece, when
     * that fits without evicting; otherwise field by field (and cut to
     * fit, evicting older requests first). */
    uint32_t flat = (uint32_t)h1i_flat_size(h), off = 0, want = 0, got = 0;
    bool evicted = false;
    bool flat_ok = flat && flat <= c->lim.req_arena_bytes &&
                   (ring_try(c, flat, &off) || (ring_grow(c, flat) && ring_try(c, flat, &off)));
    if (!flat_ok) {
        want = got = (uint32_t)h1i_head_size(&h->v);
        if (want > c->lim.req_arena_bytes) {
            /* more than the whole arena: grow it to its size and keep what
             * fits (start line, then fields in order). The ring had not
             * been grown for this head, and a new connection's is empty:
             * without this a head over the arena kept no method and no
             * path at all. */
            want = UINT32_MAX;
            while (ring_grow(c, 1)) {
            }
        }
        while (!ring_try(c, want, &off))
            if (want != UINT32_MAX && ring_grow(c, want))
                continue;
            else if (want == UINT32_MAX || !evict_one(c)) {
                got = ring_best(c, &off);
                break;
            } else
                evicted = true;
    }
    struct h1_pend *e = pend_push(c);
    if (!e) return UINT64_MAX;
    bool trunc = false;
    if (flat_ok)
        got = (uint32_t)h1i_copy_flat(c->ring + off, h, &e->v);
    else if (got)
        got = (uint32_t)h1i_copy_head(c->ring + off, got, &h->v, h->folded, &e->v, &trunc);
    if (!got) {
        e->v = h->v;
        e->v.method = e->v.target = e->v.version = (struct kw_slice){"", 0};
        e->v.hdrs = NULL;
        e->v.n_hdrs = 0;
        trunc = true;
    }
    if (trunc) {
        flags |= KW_TXN_F(TRUNCATED_FIELD);
        c->ctr.arena_truncations++;
    }
    /* the arena's own hit (limits: http.request_buffer): it was at its
     * size, not short of budget */
    if ((trunc || evicted) && (want == UINT32_MAX || c->rcap >= c->lim.req_arena_bytes))
        c->ctr.req_arena_hits++;
    if (got) {
        e->off = off;
        e->size = got;
        c->rtail = off + got;
        c->rlive++;
    }
    e->kind = PEND_REQ;
    e->v.flags = h->v.flags | flags | (h->expect100 ? KW_TXN_F(EXPECT_100) : 0);
    c->nreq++;
    if (!(e->v.flags & KW_TXN_F(PIPELINED))) c->unpiped++;
    e->v.ts_start = t0;
    e->v.ts_end = t1;
    e->v.body_len = 0;
    e->is_head = kw_slice_eq(h->v.method, "HEAD");
    e->is_connect = kw_slice_eq(h->v.method, "CONNECT");
    e->http09 = h->http09;
    c->ctr.requests++;
    return c->pseq + c->pn - 1;
}

/* ---- matching ----------------------------------------------------------- */

/* Which pending request does a final response starting at `ts` answer?
 * Returns the FIFO head or NULL (a response to a lost request). Requests
 * whose response is known lost are reported NO_RESPONSE on the way. */
struct h1_pend *h1i_match_response(struct h1_conn *c, kw_ts ts, bool resync)
{
    if (c->skip_resp) {
        c->skip_resp--;
        return NULL;
    }
    if (c->lost_resp && c->pn && h1i_pend_at(c, 0)->kind == PEND_REQ &&
        h1i_pend_at(c, 0)->v.ts_start <= c->lost_resp_ts)
        h1i_pop_lone(c, KW_TXN_F(GAP_RESPONSE));
    c->lost_resp = 0;
    while (c->pn) {
        struct h1_pend *e = h1i_pend_at(c, 0), *nx = c->pn > 1 ? h1i_pend_at(c, 1) : NULL;
        if (e->kind == PEND_LOST) {
            /* A request started before this response: lost ones before it
             * were answered earlier (sequential keep-alive). */
            if (nx && nx->kind == PEND_REQ && nx->v.ts_start <= ts) {
                pend_pop(c);
                continue;
            }
            return NULL;
        }
        if (e->v.ts_start > ts) return NULL; /* answered before it was asked: not this one */
        if (resync && nx && nx->kind == PEND_REQ && !(nx->v.flags & KW_TXN_F(PIPELINED)) &&
            nx->v.ts_start < ts) {
            /* the next request was sent before this response began, and not
             * pipelined: so this request's answer was in the hole */
            h1i_pop_lone(c, KW_TXN_F(GAP_RESPONSE));
            continue;
        }
        return e;
    }
    return NULL;
}

void h1i_tunnel_all(struct h1_conn *c)
{
    c->d[0].st = c->d[1].st = ST_TUNNEL;
}

/* A response ended inside a hole of the server's stream: its real end is
 * somewhere between the last bytes seen (ts_last) and the gap's report,
 * which may come with the data after the hole, seconds later. A request
 * sent after those last bytes may have followed the whole answer (the
 * client had it; the mirror lost it) or not: nothing seen says pipelined,
 * so it is not marked, and a PIPELINED mark given while the response was
 * still open is withdrawn. Requests sent before the last bytes seen were
 * sent while the answer was on the wire: pipelined, as usual. This keeps
 * the resync rule of h1i_match_response working in sequential keep-alive
 * after loss (zeek-erspan.pcap: a 161 KB hole ends one answer and holds
 * three more; the client asked for each after the previous one). */
static void unmark_after_cut(struct h1_conn *c)
{
    kw_ts last = c->d[1].ts_last;
    for (uint32_t i = 0; i < c->pn; i++) {
        struct h1_pend *q = h1i_pend_at(c, i);
        if (q->kind != PEND_REQ) continue;
        bool piped = (q->v.flags & KW_TXN_F(PIPELINED)) != 0;
        if (q->v.ts_start > last && piped) {
            q->v.flags &= ~KW_TXN_F(PIPELINED);
            c->ctr.pipelined--;
            c->unpiped++;
        } else if (q->v.ts_start <= last && !piped) {
            q->v.flags |= KW_TXN_F(PIPELINED);
            c->ctr.pipelined++;
            c->unpiped--;
        }
    }
}

/* The response being received is complete: report it with its request. */
void h1i_resp_done(struct h1_conn *c, kw_ts ts)
{
    struct h1_pend *e = c->resp_matched && c->pn ? h1i_pend_at(c, 0) : NULL;
    c->resp.ts_end = ts;
    c->resp_active = c->resp_borrowed = false;
    c->d[1].peek_bodyless = false;
    if (c->d[1].st != ST_TUNNEL) c->d[1].st = ST_IDLE;
    if (c->resp.flags & KW_TXN_F(PARSE_ERROR)) c->ctr.parse_errors++;
    h1_echo_end(&c->echo, &c->resp);
    emit(c, e, &c->resp);
    if (!e) return;
    pend_pop(c);
    if (c->gap_now) {
        unmark_after_cut(c);
        return;
    }
    /* requests still queued were sent before this answer ended */
    for (uint32_t i = 0; i < c->pn && c->unpiped; i++) {
        struct h1_pend *q = h1i_pend_at(c, i);
        if (q->kind == PEND_REQ && !(q->v.flags & KW_TXN_F(PIPELINED))) {
            q->v.flags |= KW_TXN_F(PIPELINED);
            c->ctr.pipelined++;
            c->unpiped--;
        }
    }
}

void h1i_msg_body(struct h1_conn *c, int dir, const uint8_t *p, uint64_t n)
{
    struct h1_pend *e;
    if (dir == 1) {
        c->resp.body_len += n;
        h1_echo_feed(&c->echo, p, n);
        return;
    }
    if ((e = cur_req(c))) e->v.body_len += n;
}

void h1i_msg_flag(struct h1_conn *c, int dir, uint32_t f)
{
    struct h1_pend *e;
    if (dir == 1)
        c->resp.flags |= f;
    else if ((e = cur_req(c)))
        e->v.flags |= f;
}

void h1i_msg_done(struct h1_conn *c, int dir, kw_ts ts)
{
    if (dir == 1) {
        h1i_resp_done(c, ts);
        return;
    }
    struct h1_pend *e = cur_req(c);
    c->d[0].has_cur = false;
    c->d[0].st = e && e->is_connect ? ST_CONNECT_WAIT : ST_IDLE;
    c->d[0].line_start = true;
    if (e) {
        e->v.ts_end = ts;
        if (e->v.flags & KW_TXN_F(PARSE_ERROR)) c->ctr.parse_errors++;
    }
}

void h1i_enter_resync(struct h1_conn *c, int dir, kw_ts ts, bool lost)
{
    struct h1_dir *d = &c->d[dir];
    d->st = ST_RESYNC;
    d->line_start = true;
    d->resync_mark = true;
    d->in_head = false;
    if (dir == 0 && lost) h1i_push_lost(c, ts);
}
