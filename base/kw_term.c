/* kw_term: escaping of wire text for terminals (see kw_term.h). */
#include "kw_term.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kw_json.h"

uint32_t kw_term_hidden(const uint8_t *p, size_t k)
{
    if (k < 2) return 0;
    /* k comes from kw_utf8_seq: a valid sequence, so no checks here */
    uint32_t cp = p[0] & (0x7f >> k);
    for (size_t i = 1; i < k; i++)
        cp = cp << 6 | (p[i] & 0x3f);
    bool hide = (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || (cp >= 0x200b && cp <= 0x200f) ||
                (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff;
    return hide ? cp : 0;
}

/* Writes the escaped form of the next character of *p into piece (at
 * most 12 bytes); returns its length and advances *p. */
static size_t next_piece(const uint8_t **p, char piece[12])
{
    size_t n = kw_utf8_seq(*p, strnlen((const char *)*p, 4));
    uint32_t cp;
    if (n == 0 || (n == 1 && (**p < 0x20 || **p == 0x7f))) {
        static const char hex[] = "0123456789abcdef";
        piece[0] = '\\', piece[1] = 'x', piece[2] = hex[**p >> 4], piece[3] = hex[**p & 15];
        *p += 1;
        return 4;
    }
    if ((cp = kw_term_hidden(*p, n))) {
        *p += n;
        return (size_t)snprintf(piece, 12, "\\u%04x", (unsigned)cp);
    }
    memcpy(piece, *p, n);
    *p += n;
    return n;
}

char *kw_term_esc(char *out, size_t cap, const char *s)
{
    if (!cap) return out;
    size_t o = 0;
    const uint8_t *p = (const uint8_t *)(s ? s : "");
    while (*p) {
        char piece[12];
        size_t n = next_piece(&p, piece);
        if (o + n >= cap) break;
        memcpy(out + o, piece, n);
        o += n;
    }
    out[o] = '\0';
    return out;
}

void kw_term_fputs(const char *s, FILE *f)
{
    const uint8_t *p = (const uint8_t *)(s ? s : "");
    while (*p) {
        char piece[12];
        size_t n = next_piece(&p, piece);
        fwrite(piece, 1, n, f);
    }
}
