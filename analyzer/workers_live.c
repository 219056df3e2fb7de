/* workers_live.c: a live worker reading its own socket of the capture's
 * PACKET_FANOUT group. The kernel keeps a flow on one socket unless it is
 * tunnelled, so tunnelled packets are re-routed here to the worker their
 * inner address pair hashes to, through worker -> worker rings merged by
 * kernel time; quiet workers run their timers on wall time and claim
 * progress so the judge never waits on an idle socket. */
#include "kw_thread.h"
#include "workers_int.h"

/* ---- live worker (fanout) ---------------------------------------------- */

/* Where a packet is judged. The kernel's hash keeps a flow together
 * unless it is tunnelled: it hashes a UDP tunnel (VXLAN, GENEVE) on the
 * outer header, whose source port a VTEP picks per direction, so the two
 * directions of one inner connection can reach two sockets. Every
 * tunnelled packet therefore goes where its inner address pair hashes
 * (wk_pick, as the dispatcher places packets): all of an inner flow's packets
 * are tunnelled, so they all meet there. */
static int live_owner(struct worker *k, const struct cap_pkt *pkt)
{
    struct dec_packet d;
    memset(&d.src, 0, sizeof d.src);
    memset(&d.tunnel, 0, sizeof d.tunnel);
    enum dec_result r =
        dec_packet(&k->dec, pkt->linktype, pkt->ts, pkt->data, pkt->caplen, pkt->wirelen, &d);
    if (r == DEC_MALFORMED || d.tunnel.type == DEC_TUN_NONE || k->w->n < 2) return -1;
    return (int)wk_pick(k->w, r, &d);
}

/* A copy into the owner's ring (its own too: the owner takes the rings
 * in kernel-time order, so the two directions of a connection that came
 * through two sockets are parsed in the order they were on the wire).
 * Never waits: two workers handing each
 * other packets, both full, would wait on each other; a full ring loses
 * the packet and counts it (stats workers.redirect_drops), as a full
 * kernel ring does. */
static void live_redirect(struct worker *k, unsigned to, const struct cap_pkt *pkt)
{
    struct workers *w = k->w;
    _Atomic(struct ring *) *slot = &w->xr[k->index * w->n + to];
    struct ring *r = atomic_load_explicit(slot, memory_order_relaxed);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r || !wk_ring_init(r, X_RING, NULL, &w->wk[to].wake)) {
            free(r);
            k->redirect_drops++;
            return;
        }
        atomic_store_explicit(slot, r, memory_order_release);
    }
    struct in_rec *x = wk_ring_try_reserve(r, REC_PKT, sizeof *x + pkt->caplen);
    if (!x) {
        k->redirect_drops++;
        return;
    }
    x->seq = 0;
    x->ts = pkt->ts;
    x->caplen = pkt->caplen;
    x->wirelen = pkt->wirelen;
    x->linktype = pkt->linktype;
    memcpy(x->data, pkt->data, pkt->caplen);
    wk_ring_commit(r);
    k->redirected++;
}

/* The tag of what a live worker does next at kernel time ts: increasing,
 * unique across workers (WORKERS_MAX = 64: 6 bits of index). */
static uint64_t live_seq(struct worker *k, kw_ts ts)
{
    uint64_t t = ts > 0 ? (uint64_t)ts : 0;
    if (t <= k->base) t = k->base + 1;
    k->base = t;
    return t << 6 | k->index;
}

/* The baselines' tick, as judge_tick for the dispatcher: each worker sends
 * its own; the judge keeps the first of each second (judge_one). */
static void live_tick(struct worker *k, kw_ts now)
{
    int64_t sec = now / k->w->tick_us;
    if (sec == k->tick_sec) return;
    k->tick_sec = sec;
    uint32_t phase = k->phase;
    k->phase = 2;
    struct ev *e = wk_out_begin(k, REC_TICK, sizeof e->u.now, 0, 0);
    e->now = e->u.now = now;
    wk_ring_commit(&k->out);
    k->phase = phase;
}

/* One packet (or, with none, a quiet moment at wall time) at the next tag. */
static void live_step(struct worker *k, const struct cap_pkt *pkt)
{
    kw_ts wall = pkt ? 0 : kw_ts_wall();
    uint64_t seq = live_seq(k, pkt ? pkt->ts : cap_settled(k->w->live, wall));
    k->seq = seq;
    k->idx = 0;
    if (pkt) {
        k->phase = 1;
        pipeline_set_seq(k->pipe, seq);
        pipeline_packet(k->pipe, pkt);
    } else { /* quiet: its timers on wall time, as one packet thread runs them */
        k->phase = 0;
        pipeline_advance(k->pipe, wall);
    }
    live_tick(k, pipeline_now(k->pipe));
    wk_progress_set(k, 2 * seq + 1);
}

/* The tunnelled packets handed to this worker, oldest first: one is
 * taken when every sender whose ring is empty has read its socket past
 * it. Returns how many; *held: some are left (a sender's time must move,
 * which kicks nobody: look again soon). */
