/* cmd_run: `keywarden run`, the main job. Loads the config and rules
 * (refusing to start on errors), opens the capture, builds the pipeline
 * with the audit trail, the baselines and the alerts, and runs the packet
 * loop until the input ends or SIGINT/SIGTERM. SIGHUP reloads the rules:
 * a broken file leaves the running rules in force.
 *
 * The one thing to know: with no config at all it still works (embedded
 * defaults: SQLite and EVE under ./keywarden-state, alerts on stdout), so
 * `keywarden run -r x.pcap` is the first thing a new user can type. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alerts.h"
#include "audit.h"
#include "baseline.h"
#include "cli.h"
#include "cli_specs.h"
#include "cli_util.h"
#include "dbw.h"
#include "fleet_sensor.h"
#include "kw_eve.h"
#include "kw_log.h"
#include "metrics.h"
#include "pipeline.h"
#include "priv.h"
#include "routes.h"
#include "run_int.h"
#include "rules.h"
#include "source.h"
#include "limits.h"
#include "workers.h"

/* Signal flags: the one place keywarden keeps process-wide mutable state,
 * because a signal handler can reach nothing else. Lock-free atomics, not
 * volatile sig_atomic_t: the kernel may run the handler on any of the
 * process's threads (the EVE flusher, the writer…), and sig_atomic_t only
 * promises anything to the thread it interrupted (ThreadSanitizer reported
 * the race under the live tests). */
static atomic_int g_stop, g_reload;
static _Atomic(struct cap_source *) g_src;

static void on_stop(int sig)
{
    (void)sig;
    int saved = errno; /* cap_break's write may set it under the interrupted code */
    atomic_store(&g_stop, 1);
    struct cap_source *src = atomic_load(&g_src);
    if (src) cap_break(src);
    errno = saved;
}

static void on_hup(int sig)
{
    (void)sig;
    atomic_store(&g_reload, 1);
}

static void run_usage(FILE *f)
{
    fprintf(f,
            "usage: keywarden run [-c CONFIG] (-i IFACE | -r FILE [-r FILE]...) [--rules PATH]\n"
            "                     [--eve PATH|-] [--db PATH] [BPF FILTER...]\n"
            "\n"
            "Watches HTTP API traffic passively, attributes each request to an identity,\n"
            "checks it against the rules and learned baselines, and raises alerts.\n"
            "\n"
            "  -c, --config FILE   keywarden.yaml (default: embedded defaults)\n"
            "  -r, --read FILE     pcap/pcapng file; repeat to merge in time order; - = stdin\n"
            "  -i, --interface IF  live capture (TPACKET_V3)\n"
            "      --rules PATH    rules directory or file (overrides `rules:` of the config)\n"
            "      --eve PATH|-    EVE JSON output (default: outputs.eve, or\n"
            "                      ./keywarden-state/eve.json)\n"
            "      --db PATH       SQLite database (audit trail, baselines, outbox)\n"
            "      --workers N     packet workers (capture.workers; 1 = one packet thread)\n"
            "      --tls-keylog F  NSS key log (SSLKEYLOGFILE) to decrypt TLS; repeatable;\n"
            "                      adds to tls.keylog of the config (files or directories)\n"
            "  -Z, --user USER     started as root: become USER once the capture is open\n"
            "                      (run.user; live: keywarden if it exists; root = stay)\n"
            "      --stats-interval S  EVE stats record every S seconds of wall time (60), and\n"
            "                      one at the end\n"
            "  -q, --quiet         no progress, no human alert lines\n"
            "      --no-progress   no progress line on the terminal\n"
            "  -h, --help\n"
            "\n"
            "Exit codes: 0 ok, 1 runtime failure or anything lost (audit rows, EVE records,\n"
            "alerts not stored or failed for good; a LOST: line says which), 2 bad usage,\n"
            "config or rules (docs/storage.md).\n"
            "Signals: SIGINT/SIGTERM stop cleanly (final counters); SIGHUP reloads the rules.\n");
}

