/* bench_tls: TLS record decryption speed, next to the bare libcrypto loop.
 *
 * For each suite, N records of 16 KiB of application data are sealed once
 * (libcrypto, the record layout of RFC 8446 §5.2 or RFC 5246 §6.2.3), then
 * opened three ways, best of ROUNDS:
 *   bare   EVP_DecryptInit (nonce) / Update / set tag / Final in a loop:
 *          what libcrypto itself costs, the ceiling;
 *   record tls_decrypt_seq: keywarden's per-record path (nonce, AAD,
 *          TLSInnerPlaintext padding);
 *   conn   tls_conn_feed over the whole byte stream of a session whose
 *          keys come from a key log: framing, decryption, and handing the
 *          plaintext to a consumer (a counter), as the pipeline does.
 * Usage: bench_tls [MB] [ROUNDS]. Not a ctest (bench/README.md). */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tls_conn.h"

#define REC 16384

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct sealed {
    uint8_t *wire; /* records back to back */
    size_t len, n;
};

static void seal13(const struct tls_keys *k, size_t n, struct sealed *s)
{
    const EVP_CIPHER *ci = k->s->kind == TLS_CK_CHACHA ? EVP_chacha20_poly1305()
                           : k->s->key_len == 16        ? EVP_aes_128_gcm()
                                                        : EVP_aes_256_gcm();
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex(c, ci, NULL, k->key, NULL);
    s->n = n;
    s->len = n * (5 + REC + 1 + 16);
    s->wire = malloc(s->len);
    uint8_t pt[REC + 1];
    RAND_bytes(pt, REC);
    pt[REC] = 23;
    for (size_t i = 0; i < n; i++) {
        uint8_t *r = s->wire + i * (5 + REC + 17), nonce[12];
        size_t l = REC + 17;
        r[0] = 23, r[1] = 3, r[2] = 3, r[3] = (uint8_t)(l >> 8), r[4] = (uint8_t)l;
        memcpy(nonce, k->iv, 12);
        for (int b = 0; b < 8; b++)
            nonce[11 - b] ^= (uint8_t)(i >> (8 * b));
        int o;
        EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce);
        EVP_EncryptUpdate(c, NULL, &o, r, 5);
        EVP_EncryptUpdate(c, r + 5, &o, pt, REC + 1);
        EVP_EncryptFinal_ex(c, r + 5 + REC + 1, &o);
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, r + 5 + REC + 1);
    }
    EVP_CIPHER_CTX_free(c);
}

static double bare(const struct tls_keys *k, const struct sealed *s, uint8_t *out)
{
    const EVP_CIPHER *ci = k->s->kind == TLS_CK_CHACHA ? EVP_chacha20_poly1305()
                           : k->s->key_len == 16        ? EVP_aes_128_gcm()
                                                        : EVP_aes_256_gcm();
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    EVP_DecryptInit_ex(c, ci, NULL, k->key, NULL);
    double t = now();
    for (size_t i = 0; i < s->n; i++) {
        const uint8_t *r = s->wire + i * (5 + REC + 17);
        uint8_t nonce[12];
        memcpy(nonce, k->iv, 12);
        for (int b = 0; b < 8; b++)
            nonce[11 - b] ^= (uint8_t)(i >> (8 * b));
        int o;
        EVP_DecryptInit_ex(c, NULL, NULL, NULL, nonce);
        EVP_DecryptUpdate(c, NULL, &o, r, 5);
        EVP_DecryptUpdate(c, out, &o, r + 5, REC + 1);
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, (void *)(r + 5 + REC + 1));
        if (EVP_DecryptFinal_ex(c, out + o, &o) != 1)
            abort();
    }
    t = now() - t;
    EVP_CIPHER_CTX_free(c);
    return t;
}

static double record(struct tls_keys *k, const struct sealed *s, uint8_t *out)
{
    double t = now();
    for (size_t i = 0; i < s->n; i++) {
        const uint8_t *r = s->wire + i * (5 + REC + 17);
        uint8_t type;
        if (tls_decrypt_seq(k, i, r, r + 5, REC + 17, out, &type) != REC)
            abort();
    }
    return now() - t;
}

static size_t sink(void *u, int dir, const uint8_t *p, size_t n, kw_ts ts)
{
    *(uint64_t *)u += n;
    return n;
}

static size_t put(uint8_t *b, size_t o, const uint8_t *p, size_t n)
{
    memcpy(b + o, p, n);
    return o + n;
}

