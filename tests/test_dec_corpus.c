/* test_dec_corpus: the decoders on real captures. (1) Every capture in
 * tests/corpus decodes without a crash and, where the link type is
 * supported, to at least one TCP packet. (2) For captures of each link type
 * and tunnel, facts checked independently with tshark: number of TCP
 * packets, how many carry payload, total payload bytes, tunnel ids and VLAN
 * ids. (3) The encapsulated twins in tests/data/encap give exactly the same
 * inner packets (addresses, ports, seq, ack, flags, payload bytes) as the
 * plain original, with the right tunnel type/id and VLAN ids. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pcap/pcap.h>

#include "dec.h"

#define CORPUS KW_TEST_DATA "/corpus/"
#define ENCAP KW_TEST_DATA "/data/encap/"

struct tally {
    unsigned packets, ok, malformed;
    unsigned tcp, tcp_payload;
    uint64_t tcp_bytes;
    int linktype;
    struct dec_ctx ctx;
};

typedef void (*pkt_fn)(void *user, const struct dec_packet *d, enum dec_result r);

static void read_capture(const char *path, struct tally *t, pkt_fn fn, void *user)
{
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline(path, err);
    if (!pc) fail_msg("%s: %s", path, err);
    memset(t, 0, sizeof(*t));
    dec_ctx_init(&t->ctx, NULL);
    t->linktype = pcap_datalink(pc);
    struct pcap_pkthdr *h;
    const u_char *data;
    while (pcap_next_ex(pc, &h, &data) == 1) {
        /* A heap copy of exactly caplen bytes, so ASan sees any overread. */
        uint8_t *copy = malloc(h->caplen ? h->caplen : 1);
        assert_non_null(copy);
        memcpy(copy, data, h->caplen);
        struct dec_packet d;
        kw_ts ts = (kw_ts)h->ts.tv_sec * 1000000 + h->ts.tv_usec;
        enum dec_result r = dec_packet(&t->ctx, t->linktype, ts, copy, h->caplen, h->len, &d);
        t->packets++;
        t->ok += r == DEC_OK;
        t->malformed += r == DEC_MALFORMED;
        if (r == DEC_OK && d.proto == 6) {
            t->tcp++;
            t->tcp_payload += d.payload_len > 0;
            t->tcp_bytes += d.payload_len;
        }
        if (fn) fn(user, &d, r);
        free(copy);
    }
    pcap_close(pc);
}

static bool is_capture(const char *n)
{
    size_t l = strlen(n);
    return (l > 5 && strcmp(n + l - 5, ".pcap") == 0) ||
           (l > 7 && strcmp(n + l - 7, ".pcapng") == 0);
}

static void test_every_capture(void **state)
{
    (void)state;
    DIR *dir = opendir(CORPUS);
    assert_non_null(dir);
    unsigned files = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (!is_capture(e->d_name)) continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s%s", CORPUS, e->d_name);
        struct tally t;
        read_capture(path, &t, NULL, NULL);
        files++;
        assert_int_equal(t.ctx.cnt.packets, t.packets);
        /* Every link type of the corpus is decoded (ARCnet since the
         * RFC 1051/1201 decoder), and AYIYA (UDP 5072) is a tunnel we
         * decode: its inner IPv6 TCP counts here like any other. */
        assert_int_equal(t.ctx.cnt.unsupported_linktype, 0);
        if (t.tcp == 0)
            fail_msg("%s: no TCP packet decoded (%u packets, %u malformed)", e->d_name, t.packets,
                     t.malformed);
    }
    closedir(dir);
    assert_true(files >= 100);
}

/* Facts from tshark 4.0 (oracle independent of this decoder):
 *   tshark -n -r F -Y 'tcp && !icmp && !icmpv6' -T fields -e tcp.len |
 *     awk '{n++; if($1>0){p++; b+=$1}} END{print n, p, b}'
 * (the filter drops TCP headers quoted inside ICMP errors, which are ICMP
 * packets to us.) Tunnel and VLAN ids:
 *   tshark -n -r F -T fields -e vlan.id -e erspan.spanid -e vxlan.vni */
