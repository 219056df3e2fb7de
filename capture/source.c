/* source: libpcap inputs. Offline, any number of pcap/pcapng files (or
 * stdin) merged by timestamp; live, one interface read through TPACKET_V3
 * with a non-blocking fd and poll(), by one socket per packet worker in a
 * PACKET_FANOUT group.
 *
 * The one thing to know about the merge: each input keeps exactly one
 * pending packet, and only the input whose packet was handed out is
 * advanced, at the *next* cap_next call. Each pcap_t has its own buffer,
 * so every pending packet stays valid in its libpcap buffer until its own
 * handle is read again — no copy per packet, and the "borrowed until the
 * next call" promise of source.h holds.
 *
 * With cap_config.read_ahead, a reader thread runs that merge and copies
 * the packets into batches of 1 MiB (4 at most in flight) that cap_next
 * hands out; a packet then stays valid until the next call as well (its
 * batch is given back only then). Reading a file (the read(2) copies and
 * libpcap's record walk) was a tenth of the packet thread's time on the
 * small-API capture, on a machine whose other core was half idle (issue
 * 13). */
#include "source.h"

#include <errno.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "kw_log.h"
#include "kw_time.h"
#include "kw_thread.h"
#include "kw_wake.h"

struct cap_input {
    pcap_t *pc;
    const char *name;
    int linktype;
    bool has_pending;
    bool done;
    struct cap_pkt pending;
    uint64_t size; /* 0 when unknown (stdin, pipes) */
    char *fbuf;    /* stdio buffer of a named file (freed after pcap_close) */
    /* live: each socket is read by one thread; these are that thread's */
    int fd;            /* pcap_get_selectable_fd */
    kw_ts joined;      /* wall time the socket joined the fanout group */
    kw_ts drain_until; /* once stopped: wall time the ring is read until */
    /* written by the socket's thread only, read by cap_get_stats anytime */
    _Atomic uint64_t packets, bytes, read_errors;
    _Atomic uint64_t truncated; /* offline: 1 when the file ended mid-packet */
    _Atomic uint64_t pos;       /* offline with read-ahead: bytes the reader has read */
};

/* Read-ahead batches: records of a header and the packet's bytes. */
#define RA_BATCH (1u << 20)
#define RA_BATCHES 4
struct ra_rec {
    kw_ts ts;
    uint32_t caplen, wirelen;
    int32_t linktype;
    uint32_t file_index;
};
struct ra_batch {
    uint8_t *data;
    size_t cap, used;
    bool eof; /* the last batch: no packet after its records */
};
struct ra {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t filled, freed;
    struct ra_batch b[RA_BATCHES];
    unsigned head, n_full; /* the consumer reads b[head]; n_full batches are the consumer's */
    bool quit;             /* cap_close: the reader leaves at once */
    size_t at;             /* consumer: next record in b[head] */
    bool holding, ended;   /* consumer: reads b[head]; saw the last batch */
};

struct cap_source {
    bool live;
    int poll_ms;
    atomic_int stop; /* lock-free: set from a signal handler, read by every reader */
    int consumed;    /* offline: input whose packet was last returned, or -1 */
    unsigned n_inputs;
    bool size_unknown;
    struct ra *ra; /* offline read-ahead, or NULL */
    struct cap_stats st;
    struct cap_input in[CAP_MAX_FILES];
};

void cap_config_default(struct cap_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->snaplen = 262144;
    cfg->buffer_mb = 64;
    cfg->promisc = true;
    cfg->poll_ms = 100;
}

static kw_ts cap_ts(const struct pcap_pkthdr *h)
{
    return (kw_ts)h->ts.tv_sec * 1000000 + (kw_ts)h->ts.tv_usec;
}

