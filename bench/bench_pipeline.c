/* bench_pipeline: one stage of the packet path per process, so that
 * bench/run.sh can time each stage, and keywarden's peers, the same way
 * (wall time and peak RSS from /usr/bin/time) on the same file.
 *
 *   bench_pipeline MODE FILE [REPS]
 *
 * MODE is cumulative:
 *   bare    pcap_next_ex alone (the ceiling)
 *   decode  + dec_packet
 *   flow    + flow table and TCP reassembly, a consumer that takes every byte
 *   http    + one HTTP/1.x parser per TCP flow, h1_txn_fill (normalised path,
 *           template) and credential extraction for every transaction; no
 *           attribution, judge, records or database (that is `keywarden run`)
 *   http2   as http, with one HTTP/2 reader per TCP flow instead (frames,
 *           HPACK through libnghttp2, streams), h2_txn_fill and credentials;
 *           prints the readers' memory high-water mark (bench/h2.sh)
 *
 * The one thing to know: every flow is parsed as HTTP here (no content
 * sniffing, no nDPI), so on a capture with TLS or UDP the http mode does
 * less work than `keywarden run` would skip anyway; on the dense capture it
 * is exactly the HTTP share of the full path. Prints one line of
 * key=value pairs (the in-process time excludes start-up), not a ctest. */
#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cred.h"
#include "dec.h"
#include "flow.h"
#include "h1.h"
#include "h2.h"
#include "kw_txn.h"

enum mode { M_BARE, M_DECODE, M_FLOW, M_HTTP, M_HTTP2 };

