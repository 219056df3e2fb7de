/* Tests of the pipeline glue (analyzer/pipeline*.c) on real captures:
 * what reaches the EVE file, and the bound on live HTTP parsers (a
 * connection beyond it is not parsed, and is counted, never silent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "pipeline.h"
#include "kw_time.h"
#include "source.h"

struct run_result {
    struct pipeline_counters cnt;
    unsigned http_lines, flow_lines;
    unsigned with_path, with_template, needle_lines; /* http records */
    unsigned ssdp_flows;      /* flow records nDPI named SSDP */
    long long ndpi_packets;   /* packets fed to nDPI (classify on), else -1 */
};

static bool classify_on; /* run_capture with nDPI */

/* http records holding both strings are counted in needle_lines */
static const char *needle[2];

static void run_capture(const char *name, uint32_t max_conns, struct run_result *out)
{
    char path[1024], eve_path[] = "/tmp/kw-pipe-eve-XXXXXX";
    snprintf(path, sizeof path, "%s/corpus/%s", KW_TEST_DATA, name);
    int fd = mkstemp(eve_path);
    assert_true(fd >= 0);
    close(fd);
    struct kw_eve *eve = NULL;
    assert_int_equal(kw_eve_open(eve_path, &eve), KW_E_OK);

    struct pipeline_config pc;
    pipeline_config_default(&pc);
    pc.classify = classify_on;
    pc.eve = eve;
    if (max_conns) pc.h1.max_conns = max_conns;
    struct pipeline *p = NULL;
    assert_int_equal(pipeline_new(&pc, &p), KW_E_OK);

    struct cap_config cc;
    cap_config_default(&cc);
    cc.files[cc.n_files++] = path;
    struct cap_source *src = NULL;
    char err[256];
    assert_int_equal(cap_open(&cc, &src, err, sizeof err), KW_E_OK);
    struct cap_pkt pkt;
    while (cap_next(src, &pkt) == CAP_PACKET)
        pipeline_packet(p, &pkt);
    pipeline_finish(p);
    out->cnt = *pipeline_counters(p);
    json_t *st = pipeline_stats_json(p);
    json_t *pk = json_object_get(json_object_get(st, "classify"), "packets");
    out->ndpi_packets = json_is_integer(pk) ? (long long)json_integer_value(pk) : -1;
    json_decref(st);
    cap_close(src);
    pipeline_destroy(p);
    kw_eve_close(eve);

    FILE *f = fopen(eve_path, "r");
    assert_non_null(f);
    char line[65536];
    out->http_lines = out->flow_lines = out->with_path = out->with_template = 0;
    out->needle_lines = out->ssdp_flows = 0;
    while (fgets(line, sizeof line, f)) {
        out->ssdp_flows += strstr(line, "\"app_proto\":\"SSDP\"") != NULL;
        bool http = strstr(line, "\"event_type\":\"http\"") != NULL;
        out->http_lines += http;
        out->flow_lines += strstr(line, "\"event_type\":\"flow\"") != NULL;
        if (!http) continue;
        out->with_path += strstr(line, "\"path\":\"") != NULL;
        out->with_template += strstr(line, "\"template\":\"") != NULL;
        out->needle_lines += needle[0] && strstr(line, needle[0]) && strstr(line, needle[1]);
    }
    fclose(f);
    unlink(eve_path);
}

/* Every transaction becomes one EVE http record; 1,000 requests on one
 * keep-alive connection whose capture lost one response: 1,000 records
 * (999 pairs and the request whose answer is missing), one flow. */
static void test_records(void **state)
{
    struct run_result r;
    run_capture("zeek-http-1000-requests-one-dropped-response.pcap", 0, &r);
    assert_int_equal(r.cnt.transactions, 1000);
    assert_int_equal(r.http_lines, 1000);
    assert_int_equal(r.cnt.http_flows, 1);
    assert_int_equal(r.cnt.h1_refused, 0);
    assert_int_equal(r.cnt.eve_overflow, 0);
}

/* The parser leaves the template to the judge; a pipeline without a
 * route model (as here) still names one, by the shapes of the path's
 * segments: every request that has a path has a template, the ids of a
 * real capture replaced (/api/videos/10410.json of a video site). */
static void test_cold_template(void **state)
{
    struct run_result r;
    needle[0] = "\"path\":\"/api/videos/10410.json\"";
    needle[1] = "\"template\":\"/api/videos/{id}.json\"";
    run_capture("ndpi-1kxun.pcap", 0, &r);
    needle[0] = needle[1] = NULL;
    assert_true(r.with_path > 100);
    assert_int_equal(r.with_template, r.with_path);
    assert_true(r.needle_lines >= 1);
}

