/* sim_render: sessions to packets and truth. The one thing to know: sessions
 * are rendered in start order and the packet heap is flushed up to the next
 * session's start, since no later session can emit anything earlier; the
 * truth line of a transaction is its request's first byte as the mirror saw
 * it leave the client. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_http.h"
#include "sim_plan_int.h"

static const uint8_t k_gw_mac[6] = {0x00, 0x1b, 0x21, 0x3a, 0x4c, 0x01};

static void server_mac(int server, uint8_t mac[6])
{
    const uint8_t m[6] = {0x52, 0x54, 0x00, 0x10, 0x00, (uint8_t)(server + 1)};
    memcpy(mac, m, 6);
}

static int cmp_sess(const void *a, const void *b)
{
    const struct sim_session *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* A DNS query and its answer (RFC 1035 §4.1) for name, from cli. */
static void emit_dns(struct sim_gen *g, struct sim_rng *r, const struct sim_ip *cli,
                     const char *name, const struct sim_ip *answer, int64_t t)
{
    uint8_t q[300], frame[SIM_MAX_FRAME];
    struct sim_ep c = {.ip = *cli, .port = (uint16_t)sim_rng_range(r, 1024, 65000)};
    struct sim_ep s = {.ip = g->w->resolver, .port = 53};
    memcpy(c.mac, k_gw_mac, 6);
    memcpy(s.mac, k_gw_mac, 6);
    s.mac[5] = 0x53;
    unsigned id = (unsigned)sim_rng_below(r, 65536);
    put16(q, id);
    put16(q + 2, 0x0100); /* RD */
    put16(q + 4, 1);
    memset(q + 6, 0, 6);
    size_t n = 12;
    for (const char *p = name; *p && n < 250;) {
        size_t l = strcspn(p, ".");
        q[n++] = (uint8_t)l;
        memcpy(q + n, p, l);
        n += l;
        p += l + (p[l] == '.');
    }
    q[n++] = 0;
    put16(q + n, answer->v6 ? 28 : 1);
    put16(q + n + 2, 1);
    n += 4;
    size_t len = sim_frame_udp(frame, &c, &s, (uint16_t)sim_rng_u64(r), q, n);
    sim_out_push(&g->out, t, frame, len);
    put16(q + 2, 0x8180); /* response, RD, RA */
    put16(q + 6, 1);
    const uint8_t rr[] = {0xc0, 0x0c};
    memcpy(q + n, rr, 2);
    put16(q + n + 2, answer->v6 ? 28 : 1);
    put16(q + n + 4, 1);
    put16(q + n + 6, 0);
    put16(q + n + 8, 300); /* TTL */
    put16(q + n + 10, answer->v6 ? 16 : 4);
    memcpy(q + n + 12, answer->a, answer->v6 ? 16 : 4);
    n += 12 + (answer->v6 ? 16 : 4);
    len = sim_frame_udp(frame, &s, &c, (uint16_t)sim_rng_u64(r), q, n);
    sim_out_push(&g->out, t + 800 + (int64_t)sim_rng_below(r, 4000), frame, len);
}

/* The credential of a request as header fields (names as an HTTP/1 client
 * writes them; HTTP/2 lower-cases them). Returns how many (0..2). */
