/* norm: request-path normalisation for policy, and endpoint templates.
 *
 * The one thing to know: normalisation is two passes over the output
 * buffer. Pass 1 decodes percent-encodings once and canonicalises what it
 * does not decode (upper-case %XX), turning every separator spelling
 * ('/', '\', %2f, %5c) into '/'. Pass 2 works in place on whole segments:
 * empty segments (repeated slashes) are dropped first, like nginx's
 * merge_slashes and libhtp, then "." and ".." are removed (RFC 3986
 * §5.2.4), so dot segments produced by decoding (%2e%2e) count too. */
#include "norm.h"

#include <stdbool.h>
#include <string.h>

#include "kw_txn.h"
#include "shape.h"

struct norm_out {
    char *p;
    size_t cap; /* usable bytes, excluding the NUL */
    size_t len;
    uint32_t flags;
};

static void put(struct norm_out *o, char ch)
{
    if (o->len < o->cap)
        o->p[o->len++] = ch;
    else
        o->flags |= KW_TXN_F(TRUNCATED_FIELD);
}

static void put_pct(struct norm_out *o, unsigned char v)
{
    static const char hex[] = "0123456789ABCDEF";
    put(o, '%');
    put(o, hex[v >> 4]);
    put(o, hex[v & 15]);
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* RFC 3986 §2.3 unreserved. */
static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* pchar minus pct-encoded (RFC 3986 §3.3): may appear raw in the output. */
/* Unreserved and sub-delims, ':' and '@' (RFC 3986 pchar without
 * pct-encoded), and '/': a byte kept as it is. A table: most of a path
 * is these, tested byte by byte (issue 13). */
static const bool raw_ok[256] = {
    ['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['0' ... '9'] = true,
    ['-'] = true, ['.'] = true, ['_'] = true, ['~'] = true,
    ['!'] = true, ['$'] = true, ['&'] = true, ['\''] = true, ['('] = true, [')'] = true,
    ['*'] = true, ['+'] = true, [','] = true, [';'] = true, ['='] = true, [':'] = true,
    ['@'] = true, ['/'] = true,
};

/* The path part of a request target: origin-form up to '?'/'#';
 * absolute-form after its authority; anything else is read as a path. */
static void path_span(const char *t, size_t len, size_t *start, size_t *end)
{
    size_t i = 0, s = 0;
    if (len > 0 && t[0] != '/') {
        /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) "://" */
        while (i < len && (((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z') ||
                           (i > 0 && ((t[i] >= '0' && t[i] <= '9') || t[i] == '+' || t[i] == '-' ||
                                      t[i] == '.'))))
            i++;
        if (i > 0 && i + 3 <= len && memcmp(t + i, "://", 3) == 0) {
            s = i + 3;
            while (s < len && t[s] != '/' && t[s] != '?' && t[s] != '#')
                s++;
        } else if (len == 1 && t[0] == '*') {
            s = len; /* OPTIONS * : no path */
        }
    }
    size_t e = s;
    while (e < len && t[e] != '?' && t[e] != '#')
        e++;
    *start = s;
    *end = e;
}

/* A lead byte and the byte after it that together spell an ASCII
 * character (or a short code point) in more bytes than UTF-8 allows
 * (RFC 3629 §3: C0 and C1 never appear; E0 80..9F and F0 80..8F are
 * overlong): %c0%ae is '.', which old IIS and Tomcat decoded as one. */
static bool overlong_pair(int lead, unsigned char next)
{
    return ((lead == 0xC0 || lead == 0xC1) && next >= 0x80 && next <= 0xBF) ||
           (lead == 0xE0 && next >= 0x80 && next <= 0x9F) ||
           (lead == 0xF0 && next >= 0x80 && next <= 0x8F);
}

/* Pass 1: decode once, canonicalise, unify separators. Also flags what a
 * stack decoding a second time, or accepting overlong UTF-8, would read
 * differently (persona.h decides whether the service does). */
static void decode_pass(const char *t, size_t s, size_t e, struct norm_out *o)
{
    int prev = -1; /* the byte before this one, as decoded */
    if (s >= e || t[s] != '/') put(o, '/');
    for (size_t i = s; i < e; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '%') {
            int h = i + 2 < e ? hexval((unsigned char)t[i + 1]) : -1;
            int l = h >= 0 ? hexval((unsigned char)t[i + 2]) : -1;
            if (l < 0) {
                o->flags |= KW_TXN_F(PATH_BAD_ENCODING);
                put_pct(o, '%'); /* kept literally, as %25 */
                prev = '%';
                continue;
            }
            unsigned char v = (unsigned char)(h * 16 + l);
            i += 2;
            if (v == '%' && i + 2 < e && hexval((unsigned char)t[i + 1]) >= 0 &&
                hexval((unsigned char)t[i + 2]) >= 0)
                o->flags |= KW_TXN_F(PATH_DOUBLE_ENCODED);
            if (overlong_pair(prev, v)) o->flags |= KW_TXN_F(PATH_OVERLONG_UTF8);
            prev = v;
            if (v == '/' || v == '\\') {
                o->flags |= KW_TXN_F(PATH_ENCODED_SLASH);
                put(o, '/');
            } else if (v == 0) {
                o->flags |= KW_TXN_F(PATH_NUL);
                put_pct(o, 0);
            } else if (is_unreserved(v)) {
                o->flags |= KW_TXN_F(PATH_PERCENT_ENCODED);
                put(o, (char)v);
            } else {
                put_pct(o, v);
            }
        } else if (c == '\\') {
            o->flags |= KW_TXN_F(PATH_ENCODED_SLASH);
            put(o, '/');
            prev = c;
        } else if (raw_ok[c]) {
            prev = c;
            put(o, (char)c);
        } else {
            if (c == 0) o->flags |= KW_TXN_F(PATH_NUL);
            if (overlong_pair(prev, c)) o->flags |= KW_TXN_F(PATH_OVERLONG_UTF8);
            prev = c;
            put_pct(o, c);
        }
    }
}

/* Pass 2, in place: drop empty segments, then "." and ".." (RFC 3986
 * §5.2.4). The write position never passes the read position. */
static void segment_pass(struct norm_out *o)
{
    char *b = o->p;
    size_t n = o->len, w = 0, i = 1; /* b[0] == '/' */
    bool trailing = false;
    while (i <= n) {
        size_t j = i;
        while (j < n && b[j] != '/')
            j++;
        size_t sl = j - i;
        bool last = j >= n;
        trailing = false;
        if (sl == 0) {
            if (!last) o->flags |= KW_TXN_F(PATH_DOUBLE_SLASH);
            trailing = last;
        } else if (sl == 1 && b[i] == '.') {
            o->flags |= KW_TXN_F(PATH_DOT_SEGMENTS);
            trailing = last;
        } else if (sl == 2 && b[i] == '.' && b[i + 1] == '.') {
            o->flags |= KW_TXN_F(PATH_DOT_SEGMENTS);
            while (w > 0 && b[w - 1] != '/')
                w--;
            if (w > 0) w--; /* drop the '/' that began the popped segment */
            trailing = last;
        } else {
            b[w++] = '/';
            memmove(b + w, b + i, sl);
            w += sl;
        }
        i = j + 1;
    }
    if (w == 0 || trailing) b[w++] = '/';
    o->len = w;
}

uint32_t norm_path(const char *target, size_t len, char *out, size_t outcap, size_t *outlen)
{
    if (outcap < 2) {
        if (outcap == 1) out[0] = '\0';
        if (outlen) *outlen = 0;
        return KW_TXN_F(TRUNCATED_FIELD);
    }
    struct norm_out o = {.p = out, .cap = outcap - 1, .len = 0, .flags = 0};
    size_t s, e;
    path_span(target ? target : "", target ? len : 0, &s, &e);
    decode_pass(target, s, e, &o);
    segment_pass(&o);
    out[o.len] = '\0';
    if (outlen) *outlen = o.len;
    return o.flags;
}

static void tput(char *out, size_t cap, size_t *w, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *w + 1 < cap; i++)
        out[(*w)++] = s[i];
}

size_t norm_template(const char *path, size_t len, char *out, size_t outcap)
{
    size_t w = 0, i = 0;
    bool first = true;
    if (outcap == 0) return 0;
    while (i < len) {
        if (path[i] == '/') {
            tput(out, outcap, &w, "/", 1);
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        size_t n = j - i, pre, core = shape_split(path + i, n, &pre);
        enum shape_kind k = shape_classify(path + i + pre, core);
        /* the first segment of a path names the API or its version
         * (/2015-03-31/functions, /2/tweets): a date there is a version */
        if (shape_is_strong(k) && !(first && k == SHAPE_DATE)) {
            tput(out, outcap, &w, path + i, pre);
            tput(out, outcap, &w, "{id}", 4);
            tput(out, outcap, &w, path + i + pre + core, n - pre - core);
        } else {
            tput(out, outcap, &w, path + i, n);
        }
        first = false;
        i = j;
    }
    out[w] = '\0';
    return w;
}
