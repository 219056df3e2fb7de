/* source: where packets come from. Offline: one or more pcap/pcapng files
 * ("-" is stdin), merged in timestamp order. Live: an interface opened
 * with TPACKET_V3 (non-immediate mode), a non-blocking fd and poll(), so
 * the caller's timers run on a quiet link. A truncated file is read to
 * its last whole packet and reported, not treated as fatal.
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
    const char *interface;            /* live input (exclusive with files) */
    const char *bpf;                  /* optional filter, applied to both */
    int snaplen;                      /* default 262144 */
    int buffer_mb;                    /* kernel ring size; default 64 */
    bool promisc;                     /* default true */
    int poll_ms;                      /* live: poll timeout; default 100 */
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
    uint64_t truncated_files;                       /* offline: ended mid-packet */
    uint64_t read_errors;
};

enum cap_next { CAP_PACKET, CAP_TIMEOUT /* live: nothing within poll_ms */, CAP_EOF, CAP_ERROR };

struct cap_source;

void cap_config_default(struct cap_config *cfg);
/* On error, writes a message for the user to errbuf. */
enum kw_err cap_open(const struct cap_config *cfg, struct cap_source **out, char *errbuf,
                     size_t errlen) KW_WUR;
/* Compiles a BPF filter as `run` would for Ethernet (what `check`
 * validates without a capture): KW_E_CONFIG with pcap's message in errbuf
 * when it does not compile. NULL or "" is fine. */
enum kw_err cap_bpf_check(const char *bpf, char *errbuf, size_t errlen) KW_WUR;
/* Next packet in time order. */
enum cap_next cap_next(struct cap_source *s, struct cap_pkt *pkt);
/* Ask a live loop to stop (async-signal-safe: sets a flag). */
void cap_break(struct cap_source *s);
void cap_get_stats(struct cap_source *s, struct cap_stats *st);
/* Progress for a terminal: bytes read of total bytes (offline; 0 total when
 * unknown, e.g. stdin). */
void cap_progress(const struct cap_source *s, uint64_t *done, uint64_t *total);
void cap_close(struct cap_source *s);

#endif
