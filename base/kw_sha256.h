/* kw_sha256: SHA-256 (FIPS 180-4) on the per-transaction path, without an
 * allocation. The one thing to know: OpenSSL 3.0's EVP interface allocates
 * a provider context on every EVP_DigestInit_ex, even on a reused
 * EVP_MD_CTX of the same algorithm (measured: one malloc per digest with
 * init, copy or init_ex2 alike), and keywarden takes three digests per
 * transaction (credential fingerprint, natural key of the audit row,
 * alert window key). So this is OpenSSL's own SHA-256 through its
 * low-level calls over a context the caller holds: no allocation, and
 * its assembly (SHA-NI here: 112 ns per 100-byte digest against 566 ns
 * for the portable C this replaced). test_base checks it against EVP over
 * every length to 300 bytes, split at every point, and FIPS 180-2's
 * vectors. Every plain SHA-256 of keywarden goes through it (alert ids
 * and sink keys, over-long API keys, DPoP key thumbprints too); HMACs and
 * the certificate digests of tls_x509.c (SHA-1 beside SHA-256) use EVP. */
#ifndef KW_SHA256_H
#define KW_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kw_sha256_ctx {
    /* OpenSSL's SHA256_CTX (112 bytes on LP64), held by value so that a
     * digest needs no allocation; opaque to callers */
    _Alignas(8) unsigned char opaque[128];
};

void kw_sha256_init(struct kw_sha256_ctx *c);
void kw_sha256_update(struct kw_sha256_ctx *c, const void *p, size_t n);
void kw_sha256_final(struct kw_sha256_ctx *c, uint8_t out[32]);

/* out = SHA-256(p[0..n)). Always true (kept for the callers' checks). */
bool kw_sha256(const void *p, size_t n, uint8_t out[32]);

#endif
