/* h1: the per-connection HTTP/1.x state machine: one explicit state per
 * direction, message length per RFC 9112 §6.3, a FIFO of pending requests
 * matched in order to responses, and recovery after loss.
 *
 * The one thing to know: a gap never stops the connection. A gap inside a
 * body of known length only shortens it; any other gap salvages what it can
 * of a partial head, then switches that direction to RESYNC, which scans
 * for the next plausible start line. Client-side loss leaves a LOST marker
 * in the request FIFO and server-side loss a count of lost responses; the
 * matcher resolves both with packet time (docs/http.md, "matching"). */
#include "h1_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- heads -------------------------------------------------------------- */

/* Header lines into the connection's header array, grown (up to
 * max_headers) when a head has more lines than it holds. */
static size_t parse_hdrs(struct h1_conn *c, const uint8_t *p, size_t from, size_t end, bool partial,
                         struct h1_head *h, size_t *scan)
{
    uint32_t flags0 = h->v.flags; /* the header fields are zero before the parse */
    for (;;) {
        size_t r = h1i_parse_headers(p, from, end, partial, c->scratch, c->scratch_cap, h, scan);
        if (!h->hdr_overflow || (!r && !partial) || !h1i_more_headers(c)) return r;
        h->v.flags = flags0;
        h->v.n_hdrs = 0;
        h->cl = h->cl_max = 0;
        h->has_cl = h->cl_bad = h->has_te = h->te_chunked = h->expect100 = h->upgrade = false;
        h->hdr_overflow = h->folded = false;
    }
}

/* Copy the response head into rbuf, grown to fit (up to resp_arena_bytes;
 * less, and the copy is cut, when the budget refuses). */
static void resp_keep(struct h1_conn *c, const struct h1_msg_view *src, bool folded, bool *trunc)
{
    size_t need = h1i_head_size(src);
    if (need > c->rbuf_cap)
        (void)h1i_grow(c, &c->rbuf, &c->rbuf_cap, need, 256, c->lim.resp_arena_bytes);
    if (c->rbuf_cap) {
        h1i_copy_head(c->rbuf, c->rbuf_cap, src, folded, &c->resp, trunc);
        return;
    }
    c->resp = *src;
    c->resp.method = c->resp.target = c->resp.version = c->resp.reason = (struct kw_slice){"", 0};
    c->resp.hdrs = NULL;
    c->resp.n_hdrs = 0;
    *trunc = true;
}

static void head_request(struct h1_conn *c, const struct h1_head *h, kw_ts ts)
{
    struct h1_dir *d = &c->d[0];
    uint32_t flags = d->resync_mark ? KW_TXN_F(RESYNC) : 0;
    uint8_t st = ST_IDLE;
    uint64_t remain = 0;
    d->resync_mark = false;
    if (h->http09) {
        flags |= KW_TXN_F(HTTP09);
        c->ctr.http09++;
    } else if (h->has_te) {
        /* RFC 9112 §6.3 rule 3/4: chunked wins over Content-Length (and the
         * pair is a smuggling sign); a request whose last coding is not
         * chunked cannot be framed. */
        if (h->has_cl || !h->te_chunked) flags |= KW_TXN_F(PARSE_ERROR);
        st = h->te_chunked ? ST_CHUNK_SIZE : ST_RESYNC;
    } else if (h->has_cl) {
        if (h->cl_bad) {
            /* rule 5: unrecoverable. Servers differ (first value, last
             * value, reject), so every start line within the largest
             * claimed body is a request some server may act on: reported,
             * their bodies not followed (see ambig_end). */
            flags |= KW_TXN_F(PARSE_ERROR);
            st = ST_RESYNC;
            uint64_t span = h->cl_max < (UINT64_C(1) << 20) ? h->cl_max : (UINT64_C(1) << 20);
            d->ambig_end = d->consumed + h->head_len + span;
        } else if (h->cl > 0) {
            st = ST_BODY_CL;
            remain = h->cl;
        }
    }
    bool ambiguous = st != ST_RESYNC && st != ST_IDLE && d->consumed < d->ambig_end;
    uint64_t seq = h1i_push_request(c, h, d->ts_start, ts, flags);
    d->has_cur = seq != UINT64_MAX;
    d->seq = seq;
    if (st == ST_RESYNC || ambiguous) {
        /* inside an ambiguous body: the head is reported, its own body
         * claim is not trusted; keep looking for start lines */
        h1i_msg_done(c, 0, ts);
        h1i_enter_resync(c, 0, ts, !ambiguous);
        return;
    }
    d->st = st;
    d->remain = remain;
    if (st == ST_IDLE) h1i_msg_done(c, 0, ts);
}

