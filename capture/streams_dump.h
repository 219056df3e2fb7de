/* streams_dump: writes each TCP direction's reassembled bytes to a file,
 * named as tcpflow 1.6 names it, so what keywarden saw can be inspected and
 * compared with tcpflow.
 *
 * Names: SRCIP.SRCPORT-DSTIP.DSTPORT with IPv4 octets and ports zero-padded
 * (010.000.000.001.54321-010.000.000.002.00080), IPv6 as inet_ntop prints
 * it, "--VLAN" when the packet had an 802.1Q tag (outer VLAN id), and "cN"
 * when the name was already used in this run (connection count, e.g. port
 * reuse, or two tunnels carrying the same addresses).
 *
 * The one thing to know: a gap is written as a hole (the file offset moves
 * on, the bytes read as zeros, like tcpflow) so offsets match the TCP
 * sequence space, AND it is made visible: NAME.gaps lists "offset length"
 * of every gap, and DIR/keywarden-streams.tsv indexes every file with its
 * byte and gap counts. */
#ifndef KW_STREAMS_DUMP_H
#define KW_STREAMS_DUMP_H

#include <stddef.h>
#include <stdint.h>

#include "dec.h"
#include "defrag.h"
#include "flow.h"
#include "kw_err.h"
#include "source.h"

#define STREAMS_DUMP_COUNTERS(X)                                                                   \
    X(files)                                                                                       \
    X(bytes_written)                                                                               \
    X(gaps)                                                                                        \
    X(gap_bytes)                                                                                   \
    X(write_errors)                                                                                \
    X(fd_reopens)

struct streams_dump_counters {
#define SD_CNT_FIELD(n) uint64_t n;
    STREAMS_DUMP_COUNTERS(SD_CNT_FIELD)
#undef SD_CNT_FIELD
};

struct streams_dump;

/* Creates dir if needed. On error, writes a message for the user. */
enum kw_err streams_dump_new(const char *dir, struct streams_dump **out, char *err,
                             size_t errlen) KW_WUR;
/* Callbacks to hand to flow_table_new; user is the dumper. */
void streams_dump_callbacks(struct streams_dump *d, struct flow_callbacks *cb);
/* Writes the index and closes everything still open (call after
 * flow_table_flush). KW_E_IO if any write failed. */
enum kw_err streams_dump_finish(struct streams_dump *d) KW_WUR;
const struct streams_dump_counters *streams_dump_counters(const struct streams_dump *d);
void streams_dump_destroy(struct streams_dump *d);

/* The tcpflow-style file name of one direction (without the cN suffix).
 * buf >= 128 bytes. */
void streams_dump_name(const struct kw_addr *src, uint16_t sport, const struct kw_addr *dst,
                       uint16_t dport, uint16_t vlan, char *buf, size_t len);

/* Everything `keywarden streams` does, minus argument parsing: reads the
 * captures of cc, writes the streams to dir, fills the counters. fcfg and
 * dfcfg size the flow table, reassembly and defragmentation (`streams -c`
 * takes them from the config's limits as `run` does); NULL: the compiled
 * defaults. Returns
 * KW_E_CONFIG for bad input (unreadable file, bad filter: message in err),
 * KW_E_IO when the capture failed mid-way or output could not be written
 * (what was read so far is written). */
struct streams_run_stats {
    struct cap_stats cap;
    struct dec_counters dec;
    struct flow_counters flow;
    struct streams_dump_counters dump;
};
enum kw_err streams_dump_run(const struct cap_config *cc, const struct flow_config *fcfg,
                             const struct defrag_config *dfcfg, const char *dir,
                             struct streams_run_stats *st, char *err, size_t errlen) KW_WUR;

#endif