/* A hello record: type 1 or 2, the body after the random (RFC 8446 §4.1). */
static size_t hello(uint8_t *b, uint8_t type, const uint8_t random[32], const uint8_t *tail,
                    size_t tl)
{
    size_t body = 2 + 32 + tl, o = 0;
    const uint8_t rec[] = {22, 3, 3, (uint8_t)((body + 4) >> 8), (uint8_t)(body + 4), type, 0,
                           (uint8_t)(body >> 8), (uint8_t)body, 3, 3};
    o = put(b, o, rec, sizeof rec);
    o = put(b, o, random, 32);
    return put(b, o, tail, tl);
}

/* A whole connection: ClientHello and ServerHello (the suite), then the
 * records, decrypted with the application keys a key log names. */
static double conn(const struct tls_suite *su, const uint8_t *secret, size_t slen,
                   const struct sealed *s)
{
    struct tls_keylog *kl;
    if (tls_keylog_new(4, &kl) != KW_E_OK)
        abort();
    uint8_t cr[32] = {0}, sr[32] = {1};
    cr[31] = 7;
    static const char *const labels[] = {"CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"};
    for (int l = 0; l < 2; l++) {
        char line[300];
        int o = snprintf(line, sizeof line, "%s ", labels[l]);
        for (int i = 0; i < 32; i++)
            o += snprintf(line + o, sizeof line - (size_t)o, "%02x", cr[i]);
        line[o++] = ' ';
        for (size_t i = 0; i < slen; i++)
            o += snprintf(line + o, sizeof line - (size_t)o, "%02x", secret[i]);
        if (tls_keylog_add_line(kl, line, (size_t)o) != 1)
            abort();
    }
    struct tls_ctx *x = malloc(sizeof *x);
    tls_ctx_init(x, NULL, kl);
    uint64_t got = 0;
    struct tls_conn_cb cb = {&got, sink, NULL, NULL};
    struct tls_conn *c = tls_conn_new(x, &cb, false);
    uint8_t b[128];
    const uint8_t ch_tail[] = {0, 0, 2, 0x13, 0x01, 1, 0, 0, 0};
    const uint8_t sh_tail[] = {0, (uint8_t)(su->id >> 8), (uint8_t)su->id, 0, 0, 6, 0, 0x2b, 0, 2,
                               3, 4};
    size_t n = hello(b, 1, cr, ch_tail, sizeof ch_tail);
    if (tls_conn_feed(c, 0, b, n, 1) != n)
        abort();
    n = hello(b, 2, sr, sh_tail, sizeof sh_tail);
    if (tls_conn_feed(c, 1, b, n, 1) != n)
        abort();
    double t = now();
    size_t used = 0;
    while (used < s->len)
        used += tls_conn_feed(c, 1, s->wire + used, s->len - used, 2);
    t = now() - t;
    if (got != s->n * REC) {
        fprintf(stderr, "bench_tls: the connection path delivered %llu of %zu bytes\n",
                (unsigned long long)got, s->n * REC);
        exit(1);
    }
    tls_conn_destroy(c);
    tls_keylog_destroy(kl);
    free(x);
    return t;
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? (size_t)atoi(argv[1]) : 256;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    size_t n = mb * 1024 * 1024 / REC;
    static const uint16_t ids[] = {0x1301, 0x1302, 0x1303};
    uint8_t *out = malloc(REC + 64);
    printf("| suite | bare libcrypto loop | tls_decrypt_seq | tls_conn_feed |\n|---|---|---|---|\n");
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
        const struct tls_suite *su = tls_suite_find(ids[k]);
        uint8_t secret[48];
        RAND_bytes(secret, sizeof secret);
        size_t sl = su->sha384 ? 48 : 32;
        struct tls_keys keys;
        memset(&keys, 0, sizeof keys);
        if (tls13_keys_set(&keys, su, secret, sl))
            abort();
        struct sealed s;
        seal13(&keys, n, &s);
        double b = 1e9, r = 1e9, c = 1e9;
        for (int i = 0; i < rounds; i++) {
            double x = bare(&keys, &s, out);
            b = x < b ? x : b;
            x = record(&keys, &s, out);
            r = x < r ? x : r;
            x = conn(su, secret, sl, &s);
            c = x < c ? x : c;
        }
        double bytes = (double)n * REC / 1e6;
        printf("| %s | %.0f MB/s | %.0f MB/s | %.0f MB/s |\n", su->name, bytes / b, bytes / r,
               bytes / c);
        tls_keys_wipe(&keys);
        free(s.wire);
    }
    printf("\n%zu MB of 16 KiB records per suite, best of %d rounds, one core.\n", mb, rounds);
    free(out);
    return 0;
}
