/* Tests of `limits:` (rules/rules_limits.c, analyzer/limits.c): the keys,
 * dotted and nested, with units; every mistake at its line and column;
 * the defaults when nothing is written; the split of totals across
 * workers, flow.memcap setting the table size, a share under one worker's
 * need refused; the pipeline that comes out of it really bounded (its flow
 * table evicts at the computed size); hits read from the stats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "limits.h"
#include "rules.h"
#include "tls_conn.h"

#define MIB (UINT64_C(1) << 20)

static struct rules_model *load(const char *cfg, struct rules_diag *d, enum kw_err want)
{
    struct rules_model *m = NULL;
    rules_diag_init(d);
    assert_int_equal(rules_load_mem("kw.yaml", cfg, NULL, NULL, &m, d), want);
    return m;
}

static void test_defaults(void **state)
{
    (void)state;
    struct rules_diag d;
    struct rules_model *m = load(NULL, &d, KW_E_OK);
    struct limits_eff e;
    char err[512];
    assert_int_equal(limits_resolve(&m->config, 1, &e, err, sizeof err), KW_E_OK);
    /* the modules' compiled defaults, flow.max binding */
    struct pipeline_config pc;
    pipeline_config_default(&pc);
    assert_int_equal(e.total.flow_max, pc.flow.max_flows);
    assert_int_equal(e.flow_max, pc.flow.max_flows);
    assert_false(e.flow_by_memcap);
    assert_true(e.flow_mem <= e.total.flow_memcap);
    assert_int_equal(e.stream_memcap, pc.flow.memcap);
    assert_int_equal(e.defrag_memcap, pc.defrag.memcap);
    assert_int_equal(e.total.http_max_header_bytes, pc.h1.max_header_bytes);
    for (size_t i = 0; i < sizeof e.written; i++)
        assert_false(e.written[i]);
    rules_model_free(m);
    rules_diag_free(&d);
}

static void test_full(void **state)
{
    (void)state;
    struct rules_diag d;
    struct rules_model *m =
        load("limits:\n"
             "  flow.max: 1000000\n"
             "  flow.memcap: 1GiB\n"
             "  stream: { memcap: 64MiB }\n"
             "  defrag.memcap: 4MB\n"
             "  defrag: { max_datagrams: 1024, max_fragments: 64 }\n"
             "  http.max_header_bytes: 16KiB\n"
             "  http.memcap: 100MiB\n"
             "  http2: { memcap: 50MiB, max_header_list: 8KiB, max_table_size: 16KiB }\n",
             &d, KW_E_OK);
    const struct rules_res_limits *l = &m->config.limits;
    assert_int_equal(l->flow_max, 1000000);
    assert_int_equal(l->flow_memcap, UINT64_C(1) << 30);
    assert_int_equal(l->stream_memcap, 64 * MIB);
    assert_int_equal(l->defrag_memcap, 4000000); /* MB: powers of 1000 */
    assert_int_equal(l->defrag_max_datagrams, 1024);
    assert_int_equal(l->defrag_max_fragments, 64);
    assert_int_equal(l->http_max_header_bytes, 16384);
    assert_int_equal(l->http_memcap, 100 * MIB);
    assert_int_equal(l->http2_memcap, 50 * MIB);
    assert_int_equal(l->http2_max_header_list, 8192);
    assert_int_equal(l->http2_max_table_size, 16384);
    assert_int_equal(l->loc.line, 1);

    /* four workers: totals split, per-message limits whole */
    struct limits_eff e;
    char err[512];
    assert_int_equal(limits_resolve(&m->config, 4, &e, err, sizeof err), KW_E_OK);
    assert_int_equal(e.workers, 4);
    assert_int_equal(e.flow_max, 250000);
    assert_int_equal(e.stream_memcap, 16 * MIB);
    assert_int_equal(e.defrag_memcap, 1000000);
    assert_int_equal(e.defrag_max_datagrams, 256);
    assert_int_equal(e.http_memcap, 25 * MIB);
    struct pipeline_config pc;
    pipeline_config_default(&pc);
    limits_apply(&e, &pc);
    assert_int_equal(pc.flow.max_flows, 250000);
    assert_int_equal(pc.flow.memcap, 16 * MIB);
    assert_int_equal(pc.defrag.memcap, 1000000);
    assert_int_equal(pc.defrag.max_datagrams, 256);
    assert_int_equal(pc.defrag.max_fragments, 64);
    assert_int_equal(pc.h1.max_header_bytes, 16384);
    assert_int_equal(pc.h1.memcap, 25 * MIB);
    assert_int_equal(pc.h2.memcap, 50 * MIB / 4);
    assert_int_equal(pc.h2.max_header_list, 8192);
    assert_int_equal(pc.h2.max_table_size, 16384);
    rules_model_free(m);
    rules_diag_free(&d);
}

