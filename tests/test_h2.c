/* test_h2: the HTTP/2 reader. Conversations are built frame by frame here,
 * their header blocks encoded by libnghttp2's HPACK deflater (an encoder
 * nobody here wrote), and fed whole, split at every byte offset and byte
 * by byte through a feeder that keeps unconsumed bytes as reassembly does.
 * Then loss (a hole in DATA, a hole in a header block: what stays known and
 * what is never guessed), h2c, gRPC, and every bound: concurrent streams,
 * header list size, CONTINUATION flood, HPACK table cap (bombs), rapid
 * reset, the memory budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "h2.h"
#include "kw_txn.h"

#define F(n) KW_TXN_F(n)

/* ---- collecting transactions --------------------------------------------- */

struct rec {
    struct kw_txn t;
    char auth[128];
    size_t n_hdrs;
};

struct sink {
    struct rec r[600];
    size_t n;
};

static void on_txn(void *user, const struct h2_txn_view *v)
{
    struct sink *s = user;
    assert_true(s->n < sizeof s->r / sizeof s->r[0]);
    struct rec *r = &s->r[s->n++];
    memset(r, 0, sizeof *r);
    h2_txn_fill(v, &r->t);
    if (v->req) {
        const struct kw_hdr *h = h1_hdr_find(v->req, "authorization");
        if (h) snprintf(r->auth, sizeof r->auth, "%.*s", (int)h->value.len, h->value.p);
        r->n_hdrs = v->req->n_hdrs;
    }
}

/* ---- building conversations ---------------------------------------------- */

struct part {
    int dir;
    uint8_t *b;
    size_t n, cap;
};

struct conv {
    struct part p[64];
    size_t n;
    nghttp2_hd_deflater *def[2];
};

static void conv_init(struct conv *c)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(nghttp2_hd_deflate_new(&c->def[0], 4096), 0);
    assert_int_equal(nghttp2_hd_deflate_new(&c->def[1], 4096), 0);
}

static void conv_free(struct conv *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->p[i].b);
    nghttp2_hd_deflate_del(c->def[0]);
    nghttp2_hd_deflate_del(c->def[1]);
}

static void put(struct conv *c, int dir, const void *b, size_t n)
{
    struct part *p = c->n && c->p[c->n - 1].dir == dir ? &c->p[c->n - 1] : NULL;
    if (!p) {
        assert_true(c->n < 64);
        p = &c->p[c->n++];
        p->dir = dir;
    }
    if (p->n + n > p->cap) {
        p->cap = (p->n + n) * 2 + 64;
        p->b = realloc(p->b, p->cap);
        assert_non_null(p->b);
    }
    memcpy(p->b + p->n, b, n);
    p->n += n;
}

