/* test_dec: the packet decoders on packets built by hand, one table row per
 * layer stack (link types, VLAN/QinQ, MPLS, PPPoE, IPv4 options, IPv6
 * extension headers, TCP options, UDP, VXLAN, GENEVE, GRE, ERSPAN I/II/III,
 * IP-in-IP, 6in4). Each row checks the decoded fields, then every row is cut
 * at every length 0..len-1, both as a snaplen cut (caplen < wirelen) and as
 * a lying packet (caplen == wirelen), and must give a counted anomaly and
 * never read past the cut (run under ASan: the cut copy is heap-exact). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dec.h"
#include "kw_exact.h"

/* ---- a packet builder that prepends headers, innermost first ----------- */

#define PB_CAP 4096
struct pb {
    uint8_t b[PB_CAP];
    size_t start; /* data is b[start .. PB_CAP) */
};

static uint8_t *pb_push(struct pb *p, size_t n)
{
    assert_true(p->start >= n);
    p->start -= n;
    memset(p->b + p->start, 0, n);
    return p->b + p->start;
}

static size_t pb_len(const struct pb *p)
{
    return PB_CAP - p->start;
}

static const uint8_t *pb_data(const struct pb *p)
{
    return p->b + p->start;
}

/* What the decoder is fed: an exact-size heap copy of the built packet
 * (the builder's bytes end inside struct pb, where ASan cannot see an
 * over-read). The copy stays alive until the next one, since the decoded
 * packet points into it. */
static uint8_t *fed;

static const uint8_t *pb_feed(const struct pb *p)
{
    free(fed);
    fed = kw_exact_dup(pb_data(p), PB_CAP - p->start);
    return fed;
}

static void put16(uint8_t *q, uint16_t v)
{
    q[0] = (uint8_t)(v >> 8);
    q[1] = (uint8_t)v;
}

static void put32(uint8_t *q, uint32_t v)
{
    put16(q, (uint16_t)(v >> 16));
    put16(q + 2, (uint16_t)v);
}

static const char PAYLOAD[] = "GET / HTTP/1.1\r\n\r\n";
#define PAYLOAD_LEN (sizeof(PAYLOAD) - 1)

static void pb_init(struct pb *p, const void *payload, size_t n)
{
    p->start = PB_CAP;
    memcpy(pb_push(p, n), payload, n);
}

static void pb_tcp(struct pb *p, uint16_t sport, uint16_t dport, uint32_t seq, uint8_t flags,
                   const uint8_t *opts, size_t optlen)
{
    if (optlen) memcpy(pb_push(p, optlen), opts, optlen);
    uint8_t *h = pb_push(p, 20);
    put16(h, sport);
    put16(h + 2, dport);
    put32(h + 4, seq);
    put32(h + 8, 0x01020304);
    h[12] = (uint8_t)(((20 + optlen) / 4) << 4);
    h[13] = flags;
    put16(h + 14, 512);
}

static void pb_udp(struct pb *p, uint16_t sport, uint16_t dport)
{
    uint16_t len = (uint16_t)(pb_len(p) + 8);
    uint8_t *h = pb_push(p, 8);
    put16(h, sport);
    put16(h + 2, dport);
    put16(h + 4, len);
}

static void pb_ipv4_opt(struct pb *p, uint8_t proto, uint32_t src, uint32_t dst, size_t optlen,
                        uint16_t frag)
{
    size_t hl = 20 + optlen;
    uint16_t total = (uint16_t)(pb_len(p) + hl);
    uint8_t *h = pb_push(p, hl);
    h[0] = (uint8_t)(0x40 | (hl / 4));
    put16(h + 2, total);
    put16(h + 6, frag);
    h[8] = 64;
    h[9] = proto;
    put32(h + 12, src);
    put32(h + 16, dst);
    for (size_t i = 0; i < optlen; i++)
        h[20 + i] = 1; /* NOP options */
}

static void pb_ipv4(struct pb *p, uint8_t proto, uint32_t src, uint32_t dst)
{
    pb_ipv4_opt(p, proto, src, dst, 0, 0x4000 /* DF */);
}

static void pb_ipv6(struct pb *p, uint8_t nh, uint8_t last_byte_src, uint8_t last_byte_dst)
{
    uint16_t plen = (uint16_t)pb_len(p);
    uint8_t *h = pb_push(p, 40);
    h[0] = 0x60;
    put16(h + 4, plen);
    h[6] = nh;
    h[7] = 63;
    h[8] = 0x20, h[9] = 0x01, h[10] = 0x0d, h[11] = 0xb8;
    h[23] = last_byte_src;
    h[24] = 0x20, h[25] = 0x01, h[26] = 0x0d, h[27] = 0xb8;
    h[39] = last_byte_dst;
}

