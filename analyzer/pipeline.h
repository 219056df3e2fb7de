/* pipeline: the packet path of `keywarden run`, from captured frames to
 * judged transactions. It owns the decoder context and the flow table, and
 * hangs per-flow state (HTTP parser, nDPI classification) off each flow.
 * For every HTTP transaction it extracts the credential, attributes it to
 * an identity, runs the policy judge and the baselines, records it in the
 * audit trail and writes the EVE `http` record; `flow` records are written
 * at flow end and `stats` records on demand.
 *
 * The one thing to know: everything here runs on the packet thread and
 * takes time from packets. The parts that touch SQLite or the network
 * (audit, alerts, baselines' saves) queue work for their own threads. */
#ifndef KW_PIPELINE_H
#define KW_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>

#include "alerts.h"
#include "audit.h"
#include "baseline.h"
#include "cred.h"
#include "dec.h"
#include "defrag.h"
#include "flow.h"
#include "h1.h"
#include "h2.h"
#include "judge_policy.h"
#include "kw_eve.h"
#include "routes.h"
#include "rules.h"
#include "source.h"
#include "tls_conn.h"

/* Worker mode (analyzer/workers.c): with a sink, the pipeline stops at a
 * filled kw_txn; transactions and ended flows go to the sink instead of
 * the judge stage and the EVE writer, and new flows are announced. `seq`
 * is the tag pipeline_set_seq gave the flow's last packet; `why` of a
 * transaction is the end reason while its flow ends, -1 otherwise. */
struct pipeline_sink {
    void *user;
    void (*flow_start)(void *user, struct flow *f); /* may set f->id */
    void (*txn)(void *user, const struct flow *f, uint64_t seq, int why, const struct kw_txn *t);
    void (*flow_end)(void *user, const struct flow *f, uint64_t seq, enum flow_end_reason why,
                     kw_ts ts, const char *app, const char *sni, int64_t http_txns);
    /* A TLS handshake is over: t is the session (KW_TXN_F(TLS_SESSION)). */
    void (*tls)(void *user, const struct flow *f, uint64_t seq, int why, const struct kw_txn *t,
                const struct tls_info *ti);
};

/* Sensor mode (fleet/, docs/fleet.md): the judge stage runs elsewhere.
 * With a forward, pipeline_judge_txn (after attribution), _flow and _tick
 * hand their input over, with `now`, the packet time at which this
 * process would have judged it, instead of judging. */
struct pipeline_forward {
    void *user;
    void (*txn)(void *user, kw_ts now, const struct kw_txn *t);
    void (*flow)(void *user, kw_ts now, const struct flow *f, const char *app, const char *sni,
                 int64_t http_txns, enum flow_end_reason why, kw_ts ts);
    void (*tick)(void *user, kw_ts now);
    /* a TLS session, after pipeline_judge_tls's attribution */
    void (*tls)(void *user, kw_ts now, const struct kw_txn *t, const struct tls_info *ti);
    /* how often (packet time) tick is called; 0: once a second, as the
     * baselines need. A sensor's tick tells the judges how far its clock
     * got, so a shorter one shortens how long they wait for it. */
    kw_ts tick_us;
};

struct pipeline_config {
    struct dec_config dec;
    struct flow_config flow;
    struct defrag_config defrag;
    struct h1_limits h1;
    struct h2_limits h2;
    struct cred_config cred;
    struct tls_limits tls;
    struct tls_keylog *tls_keylog; /* borrowed; NULL: TLS metadata only, no decryption */
    bool classify;         /* nDPI for flows that are not HTTP */
    uint32_t classify_max_active; /* nDPI states at once (limits: classify.max_active);
                                     0: CLASSIFY_DEFAULT_MAX_ACTIVE. At most flow.max_flows */
    bool flow_records;     /* EVE `flow` record per ended flow */
    /* Borrowed; each may be NULL (that stage is skipped). */
    struct kw_eve *eve;
    struct rules_model *model; /* a reference the pipeline takes over */
    struct alerts *alerts;
    struct audit *audit;
    struct baseline *baseline;
    /* Learned endpoint templates (judge stage): the http record's template
     * comes from here, and its merges rename the baselines' endpoints. */
    struct routes *routes;
    bool routes_fixed;                /* the model is only read (learn_templates: false) */
    const struct pipeline_sink *sink; /* NULL: single-thread, all stages here */
    const struct pipeline_forward *forward; /* NULL: judge here (see above) */
};

