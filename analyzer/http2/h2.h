/* h2: a passive HTTP/2 reader for one TCP connection (RFC 9113), fed the
 * two byte streams (or gaps) by reassembly, reporting one transaction per
 * stream (request + response, or what is known of them) per callback.
 *
 * The one thing to know: header blocks are decoded with libnghttp2's HPACK
 * inflater, one per direction, whose dynamic table is shared by every
 * stream of that direction. A hole inside a header block (or any hole that
 * may have hidden one) breaks that table: from then on the direction is
 * read with a fresh inflater that decodes exactly the header blocks whose
 * dynamic-table references it can resolve (newest entries sit at the
 * lowest indices, so an entry inserted since the loss is the same entry on
 * both ends) and refuses the others; a header is never guessed. DATA on
 * known streams keeps being counted. Everything the callback sees lives in
 * the connection's buffers and is valid only during the callback; bodies
 * are counted, never stored.
 *
 * Feeding contract (as h1's): h2_feed returns the bytes consumed; the
 * caller keeps the rest and offers them again with more appended (only
 * frame-boundary searches after loss hold bytes back). Before h2_gap(dir)
 * the caller drops its unconsumed bytes of that direction. */
#ifndef KW_H2_H
#define KW_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h1.h"
#include "kw_slice.h"
#include "kw_time.h"
#include "kw_txn.h"

struct h2_limits {
    uint32_t max_streams;        /* open streams followed per connection; a stream beyond is not
                                    reported (its header blocks are still decoded, for the
                                    table), streams_refused. 256 */
    uint32_t max_header_list;    /* request header bytes kept per stream, counted as RFC 9113
                                    §6.5.2 does (name + value + 32 per field); beyond, fields are
                                    dropped, TRUNCATED_FIELD, header_list_limit. 32 KiB */
    uint32_t max_headers;        /* request fields kept per stream (beyond: as above). 128 */
    uint32_t max_table_size;     /* HPACK dynamic table per direction, whatever SETTINGS allows;
                                    an encoder that goes past it breaks the table, counted as
                                    hpack_table_capped. 64 KiB */
    uint32_t max_continuations;  /* CONTINUATION frames per header block; past it the block is
                                    abandoned and the table of that direction broken
                                    (CONTINUATION flood), continuation_floods. 64 */
    uint32_t max_header_block;   /* encoded bytes per header block (same treatment). 256 KiB */
    uint32_t max_resets_per_sec; /* streams reset by the client before any answer reported per
                                    second of packet time; the rest are counted, not reported
                                    (rapid reset), rapid_resets_dropped. 100 */
    uint32_t resync_scan_max;    /* bytes scanned per h2_feed call for a frame boundary after
                                    loss or midstream pickup. 256 KiB */
    /* Shared by all connections of an owner (struct h2_budget): */
    uint32_t max_conns; /* live parsers; a connection beyond is refused, counted. 65536 */
    uint64_t memcap;    /* bytes all parsers may hold, HPACK tables included; beyond, buffers
                           do not grow and inflaters fail (counted as memcap_refusals). 512 MiB */
};
void h2_limits_default(struct h2_limits *l);

/* Bytes held by the parsers sharing it; owned by the caller, zeroed,
 * outliving its connections. */
struct h2_budget {
    uint64_t max_bytes; /* 0: unbounded */
    uint64_t bytes;
    uint64_t peak;
    uint64_t refused;
};

/* One finished stream; borrowed, valid only during the callback. The
 * request's headers are the regular fields in order, preceded by a
 * synthesised "host" carrying :authority when there is one (so h1's rule
 * applies: the authority names the host). method/target/version are
 * :method, :path (or :authority for CONNECT) and "HTTP/2". */
struct h2_txn_view {
    uint32_t stream_id;
    const struct h1_msg_view *req;  /* NULL: request headers unknown (NO_REQUEST) */
    const struct h1_msg_view *resp; /* NULL: no final response (NO_RESPONSE) */
    bool grpc;                      /* content-type application/grpc* on either side */
    int grpc_status;                /* -1: none seen */
    struct kw_slice grpc_message;   /* percent-encoded as sent, cut at 127 bytes */
};

typedef void (*h2_txn_cb)(void *user, const struct h2_txn_view *t);

