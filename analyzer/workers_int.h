/* workers_int.h: what the workers_*.c files share and nothing else sees:
 * the SPSC byte ring (static inline: it is on every packet's path, as when
 * it was static in the one workers.c), the records that cross the rings,
 * the two contexts (struct worker, struct workers), the ring sizes, and
 * the wk_ functions one file calls in another. workers.h is the public
 * contract; the design (placement, order, the merge) is told at the top
 * of workers.c. */
#ifndef KW_WORKERS_INT_H
#define KW_WORKERS_INT_H

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

static inline bool wk_ring_init(struct ring *r, uint64_t size, struct kw_wake *prod,
                                struct kw_wake *cons)
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
static inline uint64_t wk_ring_lacks(struct ring *r, size_t len, uint64_t *pos_out,
                                     uint64_t *pad_out)
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
static inline void *wk_ring_try_reserve(struct ring *r, uint32_t kind, size_t len)
{
    uint64_t need = (sizeof(struct rec_hdr) + len + 7) & ~(uint64_t)7;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t pos, pad;
    if (wk_ring_lacks(r, len, &pos, &pad)) return NULL;
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
static inline void *wk_ring_reserve(struct ring *r, uint32_t kind, size_t len)
{
    void *p;
    while (!(p = wk_ring_try_reserve(r, kind, len))) {
        uint64_t pos, pad, lack = wk_ring_lacks(r, len, &pos, &pad);
        atomic_store_explicit(&r->room, lack > r->size / 4 ? lack : r->size / 4,
                              memory_order_relaxed);
        kw_wake_prepare(r->prod);
        if ((p = wk_ring_try_reserve(r, kind, len))) {
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
static inline void wk_ring_shrink(struct ring *r, void *payload, size_t len)
{
    struct rec_hdr *h = (struct rec_hdr *)payload - 1;
    uint32_t need = (uint32_t)((sizeof *h + len + 7) & ~(size_t)7);
    r->pending -= h->len - need;
    h->len = need;
}

static inline void wk_ring_commit(struct ring *r)
{
    atomic_store_explicit(&r->head, r->pending, memory_order_release);
    if (r->cons) kw_wake_notify(r->cons);
}

/* Consumer: the ring's new tail; kicks a producer whose room is free. */
static inline void wk_ring_set_tail(struct ring *r, uint64_t tail)
{
    atomic_store_explicit(&r->tail, tail, memory_order_release);
    if (!r->prod || !kw_wake_sleeping(r->prod)) return;
    uint64_t room = atomic_load_explicit(&r->room, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (room && r->size - (head - tail) >= room) kw_wake_kick(r->prod);
}

/* The next record, or NULL when empty. */
static inline struct rec_hdr *wk_ring_peek(struct ring *r)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    while (tail != head) {
        struct rec_hdr *h = (struct rec_hdr *)(r->buf + tail % r->size);
        if (h->kind != REC_PAD) return h;
        tail += h->len;
        wk_ring_set_tail(r, tail);
    }
    return NULL;
}

static inline void wk_ring_release(struct ring *r, const struct rec_hdr *h)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    wk_ring_set_tail(r, tail + h->len);
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

/* ---- stats while running ---------------------------------------------- */

/* A worker's (or the judge's) counters are its own: no lock and no atomic
 * on the packet path. For the periodic stats record and the metrics the
 * main thread asks for a snapshot (workers.snap_want, a generation); each
 * thread builds one on its own thread when it next looks (between two
 * records, or woken from its sleep) and hands it over under the lock. A
 * thread busy elsewhere (its out ring full) answers later: the main
 * thread uses the latest it has. */
struct worker;

struct snap {
    pthread_mutex_t mu;
    json_t *stats;         /* pipeline_stats_json, or NULL before the first */
    kw_ts now;             /* its pipeline's packet clock then */
    _Atomic uint64_t done; /* the generation it answers */
    /* the judge's only: the baselines and the route model it owns */
    struct baseline_stats bs;
    size_t learning;
    struct routes_stats rs;
};

struct workers;
void wk_snap_take(struct workers *w, struct snap *s, struct pipeline *p, uint64_t want,
                  const struct worker *k);

/* Between two records: cheap when nothing is asked (one relaxed load of a
 * line the main thread writes once a second). k: the worker; NULL: the
 * judge. */
static inline void wk_snap_poll(struct workers *w, _Atomic uint64_t *want, struct snap *s,
                                struct pipeline *p, const struct worker *k)
{
    uint64_t g = atomic_load_explicit(want, memory_order_relaxed);
    if (g != atomic_load_explicit(&s->done, memory_order_relaxed)) wk_snap_take(w, s, p, g, k);
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
    struct snap snap;
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
    /* stats while running: the generation the main thread asks for */
    _Alignas(64) _Atomic uint64_t snap_want;
    struct snap judge_snap;
    bool snap_ok;              /* the locks were made (workers_destroy) */
    struct baseline *baseline; /* the judge's (pipeline_config), for its snapshots */
    struct routes *routes;
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

/* workers_worker.c: the pipeline's sink on a worker thread, and the loop
 * of a worker fed through its in ring */
struct ev *wk_out_begin(struct worker *k, uint32_t kind, size_t len, uint32_t list, uint64_t last);
void wk_sink_flow_start(void *user, struct flow *f);
void wk_sink_txn(void *user, const struct flow *f, uint64_t seq, int why, const struct kw_txn *t);
void wk_sink_tls(void *user, const struct flow *f, uint64_t seq, int why, const struct kw_txn *t,
                 const struct tls_info *ti);
void wk_sink_flow_end(void *user, const struct flow *f, uint64_t seq, enum flow_end_reason why,
                      kw_ts ts, const char *app, const char *sni, int64_t http_txns);
void wk_progress_set(struct worker *k, uint64_t done);
void *wk_worker_main(void *arg);

/* workers_live.c: a worker that reads its own fanout socket */
void *wk_live_main(void *arg);

/* workers_judge.c: the judge thread */
void *wk_judge_main(void *arg);

/* workers_file.c: the dispatcher */
void wk_send_in(struct worker *k, uint32_t kind, uint64_t seq, kw_ts ts, const struct cap_pkt *pkt);
unsigned wk_pick(struct workers *w, enum dec_result r, const struct dec_packet *d);

#endif
