/* sim_tcp: handshake, MSS segmentation, delayed ACKs, reordering,
 * retransmission, mirror loss and teardown for one connection. Segments carry
 * the TCP timestamps option (RFC 7323), which is why a full segment holds
 * 1448 bytes of payload with the usual 1460-byte MSS. */
#include "sim_tcp.h"

#include <string.h>

#define SIM_MSS 1460
#define SIM_PAYLOAD 1448 /* MSS minus the 12-byte timestamps option block */

void sim_conn_init(struct sim_conn *c, struct sim_out *out, struct sim_rng *rng,
                   const struct sim_tcp_cfg *cfg, const struct sim_ep *cli,
                   const struct sim_ep *srv, int64_t rtt, int64_t seg_gap)
{
    memset(c, 0, sizeof *c);
    c->out = out;
    c->rng = rng;
    c->cfg = cfg;
    c->cli = *cli;
    c->srv = *srv;
    c->cseq = (uint32_t)sim_rng_u64(rng);
    c->sseq = (uint32_t)sim_rng_u64(rng);
    c->cip_id = (uint16_t)sim_rng_u64(rng);
    c->sip_id = (uint16_t)sim_rng_u64(rng);
    c->cts_off = (uint32_t)sim_rng_u64(rng);
    c->sts_off = (uint32_t)sim_rng_u64(rng);
    sim_rng_fork(&c->loss_rng, sim_rng_u64(rng), 0x1055);
    c->rtt = rtt < 100 ? 100 : rtt;
    c->seg_gap = seg_gap < 1 ? 1 : seg_gap;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Emit one segment; returns true when the mirror missed it. */
static bool emit(struct sim_conn *c, int64_t t, bool from_client, uint8_t flags, const uint8_t *d,
                 size_t len, uint32_t seq, bool syn)
{
    uint8_t opt[20], frame[SIM_MAX_FRAME];
    size_t optlen;
    uint32_t tsval = (uint32_t)(t / 1000) + (from_client ? c->cts_off : c->sts_off);
    uint32_t tsecr = (flags & SIM_ACK) ? (uint32_t)((t - c->rtt / 2) / 1000) +
                                             (from_client ? c->sts_off : c->cts_off)
                                       : 0;
    if (syn) { /* MSS, SACK permitted, timestamps, window scale 7 */
        const uint8_t head[] = {2, 4, SIM_MSS >> 8, SIM_MSS & 0xff, 4, 2, 8, 10};
        memcpy(opt, head, 8);
        put32(opt + 8, tsval);
        put32(opt + 12, tsecr);
        const uint8_t tail[] = {1, 3, 3, 7};
        memcpy(opt + 16, tail, 4);
        optlen = 20;
    } else {
        const uint8_t head[] = {1, 1, 8, 10};
        memcpy(opt, head, 4);
        put32(opt + 4, tsval);
        put32(opt + 8, tsecr);
        optlen = 12;
    }
    struct sim_tcp_hdr h = {
        .seq = seq,
        .ack = (flags & SIM_ACK) ? (from_client ? c->sseq : c->cseq) : 0,
        .flags = flags,
        .win = syn ? 64240 : (from_client ? 2048 : 501), /* scaled by 2^7 after the SYN */
        .opt = opt,
        .optlen = optlen,
        .ip_id = from_client ? c->cip_id++ : c->sip_id++,
        .ttl = from_client ? 54 : 64,
    };
    if (flags & SIM_RST) h.optlen = 0;
    size_t n = from_client ? sim_frame_tcp(frame, &c->cli, &c->srv, &h, d, len)
                           : sim_frame_tcp(frame, &c->srv, &c->cli, &h, d, len);
    if (sim_rng_chance(&c->loss_rng, c->cfg->loss)) {
        c->lost_packets++;
        return true;
    }
    sim_out_push(c->out, t, frame, n);
    return false;
}

int64_t sim_conn_open(struct sim_conn *c, int64_t t)
{
    emit(c, t, true, SIM_SYN, NULL, 0, c->cseq, true);
    c->cseq++;
    int64_t t1 = t + 15 + (int64_t)sim_rng_below(c->rng, 40);
    /* SYN-ACK acks the client's ISN+1, which is now cseq. */
    emit(c, t1, false, SIM_SYN | SIM_ACK, NULL, 0, c->sseq, true);
    c->sseq++;
    int64_t t2 = t1 + c->rtt;
    emit(c, t2, true, SIM_ACK, NULL, 0, c->cseq, false);
    return t2;
}

/* A data segment with the reordering / retransmission decisions. next_t is
 * when the following segment of the same burst is seen. */
static bool data_seg(struct sim_conn *c, int64_t t, int64_t next_t, bool from_client,
                     const uint8_t *d, size_t len, uint32_t seq, bool last, int64_t *seen)
{
    int64_t when = t;
    if (!last && sim_rng_chance(c->rng, c->cfg->reorder))
        when = next_t + 3; /* overtaken by its successor */
    if (seen) *seen = when;
    bool lost = emit(c, when, from_client, SIM_ACK | (last ? SIM_PSH : 0), d, len, seq, false);
    bool again = sim_rng_chance(c->rng, c->cfg->retransmit); /* drawn either way */
    if (!lost && again) {
        /* Spurious or fast retransmission: the same bytes, about one RTT on. */
        emit(c, when + c->rtt + 200, from_client, SIM_ACK | (last ? SIM_PSH : 0), d, len, seq,
             false);
    }
    return lost;
}

int64_t sim_conn_client_send(struct sim_conn *c, int64_t t, const uint8_t *d, size_t len,
                             const size_t *splits, int nsplit, bool *lost)
{
    size_t off = 0;
    int si = 0;
    int64_t when = t;
    while (off < len) {
        size_t end = off + SIM_PAYLOAD < len ? off + SIM_PAYLOAD : len;
        while (si < nsplit && splits[si] <= off)
            si++;
        bool split = si < nsplit && splits[si] < end;
        if (split) end = splits[si];
        /* A split write leaves the client a little later than a full one. */
        int64_t gap = split ? 200 + (int64_t)sim_rng_below(c->rng, 3000) : 20;
        if (data_seg(c, when, when + gap, true, d + off, end - off, c->cseq, end == len,
                     off ? NULL : &c->first_seen) &&
            lost)
            *lost = true;
        c->cseq += (uint32_t)(end - off);
        off = end;
        if (off < len) when += gap;
    }
    return when;
}

void sim_conn_server_ack(struct sim_conn *c, int64_t t)
{
    emit(c, t, false, SIM_ACK, NULL, 0, c->sseq, false);
}

int64_t sim_conn_server_send(struct sim_conn *c, int64_t t, const uint8_t *d, size_t len,
                             bool *lost)
{
    size_t off = 0;
    int64_t when = t;
    int nseg = 0;
    while (off < len) {
        size_t end = off + SIM_PAYLOAD < len ? off + SIM_PAYLOAD : len;
        bool last = end == len;
        if (data_seg(c, when, when + c->seg_gap, false, d + off, end - off, c->sseq, last, NULL) &&
            lost)
            *lost = true;
        c->sseq += (uint32_t)(end - off);
        off = end;
        nseg++;
        /* The client acks every second segment (RFC 9293 §3.8.6.3) and the
         * last one; its ACK is seen one RTT after the data left. */
        if (nseg % 2 == 0 || last) {
            uint32_t saved = c->sseq;
            emit(c, when + c->rtt, true, SIM_ACK, NULL, 0, c->cseq, false);
            c->sseq = saved;
        }
        if (!last) when += c->seg_gap;
    }
    return when + c->rtt;
}

int64_t sim_conn_fin(struct sim_conn *c, int64_t t, bool server_first)
{
    if (server_first) {
        emit(c, t, false, SIM_FIN | SIM_ACK, NULL, 0, c->sseq, false);
        c->sseq++;
        int64_t t1 = t + c->rtt;
        emit(c, t1, true, SIM_FIN | SIM_ACK, NULL, 0, c->cseq, false);
        c->cseq++;
        emit(c, t1 + 20, false, SIM_ACK, NULL, 0, c->sseq, false);
        return t1 + 20;
    }
    emit(c, t, true, SIM_FIN | SIM_ACK, NULL, 0, c->cseq, false);
    c->cseq++;
    emit(c, t + 30, false, SIM_FIN | SIM_ACK, NULL, 0, c->sseq, false);
    c->sseq++;
    emit(c, t + 30 + c->rtt, true, SIM_ACK, NULL, 0, c->cseq, false);
    return t + 30 + c->rtt;
}

void sim_conn_rst(struct sim_conn *c, int64_t t)
{
    emit(c, t, true, SIM_RST | SIM_ACK, NULL, 0, c->cseq, false);
}