static void head_response(struct h1_conn *c, const struct h1_head *h, kw_ts ts)
{
    struct h1_dir *d = &c->d[1];
    int status = h->v.status;
    if (status >= 100 && status < 200 && status != 101) {
        c->ctr.interim_responses++; /* 100-continue, 102, 103: not the answer */
        return;
    }
    uint32_t flags = d->resync_mark ? KW_TXN_F(RESYNC) : 0;
    d->resync_mark = false;
    struct h1_pend *req = h1i_match_response(c, d->ts_start, flags != 0);
    bool trunc = false;
    c->resp_borrowed = !h->folded && h1i_head_size(&h->v) <= c->lim.resp_arena_bytes;
    if (c->resp_borrowed) {
        /* most responses end in the bytes that carried their head: the
         * head is copied only if it must outlive this h1_feed call */
        c->resp = h->v;
    } else {
        resp_keep(c, &h->v, h->folded, &trunc);
    }
    if (trunc) {
        flags |= KW_TXN_F(TRUNCATED_FIELD);
        c->ctr.arena_truncations++;
        if (h1i_head_size(&h->v) > c->lim.resp_arena_bytes) c->ctr.resp_arena_hits++;
    }
    c->resp.flags = h->v.flags | flags;
    c->resp.ts_start = d->ts_start;
    c->resp.body_len = 0;
    c->resp.body_head = NULL;
    c->resp.body_head_len = 0;
    h1_echo_begin(&c->echo, &c->echo_mem,
                  req && !req->is_head ? h1_echo_coding(&h->v) : ECHO_NONE,
                  req ? req->v.target : (struct kw_slice){"", 0});
    c->resp_active = true;
    c->resp_matched = req != NULL;
    c->ctr.responses++;
    d->peek_bodyless = req == NULL;
    if (status == 101 || (req && req->is_connect && status / 100 == 2)) {
        c->resp.flags |= status == 101 ? KW_TXN_F(UPGRADE) : KW_TXN_F(CONNECT);
        if (status == 101)
            c->ctr.upgrades++;
        else
            c->ctr.connects++;
        h1i_tunnel_all(c);
        h1i_resp_done(c, ts);
        return;
    }
    if (req && req->is_connect && c->d[0].st == ST_CONNECT_WAIT) {
        c->d[0].st = ST_IDLE; /* refused: the held bytes are the next request */
        c->d[0].line_start = true;
    }
    if ((req && req->is_head) || status == 204 || status == 304) {
        h1i_resp_done(c, ts); /* RFC 9112 §6.3 rule 1: never a body */
    } else if (h->has_te) {
        d->st = h->te_chunked ? ST_CHUNK_SIZE : ST_BODY_CLOSE; /* rule 4 */
        if (h->has_cl) c->resp.flags |= KW_TXN_F(PARSE_ERROR);
    } else if (h->has_cl && h->cl_bad) {
        c->resp.flags |= KW_TXN_F(PARSE_ERROR);
        h1i_resp_done(c, ts);
        h1i_enter_resync(c, 1, ts, false);
    } else if (h->has_cl) {
        d->st = h->cl ? ST_BODY_CL : ST_IDLE;
        d->remain = h->cl;
        if (!h->cl) h1i_resp_done(c, ts);
    } else {
        d->st = ST_BODY_CLOSE; /* rule 7 */
    }
}

/* Parse what a partial head held (start line and complete header lines)
 * after loss or at close; report it with `flag`. False: nothing usable. */
