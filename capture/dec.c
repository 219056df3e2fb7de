/* dec: link layers, VLAN, IPv4/IPv6 and TCP/UDP (tunnels are in
 * dec_tunnel.c). Every function takes (pointer, captured length) of its
 * layer and checks the length before each read, so nothing here can read
 * past caplen. The one thing to know: the innermost IP/L4 wins — each IP
 * layer overwrites the addresses, so after a tunnel the packet describes
 * the inner connection, and only the tunnel id remembers the outside.
 *
 * Fragments are not decoded into L4 (and returned as DEC_SKIP with
 * ip_fragment set): without reassembly a first fragment would hand TCP
 * reassembly a segment whose tail is missing. */
#include "dec.h"

#include <string.h>

#include "dec_int.h"

/* pcap LINKTYPE_ values (https://www.tcpdump.org/linktypes.html); written
 * out so the decoder does not depend on which DLT_ names pcap.h defines. */
enum {
    LT_NULL = 0,
    LT_EN10MB = 1,
    LT_ARCNET_BSD = 7,
    LT_PPP = 9,
    LT_RAW_A = 12,
    LT_RAW_B = 14,
    LT_PPP_SERIAL = 50,
    LT_RAW = 101,
    LT_C_HDLC = 104,
    LT_IEEE802_11 = 105,
    LT_LOOP = 108,
    LT_ARCNET_LINUX = 129,
    LT_LINUX_SLL = 113,
    LT_RADIOTAP = 127,
    LT_IPV4 = 228,
    LT_IPV6 = 229,
    LT_NFLOG = 239,
    LT_LINUX_SLL2 = 276,
};

enum { PROTO_IPIP = 4, PROTO_TCP = 6, PROTO_UDP = 17, PROTO_IPV6 = 41, PROTO_GRE = 47 };

void dec_config_default(struct dec_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->vxlan_ports[0] = 4789; /* IANA VXLAN, RFC 7348 §5; AWS Traffic Mirroring */
    cfg->n_vxlan_ports = 1;
    cfg->geneve_port = 6081;    /* RFC 8926 §3.3 */
    cfg->vxlan_gpe_port = 4790; /* draft-ietf-nvo3-vxlan-gpe */
    cfg->gtpu_port = 2152;      /* 3GPP TS 29.281 §4.4.2 */
}

void dec_ctx_init(struct dec_ctx *ctx, const struct dec_config *cfg)
{
    memset(ctx, 0, sizeof(*ctx));
    if (cfg)
        ctx->cfg = *cfg;
    else
        dec_config_default(&ctx->cfg);
    if (ctx->cfg.n_vxlan_ports > DEC_MAX_VXLAN_PORTS) ctx->cfg.n_vxlan_ports = DEC_MAX_VXLAN_PORTS;
}

const char *dec_tunnel_name(uint8_t type)
{
    switch (type) {
    case DEC_TUN_NONE:
        return "none";
    case DEC_TUN_VXLAN:
        return "vxlan";
    case DEC_TUN_GENEVE:
        return "geneve";
    case DEC_TUN_GRE:
        return "gre";
    case DEC_TUN_ERSPAN:
        return "erspan";
    }
    return "unknown";
}

/* ---- L4 ---------------------------------------------------------------- */

/* TCP options (RFC 9293 §3.2): only SYNs carry MSS and window scale that
 * the reassembler cares about. A bad option length ends the walk and is
 * counted, but the segment itself is still good. */
static void dec_tcp_options(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    uint32_t i = 0;
    while (i < len) {
        uint8_t kind = p[i];
        if (kind == 0) /* end of option list */
            return;
        if (kind == 1) { /* NOP */
            i++;
            continue;
        }
        if (len - i < 2 || p[i + 1] < 2 || p[i + 1] > len - i) {
            r->ctx->cnt.bad_tcp_options++;
            return;
        }
        uint8_t olen = p[i + 1];
        if (kind == 2 && olen == 4) {
            r->out->mss = dec_be16(p + i + 2);
        } else if (kind == 3 && olen == 3) {
            /* RFC 7323 §2.3: a shift above 14 is used as 14. */
            r->out->wscale = p[i + 2] > 14 ? 14 : p[i + 2];
        }
        i += olen;
    }
}

