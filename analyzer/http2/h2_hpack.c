/* h2_hpack: header blocks through libnghttp2's HPACK inflater (RFC 7541),
 * one inflater per direction, and the memory accounting every allocation
 * of the connection goes through (the inflaters' own included, by
 * nghttp2_mem), so one budget bounds all HTTP/2 state.
 *
 * The one thing to know: a block's bytes are fed to the inflater as they
 * arrive, fragment by fragment (it keeps a partial field itself), so a
 * header block is never copied whole. When decoding stops in the middle of
 * a block (an error, a flood, a hole), the table of that direction no
 * longer matches the encoder's: h2i_table_lost replaces the inflater with a
 * fresh one (see h2.h for why its answers stay exact). */
#include <stdlib.h>
#include <string.h>

#include "h2_int.h"

/* ---- memory ------------------------------------------------------------ */

void *h2i_alloc(struct h2_conn *c, void *old, size_t old_size, size_t size)
{
    struct h2_budget *b = c->budget;
    if (size > old_size) {
        uint64_t add = size - old_size;
        if (b && b->max_bytes && b->bytes + add > b->max_bytes) {
            b->refused++;
            c->ctr.memcap_refusals++;
            return NULL;
        }
    }
    void *n = realloc(old, size);
    if (!n) return NULL;
    if (b) {
        b->bytes = b->bytes + size - old_size;
        if (b->bytes > b->peak) b->peak = b->bytes;
    }
    c->mem_used = c->mem_used + size - old_size;
    return n;
}

void h2i_free(struct h2_conn *c, void *p, size_t size)
{
    if (!p) return;
    free(p);
    if (c->budget) c->budget->bytes -= size;
    c->mem_used -= size;
}

/* nghttp2_mem: each block carries its size in front (16 bytes keep the
 * alignment malloc gives). */
enum { NM_HDR = 16 };

static void *nm_malloc(size_t size, void *u)
{
    uint8_t *b = h2i_alloc(u, NULL, 0, size + NM_HDR);
    if (!b) return NULL;
    memcpy(b, &size, sizeof size);
    return b + NM_HDR;
}

static void nm_free(void *ptr, void *u)
{
    if (!ptr) return;
    uint8_t *b = (uint8_t *)ptr - NM_HDR;
    size_t size;
    memcpy(&size, b, sizeof size);
    h2i_free(u, b, size + NM_HDR);
}

static void *nm_calloc(size_t n, size_t sz, void *u)
{
    if (sz && n > SIZE_MAX / sz - NM_HDR) return NULL;
    void *p = nm_malloc(n * sz, u);
    if (p) memset(p, 0, n * sz);
    return p;
}

static void *nm_realloc(void *ptr, size_t size, void *u)
{
    if (!ptr) return nm_malloc(size, u);
    if (!size) {
        nm_free(ptr, u);
        return NULL;
    }
    uint8_t *b = (uint8_t *)ptr - NM_HDR;
    size_t old;
    memcpy(&old, b, sizeof old);
    b = h2i_alloc(u, b, old + NM_HDR, size + NM_HDR);
    if (!b) return NULL;
    memcpy(b, &size, sizeof size);
    return b + NM_HDR;
}

/* ---- inflaters --------------------------------------------------------- */

bool h2i_inflater_new(struct h2_conn *c, struct h2_dir *d)
{
    c->mem = (nghttp2_mem){c, nm_malloc, nm_free, nm_calloc, nm_realloc};
    if (d->inf) nghttp2_hd_inflate_del(d->inf);
    d->inf = NULL;
    if (nghttp2_hd_inflate_new2(&d->inf, &c->mem) != 0) {
        d->inf = NULL;
        return false;
    }
    /* A fresh table after loss does not know what SETTINGS allowed: allow
     * our cap, so an encoder's size update within it is accepted. */
    if (d->recovering) nghttp2_hd_inflate_change_table_size(d->inf, c->lim.max_table_size);
    return true;
}

void h2i_table_lost(struct h2_conn *c, int dir)
{
    struct h2_dir *d = &c->d[dir];
    if (!d->recovering) c->ctr.hpack_broken++;
    d->recovering = true;
    d->blk_decode = false; /* the block in progress, if any, is not decoded */
    d->has_pending_table = false;
    h2i_inflater_new(c, d); /* on failure inf stays NULL: blocks are not decoded */
}

/* The peer of `dir` allowed `size` for the table `dir`'s encoder uses
 * (SETTINGS_HEADER_TABLE_SIZE). A larger table may be allowed at once
 * (the encoder must announce its use first); a smaller one binds only
 * after the ACK, since blocks encoded before it may still arrive. Never
 * inside a block: at its end. */
void h2i_table_size(struct h2_conn *c, int dir, uint32_t size, bool now)
{
    struct h2_dir *d = &c->d[dir];
    if (size > c->lim.max_table_size) {
        c->ctr.hpack_table_capped++;
        size = c->lim.max_table_size;
    }
    size_t cur = d->inf ? nghttp2_hd_inflate_get_max_dynamic_table_size(d->inf) : 0;
    d->pending_table = size;
    d->has_pending_table = true;
    d->pending_ready = now || size >= cur;
    h2i_table_apply(c, dir);
}

void h2i_table_apply(struct h2_conn *c, int dir)
{
    struct h2_dir *d = &c->d[dir];
    if (!d->has_pending_table || !d->pending_ready || d->in_block) return;
    d->has_pending_table = false;
    /* a fresh table after loss keeps our cap: SETTINGS seen since may be
     * older than the encoder's state */
    if (d->inf && !d->recovering) nghttp2_hd_inflate_change_table_size(d->inf, d->pending_table);
}

void h2i_block_begin(struct h2_conn *c, int dir, uint8_t part, uint32_t sid, kw_ts ts)
{
    struct h2_dir *d = &c->d[dir];
    d->in_block = true;
    d->blk_decode = d->inf != NULL;
    d->blk_part = part;
    d->blk_sid = sid;
    d->blk_conts = d->blk_bytes = d->blk_fields = 0;
    d->blk_cut = false;
    d->blk_ts = ts;
}

void h2i_block_bytes(struct h2_conn *c, int dir, const uint8_t *p, size_t n, bool final)
{
    struct h2_dir *d = &c->d[dir];
    if (!d->blk_decode) return;
    for (;;) {
        nghttp2_nv nv;
        int fl = 0;
        ssize_t rv = nghttp2_hd_inflate_hd2(d->inf, &nv, &fl, p, n, final);
        if (rv < 0) {
            /* after loss, a reference to an entry we never saw: expected */
            if (d->recovering)
                c->ctr.headers_undecodable++;
            else
                c->ctr.hpack_errors++;
            h2i_table_lost(c, dir);
            return;
        }
        p += rv;
        n -= (size_t)rv;
        if (fl & NGHTTP2_HD_INFLATE_EMIT) {
            d->blk_fields++;
            h2i_field(c, dir, &nv);
        }
        if (fl & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(d->inf);
            return;
        }
        if (!(fl & NGHTTP2_HD_INFLATE_EMIT) && n == 0) return;
    }
}
