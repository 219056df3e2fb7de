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

#include "workers_int.h"

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
    w->baseline = pc->baseline;
    w->routes = pc->routes;
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
    if (w->wk) {
        pthread_mutex_init(&w->judge_snap.mu, NULL);
        for (unsigned i = 0; i < n; i++)
            pthread_mutex_init(&w->wk[i].snap.mu, NULL);
        w->snap_ok = true;
    }
    if (!w->wk || !(w->judge_wake_ok = kw_wake_init(&w->judge_wake) == KW_E_OK) ||
        !(w->disp_wake_ok = kw_wake_init(&w->disp_wake) == KW_E_OK) ||
        !wk_ring_init(&w->ticks, 1 << 20, &w->disp_wake, &w->judge_wake))
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
                                         .flow_start = wk_sink_flow_start,
                                         .txn = wk_sink_txn,
                                         .flow_end = wk_sink_flow_end,
                                         .tls = wk_sink_tls};
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
            !wk_ring_init(&k->in, live ? IN_RING_LIVE : IN_RING, &w->disp_wake, &k->wake) ||
            !wk_ring_init(&k->out, OUT_RING, &k->wake, &w->judge_wake) ||
            (e = pipeline_new(&wc, &k->pipe)) != KW_E_OK)
            goto fail;
    }
    e = KW_E_NOMEM;
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&w->wk[i].thread, NULL, live ? wk_live_main : wk_worker_main,
                           &w->wk[i]) != 0)
            goto fail;
        w->wk[i].started = true;
    }
    if (pthread_create(&w->judge_thread, NULL, wk_judge_main, w) != 0) goto fail;
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
        if (w->wk[i].started) wk_send_in(&w->wk[i], REC_FIN, fin, w->now, NULL);
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
    if (w->snap_ok) {
        json_decref(w->judge_snap.stats);
        pthread_mutex_destroy(&w->judge_snap.mu);
        for (unsigned i = 0; i < w->n; i++) {
            json_decref(w->wk[i].snap.stats);
            pthread_mutex_destroy(&w->wk[i].snap.mu);
        }
    }
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

/* ---- stats while running ---------------------------------------------- */

/* On the pipeline's own thread (wk_snap_poll). A worker adds what only it
 * counts outside its pipeline: the tunnelled packets it moved. */
void wk_snap_take(struct workers *w, struct snap *s, struct pipeline *p, uint64_t want,
                  const struct worker *k)
{
    json_t *x = pipeline_stats_json(p);
    if (x && k && w->live)
        json_object_set_new(x, "fanout",
                            json_pack("{s:I,s:I}", "redirected", (json_int_t)k->redirected,
                                      "redirect_drops", (json_int_t)k->redirect_drops));
    kw_ts now = pipeline_now(p);
    /* the judge owns the baselines and the route model while it runs:
     * their counters are copied here, on its thread, not read from another */
    struct baseline_stats bs = {0};
    struct routes_stats rs = {0};
    size_t learning = 0;
    if (!k && w->baseline) {
        baseline_get_stats(w->baseline, &bs);
        learning = baseline_learning_count(w->baseline, now);
    }
    if (!k && w->routes) routes_get_stats(w->routes, &rs);
    pthread_mutex_lock(&s->mu);
    json_decref(s->stats);
    s->stats = x;
    s->now = now;
    s->bs = bs;
    s->learning = learning;
    s->rs = rs;
    pthread_mutex_unlock(&s->mu);
    atomic_store_explicit(&s->done, want, memory_order_relaxed);
}

void workers_stats_request(struct workers *w)
{
    atomic_fetch_add_explicit(&w->snap_want, 1, memory_order_relaxed);
    /* a sleeping thread answers when woken: the workers on their in ring
     * or socket, the judge on its merge */
    for (unsigned i = 0; i < w->n; i++)
        if (w->wk[i].started) kw_wake_notify(&w->wk[i].wake);
    if (w->judge_started) kw_wake_notify(&w->judge_wake);
}

/* Adds the latest snapshot of s to dst (a copy: sum_json shares the
 * objects dst lacks, and the snapshot stays for the next record). */
static void add_snap(json_t *dst, struct snap *s, kw_ts *now)
{
    pthread_mutex_lock(&s->mu);
    json_t *x = s->stats ? json_deep_copy(s->stats) : NULL;
    if (s->now > *now) *now = s->now;
    pthread_mutex_unlock(&s->mu);
    if (x) sum_json(dst, x);
    json_decref(x);
}

bool workers_judge_stats(struct workers *w, struct baseline_stats *bs, size_t *learning,
                         struct routes_stats *rs)
{
    struct snap *s = &w->judge_snap;
    pthread_mutex_lock(&s->mu);
    bool have = s->stats != NULL;
    *bs = s->bs;
    *learning = s->learning;
    *rs = s->rs;
    pthread_mutex_unlock(&s->mu);
    return have;
}

json_t *workers_stats_snapshot(struct workers *w, kw_ts *now)
{
    json_t *s = json_object();
    *now = w->live ? 0 : w->now; /* files: the dispatcher's clock, this thread's own */
    for (unsigned i = 0; i < w->n; i++)
        add_snap(s, &w->wk[i].snap, now);
    add_snap(s, &w->judge_snap, now);
    json_object_set_new(s, "workers", json_integer((json_int_t)w->n));
    return s;
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
