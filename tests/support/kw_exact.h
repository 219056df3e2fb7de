/* kw_exact: exact-size heap copies of what tests and fuzz targets feed to
 * parsers and decoders.
 *
 * A parser that reads past `len` of a slice cut out of a bigger buffer (a
 * 1 MB feeder, a string literal, a fuzz input with more records after it)
 * reads bytes that ASan considers valid, so the bug stays hidden: issue 15
 * found a 1-byte over-read in the chunk parser that way. A copy whose
 * allocation ends exactly at `len` turns the same read into a
 * heap-buffer-overflow report. Header-only: tests and fuzz targets share it
 * and production code never sees it. */
#ifndef KW_EXACT_H
#define KW_EXACT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A heap copy of exactly n bytes (n == 0 gives a 0-byte allocation that
 * ASan still guards). Free it with free(). Aborts when out of memory. */
static inline uint8_t *kw_exact_dup(const void *p, size_t n)
{
    /* also tells GCC's -O3 range analysis that n is a real size */
    if (n > PTRDIFF_MAX) abort();
    uint8_t *b = malloc(n);
    if (!b && n) abort();
    if (n) memcpy(b, p, n);
    return b;
}

/* The unconsumed bytes a feeder keeps for the next call, like reassembly
 * does, always held in an allocation of exactly `len` bytes. */
struct kw_exact_buf {
    uint8_t *p;
    size_t len;
};

/* Appends n bytes; the buffer is moved to a new exact-size allocation. */
static inline void kw_exact_append(struct kw_exact_buf *b, const void *p, size_t n)
{
    uint8_t *nb = malloc(b->len + n);
    if (!nb && b->len + n) abort();
    if (b->len) memcpy(nb, b->p, b->len);
    if (n) memcpy(nb + b->len, p, n);
    free(b->p);
    b->p = nb;
    b->len += n;
}

/* Drops the first k bytes (what the parser consumed). */
static inline void kw_exact_consume(struct kw_exact_buf *b, size_t k)
{
    if (k > b->len) abort();
    uint8_t *nb = kw_exact_dup(b->p + k, b->len - k);
    free(b->p);
    b->p = nb;
    b->len -= k;
}

static inline void kw_exact_clear(struct kw_exact_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
}

#endif
