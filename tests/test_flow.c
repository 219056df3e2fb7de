/* test_flow: the flow table fed hand-built decoded packets.
 *
 * Covers what the table decides on its own: one flow for both directions,
 * tunnel and VLAN ids keeping flows apart, eviction of the oldest flow when
 * full, timeouts on packet time, client/server roles from the handshake or
 * guessed midstream, and TCP bytes reaching the consumer per direction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "flow.h"
#include "kw_exact.h"

#define MAX_ENDS 64

struct rec {
    unsigned starts;
    unsigned ends;
    uint64_t end_ids[MAX_ENDS];
    enum flow_end_reason end_why[MAX_ENDS];
    char data[2][4096];
    size_t data_len[2];
    uint64_t gap_bytes[2];
    unsigned packets[2];
    struct flow last_start;
    bool lines_only; /* consume up to the last newline only */
};

/* The packet's payload in an exact-size heap copy (kw_exact.h): a read
 * past payload_len is an ASan report, not a peek at a string's NUL. */
static void feed_pkt(struct flow_table *t, const struct dec_packet *p)
{
    struct dec_packet q = *p;
    uint8_t *b = kw_exact_dup(p->payload, p->payload_len);
    q.payload = b;
    flow_table_packet(t, &q);
    free(b);
}

static void on_start(void *u, struct flow *f, kw_ts ts)
{
    struct rec *r = u;
    r->starts++;
    r->last_start = *f;
}

static void on_packet(void *u, struct flow *f, int dir, const struct dec_packet *p)
{
    struct rec *r = u;
    r->packets[dir]++;
}

static size_t on_data(void *u, struct flow *f, int dir, const uint8_t *p, size_t len, kw_ts ts)
{
    struct rec *r = u;
    if (r->lines_only) {
        size_t c = len;
        while (c > 0 && p[c - 1] != '\n')
            c--;
        len = c;
    }
    assert_true(r->data_len[dir] + len < sizeof(r->data[dir]));
    memcpy(r->data[dir] + r->data_len[dir], p, len);
    r->data_len[dir] += len;
    return len;
}

static void on_gap(void *u, struct flow *f, int dir, uint64_t len, kw_ts ts)
{
    struct rec *r = u;
    r->gap_bytes[dir] += len;
    for (uint64_t i = 0; i < len; i++)
        r->data[dir][r->data_len[dir]++] = '?';
}

static void on_end(void *u, struct flow *f, enum flow_end_reason why, kw_ts ts)
{
    struct rec *r = u;
    assert_true(r->ends < MAX_ENDS);
    r->end_ids[r->ends] = f->id;
    r->end_why[r->ends] = why;
    r->ends++;
}

static struct flow_table *table_vlan(struct rec *r, uint32_t max_flows, bool vlan_in_key)
{
    memset(r, 0, sizeof(*r));
    struct flow_config cfg;
    flow_config_default(&cfg);
    cfg.max_flows = max_flows;
    cfg.vlan_in_key = vlan_in_key;
    cfg.hash_key = (struct kw_hkey){42, 43};
    struct flow_callbacks cb = {r, on_start, on_packet, on_data, on_gap, on_end};
    struct flow_table *t = NULL;
    assert_int_equal(flow_table_new(&cfg, &cb, &t), KW_E_OK);
    return t;
}

static struct flow_table *table(struct rec *r, uint32_t max_flows)
{
    return table_vlan(r, max_flows, false);
}

static struct kw_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    struct kw_addr x = {.family = 4};
    x.a[0] = a, x.a[1] = b, x.a[2] = c, x.a[3] = d;
    return x;
}

static const struct kw_addr A_IP = {4, {10, 0, 0, 1}};
static const struct kw_addr B_IP = {4, {10, 0, 0, 2}};

static struct dec_packet tcp(int64_t t_ms, struct kw_addr src, uint16_t sp, struct kw_addr dst,
                             uint16_t dp, uint8_t flags, uint32_t seq, const char *data)
{
    struct dec_packet p = {0};
    p.ts = (kw_ts)t_ms * 1000;
    p.src = src;
    p.dst = dst;
    p.sport = sp;
    p.dport = dp;
    p.ip_version = 4;
    p.proto = 6;
    p.tcp_flags = flags;
    p.seq = seq;
    p.payload = (const uint8_t *)data;
    p.payload_len = data ? (uint32_t)strlen(data) : 0;
    p.l3_len = 40 + p.payload_len;
    return p;
}