int sim_cred_fields(struct sim_gen *g, const struct sim_session *s, const struct sim_req *q,
                    struct sim_field f[2])
{
    const struct sim_server *sv = &g->w->srv[s->server];
    const struct sim_cred *c = &g->creds[q->cred];
    if (c->dpop && q->dpop != SIM_DPOP_OMIT) {
        /* RFC 9449 §7.1: the DPoP scheme and a proof for this request */
        char htu[300], jti[48];
        snprintf(htu, sizeof htu, "https://%s", sv->host);
        if (sv->port != 80)
            snprintf(htu + strlen(htu), sizeof htu - strlen(htu), ":%u", sv->port);
        snprintf(htu + strlen(htu), sizeof htu - strlen(htu), "%.*s",
                 (int)strcspn(q->dpop == SIM_DPOP_HTU ? "/v1/elsewhere" : q->target, "?"),
                 q->dpop == SIM_DPOP_HTU ? "/v1/elsewhere" : q->target);
        int64_t iat = q->dpop == SIM_DPOP_REPLAY  ? q->dpop_iat
                      : q->dpop == SIM_DPOP_STALE ? q->want - 15 * 60000000LL
                                                  : q->want;
        if (q->dpop == SIM_DPOP_REPLAY)
            snprintf(jti, sizeof jti, "replay-%d", q->incident);
        else
            snprintf(jti, sizeof jti, "p%zu", (size_t)(q - g->reqs));
        snprintf(f[0].name, sizeof f[0].name, "Authorization");
        snprintf(f[0].value, sizeof f[0].value, "DPoP %s", c->secret);
        snprintf(f[1].name, sizeof f[1].name, "DPoP");
        sim_dpop_proof(c, q->method, htu, iat / 1000000, jti, f[1].value, sizeof f[1].value);
        return 2;
    }
    if (c->kind == SIM_CRED_BEARER || c->kind == SIM_CRED_JWT) {
        snprintf(f[0].name, sizeof f[0].name, "Authorization");
        snprintf(f[0].value, sizeof f[0].value, "Bearer %s", c->secret);
        return 1;
    }
    if (c->kind == SIM_CRED_APIKEY_HEADER) {
        snprintf(f[0].name, sizeof f[0].name, "%s", c->param);
        snprintf(f[0].value, sizeof f[0].value, "%s", c->secret);
        return 1;
    }
    if (c->kind == SIM_CRED_BASIC) {
        char up[200], enc[400];
        if ((size_t)snprintf(up, sizeof up, "%s:%.120s", c->user, c->secret) >= sizeof up)
            up[sizeof up - 1] = 0;
        sim_b64((const uint8_t *)up, strlen(up), enc, false);
        snprintf(f[0].name, sizeof f[0].name, "Authorization");
        snprintf(f[0].value, sizeof f[0].value, "Basic %s", enc);
        return 1;
    }
    return 0; /* a query-parameter key is in the target */
}

