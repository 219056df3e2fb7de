/* dec_tunnel: the encapsulations traffic mirrors use — VXLAN (and
 * VXLAN-GPE), GENEVE, GRE, ERSPAN I/II/III, and GTP-U from mobile cores —
 * plus MPLS and PPPoE, which
 * are stacked between Ethernet and IP. The one thing to know: a tunnel
 * records its id only if no tunnel was seen yet (the outermost names the
 * mirror session), then hands the inner frame back to dec.c, which decodes
 * it like any other packet and overwrites the addresses with the inner
 * ones. */
#include "dec_int.h"

/* VXLAN, RFC 7348 §5: flags(8, I=0x08) reserved(24) VNI(24) reserved(8). */
static enum dec_result dec_vxlan(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    if (len < 8) return dec_short(r, &r->ctx->cnt.bad_tunnel);
    if (!(p[0] & 0x08)) return dec_bad(&r->ctx->cnt.bad_tunnel);
    r->ctx->cnt.vxlan++;
    dec_set_tunnel(r, DEC_TUN_VXLAN, dec_be24(p + 4));
    return dec_ether(r, p + 8, len - 8);
}

/* VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe §3.2): as VXLAN, with version bits
 * 0x30 = 0 and, when P (0x04) is set, a next protocol in byte 3:
 * 1 IPv4, 2 IPv6, 3 Ethernet. */
static enum dec_result dec_vxlan_gpe(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    if (len < 8) return dec_short(r, &r->ctx->cnt.bad_tunnel);
    if (!(p[0] & 0x08) || (p[0] & 0x30)) return dec_bad(&r->ctx->cnt.bad_tunnel);
    r->ctx->cnt.vxlan++;
    dec_set_tunnel(r, DEC_TUN_VXLAN, dec_be24(p + 4));
    uint8_t next = (p[0] & 0x04) ? p[3] : 3;
    switch (next) {
    case 1:
        return dec_ipv4(r, p + 8, len - 8);
    case 2:
        return dec_ipv6(r, p + 8, len - 8);
    case 3:
        return dec_ether(r, p + 8, len - 8);
    default:
        r->ctx->cnt.non_ip++; /* NSH, MPLS: not decoded */
        return DEC_SKIP;
    }
}

/* GENEVE, RFC 8926 §3.4: ver(2) optlen(6, 4-byte words) O C rsvd(6)
 * protocol(16) VNI(24) reserved(8), then the options. */
static enum dec_result dec_geneve(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    if (len < 8) return dec_short(r, &r->ctx->cnt.bad_tunnel);
    if ((p[0] >> 6) != 0) return dec_bad(&r->ctx->cnt.bad_tunnel);
    uint32_t hl = 8 + (uint32_t)(p[0] & 0x3f) * 4;
    if (hl > len) return dec_short(r, &r->ctx->cnt.bad_tunnel);
    r->ctx->cnt.geneve++;
    dec_set_tunnel(r, DEC_TUN_GENEVE, dec_be24(p + 4));
    uint16_t proto = dec_be16(p + 2);
    if (proto == 0x6558) /* transparent Ethernet bridging */
        return dec_ether(r, p + hl, len - hl);
    return dec_ethertype(r, proto, p + hl, len - hl);
}

/* GTPv1-U, 3GPP TS 29.281 §5.1: flags (version 1, PT 1, E S PN), type
 * 0xff (G-PDU, the only one carrying user packets), length, TEID; 4 more
 * bytes when any of E/S/PN is set, then a chain of extension headers
 * (length in 4-byte units, next type in the last byte). The inner packet
 * is IP. No tunnel id is recorded: uplink and downlink use different
 * TEIDs, so the TEID would split one connection into two flows. */