#define PIPELINE_COUNTERS(X)                                                 \
    X(packets)                                                               \
    X(bytes)                                                                 \
    X(decode_malformed)                                                      \
    X(decode_skipped)                                                        \
    X(http_flows)                                                            \
    X(non_http_flows)                                                        \
    X(transactions)                                                          \
    X(transactions_h1)      /* each as made; http.* at a connection end */   \
    X(transactions_h2)                                                       \
    X(attributed)                                                            \
    X(unattributed_with_credential)                                          \
    X(without_credential)                                                    \
    X(findings)                                                              \
    X(urls_redacted)                                                         \
    X(eve_overflow)                                                          \
    X(h1_alloc_failures)                                                     \
    X(h1_refused)           /* HTTP flows not parsed: h1 max_conns/memcap */ \
    X(h1_mem_peak)          /* most bytes all HTTP parsers held at once */   \
    X(h2_flows)             /* connections parsed as HTTP/2 */               \
    X(h2_refused)           /* HTTP/2 flows not parsed: h2 max_conns */      \
    X(h2_alloc_failures)    /* ... or out of memory / h2 memcap */           \
    X(h2_mem_peak)          /* most bytes all HTTP/2 parsers held at once */ \
    X(probe_chunks_skipped) /* data chunks dropped while recognising HTTP */ \
    X(cred_bearer)          /* transactions by credential kind (kw_txn) */    \
    X(cred_jwt)                                                              \
    X(cred_basic)                                                            \
    X(cred_api_key)                                                          \
    X(cred_other)                                                            \
    X(tls_flows)            /* connections parsed as TLS */                  \
    X(tls_sessions)         /* TLS handshakes reported (tls records) */     \
    X(tls_alloc_failures)                                                    \
    X(tls_not_forwarded)    /* sensor mode: TLS sessions not sent (a forward without tls) */ \
    X(tls_sessions_measured) /* attributed sessions whose bytes reached the baseline */ \
    X(tls_sessions_unmeasured) /* ... forgotten for later ones before they ended */ \
    X(template_merges)      /* learned templates renamed (literals proven parameters) */ \
    X(documented)           /* requests matching their service's OpenAPI document */     \
    X(undocumented)         /* requests to a documented service matching no endpoint */

struct pipeline_counters {
#define PIPE_CNT_FIELD(n) uint64_t n;
    PIPELINE_COUNTERS(PIPE_CNT_FIELD)
#undef PIPE_CNT_FIELD
};

struct pipeline;

void pipeline_config_default(struct pipeline_config *c);
/* The most bytes a pipeline with this config holds for its flows beyond
 * the flow table (per-flow state, nDPI classification pools), for
 * flow.memcap (analyzer/limits.c). */
size_t pipeline_flows_mem(const struct pipeline_config *c, uint32_t max_flows);
enum kw_err pipeline_new(const struct pipeline_config *c, struct pipeline **out) KW_WUR;
/* Frees the pipeline (call pipeline_finish first to flush flows). */
void pipeline_destroy(struct pipeline *p);

/* One captured frame. */
void pipeline_packet(struct pipeline *p, const struct cap_pkt *pkt);
/* Timers on a quiet link (live capture): run flow timeouts up to now. */
void pipeline_advance(struct pipeline *p, kw_ts now);
/* End of input: end every flow (their transactions and records are
 * emitted). */
void pipeline_finish(struct pipeline *p);
/* OpenAPI documents of `services:` (openapi.h; takes s over, NULL: none).
 * Any thread: the judge stage takes it at its next transaction. */
struct oas_set;
void pipeline_set_specs(struct pipeline *p, struct oas_set *s);
/* Swap in a reloaded rules model (takes over the reference). */
void pipeline_set_model(struct pipeline *p, struct rules_model *m);

/* Worker mode (analyzer/workers.c). The tag of the next packets. */
void pipeline_set_seq(struct pipeline *p, uint64_t seq);
/* Flow timeouts up to `now`, as the flow table runs them every second of
 * packet time (the dispatcher broadcasts those ticks to every worker). */
void pipeline_flow_advance(struct pipeline *p, kw_ts now);
/* pipeline_finish at packet time `now` (the latest of all workers). */
void pipeline_finish_at(struct pipeline *p, kw_ts now);
/* The judge stage of one transaction: attribution, EVE `http`, policy,
 * baselines, audit (on_txn calls it; so does the judge thread). */
void pipeline_judge_txn(struct pipeline *p, struct kw_txn *t);
/* Worker mode: the packet time of the record the judge thread takes next
 * (a forward's `now`; it never goes back). */
void pipeline_judge_at(struct pipeline *p, kw_ts now);
/* The judge stage of a TLS session: attribution (client certificate; for
 * a session to one of `services:`, else the one identity whose sources
 * hold the client), EVE `tls`, the policy and baseline checks that need no
 * HTTP (sessions that are neither are only recorded). */
void pipeline_judge_tls(struct pipeline *p, struct kw_txn *t, const struct tls_info *ti);
/* The baselines' tick of the judge thread (once per second of packet
 * time, after that packet's transactions, as the single thread does). */
void pipeline_judge_tick(struct pipeline *p, kw_ts now);
/* EVE `flow` record of an ended flow (http_txns < 0: not HTTP). */
void pipeline_judge_flow(struct pipeline *p, const struct flow *f, const char *app,
                         const char *sni, int64_t http_txns, enum flow_end_reason why, kw_ts ts);
size_t pipeline_format_flow(char *buf, size_t size, const struct flow *f, const char *app,
                            const char *sni, int64_t http_txns, enum flow_end_reason why,
                            kw_ts ts);

/* The policy judge of the judge stage (borrowed; a fleet judge saves and
 * restores its windows). */
struct judge_policy *pipeline_policy(struct pipeline *p);
/* Packet time of the last packet seen (0 before the first). */
kw_ts pipeline_now(const struct pipeline *p);
const struct pipeline_counters *pipeline_counters(const struct pipeline *p);
/* The `stats` object of every stage the pipeline owns (decoder, flows,
 * HTTP, credentials, classification, judge) plus its own counters. New
 * reference. */
json_t *pipeline_stats_json(const struct pipeline *p);

#endif