static enum kw_err cap_set_filter(pcap_t *pc, const char *bpf, const char *where, char *errbuf,
                                  size_t errlen)
{
    struct bpf_program prog;
    if (!bpf || !*bpf) return KW_E_OK;
    if (pcap_compile(pc, &prog, bpf, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        snprintf(errbuf, errlen, "%s: bad BPF filter \"%s\": %s; see pcap-filter(7)", where, bpf,
                 pcap_geterr(pc));
        return KW_E_CONFIG;
    }
    int rc = pcap_setfilter(pc, &prog);
    pcap_freecode(&prog);
    if (rc != 0) {
        snprintf(errbuf, errlen, "%s: cannot set BPF filter: %s", where, pcap_geterr(pc));
        return KW_E_CONFIG;
    }
    return KW_E_OK;
}

enum kw_err cap_bpf_check(const char *bpf, char *errbuf, size_t errlen)
{
    if (!bpf || !*bpf) return KW_E_OK;
    pcap_t *pc = pcap_open_dead(DLT_EN10MB, 262144);
    if (!pc) {
        snprintf(errbuf, errlen, "cannot check the BPF filter: out of memory");
        return KW_E_NOMEM;
    }
    struct bpf_program prog;
    enum kw_err e = KW_E_OK;
    if (pcap_compile(pc, &prog, bpf, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        snprintf(errbuf, errlen, "bad BPF filter \"%s\": %s; see pcap-filter(7)", bpf,
                 pcap_geterr(pc));
        e = KW_E_CONFIG;
    } else {
        pcap_freecode(&prog);
    }
    pcap_close(pc);
    return e;
}

/* ---- offline ----------------------------------------------------------- */

/* A counter one thread writes and any thread reads. */
static void count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Reads the next packet of one input into its pending slot. A read error
 * ends that input only: a file cut mid-packet (a capture still being
 * written, a copy that ran out of disk) keeps all its whole packets. */
static void cap_fill(struct cap_source *s, unsigned i)
{
    struct cap_input *in = &s->in[i];
    struct pcap_pkthdr *h;
    const u_char *data;
    in->has_pending = false;
    if (in->done) return;
    int rc = pcap_next_ex(in->pc, &h, &data);
    if (rc == 1) {
        in->pending.ts = cap_ts(h);
        in->pending.caplen = h->caplen;
        in->pending.wirelen = h->len;
        in->pending.linktype = in->linktype;
        in->pending.data = data;
        in->pending.file_index = i;
        in->has_pending = true;
        return;
    }
    in->done = true;
    if (rc == PCAP_ERROR_BREAK) /* clean end of file */
        return;
    const char *msg = pcap_geterr(in->pc);
    if (strstr(msg, "truncated")) {
        count(&in->truncated, 1);
        kw_warn("%s: file ends in the middle of a packet (%s); kept every whole packet before it",
                in->name, msg);
    } else {
        count(&in->read_errors, 1);
        kw_warn("%s: read error, rest of this file skipped: %s", in->name, msg);
    }
}

/* A named file is read through a 256 KB stdio buffer of ours (glibc
 * ignores setvbuf's size without one): libpcap's own fopen reads 4 KB at a
 * time, one read(2) per ~2 small API transactions (issue 13: 31k reads for
 * 128 MB). 64 inputs at most: 16 MB. When fopen fails, libpcap opens the
 * file again to say why in its own words. */
#define CAP_FILE_BUF (256u << 10)
static pcap_t *open_file(struct cap_input *in, const char *name, char *perr)
{
    FILE *f = strcmp(name, "-") ? fopen(name, "rb") : NULL;
    if (!f) return pcap_open_offline(name, perr);
    in->fbuf = malloc(CAP_FILE_BUF);
    if (in->fbuf && setvbuf(f, in->fbuf, _IOFBF, CAP_FILE_BUF) != 0) {
        free(in->fbuf); /* stdio keeps its own small buffer */
        in->fbuf = NULL;
    }
    /* one thread at a time reads it (the reader, or the packet thread
     * without one): no lock taken and dropped for each of libpcap's two
     * freads a packet (the reader's CPU 0.21 -> 0.18 s on the 450 MB
     * small-API capture, perf) */
    __fsetlocking(f, FSETLOCKING_BYCALLER);
    pcap_t *pc = pcap_fopen_offline(f, perr);
    if (!pc) {
        fclose(f);
        free(in->fbuf);
        in->fbuf = NULL;
    }
    return pc;
}

static enum kw_err cap_open_files(struct cap_source *s, const struct cap_config *cfg, char *errbuf,
                                  size_t errlen)
{
    char perr[PCAP_ERRBUF_SIZE];
    if (cfg->n_files > CAP_MAX_FILES) {
        snprintf(errbuf, errlen, "too many input files (%u); at most %d", cfg->n_files,
                 CAP_MAX_FILES);
        return KW_E_LIMIT;
    }
    for (unsigned i = 0; i < cfg->n_files; i++) {
        struct cap_input *in = &s->in[i];
        const char *name = cfg->files[i];
        perr[0] = '\0';
        in->name = strcmp(name, "-") == 0 ? "<stdin>" : name;
        in->pc = open_file(in, name, perr); /* "-" is stdin for libpcap */
        if (!in->pc) {
            snprintf(errbuf, errlen, "%s: cannot read capture: %s", in->name, perr);
            return KW_E_IO;
        }
        s->n_inputs = i + 1;
        in->linktype = pcap_datalink(in->pc);
        struct stat st;
        if (strcmp(name, "-") != 0 && stat(name, &st) == 0 && S_ISREG(st.st_mode))
            in->size = (uint64_t)st.st_size;
        else
            s->size_unknown = true;
        enum kw_err e = cap_set_filter(in->pc, cfg->bpf, in->name, errbuf, errlen);
        if (e != KW_E_OK) return e;
    }
    for (unsigned i = 0; i < s->n_inputs; i++)
        cap_fill(s, i);
    s->consumed = -1;
    return KW_E_OK;
}

static enum cap_next cap_next_offline(struct cap_source *s, struct cap_pkt *pkt)
{
    if (s->consumed >= 0) cap_fill(s, (unsigned)s->consumed);
    s->consumed = -1;
    int best = -1;
    for (unsigned i = 0; i < s->n_inputs; i++) {
        /* Strictly earlier wins; ties keep the lower index, so equal
         * timestamps come out in command-line order. */
        if (s->in[i].has_pending && (best < 0 || s->in[i].pending.ts < s->in[best].pending.ts))
            best = (int)i;
    }
    if (best < 0) return CAP_EOF;
    *pkt = s->in[best].pending;
    s->consumed = best;
    return CAP_PACKET;
}

/* ---- offline read-ahead ------------------------------------------------ */

/* Copies pkt into batch b; false when it does not fit (b is not empty). An
 * empty batch grows to take any packet. */
static bool ra_put(struct ra_batch *b, const struct cap_pkt *pkt)
{
    size_t need = (sizeof(struct ra_rec) + pkt->caplen + 7) & ~(size_t)7;
    if (need > b->cap - b->used) {
        if (b->used) return false;
        uint8_t *d = realloc(b->data, need);
        if (!d) return false;
        b->data = d;
        b->cap = need;
    }
    struct ra_rec r = {pkt->ts, pkt->caplen, pkt->wirelen, pkt->linktype, pkt->file_index};
    memcpy(b->data + b->used, &r, sizeof r);
    memcpy(b->data + b->used + sizeof r, pkt->data, pkt->caplen);
    b->used += need;
    return true;
}

static void *ra_main(void *arg)
{
    struct cap_source *s = arg;
    kw_thread_role("kw-reader", true);
    struct ra *ra = s->ra;
    unsigned tail = 0;
    struct cap_pkt pkt;
    bool carry = false, eof = false; /* carry: pkt did not fit the last batch */
    while (!eof) {
        pthread_mutex_lock(&ra->mu);
        while (ra->n_full == RA_BATCHES && !ra->quit)
            pthread_cond_wait(&ra->freed, &ra->mu);
        bool quit = ra->quit;
        pthread_mutex_unlock(&ra->mu);
        if (quit) break;
        struct ra_batch *b = &ra->b[tail]; /* not the consumer's: n_full < RA_BATCHES */
        b->used = 0;
        for (;;) {
            if (atomic_load_explicit(&s->stop, memory_order_relaxed)) {
                eof = true;
                break;
            }
            if (!carry && cap_next_offline(s, &pkt) != CAP_PACKET) {
                eof = true;
                break;
            }
            carry = !ra_put(b, &pkt);
            if (carry && !b->used) { /* no memory for a batch this large */
                kw_warn("%s: no memory for a packet of %u bytes; skipped",
                        s->in[pkt.file_index].name, pkt.caplen);
                carry = false;
                continue;
            }
            if (carry) break;
        }
        b->eof = eof;
        for (unsigned i = 0; i < s->n_inputs; i++) {
            FILE *f = pcap_file(s->in[i].pc);
            long pos = f ? ftell(f) : -1;
            if (pos > 0) atomic_store_explicit(&s->in[i].pos, (uint64_t)pos, memory_order_relaxed);
        }
        pthread_mutex_lock(&ra->mu);
        ra->n_full++;
        pthread_cond_signal(&ra->filled);
        pthread_mutex_unlock(&ra->mu);
        tail = (tail + 1) % RA_BATCHES;
    }
    return NULL;
}

static enum kw_err ra_start(struct cap_source *s)
{
    struct ra *ra = calloc(1, sizeof *ra);
    if (!ra) return KW_E_NOMEM;
    for (unsigned i = 0; i < RA_BATCHES; i++) {
        ra->b[i].data = malloc(RA_BATCH);
        ra->b[i].cap = RA_BATCH;
        if (!ra->b[i].data) goto fail;
    }
    pthread_mutex_init(&ra->mu, NULL);
    pthread_cond_init(&ra->filled, NULL);
    pthread_cond_init(&ra->freed, NULL);
    s->ra = ra;
    if (pthread_create(&ra->thread, NULL, ra_main, s) == 0) return KW_E_OK;
    s->ra = NULL;
    pthread_cond_destroy(&ra->freed);
    pthread_cond_destroy(&ra->filled);
    pthread_mutex_destroy(&ra->mu);
fail:
    for (unsigned i = 0; i < RA_BATCHES; i++)
        free(ra->b[i].data);
    free(ra);
    return KW_E_NOMEM;
}

static void ra_stop(struct cap_source *s)
{
    struct ra *ra = s->ra;
    pthread_mutex_lock(&ra->mu);
    ra->quit = true;
    pthread_cond_signal(&ra->freed);
    pthread_mutex_unlock(&ra->mu);
    atomic_store_explicit(&s->stop, 1, memory_order_relaxed); /* ends a batch being filled */
    pthread_join(ra->thread, NULL);
    pthread_cond_destroy(&ra->freed);
    pthread_cond_destroy(&ra->filled);
    pthread_mutex_destroy(&ra->mu);
    for (unsigned i = 0; i < RA_BATCHES; i++)
        free(ra->b[i].data);
    free(ra);
    s->ra = NULL;
}

/* The next packet from the batches: the batch of the last one is given
 * back once it is read to its end, so what was handed out stays valid
 * until this call. */
static enum cap_next ra_next(struct cap_source *s, struct cap_pkt *pkt)
{
    struct ra *ra = s->ra;
    for (;;) {
        if (ra->holding) {
            struct ra_batch *b = &ra->b[ra->head];
            if (ra->at < b->used) {
                struct ra_rec r;
                memcpy(&r, b->data + ra->at, sizeof r);
                *pkt = (struct cap_pkt){.ts = r.ts,
                                        .caplen = r.caplen,
                                        .wirelen = r.wirelen,
                                        .linktype = r.linktype,
                                        .data = b->data + ra->at + sizeof r,
                                        .file_index = r.file_index};
                ra->at += (sizeof r + r.caplen + 7) & ~(size_t)7;
                return CAP_PACKET;
            }
            if (b->eof) ra->ended = true;
            pthread_mutex_lock(&ra->mu);
            ra->holding = false;
            ra->head = (ra->head + 1) % RA_BATCHES;
            ra->n_full--;
            pthread_cond_signal(&ra->freed);
            pthread_mutex_unlock(&ra->mu);
        }
        if (ra->ended) return CAP_EOF;
        pthread_mutex_lock(&ra->mu);
        while (ra->n_full == 0)
            pthread_cond_wait(&ra->filled, &ra->mu);
        pthread_mutex_unlock(&ra->mu);
        ra->holding = true;
        ra->at = 0;
    }
}

/* ---- live -------------------------------------------------------------- */

static void cap_activate_error(pcap_t *pc, int rc, const char *ifname, char *errbuf, size_t errlen)
{
    switch (rc) {
    case PCAP_ERROR_NO_SUCH_DEVICE:
        snprintf(errbuf, errlen, "%s: no such interface (list them with `ip link`)", ifname);
        break;
    case PCAP_ERROR_PERM_DENIED:
        snprintf(errbuf, errlen,
                 "%s: permission denied (%s); run as root or give the binary "
                 "cap_net_raw,cap_net_admin",
                 ifname, pcap_geterr(pc));
        break;
    case PCAP_ERROR_PROMISC_PERM_DENIED:
        snprintf(errbuf, errlen, "%s: not allowed to enable promiscuous mode; disable promisc",
                 ifname);
        break;
    case PCAP_ERROR_IFACE_NOT_UP:
        snprintf(errbuf, errlen, "%s: interface is down; bring it up with `ip link set %s up`",
                 ifname, ifname);
        break;
    default:
        snprintf(errbuf, errlen, "%s: cannot start capture: %s (%s)", ifname, pcap_statustostr(rc),
                 pcap_geterr(pc));
        break;
    }
}

/* PACKET_FANOUT_HASH: the kernel's symmetric flow hash (addresses and
 * ports sorted, so both directions of a TCP/UDP flow meet; through VLAN
 * tags, GRE and IP-in-IP to the inner packet). The defrag flag reassembles
 * IPv4 fragments before the hash: without it a fragment (no ports) would
 * go where its address pair hashes, not where its flow's other packets
 * go. The first socket asks the kernel for an unused group id (two
 * keywardens on one interface must not share, and split, one group);
 * the others join it. */
static enum kw_err join_fanout(struct cap_input *in, unsigned i, int *group, char *errbuf,
                               size_t errlen)
{
    int fd = pcap_fileno(in->pc);
    /* the id in the low 16 bits, type and flags in the high 16 */
    uint32_t type = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG;
    uint32_t arg = i == 0 ? (type | PACKET_FANOUT_FLAG_UNIQUEID) << 16
                          : ((uint32_t)*group & 0xffff) | type << 16;
    int val = (int)arg;
    if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &val, sizeof val) != 0) {
        snprintf(errbuf, errlen, "%s: cannot join a PACKET_FANOUT group (socket %u): %s", in->name,
                 i + 1, strerror(errno));
        return KW_E_IO;
    }
    if (i == 0) {
        socklen_t len = sizeof val;
        if (getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &val, &len) != 0) {
            snprintf(errbuf, errlen, "%s: cannot read the PACKET_FANOUT group id: %s", in->name,
                     strerror(errno));
            return KW_E_IO;
        }
        *group = val & 0xffff;
    }
    /* Until now the socket got every packet of the interface; those
     * (stamped before this instant) are the other sockets' too. */
    in->joined = kw_ts_wall();
    return KW_E_OK;
}

