/* h2: frames of both directions (RFC 9113 §4, §6), read as they stream
 * in: a frame's header is gathered, its payload is handed on piece by
 * piece (DATA counted, header-block fragments to the inflater, the fixed
 * fields of control frames gathered in a few bytes), so nothing is
 * buffered whole and every byte is consumed once.
 *
 * The one thing to know: framing is kept across a hole only when the hole
 * lies inside a DATA payload (its length is known). Any other hole may
 * have hidden frames, header blocks among them: the direction then looks
 * for a frame boundary again (two frame headers in a row that a peer could
 * send) and its HPACK table is lost (h2_hpack.c). */
#include <stdlib.h>
#include <string.h>

#include "h2_int.h"

static const uint8_t PREFACE[H2_PREFACE_LEN + 1] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

void h2_limits_default(struct h2_limits *l)
{
    l->max_streams = 256;
    l->max_header_list = 32 * 1024;
    l->max_headers = 128;
    l->max_table_size = 64 * 1024;
    l->max_continuations = 64;
    l->max_header_block = 256 * 1024;
    l->max_resets_per_sec = 100;
    l->resync_scan_max = 256 * 1024;
    l->max_conns = 65536;
    l->memcap = 512ull * 1024 * 1024;
}

void h2_counters_add(struct h2_counters *total, const struct h2_counters *c)
{
#define H2_CTR_ADD(n) total->n += c->n;
    H2_COUNTERS(H2_CTR_ADD)
#undef H2_CTR_ADD
}

void h2_counters_each(const struct h2_counters *c,
                      void (*fn)(void *u, const char *name, uint64_t v), void *u)
{
#define H2_CTR_EACH(n) fn(u, #n, c->n);
    H2_COUNTERS(H2_CTR_EACH)
#undef H2_CTR_EACH
}

int h2_is_preface(const uint8_t *p, size_t len)
{
    size_t n = len < H2_PREFACE_LEN ? len : H2_PREFACE_LEN;
    if (memcmp(p, PREFACE, n) != 0) return 0;
    return n == H2_PREFACE_LEN ? 1 : -1;
}

/* ---- lifecycle --------------------------------------------------------- */

/* the streams' echo buffers (h1_echo.c), through the connection's budget */
static void *echo_alloc(void *c, size_t n)
{
    return h2i_alloc(c, NULL, 0, n);
}

static void echo_free(void *c, void *p, size_t n)
{
    if (p) explicit_bzero(p, n); /* an answer may carry a token */
    h2i_free(c, p, n);
}

struct h2_conn *h2_conn_new_in(const struct h2_limits *l, struct h2_budget *b, bool midstream,
                               h2_txn_cb cb, void *user)
{
    struct h2_limits lim;
    if (!l)
        h2_limits_default(&lim);
    else
        lim = *l;
    if (!lim.max_streams || !lim.max_header_list || !lim.max_headers || !lim.resync_scan_max)
        return NULL;
    if (b && b->max_bytes && b->bytes + sizeof(struct h2_conn) > b->max_bytes) {
        b->refused++;
        return NULL;
    }
    struct h2_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->lim = lim;
    c->budget = b;
    c->cb = cb;
    c->user = user;
    c->mem_used = sizeof *c;
    if (b) {
        b->bytes += sizeof *c;
        if (b->bytes > b->peak) b->peak = b->bytes;
    }
    for (int i = 0; i < 2; i++) {
        struct h2_dir *d = &c->d[i];
        d->max_frame = H2_DEFAULT_MAX_FRAME;
        d->recovering = midstream;
        d->st = midstream ? D_RESYNC : i == 0 ? D_PREFACE : D_FH;
        if (!h2i_inflater_new(c, d)) {
            h2_conn_destroy(c);
            return NULL;
        }
    }
    c->reset_sec = -1;
    c->echo_mem = (struct h1_echo_mem){echo_alloc, echo_free, c};
    return c;
}

