/* workers: dispatcher, N packet workers and one judge thread (see
 * workers.h).
 *
 * Placement: every packet goes to the worker chosen by a symmetric hash of
 * its innermost IP address pair (sorted, so both directions meet; no
 * ports, no tunnel id, no VLAN). Without ports, IP fragments (which carry
 * no ports after the first) land on the same worker as the unfragmented
 * packets of their connection, and defrag and the flow table join them
 * there; directions mirrored in different tunnels meet too. The price is
 * balance: one busy host pair is one worker's load.
 *
 * Rings: one single-producer single-consumer byte ring per direction
 * (dispatcher -> worker: packet copies; worker -> judge: records), sized
 * at start; a full ring makes its producer sleep (an empty one its
 * consumer; kw_wake.h: no spinning, so idle threads cost nothing and busy
 * ones keep the cores of a small machine), so memory is bounded by
 * the rings whatever the judge's speed (back-pressure up to the reader).
 * Each worker's records leave in key order (below), so the judge merges
 * the rings in place, the smallest head first, without copying or sorting
 * anything (issue 13: a staging list that drained every ring grew to
 * hundreds of MB when the judge fell behind, and sorted it on every pass).
 * The smallest head may go when every worker whose ring is empty has
 * finished everything up to its key: `progress` counts half-steps (2*seq
 * once a packet's flow-table tick is done, 2*seq+1 once the packet is), so
 * a worker blocked in the middle of a long timeout sweep never holds back
 * its own records: no worker waits on a judge that waits on another.
 *
 * Order: records are sorted by (packet seq, phase, timeout list, the
 * flow's last packet seq, worker, index). Phase 0 is the flow-table tick
 * the dispatcher broadcasts before packet `seq` (the flow table runs its
 * timeouts when a packet is >= 1 s of packet time past the last run; the
 * dispatcher runs that rule on the same packets), phase 1 the packet
 * itself, phase 2 the judge's baseline tick after it. The one table's
 * timeout scan walks three lists (TCP, UDP, closed) oldest first, then the
 * flows with holes: the (list, last packet) key reproduces that walk over
 * N tables. A datagram rebuilt from fragments does not move the
 * dispatcher's table time (it cannot tell which fragment completes one).
 *
 * Live (fanout): each worker reads its own socket of the capture's
 * PACKET_FANOUT group; the kernel has placed the packets (a symmetric flow
 * hash, IPv4 fragments reassembled first; capture/source.c). A worker tags
 * a packet with its kernel timestamp in microseconds, the worker's index in
 * the low 6 bits, bumped to stay increasing: unique across workers, so it
 * is still the creation tag of a flow. Each table ticks on its own packets,
 * and a quiet worker (nothing within poll_ms, or CAP_MEMBER_WAIT_MS while
 * the judge waits for it: judge_need) runs its timers on
 * wall time and claims progress up to cap_settled(): a packet stamped
 * earlier that still turns up gets a later tag, so the merge stays sound
 * and only that packet's place in time moves. Judge ticks come from every
 * worker; the judge takes each second once. */
#include "workers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dpop.h"
#include "kw_hash.h"
#include "kw_log.h"
#include "kw_wake.h"

/* ---- SPSC byte ring ---------------------------------------------------- */

enum rec_kind {
    REC_PAD = 0,
    REC_PKT,    /* dispatcher -> worker */
    REC_ADV,    /* flow-table tick before a packet */
    REC_MARK,   /* progress: nothing more up to seq */
    REC_FIN,    /* end of input */
    REC_FSTART, /* worker -> judge */
    REC_TXN,
    REC_FEND,
    REC_TICK, /* dispatcher -> judge: baseline tick */
    REC_TLS,  /* worker -> judge: a TLS session */
};

struct rec_hdr {
    uint32_t len; /* whole record, header included, multiple of 8 */
    uint32_t kind;
};

/* Waiting: a consumer with an empty ring and a producer with a full one
 * sleep on their thread's kw_wake (cons, prod). A commit kicks the
 * consumer if it sleeps; a release kicks the producer once the room it
 * asked for (`room`: at least a quarter of the ring, so it is woken once
 * per batch, not once per record) is free. */
struct ring {
    _Alignas(64) _Atomic uint64_t head;
    _Alignas(64) _Atomic uint64_t tail;
    _Atomic uint64_t room; /* free bytes the sleeping producer waits for; 0: none */
    _Alignas(64) uint8_t *buf;
    uint64_t size, pending;
    struct kw_wake *prod, *cons; /* borrowed; NULL: that side never sleeps */
};

static bool ring_init(struct ring *r, uint64_t size, struct kw_wake *prod, struct kw_wake *cons)
{
    memset(r, 0, sizeof *r);
    r->buf = aligned_alloc(64, size);
    r->size = size;
    r->prod = prod;
    r->cons = cons;
    return r->buf != NULL;
}

/* Free bytes needed for `len` payload bytes now (a record never wraps:
 * the end of the ring is padded first), or 0 when they fit. */
static uint64_t ring_lacks(struct ring *r, size_t len, uint64_t *pos_out, uint64_t *pad_out)
{
    uint64_t need = (sizeof(struct rec_hdr) + len + 7) & ~(uint64_t)7;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t pos = head % r->size;
    uint64_t pad = pos + need > r->size ? r->size - pos : 0;
    *pos_out = pos;
    *pad_out = pad;
    return head + pad + need - tail > r->size ? pad + need : 0;
}