/* An 8-byte IPv6 extension header (or AH with 12 bytes) naming `nh`. */
static void pb_ip6ext(struct pb *p, uint8_t type, uint8_t nh, uint16_t frag)
{
    if (type == 51) { /* AH: (len+2)*4 = 12 bytes */
        uint8_t *h = pb_push(p, 12);
        h[0] = nh;
        h[1] = 1;
        return;
    }
    uint8_t *h = pb_push(p, 8);
    h[0] = nh;
    if (type == 44) put16(h + 2, frag);
}

static void pb_eth(struct pb *p, uint16_t et)
{
    uint8_t *h = pb_push(p, 14);
    memset(h, 0x02, 12);
    put16(h + 12, et);
}

static void pb_vlan(struct pb *p, uint16_t id, uint16_t inner_et)
{
    uint8_t *h = pb_push(p, 4);
    put16(h, (uint16_t)(0x2000 | id)); /* PCP 1, to check it is masked */
    put16(h + 2, inner_et);
}

static void pb_mpls(struct pb *p, uint32_t label, bool bos)
{
    put32(pb_push(p, 4), (label << 12) | (bos ? 0x100u : 0u) | 64u);
}

static void pb_vxlan(struct pb *p, uint32_t vni)
{
    uint8_t *h = pb_push(p, 8);
    h[0] = 0x08;
    put32(h + 4, vni << 8);
}

static void pb_geneve(struct pb *p, uint32_t vni, uint8_t optwords, uint16_t proto)
{
    memset(pb_push(p, optwords * 4u), 0xab, optwords * 4u);
    uint8_t *h = pb_push(p, 8);
    h[0] = optwords;
    put16(h + 2, proto);
    put32(h + 4, vni << 8);
}

static void pb_gre(struct pb *p, uint16_t flags, uint16_t proto, uint32_t key, uint32_t seq)
{
    if (flags & 0x1000) put32(pb_push(p, 4), seq);
    if (flags & 0x2000) put32(pb_push(p, 4), key);
    if (flags & 0x8000) pb_push(p, 4); /* checksum + reserved1 */
    uint8_t *h = pb_push(p, 4);
    put16(h, flags);
    put16(h + 2, proto);
}

static void pb_erspan2(struct pb *p, uint16_t session)
{
    uint8_t *h = pb_push(p, 8);
    put16(h, 0x1000 | 7);                       /* ver 1, vlan 7 */
    put16(h + 2, (uint16_t)(0x0400 | session)); /* t bit noise above the id */
    put32(h + 4, 0x00000005);
}

static void pb_erspan3(struct pb *p, uint16_t session, bool platform)
{
    if (platform) memset(pb_push(p, 8), 0xcd, 8);
    uint8_t *h = pb_push(p, 12);
    put16(h, 0x2000);
    put16(h + 2, (uint16_t)(0xe000 | session));             /* cos bits above the id */
    put32(h + 4, 0xdeadbeef);                               /* timestamp */
    put16(h + 10, (uint16_t)(0x8000 | (platform ? 1 : 0))); /* P=1, FT=0 */
}

/* ---- table ------------------------------------------------------------- */

enum {
    L_NULL = 0,
    L_EN10MB = 1,
    L_RAW = 101,
    L_C_HDLC = 104,
    L_LOOP = 108,
    L_SLL = 113,
    L_RADIOTAP = 127,
    L_IPV4 = 228,
    L_IPV6 = 229,
    L_NFLOG = 239,
    L_SLL2 = 276
};

#define A4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((c) << 8) | (d))

struct row {
    const char *name;
    void (*build)(struct pb *p);
    int linktype;
    enum dec_result res;
    uint8_t ipv;
    uint8_t src_last, dst_last; /* last byte of the innermost addresses */
    uint8_t proto;
    uint16_t sport, dport;
    uint8_t tun;
    uint32_t tun_id;
    uint8_t vlans;
    uint16_t vlan0, vlan1;
    bool has_payload; /* payload == PAYLOAD */
};

static void tcp4(struct pb *p)
{
    pb_init(p, PAYLOAD, PAYLOAD_LEN);
    pb_tcp(p, 40000, 80, 1000, DEC_TH_ACK | DEC_TH_PSH, NULL, 0);
    pb_ipv4(p, 6, A4(10, 0, 0, 1), A4(10, 0, 0, 2));
}

static void tcp6(struct pb *p)
{
    pb_init(p, PAYLOAD, PAYLOAD_LEN);
    pb_tcp(p, 40000, 80, 1000, DEC_TH_ACK | DEC_TH_PSH, NULL, 0);
    pb_ipv6(p, 6, 1, 2);
}

static void b_eth4(struct pb *p)
{
    tcp4(p);
    pb_eth(p, 0x0800);
}
static void b_eth6(struct pb *p)
{
    tcp6(p);
    pb_eth(p, 0x86dd);
}
static void b_raw4(struct pb *p)
{
    tcp4(p);
}
static void b_raw6(struct pb *p)
{
    tcp6(p);
}