static size_t live_take(struct worker *k, bool *held)
{
    struct workers *w = k->w;
    size_t got = 0;
    *held = true;
    for (; got < 1024; got++) {
        struct ring *best = NULL;
        struct rec_hdr *bh = NULL;
        kw_ts bts = 0;
        bool wait = false;
        int64_t upto[WORKERS_MAX];
        for (unsigned from = 0; from < w->n; from++) {
            /* the time first: what the sender put in the ring before
             * raising it is then visible */
            upto[from] = atomic_load_explicit(&w->wk[from].xr_time, memory_order_acquire);
            struct ring *r =
                atomic_load_explicit(&w->xr[from * w->n + k->index], memory_order_acquire);
            struct rec_hdr *h = r ? wk_ring_peek(r) : NULL;
            if (!h) {
                upto[from] = -upto[from] - 1; /* empty: only its time counts */
                continue;
            }
            kw_ts ts = ((const struct in_rec *)(h + 1))->ts;
            if (!bh || ts < bts) {
                best = r;
                bh = h;
                bts = ts;
            }
        }
        if (!bh) {
            *held = false;
            break;
        }
        for (unsigned from = 0; from < w->n && !wait; from++)
            wait = upto[from] < 0 && -(upto[from] + 1) < bts;
        if (wait) break;
        const struct in_rec *x = (const struct in_rec *)(bh + 1);
        struct cap_pkt pkt = {.ts = x->ts,
                              .caplen = x->caplen,
                              .wirelen = x->wirelen,
                              .linktype = x->linktype,
                              .data = x->data};
        live_step(k, &pkt);
        wk_ring_release(best, bh);
    }
    return got;
}

static void raise_time(struct worker *k, kw_ts t)
{
    if (t > atomic_load_explicit(&k->xr_time, memory_order_relaxed))
        atomic_store_explicit(&k->xr_time, t, memory_order_release);
}

/* Live: should a quiet worker claim progress soon (the judge waits for
 * it, or packets handed to it wait for a sender's time)? */
static bool live_soon(struct worker *k, bool held)
{
    return held || atomic_load_explicit(&k->judge_need, memory_order_relaxed) != UINT64_MAX;
}

/* Its socket ended: others may still hand this worker packets until
 * theirs end. Take them, and say how far it got while it waits (asleep:
 * the others kick it when they hand it a packet or end). */
static void live_drain_others(struct worker *k)
{
    struct workers *w = k->w;
    for (;;) {
        bool last = atomic_load(&w->eof) == w->n, held;
        wk_snap_poll(w, &w->snap_want, &k->snap, k->pipe, k);
        kw_wake_prepare(&k->wake);
        if (live_take(k, &held)) {
            kw_wake_cancel(&k->wake);
            continue;
        }
        if (last && !held) {
            kw_wake_cancel(&k->wake);
            return;
        }
        live_step(k, NULL);
        /* held: a sender's time lets them go, and that kicks nobody */
        kw_wake_wait(&k->wake, live_soon(k, held) ? CAP_MEMBER_WAIT_MS : 100);
    }
}

void *wk_live_main(void *arg)
{
    struct worker *k = arg;
    kw_thread_role("kw-worker", false);
    struct workers *w = k->w;
    struct cap_pkt pkt;
    int wfd = kw_wake_fd(&k->wake);
    for (;;) {
        bool held;
        wk_snap_poll(w, &w->snap_want, &k->snap, k->pipe, k);
        /* announced before looking at the rings and the socket: a packet
         * handed over, a stop or the judge's call then cuts the poll short */
        kw_wake_prepare(&k->wake);
        live_take(k, &held);
        enum cap_next n = cap_next_member(w->live, k->index, wfd, live_soon(k, held), &pkt);
        kw_wake_cancel(&k->wake);
        if (n == CAP_EOF || n == CAP_ERROR) {
            k->cap_failed = n == CAP_ERROR;
            break;
        }
        if (n == CAP_PACKET) {
            int to = live_owner(k, &pkt);
            if (to >= 0) {
                live_redirect(k, (unsigned)to, &pkt);
                raise_time(k, pkt.ts);
                /* nothing of ours at this tag: say so, or a worker that
                 * only hands packets on would hold the judge back */
                uint64_t seq = live_seq(k, pkt.ts);
                wk_progress_set(k, 2 * seq + 1);
                continue;
            }
        }
        live_step(k, n == CAP_PACKET ? &pkt : NULL);
        raise_time(k, n == CAP_PACKET ? pkt.ts : cap_settled(w->live, kw_ts_wall()));
    }
    raise_time(k, INT64_MAX); /* its socket is done: nobody waits on it */
    atomic_fetch_add(&w->eof, 1);
    for (unsigned i = 0; i < w->n; i++)
        if (i != k->index) kw_wake_notify(&w->wk[i].wake);
    live_drain_others(k);
    atomic_store_explicit(&k->cap_done, true, memory_order_release);
    kw_wake_notify(&w->disp_wake); /* workers_finish waits for it */
    return wk_worker_main(k);      /* until workers_finish's REC_FIN */
}
