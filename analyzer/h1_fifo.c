/* h1_fifo: the pending-request FIFO of a connection, its ring arena, and
 * the matching of responses to requests (also after loss).
 *
 * The one thing to know: requests are released strictly in FIFO order, so
 * their head copies live in a ring (no allocation per message); a request is
 * reported only with its response, when known lost, when evicted because
 * the FIFO or ring is full, or at close. */
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
}

const struct h1_counters *h1_conn_counters(const struct h1_conn *c)
{
    return &c->ctr;
}

/* ---- pending-request FIFO and its ring arena ---------------------------- */

struct h1_pend *h1i_pend_at(struct h1_conn *c, uint32_t i)
{
    uint32_t k = c->ph + i; /* i < max_pending: no division on this path */
    return &c->pend[k >= c->lim.max_pending ? k - c->lim.max_pending : k];
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
    uint32_t cap = c->lim.req_arena_bytes;
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
    uint32_t cap = c->lim.req_arena_bytes, a, b = 0;
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

static void pend_pop(struct h1_conn *c)
{
    struct h1_pend *e = h1i_pend_at(c, 0);
    pend_gone(c, e);
    if (c->d[0].has_cur && c->d[0].seq == c->pseq && c->d[0].st != ST_IDLE &&
        c->d[0].st != ST_RESYNC && c->d[0].st != ST_CONNECT_WAIT)
        c->ctr.early_responses++;
    c->ph = (c->ph + 1) % c->lim.max_pending;
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
    c->ph = (c->ph + 1) % c->lim.max_pending;
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
    return true;
}

static struct h1_pend *pend_push(struct h1_conn *c)
{
    while (c->pn >= c->lim.max_pending)
        if (!evict_one(c)) return NULL;
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
    while (c->pn >= c->lim.max_pending)
        if (!evict_one(c)) break;
    /* A head complete in one buffer is copied as sent, in one piece, when
     * that fits without evicting; otherwise field by field (and cut to
     * fit, evicting older requests first). */
    uint32_t flat = (uint32_t)h1i_flat_size(h), off = 0, want = 0, got = 0;
    bool flat_ok = flat && flat <= c->lim.req_arena_bytes && ring_try(c, flat, &off);
    if (!flat_ok) {
        want = got = (uint32_t)h1i_head_size(&h->v);
        if (want > c->lim.req_arena_bytes) want = UINT32_MAX;
        while (!ring_try(c, want, &off))
            if (want == UINT32_MAX || !evict_one(c)) {
                got = ring_best(c, &off);
                break;
            }
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

/* The response being received is complete: report it with its request. */
void h1i_resp_done(struct h1_conn *c, kw_ts ts)
{
    struct h1_pend *e = c->resp_matched && c->pn ? h1i_pend_at(c, 0) : NULL;
    c->resp.ts_end = ts;
    c->resp_active = c->resp_borrowed = false;
    c->d[1].peek_bodyless = false;
    if (c->d[1].st != ST_TUNNEL) c->d[1].st = ST_IDLE;
    if (c->resp.flags & KW_TXN_F(PARSE_ERROR)) c->ctr.parse_errors++;
    emit(c, e, &c->resp);
    if (!e) return;
    pend_pop(c);
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

void h1i_msg_body(struct h1_conn *c, int dir, uint64_t n)
{
    struct h1_pend *e;
    if (dir == 1)
        c->resp.body_len += n;
    else if ((e = cur_req(c)))
        e->v.body_len += n;
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