static enum dec_result dec_gtpu(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    uint64_t *bad = &r->ctx->cnt.bad_tunnel;
    if (len < 8) return dec_short(r, bad);
    if ((p[0] >> 4) != 3) /* version 1, PT 1 */
        return dec_bad(bad);
    r->ctx->cnt.gtp++;
    if (p[1] != 0xff) { /* echo, error indication, end marker: signalling */
        r->ctx->cnt.non_ip++;
        return DEC_SKIP;
    }
    uint32_t off = 8;
    if (p[0] & 0x07) {
        if (len < 12) return dec_short(r, bad);
        uint8_t next = (p[0] & 0x04) ? p[11] : 0;
        off = 12;
        for (unsigned i = 0; next != 0; i++) {
            if (i == 8) {
                r->ctx->cnt.too_many_layers++;
                return DEC_MALFORMED;
            }
            if (len - off < 1) return dec_short(r, bad);
            uint32_t el = (uint32_t)p[off] * 4;
            if (el == 0) return dec_bad(bad);
            if (el > len - off) return dec_short(r, bad);
            next = p[off + el - 1];
            off += el;
        }
    }
    return dec_ip_any(r, p + off, len - off);
}

enum dec_result dec_udp_tunnel(struct dec_run *r, uint16_t dport, const uint8_t *p, uint32_t len,
                               bool *is_tunnel)
{
    const struct dec_config *c = &r->ctx->cfg;
    *is_tunnel = true;
    if (!dec_enter(r)) return DEC_MALFORMED;
    for (unsigned i = 0; i < c->n_vxlan_ports; i++)
        if (c->vxlan_ports[i] == dport) return dec_vxlan(r, p, len);
    if (c->geneve_port && dport == c->geneve_port) return dec_geneve(r, p, len);
    if (c->vxlan_gpe_port && dport == c->vxlan_gpe_port) return dec_vxlan_gpe(r, p, len);
    if (c->gtpu_port && dport == c->gtpu_port) return dec_gtpu(r, p, len);
    r->layers--; /* not a tunnel after all */
    *is_tunnel = false;
    return DEC_OK;
}

/* ERSPAN type II (GRE 0x88be with a sequence number): 8-byte header
 * ver(4)=1 vlan(12) cos(3) en(2) t(1) session(10) reserved(12) index(20).
 * Type I (no sequence number) has no header at all. */
static enum dec_result dec_erspan2(struct dec_run *r, bool has_seq, const uint8_t *p, uint32_t len)
{
    r->ctx->cnt.erspan++;
    if (!has_seq) {
        dec_set_tunnel(r, DEC_TUN_ERSPAN, 0);
        return dec_ether(r, p, len);
    }
    if (len < 8) return dec_short(r, &r->ctx->cnt.bad_tunnel);
    if ((p[0] >> 4) != 1) return dec_bad(&r->ctx->cnt.bad_tunnel);
    dec_set_tunnel(r, DEC_TUN_ERSPAN, dec_be16(p + 2) & 0x3ff);
    return dec_ether(r, p + 8, len - 8);
}

/* ERSPAN type III (GRE 0x22eb): 12-byte header ver(4)=2 vlan(12) cos(3)
 * bso(2) t(1) session(10) timestamp(32) sgt(16) p(1) ft(5) hwid(6) d(1)
 * gra(2) o(1); o set adds an 8-byte platform-specific subheader. Frame
 * type 0 is Ethernet, 2 an IP packet. */
static enum dec_result dec_erspan3(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    r->ctx->cnt.erspan++;
    if (len < 12) return dec_short(r, &r->ctx->cnt.bad_tunnel);
    if ((p[0] >> 4) != 2) return dec_bad(&r->ctx->cnt.bad_tunnel);
    uint16_t w = dec_be16(p + 10);
    uint32_t hl = 12 + ((w & 1) ? 8 : 0);
    if (hl > len) return dec_short(r, &r->ctx->cnt.bad_tunnel);
    dec_set_tunnel(r, DEC_TUN_ERSPAN, dec_be16(p + 2) & 0x3ff);
    switch ((w >> 10) & 0x1f) {
    case 0:
        return dec_ether(r, p + hl, len - hl);
    case 2:
        return dec_ip_any(r, p + hl, len - hl);
    default:
        r->ctx->cnt.non_ip++;
        return DEC_SKIP;
    }
}

/* GRE, RFC 2784 §2.1 with the key and sequence extensions of RFC 2890:
 * C(0x8000) R(0x4000, RFC 1701 routing: refused) K(0x2000) S(0x1000),
 * version in the low 3 bits (1 = PPTP's enhanced GRE, not decoded). */
