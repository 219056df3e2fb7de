/* sim_h2: HTTP/2 sessions (RFC 9113) to h2c and gRPC servers, written on a
 * TCP connection (sim_tcp) the way a client with prior knowledge and a
 * server speak them: prefaces and SETTINGS, then requests as streams,
 * concurrent ones answered with their DATA frames interleaved.
 *
 * The one thing to know: header blocks are encoded by libnghttp2's HPACK
 * deflater (one per direction, its dynamic table living as long as the
 * connection), never by hand, and blocks are encoded in the order they go
 * on the wire, since each one changes the table the next one refers to.
 * Flow control is not modelled: the client announces windows of 1 GiB, so
 * no WINDOW_UPDATE is ever needed (as TCP windows are "simply large"). */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_gen.h"
#include "sim_http.h"

enum { F_DATA = 0, F_HEADERS = 1, F_SETTINGS = 4, F_GOAWAY = 7, F_WINDOW_UPDATE = 8, F_CONT = 9 };
enum { FL_END_STREAM = 1, FL_ACK = 1, FL_END_HEADERS = 4, FL_PADDED = 8 };
#define MAX_FRAME 16384 /* SETTINGS_MAX_FRAME_SIZE's initial value, §6.5.2 */
#define MAX_NV 24

struct h2w {
    struct sim_gen *g;
    struct sim_session *s;
    struct sim_rng *r;
    struct sim_conn *c;
    struct sim_tls_sess *tls;
    nghttp2_hd_deflater *def[2]; /* 0 client, 1 server */
    uint32_t next_sid;
    bool grpc, settings_ack_due;
    char authority[160];
    int64_t t;
};

struct nvl {
    nghttp2_nv v[MAX_NV];
    size_t n;
};

static void nv(struct nvl *l, const char *name, const char *value)
{
    if (l->n == MAX_NV) abort();
    l->v[l->n++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
                                NGHTTP2_NV_FLAG_NONE};
}

