/* cmd_judge: `keywarden judge -c CONFIG [--partitions K,L]`, the judging
 * side of a fleet (docs/fleet.md): the sensors' records come from NATS
 * JetStream instead of a capture, and go through the same judge stage as
 * `run` (attribution, policy, baselines, suppression, audit, EVE, alerts)
 * into this judge's own database and outputs.
 *
 * The one thing to know: each judge owns a set of partitions (all of them
 * by default); several judges split them, each with its own database,
 * and must not share a partition. SIGINT/SIGTERM commit and stop; SIGHUP
 * reloads the rules. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alerts.h"
#include "audit.h"
#include "dbw.h"
#include "baseline.h"
#include "cli_specs.h"
#include "routes.h"
#include "cli.h"
#include "cli_util.h"
#include "fleet_judge.h"
#include "kw_eve.h"
#include "kw_log.h"
#include "limits.h"
#include "pipeline.h"
#include "priv.h"
#include "rules.h"

/* Signal flags: a handler can reach nothing else. Lock-free atomics: the
 * handler may run on any of the process's threads (cmd_run.c). */
static atomic_int g_jstop, g_jreload;

static void on_jstop(int sig)
{
    (void)sig;
    atomic_store(&g_jstop, 1);
}

static void on_jhup(int sig)
{
    (void)sig;
    atomic_store(&g_jreload, 1);
}

struct judge_opts {
    const char *config, *rules, *eve, *db, *parts;
    bool quiet, drain;
    long idle_s;
};

struct judge_ctx {
    struct judge_opts o;
    struct rules_model *model;
    struct rules_handle *rules;
    struct kw_eve *eve;
    struct alerts *alerts;
    struct audit *audit;
    struct dbw *dbw;
    struct baseline *baseline;
    struct routes *routes;
    struct pipeline *pipe;
    struct fj *fj;
    uint32_t *parts;
    size_t n_parts;
    const char *db_path, *eve_path;
    kw_ts next_stats;
};

static void judge_usage(FILE *f)
{
    fprintf(f,
            "usage: keywarden judge -c CONFIG [--partitions K,L,M-N] [--rules PATH]\n"
            "                       [--eve PATH|-] [--db PATH] [--drain] [-q]\n"
            "\n"
            "Judges what the fleet's sensors publish to NATS JetStream (fleet: in the config):\n"
            "the same attribution, policy, baselines, audit trail and alerts as `run`.\n"
            "\n"
            "  -c, --config FILE     keywarden.yaml with a fleet: section (required)\n"
            "      --partitions L    the partitions this judge owns, e.g. 0-7 or 0,2,4\n"
            "                        (default: all of fleet.partitions)\n"
            "      --rules PATH      rules directory or file (overrides `rules:`)\n"
            "      --eve PATH|-      EVE JSON output (default: outputs.eve)\n"
            "      --db PATH         SQLite database (this judge's own)\n"
            "      --drain           stop once every sensor's input has ended and is judged\n"
            "      --idle S          with --drain: or once nothing came for S seconds (15)\n"
            "  -q, --quiet           no human alert lines, no summary\n"
            "  -h, --help\n"
            "\n"
            "Exit codes: 0 ok, 1 runtime failure, 2 bad usage, config or rules.\n");
}

/* "0-7,12" into a sorted list of partitions below n. */
static int parse_parts(const char *s, uint32_t n, struct judge_ctx *j)
{
    j->parts = calloc(n, sizeof *j->parts);
    uint8_t *seen = calloc(n, 1);
    if (!j->parts || !seen) {
        free(seen);
        return 1;
    }
    const char *p = s;
    while (p && *p) {
        char *end;
        unsigned long a = strtoul(p, &end, 10), b = a;
        if (end == p) goto bad;
        if (*end == '-') {
            const char *q = end + 1;
            b = strtoul(q, &end, 10);
            if (end == q) goto bad;
        }
        if (a > b || b >= n || (*end && *end != ',')) goto bad;
        for (unsigned long x = a; x <= b; x++)
            seen[x] = 1;
        p = *end ? end + 1 : end;
    }
    for (uint32_t i = 0; i < n; i++)
        if (seen[i] || !s) j->parts[j->n_parts++] = i;
    free(seen);
    return j->n_parts ? 0 : 2;
bad:
    fprintf(stderr, "keywarden judge: --partitions %s: give partitions below %u, e.g. 0-7 or "
                    "0,2,4\n",
            s, (unsigned)n);
    free(seen);
    return 2;
}