static char *join_args(int argc, char **argv)
{
    size_t n = 1;
    for (int i = 0; i < argc; i++)
        n += strlen(argv[i]) + 1;
    char *s = calloc(1, n);
    if (!s)
        return NULL;
    for (int i = 0; i < argc; i++) {
        if (i)
            strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

static int parse_opts(int argc, char **argv, struct run_opts *o)
{
    enum { O_RULES = 256, O_EVE, O_DB, O_NOPROG, O_STATS, O_WORKERS, O_KEYLOG };
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'}, {"read", required_argument, NULL, 'r'},
        {"interface", required_argument, NULL, 'i'}, {"rules", required_argument, NULL, O_RULES},
        {"eve", required_argument, NULL, O_EVE}, {"db", required_argument, NULL, O_DB},
        {"quiet", no_argument, NULL, 'q'}, {"no-progress", no_argument, NULL, O_NOPROG},
        {"stats-interval", required_argument, NULL, O_STATS},
        {"workers", required_argument, NULL, O_WORKERS}, {"user", required_argument, NULL, 'Z'},
        {"tls-keylog", required_argument, NULL, O_KEYLOG},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->stats_interval_s = 60;
    o->workers = -1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+c:r:i:qhZ:", longs, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case 'r':
            if (o->n_files == CAP_MAX_FILES) {
                fprintf(stderr, "keywarden run: at most %d -r files\n", CAP_MAX_FILES);
                return 2;
            }
            o->files[o->n_files++] = optarg;
            break;
        case 'i': o->iface = optarg; break;
        case 'Z': o->user = optarg; break;
        case O_RULES: o->rules = optarg; break;
        case O_EVE: o->eve = optarg; break;
        case O_DB: o->db = optarg; break;
        case 'q': o->quiet = true; break;
        case O_NOPROG: o->no_progress = true; break;
        case O_STATS: o->stats_interval_s = atol(optarg); break;
        case O_WORKERS:
        {
            char *end;
            o->workers = strtol(optarg, &end, 10);
            if (end == optarg || *end || o->workers < 0 || o->workers > 64) {
                fprintf(stderr, "keywarden run: --workers takes 0..64\n");
                return 2;
            }
            break;
        }
        case O_KEYLOG:
            if (o->n_keylogs == sizeof o->keylogs / sizeof o->keylogs[0]) {
                fprintf(stderr, "keywarden run: at most 16 --tls-keylog\n");
                return 2;
            }
            o->keylogs[o->n_keylogs++] = optarg;
            break;
        case 'h': run_usage(stdout); return 0;
        default: run_usage(stderr); return 2;
        }
    }
    if (optind < argc)
        o->bpf = join_args(argc - optind, argv + optind);
    if (o->iface && o->n_files) {
        fprintf(stderr, "keywarden run: use either -i or -r, not both\n");
        return 2;
    }
    return -1;
}

static void mkdir_parent_of(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf)
        return;
    *slash = 0;
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0700);
            *p = '/';
        }
    }
    mkdir(buf, 0700);
}

/* Packet pipelines: --workers, else capture.workers; 0 is auto (one per
 * core but one when live, else 1: cap_workers_auto), 1 one packet thread. */
static unsigned n_workers(const struct run_ctx *r)
{
    long n = r->o.workers >= 0 ? r->o.workers : (long)r->model->config.capture.workers;
    return cap_workers_auto((unsigned)n, r->o.n_files == 0);
}

/* tcpdump -Z: the capture is open and the output folders are ready for
 * the user; then no root and no capabilities, before any thread starts
 * (the EVE writer has one, so EVE and the database are opened as the
 * user; priv.h). */