struct fact {
    const char *file;
    unsigned tcp, tcp_payload;
    uint64_t bytes;
    uint8_t tun;
    uint32_t tun_id;
    uint8_t vlans;
    uint16_t vlan0, vlan1;
};

static const struct fact FACTS[] = {
    /* Ethernet/IPv4/GRE/ERSPAN II span 20/Ethernet/IPv4/UDP 4790/VXLAN-GPE
     * VNI 0/Ethernet/IPv4/TCP: the outermost tunnel is the ERSPAN session. */
    {"arkime-gre-erspan-vxlan.pcap", 7, 2, 57, DEC_TUN_ERSPAN, 20, 0, 0, 0},
    {"arkime-twovlan.pcap", 6, 2, 4457, 0, 0, 2, 201, 200},
    {"sv-decode-sll2-02-input.pcap", 159, 83, 2598957, 0, 0, 0, 0, 0},
    {"sv-decode-chdlc-01-hdlc-http_1tx.pcap", 17, 8, 9550, 0, 0, 0, 0, 0},
    {"ndpi-6in4tunnel.pcap", 75, 37, 23597, 0, 0, 0, 0, 0},
    {"sv-bug-4810-pppoe-session-http.pcap", 30, 12, 15508, 0, 0, 0, 0, 0},
    {"arkime-v6-http.pcap", 10, 3, 2499, 0, 0, 0, 0, 0},
    {"arkime-80211http.pcap", 26, 15, 8592, 0, 0, 0, 0, 0},
    {"zeek-nflog-http.pcap", 13, 2, 1682, 0, 0, 0, 0, 0},
    {"ndpi-hls.pcapng", 13, 3, 471, 0, 0, 0, 0, 0},
    {"sv-http-ipv6-input.pcap", 14, 3, 791, 0, 0, 0, 0, 0},              /* DLT_NULL, IPv6 */
    {"ndpi-KakaoTalk_chat.pcap", 310, 129, 49761, 0, 0, 0, 0, 0},        /* Linux SLL */
    {"zeek-http-basic-auth-with-colon.pcap", 12, 3, 984, 0, 0, 0, 0, 0}, /* raw IPv4 */
};

struct fact_check {
    const struct fact *f;
    unsigned checked;
};

static void check_fact_pkt(void *user, const struct dec_packet *d, enum dec_result r)
{
    struct fact_check *fc = user;
    if (r != DEC_OK || d->proto != 6) return;
    assert_int_equal(d->tunnel.type, fc->f->tun);
    assert_int_equal(d->tunnel.id, fc->f->tun_id);
    assert_int_equal(d->vlan_count, fc->f->vlans);
    assert_int_equal(d->vlan[0], fc->f->vlan0);
    assert_int_equal(d->vlan[1], fc->f->vlan1);
    fc->checked++;
}

static void test_facts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(FACTS) / sizeof(FACTS[0]); i++) {
        const struct fact *f = &FACTS[i];
        char path[1024];
        snprintf(path, sizeof(path), "%s%s", CORPUS, f->file);
        struct tally t;
        struct fact_check fc = {f, 0};
        print_message("%s\n", f->file);
        read_capture(path, &t, check_fact_pkt, &fc);
        assert_int_equal(t.tcp, f->tcp);
        assert_int_equal(t.tcp_payload, f->tcp_payload);
        assert_int_equal(t.tcp_bytes, f->bytes);
        assert_int_equal(t.malformed, 0);
        assert_int_equal(fc.checked, f->tcp);
    }
}

/* ---- encapsulated twins ------------------------------------------------ */

#define TWIN_MAX 64
struct inner {
    kw_ts ts;
    struct kw_addr src, dst;
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t win;
    uint32_t len;
    uint8_t bytes[1500];
};

struct twin {
    struct inner pk[TWIN_MAX];
    unsigned n;
    struct dec_tunnel tun;
    uint8_t vlans;
    uint16_t vlan[2];
};