static enum kw_err open_member(struct cap_source *s, const struct cap_config *cfg, unsigned i,
                               int *group, char *errbuf, size_t errlen)
{
    char perr[PCAP_ERRBUF_SIZE] = "";
    const char *ifname = cfg->interface;
    pcap_t *pc = pcap_create(ifname, perr);
    if (!pc) {
        snprintf(errbuf, errlen, "%s: %s", ifname, perr);
        return KW_E_IO;
    }
    struct cap_input *in = &s->in[i];
    in->pc = pc;
    in->name = ifname;
    in->fd = -1;
    s->n_inputs = i + 1;
    /* Not immediate mode: libpcap then uses TPACKET_V3, whose blocks are
     * handed over when full or when this timeout retires them. */
    if (pcap_set_snaplen(pc, cfg->snaplen > 0 ? cfg->snaplen : 262144) != 0 ||
        pcap_set_promisc(pc, cfg->promisc) != 0 || pcap_set_timeout(pc, s->poll_ms) != 0 ||
        pcap_set_buffer_size(pc, (cfg->buffer_mb > 0 ? cfg->buffer_mb : 64) << 20) != 0) {
        snprintf(errbuf, errlen, "%s: cannot configure capture: %s", ifname, pcap_geterr(pc));
        return KW_E_CONFIG;
    }
    int rc = pcap_activate(pc);
    if (rc < 0) {
        cap_activate_error(pc, rc, ifname, errbuf, errlen);
        return rc == PCAP_ERROR_NO_SUCH_DEVICE ? KW_E_NOTFOUND : KW_E_IO;
    }
    if (rc > 0 && i == 0) kw_warn("%s: %s (%s)", ifname, pcap_statustostr(rc), pcap_geterr(pc));
    in->linktype = pcap_datalink(pc);
    enum kw_err e = join_fanout(in, i, group, errbuf, errlen);
    if (e != KW_E_OK && cfg->fanout > 1) return e;
    if (e != KW_E_OK) /* one socket works without a group, as before fanout */
    {
        kw_warn("%s; IPv4 fragments are reassembled by keywarden", errbuf);
        errbuf[0] = '\0';
    }
    e = cap_set_filter(pc, cfg->bpf, ifname, errbuf, errlen);
    if (e != KW_E_OK) return e;
    /* pcap_dispatch can block forever on a quiet link despite the timeout
     * (DEPENDENCIES.md): read non-blocking and wait in poll() ourselves. */
    if (pcap_setnonblock(pc, 1, perr) != 0) {
        snprintf(errbuf, errlen, "%s: cannot set non-blocking mode: %s", ifname, perr);
        return KW_E_IO;
    }
    in->fd = pcap_get_selectable_fd(pc);
    if (in->fd < 0) {
        snprintf(errbuf, errlen, "%s: capture has no selectable descriptor", ifname);
        return KW_E_UNSUPPORTED;
    }
    return KW_E_OK;
}