static bool salvage(struct h1_conn *c, int dir, kw_ts ts, uint32_t flag)
{
    struct h1_dir *d = &c->d[dir];
    struct h1_head h;
    uint32_t n = d->salv_len;
    d->salv_len = 0;
    d->in_head = false;
    if (!n || h1i_start_line(d->salv, n, dir, false, n, &h) != H1_CHK_VALID || h.not_http1)
        return false;
    parse_hdrs(c, d->salv, h.line_len, n, true, &h, NULL);
    h.v.flags |= flag;
    c->ctr.salvaged_heads++;
    if (dir == 0) {
        uint64_t seq =
            h1i_push_request(c, &h, d->ts_start, ts, d->resync_mark ? KW_TXN_F(RESYNC) : 0);
        d->resync_mark = false;
        d->has_cur = false;
        (void)seq;
        return true;
    }
    h.has_cl = h.has_te = false;
    head_response(c, &h, ts);
    if (c->resp_active) h1i_resp_done(c, ts);
    return true;
}

/* ---- steps of h1_feed: each consumes bytes, changes state, or sets *need */

static void save_salvage(struct h1_conn *c, struct h1_dir *d, const uint8_t *p, size_t n)
{
    if (n > c->lim.salvage_bytes) n = c->lim.salvage_bytes;
    if (n > d->salv_cap && !h1i_grow(c, &d->salv, &d->salv_cap, n, 256, c->lim.salvage_bytes))
        n = d->salv_cap; /* the budget refused: a shorter salvage */
    if (n > d->salv_len) {
        memcpy(d->salv + d->salv_len, p + d->salv_len, n - d->salv_len);
        d->salv_len = (uint32_t)n;
    }
}

static bool lit_prefix(const uint8_t *p, size_t n, const char *lit, bool *need)
{
    size_t l = strlen(lit), m = n < l ? n : l;
    if (memcmp(p, lit, m) != 0) return false;
    *need = m < l;
    return m == l;
}

/* An HTTP/0.9 request is answered by raw bytes up to the close. */
static bool http09_answer(struct h1_conn *c, const uint8_t *p, size_t n, kw_ts ts, bool *need)
{
    if (!c->pn || !h1i_pend_at(c, 0)->http09 || lit_prefix(p, n, "HTTP/", need) || *need)
        return false;
    memset(&c->resp, 0, sizeof(c->resp));
    h1_echo_begin(&c->echo, &c->echo_mem, ECHO_NONE, (struct kw_slice){"", 0});
    c->resp.flags = KW_TXN_F(HTTP09);
    c->resp.ts_start = ts;
    c->resp_active = c->resp_matched = true;
    c->d[1].st = ST_BODY_CLOSE;
    c->ctr.responses++;
    return true;
}

/* What follows a request line without version (HTTP/0.9 shape)? Servers
 * that answer such a line with a status line read the header lines after
 * it as HTTP/1.0 does, and those may carry the credential, so: 1 = header
 * lines (or a blank line) follow: parse a head; 2 = something else: the
 * line is the whole request; 0 = cannot tell yet. */
static int after_09(const uint8_t *p, size_t n)
{
    if (n == 0) return 0;
    if (p[0] == '\r' || p[0] == '\n') return 1;
    size_t i = 0;
    while (i < n && i < 64 && p[i] > 0x20 && p[i] < 0x7f && p[i] != ':')
        i++;
    if (i == n && i < 64) return 0;
    return i > 0 && i < n && p[i] == ':' ? 1 : 2;
}

/* The client sent a request line without version and nothing after it,
 * and now the server answers: the line was the whole request. Its bytes
 * are still held by the caller, so they are skipped when offered again. */
static void commit_09(struct h1_conn *c, kw_ts ts)
{
    struct h1_dir *d = &c->d[0];
    struct h1_head h;
    d->wait09 = false;
    if (!d->in_head || d->st != ST_IDLE ||
        h1i_start_line(d->salv, d->salv_len, 0, false, d->salv_len, &h) != H1_CHK_VALID ||
        !h.http09)
        return;
    d->in_head = false;
    d->salv_len = 0;
    d->skip = (uint32_t)h.line_len;
    head_request(c, &h, ts);
}

