/* h1: a resumable, zero-copy HTTP/1.x parser for one TCP connection, fed
 * the two byte streams (or gaps) by reassembly, reporting one transaction
 * (request + response, or an unmatched half) per callback.
 *
 * The one thing to know: a request is reported only when its response is
 * complete (or the connection ends, or it is evicted), so every request
 * head is COPIED when it completes into a bounded per-connection FIFO arena
 * (ring) and the response head into a per-connection buffer. Everything the
 * callback sees (struct h1_msg_view and its slices) lives in those buffers
 * and is valid only during the callback. Bodies are counted, never stored.
 *
 * Feeding contract: h1_feed returns the bytes consumed; the caller keeps the
 * rest and offers them again with more appended. Before h1_gap(dir) the
 * caller drops its unconsumed bytes of that direction (they precede the hole
 * and can never complete); the parser has kept what it needs (a salvage copy
 * of a partial head). Feed the two directions in capture order: matching
 * after loss uses packet time (see docs/http.md). */
#ifndef KW_H1_H
#define KW_H1_H

#include <stddef.h>
#include <stdint.h>

#include "kw_slice.h"
#include "kw_time.h"
#include "echo.h"
#include "kw_txn.h"

struct h1_limits {
    uint32_t max_header_bytes; /* a head (start line + headers) longer than this: PARSE_ERROR,
                                  header_limit_hits, resync. 64 KiB */
    uint32_t max_headers;      /* headers kept per message (framing headers are still honoured
                                  past it). 128 */
    uint32_t max_pending;      /* requests awaiting a response; on overflow the oldest is
                                  reported NO_RESPONSE (pending_evicted). 64 */
    uint32_t resync_scan_max;  /* bytes scanned (and dropped) per h1_feed call while
                                  resynchronising. 256 KiB */
    uint32_t req_arena_bytes;  /* ring holding copies of pending request heads. 32 KiB */
    uint32_t resp_arena_bytes; /* copy of the response head being received. 8 KiB */
    uint32_t salvage_bytes; /* per direction: copy of a partial head, parsed after a gap. 8 KiB */
    /* The buffers above start small and grow on demand up to these sizes.
     * Shared by all connections of an owner (the pipeline enforces them
     * through struct h1_budget; h1_conn_new alone ignores them): */
    uint32_t max_conns; /* live parsers; a connection beyond is refused, counted. 262144 */
    uint64_t memcap;    /* bytes all parsers may hold; beyond, new parsers are refused and
                           buffers do not grow (the arena-full path: evict / cut, counted
                           as memcap_refusals). 1 GiB */
};
void h1_limits_default(struct h1_limits *l);

/* A parsed request or response head; borrowed, valid only during the
 * callback. Header values are trimmed of OWS and obs-fold is UNFOLDED: each
 * fold (CRLF followed by SP/HT) becomes one SP (RFC 9112 §5.2). Header
 * names are as sent (compare case-insensitively). */
struct h1_msg_view {
    struct kw_slice method, target, version; /* request; version empty for HTTP/0.9 */
    int status;                              /* response; 0 for an HTTP/0.9 response */
    struct kw_slice reason;                  /* response */
    const struct kw_hdr *hdrs;
    size_t n_hdrs;
    uint64_t body_len;      /* body bytes (chunked: decoded payload; gap bytes inside a body of
                               known length included, flagged GAP_*) */
    kw_ts ts_start, ts_end; /* first byte of the head; last byte of the message */
    uint32_t flags;         /* KW_TXN_F(...) */
    /* response: the start of a 2xx JSON body (echo.h), NUL after its
     * body_head_len bytes, valid for the callback only; NULL when not
     * looked at */
    const uint8_t *body_head;
    uint32_t body_head_len;
    bool body_head_whole; /* the whole body (decoded) is in it */
};

struct h1_txn_view {
    const struct h1_msg_view *req;  /* NULL: response without its request (NO_REQUEST) */
    const struct h1_msg_view *resp; /* NULL: request without response (NO_RESPONSE) */
};

typedef void (*h1_txn_cb)(void *user, const struct h1_txn_view *t);