static enum kw_err cap_open_live(struct cap_source *s, const struct cap_config *cfg, char *errbuf,
                                 size_t errlen)
{
    unsigned n = cfg->fanout ? cfg->fanout : 1;
    if (n > CAP_MAX_FILES) {
        snprintf(errbuf, errlen, "too many capture sockets (%u); at most %d", n, CAP_MAX_FILES);
        return KW_E_LIMIT;
    }
    s->live = true;
    s->poll_ms = cfg->poll_ms > 0 ? cfg->poll_ms : 100;
    int group = 0;
    for (unsigned i = 0; i < n; i++) {
        enum kw_err e = open_member(s, cfg, i, &group, errbuf, errlen);
        if (e != KW_E_OK) return e;
    }
    return KW_E_OK;
}

/* One writer (the socket's thread): a plain load and store, no locked
 * add per packet, and cap_get_stats may read it from another thread. */
/* `wait_ms`: how long poll() may wait. One socket read by the only packet
 * thread waits poll_ms (its timers run at that pace); a group member waits
 * as its worker asks (cap_next_member), and also wakes on `wake_fd`. */
static enum cap_next cap_next_live(struct cap_source *s, unsigned i, int wait_ms, int wake_fd,
                                   struct cap_pkt *pkt)
{
    struct cap_input *in = &s->in[i];
    for (int waited = 0;;) {
        bool stop = atomic_load_explicit(&s->stop, memory_order_relaxed);
        if (stop) {
            /* Stopped: what the kernel already put in the ring is read and
             * processed, not thrown away (a loaded sensor can be seconds
             * behind its ring), for at most 2 s: a flood keeps it full. */
            if (!in->drain_until) in->drain_until = kw_ts_wall() + 2000000;
            if (kw_ts_wall() > in->drain_until) return CAP_EOF;
        }
        struct pcap_pkthdr *h;
        const u_char *data;
        int rc = pcap_next_ex(in->pc, &h, &data);
        if (rc == 1 && cap_ts(h) < in->joined) continue; /* before it joined: a copy */
        if (rc != 1 && stop) return CAP_EOF;             /* the ring is empty */
        if (rc == 1) {
            pkt->ts = cap_ts(h);
            pkt->caplen = h->caplen;
            pkt->wirelen = h->len;
            pkt->linktype = in->linktype;
            pkt->data = data;
            pkt->file_index = 0;
            count(&in->packets, 1);
            count(&in->bytes, pkt->wirelen);
            return CAP_PACKET;
        }
        if (rc == PCAP_ERROR_BREAK) return CAP_EOF;
        if (rc < 0) {
            count(&in->read_errors, 1);
            kw_warn("%s: capture error: %s", in->name, pcap_geterr(in->pc));
            return CAP_ERROR;
        }
        if (waited) /* woke up but the block held nothing for us */
            return CAP_TIMEOUT;
        struct pollfd pfd[2] = {{.fd = in->fd, .events = POLLIN},
                                {.fd = wake_fd, .events = POLLIN}};
        int pr = poll(pfd, wake_fd >= 0 ? 2 : 1, wait_ms);
        if (pr == 0) return CAP_TIMEOUT;
        if (pr < 0) {
            if (errno == EINTR) continue; /* a signal: the loop re-checks the stop flag */
            count(&in->read_errors, 1);
            return CAP_ERROR;
        }
        if (wake_fd >= 0 && (pfd[1].revents & POLLIN)) kw_wake_drain(wake_fd);
        if (pfd[0].revents & (POLLERR | POLLNVAL)) {
            count(&in->read_errors, 1);
            kw_warn("%s: capture descriptor reported an error (interface gone?)", in->name);
            return CAP_ERROR;
        }
        waited = 1;
    }
}