/* Each bad line is one error at that line; the good line 8 none. */
static void test_errors(void **state)
{
    (void)state;
    static const char cfg[] = "limits:\n"
                              "  flow.max: 100\n"                /* 2: under 1024 */
                              "  flow.memcap: 64\n"              /* 3: 64 bytes */
                              "  stream.memcap: 2XB\n"           /* 4: unit */
                              "  defrag.memcp: 1MiB\n"           /* 5: unknown key */
                              "  http: { max_header_byte: 1 }\n" /* 6: unknown nested */
                              "  http2.max_table_size: 2GiB\n"   /* 7: over 1 MiB */
                              "  defrag.max_fragments: 64\n"     /* 8: fine */
                              "  defrag.max_datagrams: many\n"   /* 9: not a number */
                              "  bogus: { max: 1 }\n";           /* 10: unknown section */
    struct rules_diag d;
    struct rules_model *m = load(cfg, &d, KW_E_CONFIG);
    int lines[16] = {0};
    for (size_t i = 0; i < d.n; i++) {
        assert_true(d.items[i].line >= 1 && d.items[i].line < 16);
        assert_true(d.items[i].col > 1);
        lines[d.items[i].line]++;
    }
    for (int l = 2; l <= 10; l++)
        assert_int_equal(lines[l], l == 8 ? 0 : 1);
    assert_int_equal(rules_diag_errors(&d), 8);
    /* the messages say what and how */
    for (size_t i = 0; i < d.n; i++) {
        if (d.items[i].line == 2) {
            assert_non_null(strstr(d.items[i].msg, "limits.flow.max: 100 is too small"));
            assert_non_null(strstr(d.items[i].hint, "between 1024 and 16777216"));
        }
        if (d.items[i].line == 5) assert_non_null(strstr(d.items[i].hint, "defrag.memcap"));
        if (d.items[i].line == 7) assert_non_null(strstr(d.items[i].hint, "4KiB and 1MiB"));
    }
    rules_model_free(m);
    rules_diag_free(&d);
}

/* flow.memcap smaller than flow.max's flows: the table is cut to what
 * fits, and a share under one worker's need is an error naming the line. */
