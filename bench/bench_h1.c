/* bench_h1: throughput of the HTTP/1.x parser alone (no packets, no
 * output) over an in-memory keep-alive conversation of realistic API
 * traffic: ~10 request headers incl. Authorization, JSON bodies, every
 * fourth response chunked, requests pipelined ~8 segments deep. Fed in
 * 1460-byte slices, the server side answering only requests already sent
 * (so every response is matched to its own request). Prints bytes/s and
 * transactions/s, by wall and CPU time. Usage: bench_h1 [MB, default 256] */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "h1.h"

static void on_txn(void *user, const struct h1_txn_view *t)
{
    (*(size_t *)user) += t->resp ? 1 : 0;
}

static size_t build(char *cli, char *srv, size_t *cn, size_t *sn, int i)
{
    char body[400];
    int bl =
        snprintf(body, sizeof(body),
                 "{\"id\":%d,\"customer\":\"cus_%08d\",\"amount\":%d.%02d,\"currency\":\"EUR\","
                 "\"items\":[{\"sku\":\"A-%d\",\"qty\":2},{\"sku\":\"B-%d\",\"qty\":1}],"
                 "\"status\":\"paid\",\"note\":\"%060d\"}",
                 i, i * 7, i % 1000, i % 100, i, i + 1, i);
    *cn += (size_t)sprintf(
        cli + *cn,
        "%s /v1/customers/%d/orders?limit=50&page=%d HTTP/1.1\r\n"
        "Host: api.acme.internal\r\nUser-Agent: acme-etl/2.3 (python-requests)\r\n"
        "Accept: application/json\r\nAccept-Encoding: gzip, deflate\r\n"
        "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhY21lIn0.c2lnbmF0dXJl%d\r\n"
        "X-Request-Id: 7f3c%08d\r\nConnection: keep-alive\r\n"
        "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
        i % 3 ? "GET" : "POST", i, i % 7, i, i, i % 3 ? 0 : bl, i % 3 ? "" : body);
    if (i % 4 == 0)
        *sn += (size_t)sprintf(srv + *sn,
                               "HTTP/1.1 200 OK\r\nDate: Sat, 28 Mar 2026 02:13:05 GMT\r\n"
                               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                               "Cache-Control: no-store\r\nX-Request-Id: 7f3c%08d\r\n\r\n"
                               "%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n",
                               i, bl, body, bl, body);
    else
        *sn += (size_t)sprintf(srv + *sn,
                               "HTTP/1.1 200 OK\r\nDate: Sat, 28 Mar 2026 02:13:05 GMT\r\n"
                               "Content-Type: application/json\r\nContent-Length: %d\r\n"
                               "Cache-Control: no-store\r\nX-Request-Id: 7f3c%08d\r\n\r\n%s",
                               bl, i, body);
    return 1;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 256;
    size_t cap = 8u << 20, cn = 0, sn = 0, ntx = 0, maxn = cap / 256;
    char *cli = malloc(cap), *srv = malloc(cap);
    size_t *cend = malloc(maxn * sizeof(size_t)), *send = malloc(maxn * sizeof(size_t));
    if (!cli || !srv || !cend || !send) return 1;
    int n = 0;
    while (cn + 4096 < cap && sn + 4096 < cap && (size_t)n < maxn) {
        n += (int)build(cli, srv, &cn, &sn, n);
        cend[n - 1] = cn; /* where transaction n-1 ends on each side */
        send[n - 1] = sn;
    }
    size_t per_round = cn + sn, rounds = (mb << 20) / per_round + 1, seen = 0;
    struct h1_conn *c = h1_conn_new(NULL, on_txn, &seen);
    double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    for (size_t r = 0; r < rounds; r++) {
        size_t cp = 0, sp = 0, ce = 0, se = 0, sent = 0;
        while (cp < cn || sp < sn) {
            /* 8 request segments, then the answers to the requests sent */
            for (int k = 0; k < 8 && ce < cn; k++) {
                ce = ce + 1460 < cn ? ce + 1460 : cn;
                cp += h1_feed(c, 0, (const uint8_t *)cli + cp, ce - cp, 1);
            }
            while (sent < (size_t)n && cend[sent] <= ce)
                sent++;
            size_t upto = sent ? send[sent - 1] : 0;
            while (se < upto) {
                se = se + 1460 < upto ? se + 1460 : upto;
                sp += h1_feed(c, 1, (const uint8_t *)srv + sp, se - sp, 1);
            }
        }
        ntx += (size_t)n;
    }
    h1_close(c, 2);
    double dt = clock_s(CLOCK_MONOTONIC) - t0, ct = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    double bytes = (double)per_round * (double)rounds;
    /* CPU time as well as wall time: on a shared machine the wall clock
     * also counts the time other processes held the core */
    printf("bench_h1: %.0f MB in %.3f s (cpu %.3f s): %.2f GB/s (cpu %.2f GB/s), %.2f M "
           "transactions/s (%zu txns, %zu matched, %zu bytes/txn)\n",
           bytes / 1e6, dt, ct, bytes / dt / 1e9, bytes / ct / 1e9, (double)ntx / dt / 1e6, ntx,
           seen, per_round / (size_t)n);
    const struct h1_counters *k = h1_conn_counters(c);
    bool bad = k->parse_errors || k->resyncs || k->unmatched_requests || k->unmatched_responses ||
               seen != ntx;
    if (bad)
        printf("bench_h1: UNEXPECTED parse_errors=%llu resyncs=%llu unmatched=%llu "
               "evicted=%llu truncated=%llu\n",
               (unsigned long long)k->parse_errors, (unsigned long long)k->resyncs,
               (unsigned long long)k->unmatched_requests, (unsigned long long)k->pending_evicted,
               (unsigned long long)k->arena_truncations);
    h1_conn_destroy(c);
    free(cli);
    free(srv);
    free(cend);
    free(send);
    return bad ? 1 : 0;
}