/* Room for `len` payload bytes, or NULL while the ring is full. */
static void *ring_try_reserve(struct ring *r, uint32_t kind, size_t len)
{
    uint64_t need = (sizeof(struct rec_hdr) + len + 7) & ~(uint64_t)7;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t pos, pad;
    if (ring_lacks(r, len, &pos, &pad)) return NULL;
    if (pad) {
        struct rec_hdr *p = (struct rec_hdr *)(r->buf + pos);
        p->len = (uint32_t)pad;
        p->kind = REC_PAD;
        pos = 0;
    }
    struct rec_hdr *h = (struct rec_hdr *)(r->buf + pos);
    h->len = (uint32_t)need;
    h->kind = kind;
    r->pending = head + pad + need;
    return h + 1;
}

/* Room for `len` payload bytes; sleeps while the ring is full (at most a
 * second at a time: a safety net, every release that makes the room
 * kicks). */
static void *ring_reserve(struct ring *r, uint32_t kind, size_t len)
{
    void *p;
    while (!(p = ring_try_reserve(r, kind, len))) {
        uint64_t pos, pad, lack = ring_lacks(r, len, &pos, &pad);
        atomic_store_explicit(&r->room, lack > r->size / 4 ? lack : r->size / 4,
                              memory_order_relaxed);
        kw_wake_prepare(r->prod);
        if ((p = ring_try_reserve(r, kind, len))) {
            kw_wake_cancel(r->prod);
            break;
        }
        kw_wake_wait(r->prod, 1000);
    }
    atomic_store_explicit(&r->room, 0, memory_order_relaxed);
    return p;
}

/* Gives back the unused end of the last reservation: a record reserved at
 * its largest (a packed transaction) takes only the bytes it used. */
static void ring_shrink(struct ring *r, void *payload, size_t len)
{
    struct rec_hdr *h = (struct rec_hdr *)payload - 1;
    uint32_t need = (uint32_t)((sizeof *h + len + 7) & ~(size_t)7);
    r->pending -= h->len - need;
    h->len = need;
}

static void ring_commit(struct ring *r)
{
    atomic_store_explicit(&r->head, r->pending, memory_order_release);
    if (r->cons) kw_wake_notify(r->cons);
}

/* Consumer: the ring's new tail; kicks a producer whose room is free. */
static void ring_set_tail(struct ring *r, uint64_t tail)
{
    atomic_store_explicit(&r->tail, tail, memory_order_release);
    if (!r->prod || !kw_wake_sleeping(r->prod)) return;
    uint64_t room = atomic_load_explicit(&r->room, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (room && r->size - (head - tail) >= room) kw_wake_kick(r->prod);
}

/* The next record, or NULL when empty. */
static struct rec_hdr *ring_peek(struct ring *r)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    while (tail != head) {
        struct rec_hdr *h = (struct rec_hdr *)(r->buf + tail % r->size);
        if (h->kind != REC_PAD) return h;
        tail += h->len;
        ring_set_tail(r, tail);
    }
    return NULL;
}

static void ring_release(struct ring *r, const struct rec_hdr *h)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    ring_set_tail(r, tail + h->len);
}

/* ---- records ----------------------------------------------------------- */

struct in_rec { /* REC_PKT, REC_ADV, REC_MARK, REC_FIN */
    uint64_t seq;
    kw_ts ts;
    uint32_t caplen, wirelen;
    int linktype;
    uint8_t data[];
};

struct key {
    uint64_t seq;
    uint32_t phase, list;
    uint64_t last;
    uint32_t worker, idx;
};

struct ev_flow {
    struct flow f;
    char app[64], sni[256];
    int64_t http_txns;
    int why;
    kw_ts ts;
};

/* A transaction crosses packed (kw_txn_pack: the used bytes of its text
 * fields, ~0.5-1 KB for an API call instead of the whole 15 KB record),
 * after the union's fixed part for REC_TLS (the session's tls_info). */
struct ev { /* worker/dispatcher -> judge */
    uint32_t kind;
    struct key k;
    kw_ts now; /* the producer's packet clock (a forward's time) */
    union {
        uint8_t txn[1];     /* REC_TXN: kw_txn_pack's bytes */
        struct tls_info ti; /* REC_TLS, its packed kw_txn after it */
        struct ev_flow fl;
        uint64_t cseq; /* REC_FSTART: the flow's creation seq (its id) */
        kw_ts now;     /* REC_TICK */
    } u;
};

#define EV_HEAD offsetof(struct ev, u)

/* ---- flow id map (judge): creation seq -> id in creation order -------- */

