/* sim_pkt: frames on the wire and the pcap files they go to. Builds
 * Ethernet/IPv4/IPv6 + TCP/UDP frames with valid checksums (RFC 791, RFC 8200
 * §8.1, RFC 9293 §3.1), wraps them as a mirror delivers them (802.1Q, QinQ,
 * VXLAN, GENEVE, GRE/ERSPAN II), and writes classic pcap (µs, LINKTYPE
 * ETHERNET). The one thing to know: packets are pushed in any time order and
 * held in a min-heap; sim_out_flush(out, t) writes everything older than t,
 * so a generator that starts connections in time order can flush as it goes
 * and memory stays bounded. */
#ifndef SIM_PKT_H
#define SIM_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SIM_MAX_FRAME 2048

struct sim_ip {
    uint8_t v6; /* 0 = IPv4 (a[0..3]), 1 = IPv6 */
    uint8_t a[16];
};

struct sim_ep {
    struct sim_ip ip;
    uint16_t port;
    uint8_t mac[6];
};

enum sim_encap_kind {
    SIM_ENCAP_NONE,
    SIM_ENCAP_VLAN,
    SIM_ENCAP_QINQ,
    SIM_ENCAP_VXLAN,
    SIM_ENCAP_GENEVE,
    SIM_ENCAP_ERSPAN
};

struct sim_encap {
    enum sim_encap_kind kind;
    uint32_t id;    /* VLAN id, VNI or ERSPAN session id */
    uint32_t inner; /* inner VLAN for QinQ */
};

int sim_encap_parse(const char *s, struct sim_encap *e);
int sim_ip_parse(const char *s, struct sim_ip *ip);
void sim_ip_format(const struct sim_ip *ip, char *buf, size_t n);

/* TCP flags (RFC 9293 §3.1). */
enum { SIM_FIN = 0x01, SIM_SYN = 0x02, SIM_RST = 0x04, SIM_PSH = 0x08, SIM_ACK = 0x10 };

struct sim_tcp_hdr {
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t win;
    const uint8_t *opt; /* multiple of 4 bytes */
    size_t optlen;
    uint16_t ip_id;
    uint8_t ttl;
};

/* Ethernet + IP + TCP into buf (SIM_MAX_FRAME); returns the frame length. */
size_t sim_frame_tcp(uint8_t *buf, const struct sim_ep *src, const struct sim_ep *dst,
                     const struct sim_tcp_hdr *h, const uint8_t *payload, size_t plen);
size_t sim_frame_udp(uint8_t *buf, const struct sim_ep *src, const struct sim_ep *dst,
                     uint16_t ip_id, const uint8_t *payload, size_t plen);

/* RFC 1071 one's complement sum helpers (exposed for dense mode). */
uint32_t sim_sum(const uint8_t *p, size_t n, uint32_t acc);
uint16_t sim_fold(uint32_t acc);

struct sim_pend;

/* --split site: frames to or from these networks go to <name>-a.pcap, the
 * rest to <name>-b.pcap (two mirror ports, one per site). */
#define SIM_SITE_NETS 16
struct sim_site_net {
    struct sim_ip base;
    int prefix;
};

struct sim_out {
    char dir[512];
    char name[64]; /* "capture" -> capture.pcap, or capture-YYYY-MM-DD.pcap */
    bool split_day;
    bool split_site;
    struct sim_site_net site[SIM_SITE_NETS];
    int nsite;
    FILE *fb; /* split_site: <name>-b.pcap (f is <name>-a.pcap) */
    struct sim_encap encap;
    FILE *f;
    int64_t day; /* UTC day number of the open file when split */
    struct sim_pend *heap;
    size_t n, cap;
    uint64_t seq; /* push order: ties in time keep it */
    uint32_t gre_seq;
    uint64_t packets, bytes;
    int err;
};

int sim_out_open(struct sim_out *o, const char *dir, const char *name, bool split_day,
                 const struct sim_encap *encap);
/* Queue a frame seen at ts (µs since the epoch). */
void sim_out_push(struct sim_out *o, int64_t ts, const uint8_t *frame, size_t len);
/* Write every queued frame with ts < before (INT64_MAX: all). */
void sim_out_flush(struct sim_out *o, int64_t before);
int sim_out_close(struct sim_out *o);

/* Classic pcap headers (little endian, as written on x86). */
void sim_pcap_file_header(uint8_t out[24]);
void sim_pcap_rec_header(uint8_t out[16], int64_t ts, uint32_t len);

#endif