static void b_vlan(struct pb *p)
{
    tcp4(p);
    pb_vlan(p, 100, 0x0800);
    pb_eth(p, 0x8100);
}

static void b_qinq(struct pb *p)
{
    tcp4(p);
    pb_vlan(p, 200, 0x0800);
    pb_vlan(p, 100, 0x8100);
    pb_eth(p, 0x88a8);
}

static void b_qinq9100(struct pb *p)
{
    tcp6(p);
    pb_vlan(p, 20, 0x86dd);
    pb_vlan(p, 10, 0x8100);
    pb_eth(p, 0x9100);
}

static void b_mpls(struct pb *p)
{
    tcp4(p);
    pb_mpls(p, 17, true);
    pb_mpls(p, 16, false);
    pb_eth(p, 0x8847);
}

static void b_mpls6(struct pb *p)
{
    tcp6(p);
    pb_mpls(p, 99, true);
    pb_eth(p, 0x8848);
}

static void b_pppoe(struct pb *p)
{
    tcp4(p);
    uint16_t plen = (uint16_t)(pb_len(p) + 2);
    put16(pb_push(p, 2), 0x0021);
    uint8_t *h = pb_push(p, 6);
    h[0] = 0x11;
    put16(h + 2, 0x1234);
    put16(h + 4, plen);
    pb_eth(p, 0x8864);
}

static void b_ipv4_opts_padded(struct pb *p)
{
    /* A 12-byte segment and 8 bytes of IP options; the Ethernet frame is
     * padded to 60 bytes + junk the decoder must not count as payload. */
    struct pb q;
    pb_init(&q, PAYLOAD, 12);
    pb_tcp(&q, 1234, 8080, 7, DEC_TH_ACK, NULL, 0);
    pb_ipv4_opt(&q, 6, A4(192, 168, 1, 1), A4(192, 168, 1, 2), 8, 0);
    pb_eth(&q, 0x0800);
    size_t n = pb_len(&q);
    p->start = PB_CAP - n - 16;
    memcpy(p->b + p->start, pb_data(&q), n);
    memset(p->b + p->start + n, 0xee, 16);
}

static void b_ipv6_ext(struct pb *p)
{
    pb_init(p, PAYLOAD, PAYLOAD_LEN);
    pb_tcp(p, 40000, 80, 1000, DEC_TH_ACK, NULL, 0);
    pb_ip6ext(p, 60, 6, 0);  /* destination options -> TCP */
    pb_ip6ext(p, 51, 60, 0); /* AH -> dst opts */
    pb_ip6ext(p, 44, 51, 0); /* atomic fragment (offset 0, M 0) -> AH */
    pb_ip6ext(p, 43, 44, 0); /* routing -> fragment */
    pb_ip6ext(p, 0, 43, 0);  /* hop-by-hop -> routing */
    pb_ipv6(p, 0, 1, 2);
    pb_eth(p, 0x86dd);
}

static void b_syn_opts(struct pb *p)
{
    static const uint8_t opts[] = {2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 0, 0};
    pb_init(p, "", 0);
    pb_tcp(p, 40000, 80, 0xfffffff0u, DEC_TH_SYN, opts, sizeof(opts));
    pb_ipv4(p, 6, A4(10, 0, 0, 1), A4(10, 0, 0, 2));
    pb_eth(p, 0x0800);
}

static void b_udp(struct pb *p)
{
    pb_init(p, PAYLOAD, PAYLOAD_LEN);
    pb_udp(p, 5353, 53);
    pb_ipv4(p, 17, A4(10, 0, 0, 1), A4(10, 0, 0, 2));
    pb_eth(p, 0x0800);
}

/* Outer underlay: Ethernet + IPv4 100.64.0.1 -> 100.64.0.2. */
static void underlay4(struct pb *p, uint8_t proto)
{
    pb_ipv4(p, proto, A4(100, 64, 0, 1), A4(100, 64, 0, 2));
    pb_eth(p, 0x0800);
}

static void b_vxlan(struct pb *p)
{
    b_vlan(p); /* the mirrored frame keeps its VLAN tag */
    pb_vxlan(p, 4242);
    pb_udp(p, 51000, 4789);
    underlay4(p, 17);
}

static void b_geneve(struct pb *p)
{
    b_eth6(p);
    pb_geneve(p, 77, 3, 0x6558);
    pb_udp(p, 51000, 6081);
    underlay4(p, 17);
}

static void b_geneve_ip(struct pb *p)
{
    tcp4(p);
    pb_geneve(p, 0xabcdef, 0, 0x0800);
    pb_udp(p, 51000, 6081);
    pb_ipv6(p, 17, 0xaa, 0xbb);
    pb_eth(p, 0x86dd);
}

static void b_gre_ip(struct pb *p)
{
    tcp4(p);
    pb_gre(p, 0xb000, 0x0800, 9, 55); /* C, K, S */
    underlay4(p, 47);
}