/* ---- public ------------------------------------------------------------ */

enum kw_err cap_open(const struct cap_config *cfg, struct cap_source **out, char *errbuf,
                     size_t errlen)
{
    *out = NULL;
    if (errlen) errbuf[0] = '\0';
    if ((cfg->interface != NULL) == (cfg->n_files > 0)) {
        snprintf(errbuf, errlen, "give either an interface (-i) or capture files (-r), not %s",
                 cfg->interface ? "both" : "neither");
        return KW_E_INVAL;
    }
    struct cap_source *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(errbuf, errlen, "out of memory opening capture");
        return KW_E_NOMEM;
    }
    s->consumed = -1;
    enum kw_err e = cfg->interface ? cap_open_live(s, cfg, errbuf, errlen)
                                   : cap_open_files(s, cfg, errbuf, errlen);
    /* regular files only: a pipe (`tcpdump -w - | keywarden run -r -`) is
     * read as it comes, not held back until a batch is full */
    if (e == KW_E_OK && !cfg->interface && cfg->read_ahead && !s->size_unknown &&
        (e = ra_start(s)) != KW_E_OK)
        snprintf(errbuf, errlen, "out of memory for the read-ahead of the capture files");
    if (e != KW_E_OK) {
        cap_close(s);
        return e;
    }
    *out = s;
    return KW_E_OK;
}

