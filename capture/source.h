/* source: where packets come from. Offline: one or more pcap/pcapng files
 * ("-" is stdin), merged in timestamp order. Live: an interface opened
 * with TPACKET_V3 (non-immediate mode), a non-blocking fd and poll(), so
 * the caller's timers run on a quiet link. A truncated file is read to
 * its last whole packet and reported, not treated as fatal.
 *
 * Live, the interface is opened `fanout` times (one socket and one kernel
 * ring per packet worker), every socket in one PACKET_FANOUT group of type
 * hash with the defrag flag: the kernel spreads flows over the sockets by
 * a symmetric hash of the flow (both directions meet) and reassembles IPv4
 * fragments first, so a fragment lands with the rest of its flow (see
 * docs/capture.md for what the hash cannot keep together). One socket is
 * a group of one: the same kernel treatment for any number of workers.
 *
 * The packet bytes handed out are borrowed: valid until the next call. */
#ifndef KW_SOURCE_H
#define KW_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "kw_err.h"
#include "kw_time.h"

#define CAP_MAX_FILES 64

struct cap_config {
    const char *files[CAP_MAX_FILES]; /* offline inputs; "-" = stdin */
    unsigned n_files;
    const char *interface; /* live input (exclusive with files) */
    const char *bpf;       /* optional filter, applied to both */
    int snaplen;           /* default 262144 */
    int buffer_mb;         /* kernel ring size; default 64 */
    bool promisc;          /* default true */
    int poll_ms;           /* live: poll timeout; default 100 */
    unsigned fanout;       /* live: sockets in the fanout group; 0 = 1 */
    bool read_ahead;       /* offline: a reader thread reads batches ahead (source.c) */
};

struct cap_pkt {
    kw_ts ts;
    uint32_t caplen, wirelen;
    int linktype;        /* DLT_* of the file/interface it came from */
    const uint8_t *data; /* borrowed */
    unsigned file_index; /* which input (offline) */
};

struct cap_stats {
    uint64_t packets, bytes;
    uint64_t kernel_recv, kernel_drop, iface_drop; /* live: pcap_stats */
    uint64_t truncated_files;                      /* offline: ended mid-packet */
    uint64_t read_errors;
    unsigned sockets;                       /* live: sockets of the fanout group */
    uint64_t socket_packets[CAP_MAX_FILES]; /* live: packets each socket handed out */
};

enum cap_next { CAP_PACKET, CAP_TIMEOUT /* live: nothing within poll_ms */, CAP_EOF, CAP_ERROR };

struct cap_source;

void cap_config_default(struct cap_config *cfg);
/* On error, writes a message for the user to errbuf. */
enum kw_err cap_open(const struct cap_config *cfg, struct cap_source **out, char *errbuf,
                     size_t errlen) KW_WUR;
/* capture.workers / --workers: 0 (auto) is one worker per core but one
 * when live (at least 1), one for files (a file has one reader). */
unsigned cap_workers_auto(unsigned configured, bool live);
/* Compiles a BPF filter as `run` would for Ethernet (what `check`
 * validates without a capture): KW_E_CONFIG with pcap's message in errbuf
 * when it does not compile. NULL or "" is fine. */
enum kw_err cap_bpf_check(const char *bpf, char *errbuf, size_t errlen) KW_WUR;
/* Next packet in time order (live: of the first socket). */
enum cap_next cap_next(struct cap_source *s, struct cap_pkt *pkt);
/* Live: sockets opened (cap_config.fanout), and the next packet of socket
 * i, for the one thread that reads it (each socket has its own thread; a
 * packet stays valid until that thread's next call). Packets the socket
 * had before it joined the group (the kernel gave them to every socket)
 * are skipped. A socket with nothing waits in poll() for poll_ms (the
 * pace its thread runs timers at), or CAP_MEMBER_WAIT_MS when `soon` (its
 * thread owes the others a word on how far it got), and returns
 * CAP_TIMEOUT; also, at once, when `wake_fd` (>= 0: the thread's eventfd,
 * kw_wake.h) becomes readable, which it then drains. The thread sleeps
 * there: no back-off loop while the link is quiet. */
#define CAP_MEMBER_WAIT_MS 10
unsigned cap_members(const struct cap_source *s);
enum cap_next cap_next_member(struct cap_source *s, unsigned i, int wake_fd, bool soon,
                              struct cap_pkt *pkt);
/* Live: a wall time before which every packet the kernel took has been
 * handed out or is in a ring block about to be (a block is retired at most
 * poll_ms after its first packet): what a quiet socket's thread may claim. */
kw_ts cap_settled(const struct cap_source *s, kw_ts wall);
/* Ask a live loop to stop (async-signal-safe: sets a flag); every socket
 * is then read for what its ring holds, as long as 2 s, and ends. */
void cap_break(struct cap_source *s);
/* Live: kernel counters summed over every socket of the group. */
void cap_get_stats(struct cap_source *s, struct cap_stats *st);
/* Progress for a terminal: bytes read of total bytes (offline; 0 total when
 * unknown, e.g. stdin). */
void cap_progress(const struct cap_source *s, uint64_t *done, uint64_t *total);
void cap_close(struct cap_source *s);

#endif
