/* sim_tls: TLS noise on port 443, a ClientHello with SNI (RFC 8446 §4.1.2,
 * RFC 6066 §3) answered by a TLS 1.3 ServerHello, then opaque application
 * data records. The one thing to know: only the hello messages are
 * well-formed structures; the rest is random bytes inside valid record
 * framing, which is what a monitor without keys sees anyway.
 *
 * With --tls the HTTP sessions themselves are encrypted for real: random
 * traffic secrets (there is no key exchange to simulate: a passive
 * decryptor only ever has the secrets), HKDF-Expand-Label keys (RFC 8446
 * §7.1, §7.3) and AES-128-GCM records (§5.2) through libcrypto, and the
 * secrets in an NSS key log, so keywarden and tshark can decrypt them. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <stdio.h>
#include <string.h>

#include "sim_tcp.h"

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

static void client_hello(struct sim_buf *b, struct sim_rng *r, const char *sni, const char *alpn,
                         uint8_t *random)
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
    size_t at = b->len;
    rnd(b, r, 32);
    if (random)
        memcpy(random, b->p + at, 32);
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
    if (alpn) { /* application_layer_protocol_negotiation (RFC 7301 §3.1): alpn, http/1.1 */
        size_t a = strlen(alpn);
        u16(b, 0x0010);
        u16(b, (unsigned)(2 + 1 + a + 1 + 8));
        u16(b, (unsigned)(1 + a + 1 + 8));
        u8(b, (unsigned)a);
        sim_buf_add(b, alpn, a);
        u8(b, 8);
        sim_buf_add(b, "http/1.1", 8);
    }
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
    client_hello(&b, r, s->sni, NULL, NULL);
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

/* ---- real encryption (--tls) ------------------------------------------ */

static int expand_label(const uint8_t secret[32], const char *label, uint8_t *out, size_t olen)
{
    uint8_t info[64];
    size_t ll = strlen(label), n = 0;
    info[n++] = 0;
    info[n++] = (uint8_t)olen;
    info[n++] = (uint8_t)(6 + ll);
    memcpy(info + n, "tls13 ", 6);
    n += 6;
    memcpy(info + n, label, ll);
    n += ll;
    info[n++] = 0;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *k = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (!k)
        return -1;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM p[] = {OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
                      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
                      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, 32),
                      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
                      OSSL_PARAM_construct_end()};
    int rc = EVP_KDF_derive(k, out, olen, p) == 1 ? 0 : -1;
    EVP_KDF_CTX_free(k);
    return rc;
}

static void dir_keys(struct sim_tls_dir *d, const uint8_t secret[32])
{
    uint8_t key[16];
    if (d->ctx)
        EVP_CIPHER_CTX_free(d->ctx);
    d->ctx = EVP_CIPHER_CTX_new();
    d->seq = 0;
    if (expand_label(secret, "key", key, 16) || expand_label(secret, "iv", d->iv, 12) ||
        EVP_EncryptInit_ex(d->ctx, EVP_aes_128_gcm(), NULL, key, NULL) != 1)
        fprintf(stderr, "kwsim: libcrypto refused a TLS key\n");
}

/* One TLSCiphertext of inner type `type` (RFC 8446 §5.2). */
static void seal_one(struct sim_tls_dir *d, uint8_t type, const uint8_t *p, size_t n,
                     struct sim_buf *out)
{
    uint8_t hdr[5] = {23, 3, 3, (uint8_t)((n + 17) >> 8), (uint8_t)(n + 17)}, nonce[12], tag[16];
    memcpy(nonce, d->iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(d->seq >> (8 * i));
    d->seq++;
    sim_buf_reserve(out, 5 + n + 17);
    sim_buf_add(out, hdr, 5);
    uint8_t *ct = out->p + out->len;
    int l = 0;
    EVP_EncryptInit_ex(d->ctx, NULL, NULL, NULL, nonce);
    EVP_EncryptUpdate(d->ctx, NULL, &l, hdr, 5);
    EVP_EncryptUpdate(d->ctx, ct, &l, p, (int)n);
    EVP_EncryptUpdate(d->ctx, ct + n, &l, &type, 1);
    EVP_EncryptFinal_ex(d->ctx, ct + n + 1, &l);
    EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag);
    memcpy(ct + n + 1, tag, 16);
    out->len += n + 17;
}

