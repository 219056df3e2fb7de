/* persona: backend personalities (see persona.h and docs/personalities.md).
 *
 * The one thing to know: the effective path is made by rewriting the RAW
 * target the way the backend does before its own decoding (drop ";params"
 * as Tomcat does before it decodes, so "..;/" becomes a dot segment; decode
 * a second time; read overlong UTF-8 as ASCII), then by norm_path, the one
 * strict normalisation, then by what routing ignores (a suffix, a trailing
 * slash, case). Every personality runs through the same steps, chosen by
 * its row of the table; nothing here is per-framework code. */
#include "persona.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "norm.h"

#define MO PERSONA_SRC_BIT(KW_OVR_X_HTTP_METHOD_OVERRIDE)
#define XM PERSONA_SRC_BIT(KW_OVR_X_HTTP_METHOD)
#define MQ PERSONA_SRC_BIT(KW_OVR_QUERY_METHOD)
#define OU PERSONA_SRC_BIT(KW_OVR_X_ORIGINAL_URL)
#define RU PERSONA_SRC_BIT(KW_OVR_X_REWRITE_URL)

/* THE table. Each cell is argued in docs/personalities.md; keep the two
 * in step. generic: no certain rewriting (every override is judged as a
 * second reading instead, persona_certain). */
static const struct persona table[] = {
    [RULES_BACKEND_GENERIC] = {"generic", 0, 0},
    /* nginx routes locations on its own normalised URI: decoded once,
     * dot segments and slashes merged, case-sensitive, no override */
    [RULES_BACKEND_NGINX] = {"nginx", 0, 0},
    /* Apache httpd: the same for <Location>; no override headers */
    [RULES_BACKEND_APACHE] = {"apache", 0, 0},
    /* Spring MVC on Tomcat: Tomcat drops path parameters before decoding,
     * Spring's suffix pattern and trailing-slash matching (defaults before
     * Spring 5.3 / 6.0); HiddenHttpMethodFilter's _method is a form field */
    [RULES_BACKEND_SPRING] = {"spring", PERSONA_MATRIX | PERSONA_SUFFIX | PERSONA_TRAILING, MQ},
    /* Express: routes case-insensitive and non-strict (trailing slash) by
     * default; the method-override middleware reads X-HTTP-Method-Override
     * (its default getter) or a _method query key when so configured */
    [RULES_BACKEND_EXPRESS] = {"express", PERSONA_NOCASE | PERSONA_TRAILING, MO | MQ},
    /* ASP.NET Core: routing ignores case and a trailing slash;
     * UseHttpMethodOverride reads X-HTTP-Method-Override; Web API and
     * OData honour X-HTTP-Method */
    [RULES_BACKEND_ASPNET] = {"aspnet", PERSONA_NOCASE | PERSONA_TRAILING, MO | XM},
    /* Django: case-sensitive URLconf, one decode, no override by default */
    [RULES_BACKEND_DJANGO] = {"django", 0, 0},
    /* IIS: case-insensitive file system and routing, overlong UTF-8 and a
     * second decode in the releases that made the "Unicode" and "double
     * decode" traversals famous, X-Original-URL / X-Rewrite-URL from URL
     * Rewrite and the frameworks reading them, X-HTTP-Method (SharePoint) */
    [RULES_BACKEND_IIS] = {"iis",
                           PERSONA_NOCASE | PERSONA_DECODE2 | PERSONA_OVERLONG | PERSONA_TRAILING,
                           XM | OU | RU},
};

const struct persona *persona_get(enum rules_backend b)
{
    return (unsigned)b < sizeof table / sizeof table[0] ? &table[b] : &table[0];
}

static uint32_t cpy(char *dst, size_t cap, const char *p, size_t n)
{
    size_t k = n < cap - 1 ? n : cap - 1;
    if (k) memcpy(dst, p, k);
    dst[k] = '\0';
    return k < n ? KW_TXN_F(TRUNCATED_FIELD) : 0;
}

/* ?_method=VALUE (the first one), raw. */
static bool query_method(const char *t, size_t n, const char **v, size_t *vl)
{
    const char *q = memchr(t, '?', n);
    if (!q) return false;
    const char *e = t + n, *p = q + 1;
    while (p < e && *p != '#') {
        const char *amp = p;
        while (amp < e && *amp != '&' && *amp != '#')
            amp++;
        if ((size_t)(amp - p) >= 8 && !memcmp(p, "_method=", 8)) {
            *v = p + 8;
            *vl = (size_t)(amp - p - 8);
            return *vl > 0;
        }
        p = amp < e && *amp == '&' ? amp + 1 : amp;
        if (p < e && *p == '#') break;
    }
    return false;
}