static struct dec_packet udp(int64_t t_ms, struct kw_addr src, uint16_t sp, struct kw_addr dst,
                             uint16_t dp)
{
    struct dec_packet p = tcp(t_ms, src, sp, dst, dp, 0, 0, "x");
    p.proto = 17;
    return p;
}

/* A full connection: handshake, TFO-less data both ways, FIN both ways. */
static void test_symmetric_handshake(void **state)
{
    struct rec r;
    struct flow_table *t = table(&r, 16);
    struct dec_packet ps[] = {
        tcp(0, A_IP, 40000, B_IP, 80, DEC_TH_SYN, 1000, NULL),
        tcp(1, B_IP, 80, A_IP, 40000, DEC_TH_SYN | DEC_TH_ACK, 5000, NULL),
        tcp(2, A_IP, 40000, B_IP, 80, DEC_TH_ACK, 1001, NULL),
        tcp(3, A_IP, 40000, B_IP, 80, DEC_TH_ACK, 1001, "GET / HTTP/1.1\r\n\r\n"),
        tcp(4, B_IP, 80, A_IP, 40000, DEC_TH_ACK, 5001, "HTTP/1.1 200 OK\r\n"),
        tcp(5, B_IP, 80, A_IP, 40000, DEC_TH_ACK | DEC_TH_FIN, 5018, NULL),
        tcp(6, A_IP, 40000, B_IP, 80, DEC_TH_ACK | DEC_TH_FIN, 1019, NULL),
    };
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
        feed_pkt(t, &ps[i]);
    const struct flow_counters *c = flow_table_counters(t);
    assert_int_equal(c->flows_created, 1);
    assert_int_equal(c->flows_midstream, 0);
    assert_int_equal(r.starts, 1);
    assert_int_equal(r.last_start.cli_port, 40000);
    assert_int_equal(r.last_start.srv_port, 80);
    assert_false(r.last_start.roles_guessed);
    assert_int_equal(r.packets[FLOW_DIR_TO_SERVER], 4);
    assert_int_equal(r.packets[FLOW_DIR_TO_CLIENT], 3);
    assert_int_equal(r.data_len[0], 18);
    assert_memory_equal(r.data[0], "GET / HTTP/1.1\r\n\r\n", 18);
    assert_int_equal(r.data_len[1], 17);
    assert_int_equal(r.ends, 0);
    /* Closed: ends after the closed timeout (10 s) of packet time. */
    flow_table_advance(t, 6000 + KW_TS_SEC(9));
    assert_int_equal(r.ends, 0);
    flow_table_advance(t, 6000 + KW_TS_SEC(11));
    assert_int_equal(r.ends, 1);
    assert_int_equal(r.end_why[0], FLOW_END_CLOSED);
    assert_int_equal(c->flows_closed, 1);
    assert_int_equal(c->flows_active, 0);
    flow_table_destroy(t);
}

/* The SYN carries data (TCP Fast Open, RFC 7413): it follows the ISN. A
 * flow first seen at the SYN-ACK takes its roles from it. */
static void test_tfo_and_synack_first(void **state)
{
    struct rec r;
    struct flow_table *t = table(&r, 16);
    struct dec_packet a = tcp(0, A_IP, 40000, B_IP, 8443, DEC_TH_SYN, 0xffffffff, "GET");
    struct dec_packet b = tcp(1, A_IP, 40000, B_IP, 8443, DEC_TH_ACK, 3, " /x");
    feed_pkt(t, &a);
    feed_pkt(t, &b);
    assert_int_equal(r.data_len[0], 6);
    assert_memory_equal(r.data[0], "GET /x", 6);

    struct dec_packet c = tcp(2, B_IP, 9999, A_IP, 1234, DEC_TH_SYN | DEC_TH_ACK, 77, NULL);
    feed_pkt(t, &c);
    assert_int_equal(r.last_start.srv_port, 9999);
    assert_int_equal(r.last_start.cli_port, 1234);
    assert_false(r.last_start.midstream);
    assert_false(r.last_start.roles_guessed);
    flow_table_destroy(t);
}

