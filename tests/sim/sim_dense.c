/* sim_dense: many concurrent keep-alive connections of API traffic made from
 * pre-rendered messages. The one thing to know about speed: a message is cut
 * into 1460-byte segments once, with each segment's one's complement sum
 * precomputed (RFC 1071 sums are additive over even-aligned blocks), so a
 * packet costs one memcpy of its payload and a checksum over ~40 header
 * bytes; records go to a large buffer written in big blocks. */
#include "sim_dense.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_http.h"
#include "sim_pkt.h"
#include "sim_rng.h"

#define DSEG 1460
#define NTPL 48 /* the dense mix uses the first 24 */
#define MAXPIPE 3
#define BUFSZ (4u << 20)

struct dmsg {
    struct sim_buf b;
    uint32_t *sums; /* per segment */
    int nseg;
};

struct dtpl {
    struct dmsg req, resp;
};

struct dconn {
    uint8_t cip[4];
    uint16_t cport;
    uint32_t cseq, sseq;
    uint16_t ipid;
    int phase, seg, left;
    int q[MAXPIPE], nq, qi; /* templates of the requests in flight, in order */
};

struct dense {
    const struct sim_dense_cfg *cfg;
    struct sim_rng r;
    struct dtpl tpl[NTPL];
    int ntpl;
    struct dconn *c;
    uint8_t *buf;
    size_t blen;
    FILE *f;
    int64_t now;
    uint64_t bytes, packets;
    uint64_t pending; /* bytes still owed by responses under way */
    uint16_t next_port;
    uint8_t sip[4];
};

static void msg_cut(struct dmsg *m)
{
    m->nseg = (int)((m->b.len + DSEG - 1) / DSEG);
    m->sums = malloc((size_t)m->nseg * sizeof *m->sums);
    for (int i = 0; i < m->nseg; i++) {
        size_t off = (size_t)i * DSEG;
        size_t n = m->b.len - off < DSEG ? m->b.len - off : DSEG;
        m->sums[i] = sim_sum(m->b.p + off, n, 0);
    }
}

static void make_templates(struct dense *d)
{
    static const char *const paths[][2] = {
        {"/v1/customers/", "/invoices"},   {"/v1/orders/", ""},
        {"/v1/orders?page=", "&limit=50"}, {"/v1/exports/", ""},
        {"/v2/inventory/items/", ""},      {"/v1/payments/", "/refunds"}};
    bool small = d->cfg->small;
    d->ntpl = small ? NTPL : 24;
    for (int i = 0; i < d->ntpl; i++) {
        struct dtpl *t = &d->tpl[i];
        char target[128], tok[48];
        snprintf(target, sizeof target, "%s%u%s", paths[i % 6][0],
                 (unsigned)sim_rng_range(&d->r, 1000, 9999), paths[i % 6][1]);
        for (int k = 0; k < 40; k++)
            tok[k] = "abcdefghijklmnopqrstuvwxyz0123456789"[sim_rng_below(&d->r, 36)];
        tok[40] = 0;
        /* Small mix: one request in four a POST with a JSON body. */
        struct sim_buf body = {0};
        if (small && i % 4 == 3)
            sim_json_body(&body, &d->r, "order", (size_t)sim_rng_range(&d->r, 200, 700),
                          d->cfg->start_us);
        sim_buf_printf(&t->req.b,
                       "%s %s HTTP/1.1\r\nHost: api.dense.example\r\nUser-Agent: "
                       "kwsim-dense/1.0\r\nAccept: application/json\r\nAuthorization: Bearer "
                       "kwt_%s\r\n",
                       body.len ? "POST" : "GET", target, tok);
        if (body.len)
            sim_buf_printf(&t->req.b, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                           body.len);
        sim_buf_add(&t->req.b, "\r\n", 2);
        if (body.len) sim_buf_add(&t->req.b, body.p, body.len);
        sim_buf_free(&body);
        size_t size = small          ? (size_t)sim_rng_range(&d->r, 500, 2000)
                      : i % 6 == 3 ? (size_t)sim_rng_range(&d->r, 60000, 250000)
                                   : (size_t)sim_rng_range(&d->r, 300, 9000);
        struct sim_resp_spec rs = {.status = i == 7 ? 404 : small && i % 4 == 3 ? 201 : 200,
                                   .body_size = size,
                                   .gzip = i % 4 == 1,
                                   .chunked = i % 3 == 2,
                                   .resource = "order",
                                   .now = d->cfg->start_us};
        struct sim_resp_out ro;
        sim_http_response(&t->resp.b, &d->r, &rs, &ro);
        msg_cut(&t->req);
        msg_cut(&t->resp);
    }
}