static int parse_opts(int argc, char **argv, struct judge_opts *o)
{
    enum { O_RULES = 256, O_EVE, O_DB, O_PARTS, O_DRAIN, O_IDLE };
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'}, {"rules", required_argument, NULL, O_RULES},
        {"eve", required_argument, NULL, O_EVE},  {"db", required_argument, NULL, O_DB},
        {"partitions", required_argument, NULL, O_PARTS},
        {"drain", no_argument, NULL, O_DRAIN},    {"idle", required_argument, NULL, O_IDLE},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->idle_s = 15;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:qh", longs, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case O_RULES: o->rules = optarg; break;
        case O_EVE: o->eve = optarg; break;
        case O_DB: o->db = optarg; break;
        case O_PARTS: o->parts = optarg; break;
        case O_DRAIN: o->drain = true; break;
        case O_IDLE: o->idle_s = atol(optarg); break;
        case 'q': o->quiet = true; break;
        case 'h': judge_usage(stdout); return 0;
        default: judge_usage(stderr); return 2;
        }
    }
    if (!o->config || optind < argc || o->idle_s <= 0) {
        judge_usage(stderr);
        return 2;
    }
    return -1;
}

static int load(struct judge_ctx *j)
{
    struct rules_diag d;
    rules_diag_init(&d);
    enum kw_err e = rules_load(j->o.config, j->o.rules, &j->model, &d);
    rules_diag_print(&d, stderr);
    rules_diag_free(&d);
    if (e != KW_E_OK || !j->model) {
        fprintf(stderr, "keywarden judge: refusing to start: errors in the config or rules\n");
        return 2;
    }
    j->rules = rules_handle_new(j->model, j->o.config, j->o.rules);
    if (!j->rules) return 1;
    rules_model_ref(j->model); /* paths point into it: keep it past a reload */
    if (!j->model->config.fleet.nats) {
        fprintf(stderr, "keywarden judge: %s has no fleet.nats: add fleet: { nats: "
                        "\"nats://HOST:4222\" } (docs/fleet.md)\n",
                j->o.config);
        return 2;
    }
    return parse_parts(j->o.parts, j->model->config.fleet.partitions, j);
}

static void each(void *user);

static enum kw_err open_stage(struct judge_ctx *j)
{
    const struct rules_config *rc = &j->model->config;
    j->db_path = j->o.db ? j->o.db : rc->storage.database ? rc->storage.database : CLI_DEFAULT_DB;
    j->eve_path = j->o.eve ? j->o.eve : rc->outputs.eve ? rc->outputs.eve
                                                        : "./keywarden-state/eve.json";
    enum kw_err e = kw_eve_open(j->eve_path, &j->eve);
    if (e != KW_E_OK) return e;
    struct dbw_config wc = {.path = j->db_path, .quick_check = true};
    if ((e = dbw_new(&wc, &j->dbw)) != KW_E_OK) return e;
    struct alerts_config ac;
    alerts_config_default(&ac);
    ac.db_path = j->db_path;
    ac.writer = j->dbw;
    cli_alerts_from_config(rc, &ac);
    ac.stdout_alerts = !j->o.quiet;
    ac.human_stderr = strcmp(j->eve_path, "-") == 0;
    if ((e = alerts_new(&ac, j->eve, &j->alerts)) != KW_E_OK) return e;
    struct audit_config uc = {.db_path = j->db_path, .block_when_full = true, .writer = j->dbw};
    if (rc->storage.audit_retention_s > 0)
        uc.retention = KW_TS_SEC(rc->storage.audit_retention_s);
    if ((e = audit_new(&uc, &j->audit)) != KW_E_OK) return e;
    /* The baseline sizes are `limits:` keys (baseline.max_profiles,
     * baseline.max_unattributed) like in `run`; a judge has no packet
     * workers, so the totals are its own. */
    struct limits_eff lim;
    char lerr[4096];
    if ((e = limits_resolve(&j->model->config, 1, &lim, lerr, sizeof lerr)) != KW_E_OK) {
        fprintf(stderr, "%s\n", lerr);
        return e;
    }
    struct baseline_config bc = {.db_path = j->db_path,
                                 .save_every = -1, /* saved per commit */
                                 .writer = j->dbw,
                                 .max_profiles = (unsigned)lim.total.baseline_max_profiles,
                                 .max_unattributed = (unsigned)lim.total.baseline_max_unattributed};
    if (j->model->detections.baseline.learning_s > 0)
        bc.learning = KW_TS_SEC(j->model->detections.baseline.learning_s);
    bc.sensitivity = (int)j->model->detections.baseline.sensitivity - 1;
    if (bc.sensitivity < 0) bc.sensitivity = BASELINE_MEDIUM;
    if ((e = baseline_new(&bc, &j->baseline)) != KW_E_OK) return e;
    struct routes_config rtc = {0};
    if ((e = routes_new(&rtc, &j->routes)) != KW_E_OK) return e;
    if ((e = routes_db_open(j->routes, j->db_path, j->dbw)) != KW_E_OK) return e;
    struct pipeline_config pc;
    pipeline_config_default(&pc);
    pc.classify = false;
    pc.eve = j->eve;
    pc.alerts = j->alerts;
    pc.audit = j->audit;
    pc.baseline = j->baseline;
    pc.routes = j->routes;
    pc.routes_fixed = j->model->detections.baseline.fixed_templates;
    pc.model = rules_handle_get(j->rules);
    if ((e = pipeline_new(&pc, &j->pipe)) != KW_E_OK) {
        rules_model_unref(pc.model);
        return e;
    }
    struct oas_set *specs = NULL;
    char err[1024];
    if ((e = cli_specs_load(j->model, j->db_path, &specs, err, sizeof err)) != KW_E_OK) {
        fprintf(stderr, "%s\n", err);
        return e;
    }
    pipeline_set_specs(j->pipe, specs);
    struct fj_config fc = {.rc = rc,
                           .parts = j->parts,
                           .n_parts = j->n_parts,
                           .pipe = j->pipe,
                           .alerts = j->alerts,
                           .audit = j->audit,
                           .baseline = j->baseline,
                           .db_path = j->db_path,
                           .drain = j->o.drain,
                           .idle_ms = j->o.idle_s * 1000,
                           .each = each,
                           .user = j};
    return fj_new(&fc, &j->fj);
}

