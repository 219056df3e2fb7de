/* echo: path segments named back by a JSON response (echo.h). */
#include "echo.h"

#include <string.h>
#include <strings.h>

static bool has_token(const char *s, size_t n, const char *tok)
{
    size_t t = strlen(tok);
    for (size_t i = 0; i + t <= n; i++)
        if (!strncasecmp(s + i, tok, t)) return true;
    return false;
}

bool echo_wanted(int status, const char *ctype, size_t ctype_len, const char *cenc, size_t cenc_len)
{
    if (status < 200 || status >= 300 || !ctype) return false;
    /* the media type only, parameters (charset) aside */
    const char *semi = memchr(ctype, ';', ctype_len);
    size_t mt = semi ? (size_t)(semi - ctype) : ctype_len;
    if (!has_token(ctype, mt, "json")) return false;
    if (!cenc) return true;
    while (cenc_len && (*cenc == ' ' || *cenc == '\t')) {
        cenc++;
        cenc_len--;
    }
    while (cenc_len && (cenc[cenc_len - 1] == ' ' || cenc[cenc_len - 1] == '\t'))
        cenc_len--;
    return !cenc_len || (cenc_len == 8 && !strncasecmp(cenc, "identity", 8));
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

/* Is the string body[q..q+l+2) ("seg") the value of an id-like member:
 * "policyName": "seg", followed by ',' or '}' (the whole value, not a
 * member name). */
static bool value_at(const uint8_t *b, size_t n, size_t q, size_t l)
{
    size_t e = q + l + 2;
    while (e < n && is_ws(b[e]))
        e++;
    if (e >= n || (b[e] != ',' && b[e] != '}')) return false; /* a name, or cut */
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

static bool found(const uint8_t *b, size_t n, const char *seg, size_t l)
{
    if (n < l + 2) return false;
    for (size_t i = 0; i + l + 2 <= n;) {
        const uint8_t *q = memchr(b + i, '"', n - i - l - 1);
        if (!q) return false;
        size_t at = (size_t)(q - b);
        if (b[at + l + 1] == '"' && !memcmp(b + at + 1, seg, l) && value_at(b, n, at, l))
            return true;
        i = at + 1;
    }
    return false;
}

uint32_t echo_segments(const char *path, size_t len, const uint8_t *body, size_t n)
{
    uint32_t mask = 0;
    if (!body || n < 4) return 0;
    size_t i = 0;
    for (unsigned seg = 0; i < len && seg < 31;) {
        while (i < len && path[i] == '/')
            i++;
        if (i >= len) break;
        size_t j = i;
        bool plain = true;
        while (j < len && path[j] != '/') {
            unsigned char c = (unsigned char)path[j];
            if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f) plain = false;
            j++;
        }
        if (plain && j - i >= 2 && j - i <= 128 && found(body, n, path + i, j - i))
            mask |= 1u << seg;
        seg++;
        i = j;
    }
    return mask;
}