static void test_split(void **state)
{
    (void)state;
    struct rules_diag d;
    struct rules_model *m =
        load("capture: { workers: 2 }\nlimits: { flow.max: 1000000, flow.memcap: 64MiB }\n", &d,
             KW_E_OK);
    struct limits_eff e;
    char err[512];
    assert_int_equal(limits_resolve(&m->config, 2, &e, err, sizeof err), KW_E_OK);
    assert_true(e.flow_by_memcap);
    assert_true(e.flow_max < 500000 && e.flow_max > 1000);
    assert_true(e.flow_mem <= 32 * MIB);
    /* one more flow would not fit */
    struct pipeline_config pc;
    pipeline_config_default(&pc);
    assert_true(flow_table_mem(e.flow_max + 1) + pipeline_flows_mem(&pc, e.flow_max + 1) >
                32 * MIB);
    /* one worker gets the whole memcap: about twice the flows */
    struct limits_eff e1;
    assert_int_equal(limits_resolve(&m->config, 1, &e1, err, sizeof err), KW_E_OK);
    assert_true(e1.flow_max > e.flow_max);
    rules_model_free(m);
    rules_diag_free(&d);

    m = load("\nlimits: { defrag.memcap: 128KiB }\n", &d, KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 2, &e, err, sizeof err), KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 4, &e, err, sizeof err), KW_E_CONFIG);
    assert_non_null(strstr(err, "kw.yaml:2: error: limits.defrag.memcap: 128KiB over 4 packet "
                                "workers is 32KiB each"));
    assert_non_null(strstr(err, "give at least 256KiB"));
    rules_model_free(m);
    rules_diag_free(&d);

    m = load("limits: { flow.memcap: 1MiB }\n", &d, KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 1, &e, err, sizeof err), KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 64, &e, err, sizeof err), KW_E_CONFIG);
    assert_non_null(strstr(err, "limits.flow.memcap"));
    rules_model_free(m);
    rules_diag_free(&d);
}

/* The stream, HTTP/1 queue, HTTP/2 stream and nDPI pool keys: parsed
 * dotted and nested, put into every worker's pipeline config (the pool
 * split, the rest whole), ranges and the window/buffer pair checked at
 * their lines. */
static void test_stream_http_keys(void **state)
{
    (void)state;
    struct rules_diag d;
    struct rules_model *m = load("limits:\n"
                                 "  stream: { max_buffer: 256KiB, ooo_window: 64KiB }\n"
                                 "  http: { max_headers: 32, max_pending: 8 }\n"
                                 "  http2.max_streams: 16\n"
                                 "  classify.max_active: 4096\n",
                                 &d, KW_E_OK);
    const struct rules_res_limits *l = &m->config.limits;
    assert_int_equal(l->stream_max_buffer, 256 * 1024);
    assert_int_equal(l->stream_ooo_window, 64 * 1024);
    assert_int_equal(l->http_max_headers, 32);
    assert_int_equal(l->http_max_pending, 8);
    assert_int_equal(l->http2_max_streams, 16);
    assert_int_equal(l->classify_max_active, 4096);
    struct limits_eff e;
    char err[512];
    assert_int_equal(limits_resolve(&m->config, 4, &e, err, sizeof err), KW_E_OK);
    struct pipeline_config pc;
    pipeline_config_default(&pc);
    limits_apply(&e, &pc);
    assert_int_equal(pc.flow.stream_buf_max, 256 * 1024);
    assert_int_equal(pc.flow.ooo_window, 64 * 1024);
    assert_int_equal(pc.h1.max_headers, 32);
    assert_int_equal(pc.h1.max_pending, 8);
    assert_int_equal(pc.h2.max_streams, 16);
    assert_int_equal(pc.classify_max_active, 1024);
    /* a stream.memcap share must hold one full direction: the configured
     * buffer, not the compiled one */
    rules_model_free(m);
    rules_diag_free(&d);
    m = load("limits: { stream.memcap: 1MiB, stream.max_buffer: 512KiB }\n", &d, KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 2, &e, err, sizeof err), KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 4, &e, err, sizeof err), KW_E_CONFIG);
    assert_non_null(strstr(err, "limits.stream.memcap"));
    rules_model_free(m);
    rules_diag_free(&d);

    /* the window past a hole is held in the buffer: not larger than it,
     * said at the window's own line (also against the default buffer) */
    m = load("limits:\n  stream.max_buffer: 64KiB\n  stream.ooo_window: 128KiB\n", &d, KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 1, &e, err, sizeof err), KW_E_CONFIG);
    assert_non_null(strstr(err, "kw.yaml:3: error: limits.stream.ooo_window: 128KiB is more than "
                                "stream.max_buffer (64KiB)"));
    rules_model_free(m);
    rules_diag_free(&d);
    m = load("\nlimits: { stream.ooo_window: 2MiB }\n", &d, KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 1, &e, err, sizeof err), KW_E_CONFIG);
    assert_non_null(strstr(err, "kw.yaml:2: error: limits.stream.ooo_window: 2MiB"));
    rules_model_free(m);
    rules_diag_free(&d);

    static const char bad[] = "limits:\n"
                              "  stream.max_buffer: 1KiB\n"     /* 2: under 4 KiB */
                              "  http.max_headers: 4\n"         /* 3: under 8 */
                              "  http.max_pending: 0\n"         /* 4: under 1 */
                              "  http2: { max_streams: 1e9 }\n" /* 5: not a count */
                              "  classify.max_active: 8\n";     /* 6: under 16 */
    m = load(bad, &d, KW_E_CONFIG);
    int lines[8] = {0};
    for (size_t i = 0; i < d.n; i++) {
        assert_true(d.items[i].line >= 2 && d.items[i].line <= 6);
        assert_true(d.items[i].col > 1);
        lines[d.items[i].line]++;
    }
    for (int i = 2; i <= 6; i++)
        assert_int_equal(lines[i], 1);
    rules_model_free(m);
    rules_diag_free(&d);

    /* the pool is a total: with more workers than it has states, refused */
    m = load("limits: { classify.max_active: 16 }\n", &d, KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 16, &e, err, sizeof err), KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 32, &e, err, sizeof err), KW_E_CONFIG);
    assert_non_null(strstr(err, "limits.classify.max_active"));
    rules_model_free(m);
    rules_diag_free(&d);
}

