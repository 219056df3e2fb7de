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
#include <zlib.h>
#include <nghttp2/nghttp2.h>

#include "echo.h"
#include "h2.h"
#include "kw_exact.h"
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
    size_t gap_at, gap_len; /* gap_len > 0: these bytes are lost (h2_gap) */
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

/* The next bytes start a part of their own (so a gap can be placed in it). */
static void new_part(struct conv *c, int dir)
{
    assert_true(c->n < 64);
    c->p[c->n++].dir = dir;
}

static size_t part_len(const struct conv *c)
{
    return c->n ? c->p[c->n - 1].n : 0;
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
    static nghttp2_nv nv[512];
    size_t n = 0;
    for (; kv[2 * n]; n++) {
        assert_true(n < 512);
        nv[n] = (nghttp2_nv){(uint8_t *)kv[2 * n], (uint8_t *)kv[2 * n + 1], strlen(kv[2 * n]),
                             strlen(kv[2 * n + 1]), no_index ? NGHTTP2_NV_FLAG_NO_INDEX : 0};
    }
    ssize_t r = nghttp2_hd_deflate_hd(c->def[dir], out, cap, nv, n);
    assert_true(r >= 0);
    return (size_t)r;
}

/* A HEADERS frame, and CONTINUATIONs when the block passes 16384 bytes
 * (the default SETTINGS_MAX_FRAME_SIZE). */