static void frame_hdr(struct sim_buf *b, unsigned type, unsigned flags, uint32_t sid, size_t n)
{
    const uint8_t h[9] = {(uint8_t)(n >> 16),   (uint8_t)(n >> 8),   (uint8_t)n,
                          (uint8_t)type,        (uint8_t)flags,      (uint8_t)(sid >> 24 & 0x7f),
                          (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid};
    sim_buf_add(b, h, 9);
}

static void frame(struct sim_buf *b, unsigned type, unsigned flags, uint32_t sid, const void *p,
                  size_t n)
{
    frame_hdr(b, type, flags, sid, n);
    if (n) sim_buf_add(b, p, n);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A header block through the deflater of dir, as HEADERS (+ CONTINUATION
 * when it is over a frame, and now and then when it is not, as clients
 * that write headers in pieces do). */
static void headers(struct h2w *h, int dir, struct sim_buf *b, uint32_t sid, bool end_stream,
                    const struct nvl *l)
{
    size_t cap = nghttp2_hd_deflate_bound(h->def[dir], l->v, l->n);
    uint8_t *blk = malloc(cap);
    if (!blk) abort();
    ssize_t n = nghttp2_hd_deflate_hd(h->def[dir], blk, cap, l->v, l->n);
    if (n < 0) {
        fprintf(stderr, "kwsim: HPACK deflate failed: %s\n", nghttp2_strerror((int)n));
        abort();
    }
    size_t len = (size_t)n, first = len;
    if (first > MAX_FRAME)
        first = MAX_FRAME;
    else if (len > 8 && sim_rng_chance(h->r, 0.05))
        first = (size_t)sim_rng_range(h->r, 1, (int64_t)len - 1);
    frame(b, F_HEADERS, (end_stream ? FL_END_STREAM : 0) | (first == len ? FL_END_HEADERS : 0), sid,
          blk, first);
    for (size_t off = first; off < len;) {
        size_t k = len - off > MAX_FRAME ? MAX_FRAME : len - off;
        frame(b, F_CONT, off + k == len ? FL_END_HEADERS : 0, sid, blk + off, k);
        off += k;
    }
    free(blk);
}

/* One DATA frame of up to `room` bytes of p; now and then padded (§6.1).
 * Returns the payload bytes it carried. */
static size_t data_frame(struct h2w *h, struct sim_buf *b, uint32_t sid, const uint8_t *p, size_t n,
                         size_t room, bool end)
{
    size_t pad = sim_rng_chance(h->r, 0.04) ? (size_t)sim_rng_range(h->r, 1, 32) : 0;
    if (pad && room > pad + 1) room -= pad + 1;
    size_t k = n < room ? n : room;
    unsigned fl = (end && k == n ? FL_END_STREAM : 0) | (pad ? FL_PADDED : 0);
    frame_hdr(b, F_DATA, fl, sid, k + (pad ? pad + 1 : 0));
    if (pad) {
        uint8_t pl = (uint8_t)pad;
        sim_buf_add(b, &pl, 1);
    }
    if (k) sim_buf_add(b, p, k);
    if (pad) {
        static const uint8_t zero[32];
        sim_buf_add(b, zero, pad);
    }
    return k;
}

/* ---- protobuf (the wire format only: varints and length-delimited) ---- */

static void pb_varint(struct sim_buf *b, uint64_t v)
{
    do {
        uint8_t x = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) x |= 0x80;
        sim_buf_add(b, &x, 1);
    } while (v);
}

static void pb_uint(struct sim_buf *b, unsigned field, uint64_t v)
{
    pb_varint(b, field << 3);
    pb_varint(b, v);
}

static void pb_bytes(struct sim_buf *b, unsigned field, const void *p, size_t n)
{
    pb_varint(b, field << 3 | 2);
    pb_varint(b, n);
    sim_buf_add(b, p, n);
}

static void pb_str(struct sim_buf *b, unsigned field, const char *s)
{
    pb_bytes(b, field, s, strlen(s));
}

static const char *const k_names[] = {"Nordwind GmbH",  "Acme Corp",       "Blue Harbor Ltd",
                                      "Sakura Trading", "Fjord Analytics", "Lumen BV"};
static const char *const k_states[] = {"PAID", "OPEN", "OVERDUE", "VOID", "DRAFT"};

/* One record of the API's resource: an embedded message. */
static void pb_record(struct sim_buf *b, struct sim_rng *r, const char *res, int64_t now)
{
    struct sim_buf m = {0};
    char ref[48];
    pb_uint(&m, 1, (uint64_t)sim_rng_range(r, 1000, 999999));
    pb_str(&m, 2, res);
    pb_str(&m, 3, k_names[sim_rng_below(r, 6)]);
    pb_uint(&m, 4, sim_rng_below(r, 10000000));
    pb_str(&m, 5, sim_rng_chance(r, 0.6) ? "EUR" : "USD");
    pb_str(&m, 6, k_states[sim_rng_below(r, 5)]);
    pb_uint(&m, 7, (uint64_t)(now / 1000000 - (int64_t)sim_rng_below(r, 86400 * 400)));
    snprintf(ref, sizeof ref, "%s-%08x", res, (unsigned)sim_rng_u64(r));
    pb_str(&m, 8, ref);
    pb_bytes(b, 1, m.p, m.len);
    sim_buf_free(&m);
}

/* A gRPC message (length-prefixed, uncompressed; gRPC over HTTP/2,
 * "Length-Prefixed-Message") around records filling about `size` bytes. */
static void grpc_message(struct sim_buf *b, struct sim_rng *r, const char *res, size_t size,
                         int64_t now)
{
    struct sim_buf m = {0};
    do
        pb_record(&m, r, res, now);
    while (m.len + 40 < size);
    if (sim_rng_chance(r, 0.3)) pb_str(&m, 2, "next-page");
    uint8_t pfx[5] = {0};
    put32(pfx + 1, (uint32_t)m.len);
    sim_buf_add(b, pfx, 5);
    sim_buf_add(b, m.p, m.len);
    sim_buf_free(&m);
}

/* gRPC status codes (grpc/doc/statuscodes.md) for what an HTTP API would
 * have answered. */
static int grpc_code(int status, const char **msg)
{
    switch (status) {
    case 400:
        *msg = "invalid argument";
        return 3;
    case 401:
        *msg = "invalid credentials";
        return 16;
    case 403:
        *msg = "caller lacks permission";
        return 7;
    case 404:
        *msg = "not found";
        return 5;
    case 429:
        *msg = "rate limited, retry in 30s";
        return 8;
    case 500:
        *msg = "internal error";
        return 13;
    case 503:
        *msg = "service unavailable";
        return 14;
    default:
        *msg = "";
        return 0;
    }
}

static bool has_body(const char *method)
{
    return !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH");
}

/* The request of one stream: its frames appended to b; *body = DATA bytes. */
static void request(struct h2w *h, const struct sim_req *q, uint32_t sid, struct sim_buf *b,
                    size_t *body)
{
    const char *ua = h->s->ident >= 0 ? h->g->w->id[h->s->ident].ua : "python-requests/2.28.1";
    struct nvl l = {0};
    struct sim_field f[2];
    char lname[2][64], clen[24];
    nv(&l, ":method", q->method);
    nv(&l, ":scheme", h->tls ? "https" : "http");
    nv(&l, ":authority", h->authority);
    nv(&l, ":path", q->target);
    if (h->grpc) {
        nv(&l, "content-type", "application/grpc");
        nv(&l, "te", "trailers");
        nv(&l, "grpc-accept-encoding", "identity, deflate, gzip");
        nv(&l, "user-agent", ua);
    } else {
        nv(&l, "user-agent", ua);
        nv(&l, "accept", "application/json");
        nv(&l, "accept-encoding", "gzip, deflate");
    }
    int nf = sim_cred_fields(h->g, h->s, q, f);
    for (int i = 0; i < nf; i++) { /* §8.2.1: field names are lower case */
        size_t k = 0;
        for (; f[i].name[k] && k < sizeof lname[i] - 1; k++)
            lname[i][k] =
                (char)(f[i].name[k] | (f[i].name[k] >= 'A' && f[i].name[k] <= 'Z' ? 32 : 0));
        lname[i][k] = 0;
        nv(&l, lname[i], f[i].value);
    }
    struct sim_buf d = {0};
    if (h->grpc) {
        grpc_message(&d, h->r, "query", (size_t)sim_rng_range(h->r, 8, 120), q->want);
    } else if (has_body(q->method)) {
        sim_json_body(&d, h->r, "item", (size_t)sim_rng_range(h->r, 80, 1800), q->want);
        nv(&l, "content-type", "application/json");
        snprintf(clen, sizeof clen, "%zu", d.len);
        nv(&l, "content-length", clen);
    }
    if (h->settings_ack_due) { /* the client's ACK of the server's SETTINGS (§6.5.3) */
        frame(b, F_SETTINGS, FL_ACK, 0, NULL, 0);
        h->settings_ack_due = false;
    }
    headers(h, 0, b, sid, d.len == 0, &l);
    for (size_t off = 0; off < d.len;)
        off += data_frame(h, b, sid, d.p + off, d.len - off, MAX_FRAME, true);
    *body = d.len;
    sim_buf_free(&d);
}

/* An answer being written: its body, how much of it is out, and the
 * trailers still due (gRPC). */
struct answer {
    uint32_t sid;
    struct sim_buf body;
    size_t off;
    int grpc_status;
    const char *grpc_msg;
    bool trailers;
};

/* The response HEADERS of a stream; the body (or nothing) goes in a->body. */
static void answer_begin(struct h2w *h, const struct sim_req *q, struct sim_truth *t,
                         struct answer *a, int64_t now, struct sim_buf *b)
{
    const struct sim_endpoint *ep = &h->g->w->srv[h->s->server].ep[0];
    struct nvl l = {0};
    char st[8], date[64], rid[24], clen[24];
    snprintf(rid, sizeof rid, "%016llx", (unsigned long long)sim_rng_u64(h->r));
    if (h->grpc) {
        a->grpc_status = grpc_code(q->status, &a->grpc_msg);
        t->grpc = true;
        t->grpc_status = a->grpc_status;
        t->status = 200; /* gRPC answers every call with HTTP 200 */
        nv(&l, ":status", "200");
        nv(&l, "content-type", "application/grpc");
        if (a->grpc_status) { /* Trailers-Only: the status in the only HEADERS */
            char code[8];
            snprintf(code, sizeof code, "%d", a->grpc_status);
            nv(&l, "grpc-status", code);
            nv(&l, "grpc-message", a->grpc_msg);
            headers(h, 1, b, a->sid, true, &l);
            return;
        }
        nv(&l, "grpc-accept-encoding", "identity, deflate, gzip");
        nv(&l, "x-request-id", rid);
        headers(h, 1, b, a->sid, false, &l);
        grpc_message(&a->body, h->r, ep->resource, q->resp_size, now);
        t->resp_body = t->resp_identity = a->body.len;
        a->trailers = true;
        return;
    }
    struct sim_resp_spec rs = {.status = q->status,
                               .body_size = q->resp_size,
                               .gzip = q->gzip,
                               .resource = ep->resource,
                               .now = now};
    struct sim_buf ident = {0};
    bool gz = sim_http_body(&ident, &a->body, h->r, &rs);
    t->resp_body = a->body.len;
    t->resp_identity = ident.len;
    sim_buf_free(&ident);
    snprintf(st, sizeof st, "%d", q->status);
    sim_http_date(date, sizeof date, now);
    nv(&l, ":status", st);
    nv(&l, "date", date);
    nv(&l, "server", "nginx");
    if (a->body.len) nv(&l, "content-type", "application/json; charset=utf-8");
    if (gz) {
        nv(&l, "content-encoding", "gzip");
        nv(&l, "vary", "accept-encoding");
    }
    if (q->status == 429) nv(&l, "retry-after", "30");
    if (q->status == 401) nv(&l, "www-authenticate", "Bearer realm=\"api\"");
    nv(&l, "x-request-id", rid);
    if (q->status != 204) {
        snprintf(clen, sizeof clen, "%zu", a->body.len);
        nv(&l, "content-length", clen);
    }
    headers(h, 1, b, a->sid, a->body.len == 0, &l);
}

/* The next piece of an answer: a DATA frame, or the trailers. Returns
 * false once the stream is ended. */
static bool answer_step(struct h2w *h, struct answer *a, struct sim_buf *b)
{
    if (a->off < a->body.len) {
        size_t room = (size_t)sim_rng_range(h->r, 4096, MAX_FRAME);
        a->off +=
            data_frame(h, b, a->sid, a->body.p + a->off, a->body.len - a->off, room, !a->trailers);
        return a->off < a->body.len || a->trailers;
    }
    if (a->trailers) {
        struct nvl l = {0};
        nv(&l, "grpc-status", "0");
        headers(h, 1, b, a->sid, true, &l);
        a->trailers = false;
    }
    return false;
}

static void wire(struct h2w *h, int dir, struct sim_buf *b)
{
    if (!h->tls) return;
    struct sim_buf e = {0};
    sim_tls_seal(&h->tls->d[dir], b->p, b->len, &e);
    sim_buf_free(b);
    *b = e;
}

/* A group of 1..3 requests sent as concurrent streams, then their answers
 * with DATA frames interleaved round-robin. */
static void group(struct h2w *h, int first, int n)
{
    struct sim_gen *g = h->g;
    /* indices, not pointers: a later sim_truth_add may move the array */
    size_t tr[3];
    struct answer an[3];
    int64_t sent = h->t;
    for (int k = 0; k < n; k++) {
        struct sim_req *q = &g->reqs[h->s->first_req + (size_t)(first + k)];
        if (k == 0 && q->want > h->t) h->t = q->want;
        uint32_t sid = h->next_sid;
        h->next_sid += 2;
        struct sim_buf b = {0};
        size_t body, sp[2];
        bool ack = h->settings_ack_due;
        request(h, q, sid, &b, &body);
        /* cut after the HEADERS frame's first byte: the request's time is
         * when that byte was seen */
        size_t h0 = ack ? 9 : 0;
        int ns = 0;
        if (!h->tls && b.len > h0 + 40 && sim_rng_chance(h->r, 0.12)) {
            sp[0] = (size_t)sim_rng_range(h->r, (int64_t)h0 + 1, (int64_t)(h0 + b.len) / 2);
            sp[1] = (size_t)sim_rng_range(h->r, (int64_t)sp[0] + 1, (int64_t)b.len - 1);
            ns = 1 + (int)sim_rng_below(h->r, 2);
        }
        wire(h, 0, &b);
        struct sim_truth *t = sim_truth_add(g);
        tr[k] = (size_t)(t - g->truth);
        t->ts = k ? sent + 40 : h->t;
        t->cip = h->c->cli.ip;
        t->sip = h->c->srv.ip;
        t->cport = h->c->cli.port;
        t->sport = h->c->srv.port;
        memcpy(t->method, q->method, sizeof t->method);
        memcpy(t->target, q->target, sizeof t->target);
        t->server = h->s->server;
        t->status = q->status;
        t->req_body = body;
        t->cred = q->cred;
        t->ident = g->cred_ident[q->cred];
        t->incident = q->incident;
        t->label = q->label;
        t->pipelined = n > 1; /* sent while another stream was unanswered */
        t->split = ns > 0;
        t->h2 = true;
        t->stream_id = sid;
        sent = sim_conn_client_send(h->c, t->ts, b.p, b.len, sp, ns, &t->lost);
        t->ts = h->c->first_seen;
        sim_buf_free(&b);
    }
    int64_t think = 2000 + (int64_t)sim_rng_below(h->r, 60000);
    if (think > 40000) sim_conn_server_ack(h->c, sent + 40000);
    int64_t at = sent + think;
    struct sim_buf b = {0};
    size_t ident = 0;
    for (int k = 0; k < n; k++) {
        struct sim_req *q = &g->reqs[h->s->first_req + (size_t)(first + k)];
        memset(&an[k], 0, sizeof an[k]);
        an[k].sid = g->truth[tr[k]].stream_id;
        answer_begin(h, q, &g->truth[tr[k]], &an[k], at, &b);
        ident += g->truth[tr[k]].resp_identity;
    }
    for (bool more = true; more;) {
        more = false;
        for (int k = 0; k < n; k++)
            more |= answer_step(h, &an[k], &b);
    }
    for (int k = 0; k < n; k++)
        sim_buf_free(&an[k].body);
    wire(h, 1, &b);
    bool lost = false;
    at += (int64_t)(ident / 4000); /* producing a big export takes time */
    int64_t done = sim_conn_server_send(h->c, at, b.p, b.len, &lost);
    for (int k = 0; k < n; k++)
        g->truth[tr[k]].lost |= lost;
    sim_buf_free(&b);
    h->t = done + 1000 + (int64_t)sim_rng_below(h->r, 80000);
}

int64_t sim_h2_session(struct sim_gen *g, struct sim_session *s, struct sim_rng *r,
                       struct sim_conn *c, struct sim_tls_sess *tls, int64_t t, bool *closed)
{
    const struct sim_server *sv = &g->w->srv[s->server];
    struct h2w h = {.g = g,
                    .s = s,
                    .r = r,
                    .c = c,
                    .tls = tls,
                    .next_sid = 1,
                    .grpc = sv->proto == SIM_PROTO_GRPC,
                    .t = t};
    if (sv->port != (tls ? 443 : 80))
        snprintf(h.authority, sizeof h.authority, "%s:%u", sv->host, sv->port);
    else
        snprintf(h.authority, sizeof h.authority, "%s", sv->host);
    for (int d = 0; d < 2; d++)
        if (nghttp2_hd_deflate_new(&h.def[d], 4096)) abort();
    /* Client: preface, SETTINGS (no push, 1 GiB stream windows), and the
     * connection window raised to match (§6.9.2). */
    struct sim_buf b = {0};
    sim_buf_add(&b, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    uint8_t set[12] = {0, 2, 0, 0, 0, 0, 0, 4}, wu[4];
    put32(set + 8, 1u << 30);
    frame(&b, F_SETTINGS, 0, 0, set, 12);
    put32(wu, (1u << 30) - 65535);
    frame(&b, F_WINDOW_UPDATE, 0, 0, wu, 4);
    wire(&h, 0, &b);
    h.t = sim_conn_client_send(c, h.t, b.p, b.len, NULL, 0, NULL);
    sim_buf_free(&b);
    /* Server: its SETTINGS (128 streams, 1 MiB windows) and the ACK of the
     * client's. */
    uint8_t sset[12] = {0, 3, 0, 0, 0, 128, 0, 4};
    put32(sset + 8, 1u << 20);
    frame(&b, F_SETTINGS, 0, 0, sset, 12);
    frame(&b, F_SETTINGS, FL_ACK, 0, NULL, 0);
    wire(&h, 1, &b);
    h.t = sim_conn_server_send(c, h.t + 300, b.p, b.len, NULL);
    sim_buf_free(&b);
    h.settings_ack_due = true;
    /* Requests: a third of longer connections keep 2-3 streams in flight. */
    bool conc = s->nreq >= 3 && sim_rng_chance(r, 0.3);
    for (int i = 0; i < s->nreq;) {
        int n = conc ? 1 + (int)sim_rng_below(r, 3) : 1;
        if (n > s->nreq - i) n = s->nreq - i;
        group(&h, i, n);
        i += n;
    }
    *closed = false;
    if (sim_rng_chance(r, 0.2)) { /* the server ends it: GOAWAY (§6.8), then FIN */
        uint8_t ga[8] = {0};
        put32(ga, h.next_sid - 2);
        frame(&b, F_GOAWAY, 0, 0, ga, 8);
        wire(&h, 1, &b);
        h.t = sim_conn_server_send(c, h.t, b.p, b.len, NULL);
        sim_buf_free(&b);
        sim_conn_fin(c, h.t + 200, true);
        *closed = true;
    }
    for (int d = 0; d < 2; d++)
        nghttp2_hd_deflate_del(h.def[d]);
    return h.t;
}