static size_t step_head(struct h1_conn *c, int dir, const uint8_t *p, size_t n, kw_ts ts,
                        bool *need)
{
    struct h1_dir *d = &c->d[dir];
    size_t limit = c->lim.max_header_bytes;
    if (!d->in_head) {
        size_t k = 0; /* RFC 9112 §2.2: empty lines before a start line */
        while (k < n && (p[k] == '\r' || p[k] == '\n'))
            k++;
        if (k) return k;
        d->in_head = true;
        d->ts_start = ts;
        d->scan_off = 0;
        d->salv_len = 0;
    }
    d->wait09 = false;
    if (dir == 1 && http09_answer(c, p, n, ts, need)) {
        d->in_head = false;
        return 0;
    }
    if (*need) return 0;
    struct h1_head h;
    enum h1_chk r = h1i_start_line(p, n, dir, false, limit, &h);
    if (r == H1_CHK_INVALID) {
        c->ctr.parse_errors++; /* junk or mid-stream pickup: find a start line */
        h1i_enter_resync(c, dir, ts, dir == 0);
        d->line_start = false;
        return 0;
    }
    if (r == H1_CHK_VALID && h.not_http1) {
        c->ctr.not_http1++;
        h1i_tunnel_all(c);
        return 0;
    }
    size_t end = 0;
    if (r == H1_CHK_VALID && h.http09) {
        int a = after_09(p + h.line_len, n - h.line_len);
        if (a == 0) {
            d->wait09 = dir == 0; /* decided by the next bytes, or by the answer */
            *need = true;
            save_salvage(c, d, p, n);
            return 0;
        }
        if (a == 2) end = h.line_len;
    }
    bool parsed = false;
    if (r == H1_CHK_VALID && !end) {
        /* First look: find the end and parse in one pass. A head split
         * across calls resumes the (cheaper) end search where it stopped
         * and is parsed once complete. */
        size_t m = n < limit ? n : limit, scan = h.line_len;
        if (d->scan_off <= h.line_len) {
            end = parse_hdrs(c, p, h.line_len, m, false, &h, &scan);
            parsed = true;
        } else {
            scan = d->scan_off;
            end = h1i_find_head_end(p, m, &scan);
        }
        d->scan_off = (uint32_t)scan;
    }
    if (!end) {
        if (r == H1_CHK_VALID && n >= limit) {
            /* head over the limit: keep what the limit holds, then resync */
            c->ctr.header_limit_hits++;
            (void)h1i_start_line(p, n, dir, false, limit, &h); /* drop the first look */
            parse_hdrs(c, p, h.line_len, limit, true, &h, NULL);
            h.v.flags |= KW_TXN_F(PARSE_ERROR);
            h.has_cl = h.has_te = false;
            d->in_head = false;
            if (dir == 0)
                head_request(c, &h, ts);
            else
                head_response(c, &h, ts);
            if (dir == 1 && c->resp_active) h1i_resp_done(c, ts);
            if (d->st != ST_TUNNEL) h1i_enter_resync(c, dir, ts, false);
            d->line_start = false;
            return limit;
        }
        *need = true;
        save_salvage(c, d, p, n);
        return 0;
    }
    if (end > h.line_len && !parsed) parse_hdrs(c, p, h.line_len, end, false, &h, NULL);
    if (h.hdr_overflow) {
        c->ctr.header_limit_hits++;
        c->ctr.header_count_hits++;
    }
    d->in_head = false;
    d->salv_len = 0;
    h.head_len = end;
    h.base = p;
    if (dir == 0)
        head_request(c, &h, ts);
    else
        head_response(c, &h, ts);
    return end;
}