struct idmap {
    uint64_t *k, *v;
    size_t cap, n;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static bool idmap_put(struct idmap *m, uint64_t k, uint64_t v);

static bool idmap_grow(struct idmap *m)
{
    struct idmap o = *m;
    m->cap = o.cap ? o.cap * 2 : 4096;
    m->k = calloc(m->cap, sizeof *m->k);
    m->v = calloc(m->cap, sizeof *m->v);
    m->n = 0;
    if (!m->k || !m->v) {
        free(m->k);
        free(m->v);
        *m = o;
        return false;
    }
    for (size_t i = 0; i < o.cap; i++)
        if (o.k[i]) idmap_put(m, o.k[i], o.v[i]);
    free(o.k);
    free(o.v);
    return true;
}

static bool idmap_put(struct idmap *m, uint64_t k, uint64_t v)
{
    if ((m->n + 1) * 2 > m->cap && !idmap_grow(m)) return false;
    size_t i = mix(k) & (m->cap - 1);
    while (m->k[i] && m->k[i] != k)
        i = (i + 1) & (m->cap - 1);
    if (!m->k[i]) m->n++;
    m->k[i] = k;
    m->v[i] = v;
    return true;
}

static size_t idmap_find(const struct idmap *m, uint64_t k)
{
    if (!m->cap) return SIZE_MAX;
    size_t i = mix(k) & (m->cap - 1);
    while (m->k[i]) {
        if (m->k[i] == k) return i;
        i = (i + 1) & (m->cap - 1);
    }
    return SIZE_MAX;
}

/* Removes slot i (backward-shift deletion keeps probe chains whole). */
static void idmap_del(struct idmap *m, size_t i)
{
    size_t mask = m->cap - 1, j = i;
    m->k[i] = 0;
    m->n--;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->k[j]) return;
        size_t h = mix(m->k[j]) & mask;
        if ((j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j))) {
            m->k[i] = m->k[j];
            m->v[i] = m->v[j];
            m->k[j] = 0;
            i = j;
        }
    }
}

/* ---- the context ------------------------------------------------------- */

struct worker {
    struct workers *w;
    unsigned index;
    pthread_t thread;
    struct pipeline *pipe;
    struct pipeline_sink sink;
    struct ring in, out;
    _Alignas(64) _Atomic uint64_t progress; /* 2*seq(+1): records up to there are out */
    /* the progress the sleeping judge waits for from this worker (UINT64_MAX:
     * none; live: a quiet worker then claims progress every
     * CAP_MEMBER_WAIT_MS instead of every poll_ms) */
    _Atomic uint64_t judge_need;
    struct kw_wake wake; /* its in ring, its out ring's room; live: xr rings, the judge, a stop */
    bool wake_ok;
    uint64_t seq;
    uint32_t phase, idx;
    bool started;
    /* live: this worker reads its own socket */
    uint64_t base;         /* time part of the last tag (seq = base << 6 | index) */
    int64_t tick_sec;      /* the last judge tick it sent */
    _Atomic bool cap_done; /* its socket ended; it waits for REC_FIN */
    bool cap_failed;
    struct dec_ctx dec; /* finds tunnelled packets (live_owner) */
    /* kernel time up to which it read its socket: every tunnelled packet
     * stamped earlier is in a ring (the owners merge by time) */
    _Alignas(64) _Atomic int64_t xr_time;
    uint64_t redirected, redirect_drops; /* tunnelled packets handed to / lost for another */
};

struct workers {
    unsigned n;
    struct worker *wk;
    struct cap_source *live; /* fanout: the workers read its sockets; NULL: dispatcher */
    /* live: xr[from * n + to], the ring a worker hands another worker's
     * tunnelled packets in; made by the sender when it first needs it */
    _Atomic(struct ring *) *xr;
    _Atomic unsigned eof; /* workers whose socket ended */
    /* dispatcher */
    struct dec_ctx dec;
    uint64_t seq, mark_bytes;
    kw_ts now;
    int64_t last_sec;
    kw_ts tick_us;           /* the judge tick's period: a second, or the forward's */
    kw_ts tbl_now, tbl_last; /* the flow table's clock, as one table would run it */
    bool tbl_have;
    struct ring ticks; /* dispatcher -> judge */
    struct pipeline_counters disp_cnt, total;
    bool finished;
    /* judge */
    pthread_t judge_thread;
    bool judge_started;
    struct pipeline *judge;
    _Atomic(struct rules_model *) new_model;
    struct idmap ids;
    uint64_t next_id;
    struct kw_txn txn; /* the record being judged, unpacked from a ring */
    int64_t judge_sec; /* the last baseline tick judged (live: every worker sends them) */
    _Atomic uint64_t fin_seq;
    struct kw_wake judge_wake; /* workers' records and progress, ticks, fin, a model */
    struct kw_wake disp_wake;  /* the dispatcher (the caller's thread): ring room, a socket's end */
    bool judge_wake_ok, disp_wake_ok;
};

/* A mark every 64 packets or 1 MB of them, whichever comes first: a worker
 * whose in ring is full (4 MB) then always sits behind marks the others
 * have had, so their progress passes whatever it still has to hand out.
 * 4 MB in rings (were 16) hold thousands of small packets, enough to ride
 * out a judge's pause, and keep 4 workers within one worker's memory +
 * 64 MB (issue 13: +59 MB measured on the small-API capture). */
enum {
    IN_RING = 4 << 20,
    IN_RING_LIVE = 64 << 10, /* only REC_FIN goes in */
    X_RING = 1 << 20,        /* worker -> worker: tunnelled packets */
    OUT_RING = 4 << 20,
    MARK_EVERY = 64,
    MARK_BYTES = 1 << 20,
    WORKERS_MAX = 64
};

/* ---- worker side ------------------------------------------------------- */