static void b_gre_teb(struct pb *p)
{
    b_eth4(p);
    pb_gre(p, 0x2000, 0x6558, 0x01020304, 0);
    underlay4(p, 47);
}

static void b_erspan1(struct pb *p)
{
    b_eth4(p);
    pb_gre(p, 0x0000, 0x88be, 0, 0);
    underlay4(p, 47);
}

static void b_erspan2(struct pb *p)
{
    b_qinq(p);
    pb_erspan2(p, 123);
    pb_gre(p, 0x1000, 0x88be, 0, 1);
    underlay4(p, 47);
}

static void b_erspan3(struct pb *p)
{
    b_eth6(p);
    pb_erspan3(p, 321, true);
    pb_gre(p, 0x1000, 0x22eb, 0, 1);
    underlay4(p, 47);
}

static void b_erspan_vxlan(struct pb *p)
{
    /* Like arkime-gre-erspan-vxlan.pcap: the outermost tunnel names it. */
    b_vxlan(p);
    pb_erspan2(p, 20);
    pb_gre(p, 0x1000, 0x88be, 0, 1);
    underlay4(p, 47);
}

static void b_ipip(struct pb *p)
{
    tcp4(p);
    underlay4(p, 4);
}

static void b_6in4(struct pb *p)
{
    tcp6(p);
    underlay4(p, 41);
}

static void b_sll(struct pb *p)
{
    tcp4(p);
    uint8_t *h = pb_push(p, 16);
    put16(h + 2, 1); /* ARPHRD_ETHER */
    put16(h + 4, 6);
    put16(h + 14, 0x0800);
}

static void b_sll2(struct pb *p)
{
    tcp6(p);
    uint8_t *h = pb_push(p, 20);
    put16(h, 0x86dd);
    put16(h + 8, 1);
    h[11] = 6;
}

static void b_null(struct pb *p)
{
    tcp4(p);
    uint8_t *h = pb_push(p, 4);
    h[0] = 2; /* AF_INET, little-endian host */
}

static void b_null6_be(struct pb *p)
{
    tcp6(p);
    put32(pb_push(p, 4), 30); /* AF_INET6 on macOS, big-endian host */
}

static void b_loop(struct pb *p)
{
    tcp4(p);
    put32(pb_push(p, 4), 2);
}

static void b_chdlc(struct pb *p)
{
    tcp4(p);
    uint8_t *h = pb_push(p, 4);
    h[0] = 0x0f;
    put16(h + 2, 0x0800);
}

static void b_radiotap(struct pb *p)
{
    tcp4(p);
    uint8_t *llc = pb_push(p, 8);
    llc[0] = 0xaa, llc[1] = 0xaa, llc[2] = 0x03;
    put16(llc + 6, 0x0800);
    uint8_t *w = pb_push(p, 26); /* QoS data, FromDS */
    w[0] = 0x88;
    w[1] = 0x02;
    uint8_t *rt = pb_push(p, 8);
    rt[2] = 8; /* length, little-endian */
}

static void b_nflog(struct pb *p)
{
    tcp4(p);
    uint16_t tl = (uint16_t)(pb_len(p) + 4);
    uint8_t *t = pb_push(p, 4);
    memcpy(t, &tl, 2); /* host order, as libpcap hands it over */
    uint16_t ty = 9;
    memcpy(t + 2, &ty, 2);
    uint8_t *pre = pb_push(p, 8); /* a prefix TLV before the payload */
    uint16_t pl = 8, pt = 10;
    memcpy(pre, &pl, 2);
    memcpy(pre + 2, &pt, 2);
    uint8_t *h = pb_push(p, 4);
    h[0] = 2; /* AF_INET */
}

static void b_gtpu(struct pb *p)
{
    tcp4(p);
    uint8_t *ext = pb_push(p, 4); /* one extension header, then "no more" */
    ext[0] = 1;
    ext[3] = 0;
    uint16_t plen = (uint16_t)(pb_len(p) + 4);
    uint8_t *h = pb_push(p, 12);
    h[0] = 0x34; /* version 1, PT, E */
    h[1] = 0xff; /* G-PDU */
    put16(h + 2, plen);
    put32(h + 4, 0xabcdef01);
    h[11] = 0x85; /* next extension type: PDU session container */
    pb_udp(p, 2152, 2152);
    underlay4(p, 17);
}

static void b_llc_snap(struct pb *p)
{
    tcp4(p);
    uint16_t len = (uint16_t)(pb_len(p) + 8);
    uint8_t *llc = pb_push(p, 8);
    llc[0] = 0xaa, llc[1] = 0xaa, llc[2] = 0x03;
    put16(llc + 6, 0x0800);
    pb_eth(p, len); /* 802.3 length field */
}