/* The header-block, head-copy and segment-count keys (session 4): parsed,
 * applied whole in every worker, and the buffers count in http.memcap's
 * and http2.memcap's need. */
static void test_block_keys(void **state)
{
    (void)state;
    struct rules_diag d;
    struct rules_model *m = load("limits:\n"
                                 "  http2: { max_headers: 16, max_continuations: 2,\n"
                                 "           max_header_block: 16KiB }\n"
                                 "  http: { request_buffer: 4KiB, response_buffer: 1KiB }\n"
                                 "  stream.ooo_max_segments: 16\n",
                                 &d, KW_E_OK);
    const struct rules_res_limits *l = &m->config.limits;
    assert_int_equal(l->http2_max_headers, 16);
    assert_int_equal(l->http2_max_continuations, 2);
    assert_int_equal(l->http2_max_header_block, 16 * 1024);
    assert_int_equal(l->http_request_buffer, 4096);
    assert_int_equal(l->http_response_buffer, 1024);
    assert_int_equal(l->stream_ooo_max_segments, 16);
    struct limits_eff e;
    char err[512];
    assert_int_equal(limits_resolve(&m->config, 4, &e, err, sizeof err), KW_E_OK);
    struct pipeline_config pc;
    pipeline_config_default(&pc);
    limits_apply(&e, &pc);
    assert_int_equal(pc.h2.max_headers, 16);
    assert_int_equal(pc.h2.max_continuations, 2);
    assert_int_equal(pc.h2.max_header_block, 16 * 1024);
    assert_int_equal(pc.h1.req_arena_bytes, 4096);
    assert_int_equal(pc.h1.resp_arena_bytes, 1024);
    assert_int_equal(pc.flow.ooo_max_segments, 16);
    rules_model_free(m);
    rules_diag_free(&d);

    /* a bigger request buffer raises what one HTTP/1 parser may take: a
     * 1 MiB http.memcap holds one 512 KiB buffer, not two (workers) */
    m = load("limits: { http.memcap: 1MiB, http.request_buffer: 600KiB }\n", &d, KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 1, &e, err, sizeof err), KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 2, &e, err, sizeof err), KW_E_CONFIG);
    assert_non_null(strstr(err, "limits.http.memcap"));
    rules_model_free(m);
    rules_diag_free(&d);
    m = load("limits: { http2.memcap: 1MiB, http2.max_header_block: 900KiB }\n", &d, KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 1, &e, err, sizeof err), KW_E_CONFIG);
    assert_non_null(strstr(err, "limits.http2.memcap"));
    rules_model_free(m);
    rules_diag_free(&d);

    static const char bad[] = "limits:\n"
                              "  http2.max_headers: 7\n"          /* 2: under 8 */
                              "  http2.max_continuations: 0\n"    /* 3: under 1 */
                              "  http2.max_header_block: 32MiB\n" /* 4: over 16 MiB */
                              "  http.request_buffer: 512\n"      /* 5: under 1 KiB */
                              "  http.response_buffer: 1MiB\n"    /* 6: over 512 KiB */
                              "  stream.ooo_max_segments: 4\n";   /* 7: under 8 */
    m = load(bad, &d, KW_E_CONFIG);
    int lines[9] = {0};
    for (size_t i = 0; i < d.n; i++) {
        assert_true(d.items[i].line >= 2 && d.items[i].line <= 7);
        assert_true(d.items[i].col > 1);
        lines[d.items[i].line]++;
    }
    for (int i = 2; i <= 7; i++)
        assert_int_equal(lines[i], 1);
    rules_model_free(m);
    rules_diag_free(&d);
}