enum dec_result dec_gre(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    uint64_t *bad = &r->ctx->cnt.bad_tunnel;
    if (!dec_enter(r)) return DEC_MALFORMED;
    if (len < 4) return dec_short(r, bad);
    uint16_t fl = dec_be16(p), proto = dec_be16(p + 2);
    if (fl & 0x4000) return dec_bad(bad);
    r->ctx->cnt.gre++;
    if ((fl & 7) != 0) {
        r->ctx->cnt.non_ip++;
        return DEC_SKIP;
    }
    uint32_t off = 4 + ((fl & 0x8000) ? 4 : 0);
    uint32_t key = 0;
    if (fl & 0x2000) {
        if (len < off + 4) return dec_short(r, bad);
        key = dec_be32(p + off);
        off += 4;
    }
    if (fl & 0x1000) off += 4;
    if (len < off) return dec_short(r, bad);
    p += off;
    len -= off;
    switch (proto) {
    case 0x88be:
        return dec_erspan2(r, (fl & 0x1000) != 0, p, len);
    case 0x22eb:
        return dec_erspan3(r, p, len);
    case 0x6558:
        dec_set_tunnel(r, DEC_TUN_GRE, key);
        return dec_ether(r, p, len);
    default:
        dec_set_tunnel(r, DEC_TUN_GRE, key);
        return dec_ethertype(r, proto, p, len);
    }
}

/* MPLS, RFC 3032 §2.1: 4-byte entries up to the bottom-of-stack bit; the
 * payload type is not signalled, so it is guessed from the first nibble
 * (4/6 = IP; 0 = a pseudowire control word, RFC 4385, then Ethernet). */
enum dec_result dec_mpls(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    uint64_t *bad = &r->ctx->cnt.bad_mpls;
    if (!dec_enter(r)) return DEC_MALFORMED;
    r->ctx->cnt.mpls++;
    for (unsigned i = 0;; i++) {
        if (i == DEC_MAX_MPLS_LABELS) {
            r->ctx->cnt.too_many_layers++;
            return DEC_MALFORMED;
        }
        if (len < 4) return dec_short(r, bad);
        bool bos = (p[2] & 0x01) != 0;
        p += 4;
        len -= 4;
        if (bos) break;
    }
    if (len < 1) return dec_short(r, bad);
    switch (p[0] >> 4) {
    case 4:
        return dec_ipv4(r, p, len);
    case 6:
        return dec_ipv6(r, p, len);
    case 0:
        if (len < 4) return dec_short(r, bad);
        return dec_ether(r, p + 4, len - 4);
    default:
        return dec_bad(bad);
    }
}

/* PPPoE session stage, RFC 2516 §4: ver/type 0x11, code 0, session id,
 * length of the PPP frame; then the PPP protocol (0x0021 IPv4, 0x0057
 * IPv6, RFC 1332/5072), possibly compressed to one byte. */
enum dec_result dec_pppoe(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    uint64_t *bad = &r->ctx->cnt.bad_link;
    if (!dec_enter(r)) return DEC_MALFORMED;
    if (len < 8) return dec_short(r, bad);
    if (p[0] != 0x11 || p[1] != 0x00) return dec_bad(bad);
    uint32_t plen = dec_be16(p + 4);
    if (plen < 2) return dec_bad(bad);
    if (plen <= len - 6)
        len = 6 + plen;
    else if (!r->snapped)
        return dec_bad(bad);
    r->ctx->cnt.pppoe++;
    /* Protocol field compression (RFC 1661 §6.5): a one-byte protocol is
     * odd; a two-byte one has an even first byte. */
    uint32_t hl = (p[6] & 1) ? 7 : 8;
    uint16_t proto = (p[6] & 1) ? p[6] : dec_be16(p + 6);
    switch (proto) {
    case 0x0021:
        return dec_ipv4(r, p + hl, len - hl);
    case 0x0057:
        return dec_ipv6(r, p + hl, len - hl);
    default:
        r->ctx->cnt.non_ip++;
        return DEC_SKIP;
    }
}