/* Counters; X(name). Per connection; add into a total with h1_counters_add. */
#define H1_COUNTERS(X)                                                                             \
    X(transactions)        /* callbacks made (matched or not) */                                   \
    X(requests)            /* request heads parsed (incl. salvaged) */                             \
    X(responses)           /* final response heads parsed (incl. salvaged) */                      \
    X(interim_responses)   /* 1xx other than 101 */                                                \
    X(unmatched_requests)  /* reported with NO_RESPONSE */                                         \
    X(unmatched_responses) /* reported with NO_REQUEST */                                          \
    X(resyncs)             /* resynchronisation points found */                                    \
    X(resync_bytes)        /* bytes skipped while looking for one */                               \
    X(parse_errors)        /* messages flagged PARSE_ERROR, and junk start lines */                \
    X(gaps)                /* h1_gap calls */                                                      \
    X(gap_bytes)                                                                                   \
    X(gaps_absorbed)     /* gaps that only shortened a body of known length */                     \
    X(salvaged_heads)    /* partial heads recovered after a gap or at close */                     \
    X(lost_markers)      /* client-side loss points put in the request FIFO */                     \
    X(upgrades)          /* 101 Switching Protocols: parsing stopped */                            \
    X(connects)          /* CONNECT answered 2xx: parsing stopped */                               \
    X(not_http1)         /* HTTP/2 preface or other version: parsing stopped */                    \
    X(tunnel_bytes)      /* bytes after CONNECT/Upgrade, not parsed */                             \
    X(header_limit_hits) /* head > max_header_bytes, or > max_headers headers */                   \
    X(header_count_hits) /* of them: heads with more than max_headers headers */                   \
    X(arena_truncations) /* head copy cut to fit req/resp arena (TRUNCATED_FIELD) */               \
    X(req_arena_hits)    /* requests cut, or older ones evicted, with the request arena at its     \
                            size (limits: http.request_buffer) */                                  \
    X(resp_arena_hits)   /* response heads cut: longer than resp_arena_bytes                       \
                            (limits: http.response_buffer) */                                      \
    X(pipelined)         /* requests sent before the previous response */                          \
    X(pending_evicted)   /* pending requests reported early (FIFO or arena full) */                \
    X(pending_limit_hits) /* of them: the FIFO held max_pending requests */                        \
    X(early_responses)   /* final response complete before its request body */                     \
    X(body_truncated)    /* connection ended inside a body */                                      \
    X(http09)            /* HTTP/0.9 simple requests */                                            \
    X(memcap_refusals)   /* buffer growths refused by the shared budget (h1_budget) */

struct h1_counters {
#define H1_CTR_FIELD(n) uint64_t n;
    H1_COUNTERS(H1_CTR_FIELD)
#undef H1_CTR_FIELD
};
void h1_counters_add(struct h1_counters *total, const struct h1_counters *c);
/* Visit every counter by name (for stats records). */
void h1_counters_each(const struct h1_counters *c,
                      void (*fn)(void *u, const char *name, uint64_t v), void *u);

struct h1_conn; /* heap object: h1_conn_new / h1_conn_destroy */

/* Bytes held by the parsers sharing it; owned by the caller (one per
 * pipeline), zero-initialised, outliving its connections. */
struct h1_budget {
    uint64_t max_bytes; /* 0: unbounded */
    uint64_t bytes;     /* held now by the connections charged to it */
    uint64_t peak;
    uint64_t refused; /* buffer growths refused for lack of budget */
};

/* Allocates the connection with small buffers (h1_conn_base_mem bytes);
 * they grow on demand, each up to its limit, so an idle connection costs
 * little. NULL when out of memory or limits are zero. `l` is copied; NULL
 * means defaults. */
struct h1_conn *h1_conn_new(const struct h1_limits *l, h1_txn_cb cb, void *user);
/* Same, charging every buffer to `b` (may be NULL): growth that would
 * pass b->max_bytes is refused and handled as that buffer being full. */
struct h1_conn *h1_conn_new_in(const struct h1_limits *l, struct h1_budget *b, h1_txn_cb cb,
                               void *user);