enum cap_next cap_next(struct cap_source *s, struct cap_pkt *pkt)
{
    if (s->live) return cap_next_live(s, 0, s->poll_ms, -1, pkt);
    if (atomic_load_explicit(&s->stop, memory_order_relaxed)) return CAP_EOF;
    enum cap_next r = s->ra ? ra_next(s, pkt) : cap_next_offline(s, pkt);
    if (r == CAP_PACKET) {
        s->st.packets++;
        s->st.bytes += pkt->wirelen;
    }
    return r;
}

unsigned cap_members(const struct cap_source *s)
{
    return s->live ? s->n_inputs : 0;
}

enum cap_next cap_next_member(struct cap_source *s, unsigned i, int wake_fd, bool soon,
                              struct cap_pkt *pkt)
{
    int wait = soon && s->poll_ms > CAP_MEMBER_WAIT_MS ? CAP_MEMBER_WAIT_MS : s->poll_ms;
    return cap_next_live(s, i, wait, wake_fd, pkt);
}

kw_ts cap_settled(const struct cap_source *s, kw_ts wall)
{
    return wall - (kw_ts)s->poll_ms * 1000 - 10000; /* + 10 ms for the kernel's timer */
}

void cap_break(struct cap_source *s)
{
    atomic_store_explicit(&s->stop, 1, memory_order_relaxed);
}