static struct ev *out_begin(struct worker *k, uint32_t kind, size_t len, uint32_t list,
                            uint64_t last)
{
    struct ev *e = ring_reserve(&k->out, kind, EV_HEAD + len);
    e->kind = kind;
    e->k = (struct key){.seq = k->seq,
                        .phase = k->phase,
                        .list = k->phase ? 0 : list,
                        .last = k->phase ? 0 : last,
                        .worker = k->index,
                        .idx = k->idx++};
    e->now = pipeline_now(k->pipe);
    return e;
}

static uint32_t list_of(const struct flow *f, int why)
{
    if (why < 0) return 3; /* the holes scan comes after the three lists */
    if (why == FLOW_END_CLOSED) return 2;
    return why == FLOW_END_TIMEOUT && f->proto == 17 ? 1 : 0;
}

static void sink_flow_start(void *user, struct flow *f)
{
    struct worker *k = user;
    f->id = k->seq; /* at most one flow begins per packet: unique */
    struct ev *e = out_begin(k, REC_FSTART, sizeof e->u.cseq, 0, 0);
    e->u.cseq = k->seq;
    ring_commit(&k->out);
}

static void sink_txn(void *user, const struct flow *f, uint64_t seq, int why,
                     const struct kw_txn *t)
{
    struct worker *k = user;
    struct ev *e = out_begin(k, REC_TXN, KW_TXN_PACKED_MAX, list_of(f, why), seq);
    ring_shrink(&k->out, e, EV_HEAD + kw_txn_pack(t, e->u.txn));
    ring_commit(&k->out);
}

static void sink_tls(void *user, const struct flow *f, uint64_t seq, int why,
                     const struct kw_txn *t, const struct tls_info *ti)
{
    struct worker *k = user;
    struct ev *e = out_begin(k, REC_TLS, sizeof e->u.ti + KW_TXN_PACKED_MAX, list_of(f, why), seq);
    e->u.ti = *ti;
    ring_shrink(&k->out, e, EV_HEAD + sizeof e->u.ti + kw_txn_pack(t, &e->u.ti + 1));
    ring_commit(&k->out);
}

static void sink_flow_end(void *user, const struct flow *f, uint64_t seq, enum flow_end_reason why,
                          kw_ts ts, const char *app, const char *sni, int64_t http_txns)
{
    struct worker *k = user;
    struct ev *e = out_begin(k, REC_FEND, sizeof e->u.fl, list_of(f, (int)why), seq);
    struct ev_flow *fl = &e->u.fl;
    fl->f = *f;
    fl->f.app = NULL;
    snprintf(fl->app, sizeof fl->app, "%s", app);
    snprintf(fl->sni, sizeof fl->sni, "%s", sni);
    fl->http_txns = http_txns;
    fl->why = (int)why;
    fl->ts = ts;
    ring_commit(&k->out);
}

/* Publishes how far the worker got; kicks the judge if it sleeps waiting
 * for this much (merge's need) from it. */
static void progress_set(struct worker *k, uint64_t done)
{
    atomic_store_explicit(&k->progress, done, memory_order_release);
    if (kw_wake_sleeping(&k->w->judge_wake) &&
        done >= atomic_load_explicit(&k->judge_need, memory_order_relaxed))
        kw_wake_kick(&k->w->judge_wake);
}

/* The next record of the worker's in ring; sleeps while it is empty. */
static struct rec_hdr *in_next(struct worker *k)
{
    struct rec_hdr *h;
    while (!(h = ring_peek(&k->in))) {
        kw_wake_prepare(&k->wake);
        if ((h = ring_peek(&k->in))) {
            kw_wake_cancel(&k->wake);
            break;
        }
        kw_wake_wait(&k->wake, 1000);
    }
    return h;
}

static void *worker_main(void *arg)
{
    struct worker *k = arg;
    for (;;) {
        struct rec_hdr *h = in_next(k);
        const struct in_rec *r = (const struct in_rec *)(h + 1);
        uint64_t done = 2 * r->seq + 1;
        k->seq = r->seq;
        k->idx = 0;
        k->phase = 0;
        switch (h->kind) {
        case REC_PKT: {
            k->phase = 1;
            struct cap_pkt pkt = {.ts = r->ts,
                                  .caplen = r->caplen,
                                  .wirelen = r->wirelen,
                                  .linktype = r->linktype,
                                  .data = r->data};
            pipeline_set_seq(k->pipe, r->seq);
            pipeline_packet(k->pipe, &pkt);
            break;
        }
        case REC_ADV:
            pipeline_flow_advance(k->pipe, r->ts);
            done = 2 * r->seq; /* the packet it precedes is still to come */
            break;
        case REC_FIN:
            pipeline_finish_at(k->pipe, r->ts);
            break;
        default:
            break;
        }
        uint32_t kind = h->kind;
        ring_release(&k->in, h);
        if (done > atomic_load_explicit(&k->progress, memory_order_relaxed)) progress_set(k, done);
        if (kind == REC_FIN) {
            dpop_thread_cleanup(); /* the proof keys this worker built */
            return NULL;
        }
    }
}

/* ---- live worker (fanout) ---------------------------------------------- */

static unsigned pick(struct workers *w, enum dec_result r, const struct dec_packet *d);

