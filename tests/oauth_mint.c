/* oauth_mint: see oauth_mint.h. Independent of analyzer/identity on
 * purpose: the JWK, the thumbprint input and the JWS signature forms are
 * written here from the RFCs (7515, 7517, 7518, 7638, 9449), so a test
 * that feeds these to dpop.c checks one reading of the RFCs against
 * another, not the code against itself. */
#include "oauth_mint.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *b64url(const unsigned char *p, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n / 3 * 4 + 8), *w = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *w++ = a[v >> 18 & 63], *w++ = a[v >> 12 & 63], *w++ = a[v >> 6 & 63], *w++ = a[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        *w++ = a[v >> 18 & 63], *w++ = a[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        *w++ = a[v >> 18 & 63], *w++ = a[v >> 12 & 63], *w++ = a[v >> 6 & 63];
    }
    *w = 0;
    return out;
}

static char *b64url_str(const char *s)
{
    return b64url((const unsigned char *)s, strlen(s));
}

EVP_PKEY *mint_key(const char *alg)
{
    if (!strcmp(alg, "ES256")) return EVP_EC_gen("P-256");
    if (!strcmp(alg, "ES384")) return EVP_EC_gen("P-384");
    if (!strcmp(alg, "RS256") || !strcmp(alg, "PS256")) return EVP_RSA_gen(2048);
    if (!strcmp(alg, "EdDSA")) return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return NULL;
}

static char *bn_member(EVP_PKEY *k, const char *name)
{
    BIGNUM *bn = NULL;
    if (!EVP_PKEY_get_bn_param(k, name, &bn)) return NULL;
    int n = BN_num_bytes(bn);
    unsigned char *buf = malloc((size_t)n);
    BN_bn2bin(bn, buf);
    char *s = b64url(buf, (size_t)n);
    free(buf);
    BN_free(bn);
    return s;
}

char *mint_jwk(EVP_PKEY *k)
{
    char *out = malloc(2048);
    if (EVP_PKEY_is_a(k, "EC")) {
        unsigned char pub[200];
        size_t n = 0;
        char group[32];
        EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &n);
        EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL);
        size_t c = (n - 1) / 2;
        char *x = b64url(pub + 1, c), *y = b64url(pub + 1 + c, c);
        const char *crv = !strcmp(group, "prime256v1") || !strcmp(group, "P-256") ? "P-256"
                                                                                  : "P-384";
        snprintf(out, 2048, "{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}", crv, x,
                 y);
        free(x);
        free(y);
    } else if (EVP_PKEY_is_a(k, "RSA")) {
        char *n = bn_member(k, OSSL_PKEY_PARAM_RSA_N), *e = bn_member(k, OSSL_PKEY_PARAM_RSA_E);
        snprintf(out, 2048, "{\"kty\":\"RSA\",\"e\":\"%s\",\"n\":\"%s\"}", e, n);
        free(n);
        free(e);
    } else {
        unsigned char pub[32];
        size_t n = sizeof pub;
        EVP_PKEY_get_raw_public_key(k, pub, &n);
        char *x = b64url(pub, n);
        snprintf(out, 2048, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}", x);
        free(x);
    }
    return out;
}

char *mint_jws(EVP_PKEY *k, const char *alg, const char *header_json, const char *payload_json)
{
    char *h = b64url_str(header_json), *p = b64url_str(payload_json);
    size_t il = strlen(h) + 1 + strlen(p);
    char *input = malloc(il + 1);
    snprintf(input, il + 1, "%s.%s", h, p);
    const EVP_MD *md = !strcmp(alg, "EdDSA")                             ? NULL
                       : !strcmp(alg, "ES384")                           ? EVP_sha384()
                                                                         : EVP_sha256();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char sig[1024];
    size_t sl = sizeof sig;
    EVP_DigestSignInit(ctx, &pctx, md, NULL, k);
    if (!strcmp(alg, "PS256")) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    }
    EVP_DigestSign(ctx, sig, &sl, (const unsigned char *)input, il);
    EVP_MD_CTX_free(ctx);
    unsigned char raw[132];
    const unsigned char *sp = sig;
    if (!strncmp(alg, "ES", 2)) { /* DER -> R || S (RFC 7518 §3.4) */
        size_t c = !strcmp(alg, "ES384") ? 48 : 32;
        const unsigned char *d = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &d, (long)sl);
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)c);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + c, (int)c);
        ECDSA_SIG_free(es);
        sp = raw;
        sl = 2 * c;
    }
    char *s = b64url(sp, sl);
    size_t ol = il + 1 + strlen(s) + 1;
    char *out = malloc(ol);
    snprintf(out, ol, "%s.%s", input, s);
    free(h);
    free(p);
    free(input);
    free(s);
    return out;
}

char *mint_dpop(EVP_PKEY *k, const char *alg, const char *htm, const char *htu, long long iat,
                const char *jti, const char *access_token)
{
    char *jwk = mint_jwk(k), hdr[2300], pl[1400], ath[64] = "";
    snprintf(hdr, sizeof hdr, "{\"typ\":\"dpop+jwt\",\"alg\":\"%s\",\"jwk\":%s}", alg, jwk);
    if (access_token) {
        unsigned char md[32];
        EVP_Digest(access_token, strlen(access_token), md, NULL, EVP_sha256(), NULL);
        char *a = b64url(md, 32);
        snprintf(ath, sizeof ath, ",\"ath\":\"%s\"", a);
        free(a);
    }
    snprintf(pl, sizeof pl, "{\"jti\":\"%s\",\"htm\":\"%s\",\"htu\":\"%s\",\"iat\":%lld%s}", jti,
             htm, htu, iat, ath);
    free(jwk);
    return mint_jws(k, alg, hdr, pl);
}

void mint_jkt(EVP_PKEY *k, char out[48])
{
    /* RFC 7638 §3.2: required members, lexicographic order, no spaces */
    char *jwk = mint_jwk(k), canon[2048];
    /* pick the members back out of our own JWK text; the keys below are
     * already in lexicographic order */
    const char *keys[] = {"\"crv\":\"", "\"e\":\"", "\"kty\":\"", "\"n\":\"", "\"x\":\"", "\"y\":\""};
    char vals[6][1100] = {{0}};
    for (int i = 0; i < 6; i++) {
        const char *p = strstr(jwk, keys[i]);
        if (!p) continue;
        p += strlen(keys[i]);
        size_t l = strcspn(p, "\"");
        memcpy(vals[i], p, l);
    }
    size_t o = 0;
    o += (size_t)snprintf(canon + o, sizeof canon - o, "{");
    int first = 1;
    for (int i = 0; i < 6; i++) {
        if (!vals[i][0]) continue;
        o += (size_t)snprintf(canon + o, sizeof canon - o, "%s%s%s\"", first ? "" : ",", keys[i],
                              vals[i]);
        first = 0;
    }
    snprintf(canon + o, sizeof canon - o, "}");
    unsigned char md[32];
    EVP_Digest(canon, strlen(canon), md, NULL, EVP_sha256(), NULL);
    char *s = b64url(md, 32);
    snprintf(out, 48, "%s", s);
    free(s);
    free(jwk);
}