struct bench {
    enum mode mode;
    uint64_t packets, bytes, delivered, touched, gaps, txns, reqs, matched, creds, flows;
    struct cred_config cred_cfg;
    struct cred_stats cred_st;
    struct kw_txn txn;
    struct h1_counters h1_total;
    struct h2_budget h2_budget; /* every reader's bytes, HPACK tables included */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_txn(void *user, const struct h1_txn_view *v)
{
    struct bench *b = user;
    memset(&b->txn, 0, sizeof b->txn);
    h1_txn_fill(v, &b->txn);
    if (v->req)
        b->creds += cred_extract_ex(&b->cred_cfg, v->req->hdrs, v->req->n_hdrs, v->req->target,
                                    &b->txn.cred, &b->cred_st);
    b->txns++;
    b->reqs += v->req != NULL;
    b->matched += v->req && v->resp;
}

static void on_h2_txn(void *user, const struct h2_txn_view *v)
{
    struct bench *b = user;
    memset(&b->txn, 0, sizeof b->txn);
    h2_txn_fill(v, &b->txn);
    if (v->req)
        b->creds += cred_extract_ex(&b->cred_cfg, v->req->hdrs, v->req->n_hdrs, v->req->target,
                                    &b->txn.cred, &b->cred_st);
    b->txns++;
    b->reqs += v->req != NULL;
    b->matched += v->req && v->resp;
}

static void on_start(void *user, struct flow *f, kw_ts ts)
{
    struct bench *b = user;
    (void)ts;
    b->flows++;
    f->app = NULL;
    if (b->mode == M_HTTP && f->proto == 6)
        f->app = h1_conn_new(NULL, on_txn, b);
    if (b->mode == M_HTTP2 && f->proto == 6)
        f->app = h2_conn_new_in(NULL, &b->h2_budget, false, on_h2_txn, b);
}

static size_t on_data(void *user, struct flow *f, int dir, const uint8_t *p, size_t len, kw_ts ts)
{
    struct bench *b = user;
    b->delivered += len;
    if (f->app)
        return b->mode == M_HTTP2 ? h2_feed(f->app, dir, p, len, ts)
                                  : h1_feed(f->app, dir, p, len, ts);
    b->touched += len ? p[len - 1] : 0; /* read the bytes, as a consumer would */
    return len;
}

static void on_gap(void *user, struct flow *f, int dir, uint64_t len, kw_ts ts)
{
    struct bench *b = user;
    b->gaps++;
    if (f->app && b->mode == M_HTTP2)
        h2_gap(f->app, dir, len, ts);
    else if (f->app)
        h1_gap(f->app, dir, len, ts);
}

static void on_end(void *user, struct flow *f, enum flow_end_reason why, kw_ts ts)
{
    struct bench *b = user;
    (void)why;
    if (!f->app)
        return;
    if (b->mode == M_HTTP2) {
        h2_close(f->app, ts);
        h2_conn_destroy(f->app);
        f->app = NULL;
        return;
    }
    h1_close(f->app, ts);
    h1_counters_add(&b->h1_total, h1_conn_counters(f->app));
    h1_conn_destroy(f->app);
    f->app = NULL;
}

static int one_pass(struct bench *b, const char *file)
{
    char eb[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline(file, eb);
    if (!pc) {
        fprintf(stderr, "bench_pipeline: %s\n", eb);
        return -1;
    }
    struct flow_table *t = NULL;
    if (b->mode >= M_FLOW) {
        struct flow_config cfg;
        flow_config_default(&cfg);
        cfg.hash_key = (struct kw_hkey){0x5eed, 0x5eed};
        struct flow_callbacks cb = {
            .user = b, .on_flow_start = on_start, .on_data = on_data, .on_gap = on_gap,
            .on_flow_end = on_end};
        if (flow_table_new(&cfg, &cb, &t) != KW_E_OK) {
            pcap_close(pc);
            return -1;
        }
    }
    struct dec_ctx dec;
    struct dec_config dc;
    dec_config_default(&dc);
    dec_ctx_init(&dec, &dc);
    int lt = pcap_datalink(pc);
    struct pcap_pkthdr *h;
    const u_char *d;
    struct dec_packet dp;
    kw_ts last = 0;
    while (pcap_next_ex(pc, &h, &d) == 1) {
        b->packets++;
        b->bytes += h->caplen;
        if (b->mode == M_BARE)
            continue;
        kw_ts ts = (kw_ts)h->ts.tv_sec * 1000000 + h->ts.tv_usec;
        if (ts > last)
            last = ts;
        if (dec_packet(&dec, lt, ts, d, h->caplen, h->len, &dp) == DEC_OK) {
            b->delivered += b->mode == M_DECODE ? dp.payload_len : 0;
            if (t)
                flow_table_packet(t, &dp);
        }
    }
    if (t) {
        flow_table_flush(t, last);
        flow_table_destroy(t);
    }
    pcap_close(pc);
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const names[] = {"bare", "decode", "flow", "http", "http2"};
    if (argc < 3) {
        fprintf(stderr, "usage: bench_pipeline bare|decode|flow|http|http2 FILE [REPS]\n");
        return 2;
    }
    static struct bench b;
    b.mode = (enum mode)-1;
    for (int i = 0; i < 5; i++)
        if (strcmp(argv[1], names[i]) == 0)
            b.mode = (enum mode)i;
    if ((int)b.mode < 0) {
        fprintf(stderr, "bench_pipeline: unknown mode %s\n", argv[1]);
        return 2;
    }
    int reps = argc > 3 ? atoi(argv[3]) : 1;
    cred_config_default(&b.cred_cfg);
    double t0 = now_s();
    for (int i = 0; i < (reps < 1 ? 1 : reps); i++)
        if (one_pass(&b, argv[2]) != 0)
            return 1;
    double secs = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("mode=%s packets=%llu bytes=%llu secs=%.4f pps=%.0f MBps=%.1f flows=%llu "
           "delivered=%llu gaps=%llu txns=%llu requests=%llu matched=%llu creds=%llu parse_errors=%llu "
           "resyncs=%llu "
           "maxrss_kb=%ld touched=%llu h2_mem_peak=%llu\n",
           names[b.mode], (unsigned long long)b.packets, (unsigned long long)b.bytes, secs,
           (double)b.packets / secs, (double)b.bytes / secs / 1e6, (unsigned long long)b.flows,
           (unsigned long long)b.delivered, (unsigned long long)b.gaps,
           (unsigned long long)b.txns, (unsigned long long)b.reqs,
           (unsigned long long)b.matched, (unsigned long long)b.creds,
           (unsigned long long)b.h1_total.parse_errors, (unsigned long long)b.h1_total.resyncs,
           ru.ru_maxrss, (unsigned long long)(b.touched & 0xff),
           (unsigned long long)b.h2_budget.peak);
    return 0;
}