/* AYIYA (draft-massar-v6ops-ayiya-02 §5), as the SixXS broker sends it
 * (zeek-tunnels-ayiya3.pcap): idlen 4 (16-byte identity), siglen 5
 * (20-byte SHA-1 signature), opcode 1 forward, next header 41 IPv6; the
 * broker's port 5072 is the source here. */
static void b_ayiya(struct pb *p)
{
    tcp6(p);
    uint8_t *h = pb_push(p, 8 + 16 + 20);
    memset(h, 0xee, 8 + 16 + 20);
    h[0] = 0x41, h[1] = 0x52, h[2] = 0x11, h[3] = 41;
    pb_udp(p, 5072, 53794);
    underlay4(p, 17);
}

/* Linux ARCNET (LINKTYPE_ARCNET_LINUX 129): src, dst, 2-byte offset,
 * protocol 0xf0 (RFC 1051 IP), as in tcpdump's
 * arcnet-rfc1051-arp-icmp-http.pcap; and RFC 1201 IP (0xd4) with split
 * flag 0 and a sequence number. */
static void b_arcnet1051(struct pb *p)
{
    tcp4(p);
    uint8_t *h = pb_push(p, 5);
    h[0] = 0xbe, h[1] = 0x50, h[2] = 0xab, h[3] = 0x08, h[4] = 0xf0;
}
static void b_arcnet1201(struct pb *p)
{
    tcp4(p);
    uint8_t *h = pb_push(p, 8);
    h[0] = 0xbe, h[1] = 0x50, h[2] = 0, h[3] = 0, h[4] = 0xd4, h[5] = 0, h[6] = 0x12, h[7] = 0x34;
}