static void headers(struct conv *c, int dir, uint32_t sid, uint8_t flags, const char *const *kv)
{
    enum { MAXF = 16384 };
    uint8_t *b = malloc(256 * 1024);
    size_t n = hpack(c, dir, b, 256 * 1024, kv, false);
    size_t k = n < MAXF ? n : MAXF;
    frame(c, dir, 0x1, flags | (k == n ? 0x4 : 0), sid, b, k);
    for (size_t off = k; off < n; off += k) {
        k = n - off < MAXF ? n - off : MAXF;
        frame(c, dir, 0x9, off + k == n ? 0x4 : 0, sid, b + off, k);
    }
    free(b);
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

/* DATA carrying these bytes (padded when pad). */
static void data_bytes(struct conv *c, int dir, uint32_t sid, uint8_t flags, const void *p,
                       size_t n, uint8_t pad)
{
    uint8_t b[4096];
    size_t k = 0;
    assert_true(n + pad + 1 <= sizeof b);
    if (pad) b[k++] = pad;
    memcpy(b + k, p, n);
    k += n;
    memset(b + k, 0, pad);
    k += pad;
    frame(c, dir, 0x0, flags | (pad ? 0x8 : 0), sid, b, k);
}

/* ---- feeding -------------------------------------------------------------- */

/* What the parser has not consumed yet, per direction, kept and offered
 * again with the next bytes as reassembly does. */
struct feeder {
    struct kw_exact_buf held[2]; /* exact-size: ASan sees reads past the end */
};

static void feed_bytes(struct h2_conn *h, struct feeder *f, int dir, const uint8_t *p, size_t n,
                       size_t step, kw_ts ts)
{
    size_t off = 0;
    while (off < n) {
        size_t k = step && n - off > step ? step : n - off;
        kw_exact_append(&f->held[dir], p + off, k);
        off += k;
        size_t used = h2_feed(h, dir, f->held[dir].p, f->held[dir].len, ts);
        assert_true(used <= f->held[dir].len);
        kw_exact_consume(&f->held[dir], used);
    }
}

static void feed_part(struct h2_conn *h, struct feeder *f, const struct part *p, size_t step,
                      kw_ts ts)
{
    if (!p->gap_len) {
        feed_bytes(h, f, p->dir, p->b, p->n, step, ts);
        return;
    }
    feed_bytes(h, f, p->dir, p->b, p->gap_at, step, ts);
    kw_exact_clear(&f->held[p->dir]); /* reassembly drops what precedes a hole */
    h2_gap(h, p->dir, p->gap_len, ts);
    size_t end = p->gap_at + p->gap_len;
    feed_bytes(h, f, p->dir, p->b + end, p->n - end, step, ts);
}

static struct h2_conn *run_in(const struct conv *c, struct sink *s, size_t step,
                              const struct h2_limits *l, struct h2_budget *b, bool midstream,
                              size_t first_part)
{
    s->n = 0;
    struct h2_conn *h = h2_conn_new_in(l, b, midstream, on_txn, s);
    assert_non_null(h);
    struct feeder f = {0};
    for (size_t i = first_part; i < c->n; i++)
        feed_part(h, &f, &c->p[i], step, 1000000 + (kw_ts)i * 1000);
    h2_close(h, 9000000);
    kw_exact_clear(&f.held[0]);
    kw_exact_clear(&f.held[1]);
    return h;
}

static struct h2_conn *run(const struct conv *c, struct sink *s, size_t step,
                           const struct h2_limits *l)
{
    return run_in(c, s, step, l, NULL, false, 0);
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
    assert_string_equal(b->template_, ""); /* named by the judge (pl_learn_template) */
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

/* Rule 6 over HTTP/2 (echo.h): a JSON answer's DATA, across frames and
 * padding, gzip-coded or not, names the item of the request's last
 * segment; a gRPC answer and a numeric last segment are not looked at. */
static void test_h2_echo(void **state)
{
    (void)state;
    struct conv c;
    conv_init(&c);
    preface(&c);
    static const char *const rq[] = {":method", "GET", ":scheme", "http", ":path",
                                     "/api/users/alice", ":authority", "api", NULL};
    static const char *const rq2[] = {":method", "GET", ":scheme", "http", ":path",
                                      "/api/users/alice", ":authority", "api",
                                      "accept-encoding", "gzip", NULL};
    static const char *const rq3[] = {":method", "GET", ":scheme", "http", ":path",
                                      "/api/users/42", ":authority", "api", NULL};
    static const char *const rs[] = {":status", "200", "content-type", "application/json", NULL};
    static const char *const rsz[] = {":status", "200", "content-type", "application/json",
                                      "content-encoding", "gzip", NULL};
    const char *b1 = "{\"x\":1,\"na", *b2 = "me\":\"alice\"}";
    headers(&c, 0, 1, 0x1, rq);
    headers(&c, 1, 1, 0, rs);
    data_bytes(&c, 1, 1, 0, b1, strlen(b1), 3);
    data_bytes(&c, 1, 1, 0x1, b2, strlen(b2), 0);
    /* the same answer gzip-coded */
    uint8_t z[256];
    uLongf zl = sizeof z;
    char plain[64];
    snprintf(plain, sizeof plain, "%s%s", b1, b2);
    z_stream zs = {0};
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)plain;
    zs.avail_in = (uInt)strlen(plain);
    zs.next_out = z;
    zs.avail_out = (uInt)zl;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    zl = zl - zs.avail_out;
    deflateEnd(&zs);
    headers(&c, 0, 3, 0x1, rq2);
    headers(&c, 1, 3, 0, rsz);
    data_bytes(&c, 1, 3, 0, z, 5, 0);
    data_bytes(&c, 1, 3, 0x1, z + 5, zl - 5, 0);
    /* a number: never looked for */
    headers(&c, 0, 5, 0x1, rq3);
    headers(&c, 1, 5, 0, rs);
    const char *b3 = "{\"id\":\"42\"}";
    data_bytes(&c, 1, 5, 0x1, b3, strlen(b3), 0);
    /* a coding zlib cannot read: not looked at, so not "answered whole" */
    static const char *const rsb[] = {":status", "200", "content-type", "application/json",
                                      "content-encoding", "br", NULL};
    headers(&c, 0, 7, 0x1, rq);
    headers(&c, 1, 7, 0, rsb);
    data_bytes(&c, 1, 7, 0x1, "\x1b\x0f\x00\xf8", 4, 0);
    static struct sink s;
    struct h2_conn *h = run(&c, &s, 0, NULL);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.r[0].t.resp_echo, (1u << 2) | ECHO_WHOLE);
    assert_int_equal(s.r[1].t.resp_echo, (1u << 2) | ECHO_WHOLE);
    assert_int_equal(s.r[1].t.resp_len, zl);
    assert_int_equal(s.r[2].t.resp_echo, 0);
    assert_int_equal(s.r[3].t.resp_echo, 0); /* br */
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
    struct feeder f = {0};
    for (size_t i = 0; i < c.n; i++)
        feed_part(h, &f, &c.p[i], 0, 200);
    kw_exact_clear(&f.held[0]);
    kw_exact_clear(&f.held[1]);
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

/* ---- loss ----------------------------------------------------------------- */

/* A hole inside a DATA payload: the frame's length says where the next
 * one starts; the table is intact, the next stream's dynamic references
 * decode; the stream is flagged and its length counts the hole. */
static void test_h2_gap_in_data(void **state)
{
    (void)state;
    struct conv c;
    conv_init(&c);
    preface(&c);
    headers(&c, 0, 1, 0x1, REQ1);
    headers(&c, 1, 1, 0, RESP200);
    new_part(&c, 1);
    data(&c, 1, 1, 0x1, 1000, 0);
    c.p[c.n - 1].gap_at = 9 + 100;
    c.p[c.n - 1].gap_len = 300;
    headers(&c, 0, 3, 0x1, REQ1); /* the deflater refers to stream 1's entries */
    headers(&c, 1, 3, 0x1, RESP200);
    static struct sink s;
    struct h2_conn *h = run(&c, &s, 0, NULL);
    assert_int_equal(s.n, 2);
    assert_true(s.r[0].t.flags & F(GAP_RESPONSE));
    assert_int_equal(s.r[0].t.resp_len, 1000);
    assert_int_equal(s.r[1].t.stream_id, 3);
    assert_string_equal(s.r[1].t.path, "/v1/orders/42");
    assert_string_equal(s.r[1].auth, "Bearer tok-123");
    assert_int_equal(s.r[1].t.flags, 0);
    const struct h2_counters *k = h2_conn_counters(h);
    assert_int_equal(k->gaps_absorbed, 1);
    assert_int_equal(k->hpack_broken, 0);
    h2_conn_destroy(h);
    conv_free(&c);
}

/* A hole inside a request header block: the client's table is lost. The
 * stream whose block was cut is reported by its answer only; a later
 * block made of literals and static entries is decoded exactly; a later
 * block referring to entries from before the hole is refused, never
 * guessed; DATA of known streams is still counted; the server's
 * direction is untouched. */
static void test_h2_gap_in_headers(void **state)
{
    (void)state;
    struct conv c;
    conv_init(&c);
    preface(&c);
    headers(&c, 0, 1, 0x1, REQ1);
    headers(&c, 1, 1, 0x1, RESP200);
    new_part(&c, 0);
    static const char *const req3[] = {":method", "GET", ":scheme", "https", ":authority",
                                       "api.acme.example", ":path", "/v1/secret/7",
                                       "x-cut-here", "a value long enough to hold the hole",
                                       NULL};
    size_t at = part_len(&c);
    headers(&c, 0, 3, 0x1, req3);
    c.p[c.n - 1].gap_at = at + 9 + 20;
    c.p[c.n - 1].gap_len = 10;
    /* stream 5: never-indexed literals with static names only */
    static const char *const req5[] = {":method", "POST", ":scheme", "http", ":path",
                                       "/v1/static-only", "content-type", "text/plain", NULL};
    uint8_t blk[512];
    size_t n = hpack(&c, 0, blk, sizeof blk, req5, true);
    frame(&c, 0, 0x1, 0x4, 5, blk, n);
    data(&c, 0, 5, 0x1, 50, 0);
    headers(&c, 0, 7, 0x1, REQ1); /* refers to stream 1's entries: unknown now */
    headers(&c, 1, 3, 0x1, RESP201);
    headers(&c, 1, 5, 0x1, RESP200);
    headers(&c, 1, 7, 0x1, RESP200);
    static struct sink s;
    struct h2_conn *h = run(&c, &s, 0, NULL);
    const struct h2_counters *k = h2_conn_counters(h);
    assert_int_equal(k->hpack_broken, 1);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.r[0].t.stream_id, 1);
    /* stream 3 is reported when its answer ends: its own END_STREAM was in
     * the lost block */
    assert_int_equal(s.r[1].t.stream_id, 3);
    assert_true(s.r[1].t.flags & F(NO_REQUEST));
    assert_string_equal(s.r[1].t.method, "");
    assert_string_equal(s.r[1].t.path, "");
    assert_int_equal(s.r[1].t.status, 201);
    assert_int_equal(s.r[2].t.stream_id, 5);
    assert_string_equal(s.r[2].t.method, "POST");
    assert_string_equal(s.r[2].t.path, "/v1/static-only");
    assert_int_equal(s.r[2].t.req_len, 50);
    assert_int_equal(s.r[2].t.status, 200);
    assert_int_equal(s.r[3].t.stream_id, 7);
    assert_true(s.r[3].t.flags & F(NO_REQUEST));
    assert_true(s.r[3].t.flags & F(HEADERS_UNDECODABLE));
    assert_string_equal(s.r[3].auth, ""); /* no header guessed */
    assert_int_equal(s.r[3].t.status, 200);
    assert_true(k->headers_undecodable >= 1);
    assert_true(k->resyncs >= 1);
    h2_conn_destroy(h);
    conv_free(&c);
}

