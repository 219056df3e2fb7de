/* dpop: RFC 9449 §4.2 proofs read and verified (see dpop.h). Checks that
 * need the request (htm, htu, ath against the access token, iat against
 * the packet clock, jti replays) are the judge's: this file only reports
 * what the proof says and whether its signature holds. */
#include "dpop.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cred.h"
#include "kw_sha256.h"
#include "jwt.h"

/* Largest decoded header/payload/signature we read: an RSA-8192 jwk in
 * the header is ~1.4 KB, a signature at most 1 KB. */
#define PART_MAX 8192

static void b64url_encode(const uint8_t *p, size_t n, char *out, size_t cap)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = a[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = a[v & 63];
    }
    out[o] = 0;
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* RFC 7638 §3: the required members only, in lexicographic order, no
 * white space; jansson's compact, sorted output is exactly that form. */
static bool thumbprint(json_t *jwk, char out[48])
{
    const char *kty = jstr(jwk, "kty");
    static const char *const ec[] = {"crv", "kty", "x", "y", NULL};
    static const char *const rsa[] = {"e", "kty", "n", NULL};
    static const char *const okp[] = {"crv", "kty", "x", NULL};
    const char *const *req = !kty                 ? NULL
                             : !strcmp(kty, "EC")  ? ec
                             : !strcmp(kty, "RSA") ? rsa
                             : !strcmp(kty, "OKP") ? okp
                                                   : NULL;
    if (!req) return false;
    json_t *c = json_object();
    if (!c) return false;
    for (; *req; req++) {
        const char *v = jstr(jwk, *req);
        if (!v) {
            json_decref(c);
            return false;
        }
        json_object_set_new(c, *req, json_string(v));
    }
    char *text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(c);
    if (!text) return false;
    uint8_t md[32];
    kw_sha256(text, strlen(text), md);
    free(text);
    b64url_encode(md, sizeof md, out, 48);
    return true;
}

bool dpop_jwk_thumbprint(const char *jwk_json, size_t len, char out[48])
{
    json_error_t err;
    json_t *jwk = json_loadb(jwk_json, len, 0, &err);
    bool ok = json_is_object(jwk) && thumbprint(jwk, out);
    json_decref(jwk);
    return ok;
}

/* ---- signature -------------------------------------------------------- */

struct alg_info {
    const char *name;
    const char *kty;
    const char *crv;   /* EC/OKP curve */
    const char *group; /* OpenSSL group name */
    const char *md;    /* NULL: EdDSA (no prehash) */
    size_t coord;      /* EC coordinate bytes */
    bool pss;
};

static const struct alg_info algs[] = {
    {"ES256", "EC", "P-256", "P-256", "SHA256", 32, false},
    {"ES384", "EC", "P-384", "P-384", "SHA384", 48, false},
    {"ES512", "EC", "P-521", "P-521", "SHA512", 66, false},
    {"RS256", "RSA", NULL, NULL, "SHA256", 0, false},
    {"RS384", "RSA", NULL, NULL, "SHA384", 0, false},
    {"RS512", "RSA", NULL, NULL, "SHA512", 0, false},
    {"PS256", "RSA", NULL, NULL, "SHA256", 0, true},
    {"PS384", "RSA", NULL, NULL, "SHA384", 0, true},
    {"PS512", "RSA", NULL, NULL, "SHA512", 0, true},
    {"EdDSA", "OKP", "Ed25519", NULL, NULL, 0, false},
};

static const struct alg_info *alg_find(const char *alg)
{
    for (size_t i = 0; i < sizeof algs / sizeof *algs; i++)
        if (!strcmp(algs[i].name, alg)) return &algs[i];
    return NULL;
}

static size_t member(json_t *jwk, const char *k, uint8_t *out, size_t cap)
{
    const char *v = jstr(jwk, k);
    return v ? jwt_b64url_decode(v, strlen(v), out, cap) : SIZE_MAX;
}

static EVP_PKEY *fromdata(const char *type, OSSL_PARAM *params)
{
    EVP_PKEY *pk = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        (void)EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    return pk;
}

static EVP_PKEY *key_ec(json_t *jwk, const struct alg_info *a)
{
    uint8_t pub[1 + 2 * 66];
    pub[0] = 4; /* SEC 1 §2.3.3 uncompressed point */
    size_t nx = member(jwk, "x", pub + 1, a->coord);
    size_t ny = member(jwk, "y", pub + 1 + a->coord, a->coord);
    if (nx != a->coord || ny != a->coord) return NULL;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)a->group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * a->coord),
        OSSL_PARAM_construct_end(),
    };
    return fromdata("EC", p);
}

