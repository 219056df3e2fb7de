/* kw_str: bounded string building without the printf family. A handful of
 * snprintf calls per transaction (keys and names joined from two or three
 * strings) came to ~7 % of all instructions of a run (callgrind, issue 13);
 * these do the same joins with strnlen and memcpy.
 *
 * The one thing to know: each call writes into [dst, end), always leaves
 * the text NUL-terminated, and returns the position of that NUL, or end
 * when the text was cut, so calls chain and a cut stays a cut:
 *
 *     char buf[64], *e = buf + sizeof buf, *p = buf;
 *     p = kw_stpecpy(p, e, "id:");
 *     p = kw_stpecpy(p, e, id);       // p == e: cut, as snprintf would cut it
 *
 * The text is then exactly what snprintf(buf, sizeof buf, "id:%s", id)
 * writes; kw_str_len gives its length. */
#ifndef KW_STR_H
#define KW_STR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Appends at most max bytes of src (printf's "%.*s"). */
static inline char *kw_stpencpy(char *dst, char *end, const char *src, size_t max)
{
    if (dst >= end) return end;
    size_t room = (size_t)(end - dst);
    /* the whole length: src is a C string; strnlen bounded by room would
     * read past a shorter src object as far as the compiler knows */
    size_t n = max == SIZE_MAX ? strlen(src) : strnlen(src, max);
    if (n >= room) { /* does not fit with its NUL: cut */
        memcpy(dst, src, room - 1);
        dst[room - 1] = '\0';
        return end;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return dst + n;
}

/* Appends src ("%s"). */
static inline char *kw_stpecpy(char *dst, char *end, const char *src)
{
    return kw_stpencpy(dst, end, src, SIZE_MAX);
}

/* Appends one character ("%c"). */
static inline char *kw_stpechr(char *dst, char *end, char c)
{
    char s[2] = {c, '\0'};
    return kw_stpencpy(dst, end, s, 1);
}

/* Appends v in decimal ("%u"). */
static inline char *kw_stpeu(char *dst, char *end, uint64_t v)
{
    char b[24], *q = b + sizeof b - 1;
    *q = '\0';
    do {
        *--q = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return kw_stpecpy(dst, end, q);
}

/* Length of the text built in [buf, end) whose last call returned p. */
static inline size_t kw_str_len(const char *buf, const char *end, const char *p)
{
    return p < end ? (size_t)(p - buf) : (size_t)(end - buf) - 1;
}

#endif