static void test_tunnel_and_vlan_separate(void **state)
{
    struct rec r;
    struct flow_table *t = table_vlan(&r, 16, true);
    struct dec_packet p = tcp(0, A_IP, 40000, B_IP, 80, DEC_TH_ACK, 1, "a");
    feed_pkt(t, &p);
    p.tunnel.type = DEC_TUN_VXLAN;
    p.tunnel.id = 4242;
    feed_pkt(t, &p);
    p.tunnel.id = 4243;
    feed_pkt(t, &p);
    p.tunnel.type = DEC_TUN_GENEVE;
    feed_pkt(t, &p);
    p.tunnel = (struct dec_tunnel){0};
    p.vlan[0] = 100;
    p.vlan_count = 1;
    feed_pkt(t, &p);
    const struct flow_counters *c = flow_table_counters(t);
    assert_int_equal(c->flows_created, 5);
    /* and the reverse direction of each lands on its own flow */
    struct dec_packet q = tcp(1, B_IP, 80, A_IP, 40000, DEC_TH_ACK, 1, "b");
    q.tunnel.type = DEC_TUN_VXLAN;
    q.tunnel.id = 4243;
    feed_pkt(t, &q);
    assert_int_equal(c->flows_created, 5);
    flow_table_destroy(t);
}

static void test_eviction(void **state)
{
    struct rec r;
    struct flow_table *t = table(&r, 4);
    for (uint16_t i = 0; i < 4; i++) {
        struct dec_packet p = udp(i, A_IP, (uint16_t)(1000 + i), B_IP, 53);
        feed_pkt(t, &p);
    }
    /* Touch the first flow: the second becomes the oldest. */
    struct dec_packet p = udp(10, B_IP, 53, A_IP, 1000);
    feed_pkt(t, &p);
    p = udp(11, A_IP, 2000, B_IP, 53);
    feed_pkt(t, &p);
    const struct flow_counters *c = flow_table_counters(t);
    assert_int_equal(c->flows_evicted, 1);
    assert_int_equal(r.ends, 1);
    assert_int_equal(r.end_why[0], FLOW_END_EVICTED);
    assert_int_equal(r.end_ids[0], 2);
    assert_int_equal(c->flows_active, 4);
    flow_table_flush(t, 20);
    assert_int_equal(r.ends, 5);
    for (int i = 1; i < 5; i++)
        assert_int_equal(r.end_why[i], FLOW_END_SHUTDOWN);
    assert_int_equal(c->flows_active, 0);
    flow_table_destroy(t);
}

/* Timeouts follow packet time only, per kind: UDP 60 s, TCP 600 s. */
static void test_timeouts(void **state)
{
    struct rec r;
    struct flow_table *t = table(&r, 16);
    struct dec_packet a = tcp(0, A_IP, 40000, B_IP, 80, DEC_TH_ACK, 1, "x");
    struct dec_packet u = udp(1000, A_IP, 5353, B_IP, 53);
    feed_pkt(t, &a);
    feed_pkt(t, &u);
    /* A packet of a third flow 61 s later: the UDP flow ends, TCP lives. */
    struct dec_packet o = udp(62000, v4(1, 1, 1, 1), 1, v4(2, 2, 2, 2), 2);
    feed_pkt(t, &o);
    assert_int_equal(r.ends, 1);
    assert_int_equal(r.end_ids[0], 2);
    assert_int_equal(r.end_why[0], FLOW_END_TIMEOUT);
    flow_table_advance(t, KW_TS_SEC(599));
    assert_int_equal(r.ends, 2); /* only the 1.1.1.1 UDP flow (id 3) */
    assert_int_equal(r.end_ids[1], 3);
    flow_table_advance(t, KW_TS_SEC(601));
    assert_int_equal(r.ends, 3);
    assert_int_equal(r.end_ids[2], 1);
    assert_int_equal(flow_table_counters(t)->flows_timed_out, 3);
    /* RST: closed at once for the state, ended after the closed timeout. */
    struct dec_packet s1 = tcp(700000, A_IP, 40001, B_IP, 80, DEC_TH_ACK, 1, "y");
    struct dec_packet s2 = tcp(700001, B_IP, 80, A_IP, 40001, DEC_TH_RST, 9, NULL);
    feed_pkt(t, &s1);
    feed_pkt(t, &s2);
    flow_table_advance(t, KW_TS_SEC(711));
    assert_int_equal(r.ends, 4);
    assert_int_equal(r.end_why[3], FLOW_END_CLOSED);
    assert_int_equal(flow_table_counters(t)->flows_closed, 1);
    flow_table_destroy(t);
}