/* nDPI names what the HTTP parser does not take, and is not given the
 * request line the parser takes the flow on: one keep-alive connection of
 * 1,000 requests (zeek) costs nDPI its three handshake packets, not a
 * fourth with the first request; UDP lines that look like HTTP (SSDP's
 * "M-SEARCH * HTTP/1.1") still reach nDPI and are named (ndpi-1kxun: 13
 * SSDP flows, as before the skip); the HTTP records do not change. */
static void test_classify_skips_request_line(void **state)
{
    struct run_result off, on;
    run_capture("zeek-http-1000-requests-one-dropped-response.pcap", 0, &off);
    classify_on = true;
    run_capture("zeek-http-1000-requests-one-dropped-response.pcap", 0, &on);
    classify_on = false;
    assert_int_equal(on.ndpi_packets, 3);
    assert_int_equal(on.http_lines, off.http_lines);
    assert_int_equal(on.cnt.http_flows, 1);
    classify_on = true;
    run_capture("ndpi-1kxun.pcap", 0, &on);
    classify_on = false;
    run_capture("ndpi-1kxun.pcap", 0, &off);
    assert_int_equal(on.ssdp_flows, 13);
    assert_int_equal(off.ssdp_flows, 0);
    assert_int_equal(on.http_lines, off.http_lines);
}

/* With room for one live parser, connections that overlap it are refused
 * and counted: parsed + refused = all HTTP connections of the free run,
 * and fewer transactions come out, none invented. */
static void test_parser_bound(void **state)
{
    struct run_result all, one;
    run_capture("ndpi-1kxun.pcap", 0, &all);
    run_capture("ndpi-1kxun.pcap", 1, &one);
    assert_true(all.cnt.http_flows > 10);
    assert_int_equal(all.cnt.h1_refused, 0);
    assert_true(one.cnt.h1_refused > 0);
    assert_int_equal(one.cnt.http_flows + one.cnt.h1_refused, all.cnt.http_flows);
    assert_true(one.cnt.transactions < all.cnt.transactions);
    assert_int_equal(one.flow_lines, all.flow_lines); /* every flow still has its record */
}

/* ---- bytes after a hole, in a flow not yet recognised ------------------ */

struct pkt_spec {
    int dir; /* 0: client 10.0.0.1:40000 -> 10.0.0.2:443 */
    uint32_t seq, ack;
    uint8_t flags;
    const char *data;
    size_t len;
};

/* Feeds the packets (Ethernet, IPv4, TCP) to a pipeline writing EVE; the
 * counters, and the EVE text in eve (cap bytes). */
static void run_packets(const struct pkt_spec *ps, size_t n, struct pipeline_counters *cnt,
                        char *eve_text, size_t cap)
{
    char eve_path[] = "/tmp/kw-pipe-gap-XXXXXX";
    int fd = mkstemp(eve_path);
    assert_true(fd >= 0);
    close(fd);
    struct kw_eve *eve = NULL;
    assert_int_equal(kw_eve_open(eve_path, &eve), KW_E_OK);
    struct pipeline_config pc;
    pipeline_config_default(&pc);
    pc.classify = false;
    pc.eve = eve;
    struct pipeline *p = NULL;
    assert_int_equal(pipeline_new(&pc, &p), KW_E_OK);
    static uint8_t frame[2048];
    for (size_t i = 0; i < n; i++) {
        const struct pkt_spec *q = &ps[i];
        size_t plen = q->data ? q->len : 0;
        assert_true(54 + plen <= sizeof frame);
        memset(frame, 0, 54);
        frame[12] = 0x08;
        uint8_t *ip = frame + 14, *tcp = ip + 20;
        uint16_t tot = (uint16_t)(40 + plen);
        ip[0] = 0x45, ip[2] = (uint8_t)(tot >> 8), ip[3] = (uint8_t)tot, ip[8] = 64, ip[9] = 6;
        uint8_t a[4] = {10, 0, 0, 1}, b[4] = {10, 0, 0, 2};
        memcpy(ip + 12, q->dir ? b : a, 4);
        memcpy(ip + 16, q->dir ? a : b, 4);
        uint16_t sp = q->dir ? 443 : 40000, dp = q->dir ? 40000 : 443;
        tcp[0] = (uint8_t)(sp >> 8), tcp[1] = (uint8_t)sp, tcp[2] = (uint8_t)(dp >> 8),
        tcp[3] = (uint8_t)dp;
        for (int k = 0; k < 4; k++) {
            tcp[4 + k] = (uint8_t)(q->seq >> (24 - 8 * k));
            tcp[8 + k] = (uint8_t)(q->ack >> (24 - 8 * k));
        }
        tcp[12] = 0x50, tcp[13] = q->flags, tcp[14] = 0xff, tcp[15] = 0xff;
        if (plen) memcpy(frame + 54, q->data, plen);
        struct cap_pkt pkt = {0};
        pkt.data = frame;
        pkt.caplen = pkt.wirelen = (uint32_t)(54 + plen);
        pkt.ts = KW_TS_SEC(1000) + (kw_ts)i * 1000;
        pkt.linktype = 1;
        pipeline_packet(p, &pkt);
    }
    pipeline_finish(p);
    *cnt = *pipeline_counters(p);
    pipeline_destroy(p);
    kw_eve_close(eve);
    FILE *f = fopen(eve_path, "r");
    assert_non_null(f);
    size_t got = fread(eve_text, 1, cap - 1, f);
    eve_text[got] = 0;
    fclose(f);
    unlink(eve_path);
}

