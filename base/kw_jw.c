/* kw_jw: streaming JSON writer (see kw_jw.h). Output matches what jansson
 * prints with JSON_COMPACT for the same values. */
#include "kw_jw.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kw_json.h"

void kw_jw_init(struct kw_jw *w, char *buf, size_t cap)
{
    w->buf = buf;
    w->len = 0;
    w->cap = cap;
    w->overflow = cap == 0;
    w->depth = 0;
    w->first[0] = true;
}

static void put(struct kw_jw *w, const char *s, size_t n)
{
    if (w->overflow || w->cap - w->len <= n) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

static void putc1(struct kw_jw *w, char c)
{
    put(w, &c, 1);
}

/* Bytes written as they are: printable ASCII but '"' and '\\'. A table,
 * so the common case (keys, paths, hosts) costs one load per byte. */
static const uint8_t plain[256] = {
    [0x20] = 1, [0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7f] = 1,
};

/* True when one of the 8 bytes of x is not plain: below 0x20, '"', '\\'
 * or 0x80 and above. The classic zero-byte tests (exact about whether some
 * byte matches, not about which): a word of plain bytes, the common case
 * in keys, URLs, fingerprints and user agents, costs a few operations
 * instead of eight table loads and branches (issue 13: the EVE http record
 * was ~10k instructions a transaction, most of them here and in member). */
static inline bool word_special(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    uint64_t low = (x - ones * 0x20) & ~x;
    uint64_t zq = (q - ones) & ~q, zb = (b - ones) & ~b;
    return ((low | zq | zb | x) & high) != 0;
}

/* The first i >= from where p[i] is not plain (n when none). */
static inline size_t plain_run(const uint8_t *p, size_t from, size_t n)
{
    size_t i = from;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        if (word_special(x)) break;
    }
    while (i < n && plain[p[i]])
        i++;
    return i;
}

/* True when all n bytes are plain: words, the last one overlapping the
 * one before (bytes checked twice are still plain); under 8 bytes two
 * overlapping halves. No call and no byte loop for a short key. */
static inline bool all_plain(const uint8_t *p, size_t n)
{
    if (n >= 8) {
        uint64_t x;
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, p + i, 8);
            if (word_special(x)) return false;
        }
        memcpy(&x, p + n - 8, 8);
        return !word_special(x);
    }
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        return !word_special((uint64_t)lo | (uint64_t)hi << 32);
    }
    for (size_t i = 0; i < n; i++)
        if (!plain[p[i]]) return false;
    return true;
}

/* A JSON string body: valid UTF-8 as is (with JSON's escapes), other bytes
 * as the text \xNN. */
static void put_escaped(struct kw_jw *w, const uint8_t *p, size_t n)
{
    if (all_plain(p, n)) { /* the common case: written as it is */
        put(w, (const char *)p, n);
        return;
    }
    size_t run = 0; /* start of the pending run of bytes written as they are */
    for (size_t i = plain_run(p, 0, n); i < n; i = plain_run(p, i, n)) {
        uint8_t c = p[i];
        size_t k = c < 0x80 ? (c ? 1 : 0) : kw_utf8_seq(p + i, n - i);
        if (k > 1) {
            i += k;
            continue;
        }
        put(w, (const char *)p + run, i - run);
        char esc[8];
        if (k == 0)
            snprintf(esc, sizeof esc, "\\\\x%02x", c);
        else if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else if (c == '\n')
            strcpy(esc, "\\n");
        else if (c == '\r')
            strcpy(esc, "\\r");
        else if (c == '\t')
            strcpy(esc, "\\t");
        else if (c == '\b')
            strcpy(esc, "\\b");
        else if (c == '\f')
            strcpy(esc, "\\f");
        else
            snprintf(esc, sizeof esc, "\\u%04X", c); /* jansson's case: \u001B */
        put(w, esc, strlen(esc));
        i++;
        run = i;
    }
    put(w, (const char *)p + run, n - run);
}

static void member(struct kw_jw *w, const char *key)
{
    bool comma = !w->first[w->depth];
    w->first[w->depth] = false;
    if (!key) {
        if (comma) putc1(w, ',');
        return;
    }
    size_t kl = strlen(key);
    /* keys are nearly always literals of plain bytes: written in one go */
    if (!w->overflow && w->cap - w->len > kl + 4 && all_plain((const uint8_t *)key, kl)) {
        char *o = w->buf + w->len;
        if (comma) *o++ = ',';
        *o++ = '"';
        memcpy(o, key, kl);
        o += kl;
        *o++ = '"';
        *o++ = ':';
        *o = 0;
        w->len = (size_t)(o - w->buf);
        return;
    }
    if (comma) putc1(w, ',');
    putc1(w, '"');
    put_escaped(w, (const uint8_t *)key, kl);
    put(w, "\":", 2);
}

/* A member whose quoted key ("\"key\":", KW_JK) is written as it stands. */
static void member_q(struct kw_jw *w, const char *qk, size_t qkl)
{
#ifndef NDEBUG
    if (qkl < 3 || qk[0] != '"' || !all_plain((const uint8_t *)qk + 1, qkl - 3)) abort();
#endif
    bool comma = !w->first[w->depth];
    w->first[w->depth] = false;
    if (w->overflow || w->cap - w->len <= qkl + 1) {
        w->overflow = true;
        return;
    }
    char *o = w->buf + w->len;
    if (comma) *o++ = ',';
    memcpy(o, qk, qkl);
    o += qkl;
    *o = 0;
    w->len = (size_t)(o - w->buf);
}