static void flush_buf(struct dense *d)
{
    fwrite(d->buf, 1, d->blen, d->f);
    d->blen = 0;
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p + 2, v);
}

/* One packet straight into the output buffer. */
static void pkt(struct dense *d, struct dconn *c, bool cli, uint8_t flags, const uint8_t *pl,
                size_t plen, uint32_t psum)
{
    if (d->blen + 16 + 54 + plen > BUFSZ) flush_buf(d);
    uint8_t *rec = d->buf + d->blen, *e = rec + 16, *ip = e + 14, *t = ip + 20;
    size_t flen = 54 + plen;
    d->now += 3 + (int64_t)(plen >> 9);
    sim_pcap_rec_header(rec, d->now, (uint32_t)flen);
    static const uint8_t macs[12] = {0x52, 0x54, 0, 0x10, 0, 1, 0, 0x1b, 0x21, 0x3a, 0x4c, 1};
    memcpy(e, cli ? macs : macs + 6, 6);
    memcpy(e + 6, cli ? macs + 6 : macs, 6);
    put16(e + 12, 0x0800);
    const uint8_t *src = cli ? c->cip : d->sip, *dst = cli ? d->sip : c->cip;
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, (uint32_t)(40 + plen));
    put16(ip + 4, c->ipid++);
    put16(ip + 6, 0x4000);
    ip[8] = cli ? 58 : 64;
    ip[9] = 6;
    put16(ip + 10, 0);
    memcpy(ip + 12, src, 4);
    memcpy(ip + 16, dst, 4);
    put16(ip + 10, sim_fold(sim_sum(ip, 20, 0)));
    put16(t, cli ? c->cport : 8080);
    put16(t + 2, cli ? 8080 : c->cport);
    put32(t + 4, cli ? c->cseq : c->sseq);
    put32(t + 8, flags & SIM_ACK ? (cli ? c->sseq : c->cseq) : 0);
    t[12] = 5 << 4;
    t[13] = flags;
    put16(t + 14, 64240);
    put32(t + 16, 0);
    if (plen) memcpy(t + 20, pl, plen);
    uint8_t ph[12];
    memcpy(ph, src, 4);
    memcpy(ph + 4, dst, 4);
    ph[8] = 0;
    ph[9] = 6;
    put16(ph + 10, (uint32_t)(20 + plen));
    uint32_t s = sim_sum(ph, 12, psum);
    put16(t + 16, sim_fold(sim_sum(t, 20, s)));
    d->blen += 16 + flen;
    d->bytes += 16 + flen;
    d->packets++;
}

static void conn_new(struct dense *d, struct dconn *c)
{
    uint32_t h = (uint32_t)sim_rng_u64(&d->r);
    c->cip[0] = 10;
    c->cip[1] = 1 + (uint8_t)(h % 8);
    c->cip[2] = (uint8_t)(h >> 8);
    c->cip[3] = (uint8_t)(1 + (h >> 16) % 250);
    c->cport = d->next_port;
    d->next_port = d->next_port >= 60999 ? 32768 : d->next_port + 1;
    c->cseq = (uint32_t)sim_rng_u64(&d->r);
    c->sseq = (uint32_t)sim_rng_u64(&d->r);
    c->phase = 0;
    c->nq = c->qi = 0;
    c->left = (int)sim_rng_range(&d->r, 3, 60);
}