/* A handshake, then the client's first 100 bytes lost and `after` past
 * them; the server acknowledges everything (the hole is given up at once)
 * and, when `resp`, answers. */
static void hole_flow(const char *after, const char *resp, struct pipeline_counters *cnt, char *eve,
                      size_t cap)
{
    size_t alen = strlen(after);
    uint32_t end = 1101 + (uint32_t)alen;
    struct pkt_spec ps[] = {
        {0, 1000, 0, 0x02, NULL, 0},
        {1, 5000, 1001, 0x12, NULL, 0},
        {0, 1001, 5001, 0x10, NULL, 0},
        {0, 1101, 5001, 0x18, after, alen},
        {1, 5001, end, 0x18, resp, resp ? strlen(resp) : 0},
    };
    run_packets(ps, sizeof ps / sizeof ps[0], cnt, eve, cap);
}

/* 1,200 bytes of 'x' after a hole were an HTTP flow (the hole started a
 * parser); bytes with no start line after a hole are not HTTP, and a
 * request found inside the bytes after a hole still is, told of the loss. */
static void test_after_hole(void **state)
{
    (void)state;
    static char eve[65536], xs[1201];
    struct pipeline_counters c;
    memset(xs, 'x', 1200);
    hole_flow(xs, NULL, &c, eve, sizeof eve);
    assert_int_equal(c.http_flows, 0);
    assert_int_equal(c.transactions, 0);
    assert_null(strstr(eve, "\"event_type\":\"http\""));

    /* the tail of a lost request's body, then the next request in the
     * same segment, answered twice (the lost one and this one) */
    hole_flow("ody-tail\r\nGET /after HTTP/1.1\r\nHost: api.test\r\n\r\n",
              "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
              "HTTP/1.1 204 No Content\r\n\r\n",
              &c, eve, sizeof eve);
    assert_int_equal(c.http_flows, 1);
    assert_non_null(strstr(eve, "\"url\":\"/after\""));

    /* a request line cut at the end of a segment after the hole: held,
     * found when its rest arrives (it was dropped with its segment) */
    {
        const char *a1 = "ody-tail\r\nGET /spl", *a2 = "it HTTP/1.1\r\nHost: api.test\r\n\r\n";
        uint32_t s2 = 1101 + (uint32_t)strlen(a1), e2 = s2 + (uint32_t)strlen(a2);
        const char *rs = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        struct pkt_spec ps[] = {
            {0, 1000, 0, 0x02, NULL, 0},
            {1, 5000, 1001, 0x12, NULL, 0},
            {0, 1001, 5001, 0x10, NULL, 0},
            {0, 1101, 5001, 0x18, a1, strlen(a1)},
            {0, s2, 5001, 0x18, a2, strlen(a2)},
            {1, 5001, e2, 0x18, rs, strlen(rs)},
        };
        run_packets(ps, sizeof ps / sizeof ps[0], &c, eve, sizeof eve);
        assert_int_equal(c.http_flows, 1);
        assert_non_null(strstr(eve, "\"url\":\"/split\""));
    }

    /* a request at the start of the bytes after the hole */
    hole_flow("GET /next HTTP/1.1\r\nHost: api.test\r\n\r\n",
              "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &c, eve, sizeof eve);
    assert_int_equal(c.http_flows, 1);
    assert_non_null(strstr(eve, "\"url\":\"/next\""));
}

/* ---- flows picked up midstream (no handshake seen) -------------------- */

/* Feeds chunks alternately as given: dir, data; no SYN, so the flow is
 * midstream (the server is the side on port 443). */
struct chunk {
    int dir;
    const char *data;
    size_t len; /* 0: strlen */
};

static void midstream_flow(const struct chunk *cs, size_t n, struct pipeline_counters *cnt,
                           char *eve, size_t cap)
{
    struct pkt_spec ps[64];
    uint32_t seq[2] = {1000, 5000};
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        size_t len = cs[i].len ? cs[i].len : strlen(cs[i].data);
        int d = cs[i].dir;
        ps[i] = (struct pkt_spec){d, seq[d], seq[!d], 0x18, cs[i].data, len};
        seq[d] += (uint32_t)len;
    }
    run_packets(ps, n, cnt, eve, cap);
}