/* The opening bracket of an object or array after its member's name. */
static void open_body(struct kw_jw *w, char c)
{
    if (w->depth + 1 >= KW_JW_MAX_DEPTH) {
        w->overflow = true;
        return;
    }
    putc1(w, c);
    w->first[++w->depth] = true;
}

static void open_(struct kw_jw *w, const char *key, char c)
{
    if (w->depth > 0 || w->len > 0)
        member(w, key);
    open_body(w, c);
}

static void close_(struct kw_jw *w, char c)
{
    if (w->depth == 0) {
        w->overflow = true;
        return;
    }
    putc1(w, c);
    w->depth--;
}

void kw_jw_obj_begin(struct kw_jw *w, const char *key)
{
    open_(w, key, '{');
}

void kw_jw_obj_end(struct kw_jw *w)
{
    close_(w, '}');
}

void kw_jw_arr_begin(struct kw_jw *w, const char *key)
{
    open_(w, key, '[');
}

void kw_jw_arr_end(struct kw_jw *w)
{
    close_(w, ']');
}

static void str_value(struct kw_jw *w, const char *s, size_t n)
{
    putc1(w, '"');
    put_escaped(w, (const uint8_t *)s, n);
    putc1(w, '"');
}

void kw_jw_strn(struct kw_jw *w, const char *key, const char *s, size_t n)
{
    member(w, key);
    str_value(w, s, n);
}

void kw_jw_str(struct kw_jw *w, const char *key, const char *s)
{
    kw_jw_strn(w, key, s, strlen(s));
}

void kw_jw_str_opt(struct kw_jw *w, const char *key, const char *s)
{
    if (s && s[0])
        kw_jw_strn(w, key, s, strlen(s));
}

static void int_value(struct kw_jw *w, int64_t v)
{
    char b[24], *e = b + sizeof b, *q = e;
    /* digits by hand: snprintf was a third of the cost of a flow record */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--q = '-';
    put(w, q, (size_t)(e - q));
}

void kw_jw_int(struct kw_jw *w, const char *key, int64_t v)
{
    member(w, key);
    int_value(w, v);
}

static void bool_value(struct kw_jw *w, bool v)
{
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void kw_jw_bool(struct kw_jw *w, const char *key, bool v)
{
    member(w, key);
    bool_value(w, v);
}

static void ms_value(struct kw_jw *w, int64_t us)
{
    /* "%.3f" of us / 1000, by hand: one per transaction (issue 13) */
    char b[32], *e = b + sizeof b - 1, *q = e;
    *e = 0;
    uint64_t u = us < 0 ? 0 - (uint64_t)us : (uint64_t)us;
    for (int i = 0; i < 3; i++) {
        *--q = (char)('0' + u % 10);
        u /= 10;
    }
    *--q = '.';
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (us < 0) *--q = '-';
    put(w, q, (size_t)(e - q));
}

void kw_jw_ms(struct kw_jw *w, const char *key, int64_t us)
{
    member(w, key);
    ms_value(w, us);
}

void kw_jw_json(struct kw_jw *w, const char *key, const json_t *v)
{
    member(w, key);
    if (w->overflow) return;
    /* straight into the buffer: no allocation (json_dumpb, jansson 2.10) */
    size_t room = w->cap - w->len, n = json_dumpb(v, w->buf + w->len, room, JSON_COMPACT);
    if (n == 0 || n >= room) {
        w->overflow = true;
        if (room) w->buf[w->len] = 0;
        return;
    }
    w->len += n;
    w->buf[w->len] = 0;
}

/* ---- members named by KW_JK ---- */

void kw_jw_obj_begin_k(struct kw_jw *w, const char *qk, size_t qkl)
{
    member_q(w, qk, qkl);
    open_body(w, '{');
}

void kw_jw_arr_begin_k(struct kw_jw *w, const char *qk, size_t qkl)
{
    member_q(w, qk, qkl);
    open_body(w, '[');
}

void kw_jw_str_k(struct kw_jw *w, const char *qk, size_t qkl, const char *s)
{
    member_q(w, qk, qkl);
    str_value(w, s, strlen(s));
}

void kw_jw_str_opt_k(struct kw_jw *w, const char *qk, size_t qkl, const char *s)
{
    if (s && s[0]) kw_jw_str_k(w, qk, qkl, s);
}

void kw_jw_int_k(struct kw_jw *w, const char *qk, size_t qkl, int64_t v)
{
    member_q(w, qk, qkl);
    int_value(w, v);
}

void kw_jw_bool_k(struct kw_jw *w, const char *qk, size_t qkl, bool v)
{
    member_q(w, qk, qkl);
    bool_value(w, v);
}

void kw_jw_ms_k(struct kw_jw *w, const char *qk, size_t qkl, int64_t us)
{
    member_q(w, qk, qkl);
    ms_value(w, us);
}
