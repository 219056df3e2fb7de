/* tls_hs: ClientHello, ServerHello and Certificate bodies (see tls_hs.h).
 * Every length field is checked against what is left of its enclosing
 * vector before it is used (kw_rd); a vector whose declared length runs
 * past its parent makes the whole message malformed. */
#include "tls_hs.h"

#include <string.h>

#include "kw_rd.h"

/* HelloRetryRequest's ServerHello.random: SHA-256("HelloRetryRequest"),
 * RFC 8446 §4.1.3. */
static const uint8_t hrr_random[32] = {
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};

const char *tls_version_name(uint16_t v)
{
    switch (v) {
    case 0x0002: return "SSLv2";
    case 0x0300: return "SSLv3";
    case 0x0301: return "TLSv1";
    case 0x0302: return "TLS 1.1";
    case 0x0303: return "TLS 1.2";
    case 0x0304: return "TLS 1.3";
    default: return "UNDETERMINED";
    }
}

/* A sub-reader over the next n bytes of r (r skips them). */
static struct kw_rd sub(struct kw_rd *r, size_t n)
{
    struct kw_rd s;
    if (!kw_rd_need(r, n)) {
        kw_rd_init(&s, NULL, 0);
        s.bad = true;
        return s;
    }
    kw_rd_init(&s, kw_rd_ptr(r), n);
    r->off += n;
    return s;
}

/* A list of 16-bit values: kept up to max, counted in full. */
static bool u16_list(struct kw_rd *r, uint16_t *dst, uint16_t *n, size_t max, bool *cut)
{
    if (kw_rd_left(r) % 2)
        return false;
    while (kw_rd_left(r)) {
        uint16_t v = kw_rd_be16(r);
        if (*n < max)
            dst[*n] = v;
        else
            *cut = true;
        if (*n < UINT16_MAX)
            (*n)++;
    }
    return kw_rd_ok(r);
}

static bool alpn_list(struct kw_rd *r, struct tls_alpn *dst, uint8_t *n, size_t max, bool *cut)
{
    struct kw_rd l = sub(r, kw_rd_be16(r));
    while (kw_rd_ok(&l) && kw_rd_left(&l)) {
        uint8_t len = kw_rd_u8(&l);
        const uint8_t *b = kw_rd_ptr(&l);
        kw_rd_skip(&l, len);
        if (!kw_rd_ok(&l))
            return false;
        if (*n >= max) {
            *cut = true;
            continue;
        }
        struct tls_alpn *a = &dst[(*n)++];
        a->full_len = len;
        a->last = len ? b[len - 1] : 0;
        a->len = len < TLS_HS_ALPN_LEN ? len : TLS_HS_ALPN_LEN;
        *cut |= a->len < len;
        memcpy(a->b, b, a->len);
    }
    return kw_rd_ok(&l) && kw_rd_ok(r);
}

/* server_name (RFC 6066 §3): the first host_name entry. */
static bool sni_ext(struct kw_rd *r, struct tls_client_hello *h)
{
    struct kw_rd l = sub(r, kw_rd_be16(r));
    while (kw_rd_ok(&l) && kw_rd_left(&l)) {
        uint8_t type = kw_rd_u8(&l);
        uint16_t len = kw_rd_be16(&l);
        const uint8_t *b = kw_rd_ptr(&l);
        kw_rd_skip(&l, len);
        if (!kw_rd_ok(&l))
            return false;
        if (type == 0 && !h->has_sni) {
            size_t k = len < sizeof h->sni - 1 ? len : sizeof h->sni - 1;
            memcpy(h->sni, b, k);
            h->sni[k] = 0;
            h->truncated |= k < len;
            h->has_sni = true;
        }
    }
    return kw_rd_ok(&l);
}