void h2_conn_destroy(struct h2_conn *c)
{
    if (!c) return;
    for (int i = 0; i < 2; i++)
        if (c->d[i].inf) nghttp2_hd_inflate_del(c->d[i].inf);
    h2i_streams_free(c);
    h2i_free(c, c->hdrs, c->hdrs_cap * sizeof *c->hdrs);
    if (c->budget) c->budget->bytes -= sizeof *c;
    free(c);
}

size_t h2_conn_mem_used(const struct h2_conn *c)
{
    return c ? (size_t)c->mem_used : 0;
}

const struct h2_counters *h2_conn_counters(const struct h2_conn *c)
{
    return &c->ctr;
}

/* ---- frame headers ----------------------------------------------------- */

static uint32_t be24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Could a peer send this frame header in direction `dir` (RFC 9113 §6)?
 * Stricter than reading it in sequence: used to find a boundary after loss. */
static bool plausible(const struct h2_dir *d, int dir, const uint8_t *h)
{
    static const uint8_t allowed[10] = {0x09, 0x2d, 0, 0, 0x01, 0x0c, 0x01, 0, 0, 0x04};
    uint32_t len = be24(h), sid = be32(h + 5);
    uint8_t type = h[3], fl = h[4];
    if (type > H2_CONTINUATION || (fl & ~allowed[type]) || (sid & 0x80000000u)) return false;
    if (len > (d->recovering ? 1u << 20 : d->max_frame)) return false;
    switch (type) {
    case H2_DATA:
    case H2_HEADERS:
        return sid && (dir == 1 || (sid & 1));
    case H2_PRIORITY:
        return sid && len == 5;
    case H2_RST_STREAM:
        return sid && len == 4;
    case H2_SETTINGS:
        return !sid && len % 6 == 0 && (!(fl & 1) || !len);
    case H2_PUSH_PROMISE:
        return dir == 1 && sid && (sid & 1) && len >= 4;
    case H2_PING:
        return !sid && len == 8;
    case H2_GOAWAY:
        return !sid && len >= 8;
    case H2_WINDOW_UPDATE:
        return len == 4;
    default:
        return false; /* a CONTINUATION alone continues nothing we saw */
    }
}

/* The fixed-size frames a peer would reject for their length or stream. */
static bool frame_valid(uint8_t type, uint8_t fl, uint32_t sid, uint32_t len)
{
    switch (type) {
    case H2_DATA:
    case H2_HEADERS:
    case H2_CONTINUATION:
        return sid != 0;
    case H2_PRIORITY:
        return sid && len == 5;
    case H2_RST_STREAM:
        return sid && len == 4;
    case H2_SETTINGS:
        return !sid && len % 6 == 0 && (!(fl & 1) || !len);
    case H2_PUSH_PROMISE:
        return sid && len >= 4;
    case H2_PING:
        return !sid && len == 8;
    case H2_GOAWAY:
        return !sid && len >= 8;
    case H2_WINDOW_UPDATE:
        return len == 4;
    default:
        return true;
    }
}

static bool is_block_frame(uint8_t t)
{
    return t == H2_HEADERS || t == H2_PUSH_PROMISE || t == H2_CONTINUATION;
}

static void open_streams_flag(struct h2_conn *c, uint32_t flag)
{
    for (uint32_t i = 0; i < c->nstreams_cap; i++)
        if (c->streams[i].id) c->streams[i].flags |= flag;
}

/* A header block stops being decoded midway: its stream's side is lost,
 * and so is the table of that direction. */
static void block_abandon(struct h2_conn *c, int dir, kw_ts ts)
{
    struct h2_dir *d = &c->d[dir];
    h2i_table_lost(c, dir);
    if (d->in_block) {
        d->blk_end_stream = false; /* its END_STREAM is not trusted either */
        h2i_block_done(c, dir, false, ts);
    }
}

static void enter_resync(struct h2_conn *c, int dir, kw_ts ts)
{
    struct h2_dir *d = &c->d[dir];
    block_abandon(c, dir, ts);
    d->st = D_RESYNC;
    d->fhn = 0;
}

