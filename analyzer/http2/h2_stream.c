/* h2_stream: the streams of a connection (RFC 9113 §5.1), the decoded
 * header fields they keep, and their report as transactions.
 *
 * The one thing to know: a stream is reported once, when both sides have
 * ended it (END_STREAM), when either resets it, or when the connection
 * ends. Only the request's fields are kept (credentials and User-Agent
 * are read from them); of a response only :status, content-type and the
 * gRPC status and message are. Slots and their buffers are reused, so a
 * busy connection stops allocating once it has grown. */
#include <stdlib.h>
#include <string.h>

#include "h2_int.h"

enum { STREAMS_INITIAL = 8, BUF_INITIAL = 512, FIELDS_INITIAL = 16 };

struct h2_stream *h2i_stream_find(struct h2_conn *c, uint32_t sid)
{
    if (!sid) return NULL;
    for (uint32_t i = 0; i < c->nstreams_cap; i++)
        if (c->streams[i].id == sid) return &c->streams[i];
    return NULL;
}

static void stream_clear(struct h2_stream *s)
{
    char *buf = s->buf;
    struct h2_field *fields = s->fields;
    uint32_t bcap = s->bcap, fcap = s->fields_cap;
    memset(s, 0, sizeof *s);
    s->buf = buf;
    s->bcap = bcap;
    s->fields = fields;
    s->fields_cap = fcap;
    s->grpc_status = -1;
}

/* A free slot for a new stream, NULL over max_streams (counted). */
struct h2_stream *h2i_stream_open(struct h2_conn *c, uint32_t sid, kw_ts ts)
{
    if (c->nopen >= c->lim.max_streams) {
        c->ctr.streams_refused++;
        return NULL;
    }
    if (c->nopen == c->nstreams_cap) {
        uint32_t n = c->nstreams_cap ? c->nstreams_cap * 2 : STREAMS_INITIAL;
        if (n > c->lim.max_streams) n = c->lim.max_streams;
        struct h2_stream *s = h2i_alloc(c, c->streams, c->nstreams_cap * sizeof *s, n * sizeof *s);
        if (!s) {
            c->ctr.streams_refused++;
            return NULL;
        }
        memset(s + c->nstreams_cap, 0, (n - c->nstreams_cap) * sizeof *s);
        c->streams = s;
        c->nstreams_cap = n;
    }
    for (uint32_t i = 0; i < c->nstreams_cap; i++) {
        struct h2_stream *s = &c->streams[i];
        if (s->id) continue;
        h1_echo_release(&s->echo); /* a stream dropped unreported left its own */
        stream_clear(s);
        s->id = sid;
        s->ts_req = ts;
        c->nopen++;
        c->ctr.streams++;
        return s;
    }
    return NULL; /* not reached: nopen < cap */
}

void h2i_streams_free(struct h2_conn *c)
{
    for (uint32_t i = 0; i < c->nstreams_cap; i++) {
        h1_echo_release(&c->streams[i].echo);
        h2i_free(c, c->streams[i].buf, c->streams[i].bcap);
        h2i_free(c, c->streams[i].fields, c->streams[i].fields_cap * sizeof(struct h2_field));
    }
    h2i_free(c, c->streams, c->nstreams_cap * sizeof *c->streams);
    c->streams = NULL;
    c->nstreams_cap = c->nopen = 0;
}

/* ---- fields ------------------------------------------------------------ */

/* Append bytes to the stream's buffer; false when its bound (the header
 * list size) or the budget refuses. */
