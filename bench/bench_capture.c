/* bench_capture: decode throughput against the ceiling. Reads each file
 * given on the command line twice per round — a bare pcap_next_ex loop,
 * then pcap_next_ex + dec_packet — and prints packets/s and MB/s of both
 * and their ratio. Run it on a file in the page cache (read it once
 * first); not a ctest. Usage: bench_capture FILE [ROUNDS] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <pcap/pcap.h>

#include "dec.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct run {
    double secs;
    unsigned long long pkts, bytes, ok;
};

static int one_pass(const char *path, struct dec_ctx *ctx, struct run *r)
{
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline(path, err);
    if (!pc) {
        fprintf(stderr, "%s: %s\n", path, err);
        return -1;
    }
    int lt = pcap_datalink(pc);
    struct pcap_pkthdr *h;
    const u_char *d;
    double t0 = now_s();
    while (pcap_next_ex(pc, &h, &d) == 1) {
        r->pkts++;
        r->bytes += h->caplen;
        if (ctx) {
            struct dec_packet out;
            kw_ts ts = (kw_ts)h->ts.tv_sec * 1000000 + h->ts.tv_usec;
            r->ok += dec_packet(ctx, lt, ts, d, h->caplen, h->len, &out) == DEC_OK;
        }
    }
    r->secs += now_s() - t0;
    pcap_close(pc);
    return 0;
}

static void report(const char *what, const struct run *r)
{
    printf("%-22s %10.0f pkt/s %9.1f MB/s  (%llu packets, %.3f s)\n", what, r->pkts / r->secs,
           r->bytes / r->secs / 1e6, r->pkts, r->secs);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE [ROUNDS]\n", argv[0]);
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    struct run bare = {0}, dec = {0};
    struct dec_ctx ctx;
    dec_ctx_init(&ctx, NULL);
    for (int i = 0; i < rounds; i++) {
        if (one_pass(argv[1], NULL, &bare) != 0 || one_pass(argv[1], &ctx, &dec) != 0) return 1;
    }
    report("pcap_next_ex", &bare);
    report("pcap_next_ex+dec", &dec);
    printf("ratio decode/bare: %.2f; decoded ok %llu of %llu\n",
           (dec.pkts / dec.secs) / (bare.pkts / bare.secs), dec.ok, dec.pkts);
    return 0;
}