/* Advance one connection by one step (one or more packets). */
static void step(struct dense *d, struct dconn *c)
{
    struct dtpl *t = &d->tpl[c->q[c->qi]];
    switch (c->phase) {
    case 0:
        pkt(d, c, true, SIM_SYN, NULL, 0, 0);
        c->cseq++;
        pkt(d, c, false, SIM_SYN | SIM_ACK, NULL, 0, 0);
        c->sseq++;
        pkt(d, c, true, SIM_ACK, NULL, 0, 0);
        c->phase = 1;
        break;
    case 1: /* requests, usually one of one segment; small mix: 1 in 8 pipelined */
        c->nq = 1;
        if (d->cfg->small && c->left > 1 && sim_rng_below(&d->r, 8) == 0)
            c->nq = c->left > 2 ? 2 + (int)sim_rng_below(&d->r, 2) : 2;
        for (int k = 0; k < c->nq; k++) {
            c->q[k] = (int)sim_rng_below(&d->r, (uint64_t)d->ntpl);
            t = &d->tpl[c->q[k]];
            for (int i = 0; i < t->req.nseg; i++) {
                size_t off = (size_t)i * DSEG,
                       n = t->req.b.len - off < DSEG ? t->req.b.len - off : DSEG;
                pkt(d, c, true, SIM_ACK | SIM_PSH, t->req.b.p + off, n, t->req.sums[i]);
                c->cseq += (uint32_t)n;
            }
            d->pending += t->resp.b.len + (uint64_t)t->resp.nseg * 140;
        }
        c->phase = 2;
        c->seg = 0;
        c->qi = 0;
        break;
    case 2: { /* response, two segments per step and the client's ACK */
        for (int k = 0; k < 2 && c->seg < t->resp.nseg; k++, c->seg++) {
            size_t off = (size_t)c->seg * DSEG;
            size_t n = t->resp.b.len - off < DSEG ? t->resp.b.len - off : DSEG;
            bool last = c->seg == t->resp.nseg - 1;
            pkt(d, c, false, SIM_ACK | (last ? SIM_PSH : 0), t->resp.b.p + off, n,
                t->resp.sums[c->seg]);
            c->sseq += (uint32_t)n;
            d->pending -= n + 140;
        }
        pkt(d, c, true, SIM_ACK, NULL, 0, 0);
        if (c->seg == t->resp.nseg) {
            c->seg = 0;
            c->left--;
            if (++c->qi == c->nq) {
                c->qi = c->nq = 0;
                c->phase = c->left > 0 ? 1 : 3;
            }
        }
        break;
    }
    default:
        pkt(d, c, true, SIM_FIN | SIM_ACK, NULL, 0, 0);
        c->cseq++;
        pkt(d, c, false, SIM_FIN | SIM_ACK, NULL, 0, 0);
        c->sseq++;
        pkt(d, c, true, SIM_ACK, NULL, 0, 0);
        conn_new(d, c);
    }
}

int sim_dense_run(const struct sim_dense_cfg *cfg, uint64_t *bytes, uint64_t *packets)
{
    struct dense d = {.cfg = cfg, .now = cfg->start_us, .next_port = 32768, .sip = {10, 20, 0, 10}};
    sim_rng_seed(&d.r, cfg->seed);
    d.f = strcmp(cfg->out, "-") ? fopen(cfg->out, "wb") : stdout;
    if (!d.f) return -1;
    d.buf = malloc(BUFSZ);
    d.c = calloc((size_t)cfg->conns, sizeof *d.c);
    if (!d.buf || !d.c) abort();
    make_templates(&d);
    sim_pcap_file_header(d.buf);
    d.blen = d.bytes = 24;
    for (int i = 0; i < cfg->conns; i++)
        conn_new(&d, &d.c[i]);
    /* Stop when what is written plus what running responses still owe
     * reaches the size, then finish those responses and close cleanly. */
    while (d.bytes + d.pending < cfg->size)
        step(&d, &d.c[sim_rng_below(&d.r, (uint64_t)cfg->conns)]);
    for (int i = 0; i < cfg->conns; i++) {
        struct dconn *c = &d.c[i];
        while (c->phase == 2)
            step(&d, c);
        if (c->phase == 1) {
            c->phase = 3;
            step(&d, c);
        }
    }
    flush_buf(&d);
    int rc = ferror(d.f) ? -1 : 0;
    if (d.f != stdout && fclose(d.f)) rc = -1;
    for (int i = 0; i < d.ntpl; i++) {
        sim_buf_free(&d.tpl[i].req.b);
        sim_buf_free(&d.tpl[i].resp.b);
        free(d.tpl[i].req.sums);
        free(d.tpl[i].resp.sums);
    }
    free(d.buf);
    free(d.c);
    *bytes = d.bytes;
    *packets = d.packets;
    return rc;
}