static void request_bytes(struct sim_gen *g, struct sim_rng *r, const struct sim_session *s,
                          const struct sim_req *q, struct sim_buf *b, size_t *body)
{
    const struct sim_server *sv = &g->w->srv[s->server];
    const char *ua = s->ident >= 0 ? g->w->id[s->ident].ua : "python-requests/2.28.1";
    sim_buf_printf(b, "%s %s HTTP/1.1\r\nHost: %s", q->method, q->target, sv->host);
    if (sv->port != 80) sim_buf_printf(b, ":%u", sv->port);
    sim_buf_printf(b,
                   "\r\nUser-Agent: %s\r\nAccept: application/json\r\n"
                   "Accept-Encoding: gzip, deflate\r\n",
                   ua);
    struct sim_field f[2];
    int nf = sim_cred_fields(g, s, q, f);
    for (int i = 0; i < nf; i++)
        sim_buf_printf(b, "%s: %s\r\n", f[i].name, f[i].value);
    *body = 0;
    if (!strcmp(q->method, "POST") || !strcmp(q->method, "PUT") || !strcmp(q->method, "PATCH")) {
        struct sim_buf j = {0};
        sim_json_body(&j, r, "item", (size_t)sim_rng_range(r, 80, 1800), q->want);
        sim_buf_printf(b, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", j.len);
        sim_buf_add(b, j.p, j.len);
        *body = j.len;
        sim_buf_free(&j);
    } else {
        sim_buf_add(b, "\r\n", 2);
    }
}

struct sim_truth *sim_truth_add(struct sim_gen *g)
{
    if (g->ntruth == g->captruth) {
        g->captruth = g->captruth ? g->captruth * 2 : 1024;
        g->truth = realloc(g->truth, g->captruth * sizeof *g->truth);
        if (!g->truth) abort();
    }
    struct sim_truth *t = &g->truth[g->ntruth];
    memset(t, 0, sizeof *t);
    t->order = g->ntruth++;
    return t;
}

/* Where to cut a request: at the planned place in the path, or (sometimes)
 * anywhere in the header block, as a client writing in pieces does. */
static int choose_splits(struct sim_rng *r, const struct sim_req *q, const struct sim_buf *b,
                         size_t *sp)
{
    if (q->split_at >= 0) {
        sp[0] = strlen(q->method) + 1 + (size_t)q->split_at;
        return 1;
    }
    if (!sim_rng_chance(r, 0.12)) return 0;
    const uint8_t *end = memmem(b->p, b->len, "\r\n\r\n", 4);
    size_t hl = end ? (size_t)(end - b->p) + 4 : b->len;
    int n = 1 + (int)sim_rng_below(r, 2);
    for (int i = 0; i < n; i++)
        sp[i] = (size_t)sim_rng_range(r, 1 + (i ? (int64_t)sp[i - 1] : 0), (int64_t)hl - 1);
    return sp[n - 1] > sp[0] || n == 1 ? n : 1;
}

struct http_run {
    struct sim_gen *g;
    struct sim_session *s;
    struct sim_rng *r;
    struct sim_conn c;
    int64_t t;
    bool closed;
    bool enc; /* --tls: records sealed with tls's keys */
    struct sim_tls_sess tls;
};

/* The bytes of one HTTP message as they go on the wire (sealed in TLS
 * records with --tls); b is replaced. */
static void wire_bytes(struct http_run *h, int dir, struct sim_buf *b)
{
    if (!h->enc)
        return;
    struct sim_buf e = {0};
    sim_tls_seal(&h->tls.d[dir], b->p, b->len, &e);
    sim_buf_free(b);
    *b = e;
}

/* One group of 1..3 requests (more than one = pipelined) and their answers. */
static void http_group(struct http_run *h, int first, int n)
{
    struct sim_gen *g = h->g;
    /* indices, not pointers: a later sim_truth_add may move the array */
    size_t tr[3];
    int64_t sent = h->t;
    for (int k = 0; k < n; k++) {
        struct sim_req *q = &g->reqs[h->s->first_req + (size_t)(first + k)];
        if (k == 0 && q->want > h->t) h->t = q->want;
        struct sim_buf b = {0};
        size_t body, sp[2];
        request_bytes(g, h->r, h->s, q, &b, &body);
        int ns = choose_splits(h->r, q, &b, sp);
        if (h->enc) {
            wire_bytes(h, 0, &b);
            ns = 0; /* the splits were offsets into the clear request */
        }
        struct sim_truth *t = sim_truth_add(g);
        tr[k] = (size_t)(t - g->truth);
        t->ts = k ? sent + 40 : h->t;
        t->cip = h->c.cli.ip;
        t->sip = h->c.srv.ip;
        t->cport = h->c.cli.port;
        t->sport = h->c.srv.port;
        memcpy(t->method, q->method, sizeof t->method);
        memcpy(t->target, q->target, sizeof t->target);
        t->server = h->s->server;
        t->status = q->status;
        t->req_body = body;
        t->cred = q->cred;
        t->ident = g->cred_ident[q->cred];
        t->incident = q->incident;
        t->label = q->label;
        t->pipelined = n > 1;
        t->split = ns > 0;
        sent = sim_conn_client_send(&h->c, t->ts, b.p, b.len, sp, ns, &t->lost);
        t->ts = h->c.first_seen; /* as the mirror saw it: maybe after a reordering */
        sim_buf_free(&b);
    }
    int64_t think = 2000 + (int64_t)sim_rng_below(h->r, 60000);
    if (think > 40000)
        sim_conn_server_ack(&h->c, sent + 40000); /* delayed ACK, RFC 9293 §3.8.6.3 */
    int64_t at = sent + think, done = at;
    for (int k = 0; k < n; k++) {
        struct sim_req *q = &g->reqs[h->s->first_req + (size_t)(first + k)];
        bool last = first + k == h->s->nreq - 1;
        struct sim_resp_spec rs = {.status = q->status,
                                   .body_size = q->resp_size,
                                   .gzip = q->gzip,
                                   .chunked = q->chunked,
                                   .close = last && sim_rng_chance(h->r, 0.2),
                                   .resource = "record",
                                   .now = at};
        const struct sim_endpoint *ep = &g->w->srv[h->s->server].ep[0];
        rs.resource = ep->resource;
        if (q->echo_key) {
            rs.echo_key = q->echo_key;
            rs.echo_val = q->target + q->echo_off;
            rs.echo_len = q->echo_len;
            rs.echo_skip = q->echo_skip;
        }
        struct sim_buf b = {0};
        struct sim_resp_out ro;
        sim_http_response(&b, h->r, &rs, &ro);
        wire_bytes(h, 1, &b);
        g->truth[tr[k]].resp_body = ro.body_wire;
        g->truth[tr[k]].resp_identity = ro.body_identity;
        at += (int64_t)(ro.body_identity / 4000); /* producing a big export takes time */
        done = sim_conn_server_send(&h->c, at, b.p, b.len, &g->truth[tr[k]].lost);
        at = done - h->c.rtt + 30 + (int64_t)sim_rng_below(h->r, 3000);
        sim_buf_free(&b);
        if (rs.close) {
            sim_conn_fin(&h->c, at, true);
            h->closed = true;
        }
    }
    h->t = done + 1000 + (int64_t)sim_rng_below(h->r, 80000);
}

static void render_http(struct sim_gen *g, struct sim_session *s, struct sim_rng *r)
{
    const struct sim_server *sv = &g->w->srv[s->server];
    const struct sim_network *nw = &g->w->net[s->net];
    struct sim_ep cli = {.port = s->sport}, srv = {.port = sv->port};
    sim_client_ip(g->w, s->net, s->host, &cli.ip);
    srv.ip = cli.ip.v6 ? sv->ip6 : sv->ip;
    memcpy(cli.mac, k_gw_mac, 6);
    server_mac(s->server, srv.mac);
    int64_t rtt = (int64_t)(nw->rtt_ms * 1000 * (0.9 + 0.2 * sim_rng_unit(r)));
    int64_t gap = (int64_t)(1514 * 8 / (nw->mbps > 0 ? nw->mbps : 100));
    struct http_run h = {.g = g, .s = s, .r = r, .t = s->t};
    if (s->dns && !cli.ip.v6) {
        emit_dns(g, r, &cli.ip, sv->host, &srv.ip, h.t);
        h.t += 6000;
    }
    sim_conn_init(&h.c, &g->out, r, &g->tcp, &cli, &srv, rtt, gap);
    h.t = sim_conn_open(&h.c, h.t);
    if (g->tls) {
        h.t = sim_tls_open(g, &h.c, r, sv->host, sv->proto != SIM_PROTO_HTTP1 ? "h2" : NULL,
                           h.t + 100, &h.tls);
        h.enc = true;
    }
    if (sv->proto != SIM_PROTO_HTTP1) {
        h.t = sim_h2_session(g, s, r, &h.c, h.enc ? &h.tls : NULL, h.t, &h.closed);
    } else {
        bool pipe = s->nreq >= 3 && sim_rng_chance(r, 0.1);
        for (int i = 0; i < s->nreq && !h.closed;) {
            int n = pipe ? 1 + (int)sim_rng_below(r, 3) : 1;
            if (n > s->nreq - i) n = s->nreq - i;
            http_group(&h, i, n);
            i += n;
        }
    }
    sim_tls_close(&h.tls);
    if (h.closed) return;
    uint64_t end = sim_rng_below(r, 100);
    if (end < 75)
        sim_conn_fin(&h.c, h.t, false);
    else if (end < 88)
        sim_conn_rst(&h.c, h.t);
    else /* idle keep-alive timeout on the server (nginx: 75 s) */
        sim_conn_fin(&h.c, h.t + 75000000, true);
}

void sim_tls_render(struct sim_gen *g, struct sim_session *s, struct sim_rng *r,
                    const uint8_t gw[6]);

int sim_render(struct sim_gen *g)
{
    /* Requests that never got a session index are impossible; sessions whose
     * requests would all fall outside the world are still written (they are
     * the incident's own choice of time). */
    qsort(g->sess, g->nsess, sizeof *g->sess, cmp_sess);
    for (size_t i = 0; i < g->nsess; i++) {
        struct sim_session *s = &g->sess[i];
        struct sim_rng r;
        sim_rng_seed(&r, s->seed);
        if (s->kind == SIM_SESS_TLS)
            sim_tls_render(g, s, &r, k_gw_mac);
        else if (s->nreq)
            render_http(g, s, &r);
        sim_out_flush(&g->out, i + 1 < g->nsess ? g->sess[i + 1].t : INT64_MAX);
    }
    return sim_out_close(&g->out);
}

void sim_dns_render(struct sim_gen *g, struct sim_rng *r, const struct sim_ip *cli,
                    const char *name, const struct sim_ip *answer, int64_t t);
void sim_dns_render(struct sim_gen *g, struct sim_rng *r, const struct sim_ip *cli,
                    const char *name, const struct sim_ip *answer, int64_t t)
{
    emit_dns(g, r, cli, name, answer, t);
}
