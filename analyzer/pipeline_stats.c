/* pipeline_stats: the stats record, every counter of every stage the
 * pipeline owns (decoder, flows, defrag, HTTP/1, HTTP/2, TLS, credentials,
 * nDPI, policy) under one JSON object. Nothing is lost silently: each drop
 * or limit a stage counts is printed here (CONVENTIONS.md). */
#include "classify.h"
#include "pipeline_int.h"

static void add_h1(void *u, const char *name, uint64_t v)
{
    json_object_set_new(u, name, json_integer((json_int_t)v));
}

json_t *pipeline_stats_json(const struct pipeline *p)
{
    json_t *s = json_object();
    json_t *o = json_object();
#define PJ(n) json_object_set_new(o, #n, json_integer((json_int_t)p->cnt.n));
    PIPELINE_COUNTERS(PJ)
#undef PJ
    json_object_set_new(s, "pipeline", o);

    o = json_object();
#define DJ(n) json_object_set_new(o, #n, json_integer((json_int_t)p->dec.cnt.n));
    DEC_COUNTERS(DJ)
#undef DJ
    json_object_set_new(s, "decoder", o);

    o = json_object();
    const struct flow_counters *fc = flow_table_counters(p->flows);
#define FJ(n) json_object_set_new(o, #n, json_integer((json_int_t)fc->n));
    FLOW_COUNTERS(FJ)
#undef FJ
    json_object_set_new(s, "flow", o);

    o = json_object();
    const struct defrag_counters *dc = defrag_counters(p->defrag);
#define DFJ(n) json_object_set_new(o, #n, json_integer((json_int_t)dc->n));
    DEFRAG_COUNTERS(DFJ)
#undef DFJ
    json_object_set_new(s, "defrag", o);

    o = json_object();
    h1_counters_each(&p->h1_total, add_h1, o);
    json_object_set_new(s, "http", o);

    o = json_object();
    h2_counters_each(&p->h2_total, add_h1, o);
    json_object_set_new(s, "http2", o);

    o = json_object();
#define TJ(n, d) json_object_set_new(o, #n, json_integer((json_int_t)p->tls->cnt.n));
    TLS_COUNTERS(TJ)
#undef TJ
    if (p->cfg.tls_keylog && !p->cfg.sink) { /* shared: counted once, by the judge */
        struct tls_keylog_counters kc;
        tls_keylog_get_counters(p->cfg.tls_keylog, &kc);
        json_t *k = json_object();
#define KLJ(n, d) json_object_set_new(k, #n, json_integer((json_int_t)kc.n));
        TLS_KEYLOG_COUNTERS(KLJ)
#undef KLJ
        json_object_set_new(o, "keylog", k);
    }
    json_object_set_new(s, "tls", o);

    o = json_object();
#define CJ(n, d) json_object_set_new(o, #n, json_integer((json_int_t)p->cred.n));
    CRED_COUNTERS(CJ)
#undef CJ
    json_object_set_new(s, "credentials", o);

    if (p->cls) {
        struct classify_stats cs;
        classify_get_stats(p->cls, &cs);
        o = json_object();
#define KJ(n, d) json_object_set_new(o, #n, json_integer((json_int_t)cs.n));
        CLASSIFY_COUNTERS(KJ)
#undef KJ
        json_object_set_new(s, "classify", o);
    }
    struct judge_policy_counters jc;
    judge_policy_get_counters(p->judge, &jc);
    o = json_object();
    json_object_set_new(o, "checked", json_integer((json_int_t)jc.checked));
    json_object_set_new(o, "key_evictions", json_integer((json_int_t)jc.key_evictions));
    json_object_set_new(o, "pair_evictions", json_integer((json_int_t)jc.pair_evictions));
    json_t *k = json_object();
    for (int i = 0; i < ALERT__COUNT; i++)
        if (jc.findings[i])
            json_object_set_new(k, alert_kind_name((enum alert_kind)i),
                                json_integer((json_int_t)jc.findings[i]));
    json_object_set_new(o, "findings", k);
    json_object_set_new(s, "policy", o);
    return s;
}