/* Where a packet is judged. The kernel's hash keeps a flow together
 * unless it is tunnelled: it hashes a UDP tunnel (VXLAN, GENEVE) on the
 * outer header, whose source port a VTEP picks per direction, so the two
 * directions of one inner connection can reach two sockets. Every
 * tunnelled packet therefore goes where its inner address pair hashes
 * (pick, as the dispatcher places packets): all of an inner flow's packets
 * are tunnelled, so they all meet there. */
static int live_owner(struct worker *k, const struct cap_pkt *pkt)
{
    struct dec_packet d;
    memset(&d.src, 0, sizeof d.src);
    memset(&d.tunnel, 0, sizeof d.tunnel);
    enum dec_result r =
        dec_packet(&k->dec, pkt->linktype, pkt->ts, pkt->data, pkt->caplen, pkt->wirelen, &d);
    if (r == DEC_MALFORMED || d.tunnel.type == DEC_TUN_NONE || k->w->n < 2) return -1;
    return (int)pick(k->w, r, &d);
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
        if (!r || !ring_init(r, X_RING, NULL, &w->wk[to].wake)) {
            free(r);
            k->redirect_drops++;
            return;
        }
        atomic_store_explicit(slot, r, memory_order_release);
    }
    struct in_rec *x = ring_try_reserve(r, REC_PKT, sizeof *x + pkt->caplen);
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
    ring_commit(r);
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
    struct ev *e = out_begin(k, REC_TICK, sizeof e->u.now, 0, 0);
    e->now = e->u.now = now;
    ring_commit(&k->out);
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
    progress_set(k, 2 * seq + 1);
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
            struct rec_hdr *h = r ? ring_peek(r) : NULL;
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
        ring_release(best, bh);
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

