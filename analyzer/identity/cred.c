/* cred: credential extraction from request headers, query string and
 * cookies (see cred.h). The one thing to know: every path that touches a
 * secret ends in finish_secret() or finish_user(), which write only a
 * fingerprint, a redacted hint and non-secret identifiers into struct
 * kw_cred; decoded copies live in stack buffers wiped with OPENSSL_cleanse.
 *
 * Authorization follows RFC 9110 §11.4 (credentials = auth-scheme
 * [ 1*SP ( token68 / #auth-param ) ], scheme case-insensitive), Bearer
 * RFC 6750 §2.1, Basic RFC 7617 §2, Digest RFC 7616 §3.4, query strings
 * RFC 3986 §3.4 with the WHATWG form rules ('&' or ';', '+' is a space),
 * cookies RFC 6265 §4.2.1. */
#include "cred.h"

#include "kw_json.h"
#include "kw_sha256.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dpop.h"
#include "jwt.h"
#include "kw_str.h"

#define CRED_STAT(st, n)                                                                           \
    do {                                                                                           \
        if (st) (st)->n++;                                                                         \
    } while (0)

static const char hexdig[] = "0123456789abcdef";

void cred_config_default(struct cred_config *cfg)
{
    static const struct cred_source def[] = {
        {CRED_SRC_HEADER, "Authorization"}, {CRED_SRC_HEADER, "X-API-Key"},
        {CRED_SRC_HEADER, "Api-Key"},       {CRED_SRC_QUERY, "api_key"},
        {CRED_SRC_QUERY, "apikey"},         {CRED_SRC_QUERY, "access_token"},
    };
    memset(cfg, 0, sizeof *cfg);
    memcpy(cfg->src, def, sizeof def);
    cfg->n = sizeof def / sizeof def[0];
}

enum kw_err cred_config_add(struct cred_config *cfg, enum cred_src_kind kind, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= sizeof cfg->src[0].name) return KW_E_INVAL;
    if (cfg->n >= CRED_MAX_SOURCES) return KW_E_LIMIT;
    cfg->src[cfg->n].kind = kind;
    memcpy(cfg->src[cfg->n].name, name, n + 1);
    cfg->n++;
    return KW_E_OK;
}

/* ---- output helpers ---------------------------------------------------- */

static void fp_hex(const uint8_t md[32], char out[72])
{
    memcpy(out, "sha256:", 7);
    for (size_t i = 0; i < 32; i++) {
        out[7 + 2 * i] = hexdig[md[i] >> 4];
        out[8 + 2 * i] = hexdig[md[i] & 15];
    }
    out[71] = '\0';
}

void cred_fingerprint(const uint8_t *p, size_t len, char out[72])
{
    uint8_t md[32];
    if (!kw_sha256(p, len, md)) {
        out[0] = '\0'; /* libcrypto failure: no fingerprint rather than a wrong one */
        return;
    }
    fp_hex(md, out);
}

static char hint_char(uint8_t c)
{
    return c > 0x20 && c < 0x7f ? (char)c : '?';
}

void cred_hint(const uint8_t *p, size_t len, char *out, size_t outlen)
{
    /* never more than len/3 characters shown, at most 4 from each end */
    size_t k = len >= 24 ? 4 : len >= 16 ? 2 : len >= 8 ? 1 : 0;
    char buf[16];
    size_t o = 0;
    for (size_t i = 0; i < k; i++)
        buf[o++] = hint_char(p[i]);
    memcpy(buf + o, "\xe2\x80\xa6", 3); /* U+2026 HORIZONTAL ELLIPSIS */
    o += 3;
    for (size_t i = len - k; i < len; i++)
        buf[o++] = hint_char(p[i]);
    buf[o] = '\0';
    kw_stpecpy(out, out + outlen, buf);
}

/* Length of a valid, printable UTF-8 sequence at p (1..4), 0 if it must be
 * escaped (control characters, invalid or overlong encodings, surrogates). */
static size_t text_seq(const uint8_t *p, size_t left)
{
    if (p[0] < 0x80) return p[0] >= 0x20 && p[0] != 0x7f ? 1 : 0;
    return kw_utf8_seq(p, left);
}