static enum dec_result dec_tcp(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    struct dec_packet *o = r->out;
    if (len < 20) return dec_short(r, &r->ctx->cnt.bad_tcp);
    uint32_t doff = (uint32_t)(p[12] >> 4) * 4;
    if (doff < 20) return dec_bad(&r->ctx->cnt.bad_tcp);
    if (doff > len) return dec_short(r, &r->ctx->cnt.bad_tcp);
    o->sport = dec_be16(p);
    o->dport = dec_be16(p + 2);
    o->seq = dec_be32(p + 4);
    o->ack = dec_be32(p + 8);
    o->tcp_flags = p[13];
    o->win = dec_be16(p + 14);
    if (o->tcp_flags & DEC_TH_SYN) dec_tcp_options(r, p + 20, doff - 20);
    o->payload = p + doff;
    o->payload_len = len - doff;
    return DEC_OK;
}

/* AYIYA, "Anything In Anything" (draft-massar-v6ops-ayiya-02 §5), the
 * SixXS tunnel broker's IPv6-over-UDP, both ways on port 5072: idlen(4)
 * idtype(4) siglen(4) hshmeth(4) autmeth(4) opcode(4) next-header(8)
 * epoch(32), then an identity of 2^idlen bytes and a signature of
 * 4*siglen bytes. Only opcode 1 (forward) carries a packet; next-header
 * is an IP protocol number (41 IPv6, 4 IPv4). No tunnel id: the identity
 * is the same for every flow of one tunnel end, and the UDP addresses
 * differ per direction for no flow-relevant reason. Anything else on the
 * port (signalling opcodes, other protocols) stays a plain UDP packet. */
enum { DEC_AYIYA_PORT = 5072 };
static enum dec_result dec_ayiya(struct dec_run *r, const uint8_t *p, uint32_t len, bool *is_tunnel)
{
    *is_tunnel = false;
    if (len < 8 || (p[2] & 0x0f) != 1 || (p[3] != PROTO_IPV6 && p[3] != PROTO_IPIP)) return DEC_OK;
    uint32_t hl = 8 + (UINT32_C(1) << (p[0] >> 4)) + (uint32_t)(p[1] >> 4) * 4;
    if (hl >= len) return DEC_OK;
    *is_tunnel = true;
    if (!dec_enter(r)) return DEC_MALFORMED;
    if (p[3] == PROTO_IPV6) return dec_ipv6(r, p + hl, len - hl);
    return dec_ipv4(r, p + hl, len - hl);
}

static enum dec_result dec_udp(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    struct dec_packet *o = r->out;
    if (len < 8) return dec_short(r, &r->ctx->cnt.bad_udp);
    uint32_t ulen = dec_be16(p + 4);
    if (ulen < 8) return dec_bad(&r->ctx->cnt.bad_udp);
    if (ulen <= len)
        len = ulen;
    else if (!o->truncated)
        return dec_bad(&r->ctx->cnt.bad_udp); /* claims more than IP carried */
    o->sport = dec_be16(p);
    o->dport = dec_be16(p + 2);
    o->payload = p + 8;
    o->payload_len = len - 8;
    bool tunnel = false;
    if (o->sport == DEC_AYIYA_PORT || o->dport == DEC_AYIYA_PORT) {
        enum dec_result res = dec_ayiya(r, p + 8, len - 8, &tunnel);
        if (tunnel) return res;
    }
    enum dec_result res = dec_udp_tunnel(r, o->dport, p + 8, len - 8, &tunnel);
    return tunnel ? res : DEC_OK;
}