static enum kw_err drop_privileges(struct run_ctx *r)
{
    char line[256], err[512];
    priv_prepare_path(&r->priv, r->eve_path);
    priv_prepare_path(&r->priv, r->db_path);
    if (priv_drop(&r->priv, line, sizeof line) != KW_E_OK) {
        kw_err_log("%s", line);
        return KW_E_IO;
    }
    if (line[0])
        kw_info("%s", line);
    else if (priv_still_root(&r->priv) && !r->o.n_files) /* live capture as root */
        kw_warn("still running as root: no user to become (create the user keywarden, or "
                "set run.user / --user)");
    if (!priv_can_write_dir(&r->priv, r->db_path, err, sizeof err) ||
        !priv_can_write_dir(&r->priv, r->eve_path, err, sizeof err)) {
        kw_err_log("%s", err);
        return KW_E_IO;
    }
    return KW_E_OK;
}

static enum kw_err open_outputs(struct run_ctx *r)
{
    const struct rules_config *rc = &r->model->config;
    r->db_path = r->o.db ? r->o.db
                         : rc->storage.database ? rc->storage.database : CLI_DEFAULT_DB;
    r->eve_path = r->o.eve ? r->o.eve
                           : rc->outputs.eve ? rc->outputs.eve : "./keywarden-state/eve.json";
    if (rc->storage.group) { /* docs/storage.md: file modes */
        char err[600];
        const char *paths[] = {r->db_path, r->eve_path};
        for (int i = 0; i < 2; i++) {
            if (!strcmp(paths[i], "-"))
                continue;
            priv_prepare_path(&r->priv, paths[i]);
            mkdir_parent_of(paths[i]);
            if (!priv_share_with_group(&r->priv, paths[i], rc->storage.group, err,
                                       sizeof err)) {
                kw_err_log("%s", err);
                return KW_E_CONFIG;
            }
        }
    }
    enum kw_err e = drop_privileges(r);
    if (e != KW_E_OK)
        return e;
    if (strcmp(r->eve_path, "-") != 0)
        mkdir_parent_of(r->eve_path);
    if ((e = kw_eve_open(r->eve_path, &r->eve)) != KW_E_OK)
        return e;
    /* start-up refuses a damaged database (PRAGMA quick_check) */
    struct dbw_config wc = {.path = r->db_path, .quick_check = true};
    if ((e = dbw_new(&wc, &r->dbw)) != KW_E_OK)
        return e;

    struct alerts_config ac;
    alerts_config_default(&ac);
    ac.db_path = r->db_path;
    ac.writer = r->dbw;
    cli_alerts_from_config(rc, &ac);
    ac.stdout_alerts = !r->o.quiet;
    ac.human_stderr = strcmp(r->eve_path, "-") == 0;
    if ((e = alerts_new(&ac, r->eve, &r->alerts)) != KW_E_OK)
        return e;

    struct audit_config uc = {
        .db_path = r->db_path, .block_when_full = r->o.n_files > 0, .writer = r->dbw};
    if (rc->storage.audit_retention_s > 0)
        uc.retention = KW_TS_SEC(rc->storage.audit_retention_s);
    uc.queue_max = rc->storage.audit_queue; /* 0: AUDIT_DEFAULT_QUEUE_MAX */
    if ((e = audit_new(&uc, &r->audit)) != KW_E_OK)
        return e;

    struct baseline_config bc = {
        .db_path = r->db_path,
        .writer = r->dbw,
        .max_profiles = (unsigned)r->lim.total.baseline_max_profiles,
        .max_unattributed = (unsigned)r->lim.total.baseline_max_unattributed};
    if (r->model->detections.baseline.learning_s > 0)
        bc.learning = KW_TS_SEC(r->model->detections.baseline.learning_s);
    bc.sensitivity = (int)r->model->detections.baseline.sensitivity - 1;
    if (bc.sensitivity < 0)
        bc.sensitivity = BASELINE_MEDIUM;
    if ((e = baseline_new(&bc, &r->baseline)) != KW_E_OK)
        return e;
    struct routes_config rtc = {0};
    if ((e = routes_new(&rtc, &r->routes)) != KW_E_OK)
        return e;
    return routes_db_open(r->routes, r->db_path, r->dbw);
}

