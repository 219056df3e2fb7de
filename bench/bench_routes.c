/* bench_routes: what learning endpoint templates costs per transaction.
 *
 *   bench_routes TRUTH.jsonl [REPS]
 *
 * Reads the requests of a `kwsim apis` truth file (host, target, status,
 * in capture order), normalises their paths once, then times, in process:
 *   cold    norm_template alone (the template without a model);
 *   learn   routes_template on one model per run, learning from every
 *           2xx/3xx request as the judge stage does (evidence, merges,
 *           renames included), the rest looked up.
 * Prints ns per transaction for each, and the model's size. Not a ctest
 * (no timing assertions); docs/performance.md 'Learned templates' has the
 * numbers and the command. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "norm.h"
#include "routes.h"

struct req {
    char svc[160];
    char *path;
    size_t len;
    kw_ts ts;
    bool learn;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_routes TRUTH.jsonl [REPS]\n");
        return 2;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    struct req *v = NULL;
    size_t n = 0, cap = 0;
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *host = json_string_value(json_object_get(j, "host"));
        const char *target = json_string_value(json_object_get(j, "target"));
        if (host && target) {
            if (n == cap) {
                cap = cap ? cap * 2 : 4096;
                v = realloc(v, cap * sizeof *v);
                if (!v) return 1;
            }
            struct req *r = &v[n++];
            char p[2048];
            size_t pl = 0;
            norm_path(target, strlen(target), p, sizeof p, &pl);
            r->path = strndup(p, pl);
            r->len = pl;
            snprintf(r->svc, sizeof r->svc, "%s:80", host);
            r->ts = (kw_ts)json_integer_value(json_object_get(j, "ts"));
            int st = (int)json_integer_value(json_object_get(j, "status"));
            r->learn = st >= 200 && st < 400;
        }
        json_decref(j);
    }
    fclose(f);
    if (!n) {
        fprintf(stderr, "bench_routes: no requests in %s\n", argv[1]);
        return 1;
    }
    char out[512];
    size_t sink = 0;
    double best_cold = 1e9, best_learn = 1e9;
    struct routes_stats st = {0};
    for (int k = 0; k < reps; k++) {
        double t0 = now_s();
        for (size_t i = 0; i < n; i++)
            sink += norm_template(v[i].path, v[i].len, out, sizeof out);
        double t1 = now_s();
        struct routes_config rc = {0};
        struct routes *r;
        if (routes_new(&rc, &r) != KW_E_OK) return 1;
        double t2 = now_s();
        for (size_t i = 0; i < n; i++)
            sink += routes_template(r, v[i].svc, "GET", v[i].path, v[i].len, v[i].learn, v[i].ts,
                                    out, sizeof out);
        double t3 = now_s();
        routes_get_stats(r, &st);
        routes_destroy(r);
        if (t1 - t0 < best_cold) best_cold = t1 - t0;
        if (t3 - t2 < best_learn) best_learn = t3 - t2;
    }
    printf("transactions=%zu reps=%d cold_ns=%.0f learn_ns=%.0f services=%llu nodes=%llu "
           "merges=%llu renamed=%llu sink=%zu\n",
           n, reps, best_cold * 1e9 / (double)n, best_learn * 1e9 / (double)n,
           (unsigned long long)st.services, (unsigned long long)st.nodes,
           (unsigned long long)st.merges, (unsigned long long)st.renamed, sink % 10);
    for (size_t i = 0; i < n; i++)
        free(v[i].path);
    free(v);
    return 0;
}