bool cred_text_copy(char *dst, size_t cap, const uint8_t *p, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = text_seq(p + i, len - i);
        if (n) {
            if (o + n >= cap) goto cut;
            memcpy(dst + o, p + i, n);
            o += n;
            i += n;
            continue;
        }
        /* a backslash is kept as is ("DOMAIN\\user" must match a rule), so
         * the text "\\x01" and a real 0x01 byte look alike here; the
         * fingerprint, over the raw bytes, still tells them apart */
        if (o + 4 >= cap) goto cut;
        dst[o++] = '\\';
        dst[o++] = 'x';
        dst[o++] = hexdig[p[i] >> 4];
        dst[o++] = hexdig[p[i] & 15];
        i++;
    }
    dst[o] = '\0';
    return true;
cut:
    dst[o] = '\0';
    return false;
}

static void set_source(struct kw_cred *out, const struct cred_source *src)
{
    static const char *const pfx[] = {"header:", "query:", "cookie:"};
    char *e = out->source + sizeof out->source;
    kw_stpecpy(kw_stpecpy(out->source, e, pfx[src->kind]), e, src->name);
}

/* A secret sent as is (bearer token, API key, cookie value): fingerprint
 * over the bytes, redacted hint, and if it is a JWT, its claims. */
static void finish_secret(struct kw_cred *out, enum kw_cred_kind kind, const uint8_t *p, size_t len,
                          bool jwt_check, struct cred_stats *st)
{
    out->kind = (uint8_t)kind;
    cred_fingerprint(p, len, out->fingerprint);
    cred_hint(p, len, out->hint, sizeof out->hint);
    if (!jwt_check) return;
    bool trunc = false;
    enum jwt_result r = jwt_parse((const char *)p, len, &out->jwt, &trunc);
    if (r == JWT_NOT_JWT) return; /* jwt_parse left the claims zeroed */
    out->kind = KW_CRED_JWT;
    CRED_STAT(st, jwt);
    if (r == JWT_TOO_BIG) CRED_STAT(st, jwt_too_big);
    if (r == JWT_BAD_PAYLOAD) CRED_STAT(st, jwt_bad_payload);
    if (trunc) CRED_STAT(st, field_truncated);
}

/* A credential identified by a (non-secret) user name: Basic, Digest,
 * AWS access key id. Fingerprint of the name exactly as sent. */
static void finish_user(struct kw_cred *out, enum kw_cred_kind kind, const uint8_t *user,
                        size_t len, struct cred_stats *st)
{
    out->kind = (uint8_t)kind;
    cred_fingerprint(user, len, out->fingerprint);
    bool ok = cred_text_copy(out->basic_user, sizeof out->basic_user, user, len);
    ok &= cred_text_copy(out->hint, sizeof out->hint, user, len);
    if (!ok) CRED_STAT(st, field_truncated);
}

/* ---- Authorization ----------------------------------------------------- */

static bool is_sp(char c)
{
    return c == ' ' || c == '\t';
}

