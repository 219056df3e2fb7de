/* test_classify: the nDPI wrapper on real capture bytes. Each case reads a
 * corpus capture with libpcap, keeps the packets of one TCP/UDP flow (by
 * its two ports), feeds their IP layer to classify_packet and checks the
 * application and host name nDPI reports, as tshark reports them too:
 *   ndpi-zattoo.pcap    10.101.0.2:2930 -> :443  TLS ClientHello, SNI zattoo.com
 *   ndpi-zattoo.pcap    10.101.0.2:2936 -> :80   HTTP, Host zattosecurehd2-f.akamaihd.net
 *   ndpi-punycode-idn.pcap  first DNS query (UDP 53)  A i.scdn.co
 * Plus the pool limits and the 12-packet cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pcap/pcap.h>

#include "classify.h"
#include "kw_exact.h"

struct flow_pick {
    const char *file;
    uint16_t port_a, port_b; /* the flow's two ports, either direction */
    int max_packets;         /* stop after this many matching packets (0 = all) */
    int skip;                /* drop the first packets (midstream pickup) */
};

/* Offset of the IP header for a link type, handling 802.1Q tags on
 * Ethernet; -1 if not IP. */
static int l3_offset(int dlt, const uint8_t *p, uint32_t caplen)
{
    if (dlt == DLT_RAW) return 0;
    if (dlt == DLT_LINUX_SLL) return caplen >= 16 ? 16 : -1;
    if (dlt != DLT_EN10MB || caplen < 14) return -1;
    uint32_t off = 12;
    uint16_t et = (uint16_t)(p[off] << 8 | p[off + 1]);
    while ((et == 0x8100 || et == 0x88a8) && off + 6 <= caplen) {
        off += 4;
        et = (uint16_t)(p[off] << 8 | p[off + 1]);
    }
    return et == 0x0800 || et == 0x86dd ? (int)off + 2 : -1;
}

/* Ports of an IPv4/IPv6 TCP or UDP packet (no extension headers: these
 * captures have none). */
static bool ports_of(const uint8_t *ip, uint32_t len, uint16_t *sp, uint16_t *dp)
{
    uint32_t hl;
    uint8_t proto;
    if (len >= 20 && ip[0] >> 4 == 4) {
        hl = (uint32_t)(ip[0] & 15) * 4;
        proto = ip[9];
    } else if (len >= 40 && ip[0] >> 4 == 6) {
        hl = 40;
        proto = ip[6];
    } else {
        return false;
    }
    if ((proto != 6 && proto != 17) || len < hl + 4) return false;
    *sp = (uint16_t)(ip[hl] << 8 | ip[hl + 1]);
    *dp = (uint16_t)(ip[hl + 2] << 8 | ip[hl + 3]);
    return true;
}

/* Feeds the picked flow; returns packets fed. */
static int feed(struct classify_ctx *c, struct classify_flow *f, const struct flow_pick *pk)
{
    char path[512], err[PCAP_ERRBUF_SIZE];
    snprintf(path, sizeof path, "%s/corpus/%s", KW_TEST_DATA, pk->file);
    pcap_t *pc = pcap_open_offline(path, err);
    assert_non_null(pc);
    int dlt = pcap_datalink(pc), fed = 0, skipped = 0;
    struct pcap_pkthdr *h;
    const u_char *p;
    while (pcap_next_ex(pc, &h, &p) == 1) {
        int off = l3_offset(dlt, p, h->caplen);
        uint16_t sp, dp;
        if (off < 0 || !ports_of(p + off, h->caplen - (uint32_t)off, &sp, &dp)) continue;
        if (!((sp == pk->port_a && dp == pk->port_b) || (sp == pk->port_b && dp == pk->port_a)))
            continue;
        kw_ts ts = (kw_ts)h->ts.tv_sec * 1000000 + h->ts.tv_usec;
        if (skipped < pk->skip) {
            skipped++;
            continue;
        }
        fed++;
        /* an exact-size copy: libpcap's buffer would hide a read past the packet */
        uint32_t n = h->caplen - (uint32_t)off;
        uint8_t *x = kw_exact_dup(p + off, n);
        bool more = classify_packet(c, f, x, n, ts, dp == pk->port_b);
        free(x);
        if (!more || (pk->max_packets && fed >= pk->max_packets)) break;
    }
    pcap_close(pc);
    return fed;
}

static void classify_one(const struct flow_pick *pk, char *app, size_t al, char *sni, size_t sl)
{
    struct classify_ctx *c;
    assert_int_equal(classify_ctx_new(&c), KW_E_OK);
    struct classify_flow *f = classify_flow_new(c);
    assert_non_null(f);
    assert_true(feed(c, f, pk) > 0);
    classify_result(c, f, app, al, sni, sl);
    classify_flow_free(c, f);
    classify_ctx_destroy(c);
}

static void test_tls_sni(void **state)
{
    (void)state;
    char app[64], sni[128];
    struct flow_pick pk = {"ndpi-zattoo.pcap", 2930, 443, 0, 0};
    classify_one(&pk, app, sizeof app, sni, sizeof sni);
    assert_non_null(strstr(app, "TLS"));
    assert_string_equal(sni, "zattoo.com");
}

/* A mirror that missed the handshake: the flow starts at the ClientHello
 * (SYN, SYN-ACK and ACK dropped). nDPI 4.2 still classifies it. */