/* Key logs are read once before privileges are dropped (a file only root
 * or the TLS server's group may read); a live run then follows them as the
 * user it became, so that user needs read access too. */
static int open_keylogs(struct run_ctx *r)
{
    const struct rules_config *rc = &r->model->config;
    if (!r->o.n_keylogs && !rc->tls.n_keylog)
        return 0;
    if (tls_keylog_new(rc->tls.max_sessions, &r->keylog) != KW_E_OK)
        return 1;
    char err[512];
    for (unsigned i = 0; i < r->o.n_keylogs + rc->tls.n_keylog; i++) {
        const char *p = i < r->o.n_keylogs ? r->o.keylogs[i] : rc->tls.keylog[i - r->o.n_keylogs];
        /* a replay needs its keys now; a live run may start before the
         * server writes its first line */
        if (tls_keylog_add_path(r->keylog, p, r->o.n_files > 0, err, sizeof err) != KW_E_OK) {
            fprintf(stderr, "keywarden run: %s\n", err);
            return 2;
        }
    }
    return 0;
}

static enum kw_err open_pipeline(struct run_ctx *r)
{
    const struct rules_config *rc = &r->model->config;
    struct pipeline_config pc;
    pipeline_config_default(&pc);
    pc.flow.vlan_in_key = rc->capture.vlan_tracking;
    limits_apply(&r->lim, &pc);
    if (rc->n_cred_sources) {
        pc.cred.n = 0;
        for (size_t i = 0; i < rc->n_cred_sources; i++) {
            const struct rules_cred_source *s = &rc->cred_sources[i];
            enum cred_src_kind k = s->kind == RULES_SRC_QUERY    ? CRED_SRC_QUERY
                                   : s->kind == RULES_SRC_COOKIE ? CRED_SRC_COOKIE
                                                                 : CRED_SRC_HEADER;
            if (cred_config_add(&pc.cred, k, s->name) != KW_E_OK)
                kw_warn("credential source %s ignored (too many or too long)", s->name);
        }
    }
    pc.eve = r->eve;
    pc.alerts = r->alerts;
    pc.audit = r->audit;
    pc.baseline = r->baseline;
    pc.routes = r->routes;
    pc.routes_fixed = r->model->detections.baseline.fixed_templates;
    pc.tls_keylog = r->keylog;
    if (r->keylog && !r->o.n_files && tls_keylog_follow(r->keylog, 200) != KW_E_OK)
        return KW_E_NOMEM;
    if (rc->fleet.sensor) { /* docs/fleet.md */
        struct fs_config fc;
        fs_config_from_rules(rc, r->db_path, r->o.n_files > 0, &fc, r->spool, sizeof r->spool);
        if (fs_new(&fc, &r->fleet) != KW_E_OK)
            return KW_E_IO;
        pc.forward = fs_forward(r->fleet);
    }
    pc.model = rules_handle_get(r->rules);
    unsigned n = n_workers(r);
    /* live: the workers read the capture's fanout sockets themselves */
    enum kw_err e = n > 1 ? workers_new(n, &pc, r->o.n_files ? NULL : r->src, &r->wk)
                          : pipeline_new(&pc, &r->pipe);
    if (e != KW_E_OK)
        rules_model_unref(pc.model);
    return e;
}

