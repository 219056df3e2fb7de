/* pipeline_int.h: what the pipeline's files share, and nothing else sees.
 *
 * pipeline.c was one 1,370-line file; it is split by stage (construction
 * and the packet entry, HTTP recognition and parsers, flow callbacks and
 * TLS, the judge stage, templates and OpenAPI, stats). The state they all
 * touch, struct pipeline and the per-flow struct pipe_flow, is defined
 * here; the functions one file calls in another carry the pl_ prefix.
 * Everything else stays static in its file. pipeline.h remains the
 * module's contract: no code outside analyzer/pipeline*.c includes this. */
#ifndef KW_PIPELINE_INT_H
#define KW_PIPELINE_INT_H

#include <stdatomic.h>

#include "openapi.h"
#include "pipeline.h"

enum pf_http { PF_HTTP_UNKNOWN = 0, PF_HTTP_YES, PF_HTTP_NO };

/* Per-flow state; hangs off flow->app. */
struct pipe_flow {
    struct pipeline *p;
    struct flow *f;
    struct h1_conn *h1;
    struct h2_conn *h2;   /* HTTP/2: prior knowledge, h2c upgrade or ALPN h2 */
    struct tls_conn *tls; /* TLS: records go here; the plaintext to h1 */
    struct classify_flow *cls;
    bool cls_wants;
    uint8_t http;       /* enum pf_http */
    bool was_h2;        /* an HTTP/2 parser ran (the flow record says http2) */
    uint8_t probes[2];  /* data chunks seen per direction while undecided */
    uint32_t probed[2]; /* bytes of them */
    uint64_t gap[2];    /* bytes lost per direction while undecided (see pl_cb_gap) */
    kw_ts held_ts[2];   /* when bytes held while undecided were first seen */
    uint32_t txns;
    uint64_t last_seq; /* worker mode: tag of the flow's last packet */
    struct pipe_flow *next_free;
};

struct pipeline {
    struct pipeline_config cfg;
    struct dec_ctx dec;
    struct flow_table *flows;
    struct defrag *defrag; /* IP fragments, on their way to flows */
    struct classify_ctx *cls;
    struct tls_ctx *tls; /* limits, key log, counters, scratch of TLS connections */
    struct judge_policy *judge;
    /* attributed TLS sessions until their flow ends (judge stage; made at
     * the first one), and a record to judge their bytes in */
    struct judge_sessions *sessions;
    struct kw_txn *sess_txn;
    /* OpenAPI documents of `services:` (judge stage): the one in use, and
     * one handed over by another thread, taken at the next transaction */
    struct oas_set *specs;
    _Atomic(struct oas_set *) new_specs;
    struct rules_model *model;
    struct pipeline_counters cnt;
    struct h1_counters h1_total;
    struct h2_counters h2_total;
    struct cred_stats cred;
    struct pipe_flow *free_flows; /* recycled per-flow states */
    /* HTTP parsers: the bytes they hold (bounded by cfg.h1.memcap), how
     * many are attached to flows (cfg.h1.max_conns), and closed ones kept
     * with their grown buffers for the next connections */
    struct h1_budget h1_budget;
    uint32_t h1_live, h1_nfree;
    struct h1_conn *h1_free[64];
    /* HTTP/2 parsers: bytes held (cfg.h2.memcap, HPACK tables included)
     * and how many are live (cfg.h2.max_conns) */
    struct h2_budget h2_budget;
    uint32_t h2_live;
    kw_ts now;
    int64_t last_sec;
    uint64_t seq;        /* worker mode: tag of the packet being processed */
    int ending;          /* worker mode: why the flow whose end runs ends, or -1 */
    struct kw_txn txn;   /* scratch: one transaction at a time */
    char eve_buf[65536]; /* one EVE record; bounded fields fit with room to spare */
};

/* Recognition keeps looking at the start of later chunks for a while:
 * HTTP inside a SOCKS or proxy tunnel, or after some other preamble,
 * begins a later chunk, not the first. Bounded so a TLS or binary flow is
 * given up quickly (and is never fed to the parser). */
enum { PROBE_CHUNKS = 8, PROBE_BYTES = 16 * 1024 };

/* pipeline_judge.c: findings go to alerts (or are dropped, counted) */
void pl_emit_finding(void *user, struct alert_finding *f);
bool pl_repeat_finding(void *user, struct alert_finding *f);

/* pipeline_templates.c: a transaction's template, OpenAPI checks */
enum oas_match pl_learn_template(struct pipeline *p, struct kw_txn *t,
                                 const struct oas_endpoint **op);
void pl_check_undocumented(struct pipeline *p, const struct rules_identity *id,
                           const struct kw_txn *t, enum oas_match m);
void pl_on_template_merge(void *user, const char *service, const char *old_tmpl,
                          const char *new_tmpl);

/* pipeline_http.c: HTTP recognition, parsers started and fed */
int pl_looks_http(const uint8_t *d, size_t len);
int pl_looks_http_line(const uint8_t *d, size_t len);
size_t pl_probe_skip(struct pipe_flow *pf, int dir, size_t len);
bool pl_start_http(struct pipe_flow *pf);
bool pl_start_h2(struct pipe_flow *pf, bool midstream);
size_t pl_feed_h2(struct pipe_flow *pf, int dir, const uint8_t *d, size_t len, kw_ts ts);
size_t pl_feed_http(struct pipe_flow *pf, int dir, const uint8_t *d, size_t len, kw_ts ts);
size_t pl_probe_after_gap(struct pipe_flow *pf, int dir, const uint8_t *d, size_t len, kw_ts ts);
size_t pl_probe_midstream(struct pipe_flow *pf, int dir, const uint8_t *d, size_t len, kw_ts ts);

/* pipeline_flow.c: the flow table's callbacks (struct flow_callbacks) */
void pl_cb_flow_start(void *user, struct flow *f, kw_ts ts);
void pl_cb_packet(void *user, struct flow *f, int dir, const struct dec_packet *pkt);
size_t pl_cb_data(void *user, struct flow *f, int dir, const uint8_t *d, size_t len, kw_ts ts);
void pl_cb_gap(void *user, struct flow *f, int dir, uint64_t len, kw_ts ts);
void pl_cb_flow_end(void *user, struct flow *f, enum flow_end_reason why, kw_ts ts);

#endif