static void frame_begin(struct h2_conn *c, int dir, kw_ts ts)
{
    struct h2_dir *d = &c->d[dir];
    const uint8_t *h = d->fh;
    d->flen = be24(h);
    d->type = h[3];
    d->fflags = h[4];
    d->sid = be32(h + 5) & 0x7fffffffu;
    d->off = d->pren = d->padlen = 0;
    d->frame_bad = false;
    c->ctr.frames++;
    if (d->flen > (d->recovering ? 1u << 24 : d->max_frame)) {
        c->ctr.protocol_errors++; /* more than the peer allowed: we lost the framing */
        enter_resync(c, dir, ts);
        return;
    }
    if (d->in_block && (d->type != H2_CONTINUATION || d->sid != d->blk_sid)) {
        c->ctr.protocol_errors++; /* RFC 9113 §6.10: nothing may interleave a block */
        block_abandon(c, dir, ts);
    }
    bool padded = (d->fflags & H2F_PADDED) &&
                  (d->type == H2_DATA || d->type == H2_HEADERS || d->type == H2_PUSH_PROMISE);
    d->head_need = padded ? 1 : 0;
    if (d->type == H2_HEADERS && (d->fflags & H2F_PRIORITY)) d->head_need += 5;
    if (d->type == H2_PUSH_PROMISE) d->head_need += 4;
    d->content_end = d->flen;
    if (!frame_valid(d->type, d->fflags, d->sid, d->flen) || d->head_need > d->flen ||
        (d->type == H2_CONTINUATION && !d->in_block) || (d->type == H2_PUSH_PROMISE && dir == 0)) {
        c->ctr.protocol_errors++;
        d->frame_bad = true;
        if (is_block_frame(d->type))
            block_abandon(c, dir, ts); /* a block we cannot read may change the table */
    }
    if (d->type == H2_CONTINUATION && !d->frame_bad) {
        c->ctr.continuations++;
        if (++d->blk_conts > c->lim.max_continuations && d->blk_decode) {
            c->ctr.continuation_floods++; /* CVE-2024-27316 class: stop decoding */
            h2i_table_lost(c, dir);
        }
    }
}

/* ---- header blocks ----------------------------------------------------- */

/* Which stream and part a client HEADERS block is for. */
static uint8_t client_headers(struct h2_conn *c, uint32_t sid, kw_ts ts)
{
    struct h2_stream *s = h2i_stream_find(c, sid);
    if (s) return s->req_seen ? PART_REQ_TRAIL : PART_REQ;
    if (!(sid & 1) || sid <= c->last_client_sid) {
        c->ctr.unknown_stream_frames++; /* closed (or refused) earlier */
        return PART_NONE;
    }
    c->last_client_sid = sid;
    return h2i_stream_open(c, sid, ts) ? PART_REQ : PART_NONE;
}

static uint8_t server_headers(struct h2_conn *c, uint32_t sid, kw_ts ts)
{
    struct h2_stream *s = h2i_stream_find(c, sid);
    if (s) return s->resp_final ? PART_RESP_TRAIL : PART_RESP;
    /* A response to a request we never saw (picked up midstream, lost in
     * a hole): reported without its request. Not for streams we refused
     * or already reported. */
    if ((sid & 1) && sid > c->last_client_sid && (c->d[0].recovering || c->d[0].st == D_RESYNC)) {
        c->last_client_sid = sid;
        return h2i_stream_open(c, sid, ts) ? PART_RESP : PART_NONE;
    }
    c->ctr.unknown_stream_frames++;
    return PART_NONE;
}