/* Make a closed connection as new for another one (counters zeroed,
 * callback replaced), keeping its grown buffers: for free lists. Call
 * h1_close first if it may hold data. */
void h1_conn_reset(struct h1_conn *c, h1_txn_cb cb, void *user);
void h1_conn_destroy(struct h1_conn *c);
/* The most a connection holds with these limits (every buffer grown). */
size_t h1_conn_mem(const struct h1_limits *l);
/* What a new connection holds before any growth. */
size_t h1_conn_base_mem(const struct h1_limits *l);
/* What this connection holds now. */
size_t h1_conn_mem_used(const struct h1_conn *c);
const struct h1_counters *h1_conn_counters(const struct h1_conn *c);

/* dir: 0 = client->server, 1 = server->client (FLOW_DIR_*). Returns bytes
 * consumed (<= len); the rest must be offered again with more appended. */
size_t h1_feed(struct h1_conn *c, int dir, const uint8_t *p, size_t len, kw_ts ts);
/* A hole of len bytes in that direction (see the feeding contract above). */
void h1_gap(struct h1_conn *c, int dir, uint64_t len, kw_ts ts);
/* Connection ended: finish close-delimited bodies, salvage partial heads,
 * report pending halves. The conn may then be destroyed (or fed again: it
 * is reset to its initial state). */
void h1_close(struct h1_conn *c, kw_ts ts);

/* Called from the callback of a transaction that switched protocols (a
 * 101 answer: KW_TXN_F(UPGRADE)): the bytes after that answer, in both
 * directions, are the caller's. h1_feed then returns at the switch point
 * (its return value tells where the new protocol starts) and consumes
 * nothing more; the caller feeds them to the next parser (h2c). */
void h1_handoff(struct h1_conn *c);

/* Fill the HTTP part of a kw_txn from a txn view: method, protocol,
 * hostname (authority of an absolute-form or CONNECT target, else Host;
 * userinfo and port stripped, lower-cased), url (raw target), path
 * (norm_path), template_, user_agent, status, resp_len, req_len, ts
 * (request start, or response start without request), resp_ts (response
 * END, 0 without response). flags are OR-ed in (message flags, path flags,
 * NO_REQUEST / NO_RESPONSE, TRUNCATED_FIELD when a value was cut). Does not
 * touch addresses, cred or identity; the caller zeroes the record first. */
void h1_txn_fill(const struct h1_txn_view *t, struct kw_txn *out);

/* First header named `name` (case-insensitive) in a message, or NULL. */
const struct kw_hdr *h1_hdr_find(const struct h1_msg_view *m, const char *name);

/* ---- the start of an answer's body, for echo.h (h1_echo.c) ----------
 * Shared with HTTP/2 streams. An owner's allocator: charged to its budget
 * (NULL when refused), wiped when freed. */
struct h1_echo_mem {
    void *(*alloc)(void *user, size_t n);
    void (*free)(void *user, void *p, size_t n);
    void *user;
};
struct z_stream_s;
struct h1_echo {
    const struct h1_echo_mem *m; /* NULL: never begun */
    uint8_t *buf;                /* cap + 1 bytes, grown as needed, kept for the next answer */
    struct z_stream_s *z;        /* while a coded answer is decoded */
    uint32_t len, cap;
    bool on;    /* keep taking body bytes */
    bool whole; /* the coded stream ended within the look */
};
/* How to read this answer's body (echo_wanted of its status and headers). */
enum echo_coding h1_echo_coding(const struct h1_msg_view *v);
/* An answer's head arrived: look at its body when k says so and the
 * request's target (raw) could be named (echo_target). */
void h1_echo_begin(struct h1_echo *e, const struct h1_echo_mem *m, enum echo_coding k,
                   struct kw_slice target);
/* Body bytes in order; p NULL: a hole of n bytes. */
void h1_echo_feed(struct h1_echo *e, const uint8_t *p, uint64_t n);
/* The answer ended (r->body_len set): fills r->body_head*, valid until the
 * next begin or release. */
void h1_echo_end(struct h1_echo *e, struct h1_msg_view *r);
/* Frees what it holds. */
void h1_echo_release(struct h1_echo *e);

#endif