static EVP_PKEY *key_rsa(json_t *jwk)
{
    uint8_t n[1024], e[16];
    size_t nn = member(jwk, "n", n, sizeof n), ne = member(jwk, "e", e, sizeof e);
    if (nn == SIZE_MAX || ne == SIZE_MAX || !nn || !ne) return NULL;
    EVP_PKEY *pk = NULL;
    BIGNUM *bn = BN_bin2bn(n, (int)nn, NULL), *be = BN_bin2bn(e, (int)ne, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *p = NULL;
    if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) &&
        (p = OSSL_PARAM_BLD_to_param(bld)))
        pk = fromdata("RSA", p);
    OSSL_PARAM_free(p);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return pk;
}

static EVP_PKEY *key_okp(json_t *jwk)
{
    uint8_t x[32];
    if (member(jwk, "x", x, sizeof x) != 32) return NULL;
    return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, sizeof x);
}

/* JWS ECDSA signatures are R || S (RFC 7518 §3.4); OpenSSL wants DER. */
static size_t ecdsa_der(const uint8_t *sig, size_t n, size_t coord, uint8_t *out, size_t cap)
{
    if (n != 2 * coord) return 0;
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)coord, NULL), *ss = BN_bin2bn(sig + coord, (int)coord, NULL);
    size_t len = 0;
    if (s && r && ss && ECDSA_SIG_set0(s, r, ss) == 1) {
        r = ss = NULL; /* owned by s now */
        int l = i2d_ECDSA_SIG(s, NULL);
        if (l > 0 && (size_t)l <= cap) {
            uint8_t *w = out;
            len = (size_t)i2d_ECDSA_SIG(s, &w);
        }
    }
    BN_free(r);
    BN_free(ss);
    ECDSA_SIG_free(s);
    return len;
}

/* A client signs every proof with the same key, and building an EVP_PKEY
 * (point validation, for EC) costs as much as the verification: each
 * thread keeps the last keys it built, named by their RFC 7638 thumbprint
 * (a SHA-256 over exactly the members that define the key) and alg. */
#define KEY_CACHE 16
struct key_slot {
    char jkt[48];
    const struct alg_info *alg;
    EVP_PKEY *pk;
};
static _Thread_local struct key_slot key_cache[KEY_CACHE];
static _Thread_local unsigned key_next;

static EVP_PKEY *key_get(json_t *jwk, const struct alg_info *a, const char *jkt)
{
    for (unsigned i = 0; i < KEY_CACHE; i++)
        if (key_cache[i].pk && key_cache[i].alg == a && !strcmp(key_cache[i].jkt, jkt))
            return key_cache[i].pk;
    EVP_PKEY *pk = !strcmp(a->kty, "EC") ? key_ec(jwk, a) : !strcmp(a->kty, "RSA") ? key_rsa(jwk)
                                                                                  : key_okp(jwk);
    if (!pk) return NULL;
    struct key_slot *s = &key_cache[key_next++ % KEY_CACHE];
    EVP_PKEY_free(s->pk);
    snprintf(s->jkt, sizeof s->jkt, "%s", jkt);
    s->alg = a;
    s->pk = pk;
    return pk;
}

void dpop_thread_cleanup(void)
{
    for (unsigned i = 0; i < KEY_CACHE; i++) {
        EVP_PKEY_free(key_cache[i].pk);
        key_cache[i].pk = NULL;
    }
}

static bool verify(json_t *jwk, const struct alg_info *a, const char *jkt, const char *input,
                   size_t ilen, const uint8_t *sig, size_t slen)
{
    const char *kty = jstr(jwk, "kty"), *crv = jstr(jwk, "crv");
    if (!kty || strcmp(kty, a->kty)) return false;
    if (a->crv && (!crv || strcmp(crv, a->crv))) return false;
    EVP_PKEY *pk = key_get(jwk, a, jkt);
    if (!pk) return false;
    uint8_t der[160];
    if (!strcmp(a->kty, "EC")) {
        slen = ecdsa_der(sig, slen, a->coord, der, sizeof der);
        sig = der;
    }
    bool ok = false;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    if (slen && md && EVP_DigestVerifyInit_ex(md, &pctx, a->md, NULL, NULL, pk, NULL) == 1) {
        bool set = true;
        if (a->pss)
            set = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
        ok = set && EVP_DigestVerify(md, sig, slen, (const uint8_t *)input, ilen) == 1;
    }
    EVP_MD_CTX_free(md);
    return ok;
}