static const struct row ROWS[] = {
    {"ayiya ipv6", b_ayiya, L_EN10MB, DEC_OK, 6, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"arcnet rfc1051", b_arcnet1051, 129, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"arcnet rfc1201", b_arcnet1201, 129, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"eth ipv4 tcp", b_eth4, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"eth ipv6 tcp", b_eth6, L_EN10MB, DEC_OK, 6, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"raw ipv4", b_raw4, L_RAW, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"raw ipv6", b_raw6, L_RAW, DEC_OK, 6, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"dlt ipv4", b_raw4, L_IPV4, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"dlt ipv6", b_raw6, L_IPV6, DEC_OK, 6, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"raw 12", b_raw4, 12, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"802.1Q", b_vlan, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 1, 100, 0, true},
    {"QinQ 88a8", b_qinq, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 2, 100, 200, true},
    {"QinQ 9100 v6", b_qinq9100, L_EN10MB, DEC_OK, 6, 1, 2, 6, 40000, 80, 0, 0, 2, 10, 20, true},
    {"MPLS 2 labels", b_mpls, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"MPLS v6", b_mpls6, L_EN10MB, DEC_OK, 6, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"PPPoE", b_pppoe, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"ipv4 options+pad", b_ipv4_opts_padded, L_EN10MB, DEC_OK, 4, 1, 2, 6, 1234, 8080, 0, 0, 0, 0,
     0, false},
    {"ipv6 ext hdrs", b_ipv6_ext, L_EN10MB, DEC_OK, 6, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"syn options", b_syn_opts, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, false},
    {"udp", b_udp, L_EN10MB, DEC_OK, 4, 1, 2, 17, 5353, 53, 0, 0, 0, 0, 0, true},
    {"vxlan", b_vxlan, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, DEC_TUN_VXLAN, 4242, 1, 100, 0,
     true},
    {"geneve eth", b_geneve, L_EN10MB, DEC_OK, 6, 1, 2, 6, 40000, 80, DEC_TUN_GENEVE, 77, 0, 0, 0,
     true},
    {"geneve ip over v6", b_geneve_ip, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, DEC_TUN_GENEVE,
     0xabcdef, 0, 0, 0, true},
    {"gre C K S ip", b_gre_ip, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, DEC_TUN_GRE, 9, 0, 0, 0,
     true},
    {"gre teb", b_gre_teb, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, DEC_TUN_GRE, 0x01020304, 0, 0,
     0, true},
    {"erspan I", b_erspan1, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, DEC_TUN_ERSPAN, 0, 0, 0, 0,
     true},
    {"erspan II", b_erspan2, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, DEC_TUN_ERSPAN, 123, 2, 100,
     200, true},
    {"erspan III", b_erspan3, L_EN10MB, DEC_OK, 6, 1, 2, 6, 40000, 80, DEC_TUN_ERSPAN, 321, 0, 0, 0,
     true},
    {"erspan+vxlan", b_erspan_vxlan, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, DEC_TUN_ERSPAN, 20, 1,
     100, 0, true},
    {"ipip", b_ipip, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"6in4", b_6in4, L_EN10MB, DEC_OK, 6, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"sll", b_sll, L_SLL, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"sll2", b_sll2, L_SLL2, DEC_OK, 6, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"null le", b_null, L_NULL, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"null be v6", b_null6_be, L_NULL, DEC_OK, 6, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"loop", b_loop, L_LOOP, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"chdlc", b_chdlc, L_C_HDLC, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"radiotap", b_radiotap, L_RADIOTAP, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"gtp-u", b_gtpu, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"802.3 llc/snap", b_llc_snap, L_EN10MB, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
    {"nflog", b_nflog, L_NFLOG, DEC_OK, 4, 1, 2, 6, 40000, 80, 0, 0, 0, 0, 0, true},
};

static uint64_t anomalies(const struct dec_counters *c)
{
    return c->truncated + c->bad_ether + c->bad_vlan + c->bad_mpls + c->bad_ipv4 + c->bad_ipv6 +
           c->bad_tcp + c->bad_udp + c->bad_tunnel + c->too_many_layers + c->bad_link +
           c->unsupported_linktype;
}

static void check_row(const struct row *w, const struct dec_packet *d)
{
    uint8_t addr_len = w->ipv == 4 ? 4 : 16;
    assert_int_equal(d->ip_version, w->ipv);
    assert_int_equal(d->src.family, w->ipv);
    assert_int_equal(d->src.a[addr_len - 1], w->src_last);
    assert_int_equal(d->dst.a[addr_len - 1], w->dst_last);
    assert_int_equal(d->proto, w->proto);
    assert_int_equal(d->sport, w->sport);
    assert_int_equal(d->dport, w->dport);
    assert_int_equal(d->tunnel.type, w->tun);
    assert_int_equal(d->tunnel.id, w->tun_id);
    assert_int_equal(d->vlan_count, w->vlans);
    assert_int_equal(d->vlan[0], w->vlan0);
    assert_int_equal(d->vlan[1], w->vlan1);
    assert_false(d->truncated);
    assert_false(d->ip_fragment);
    if (w->has_payload) {
        assert_int_equal(d->payload_len, PAYLOAD_LEN);
        assert_memory_equal(d->payload, PAYLOAD, PAYLOAD_LEN);
    }
    if (w->proto == 6 && w->has_payload) {
        assert_int_equal(d->seq, 1000);
        assert_int_equal(d->ack, 0x01020304);
        assert_int_equal(d->tcp_flags & ~DEC_TH_PSH, DEC_TH_ACK);
        assert_int_equal(d->win, 512);
        assert_int_equal(d->wscale, 0xff);
        assert_int_equal(d->mss, 0);
    }
    /* l3 is the innermost IP header, through the end of the IP payload. */
    assert_non_null(d->l3);
    assert_int_equal(d->l3[0] >> 4, w->ipv);
    assert_ptr_equal(d->l3 + d->l3_len, d->payload + d->payload_len);
}

static void test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ROWS) / sizeof(ROWS[0]); i++) {
        const struct row *w = &ROWS[i];
        struct pb p;
        w->build(&p);
        struct dec_ctx ctx;
        dec_ctx_init(&ctx, NULL);
        struct dec_packet d;
        uint32_t n = (uint32_t)pb_len(&p);
        print_message("row %s (%u bytes)\n", w->name, n);
        enum dec_result r = dec_packet(&ctx, w->linktype, 42, pb_feed(&p), n, n, &d);
        assert_int_equal(r, w->res);
        assert_int_equal(d.ts, 42);
        check_row(w, &d);
        assert_int_equal(anomalies(&ctx.cnt), 0);
        assert_int_equal(ctx.cnt.packets, 1);
        assert_int_equal(w->ipv == 4 ? ctx.cnt.ipv4 : ctx.cnt.ipv6, 1);
    }
}

/* Every row cut at every length: as a snaplen cut (wirelen = full length)
 * and as a packet that lies about its size (wirelen = caplen). Each cut
 * must be an anomaly that is counted: DEC_MALFORMED, or DEC_OK with the
 * truncated flag (headers whole, payload cut by the snaplen). The cut is a
 * heap copy of exactly `cut` bytes, so ASan catches any overread. */
static void test_truncation(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ROWS) / sizeof(ROWS[0]); i++) {
        const struct row *w = &ROWS[i];
        struct pb p;
        w->build(&p);
        uint32_t n = (uint32_t)pb_len(&p);
        if (w->build == b_ipv4_opts_padded)
            n -= 16; /* cut inside the padding is not an anomaly; test the frame */
        for (uint32_t cut = 0; cut < n; cut++) {
            for (int lie = 0; lie < 2; lie++) {
                uint8_t *copy = malloc(cut ? cut : 1);
                assert_non_null(copy);
                memcpy(copy, pb_data(&p), cut);
                struct dec_ctx ctx;
                dec_ctx_init(&ctx, NULL);
                struct dec_packet d;
                enum dec_result r = dec_packet(&ctx, w->linktype, 0, copy, cut, lie ? cut : n, &d);
                if (r == DEC_OK) assert_true(d.truncated);
                if (anomalies(&ctx.cnt) == 0 || (lie && r != DEC_MALFORMED))
                    fail_msg("row %s cut at %u (lie %d): result %d, no counted anomaly", w->name,
                             cut, lie, r);
                if (r == DEC_OK) /* payload stays inside the captured bytes */
                    assert_true(d.payload + d.payload_len <= copy + cut);
                free(copy);
            }
        }
    }
}