/* The IP payload of `proto`, after the IP header(s). */
static enum dec_result dec_l4(struct dec_run *r, uint8_t proto, const uint8_t *p, uint32_t len)
{
    r->out->proto = proto;
    switch (proto) {
    case PROTO_TCP:
        return dec_tcp(r, p, len);
    case PROTO_UDP:
        return dec_udp(r, p, len);
    case PROTO_IPIP: /* RFC 2003 */
        return dec_ipv4(r, p, len);
    case PROTO_IPV6: /* 6in4, RFC 4213 §3.5 */
        return dec_ipv6(r, p, len);
    case PROTO_GRE:
        return dec_gre(r, p, len);
    default:
        r->out->payload = p;
        r->out->payload_len = len;
        return DEC_OK;
    }
}

/* ---- L3 ---------------------------------------------------------------- */

/* `total` is what the IP header says the datagram holds; `len` what was
 * captured. Returns the length to use, or 0 with *res set on error. A
 * longer claim is normal when the snaplen cut the packet (flag it), and a
 * lie otherwise. A shorter claim trims Ethernet padding (min frame 60). */
static uint32_t dec_ip_len(struct dec_run *r, uint32_t total, uint32_t len, uint64_t *bad,
                           enum dec_result *res)
{
    if (total <= len) return total;
    if (!r->snapped) {
        *res = dec_bad(bad);
        return 0;
    }
    r->out->truncated = true;
    return len;
}

enum dec_result dec_ipv4(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    struct dec_packet *o = r->out;
    uint64_t *bad = &r->ctx->cnt.bad_ipv4;
    if (!dec_enter(r)) return DEC_MALFORMED;
    if (len < 20) return dec_short(r, bad);
    uint32_t ihl = (uint32_t)(p[0] & 0x0f) * 4;
    if ((p[0] >> 4) != 4 || ihl < 20) /* RFC 791 §3.1: IHL >= 5 words */
        return dec_bad(bad);
    if (ihl > len) return dec_short(r, bad);
    uint32_t total = dec_be16(p + 2);
    if (total == 0) {
        /* A packet captured on the sending host before TCP segmentation
         * offload split it: the stack leaves the length 0 for the NIC.
         * tcpdump and Wireshark then use the captured length; so do we. */
        r->ctx->cnt.ipv4_len_zero++;
        total = len;
    }
    if (total < ihl) return dec_bad(bad);
    enum dec_result res = DEC_OK;
    len = dec_ip_len(r, total, len, bad, &res);
    if (res != DEC_OK) return res;
    o->ip_version = 4;
    o->ttl = p[8];
    o->proto = p[9];
    memset(&o->src, 0, sizeof(o->src));
    memset(&o->dst, 0, sizeof(o->dst));
    o->src.family = o->dst.family = 4;
    memcpy(o->src.a, p + 12, 4);
    memcpy(o->dst.a, p + 16, 4);
    o->l3 = p;
    o->l3_len = len;
    o->sport = o->dport = 0;
    o->ip_fragment = false;
    uint16_t frag = dec_be16(p + 6);
    if ((frag & 0x2000) || (frag & 0x1fff)) { /* MF or a fragment offset */
        o->ip_fragment = true;
        o->frag_id = dec_be16(p + 4);
        o->frag_off = (uint16_t)((frag & 0x1fff) * 8); /* RFC 791 §3.1: units of 8 */
        o->frag_more = (frag & 0x2000) != 0;
        r->ctx->cnt.ipv4_fragments++;
        o->payload = p + ihl;
        o->payload_len = len - ihl;
        return DEC_SKIP;
    }
    return dec_l4(r, p[9], p + ihl, len - ihl);
}

/* Extension headers (RFC 8200 §4; AH RFC 4302 §2.2 counts 4-byte words
 * minus 2). Bounded: more than DEC_MAX_IPV6_EXT is too many layers. */
