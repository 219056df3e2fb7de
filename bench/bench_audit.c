/* bench_audit: how many audit rows per second the database writer sustains
 * (issue 13 asks >= 200k rows/s), through the real path: audit_record ->
 * ring -> the dbw writer thread -> prepared INSERTs in large transactions
 * -> SQLite (WAL) on a file, indexes and the natural key included.
 *
 *   bench_audit [ROWS] [DB]      (default 300000 rows, /tmp/kw-bench-audit.db)
 *
 * Rows look like the small-API capture's: 64 credentials, 48 paths on 6
 * templates, 512 client addresses, 200 µs of packet time apart; their
 * texts are made before the clock starts. The producer waits when the ring
 * is full (as an offline replay does), so the time from the first row to
 * audit_flush is the writer's. Prints one line of key=value pairs; not a
 * ctest. The writer's CPU time is the process's minus the producer
 * thread's (producer_cpu_secs; the dbw thread is the only other one busy).
 * KW_BATCH and KW_QUEUE set audit_config.batch_max and queue_max (0: the
 * defaults, 4096 and 16384) to see what other batch and ring sizes would buy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long rows = argc > 1 ? atol(argv[1]) : 300000;
    const char *db = argc > 2 ? argv[2] : "/tmp/kw-bench-audit.db";
    char p[512];
    for (const char *sfx = "";; sfx = sfx[0] ? NULL : "-wal") {
        if (!sfx) break;
        snprintf(p, sizeof p, "%s%s", db, sfx);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s-shm", db);
    unlink(p);
    struct audit_config c = {
        .db_path = db,
        .block_when_full = true,
        .batch_max = (unsigned)(getenv("KW_BATCH") ? atoi(getenv("KW_BATCH")) : 0),
        .queue_max = (unsigned)(getenv("KW_QUEUE") ? atoi(getenv("KW_QUEUE")) : 0)};
    struct audit *a;
    if (audit_new(&c, &a) != KW_E_OK) {
        fprintf(stderr, "bench_audit: cannot open %s\n", db);
        return 1;
    }
    static struct kw_txn t;
    kw_txn_clear(&t);
    static const char *const tpl[] = {
        "/v1/customers/{id}/invoices", "/v1/orders/{id}",          "/v1/orders", "/v1/exports/{id}",
        "/v2/inventory/items/{id}",    "/v1/payments/{id}/refunds"};
    /* the texts are made before the clock starts: the producer's time is
     * then audit_record's, not snprintf's */
    static char fps[64][72], hints[64][40], paths[48][32];
    for (unsigned k = 0; k < 64; k++) {
        snprintf(fps[k], sizeof fps[k], "sha256:%064x", k * 2654435761u);
        snprintf(hints[k], sizeof hints[k], "kwt_…%04x", k);
    }
    for (unsigned k = 0; k < 48; k++)
        snprintf(paths[k], sizeof paths[k], "/v1/orders/%u", 1000 + k * 97);
    snprintf(t.hostname, sizeof t.hostname, "api.dense.example");
    t.cred.kind = KW_CRED_BEARER;
    t.dst = (struct kw_addr){.family = 4, .a = {10, 20, 0, 10}};
    t.dport = 8080;
    double t0 = now_s();
    for (long i = 0; i < rows; i++) {
        unsigned cred = (unsigned)(i * 7919) % 64, path = (unsigned)(i * 31) % 48;
        t.ts = 1774252800000000LL + i * 200;
        t.resp_ts = t.ts + 900;
        t.flow_id = (uint64_t)i / 20 + 1;
        t.src =
            (struct kw_addr){.family = 4, .a = {10, 1, (uint8_t)(i % 8), (uint8_t)(i % 64 + 1)}};
        t.sport = (uint16_t)(32768 + (i / 20) % 28000);
        t.status = path == 7 ? 404 : 200;
        t.req_len = path % 4 == 3 ? 400 : 0;
        t.resp_len = 1200 + path * 20;
        strcpy(t.method, path % 4 == 3 ? "POST" : "GET");
        strcpy(t.path, paths[path]);
        strcpy(t.template_, tpl[path % 6]);
        memcpy(t.cred.fingerprint, fps[cred], sizeof fps[cred]);
        memcpy(t.cred.hint, hints[cred], sizeof hints[cred]);
        strcpy(t.identity.id, cred < 48 ? "contractor-a" : "");
        audit_record(a, &t);
    }
    double t1 = now_s();
    audit_flush(a);
    double t2 = now_s();
    /* CPU time besides wall time: on a shared machine the writer thread
     * gets a share of a core, and rows per CPU second say what it costs. */
    struct rusage self, mine;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_THREAD, &mine);
    double cpu_all = (double)self.ru_utime.tv_sec + (double)self.ru_utime.tv_usec / 1e6 +
                     (double)self.ru_stime.tv_sec + (double)self.ru_stime.tv_usec / 1e6;
    double cpu_me = (double)mine.ru_utime.tv_sec + (double)mine.ru_utime.tv_usec / 1e6 +
                    (double)mine.ru_stime.tv_sec + (double)mine.ru_stime.tv_usec / 1e6;
    struct audit_stats st;
    audit_get_stats(a, &st);
    audit_destroy(a);
    printf("rows=%ld written=%llu batches=%llu dropped=%llu secs=%.3f rows_per_s=%.0f "
           "producer_secs=%.3f producer_cpu_secs=%.3f writer_cpu_secs=%.3f "
           "rows_per_writer_cpu_s=%.0f\n",
           rows, (unsigned long long)st.written, (unsigned long long)st.batches,
           (unsigned long long)st.dropped, t2 - t0, (double)st.written / (t2 - t0), t1 - t0, cpu_me,
           cpu_all - cpu_me, (double)st.written / (cpu_all - cpu_me));
    return st.written == (unsigned long long)rows ? 0 : 1;
}
