/* pipeline: frames -> decode -> flows -> reassembly -> HTTP -> credential
 * -> identity -> judge/baseline/audit/EVE (see pipeline.h).
 *
 * This file builds a pipeline, reloads its rules and OpenAPI documents,
 * tears it down, and is the packet entry: decode, defragment, hand to the
 * flow table, and tick the judge stage once a second of packet time. The
 * stages live next to it, one idea a file, sharing pipeline_int.h:
 *   pipeline_http.c       HTTP recognised by content, parsers started and fed
 *   pipeline_flow.c       the flow table's callbacks, TLS, the flow record
 *   pipeline_judge.c      attribution, policy and baseline, findings, sessions
 *   pipeline_templates.c  a transaction's template, OpenAPI checks
 *   pipeline_stats.c      the stats record
 *   pipeline_tls.c        TLS records and transaction fields */
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "defrag.h"
#include "dpop.h"
#include "judge_session.h"
#include "pipeline_int.h"

void pipeline_config_default(struct pipeline_config *c)
{
    memset(c, 0, sizeof *c);
    dec_config_default(&c->dec);
    flow_config_default(&c->flow);
    defrag_config_default(&c->defrag);
    h1_limits_default(&c->h1);
    h2_limits_default(&c->h2);
    cred_config_default(&c->cred);
    tls_limits_default(&c->tls);
    c->classify = true;
    c->flow_records = true;
}

/* nDPI states at once: as configured (or the default), at most one per
 * flow of the table */
static size_t classify_active(const struct pipeline_config *c, uint32_t max_flows)
{
    size_t a = c->classify_max_active ? c->classify_max_active : CLASSIFY_DEFAULT_MAX_ACTIVE;
    return max_flows < a ? max_flows : a;
}

size_t pipeline_flows_mem(const struct pipeline_config *c, uint32_t max_flows)
{
    /* pipe_flow: malloc'd once per flow slot and recycled (16: malloc's
     * header); classification: both pools at their most */
    size_t m = (size_t)max_flows * (sizeof(struct pipe_flow) + 16);
    if (c->classify) m += classify_pools_mem(max_flows, classify_active(c, max_flows));
    return m;
}

/* ---- lifecycle --------------------------------------------------------- */

enum kw_err pipeline_new(const struct pipeline_config *c, struct pipeline **out)
{
    struct pipeline *p = calloc(1, sizeof *p);
    if (!p) return KW_E_NOMEM;
    p->cfg = *c;
    p->model = c->model;
    p->ending = -1;
    dec_ctx_init(&p->dec, &c->dec);
    enum kw_err e = KW_E_NOMEM;
    if (!(p->tls = malloc(sizeof *p->tls))) goto fail;
    tls_ctx_init(p->tls, &c->tls, c->tls_keylog);
    /* one classification state per flow slot at most (flow.max) */
    if (c->classify &&
        (e = classify_ctx_new_limits(&p->cls, c->flow.max_flows,
                                     classify_active(c, c->flow.max_flows))) != KW_E_OK)
        goto fail;
    if (c->routes && !c->sink) routes_set_on_merge(c->routes, pl_on_template_merge, p);
    p->judge = judge_policy_new(NULL);
    if (!p->judge) {
        e = KW_E_NOMEM;
        goto fail;
    }
    judge_policy_set_repeat(p->judge, pl_repeat_finding, p);
    struct flow_callbacks cb = {
        .user = p,
        .on_flow_start = pl_cb_flow_start,
        .on_packet = pl_cb_packet,
        .on_data = pl_cb_data,
        .on_gap = pl_cb_gap,
        .on_flow_end = pl_cb_flow_end,
    };
    if ((e = flow_table_new(&c->flow, &cb, &p->flows)) != KW_E_OK) goto fail;
    if ((e = defrag_new(&c->defrag, &p->defrag)) != KW_E_OK) goto fail;
    *out = p;
    return KW_E_OK;
fail:
    p->model = NULL; /* the caller keeps its reference on failure */
    pipeline_destroy(p);
    return e;
}

