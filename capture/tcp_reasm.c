/* tcp_reasm: per-direction TCP reassembly (see tcp_reasm.h for the model).
 *
 * Policy, in one place:
 * - In-order bytes go straight from the packet to the consumer (zero copy);
 *   only what the consumer leaves is copied into the stream's buffer.
 * - Out-of-order bytes are held as a sorted list of non-overlapping
 *   segments. A new segment only fills what is not already held: bytes
 *   already received win (first-wins), and a disagreement is counted in
 *   tcp_overlap_diff. Why first-wins: for in-order data it is what Linux
 *   and BSD receivers accepted (they drop data they already queued), it is
 *   deterministic whatever the later packets say, and an attacker cannot
 *   rewrite bytes an IDS already saw (Ptacek & Newsham 1998; Suricata's
 *   stream policies are the reference, its "first" policy is this one).
 * - Bytes before the next expected offset are retransmissions; when their
 *   original is still in the unconsumed buffer they are compared too. */
#include "tcp_reasm.h"

#include <stdlib.h>
#include <string.h>

#include "flow.h"

/* Size classes of held segments: header + payload. A payload larger than
 * the biggest class is held as several segments. */
#define SEG_CLASSES 4
static const uint32_t seg_class_payload[SEG_CLASSES] = {256, 2048, 9216, 65536};
#define SEG_MAX_PAYLOAD 65536u
#define SLAB_BYTES (256u * 1024u)

struct tcp_seg {
    struct tcp_seg *next;
    uint64_t start; /* stream offset of data[0] */
    kw_ts ts;       /* arrival (packet time) */
    uint32_t len;
    uint8_t cls;
    uint8_t data[];
};

struct slab {
    struct slab *next;
};

struct tcp_reasm {
    struct tcp_reasm_config cfg;
    struct flow_counters *cnt;
    uint64_t mem_used;
    struct tcp_seg *free_list[SEG_CLASSES];
    struct slab *slabs; /* every chunk, for destroy */
};

static size_t seg_obj_size(unsigned cls)
{
    size_t n = sizeof(struct tcp_seg) + seg_class_payload[cls];
    return (n + 15) & ~(size_t)15;
}

enum kw_err tcp_reasm_new(const struct tcp_reasm_config *cfg, struct flow_counters *cnt,
                          struct tcp_reasm **out)
{
    if (!cfg || !cnt || !out || cfg->stream_buf_max == 0 || cfg->ooo_max_segments == 0)
        return KW_E_INVAL;
    struct tcp_reasm *r = calloc(1, sizeof(*r));
    if (!r) return KW_E_NOMEM;
    r->cfg = *cfg;
    r->cnt = cnt;
    *out = r;
    return KW_E_OK;
}

void tcp_reasm_destroy(struct tcp_reasm *r)
{
    if (!r) return;
    struct slab *s = r->slabs;
    while (s) {
        struct slab *n = s->next;
        free(s);
        s = n;
    }
    free(r);
}

uint64_t tcp_reasm_mem_used(const struct tcp_reasm *r)
{
    return r->mem_used;
}

/* Carves a new chunk of one class into its free list. */
static bool slab_grow(struct tcp_reasm *r, unsigned cls)
{
    size_t obj = seg_obj_size(cls);
    size_t n = SLAB_BYTES / obj;
    if (n < 4) n = 4;
    size_t hdr = (sizeof(struct slab) + 15) & ~(size_t)15;
    struct slab *sl = malloc(hdr + n * obj);
    if (!sl) return false;
    sl->next = r->slabs;
    r->slabs = sl;
    uint8_t *p = (uint8_t *)sl + hdr;
    for (size_t i = 0; i < n; i++) {
        struct tcp_seg *g = (struct tcp_seg *)(p + i * obj);
        g->next = r->free_list[cls];
        r->free_list[cls] = g;
    }
    return true;
}

static struct tcp_seg *seg_alloc(struct tcp_reasm *r, uint32_t len)
{
    unsigned cls = 0;
    while (seg_class_payload[cls] < len)
        cls++;
    size_t obj = seg_obj_size(cls);
    if (r->mem_used + obj > r->cfg.memcap) return NULL;
    if (!r->free_list[cls] && !slab_grow(r, cls)) return NULL;
    struct tcp_seg *g = r->free_list[cls];
    r->free_list[cls] = g->next;
    r->mem_used += obj;
    g->cls = (uint8_t)cls;
    g->next = NULL;
    return g;
}

static void seg_free(struct tcp_reasm *r, struct tcp_seg *g)
{
    r->mem_used -= seg_obj_size(g->cls);
    g->next = r->free_list[g->cls];
    r->free_list[g->cls] = g;
}