uint32_t persona_scan(const struct kw_hdr *h, size_t n, const char *target, size_t tlen,
                      struct kw_txn *t)
{
    uint32_t f = 0;
    /* every override header starts "X-": a request with none (most) is
     * not searched for each of them (issue 13: 22 strlen calls and as many
     * name comparisons a transaction) */
    bool any_x = false;
    for (size_t i = 0; i < n && !any_x; i++)
        any_x = h[i].name.len > 2 && (h[i].name.p[0] | 0x20) == 'x' && h[i].name.p[1] == '-';
    for (unsigned s = KW_OVR_X_HTTP_METHOD_OVERRIDE; s < KW_OVR__COUNT; s++) {
        bool method = s < KW_OVR_X_ORIGINAL_URL;
        if (method ? t->ovr_method_src != 0 : t->ovr_url_src != 0) continue;
        const char *v = NULL;
        size_t vl = 0;
        if (s == KW_OVR_QUERY_METHOD) {
            if (!target || !query_method(target, tlen, &v, &vl)) continue;
        } else {
            if (!any_x) continue;
            const char *name = kw_txn_ovr_src_name(s);
            size_t nl = strlen(name);
            for (size_t i = 0; i < n && !v; i++)
                if (kw_slice_ieqn(h[i].name, name, nl) && h[i].value.len) {
                    v = h[i].value.p;
                    vl = h[i].value.len;
                }
            if (!v) continue;
        }
        if (method) {
            f |= cpy(t->ovr_method, sizeof t->ovr_method, v, vl) | KW_TXN_F(METHOD_OVERRIDE);
            t->ovr_method_src = (uint8_t)s;
        } else {
            f |= cpy(t->ovr_url, sizeof t->ovr_url, v, vl) | KW_TXN_F(URL_OVERRIDE);
            t->ovr_url_src = (uint8_t)s;
        }
    }
    return f;
}

/* ---- the effective path ------------------------------------------------ */

struct buf {
    char p[8192];
    size_t n;
};

static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The byte at s[*i] as decoded once (a %XX or a raw byte); advances *i. */
static int byte_at(const char *s, size_t n, size_t *i)
{
    if (*i >= n) return -1;
    if (s[*i] == '%' && *i + 2 < n && hexv((unsigned char)s[*i + 1]) >= 0 &&
        hexv((unsigned char)s[*i + 2]) >= 0) {
        int v = hexv((unsigned char)s[*i + 1]) * 16 + hexv((unsigned char)s[*i + 2]);
        *i += 3;
        return v;
    }
    return (unsigned char)s[(*i)++];
}

static void bput(struct buf *o, const char *s, size_t n)
{
    size_t k = n < sizeof o->p - 1 - o->n ? n : sizeof o->p - 1 - o->n;
    memcpy(o->p + o->n, s, k);
    o->n += k;
    o->p[o->n] = '\0';
}

static void bput_pct(struct buf *o, int v)
{
    static const char hex[] = "0123456789ABCDEF";
    char e[3] = {'%', hex[(v >> 4) & 15], hex[v & 15]};
    bput(o, e, 3);
}

/* Tomcat (and Spring's UrlPathHelper) drop ";..." up to the next '/' of
 * every segment before decoding: "/admin;x=1/users", "/orders/..;/admin". */