unsigned cap_workers_auto(unsigned configured, bool live)
{
    if (configured) return configured;
    if (!live) return 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 2 ? (unsigned)(cores - 1 > 64 ? 64 : cores - 1) : 1;
}

void cap_get_stats(struct cap_source *s, struct cap_stats *st)
{
    *st = s->st;
    if (!s->live) {
        for (unsigned i = 0; i < s->n_inputs; i++) {
            st->truncated_files += atomic_load_explicit(&s->in[i].truncated, memory_order_relaxed);
            st->read_errors += atomic_load_explicit(&s->in[i].read_errors, memory_order_relaxed);
        }
        return;
    }
    /* Kernel counters since open, every socket's. On Linux `lo` each packet
     * is seen on both its way out and in, so ps_recv counts it twice
     * (docs/capture.md). ps_ifdrop is the interface's, the same for every
     * socket: taken once. */
    for (unsigned i = 0; i < s->n_inputs; i++) {
        struct cap_input *in = &s->in[i];
        uint64_t pk = atomic_load_explicit(&in->packets, memory_order_relaxed);
        st->packets += pk;
        st->bytes += atomic_load_explicit(&in->bytes, memory_order_relaxed);
        st->read_errors += atomic_load_explicit(&in->read_errors, memory_order_relaxed);
        st->socket_packets[i] = pk;
        st->sockets = i + 1;
        struct pcap_stat ps;
        if (pcap_stats(in->pc, &ps) == 0) {
            st->kernel_recv += ps.ps_recv;
            st->kernel_drop += ps.ps_drop;
            if (i == 0) st->iface_drop = ps.ps_ifdrop;
        }
    }
}

void cap_progress(const struct cap_source *s, uint64_t *done, uint64_t *total)
{
    *done = 0;
    *total = 0;
    if (s->live) return;
    for (unsigned i = 0; i < s->n_inputs; i++) {
        const struct cap_input *in = &s->in[i];
        if (s->ra) { /* the reader's FILE is the reader's */
            *done += atomic_load_explicit(&in->pos, memory_order_relaxed);
        } else {
            FILE *f = pcap_file(in->pc);
            long pos = f ? ftell(f) : -1;
            if (pos > 0) *done += (uint64_t)pos;
        }
        *total += in->size;
    }
    if (s->size_unknown) *total = 0;
}

void cap_close(struct cap_source *s)
{
    if (!s) return;
    if (s->ra) ra_stop(s); /* before the handles it reads are closed */
    for (unsigned i = 0; i < s->n_inputs; i++) {
        if (s->in[i].pc) pcap_close(s->in[i].pc);
        free(s->in[i].fbuf); /* after the FILE that used it is closed */
    }
    free(s);
}