void tcp_stream_init(struct tcp_stream *s)
{
    memset(s, 0, sizeof(*s));
}

void tcp_stream_set_base(struct tcp_stream *s, uint32_t seq)
{
    if (s->have_base) return;
    s->base_seq = seq;
    s->have_base = true;
}

/* Offset of `seq` relative to the stream start, taking the sequence number
 * nearest to the next expected one (RFC 1982 serial arithmetic: within
 * 2^31 either side). Negative: before the stream started. */
static int64_t seq_to_off(const struct tcp_stream *s, uint32_t seq)
{
    uint32_t ref = s->base_seq + (uint32_t)s->next;
    return (int64_t)s->next + (int32_t)(seq - ref);
}

/* The buffer held the stream's bytes, request heads and their secrets
 * among them: wiped before it goes back to the allocator (issue 15). */
static void buf_release(struct tcp_reasm *r, struct tcp_stream *s)
{
    r->mem_used -= s->buf_cap;
    explicit_bzero(s->buf, s->buf_cap);
    free(s->buf);
    s->buf = NULL;
    s->buf_len = s->buf_cap = 0;
}

/* Capacity for `need` bytes, doubling, charged to the memcap. */
static bool buf_reserve(struct tcp_reasm *r, struct tcp_stream *s, uint32_t need)
{
    if (need <= s->buf_cap) return true;
    uint32_t cap = s->buf_cap ? s->buf_cap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > r->cfg.stream_buf_max)
        cap = r->cfg.stream_buf_max > need ? r->cfg.stream_buf_max : need;
    if (r->mem_used - s->buf_cap + cap > r->cfg.memcap) return false;
    uint8_t *nb = realloc(s->buf, cap);
    if (!nb) return false;
    r->mem_used += cap - s->buf_cap;
    s->buf = nb;
    s->buf_cap = cap;
    return true;
}

static void count_gap(struct tcp_reasm *r, uint64_t n)
{
    r->cnt->tcp_gaps++;
    r->cnt->tcp_gap_bytes += n;
}

/* Drops bytes the consumer was offered but kept past a limit: they become
 * a gap in front of whatever comes next. */
static void drop_as_gap(struct tcp_reasm *r, const struct tcp_sink *k, uint64_t n, kw_ts ts)
{
    count_gap(r, n);
    k->on_gap(k->ctx, n, ts);
}

static size_t offer(const struct tcp_sink *k, const uint8_t *p, size_t len, kw_ts ts)
{
    size_t c = k->on_data(k->ctx, p, len, ts);
    return c > len ? len : c;
}

static void buf_consume(struct tcp_stream *s, size_t c)
{
    if (c == 0) return;
    s->buf_len -= (uint32_t)c;
    if (s->buf_len) memmove(s->buf, s->buf + c, s->buf_len);
}

/* Keeps bytes the consumer did not take (buffer empty before). */
static void buf_store(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k,
                      const uint8_t *p, size_t len, kw_ts ts)
{
    if (len > r->cfg.stream_buf_max) {
        size_t drop = len - r->cfg.stream_buf_max;
        r->cnt->stream_limit_hits++;
        r->cnt->buffer_limit_hits++;
        drop_as_gap(r, k, drop, ts);
        p += drop;
        len -= drop;
    }
    if (!buf_reserve(r, s, (uint32_t)len)) {
        r->cnt->memcap_hits++;
        drop_as_gap(r, k, len, ts);
        return;
    }
    memcpy(s->buf, p, len);
    s->buf_len = (uint32_t)len;
}

/* Hands in-order bytes to the consumer; see the buffer contract in flow.h. */
static void deliver(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k,
                    const uint8_t *p, size_t len, kw_ts ts)
{
    r->cnt->tcp_bytes_delivered += len;
    s->next += len;
    while (len > 0) {
        if (s->buf_len == 0) {
            size_t c = offer(k, p, len, ts);
            if (c < len) buf_store(r, s, k, p + c, len - c, ts);
            return;
        }
        uint32_t room = r->cfg.stream_buf_max - s->buf_len;
        size_t take = len < room ? len : room;
        if (take == 0 || !buf_reserve(r, s, s->buf_len + (uint32_t)take)) {
            /* The consumer keeps a full buffer (or memory is short): the
             * oldest bytes, already offered, are dropped as a gap. */
            if (take == 0) {
                r->cnt->stream_limit_hits++;
                r->cnt->buffer_limit_hits++;
            } else {
                r->cnt->memcap_hits++;
            }
            drop_as_gap(r, k, s->buf_len, ts);
            s->buf_len = 0;
            continue;
        }
        memcpy(s->buf + s->buf_len, p, take);
        s->buf_len += (uint32_t)take;
        p += take;
        len -= take;
        buf_consume(s, offer(k, s->buf, s->buf_len, ts));
    }
    if (s->buf_len == 0 && s->buf_cap > 65536)
        buf_release(r, s); /* a big buffer is not kept for an idle stream */
}

