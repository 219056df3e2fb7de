/* workers_judge.c: the judge thread. It merges the workers' out rings
 * (and the dispatcher's tick ring) in place, smallest key first, releasing
 * a record only once no worker can still precede it, renumbers flow ids
 * in creation order (the id map), and hands each record to the judge
 * pipeline. Its order comes from the data, never from thread timing. */
#include "kw_thread.h"
#include "workers_int.h"

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
        head[i] = wk_ring_peek(i < n ? &w->wk[i].out : &w->ticks);
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
        wk_ring_release(r, head[best]);
        head[best] = wk_ring_peek(r);
        judged++;
        /* a judge that never catches up never leaves this loop */
        wk_snap_poll(w, &w->snap_want, &w->judge_snap, w->judge, NULL);
    }
}

/* Every worker finished `fin` and its rings are drained (prog: merge's). */
static bool judge_done(struct workers *w, uint64_t fin, const uint64_t *prog)
{
    if (!fin || wk_ring_peek(&w->ticks)) return false;
    for (unsigned i = 0; i < w->n; i++)
        if (prog[i] < 2 * fin + 1 || wk_ring_peek(&w->wk[i].out)) return false;
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

void *wk_judge_main(void *arg)
{
    struct workers *w = arg;
    kw_thread_role("kw-judge", false);
    struct rec_hdr *head[WORKERS_MAX + 1];
    uint64_t prog[WORKERS_MAX];
    for (unsigned idle = 0;;) {
        struct rules_model *m = atomic_exchange(&w->new_model, NULL);
        if (m) pipeline_set_model(w->judge, m);
        wk_snap_poll(w, &w->snap_want, &w->judge_snap, w->judge, NULL);
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
