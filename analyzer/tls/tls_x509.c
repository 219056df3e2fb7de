/* tls_x509: certificate fields through OpenSSL (see tls_x509.h). The hashes
 * are taken over the DER bytes as sent, so a certificate OpenSSL refuses to
 * decode still has a fingerprint a rule can name. */
#include "tls_x509.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void hex_colon(const unsigned char *b, size_t n, bool upper, char *out, size_t size)
{
    const char *d = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && o + 3 < size; i++) {
        if (i)
            out[o++] = ':';
        out[o++] = d[b[i] >> 4];
        out[o++] = d[b[i] & 15];
    }
    out[o] = 0;
}

static bool name_str(const X509_NAME *nm, char *out, size_t size)
{
    out[0] = 0;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return false;
    unsigned long fl = XN_FLAG_SEP_CPLUS_SPC | XN_FLAG_FN_SN | ASN1_STRFLGS_UTF8_CONVERT |
                       ASN1_STRFLGS_ESC_CTRL;
    bool cut = false;
    if (X509_NAME_print_ex(b, nm, 0, fl) >= 0) {
        char *p;
        long n = BIO_get_mem_data(b, &p);
        size_t k = n > 0 ? (size_t)n : 0;
        cut = k >= size;
        if (k >= size)
            k = size - 1;
        memcpy(out, p, k);
        out[k] = 0;
    }
    BIO_free(b);
    return cut;
}

static void time_str(const ASN1_TIME *t, char *out, size_t size)
{
    struct tm tm;
    out[0] = 0;
    if (t && ASN1_TIME_to_tm(t, &tm))
        strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
}

static void serial_str(const X509 *x, char *out, size_t size)
{
    const ASN1_INTEGER *s = X509_get0_serialNumber(x);
    out[0] = 0;
    if (s)
        hex_colon(s->data, (size_t)s->length, true, out, size);
}

static void sans(X509 *x, struct tls_cert *c)
{
    GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (!g)
        return;
    for (int i = 0; i < sk_GENERAL_NAME_num(g); i++) {
        const GENERAL_NAME *n = sk_GENERAL_NAME_value(g, i);
        const ASN1_STRING *s = NULL;
        if (n->type == GEN_DNS || n->type == GEN_EMAIL || n->type == GEN_URI)
            s = n->d.ia5;
        else if (n->type == GEN_IPADD)
            s = n->d.ip;
        if (!s)
            continue;
        if (c->n_san >= TLS_X509_MAX_SAN) {
            c->cut = true;
            break;
        }
        char *o = c->san[c->n_san++];
        size_t cap = sizeof c->san[0];
        const unsigned char *d = ASN1_STRING_get0_data(s);
        int len = ASN1_STRING_length(s);
        if (n->type == GEN_IPADD && (len == 4 || len == 16)) {
            if (len == 4)
                snprintf(o, cap, "%u.%u.%u.%u", d[0], d[1], d[2], d[3]);
            else
                hex_colon(d, 16, false, o, cap); /* byte pairs; rare in API certs */
        } else {
            size_t k = (size_t)len < cap - 1 ? (size_t)len : cap - 1;
            for (size_t j = 0; j < k; j++)
                o[j] = d[j] >= 0x20 && d[j] < 0x7f ? (char)d[j] : '?';
            o[k] = 0;
            c->cut |= k < (size_t)len;
        }
    }
    GENERAL_NAMES_free(g);
}

int tls_x509_parse(const uint8_t *der, size_t len, struct tls_cert *c)
{
    memset(c, 0, sizeof *c);
    c->present = true;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(der, len, md, &n, EVP_sha1(), NULL))
        hex_colon(md, n, false, c->sha1, sizeof c->sha1);
    if (EVP_Digest(der, len, md, &n, EVP_sha256(), NULL))
        for (unsigned i = 0; i < n && i < 32; i++)
            snprintf(c->sha256 + 2 * i, 3, "%02x", md[i]);
    const unsigned char *p = der;
    X509 *x = len <= 0x7fffffff ? d2i_X509(NULL, &p, (long)len) : NULL;
    if (!x)
        return -1;
    c->cut |= name_str(X509_get_subject_name(x), c->subject, sizeof c->subject);
    c->cut |= name_str(X509_get_issuer_name(x), c->issuer, sizeof c->issuer);
    serial_str(x, c->serial, sizeof c->serial);
    time_str(X509_get0_notBefore(x), c->not_before, sizeof c->not_before);
    time_str(X509_get0_notAfter(x), c->not_after, sizeof c->not_after);
    sans(x, c);
    X509_free(x);
    return 0;
}