/* The fixed fields before a block's fragment are in: start the block. */
static void block_start(struct h2_conn *c, int dir, kw_ts ts)
{
    struct h2_dir *d = &c->d[dir];
    uint8_t part = PART_NONE;
    uint32_t sid = d->sid;
    if (d->type == H2_HEADERS) {
        part = dir == 0 ? client_headers(c, sid, ts) : server_headers(c, sid, ts);
    } else { /* PUSH_PROMISE: the promised stream's request (RFC 9113 §8.4) */
        const uint8_t *pp = d->pre + ((d->fflags & H2F_PADDED) ? 1 : 0);
        sid = be32(pp) & 0x7fffffffu;
        c->ctr.pushes++;
        struct h2_stream *s =
            sid && !(sid & 1) && !h2i_stream_find(c, sid) ? h2i_stream_open(c, sid, ts) : NULL;
        if (s) {
            s->flags |= KW_TXN_F(PUSHED);
            s->req_end = true; /* a promised request has no body */
            part = PART_REQ;
        }
    }
    h2i_block_begin(c, dir, part, sid, ts);
    d->blk_end_stream = d->type == H2_HEADERS && (d->fflags & H2F_END_STREAM);
    if (d->blk_end_stream && part == PART_REQ && d->type == H2_HEADERS) {
        struct h2_stream *s = h2i_stream_find(c, sid);
        if (s) s->ts_req_end = ts;
    }
}

static void head_done(struct h2_conn *c, int dir, kw_ts ts)
{
    struct h2_dir *d = &c->d[dir];
    if (d->fflags & H2F_PADDED && d->head_need) {
        d->padlen = d->pre[0];
        if ((uint32_t)d->padlen + d->head_need > d->flen) {
            c->ctr.protocol_errors++; /* RFC 9113 §6.1: padding past the payload */
            d->frame_bad = true;
            if (is_block_frame(d->type)) block_abandon(c, dir, ts);
            return;
        }
        d->content_end = d->flen - d->padlen;
    }
    d->pren = 0;
    /* a stream starts when its HEADERS frame's first byte was seen (as an
     * HTTP/1 request does), even when the frame header was cut across
     * segments */
    if (d->type == H2_HEADERS || d->type == H2_PUSH_PROMISE) block_start(c, dir, d->fh_ts);
}

/* ---- payloads ---------------------------------------------------------- */

static void settings_entry(struct h2_conn *c, int dir, const uint8_t *e)
{
    uint16_t id = (uint16_t)(e[0] << 8 | e[1]);
    uint32_t v = be32(e + 2);
    if (id == 0x1) /* HEADER_TABLE_SIZE: bounds the other direction's encoder */
        h2i_table_size(c, 1 - dir, v, false);
    else if (id == 0x5 && v >= H2_DEFAULT_MAX_FRAME && v < (1u << 24))
        c->d[1 - dir].max_frame = v; /* MAX_FRAME_SIZE the other side may send */
}

static void content(struct h2_conn *c, int dir, const uint8_t *p, uint32_t n)
{
    struct h2_dir *d = &c->d[dir];
    switch (d->type) {
    case H2_DATA: {
        c->ctr.data_bytes += n;
        struct h2_stream *s = h2i_stream_find(c, d->sid);
        if (s) {
            if (dir == 0) {
                s->req_body += n;
            } else {
                s->resp_body += n;
                h1_echo_feed(&s->echo, p, n);
            }
        }
        break;
    }
    case H2_HEADERS:
    case H2_PUSH_PROMISE:
    case H2_CONTINUATION:
        d->blk_bytes += n;
        if (d->blk_bytes > c->lim.max_header_block && d->blk_decode) {
            c->ctr.continuation_floods++;
            c->ctr.header_block_limit++;
            h2i_table_lost(c, dir);
        }
        h2i_block_bytes(c, dir, p, n, false);
        break;
    case H2_SETTINGS:
        for (uint32_t i = 0; i < n; i++) {
            d->pre[d->pren++] = p[i];
            if (d->pren == 6) {
                settings_entry(c, dir, d->pre);
                d->pren = 0;
            }
        }
        break;
    case H2_RST_STREAM:
    case H2_PING:
    case H2_GOAWAY:
    case H2_WINDOW_UPDATE:
    case H2_PRIORITY:
        for (uint32_t i = 0; i < n && d->pren < sizeof d->pre; i++)
            d->pre[d->pren++] = p[i];
        break;
    default:
        break;
    }
}

