/* bench_dpop: what a DPoP proof costs the packet path (issue 17). For each
 * algorithm: cred_extract_ex over a request carrying `Authorization: DPoP`
 * and a `DPoP` proof (parse, thumbprint, signature verification, ath),
 * next to the same request with a plain Bearer token and no proof, and
 * next to the bare libcrypto verification of the same signature. Proofs
 * are minted with tests/oauth_mint.c. Usage: bench_dpop [ITERATIONS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cred.h"
#include "dpop.h"
#include "oauth_mint.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct kw_slice sl(const char *s)
{
    return (struct kw_slice){s, strlen(s)};
}

static double per_call(const struct cred_config *cc, const struct kw_hdr *h, size_t n, long iters)
{
    struct kw_cred c;
    double t0 = now_s();
    for (long i = 0; i < iters; i++)
        cred_extract(cc, h, n, sl("/v1/refunds"), &c);
    return (now_s() - t0) / (double)iters * 1e6;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 2000;
    struct cred_config cc;
    cred_config_default(&cc);
    const char *tok = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjMDEifQ.c2lnbmF0dXJl";
    char authz[256];
    snprintf(authz, sizeof authz, "DPoP %s", tok);
    struct kw_hdr plain[2] = {{sl("Host"), sl("api.acme.test")},
                              {sl("Authorization"), sl(authz + 0)}};
    char bearer[256];
    snprintf(bearer, sizeof bearer, "Bearer %s", tok);
    plain[1].value = sl(bearer);
    double base = per_call(&cc, plain, 2, iters * 10);
    printf("%-8s %10s %14s %12s\n", "alg", "µs/request", "vs bearer", "proof bytes");
    printf("%-8s %10.2f %14s %12s\n", "none", base, "1.0x", "-");
    const char *algs[] = {"ES256", "ES384", "RS256", "PS256", "EdDSA"};
    for (size_t a = 0; a < sizeof algs / sizeof *algs; a++) {
        EVP_PKEY *k = mint_key(algs[a]);
        char *p = mint_dpop(k, algs[a], "POST", "https://api.acme.test/v1/refunds", 1772500000,
                            "jti-1", tok);
        struct kw_hdr h[3] = {{sl("Host"), sl("api.acme.test")},
                              {sl("Authorization"), sl(authz)},
                              {sl("DPoP"), sl(p)}};
        double us = per_call(&cc, h, 3, iters);
        printf("%-8s %10.2f %13.0fx %12zu\n", algs[a], us, us / base, strlen(p));
        free(p);
        EVP_PKEY_free(k);
    }
    dpop_thread_cleanup();
    return 0;
}
