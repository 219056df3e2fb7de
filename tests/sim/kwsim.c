/* kwsim: keywarden's traffic simulator. `kwsim gen` turns a world file into
 * a capture, the truth of every HTTP transaction in it, the staged incidents
 * and the matching keywarden rules; `kwsim dense` writes a large capture as
 * fast as it can for benchmarks. The one thing to know: all output is a pure
 * function of the world file, the options and the seed. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_dense.h"
#include "sim_gen.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: kwsim gen --world FILE -o DIR [--seed N] [--days D] [--start YYYY-MM-DD]\n"
        "                 [--encap vlan:ID|qinq:OUTER:INNER|vxlan:VNI|geneve:VNI|erspan:SESSION]\n"
        "                 [--loss P] [--reorder P] [--retransmit P] [--noise X]\n"
        "                 [--incidents all|none|ID,ID...] [--split day|site:NET,NET...] [--tls]\n"
        "       kwsim dense --size N[K|M|G] -o FILE.pcap [--seed N] [--conns N] [--small]\n"
        "       kwsim apis --specs apis.jsonl -o DIR [--only API,...] [--family F] [--seed N]\n"
        "                  [--days D] [--learn L] [--rate R]\n"
        "       kwsim --help\n\n"
        "gen writes DIR/capture.pcap (or capture-YYYY-MM-DD.pcap with --split day, or\n"
        "capture-a.pcap with the traffic of the networks named by --split site: and\n"
        "capture-b.pcap with the rest),\n"
        "DIR/truth.jsonl, DIR/incidents.jsonl, DIR/keywarden.yaml and DIR/rules.d/.\n"
        "See docs/simulator.md.\n");
}

/* --split site:NET,NET: the networks of site a (by world id). */
static int site_nets(struct sim_out *o, const struct sim_world *w, const char *list)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    o->split_site = true;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int i = 0;
        while (i < w->nnet && strcmp(w->net[i].id, t) != 0)
            i++;
        if (i == w->nnet || o->nsite == SIM_SITE_NETS) {
            fprintf(stderr, "kwsim: error: --split site: \"%s\" is not a network of the world "
                            "(or more than %d)\n", t, SIM_SITE_NETS);
            return -1;
        }
        o->site[o->nsite++] = (struct sim_site_net){w->net[i].base, w->net[i].prefix};
    }
    return 0;
}

static int enable_incidents(struct sim_gen *g, const char *list)
{
    for (int k = 0; k < g->w->ninc; k++)
        g->inc[k].enabled = !strcmp(list, "all");
    if (!strcmp(list, "all") || !strcmp(list, "none")) return 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int found = 0;
        for (int k = 0; k < g->w->ninc; k++)
            if (!strcmp(g->w->inc[k].id, tok) || !strcmp(g->w->inc[k].scenario, tok))
                found = g->inc[k].enabled = 1;
        if (!found) {
            fprintf(stderr, "kwsim: error: --incidents: no incident or scenario \"%s\" in %s\n",
                    tok, g->w->path);
            return -1;
        }
    }
    return 0;
}