static size_t step_known(struct h1_conn *c, int dir, const uint8_t *p, size_t n, kw_ts ts,
                         bool *need)
{
    struct h1_dir *d = &c->d[dir];
    if (d->peek_bodyless && c->resp.body_len == 0) {
        /* no request known: a status line right here means the body
         * announced by the head was never sent (answer to HEAD) */
        if (lit_prefix(p, n, "HTTP/1.", need)) {
            h1i_resp_done(c, ts);
            return 0;
        }
        if (*need) return 0;
        d->peek_bodyless = false;
    }
    uint64_t k = n < d->remain ? n : d->remain;
    h1i_msg_body(c, dir, p, k);
    d->remain -= k;
    if (d->remain == 0) {
        if (d->st == ST_BODY_CL)
            h1i_msg_done(c, dir, ts);
        else
            d->st = ST_CHUNK_CRLF;
    }
    return (size_t)k;
}

static void framing_error(struct h1_conn *c, int dir, kw_ts ts)
{
    h1i_msg_flag(c, dir, KW_TXN_F(PARSE_ERROR));
    h1i_msg_done(c, dir, ts);
    h1i_enter_resync(c, dir, ts, true);
}

static size_t step_chunk(struct h1_conn *c, int dir, const uint8_t *p, size_t n, kw_ts ts,
                         bool *need)
{
    struct h1_dir *d = &c->d[dir];
    if (d->st == ST_CHUNK_CRLF) {
        /* n >= 1 here; p[1] exists only when n >= 2 (issue 15: a lone
         * non-CR byte used to read one past the buffer) */
        size_t k = p[0] == '\n'   ? 1
                   : p[0] != '\r' ? SIZE_MAX
                   : n < 2        ? 0
                   : p[1] == '\n' ? 2
                                  : SIZE_MAX;
        if (k == SIZE_MAX) {
            framing_error(c, dir, ts);
            return 0;
        }
        *need = k == 0;
        if (k) d->st = ST_CHUNK_SIZE;
        return k;
    }
    const uint8_t *nl = memchr(p, '\n', n < CHUNK_LINE_MAX ? n : CHUNK_LINE_MAX);
    if (!nl) {
        if (n >= CHUNK_LINE_MAX)
            framing_error(c, dir, ts);
        else
            *need = true;
        return 0;
    }
    size_t i = 0, e = (size_t)(nl - p), digits = 0;
    uint64_t v = 0;
    for (; i < e; i++, digits++) {
        int x = (p[i] >= '0' && p[i] <= '9')                     ? p[i] - '0'
                : ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f') ? (p[i] | 0x20) - 'a' + 10
                                                                 : -1;
        if (x < 0 || v > (UINT64_C(1) << 56)) break;
        v = v * 16 + (uint64_t)x;
    }
    while (i < e && (p[i] == ' ' || p[i] == '\t'))
        i++;
    /* RFC 9112 §7.1.1: chunk-ext after ';' is ignored */
    if (digits == 0 || (i < e && p[i] != ';' && !(p[i] == '\r' && i + 1 == e))) {
        framing_error(c, dir, ts);
        return 0;
    }
    d->st = v ? ST_CHUNK_DATA : ST_TRAILERS;
    d->remain = v;
    d->trailer_bytes = 0;
    return e + 1;
}

static size_t step_trailers(struct h1_conn *c, int dir, const uint8_t *p, size_t n, kw_ts ts,
                            bool *need)
{
    struct h1_dir *d = &c->d[dir];
    size_t room = c->lim.max_header_bytes - d->trailer_bytes;
    const uint8_t *nl = memchr(p, '\n', n < room ? n : room);
    if (!nl) {
        if (n >= room) {
            c->ctr.header_limit_hits++;
            framing_error(c, dir, ts);
        } else {
            *need = true;
        }
        return 0;
    }
    size_t k = (size_t)(nl - p) + 1;
    if (k == 1 || (k == 2 && p[0] == '\r'))
        h1i_msg_done(c, dir, ts); /* RFC 9112 §7.1.2: trailers end with a blank line */
    else
        d->trailer_bytes += (uint32_t)k;
    return k;
}

static size_t step_close(struct h1_conn *c, const uint8_t *p, size_t n, kw_ts ts, bool *need)
{
    struct h1_dir *d = &c->d[1];
    if (d->peek_bodyless && c->resp.body_len == 0) {
        if (lit_prefix(p, n, "HTTP/1.", need)) {
            h1i_resp_done(c, ts);
            return 0;
        }
        if (*need) return 0;
        d->peek_bodyless = false;
    }
    h1i_msg_body(c, 1, p, n);
    return n;
}

