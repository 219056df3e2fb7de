/* kwmint: mints real JWTs and DPoP proofs for the end-to-end OAuth test
 * (tests/e2e_oauth.py), with libcrypto through tests/oauth_mint.c. Keys
 * are PEM files it writes itself.
 *   kwmint key ALG FILE                       new private key for ALG
 *   kwmint jwt ALG KEYFILE PAYLOAD_JSON       a signed JWT
 *   kwmint dpop ALG KEYFILE HTM HTU IAT JTI [ACCESS_TOKEN]
 *   kwmint jkt KEYFILE                        RFC 7638 thumbprint */
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oauth_mint.h"

static EVP_PKEY *load(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(2);
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!k) {
        fprintf(stderr, "kwmint: %s: not a private key\n", path);
        exit(2);
    }
    return k;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "key")) {
        EVP_PKEY *k = mint_key(argv[2]);
        FILE *f = k ? fopen(argv[3], "w") : NULL;
        if (!f || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)) return 2;
        fclose(f);
        EVP_PKEY_free(k);
        return 0;
    }
    if (argc == 5 && !strcmp(argv[1], "jwt")) {
        EVP_PKEY *k = load(argv[3]);
        char hdr[64];
        snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", argv[2]);
        char *t = mint_jws(k, argv[2], hdr, argv[4]);
        puts(t);
        free(t);
        EVP_PKEY_free(k);
        return 0;
    }
    if ((argc == 8 || argc == 9) && !strcmp(argv[1], "dpop")) {
        EVP_PKEY *k = load(argv[3]);
        char *t = mint_dpop(k, argv[2], argv[4], argv[5], atoll(argv[6]), argv[7],
                            argc == 9 ? argv[8] : NULL);
        puts(t);
        free(t);
        EVP_PKEY_free(k);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "jkt")) {
        EVP_PKEY *k = load(argv[2]);
        char j[48];
        mint_jkt(k, j);
        puts(j);
        EVP_PKEY_free(k);
        return 0;
    }
    fprintf(stderr, "usage: kwmint key|jwt|dpop|jkt ... (see kwmint.c)\n");
    return 2;
}