static bool buf_put(struct h2_conn *c, struct h2_stream *s, const uint8_t *p, size_t n,
                    struct h2_ref *r)
{
    if ((uint64_t)s->blen + n > c->lim.max_header_list) return false;
    if (s->blen + n > s->bcap) {
        uint32_t cap = s->bcap ? s->bcap : BUF_INITIAL;
        while (cap < s->blen + n)
            cap *= 2;
        if (cap > c->lim.max_header_list) cap = c->lim.max_header_list;
        char *b = h2i_alloc(c, s->buf, s->bcap, cap);
        if (!b) return false;
        s->buf = b;
        s->bcap = cap;
    }
    if (n) memcpy(s->buf + s->blen, p, n);
    r->off = s->blen;
    r->len = (uint32_t)n;
    s->blen += (uint32_t)n;
    return true;
}

static bool name_is(const nghttp2_nv *nv, const char *lit)
{
    size_t n = strlen(lit);
    return nv->namelen == n && memcmp(nv->name, lit, n) == 0;
}

static bool is_grpc_type(const nghttp2_nv *nv)
{
    return name_is(nv, "content-type") && nv->valuelen >= 16 &&
           strncasecmp((const char *)nv->value, "application/grpc", 16) == 0;
}

static void cut(struct h2_conn *c, struct h2_dir *d)
{
    if (!d->blk_cut) c->ctr.header_list_limit++;
    d->blk_cut = true;
}

static void request_field(struct h2_conn *c, struct h2_dir *d, struct h2_stream *s,
                          const nghttp2_nv *nv)
{
    s->list_bytes += (uint32_t)(nv->namelen + nv->valuelen + 32);
    if (is_grpc_type(nv)) s->grpc = true;
    if (nv->namelen && nv->name[0] == ':') {
        struct h2_ref *r = name_is(nv, ":method")      ? &s->method
                           : name_is(nv, ":path")      ? &s->path
                           : name_is(nv, ":authority") ? &s->authority
                           : name_is(nv, ":scheme")    ? &s->scheme
                                                       : NULL;
        if (r && !r->len && !buf_put(c, s, nv->value, nv->valuelen, r)) cut(c, d);
        return;
    }
    if (s->list_bytes > c->lim.max_header_list || s->nfields >= c->lim.max_headers) {
        /* the count's own hit when the bytes alone would have passed */
        if (!d->blk_cut && s->list_bytes <= c->lim.max_header_list) c->ctr.header_count_limit++;
        cut(c, d);
        return;
    }
    if (s->nfields == s->fields_cap) {
        uint32_t n = s->fields_cap ? s->fields_cap * 2 : FIELDS_INITIAL;
        if (n > c->lim.max_headers) n = c->lim.max_headers;
        struct h2_field *f = h2i_alloc(c, s->fields, s->fields_cap * sizeof *f, n * sizeof *f);
        if (!f) {
            cut(c, d);
            return;
        }
        s->fields = f;
        s->fields_cap = n;
    }
    struct h2_field *f = &s->fields[s->nfields];
    uint32_t mark = s->blen;
    if (!buf_put(c, s, nv->name, nv->namelen, &f->name) ||
        !buf_put(c, s, nv->value, nv->valuelen, &f->value)) {
        s->blen = mark;
        cut(c, d);
        return;
    }
    s->nfields++;
}

static int parse_int(const uint8_t *p, size_t n, int max)
{
    if (!n || n > 10) return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v > max ? -1 : (int)v;
}

static void response_field(struct h2_stream *s, uint8_t part, const nghttp2_nv *nv)
{
    if (part == PART_RESP && name_is(nv, "content-type"))
        s->resp_json = echo_json_type((const char *)nv->value, nv->valuelen);
    else if (part == PART_RESP && name_is(nv, "content-encoding"))
        s->resp_coding = (uint8_t)(1 + echo_coding_of((const char *)nv->value, nv->valuelen));
    if (part == PART_RESP && name_is(nv, ":status")) {
        int st = nv->valuelen == 3 ? parse_int(nv->value, 3, 999) : -1;
        s->status = st >= 100 ? st : 0;
    } else if (is_grpc_type(nv)) {
        s->grpc = true;
    } else if (name_is(nv, "grpc-status")) {
        int st = parse_int(nv->value, nv->valuelen, INT32_MAX);
        s->has_grpc_status = st >= 0;
        s->grpc_status = st;
    } else if (name_is(nv, "grpc-message")) {
        size_t n = nv->valuelen < sizeof s->grpc_msg ? nv->valuelen : sizeof s->grpc_msg;
        memcpy(s->grpc_msg, nv->value, n);
        s->grpc_msg_len = (uint8_t)n;
    }
}

