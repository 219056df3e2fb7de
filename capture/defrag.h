/* defrag: IPv4 (RFC 791 §3.2) and IPv6 (RFC 8200 §4.5) fragment
 * reassembly between the decoder and the flow table.
 *
 * A fragment is what dec_packet() returns as DEC_SKIP with ip_fragment set.
 * defrag_decode() files it under (src, dst, id, protocol [IPv4 only],
 * tunnel, outer VLAN); when the last hole of a datagram fills, the datagram
 * is rebuilt with a fresh IP header (total length, no MF, offset 0; IPv6:
 * the fragment header removed) and decoded as if it had arrived whole.
 *
 * The one thing to know: everything is bounded at defrag_new() (datagrams
 * in reassembly, bytes held = memcap, fragments per datagram) and every
 * fragment that does not end in a datagram is a named counter. The rebuilt
 * datagram lives in a buffer owned by the defragmenter: valid until the
 * next defrag_* call. */
#ifndef KW_DEFRAG_H
#define KW_DEFRAG_H

#include <stdbool.h>
#include <stdint.h>

#include "dec.h"
#include "kw_err.h"
#include "kw_hash.h"
#include "kw_time.h"

/* Bytes are held in chunks of this size; memcap counts whole chunks. */
#define DEFRAG_CHUNK 1024
/* Disjoint pieces one datagram may have before its holes fill: in-order
 * and reversed delivery need 1, real reordering a few. */
#define DEFRAG_MAX_PIECES 16
/* Bytes of IP header kept from the first fragment: an IPv4 header with
 * options is at most 60; IPv6 keeps its unfragmentable part (RFC 8200
 * §4.5: fixed header + hop-by-hop, routing, destination options). */
#define DEFRAG_MAX_HDR 256

struct defrag_config {
    uint32_t max_datagrams; /* datagrams in reassembly at once; default 4096 */
    uint64_t memcap;        /* bytes of fragment data held; default 16 MiB,
                             * at least 64 KiB (one maximal datagram) */
    uint32_t max_fragments; /* fragments per datagram; default 256 */
    kw_ts timeout;          /* from the first fragment; default 30 s */
    struct kw_hkey hash_key; /* bucket placement; default: fresh from getrandom */
};

/* Counters; `active` and `bytes_held` are gauges, the rest only grow. */
#define DEFRAG_COUNTERS(X)                                                                         \
    X(fragments)             /* fragments fed */                                                   \
    X(datagrams_reassembled) /* complete datagrams handed on */                                    \
    X(timeouts)              /* incomplete datagrams expired after `timeout` */                    \
    X(evicted)               /* incomplete datagrams pushed out by a limit */                      \
    X(duplicates)            /* a fragment whose bytes were all there, the same */                 \
    X(overlaps)              /* IPv4 fragments overlapping held bytes (first wins) */              \
    X(overlap_diff)          /* ... with different bytes in the overlap */                         \
    X(v6_overlaps)           /* IPv6 datagrams dropped for an overlap (RFC 5722) */                \
    X(tiny)                  /* RFC 1858 tiny or offset-8 TCP fragments: datagram dropped */       \
    X(too_big)               /* would exceed 65535 bytes (RFC 791, RFC 8200 §4.5) */              \
    X(bad_length)            /* not the last fragment but not a multiple of 8 bytes */             \
    X(inconsistent)          /* data past the end, or two different ends */                        \
    X(truncated)             /* fragment cut by the snaplen: datagram dropped */                   \
    X(header_too_long)       /* first fragment's header over DEFRAG_MAX_HDR */                     \
    X(dropped_fragments)     /* fragments of a datagram already dropped */                         \
    X(limit_datagrams)       /* table full (oldest evicted) */                                     \
    X(limit_fragments)       /* over max_fragments: datagram dropped */                            \
    X(limit_pieces)          /* over DEFRAG_MAX_PIECES disjoint pieces: dropped */                 \
    X(memcap)                /* bytes over memcap (oldest evicted) */                              \
    X(active)                /* gauge: datagrams in reassembly (incl. dropped) */                  \
    X(bytes_held)            /* gauge: chunk bytes in use */

struct defrag_counters {
#define DEFRAG_CNT_FIELD(n) uint64_t n;
    DEFRAG_COUNTERS(DEFRAG_CNT_FIELD)
#undef DEFRAG_CNT_FIELD
};

struct defrag;

void defrag_config_default(struct defrag_config *cfg);
/* Allocates everything the defragmenter will ever use. KW_E_CONFIG for a
 * limit of 0 or a memcap under 64 KiB. */
enum kw_err defrag_new(const struct defrag_config *cfg, struct defrag **out) KW_WUR;
void defrag_destroy(struct defrag *d);

enum defrag_result {
    DEFRAG_HELD = 0, /* kept; the datagram is not complete yet */
    DEFRAG_DONE,     /* a datagram completed: see *l3, *len */
    DEFRAG_DROPPED,  /* not kept (a counter says why) */
};

/* Feeds one fragment (frag->ip_fragment set). On DEFRAG_DONE, *l3 and *len are
 * the rebuilt datagram, valid until the next defrag_* call. Also runs the
 * timeouts up to frag->ts. */
enum defrag_result defrag_packet(struct defrag *d, const struct dec_packet *frag,
                                 const uint8_t **l3, uint32_t *len);

/* The pipeline's one call: `pkt` is a fragment that dec_packet() returned
 * as DEC_SKIP. Feeds it and, when it completes a datagram, decodes the
 * datagram into *pkt (through dec_reassembled) and returns that result;
 * otherwise DEC_SKIP. A datagram whose payload is itself a fragment (a
 * tunnel inside a fragmented tunnel) is fed again, once. */
enum dec_result defrag_decode(struct defrag *d, struct dec_ctx *dec, struct dec_packet *pkt);

/* Expires datagrams whose first fragment is older than timeout at `now`
 * (packet time), releasing their memory. */
void defrag_advance(struct defrag *d, kw_ts now);

const struct defrag_counters *defrag_counters(const struct defrag *d);

#endif