void pipeline_destroy(struct pipeline *p)
{
    if (!p) return;
    dpop_thread_cleanup();        /* the proof keys built on this thread, if any */
    flow_table_destroy(p->flows); /* ends the flows: their parsers go to h1_free */
    while (p->h1_nfree)
        h1_conn_destroy(p->h1_free[--p->h1_nfree]);
    defrag_destroy(p->defrag);
    free(p->tls);
    judge_policy_destroy(p->judge);
    judge_sessions_destroy(p->sessions);
    free(p->sess_txn);
    oas_set_destroy(p->specs);
    oas_set_destroy(atomic_exchange(&p->new_specs, NULL));
    classify_ctx_destroy(p->cls);
    while (p->free_flows) {
        struct pipe_flow *n = p->free_flows->next_free;
        free(p->free_flows);
        p->free_flows = n;
    }
    if (p->model) rules_model_unref(p->model);
    free(p);
}

void pipeline_set_specs(struct pipeline *p, struct oas_set *s)
{
    oas_set_destroy(atomic_exchange(&p->new_specs, s));
}

void pipeline_set_model(struct pipeline *p, struct rules_model *m)
{
    if (p->model) rules_model_unref(p->model);
    p->model = m;
}

static void tick(struct pipeline *p, kw_ts now)
{
    kw_ts period =
        p->cfg.forward && p->cfg.forward->tick_us > 0 ? p->cfg.forward->tick_us : KW_TS_SEC(1);
    int64_t sec = now / period;
    if (sec == p->last_sec) return;
    p->last_sec = sec;
    pipeline_judge_tick(p, now);
}

void pipeline_packet(struct pipeline *p, const struct cap_pkt *pkt)
{
    struct dec_packet d;
    p->cnt.packets++;
    p->cnt.bytes += pkt->caplen;
    enum dec_result r =
        dec_packet(&p->dec, pkt->linktype, pkt->ts, pkt->data, pkt->caplen, pkt->wirelen, &d);
    if (pkt->ts > p->now) p->now = pkt->ts;
    if (r == DEC_SKIP && d.ip_fragment) /* the one branch fragments cost others */
        r = defrag_decode(p->defrag, &p->dec, &d);
    if (r == DEC_OK)
        flow_table_packet(p->flows, &d);
    else if (r == DEC_MALFORMED)
        p->cnt.decode_malformed++;
    else
        p->cnt.decode_skipped++;
    tick(p, p->now);
}

void pipeline_advance(struct pipeline *p, kw_ts now)
{
    if (now > p->now) p->now = now;
    defrag_advance(p->defrag, p->now); /* a quiet link still frees old fragments */
    flow_table_advance(p->flows, p->now);
    tick(p, p->now);
}

void pipeline_finish(struct pipeline *p)
{
    flow_table_flush(p->flows, p->now);
    pipeline_judge_tick(p, p->now);
}

void pipeline_set_seq(struct pipeline *p, uint64_t seq)
{
    p->seq = seq;
}

void pipeline_flow_advance(struct pipeline *p, kw_ts now)
{
    flow_table_advance(p->flows, now);
}

void pipeline_judge_at(struct pipeline *p, kw_ts now)
{
    if (now > p->now) p->now = now;
}

void pipeline_judge_tick(struct pipeline *p, kw_ts now)
{
    if (p->cfg.forward)
        p->cfg.forward->tick(p->cfg.forward->user, now);
    else {
        if (p->cfg.baseline) baseline_advance(p->cfg.baseline, now);
        if (p->cfg.routes) routes_advance(p->cfg.routes, now);
    }
}

void pipeline_finish_at(struct pipeline *p, kw_ts now)
{
    if (now > p->now) p->now = now;
    pipeline_finish(p);
}

struct judge_policy *pipeline_policy(struct pipeline *p)
{
    return p->judge;
}

kw_ts pipeline_now(const struct pipeline *p)
{
    return p->now;
}

const struct pipeline_counters *pipeline_counters(const struct pipeline *p)
{
    return &p->cnt;
}