void h2i_field(struct h2_conn *c, int dir, const nghttp2_nv *nv)
{
    struct h2_dir *d = &c->d[dir];
    if (d->blk_part == PART_NONE || d->blk_part == PART_REQ_TRAIL) return;
    struct h2_stream *s = h2i_stream_find(c, d->blk_sid);
    if (!s) return;
    if (d->blk_part == PART_REQ)
        request_field(c, d, s, nv);
    else
        response_field(s, d->blk_part, nv);
}

/* ---- block ends, stream ends ------------------------------------------- */

void h2i_block_done(struct h2_conn *c, int dir, bool decoded, kw_ts ts)
{
    struct h2_dir *d = &c->d[dir];
    uint8_t part = d->blk_part;
    bool end = d->blk_end_stream;
    d->in_block = false;
    if (decoded) c->ctr.header_blocks++;
    h2i_table_apply(c, dir);
    struct h2_stream *s = part == PART_NONE ? NULL : h2i_stream_find(c, d->blk_sid);
    if (!s) return;
    if (d->blk_cut) s->flags |= KW_TXN_F(TRUNCATED_FIELD);
    switch (part) {
    case PART_REQ:
        s->req_seen = true;
        s->ts_req = d->blk_ts;
        if (!decoded) {
            s->req_lost = true;
            s->flags |= KW_TXN_F(HEADERS_UNDECODABLE) | KW_TXN_F(GAP_REQUEST);
        }
        break;
    case PART_RESP:
        if (!decoded) {
            s->resp_lost = s->resp_final = true;
            s->ts_resp = d->blk_ts;
            s->flags |= KW_TXN_F(HEADERS_UNDECODABLE) | KW_TXN_F(GAP_RESPONSE);
        } else if (s->status >= 100 && s->status < 200) {
            s->status = 0; /* 1xx: interim, the answer follows (RFC 9113 §8.1) */
        } else {
            s->resp_final = true;
            s->ts_resp = d->blk_ts;
            /* the start of its body, for echo.h, when a JSON answer */
            enum echo_coding k = !s->resp_json || s->status < 200 || s->status >= 300
                                     ? ECHO_NONE
                                 : s->resp_coding ? (enum echo_coding)(s->resp_coding - 1)
                                                  : ECHO_PLAIN;
            h1_echo_begin(&s->echo, &c->echo_mem, k,
                          (struct kw_slice){s->buf ? s->buf + s->path.off : "", s->path.len});
        }
        break;
    default:
        break; /* trailers: their fields were taken as they came */
    }
    if (end) h2i_stream_end_half(c, s, dir, ts);
}

void h2i_stream_end_half(struct h2_conn *c, struct h2_stream *s, int dir, kw_ts ts)
{
    if (dir == 0) {
        s->req_end = true;
        s->ts_req_end = ts;
    } else {
        s->resp_end = true;
        s->ts_resp_end = ts;
    }
    /* a request whose block was lost may have ended in it: the end of the
     * answer ends the stream */
    if ((s->req_end || s->req_lost) && s->resp_end) h2i_stream_report(c, s, 0, ts);
}

