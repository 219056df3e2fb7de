/* kw_json: network bytes to JSON strings (see kw_json.h). */
#include "kw_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t kw_utf8_seq(const uint8_t *p, size_t left)
{
    uint8_t c = p[0];
    size_t n;
    if (c < 0x80)
        return c == 0 ? 0 : 1; /* NUL is escaped too */
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3 && c == 0xe0 && p[1] < 0xa0)
        return 0; /* overlong */
    if (n == 3 && c == 0xed && p[1] >= 0xa0)
        return 0; /* surrogate */
    if (n == 4 && c == 0xf0 && p[1] < 0x90)
        return 0;
    if (n == 4 && c == 0xf4 && p[1] >= 0x90)
        return 0;
    return n;
}

size_t kw_json_text(char *out, size_t cap, const uint8_t *p, size_t len)
{
    size_t o = 0;
    if (cap == 0) return 0;
    for (size_t i = 0; i < len;) {
        size_t n = kw_utf8_seq(p + i, len - i);
        if (n ? o + n >= cap : o + 4 >= cap) break; /* cut at a whole character or \xNN */
        if (n) {
            memcpy(out + o, p + i, n);
            o += n;
            i += n;
        } else {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", p[i]);
            i++;
        }
    }
    out[o] = 0;
    return o;
}

json_t *kw_json_bytes(const uint8_t *p, size_t len)
{
    char stackbuf[512];
    if (len == 0) return json_string("");
    size_t cap = len * 4 + 1;
    char *out = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
    if (!out) return NULL;
    size_t o = kw_json_text(out, cap, p, len);
    json_t *s = json_stringn(out, o);
    if (out != stackbuf) free(out);
    return s;
}

void kw_json_set_bytes(json_t *obj, const char *key, const uint8_t *p, size_t len)
{
    if (!p)
        return;
    json_t *s = kw_json_bytes(p, len);
    if (s)
        json_object_set_new(obj, key, s);
}

int kw_json_write_line(json_t *rec, void *file)
{
    FILE *f = file;
    char *s = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)
        return -1;
    int rc = fputs(s, f) < 0 || fputc('\n', f) == EOF ? -1 : 0;
    free(s);
    return rc;
}
