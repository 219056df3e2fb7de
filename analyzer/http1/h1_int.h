/* h1_int: internals shared by h1.c (connection state machine, FIFO,
 * matching, gaps) and h1_head.c (start lines, header lines, head copies).
 * Not a contract: only analyzer/h1*.c include it. */
#ifndef KW_H1_INT_H
#define KW_H1_INT_H

#include <stdbool.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "h1.h"

/* First '\n' in p[i, n), or n. Inline and 16 bytes at a time: head lines
 * are 20..100 bytes, where a libc memchr call costs more than the scan. */
static inline size_t h1i_find_lf(const uint8_t *p, size_t i, size_t n)
{
#if defined(__SSE2__)
    const __m128i lf = _mm_set1_epi8('\n');
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf));
        if (m) return i + (size_t)__builtin_ctz(m);
    }
#endif
    while (i < n && p[i] != '\n')
        i++;
    return i;
}

/* The line at p[s, n): returns its '\n' (or n when incomplete) and sets
 * *colon to the first ':' before it (or to that same end). One scan finds
 * both: a header name is almost always inside the first 16 bytes. */
static inline size_t h1i_find_lf_colon(const uint8_t *p, size_t s, size_t n, size_t *colon)
{
    size_t i = s, c = SIZE_MAX;
#if defined(__SSE2__)
    const __m128i lf = _mm_set1_epi8('\n'), co = _mm_set1_epi8(':');
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        unsigned ml = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf));
        if (c == SIZE_MAX) {
            unsigned mc = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, co));
            if (ml) mc &= ml - 1; /* colons before the line end only */
            if (mc) c = i + (size_t)__builtin_ctz(mc);
        }
        if (ml) {
            i += (size_t)__builtin_ctz(ml);
            *colon = c == SIZE_MAX ? i : c;
            return i;
        }
    }
#endif
    for (; i < n && p[i] != '\n'; i++)
        if (p[i] == ':' && c == SIZE_MAX) c = i;
    *colon = c == SIZE_MAX ? i : c;
    return i;
}

enum h1_chk { H1_CHK_INVALID, H1_CHK_NEED, H1_CHK_VALID };

/* A head as parsed in place (slices into the caller's buffer). */
struct h1_head {
    struct h1_msg_view v;
    size_t line_len;     /* start line incl. its line end */
    size_t head_len;     /* whole head incl. the blank line */
    uint64_t cl, cl_max; /* cl_max: largest of differing Content-Length values */
    bool has_cl, cl_bad, has_te, te_chunked, expect100, upgrade, hdr_overflow;
    bool http09, not_http1;
    bool folded; /* an obs-fold was seen: values need unfolding when copied */
    const uint8_t
        *base; /* first byte of the head when complete in one buffer (for h1i_copy_flat) */
};

/* Is p[0..n) (possibly incomplete) a request line (dir 0) or status line
 * (dir 1)? strict: the shapes a resync accepts (upper-case method of
 * 3..20 chars, HTTP/1.0 or 1.1). VALID fills h->v start-line slices,
 * h->line_len, http09, not_http1. */
enum h1_chk h1i_start_line(const uint8_t *p, size_t n, int dir, bool strict, size_t limit,
                           struct h1_head *h);

/* Find the blank line ending a head, resuming at *scan (a line start after
 * the start line). Returns the head length, or 0 (need more; *scan is the
 * start of the incomplete line). */
size_t h1i_find_head_end(const uint8_t *p, size_t n, size_t *scan);

/* Parse header lines in p[from, end) up to the blank line ending the head
 * and return the head length (one pass: finding the end and parsing are
 * the same scan). No blank line before `end`: return 0 and set *scan (if
 * not NULL) to the start of the incomplete line; then, only if partial (a
 * salvage, or a head over the limit), the complete lines are kept as the
 * head. Fills h->v.hdrs (into `hdrs`), n_hdrs, framing fields, folded and
 * PARSE_ERROR flags. */
size_t h1i_parse_headers(const uint8_t *p, size_t from, size_t end, bool partial,
                         struct kw_hdr *hdrs, uint32_t max_hdrs, struct h1_head *h, size_t *scan);

/* Bytes needed to copy a head (aligned header array first). */
size_t h1i_head_size(const struct h1_msg_view *src);
/* Copy a head into dst (8-byte aligned, cap bytes), unfolding obs-fold
 * (only looked for when `folded`); what does not fit is cut (target first
 * shortened, then headers dropped from the end) and *trunc set. Returns
 * bytes used. */
size_t h1i_copy_head(uint8_t *dst, size_t cap, const struct h1_msg_view *src, bool folded,
                     struct h1_msg_view *out, bool *trunc);

/* Bytes h1i_copy_flat needs for a complete, unfolded head (its bytes as
 * sent behind the header array), or 0 when it cannot be copied so. */
size_t h1i_flat_size(const struct h1_head *h);
/* Copy the head's bytes in one piece and point *out into the copy. */
size_t h1i_copy_flat(uint8_t *dst, const struct h1_head *h, struct h1_msg_view *out);

/* ---- connection state (h1.c, h1_fifo.c) ---- */

