/* echo: path segments named back by a JSON response (echo.h). */
#include "echo.h"

#include <string.h>
#include <strings.h>

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* Does s[0..n) hold tok (lower case) in any case? By hand: strncasecmp
 * at every offset was most of the cost of looking at an answer. */
static bool has_token(const char *s, size_t n, const char *tok)
{
    size_t t = strlen(tok);
    for (size_t i = 0; i + t <= n; i++) {
        if (lower(s[i]) != tok[0]) continue;
        size_t k = 1;
        while (k < t && lower(s[i + k]) == tok[k])
            k++;
        if (k == t) return true;
    }
    return false;
}

bool echo_json_type(const char *ctype, size_t len)
{
    /* the media type only, parameters (charset) aside */
    const char *semi = ctype ? memchr(ctype, ';', len) : NULL;
    return ctype && has_token(ctype, semi ? (size_t)(semi - ctype) : len, "json");
}

enum echo_coding echo_coding_of(const char *cenc, size_t len)
{
    if (!cenc) return ECHO_PLAIN;
    while (len && (*cenc == ' ' || *cenc == '\t')) {
        cenc++;
        len--;
    }
    while (len && (cenc[len - 1] == ' ' || cenc[len - 1] == '\t'))
        len--;
    if (!len || (len == 8 && !strncasecmp(cenc, "identity", 8))) return ECHO_PLAIN;
    /* one coding, zlib's: gzip (x-gzip, RFC 9110 8.4.1.3) or deflate */
    if ((len == 4 && !strncasecmp(cenc, "gzip", 4)) ||
        (len == 6 && !strncasecmp(cenc, "x-gzip", 6)) ||
        (len == 7 && !strncasecmp(cenc, "deflate", 7)))
        return ECHO_INFLATE;
    return ECHO_NONE;
}

enum echo_coding echo_wanted(int status, const char *ctype, size_t ctype_len, const char *cenc,
                             size_t cenc_len)
{
    if (status < 200 || status >= 300 || !echo_json_type(ctype, ctype_len)) return ECHO_NONE;
    return echo_coding_of(cenc, cenc_len);
}

static bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Does the member name body[a..b) say "this is the item's own name or
 * id": ending in id, name, key, slug, login, code, handle or uuid, case
 * and separators aside (policyName, location-id, FunctionName, login,
 * metadata.name). "type" and "kind" do not: JSON:API answers /articles
 * with "type":"articles" and Kubernetes with "kind", and those name the
 * collection, a route word. */
static bool id_member(const uint8_t *b, size_t a, size_t e)
{
    static const char *const ends[] = {"id", "name", "key", "slug", "login", "code", "handle",
                                       "uuid"};
    char k[64];
    size_t n = 0;
    for (size_t i = a; i < e; i++) {
        uint8_t c = b[i];
        if (c == '_' || c == '-' || c == '.') continue;
        if (c == '\\' || n == sizeof k) return false;
        k[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    for (size_t i = 0; i < sizeof ends / sizeof *ends; i++) {
        size_t l = strlen(ends[i]);
        if (n >= l && !memcmp(k + n - l, ends[i], l)) return true;
    }
    return false;
}

/* Is the occurrence of "seg" at body[q..q+l+2) the whole string value of
 * an id-like member: preceded by ':' and a member name echo_member likes,
 * followed by ',' or '}' (a member name is followed by ':'; a value cut by
 * the end of the look cannot be told). */
static bool member_value(const uint8_t *b, size_t n, size_t q, size_t l)
{
    size_t e = q + l + 2;
    while (e < n && is_ws(b[e]))
        e++;
    if (e >= n || (b[e] != ',' && b[e] != '}')) return false;
    size_t s = q;
    while (s > 0 && is_ws(b[s - 1]))
        s--;
    if (s == 0 || b[s - 1] != ':') return false;
    s--;
    while (s > 0 && is_ws(b[s - 1]))
        s--;
    if (s < 2 || b[s - 1] != '"') return false;
    size_t ke = s - 1, ka = ke;
    while (ka > 0 && b[ka - 1] != '"' && ke - ka < 64)
        ka--;
    if (ka == 0 || b[ka - 1] != '"' || ka == ke) return false;
    return id_member(b, ka, ke);
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return n > 0;
}

/* A segment rule 6 can use: the last (the item the request addresses;
 * an answer rarely names the collections above it under an id-like
 * member, and looking for them cost a search each), not the first, 2-128
 * bytes JSON writes as they are, not a number (a parameter at first sight
 * anyway), and not after one (under a parameter: an action or a
 * sub-collection). Cheap tests only: classifying each segment's shape
 * here cost more than the search (callgrind). */
static bool candidate(const char *s, size_t n, unsigned k, bool after_id)
{
    if (k == 0 || after_id || n < 2 || n > 128) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f) return false;
    }
    return !all_digits(s, n);
}

/* The last segment of path[0..len) (a '?' or '#' ends the path) and its
 * index, and whether it may be named (candidate). False when it may not. */
static bool last_segment(const char *path, size_t len, size_t *at, size_t *n, unsigned *k)
{
    const char *q = memchr(path, '?', len);
    if (q) len = (size_t)(q - path);
    const char *h = memchr(path, '#', len);
    if (h) len = (size_t)(h - path);
    unsigned idx = 0;
    size_t i = 0, ls = 0, ll = 0, ps = 0, pl = 0;
    bool any = false;
    while (i < len) {
        while (i < len && path[i] == '/')
            i++;
        if (i >= len) break;
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        if (any) idx++;
        ps = ls;
        pl = ll;
        ls = i;
        ll = j - i;
        any = true;
        i = j;
    }
    if (!any || idx >= 31 || !candidate(path + ls, ll, idx, idx && all_digits(path + ps, pl)))
        return false;
    *at = ls;
    *n = ll;
    *k = idx;
    return true;
}

bool echo_target(const char *target, size_t len)
{
    size_t at, n;
    unsigned k;
    return last_segment(target, len, &at, &n, &k);
}

uint32_t echo_segments(const char *path, size_t len, const char *body, size_t n)
{
    size_t at, l;
    unsigned k;
    if (!body || n < 4 || !last_segment(path, len, &at, &l, &k)) return 0;
    /* "seg" by strstr (SSE2 in glibc, ~35 ns a KiB against ~250 for
     * memmem), each hit checked in its place */
    char needle[132];
    needle[0] = '"';
    memcpy(needle + 1, path + at, l);
    needle[l + 1] = '"';
    needle[l + 2] = 0;
    for (const char *h = strstr(body, needle); h; h = strstr(h + 1, needle))
        if (member_value((const uint8_t *)body, n, (size_t)(h - body), l)) return 1u << k;
    return 0;
}
