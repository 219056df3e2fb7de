/* tls_fp: JA3/JA3S/JA4/JA4S (see tls_fp.h). JA4 details follow the spec
 * text: version from supported_versions (highest, GREASE ignored) else the
 * legacy version; counts capped at 99; ciphers and extensions sorted in
 * hex order, SNI (0000) and ALPN (0010) left out of the extension hash,
 * signature algorithms appended in the order sent; an empty list hashes
 * to "000000000000". */
#include "tls_fp.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sbuf {
    char *p;
    size_t len, cap;
};

/* Appends a whole item or nothing (a cut JA3 string stays well formed). */
static void sb_add(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap)
        return;
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static void dec_list(struct sbuf *b, const uint16_t *v, size_t n)
{
    char item[8];
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (tls_is_grease(v[i]))
            continue;
        snprintf(item, sizeof item, "%s%u", first ? "" : "-", v[i]);
        sb_add(b, item);
        first = false;
    }
}

static size_t kept(uint16_t n, size_t max)
{
    return n < max ? n : max;
}

static void md5_hex(const char *s, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(s, strlen(s), md, &n, EVP_md5(), NULL) || n != 16) {
        out[0] = 0;
        return;
    }
    for (unsigned i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void tls_ja3(const struct tls_client_hello *h, char *str, size_t size, char hash[33])
{
    struct sbuf b = {str, 0, size};
    char item[16];
    str[0] = 0;
    snprintf(item, sizeof item, "%u,", h->legacy_version);
    sb_add(&b, item);
    dec_list(&b, h->ciphers, kept(h->n_ciphers, TLS_HS_MAX_CIPHERS));
    sb_add(&b, ",");
    dec_list(&b, h->exts, kept(h->n_exts, TLS_HS_MAX_EXTS));
    sb_add(&b, ",");
    dec_list(&b, h->groups, kept(h->n_groups, TLS_HS_MAX_GROUPS));
    sb_add(&b, ",");
    uint16_t f[TLS_HS_MAX_FORMATS];
    size_t nf = kept(h->n_formats, TLS_HS_MAX_FORMATS);
    for (size_t i = 0; i < nf; i++)
        f[i] = h->formats[i];
    dec_list(&b, f, nf);
    md5_hex(str, hash);
}

void tls_ja3s(const struct tls_server_hello *h, char *str, size_t size, char hash[33])
{
    struct sbuf b = {str, 0, size};
    char item[24];
    str[0] = 0;
    snprintf(item, sizeof item, "%u,%u,", h->legacy_version, h->cipher);
    sb_add(&b, item);
    dec_list(&b, h->exts, kept(h->n_exts, TLS_HS_MAX_EXTS));
    md5_hex(str, hash);
}

/* ---- JA4 ------------------------------------------------------------- */

static const char *ja4_version(uint16_t v)
{
    switch (v) {
    case 0x0304: return "13";
    case 0x0303: return "12";
    case 0x0302: return "11";
    case 0x0301: return "10";
    case 0x0300: return "s3";
    case 0x0002: return "s2";
    case 0xfeff: return "d1";
    case 0xfefd: return "d2";
    case 0xfefc: return "d3";
    default: return "00";
    }
}

static bool alnum(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* First and last characters of an ALPN value (hex of it when either end
 * byte is not alphanumeric); "00" when absent or empty. */
static void alpn_chars(const struct tls_alpn *a, bool present, char out[3])
{
    static const char hex[] = "0123456789abcdef";
    if (!present || !a->full_len) {
        strcpy(out, "00");
        return;
    }
    uint8_t f = a->b[0], l = a->last;
    if (alnum(f) && alnum(l)) {
        out[0] = (char)f;
        out[1] = (char)l;
    } else {
        out[0] = hex[f >> 4];
        out[1] = hex[l & 15];
    }
    out[2] = 0;
}

static int cmp_u16(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* Non-GREASE values of v (optionally without SNI/ALPN), sorted or not. */
static size_t filtered(const uint16_t *v, size_t n, bool drop_sni_alpn, bool sort, uint16_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (tls_is_grease(v[i]))
            continue;
        if (drop_sni_alpn && (v[i] == TLS_EXT_SERVER_NAME || v[i] == TLS_EXT_ALPN))
            continue;
        out[k++] = v[i];
    }
    if (sort)
        qsort(out, k, sizeof *out, cmp_u16);
    return k;
}

static void hex_list(struct sbuf *b, const uint16_t *v, size_t n)
{
    char item[8];
    for (size_t i = 0; i < n; i++) {
        snprintf(item, sizeof item, "%s%04x", i ? "," : "", v[i]);
        sb_add(b, item);
    }
}

static void sha12(const char *s, char out[13])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL)) {
        strcpy(out, "000000000000");
        return;
    }
    for (unsigned i = 0; i < 6; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

struct ja4_parts {
    char a[16];
    char b[TLS_HS_MAX_CIPHERS * 5 + 1];
    char c[(TLS_HS_MAX_EXTS + TLS_HS_MAX_SIGALGS) * 5 + 2];
    bool b_empty, c_empty;
};

static void ja4_parts(const struct tls_client_hello *h, bool original, struct ja4_parts *o)
{
    uint16_t v = h->legacy_version;
    bool have = false;
    for (size_t i = 0; i < kept(h->n_versions, TLS_HS_MAX_VERSIONS); i++)
        if (!tls_is_grease(h->versions[i]) && (!have || h->versions[i] > v)) {
            v = h->versions[i];
            have = true;
        }
    uint16_t ci[TLS_HS_MAX_CIPHERS], ex[TLS_HS_MAX_EXTS];
    size_t nc = filtered(h->ciphers, kept(h->n_ciphers, TLS_HS_MAX_CIPHERS), false, !original, ci);
    size_t ne_all = filtered(h->exts, kept(h->n_exts, TLS_HS_MAX_EXTS), false, false, ex);
    char alpn[3];
    alpn_chars(&h->alpn[0], h->has_alpn && h->n_alpn, alpn);
    snprintf(o->a, sizeof o->a, "t%s%c%02zu%02zu%s", ja4_version(v), h->has_sni ? 'd' : 'i',
             nc > 99 ? 99 : nc, ne_all > 99 ? 99 : ne_all, alpn);
    struct sbuf b = {o->b, 0, sizeof o->b};
    o->b[0] = 0;
    hex_list(&b, ci, nc);
    o->b_empty = nc == 0;
    size_t ne = filtered(h->exts, kept(h->n_exts, TLS_HS_MAX_EXTS), !original, !original, ex);
    struct sbuf c = {o->c, 0, sizeof o->c};
    o->c[0] = 0;
    hex_list(&c, ex, ne);
    o->c_empty = ne == 0;
    uint16_t sa[TLS_HS_MAX_SIGALGS];
    size_t ns = filtered(h->sig_algs, kept(h->n_sig_algs, TLS_HS_MAX_SIGALGS), false, false, sa);
    if (ns) {
        sb_add(&c, "_");
        hex_list(&c, sa, ns);
    }
}

void tls_ja4(const struct tls_client_hello *h, bool original, char out[TLS_JA4_LEN])
{
    struct ja4_parts p;
    ja4_parts(h, original, &p);
    char hb[13] = "000000000000", hc[13] = "000000000000";
    if (!p.b_empty)
        sha12(p.b, hb);
    if (!p.c_empty)
        sha12(p.c, hc);
    snprintf(out, TLS_JA4_LEN, "%s_%s_%s", p.a, hb, hc);
}

void tls_ja4_raw(const struct tls_client_hello *h, bool original, char *out, size_t size)
{
    struct ja4_parts p;
    ja4_parts(h, original, &p);
    snprintf(out, size, "%s_%s_%s", p.a, p.b, p.c);
}

void tls_ja4s(const struct tls_server_hello *h, char out[TLS_JA4_LEN])
{
    char alpn[3], list[TLS_HS_MAX_EXTS * 5 + 1] = "", hash[13] = "000000000000";
    alpn_chars(&h->alpn, h->has_alpn, alpn);
    size_t n = kept(h->n_exts, TLS_HS_MAX_EXTS);
    struct sbuf b = {list, 0, sizeof list};
    hex_list(&b, h->exts, n);
    if (n)
        sha12(list, hash);
    snprintf(out, TLS_JA4_LEN, "t%s%02zu%s_%04x_%s", ja4_version(h->version),
             h->n_exts > 99 ? (size_t)99 : (size_t)h->n_exts, alpn, h->cipher, hash);
}
