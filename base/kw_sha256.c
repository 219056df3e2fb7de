/* kw_sha256: see kw_sha256.h. OpenSSL's SHA-256 compression (its assembly:
 * SHA-NI where the CPU has it, else AVX2/SSSE3) through the low-level
 * SHA256_* calls, which take a context the caller holds and never
 * allocate. They are deprecated in OpenSSL 3 in favour of EVP, which
 * allocates a provider context on every init (see kw_sha256.h); the
 * deprecation is silenced for this file only, the one place keywarden
 * uses them. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "kw_sha256.h"

#include <openssl/sha.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(struct kw_sha256_ctx),
               "kw_sha256_ctx must hold a SHA256_CTX");
_Static_assert(_Alignof(SHA256_CTX) <= _Alignof(struct kw_sha256_ctx),
               "kw_sha256_ctx must be aligned for a SHA256_CTX");

static SHA256_CTX *ossl(struct kw_sha256_ctx *c)
{
    return (SHA256_CTX *)(void *)c->opaque;
}

void kw_sha256_init(struct kw_sha256_ctx *c)
{
    SHA256_Init(ossl(c));
}

void kw_sha256_update(struct kw_sha256_ctx *c, const void *p, size_t n)
{
    if (n)
        SHA256_Update(ossl(c), p, n);
}

void kw_sha256_final(struct kw_sha256_ctx *c, uint8_t out[32])
{
    SHA256_Final(out, ossl(c));
}

bool kw_sha256(const void *p, size_t n, uint8_t out[32])
{
    struct kw_sha256_ctx c;
    kw_sha256_init(&c);
    kw_sha256_update(&c, p, n);
    kw_sha256_final(&c, out);
    return true;
}