static void frame_end(struct h2_conn *c, int dir, kw_ts ts)
{
    struct h2_dir *d = &c->d[dir];
    d->st = D_FH;
    d->fhn = 0;
    if (d->frame_bad) return;
    struct h2_stream *s;
    switch (d->type) {
    case H2_DATA:
        s = h2i_stream_find(c, d->sid);
        if (!s)
            c->ctr.unknown_stream_frames++;
        else if (d->fflags & H2F_END_STREAM)
            h2i_stream_end_half(c, s, dir, ts);
        break;
    case H2_HEADERS:
    case H2_PUSH_PROMISE:
    case H2_CONTINUATION:
        if (!(d->fflags & H2F_END_HEADERS) || !d->in_block) break;
        static const uint8_t none[1];
        h2i_block_bytes(c, dir, none, 0, true);
        h2i_block_done(c, dir, d->blk_decode, ts);
        break;
    case H2_SETTINGS:
        c->ctr.settings++;
        if (d->fflags & 1) { /* ACK: what this side's peer asked now binds */
            c->d[dir].pending_ready = true;
            h2i_table_apply(c, dir);
        }
        break;
    case H2_RST_STREAM:
        c->ctr.resets++;
        s = h2i_stream_find(c, d->sid);
        if (s)
            h2i_stream_reset(c, s, dir, ts);
        else
            c->ctr.unknown_stream_frames++;
        break;
    case H2_PING:
        c->ctr.pings++;
        break;
    case H2_GOAWAY:
        c->ctr.goaways++;
        break;
    case H2_WINDOW_UPDATE:
        c->ctr.window_updates++;
        break;
    case H2_PRIORITY:
        c->ctr.priorities++;
        break;
    default:
        c->ctr.unknown_frames++;
        break;
    }
}

static size_t step_payload(struct h2_conn *c, int dir, const uint8_t *p, size_t n, kw_ts ts)
{
    struct h2_dir *d = &c->d[dir];
    size_t used = 0;
    while (used < n && d->off < d->flen) {
        uint32_t left = d->flen - d->off;
        uint32_t avail = n - used < left ? (uint32_t)(n - used) : left;
        uint32_t k;
        if (d->frame_bad) {
            k = avail;
        } else if (d->off < d->head_need) {
            d->pre[d->pren++] = p[used];
            k = 1;
            d->off += k;
            used += k;
            if (d->off == d->head_need) head_done(c, dir, ts);
            continue;
        } else if (d->off < d->content_end) {
            k = d->content_end - d->off < avail ? d->content_end - d->off : avail;
            content(c, dir, p + used, k);
        } else {
            k = avail; /* padding */
        }
        d->off += k;
        used += k;
    }
    if (d->off == d->flen) frame_end(c, dir, ts);
    return used;
}

static size_t step_fh(struct h2_conn *c, int dir, const uint8_t *p, size_t n, kw_ts ts)
{
    struct h2_dir *d = &c->d[dir];
    size_t k = H2_FRAME_HEADER - d->fhn;
    if (k > n) k = n;
    if (d->fhn == 0) d->fh_ts = ts;
    memcpy(d->fh + d->fhn, p, k);
    d->fhn = (uint8_t)(d->fhn + k);
    if (d->fhn == H2_FRAME_HEADER) {
        d->st = D_PAYLOAD;
        frame_begin(c, dir, ts);
        if (d->st != D_PAYLOAD) return k; /* lost the framing: resynchronising */
        if (!d->frame_bad && d->head_need == 0) head_done(c, dir, ts);
        if (d->flen == 0) frame_end(c, dir, ts);
    }
    return k;
}

static size_t step_preface(struct h2_conn *c, int dir, const uint8_t *p, size_t n)
{
    struct h2_dir *d = &c->d[dir];
    size_t k = 0;
    while (k < n && d->preface_got < H2_PREFACE_LEN) {
        if (p[k] != PREFACE[d->preface_got]) {
            c->ctr.preface_missing++;
            d->st = D_RESYNC; /* frames without the preface: find them */
            d->recovering = true;
            return k;
        }
        k++;
        d->preface_got++;
    }
    if (d->preface_got == H2_PREFACE_LEN) d->st = D_FH;
    return k;
}

/* Is p[0..] a frame boundary? 1: a plausible frame header followed by
 * another, or by the end of the bytes exactly (segments mostly end with a
 * frame); 0: no; -1: the next header is not in yet. */