/* Picked up in the middle: both directions look for a frame boundary and
 * decode with fresh tables. */
static void test_h2_midstream(void **state)
{
    (void)state;
    struct conv c;
    conv_init(&c);
    preface(&c);
    headers(&c, 0, 1, 0x1, REQ1);
    headers(&c, 1, 1, 0, RESP200);
    new_part(&c, 1);
    data(&c, 1, 1, 0, 700, 0);
    data(&c, 1, 1, 0x1, 10, 0);
    size_t first = c.n; /* pick up here */
    static const char *const rq[] = {":method", "GET", ":scheme", "http", ":path", "/v1/m",
                                     NULL};
    uint8_t blk[512];
    size_t n = hpack(&c, 0, blk, sizeof blk, rq, true);
    new_part(&c, 0);
    frame(&c, 0, 0x1, 0x5, 3, blk, n);
    uint8_t wu[4] = {0, 0, 1, 0};
    frame(&c, 0, 0x8, 0, 0, wu, 4);
    n = hpack(&c, 1, blk, sizeof blk, RESP201, true);
    frame(&c, 1, 0x1, 0x5, 3, blk, n);
    static struct sink s;
    struct h2_conn *h = run_in(&c, &s, 0, NULL, NULL, true, first - 1);
    /* the tail of stream 1's DATA is skipped, then stream 3 is whole */
    assert_int_equal(s.n, 1);
    assert_int_equal(s.r[0].t.stream_id, 3);
    assert_string_equal(s.r[0].t.path, "/v1/m");
    assert_int_equal(s.r[0].t.status, 201);
    assert_int_equal(h2_conn_counters(h)->hpack_broken, 0); /* never had one */
    h2_conn_destroy(h);
    conv_free(&c);
    assert_true(h2_looks_like_frames((const uint8_t *)"\0\0\x08\x06\0\0\0\0\0" "12345678", 17, 0));
    assert_false(h2_looks_like_frames((const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, 0));
}

/* ---- bounds ----------------------------------------------------------------- */

/* More concurrent streams than max_streams: the extra ones are counted,
 * not reported, but their header blocks still go through the table, so
 * later streams that refer to their entries decode right. */
static void test_h2_bound_streams(void **state)
{
    (void)state;
    struct conv c;
    conv_init(&c);
    preface(&c);
    char val[10][16];
    for (int i = 0; i < 10; i++) {
        snprintf(val[i], sizeof val[i], "v%d", i);
        const char *kv[] = {":method", "GET", ":scheme", "http", ":path", "/s", "x-n", val[i],
                            NULL};
        headers(&c, 0, 1 + 2 * (uint32_t)i, 0x1, kv);
    }
    for (int i = 0; i < 10; i++)
        headers(&c, 1, 1 + 2 * (uint32_t)i, 0x1, RESP200);
    const char *again[] = {":method", "GET", ":scheme", "http", ":path", "/s", "x-n", "v9", NULL};
    headers(&c, 0, 21, 0x1, again); /* "x-n: v9" was inserted by a refused stream */
    headers(&c, 1, 21, 0x1, RESP200);
    struct h2_limits l;
    h2_limits_default(&l);
    l.max_streams = 4;
    static struct sink s;
    struct h2_conn *h = run(&c, &s, 0, &l);
    assert_int_equal(h2_conn_counters(h)->streams_refused, 6);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.r[4].t.stream_id, 21);
    assert_int_equal(h2_conn_counters(h)->hpack_errors, 0);
    h2_conn_destroy(h);
    conv_free(&c);
}

