/* sim_tls: TLS noise on port 443, a ClientHello with SNI (RFC 8446 §4.1.2,
 * RFC 6066 §3) answered by a TLS 1.3 ServerHello, then opaque application
 * data records. The one thing to know: only the hello messages are
 * well-formed structures; the rest is random bytes inside valid record
 * framing, which is what a monitor without keys sees anyway. */
#include <string.h>

#include "sim_gen.h"
#include "sim_http.h"

void sim_tls_render(struct sim_gen *g, struct sim_session *s, struct sim_rng *r,
                    const uint8_t gw[6]);
void sim_dns_render(struct sim_gen *g, struct sim_rng *r, const struct sim_ip *cli,
                    const char *name, const struct sim_ip *answer, int64_t t);

static void u8(struct sim_buf *b, unsigned v)
{
    uint8_t x = (uint8_t)v;
    sim_buf_add(b, &x, 1);
}

static void u16(struct sim_buf *b, unsigned v)
{
    u8(b, v >> 8);
    u8(b, v);
}

static void rnd(struct sim_buf *b, struct sim_rng *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        u8(b, (unsigned)sim_rng_u64(r));
}

/* Patch a 2- or 3-byte big-endian length at off covering everything after it. */
static void patch(struct sim_buf *b, size_t off, int width)
{
    size_t v = b->len - off - (size_t)width;
    for (int i = 0; i < width; i++)
        b->p[off + (size_t)i] = (uint8_t)(v >> (8 * (width - 1 - i)));
}

static void client_hello(struct sim_buf *b, struct sim_rng *r, const char *sni)
{
    size_t n = strlen(sni);
    u8(b, 22);
    u16(b, 0x0301);
    size_t rec = b->len;
    u16(b, 0);
    u8(b, 1); /* ClientHello */
    size_t hs = b->len;
    u8(b, 0);
    u16(b, 0);
    u16(b, 0x0303);
    rnd(b, r, 32);
    u8(b, 32);
    rnd(b, r, 32);
    const unsigned suites[] = {0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030};
    u16(b, sizeof suites / sizeof suites[0] * 2);
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        u16(b, suites[i]);
    u8(b, 1);
    u8(b, 0);
    size_t ext = b->len;
    u16(b, 0);
    u16(b, 0x0000); /* server_name */
    u16(b, (unsigned)n + 5);
    u16(b, (unsigned)n + 3);
    u8(b, 0);
    u16(b, (unsigned)n);
    sim_buf_add(b, sni, n);
    u16(b, 0x000a); /* supported_groups: x25519, secp256r1 */
    u16(b, 6);
    u16(b, 4);
    u16(b, 0x001d);
    u16(b, 0x0017);
    u16(b, 0x000d); /* signature_algorithms */
    u16(b, 8);
    u16(b, 6);
    u16(b, 0x0403);
    u16(b, 0x0804);
    u16(b, 0x0401);
    u16(b, 0x002b); /* supported_versions: 1.3, 1.2 */
    u16(b, 5);
    u8(b, 4);
    u16(b, 0x0304);
    u16(b, 0x0303);
    u16(b, 0x0033); /* key_share: x25519 */
    u16(b, 38);
    u16(b, 36);
    u16(b, 0x001d);
    u16(b, 32);
    rnd(b, r, 32);
    patch(b, ext, 2);
    patch(b, hs, 3);
    patch(b, rec, 2);
}

static void server_hello(struct sim_buf *b, struct sim_rng *r)
{
    u8(b, 22);
    u16(b, 0x0303);
    size_t rec = b->len;
    u16(b, 0);
    u8(b, 2);
    size_t hs = b->len;
    u8(b, 0);
    u16(b, 0);
    u16(b, 0x0303);
    rnd(b, r, 32);
    u8(b, 32);
    rnd(b, r, 32);
    u16(b, 0x1301);
    u8(b, 0);
    u16(b, 46);
    u16(b, 0x002b);
    u16(b, 2);
    u16(b, 0x0304);
    u16(b, 0x0033);
    u16(b, 36);
    u16(b, 0x001d);
    u16(b, 32);
    rnd(b, r, 32);
    patch(b, hs, 3);
    patch(b, rec, 2);
    const uint8_t ccs[] = {20, 3, 3, 0, 1, 1}; /* middlebox compatibility CCS */
    sim_buf_add(b, ccs, sizeof ccs);
}

static void app_data(struct sim_buf *b, struct sim_rng *r, size_t n)
{
    while (n) {
        size_t k = n > 16401 ? 16401 : n;
        u8(b, 23);
        u16(b, 0x0303);
        u16(b, (unsigned)k);
        rnd(b, r, k);
        n -= k;
    }
}

void sim_tls_render(struct sim_gen *g, struct sim_session *s, struct sim_rng *r,
                    const uint8_t gw[6])
{
    struct sim_ep cli = {.port = s->sport}, srv = {.port = 443};
    sim_client_ip(g->w, s->net, s->host, &cli.ip);
    uint64_t h = sim_hash_str(s->sni);
    uint8_t a[4] = {198, 51, 100, (uint8_t)(10 + h % 200)};
    srv.ip.v6 = 0;
    memcpy(srv.ip.a, a, 4);
    memcpy(cli.mac, gw, 6);
    memcpy(srv.mac, gw, 6);
    srv.mac[5] = 0x44;
    int64_t t = s->t;
    sim_dns_render(g, r, &cli.ip, s->sni, &srv.ip, t);
    t += 8000;
    struct sim_conn c;
    sim_conn_init(&c, &g->out, r, &g->tcp, &cli, &srv,
                  (int64_t)g->w->net[s->net].rtt_ms * 1000 + 500, 120);
    t = sim_conn_open(&c, t);
    struct sim_buf b = {0};
    client_hello(&b, r, s->sni);
    t = sim_conn_client_send(&c, t, b.p, b.len, NULL, 0, NULL);
    b.len = 0;
    server_hello(&b, r);
    app_data(&b, r, (size_t)sim_rng_range(r, 2000, 5000)); /* encrypted extensions, cert */
    t = sim_conn_server_send(&c, t + 900, b.p, b.len, NULL);
    int rounds = (int)sim_rng_range(r, 1, 6);
    for (int i = 0; i < rounds; i++) {
        b.len = 0;
        app_data(&b, r, (size_t)sim_rng_range(r, 80, 1500));
        t = sim_conn_client_send(&c, t + 2000, b.p, b.len, NULL, 0, NULL);
        b.len = 0;
        app_data(&b, r, (size_t)sim_rng_range(r, 200, 12000));
        t = sim_conn_server_send(&c, t + 20000, b.p, b.len, NULL);
    }
    sim_buf_free(&b);
    sim_conn_fin(&c, t + 1000, false);
}