static enum dec_result dec_ipv6_ext(struct dec_run *r, uint8_t nh, const uint8_t *p, uint32_t len)
{
    uint64_t *bad = &r->ctx->cnt.bad_ipv6;
    uint32_t off = 0;
    const uint8_t *nh_at = r->out->l3 + 6; /* the byte that names header `nh` */
    for (unsigned i = 0;; i++) {
        if (nh != 0 && nh != 43 && nh != 44 && nh != 60 && nh != 51) break;
        if (i == DEC_MAX_IPV6_EXT) {
            r->ctx->cnt.too_many_layers++;
            return DEC_MALFORMED;
        }
        if (len - off < 8) /* every extension header is at least 8 bytes */
            return dec_short(r, bad);
        uint32_t hl = nh == 51 ? ((uint32_t)p[off + 1] + 2) * 4 : ((uint32_t)p[off + 1] + 1) * 8;
        if (nh == 44) { /* fragment header: fixed 8 bytes, RFC 8200 §4.5 */
            uint16_t fo = dec_be16(p + off + 2);
            if ((fo & 0xfff8) || (fo & 1)) {
                r->out->ip_fragment = true;
                r->out->proto = p[off];
                r->out->frag_id = dec_be32(p + off + 4);
                r->out->frag_off = fo & 0xfff8; /* 13 bits in units of 8 */
                r->out->frag_more = fo & 1;
                r->out->frag_nh_off = (uint16_t)(nh_at - r->out->l3);
                r->ctx->cnt.ipv6_fragments++;
                r->out->payload = p + off + 8;
                r->out->payload_len = len - off - 8;
                return DEC_SKIP;
            }
            hl = 8;
        }
        if (hl > len - off) return dec_short(r, bad);
        nh = p[off];
        nh_at = p + off;
        off += hl;
    }
    return dec_l4(r, nh, p + off, len - off);
}

enum dec_result dec_ipv6(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    struct dec_packet *o = r->out;
    uint64_t *bad = &r->ctx->cnt.bad_ipv6;
    if (!dec_enter(r)) return DEC_MALFORMED;
    if (len < 40) return dec_short(r, bad);
    if ((p[0] >> 4) != 6) return dec_bad(bad);
    /* Payload length 0 with a jumbo option (RFC 2675) is not supported: it
     * then reads as an empty datagram, whose headers the loop rejects. */
    uint32_t total = 40 + (uint32_t)dec_be16(p + 4);
    enum dec_result res = DEC_OK;
    len = dec_ip_len(r, total, len, bad, &res);
    if (res != DEC_OK) return res;
    o->ip_version = 6;
    o->ttl = p[7];
    o->proto = p[6];
    o->src.family = o->dst.family = 6;
    memcpy(o->src.a, p + 8, 16);
    memcpy(o->dst.a, p + 24, 16);
    o->l3 = p;
    o->l3_len = len;
    o->sport = o->dport = 0;
    o->ip_fragment = false;
    return dec_ipv6_ext(r, p[6], p + 40, len - 40);
}

enum dec_result dec_ip_any(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    if (len < 1) return dec_short(r, &r->ctx->cnt.bad_link);
    switch (p[0] >> 4) {
    case 4:
        return dec_ipv4(r, p, len);
    case 6:
        return dec_ipv6(r, p, len);
    default:
        r->ctx->cnt.non_ip++;
        return DEC_SKIP;
    }
}

/* ---- L2 ---------------------------------------------------------------- */

static bool dec_is_snap(const uint8_t *p, uint32_t len)
{
    static const uint8_t snap[6] = {0xaa, 0xaa, 0x03, 0, 0, 0};
    return len >= 8 && memcmp(p, snap, 6) == 0;
}

/* An EtherType and what follows it: IP, VLAN tags (802.1Q 0x8100, 802.1ad
 * 0x88a8, and the pre-standard QinQ 0x9100), MPLS, PPPoE session. */