/* Offers the unconsumed bytes one last time and releases them (before a
 * gap: bytes on both sides of a hole cannot be one contiguous run). */
static void buf_last_offer(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k,
                           kw_ts ts)
{
    if (s->buf_len == 0) return;
    size_t c = offer(k, s->buf, s->buf_len, ts);
    r->cnt->tcp_unconsumed_dropped += s->buf_len - c;
    s->buf_len = 0;
}

static void ooo_pop(struct tcp_reasm *r, struct tcp_stream *s)
{
    struct tcp_seg *g = s->ooo;
    s->ooo = g->next;
    if (!s->ooo) s->ooo_tail = NULL;
    s->ooo_count--;
    seg_free(r, g);
}

/* Earliest arrival among held segments: the age of the hole in front. */
static void hole_restart(struct tcp_stream *s)
{
    if (!s->ooo) return;
    kw_ts t = s->ooo->ts;
    for (struct tcp_seg *g = s->ooo->next; g; g = g->next)
        if (g->ts < t) t = g->ts;
    s->hole_since = t;
}

/* Delivers held segments that have become contiguous. */
static void ooo_drain(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k, kw_ts ts)
{
    bool moved = false;
    while (s->ooo && s->ooo->start <= s->next) {
        struct tcp_seg *g = s->ooo;
        uint64_t skip = s->next - g->start; /* 0 unless a gap ran past it */
        if (skip < g->len) deliver(r, s, k, g->data + skip, g->len - skip, ts);
        ooo_pop(r, s);
        moved = true;
    }
    if (moved) hole_restart(s);
}

/* Declares the bytes from next up to `to` a gap. */
static void gap_to(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k, uint64_t to,
                   kw_ts ts)
{
    if (to <= s->next) return;
    uint64_t n = to - s->next;
    buf_last_offer(r, s, k, ts);
    count_gap(r, n);
    s->next = to;
    k->on_gap(k->ctx, n, ts);
}

/* The hole in front of the first held segment will not fill: say so and
 * carry on from there. */
static void force_gap(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k, kw_ts ts)
{
    if (!s->ooo) return;
    gap_to(r, s, k, s->ooo->start, ts);
    ooo_drain(r, s, k, ts);
}

struct ins_result {
    bool new_bytes, diff, failed;
};

/* Holds [off, off+len) minus what is already held; compares the rest. */
static void ooo_insert(struct tcp_reasm *r, struct tcp_stream *s, uint64_t off, const uint8_t *p,
                       uint32_t len, kw_ts ts, struct ins_result *res)
{
    uint64_t cur = off, end = off + len;
    struct tcp_seg **link = &s->ooo;
    if (s->ooo_tail && off >= s->ooo_tail->start + s->ooo_tail->len)
        link = &s->ooo_tail->next; /* the common case: append */
    while (cur < end) {
        struct tcp_seg *g = *link;
        if (g && g->start + g->len <= cur) {
            link = &g->next;
            continue;
        }
        if (g && g->start <= cur) {
            uint64_t oe = end < g->start + g->len ? end : g->start + g->len;
            if (memcmp(g->data + (cur - g->start), p + (cur - off), oe - cur) != 0)
                res->diff = true;
            cur = oe;
            link = &g->next;
            continue;
        }
        uint64_t ue = g && g->start < end ? g->start : end;
        while (cur < ue) {
            if (s->ooo_count >= r->cfg.ooo_max_segments) {
                res->failed = true;
                r->cnt->stream_limit_hits++;
                r->cnt->ooo_segment_hits++;
                return;
            }
            uint32_t n = ue - cur > SEG_MAX_PAYLOAD ? SEG_MAX_PAYLOAD : (uint32_t)(ue - cur);
            struct tcp_seg *ns = seg_alloc(r, n);
            if (!ns) {
                res->failed = true;
                r->cnt->memcap_hits++;
                return;
            }
            if (!s->ooo) s->hole_since = ts;
            ns->start = cur;
            ns->len = n;
            ns->ts = ts;
            memcpy(ns->data, p + (cur - off), n);
            ns->next = *link;
            *link = ns;
            if (!ns->next) s->ooo_tail = ns;
            link = &ns->next;
            s->ooo_count++;
            cur += n;
            res->new_bytes = true;
        }
    }
}

/* Compares retransmitted bytes with the unconsumed buffer where it still
 * holds the original; true if they differ. */
