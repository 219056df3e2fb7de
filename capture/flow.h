/* flow: the bidirectional flow table and TCP reassembly driver.
 *
 * Flows are keyed by (tunnel type+id, proto, addresses, ports; VLAN ids
 * only with vlan_in_key) with a symmetric seeded hash, so both directions
 * land on one flow (also when a mirror puts them in two tunnels: see
 * join_lookup in flow.c). The table is
 * bounded (max flows, memcap) and evicts the oldest idle flow when full.
 * Timeouts run on packet time (flow_table_advance), never wall time.
 *
 * For TCP each direction is reassembled (see tcp_reasm.h). The consumer
 * (analyzer, or the `streams` dumper) gets callbacks: contiguous bytes it
 * may partly consume (the unconsumed tail is offered again with the next
 * bytes), explicit gaps for holes that will not fill, and flow end.
 *
 * Direction: FLOW_DIR_TO_SERVER (client -> server) and FLOW_DIR_TO_CLIENT.
 * The client is the SYN sender; when picked up midstream, the side with
 * the higher (ephemeral-looking) port, or the one whose first bytes look
 * like a request, is the client. */
#ifndef KW_FLOW_H
#define KW_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dec.h"
#include "kw_err.h"
#include "kw_hash.h"
#include "kw_time.h"

enum { FLOW_DIR_TO_SERVER = 0, FLOW_DIR_TO_CLIENT = 1 };

enum flow_tcp_state {
    FLOW_TCP_NONE = 0,
    FLOW_TCP_SYN_SENT,
    FLOW_TCP_SYN_RECV,
    FLOW_TCP_ESTABLISHED,
    FLOW_TCP_FIN_WAIT, /* one side sent FIN */
    FLOW_TCP_CLOSED,   /* both FINs, or RST */
};

enum flow_end_reason {
    FLOW_END_CLOSED,  /* FIN/RST, after the closed timeout */
    FLOW_END_TIMEOUT, /* idle timeout */
    FLOW_END_EVICTED, /* table full: oldest idle flow pushed out */
    FLOW_END_SHUTDOWN /* end of input */
};

/* "closed", "timeout", "evicted", "shutdown": the EVE flow record's
 * `reason` and `streams`' end column. */
const char *flow_end_reason_name(enum flow_end_reason r);

/* What a consumer may read of a flow. Owned by the table; valid from
 * on_flow_start until on_flow_end returns. */
struct flow {
    uint64_t id;                   /* unique per run, Suricata-style flow_id */
    struct kw_addr cli, srv;       /* client / server addresses */
    uint16_t cli_port, srv_port;
    uint8_t proto;
    uint8_t ip_version;
    struct dec_tunnel tunnel;
    uint16_t vlan;                 /* outer VLAN id or 0 */
    kw_ts first_ts, last_ts;
    uint64_t pkts[2], bytes[2];    /* per direction, wire bytes of IP */
    uint64_t gaps[2], gap_bytes[2];
    uint8_t tcp_state;             /* enum flow_tcp_state */
    bool midstream;                /* no handshake seen */
    bool roles_guessed;            /* client/server from ports/content */
    void *app;                     /* consumer's per-flow state */
};

struct flow_callbacks {
    void *user;
    /* A new flow was created (any protocol). */
    void (*on_flow_start)(void *user, struct flow *f, kw_ts ts);
    /* Every decoded packet of a flow (TCP and UDP), before reassembly;
     * dir as above. For nDPI classification. May be NULL. */
    void (*on_packet)(void *user, struct flow *f, int dir, const struct dec_packet *pkt);
    /* Contiguous in-order bytes of one TCP direction: p[0..len) starts at
     * the first byte not yet consumed. Return how many bytes were consumed
     * (0..len); the rest is offered again, with more appended, next time.
     * If the stream's buffer limit is reached while the consumer keeps
     * returning 0, the oldest bytes are dropped and reported as a gap. */
    size_t (*on_data)(void *user, struct flow *f, int dir, const uint8_t *p, size_t len,
                      kw_ts ts);
    /* A hole of `len` bytes that will not be filled, in stream order. Any
     * unconsumed bytes before it were offered one last time with
     * on_data first. */
    void (*on_gap)(void *user, struct flow *f, int dir, uint64_t len, kw_ts ts);
    /* The flow ends; no more callbacks for it. Pending in-order bytes were
     * delivered before this. */
    void (*on_flow_end)(void *user, struct flow *f, enum flow_end_reason why, kw_ts ts);
};

