/* kw_sha256: SHA-256 (FIPS 180-4) on the per-transaction path, without an
 * allocation. The one thing to know: OpenSSL 3.0's EVP interface allocates
 * a provider context on every EVP_DigestInit_ex, even on a reused
 * EVP_MD_CTX of the same algorithm (measured: one malloc per digest with
 * init, copy or init_ex2 alike), and keywarden takes three digests per
 * transaction (credential fingerprint, natural key of the audit row,
 * alert window key). This is the plain compression function over a
 * context the caller holds; test_base checks it against OpenSSL over
 * every length to 300 bytes, split at every point, and FIPS 180-2's
 * vectors. Keys of other sizes and HMACs stay with OpenSSL. */
#ifndef KW_SHA256_H
#define KW_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kw_sha256_ctx {
    uint32_t h[8];
    uint64_t bytes; /* hashed so far */
    uint8_t buf[64];
    size_t used; /* bytes waiting in buf */
};

void kw_sha256_init(struct kw_sha256_ctx *c);
void kw_sha256_update(struct kw_sha256_ctx *c, const void *p, size_t n);
void kw_sha256_final(struct kw_sha256_ctx *c, uint8_t out[32]);

/* out = SHA-256(p[0..n)). Always true (kept for the callers' checks). */
bool kw_sha256(const void *p, size_t n, uint8_t out[32]);

#endif
