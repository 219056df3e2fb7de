/* cmd_check: `keywarden check [-c CONFIG] [--rules PATH]` validates the
 * config and rule files exactly as `run` loads them, prints every problem
 * gcc-style (with the offending line and a caret) and a one-line summary.
 * The one thing to know: exit 0 means `run` will accept these files
 * (warnings allowed), exit 2 means it will refuse them; that includes the
 * BPF filter of capture.bpf, compiled as `run` compiles it, and the
 * `limits:` as `run` splits them over its workers (printed, effective). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_specs.h"
#include "cli_util.h"
#include "limits.h"
#include "rules.h"
#include "source.h"

static void check_usage(FILE *f)
{
    fprintf(f, "usage: keywarden check [-c CONFIG] [--rules PATH]\n\n"
               "Validate keywarden.yaml and the rules folder; print every problem.\n\n"
               "  -c, --config CONFIG  config file (default: none, embedded defaults)\n"
               "  -r, --rules PATH     rules folder or file (overrides `rules:` of the config)\n"
               "  -q, --quiet          print only the summary\n"
               "  -h, --help           this help\n\n"
               "Exit codes: 0 no errors (warnings allowed), 2 errors or bad usage.\n");
}

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"rules", required_argument, NULL, 'r'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *rules = NULL;
    bool quiet = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:r:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'r':
            rules = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            check_usage(stdout);
            return 0;
        default:
            check_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "keywarden check: unexpected argument \"%s\"\n", argv[optind]);
        check_usage(stderr);
        return 2;
    }
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m = NULL;
    enum kw_err e = rules_load(config, rules, &m, &d);
    if (!quiet) rules_diag_print(&d, stderr);
    /* capture.bpf: the filter `run` would refuse is refused here too */
    size_t bpf_errors = 0;
    if (m && m->config.capture.bpf) {
        char err[512];
        enum kw_err be = cap_bpf_check(m->config.capture.bpf, err, sizeof err);
        if (be != KW_E_OK) {
            bpf_errors = 1;
            e = be == KW_E_NOMEM ? be : KW_E_CONFIG;
            if (!quiet)
                fprintf(stderr, "%s: error: capture.bpf: %s\n", config ? config : "config", err);
        }
    }
    /* the schedules as the judge applies them, with the grace each one
     * gets (its own, or the default; docs/rules.md) */
    if (m && !quiet) {
        size_t ns = 0;
        for (size_t i = 0; i < m->n_identities; i++) {
            const struct rules_identity *id = &m->identities[i];
            if (!id->schedule.set) continue;
            if (!ns++)
                printf("schedules (default grace %lldm, detections.schedule.grace; grace: 0 is "
                       "strict):\n",
                       (long long)(m->detections.schedule.grace_s / 60));
            char buf[128];
            rules_schedule_describe(&id->schedule, buf, sizeof buf);
            printf("  %s: %s %s\n", id->id, buf, kw_tz_name(id->tz));
        }
    }
    /* limits: as `run` splits them over capture.workers (a share under what
     * one worker needs is refused there too), and what they come to; auto
     * as `run -i capture.interface` would resolve it on this machine */
    if (m) {
        struct limits_eff le;
        char err[4096];
        unsigned w = cap_workers_auto(m->config.capture.workers, m->config.capture.interface);
        if (limits_resolve(&m->config, w, &le, err, sizeof err) != KW_E_OK) {
            /* every share too small, one line each, each an error */
            bpf_errors++;
            for (const char *q = strchr(err, '\n'); q; q = strchr(q + 1, '\n'))
                bpf_errors++;
            e = KW_E_CONFIG;
            if (!quiet) fprintf(stderr, "%s\n", err);
        } else if (!quiet) {
            limits_print(&le, stdout);
        }
    }
    /* services[].openapi: a document `run` would refuse is an error here */
    if (m) {
        struct oas_set *specs = NULL;
        char err[1024];
        char *db = config ? cli_config_db(config) : NULL;
        enum kw_err se = cli_specs_load(m, db ? db : CLI_DEFAULT_DB, &specs, err, sizeof err);
        free(db);
        if (se != KW_E_OK) {
            bpf_errors++;
            e = se == KW_E_NOMEM ? se : KW_E_CONFIG;
            if (!quiet) fprintf(stderr, "%s\n", err);
        } else if (!quiet && oas_set_count(specs)) {
            printf("OpenAPI documents: %zu documented endpoints\n", oas_set_count(specs));
        }
        oas_set_destroy(specs);
    }
    size_t ne = rules_diag_errors(&d) + bpf_errors, nw = rules_diag_warnings(&d);
    printf("%zu %s, %zu %s in %zu %s; %zu %s\n", ne, plural(ne, "error", "errors"), nw,
           plural(nw, "warning", "warnings"), d.files, plural(d.files, "file", "files"),
           d.identities, plural(d.identities, "identity", "identities"));
    rules_diag_free(&d);
    rules_model_free(m);
    if (e == KW_E_NOMEM) {
        fprintf(stderr, "keywarden check: %s\n", kw_strerror(e));
        return 1;
    }
    return e == KW_E_OK ? 0 : 2;
}