/* Every share under one worker's need is reported, one line each (only
 * the first was: an operator raising the workers fixed one value per run
 * of check). */
static void test_all_share_errors(void **state)
{
    (void)state;
    struct rules_diag d;
    struct rules_model *m = load("limits:\n"
                                 "  stream.memcap: 4MiB\n"
                                 "  tls.memcap: 2MiB\n"
                                 "  classify.max_active: 16\n",
                                 &d, KW_E_OK);
    struct limits_eff e;
    char err[4096];
    assert_int_equal(limits_resolve(&m->config, 32, &e, err, sizeof err), KW_E_CONFIG);
    assert_non_null(strstr(err, "limits.classify.max_active"));
    assert_non_null(strstr(err, "limits.stream.memcap"));
    assert_non_null(strstr(err, "limits.tls.memcap"));
    int lines = 1;
    for (const char *q = strchr(err, '\n'); q; q = strchr(q + 1, '\n'))
        lines++;
    assert_int_equal(lines, 3);
    /* a short buffer holds what fits, never overruns */
    char small[100];
    assert_int_equal(limits_resolve(&m->config, 32, &e, small, sizeof small), KW_E_CONFIG);
    assert_true(strlen(small) < sizeof small);
    /* and with fewer workers, none */
    assert_int_equal(limits_resolve(&m->config, 1, &e, err, sizeof err), KW_E_OK);
    rules_model_free(m);
    rules_diag_free(&d);
}

/* limits_same: written values compared, not where they were written. */
static void test_same(void **state)
{
    (void)state;
    struct rules_diag d1, d2, d3;
    struct rules_model *a = load("limits: { flow.max: 2048 }\n", &d1, KW_E_OK);
    struct rules_model *b = load("\n\nlimits:\n  flow: { max: 2048 }\n", &d2, KW_E_OK);
    struct rules_model *c = load("limits: { flow.max: 4096 }\n", &d3, KW_E_OK);
    assert_true(limits_same(&a->config.limits, &b->config.limits));
    assert_false(limits_same(&a->config.limits, &c->config.limits));
    rules_model_free(a);
    rules_model_free(b);
    rules_model_free(c);
    rules_diag_free(&d1);
    rules_diag_free(&d2);
    rules_diag_free(&d3);
}

/* A real pipeline built from the limits holds no more flows than computed:
 * SYNs from e.flow_max + 100 distinct sources evict 100, and the stats'
 * limits object puts those hits under flow.memcap (the binding one). */