static void twin_pkt(void *user, const struct dec_packet *d, enum dec_result r)
{
    struct twin *t = user;
    assert_int_equal(r, DEC_OK);
    assert_int_equal(d->proto, 6);
    assert_true(t->n < TWIN_MAX);
    assert_true(d->payload_len <= sizeof(t->pk[0].bytes));
    struct inner *x = &t->pk[t->n++];
    x->ts = d->ts;
    x->src = d->src;
    x->dst = d->dst;
    x->sport = d->sport;
    x->dport = d->dport;
    x->seq = d->seq;
    x->ack = d->ack;
    x->flags = d->tcp_flags;
    x->win = d->win;
    x->len = d->payload_len;
    memcpy(x->bytes, d->payload, d->payload_len);
    t->tun = d->tunnel;
    t->vlans = d->vlan_count;
    t->vlan[0] = d->vlan[0];
    t->vlan[1] = d->vlan[1];
}

struct twin_case {
    const char *file;
    uint8_t tun;
    uint32_t id;
    uint8_t vlans;
    uint16_t v0, v1;
};

static const struct twin_case TWINS[] = {
    {"vxlan.pcap", DEC_TUN_VXLAN, 4242, 0, 0, 0},   {"geneve.pcap", DEC_TUN_GENEVE, 77, 0, 0, 0},
    {"gre.pcap", DEC_TUN_GRE, 9, 0, 0, 0},          {"erspan1.pcap", DEC_TUN_ERSPAN, 0, 0, 0, 0},
    {"erspan2.pcap", DEC_TUN_ERSPAN, 123, 0, 0, 0}, {"erspan3.pcap", DEC_TUN_ERSPAN, 321, 0, 0, 0},
    {"qinq.pcap", DEC_TUN_NONE, 0, 2, 100, 200},    {"mpls.pcap", DEC_TUN_NONE, 0, 0, 0, 0},
};

static void test_twins(void **state)
{
    (void)state;
    static struct twin plain, wrapped;
    struct tally t;
    memset(&plain, 0, sizeof(plain));
    read_capture(CORPUS "sv-http-brotli-ce-input.pcap", &t, twin_pkt, &plain);
    assert_int_equal(plain.n, 16);
    assert_int_equal(plain.tun.type, DEC_TUN_NONE);
    for (size_t i = 0; i < sizeof(TWINS) / sizeof(TWINS[0]); i++) {
        const struct twin_case *c = &TWINS[i];
        print_message("twin %s\n", c->file);
        memset(&wrapped, 0, sizeof(wrapped));
        char path[1024];
        snprintf(path, sizeof(path), "%s%s", ENCAP, c->file);
        read_capture(path, &t, twin_pkt, &wrapped);
        assert_int_equal(wrapped.n, plain.n);
        assert_int_equal(wrapped.tun.type, c->tun);
        assert_int_equal(wrapped.tun.id, c->id);
        assert_int_equal(wrapped.vlans, c->vlans);
        assert_int_equal(wrapped.vlan[0], c->v0);
        assert_int_equal(wrapped.vlan[1], c->v1);
        for (unsigned k = 0; k < plain.n; k++) {
            const struct inner *a = &plain.pk[k], *b = &wrapped.pk[k];
            assert_int_equal(a->ts, b->ts);
            assert_memory_equal(&a->src, &b->src, sizeof(a->src));
            assert_memory_equal(&a->dst, &b->dst, sizeof(a->dst));
            assert_int_equal(a->sport, b->sport);
            assert_int_equal(a->dport, b->dport);
            assert_int_equal(a->seq, b->seq);
            assert_int_equal(a->ack, b->ack);
            assert_int_equal(a->flags, b->flags);
            assert_int_equal(a->win, b->win);
            assert_int_equal(a->len, b->len);
            assert_memory_equal(a->bytes, b->bytes, a->len);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_capture),
        cmocka_unit_test(test_facts),
        cmocka_unit_test(test_twins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