/* A request header list over max_header_list: fields beyond are dropped
 * and the transaction is flagged; pseudo-headers and the first fields
 * (the credential) stay. */
static void test_h2_bound_header_list(void **state)
{
    (void)state;
    struct conv c;
    conv_init(&c);
    preface(&c);
    static char names[40][16], vals[40][120];
    const char *kv[2 * 45 + 1];
    size_t k = 0;
    kv[k++] = ":method", kv[k++] = "GET", kv[k++] = ":scheme", kv[k++] = "http";
    kv[k++] = ":path", kv[k++] = "/big", kv[k++] = "authorization", kv[k++] = "Bearer first";
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "x-h%d", i);
        memset(vals[i], 'a' + i % 26, sizeof vals[i] - 1);
        vals[i][sizeof vals[i] - 1] = 0;
        kv[k++] = names[i], kv[k++] = vals[i];
    }
    kv[k] = NULL;
    headers(&c, 0, 1, 0x1, kv);
    headers(&c, 1, 1, 0x1, RESP200);
    struct h2_limits l;
    h2_limits_default(&l);
    l.max_header_list = 1024;
    static struct sink s;
    struct h2_conn *h = run(&c, &s, 0, &l);
    assert_int_equal(s.n, 1);
    assert_true(s.r[0].t.flags & F(TRUNCATED_FIELD));
    assert_string_equal(s.r[0].t.path, "/big");
    assert_string_equal(s.r[0].auth, "Bearer first");
    assert_true(s.r[0].n_hdrs < 12);
    assert_int_equal(h2_conn_counters(h)->header_list_limit, 1);
    assert_true(h2_conn_mem_used(h) < 64 * 1024);
    h2_conn_destroy(h);
    conv_free(&c);
}