static bool ch_ext(struct tls_client_hello *h, uint16_t type, struct kw_rd *e)
{
    struct kw_rd l;
    switch (type) {
    case TLS_EXT_SERVER_NAME:
        return kw_rd_left(e) == 0 || sni_ext(e, h);
    case TLS_EXT_GROUPS:
        l = sub(e, kw_rd_be16(e));
        return u16_list(&l, h->groups, &h->n_groups, TLS_HS_MAX_GROUPS, &h->truncated);
    case TLS_EXT_SIG_ALGS:
        l = sub(e, kw_rd_be16(e));
        return u16_list(&l, h->sig_algs, &h->n_sig_algs, TLS_HS_MAX_SIGALGS, &h->truncated);
    case TLS_EXT_SUPPORTED_VERSIONS:
        l = sub(e, kw_rd_u8(e));
        return u16_list(&l, h->versions, &h->n_versions, TLS_HS_MAX_VERSIONS, &h->truncated);
    case TLS_EXT_EC_POINT_FORMATS:
        l = sub(e, kw_rd_u8(e));
        while (kw_rd_ok(&l) && kw_rd_left(&l)) {
            uint8_t f = kw_rd_u8(&l);
            if (h->n_formats < TLS_HS_MAX_FORMATS)
                h->formats[h->n_formats] = f;
            else
                h->truncated = true;
            h->n_formats++;
        }
        return kw_rd_ok(&l);
    case TLS_EXT_ALPN:
        h->has_alpn = true;
        return alpn_list(e, h->alpn, &h->n_alpn, TLS_HS_MAX_ALPN, &h->truncated);
    default:
        return true;
    }
}

/* The extensions block shared by both hellos: calls fn per extension with a
 * reader over its body; records every type in exts/n_exts. */
typedef bool (*ext_fn)(void *h, uint16_t type, struct kw_rd *body);

static bool extensions(struct kw_rd *r, uint16_t *exts, uint16_t *n_exts, bool *cut, ext_fn fn,
                       void *h)
{
    if (!kw_rd_left(r))
        return true; /* no extensions block at all (RFC 5246 §7.4.1.2) */
    struct kw_rd l = sub(r, kw_rd_be16(r));
    if (!kw_rd_ok(r) || kw_rd_left(r))
        return false; /* trailing bytes after the extensions */
    while (kw_rd_ok(&l) && kw_rd_left(&l)) {
        uint16_t type = kw_rd_be16(&l);
        struct kw_rd e = sub(&l, kw_rd_be16(&l));
        if (!kw_rd_ok(&l))
            return false;
        if (*n_exts < TLS_HS_MAX_EXTS)
            exts[*n_exts] = type;
        else
            *cut = true;
        if (*n_exts < UINT16_MAX)
            (*n_exts)++;
        /* a malformed extension body is skipped, not fatal: the hello's
         * lists and the other extensions still count (what was kept of the
         * bad one may be partial) */
        (void)fn(h, type, &e);
    }
    return kw_rd_ok(&l);
}

/* legacy_version, random, legacy_session_id: the start both hellos share
 * (RFC 8446 §4.1.2, §4.1.3). */
static bool hello_head(struct kw_rd *r, uint16_t *version, uint8_t random[32], uint8_t sid[32],
                       uint8_t *sid_len)
{
    *version = kw_rd_be16(r);
    if (!kw_rd_need(r, 32))
        return false;
    memcpy(random, kw_rd_ptr(r), 32);
    kw_rd_skip(r, 32);
    *sid_len = kw_rd_u8(r);
    if (*sid_len > 32 || !kw_rd_need(r, *sid_len))
        return false;
    memcpy(sid, kw_rd_ptr(r), *sid_len);
    kw_rd_skip(r, *sid_len);
    return true;
}

static bool ch_ext_cb(void *h, uint16_t type, struct kw_rd *e)
{
    return ch_ext(h, type, e);
}

int tls_parse_client_hello(const uint8_t *p, size_t len, struct tls_client_hello *h)
{
    memset(h, 0, sizeof *h);
    struct kw_rd r;
    kw_rd_init(&r, p, len);
    if (!hello_head(&r, &h->legacy_version, h->random, h->sid, &h->sid_len))
        return -1;
    struct kw_rd c = sub(&r, kw_rd_be16(&r));
    if (!kw_rd_ok(&r) ||
        !u16_list(&c, h->ciphers, &h->n_ciphers, TLS_HS_MAX_CIPHERS, &h->truncated))
        return -1;
    kw_rd_skip(&r, kw_rd_u8(&r)); /* compression methods */
    if (!kw_rd_ok(&r))
        return -1;
    return extensions(&r, h->exts, &h->n_exts, &h->truncated, ch_ext_cb, h) ? 0 : -1;
}