static void test_pipeline_bounded(void **state)
{
    (void)state;
    struct rules_diag d;
    struct rules_model *m = load("limits: { flow.max: 100000, flow.memcap: 2MiB }\n", &d, KW_E_OK);
    struct limits_eff e;
    char err[512];
    assert_int_equal(limits_resolve(&m->config, 1, &e, err, sizeof err), KW_E_OK);
    assert_true(e.flow_by_memcap);
    struct pipeline_config pc;
    pipeline_config_default(&pc);
    limits_apply(&e, &pc);
    struct pipeline *p = NULL;
    assert_int_equal(pipeline_new(&pc, &p), KW_E_OK);
    uint8_t frame[54];
    uint32_t n = e.flow_max + 100;
    for (uint32_t i = 0; i < n; i++) {
        memset(frame, 0, sizeof frame);
        frame[12] = 0x08; /* IPv4 */
        uint8_t *ip = frame + 14, *tcp = ip + 20;
        ip[0] = 0x45;
        ip[3] = 40;
        ip[8] = 64;
        ip[9] = 6;
        ip[12] = 10;
        ip[13] = (uint8_t)(i >> 16);
        ip[14] = (uint8_t)(i >> 8);
        ip[15] = (uint8_t)i;
        ip[16] = 192, ip[17] = 0, ip[18] = 2, ip[19] = 1;
        tcp[0] = 0x9c, tcp[1] = 0x40; /* 40000 -> 443 */
        tcp[2] = 0x01, tcp[3] = 0xbb;
        tcp[12] = 0x50;
        tcp[13] = 0x02; /* SYN */
        struct cap_pkt pkt = {0};
        pkt.data = frame;
        pkt.caplen = pkt.wirelen = sizeof frame;
        pkt.ts = KW_TS_SEC(1000) + i;
        pkt.linktype = 1;
        pipeline_packet(p, &pkt);
    }
    json_t *s = pipeline_stats_json(p);
    json_t *flow = json_object_get(s, "flow");
    assert_int_equal(json_integer_value(json_object_get(flow, "flows_created")), n);
    assert_int_equal(json_integer_value(json_object_get(flow, "flows_active")), e.flow_max);
    assert_int_equal(json_integer_value(json_object_get(flow, "flow_limit_hits")), 100);
    json_t *lj = limits_stats_json(&e, s);
    json_t *hits = json_object_get(lj, "hits");
    assert_int_equal(json_integer_value(json_object_get(hits, "flow.memcap")), 100);
    assert_int_equal(json_integer_value(json_object_get(hits, "flow.max")), 0);
    assert_int_equal(json_integer_value(json_object_get(lj, "flow.memcap")), 2 * MIB);
    json_decref(lj);
    json_decref(s);
    pipeline_finish(p);
    pipeline_destroy(p);
    rules_model_free(m);
    rules_diag_free(&d);
}

static void on_hs(void *user, const struct tls_info *info, kw_ts ts)
{
    (void)user, (void)info, (void)ts;
}

/* tls.memcap: connections whose first record announces a 60,000-byte
 * ClientHello each grow a 64 KiB handshake buffer; under a 1 MiB memcap
 * the ctx never holds more, refusals are counted, and everything is given
 * back when they end. */