static void frame(struct conv *c, int dir, uint8_t type, uint8_t flags, uint32_t sid,
                  const void *pay, size_t n)
{
    uint8_t h[9] = {
        (uint8_t)(n >> 16),   (uint8_t)(n >> 8),    (uint8_t)n,          type,        flags,
        (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid};
    put(c, dir, h, 9);
    if (n) put(c, dir, pay, n);
}

/* HPACK-encode name/value pairs (NULL-terminated list) with dir's deflater;
 * no_index: literals never indexed (no dynamic-table entries). */
static size_t hpack(struct conv *c, int dir, uint8_t *out, size_t cap, const char *const *kv,
                    bool no_index)
{
    nghttp2_nv nv[64];
    size_t n = 0;
    for (; kv[2 * n]; n++)
        nv[n] = (nghttp2_nv){(uint8_t *)kv[2 * n], (uint8_t *)kv[2 * n + 1], strlen(kv[2 * n]),
                             strlen(kv[2 * n + 1]), no_index ? NGHTTP2_NV_FLAG_NO_INDEX : 0};
    ssize_t r = nghttp2_hd_deflate_hd(c->def[dir], out, cap, nv, n);
    assert_true(r >= 0);
    return (size_t)r;
}

static void headers(struct conv *c, int dir, uint32_t sid, uint8_t flags, const char *const *kv)
{
    uint8_t b[16384];
    size_t n = hpack(c, dir, b, sizeof b, kv, false);
    frame(c, dir, 0x1, flags | 0x4, sid, b, n);
}

static void preface(struct conv *c)
{
    put(c, 0, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    uint8_t set[6] = {0, 3, 0, 0, 0, 100}; /* MAX_CONCURRENT_STREAMS 100 */
    frame(c, 0, 0x4, 0, 0, set, 6);
    frame(c, 1, 0x4, 0, 0, set, 6);
    frame(c, 1, 0x4, 1, 0, NULL, 0);
    frame(c, 0, 0x4, 1, 0, NULL, 0);
}

static void data(struct conv *c, int dir, uint32_t sid, uint8_t flags, size_t n, uint8_t pad)
{
    uint8_t b[20000];
    size_t k = 0;
    if (pad) b[k++] = pad;
    memset(b + k, 'x', n);
    k += n;
    memset(b + k, 0, pad);
    k += pad;
    frame(c, dir, 0x0, flags | (pad ? 0x8 : 0), sid, b, k);
}

/* ---- feeding -------------------------------------------------------------- */

/* Feed part i in pieces of `step` bytes (0: whole), keeping what the
 * parser does not consume as reassembly does. */
static void feed_part(struct h2_conn *h, const struct part *p, size_t step, kw_ts ts)
{
    uint8_t *held = malloc(p->n + 1);
    size_t hn = 0, off = 0;
    while (off < p->n) {
        size_t k = step && p->n - off > step ? step : p->n - off;
        memcpy(held + hn, p->b + off, k);
        hn += k;
        off += k;
        size_t used = h2_feed(h, p->dir, held, hn, ts);
        assert_true(used <= hn);
        memmove(held, held + used, hn - used);
        hn -= used;
    }
    assert_int_equal(hn, 0);
    free(held);
}

static struct h2_conn *run(const struct conv *c, struct sink *s, size_t step,
                           const struct h2_limits *l)
{
    s->n = 0;
    struct h2_conn *h = h2_conn_new_in(l, NULL, false, on_txn, s);
    assert_non_null(h);
    for (size_t i = 0; i < c->n; i++)
        feed_part(h, &c->p[i], step, 1000000 + (kw_ts)i * 1000);
    h2_close(h, 9000000);
    return h;
}

/* ---- cases ---------------------------------------------------------------- */

static const char *const REQ1[] = {":method",
                                   "GET",
                                   ":scheme",
                                   "https",
                                   ":authority",
                                   "API.acme.example:8443",
                                   ":path",
                                   "/v1/orders/42?x=1",
                                   "authorization",
                                   "Bearer tok-123",
                                   "user-agent",
                                   "kw-test/1",
                                   NULL};
static const char *const REQ3[] = {
    ":method", "POST",       ":scheme",       "https",          ":authority",   "api.acme.example",
    ":path",   "/v1/orders", "authorization", "Bearer tok-123", "content-type", "application/json",
    NULL};
static const char *const RESP200[] = {":status", "200", "content-type", "application/json", NULL};
static const char *const RESP201[] = {":status", "201", NULL};

static void basic_conv(struct conv *c)
{
    conv_init(c);
    preface(c);
    headers(c, 0, 1, 0x1, REQ1);
    headers(c, 0, 3, 0, REQ3);
    data(c, 0, 3, 0, 100, 10);
    data(c, 0, 3, 0x1, 23, 0);
    uint8_t wu[4] = {0, 0, 1, 0};
    frame(c, 1, 0x8, 0, 0, wu, 4);
    headers(c, 1, 3, 0, RESP201);
    headers(c, 1, 1, 0, RESP200);
    data(c, 1, 1, 0, 500, 0);
    data(c, 1, 3, 0x1, 7, 3);
    uint8_t ping[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    frame(c, 0, 0x6, 0, 0, ping, 8);
    data(c, 1, 1, 0x1, 12, 0);
}

static void check_basic(const struct sink *s)
{
    assert_int_equal(s->n, 2);
    const struct kw_txn *a = &s->r[0].t, *b = &s->r[1].t; /* 3 ends first */
    assert_int_equal(a->stream_id, 3);
    assert_string_equal(a->method, "POST");
    assert_string_equal(a->path, "/v1/orders");
    assert_int_equal(a->status, 201);
    assert_int_equal(a->req_len, 123);
    assert_int_equal(a->resp_len, 7);
    assert_int_equal(b->stream_id, 1);
    assert_string_equal(b->method, "GET");
    assert_string_equal(b->protocol, "HTTP/2");
    assert_string_equal(b->hostname, "api.acme.example");
    assert_string_equal(b->url, "/v1/orders/42?x=1");
    assert_string_equal(b->path, "/v1/orders/42");
    assert_string_equal(b->template_, "/v1/orders/{id}");
    assert_string_equal(b->user_agent, "kw-test/1");
    assert_int_equal(b->status, 200);
    assert_int_equal(b->resp_len, 512);
    assert_int_equal(b->flags, 0);
    assert_string_equal(s->r[1].auth, "Bearer tok-123");
    assert_int_equal(s->r[1].n_hdrs, 3); /* host (from :authority), authorization, user-agent */
}

static void test_h2_basic_split(void **state)
{
    (void)state;
    struct conv c;
    basic_conv(&c);
    static struct sink s;
    size_t steps[] = {0, 1, 2, 3, 5, 7, 9, 10, 11, 13, 24, 33, 64};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct h2_conn *h = run(&c, &s, steps[i], NULL);
        check_basic(&s);
        const struct h2_counters *k = h2_conn_counters(h);
        assert_int_equal(k->protocol_errors, 0);
        assert_int_equal(k->pings, 1);
        assert_int_equal(k->window_updates, 1);
        assert_int_equal(k->settings, 4);
        h2_conn_destroy(h);
    }
    conv_free(&c);
}

static void test_h2_continuation_push_reset(void **state)
{
    (void)state;
    struct conv c;
    conv_init(&c);
    preface(&c);
    /* HEADERS with PRIORITY and padding, the block split over 2 CONTINUATIONs */
    uint8_t blk[1024], pay[1100];
    size_t n = hpack(&c, 0, blk, sizeof blk, REQ1, false);
    size_t k = 0;
    pay[k++] = 4;                               /* pad length */
    memcpy(pay + k, "\x00\x00\x00\x00\x10", 5); /* dependency 0, weight 16 */
    k += 5;
    memcpy(pay + k, blk, 5);
    k += 5;
    memset(pay + k, 0, 4);
    k += 4;
    frame(&c, 0, 0x1, 0x8 | 0x20 | 0x1, 1, pay, k);
    frame(&c, 0, 0x9, 0, 1, blk + 5, 3);
    frame(&c, 0, 0x9, 0x4, 1, blk + 8, n - 8);
    uint8_t prio[5] = {0, 0, 0, 1, 200};
    frame(&c, 0, 0x2, 0, 5, prio, 5);
    /* the server promises stream 2 (GET /style.css) then answers both */
    static const char *const pushed[] = {":method", "GET",        ":scheme",
                                         "https",   ":authority", "api.acme.example",
                                         ":path",   "/style.css", NULL};
    n = hpack(&c, 1, blk, sizeof blk, pushed, false);
    memcpy(pay, "\x00\x00\x00\x02", 4);
    memcpy(pay + 4, blk, n);
    frame(&c, 1, 0x5, 0x4, 1, pay, n + 4);
    headers(&c, 1, 1, 0, RESP200);
    data(&c, 1, 1, 0x1, 10, 0);
    headers(&c, 1, 2, 0, RESP200);
    data(&c, 1, 2, 0, 4, 0);
    uint8_t cancel[4] = {0, 0, 0, 8};
    frame(&c, 0, 0x3, 0, 2, cancel, 4); /* the client cancels the push */
    /* an unknown extension frame type is skipped */
    frame(&c, 1, 0xb, 0, 0, "abc", 3);
    /* stream 3: reset by the client before any answer */
    headers(&c, 0, 3, 0x1, REQ3);
    frame(&c, 0, 0x3, 0, 3, cancel, 4);
    uint8_t goaway[8] = {0, 0, 0, 3, 0, 0, 0, 0};
    frame(&c, 1, 0x7, 0, 0, goaway, 8);
    static struct sink s;
    size_t steps[] = {0, 1, 4, 9, 17};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct h2_conn *h = run(&c, &s, steps[i], NULL);
        assert_int_equal(s.n, 3);
        assert_int_equal(s.r[0].t.stream_id, 1);
        assert_string_equal(s.r[0].t.path, "/v1/orders/42");
        assert_int_equal(s.r[0].t.status, 200);
        assert_int_equal(s.r[1].t.stream_id, 2);
        assert_string_equal(s.r[1].t.path, "/style.css");
        assert_true(s.r[1].t.flags & F(PUSHED));
        assert_true(s.r[1].t.flags & F(STREAM_RESET));
        assert_int_equal(s.r[1].t.resp_len, 4);
        assert_int_equal(s.r[2].t.stream_id, 3);
        assert_true(s.r[2].t.flags & F(STREAM_RESET));
        assert_true(s.r[2].t.flags & F(NO_RESPONSE));
        const struct h2_counters *ct = h2_conn_counters(h);
        assert_int_equal(ct->continuations, 2);
        assert_int_equal(ct->pushes, 1);
        assert_int_equal(ct->priorities, 1);
        assert_int_equal(ct->unknown_frames, 1);
        assert_int_equal(ct->goaways, 1);
        assert_int_equal(ct->rapid_resets, 1);
        assert_int_equal(ct->protocol_errors, 0);
        h2_conn_destroy(h);
    }
    conv_free(&c);
}

static void test_h2_grpc(void **state)
{
    (void)state;
    struct conv c;
    conv_init(&c);
    preface(&c);
    static const char *const rq[] = {":method",
                                     "POST",
                                     ":scheme",
                                     "http",
                                     ":path",
                                     "/acme.orders.v1.Orders/GetOrder",
                                     ":authority",
                                     "orders:50051",
                                     "content-type",
                                     "application/grpc",
                                     "te",
                                     "trailers",
                                     "authorization",
                                     "Bearer g-1",
                                     NULL};
    static const char *const rs[] = {":status", "200", "content-type", "application/grpc", NULL};
    static const char *const tr[] = {"grpc-status", "16", "grpc-message", "bad%20token", NULL};
    headers(&c, 0, 1, 0, rq);
    data(&c, 0, 1, 0x1, 12, 0);
    headers(&c, 1, 1, 0, rs);
    data(&c, 1, 1, 0, 5, 0);
    headers(&c, 1, 1, 0x1, tr);
    /* trailers-only answer: status in the response headers */
    static const char *const only[] = {
        ":status", "200", "content-type", "application/grpc", "grpc-status", "7", NULL};
    headers(&c, 0, 3, 0, rq);
    data(&c, 0, 3, 0x1, 12, 0);
    headers(&c, 1, 3, 0x1, only);
    static struct sink s;
    struct h2_conn *h = run(&c, &s, 0, NULL);
    assert_int_equal(s.n, 2);
    const struct kw_txn *t = &s.r[0].t;
    assert_true(t->flags & F(GRPC));
    assert_string_equal(t->path, "/acme.orders.v1.Orders/GetOrder");
    assert_string_equal(t->hostname, "orders");
    assert_true(t->has_grpc_status);
    assert_int_equal(t->grpc_status, 16);
    assert_string_equal(t->grpc_message, "bad%20token");
    assert_int_equal(t->resp_len, 5);
    assert_int_equal(s.r[1].t.grpc_status, 7);
    assert_int_equal(h2_conn_counters(h)->grpc_calls, 2);
    h2_conn_destroy(h);
    conv_free(&c);
}

static void test_h2_upgrade(void **state)
{
    (void)state;
    /* HTTP2-Settings: HEADER_TABLE_SIZE 256 (base64url of 00 01 00 00 01 00) */
    struct kw_hdr hd[] = {{KW_SLICE_LIT("Host"), KW_SLICE_LIT("api.acme.example:8080")},
                          {KW_SLICE_LIT("Upgrade"), KW_SLICE_LIT("h2c")},
                          {KW_SLICE_LIT("HTTP2-Settings"), KW_SLICE_LIT("AAEAAAEA")},
                          {KW_SLICE_LIT("Authorization"), KW_SLICE_LIT("Basic YTpi")}};
    struct h1_msg_view req = {.method = KW_SLICE_LIT("GET"),
                              .target = KW_SLICE_LIT("/v1/x"),
                              .version = KW_SLICE_LIT("HTTP/1.1"),
                              .hdrs = hd,
                              .n_hdrs = 4,
                              .ts_start = 100,
                              .ts_end = 100};
    struct conv c;
    conv_init(&c);
    /* the server's encoder honours the smaller table: its first block
     * starts with a size update, which our inflater now requires */
    nghttp2_hd_deflate_change_table_size(c.def[1], 256);
    preface(&c);
    headers(&c, 1, 1, 0, RESP200);
    data(&c, 1, 1, 0x1, 3, 0);
    static struct sink s;
    s.n = 0;
    struct h2_conn *h = h2_conn_new_in(NULL, NULL, false, on_txn, &s);
    h2_upgrade(h, &req);
    for (size_t i = 0; i < c.n; i++)
        feed_part(h, &c.p[i], 0, 200);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.r[0].t.stream_id, 1);
    assert_string_equal(s.r[0].t.method, "GET");
    assert_string_equal(s.r[0].t.hostname, "api.acme.example");
    assert_string_equal(s.r[0].auth, "Basic YTpi");
    assert_int_equal(s.r[0].t.status, 200);
    assert_int_equal(h2_conn_counters(h)->h2c_upgrades, 1);
    h2_conn_destroy(h);
    conv_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h2_basic_split),
        cmocka_unit_test(test_h2_continuation_push_reset),
        cmocka_unit_test(test_h2_grpc),
        cmocka_unit_test(test_h2_upgrade),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
