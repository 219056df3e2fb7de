/* bench_baseline: memory and store size per identity for N identities
 * (default 10,000), each with a few days of traffic from 3 networks over 8
 * endpoints. Not a ctest: run build/tests/bench_baseline [N] [DB]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baseline.h"

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 10000;
    const char *db = argc > 2 ? argv[2] : "bench-baseline.db";
    unlink(db);
    struct baseline *b = NULL;
    struct baseline_config c = {.db_path = db, .max_profiles = n, .save_every = -1};
    if (baseline_new(&c, &b) != KW_E_OK) return 1;
    struct kw_txn *t = calloc(1, sizeof *t);
    static const char *const tm[] = {"/v1/orders/{id}",
                                     "/v1/orders",
                                     "/v1/customers/{id}",
                                     "/v1/invoices",
                                     "/v1/products/{id}",
                                     "/v1/a",
                                     "/v1/b",
                                     "/v1/c"};
    kw_ts t0 = KW_TS_SEC(1769990400);
    unsigned long long txns = 0;
    for (int day = 0; day < 3; day++)
        for (int h = 9; h < 17; h++)
            for (unsigned i = 0; i < n; i++)
                for (int k = 0; k < 2; k++) {
                    memset(t, 0, sizeof *t);
                    snprintf(t->identity.id, sizeof t->identity.id, "c%05u", i);
                    snprintf(t->cred.fingerprint, sizeof t->cred.fingerprint, "sha256:%064u", i);
                    t->ts = t0 + KW_TS_SEC(day * 86400 + h * 3600 + k * 1200 + (int)(i % 600));
                    char ip[32];
                    snprintf(ip, sizeof ip, "10.%u.%d.7", i % 200, (h + k) % 3);
                    kw_addr_parse(ip, &t->src);
                    strcpy(t->method, "GET");
                    strcpy(t->template_, tm[(h + k + i) % 8]);
                    strcpy(t->user_agent, "bench/1.0");
                    t->resp_len = 1000;
                    baseline_observe(b, t, "Europe/Berlin", false, NULL, NULL);
                    txns++;
                }
    if (baseline_save(b) != KW_E_OK) return 1;
    struct baseline_stats st;
    baseline_get_stats(b, &st);
    baseline_destroy(b);
    struct stat sb;
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", db);
    long long size = stat(db, &sb) == 0 ? (long long)sb.st_size : 0;
    if (stat(wal, &sb) == 0) size += (long long)sb.st_size;
    printf("identities %u, transactions %llu, profiles %llu\n", n, txns,
           (unsigned long long)st.profiles);
    printf("memory: %zu bytes per profile slot, %.1f MiB for %u\n", baseline_profile_size(),
           (double)baseline_profile_size() * n / 1048576.0, n);
    printf("store: %lld bytes (db + wal), %.0f bytes per identity\n", size, (double)size / n);
    free(t);
    return 0;
}