static void drop_matrix(const char *s, size_t n, struct buf *o)
{
    size_t i = 0;
    while (i < n && s[i] != '?' && s[i] != '#') {
        if (s[i] == ';') {
            while (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#')
                i++;
            continue;
        }
        bput(o, s + i++, 1);
    }
    bput(o, s + i, n - i);
}

/* A second decode: what a first decode made of the path is decoded
 * again by norm_path (%252e -> %2e -> '.'). The query is left alone. */
static void decode_once(const char *s, size_t n, struct buf *o)
{
    size_t i = 0;
    while (i < n && s[i] != '?' && s[i] != '#') {
        int v = byte_at(s, n, &i);
        if (v == '?' || v == '#')
            bput_pct(o, v); /* a decoded '?' is still path data */
        else {
            char c = (char)v;
            bput(o, &c, 1);
        }
    }
    bput(o, s + i, n - i);
}

/* Overlong UTF-8 read as the ASCII it spells (%c0%ae -> %2E), written
 * percent-encoded so norm_path's one decode gives the character. */
static void fold_overlong(const char *s, size_t n, struct buf *o)
{
    size_t i = 0;
    while (i < n && s[i] != '?' && s[i] != '#') {
        size_t at = i, j = i;
        int a = byte_at(s, n, &j);
        size_t k = j;
        int b = byte_at(s, n, &k);
        if ((a == 0xC0 || a == 0xC1) && b >= 0x80 && b <= 0xBF) {
            bput_pct(o, ((a & 0x1F) << 6) | (b & 0x3F));
            i = k;
            continue;
        }
        if (a == 0xE0 && b >= 0x80 && b <= 0x9F) {
            size_t m = k;
            int c = byte_at(s, n, &m);
            if (c >= 0x80 && c <= 0xBF && (((b & 0x3F) << 6) | (c & 0x3F)) < 0x80) {
                bput_pct(o, ((b & 0x3F) << 6) | (c & 0x3F));
                i = m;
                continue;
            }
        }
        bput(o, s + at, j - at);
        i = j;
    }
    bput(o, s + i, n - i);
}

/* Routing that ignores a suffix or a trailing slash, or case, on the
 * normalised path (in place). Returns the PERSONA_* bits that changed it. */
static unsigned route_fold(unsigned how, char *p, size_t *n)
{
    unsigned did = 0;
    /* PERSONA_TRAILING rewrites nothing: scope patterns already ignore one
     * trailing slash (rules_scope.c), the reading every backend gets */
    if (how & PERSONA_SUFFIX) {
        char *last = strrchr(p, '/');
        char *dot = last ? strrchr(last, '.') : NULL;
        if (dot && dot > last + 1 && dot[1]) {
            *dot = '\0';
            *n = (size_t)(dot - p);
            did |= PERSONA_SUFFIX;
        }
    }
    if (how & PERSONA_NOCASE)
        for (size_t i = 0; i < *n; i++)
            if (p[i] >= 'A' && p[i] <= 'Z' && !(i >= 2 && p[i - 2] == '%') &&
                !(i >= 1 && p[i - 1] == '%')) { /* %XX keeps its canonical hex */
                p[i] = (char)(p[i] + 32);
                did |= PERSONA_NOCASE;
            }
    return did;
}

uint32_t persona_effective(enum rules_backend b, struct kw_txn *t)
{
    const struct persona *ps = persona_get(b);
    bool generic = ps == &table[0];
    t->backend = (uint8_t)(ps - table);
    t->eff_method[0] = t->eff_path[0] = '\0';
    t->eff_how = 0;
    unsigned honour = generic ? ~0u : ps->overrides;
    bool m = t->ovr_method_src && (honour & PERSONA_SRC_BIT(t->ovr_method_src));
    bool u = t->ovr_url_src && (honour & PERSONA_SRC_BIT(t->ovr_url_src));
    if (m) {
        size_t i = 0;
        for (; t->ovr_method[i] && i + 1 < sizeof t->eff_method; i++)
            t->eff_method[i] = (char)toupper((unsigned char)t->ovr_method[i]);
        t->eff_method[i] = '\0';
        if (strcmp(t->eff_method, t->method))
            t->eff_how |= PERSONA_EFF_METHOD;
        else
            t->eff_method[0] = '\0';
    }
    const char *src = u ? t->ovr_url : t->url;
    unsigned how = ps->path;
    /* the rewrites before norm_path, only where they can change something */
    if (!(how & PERSONA_MATRIX) || !strchr(src, ';')) how &= ~PERSONA_MATRIX;
    if (!(t->flags & KW_TXN_F(PATH_DOUBLE_ENCODED)) && !u) how &= ~PERSONA_DECODE2;
    if (!u && !(how & PERSONA_DECODE2) && !(t->flags & KW_TXN_F(PATH_OVERLONG_UTF8)))
        how &= ~PERSONA_OVERLONG;
    uint32_t f = 0;
    size_t pl;
    if (!u && !(how & (PERSONA_MATRIX | PERSONA_DECODE2 | PERSONA_OVERLONG))) {
        /* no rewriting before the normalisation: the wire path, routed */
        if (!(how & (PERSONA_SUFFIX | PERSONA_NOCASE))) return 0;
        pl = strlen(t->path);
        memcpy(t->eff_path, t->path, pl + 1);
        unsigned did = route_fold(how, t->eff_path, &pl);
        if (did)
            t->eff_how |= (uint16_t)did;
        else
            t->eff_path[0] = '\0';
        return 0;
    }
    static _Thread_local struct buf a, c;
    a.n = 0;
    a.p[0] = '\0';
    bput(&a, src, strlen(src));
    if (how & PERSONA_MATRIX) {
        c.n = 0;
        drop_matrix(a.p, a.n, &c);
        a = c;
    }
    if (how & PERSONA_DECODE2) {
        c.n = 0;
        decode_once(a.p, a.n, &c);
        a = c;
    }
    if (how & PERSONA_OVERLONG) {
        c.n = 0;
        fold_overlong(a.p, a.n, &c);
        a = c;
    }
    f |= norm_path(a.p, a.n, t->eff_path, sizeof t->eff_path, &pl) & KW_TXN_F(TRUNCATED_FIELD);
    unsigned did = route_fold(how, t->eff_path, &pl);
    if (u) t->eff_how |= PERSONA_EFF_URL;
    if (strcmp(t->eff_path, t->path)) {
        /* name what changed it: the pre-norm rewrites by their result */
        t->eff_how |=
            (uint16_t)(did | (how & (PERSONA_MATRIX | PERSONA_DECODE2 | PERSONA_OVERLONG)));
    } else {
        t->eff_path[0] = '\0';
        t->eff_how &= (uint16_t)~PERSONA_EFF_URL;
    }
    return f;
}

/* generic's loose reading: what the measured frameworks ignore, together
 * (docs/personalities.md, "generic"): Express's case, Spring/Tomcat's
 * ";params" and Spring's suffix. Never a second decode or overlong UTF-8
 * (flagged only: no measured framework reads them). */
unsigned persona_loose(const struct kw_txn *t, char *out, size_t cap, size_t *len)
{
    unsigned how = PERSONA_SUFFIX | PERSONA_NOCASE;
    size_t pl = 0;
    out[0] = '\0';
    if (!cap) return 0;
    if (strchr(t->url, ';')) {
        static _Thread_local struct buf a;
        a.n = 0;
        a.p[0] = '\0';
        drop_matrix(t->url, strlen(t->url), &a);
        (void)norm_path(a.p, a.n, out, cap, &pl);
        if (strcmp(out, t->path)) how |= PERSONA_MATRIX;
    } else {
        pl = strlen(t->path) < cap ? strlen(t->path) : cap - 1;
        memcpy(out, t->path, pl);
        out[pl] = '\0';
    }
    unsigned did = route_fold(how, out, &pl) | (how & PERSONA_MATRIX);
    if (len) *len = pl;
    return did;
}

bool persona_certain(const struct kw_txn *t)
{
    return t->backend != RULES_BACKEND_GENERIC;
}

static void add(char *buf, size_t len, size_t *w, const char *s)
{
    int k = snprintf(buf + *w, len - *w, "%s%s", *w ? ", " : "", s);
    if (k > 0) *w = *w + (size_t)k < len ? *w + (size_t)k : len - 1;
}

static void describe_how(unsigned bits, char *buf, size_t len, size_t *w)
{
    static const struct {
        unsigned bit;
        const char *what;
    } how[] = {
        {PERSONA_MATRIX, "matrix parameters dropped"}, {PERSONA_DECODE2, "decoded twice"},
        {PERSONA_OVERLONG, "overlong UTF-8 decoded"},  {PERSONA_SUFFIX, "suffix ignored"},
        {PERSONA_TRAILING, "trailing slash ignored"},  {PERSONA_NOCASE, "case ignored"},
    };
    for (size_t i = 0; i < sizeof how / sizeof how[0]; i++)
        if (bits & how[i].bit) add(buf, len, w, how[i].what);
}

const char *persona_describe_how(unsigned how, char *buf, size_t len)
{
    size_t w = 0;
    if (!len) return buf;
    buf[0] = '\0';
    describe_how(how, buf, len, &w);
    return buf;
}

const char *persona_describe(const struct kw_txn *t, char *buf, size_t len)
{
    size_t w = 0;
    char tmp[1100];
    if (!len) return buf;
    buf[0] = '\0';
    if (t->eff_how & PERSONA_EFF_METHOD) {
        snprintf(tmp, sizeof tmp, "%s%s%.32s", kw_txn_ovr_src_name(t->ovr_method_src),
                 t->ovr_method_src == KW_OVR_QUERY_METHOD ? "=" : ": ", t->ovr_method);
        add(buf, len, &w, tmp);
    }
    if (t->eff_how & PERSONA_EFF_URL) {
        snprintf(tmp, sizeof tmp, "%s: %.1024s", kw_txn_ovr_src_name(t->ovr_url_src), t->ovr_url);
        add(buf, len, &w, tmp);
    }
    describe_how(t->eff_how, buf, len, &w);
    return buf;
}