static json_t *stats_record(struct judge_ctx *j)
{
    char tsb[40];
    json_t *rec = json_object();
    json_object_set_new(rec, "timestamp",
                        json_string(kw_ts_format(pipeline_now(j->pipe), tsb, sizeof tsb)));
    json_object_set_new(rec, "event_type", json_string("stats"));
    json_t *s = pipeline_stats_json(j->pipe);
    struct alerts_stats as;
    alerts_get_stats(j->alerts, &as);
    json_object_set_new(s, "alerts",
                        json_pack("{s:I,s:I,s:I,s:I,s:I}", "findings", (json_int_t)as.findings,
                                  "alerts", (json_int_t)as.alerts, "suppressed",
                                  (json_int_t)as.suppressed, "delivered",
                                  (json_int_t)as.delivered, "backlog", (json_int_t)as.backlog));
    json_object_set_new(s, "fleet", fj_stats_json(j->fj));
    json_object_set_new(s, "threads", cli_threads_json());
    json_object_set_new(rec, "stats", s);
    return rec;
}

/* Once per turn of the judge's loop: SIGHUP, and a stats record every
 * minute of wall time. */
static void each(void *user)
{
    struct judge_ctx *j = user;
    if (atomic_exchange(&g_jreload, 0)) {
        struct rules_diag d;
        rules_diag_init(&d);
        if (rules_handle_reload(j->rules, &d) == KW_E_OK) {
            pipeline_set_model(j->pipe, rules_handle_get(j->rules));
            kw_info("rules reloaded (generation %llu)",
                    (unsigned long long)rules_handle_generation(j->rules));
        } else {
            kw_err_log("rules reload failed; the running rules stay in force:");
        }
        rules_diag_print(&d, stderr);
        rules_diag_free(&d);
    }
    kw_ts now = kw_ts_wall();
    if (now >= j->next_stats) {
        if (j->next_stats) kw_eve_write(j->eve, stats_record(j));
        j->next_stats = now + KW_TS_SEC(60);
    }
}

static void teardown(struct judge_ctx *j)
{
    fj_destroy(j->fj);
    pipeline_destroy(j->pipe);
    baseline_destroy(j->baseline);
    routes_destroy(j->routes);
    audit_destroy(j->audit);
    alerts_destroy(j->alerts);
    dbw_destroy(j->dbw);
    kw_eve_close(j->eve);
    if (j->rules) rules_handle_destroy(j->rules);
    if (j->rules && j->model) rules_model_unref(j->model);
    free(j->parts);
}

int cmd_judge(int argc, char **argv)
{
    cli_install_signals(on_jstop, on_jhup);
    /* a core would hold the NATS credentials and sink secrets */
    if (priv_no_core_dumps() != KW_E_OK)
        kw_warn("cannot turn core dumps off: %s", strerror(errno));
    struct judge_ctx j;
    memset(&j, 0, sizeof j);
    int rc = parse_opts(argc, argv, &j.o);
    if (rc >= 0) return rc;
    if ((rc = load(&j)) != 0) goto out;
    if (open_stage(&j) != KW_E_OK) {
        fprintf(stderr, "keywarden judge: cannot start (see the errors above)\n");
        rc = 1;
        goto out;
    }
    if (fj_run(j.fj, &g_jstop) != KW_E_OK) rc = 1;
    audit_flush(j.audit);
    if (baseline_save(j.baseline) != KW_E_OK)
        kw_err_log("baselines could not be saved to %s", j.db_path);
    if (routes_save(j.routes) != KW_E_OK)
        kw_err_log("learned endpoint templates could not be saved to %s", j.db_path);
    kw_eve_write(j.eve, stats_record(&j));
    kw_eve_flush(j.eve);
    if (j.o.drain) alerts_drain(j.alerts);
    if (!j.o.quiet) fj_print_summary(j.fj, stderr);
out:
    teardown(&j);
    return rc;
}