enum h1_st {
    ST_IDLE,         /* expecting a start line (head possibly partial) */
    ST_BODY_CL,      /* Content-Length body */
    ST_CHUNK_SIZE,   /* chunk-size [ext] CRLF */
    ST_CHUNK_DATA,   /* chunk payload */
    ST_CHUNK_CRLF,   /* CRLF after the payload */
    ST_TRAILERS,     /* trailer section after the last chunk */
    ST_BODY_CLOSE,   /* response body delimited by the connection close */
    ST_RESYNC,       /* after loss or a framing error: scan for a start line */
    ST_CONNECT_WAIT, /* client side after CONNECT: skip until the answer decides */
    ST_TUNNEL,       /* CONNECT 2xx, 101, HTTP/2: bytes counted, not parsed */
};

enum { PEND_REQ = 1, PEND_LOST = 2 };
#define CHUNK_LINE_MAX 1024
#define CONNECT_HOLD 2048 /* client bytes held after CONNECT until the answer (h1.c) */

struct h1_pend {
    struct h1_msg_view v; /* slices point into the ring */
    uint32_t off, size;   /* ring allocation; size 0: none */
    uint8_t kind;
    bool is_head, is_connect, http09;
};

struct h1_dir {
    uint8_t st;
    bool line_start;    /* RESYNC: offset 0 of the next bytes starts a line */
    bool in_head;       /* IDLE: a head has begun (ts_start valid) */
    bool resync_mark;   /* the next message found gets RESYNC */
    bool peek_bodyless; /* response without request: its body may be absent (HEAD) */
    bool has_cur;       /* dir 0: `seq` is the request whose body is arriving */
    bool wait09;        /* dir 0: the head is a line without version and nothing yet after it */
    uint32_t skip;      /* bytes the caller still holds that were already parsed */
    uint64_t consumed;  /* stream offset of the next byte offered */
    uint64_t ambig_end; /* dir 0: end of a region whose framing is ambiguous (differing CL) */
    uint32_t scan_off, salv_len, trailer_bytes;
    uint64_t remain;
    uint64_t seq;
    kw_ts ts_start;
    kw_ts ts_last; /* time of the last bytes fed (not of gaps): dir 1 ends a response cut by a
                      hole no later than this */
    uint8_t *salv;
    uint32_t salv_cap;
};

struct h1_conn {
    struct h1_limits lim;
    struct h1_budget *budget;                   /* may be NULL */
    size_t mem;                                 /* bytes held (struct and buffers) */
    uint32_t pcap, rcap, rbuf_cap, scratch_cap; /* current sizes: entries, bytes, bytes, headers */
    h1_txn_cb cb;
    void *user;
    struct h1_counters ctr;
    struct h1_dir d[2];
    struct h1_pend *pend; /* FIFO of max_pending entries */
    uint32_t ph, pn;
    uint32_t nreq;    /* PEND_REQ entries in the FIFO */
    uint32_t unpiped; /* PEND_REQ entries not (yet) flagged PIPELINED */
    uint64_t pseq;    /* sequence number of the FIFO head */
    uint8_t *ring;
    uint32_t rhead, rtail, rlive;
    uint8_t *rbuf; /* response head copy */
    struct h1_msg_view resp;
    bool resp_active, resp_matched; /* matched: its request is the FIFO head */
    bool resp_borrowed;             /* resp slices point into the bytes of this h1_feed call: copied
                                       into rbuf before it returns, if the response is not done */
    bool server_seen;
    bool handoff; /* h1_handoff: the bytes after the tunnel point are the caller's */
    bool gap_now; /* h1_gap(dir 1) running: a response it completes ended inside the hole */
    struct kw_hdr *scratch;
    uint32_t skip_resp; /* next responses answer evicted requests */
    uint32_t lost_resp; /* a response was lost at lost_resp_ts */
    /* the start of the current response's body, for echo.h (h1_echo.c;
     * its buffer kept for the next answer, freed with the connection) */
    struct h1_echo echo;
    struct h1_echo_mem echo_mem;
    kw_ts lost_resp_ts;
};

/* Buffers are charged to c->mem and the budget. must: never refused by
 * the budget (the base buffers). NULL: refused (counted) or no memory. */
void *h1i_mem_alloc(struct h1_conn *c, size_t n, bool must);
void h1i_mem_free(struct h1_conn *c, void *p, size_t n);
/* Grow a buffer to at least `want` bytes (doubling, at least `min`, at
 * most `max`), keeping its contents. False: it stays as it is. */
bool h1i_grow(struct h1_conn *c, uint8_t **buf, uint32_t *cap, size_t want, size_t min, size_t max);

/* Double the header array (up to max_headers). False: it stays. */
bool h1i_more_headers(struct h1_conn *c);

struct h1_pend *h1i_pend_at(struct h1_conn *c, uint32_t i);
void h1i_push_lost(struct h1_conn *c, kw_ts ts);
uint64_t h1i_push_request(struct h1_conn *c, const struct h1_head *h, kw_ts t0, kw_ts t1,
                          uint32_t flags);
struct h1_pend *h1i_match_response(struct h1_conn *c, kw_ts ts, bool resync);
void h1i_tunnel_all(struct h1_conn *c);
void h1i_resp_done(struct h1_conn *c, kw_ts ts);
/* n body bytes of direction dir; p: the bytes, NULL for a hole. */
void h1i_msg_body(struct h1_conn *c, int dir, const uint8_t *p, uint64_t n);
void h1i_msg_flag(struct h1_conn *c, int dir, uint32_t f);


void h1i_msg_done(struct h1_conn *c, int dir, kw_ts ts);
void h1i_enter_resync(struct h1_conn *c, int dir, kw_ts ts, bool lost);
void h1i_pop_lone(struct h1_conn *c, uint32_t flags);

#endif