enum dec_result dec_ethertype(struct dec_run *r, uint16_t et, const uint8_t *p, uint32_t len)
{
    struct dec_packet *o = r->out;
    switch (et) {
    case 0x0800:
        return dec_ipv4(r, p, len);
    case 0x86dd:
        return dec_ipv6(r, p, len);
    case 0x8100:
    case 0x88a8:
    case 0x9100:
        if (!dec_enter(r)) return DEC_MALFORMED;
        if (len < 4) return dec_short(r, &r->ctx->cnt.bad_vlan);
        r->ctx->cnt.vlan++;
        if (o->vlan_count < 2) o->vlan[o->vlan_count] = dec_be16(p) & 0x0fff;
        if (o->vlan_count < UINT8_MAX) o->vlan_count++;
        return dec_ethertype(r, dec_be16(p + 2), p + 4, len - 4);
    case 0x8847:
    case 0x8848:
        return dec_mpls(r, p, len);
    case 0x8864:
        return dec_pppoe(r, p, len);
    default:
        /* IEEE 802.3: a length field instead of a type; with LLC/SNAP
         * (RFC 1042: aa aa 03, OUI 0) an EtherType follows. */
        if (et <= 1500 && len < et) return dec_short(r, &r->ctx->cnt.bad_ether);
        if (et <= 1500 && dec_is_snap(p, len)) {
            if (!dec_enter(r)) return DEC_MALFORMED;
            return dec_ethertype(r, dec_be16(p + 6), p + 8, len - 8);
        }
        r->ctx->cnt.non_ip++; /* ARP, LLDP, STP, ... */
        return DEC_SKIP;
    }
}

enum dec_result dec_ether(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    if (!dec_enter(r)) return DEC_MALFORMED;
    if (len < 14) return dec_short(r, &r->ctx->cnt.bad_ether);
    return dec_ethertype(r, dec_be16(p + 12), p + 14, len - 14);
}

/* ---- link types -------------------------------------------------------- */

/* BSD loopback: a 4-byte address family in the byte order of the host
 * that wrote the file (DLT_NULL) or network order (DLT_LOOP). inet6 is 24,
 * 28 or 30 depending on the BSD, 10 on Linux. */
