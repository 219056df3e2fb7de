/* cmd_alerts: `keywarden alerts test|flush`. `test` sends one sample alert
 * to every configured sink and prints what each answered; `flush` delivers
 * what the outbox holds (retries included) for up to --timeout and exits 0
 * when everything was delivered, 1 when something is left or failed for
 * good (a redirect, 410, another 4xx: each listed).
 *
 * The one thing to know: sinks come from the config's `alerts:` section
 * (rules_load, the same loader as `run`) plus --slack/--webhook options; a
 * webhook secret is only ever taken from the environment (--secret-env
 * NAME), never from the command line, and no URL is printed in full
 * (a Slack webhook URL is itself a secret). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "cli.h"
#include "cli_util.h"
#include "kw_log.h"
#include "rules.h"

struct alerts_opts {
    const char *config, *db;
    double timeout_s;
    long timeout_ms;
    struct alerts_config ac;
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: keywarden alerts test  [-c CONFIG] [--slack URL] [--webhook URL [--secret-env "
        "NAME]]...\n"
        "       keywarden alerts flush [-c CONFIG] [--db PATH] [--timeout SECONDS] [sink options]\n"
        "\n"
        "  -c, --config FILE     keywarden.yaml (its alerts: and storage: sections)\n"
        "      --db PATH         SQLite database (default: storage.database or\n"
        "                        ./keywarden-state/keywarden.db)\n"
        "      --slack URL       add a Slack incoming webhook sink\n"
        "      --webhook URL     add a signed webhook sink\n"
        "      --secret-env NAME HMAC secret of the last --webhook, read from $NAME\n"
        "      --timeout SECONDS flush: how long to keep delivering (default 60)\n"
        "      --request-timeout-ms N  per request (default 10000)\n");
}

/* Host part of a URL for display ("https://hooks.slack.com/…"). */
static void url_display(const char *url, char *buf, size_t len)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    snprintf(buf, len, "%.*s%.*s/…", (int)(p - url), url, (int)n, p);
}

/* Sinks, database and windows from keywarden.yaml. */
static int from_config(struct alerts_opts *o, struct rules_model **model)
{
    struct rules_diag diag;
    rules_diag_init(&diag);
    enum kw_err e = rules_load(o->config, NULL, model, &diag);
    if (diag.errors || diag.warnings) rules_diag_print(&diag, stderr);
    rules_diag_free(&diag);
    if (e != KW_E_OK) {
        fprintf(stderr, "keywarden alerts: cannot load %s: %s\n", o->config, kw_strerror(e));
        return 2;
    }
    const struct rules_config *rc = &(*model)->config;
    struct alerts_config *ac = &o->ac;
    if (!o->db && rc->storage.database) o->db = rc->storage.database;
    cli_alerts_from_config(rc, ac);
    return 0;
}

static int add_cli_sink(struct alerts_opts *o, enum alerts_sink_kind kind, const char *url)
{
    if (o->ac.n_sinks >= ALERTS_MAX_SINKS) {
        fprintf(stderr, "keywarden alerts: at most %d sinks\n", ALERTS_MAX_SINKS);
        return 2;
    }
    struct alerts_sink_cfg *s = &o->ac.sinks[o->ac.n_sinks++];
    alerts_sink_default(s, kind);
    if (strlen(url) >= sizeof s->url) {
        fprintf(stderr, "keywarden alerts: URL longer than %zu bytes\n", sizeof s->url - 1);
        return 2;
    }
    snprintf(s->url, sizeof s->url, "%s", url);
    return 0;
}

static int set_secret_env(struct alerts_opts *o, const char *name)
{
    struct alerts_sink_cfg *s = o->ac.n_sinks ? &o->ac.sinks[o->ac.n_sinks - 1] : NULL;
    if (!s || s->kind != ALERTS_SINK_WEBHOOK) {
        fprintf(stderr, "keywarden alerts: --secret-env must follow a --webhook URL\n");
        return 2;
    }
    const char *v = getenv(name);
    if (!v || !v[0] || strlen(v) >= sizeof s->secret) {
        fprintf(stderr,
                "keywarden alerts: environment variable %s is %s; export the webhook secret "
                "in it (at most %zu bytes)\n",
                name, v && v[0] ? "too long" : "not set", sizeof s->secret - 1);
        return 2;
    }
    snprintf(s->secret, sizeof s->secret, "%s", v);
    return 0;
}

