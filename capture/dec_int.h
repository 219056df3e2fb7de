/* dec_int: what the decoder files (dec.c, dec_tunnel.c) share and nobody
 * else sees. One decode run walks the layers of one packet, outermost
 * first; every layer entry costs one unit of the layer budget, so a packet
 * built to nest tunnels forever ends as a counted too_many_layers instead
 * of a deep recursion. */
#ifndef KW_DEC_INT_H
#define KW_DEC_INT_H

#include "dec.h"

/* Ethernet + 2 VLAN + IP + GRE + ERSPAN + Ethernet + IP + UDP + VXLAN +
 * Ethernet + IP + TCP is 13: real mirror stacks fit well inside 24. */
#define DEC_MAX_LAYERS 24
#define DEC_MAX_MPLS_LABELS 8
#define DEC_MAX_IPV6_EXT 8

struct dec_run {
    struct dec_ctx *ctx;
    struct dec_packet *out;
    unsigned layers;
    bool snapped; /* caplen < wirelen: a short header is the snaplen's fault */
};

/* Counts one layer; false (and too_many_layers) when the budget is spent. */
static inline bool dec_enter(struct dec_run *r)
{
    if (++r->layers > DEC_MAX_LAYERS) {
        r->ctx->cnt.too_many_layers++;
        return false;
    }
    return true;
}

/* A header does not fit in the captured bytes: blame the snaplen when the
 * capture cut the packet, else the layer that claimed more than it had. */
static inline enum dec_result dec_short(struct dec_run *r, uint64_t *bad)
{
    if (r->snapped)
        r->ctx->cnt.truncated++;
    else
        (*bad)++;
    return DEC_MALFORMED;
}

static inline enum dec_result dec_bad(uint64_t *bad)
{
    (*bad)++;
    return DEC_MALFORMED;
}

static inline uint16_t dec_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t dec_be24(const uint8_t *p)
{
    return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
}

static inline uint32_t dec_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The first tunnel met is the one that names the flow (outermost wins). */
static inline void dec_set_tunnel(struct dec_run *r, enum dec_tunnel_type t, uint32_t id)
{
    if (r->out->tunnel.type == DEC_TUN_NONE) {
        r->out->tunnel.type = (uint8_t)t;
        r->out->tunnel.id = id;
    }
}

/* dec.c */
enum dec_result dec_ether(struct dec_run *r, const uint8_t *p, uint32_t len);
enum dec_result dec_ethertype(struct dec_run *r, uint16_t et, const uint8_t *p, uint32_t len);
enum dec_result dec_ip_any(struct dec_run *r, const uint8_t *p, uint32_t len);
enum dec_result dec_ipv4(struct dec_run *r, const uint8_t *p, uint32_t len);
enum dec_result dec_ipv6(struct dec_run *r, const uint8_t *p, uint32_t len);

/* dec_tunnel.c */
enum dec_result dec_udp_tunnel(struct dec_run *r, uint16_t dport, const uint8_t *p, uint32_t len,
                               bool *is_tunnel);
enum dec_result dec_gre(struct dec_run *r, const uint8_t *p, uint32_t len);
enum dec_result dec_mpls(struct dec_run *r, const uint8_t *p, uint32_t len);
enum dec_result dec_pppoe(struct dec_run *r, const uint8_t *p, uint32_t len);

#endif