void h2i_stream_reset(struct h2_conn *c, struct h2_stream *s, int dir, kw_ts ts)
{
    s->flags |= KW_TXN_F(STREAM_RESET);
    if (dir == 0 && !s->resp_final) {
        /* a client resetting streams it just opened (CVE-2023-44487):
         * reported up to a rate, then counted only */
        c->ctr.rapid_resets++;
        int64_t sec = ts / 1000000;
        if (sec != c->reset_sec) {
            c->reset_sec = sec;
            c->resets_in_sec = 0;
        }
        if (++c->resets_in_sec > c->lim.max_resets_per_sec) {
            c->ctr.rapid_resets_dropped++;
            s->id = 0;
            c->nopen--;
            return;
        }
    }
    if (!s->resp_end && s->resp_final) s->ts_resp_end = ts;
    h2i_stream_report(c, s, 0, ts);
}

/* ---- report ------------------------------------------------------------ */

static struct kw_slice ref(const struct h2_stream *s, struct h2_ref r)
{
    return (struct kw_slice){s->buf ? s->buf + r.off : "", r.len};
}

static const struct kw_hdr *request_hdrs(struct h2_conn *c, const struct h2_stream *s, size_t *n)
{
    uint32_t need = s->nfields + 1;
    if (need > c->hdrs_cap) {
        struct kw_hdr *h = h2i_alloc(c, c->hdrs, c->hdrs_cap * sizeof *h, (size_t)need * sizeof *h);
        if (!h) {
            *n = 0;
            return NULL;
        }
        c->hdrs = h;
        c->hdrs_cap = need;
    }
    size_t k = 0;
    if (s->authority.len)
        c->hdrs[k++] = (struct kw_hdr){KW_SLICE_LIT("host"), ref(s, s->authority)};
    for (uint32_t i = 0; i < s->nfields; i++)
        c->hdrs[k++] = (struct kw_hdr){ref(s, s->fields[i].name), ref(s, s->fields[i].value)};
    *n = k;
    return c->hdrs;
}

void h2i_stream_report(struct h2_conn *c, struct h2_stream *s, uint32_t flags, kw_ts ts)
{
    struct h1_msg_view q = {0}, r = {0};
    struct h2_txn_view v = {.stream_id = s->id,
                            .grpc = s->grpc,
                            .grpc_status = s->has_grpc_status ? s->grpc_status : -1,
                            .grpc_message = {s->grpc_msg, s->grpc_msg_len}};
    bool connect = s->method.len == 7 && memcmp(s->buf + s->method.off, "CONNECT", 7) == 0;
    if (s->req_seen && !s->req_lost && s->method.len && (s->path.len || connect)) {
        q.method = ref(s, s->method);
        q.target = connect ? ref(s, s->authority) : ref(s, s->path);
        q.version = KW_SLICE_LIT("HTTP/2");
        q.hdrs = request_hdrs(c, s, &q.n_hdrs);
        q.body_len = s->req_body;
        q.ts_start = s->ts_req;
        q.ts_end = s->req_end ? s->ts_req_end : ts;
        q.flags = s->flags | flags;
        v.req = &q;
    } else if (s->req_seen) {
        flags |= KW_TXN_F(GAP_REQUEST);
    }
    if (s->resp_final && !s->resp_lost) {
        r.version = KW_SLICE_LIT("HTTP/2");
        r.status = s->status;
        r.body_len = s->resp_body;
        r.ts_start = s->ts_resp;
        r.ts_end = s->resp_end ? s->ts_resp_end : ts;
        r.flags = s->flags | flags;
        if (!s->resp_end && !(s->flags & KW_TXN_F(STREAM_RESET)))
            r.flags |= KW_TXN_F(BODY_TRUNCATED);
        h1_echo_end(&s->echo, &r);
        v.resp = &r;
    }
    s->id = 0; /* the buffers stay until the next stream opens: after the callback */
    c->nopen--;
    if (!v.req && !v.resp) return; /* nothing known of it: a transaction would be invented */
    if (v.grpc) c->ctr.grpc_calls++;
    c->ctr.transactions++;
    c->cb(c->user, &v);
    h1_echo_release(&s->echo); /* streams are many: no buffer kept per slot */
}