/* CONTINUATION flood (CVE-2024-27316 class): a header block that never
 * ends, in thousands of frames. Decoding stops at max_continuations (the
 * table is declared lost), nothing grows, and the connection is still
 * read: a later block of literals decodes. */
static void test_h2_bound_continuation_flood(void **state)
{
    (void)state;
    struct conv c;
    conv_init(&c);
    preface(&c);
    uint8_t blk[256];
    static const char *const rq[] = {":method", "GET", ":scheme", "http", ":path", "/flood",
                                     NULL};
    size_t n = hpack(&c, 0, blk, sizeof blk, rq, true);
    frame(&c, 0, 0x1, 0, 1, blk, n);
    uint8_t junk[16];
    memset(junk, 0x40, sizeof junk); /* literal with incremental indexing, new name... */
    for (int i = 0; i < 3000; i++)
        frame(&c, 0, 0x9, 0, 1, junk, sizeof junk);
    frame(&c, 0, 0x9, 0x4, 1, NULL, 0);
    static const char *const rq3[] = {":method", "GET", ":scheme", "http", ":path", "/after",
                                      NULL};
    n = hpack(&c, 0, blk, sizeof blk, rq3, true);
    frame(&c, 0, 0x1, 0x5, 3, blk, n);
    headers(&c, 1, 3, 0x1, RESP200);
    struct h2_limits l;
    h2_limits_default(&l);
    l.max_continuations = 16;
    static struct sink s;
    struct h2_conn *h = run(&c, &s, 0, &l);
    const struct h2_counters *k = h2_conn_counters(h);
    assert_int_equal(k->continuation_floods, 1);
    assert_int_equal(k->continuations, 3001);
    assert_true(h2_conn_mem_used(h) < 64 * 1024);
    assert_int_equal(s.n, 1); /* stream 1: nothing known of it (no answer) */
    assert_string_equal(s.r[0].t.path, "/after");
    h2_conn_destroy(h);
    conv_free(&c);
}