static int boundary(const struct h2_dir *d, int dir, const uint8_t *p, size_t n)
{
    if (n < H2_FRAME_HEADER || !plausible(d, dir, p)) return n < H2_FRAME_HEADER ? -1 : 0;
    size_t next = H2_FRAME_HEADER + be24(p);
    if (next == n) return 1;
    if (next + H2_FRAME_HEADER > n) return -1;
    return plausible(d, dir, p + next) || p[next + 3] == H2_CONTINUATION;
}

bool h2_looks_like_frames(const uint8_t *p, size_t len, int dir)
{
    struct h2_dir d = {.recovering = true, .max_frame = H2_DEFAULT_MAX_FRAME};
    return dir >= 0 && dir <= 1 && boundary(&d, dir, p, len) == 1;
}

/* Look for a frame boundary (see boundary()). When the next header is not
 * in yet the bytes are kept (*need) while that costs little; past 64 KiB a
 * lone control frame header is taken. *need: keep the bytes from the
 * returned offset and call again with more. */
static size_t step_resync(struct h2_conn *c, int dir, const uint8_t *p, size_t n, bool *need)
{
    struct h2_dir *d = &c->d[dir];
    size_t lim = n < c->lim.resync_scan_max ? n : c->lim.resync_scan_max;
    for (size_t i = 0; i + H2_FRAME_HEADER <= lim; i++) {
        int b = boundary(d, dir, p + i, n - i);
        if (b < 0 && n - i < 64 * 1024 && n == lim) {
            *need = true; /* the next header decides: wait for it */
            c->ctr.resync_bytes += i;
            return i;
        }
        if (b < 0) b = p[i + 3] != H2_DATA && p[i + 3] != H2_HEADERS;
        if (b <= 0) continue;
        c->ctr.resyncs++;
        c->ctr.resync_bytes += i;
        d->st = D_FH;
        d->fhn = 0;
        return i;
    }
    size_t k = lim >= H2_FRAME_HEADER ? lim - H2_FRAME_HEADER + 1 : 0;
    if (lim < n) k = lim;
    *need = k == 0;
    c->ctr.resync_bytes += k;
    return k;
}

size_t h2_feed(struct h2_conn *c, int dir, const uint8_t *p, size_t len, kw_ts ts)
{
    if (!c || dir < 0 || dir > 1 || !p) return len;
    struct h2_dir *d = &c->d[dir];
    size_t pos = 0;
    size_t scanned = 0;
    if (len) d->ts_last = ts;
    while (pos < len) {
        size_t k = 0;
        bool need = false;
        uint8_t st = d->st;
        switch (st) {
        case D_PREFACE:
            k = step_preface(c, dir, p + pos, len - pos);
            break;
        case D_FH:
            k = step_fh(c, dir, p + pos, len - pos, ts);
            break;
        case D_PAYLOAD:
            k = step_payload(c, dir, p + pos, len - pos, ts);
            break;
        default:
            k = step_resync(c, dir, p + pos, len - pos, &need);
            scanned += k;
            break;
        }
        pos += k;
        if (need || (k == 0 && d->st == st) || scanned >= c->lim.resync_scan_max) break;
    }
    return pos;
}

/* ---- loss -------------------------------------------------------------- */

void h2_gap(struct h2_conn *c, int dir, uint64_t len, kw_ts ts)
{
    if (!c || dir < 0 || dir > 1) return;
    struct h2_dir *d = &c->d[dir];
    c->ctr.gaps++;
    c->ctr.gap_bytes += len;
    uint32_t flag = dir == 0 ? KW_TXN_F(GAP_REQUEST) : KW_TXN_F(GAP_RESPONSE);
    if (d->st == D_PAYLOAD && d->type == H2_DATA && !d->frame_bad && d->off >= d->head_need &&
        len <= d->flen - d->off) {
        /* inside a DATA payload: the frame's length says where the next
         * one begins, and no header block was skipped */
        uint64_t body = d->content_end > d->off ? d->content_end - d->off : 0;
        if (body > len) body = len;
        struct h2_stream *s = h2i_stream_find(c, d->sid);
        if (s) {
            s->flags |= flag;
            if (dir == 0) {
                s->req_body += body;
            } else {
                s->resp_body += body;
                h1_echo_feed(&s->echo, NULL, body);
            }
        }
        c->ctr.gaps_absorbed++;
        d->off += (uint32_t)len;
        if (d->off == d->flen) frame_end(c, dir, ts);
        return;
    }
    open_streams_flag(c, flag);
    enter_resync(c, dir, ts);
}