static void *live_main(void *arg)
{
    struct worker *k = arg;
    struct workers *w = k->w;
    struct cap_pkt pkt;
    int wfd = kw_wake_fd(&k->wake);
    for (;;) {
        bool held;
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
                progress_set(k, 2 * seq + 1);
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
    return worker_main(k);         /* until workers_finish's REC_FIN */
}

/* ---- judge side -------------------------------------------------------- */

static int key_cmp(const struct key *x, const struct key *y)
{
#define KC(f)                                                                                      \
    if (x->f != y->f) return x->f < y->f ? -1 : 1;
    KC(seq)
    KC(phase)
    KC(list)
    KC(last)
    KC(worker)
    KC(idx)
#undef KC
        return 0;
}

static struct ev *ev_of(struct rec_hdr *h)
{
    return (struct ev *)(h + 1);
}

static uint64_t flow_id(struct workers *w, uint64_t cseq, bool end)
{
    size_t i = idmap_find(&w->ids, cseq);
    if (i == SIZE_MAX) return 0;
    uint64_t id = w->ids.v[i];
    if (end) idmap_del(&w->ids, i);
    return id;
}

static void judge_one(struct workers *w, struct ev *e)
{
    pipeline_judge_at(w->judge, e->now);
    switch (e->kind) {
    case REC_FSTART:
        if (!idmap_put(&w->ids, e->u.cseq, ++w->next_id))
            kw_warn("workers: out of memory for flow ids");
        break;
    case REC_TXN:
        kw_txn_unpack(&w->txn, e->u.txn);
        w->txn.flow_id = flow_id(w, w->txn.flow_id, false);
        pipeline_judge_txn(w->judge, &w->txn);
        break;
    case REC_TLS:
        kw_txn_unpack(&w->txn, &e->u.ti + 1);
        w->txn.flow_id = flow_id(w, w->txn.flow_id, false);
        pipeline_judge_tls(w->judge, &w->txn, &e->u.ti);
        break;
    case REC_FEND: {
        struct ev_flow *fl = &e->u.fl;
        fl->f.id = flow_id(w, fl->f.id, true);
        pipeline_judge_flow(w->judge, &fl->f, fl->app, fl->sni, fl->http_txns,
                            (enum flow_end_reason)fl->why, fl->ts);
        break;
    }
    case REC_TICK:
        if (e->u.now / w->tick_us > w->judge_sec) {
            w->judge_sec = e->u.now / w->tick_us;
            pipeline_judge_tick(w->judge, e->u.now);
        }
        break;
    default:
        break;
    }
}

/* Judges, in key order, every record no worker can still precede; returns
 * how many. Streams 0..n-1 are the workers' rings, n the dispatcher's
 * ticks (written before any later packet is handed out, so an empty ticks
 * ring holds nothing older than what the workers' rings show). */
static size_t merge(struct workers *w, struct rec_hdr **head, uint64_t *prog, unsigned *blocker,
                    uint64_t *blocked_at)
{
    unsigned n = w->n;
    for (unsigned i = 0; i < n; i++) /* progress first: an empty ring is then conclusive */
        prog[i] = atomic_load_explicit(&w->wk[i].progress, memory_order_acquire);
    for (unsigned i = 0; i <= n; i++)
        head[i] = ring_peek(i < n ? &w->wk[i].out : &w->ticks);
    size_t judged = 0;
    for (;;) {
        unsigned best = n + 1;
        for (unsigned i = 0; i <= n; i++)
            if (head[i] && (best > n || key_cmp(&ev_of(head[i])->k, &ev_of(head[best])->k) < 0))
                best = i;
        *blocker = n; /* nothing to judge: any record wakes it */
        *blocked_at = 0;
        if (best > n) return judged;
        const struct key *k = &ev_of(head[best])->k;
        uint64_t need = 2 * k->seq + (k->phase ? 1 : 0);
        for (unsigned i = 0; i < n; i++)
            if (!head[i] && prog[i] < need) {
                *blocker = i; /* a record or this much progress from it */
                *blocked_at = need;
                return judged;
            }
        judge_one(w, ev_of(head[best]));
        struct ring *r = best < n ? &w->wk[best].out : &w->ticks;
        ring_release(r, head[best]);
        head[best] = ring_peek(r);
        judged++;
    }
}

/* Every worker finished `fin` and its rings are drained (prog: merge's). */
static bool judge_done(struct workers *w, uint64_t fin, const uint64_t *prog)
{
    if (!fin || ring_peek(&w->ticks)) return false;
    for (unsigned i = 0; i < w->n; i++)
        if (prog[i] < 2 * fin + 1 || ring_peek(&w->wk[i].out)) return false;
    return true;
}

/* What the sleeping judge waits for from each worker: the blocker's
 * progress up to `at`; at the end, any progress. A live blocker is kicked
 * once so that it claims progress soon (live_soon). */
static void judge_wants(struct workers *w, unsigned blocker, uint64_t at, uint64_t fin)
{
    for (unsigned i = 0; i < w->n; i++) {
        struct worker *k = &w->wk[i];
        uint64_t want = fin ? 0 : i == blocker ? at : UINT64_MAX;
        uint64_t was = atomic_exchange_explicit(&k->judge_need, want, memory_order_relaxed);
        if (w->live && want != UINT64_MAX && was == UINT64_MAX) kw_wake_notify(&k->wake);
    }
}

static void *judge_main(void *arg)
{
    struct workers *w = arg;
    struct rec_hdr *head[WORKERS_MAX + 1];
    uint64_t prog[WORKERS_MAX];
    for (unsigned idle = 0;;) {
        struct rules_model *m = atomic_exchange(&w->new_model, NULL);
        if (m) pipeline_set_model(w->judge, m);
        uint64_t fin = atomic_load(&w->fin_seq), at, at2;
        unsigned b, b2;
        size_t got = merge(w, head, prog, &b, &at);
        if (judge_done(w, fin, prog)) return NULL;
        if (got) {
            idle = 0;
            continue;
        }
        if (idle++ < 4) { /* a worker busy on another core may be about to hand more */
            sched_yield();
            continue;
        }
        /* sleep until a worker hands a record or the progress merge
         * needs; looking again after announcing it (kw_wake.h) */
        judge_wants(w, b, at, fin);
        kw_wake_prepare(&w->judge_wake);
        got = merge(w, head, prog, &b2, &at2);
        if (got || b2 != b || at2 != at || atomic_load(&w->fin_seq) != fin ||
            atomic_load(&w->new_model) || judge_done(w, fin, prog)) {
            kw_wake_cancel(&w->judge_wake);
            continue;
        }
        kw_wake_wait(&w->judge_wake, 1000);
        idle = 0;
    }
}

/* ---- dispatcher -------------------------------------------------------- */

static void send_in(struct worker *k, uint32_t kind, uint64_t seq, kw_ts ts,
                    const struct cap_pkt *pkt)
{
    uint32_t caplen = pkt ? pkt->caplen : 0;
    struct in_rec *r = ring_reserve(&k->in, kind, sizeof *r + caplen);
    r->seq = seq;
    r->ts = ts;
    r->caplen = caplen;
    r->wirelen = pkt ? pkt->wirelen : 0;
    r->linktype = pkt ? pkt->linktype : 0;
    if (caplen) memcpy(r->data, pkt->data, caplen);
    ring_commit(&k->in);
}

static void broadcast(struct workers *w, uint32_t kind, uint64_t seq, kw_ts ts)
{
    for (unsigned i = 0; i < w->n; i++)
        send_in(&w->wk[i], kind, seq, ts, NULL);
}

static void judge_tick(struct workers *w, uint64_t seq)
{
    int64_t sec = w->now / w->tick_us;
    if (sec == w->last_sec) return;
    w->last_sec = sec;
    struct ev *e = ring_reserve(&w->ticks, REC_TICK, EV_HEAD + sizeof e->u.now);
    e->kind = REC_TICK;
    e->k = (struct key){.seq = seq, .phase = 2};
    e->now = e->u.now = w->now;
    ring_commit(&w->ticks);
}

static unsigned pick(struct workers *w, enum dec_result r, const struct dec_packet *d)
{
    if (r == DEC_MALFORMED || (d->src.family != 4 && d->src.family != 6)) return 0;
    const struct kw_addr *lo = &d->src, *hi = &d->dst;
    if (memcmp(lo->a, hi->a, 16) > 0) {
        lo = &d->dst;
        hi = &d->src;
    }
    /* keyed (kw_hash.h): traffic cannot pile every flow on one worker */
    struct kw_sip h;
    kw_sip_init(&h, kw_hkey_process());
    kw_sip_update(&h, lo->a, 16);
    kw_sip_update(&h, hi->a, 16);
    return (unsigned)(kw_sip_final(&h) % w->n);
}

void workers_packet(struct workers *w, const struct cap_pkt *pkt)
{
    uint64_t seq = ++w->seq;
    w->disp_cnt.packets++;
    w->disp_cnt.bytes += pkt->caplen;
    struct dec_packet d;
    memset(&d.src, 0, sizeof d.src);
    enum dec_result r =
        dec_packet(&w->dec, pkt->linktype, pkt->ts, pkt->data, pkt->caplen, pkt->wirelen, &d);
    if (pkt->ts > w->now) w->now = pkt->ts;
    /* the flow table's own tick rule (flow_table_packet), on the packets
     * that reach a flow table */
    if (r == DEC_OK && (d.proto == 6 || d.proto == 17) && !d.ip_fragment &&
        (!w->tbl_have || pkt->ts > w->tbl_now)) {
        if (!w->tbl_have) w->tbl_last = pkt->ts;
        w->tbl_have = true;
        w->tbl_now = pkt->ts;
        if (w->tbl_now - w->tbl_last >= KW_TS_SEC(1)) {
            broadcast(w, REC_ADV, seq, w->tbl_now);
            w->tbl_last = w->tbl_now;
        }
    }
    send_in(&w->wk[pick(w, r, &d)], REC_PKT, seq, pkt->ts, pkt);
    judge_tick(w, seq);
    w->mark_bytes += pkt->caplen;
    if (seq % MARK_EVERY == 0 || w->mark_bytes >= MARK_BYTES) {
        broadcast(w, REC_MARK, seq, 0);
        w->mark_bytes = 0;
    }
}

void workers_set_specs(struct workers *w, struct oas_set *s)
{
    pipeline_set_specs(w->judge, s);
}

void workers_set_model(struct workers *w, struct rules_model *m)
{
    struct rules_model *old = atomic_exchange(&w->new_model, m);
    if (old) rules_model_unref(old);
    kw_wake_notify(&w->judge_wake);
}

/* ---- lifecycle --------------------------------------------------------- */

enum kw_err workers_new(unsigned n, const struct pipeline_config *pc, struct cap_source *live,
                        struct workers **out)
{
    if (n > WORKERS_MAX) return KW_E_LIMIT; /* as run --workers and capture.workers */
    if (live && cap_members(live) != n) return KW_E_INVAL;
    struct workers *w = calloc(1, sizeof *w);
    if (!w) return KW_E_NOMEM;
    w->n = n;
    w->live = live;
    w->judge_sec = -1;
    if (live && !(w->xr = calloc((size_t)n * n, sizeof *w->xr))) {
        free(w);
        return KW_E_NOMEM;
    }
    w->tick_us = pc->forward && pc->forward->tick_us > 0 ? pc->forward->tick_us : KW_TS_SEC(1);
    dec_ctx_init(&w->dec, &pc->dec);
    enum kw_err e = KW_E_NOMEM;
    struct pipeline_config jc = *pc;
    jc.classify = false;
    jc.sink = NULL;
    w->wk = calloc(n, sizeof *w->wk);
    if (!w->wk || !(w->judge_wake_ok = kw_wake_init(&w->judge_wake) == KW_E_OK) ||
        !(w->disp_wake_ok = kw_wake_init(&w->disp_wake) == KW_E_OK) ||
        !ring_init(&w->ticks, 1 << 20, &w->disp_wake, &w->judge_wake))
        goto fail;
    if ((e = pipeline_new(&jc, &w->judge)) != KW_E_OK) {
        w->judge = NULL;
        goto fail;
    }
    /* from here on the judge holds the model; on failure the caller keeps
     * its reference (as with pipeline_new), so the judge gets its own */
    if (pc->model) rules_model_ref(pc->model);
    for (unsigned i = 0; i < n; i++) {
        struct worker *k = &w->wk[i];
        k->w = w;
        k->index = i;
        atomic_init(&k->judge_need, UINT64_MAX);
        dec_ctx_init(&k->dec, &pc->dec);
        k->sink = (struct pipeline_sink){.user = k,
                                         .flow_start = sink_flow_start,
                                         .txn = sink_txn,
                                         .flow_end = sink_flow_end,
                                         .tls = sink_tls};
        struct pipeline_config wc = *pc;
        wc.eve = NULL;
        wc.model = NULL;
        wc.alerts = NULL;
        wc.audit = NULL;
        wc.baseline = NULL;
        wc.routes = NULL;
        wc.sink = &k->sink;
        wc.forward = NULL; /* the judge thread forwards, in order */
        e = KW_E_NOMEM;
        if (!(k->wake_ok = kw_wake_init(&k->wake) == KW_E_OK) ||
            !ring_init(&k->in, live ? IN_RING_LIVE : IN_RING, &w->disp_wake, &k->wake) ||
            !ring_init(&k->out, OUT_RING, &k->wake, &w->judge_wake) ||
            (e = pipeline_new(&wc, &k->pipe)) != KW_E_OK)
            goto fail;
    }
    e = KW_E_NOMEM;
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&w->wk[i].thread, NULL, live ? live_main : worker_main, &w->wk[i]) != 0)
            goto fail;
        w->wk[i].started = true;
    }
    if (pthread_create(&w->judge_thread, NULL, judge_main, w) != 0) goto fail;
    w->judge_started = true;
    if (pc->model) rules_model_unref(pc->model); /* success: the caller's reference is ours */
    *out = w;
    return KW_E_OK;
