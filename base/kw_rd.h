/* kw_rd: a bounds-checked reader over a byte buffer, for decoders.
 * Every read checks the remaining length first; a short buffer sets
 * `bad` and returns 0 instead of reading past the end (tcpdump's GET_*
 * idea). Callers check kw_rd_ok() once after a group of reads. */
#ifndef KW_RD_H
#define KW_RD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kw_rd {
    const uint8_t *p;
    size_t len;
    size_t off;
    bool bad;
};

static inline void kw_rd_init(struct kw_rd *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->bad = false;
}

static inline bool kw_rd_ok(const struct kw_rd *r)
{
    return !r->bad;
}

static inline size_t kw_rd_left(const struct kw_rd *r)
{
    return r->bad ? 0 : r->len - r->off;
}

static inline const uint8_t *kw_rd_ptr(const struct kw_rd *r)
{
    return r->p + r->off;
}

static inline bool kw_rd_need(struct kw_rd *r, size_t n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        return false;
    }
    return true;
}

static inline void kw_rd_skip(struct kw_rd *r, size_t n)
{
    if (kw_rd_need(r, n))
        r->off += n;
}

static inline uint8_t kw_rd_u8(struct kw_rd *r)
{
    if (!kw_rd_need(r, 1))
        return 0;
    return r->p[r->off++];
}

static inline uint16_t kw_rd_be16(struct kw_rd *r)
{
    if (!kw_rd_need(r, 2))
        return 0;
    uint16_t v = (uint16_t)((r->p[r->off] << 8) | r->p[r->off + 1]);
    r->off += 2;
    return v;
}

static inline uint32_t kw_rd_be32(struct kw_rd *r)
{
    if (!kw_rd_need(r, 4))
        return 0;
    const uint8_t *p = r->p + r->off;
    r->off += 4;
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint16_t kw_rd_le16(struct kw_rd *r)
{
    if (!kw_rd_need(r, 2))
        return 0;
    uint16_t v = (uint16_t)(r->p[r->off] | (r->p[r->off + 1] << 8));
    r->off += 2;
    return v;
}

static inline uint32_t kw_rd_le32(struct kw_rd *r)
{
    if (!kw_rd_need(r, 4))
        return 0;
    const uint8_t *p = r->p + r->off;
    r->off += 4;
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

#endif
