/* cmd_streams: `keywarden streams [-c CONFIG] -r FILE [-r FILE]... -o DIR [BPF...]`.
 *
 * Reads captures (several are merged in time order, "-" is stdin), decodes,
 * reassembles every TCP connection and writes each direction to DIR as
 * tcpflow names it (see capture/streams_dump.h), then prints the counters
 * to stderr. The one thing to know: it is the same packet path as `run`
 * (source -> dec -> flow table), so what it writes is what the analyzer
 * would have been given, gaps included: with -c, the flow table, TCP
 * reassembly and defragmentation take the config's `limits:` (and
 * capture.vlan_tracking) as `run` with one packet worker does. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dec.h"
#include "flow.h"
#include "limits.h"
#include "rules.h"
#include "source.h"
#include "streams_dump.h"

static void streams_usage(FILE *f)
{
    fprintf(f, "usage: keywarden streams [-c CONFIG] -r FILE [-r FILE]... -o DIR [BPF FILTER...]\n"
               "\n"
               "Writes the reassembled bytes of each TCP direction to DIR, one file per\n"
               "direction named as tcpflow names them (SRCIP.SRCPORT-DSTIP.DSTPORT, zero-padded;\n"
               "\"--VLAN\" when tagged, \"cN\" when a name repeats). Gaps (lost bytes) read as\n"
               "zeros in the file and are listed in NAME.gaps; DIR/keywarden-streams.tsv\n"
               "indexes every file. Counters go to stderr.\n"
               "\n"
               "  -r FILE   pcap or pcapng capture; repeat to merge several in time order;\n"
               "            \"-\" reads standard input\n"
               "  -o DIR    output directory (created if missing)\n"
               "  -c CONFIG size the flow table, reassembly and defragmentation by the\n"
               "            config's limits (flow.*, stream.*, defrag.*), as `run` with one\n"
               "            packet worker does; without it, the compiled defaults\n"
               "  -h, --help\n");
}

static void print_counters(const struct cap_stats *cs, const struct dec_counters *dc,
                           const struct flow_counters *fc, const struct streams_dump_counters *sc)
{
    fprintf(stderr, "keywarden streams: summary\n");
    fprintf(stderr,
            "  capture.packets %llu\n  capture.bytes %llu\n  capture.truncated_files %llu\n"
            "  capture.read_errors %llu\n",
            (unsigned long long)cs->packets, (unsigned long long)cs->bytes,
            (unsigned long long)cs->truncated_files, (unsigned long long)cs->read_errors);
#define PRINT_DEC(n)                                                                               \
    if (dc->n) fprintf(stderr, "  decoder.%s %llu\n", #n, (unsigned long long)dc->n);
    DEC_COUNTERS(PRINT_DEC)
#undef PRINT_DEC
#define PRINT_FLOW(n) fprintf(stderr, "  flow.%s %llu\n", #n, (unsigned long long)fc->n);
    FLOW_COUNTERS(PRINT_FLOW)
#undef PRINT_FLOW
#define PRINT_SD(n) fprintf(stderr, "  streams.%s %llu\n", #n, (unsigned long long)sc->n);
    STREAMS_DUMP_COUNTERS(PRINT_SD)
#undef PRINT_SD
}

/* Joins the trailing arguments into one BPF expression (as tcpdump does). */
static char *join_args(int argc, char **argv)
{
    size_t n = 1;
    for (int i = 0; i < argc; i++)
        n += strlen(argv[i]) + 1;
    char *s = calloc(1, n);
    if (!s) return NULL;
    for (int i = 0; i < argc; i++) {
        if (i) strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

/* The config's limits as `run` applies them with one packet worker (the
 * flow table holds what flow.max and flow.memcap allow there, so a
 * capture `run` follows is followed here too). 0, or the exit code. */
static int config_limits(const char *config, struct pipeline_config *pc)
{
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m = NULL;
    enum kw_err e = rules_load(config, NULL, &m, &d);
    rules_diag_print(&d, stderr);
    rules_diag_free(&d);
    if (e != KW_E_OK || !m) {
        rules_model_free(m);
        return e == KW_E_NOMEM ? 1 : 2;
    }
    struct limits_eff le;
    char err[4096];
    if (limits_resolve(&m->config, 1, &le, err, sizeof err) != KW_E_OK) {
        fprintf(stderr, "%s\n", err);
        rules_model_free(m);
        return 2;
    }
    pipeline_config_default(pc);
    pc->flow.vlan_in_key = m->config.capture.vlan_tracking;
    limits_apply(&le, pc);
    rules_model_free(m);
    return 0;
}

int cmd_streams(int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    struct cap_config cc;
    cap_config_default(&cc);
    const char *outdir = NULL, *config = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+r:o:c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (cc.n_files >= CAP_MAX_FILES) {
                fprintf(stderr, "keywarden streams: at most %d -r files\n", CAP_MAX_FILES);
                return 2;
            }
            cc.files[cc.n_files++] = optarg;
            break;
        case 'o':
            outdir = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'h':
            streams_usage(stdout);
            return 0;
        default:
            streams_usage(stderr);
            return 2;
        }
    }
    if (cc.n_files == 0 || !outdir) {
        fprintf(stderr, "keywarden streams: %s is required\n\n", cc.n_files ? "-o DIR" : "-r FILE");
        streams_usage(stderr);
        return 2;
    }
    struct pipeline_config pc;
    bool limited = false;
    if (config) {
        int lr = config_limits(config, &pc);
        if (lr) return lr;
        limited = true;
    }
    char *bpf = optind < argc ? join_args(argc - optind, argv + optind) : NULL;
    cc.bpf = bpf;

    char err[512] = "";
    struct streams_run_stats st;
    enum kw_err e = streams_dump_run(&cc, limited ? &pc.flow : NULL, limited ? &pc.defrag : NULL,
                                     outdir, &st, err, sizeof(err));
    int rc = e == KW_E_OK ? 0 : e == KW_E_CONFIG ? 2 : 1;
    if (e != KW_E_OK) fprintf(stderr, "keywarden streams: %s\n", err);
    if (e != KW_E_CONFIG) print_counters(&st.cap, &st.dec, &st.flow, &st.dump);
    free(bpf);
    return rc;
}