struct flow_config {
    uint32_t max_flows;          /* default 262144 */
    uint64_t memcap;             /* bytes for all reassembly buffers; default 512 MiB */
    uint32_t stream_buf_max;     /* per-direction bytes held (in order + out of order); 1 MiB */
    uint32_t ooo_window;         /* bytes past the hole before it is declared a gap; 256 KiB */
    uint32_t ooo_max_segments;   /* per direction; default 1024 */
    kw_ts idle_timeout;          /* default 600 s (TCP established), UDP 60 s */
    kw_ts udp_timeout;
    kw_ts closed_timeout;        /* after FIN+FIN or RST; default 10 s */
    kw_ts gap_timeout;           /* a hole older than this (packet time) becomes a gap; 2 s */
    struct kw_hkey hash_key;     /* bucket placement; default: fresh from getrandom */
    bool vlan_in_key; /* VLAN ids tell flows apart (default false: span
                         ports often tag one direction and not the other,
                         which would split every connection in two) */
};

#define FLOW_COUNTERS(X)                                                     \
    X(flows_created)                                                         \
    X(flows_active)                                                          \
    X(flows_closed)                                                          \
    X(flows_timed_out)                                                       \
    X(flows_evicted)                                                         \
    X(flows_midstream)                                                       \
    X(flows_tunnel_joined) /* directions seen in different tunnels, joined */ \
    X(tcp_segments)                                                          \
    X(tcp_in_order)                                                          \
    X(tcp_out_of_order)                                                      \
    X(tcp_retransmitted)                                                     \
    X(tcp_overlap_diff)                                                      \
    X(tcp_gaps)                                                              \
    X(tcp_gap_bytes)                                                         \
    X(tcp_gaps_acked) /* holes the peer acknowledged: declared at once */     \
    X(tcp_bytes_delivered)                                                   \
    X(memcap_hits)                                                           \
    X(stream_limit_hits)                                                     \
    X(buffer_limit_hits) /* of them: stream_buf_max (limits: stream.max_buffer) */ \
    X(ooo_window_gaps) /* holes declared gaps by ooo_window (stream.ooo_window) */ \
    X(ooo_segment_hits) /* of stream_limit_hits: ooo_max_segments (stream.ooo_max_segments) */ \
    X(flow_limit_hits)                                                       \
    X(tcp_before_start)                                                      \
    X(tcp_unconsumed_dropped)                                                \
    X(packets_ignored)                                                       \
    X(flows_reused)

struct flow_counters {
#define FLOW_CNT_FIELD(n) uint64_t n;
    FLOW_COUNTERS(FLOW_CNT_FIELD)
#undef FLOW_CNT_FIELD
};

struct flow_table;

void flow_config_default(struct flow_config *cfg);
enum kw_err flow_table_new(const struct flow_config *cfg, const struct flow_callbacks *cb,
                           struct flow_table **out) KW_WUR;
void flow_table_destroy(struct flow_table *t);

/* Feed one decoded packet (DEC_OK). Advances packet time. */
void flow_table_packet(struct flow_table *t, const struct dec_packet *pkt);
/* Run timeouts up to `now` (packet time); called by the main loop on a
 * quiet link too. */
void flow_table_advance(struct flow_table *t, kw_ts now);
/* End every flow (end of input / shutdown): flush data and gaps, then
 * on_flow_end(FLOW_END_SHUTDOWN). */
void flow_table_flush(struct flow_table *t, kw_ts now);

/* Flows on the longest chain of the exact index (walks every bucket: for
 * tests and diagnostics, not the packet path). */
uint32_t flow_table_longest_chain(const struct flow_table *t);

/* The exact-index bucket a packet's flow would sit in (tests of the keyed
 * hash build crafted collision sets with it). */
uint64_t flow_table_bucket(const struct flow_table *t, const struct dec_packet *p);

const struct flow_counters *flow_table_counters(const struct flow_table *t);

/* The most bytes a table of max_flows flows holds for them (the pool, both
 * bucket arrays), reassembly buffers apart (those are cfg.memcap's). */
size_t flow_table_mem(uint32_t max_flows);

#endif
