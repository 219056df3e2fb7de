/* classify: application classification of a flow with nDPI 4.2, behind a
 * few functions because nDPI's API changes across versions (DEPENDENCIES.md:
 * 5-argument ndpi_detection_process_packet in 4.2, 6 from 4.6, new init in
 * 4.10). Used for flows keywarden cannot read (TLS, ...) so the flow record
 * says what they were instead of nothing.
 *
 * The one thing to know: one classify_ctx per worker thread (nDPI's module
 * has mutable caches and is not thread-safe), and per-flow state comes from
 * two pools in the ctx. A struct classify_flow (~100 bytes) lives as long as
 * the flow; the ~700-byte nDPI state behind it is taken from a second,
 * smaller pool only while the flow is being classified and returned as soon
 * as nDPI decides or gives up. Both pools grow in slabs up to their limit,
 * so nothing is allocated per packet and at most once per 256 flows. */
#ifndef KW_CLASSIFY_H
#define KW_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kw_err.h"
#include "kw_time.h"

struct classify_ctx;
struct classify_flow;

/* Packets fed to nDPI per flow before giving up (DEPENDENCIES.md: unknown
 * flows are the dearest, ~1-6 µs per packet). */
#define CLASSIFY_MAX_PACKETS 12
/* Defaults of classify_ctx_new: flows alive at once, and flows being
 * classified at once (each holds an nDPI state). */
#define CLASSIFY_DEFAULT_MAX_FLOWS 262144
#define CLASSIFY_DEFAULT_MAX_ACTIVE 16384

#define CLASSIFY_COUNTERS(X)                                                                       \
    X(flows, "flows given a classification state")                                                 \
    X(packets, "packets fed to nDPI")                                                              \
    X(decided, "flows nDPI classified")                                                            \
    X(gave_up, "flows classified by ndpi_detection_giveup (max packets or flow end)")              \
    X(unknown, "flows left Unknown")                                                               \
    X(limit_flows, "classify_flow_new refused: max flows reached")                                 \
    X(limit_active, "classify_flow_new refused: max flows in classification reached")              \
    X(nomem, "classify_flow_new refused: allocator failed")                                        \
    X(oversize, "packets over 65535 bytes cut to nDPI's 16-bit length")

struct classify_stats {
#define CLASSIFY_STAT_FIELD(n, d) uint64_t n;
    CLASSIFY_COUNTERS(CLASSIFY_STAT_FIELD)
#undef CLASSIFY_STAT_FIELD
};

/* A detection module with the default limits. KW_E_NOMEM if nDPI fails. */
KW_WUR enum kw_err classify_ctx_new(struct classify_ctx **out);
/* Same with explicit limits (both >= 1). */
KW_WUR enum kw_err classify_ctx_new_limits(struct classify_ctx **out, size_t max_flows,
                                           size_t max_active);
/* The most bytes both pools hold with these limits (every slab grown):
 * for memcaps that count per-flow state (analyzer/limits.c). */
size_t classify_pools_mem(size_t max_flows, size_t max_active);
/* Frees the module and both pools, including flows not yet freed. */
void classify_ctx_destroy(struct classify_ctx *c);

/* Per-flow state from the ctx's pools; NULL (counted) when a limit is
 * reached: the flow is then simply not classified. */
struct classify_flow *classify_flow_new(struct classify_ctx *c);
/* Returns the state to the pools; f may be NULL. */
void classify_flow_free(struct classify_ctx *c, struct classify_flow *f);

/* Feeds one IP packet (l3/l3_len of struct dec_packet: IPv4 or IPv6
 * header first), ts in µs. Returns true while the flow still wants packets:
 * false once nDPI decided or after CLASSIFY_MAX_PACKETS packets (then it
 * gives up and releases the nDPI state). to_server is informational: nDPI
 * 4.2 works out direction from the addresses itself. */
bool classify_packet(struct classify_ctx *c, struct classify_flow *f, const uint8_t *l3,
                     uint32_t l3_len, kw_ts ts, bool to_server);

/* Ends classification of an undecided flow (ndpi_detection_giveup, with
 * nDPI's port-based guess) and releases its nDPI state. No-op when done. */
void classify_giveup(struct classify_ctx *c, struct classify_flow *f);

/* True once the flow is decided or given up. */
bool classify_done(const struct classify_flow *f);

/* Application name ("HTTP", "TLS", "DNS", "TLS.Google", "Unknown") and the
 * TLS SNI or HTTP/DNS host name ("" when none), NUL-terminated and cut to
 * fit. Calls classify_giveup first when the flow is still undecided. */
void classify_result(struct classify_ctx *c, struct classify_flow *f, char *app, size_t applen,
                     char *sni, size_t snilen);

/* Counters since classify_ctx_new. */
void classify_get_stats(const struct classify_ctx *c, struct classify_stats *out);

#endif
