/* sim_tcp: one TCP connection as a mirror port next to the server sees it.
 * The one thing to know: times are capture times at the server side, so a
 * client segment is seen when it arrives, the server's answer a few µs later,
 * and the client's ACK of server data one RTT after that data. Loss here means
 * the mirror missed a packet (the endpoints still got it): the segment is
 * simply not written, and the transaction it belonged to is marked lost. */
#ifndef SIM_TCP_H
#define SIM_TCP_H

#include "sim_pkt.h"
#include "sim_rng.h"

struct sim_tcp_cfg {
    double reorder;    /* chance a data segment is seen after its successor */
    double retransmit; /* chance a data segment is seen twice */
    double loss;       /* chance the mirror misses any packet */
};

struct sim_conn {
    struct sim_out *out;
    struct sim_rng *rng;
    struct sim_rng loss_rng; /* own stream: loss never changes the traffic itself */
    const struct sim_tcp_cfg *cfg;
    struct sim_ep cli, srv;
    uint32_t cseq, sseq; /* next sequence number each side sends */
    uint16_t cip_id, sip_id;
    uint32_t cts_off, sts_off; /* TSval offsets (RFC 7323 §5.4) */
    int64_t rtt;               /* µs */
    int64_t seg_gap;           /* µs between back-to-back segments towards the client */
    uint32_t unacked_segs;     /* client segments not yet acked by the client */
    uint64_t lost_packets;
    int64_t first_seen; /* capture time of the first byte of the last client
                         * send: later than its start when that segment was
                         * overtaken by its successor */
};

void sim_conn_init(struct sim_conn *c, struct sim_out *out, struct sim_rng *rng,
                   const struct sim_tcp_cfg *cfg, const struct sim_ep *cli,
                   const struct sim_ep *srv, int64_t rtt, int64_t seg_gap);

/* Three-way handshake starting at t; returns when the client may send. */
int64_t sim_conn_open(struct sim_conn *c, int64_t t);

/* Client data at t, cut at MSS and at the given extra split offsets
 * (ascending, inside (0,len)); *lost is set when a data segment is missed.
 * Returns the capture time of the last segment. */
int64_t sim_conn_client_send(struct sim_conn *c, int64_t t, const uint8_t *d, size_t len,
                             const size_t *splits, int nsplit, bool *lost);

/* Server data at t; the client's ACKs follow one RTT later. Returns the time
 * the client has acknowledged everything. */
int64_t sim_conn_server_send(struct sim_conn *c, int64_t t, const uint8_t *d, size_t len,
                             bool *lost);

/* A pure ACK from the server for everything the client sent. */
void sim_conn_server_ack(struct sim_conn *c, int64_t t);

/* Orderly close (RFC 9293 §3.6) started by the client or the server, or an
 * abortive RST from the client. */
int64_t sim_conn_fin(struct sim_conn *c, int64_t t, bool server_first);
void sim_conn_rst(struct sim_conn *c, int64_t t);

#endif
