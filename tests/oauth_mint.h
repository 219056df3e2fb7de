/* oauth_mint: real JWTs and DPoP proofs (RFC 9449) signed with libcrypto,
 * for the OAuth tests (test_oauth, kwmint for e2e_oauth.py). Every string
 * returned is malloc'd. */
#ifndef KW_TEST_OAUTH_MINT_H
#define KW_TEST_OAUTH_MINT_H

#include <openssl/evp.h>

/* A new key for alg: ES256/ES384 (EC), RS256/PS256 (RSA 2048), EdDSA
 * (Ed25519). NULL for another alg. */
EVP_PKEY *mint_key(const char *alg);
/* The public JWK of k as JSON. */
char *mint_jwk(EVP_PKEY *k);
/* base64url(header).base64url(payload).base64url(signature) */
char *mint_jws(EVP_PKEY *k, const char *alg, const char *header_json, const char *payload_json);
/* A DPoP proof: typ dpop+jwt, the jwk of k, claims htm, htu, iat, jti and,
 * when access_token is not NULL, ath. */
char *mint_dpop(EVP_PKEY *k, const char *alg, const char *htm, const char *htu, long long iat,
                const char *jti, const char *access_token);
/* RFC 7638 thumbprint of k's public JWK (43 characters). */
void mint_jkt(EVP_PKEY *k, char out[48]);

#endif