/* Midstream flows were taken as HTTP on their first byte: 1,200 bytes of
 * 'x' were an HTTP flow with a parser. Now a whole start line at a line
 * start decides, as after a hole; a request after a body's tail, a start
 * line split over two segments, and a request after a long response body
 * (more chunks and bytes than one direction's probe budget) are still
 * found; bytes no side ever makes HTTP are given up. */
static void test_midstream(void **state)
{
    (void)state;
    static char eve[65536], xs[1201], body[1001];
    struct pipeline_counters c;
    memset(xs, 'x', 1200);
    struct chunk junk[] = {{0, xs, 0}, {1, "ok\r\n", 0}};
    midstream_flow(junk, 2, &c, eve, sizeof eve);
    assert_int_equal(c.http_flows, 0);
    assert_null(strstr(eve, "\"event_type\":\"http\""));

    struct chunk tail[] = {
        {0, "ody-tail\r\nGET /after HTTP/1.1\r\nHost: api.test\r\n\r\n", 0},
        {1, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0},
    };
    midstream_flow(tail, 2, &c, eve, sizeof eve);
    assert_int_equal(c.http_flows, 1);
    assert_non_null(strstr(eve, "\"url\":\"/after\""));
    assert_non_null(strstr(eve, "\"status\":200"));

    struct chunk split[] = {
        {0, "GET /spl", 0},
        {0, "it HTTP/1.1\r\nHost: api.test\r\n\r\n", 0},
        {1, "HTTP/1.1 204 No Content\r\n\r\n", 0},
    };
    midstream_flow(split, 3, &c, eve, sizeof eve);
    assert_int_equal(c.http_flows, 1);
    assert_non_null(strstr(eve, "\"url\":\"/split\""));

    /* a status line cut after "HTTP/1" (a response seen first) */
    struct chunk status[] = {
        {1, "HTTP/1", 0},
        {1, ".1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0},
    };
    midstream_flow(status, 2, &c, eve, sizeof eve);
    assert_int_equal(c.http_flows, 1);
    assert_non_null(strstr(eve, "\"status\":404"));

    /* picked up inside a 20 KB download: 20 chunks of body, then the
     * client's next request and its answer */
    memset(body, 'b', 1000);
    struct chunk dl[23];
    for (int i = 0; i < 20; i++)
        dl[i] = (struct chunk){1, body, 1000};
    dl[20] = (struct chunk){0, "GET /next HTTP/1.1\r\nHost: api.test\r\n\r\n", 0};
    dl[21] = (struct chunk){1, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0};
    midstream_flow(dl, 22, &c, eve, sizeof eve);
    assert_int_equal(c.http_flows, 1);
    assert_int_equal(c.non_http_flows, 0);
    assert_non_null(strstr(eve, "\"url\":\"/next\""));

    /* both directions spend their budget on bytes with no start line */
    struct chunk both[20];
    for (int i = 0; i < 20; i++)
        both[i] = (struct chunk){i & 1, body, 1000};
    midstream_flow(both, 20, &c, eve, sizeof eve);
    assert_int_equal(c.http_flows, 0);
    assert_int_equal(c.non_http_flows, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_parser_bound),
        cmocka_unit_test(test_cold_template),
        cmocka_unit_test(test_classify_skips_request_line),
        cmocka_unit_test(test_after_hole),
        cmocka_unit_test(test_midstream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
