/* kw_sha256: SHA-256 on the per-transaction path without an allocation.
 * The one thing to know: OpenSSL 3's EVP_Digest(..., EVP_sha256(), ...)
 * fetches the algorithm by name (a strdup) and allocates a context on every
 * call; here the algorithm is fetched once per process and each thread
 * keeps one context (freed when the thread ends). Issue 13 counted ~6
 * allocations per transaction in the three per-transaction digests. */
#ifndef KW_SHA256_H
#define KW_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* The SHA-256 EVP_MD, fetched once (EVP_sha256() if fetching fails). */
const EVP_MD *kw_sha256_md(void);

/* out = SHA-256(p[0..n)); false on a libcrypto failure (out undefined). */
bool kw_sha256(const void *p, size_t n, uint8_t out[32]);

#endif
