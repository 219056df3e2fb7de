/* tls_x509: the fields of an X.509 certificate that the `tls` record and
 * attribution use, decoded by OpenSSL (d2i_X509) from the DER bytes of a
 * Certificate message. Formats follow Suricata's EVE: subject and issuer as
 * "C=US, O=Acme, CN=api.acme.internal" (RDNs in certificate order), serial
 * as upper-case hex pairs with colons, `fingerprint` the SHA-1 as
 * lower-case hex pairs with colons, dates as "2026-01-01T00:00:00" (UTC);
 * plus the SHA-256 of the DER, by which rules name client certificates. */
#ifndef KW_TLS_X509_H
#define KW_TLS_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_X509_MAX_SAN 8

struct tls_cert {
    bool present;
    char subject[256], issuer[256];
    char serial[100];
    char sha1[60];   /* "aa:bb:..." */
    char sha256[65]; /* hex, no prefix */
    char not_before[20], not_after[20];
    char san[TLS_X509_MAX_SAN][128];
    uint8_t n_san;
    bool cut; /* a field did not fit */
};

/* 0 ok, -1 not a certificate OpenSSL can decode (*out then holds only the
 * hashes, which need no decoding, and present = true). */
int tls_x509_parse(const uint8_t *der, size_t len, struct tls_cert *out);

#endif