static enum dec_result dec_loop(struct dec_run *r, const uint8_t *p, uint32_t len, bool net)
{
    if (len < 4) return dec_short(r, &r->ctx->cnt.bad_link);
    uint32_t af =
        net ? dec_be32(p) : ((uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | p[1] << 8 | p[0]);
    if (!net && af > 0xffff) /* written by a big-endian host */
        af = dec_be32(p);
    switch (af) {
    case 2:
        return dec_ipv4(r, p + 4, len - 4);
    case 10:
    case 24:
    case 28:
    case 30:
        return dec_ipv6(r, p + 4, len - 4);
    default:
        r->ctx->cnt.non_ip++;
        return DEC_SKIP;
    }
}

/* PPP in HDLC-like framing (RFC 1662): optional ff 03, then a protocol. */
static enum dec_result dec_ppp(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    if (len >= 2 && p[0] == 0xff && p[1] == 0x03) {
        p += 2;
        len -= 2;
    }
    if (len < 1 || (len < 2 && !(p[0] & 1))) return dec_short(r, &r->ctx->cnt.bad_link);
    uint32_t hl = (p[0] & 1) ? 1 : 2; /* protocol field compression, RFC 1661 §6.5 */
    switch (hl == 1 ? p[0] : dec_be16(p)) {
    case 0x0021:
        return dec_ipv4(r, p + hl, len - hl);
    case 0x0057:
        return dec_ipv6(r, p + hl, len - hl);
    default:
        r->ctx->cnt.non_ip++;
        return DEC_SKIP;
    }
}

/* IEEE 802.11 data frames with an LLC/SNAP header (IEEE 802.11-2020 §9.2).
 * Management, control, null-data and protected frames carry nothing we
 * can read. */
static enum dec_result dec_80211(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    if (len < 24) return dec_short(r, &r->ctx->cnt.bad_link);
    uint8_t fc0 = p[0], fc1 = p[1];
    uint8_t type = (fc0 >> 2) & 3, subtype = fc0 >> 4;
    if (type != 2 || (subtype & 0x4) || (fc1 & 0x40)) {
        r->ctx->cnt.non_ip++;
        return DEC_SKIP;
    }
    uint32_t hl = (fc1 & 3) == 3 ? 30 : 24; /* ToDS+FromDS: 4th address */
    if (subtype & 0x8) {                    /* QoS data: QoS control, maybe HT control */
        hl += 2;
        if (fc1 & 0x80) hl += 4;
    }
    if (len < hl + 8) return dec_short(r, &r->ctx->cnt.bad_link);
    const uint8_t *llc = p + hl;
    if (llc[0] != 0xaa || llc[1] != 0xaa || llc[2] != 0x03) {
        r->ctx->cnt.non_ip++;
        return DEC_SKIP;
    }
    return dec_ethertype(r, dec_be16(llc + 6), llc + 8, len - hl - 8);
}

static enum dec_result dec_radiotap(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    if (len < 8) return dec_short(r, &r->ctx->cnt.bad_link);
    uint32_t rlen = (uint32_t)p[2] | (uint32_t)p[3] << 8; /* little-endian, radiotap.org */
    if (p[0] != 0 || rlen < 8) return dec_bad(&r->ctx->cnt.bad_link);
    if (rlen > len) return dec_short(r, &r->ctx->cnt.bad_link);
    /* A trailing FCS (flags 0x10) is cut off by the IP total length. */
    return dec_80211(r, p + rlen, len - rlen);
}

/* NFLOG (LINKTYPE_NFLOG): a 4-byte header, then TLVs whose length and type
 * are in host byte order (libpcap swaps them when reading a foreign file);
 * type 9 (NFULA_PAYLOAD) holds the IP packet. */
static enum dec_result dec_nflog(struct dec_run *r, const uint8_t *p, uint32_t len)
{
    if (len < 4) return dec_short(r, &r->ctx->cnt.bad_link);
    uint8_t family = p[0];
    uint32_t off = 4;
    for (unsigned i = 0; i < 64 && len - off >= 4; i++) {
        uint16_t tlen, type;
        memcpy(&tlen, p + off, 2);
        memcpy(&type, p + off + 2, 2);
        if (tlen < 4 || tlen > len - off) return dec_short(r, &r->ctx->cnt.bad_link);
        if (type == 9) {
            const uint8_t *ip = p + off + 4;
            return family == 10 ? dec_ipv6(r, ip, tlen - 4u) : dec_ipv4(r, ip, tlen - 4u);
        }
        uint32_t step = ((uint32_t)tlen + 3u) & ~3u;
        if (step > len - off) break;
        off += step;
    }
    return dec_short(r, &r->ctx->cnt.bad_link); /* no payload TLV */
}

/* ARCNET (ATA 878.1): source and destination station (one byte each),
 * Linux adds a 2-byte offset (pcap-linktype(7), LINKTYPE_ARCNET_LINUX),
 * then a protocol id. RFC 1051 ids (0xf0 IP, 0xf1 ARP) are followed by
 * the datagram at once; RFC 1201 ids (0xd4 IP, 0xd5 ARP, 0xc4 IPv6 per
 * RFC 2497) by a split flag and a 2-byte sequence number, and an
 * exception packet (split flag 0xff) repeats the header after 4 bytes of
 * padding (RFC 1201 §2.1). A datagram split over several frames is
 * not reassembled: its fragments are skipped as non-IP. */
static enum dec_result dec_arcnet(struct dec_run *r, const uint8_t *p, uint32_t len, bool linux_hdr)
{
    uint64_t *bad = &r->ctx->cnt.bad_link;
    uint32_t off = linux_hdr ? 4 : 2;
    if (len < off + 1) return dec_short(r, bad);
    uint8_t proto = p[off++];
    if (proto == 0xd4 || proto == 0xc4 || proto == 0xd5) {
        if (len < off + 3) return dec_short(r, bad);
        if (p[off] == 0xff) {
            off += 4;
            if (len < off + 4) return dec_short(r, bad);
            proto = p[off++];
        }
        if (p[off] != 0) { /* a fragment of a split datagram */
            r->ctx->cnt.non_ip++;
            return DEC_SKIP;
        }
        off += 3;
    }
    switch (proto) {
    case 0xf0:
    case 0xd4:
        return dec_ipv4(r, p + off, len - off);
    case 0xc4:
        return dec_ipv6(r, p + off, len - off);
    default: /* ARP, RARP, IPX, ... */
        r->ctx->cnt.non_ip++;
        return DEC_SKIP;
    }
}

static enum dec_result dec_link(struct dec_run *r, int linktype, const uint8_t *p, uint32_t len)
{
    uint64_t *bad = &r->ctx->cnt.bad_link;
    switch (linktype) {
    case LT_EN10MB:
        return dec_ether(r, p, len);
    case LT_NULL:
        return dec_loop(r, p, len, false);
    case LT_LOOP:
        return dec_loop(r, p, len, true);
    case LT_RAW_A:
    case LT_RAW_B:
    case LT_RAW:
        return dec_ip_any(r, p, len);
    case LT_IPV4:
        return dec_ipv4(r, p, len);
    case LT_IPV6:
        return dec_ipv6(r, p, len);
    case LT_LINUX_SLL: /* 16 bytes, protocol last (pcap-linktype(7)) */
        if (len < 16) return dec_short(r, bad);
        return dec_ethertype(r, dec_be16(p + 14), p + 16, len - 16);
    case LT_LINUX_SLL2: /* 20 bytes, protocol first */
        if (len < 20) return dec_short(r, bad);
        return dec_ethertype(r, dec_be16(p), p + 20, len - 20);
    case LT_C_HDLC: /* address, control, then an EtherType */
        if (len < 4) return dec_short(r, bad);
        return dec_ethertype(r, dec_be16(p + 2), p + 4, len - 4);
    case LT_PPP:
    case LT_PPP_SERIAL:
        return dec_ppp(r, p, len);
    case LT_IEEE802_11:
        return dec_80211(r, p, len);
    case LT_RADIOTAP:
        return dec_radiotap(r, p, len);
    case LT_NFLOG:
        return dec_nflog(r, p, len);
    case LT_ARCNET_BSD:
    case LT_ARCNET_LINUX:
        return dec_arcnet(r, p, len, linktype == LT_ARCNET_LINUX);
    default:
        r->ctx->cnt.unsupported_linktype++;
        return DEC_SKIP;
    }
}

/* The protocol counters of a DEC_OK packet. */
static void dec_count_l4(struct dec_ctx *ctx, const struct dec_packet *out)
{
    if (out->proto == PROTO_TCP)
        ctx->cnt.tcp++;
    else if (out->proto == PROTO_UDP)
        ctx->cnt.udp++;
    else
        ctx->cnt.other_proto++;
}

enum dec_result dec_reassembled(struct dec_ctx *ctx, const struct dec_packet *frag,
                                const uint8_t *l3, uint32_t len, struct dec_packet *out)
{
    memset(out, 0, sizeof(*out));
    out->ts = frag->ts;
    out->caplen = out->wirelen = len;
    out->wscale = 0xff;
    memcpy(out->vlan, frag->vlan, sizeof(out->vlan));
    out->vlan_count = frag->vlan_count;
    out->tunnel = frag->tunnel; /* outer layers: the flow key must not change */
    struct dec_run r = {.ctx = ctx, .out = out, .layers = 0, .snapped = false};
    enum dec_result res = dec_ip_any(&r, l3, len);
    if (res == DEC_OK) dec_count_l4(ctx, out);
    return res;
}

enum dec_result dec_packet(struct dec_ctx *ctx, int linktype, kw_ts ts, const uint8_t *data,
                           uint32_t caplen, uint32_t wirelen, struct dec_packet *out)
{
    memset(out, 0, sizeof(*out));
    out->ts = ts;
    out->caplen = caplen;
    out->wirelen = wirelen;
    out->wscale = 0xff;
    ctx->cnt.packets++;
    ctx->cnt.bytes += wirelen;
    struct dec_run r = {.ctx = ctx, .out = out, .layers = 0, .snapped = caplen < wirelen};
    enum dec_result res = dec_link(&r, linktype, data, caplen);
    if (res == DEC_MALFORMED) return res;
    if (out->ip_version == 4)
        ctx->cnt.ipv4++;
    else if (out->ip_version == 6)
        ctx->cnt.ipv6++;
    if (res != DEC_OK) return res;
    dec_count_l4(ctx, out);
    if (out->truncated) ctx->cnt.truncated++;
    return res;
}