fail:
    workers_finish(w);
    workers_destroy(w);
    return e;
}

static void sum_json(json_t *dst, json_t *src)
{
    const char *name;
    json_t *v;
    json_object_foreach(src, name, v)
    {
        json_t *d = json_object_get(dst, name);
        if (!d)
            json_object_set(dst, name, v);
        else if (json_is_object(d) && json_is_object(v))
            sum_json(d, v);
        else if (json_is_integer(d) && json_is_integer(v))
            json_integer_set(d, json_integer_value(d) + json_integer_value(v));
    }
}

void workers_finish(struct workers *w)
{
    if (w->finished) return;
    w->finished = true;
    if (w->live) { /* every socket to the end of its ring; then the last tag and time */
        cap_break(w->live);
        for (unsigned i = 0; i < w->n; i++) /* out of their poll(): the stop is seen at once */
            if (w->wk[i].started) kw_wake_notify(&w->wk[i].wake);
        for (unsigned i = 0; i < w->n; i++) {
            struct worker *k = &w->wk[i];
            while (k->started && !atomic_load_explicit(&k->cap_done, memory_order_acquire)) {
                kw_wake_prepare(&w->disp_wake);
                if (atomic_load_explicit(&k->cap_done, memory_order_acquire)) {
                    kw_wake_cancel(&w->disp_wake);
                    break;
                }
                kw_wake_wait(&w->disp_wake, 1000);
            }
            if (!k->started) continue;
            if ((k->base << 6 | i) > w->seq) w->seq = k->base << 6 | i;
            if (pipeline_now(k->pipe) > w->now) w->now = pipeline_now(k->pipe);
        }
    }
    uint64_t fin = ++w->seq;
    for (unsigned i = 0; i < w->n; i++)
        if (w->wk[i].started) send_in(&w->wk[i], REC_FIN, fin, w->now, NULL);
    atomic_store(&w->fin_seq, fin); /* before the judge can see any worker done with it */
    if (w->judge_started) kw_wake_notify(&w->judge_wake);
    for (unsigned i = 0; i < w->n; i++)
        if (w->wk[i].started) pthread_join(w->wk[i].thread, NULL);
    if (w->judge_started) {
        pthread_join(w->judge_thread, NULL);
        struct rules_model *m = atomic_exchange(&w->new_model, NULL);
        if (m) pipeline_set_model(w->judge, m);
        pipeline_finish_at(w->judge, w->now); /* the baselines' last tick */
    }
    struct pipeline_counters *t = &w->total;
    memset(t, 0, sizeof *t);
    for (unsigned i = 0; i <= w->n; i++) {
        struct pipeline *p = i < w->n ? w->wk[i].pipe : w->judge;
        if (!p) continue;
        const struct pipeline_counters *c = pipeline_counters(p);
#define SUM(f) t->f += c->f;
        PIPELINE_COUNTERS(SUM)
#undef SUM
    }
}