static bool old_bytes_differ(const struct tcp_stream *s, int64_t off, const uint8_t *p,
                             uint64_t len)
{
    int64_t bstart = (int64_t)(s->next - s->buf_len);
    int64_t a = off > bstart ? off : bstart;
    int64_t e = off + (int64_t)len;
    if (e <= a) return false;
    return memcmp(s->buf + (a - bstart), p + (a - off), (size_t)(e - a)) != 0;
}

static void enforce_window(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k,
                           kw_ts ts)
{
    while (s->ooo && s->ooo_tail->start + s->ooo_tail->len - s->next > r->cfg.ooo_window) {
        r->cnt->ooo_window_gaps++;
        force_gap(r, s, k, ts);
    }
}

/* The new part of a segment: [off, off+len) with off >= next. */
static void segment_new_part(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k,
                             uint64_t off, const uint8_t *p, uint32_t len, kw_ts ts,
                             struct ins_result *res, bool may_retry)
{
    if (off == s->next) {
        /* Straight to the consumer up to the first held byte. */
        uint64_t lim = s->ooo && s->ooo->start < off + len ? s->ooo->start : off + len;
        uint32_t direct = (uint32_t)(lim - off);
        if (direct) {
            res->new_bytes = true;
            deliver(r, s, k, p, direct, ts);
            p += direct;
            len -= direct;
            off += direct;
        }
    }
    if (len) {
        ooo_insert(r, s, off, p, len, ts, res);
        if (res->failed && may_retry) {
            /* Out of held slots or memory: the hole gives way rather than
             * newer data (a stream never stalls), then one more try. */
            res->failed = false;
            force_gap(r, s, k, ts);
            if (!s->ooo) gap_to(r, s, k, off, ts);
            if (off + len > s->next) {
                uint32_t skip = off < s->next ? (uint32_t)(s->next - off) : 0;
                segment_new_part(r, s, k, off + skip, p + skip, len - skip, ts, res, false);
                return;
            }
        }
    }
    ooo_drain(r, s, k, ts);
    enforce_window(r, s, k, ts);
}

void tcp_stream_segment(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k,
                        uint32_t seq, const uint8_t *p, uint32_t len, kw_ts ts)
{
    if (len == 0) return;
    r->cnt->tcp_segments++;
    if (!s->have_base) tcp_stream_set_base(s, seq);
    int64_t off = seq_to_off(s, seq);
    struct ins_result res = {0};
    bool was_next = off == (int64_t)s->next;
    if (off + (int64_t)len <= 0) {
        r->cnt->tcp_before_start++;
        return;
    }
    if (off < (int64_t)s->next) {
        /* Starts with bytes already delivered (retransmission). */
        uint64_t old = s->next - (uint64_t)(off < 0 ? 0 : off);
        if (off < 0) {
            r->cnt->tcp_before_start++;
            p += -off;
            len -= (uint32_t)-off;
            off = 0;
        }
        if (old > len) old = len;
        res.diff = old_bytes_differ(s, off, p, old);
        was_next = old < len;
        p += old;
        len -= (uint32_t)old;
        off += (int64_t)old;
    }
    if (len) segment_new_part(r, s, k, (uint64_t)off, p, len, ts, &res, true);
    if (!res.new_bytes)
        r->cnt->tcp_retransmitted++;
    else if (was_next)
        r->cnt->tcp_in_order++;
    else
        r->cnt->tcp_out_of_order++;
    if (res.diff) r->cnt->tcp_overlap_diff++;
    tcp_stream_check_timeout(r, s, k, ts);
}

void tcp_stream_check_timeout(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k,
                              kw_ts now)
{
    while (s->ooo && now - s->hole_since >= r->cfg.gap_timeout)
        force_gap(r, s, k, now);
}

void tcp_stream_acked(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k,
                      uint32_t ack, kw_ts now)
{
    while (s->ooo && s->have_base) {
        /* offset of the acknowledged edge, by serial arithmetic against
         * the next byte we expect (RFC 1982: within 2^31 of it) */
        int32_t ahead = (int32_t)(ack - (s->base_seq + (uint32_t)s->next));
        if (ahead <= 0 || s->next + (uint64_t)ahead < s->ooo->start) return;
        r->cnt->tcp_gaps_acked++;
        force_gap(r, s, k, now);
    }
}

void tcp_stream_close_holes(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k,
                            kw_ts now)
{
    while (s->ooo)
        force_gap(r, s, k, now);
}

void tcp_stream_flush(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k,
                      kw_ts now)
{
    tcp_stream_close_holes(r, s, k, now);
    buf_last_offer(r, s, k, now);
    if (s->buf) buf_release(r, s);
}

void tcp_stream_free(struct tcp_reasm *r, struct tcp_stream *s)
{
    while (s->ooo)
        ooo_pop(r, s);
    if (s->buf) buf_release(r, s);
}