static void test_roles_midstream(void **state)
{
    struct rec r;
    struct flow_table *t = table(&r, 16);
    /* First packet is the server's answer: the port 80 side is the server. */
    struct dec_packet p = tcp(0, B_IP, 80, A_IP, 51000, DEC_TH_ACK, 1, "HTTP/1.1 200 OK\r\n");
    feed_pkt(t, &p);
    assert_int_equal(r.last_start.srv_port, 80);
    assert_true(r.last_start.midstream);
    assert_true(r.last_start.roles_guessed);
    assert_int_equal(r.data_len[FLOW_DIR_TO_CLIENT], 17);
    /* Well-known 8080 above 1024. */
    p = tcp(1, A_IP, 51001, B_IP, 8080, DEC_TH_ACK, 1, "GET");
    feed_pkt(t, &p);
    assert_int_equal(r.last_start.srv_port, 8080);
    p = tcp(2, B_IP, 8080, A_IP, 51002, DEC_TH_ACK, 1, "HTTP");
    feed_pkt(t, &p);
    assert_int_equal(r.last_start.srv_port, 8080);
    /* Neither looks like a server: the first packet's destination is. */
    p = tcp(3, B_IP, 40000, A_IP, 50000, DEC_TH_ACK, 1, "?");
    feed_pkt(t, &p);
    assert_int_equal(r.last_start.srv_port, 50000);
    assert_int_equal(flow_table_counters(t)->flows_midstream, 4);
    flow_table_destroy(t);
}

/* A hole in a flow that then goes quiet becomes a gap by the gap timeout,
 * driven by other flows' packet time. */
static void test_gap_timeout_quiet_flow(void **state)
{
    struct rec r;
    struct flow_table *t = table(&r, 16);
    struct dec_packet a = tcp(0, A_IP, 40000, B_IP, 80, DEC_TH_ACK, 100, "ab");
    struct dec_packet b = tcp(1, A_IP, 40000, B_IP, 80, DEC_TH_ACK, 104, "ef");
    feed_pkt(t, &a);
    feed_pkt(t, &b);
    assert_int_equal(r.data_len[0], 2);
    for (int i = 1; i <= 4; i++) {
        struct dec_packet o = udp(i * 1000, v4(1, 1, 1, 1), 1, v4(2, 2, 2, 2), 2);
        feed_pkt(t, &o);
    }
    assert_int_equal(r.data_len[0], 6);
    assert_memory_equal(r.data[0], "ab??ef", 6);
    assert_int_equal(r.gap_bytes[0], 2);
    assert_int_equal(flow_table_counters(t)->tcp_gaps, 1);
    flow_table_destroy(t);
}

/* A new SYN on a closed connection's 4-tuple starts a new flow. */
static void test_port_reuse(void **state)
{
    struct rec r;
    struct flow_table *t = table(&r, 16);
    struct dec_packet ps[] = {
        tcp(0, A_IP, 40000, B_IP, 80, DEC_TH_SYN, 1000, NULL),
        tcp(1, A_IP, 40000, B_IP, 80, DEC_TH_ACK, 1001, "one"),
        tcp(2, A_IP, 40000, B_IP, 80, DEC_TH_ACK | DEC_TH_RST, 1004, NULL),
        tcp(3, A_IP, 40000, B_IP, 80, DEC_TH_SYN, 9000, NULL),
        tcp(4, A_IP, 40000, B_IP, 80, DEC_TH_ACK, 9001, "two"),
    };
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
        feed_pkt(t, &ps[i]);
    assert_int_equal(r.starts, 2);
    assert_int_equal(r.ends, 1);
    assert_int_equal(flow_table_counters(t)->flows_reused, 1);
    assert_memory_equal(r.data[0], "onetwo", 6);
    flow_table_flush(t, 10000);
    assert_int_equal(r.ends, 2);
    assert_int_not_equal(r.end_ids[0], r.end_ids[1]);
    flow_table_destroy(t);
}