static int cmd_gen(int argc, char **argv)
{
    static const struct option opts[] = {{"world", 1, 0, 'w'},
                                         {"seed", 1, 0, 's'},
                                         {"days", 1, 0, 'd'},
                                         {"start", 1, 0, 'S'},
                                         {"encap", 1, 0, 'e'},
                                         {"loss", 1, 0, 'l'},
                                         {"reorder", 1, 0, 'r'},
                                         {"retransmit", 1, 0, 'R'},
                                         {"incidents", 1, 0, 'i'},
                                         {"split", 1, 0, 'p'},
                                         {"noise", 1, 0, 'n'},
                                         {"tls", 0, 0, 'T'},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *world = NULL, *dir = NULL, *incidents = "all", *start = NULL, *encap = NULL;
    struct sim_gen *g = calloc(1, sizeof *g);
    struct sim_world *w = calloc(1, sizeof *w);
    g->seed = 1;
    g->days = 0;
    g->tcp = (struct sim_tcp_cfg){.reorder = 0.002, .retransmit = 0.002, .loss = 0};
    g->noise = -1;
    bool split = false;
    const char *split_site = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'w':
            world = optarg;
            break;
        case 'o':
            dir = optarg;
            break;
        case 's':
            g->seed = strtoull(optarg, NULL, 0);
            break;
        case 'd':
            g->days = atoi(optarg);
            break;
        case 'S':
            start = optarg;
            break;
        case 'e':
            encap = optarg;
            break;
        case 'l':
            g->tcp.loss = atof(optarg);
            break;
        case 'r':
            g->tcp.reorder = atof(optarg);
            break;
        case 'R':
            g->tcp.retransmit = atof(optarg);
            break;
        case 'i':
            incidents = optarg;
            break;
        case 'n':
            g->noise = atof(optarg);
            break;
        case 'p':
            split = !strcmp(optarg, "day");
            if (!strncmp(optarg, "site:", 5)) split_site = optarg + 5;
            else if (!split) {
                fprintf(stderr, "kwsim: error: --split \"%s\"; use day or site:NET[,NET...]\n",
                        optarg);
                return 2;
            }
            break;
        case 'T':
            g->tls = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!world || !dir) {
        usage(stderr);
        return 2;
    }
    if (sim_world_load(w, world)) return 2;
    g->w = w;
    if (g->noise < 0) g->noise = w->noise;
    if (start) snprintf(w->start, sizeof w->start, "%s", start);
    if (g->days <= 0) g->days = w->days > 0 ? w->days : 1;
    int y, m, d;
    if (sim_parse_date(w->start, &y, &m, &d)) {
        fprintf(stderr, "kwsim: error: start \"%s\" is not YYYY-MM-DD\n", w->start);
        return 2;
    }
    g->start_us = sim_local_to_utc("UTC", y, m, d, 0);
    g->end_us = g->start_us + (int64_t)g->days * 86400000000LL;
    struct sim_encap e;
    if (sim_encap_parse(encap, &e)) {
        fprintf(stderr,
                "kwsim: error: --encap \"%s\"; use vlan:ID, qinq:OUTER:INNER, "
                "vxlan:VNI, geneve:VNI or erspan:SESSION\n",
                encap);
        return 2;
    }
    if (enable_incidents(g, incidents)) return 2;
    for (int k = 0; k < w->ninc; k++) /* staged after the last simulated day: not this run */
        if (w->inc[k].day >= g->days) g->inc[k].enabled = false;
    if (sim_plan(g)) return 2;
    if (sim_out_open(&g->out, dir, "capture", split, &e)) {
        fprintf(stderr, "kwsim: error: cannot create %s\n", dir);
        return 1;
    }
    if (split_site && site_nets(&g->out, w, split_site)) return 2;
    if (g->tls) {
        char kp[4200];
        snprintf(kp, sizeof kp, "%s/keys.log", dir);
        int fd = open(kp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        g->keylog = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!g->keylog) {
            fprintf(stderr, "kwsim: error: cannot create %s\n", kp);
            return 1;
        }
    }
    int rendered = sim_render(g);
    if (g->keylog && fclose(g->keylog))
        rendered = -1;
    g->keylog = NULL;
    if (rendered || sim_write_truth(g, dir) || sim_write_incidents(g, dir) ||
        sim_write_rules(g, dir)) {
        fprintf(stderr, "kwsim: error: writing into %s failed\n", dir);
        return 1;
    }
    int ninc = 0;
    for (int k = 0; k < w->ninc; k++)
        ninc += g->inc[k].enabled;
    fprintf(stderr, "kwsim: %s: %llu packets, %.1f MB, %zu HTTP transactions, %d incidents -> %s\n",
            w->name, (unsigned long long)g->out.packets, (double)g->out.bytes / 1e6, g->ntruth,
            ninc, dir);
    free(g->creds);
    free(g->cred_ident);
    free(g->reqs);
    free(g->sess);
    free(g->truth);
    free(g);
    free(w);
    return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    double v = strtod(s, &end);
    double mul = *end == 'K' || *end == 'k'   ? 1e3
                 : *end == 'M' || *end == 'm' ? 1e6
                 : *end == 'G' || *end == 'g' ? 1e9
                                              : 1;
    if (end == s || v <= 0) return -1;
    *out = (uint64_t)(v * mul);
    return 0;
}

static int cmd_dense(int argc, char **argv)
{
    static const struct option opts[] = {{"size", 1, 0, 'z'},
                                         {"seed", 1, 0, 's'},
                                         {"conns", 1, 0, 'c'},
                                         {"small", 0, 0, 'm'},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct sim_dense_cfg cfg = {.out = NULL,
                                .size = 100000000,
                                .seed = 1,
                                .conns = 512,
                                .start_us = 1774252800000000LL}; /* 2026-03-23T08:00Z */
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            cfg.out = optarg;
            break;
        case 'z':
            if (parse_size(optarg, &cfg.size)) {
                fprintf(stderr, "kwsim: error: --size \"%s\"; write e.g. 5M or 1G\n", optarg);
                return 2;
            }
            break;
        case 's':
            cfg.seed = strtoull(optarg, NULL, 0);
            break;
        case 'c':
            cfg.conns = atoi(optarg) > 0 ? atoi(optarg) : 1;
            break;
        case 'm':
            cfg.small = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!cfg.out) {
        usage(stderr);
        return 2;
    }
    struct timespec a, b; /* wall clock only for the speed report */
    clock_gettime(CLOCK_MONOTONIC, &a);
    uint64_t bytes = 0, packets = 0;
    if (sim_dense_run(&cfg, &bytes, &packets)) {
        fprintf(stderr, "kwsim: error: writing %s failed\n", cfg.out);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    fprintf(stderr, "kwsim dense: %llu packets, %.1f MB in %.2f s: %.0f MB/s, %.2f Mpps\n",
            (unsigned long long)packets, (double)bytes / 1e6, s, (double)bytes / 1e6 / s,
            (double)packets / 1e6 / s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "gen")) return cmd_gen(argc - 1, argv + 1);
    if (!strcmp(argv[1], "dense")) return cmd_dense(argc - 1, argv + 1);
    if (!strcmp(argv[1], "apis")) return sim_apis_main(argc - 1, argv + 1);
    fprintf(stderr, "kwsim: error: unknown command \"%s\"; use gen, dense or apis\n", argv[1]);
    usage(stderr);
    return 2;
}