static void decode1(struct pb *p, int lt, struct dec_ctx *ctx, struct dec_packet *d,
                    enum dec_result want)
{
    dec_ctx_init(ctx, NULL);
    uint32_t n = (uint32_t)pb_len(p);
    assert_int_equal(dec_packet(ctx, lt, 0, pb_feed(p), n, n, d), want);
}

static void test_details(void **state)
{
    (void)state;
    struct pb p;
    struct dec_ctx c;
    struct dec_packet d;

    /* IPv4 options and Ethernet padding: the payload is 12 bytes, not 28. */
    b_ipv4_opts_padded(&p);
    decode1(&p, L_EN10MB, &c, &d, DEC_OK);
    assert_int_equal(d.payload_len, 12);
    assert_memory_equal(d.payload, PAYLOAD, 12);
    assert_int_equal(d.l3_len, 20 + 8 + 20 + 12);
    assert_int_equal(d.seq, 7);

    /* SYN options: MSS 1460, window scale 7, sequence near the wrap. */
    b_syn_opts(&p);
    decode1(&p, L_EN10MB, &c, &d, DEC_OK);
    assert_int_equal(d.mss, 1460);
    assert_int_equal(d.wscale, 7);
    assert_int_equal(d.seq, 0xfffffff0u);
    assert_int_equal(d.tcp_flags, DEC_TH_SYN);
    assert_int_equal(d.payload_len, 0);

    /* A bad option length stops the walk, is counted, keeps the segment. */
    static const uint8_t badopt[] = {2, 4, 0x05, 0xb4, 3, 9, 1, 1};
    pb_init(&p, "", 0);
    pb_tcp(&p, 1, 2, 3, DEC_TH_SYN, badopt, sizeof(badopt));
    pb_ipv4(&p, 6, 1, 2);
    decode1(&p, L_RAW, &c, &d, DEC_OK);
    assert_int_equal(d.mss, 1460);
    assert_int_equal(d.wscale, 0xff);
    assert_int_equal(c.cnt.bad_tcp_options, 1);

    /* IPv4 fragments: first (MF) and later (offset) are not decoded. */
    uint16_t frags[] = {0x2000, 0x0010, 0x0011 | 0x2000};
    for (size_t i = 0; i < 3; i++) {
        pb_init(&p, PAYLOAD, PAYLOAD_LEN);
        pb_tcp(&p, 1, 2, 3, DEC_TH_ACK, NULL, 0);
        pb_ipv4_opt(&p, 6, 1, 2, 0, frags[i]);
        decode1(&p, L_RAW, &c, &d, DEC_SKIP);
        assert_true(d.ip_fragment);
        assert_int_equal(d.sport, 0);
        assert_int_equal(c.cnt.ipv4_fragments, 1);
        assert_int_equal(c.cnt.tcp, 0);
    }
    /* IPv6 fragment header with an offset. */
    pb_init(&p, PAYLOAD, PAYLOAD_LEN);
    pb_ip6ext(&p, 44, 6, 0x0100);
    pb_ipv6(&p, 44, 1, 2);
    decode1(&p, L_RAW, &c, &d, DEC_SKIP);
    assert_true(d.ip_fragment);
    assert_int_equal(c.cnt.ipv6_fragments, 1);

    /* ARP and an unknown link type are skipped, and counted. */
    pb_init(&p, "0123456789012345678901234567", 28);
    pb_eth(&p, 0x0806);
    decode1(&p, L_EN10MB, &c, &d, DEC_SKIP);
    assert_int_equal(c.cnt.non_ip, 1);
    decode1(&p, 147 /* LINKTYPE_USER0: private, never decodable */, &c, &d, DEC_SKIP);
    assert_int_equal(c.cnt.unsupported_linktype, 1);
    /* ARCnet (BSD header, LINKTYPE 7) is decoded now: protocol 0x32 is
     * not IP, so skipped as non-IP rather than as an unknown link. */
    decode1(&p, 7, &c, &d, DEC_SKIP);
    assert_int_equal(c.cnt.unsupported_linktype, 0);
    assert_int_equal(c.cnt.non_ip, 1);

    /* A configured VXLAN port; the default one is then plain UDP. */
    b_vxlan(&p);
    struct dec_config cfg;
    dec_config_default(&cfg);
    cfg.vxlan_ports[0] = 8472; /* Linux's historic VXLAN port */
    dec_ctx_init(&c, &cfg);
    uint32_t n = (uint32_t)pb_len(&p);
    assert_int_equal(dec_packet(&c, L_EN10MB, 0, pb_feed(&p), n, n, &d), DEC_OK);
    assert_int_equal(d.proto, 17);
    assert_int_equal(d.dport, 4789);
    assert_int_equal(d.tunnel.type, DEC_TUN_NONE);
    assert_int_equal(c.cnt.vxlan, 0);

    /* VXLAN without the I flag is a bad tunnel. */
    b_vxlan(&p);
    p.b[p.start + 14 + 20 + 8] = 0;
    decode1(&p, L_EN10MB, &c, &d, DEC_MALFORMED);
    assert_int_equal(c.cnt.bad_tunnel, 1);

    /* GTP-U decapsulates without a tunnel id (TEIDs differ per direction). */
    b_gtpu(&p);
    decode1(&p, L_EN10MB, &c, &d, DEC_OK);
    assert_int_equal(c.cnt.gtp, 1);
    assert_int_equal(d.tunnel.type, DEC_TUN_NONE);

    /* IPv4 total length 0 (captured before TSO): the captured length. */
    tcp4(&p);
    p.b[p.start + 2] = p.b[p.start + 3] = 0;
    decode1(&p, L_RAW, &c, &d, DEC_OK);
    assert_int_equal(c.cnt.ipv4_len_zero, 1);
    assert_int_equal(d.payload_len, PAYLOAD_LEN);

    /* GRE with the RFC 1701 routing bit is refused. */
    tcp4(&p);
    pb_gre(&p, 0x4000, 0x0800, 0, 0);
    underlay4(&p, 47);
    decode1(&p, L_EN10MB, &c, &d, DEC_MALFORMED);
    assert_int_equal(c.cnt.bad_tunnel, 1);
}