void h2_close(struct h2_conn *c, kw_ts ts)
{
    if (!c) return;
    for (uint32_t i = 0; i < c->nstreams_cap; i++) {
        struct h2_stream *s = &c->streams[i];
        if (s->id) h2i_stream_report(c, s, 0, ts);
    }
}

/* ---- h2c --------------------------------------------------------------- */

/* RFC 4648 §5 base64url, no padding: the HTTP2-Settings header. */
static size_t b64url(const char *in, size_t n, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        int v = ch >= 'A' && ch <= 'Z'   ? ch - 'A'
                : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
                : ch >= '0' && ch <= '9' ? ch - '0' + 52
                : ch == '-'              ? 62
                : ch == '_'              ? 63
                                         : -1;
        if (v < 0) {
            if (ch == '=') break;
            return 0;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap) return 0;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}

void h2_upgrade(struct h2_conn *c, const struct h1_msg_view *req)
{
    if (!c || !req) return;
    c->ctr.h2c_upgrades++;
    c->last_client_sid = 1;
    struct h2_stream *s = h2i_stream_open(c, 1, req->ts_start);
    if (!s) return;
    /* the request's fields through the same path as decoded ones */
    struct h2_dir *d = &c->d[0];
    h2i_block_begin(c, 0, PART_REQ, 1, req->ts_start);
    nghttp2_nv nv = {(uint8_t *)":method", (uint8_t *)req->method.p, 7, req->method.len, 0};
    h2i_field(c, 0, &nv);
    nv = (nghttp2_nv){(uint8_t *)":path", (uint8_t *)req->target.p, 5, req->target.len, 0};
    h2i_field(c, 0, &nv);
    for (size_t i = 0; i < req->n_hdrs; i++) {
        const struct kw_hdr *h = &req->hdrs[i];
        nv =
            (nghttp2_nv){(uint8_t *)h->name.p, (uint8_t *)h->value.p, h->name.len, h->value.len, 0};
        h2i_field(c, 0, &nv);
        if (kw_slice_ieq(h->name, "HTTP2-Settings")) {
            uint8_t set[96];
            size_t n = b64url(h->value.p, h->value.len, set, sizeof set);
            for (size_t k = 0; k + 6 <= n; k += 6)
                settings_entry(c, 0, set + k);
            /* acknowledged by the 101 itself (RFC 7540 §3.2.1) */
            c->d[1].pending_ready = true;
            h2i_table_apply(c, 1);
        }
    }
    d->in_block = false;
    s->req_seen = s->req_end = true;
    if (d->blk_cut) s->flags |= KW_TXN_F(TRUNCATED_FIELD);
    s->req_body = req->body_len;
    s->ts_req = req->ts_start;
    s->ts_req_end = req->ts_end;
}

/* ---- kw_txn ------------------------------------------------------------ */

void h2_txn_fill(const struct h2_txn_view *t, struct kw_txn *out)
{
    struct h1_txn_view v = {t->req, t->resp};
    h1_txn_fill(&v, out);
    out->stream_id = t->stream_id;
    if (t->grpc) out->flags |= KW_TXN_F(GRPC);
    if (t->grpc_status >= 0) {
        out->has_grpc_status = true;
        out->grpc_status = t->grpc_status;
    }
    size_t n = t->grpc_message.len < sizeof out->grpc_message - 1 ? t->grpc_message.len
                                                                  : sizeof out->grpc_message - 1;
    if (n) memcpy(out->grpc_message, t->grpc_message.p, n);
    out->grpc_message[n] = 0;
}