/* ---- the proof ---------------------------------------------------------- */

static json_t *part(const char *p, size_t len, uint8_t *buf)
{
    size_t n = jwt_b64url_decode(p, len, buf, PART_MAX);
    if (n == SIZE_MAX) return NULL;
    json_error_t err;
    json_t *o = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &err);
    OPENSSL_cleanse(buf, n);
    if (o && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static void bad(struct kw_dpop *out, const char *why)
{
    out->state = KW_DPOP_BAD;
    snprintf(out->error, sizeof out->error, "%s", why);
}

static void copy_claim(json_t *o, const char *k, char *dst, size_t cap)
{
    json_t *v = json_object_get(o, k);
    if (json_is_string(v))
        (void)cred_text_copy(dst, cap, (const uint8_t *)json_string_value(v),
                             json_string_length(v));
}

bool dpop_ath_matches(const struct kw_dpop *d, const char *fingerprint)
{
    uint8_t md[40];
    size_t n = jwt_b64url_decode(d->ath, strlen(d->ath), md, sizeof md);
    if (n != 32 || strncmp(fingerprint, "sha256:", 7) || strlen(fingerprint + 7) != 64)
        return false;
    char hex[65];
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return !strcmp(hex, fingerprint + 7);
}

void dpop_parse(const char *proof, size_t len, struct kw_dpop *out)
{
    memset(out, 0, sizeof *out);
    if (len > DPOP_MAX_PROOF) {
        bad(out, "too long");
        return;
    }
    if (!jwt_shape(proof, len)) {
        bad(out, "not a JWS compact serialisation");
        return;
    }
    const char *d1 = memchr(proof, '.', len);
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - proof));

    static _Thread_local uint8_t buf[PART_MAX];
    json_t *hdr = part(proof, (size_t)(d1 - proof), buf);
    json_t *pl = hdr ? part(d1 + 1, (size_t)(d2 - d1 - 1), buf) : NULL;
    if (!hdr || !pl) {
        json_decref(hdr);
        bad(out, "header or payload not a JSON object");
        return;
    }
    /* §4.3 checks 4-7: typ, an asymmetric alg, a public jwk */
    const char *typ = jstr(hdr, "typ"), *alg = jstr(hdr, "alg");
    json_t *jwk = json_object_get(hdr, "jwk");
    if (alg) snprintf(out->alg, sizeof out->alg, "%s", alg);
    const struct alg_info *a = alg ? alg_find(alg) : NULL;
    if (!typ || strcasecmp(typ, "dpop+jwt"))
        bad(out, "typ is not dpop+jwt");
    else if (!a)
        bad(out, "alg is not an asymmetric JWS algorithm");
    else if (!json_is_object(jwk) || json_object_get(jwk, "d"))
        bad(out, "no public jwk in the header");
    else if (!thumbprint(jwk, out->jkt))
        bad(out, "jwk lacks its required members");

    if (out->state != KW_DPOP_BAD) {
        copy_claim(pl, "htm", out->htm, sizeof out->htm);
        copy_claim(pl, "htu", out->htu, sizeof out->htu);
        copy_claim(pl, "ath", out->ath, sizeof out->ath);
        out->has_ath = out->ath[0] != 0;
        json_t *iat = json_object_get(pl, "iat");
        if (json_is_integer(iat)) {
            out->iat = (int64_t)json_integer_value(iat);
            out->has_iat = true;
        } else if (json_is_real(iat) && json_real_value(iat) > -9.2e18 &&
                   json_real_value(iat) < 9.2e18) {
            out->iat = (int64_t)json_real_value(iat);
            out->has_iat = true;
        }
        json_t *jti = json_object_get(pl, "jti");
        if (json_is_string(jti))
            cred_fingerprint((const uint8_t *)json_string_value(jti), json_string_length(jti),
                             out->jti);
        if (!out->htm[0] || !out->htu[0] || !out->has_iat || !out->jti[0])
            bad(out, "a required claim (htm, htu, iat, jti) is missing");
    }
    if (out->state != KW_DPOP_BAD) {
        out->state = KW_DPOP_PARSED;
        size_t slen = jwt_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - proof), buf, 1024);
        if (slen != SIZE_MAX)
            out->sig_valid = verify(jwk, a, out->jkt, proof, (size_t)(d2 - proof), buf, slen);
    }
    json_decref(hdr);
    json_decref(pl);
}
