/* bench_stream: throughput of the packet path up to reassembled streams,
 * as a ratio to a bare libpcap read loop over the same file, in one run.
 *
 *   bench_stream FILE [ROUNDS [REPS]]
 *
 * (a) pcap_next_ex alone; (b) pcap_next_ex + dec_packet + flow_table_packet
 * with a consumer that consumes every byte (no output), then a flush. A
 * pass reads the file REPS times (default 10; a fresh flow table each time,
 * created and destroyed inside the timing) so small files time well. Each
 * pass is run ROUNDS times (default 3) alternately and the best of each is
 * reported, so page cache and a noisy neighbour affect both alike. Prints
 * packets/s, MB/s of captured bytes, the ratio (b)/(a), and peak RSS. The
 * one thing to know: (b) is what `keywarden streams` costs minus the file
 * writes, i.e. the decode + flow + reassembly share of the packet path. */
#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "dec.h"
#include "flow.h"

struct pass {
    double secs;
    uint64_t packets, bytes;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t eat(void *u, struct flow *f, int dir, const uint8_t *p, size_t len, kw_ts ts)
{
    uint64_t *sum = u;
    *sum += len + (len ? p[0] : 0); /* touch the bytes */
    return len;
}

static int bare(const char *file, struct pass *r)
{
    char eb[PCAP_ERRBUF_SIZE];
    double t0 = now_s();
    pcap_t *p = pcap_open_offline(file, eb);
    if (!p) {
        fprintf(stderr, "bench_stream: %s\n", eb);
        return -1;
    }
    struct pcap_pkthdr *h;
    const u_char *d;
    memset(r, 0, sizeof(*r));
    while (pcap_next_ex(p, &h, &d) == 1) {
        r->packets++;
        r->bytes += h->caplen;
    }
    pcap_close(p);
    r->secs = now_s() - t0;
    return 0;
}

static int full(const char *file, struct pass *r, struct flow_counters *out)
{
    char eb[PCAP_ERRBUF_SIZE];
    double t0 = now_s();
    pcap_t *p = pcap_open_offline(file, eb);
    if (!p) {
        fprintf(stderr, "bench_stream: %s\n", eb);
        return -1;
    }
    uint64_t sum = 0;
    struct flow_config cfg;
    flow_config_default(&cfg);
    cfg.hash_key = (struct kw_hkey){0x5eed, 0x5eed};
    struct flow_callbacks cb = {.user = &sum, .on_data = eat};
    struct flow_table *t = NULL;
    if (flow_table_new(&cfg, &cb, &t) != KW_E_OK) {
        pcap_close(p);
        return -1;
    }
    struct dec_ctx dec;
    struct dec_config dc;
    dec_config_default(&dc);
    dec_ctx_init(&dec, &dc);
    int lt = pcap_datalink(p);
    struct pcap_pkthdr *h;
    const u_char *d;
    struct dec_packet dp;
    kw_ts last = 0;
    memset(r, 0, sizeof(*r));
    while (pcap_next_ex(p, &h, &d) == 1) {
        r->packets++;
        r->bytes += h->caplen;
        kw_ts ts = (kw_ts)h->ts.tv_sec * 1000000 + h->ts.tv_usec;
        last = ts;
        if (dec_packet(&dec, lt, ts, d, h->caplen, h->len, &dp) == DEC_OK)
            flow_table_packet(t, &dp);
    }
    flow_table_flush(t, last);
    *out = *flow_table_counters(t);
    flow_table_destroy(t);
    pcap_close(p);
    r->secs = now_s() - t0;
    return sum == 0 ? 1 : 0; /* keep the consumer's work observable */
}

static void show(const char *name, const struct pass *r)
{
    printf("%-34s %10.0f packets/s %9.1f MB/s  (%llu packets, %.3f s)\n", name,
           (double)r->packets / r->secs, (double)r->bytes / r->secs / 1e6,
           (unsigned long long)r->packets, r->secs);
}

/* Runs one kind of pass `reps` times and sums. */
static int pass_reps(const char *file, bool with_flow, int reps, struct pass *sum,
                     struct flow_counters *fc)
{
    memset(sum, 0, sizeof(*sum));
    for (int k = 0; k < reps; k++) {
        struct pass x;
        if ((with_flow ? full(file, &x, fc) : bare(file, &x)) < 0) return -1;
        sum->secs += x.secs;
        sum->packets += x.packets;
        sum->bytes += x.bytes;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_stream FILE [ROUNDS [REPS]]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    int reps = argc > 3 ? atoi(argv[3]) : 10;
    rounds = rounds < 1 ? 1 : rounds;
    reps = reps < 1 ? 1 : reps;
    struct pass best_a = {0}, best_b = {0};
    struct flow_counters fc;
    for (int i = 0; i < rounds; i++) {
        struct pass a, b;
        if (pass_reps(argv[1], false, reps, &a, &fc) || pass_reps(argv[1], true, reps, &b, &fc))
            return 1;
        if (!best_a.secs || a.secs < best_a.secs) best_a = a;
        if (!best_b.secs || b.secs < best_b.secs) best_b = b;
    }
    show("(a) pcap_next_ex", &best_a);
    show("(b) + dec + flow + reassembly", &best_b);
    printf("ratio (b)/(a) %.2f (best of %d rounds of %d reads each)\n", best_a.secs / best_b.secs,
           rounds, reps);
    printf("flows %llu, segments %llu, delivered %llu bytes, gaps %llu, memcap hits %llu\n",
           (unsigned long long)fc.flows_created, (unsigned long long)fc.tcp_segments,
           (unsigned long long)fc.tcp_bytes_delivered, (unsigned long long)fc.tcp_gaps,
           (unsigned long long)fc.memcap_hits);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS %.1f MB\n", (double)ru.ru_maxrss / 1024.0);
    return 0;
}