/* After a RST the bytes a consumer left are still offered first: data
 * after a (possibly spoofed) RST continues the stream. */
static void test_rst_keeps_unconsumed(void **state)
{
    struct rec r;
    struct flow_table *t = table(&r, 16);
    r.lines_only = true;
    struct dec_packet ps[] = {
        tcp(0, A_IP, 40000, B_IP, 80, DEC_TH_ACK, 10, "ab\ncd"),
        tcp(1, B_IP, 80, A_IP, 40000, DEC_TH_RST, 99, NULL),
        tcp(2, A_IP, 40000, B_IP, 80, DEC_TH_ACK, 15, "ef\n"),
    };
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
        feed_pkt(t, &ps[i]);
    assert_int_equal(r.data_len[0], 8);
    assert_memory_equal(r.data[0], "ab\ncdef\n", 8);
    flow_table_destroy(t);
}

/* Different seeds, same answers (the seed only moves buckets). */
static void test_many_flows_seeds(void **state)
{
    for (uint64_t seed = 0; seed < 3; seed++) {
        struct rec r;
        memset(&r, 0, sizeof(r));
        struct flow_config cfg;
        flow_config_default(&cfg);
        cfg.max_flows = 1000;
        cfg.hash_key = (struct kw_hkey){seed * 0x9e3779b97f4a7c15ull, seed};
        struct flow_callbacks cb = {&r, on_start, NULL, NULL, NULL, on_end};
        struct flow_table *t = NULL;
        assert_int_equal(flow_table_new(&cfg, &cb, &t), KW_E_OK);
        for (int rep = 0; rep < 2; rep++)
            for (uint32_t i = 0; i < 1000; i++) {
                struct dec_packet p = udp(rep * 10 + 1, v4(10, 1, (uint8_t)(i >> 8), (uint8_t)i),
                                          (uint16_t)(1024 + i), B_IP, 53);
                if (rep) { /* the answers */
                    p.src = B_IP;
                    p.sport = 53;
                    p.dst = v4(10, 1, (uint8_t)(i >> 8), (uint8_t)i);
                    p.dport = (uint16_t)(1024 + i);
                }
                feed_pkt(t, &p);
            }
        assert_int_equal(flow_table_counters(t)->flows_created, 1000);
        assert_int_equal(flow_table_counters(t)->flows_evicted, 0);
        flow_table_destroy(t);
    }
}

/* Hash flooding: until issue 15 every flow table used one key derived from
 * a compiled-in seed, so anyone could compute, offline, a set of flows that
 * share one bucket. Build such a set against that old key (300 UDP flows
 * in one bucket out of 4096), check it does pile up under the old key, and
 * that under the default key (getrandom, kw_hash.h) the longest chain
 * stays short. The chance of 9 or more of 300 random flows sharing a
 * bucket of 4096 is below 1e-13. */
