/* tcp_reasm: reassembly of one direction of a TCP connection.
 *
 * A stream turns segments (in any order, duplicated, overlapping) into an
 * ordered byte stream for a consumer: contiguous bytes it may partly
 * consume (the rest is kept and offered again with the next bytes), or an
 * explicit gap of N bytes where data will never come. The one thing to
 * know: a stream never stalls behind a hole. A hole becomes a gap when the
 * data held past it spans more than ooo_window bytes, when it is older than
 * gap_timeout (packet time), when limits force it, or at flush (RST, flow
 * end). Overlaps with different bytes are resolved first-wins: bytes
 * already received (held or not yet consumed) are never rewritten.
 *
 * Positions are 64-bit offsets from the first byte of the stream (the byte
 * after the SYN, or the first byte seen when picked up midstream), mapped
 * from 32-bit sequence numbers with serial arithmetic (RFC 1982, RFC 9293
 * §3.4), so wrap-around at 2^32 is invisible to the consumer.
 *
 * Memory: held segments come from size-classed slabs grown in big chunks
 * (no malloc per packet); every held byte is charged to a global memcap
 * shared by all streams of one tcp_reasm context. Not thread-safe: one
 * context per worker. */
#ifndef KW_TCP_REASM_H
#define KW_TCP_REASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kw_err.h"
#include "kw_time.h"

struct flow_counters;
struct tcp_seg;

struct tcp_reasm_config {
    uint64_t memcap;           /* all held bytes (segments + unconsumed buffers) */
    uint32_t stream_buf_max;   /* unconsumed in-order bytes kept per direction */
    uint32_t ooo_window;       /* span held past a hole before it becomes a gap */
    uint32_t ooo_max_segments; /* held segments per direction */
    kw_ts gap_timeout;         /* age of a hole (packet time) before it is a gap */
};

/* Where a stream's output goes. on_data returns how many bytes of p it
 * consumed (0..len); the rest is offered again, with more appended. */
struct tcp_sink {
    void *ctx;
    size_t (*on_data)(void *ctx, const uint8_t *p, size_t len, kw_ts ts);
    void (*on_gap)(void *ctx, uint64_t len, kw_ts ts);
};

/* One direction. Embedded in the flow; zero it with tcp_stream_init. */
struct tcp_stream {
    uint64_t next;     /* offset of the next byte to deliver */
    uint32_t base_seq; /* sequence number of offset 0 */
    bool have_base;
    uint8_t *buf; /* unconsumed bytes: offsets [next - buf_len, next) */
    uint32_t buf_len, buf_cap;
    struct tcp_seg *ooo; /* held segments, sorted, non-overlapping */
    struct tcp_seg *ooo_tail;
    uint32_t ooo_count;
    kw_ts hole_since; /* packet time the current hole began to hold data */
};

struct tcp_reasm;

enum kw_err tcp_reasm_new(const struct tcp_reasm_config *cfg, struct flow_counters *cnt,
                          struct tcp_reasm **out) KW_WUR;
void tcp_reasm_destroy(struct tcp_reasm *r);
/* Bytes currently charged against the memcap. */
uint64_t tcp_reasm_mem_used(const struct tcp_reasm *r);

void tcp_stream_init(struct tcp_stream *s);
/* Sets offset 0 at `seq` (the ISN + 1 after a SYN; the first seen byte
 * midstream). Ignored once a base is set. */
void tcp_stream_set_base(struct tcp_stream *s, uint32_t seq);
/* A segment whose first payload byte has sequence number `seq`. Sets the
 * base from it when none is set (midstream pickup). */
void tcp_stream_segment(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k,
                        uint32_t seq, const uint8_t *p, uint32_t len, kw_ts ts);
/* Declares a gap if the current hole is older than gap_timeout at `now`. */
void tcp_stream_check_timeout(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k,
                              kw_ts now);
/* The peer acknowledged up to `ack` (its ACK field): a hole lying wholly
 * below it was received by the peer and missed by the mirror, so it will
 * never fill: it becomes a gap at once, instead of after the window or
 * the timeout, and the data held behind it flows on. */
void tcp_stream_acked(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k,
                      uint32_t ack, kw_ts now);
/* Every hole becomes a gap and everything held is delivered; the
 * unconsumed bytes stay (they are contiguous with what may follow). */
void tcp_stream_close_holes(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k,
                            kw_ts now);
/* End of the stream: close_holes, then the unconsumed bytes are offered one
 * last time and released. No more data is expected (later data is still
 * handled, as a continuation without the released bytes). */
void tcp_stream_flush(struct tcp_reasm *r, struct tcp_stream *s, const struct tcp_sink *k,
                      kw_ts now);
/* Releases all memory of the stream without delivering anything. */
void tcp_stream_free(struct tcp_reasm *r, struct tcp_stream *s);

static inline bool tcp_stream_has_hole(const struct tcp_stream *s)
{
    return s->ooo != NULL;
}

#endif