static struct kw_slice trim(struct kw_slice s)
{
    while (s.len && is_sp(s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len && (is_sp(s.p[s.len - 1]) || s.p[s.len - 1] == '\r'))
        s.len--;
    return s;
}

/* RFC 4648 §4 base64 (Basic uses the standard alphabet, with padding).
 * Returns decoded length or SIZE_MAX. */
static size_t b64_decode(struct kw_slice in, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    unsigned bits = 0, pad = 0;
    size_t o = 0;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.p[i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '+'             ? 62
                : c == '/'             ? 63
                                       : -1;
        if (c == '=') {
            pad++;
            continue;
        }
        if (v < 0 || pad) return SIZE_MAX; /* bad character, or data after padding */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            if (o == cap) return SIZE_MAX;
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (pad > 2 || bits >= 6) return SIZE_MAX;
    return o;
}

static void do_basic(struct kw_cred *out, struct kw_slice v, struct cred_stats *st)
{
    uint8_t buf[CRED_MAX_BASIC];
    if (v.len / 4 * 3 > sizeof buf) {
        finish_secret(out, KW_CRED_OTHER, (const uint8_t *)v.p, v.len, false, st);
        snprintf(out->hint, sizeof out->hint, "Basic:too-long");
        CRED_STAT(st, basic_too_long);
        return;
    }
    size_t n = b64_decode(v, buf, sizeof buf);
    const uint8_t *colon = n == SIZE_MAX || n == 0 ? NULL : memchr(buf, ':', n);
    if (!colon) {
        /* fingerprint the value as sent so repeats correlate; no hint of it */
        finish_secret(out, KW_CRED_OTHER, (const uint8_t *)v.p, v.len, false, st);
        snprintf(out->hint, sizeof out->hint, "%s",
                 n == SIZE_MAX || n == 0 ? "Basic:bad-base64" : "Basic:no-colon");
        CRED_STAT(st, basic_bad);
    } else if (colon == buf + n - 1) {
        /* empty password: Stripe-style "key:" puts the SECRET in the user
         * field, so it is handled as an API key, never shown as a name */
        finish_secret(out, KW_CRED_API_KEY, buf, (size_t)(colon - buf), true, st);
        CRED_STAT(st, basic_key);
    } else {
        finish_user(out, KW_CRED_BASIC, buf, (size_t)(colon - buf), st);
    }
    if (n != SIZE_MAX) OPENSSL_cleanse(buf, n);
}

/* Value of auth-param `name` in a Digest/AWS4 parameter list: quoted or
 * token (RFC 9110 §11.2). Returns an empty slice when absent. */
static struct kw_slice auth_param(struct kw_slice v, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl < v.len; i++) {
        if ((i > 0 && !is_sp(v.p[i - 1]) && v.p[i - 1] != ',') ||
            strncasecmp(v.p + i, name, nl) != 0)
            continue;
        size_t j = i + nl;
        while (j < v.len && is_sp(v.p[j]))
            j++;
        if (j >= v.len || v.p[j] != '=') continue;
        j++;
        while (j < v.len && is_sp(v.p[j]))
            j++;
        bool q = j < v.len && v.p[j] == '"';
        size_t s = j + q, e = s;
        while (e < v.len && (q ? v.p[e] != '"' : v.p[e] != ',' && !is_sp(v.p[e])))
            e++;
        return (struct kw_slice){v.p + s, e - s};
    }
    return (struct kw_slice){NULL, 0};
}

/* Schemes we do not decode. Digest is identified by its username (RFC 7616
 * §3.4; the response hash changes every request), AWS SigV4 by the access
 * key id in Credential=AKID/date/region/service/aws4_request (an identifier,
 * not the secret key); anything else by a fingerprint of its credentials. */
static void do_other(struct kw_cred *out, struct kw_slice scheme, struct kw_slice rest,
                     struct cred_stats *st)
{
    struct kw_slice id = {NULL, 0};
    if (kw_slice_ieq(scheme, "Digest")) {
        id = auth_param(rest, "username");
    } else if (kw_slice_ieq(scheme, "AWS4-HMAC-SHA256")) {
        id = auth_param(rest, "Credential");
        const char *slash = id.len ? memchr(id.p, '/', id.len) : NULL;
        if (slash) id.len = (size_t)(slash - id.p);
    }
    if (id.len)
        finish_user(out, KW_CRED_OTHER, (const uint8_t *)id.p, id.len, st);
    else
        finish_secret(out, KW_CRED_OTHER, (const uint8_t *)rest.p, rest.len, false, st);
    /* the hint names the scheme; Digest/AWS4 keep the identity in basic_user */
    if (!cred_text_copy(out->hint, sizeof out->hint, (const uint8_t *)scheme.p, scheme.len))
        CRED_STAT(st, field_truncated);
    CRED_STAT(st, other_scheme);
}

static void do_authorization(struct kw_cred *out, struct kw_slice v, struct cred_stats *st)
{
    size_t i = 0;
    while (i < v.len && !is_sp(v.p[i]))
        i++;
    struct kw_slice scheme = {v.p, i};
    struct kw_slice rest = trim((struct kw_slice){v.p + i, v.len - i});
    if (!rest.len && (kw_slice_ieq(scheme, "Bearer") || kw_slice_ieq(scheme, "Basic"))) {
        /* a scheme with nothing after it: an attempt without a secret */
        finish_secret(out, KW_CRED_OTHER, (const uint8_t *)"", 0, false, st);
        snprintf(out->hint, sizeof out->hint, "%s:empty",
                 kw_slice_ieq(scheme, "Basic") ? "Basic" : "Bearer");
        CRED_STAT(st, other_scheme);
    } else if (i == v.len) {
        /* a bare token with no scheme: some APIs send the key this way */
        finish_secret(out, KW_CRED_API_KEY, (const uint8_t *)v.p, v.len, true, st);
    } else if (kw_slice_ieq(scheme, "Bearer") && rest.len) {
        finish_secret(out, KW_CRED_BEARER, (const uint8_t *)rest.p, rest.len, true, st);
    } else if (kw_slice_ieq(scheme, "DPoP") && rest.len) {
        /* RFC 9449 §7.1: a DPoP-bound access token, used as a bearer one
         * would be (its fingerprint is the SHA-256 the proof's ath names) */
        finish_secret(out, KW_CRED_BEARER, (const uint8_t *)rest.p, rest.len, true, st);
        out->dpop_scheme = true;
    } else if (kw_slice_ieq(scheme, "Basic") && rest.len) {
        do_basic(out, rest, st);
    } else {
        do_other(out, scheme, rest, st);
    }
}

/* ---- query string and cookies ------------------------------------------ */

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes s[*pos..) into out[cap] ('+' is a space when plus is set;
 * invalid escapes are kept literally). Stops when out is full; *pos says
 * how far it got. Returns bytes written. */
static size_t pct_decode(struct kw_slice s, size_t *pos, bool plus, uint8_t *out, size_t cap)
{
    size_t o = 0, i = *pos;
    while (i < s.len && o < cap) {
        char c = s.p[i];
        int h, l;
        if (c == '%' && i + 2 < s.len && (h = hexval(s.p[i + 1])) >= 0 &&
            (l = hexval(s.p[i + 2])) >= 0) {
            out[o++] = (uint8_t)(h << 4 | l);
            i += 3;
        } else {
            out[o++] = (uint8_t)(c == '+' && plus ? ' ' : c);
            i++;
        }
    }
    *pos = i;
    return o;
}

/* A percent-encoded secret (query value). Decoded into a stack buffer when
 * it fits; a longer one is streamed through SHA-256 in chunks (its hint
 * comes from the first and last decoded bytes) and is not checked for a
 * JWT (counted as too_long). */
static void finish_encoded(struct kw_cred *out, struct kw_slice v, struct cred_stats *st)
{
    uint8_t buf[CRED_MAX_DECODED];
    size_t pos = 0;
    size_t n = pct_decode(v, &pos, true, buf, sizeof buf);
    if (pos == v.len) {
        finish_secret(out, KW_CRED_API_KEY, buf, n, true, st);
        OPENSSL_cleanse(buf, n);
        return;
    }
    CRED_STAT(st, too_long);
    out->kind = KW_CRED_API_KEY;
    uint8_t head[4], tail[4], md[32];
    memcpy(head, buf, sizeof head);
    struct kw_sha256_ctx ctx;
    kw_sha256_init(&ctx);
    for (;;) {
        kw_sha256_update(&ctx, buf, n);
        if (n >= sizeof tail)
            memcpy(tail, buf + n - sizeof tail, sizeof tail);
        else if (n) { /* a short last chunk: shift the tail along */
            memmove(tail, tail + n, sizeof tail - n);
            memcpy(tail + sizeof tail - n, buf, n);
        }
        if (pos == v.len) break;
        n = pct_decode(v, &pos, true, buf, sizeof buf);
    }
    kw_sha256_final(&ctx, md);
    fp_hex(md, out->fingerprint);
    /* over 16 KiB, so the 4 + 4 hint is far below a third of it */
    snprintf(out->hint, sizeof out->hint, "%c%c%c%c\xe2\x80\xa6%c%c%c%c", hint_char(head[0]),
             hint_char(head[1]), hint_char(head[2]), hint_char(head[3]), hint_char(tail[0]),
             hint_char(tail[1]), hint_char(tail[2]), hint_char(tail[3]));
    OPENSSL_cleanse(buf, sizeof buf);
    OPENSSL_cleanse(&ctx, sizeof ctx);
    OPENSSL_cleanse(head, sizeof head);
    OPENSSL_cleanse(tail, sizeof tail);
}

/* Finds parameter `name` in the query of a raw request target (origin- or
 * absolute-form). Returns the raw (still encoded) value of the first
 * occurrence with a non-empty value. */
static bool query_find(struct kw_slice target, const char *name, struct kw_slice *val,
                       bool *empty_seen)
{
    const char *q = target.len ? memchr(target.p, '?', target.len) : NULL;
    if (!q) return false;
    struct kw_slice qs = {q + 1, target.len - (size_t)(q + 1 - target.p)};
    const char *frag = memchr(qs.p, '#', qs.len);
    if (frag) qs.len = (size_t)(frag - qs.p);
    size_t nl = strlen(name);
    for (size_t i = 0; i <= qs.len;) {
        size_t e = i;
        while (e < qs.len && qs.p[e] != '&' && qs.p[e] != ';')
            e++;
        struct kw_slice pair = {qs.p + i, e - i};
        const char *eq = memchr(pair.p, '=', pair.len);
        struct kw_slice pn = {pair.p, eq ? (size_t)(eq - pair.p) : pair.len};
        uint8_t nb[80];
        size_t pos = 0, dn = pct_decode(pn, &pos, true, nb, sizeof nb);
        if (eq && pos == pn.len && dn == nl && memcmp(nb, name, nl) == 0) {
            *val = (struct kw_slice){eq + 1, pair.len - pn.len - 1};
            if (val->len) return true;
            *empty_seen = true;
        }
        i = e + 1;
    }
    return false;
}

/* Finds cookie `name` in every Cookie header (RFC 6265 §4.2.1:
 * "name=value; name2=value2"; a value may be wrapped in DQUOTEs). */
static bool cookie_find(const struct kw_hdr *hdrs, size_t n_hdrs, const char *name,
                        struct kw_slice *val, bool *empty_seen)
{
    for (size_t h = 0; h < n_hdrs; h++) {
        if (!kw_slice_ieq(hdrs[h].name, "Cookie")) continue;
        struct kw_slice c = hdrs[h].value;
        for (size_t i = 0; i <= c.len;) {
            size_t e = i;
            while (e < c.len && c.p[e] != ';')
                e++;
            struct kw_slice pair = trim((struct kw_slice){c.p + i, e - i});
            const char *eq = pair.len ? memchr(pair.p, '=', pair.len) : NULL;
            if (eq && kw_slice_eq(trim((struct kw_slice){pair.p, (size_t)(eq - pair.p)}), name)) {
                struct kw_slice v =
                    trim((struct kw_slice){eq + 1, pair.len - (size_t)(eq + 1 - pair.p)});
                if (v.len >= 2 && v.p[0] == '"' && v.p[v.len - 1] == '"')
                    v = (struct kw_slice){v.p + 1, v.len - 2};
                if (v.len) {
                    *val = v;
                    return true;
                }
                *empty_seen = true;
            }
            i = e + 1;
        }
    }
    return false;
}

static const struct kw_hdr *header_find(const struct kw_hdr *hdrs, size_t n_hdrs, const char *name)
{
    for (size_t h = 0; h < n_hdrs; h++)
        if (kw_slice_ieq(hdrs[h].name, name)) return &hdrs[h];
    return NULL;
}

/* One configured source. Returns true when it held a credential. */
static bool try_source(const struct cred_source *src, const struct kw_hdr *hdrs, size_t n_hdrs,
                       struct kw_slice target, struct kw_cred *out, bool *empty_seen,
                       struct cred_stats *st)
{
    struct kw_slice v;
    switch (src->kind) {
    case CRED_SRC_HEADER: {
        const struct kw_hdr *h = header_find(hdrs, n_hdrs, src->name);
        if (!h) return false;
        v = trim(h->value);
        if (!v.len) {
            *empty_seen = true;
            return false;
        }
        if (!strcasecmp(src->name, "Authorization") ||
            !strcasecmp(src->name, "Proxy-Authorization")) {
            do_authorization(out, v, st);
            return true;
        }
        /* an API-key header carrying "Bearer <tok>" is fingerprinted on the
         * token, as the Authorization header would be */
        if (v.len > 7 && !strncasecmp(v.p, "Bearer", 6) && is_sp(v.p[6]))
            v = trim((struct kw_slice){v.p + 7, v.len - 7});
        finish_secret(out, KW_CRED_API_KEY, (const uint8_t *)v.p, v.len, true, st);
        return true;
    }
    case CRED_SRC_QUERY:
        if (!query_find(target, src->name, &v, empty_seen)) return false;
        finish_encoded(out, v, st);
        return true;
    case CRED_SRC_COOKIE:
        if (!cookie_find(hdrs, n_hdrs, src->name, &v, empty_seen)) return false;
        finish_secret(out, KW_CRED_API_KEY, (const uint8_t *)v.p, v.len, true, st);
        return true;
    }
    return false;
}

/* RFC 9449 §4.3 check 1: exactly one DPoP header. */
static void find_dpop(const struct kw_hdr *hdrs, size_t n_hdrs, struct kw_dpop *out,
                      struct cred_stats *st)
{
    const struct kw_hdr *h = NULL;
    for (size_t i = 0; i < n_hdrs; i++) {
        if (!kw_slice_ieq(hdrs[i].name, "DPoP")) continue;
        if (h) {
            memset(out, 0, sizeof *out);
            out->state = KW_DPOP_BAD;
            snprintf(out->error, sizeof out->error, "more than one DPoP header");
            CRED_STAT(st, dpop_bad);
            return;
        }
        h = &hdrs[i];
    }
    if (!h) return;
    struct kw_slice v = trim(h->value);
    dpop_parse(v.p, v.len, out);
    CRED_STAT(st, dpop);
    if (out->state == KW_DPOP_BAD) CRED_STAT(st, dpop_bad);
    else if (!out->sig_valid) CRED_STAT(st, dpop_bad_signature);
}

bool cred_extract_ex(const struct cred_config *cfg, const struct kw_hdr *hdrs, size_t n_hdrs,
                     struct kw_slice target, struct kw_cred *out, struct cred_stats *st)
{
    memset(out, 0, sizeof *out);
    bool empty_seen = false, found = false;
    for (unsigned i = 0; i < cfg->n && i < CRED_MAX_SOURCES; i++) {
        if (try_source(&cfg->src[i], hdrs, n_hdrs, target, out, &empty_seen, st)) {
            set_source(out, &cfg->src[i]);
            CRED_STAT(st, found);
            found = true;
            break;
        }
    }
    if (!found) {
        memset(out, 0, sizeof *out);
        out->kind = KW_CRED_NONE;
        if (empty_seen) CRED_STAT(st, empty_value);
        CRED_STAT(st, none);
    }
    find_dpop(hdrs, n_hdrs, &out->dpop, st);
    /* the token's own hash is the fingerprint: compare it here, where the
     * token was, so nothing after this needs more than the result */
    if (out->dpop.has_ath && found && out->kind != KW_CRED_BASIC)
        out->dpop.ath_match = dpop_ath_matches(&out->dpop, out->fingerprint);
    return found;
}

bool cred_extract(const struct cred_config *cfg, const struct kw_hdr *hdrs, size_t n_hdrs,
                  struct kw_slice target, struct kw_cred *out)
{
    return cred_extract_ex(cfg, hdrs, n_hdrs, target, out, NULL);
}

/* ---- redaction of the target ------------------------------------------- */

/* Query parameter names whose value is redacted whatever the configured
 * sources say (issue 15): a secret sent in a parameter nobody configured as
 * a credential must not reach EVE, alerts, Slack, stdout or syslog either.
 * Compared case-insensitively after percent-decoding; over-redacting a
 * harmless `code` or `key` costs a little context, leaking a password
 * costs the password. Documented in docs/credentials.md; keep both in
 * step. */
static const char *const redact_default[] = {
    /* OAuth 2.0 / OIDC (RFC 6749 §4.1.2, §4.2.2, RFC 7636, RFC 7521) */
    "token", "access_token", "refresh_token", "id_token", "auth_token", "client_secret",
    "code", "code_verifier", "assertion", "client_assertion", "jwt",
    /* passwords */
    "password", "passwd", "pass", "pwd",
    /* API keys */
    "api_key", "apikey", "api-key", "key", "secret", "private_token", "session", "sessionid",
    /* signed URLs: AWS SigV4 presigned, GCS, Azure SAS, generic */
    "signature", "sig", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
    "x-goog-signature", "x-goog-credential", NULL};

const char *const *cred_redact_default_names(void)
{
    return redact_default;
}

static bool name_eq_ci(const uint8_t *p, size_t n, const char *name)
{
    /* the first letter first: each query parameter is tried against ~20
     * names (issue 13: 11 strlen calls a transaction) */
    return n && (p[0] | 0x20) == (name[0] | 0x20) && strlen(name) == n &&
           strncasecmp((const char *)p, name, n) == 0;
}

/* Configured query sources are matched case-insensitively here too: a
 * server that reads `api_key` may well accept `API_KEY`, and redacting is
 * the safe side. */
static bool is_redacted_name(const struct cred_config *cfg, struct kw_slice name)
{
    uint8_t nb[80];
    size_t pos = 0, dn = pct_decode(name, &pos, true, nb, sizeof nb);
    if (pos != name.len)
        return false;
    for (unsigned i = 0; i < cfg->n; i++) {
        const struct cred_source *s = &cfg->src[i];
        if (s->kind == CRED_SRC_QUERY && name_eq_ci(nb, dn, s->name))
            return true;
    }
    for (size_t i = 0; redact_default[i]; i++)
        if (name_eq_ci(nb, dn, redact_default[i]))
            return true;
    return false;
}

/* Drops the whole query when the rewritten target would not fit: a key
 * must never survive because a URL was long. */
static bool redact_all(char *target, char *q)
{
    q[1] = 0;
    strcat(q, "REDACTED");
    return true;
}

bool cred_redact_target(const struct cred_config *cfg, char *target, size_t cap)
{
    char *q = strchr(target, '?');
    if (!q || cap == 0)
        return false;
    static const char red[] = "REDACTED";
    char out[16384]; /* twice kw_txn.url: a rewrite can grow the target */
    size_t o = (size_t)(q + 1 - target), n = strlen(target);
    bool fits = (size_t)(q - target) + 10 <= cap; /* room for "?REDACTED" */
    if (o >= sizeof out)
        return fits ? redact_all(target, q) : false;
    memcpy(out, target, o);
    bool changed = false;
    for (size_t i = o; i <= n;) {
        size_t e = i;
        while (e < n && target[e] != '&' && target[e] != ';' && target[e] != '#')
            e++;
        struct kw_slice pair = {target + i, e - i};
        const char *eq = memchr(pair.p, '=', pair.len);
        struct kw_slice name = {pair.p, eq ? (size_t)(eq - pair.p) : pair.len};
        bool secret = eq && eq + 1 < pair.p + pair.len && is_redacted_name(cfg, name);
        size_t vlen = secret ? name.len + 1 + sizeof red - 1 : pair.len;
        if (o + vlen + 1 >= sizeof out)
            return redact_all(target, q);
        if (secret) {
            /* keep "name=", replace the value */
            memcpy(out + o, pair.p, name.len + 1);
            memcpy(out + o + name.len + 1, red, sizeof red - 1);
            changed = true;
        } else {
            memcpy(out + o, pair.p, vlen);
        }
        o += vlen;
        if (e < n)
            out[o++] = target[e];
        if (e < n && target[e] == '#') { /* the fragment is kept as it is */
            size_t rest = n - e - 1;
            if (o + rest >= sizeof out)
                return redact_all(target, q);
            memcpy(out + o, target + e + 1, rest);
            o += rest;
            break;
        }
        i = e + 1;
    }
    if (!changed)
        return false;
    if (o >= cap) {
        /* cut to fit; the cut can only shorten REDACTED, never expose */
        o = cap - 1;
    }
    memcpy(target, out, o);
    target[o] = 0;
    return true;
}