static uint64_t old_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void test_hash_flood(void **state)
{
    (void)state;
    enum { N = 300 };
    const uint64_t seed = 0x6b657977617264ull; /* the old flow_config_default */
    struct flow_config old;
    flow_config_default(&old);
    old.max_flows = 4096;
    old.hash_key = (struct kw_hkey){old_mix64(seed), old_mix64(seed ^ 0x9e3779b97f4a7c15ull)};
    struct rec r;
    memset(&r, 0, sizeof(r));
    struct flow_callbacks cb = {&r, NULL, NULL, NULL, NULL, NULL};
    struct flow_table *t_old = NULL;
    assert_int_equal(flow_table_new(&old, &cb, &t_old), KW_E_OK);
    static struct dec_packet set[N];
    size_t n = 0;
    uint64_t target = UINT64_MAX;
    for (uint32_t i = 0; n < N && i < (1u << 24); i++) {
        struct dec_packet p = udp(1, v4(10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i),
                                  (uint16_t)(1024 + (i & 0x7fff)), B_IP, 53);
        uint64_t b = flow_table_bucket(t_old, &p);
        if (target == UINT64_MAX) target = b;
        if (b == target) set[n++] = p;
    }
    assert_int_equal(n, N);
    for (size_t i = 0; i < N; i++)
        feed_pkt(t_old, &set[i]);
    assert_int_equal(flow_table_counters(t_old)->flows_created, N);
    assert_int_equal(flow_table_longest_chain(t_old), N); /* the attack, as it was */
    flow_table_destroy(t_old);

    for (int run = 0; run < 2; run++) {
        struct flow_config cfg;
        flow_config_default(&cfg); /* a fresh random key each time */
        cfg.max_flows = 4096;
        assert_memory_not_equal(&cfg.hash_key, &old.hash_key, sizeof cfg.hash_key);
        struct flow_table *t = NULL;
        assert_int_equal(flow_table_new(&cfg, &cb, &t), KW_E_OK);
        for (size_t i = 0; i < N; i++)
            feed_pkt(t, &set[i]);
        assert_int_equal(flow_table_counters(t)->flows_created, N);
        assert_true(flow_table_longest_chain(t) <= 8);
        flow_table_destroy(t);
    }
}

/* By default VLAN ids are not part of the key: a span port that tags one
 * direction only (sv-bug-4376: requests in VLAN 3136, answers untagged)
 * still gives one flow per connection. */
static void test_vlan_asymmetric(void **state)
{
    struct rec r;
    struct flow_table *t = table(&r, 16);
    struct dec_packet p = tcp(0, A_IP, 40000, B_IP, 80, DEC_TH_ACK, 1, "a");
    p.vlan[0] = 3136;
    p.vlan_count = 1;
    feed_pkt(t, &p);
    struct dec_packet q = tcp(1, B_IP, 80, A_IP, 40000, DEC_TH_ACK, 1, "b");
    feed_pkt(t, &q);
    assert_int_equal(flow_table_counters(t)->flows_created, 1);
    flow_table_destroy(t);
}

/* The two directions of one connection in different tunnels (zeek-erspan:
 * GRE key 0 one way, 0x02000000 the other) are one flow; a second
 * connection with the same addresses in another tunnel, seen in the same
 * direction, stays a flow of its own. */
static void test_tunnel_asymmetric_join(void **state)
{
    struct rec r;
    struct flow_table *t = table(&r, 16);
    struct dec_packet p = tcp(0, A_IP, 40000, B_IP, 80, DEC_TH_ACK, 1, "GET");
    p.tunnel = (struct dec_tunnel){DEC_TUN_GRE, 0};
    feed_pkt(t, &p);
    struct dec_packet q = tcp(1, B_IP, 80, A_IP, 40000, DEC_TH_ACK, 1, "200");
    q.tunnel = (struct dec_tunnel){DEC_TUN_GRE, 0x02000000};
    feed_pkt(t, &q);
    feed_pkt(t, &q); /* and again: found through the join */
    const struct flow_counters *c = flow_table_counters(t);
    assert_int_equal(c->flows_created, 1);
    assert_int_equal(c->flows_tunnel_joined, 1);
    /* another VPC's connection with the same addresses: same direction as
     * the first flow's client, which already has packets that way */
    struct dec_packet o = tcp(2, A_IP, 40000, B_IP, 80, DEC_TH_ACK, 1, "GET");
    o.tunnel = (struct dec_tunnel){DEC_TUN_VXLAN, 77};
    feed_pkt(t, &o);
    assert_int_equal(c->flows_created, 2);
    flow_table_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_symmetric_handshake),
        cmocka_unit_test(test_tfo_and_synack_first),
        cmocka_unit_test(test_tunnel_and_vlan_separate),
        cmocka_unit_test(test_vlan_asymmetric),
        cmocka_unit_test(test_tunnel_asymmetric_join),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_roles_midstream),
        cmocka_unit_test(test_gap_timeout_quiet_flow),
        cmocka_unit_test(test_port_reuse),
        cmocka_unit_test(test_rst_keeps_unconsumed),
        cmocka_unit_test(test_many_flows_seeds),
        cmocka_unit_test(test_hash_flood),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
