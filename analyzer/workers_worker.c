/* workers_worker.c: what runs on a packet worker's thread. The sink its
 * pipeline calls packs each transaction, TLS session and flow start/end
 * into the worker's out ring under its order key (workers.c explains the
 * key), and the worker publishes its progress for the judge's merge; the
 * loop at the end feeds the pipeline from the worker's in ring (file mode;
 * a live worker ends in it too, after its socket). */
#include "kw_thread.h"
#include "workers_int.h"

/* ---- worker side ------------------------------------------------------- */

struct ev *wk_out_begin(struct worker *k, uint32_t kind, size_t len, uint32_t list, uint64_t last)
{
    struct ev *e = wk_ring_reserve(&k->out, kind, EV_HEAD + len);
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

void wk_sink_flow_start(void *user, struct flow *f)
{
    struct worker *k = user;
    f->id = k->seq; /* at most one flow begins per packet: unique */
    struct ev *e = wk_out_begin(k, REC_FSTART, sizeof e->u.cseq, 0, 0);
    e->u.cseq = k->seq;
    wk_ring_commit(&k->out);
}

void wk_sink_txn(void *user, const struct flow *f, uint64_t seq, int why, const struct kw_txn *t)
{
    struct worker *k = user;
    struct ev *e = wk_out_begin(k, REC_TXN, KW_TXN_PACKED_MAX, list_of(f, why), seq);
    wk_ring_shrink(&k->out, e, EV_HEAD + kw_txn_pack(t, e->u.txn));
    wk_ring_commit(&k->out);
}

void wk_sink_tls(void *user, const struct flow *f, uint64_t seq, int why, const struct kw_txn *t,
                 const struct tls_info *ti)
{
    struct worker *k = user;
    struct ev *e =
        wk_out_begin(k, REC_TLS, sizeof e->u.ti + KW_TXN_PACKED_MAX, list_of(f, why), seq);
    e->u.ti = *ti;
    wk_ring_shrink(&k->out, e, EV_HEAD + sizeof e->u.ti + kw_txn_pack(t, &e->u.ti + 1));
    wk_ring_commit(&k->out);
}

void wk_sink_flow_end(void *user, const struct flow *f, uint64_t seq, enum flow_end_reason why,
                      kw_ts ts, const char *app, const char *sni, int64_t http_txns)
{
    struct worker *k = user;
    struct ev *e = wk_out_begin(k, REC_FEND, sizeof e->u.fl, list_of(f, (int)why), seq);
    struct ev_flow *fl = &e->u.fl;
    fl->f = *f;
    fl->f.app = NULL;
    snprintf(fl->app, sizeof fl->app, "%s", app);
    snprintf(fl->sni, sizeof fl->sni, "%s", sni);
    fl->http_txns = http_txns;
    fl->why = (int)why;
    fl->ts = ts;
    wk_ring_commit(&k->out);
}

/* Publishes how far the worker got; kicks the judge if it sleeps waiting
 * for this much (merge's need) from it. */
void wk_progress_set(struct worker *k, uint64_t done)
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
    while (!(h = wk_ring_peek(&k->in))) {
        wk_snap_poll(k->w, &k->w->snap_want, &k->snap, k->pipe, k); /* what woke it may be that */
        kw_wake_prepare(&k->wake);
        if ((h = wk_ring_peek(&k->in))) {
            kw_wake_cancel(&k->wake);
            break;
        }
        kw_wake_wait(&k->wake, 1000);
    }
    return h;
}

void *wk_worker_main(void *arg)
{
    struct worker *k = arg;
    kw_thread_role("kw-worker", false);
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
        wk_ring_release(&k->in, h);
        wk_snap_poll(k->w, &k->w->snap_want, &k->snap, k->pipe, k);
        if (done > atomic_load_explicit(&k->progress, memory_order_relaxed))
            wk_progress_set(k, done);
        if (kind == REC_FIN) {
            dpop_thread_cleanup(); /* the proof keys this worker built */
            return NULL;
        }
    }
}