/* Counters; X(name). Per connection; add into a total with h2_counters_add. */
#define H2_COUNTERS(X)                                                                             \
    X(transactions)  /* callbacks made */                                                          \
    X(streams)       /* streams opened (client HEADERS, PUSH_PROMISE, h2c upgrade) */              \
    X(frames)        /* frame headers read */                                                      \
    X(data_bytes)    /* DATA payload bytes (padding excluded) */                                   \
    X(header_blocks) /* header blocks decoded to their end */                                      \
    X(continuations) /* CONTINUATION frames */                                                     \
    X(settings)      /* SETTINGS frames (ACKs included) */                                         \
    X(pings)                                                                                       \
    X(window_updates)                                                                              \
    X(priorities) /* PRIORITY frames */                                                            \
    X(goaways)                                                                                     \
    X(resets)                /* RST_STREAM frames */                                               \
    X(pushes)                /* PUSH_PROMISE frames */                                             \
    X(unknown_frames)        /* extension frame types, skipped (RFC 9113 §4.1) */                 \
    X(protocol_errors)       /* frames a peer would reject (wrong length, stream 0, ...) */        \
    X(unknown_stream_frames) /* DATA/HEADERS trailers/RST for a stream not followed */             \
    X(grpc_calls)            /* transactions that are gRPC */                                      \
    X(h2c_upgrades)          /* HTTP/1.1 Upgrade: h2c answered 101 */                              \
    X(gaps)                  /* h2_gap calls */                                                    \
    X(gap_bytes)                                                                                   \
    X(gaps_absorbed)        /* gaps inside a DATA payload: framing and tables kept */              \
    X(hpack_broken)         /* a direction's HPACK table lost (gap, flood, error) */               \
    X(hpack_errors)         /* header blocks the inflater refused */                               \
    X(headers_undecodable)  /* header blocks not decoded (table lost, refused) */                  \
    X(resyncs)              /* frame boundaries found again after loss / midstream */              \
    X(resync_bytes)         /* bytes skipped looking for one */                                    \
    X(preface_missing)      /* client bytes that did not start with the preface */                 \
    X(streams_refused)      /* streams beyond max_streams (bound) */                               \
    X(header_list_limit)    /* request header lists cut (max_header_list/max_headers) */           \
    X(header_count_limit)   /* of them: cut at max_headers fields (limits: http2.max_headers) */   \
    X(hpack_table_capped)   /* table size asked above max_table_size */                            \
    X(continuation_floods)  /* header blocks over max_continuations/max_header_block */            \
    X(header_block_limit)   /* of them: over max_header_block bytes (http2.max_header_block) */    \
    X(rapid_resets)         /* streams reset by the client before an answer */                     \
    X(rapid_resets_dropped) /* of those, not reported (over max_resets_per_sec) */                 \
    X(memcap_refusals)      /* allocations refused by the shared budget */

struct h2_counters {
#define H2_CTR_FIELD(n) uint64_t n;
    H2_COUNTERS(H2_CTR_FIELD)
#undef H2_CTR_FIELD
};
void h2_counters_add(struct h2_counters *total, const struct h2_counters *c);
void h2_counters_each(const struct h2_counters *c,
                      void (*fn)(void *u, const char *name, uint64_t v), void *u);

struct h2_conn; /* heap object: h2_conn_new_in / h2_conn_destroy */

/* A connection whose client direction starts with the preface (prior
 * knowledge, ALPN h2, after an h2c upgrade), or, with `midstream`, one
 * picked up in its middle: both directions then look for a frame boundary
 * and decode with fresh tables. `l` is copied (NULL: defaults); `b` may be
 * NULL. NULL when out of memory or over the budget. */
struct h2_conn *h2_conn_new_in(const struct h2_limits *l, struct h2_budget *b, bool midstream,
                               h2_txn_cb cb, void *user);
void h2_conn_destroy(struct h2_conn *c);
/* What a connection holds now (its struct, streams, buffers, inflaters). */
size_t h2_conn_mem_used(const struct h2_conn *c);
const struct h2_counters *h2_conn_counters(const struct h2_conn *c);

/* dir: 0 = client->server, 1 = server->client (FLOW_DIR_*). */
size_t h2_feed(struct h2_conn *c, int dir, const uint8_t *p, size_t len, kw_ts ts);
void h2_gap(struct h2_conn *c, int dir, uint64_t len, kw_ts ts);
/* Connection ended: every open stream is reported. The conn may then be
 * destroyed. */
void h2_close(struct h2_conn *c, kw_ts ts);

/* h2c (RFC 7540 §3.2): the HTTP/1.1 request `req` that asked to upgrade
 * becomes stream 1, half-closed by the client; its HTTP2-Settings header
 * is applied as the client's SETTINGS. Call before feeding the bytes
 * after the 101 answer. */
void h2_upgrade(struct h2_conn *c, const struct h1_msg_view *req);

/* Do the bytes start like HTTP/2 frames sent in direction `dir` (a
 * plausible frame header followed by another, or ending exactly with
 * the bytes)? For connections picked up midstream. */
bool h2_looks_like_frames(const uint8_t *p, size_t len, int dir);

/* Is this the start (or, for short input, a prefix) of the client
 * preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"? 1 whole preface, -1 a
 * prefix of it, 0 no. */
int h2_is_preface(const uint8_t *p, size_t len);

/* The kw_txn of a finished stream: h1_txn_fill over the same views, then
 * the stream id, gRPC status and message and the GRPC flag. */
void h2_txn_fill(const struct h2_txn_view *t, struct kw_txn *out);

#endif