void sim_tls_seal(struct sim_tls_dir *d, const uint8_t *p, size_t n, struct sim_buf *out)
{
    do {
        size_t k = n > 16384 ? 16384 : n;
        seal_one(d, 23, p, k, out);
        p += k;
        n -= k;
    } while (n);
}

static void log_secret(FILE *f, const char *label, const uint8_t cr[32], const uint8_t s[32])
{
    fprintf(f, "%s ", label);
    for (int i = 0; i < 32; i++)
        fprintf(f, "%02x", cr[i]);
    fputc(' ', f);
    for (int i = 0; i < 32; i++)
        fprintf(f, "%02x", s[i]);
    fputc('\n', f);
}

int64_t sim_tls_open(struct sim_gen *g, struct sim_conn *c, struct sim_rng *r, const char *sni,
                     const char *alpn, int64_t t, struct sim_tls_sess *ts)
{
    uint8_t cr[32], sec[4][32]; /* c hs, s hs, c app, s app */
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 32; k++)
            sec[i][k] = (uint8_t)sim_rng_u64(r);
    struct sim_buf b = {0};
    client_hello(&b, r, sni, alpn, cr);
    t = sim_conn_client_send(c, t, b.p, b.len, NULL, 0, NULL);
    if (g->keylog) {
        static const char *const labels[] = {"CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                                             "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                                             "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"};
        for (int i = 0; i < 4; i++)
            log_secret(g->keylog, labels[i], cr, sec[i]);
    }
    /* server: ServerHello, CCS, {EncryptedExtensions, Finished}; the
     * EncryptedExtensions carry the chosen ALPN protocol (RFC 8446 §4.3.1) */
    struct sim_tls_dir hs = {0};
    uint8_t fin[4 + 32] = {20, 0, 0, 32}, msg[64 + sizeof fin];
    for (int k = 0; k < 32; k++)
        fin[4 + k] = (uint8_t)sim_rng_u64(r);
    size_t a = alpn ? strlen(alpn) : 0, ext = alpn ? 2 + 2 + 2 + 1 + a : 0, m = 0;
    msg[m++] = 8;
    msg[m++] = 0;
    msg[m++] = 0;
    msg[m++] = (uint8_t)(2 + ext);
    msg[m++] = 0;
    msg[m++] = (uint8_t)ext;
    if (alpn) {
        const uint8_t h[] = {0x00, 0x10, 0, (uint8_t)(3 + a), 0, (uint8_t)(1 + a), (uint8_t)a};
        memcpy(msg + m, h, sizeof h);
        memcpy(msg + m + sizeof h, alpn, a);
        m += sizeof h + a;
    }
    memcpy(msg + m, fin, sizeof fin);
    m += sizeof fin;
    b.len = 0;
    server_hello(&b, r);
    dir_keys(&hs, sec[1]);
    seal_one(&hs, 22, msg, m, &b);
    t = sim_conn_server_send(c, t + 900, b.p, b.len, NULL);
    /* client: CCS, {Finished} */
    b.len = 0;
    const uint8_t ccs[] = {20, 3, 3, 0, 1, 1};
    sim_buf_add(&b, ccs, sizeof ccs);
    dir_keys(&hs, sec[0]);
    seal_one(&hs, 22, fin, sizeof fin, &b);
    t = sim_conn_client_send(c, t + 200, b.p, b.len, NULL, 0, NULL);
    EVP_CIPHER_CTX_free(hs.ctx);
    sim_buf_free(&b);
    memset(ts, 0, sizeof *ts);
    dir_keys(&ts->d[0], sec[2]);
    dir_keys(&ts->d[1], sec[3]);
    return t;
}

void sim_tls_close(struct sim_tls_sess *ts)
{
    for (int i = 0; i < 2; i++)
        if (ts->d[i].ctx)
            EVP_CIPHER_CTX_free(ts->d[i].ctx);
    memset(ts, 0, sizeof *ts);
}
