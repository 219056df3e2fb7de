/* h1_echo: the start of an answer's body, for echo.h (rule 6 of the
 * learned templates): kept only for a 2xx JSON answer to a request whose
 * last path segment could be named, at most ECHO_HEAD bytes, decoded
 * through zlib when the answer is gzip- or deflate-coded (clients such as
 * Go's and Python's ask for it, so much API traffic is coded).
 *
 * The one thing to know: the bytes stay in the connection (its buffer is
 * charged to the HTTP/1 budget and wiped when freed, like every buffer
 * here: an answer may carry a token); only the mask echo_segments makes
 * of them leaves the parser. zlib's state (~40 KB with its window) lives
 * only while a coded answer's first bytes are decoded. */
#include <string.h>
#include <zlib.h>

#include "echo.h"
#include "h1_int.h"

/* zlib's allocations, charged and wiped as the connection's others; the
 * size is kept in front (two words, so the alignment stays malloc's). */
static voidpf z_alloc(voidpf op, uInt items, uInt size)
{
    size_t n = (size_t)items * size + 2 * sizeof(size_t);
    size_t *p = h1i_mem_alloc(op, n, false);
    if (!p) return Z_NULL;
    p[0] = n;
    return p + 2;
}

static void z_free(voidpf op, voidpf a)
{
    size_t *p = (size_t *)a - 2;
    h1i_mem_free(op, p, p[0]);
}

static void z_end(struct h1_conn *c)
{
    if (!c->echo_z) return;
    inflateEnd(c->echo_z);
    h1i_mem_free(c, c->echo_z, sizeof *c->echo_z);
    c->echo_z = NULL;
}

void h1i_echo_start(struct h1_conn *c, const struct h1_pend *req, const struct h1_msg_view *v)
{
    z_end(c);
    c->echo_on = c->echo_whole = false;
    c->echo_len = 0;
    if (!req || req->is_head || v->status < 200 || v->status >= 300) return;
    /* both headers in one pass, by length first */
    const struct kw_hdr *ct = NULL, *ce = NULL;
    for (size_t i = 0; i < v->n_hdrs; i++) {
        struct kw_slice n = v->hdrs[i].name;
        if (n.len == 12 && !ct && kw_slice_ieq(n, "Content-Type"))
            ct = &v->hdrs[i];
        else if (n.len == 16 && !ce && kw_slice_ieq(n, "Content-Encoding"))
            ce = &v->hdrs[i];
    }
    enum echo_coding k = ct ? echo_wanted(v->status, ct->value.p, ct->value.len,
                                          ce ? ce->value.p : NULL, ce ? ce->value.len : 0)
                            : ECHO_NONE;
    if (k == ECHO_NONE || !echo_target(req->v.target.p, req->v.target.len)) return;
    if (!c->echo_buf) c->echo_buf = h1i_mem_alloc(c, ECHO_HEAD + 1, false);
    if (!c->echo_buf) return;
    if (k == ECHO_INFLATE) {
        c->echo_z = h1i_mem_alloc(c, sizeof *c->echo_z, false);
        if (!c->echo_z) return;
        memset(c->echo_z, 0, sizeof *c->echo_z);
        c->echo_z->zalloc = z_alloc;
        c->echo_z->zfree = z_free;
        c->echo_z->opaque = c;
        if (inflateInit2(c->echo_z, 15 + 32) != Z_OK) { /* gzip or zlib, by header */
            h1i_mem_free(c, c->echo_z, sizeof *c->echo_z);
            c->echo_z = NULL;
            return;
        }
    }
    c->echo_on = true;
}

void h1i_echo_body(struct h1_conn *c, const uint8_t *p, uint64_t n)
{
    if (!c->echo_on) return;
    if (!p) { /* a hole: what follows is not the next bytes */
        c->echo_on = false;
        z_end(c);
        return;
    }
    if (!c->echo_z) {
        size_t k = ECHO_HEAD - c->echo_len < n ? ECHO_HEAD - c->echo_len : (size_t)n;
        memcpy(c->echo_buf + c->echo_len, p, k);
        c->echo_len += (uint32_t)k;
        if (c->echo_len == ECHO_HEAD) c->echo_on = false;
        return;
    }
    z_stream *z = c->echo_z;
    while (n) {
        uInt in = n > UINT32_MAX ? UINT32_MAX : (uInt)n;
        z->next_in = (Bytef *)(uintptr_t)p; /* zlib reads through a non-const pointer */
        z->avail_in = in;
        z->next_out = c->echo_buf + c->echo_len;
        z->avail_out = ECHO_HEAD - c->echo_len;
        int rc = inflate(z, Z_NO_FLUSH);
        c->echo_len = ECHO_HEAD - z->avail_out;
        if (rc == Z_STREAM_END) c->echo_whole = true;
        if (rc != Z_OK || !z->avail_out) { /* the end, the look full, or not zlib */
            c->echo_on = false;
            z_end(c);
            return;
        }
        p += in - z->avail_in;
        n -= in - z->avail_in;
        if (z->avail_in) break; /* zlib wants more room, and had none: cannot happen */
    }
}

void h1i_echo_done(struct h1_conn *c, struct h1_msg_view *r)
{
    /* an answer sent as it is was seen whole when every byte of it was
     * kept (a hole counts in body_len, not in echo_len); a coded one when
     * its stream ended within the look */
    if (!c->echo_z && c->echo_len == r->body_len) c->echo_whole = true;
    z_end(c);
    c->echo_on = false;
    if (c->echo_len) c->echo_buf[c->echo_len] = 0; /* echo_segments' strstr */
    r->body_head = c->echo_len ? c->echo_buf : NULL;
    r->body_head_len = c->echo_len;
    r->body_head_whole = c->echo_len && c->echo_whole;
}

void h1i_echo_free(struct h1_conn *c)
{
    z_end(c);
    if (c->echo_buf) h1i_mem_free(c, c->echo_buf, ECHO_HEAD + 1);
    c->echo_buf = NULL;
}