/* Where a request line whose version starts at `ai` begins: walk back
 * over SP target SP METHOD. A body without a final newline glues the next
 * line to it ("...}GET /x HTTP/1.1"), so the method may end a longer run
 * of capitals: a known method at its end is preferred. */
static bool request_start(const uint8_t *p, size_t ai, size_t *start)
{
    static const char *known[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"};
    if (ai < 6 || p[ai - 1] != ' ') return false;
    size_t ts = ai - 1;
    while (ts > 0 && p[ts - 1] > 0x20 && p[ts - 1] < 0x7f)
        ts--;
    if (ts == ai - 1 || ts < 2 || p[ts - 1] != ' ') return false;
    size_t ms = ts - 1;
    while (ms > 0 && ts - 1 - ms < 20 &&
           ((p[ms - 1] >= 'A' && p[ms - 1] <= 'Z') || p[ms - 1] == '-' || p[ms - 1] == '_'))
        ms--;
    size_t ml = ts - 1 - ms;
    for (size_t k = 0; k < sizeof(known) / sizeof(known[0]) && ml > 3; k++) {
        size_t kl = strlen(known[k]);
        if (ml > kl && memcmp(p + ts - 1 - kl, known[k], kl) == 0) {
            ms = ts - 1 - kl;
            break;
        }
    }
    *start = ms;
    return ts - 1 - ms >= 3;
}

/* Look for the next plausible start line: anchored on "HTTP/1." (the
 * version of a request line, or the start of a status line), validated
 * strictly. Scanned bytes are dropped, except a tail that could still
 * become a start line when more bytes come. */
static size_t step_resync(struct h1_conn *c, int dir, const uint8_t *p, size_t n, bool *need)
{
    struct h1_dir *d = &c->d[dir];
    size_t limit = n < c->lim.resync_scan_max ? n : c->lim.resync_scan_max, i = 0, k;
    struct h1_head h;
    while (i < limit) {
        const uint8_t *a = memmem(p + i, n - i, "HTTP/1.", 7);
        if (!a) break;
        size_t ai = (size_t)(a - p), start = ai;
        if ((dir == 0 && !request_start(p, ai, &start)) || start > limit) {
            i = ai + 1;
            continue;
        }
        enum h1_chk r =
            h1i_start_line(p + start, n - start, dir, true, c->lim.max_header_bytes, &h);
        if (r == H1_CHK_VALID) {
            if (d->st == ST_RESYNC) {
                c->ctr.resyncs++;
                c->ctr.resync_bytes += start;
            }
            d->st = ST_IDLE;
            d->in_head = false;
            return start;
        }
        if (r == H1_CHK_NEED) {
            *need = start == 0;
            return start;
        }
        i = ai + 1;
    }
    size_t keep = dir == 0 ? 2048 : 8;
    k = n > keep ? n - keep : 0;
    if (k > limit) k = limit;
    *need = k == 0;
    if (d->st == ST_RESYNC) c->ctr.resync_bytes += k;
    return k;
}

/* Client bytes after a CONNECT head, before the answer (RFC 9110 §9.3.6):
 * after a 2xx they are tunnel data for the target (a client may send them
 * early), after anything else the proxy reads them as the next request.
 * So they are held (the caller keeps them) until the answer decides; only
 * beyond CONNECT_HOLD bytes without an answer is a request line looked
 * for, as after loss. */
static size_t step_connect_wait(struct h1_conn *c, const uint8_t *p, size_t n, bool *need)
{
    if (n <= CONNECT_HOLD) {
        *need = true;
        return 0;
    }
    return step_resync(c, 0, p, n, need);
}

size_t h1_feed(struct h1_conn *c, int dir, const uint8_t *p, size_t len, kw_ts ts)
{
    if (!c || dir < 0 || dir > 1 || !p) return len;
    struct h1_dir *d = &c->d[dir];
    size_t pos = 0;
    if (len) d->ts_last = ts;
    if (dir == 1 && len) {
        c->server_seen = true;
        if (c->d[0].wait09) commit_09(c, ts);
    }
    if (d->skip) {
        pos = len < d->skip ? len : d->skip;
        d->skip -= (uint32_t)pos;
        d->consumed += pos;
    }
    while (pos < len) {
        const uint8_t *q = p + pos;
        size_t n = len - pos, k = 0;
        bool need = false;
        uint8_t st = d->st;
        switch (st) {
        case ST_IDLE:
            k = step_head(c, dir, q, n, ts, &need);
            break;
        case ST_BODY_CL:
        case ST_CHUNK_DATA:
            k = step_known(c, dir, q, n, ts, &need);
            break;
        case ST_CHUNK_SIZE:
        case ST_CHUNK_CRLF:
            k = step_chunk(c, dir, q, n, ts, &need);
            break;
        case ST_TRAILERS:
            k = step_trailers(c, dir, q, n, ts, &need);
            break;
        case ST_BODY_CLOSE:
            k = step_close(c, q, n, ts, &need);
            break;
        case ST_RESYNC:
            k = step_resync(c, dir, q, n, &need);
            break;
        case ST_CONNECT_WAIT:
            k = step_connect_wait(c, q, n, &need);
            break;
        default: /* ST_TUNNEL */
            if (c->handoff) break; /* h1_handoff: not ours; k == 0 stops */
            c->ctr.tunnel_bytes += n;
            k = n;
            break;
        }
        pos += k;
        d->consumed += k;
        if (need || (k == 0 && d->st == st)) break;
        if ((st == ST_RESYNC || st == ST_CONNECT_WAIT) && d->st == st &&
            k == c->lim.resync_scan_max)
            break; /* budget for this call spent */
    }
    if (c->resp_borrowed) {
        /* the response continues in later bytes: keep its head */
        bool trunc = false;
        c->resp_borrowed = false;
        struct h1_msg_view v = c->resp;
        if (c->resp_active) resp_keep(c, &v, false, &trunc);
        if (trunc) {
            c->resp.flags |= KW_TXN_F(TRUNCATED_FIELD); /* only when the budget refused */
            c->ctr.arena_truncations++;
        }
    }
    return pos;
}

/* ---- loss, close, lifecycle --------------------------------------------- */

/* After loss that may have hidden message starts: resync, and remember for
 * matching (client: a LOST marker; server: one lost response, unless the
 * touched one was already reported). */
static void lost_after(struct h1_conn *c, int dir, kw_ts ts, bool reported)
{
    h1i_enter_resync(c, dir, ts, true);
    if (dir == 1 && !reported) {
        c->lost_resp = 1;
        c->lost_resp_ts = ts;
    }
}

static void gap_dir(struct h1_conn *c, int dir, uint64_t len, kw_ts ts)
{
    struct h1_dir *d = &c->d[dir];
    uint32_t gf = dir == 0 ? KW_TXN_F(GAP_REQUEST) : KW_TXN_F(GAP_RESPONSE);
    c->ctr.gaps++;
    c->ctr.gap_bytes += len;
    d->skip = 0; /* the caller dropped the bytes it held */
    d->consumed += len;
    d->wait09 = false;
    if (dir == 1) c->server_seen = true;
    switch (d->st) {
    case ST_TUNNEL:
        return;
    case ST_BODY_CLOSE: /* everything up to the close is body anyway */
        h1i_msg_body(c, dir, NULL, len);
        h1i_msg_flag(c, dir, gf);
        c->ctr.gaps_absorbed++;
        return;
    case ST_BODY_CL:
    case ST_CHUNK_DATA:
        h1i_msg_flag(c, dir, gf);
        if (len <= d->remain) {
            d->remain -= len;
            h1i_msg_body(c, dir, NULL, len);
            c->ctr.gaps_absorbed++;
            if (d->remain == 0 && d->st == ST_BODY_CL)
                h1i_msg_done(c, dir, ts);
            else if (d->remain == 0)
                d->st = ST_CHUNK_CRLF;
            return;
        }
        /* The hole goes on past the end of this body by more than a
         * CRLF (which some servers send after a body, RFC 9112 §2.2;
         * sv-http-gap-whole-body has one): the start of the next message
         * is lost too, so, on the server side, at least one more response
         * is gone (reported = false). A chunk's payload is followed by
         * more framing of the same message, so a hole past it says
         * nothing of the next one. */
        bool past_end = d->st == ST_BODY_CL && len - d->remain > 2;
        h1i_msg_body(c, dir, NULL, d->remain);
        h1i_msg_done(c, dir, ts);
        lost_after(c, dir, ts, !past_end);
        return;
    case ST_CHUNK_SIZE:
    case ST_CHUNK_CRLF:
    case ST_TRAILERS:
        h1i_msg_flag(c, dir, gf);
        h1i_msg_done(c, dir, ts);
        lost_after(c, dir, ts, true);
        return;
    case ST_IDLE: {
        bool saved = d->in_head && salvage(c, dir, ts, gf);
        d->in_head = false;
        if (d->st != ST_TUNNEL) lost_after(c, dir, ts, saved);
        return;
    }
    case ST_RESYNC:
        d->line_start = true;
        if (dir == 0) h1i_push_lost(c, ts);
        return;
    default: /* ST_CONNECT_WAIT */
        d->line_start = true;
        return;
    }
}

void h1_gap(struct h1_conn *c, int dir, uint64_t len, kw_ts ts)
{
    if (!c || dir < 0 || dir > 1) return;
    c->gap_now = dir == 1; /* a response completed here ended in the hole */
    gap_dir(c, dir, len, ts);
    c->gap_now = false;
}

static void close_dir(struct h1_conn *c, int dir, kw_ts ts)
{
    struct h1_dir *d = &c->d[dir];
    switch (d->st) {
    case ST_BODY_CLOSE:
        h1i_msg_done(c, dir, ts); /* RFC 9112 §6.3 rule 8: the close ends it */
        break;
    case ST_BODY_CL:
    case ST_CHUNK_SIZE:
    case ST_CHUNK_DATA:
    case ST_CHUNK_CRLF:
    case ST_TRAILERS:
        c->ctr.body_truncated++;
        h1i_msg_flag(c, dir, KW_TXN_F(BODY_TRUNCATED));
        h1i_msg_done(c, dir, ts);
        break;
    case ST_IDLE:
        if (d->wait09)
            commit_09(c, ts); /* a complete HTTP/0.9-shaped line, nothing truncated */
        else if (d->in_head)
            (void)salvage(c, dir, ts, KW_TXN_F(BODY_TRUNCATED));
        break;
    default:
        break;
    }
}

static void conn_reset(struct h1_conn *c)
{
    for (int i = 0; i < 2; i++) {
        uint8_t *salv = c->d[i].salv;
        uint32_t cap = c->d[i].salv_cap;
        memset(&c->d[i], 0, sizeof(c->d[i]));
        c->d[i].salv = salv;
        c->d[i].salv_cap = cap;
        c->d[i].st = ST_IDLE;
    }
    c->ph = c->pn = 0;
    c->rhead = c->rtail = c->rlive = 0;
    c->resp_active = c->resp_matched = c->server_seen = c->resp_borrowed = c->handoff = false;
    c->nreq = c->unpiped = 0;
    c->skip_resp = c->lost_resp = 0;
    h1_echo_begin(&c->echo, &c->echo_mem, ECHO_NONE, (struct kw_slice){"", 0}); /* zlib's state goes */
}

void h1_close(struct h1_conn *c, kw_ts ts)
{
    if (!c) return;
    close_dir(c, 0, ts);
    close_dir(c, 1, ts);
    if (c->resp_active) h1i_resp_done(c, ts);
    while (c->pn)
        h1i_pop_lone(c, 0);
    conn_reset(c);
}

void h1_handoff(struct h1_conn *c)
{
    c->handoff = true;
}

void h1_conn_reset(struct h1_conn *c, h1_txn_cb cb, void *user)
{
    conn_reset(c);
    memset(&c->ctr, 0, sizeof(c->ctr));
    c->cb = cb;
    c->user = user;
}