static void test_layer_limits(void **state)
{
    (void)state;
    struct pb p;
    struct dec_ctx c;
    struct dec_packet d;

    /* 9 MPLS labels: over the label cap. */
    tcp4(&p);
    pb_mpls(&p, 1, true);
    for (int i = 0; i < 8; i++)
        pb_mpls(&p, 2, false);
    pb_eth(&p, 0x8847);
    decode1(&p, L_EN10MB, &c, &d, DEC_MALFORMED);
    assert_int_equal(c.cnt.too_many_layers, 1);

    /* 40 VLAN tags: over the layer budget. */
    tcp4(&p);
    pb_vlan(&p, 1, 0x0800);
    for (int i = 0; i < 39; i++)
        pb_vlan(&p, 1, 0x8100);
    pb_eth(&p, 0x8100);
    decode1(&p, L_EN10MB, &c, &d, DEC_MALFORMED);
    assert_int_equal(c.cnt.too_many_layers, 1);

    /* IPv4-in-IPv4 nested 30 times. */
    tcp4(&p);
    for (int i = 0; i < 30; i++)
        pb_ipv4(&p, 4, 1, 2);
    decode1(&p, L_RAW, &c, &d, DEC_MALFORMED);
    assert_int_equal(c.cnt.too_many_layers, 1);

    /* 9 IPv6 extension headers. */
    tcp6(&p);
    pb_ip6ext(&p, 60, 6, 0);
    for (int i = 0; i < 8; i++)
        pb_ip6ext(&p, 60, 60, 0);
    pb_ipv6(&p, 60, 1, 2);
    decode1(&p, L_RAW, &c, &d, DEC_MALFORMED);
    assert_int_equal(c.cnt.too_many_layers, 1);
}

static void test_misc(void **state)
{
    (void)state;
    assert_string_equal(dec_tunnel_name(DEC_TUN_VXLAN), "vxlan");
    assert_string_equal(dec_tunnel_name(DEC_TUN_ERSPAN), "erspan");
    assert_string_equal(dec_tunnel_name(DEC_TUN_NONE), "none");
    struct dec_config cfg;
    dec_config_default(&cfg);
    assert_int_equal(cfg.n_vxlan_ports, 1);
    assert_int_equal(cfg.vxlan_ports[0], 4789);
    assert_int_equal(cfg.geneve_port, 6081);
    /* IPv4 with a total length larger than the frame, not snapped: a lie. */
    struct pb p;
    tcp4(&p);
    p.b[p.start + 3] += 10;
    struct dec_ctx c;
    struct dec_packet d;
    decode1(&p, L_RAW, &c, &d, DEC_MALFORMED);
    assert_int_equal(c.cnt.bad_ipv4, 1);
    /* IHL below 5. */
    tcp4(&p);
    p.b[p.start] = 0x44;
    decode1(&p, L_RAW, &c, &d, DEC_MALFORMED);
    assert_int_equal(c.cnt.bad_ipv4, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),    cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_details), cmocka_unit_test(test_layer_limits),
        cmocka_unit_test(test_misc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