/* HPACK bombs: (1) a table larger than our cap, allowed by SETTINGS: the
 * encoder's size update is refused, counted, memory stays bounded;
 * (2) one large entry referred to many times: the decoded list would be
 * megabytes; what is kept stays under max_header_list. */
static void test_h2_bound_hpack_bomb(void **state)
{
    (void)state;
    struct conv c;
    conv_init(&c);
    put(&c, 0, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    uint8_t set[6] = {0, 1, 0, 0x10, 0, 0}; /* server allows a 1 MiB table */
    frame(&c, 1, 0x4, 0, 0, set, 6);
    frame(&c, 0, 0x4, 0x1, 0, NULL, 0);
    nghttp2_hd_deflate_del(c.def[0]); /* an encoder that uses all it is allowed */
    assert_int_equal(nghttp2_hd_deflate_new(&c.def[0], 1 << 20), 0);
    nghttp2_hd_deflate_change_table_size(c.def[0], 1 << 20);
    static char big[60000];
    memset(big, 'b', sizeof big - 1);
    const char *kv[] = {":method", "GET", ":scheme", "http", ":path", "/bomb", "x-big", big,
                        NULL};
    headers(&c, 0, 1, 0x1, kv);
    headers(&c, 1, 1, 0x1, RESP200);
    static struct sink s;
    struct h2_conn *h = run(&c, &s, 0, NULL);
    const struct h2_counters *k = h2_conn_counters(h);
    assert_int_equal(k->hpack_table_capped, 1);
    assert_true(k->hpack_errors + k->headers_undecodable >= 1);
    assert_true(h2_conn_mem_used(h) < 256 * 1024);
    assert_int_equal(s.n, 1);
    assert_true(s.r[0].t.flags & F(NO_REQUEST)); /* never a guessed header */
    h2_conn_destroy(h);
    conv_free(&c);

    conv_init(&c);
    put(&c, 0, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    uint8_t set64[6] = {0, 1, 0, 1, 0, 0}; /* the server allows 64 KiB, our cap */
    frame(&c, 1, 0x4, 0, 0, set64, 6);
    frame(&c, 0, 0x4, 0x1, 0, NULL, 0);
    nghttp2_hd_deflate_del(c.def[0]);
    assert_int_equal(nghttp2_hd_deflate_new(&c.def[0], 1 << 16), 0);
    nghttp2_hd_deflate_change_table_size(c.def[0], 1 << 16);
    static char v4k[4000];
    memset(v4k, 'q', sizeof v4k - 1);
    const char *kv2[2 * 260 + 1];
    size_t m = 0;
    kv2[m++] = ":method", kv2[m++] = "GET", kv2[m++] = ":scheme", kv2[m++] = "http";
    kv2[m++] = ":path", kv2[m++] = "/bomb2";
    for (int i = 0; i < 250; i++)
        kv2[m++] = "x-rep", kv2[m++] = v4k; /* 1 byte each after the first: ~1 MB decoded */
    kv2[m] = NULL;
    uint8_t *blk = malloc(16384);
    size_t n = hpack(&c, 0, blk, 16384, kv2, false);
    assert_true(n < 16384);
    frame(&c, 0, 0x1, 0x5, 1, blk, n);
    free(blk);
    headers(&c, 1, 1, 0x1, RESP200);
    h = run(&c, &s, 0, NULL);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.r[0].t.path, "/bomb2");
    assert_true(s.r[0].t.flags & F(TRUNCATED_FIELD));
    assert_int_equal(h2_conn_counters(h)->header_list_limit, 1);
    assert_true(h2_conn_mem_used(h) < 128 * 1024);
    h2_conn_destroy(h);
    conv_free(&c);
}

/* Rapid reset (CVE-2023-44487 class): 2000 streams opened and reset at
 * once. All are counted, max_resets_per_sec are reported, memory does
 * not grow with them. */
static void test_h2_bound_rapid_reset(void **state)
{
    (void)state;
    struct conv c;
    conv_init(&c);
    preface(&c);
    uint8_t cancel[4] = {0, 0, 0, 8};
    for (uint32_t i = 0; i < 2000; i++) {
        headers(&c, 0, 1 + 2 * i, 0x1, REQ1);
        frame(&c, 0, 0x3, 0, 1 + 2 * i, cancel, 4);
    }
    struct h2_limits l;
    h2_limits_default(&l);
    l.max_resets_per_sec = 50;
    static struct sink s;
    struct h2_conn *h = run(&c, &s, 0, &l); /* one part: one packet time */
    const struct h2_counters *k = h2_conn_counters(h);
    assert_int_equal(k->rapid_resets, 2000);
    assert_int_equal(k->rapid_resets_dropped, 1950);
    assert_int_equal(s.n, 50);
    assert_true(h2_conn_mem_used(h) < 64 * 1024);
    h2_conn_destroy(h);
    conv_free(&c);
}

/* The shared budget: a connection over it is refused; growth beyond it is
 * refused and counted, never past the bound; all is given back. */
static void test_h2_bound_memcap(void **state)
{
    (void)state;
    struct h2_budget b = {.max_bytes = 1024};
    assert_null(h2_conn_new_in(NULL, &b, false, on_txn, NULL));
    struct conv c;
    basic_conv(&c);
    static struct sink s;
    b = (struct h2_budget){.max_bytes = 20 * 1024};
    struct h2_conn *h = run_in(&c, &s, 0, NULL, &b, false, 0);
    assert_true(b.peak <= b.max_bytes);
    assert_true(b.refused > 0 || s.n == 2);
    h2_conn_destroy(h);
    assert_int_equal(b.bytes, 0);
    b = (struct h2_budget){.max_bytes = 0};
    h = run_in(&c, &s, 0, NULL, &b, false, 0);
    check_basic(&s);
    assert_int_equal(b.bytes, h2_conn_mem_used(h));
    h2_conn_destroy(h);
    assert_int_equal(b.bytes, 0);
    conv_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h2_basic_split),
        cmocka_unit_test(test_h2_continuation_push_reset),
        cmocka_unit_test(test_h2_grpc),
        cmocka_unit_test(test_h2_echo),
        cmocka_unit_test(test_h2_upgrade),
        cmocka_unit_test(test_h2_gap_in_data),
        cmocka_unit_test(test_h2_gap_in_headers),
        cmocka_unit_test(test_h2_midstream),
        cmocka_unit_test(test_h2_bound_streams),
        cmocka_unit_test(test_h2_bound_header_list),
        cmocka_unit_test(test_h2_bound_continuation_flood),
        cmocka_unit_test(test_h2_bound_hpack_bomb),
        cmocka_unit_test(test_h2_bound_rapid_reset),
        cmocka_unit_test(test_h2_bound_memcap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