static int open_capture(struct run_ctx *r)
{
    const struct rules_config *rc = &r->model->config;
    struct cap_config cc;
    cap_config_default(&cc);
    for (unsigned i = 0; i < r->o.n_files; i++)
        cc.files[cc.n_files++] = r->o.files[i];
    if (!r->o.n_files)
        cc.interface = r->o.iface ? r->o.iface : rc->capture.interface;
    cc.bpf = r->o.bpf ? r->o.bpf : rc->capture.bpf;
    if (rc->capture.snaplen)
        cc.snaplen = (int)rc->capture.snaplen;
    if (rc->capture.buffer_mb)
        cc.buffer_mb = (int)rc->capture.buffer_mb;
    cc.fanout = n_workers(r); /* live: a socket (and kernel ring) per worker */
    /* files, one packet thread: reading on another core, where there is
     * one (source.c). Not with workers: their dispatcher does little but
     * read, and on 2 cores the extra thread cost more than it gave (two
     * workers, small-API capture with rules, 8 alternating rounds: 1.595 s
     * with it, 1.510 s without); more cores were not measured. */
    cc.read_ahead = sysconf(_SC_NPROCESSORS_ONLN) > 1 && cc.fanout <= 1;
    if (!cc.n_files && !cc.interface) {
        fprintf(stderr, "keywarden run: nothing to read: give -r FILE or -i IFACE (or "
                        "capture.interface in the config)\n");
        return 2;
    }
    char err[512] = "";
    enum kw_err e = cap_open(&cc, &r->src, err, sizeof err);
    if (e != KW_E_OK) {
        fprintf(stderr, "keywarden run: %s\n", err[0] ? err : "cannot open the capture");
        return e == KW_E_CONFIG ? 2 : 1; /* a bad filter is a usage error */
    }
    return 0;
}

/* outputs.metrics: after the privilege drop, so the server's thread holds
 * no capability (a port above 1023, then). */
static int open_metrics(struct run_ctx *r)
{
    const char *addr = r->model->config.outputs.metrics;
    char err[256];
    if (!addr)
        return 0;
    if (metrics_start(addr, &r->metrics, err, sizeof err) != KW_E_OK) {
        kw_err_log("%s", err);
        return 1;
    }
    kw_info("metrics at http://%s/metrics", addr);
    return 0;
}

/* The OpenAPI documents of services[].openapi and `openapi import`. At
 * start a broken one stops the run (exit 2); on a reload it is named and
 * the documents in use stay. */
static int load_specs(struct run_ctx *r, bool start)
{
    struct rules_model *m = rules_handle_get(r->rules);
    struct oas_set *s = NULL;
    char err[1024];
    enum kw_err e = cli_specs_load(m, r->db_path, &s, err, sizeof err);
    rules_model_unref(m);
    if (e != KW_E_OK) {
        if (start) {
            fprintf(stderr, "%s\nkeywarden run: an OpenAPI document is broken; fix it or remove "
                            "it from services:\n", err[0] ? err : kw_strerror(e));
            return 2;
        }
        kw_err_log("%s", err[0] ? err : kw_strerror(e));
        kw_err_log("OpenAPI documents not reloaded; the ones in use stay");
        return 1;
    }
    if (oas_set_count(s))
        kw_info("%zu documented endpoints from OpenAPI documents", oas_set_count(s));
    if (r->wk)
        workers_set_specs(r->wk, s);
    else
        pipeline_set_specs(r->pipe, s);
    return 0;
}

static void reload_rules(struct run_ctx *r)
{
    struct rules_diag d;
    rules_diag_init(&d);
    if (rules_handle_reload(r->rules, &d) == KW_E_OK) {
        if (r->wk)
            workers_set_model(r->wk, rules_handle_get(r->rules));
        else
            pipeline_set_model(r->pipe, rules_handle_get(r->rules));
        r->reloads++;
        kw_info("rules reloaded (generation %llu)",
                (unsigned long long)rules_handle_generation(r->rules));
        struct rules_model *nm = rules_handle_get(r->rules);
        if (nm && !limits_same(&r->model->config.limits, &nm->config.limits))
            kw_warn("limits: changed in the config; the tables keep the sizes they were "
                    "given at start until keywarden is restarted");
        rules_model_unref(nm);
        load_specs(r, false);
    } else {
        r->reload_failures++;
        kw_err_log("rules reload failed; the running rules stay in force:");
    }
    rules_diag_print(&d, stderr);
    rules_diag_free(&d);
}

