/* tls_crypt: key schedules and record protection (see tls_crypt.h). */
#include "tls_crypt.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <string.h>

static const struct tls_suite suites[] = {
    /* TLS 1.3 (RFC 8446 §B.4) */
    {0x1301, TLS_CK_GCM, 16, 0, false, "TLS_AES_128_GCM_SHA256"},
    {0x1302, TLS_CK_GCM, 32, 0, true, "TLS_AES_256_GCM_SHA384"},
    {0x1303, TLS_CK_CHACHA, 32, 0, false, "TLS_CHACHA20_POLY1305_SHA256"},
    /* TLS 1.2 AEAD (RFC 5288, RFC 5289, RFC 7905) */
    {0x009c, TLS_CK_GCM, 16, 0, false, "TLS_RSA_WITH_AES_128_GCM_SHA256"},
    {0x009d, TLS_CK_GCM, 32, 0, true, "TLS_RSA_WITH_AES_256_GCM_SHA384"},
    {0x009e, TLS_CK_GCM, 16, 0, false, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"},
    {0x009f, TLS_CK_GCM, 32, 0, true, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"},
    {0xc02b, TLS_CK_GCM, 16, 0, false, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
    {0xc02c, TLS_CK_GCM, 32, 0, true, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
    {0xc02f, TLS_CK_GCM, 16, 0, false, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
    {0xc030, TLS_CK_GCM, 32, 0, true, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"},
    {0xcca8, TLS_CK_CHACHA, 32, 0, false, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
    {0xcca9, TLS_CK_CHACHA, 32, 0, false, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
    {0xccaa, TLS_CK_CHACHA, 32, 0, false, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
    /* TLS 1.2 CBC (RFC 5246 §A.5, RFC 5289) */
    {0x002f, TLS_CK_CBC, 16, 20, false, "TLS_RSA_WITH_AES_128_CBC_SHA"},
    {0x0035, TLS_CK_CBC, 32, 20, false, "TLS_RSA_WITH_AES_256_CBC_SHA"},
    {0x0033, TLS_CK_CBC, 16, 20, false, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"},
    {0x0039, TLS_CK_CBC, 32, 20, false, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"},
    {0x003c, TLS_CK_CBC, 16, 32, false, "TLS_RSA_WITH_AES_128_CBC_SHA256"},
    {0x003d, TLS_CK_CBC, 32, 32, false, "TLS_RSA_WITH_AES_256_CBC_SHA256"},
    {0x0067, TLS_CK_CBC, 16, 32, false, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"},
    {0x006b, TLS_CK_CBC, 32, 32, false, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"},
    {0xc009, TLS_CK_CBC, 16, 20, false, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"},
    {0xc00a, TLS_CK_CBC, 32, 20, false, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"},
    {0xc013, TLS_CK_CBC, 16, 20, false, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"},
    {0xc014, TLS_CK_CBC, 32, 20, false, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"},
    {0xc023, TLS_CK_CBC, 16, 32, false, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"},
    {0xc024, TLS_CK_CBC, 32, 48, true, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"},
    {0xc027, TLS_CK_CBC, 16, 32, false, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"},
    {0xc028, TLS_CK_CBC, 32, 48, true, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"},
};

const struct tls_suite *tls_suite_find(uint16_t id)
{
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        if (suites[i].id == id)
            return &suites[i];
    return NULL;
}

static const char *hash_name(const struct tls_suite *s)
{
    return s->sha384 ? "SHA384" : "SHA256";
}

static const char *mac_md(const struct tls_suite *s)
{
    return s->mac_len == 20 ? "SHA1" : s->mac_len == 48 ? "SHA384" : "SHA256";
}

static const EVP_CIPHER *cipher_of(const struct tls_suite *s)
{
    switch (s->kind) {
    case TLS_CK_GCM: return s->key_len == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
    case TLS_CK_CHACHA: return EVP_chacha20_poly1305();
    default: return s->key_len == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
    }
}

void tls_keys_wipe(struct tls_keys *k)
{
    if (k->ctx)
        EVP_CIPHER_CTX_free(k->ctx); /* clears the expanded key schedule */
    if (k->mac)
        EVP_MAC_CTX_free(k->mac);
    OPENSSL_cleanse(k, sizeof *k);
    memset(k, 0, sizeof *k);
}

/* The cipher context keyed once; per-record calls only set the nonce. */
static int ctx_setup(struct tls_keys *k)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        return -1;
    k->ctx = c;
    const EVP_CIPHER *ci = cipher_of(k->s);
    if (k->s->kind == TLS_CK_CBC) {
        if (EVP_DecryptInit_ex(c, ci, NULL, k->key, NULL) != 1)
            return -1;
        EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
        k->mac = m ? EVP_MAC_CTX_new(m) : NULL;
        EVP_MAC_free(m);
        OSSL_PARAM p[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)mac_md(k->s), 0),
            OSSL_PARAM_construct_end(),
        };
        if (!k->mac || EVP_MAC_init(k->mac, k->mac_key, k->s->mac_len, p) != 1)
            return -1;
        EVP_CIPHER_CTX_set_padding(c, 0);
        return 0;
    }
    if (EVP_DecryptInit_ex(c, ci, NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1 ||
        EVP_DecryptInit_ex(c, NULL, NULL, k->key, NULL) != 1)
        return -1;
    return 0;
}

/* HKDF-Expand-Label (RFC 8446 §7.1) with an empty context. */
static int expand_label(bool sha384, const uint8_t *secret, size_t slen, const char *label,
                        uint8_t *out, size_t olen)
{
    uint8_t info[2 + 1 + 6 + 32 + 1];
    size_t ll = strlen(label);
    if (ll > 32)
        return -1;
    info[0] = (uint8_t)(olen >> 8);
    info[1] = (uint8_t)olen;
    info[2] = (uint8_t)(6 + ll);
    memcpy(info + 3, "tls13 ", 6);
    memcpy(info + 9, label, ll);
    info[9 + ll] = 0; /* context length */
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (!kc)
        return -1;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)(sha384 ? "SHA384" : "SHA256"), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, slen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, 10 + ll),
        OSSL_PARAM_construct_end(),
    };
    int r = EVP_KDF_derive(kc, out, olen, p) == 1 ? 0 : -1;
    EVP_KDF_CTX_free(kc);
    return r;
}

int tls13_keys_set(struct tls_keys *k, const struct tls_suite *s, const uint8_t *secret,
                   size_t len)
{
    tls_keys_wipe(k);
    if (!s || len != (s->sha384 ? 48u : 32u))
        return -1;
    k->s = s;
    k->tls13 = true;
    memcpy(k->secret, secret, len);
    k->secret_len = (uint8_t)len;
    if (expand_label(s->sha384, secret, len, "key", k->key, s->key_len) ||
        expand_label(s->sha384, secret, len, "iv", k->iv, 12) || ctx_setup(k)) {
        tls_keys_wipe(k);
        return -1;
    }
    return 0;
}

int tls13_key_update(struct tls_keys *k)
{
    uint8_t next[48];
    const struct tls_suite *s = k->s;
    if (!s || !k->tls13 ||
        expand_label(s->sha384, k->secret, k->secret_len, "traffic upd", next, k->secret_len))
        return -1;
    int r = tls13_keys_set(k, s, next, k->secret_len);
    OPENSSL_cleanse(next, sizeof next);
    return r;
}

/* PRF(master, "key expansion", server_random + client_random): RFC 5246 §6.3. */
static int key_block(const struct tls_suite *s, const uint8_t ms[48], const uint8_t cr[32],
                     const uint8_t sr[32], uint8_t *out, size_t olen)
{
    uint8_t seed[13 + 64];
    memcpy(seed, "key expansion", 13);
    memcpy(seed + 13, sr, 32);
    memcpy(seed + 45, cr, 32);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (!kc)
        return -1;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)hash_name(s), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)ms, 48),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof seed),
        OSSL_PARAM_construct_end(),
    };
    int r = EVP_KDF_derive(kc, out, olen, p) == 1 ? 0 : -1;
    EVP_KDF_CTX_free(kc);
    return r;
}

int tls12_keys_set(struct tls_keys *cli, struct tls_keys *srv, const struct tls_suite *s,
                   const uint8_t master[48], const uint8_t client_random[32],
                   const uint8_t server_random[32], bool etm)
{
    tls_keys_wipe(cli);
    tls_keys_wipe(srv);
    if (!s)
        return -1;
    /* client MAC, server MAC, client key, server key, client IV, server IV */
    size_t iv = s->kind == TLS_CK_GCM ? 4 : s->kind == TLS_CK_CHACHA ? 12 : 16;
    size_t need = 2u * s->mac_len + 2u * s->key_len + 2 * iv;
    uint8_t kb[2 * 48 + 2 * 32 + 2 * 16];
    if (key_block(s, master, client_random, server_random, kb, need)) {
        OPENSSL_cleanse(kb, sizeof kb);
        return -1;
    }
    const uint8_t *q = kb;
    struct tls_keys *d[2] = {cli, srv};
    for (int i = 0; i < 2; i++, q += s->mac_len)
        memcpy(d[i]->mac_key, q, s->mac_len);
    for (int i = 0; i < 2; i++, q += s->key_len)
        memcpy(d[i]->key, q, s->key_len);
    for (int i = 0; i < 2; i++, q += iv)
        memcpy(d[i]->iv, q, iv);
    OPENSSL_cleanse(kb, sizeof kb);
    for (int i = 0; i < 2; i++) {
        d[i]->s = s;
        d[i]->etm = etm;
        if (ctx_setup(d[i])) {
            tls_keys_wipe(cli);
            tls_keys_wipe(srv);
            return -1;
        }
    }
    return 0;
}

static int aead_open(struct tls_keys *k, const uint8_t nonce[12], const uint8_t *aad, size_t alen,
                     const uint8_t *ct, size_t clen, const uint8_t tag[16], uint8_t *out)
{
    EVP_CIPHER_CTX *c = k->ctx;
    int n = 0, f = 0;
    if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, nonce) != 1 ||
        EVP_DecryptUpdate(c, NULL, &n, aad, (int)alen) != 1 ||
        EVP_DecryptUpdate(c, out, &n, ct, (int)clen) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, (void *)tag) != 1 ||
        EVP_DecryptFinal_ex(c, out + n, &f) != 1)
        return -1;
    return n + f;
}

static void xor_seq(uint8_t nonce[12], const uint8_t iv[12], uint64_t seq)
{
    memcpy(nonce, iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(seq >> (8 * i));
}

static void put_seq(uint8_t *p, uint64_t seq)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(seq >> (56 - 8 * i));
}

static int open13(struct tls_keys *k, uint64_t seq, const uint8_t hdr[5], const uint8_t *b,
                  size_t len, uint8_t *out, uint8_t *type)
{
    uint8_t nonce[12];
    if (len < 17)
        return -1;
    xor_seq(nonce, k->iv, seq);
    int n = aead_open(k, nonce, hdr, 5, b, len - 16, b + len - 16, out);
    if (n < 0)
        return -1;
    while (n > 0 && out[n - 1] == 0) /* TLSInnerPlaintext zero padding */
        n--;
    if (n == 0)
        return -1;
    *type = out[--n];
    return n;
}

static int open12_aead(struct tls_keys *k, uint64_t seq, const uint8_t hdr[5], const uint8_t *b,
                       size_t len, uint8_t *out)
{
    uint8_t nonce[12], aad[13];
    size_t explicit_len = k->s->kind == TLS_CK_GCM ? 8 : 0;
    if (len < explicit_len + 16)
        return -1;
    size_t plen = len - explicit_len - 16;
    if (k->s->kind == TLS_CK_GCM) {
        memcpy(nonce, k->iv, 4);
        memcpy(nonce + 4, b, 8);
    } else {
        xor_seq(nonce, k->iv, seq);
    }
    put_seq(aad, seq);
    memcpy(aad + 8, hdr, 3);
    aad[11] = (uint8_t)(plen >> 8);
    aad[12] = (uint8_t)plen;
    return aead_open(k, nonce, aad, 13, b + explicit_len, plen, b + len - 16, out);
}

static bool mac_ok(struct tls_keys *k, uint64_t seq, const uint8_t hdr[5], const uint8_t *data,
                   size_t dlen, const uint8_t *mac)
{
    uint8_t pre[13], md[EVP_MAX_MD_SIZE];
    size_t mlen = 0;
    put_seq(pre, seq);
    memcpy(pre + 8, hdr, 3);
    pre[11] = (uint8_t)(dlen >> 8);
    pre[12] = (uint8_t)dlen;
    /* a NULL key re-initialises HMAC with the key given at setup */
    return EVP_MAC_init(k->mac, NULL, 0, NULL) == 1 && EVP_MAC_update(k->mac, pre, 13) == 1 &&
           EVP_MAC_update(k->mac, data, dlen) == 1 &&
           EVP_MAC_final(k->mac, md, &mlen, sizeof md) == 1 && mlen == k->s->mac_len &&
           CRYPTO_memcmp(md, mac, mlen) == 0;
}

static int open12_cbc(struct tls_keys *k, uint64_t seq, const uint8_t hdr[5], const uint8_t *b,
                      size_t len, uint8_t *out)
{
    size_t ml = k->s->mac_len, ct = k->etm ? len - ml : len;
    if (len < 16 + 16 + (k->etm ? ml : 0) || (ct - 16) % 16)
        return -1;
    if (k->etm && !mac_ok(k, seq, hdr, b, ct, b + ct))
        return -1;
    int n = 0;
    EVP_CIPHER_CTX *c = k->ctx;
    if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, b) != 1 ||
        EVP_DecryptUpdate(c, out, &n, b + 16, (int)(ct - 16)) != 1 || (size_t)n != ct - 16)
        return -1;
    size_t pad = out[n - 1];
    if (pad + 1 > (size_t)n)
        return -1;
    for (size_t i = 0; i <= pad; i++)
        if (out[(size_t)n - 1 - i] != pad)
            return -1;
    size_t plen = (size_t)n - pad - 1;
    if (k->etm)
        return (int)plen;
    if (plen < ml)
        return -1;
    plen -= ml;
    return mac_ok(k, seq, hdr, out, plen, out + plen) ? (int)plen : -1;
}

int tls_decrypt_seq(struct tls_keys *k, uint64_t seq, const uint8_t hdr[5], const uint8_t *body,
                    size_t len, uint8_t *out, uint8_t *type)
{
    if (!k->s || !k->ctx)
        return -1;
    if (k->tls13)
        return open13(k, seq, hdr, body, len, out, type);
    *type = hdr[0];
    return k->s->kind == TLS_CK_CBC ? open12_cbc(k, seq, hdr, body, len, out)
                                    : open12_aead(k, seq, hdr, body, len, out);
}