static void test_tls_memcap(void **state)
{
    (void)state;
    struct rules_diag d;
    struct rules_model *m = load("limits: { tls.memcap: 2MiB }\n", &d, KW_E_OK);
    struct limits_eff e;
    char err[512];
    assert_int_equal(limits_resolve(&m->config, 2, &e, err, sizeof err), KW_E_OK);
    assert_int_equal(e.tls_memcap, MIB);
    struct pipeline_config pc;
    pipeline_config_default(&pc);
    limits_apply(&e, &pc);
    assert_int_equal(pc.tls.memcap, MIB);
    struct tls_ctx *x = calloc(1, sizeof *x);
    assert_non_null(x);
    tls_ctx_init(x, &pc.tls, NULL);
    static const uint8_t rec[] = {0x16, 0x03, 0x01, 0x00, 0x05, /* record of 5 bytes */
                                  0x01, 0x00, 0xea, 0x60,       /* ClientHello, 60000 */
                                  0x03};
    struct tls_conn_cb cb = {.on_handshake = on_hs};
    struct tls_conn *c[64];
    size_t made = 0;
    for (int i = 0; i < 64; i++) {
        c[i] = tls_conn_new(x, &cb, false);
        if (!c[i]) continue;
        made++;
        uint8_t *copy = malloc(sizeof rec); /* exact size: ASan sees an over-read */
        memcpy(copy, rec, sizeof rec);
        (void)tls_conn_feed(c[i], 0, copy, sizeof rec, KW_TS_SEC(1));
        free(copy);
        assert_true(x->mem <= MIB);
    }
    assert_true(made > 0 && made < 64);
    assert_true(x->cnt.memcap_refusals > 0);
    assert_true(x->mem > MIB / 2); /* the buffers were charged */
    json_t *stats =
        json_pack("{s:{s:I}}", "tls", "memcap_refusals", (json_int_t)x->cnt.memcap_refusals);
    json_t *lj = limits_stats_json(&e, stats);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(lj, "hits"), "tls.memcap")),
                     x->cnt.memcap_refusals);
    json_decref(lj);
    json_decref(stats);
    for (int i = 0; i < 64; i++) {
        if (!c[i]) continue;
        tls_conn_close(c[i], KW_TS_SEC(2));
        tls_conn_destroy(c[i]);
    }
    assert_int_equal(x->mem, 0);
    free(x);
    rules_model_free(m);
    rules_diag_free(&d);
}

/* baseline.max_profiles / max_unattributed: parsed (dotted and nested),
 * the unattributed share defaults to nine tenths, more unattributed than
 * profiles is refused, and they are not split over workers. */
static void test_baseline_limits(void **state)
{
    (void)state;
    struct rules_diag d;
    struct limits_eff e;
    char err[512];
    struct rules_model *m = load(NULL, &d, KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 1, &e, err, sizeof err), KW_E_OK);
    assert_int_equal(e.total.baseline_max_profiles, 10000);
    assert_int_equal(e.total.baseline_max_unattributed, 9000);
    rules_model_free(m);
    rules_diag_free(&d);
    m = load("limits:\n  baseline: { max_profiles: 200 }\n", &d, KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 4, &e, err, sizeof err), KW_E_OK);
    assert_int_equal(e.total.baseline_max_profiles, 200);
    assert_int_equal(e.total.baseline_max_unattributed, 180);
    rules_model_free(m);
    rules_diag_free(&d);
    m = load("limits:\n  baseline.max_profiles: 200\n  baseline.max_unattributed: 300\n", &d,
             KW_E_OK);
    assert_int_equal(limits_resolve(&m->config, 1, &e, err, sizeof err), KW_E_CONFIG);
    assert_non_null(strstr(err, "kw.yaml:1: error: limits.baseline.max_unattributed: 300"));
    rules_model_free(m);
    rules_diag_free(&d);
    m = load("limits:\n  baseline.max_profiles: 3\n", &d, KW_E_CONFIG);
    assert_null(m);
    rules_diag_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),         cmocka_unit_test(test_full),
        cmocka_unit_test(test_errors),           cmocka_unit_test(test_split),
        cmocka_unit_test(test_stream_http_keys), cmocka_unit_test(test_same),
        cmocka_unit_test(test_pipeline_bounded), cmocka_unit_test(test_tls_memcap),
        cmocka_unit_test(test_baseline_limits),
        cmocka_unit_test(test_block_keys),
        cmocka_unit_test(test_all_share_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