/* The snapshot the next scrapes read (metrics.h): once a second, from
 * this thread, never per packet. */
static void publish_metrics(struct run_ctx *r, kw_ts wall)
{
    json_t *rec = run_stats_record(r);
    json_t *s = json_incref(json_object_get(rec, "stats"));
    json_decref(rec);
    metrics_publish(r->metrics, s, wall);
}

/* Live with workers: a nap (a signal cuts it short), or how the workers'
 * sockets ended. */
static enum cap_next fanout_wait(struct run_ctx *r)
{
    bool failed = false;
    if (!workers_capturing(r->wk, &failed))
        return failed ? CAP_ERROR : CAP_EOF;
    struct timespec nap = {0, 50 * 1000 * 1000};
    nanosleep(&nap, NULL);
    return CAP_TIMEOUT;
}

/* What was lost since the last stats record, said in the log: a sensor
 * falling behind must not be found out only from the stats record or a
 * dashboard (docs/deploy.md, docs/storage.md say what to do about it).
 * The kernel's drops (live) and the audit rows the full ring refused
 * (live: a replay waits instead); EVE and the database say their own
 * failures when they happen. */
struct loss_seen {
    uint64_t drop, recv, audit;
};

/* n - *seen, then *seen = n (0 if the counter went back). */
static uint64_t since(uint64_t *seen, uint64_t n)
{
    uint64_t d = n >= *seen ? n - *seen : 0;
    *seen = n;
    return d;
}

static void warn_losses(struct run_ctx *r, struct loss_seen *seen, kw_ts interval, bool live)
{
    long long secs = (long long)(interval / 1000000);
    if (live) {
        struct cap_stats cs;
        cap_get_stats(r->src, &cs);
        uint64_t drop = since(&seen->drop, cs.kernel_drop),
                 recv = since(&seen->recv, cs.kernel_recv);
        if (drop)
            kw_warn("capture: the kernel dropped %llu of %llu packets (%.2f%%) in the last %llds: "
                    "keywarden is not keeping up; raise capture.buffer_mb for bursts, "
                    "capture.workers for a steady rate, or narrow capture.bpf (docs/deploy.md)",
                    (unsigned long long)drop, (unsigned long long)recv,
                    recv ? 100.0 * (double)drop / (double)recv : 100.0, secs);
    }
    struct audit_stats us;
    audit_get_stats(r->audit, &us);
    uint64_t lost = since(&seen->audit, us.dropped);
    if (lost)
        kw_warn("audit: %llu transactions not recorded in the audit trail in the last %llds: its "
                "queue was full, the database writer is behind (a locked or slow database, or a "
                "CPU shared with the packet threads); counted in stats audit.dropped "
                "(docs/storage.md)",
                (unsigned long long)lost, secs);
}