static int parse(int argc, char **argv, struct alerts_opts *o)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"db", required_argument, NULL, 'd'},
                                             {"slack", required_argument, NULL, 's'},
                                             {"webhook", required_argument, NULL, 'w'},
                                             {"secret-env", required_argument, NULL, 'e'},
                                             {"timeout", required_argument, NULL, 't'},
                                             {"request-timeout-ms", required_argument, NULL, 'r'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch, rc = 0;
    optind = 1;
    while (rc == 0 && (ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o->config = optarg;
            break;
        case 'd':
            o->db = optarg;
            break;
        case 's':
            rc = add_cli_sink(o, ALERTS_SINK_SLACK, optarg);
            break;
        case 'w':
            rc = add_cli_sink(o, ALERTS_SINK_WEBHOOK, optarg);
            break;
        case 'e':
            rc = set_secret_env(o, optarg);
            break;
        case 't':
            o->timeout_s = atof(optarg);
            break;
        case 'r':
            o->timeout_ms = atol(optarg);
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (rc == 0 && optind != argc) {
        fprintf(stderr, "keywarden alerts: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    return rc;
}

static int do_test(struct alerts_opts *o)
{
    if (o->ac.n_sinks == 0) {
        fprintf(stderr, "keywarden alerts test: no sink configured; add alerts.slack or "
                        "alerts.webhooks to the config, or --slack/--webhook\n");
        return 2;
    }
    struct alerts_test_result res[ALERTS_MAX_SINKS];
    if (alerts_test_sinks(&o->ac, res) != KW_E_OK) {
        fprintf(stderr, "keywarden alerts test: out of memory\n");
        return 1;
    }
    int bad = 0;
    for (unsigned i = 0; i < o->ac.n_sinks; i++) {
        const struct alerts_sink_cfg *s = &o->ac.sinks[i];
        char where[160];
        url_display(s->url, where, sizeof where);
        bool ok = res[i].curl_code == 0 && res[i].http_status >= 200 && res[i].http_status < 300;
        bad += !ok;
        printf("%-7s %-40s %s  HTTP %ld  %.1f ms  %s\n",
               s->kind == ALERTS_SINK_SLACK ? "slack" : "webhook", where, ok ? "ok  " : "FAIL",
               res[i].http_status, res[i].ms, res[i].error);
    }
    return bad ? 1 : 0;
}

static int do_flush(struct alerts_opts *o)
{
    struct alerts_config *ac = &o->ac;
    ac->db_path = o->db ? o->db : CLI_DEFAULT_DB;
    ac->drain_timeout = KW_TS_SEC(1) * (kw_ts)(o->timeout_s > 0 ? o->timeout_s : 60);
    struct alerts *a = NULL;
    enum kw_err e = alerts_new(ac, NULL, &a);
    if (e != KW_E_OK) {
        fprintf(stderr, "keywarden alerts flush: %s\n", kw_strerror(e));
        return e == KW_E_CONFIG ? 2 : 1;
    }
    struct alerts_stats st;
    alerts_get_stats(a, &st);
    uint64_t at_start = st.backlog;
    alerts_drain(a);
    alerts_get_stats(a, &st);
    struct alerts_failure f[10];
    unsigned nf = alerts_failures(a, f, 10);
    alerts_destroy(a);
    for (unsigned i = 0; i < nf && i < 10; i++)
        printf("failed for good: alert %s to %s: %s\n", f[i].id, f[i].sink, f[i].why);
    if (nf > 10)
        printf("... and %u more failed for good (the outbox keeps each with its error)\n",
               nf - 10);
    printf("outbox: %llu to deliver; delivered %llu, in digests %llu, failed for good %llu, "
           "retries %llu; left %llu",
           (unsigned long long)at_start, (unsigned long long)st.delivered,
           (unsigned long long)st.digested, (unsigned long long)st.failed_permanent,
           (unsigned long long)st.retries, (unsigned long long)st.backlog);
    if (st.orphaned)
        printf(", plus %llu for sinks no longer configured", (unsigned long long)st.orphaned);
    printf("\n");
    return st.backlog == 0 && st.orphaned == 0 && st.failed_permanent == 0 ? 0 : 1;
}

int cmd_alerts(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "test") != 0 && strcmp(argv[1], "flush") != 0)) {
        if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
            usage(stdout);
            return 0;
        }
        usage(stderr);
        return 2;
    }
    struct alerts_opts o = {0};
    alerts_config_default(&o.ac);
    int rc = parse(argc - 1, argv + 1, &o);
    if (rc) return rc < 0 ? 0 : rc;
    struct rules_model *model = NULL;
    if (o.config && (rc = from_config(&o, &model)) != 0) return rc;
    if (o.timeout_ms > 0) o.ac.timeout_ms = o.timeout_ms;
    rc = !strcmp(argv[1], "test") ? do_test(&o) : do_flush(&o);
    memset(&o.ac.sinks, 0, sizeof o.ac.sinks); /* secrets */
    if (model) rules_model_free(model);
    return rc;
}
