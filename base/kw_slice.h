/* kw_slice: a borrowed byte range (pointer + length), not NUL-terminated.
 * Whoever hands one out says how long the bytes live. */
#ifndef KW_SLICE_H
#define KW_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

struct kw_slice {
    const char *p;
    size_t len;
};

#define KW_SLICE_LIT(s) ((struct kw_slice){(s), sizeof(s) - 1})

static inline bool kw_slice_eq(struct kw_slice a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && memcmp(a.p, lit, n) == 0;
}

/* Case-insensitive equality with a name of known length n: a caller that
 * tries one name against many slices measures it once (h1_hdr_find,
 * persona_scan: issue 13). */
static inline bool kw_slice_ieqn(struct kw_slice a, const char *lit, size_t n)
{
    return a.len == n && strncasecmp(a.p, lit, n) == 0;
}

static inline bool kw_slice_ieq(struct kw_slice a, const char *lit)
{
    return kw_slice_ieqn(a, lit, strlen(lit));
}

/* A header as the HTTP parser hands it over. */
struct kw_hdr {
    struct kw_slice name;
    struct kw_slice value;
};

#endif
