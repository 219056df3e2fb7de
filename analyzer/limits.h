/* limits: the `limits:` of the config (rules_limits.c parses them) turned
 * into the bounds of each packet pipeline, printed by `check`, and their
 * hits gathered for the `stats` record (docs/config.md, limits).
 *
 * The one thing to know: the configured values are totals for the
 * process. With N packet workers each worker's pipeline gets 1/N of every
 * table and memcap (flow.max, flow.memcap, stream.memcap, defrag.*, the
 * HTTP and TLS memcaps, classify.max_active); the per-message, per-stream
 * and per-connection limits (http.max_header_bytes, http.max_headers,
 * http.max_pending, http.request_buffer, http.response_buffer, http2.max_*,
 * stream.max_buffer, stream.ooo_window, stream.ooo_max_segments,
 * defrag.max_fragments) are the same in every worker. A share under what one worker needs is an
 * error here, for `run` and `check` alike. */
#ifndef KW_LIMITS_H
#define KW_LIMITS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kw_err.h"
#include "pipeline.h"
#include "rules.h"

struct limits_eff {
    unsigned workers;              /* pipelines the totals are split over (>= 1) */
    struct rules_res_limits total; /* every field set: as written, or the default */
    bool written[32];              /* per key (limits_key order): from the config */
    /* one worker's share */
    uint32_t flow_max;   /* min(flow.max, what flow.memcap holds) / workers */
    bool flow_by_memcap; /* flow.memcap, not flow.max, sets flow_max */
    uint64_t flow_mem;   /* bytes flow_max flows take (table + per-flow state) */
    uint64_t stream_memcap, defrag_memcap, http_memcap, http2_memcap, tls_memcap;
    uint32_t defrag_max_datagrams;
    uint32_t classify_max_active;
};

/* Fills *e from the config's limits (defaults from the modules' own
 * *_default functions) for `workers` packet pipelines (0 or 1: one).
 * KW_E_CONFIG with `err` saying what and how to fix (file:line of the
 * `limits:` key) when a worker's share is under what it needs: every such
 * error, one per line (give err room: ~250 bytes each). */
KW_WUR enum kw_err limits_resolve(const struct rules_config *rc, unsigned workers,
                                  struct limits_eff *e, char *err, size_t errlen);
/* Do two configs write the same limits? (Tables are sized at start: a
 * SIGHUP reload that changes them is told it takes a restart.) */
bool limits_same(const struct rules_res_limits *a, const struct rules_res_limits *b);
/* Sets one worker's share into a pipeline config (from
 * pipeline_config_default). */
void limits_apply(const struct limits_eff *e, struct pipeline_config *pc);
/* `check`: the effective limits, one line each. */
void limits_print(const struct limits_eff *e, FILE *f);
/* The `limits` object of the stats record: the totals, the workers and,
 * under "hits", each limit's hits read from the stats sections of `stats`
 * (pipeline_stats_json / workers_stats_json). New reference. */
json_t *limits_stats_json(const struct limits_eff *e, json_t *stats);
/* One line for the run summary naming the limits hit (nothing when none). */
void limits_summary(const struct limits_eff *e, json_t *stats, FILE *f);

#endif
