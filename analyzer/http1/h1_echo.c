/* h1_echo: the start of an answer's body, for echo.h (rule 6 of the
 * learned templates), for HTTP/1 connections and HTTP/2 streams alike:
 * kept only for a 2xx JSON answer to a request whose last path segment
 * could be named, at most ECHO_HEAD bytes, decoded through zlib when the
 * answer is gzip- or deflate-coded (clients such as Go's and Python's ask
 * for it, so much API traffic is coded).
 *
 * The one thing to know: the bytes stay with the connection or stream
 * (charged to its budget and wiped when freed, like every buffer of the
 * parsers: an answer may carry a token); only the mask echo_segments
 * makes of them leaves the parser. zlib's state (~40 KB with its window)
 * lives only while a coded answer's first bytes are decoded. */
#include <string.h>
#include <zlib.h>

#include "h1.h"

/* zlib's allocations through the owner's; the size is kept in front (two
 * words, so the alignment stays malloc's). */
static voidpf z_alloc(voidpf op, uInt items, uInt size)
{
    const struct h1_echo_mem *m = op;
    size_t n = (size_t)items * size + 2 * sizeof(size_t);
    size_t *p = m->alloc(m->user, n);
    if (!p) return Z_NULL;
    p[0] = n;
    return p + 2;
}

static void z_free(voidpf op, voidpf a)
{
    const struct h1_echo_mem *m = op;
    size_t *p = (size_t *)a - 2;
    m->free(m->user, p, p[0]);
}

static void z_end(struct h1_echo *e)
{
    if (!e->z) return;
    inflateEnd(e->z);
    e->m->free(e->m->user, e->z, sizeof *e->z);
    e->z = NULL;
}

enum echo_coding h1_echo_coding(const struct h1_msg_view *v)
{
    if (v->status < 200 || v->status >= 300) return ECHO_NONE;
    const struct kw_hdr *ct = h1_hdr_find(v, "Content-Type");
    const struct kw_hdr *ce = h1_hdr_find(v, "Content-Encoding");
    if (!ct) return ECHO_NONE;
    return echo_wanted(v->status, ct->value.p, ct->value.len, ce ? ce->value.p : NULL,
                       ce ? ce->value.len : 0);
}

/* Room for `want` more bytes (ECHO_HEAD in all at most): the buffer grows
 * from ECHO_FIRST, doubling, like the parser's other buffers, so a small
 * answer costs a small buffer (a 4 KiB one per connection, touched and
 * wiped, cost more than the look). False when the budget refused. */
#define ECHO_FIRST 512
static bool room(struct h1_echo *e, size_t want)
{
    size_t need = e->len + want;
    if (need > ECHO_HEAD) need = ECHO_HEAD;
    if (need <= e->cap) return true;
    size_t nc = e->cap ? e->cap : ECHO_FIRST;
    while (nc < need)
        nc *= 2;
    if (nc > ECHO_HEAD) nc = ECHO_HEAD;
    uint8_t *b = e->m->alloc(e->m->user, nc + 1);
    if (!b) return false;
    if (e->len) memcpy(b, e->buf, e->len);
    if (e->buf) e->m->free(e->m->user, e->buf, e->cap + 1);
    e->buf = b;
    e->cap = (uint32_t)nc;
    return true;
}

static void stop(struct h1_echo *e)
{
    e->on = false;
    z_end(e);
}

void h1_echo_begin(struct h1_echo *e, const struct h1_echo_mem *m, enum echo_coding k,
                   struct kw_slice target)
{
    if (e->m) z_end(e);
    e->m = m;
    e->on = e->whole = false;
    e->len = 0;
    if (k == ECHO_NONE || !echo_target(target.p, target.len)) return;
    if (k == ECHO_INFLATE) {
        e->z = m->alloc(m->user, sizeof *e->z);
        if (!e->z) return;
        memset(e->z, 0, sizeof *e->z);
        e->z->zalloc = z_alloc;
        e->z->zfree = z_free;
        e->z->opaque = (voidpf)(uintptr_t)m;
        if (inflateInit2(e->z, 15 + 32) != Z_OK) { /* gzip or zlib, by header */
            m->free(m->user, e->z, sizeof *e->z);
            e->z = NULL;
            return;
        }
    }
    e->on = true;
}

void h1_echo_feed(struct h1_echo *e, const uint8_t *p, uint64_t n)
{
    if (!e->on || !n) return;
    if (!p) { /* a hole: what follows is not the next bytes */
        stop(e);
        return;
    }
    if (!e->z) {
        size_t k = ECHO_HEAD - e->len < n ? ECHO_HEAD - e->len : (size_t)n;
        if (!room(e, k)) {
            stop(e);
            return;
        }
        memcpy(e->buf + e->len, p, k);
        e->len += (uint32_t)k;
        if (e->len == ECHO_HEAD) e->on = false;
        return;
    }
    z_stream *z = e->z;
    for (;;) {
        if (e->len == e->cap && !room(e, e->cap ? e->cap : ECHO_FIRST)) {
            stop(e);
            return;
        }
        uInt in = n > UINT32_MAX ? UINT32_MAX : (uInt)n;
        z->next_in = (Bytef *)(uintptr_t)p; /* zlib reads through a non-const pointer */
        z->avail_in = in;
        z->next_out = e->buf + e->len;
        z->avail_out = e->cap - e->len;
        int rc = inflate(z, Z_NO_FLUSH);
        e->len = e->cap - z->avail_out;
        p += in - z->avail_in;
        n -= in - z->avail_in;
        if (rc == Z_STREAM_END) e->whole = true;
        if (rc == Z_BUF_ERROR) return; /* no progress: it waits for more input */
        if (rc != Z_OK || e->len == ECHO_HEAD) { /* the end, the look full, or not zlib */
            stop(e);
            return;
        }
        if (z->avail_out) return; /* all input taken, room left: more comes later */
        /* the buffer is full and zlib may have more: grow, go on */
    }
}

void h1_echo_end(struct h1_echo *e, struct h1_msg_view *r)
{
    /* an answer sent as it is was seen whole when every byte of it was
     * kept (a hole counts in body_len, not in len); a coded one when its
     * stream ended within the look */
    if (!e->z && e->len == r->body_len) e->whole = true;
    if (e->m) z_end(e);
    e->on = false;
    if (e->len) e->buf[e->len] = 0; /* echo_segments' strstr */
    r->body_head = e->len ? e->buf : NULL;
    r->body_head_len = e->len;
    r->body_head_whole = e->len && e->whole;
}

void h1_echo_release(struct h1_echo *e)
{
    if (!e->m) return;
    z_end(e);
    if (e->buf) e->m->free(e->m->user, e->buf, e->cap + 1);
    e->buf = NULL;
    e->cap = 0;
    e->len = 0;
    e->on = false;
}