void workers_destroy(struct workers *w)
{
    if (!w) return;
    for (unsigned i = 0; w->wk && i < w->n; i++) {
        pipeline_destroy(w->wk[i].pipe);
        if (w->wk[i].wake_ok) kw_wake_free(&w->wk[i].wake);
        free(w->wk[i].in.buf);
        free(w->wk[i].out.buf);
    }
    for (size_t i = 0; w->xr && i < (size_t)w->n * w->n; i++) {
        struct ring *r = atomic_load(&w->xr[i]);
        if (r) free(r->buf);
        free(r);
    }
    free(w->xr);
    free(w->wk);
    pipeline_destroy(w->judge);
    struct rules_model *m = atomic_exchange(&w->new_model, NULL);
    if (m) rules_model_unref(m);
    free(w->ticks.buf);
    if (w->judge_wake_ok) kw_wake_free(&w->judge_wake);
    if (w->disp_wake_ok) kw_wake_free(&w->disp_wake);
    free(w->ids.k);
    free(w->ids.v);
    free(w);
}

bool workers_capturing(const struct workers *w, bool *failed)
{
    bool all = true;
    for (unsigned i = 0; i < w->n; i++) {
        const struct worker *k = &w->wk[i];
        if (!atomic_load_explicit(&k->cap_done, memory_order_acquire)) continue;
        all = false;
        if (k->cap_failed) *failed = true;
    }
    return all;
}

kw_ts workers_now(const struct workers *w)
{
    return w->now;
}

const struct pipeline_counters *workers_counters(const struct workers *w)
{
    return w->finished ? &w->total : &w->disp_cnt;
}

json_t *workers_stats_json(const struct workers *w)
{
    json_t *s = json_object();
    for (unsigned i = 0; i <= w->n; i++) {
        struct pipeline *p = i < w->n ? w->wk[i].pipe : w->judge;
        if (!p) continue;
        json_t *x = pipeline_stats_json(p);
        sum_json(s, x);
        json_decref(x);
    }
    json_object_set_new(s, "workers", json_integer((json_int_t)w->n));
    if (w->live) { /* tunnelled packets placed by their inner addresses */
        uint64_t moved = 0, lost = 0;
        for (unsigned i = 0; i < w->n; i++) {
            moved += w->wk[i].redirected;
            lost += w->wk[i].redirect_drops;
        }
        json_object_set_new(s, "fanout",
                            json_pack("{s:I,s:I}", "redirected", (json_int_t)moved,
                                      "redirect_drops", (json_int_t)lost));
    }
    return s;
}