static bool sh_ext_cb(void *v, uint16_t type, struct kw_rd *e)
{
    struct tls_server_hello *h = v;
    if (type == TLS_EXT_SUPPORTED_VERSIONS) {
        h->version = kw_rd_be16(e);
        return kw_rd_ok(e);
    }
    if (type == TLS_EXT_ENCRYPT_THEN_MAC)
        h->etm = true;
    if (type == TLS_EXT_ALPN) {
        uint8_t n = 0;
        bool cut = false;
        if (!alpn_list(e, &h->alpn, &n, 1, &cut))
            return false;
        h->has_alpn = n > 0;
        h->truncated |= cut;
    }
    return true;
}

static bool ee_ext_cb(void *v, uint16_t type, struct kw_rd *e)
{
    struct tls_server_hello *h = v;
    if (type != TLS_EXT_ALPN)
        return true;
    uint8_t n = 0;
    bool cut = false;
    if (!alpn_list(e, &h->alpn, &n, 1, &cut))
        return false;
    h->has_alpn = n > 0;
    h->truncated |= cut;
    return true;
}

int tls_parse_encrypted_extensions(const uint8_t *p, size_t len, struct tls_server_hello *h)
{
    struct kw_rd r;
    kw_rd_init(&r, p, len);
    uint16_t exts[TLS_HS_MAX_EXTS];
    uint16_t n = 0;
    bool cut = false;
    struct tls_server_hello tmp = *h;
    if (!kw_rd_left(&r) || !extensions(&r, exts, &n, &cut, ee_ext_cb, &tmp))
        return -1;
    *h = tmp;
    return 0;
}

int tls_parse_server_hello(const uint8_t *p, size_t len, struct tls_server_hello *h)
{
    memset(h, 0, sizeof *h);
    struct kw_rd r;
    kw_rd_init(&r, p, len);
    if (!hello_head(&r, &h->legacy_version, h->random, h->sid, &h->sid_len))
        return -1;
    h->cipher = kw_rd_be16(&r);
    h->compression = kw_rd_u8(&r);
    if (!kw_rd_ok(&r))
        return -1;
    h->version = h->legacy_version;
    h->hrr = !memcmp(h->random, hrr_random, 32);
    return extensions(&r, h->exts, &h->n_exts, &h->truncated, sh_ext_cb, h) ? 0 : -1;
}

static uint32_t rd_be24(struct kw_rd *r)
{
    uint32_t hi = kw_rd_u8(r);
    return hi << 16 | kw_rd_be16(r);
}

int tls_parse_certificate(const uint8_t *p, size_t len, bool tls13, const uint8_t **leaf,
                          size_t *leaf_len, unsigned *count)
{
    struct kw_rd r;
    kw_rd_init(&r, p, len);
    *leaf = NULL;
    *leaf_len = 0;
    *count = 0;
    if (tls13)
        kw_rd_skip(&r, kw_rd_u8(&r)); /* certificate_request_context */
    struct kw_rd l = sub(&r, rd_be24(&r));
    if (!kw_rd_ok(&r) || kw_rd_left(&r))
        return -1;
    while (kw_rd_ok(&l) && kw_rd_left(&l)) {
        uint32_t n = rd_be24(&l);
        const uint8_t *c = kw_rd_ptr(&l);
        kw_rd_skip(&l, n);
        if (tls13)
            kw_rd_skip(&l, kw_rd_be16(&l)); /* per-entry extensions */
        if (!kw_rd_ok(&l) || n == 0)
            return -1;
        if (!*count) {
            *leaf = c;
            *leaf_len = n;
        }
        (*count)++;
    }
    return kw_rd_ok(&l) ? 0 : -1;
}