static int loop(struct run_ctx *r)
{
    bool tty = isatty(STDERR_FILENO) && !r->o.quiet && !r->o.no_progress;
    bool live = r->o.n_files == 0;
    kw_ts started = kw_ts_wall(), last_prog = started;
    /* Stats describe the process, not the traffic: wall clock, as Suricata
     * does (on packet time a two-week replay wrote thousands of them). */
    kw_ts interval = KW_TS_SEC(r->o.stats_interval_s > 0 ? r->o.stats_interval_s : 60);
    kw_ts next_stats = started + interval, next_metrics = started, next_snap = started;
    struct loss_seen losses = {0, 0, 0};
    uint64_t iter = 0;
    int rc = 0;
    struct cap_pkt pkt;
    /* live: a stop lets the capture hand over what its ring already holds
     * (cap_next ends it, docs/capture.md); files stop at once. Live with
     * workers, the workers read the sockets (and drain them at the end,
     * workers_finish); this thread minds reloads, metrics and progress. */
    bool fanout = live && r->wk;
    while (!atomic_load(&g_stop) || (live && atomic_load(&g_src) && !fanout)) {
        enum cap_next n = fanout ? fanout_wait(r) : cap_next(r->src, &pkt);
        if (n == CAP_PACKET) {
            if (r->wk)
                workers_packet(r->wk, &pkt);
            else
                pipeline_packet(r->pipe, &pkt);
        } else if (n == CAP_TIMEOUT) {
            if (live && !fanout)
                pipeline_advance(r->pipe, kw_ts_wall());
        } else if (n == CAP_EOF) {
            break;
        } else {
            if (!atomic_load(&g_stop)) rc = 1;
            break;
        }
        if (atomic_exchange(&g_reload, 0)) { /* SIGHUP: log rotation and new rules */
            if (kw_eve_reopen(r->eve) == KW_E_OK && strcmp(r->eve_path, "-") != 0)
                kw_info("EVE %s reopened", r->eve_path);
            reload_rules(r);
        }
        if (n == CAP_PACKET && (++iter & 0x3ff) != 0)
            continue; /* read the clock every 1024 packets, and when idle */
        kw_ts w = kw_ts_wall();
        if (w >= next_stats) {
            kw_eve_write(r->eve, run_stats_record(r));
            warn_losses(r, &losses, interval, live);
            next_stats = w + interval;
        }
        if (r->metrics && w >= next_metrics) {
            publish_metrics(r, w);
            next_metrics = w + KW_TS_SEC(1);
        }
        /* the workers' counters, asked for only when the metrics (each
         * second) or the next stats record (half a second ahead, so that
         * the threads have answered by then) will read them: each answer
         * is a pipeline_stats_json per thread and a walk of the
         * baselines' profiles in the judge */
        if (r->wk && w >= next_snap && (r->metrics || w + KW_TS_SEC(1) / 2 >= next_stats)) {
            workers_stats_request(r->wk);
            next_snap = w + KW_TS_SEC(1);
        }
        if (tty && w - last_prog >= 1000000) {
            run_progress(r, started);
            last_prog = w;
        }
    }
    if (tty)
        fputc('\n', stderr);
    return rc;
}

static void teardown(struct run_ctx *r)
{
    metrics_stop(r->metrics);
    if (r->wk)
        workers_finish(r->wk);
    workers_destroy(r->wk);
    pipeline_destroy(r->pipe);
    tls_keylog_destroy(r->keylog); /* wipes the secrets */
    fs_destroy(r->fleet);
    if (r->baseline && !r->saved && baseline_save(r->baseline) != KW_E_OK)
        kw_err_log("baselines could not be saved to %s", r->db_path);
    baseline_destroy(r->baseline);
    if (r->routes && !r->saved && routes_save(r->routes) != KW_E_OK)
        kw_err_log("learned endpoint templates could not be saved to %s", r->db_path);
    routes_destroy(r->routes);
    audit_destroy(r->audit);
    alerts_destroy(r->alerts);
    dbw_destroy(r->dbw); /* after every user of it */
    if (r->src) {
        atomic_store(&g_src, NULL);
        cap_close(r->src);
    }
    kw_eve_close(r->eve);
    if (r->rules)
        rules_handle_destroy(r->rules);
    if (r->rules && r->model)
        rules_model_unref(r->model);
    free(r->o.bpf);
}

static int load_rules(struct run_ctx *r)
{
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m = NULL;
    enum kw_err e = rules_load(r->o.config, r->o.rules, &m, &d);
    rules_diag_print(&d, stderr);
    size_t nerr = rules_diag_errors(&d);
    rules_diag_free(&d);
    if (e != KW_E_OK || !m) {
        fprintf(stderr, "keywarden run: refusing to start: %zu error(s) in the config or rules "
                        "(keywarden check shows them all)\n",
                nerr);
        return 2;
    }
    r->model = m;
    r->rules = rules_handle_new(m, r->o.config, r->o.rules);
    if (!r->rules) {
        rules_model_free(m);
        r->model = NULL;
        return 1;
    }
    /* db_path and eve_path point into this model's config: keep it alive
     * past a SIGHUP reload (the summary prints them at the end). */
    rules_model_ref(m);
    return 0;
}