static void test_tls_midstream(void **state)
{
    (void)state;
    char app[64], sni[128];
    struct flow_pick pk = {"ndpi-zattoo.pcap", 2930, 443, 0, 3};
    classify_one(&pk, app, sizeof app, sni, sizeof sni);
    assert_non_null(strstr(app, "TLS"));
    assert_string_equal(sni, "zattoo.com");
}

static void test_http_host(void **state)
{
    (void)state;
    char app[64], sni[128];
    struct flow_pick pk = {"ndpi-zattoo.pcap", 2936, 80, 0, 0};
    classify_one(&pk, app, sizeof app, sni, sizeof sni);
    assert_int_equal(strncmp(app, "HTTP", 4), 0);
    assert_string_equal(sni, "zattosecurehd2-f.akamaihd.net");
}

static void test_dns_udp(void **state)
{
    (void)state;
    char app[64], sni[128];
    /* the first query only: its source port is unique in the file */
    struct classify_ctx *c;
    assert_int_equal(classify_ctx_new(&c), KW_E_OK);
    struct classify_flow *f = classify_flow_new(c);
    char path[512], err[PCAP_ERRBUF_SIZE];
    snprintf(path, sizeof path, "%s/corpus/ndpi-punycode-idn.pcap", KW_TEST_DATA);
    pcap_t *pc = pcap_open_offline(path, err);
    assert_non_null(pc);
    struct pcap_pkthdr *h;
    const u_char *p;
    assert_int_equal(pcap_next_ex(pc, &h, &p), 1);
    int off = l3_offset(pcap_datalink(pc), p, h->caplen);
    uint16_t sp, dp;
    assert_true(off >= 0 && ports_of(p + off, h->caplen - (uint32_t)off, &sp, &dp));
    assert_int_equal(dp, 53);
    pcap_close(pc);
    struct flow_pick pk = {"ndpi-punycode-idn.pcap", sp, 53, 0, 0};
    assert_true(feed(c, f, &pk) > 0);
    classify_result(c, f, app, sizeof app, sni, sizeof sni);
    assert_int_equal(strncmp(app, "DNS", 3), 0);
    assert_string_equal(sni, "i.scdn.co");
    classify_flow_free(c, f);
    classify_ctx_destroy(c);
}

/* An IPv4/UDP packet to an unassigned port with a payload no dissector
 * claims: nDPI never decides, so the wrapper must stop at its cap. */
static void test_unknown_capped(void **state)
{
    (void)state;
    uint8_t pkt[20 + 8 + 32] = {0x45, 0, 0,  sizeof pkt, 0, 0, 0,  0, 64, 17,
                                0,    0, 10, 0,          0, 1, 10, 0, 0,  2};
    pkt[20] = 0x9c; /* sport 40000 */
    pkt[21] = 0x40;
    pkt[22] = 0x9c; /* dport 40001 */
    pkt[23] = 0x41;
    pkt[25] = 8 + 32;
    for (size_t i = 28; i < sizeof pkt; i++)
        pkt[i] = (uint8_t)(i * 37 + 11);
    struct classify_ctx *c;
    assert_int_equal(classify_ctx_new(&c), KW_E_OK);
    struct classify_flow *f = classify_flow_new(c);
    int n = 0;
    while (classify_packet(c, f, pkt, sizeof pkt, KW_TS_SEC(1000) + n, true) && n < 100)
        n++;
    assert_int_equal(n + 1, CLASSIFY_MAX_PACKETS);
    assert_true(classify_done(f));
    assert_false(classify_packet(c, f, pkt, sizeof pkt, KW_TS_SEC(1001), true));
    char app[64], sni[64];
    classify_result(c, f, app, sizeof app, sni, sizeof sni);
    assert_string_equal(app, "Unknown");
    assert_string_equal(sni, "");
    struct classify_stats st;
    classify_get_stats(c, &st);
    assert_int_equal(st.packets, CLASSIFY_MAX_PACKETS);
    assert_int_equal(st.gave_up, 1);
    assert_int_equal(st.unknown, 1);
    classify_flow_free(c, f);
    classify_ctx_destroy(c);
}

static void test_pool_limits(void **state)
{
    (void)state;
    struct classify_ctx *c;
    assert_int_equal(classify_ctx_new_limits(&c, 0, 1), KW_E_INVAL);
    assert_null(c);
    assert_int_equal(classify_ctx_new_limits(&c, 2, 1), KW_E_OK);
    struct classify_flow *a = classify_flow_new(c);
    assert_non_null(a);
    assert_null(classify_flow_new(c)); /* one nDPI state only */
    classify_giveup(c, a);             /* returns a's nDPI state */
    struct classify_flow *b = classify_flow_new(c);
    assert_non_null(b);
    classify_giveup(c, b);
    assert_null(classify_flow_new(c)); /* two flow records only */
    struct classify_stats st;
    classify_get_stats(c, &st);
    assert_int_equal(st.limit_active, 1);
    assert_int_equal(st.limit_flows, 1);
    assert_int_equal(st.flows, 2);
    classify_flow_free(c, a);
    struct classify_flow *d = classify_flow_new(c);
    assert_non_null(d);
    /* d is left active on purpose: destroy must release its nDPI data */
    classify_flow_free(c, b);
    classify_ctx_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_sni),        cmocka_unit_test(test_tls_midstream),
        cmocka_unit_test(test_http_host),      cmocka_unit_test(test_dns_udp),
        cmocka_unit_test(test_unknown_capped), cmocka_unit_test(test_pool_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
