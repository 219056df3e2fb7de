/* dec: packet decoders. Pure functions over the captured bytes: link layer
 * (Ethernet, Linux SLL/SLL2, raw IP, BSD loopback), 802.1Q/QinQ, MPLS,
 * IPv4/IPv6 (+ extension headers), TCP/UDP, and the tunnels mirrors use
 * (VXLAN, GENEVE, GRE, ERSPAN I/II/III). The innermost IP/TCP/UDP is what
 * the flow table sees; the outermost tunnel id travels with it.
 *
 * Contract: dec_packet() never reads past caplen and never crashes. A
 * malformed packet returns DEC_MALFORMED (or DEC_SKIP for packets that are
 * fine but carry nothing for us, e.g. ARP) and bumps a named counter.
 * The returned packet borrows the caller's bytes: valid until the next
 * packet is read. */
#ifndef KW_DEC_H
#define KW_DEC_H

#include <stdbool.h>
#include <stdint.h>

#include "kw_addr.h"
#include "kw_time.h"

enum dec_tunnel_type {
    DEC_TUN_NONE = 0,
    DEC_TUN_VXLAN,
    DEC_TUN_GENEVE,
    DEC_TUN_GRE,
    DEC_TUN_ERSPAN,
};

struct dec_tunnel {
    uint8_t type; /* enum dec_tunnel_type; outermost tunnel seen */
    uint32_t id;  /* VNI, GENEVE VNI, GRE key, ERSPAN session id */
};

/* TCP flag bits as on the wire. */
#define DEC_TH_FIN 0x01
#define DEC_TH_SYN 0x02
#define DEC_TH_RST 0x04
#define DEC_TH_PSH 0x08
#define DEC_TH_ACK 0x10
#define DEC_TH_URG 0x20

struct dec_packet {
    kw_ts ts;
    uint32_t caplen;
    uint32_t wirelen;
    uint16_t vlan[2]; /* outer first; 0 when absent */
    uint8_t vlan_count;
    struct dec_tunnel tunnel;
    struct kw_addr src, dst;
    uint8_t ip_version; /* 4 or 6 */
    uint8_t proto;      /* IPPROTO_TCP, IPPROTO_UDP, ... */
    uint8_t ttl;
    bool ip_fragment;   /* a non-first fragment or MF set: not decoded further */
    uint16_t sport, dport;
    /* TCP only */
    uint8_t tcp_flags;
    uint32_t seq, ack;
    uint16_t win;
    uint8_t wscale;     /* from SYN options; 0xff when absent */
    uint16_t mss;       /* from SYN options; 0 when absent */
    /* innermost IP header through end of IP payload (for nDPI) */
    const uint8_t *l3;
    uint32_t l3_len;
    /* L4 payload, trimmed to the IP total length (Ethernet padding removed) */
    const uint8_t *payload;
    uint32_t payload_len;
    bool truncated;     /* caplen < what headers say: payload is the captured part */
    /* IP fragments only (ip_fragment set), for capture/defrag: `payload` is
     * the fragment's data and `proto` the protocol it carries. */
    uint32_t frag_id;     /* IPv4 Identification, IPv6 fragment header id */
    uint16_t frag_off;    /* byte offset of the data in the datagram */
    bool frag_more;       /* MF (IPv4) / M (IPv6): more fragments follow */
    uint16_t frag_nh_off; /* IPv6: offset in l3 of the Next Header byte
                           * that names the fragment header */
};

enum dec_result { DEC_OK = 0, DEC_SKIP, DEC_MALFORMED };

/* Per-decoder anomaly counters; X-macro so the stats record names them. */
#define DEC_COUNTERS(X)                                                      \
    X(packets)                                                               \
    X(bytes)                                                                 \
    X(ipv4)                                                                  \
    X(ipv6)                                                                  \
    X(tcp)                                                                   \
    X(udp)                                                                   \
    X(other_proto)                                                           \
    X(non_ip)                                                                \
    X(vlan)                                                                  \
    X(mpls)                                                                  \
    X(vxlan)                                                                 \
    X(geneve)                                                                \
    X(gre)                                                                   \
    X(erspan)                                                                \
    X(ipv4_fragments)                                                        \
    X(unsupported_linktype)                                                  \
    X(truncated)                                                             \
    X(bad_ether)                                                             \
    X(bad_vlan)                                                              \
    X(bad_mpls)                                                              \
    X(bad_ipv4)                                                              \
    X(bad_ipv6)                                                              \
    X(bad_tcp)                                                               \
    X(bad_udp)                                                               \
    X(bad_tunnel)                                                            \
    X(too_many_layers)                                                       \
    X(ipv6_fragments)                                                        \
    X(pppoe)                                                                 \
    X(bad_link)                                                              \
    X(bad_tcp_options)                                                       \
    X(gtp)                                                                   \
    X(ipv4_len_zero)

struct dec_counters {
#define DEC_CNT_FIELD(n) uint64_t n;
    DEC_COUNTERS(DEC_CNT_FIELD)
#undef DEC_CNT_FIELD
};

#define DEC_MAX_VXLAN_PORTS 8

struct dec_config {
    uint16_t vxlan_ports[DEC_MAX_VXLAN_PORTS]; /* default {4789} */
    uint8_t n_vxlan_ports;
    uint16_t geneve_port;                      /* default 6081 */
    uint16_t vxlan_gpe_port;                   /* default 4790; 0 = off */
    uint16_t gtpu_port;                        /* default 2152; 0 = off */
};

struct dec_ctx {
    struct dec_config cfg;
    struct dec_counters cnt;
};

void dec_config_default(struct dec_config *cfg);
void dec_ctx_init(struct dec_ctx *ctx, const struct dec_config *cfg);

/* linktype is a pcap DLT_* value. */
enum dec_result dec_packet(struct dec_ctx *ctx, int linktype, kw_ts ts, const uint8_t *data,
                           uint32_t caplen, uint32_t wirelen, struct dec_packet *out);

/* Decodes an IP datagram rebuilt by capture/defrag (l3 = its IP header,
 * len = its whole length) as if it had arrived where the fragment `frag`
 * did: time, VLANs and tunnel are the fragment's. `out` must not be
 * `frag`; it borrows l3. Counts the L4 protocol, not packets/bytes (the
 * fragments were counted). */
enum dec_result dec_reassembled(struct dec_ctx *ctx, const struct dec_packet *frag,
                                const uint8_t *l3, uint32_t len, struct dec_packet *out);

const char *dec_tunnel_name(uint8_t type);

#endif