/* First thing: a SIGHUP or SIGTERM that arrives while the database and
 * the pipeline are being opened must not kill the process (SIGHUP's
 * default action); the flags are looked at once the loop runs.
 * SA_RESTART: a signal must not turn a blocking read of a capture file or
 * pipe into a read error; the loop checks the flags after every packet,
 * and a live poll() returns on a signal regardless. SIGXFSZ is ignored so
 * that a file-size limit (RLIMIT_FSIZE) is a write error (EFBIG) that the
 * outputs report and count, not a kill. */
static void install_signals(void)
{
    cli_install_signals(on_stop, on_hup);
}

int cmd_run(int argc, char **argv)
{
    install_signals();
    /* before any secret is read (key logs, sink secrets, request heads) */
    if (priv_no_core_dumps() != KW_E_OK)
        kw_warn("cannot turn core dumps off: %s", strerror(errno));
    struct run_ctx r;
    memset(&r, 0, sizeof r);
    int rc = parse_opts(argc, argv, &r.o);
    if (rc >= 0)
        return rc;
    if ((rc = load_rules(&r)) != 0 || atomic_load(&g_stop)) goto out;
    char perr[4096];
    const char *user = r.o.user ? r.o.user : r.model->config.run.user;
    if (priv_resolve(user, r.o.n_files == 0, &r.priv, perr, sizeof perr) != KW_E_OK) {
        fprintf(stderr, "keywarden run: %s\n", perr);
        rc = 2;
        goto out;
    }
    if (limits_resolve(&r.model->config, n_workers(&r), &r.lim, perr, sizeof perr) != KW_E_OK) {
        fprintf(stderr, "%s\n", perr);
        rc = 2;
        goto out;
    }
    if ((rc = open_keylogs(&r)) != 0 || (rc = open_capture(&r)) != 0)
        goto out;
    atomic_store(&g_src, r.src);
    if (open_outputs(&r) != KW_E_OK || open_pipeline(&r) != KW_E_OK || open_metrics(&r) != 0) {
        fprintf(stderr, "keywarden run: cannot start (see the errors above)\n");
        rc = 1;
        goto out;
    }
    if ((rc = load_specs(&r, true)) != 0)
        goto out;
    kw_ts started = kw_ts_wall();
    r.running = true;
    rc = loop(&r);
    if (r.wk)
        workers_finish(r.wk);
    else
        pipeline_finish(r.pipe);
    r.running = false;
    if (r.fleet && fs_finish_run(r.fleet, r.wk ? workers_now(r.wk) : pipeline_now(r.pipe),
                                 r.o.quiet) != KW_E_OK)
        rc = 1; /* records were lost (the spool was full) */
    /* alerts first: the last "N more" updates go out (from memory) even
     * while the database is locked */
    if (r.o.n_files)
        alerts_drain(r.alerts);
    audit_flush(r.audit);
    bool saved = baseline_save(r.baseline) == KW_E_OK;
    r.saved = true;
    if (!saved)
        kw_err_log("baselines could not be saved to %s", r.db_path);
    if (routes_save(r.routes) != KW_E_OK)
        kw_err_log("learned endpoint templates could not be saved to %s", r.db_path);
    dbw_flush(r.dbw); /* the counts below are final */
    kw_eve_write(r.eve, run_stats_record(&r));
    kw_eve_flush(r.eve);
    if (!r.o.quiet)
        run_print_summary(&r, (double)(kw_ts_wall() - started) / 1e6);
    if (run_report_losses(&r, saved) && rc == 0)
        rc = 1; /* something was lost: said above */
out:
    teardown(&r);
    return rc;
}
