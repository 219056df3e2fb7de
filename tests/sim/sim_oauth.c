/* sim_oauth: DPoP (RFC 9449) for simulated contractors. The one thing to
 * know: the keys are Ed25519, whose signatures (RFC 8032) are
 * deterministic, so a world rendered twice with one seed gives the same
 * bytes, proofs included; the seed of each key comes from the world's
 * name and the identity. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_plan_int.h"

static EVP_PKEY *key_of(const struct sim_cred *c)
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, c->dpop_seed, 32);
    if (!k) abort();
    return k;
}

static void jwk_x(EVP_PKEY *k, char x[64])
{
    uint8_t pub[32];
    size_t n = sizeof pub;
    if (EVP_PKEY_get_raw_public_key(k, pub, &n) != 1 || n != 32) abort();
    sim_b64(pub, n, x, true);
}

void sim_dpop_key(struct sim_cred *c)
{
    EVP_PKEY *k = key_of(c);
    char x[64], canon[160];
    jwk_x(k, x);
    /* RFC 7638 §3.2: required members of an OKP key, sorted, no spaces */
    snprintf(canon, sizeof canon, "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", x);
    uint8_t md[32];
    EVP_Digest(canon, strlen(canon), md, NULL, EVP_sha256(), NULL);
    sim_b64(md, 32, c->dpop_jkt, true);
    EVP_PKEY_free(k);
}

void sim_dpop_proof(const struct sim_cred *c, const char *htm, const char *htu, int64_t iat,
                    const char *jti, char *out, size_t cap)
{
    EVP_PKEY *k = key_of(c);
    char x[64], hdr[200], pl[900], ath[64], hb[300], pb[1300], sb[100];
    jwk_x(k, x);
    uint8_t md[32];
    EVP_Digest(c->secret, strlen(c->secret), md, NULL, EVP_sha256(), NULL);
    sim_b64(md, 32, ath, true);
    snprintf(hdr, sizeof hdr,
             "{\"typ\":\"dpop+jwt\",\"alg\":\"EdDSA\",\"jwk\":{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
             "\"x\":\"%s\"}}",
             x);
    snprintf(pl, sizeof pl, "{\"jti\":\"%s\",\"htm\":\"%s\",\"htu\":\"%s\",\"iat\":%lld,\"ath\":\"%s\"}",
             jti, htm, htu, (long long)iat, ath);
    sim_b64((const uint8_t *)hdr, strlen(hdr), hb, true);
    sim_b64((const uint8_t *)pl, strlen(pl), pb, true);
    char input[1700];
    snprintf(input, sizeof input, "%s.%s", hb, pb);
    uint8_t sig[64];
    size_t sl = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) != 1 ||
        EVP_DigestSign(ctx, sig, &sl, (const uint8_t *)input, strlen(input)) != 1)
        abort();
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(k);
    sim_b64(sig, sl, sb, true);
    if ((size_t)snprintf(out, cap, "%s.%s", input, sb) >= cap) abort();
}
