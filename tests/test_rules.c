/* test_rules: the config and rule-file loader. A full good config with its
 * rules folder loads with every value checked; each broken fixture reports
 * every problem (not the first only) at its exact file:line:col; defaults
 * apply with no config; attribution finds identities by each credential
 * form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>
#include <string.h>

#include <cmocka.h>

#include "rules.h"

#define DATA KW_TEST_DATA "/data/rules"
#define SHA_TEST "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SHA_FOO "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm);
}

static struct rules_model *load_good(struct rules_diag *d)
{
    setenv("KW_TEST_SLACK_URL", "https://hooks.slack.example/T000/B000/xyz", 1);
    setenv("KW_TEST_WEBHOOK_SECRET", "hunter2-webhook", 1);
    struct rules_model *m = NULL;
    rules_diag_init(d);
    enum kw_err e = rules_load(DATA "/good/keywarden.yaml", NULL, &m, d);
    if (e != KW_E_OK) rules_diag_print(d, stderr);
    assert_int_equal(e, KW_E_OK);
    assert_non_null(m);
    return m;
}

static void test_good_config(void **state)
{
    struct rules_diag d;
    struct rules_model *m = load_good(&d);
    assert_int_equal(rules_diag_errors(&d), 0);
    assert_int_equal(rules_diag_warnings(&d), 0);
    assert_int_equal(d.files, 3);
    assert_int_equal(d.identities, 3);
    const struct rules_config *c = &m->config;
    assert_string_equal(c->capture.interface, "eth1");
    assert_string_equal(c->capture.bpf, "tcp port 443 or tcp port 80");
    assert_int_equal(c->capture.snaplen, 9216);
    assert_int_equal(c->capture.buffer_mb, 64);
    assert_int_equal(c->capture.workers, 4);
    assert_int_equal(c->n_cred_sources, 4);
    assert_int_equal(c->cred_sources[0].kind, RULES_SRC_HEADER);
    assert_string_equal(c->cred_sources[0].name, "Authorization");
    assert_int_equal(c->cred_sources[2].kind, RULES_SRC_QUERY);
    assert_string_equal(c->cred_sources[2].name, "api_key");
    assert_int_equal(c->cred_sources[3].kind, RULES_SRC_COOKIE);
    assert_string_equal(c->cred_sources[3].name, "session");
    assert_string_equal(c->storage.database, "/var/lib/keywarden/keywarden.db");
    assert_int_equal(c->storage.audit_retention_s, 90 * 86400);
    assert_string_equal(c->outputs.eve, "/var/log/keywarden/eve.json");
    assert_true(c->alerts.has_slack);
    assert_string_equal(c->alerts.slack.url, "https://hooks.slack.example/T000/B000/xyz");
    assert_int_equal(c->alerts.slack.min_severity, 2);
    assert_int_equal(c->alerts.n_webhooks, 1);
    assert_string_equal(c->alerts.webhooks[0].url, "https://siem.example/hooks/kw");
    assert_string_equal(c->alerts.webhooks[0].secret, "hunter2-webhook");
    assert_int_equal(c->alerts.webhooks[0].min_severity, 3);
    assert_int_equal(c->alerts.webhooks[0].n_kinds, 2);
    assert_string_equal(c->alerts.webhooks[0].kinds[1], "out_of_scope");
    assert_int_equal(c->alerts.suppress_window_s, 3600);
    assert_int_equal(c->alerts.drain_timeout_s, 10);
    assert_string_equal(c->rules_path, DATA "/good/rules.d");

    /* detections: acme.yaml sets them, beta.yml (later by name) overrides failed_auth */
    const struct rules_detections *det = &m->detections;
    assert_int_equal(det->unknown_credential.severity, 1);
    assert_int_equal(det->failed_auth.threshold, 5);
    assert_int_equal(det->failed_auth.window_s, 60);
    assert_int_equal(det->failed_auth.severity, 3);
    assert_int_equal(det->credential_stuffing.threshold, 20);
    assert_int_equal(det->credential_stuffing.window_s, 300);
    assert_int_equal(det->enumeration.threshold, 200);
    assert_int_equal(det->enumeration.window_s, 300);
    assert_int_equal(det->baseline.learning_s, 14 * 86400);
    assert_int_equal(det->baseline.sensitivity, RULES_SENS_MEDIUM);
    rules_diag_free(&d);
    rules_model_free(m);
}

static void test_good_identities(void **state)
{
    struct rules_diag d;
    struct rules_model *m = load_good(&d);
    const struct rules_identity *c01 = rules_find_identity(m, "c01");
    assert_non_null(c01);
    assert_string_equal(c01->name, "Acme Data Ltd");
    assert_string_equal(c01->kind, "contractor");
    assert_string_equal(kw_tz_name(c01->tz), "Asia/Kolkata");
    assert_int_equal(c01->loc.line, 2);
    assert_non_null(strstr(c01->loc.file, "rules.d/acme.yaml"));
    assert_true(c01->schedule.set);
    assert_int_equal(c01->schedule.days, 0x3e); /* mon..fri */
    assert_int_equal(c01->schedule.start_min, 9 * 60);
    assert_int_equal(c01->schedule.end_min, 19 * 60);
    assert_int_equal(c01->schedule.grace_s, 1800);
    assert_int_equal(c01->schedule.loc.line, 10);
    /* dates are midnight in Asia/Kolkata (+05:30); until includes its day */
    assert_true(c01->access.has_from && c01->access.has_until);
    assert_int_equal(c01->access.from_s, utc(2025, 12, 31, 18, 30, 0));
    assert_int_equal(c01->access.until_s, utc(2026, 6, 30, 18, 30, 0));
    assert_int_equal(c01->n_sources, 3);
    assert_int_equal(c01->sources[0].prefix, 29);
    assert_int_equal(c01->sources[1].prefix, 32);
    assert_int_equal(c01->sources[2].prefix, 48);
    assert_int_equal(c01->sources[2].net.family, 6);
    assert_int_equal(c01->n_scope, 3);
    assert_string_equal(c01->scope[0].host, "api.acme.internal");
    assert_int_equal(c01->scope[2].n_methods, 2);
    assert_int_equal(c01->scope[2].loc.line, 16);
    assert_int_equal(c01->n_deny, 1);
    assert_true(c01->deny[0].any_method);
    assert_int_equal(c01->limits.requests_per_hour, 600);
    assert_int_equal(c01->limits.response_bytes_per_hour, 200000000);

    const struct rules_identity *c02 = rules_find_identity(m, "c02");
    assert_non_null(c02);
    assert_string_equal(c02->kind, "service");
    assert_string_equal(kw_tz_name(c02->tz), "Europe/Berlin");
    assert_int_equal(c02->schedule.days, 0x1f); /* sun..thu, wrapping */
    assert_int_equal(c02->schedule.start_min, 22 * 60);
    assert_int_equal(c02->schedule.end_min, 6 * 60);
    assert_int_equal(c02->access.from_s, utc(2026, 1, 1, 7, 0, 0));
    assert_int_equal(c02->access.until_s, utc(2026, 12, 31, 23, 59, 59));
    const struct rules_identity *e07 = rules_find_identity(m, "e07");
    assert_non_null(e07);
    assert_int_equal(e07->schedule.days, 0x41); /* sat, sun */
    assert_string_equal(kw_tz_name(e07->tz), "America/New_York");
    assert_null(rules_find_identity(m, "nobody"));
    rules_diag_free(&d);
    rules_model_free(m);
}

static void test_attribution(void **state)
{
    struct rules_diag d;
    struct rules_model *m = load_good(&d);
    struct kw_cred c = {.kind = KW_CRED_BEARER};
    snprintf(c.fingerprint, sizeof c.fingerprint, "sha256:%s", SHA_TEST);
    const struct rules_identity *id = rules_attribute(m, &c);
    assert_non_null(id);
    assert_string_equal(id->id, "c01");
    /* written in upper case with an upper-case prefix in beta.yml */
    snprintf(c.fingerprint, sizeof c.fingerprint, "sha256:%s", SHA_FOO);
    id = rules_attribute(m, &c);
    assert_non_null(id);
    assert_string_equal(id->id, "c02");
    snprintf(c.fingerprint, sizeof c.fingerprint, "sha256:%064d", 7);
    assert_null(rules_attribute(m, &c));

    struct kw_cred b = {.kind = KW_CRED_BASIC};
    snprintf(b.basic_user, sizeof b.basic_user, "acme-etl");
    snprintf(b.fingerprint, sizeof b.fingerprint, "sha256:%064d", 1);
    assert_string_equal(rules_attribute(m, &b)->id, "c01");
    snprintf(b.basic_user, sizeof b.basic_user, "eve");
    assert_string_equal(rules_attribute(m, &b)->id, "e07");
    snprintf(b.basic_user, sizeof b.basic_user, "EVE"); /* user names are exact */
    assert_null(rules_attribute(m, &b));

    struct kw_cred j = {.kind = KW_CRED_JWT};
    snprintf(j.fingerprint, sizeof j.fingerprint, "sha256:%064d", 2);
    snprintf(j.jwt.iss, sizeof j.jwt.iss, "https://idp.acme.example");
    snprintf(j.jwt.sub, sizeof j.jwt.sub, "acme-data");
    assert_string_equal(rules_attribute(m, &j)->id, "c01");
    snprintf(j.jwt.sub, sizeof j.jwt.sub, "someone-else"); /* both must match */
    assert_null(rules_attribute(m, &j));
    snprintf(j.jwt.client_id, sizeof j.jwt.client_id, "beta-ops");
    assert_string_equal(rules_attribute(m, &j)->id, "c02");

    struct kw_txn t;
    memset(&t, 0, sizeof t);
    t.cred = b;
    snprintf(t.cred.basic_user, sizeof t.cred.basic_user, "acme-etl");
    assert_non_null(rules_attribute_txn(m, &t));
    assert_string_equal(t.identity.id, "c01");
    assert_string_equal(t.identity.name, "Acme Data Ltd");
    assert_string_equal(t.identity.kind, "contractor");
    t.cred.kind = KW_CRED_NONE;
    assert_null(rules_attribute_txn(m, &t));
    assert_string_equal(t.identity.id, "");
    rules_diag_free(&d);
    rules_model_free(m);
}

/* detections.baseline.learn_templates: false turns template learning off. */
static void test_learn_templates(void **state)
{
    (void)state;
    static const char *const text[] = {"detections:\n  baseline: { learn_templates: false }\n",
                                       "detections:\n  baseline: { learn_templates: true }\n"};
    for (int i = 0; i < 2; i++) {
        struct rules_diag d;
        rules_diag_init(&d);
        struct rules_model *m = NULL;
        assert_int_equal(rules_load_mem(NULL, NULL, "r.yaml", text[i], &m, &d), KW_E_OK);
        assert_int_equal(m->detections.baseline.fixed_templates, i == 0);
        rules_diag_free(&d);
        rules_model_free(m);
    }
}

static void test_defaults(void **state)
{
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m = NULL;
    assert_int_equal(rules_load(NULL, NULL, &m, &d), KW_E_OK);
    assert_int_equal(rules_diag_errors(&d) + rules_diag_warnings(&d), 0);
    assert_int_equal(m->n_identities, 0);
    assert_string_equal(m->config.storage.database, "./keywarden-state/keywarden.db");
    assert_string_equal(m->config.outputs.eve, "./keywarden-state/eve.json");
    assert_null(m->config.rules_path);
    assert_int_equal(m->config.n_cred_sources, 6); /* the default list of issue 4 */
    assert_null(m->config.capture.bpf);
    assert_string_equal(m->config.cred_sources[0].name, "Authorization");
    assert_int_equal(m->detections.failed_auth.threshold, 20);
    assert_int_equal(m->detections.failed_auth.window_s, 120);
    assert_int_equal(m->detections.credential_stuffing.threshold, 20);
    assert_int_equal(m->detections.credential_stuffing.window_s, 300);
    assert_int_equal(m->detections.enumeration.threshold, 200);
    assert_int_equal(m->detections.enumeration.window_s, 300);
    assert_int_equal(m->config.alerts.suppress_window_s, 3600);
    assert_int_equal(m->config.alerts.drain_timeout_s, 10);
    assert_int_equal(m->detections.baseline.learning_s, 14 * 86400);
    assert_int_equal(m->detections.baseline.sensitivity, RULES_SENS_MEDIUM);
    assert_false(m->detections.baseline.fixed_templates); /* learning on */
    assert_int_equal(m->detections.unknown_credential.severity, 1);
    struct kw_cred c = {.kind = KW_CRED_BEARER};
    snprintf(c.fingerprint, sizeof c.fingerprint, "sha256:%s", SHA_TEST);
    assert_null(rules_attribute(m, &c)); /* every credential is unknown */
    rules_diag_free(&d);
    rules_model_free(m);
}

struct want {
    enum rules_diag_level lv;
    int line, col;
    const char *needle; /* substring of the message */
};

/* Exactly these problems, in this order. */
static void expect_diag(const struct rules_diag *d, const struct want *w, size_t n,
                        const char *file_suffix)
{
    if (d->n != n) rules_diag_print(d, stderr);
    assert_int_equal(d->n, n);
    for (size_t i = 0; i < n; i++) {
        const struct rules_diag_item *it = &d->items[i];
        if (it->line != w[i].line || it->col != w[i].col || !strstr(it->msg, w[i].needle))
            fprintf(stderr, "item %zu: %d:%d %s (want %d:%d %s)\n", i, it->line, it->col, it->msg,
                    w[i].line, w[i].col, w[i].needle);
        assert_int_equal(it->level, w[i].lv);
        assert_int_equal(it->line, w[i].line);
        assert_int_equal(it->col, w[i].col);
        assert_non_null(strstr(it->msg, w[i].needle));
        assert_non_null(strstr(it->file, file_suffix));
        assert_non_null(it->text); /* the offending line */
    }
}

#define E RULES_DIAG_ERROR
#define W RULES_DIAG_WARNING

/* Relative paths in a config file are relative to the file's folder, so
 * `run`, `audit` and a cron job in another directory mean the same files. */
static void test_relative_paths(void **state)
{
    char dir[] = "/tmp/kw-rules-rel-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/keywarden.yaml", dir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fputs("storage: { database: state/kw.db }\noutputs: { eve: /var/log/kw/eve.json }\n", f);
    fclose(f);
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m = NULL;
    assert_int_equal(rules_load(cfg, NULL, &m, &d), KW_E_OK);
    char want[600];
    snprintf(want, sizeof want, "%s/state/kw.db", dir);
    assert_string_equal(m->config.storage.database, want);
    assert_string_equal(m->config.outputs.eve, "/var/log/kw/eve.json"); /* absolute: kept */
    rules_diag_free(&d);
    rules_model_free(m);
    unlink(cfg);
    rmdir(dir);
}

/* A FIFO (or any non-regular file) in the rules folder, or given as the
 * config, is refused without being opened: open() of a FIFO with no
 * writer blocks forever, which hung `check` and, on SIGHUP, the capture
 * thread. The test would hang (ctest timeout) if the loader opened it. */
static void test_fifo_refused(void **state)
{
    char dir[] = "/tmp/kw-rules-fifo-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char good[600], fifo[600], sub[600];
    snprintf(good, sizeof good, "%s/a.yaml", dir);
    snprintf(fifo, sizeof fifo, "%s/b.yaml", dir);
    snprintf(sub, sizeof sub, "%s/c.yaml", dir);
    FILE *f = fopen(good, "w");
    assert_non_null(f);
    fputs("identities: []\n", f);
    fclose(f);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m = NULL;
    assert_int_equal(rules_load(NULL, dir, &m, &d), KW_E_CONFIG);
    assert_null(m);
    assert_int_equal(rules_diag_errors(&d), 2);
    assert_non_null(strstr(d.items[0].file, "b.yaml"));
    assert_non_null(strstr(d.items[0].msg, "a FIFO"));
    assert_non_null(strstr(d.items[1].msg, "a directory"));
    rules_diag_free(&d);
    /* the config itself */
    rules_diag_init(&d);
    assert_int_equal(rules_load(fifo, NULL, &m, &d), KW_E_CONFIG);
    assert_int_equal(rules_diag_errors(&d), 1);
    assert_non_null(strstr(d.items[0].msg, "a FIFO"));
    rules_diag_free(&d);
    unlink(good);
    unlink(fifo);
    rmdir(sub);
    rmdir(dir);
}

/* A file with a literal secret that every user can read, and a file every
 * user can change, get a warning naming the mode; 0640 gets neither. */
static size_t mode_warnings(const char *cfg, mode_t mode)
{
    assert_int_equal(chmod(cfg, mode), 0);
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m = NULL;
    assert_int_equal(rules_load(cfg, NULL, &m, &d), KW_E_OK);
    size_t n = 0;
    for (size_t i = 0; i < d.n; i++)
        if (strstr(d.items[i].msg, "by every user (mode")) n++;
    rules_diag_free(&d);
    rules_model_free(m);
    return n;
}

static void test_file_mode_warnings(void **state)
{
    char dir[] = "/tmp/kw-rules-mode-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/keywarden.yaml", dir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fputs("alerts:\n  webhooks: [ { url: \"http://127.0.0.1:9/x\", secret: \"lit\" } ]\n", f);
    fclose(f);
    assert_int_equal(mode_warnings(cfg, 0640), 0);
    assert_int_equal(mode_warnings(cfg, 0644), 1); /* readable, holds a secret */
    assert_int_equal(mode_warnings(cfg, 0666), 2); /* and writable */
    f = fopen(cfg, "w");
    assert_non_null(f);
    fputs("alerts: { suppress: { window: 1h } }\n", f); /* no secret */
    fclose(f);
    assert_int_equal(mode_warnings(cfg, 0644), 0);
    assert_int_equal(mode_warnings(cfg, 0646), 1);
    unlink(cfg);
    rmdir(dir);
}

/* alerts.syslog names a facility; an unknown one is an error at its value. */
static void test_syslog_facility(void **state)
{
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m = NULL;
    assert_int_equal(rules_load_mem("kw.yaml", "alerts: { syslog: kern }\n", "r.yaml",
                                    "identities: []\n", &m, &d),
                     KW_E_CONFIG);
    assert_int_equal(rules_diag_errors(&d), 1);
    assert_int_equal(d.items[0].line, 1);
    assert_int_equal(d.items[0].col, 19);
    rules_diag_free(&d);
    rules_diag_init(&d);
    assert_int_equal(rules_load_mem("kw.yaml", "alerts: { syslog: local3 }\n", "r.yaml",
                                    "identities: []\n", &m, &d),
                     KW_E_OK);
    assert_string_equal(m->config.alerts.syslog, "local3");
    rules_model_free(m);
    rules_diag_free(&d);
}

/* outputs.metrics is ADDRESS:PORT (checked at load, at its place);
 * run.user is a name (its existence is run's and check's business). */
static void test_metrics_and_run_user(void **state)
{
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m = NULL;
    assert_int_equal(rules_load_mem("kw.yaml", "outputs: { metrics: \"localhost:9753\" }\n",
                                    "r.yaml", "identities: []\n", &m, &d),
                     KW_E_CONFIG);
    assert_int_equal(rules_diag_errors(&d), 1);
    assert_int_equal(d.items[0].line, 1);
    assert_int_equal(d.items[0].col, 22);
    rules_diag_free(&d);
    rules_diag_init(&d);
    assert_int_equal(rules_load_mem("kw.yaml",
                                    "outputs: { metrics: \"[::1]:9753\" }\nrun: { user: kw }\n",
                                    "r.yaml", "identities: []\n", &m, &d),
                     KW_E_OK);
    assert_string_equal(m->config.outputs.metrics, "[::1]:9753");
    assert_string_equal(m->config.run.user, "kw");
    rules_model_free(m);
    rules_diag_free(&d);
    rules_diag_init(&d);
    assert_int_equal(rules_load_mem("kw.yaml", NULL, "r.yaml", "identities: []\n", &m, &d),
                     KW_E_OK);
    assert_null(m->config.outputs.metrics);
    assert_null(m->config.run.user);
    rules_model_free(m);
    rules_diag_free(&d);
}

/* services: host[:port] with its OpenAPI file (relative to the config's
 * folder) and backend; lookup prefers host:port, then the host alone, case-
 * insensitively; a bad backend, a bad port and a missing host are errors at
 * their place. */
static void test_services(void **state)
{
    static const char cfg[] = "services:\n"
                              "  - { host: API.acme.internal, openapi: specs/acme.yaml }\n"
                              "  - { host: \"api.acme.internal:8443\", backend: spring }\n"
                              "  - { host: \"[::1]:8080\", backend: iis }\n";
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m = NULL;
    assert_int_equal(rules_load_mem("kw.yaml", cfg, NULL, NULL, &m, &d), KW_E_OK);
    assert_int_equal(m->config.n_services, 3);
    const struct rules_service *s = rules_find_service(m, "api.ACME.internal", 80);
    assert_non_null(s);
    assert_int_equal(s->backend, RULES_BACKEND_GENERIC);
    assert_string_equal(s->openapi, "specs/acme.yaml");
    s = rules_find_service(m, "api.acme.internal:8443", 80);
    assert_non_null(s);
    assert_int_equal(s->backend, RULES_BACKEND_SPRING);
    s = rules_find_service(m, "api.acme.internal", 8443);
    assert_int_equal(s->backend, RULES_BACKEND_SPRING);
    s = rules_find_service(m, "[::1]:8080", 80);
    assert_non_null(s);
    assert_string_equal(rules_backend_name(s->backend), "iis");
    assert_null(rules_find_service(m, "[::1]", 80));
    assert_null(rules_find_service(m, "other.acme.internal", 80));
    rules_model_free(m);
    rules_diag_free(&d);

    static const char bad[] = "services:\n"
                              "  - { host: a.example, backend: tomcat }\n"
                              "  - { host: \"b.example:99999\" }\n"
                              "  - { backend: nginx }\n";
    rules_diag_init(&d);
    assert_int_equal(rules_load_mem("kw.yaml", bad, NULL, NULL, &m, &d), KW_E_CONFIG);
    assert_int_equal(rules_diag_errors(&d), 3);
    assert_int_equal(d.items[0].line, 2);
    assert_int_equal(d.items[0].col, 33);
    assert_int_equal(d.items[1].line, 3);
    assert_int_equal(d.items[2].line, 4);
    rules_diag_free(&d);
}

static void test_broken_all_errors(void **state)
{
    static const struct want w[] = {
        {E, 5, 15, "unknown time zone \"Mars/Olympus\""},
        {E, 4, 5, "unknown key \"credentails\""},
        {E, 6, 23, "unknown weekday \"fry\""},
        {E, 6, 40, "bad hours \"09:00-25:00\""},
        {E, 6, 61, "has no unit"},
        {E, 7, 23, "bad date \"2026-02-30\""},
        {E, 8, 17, "prefix /33"},
        {E, 9, 36, "expected a whole number"},
        {E, 9, 67, "unknown size unit"},
        {E, 13, 13, "scope must be a list"},
        {E, 15, 20, "already claimed by identity \"c01\""},
        {E, 16, 9, "duplicate identity id \"c01\""},
        {E, 17, 14, "must start with /"},
    };
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m = (struct rules_model *)1;
    assert_int_equal(rules_load(NULL, DATA "/broken/errors.yaml", &m, &d), KW_E_CONFIG);
    assert_null(m);
    expect_diag(&d, w, sizeof w / sizeof w[0], "broken/errors.yaml");
    assert_string_equal(d.items[1].hint, "did you mean \"credentials\"?");
    assert_non_null(strstr(d.items[2].hint, "mon-fri"));
    assert_string_equal(d.items[2].text, "    schedule: { days: mon-fry, hours: \"09:00-25:00\", "
                                         "grace: 30 }");
    assert_int_equal(rules_diag_errors(&d), 13);
    rules_diag_free(&d);
}

static void test_broken_duplicate_key(void **state)
{
    static const struct want w[] = {{E, 5, 5, "duplicate key"}};
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m;
    assert_int_equal(rules_load(NULL, DATA "/broken/dupkey.yaml", &m, &d), KW_E_CONFIG);
    expect_diag(&d, w, 1, "broken/dupkey.yaml");
    assert_non_null(strstr(d.items[0].hint, "once"));
    rules_diag_free(&d);
}

static void test_broken_config(void **state)
{
    static const struct want w[] = {
        {E, 1, 38, "capture.snaplen: expected a whole number"},
        {E, 2, 34, "unknown key \"retention\" in storage"},
        {E, 4, 26, "environment variable KW_TEST_DEFINITELY_UNSET_VAR is not set"},
        {E, 4, 75, "unknown severity \"urgent\""},
        {E, 5, 23, "duration \"1 hour\""},
    };
    unsetenv("KW_TEST_DEFINITELY_UNSET_VAR");
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m;
    assert_int_equal(rules_load(DATA "/broken/config-env.yaml", NULL, &m, &d), KW_E_CONFIG);
    expect_diag(&d, w, sizeof w / sizeof w[0], "broken/config-env.yaml");
    rules_diag_free(&d);
}

static void test_secret_never_printed(void **state)
{
    static const char cfg[] =
        "alerts:\n"
        "  webhooks: [ { url: \"https://h.example/x\", secret: \"env:KW_T_S\","
        " min_severity: bogus } ]\n";
    setenv("KW_T_S", "very-secret-value-42", 1);
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m;
    assert_int_equal(rules_load_mem("kw.yaml", cfg, NULL, NULL, &m, &d), KW_E_CONFIG);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rules_diag_print(&d, f);
    fclose(f);
    assert_non_null(strstr(buf, "unknown severity"));
    assert_null(strstr(buf, "very-secret-value-42"));
    free(buf);
    rules_diag_free(&d);
}

static char *diag_text(struct rules_diag *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rules_diag_print(d, f);
    fclose(f);
    return buf;
}

/* Issue 15: the warning about a secret written in the file, and any other
 * diagnostic on such a line (or a YAML syntax error there), shows the line
 * with the value masked, never the secret. */
static void test_literal_secret_not_echoed(void **state)
{
    static const char cfg[] =
        "alerts:\n"
        "  slack: { webhook_url: \"https://hooks.slack.com/services/T0/B0/Sl4ckS3cret\" }\n"
        "  webhooks: [ { url: \"https://h.example/x\", secret: \"Hook-S3cret-99\","
        " min_severity: bogus } ]\n";
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m;
    assert_int_equal(rules_load_mem("kw.yaml", cfg, NULL, NULL, &m, &d), KW_E_CONFIG);
    char *buf = diag_text(&d);
    assert_non_null(strstr(buf, "secrets should not be at rest"));
    assert_non_null(strstr(buf, "unknown severity"));
    assert_non_null(strstr(buf, "secret: \"**************\", min_severity: bogus"));
    assert_null(strstr(buf, "Sl4ckS3cret"));
    assert_null(strstr(buf, "Hook-S3cret-99"));
    free(buf);
    rules_diag_free(&d);

    /* a YAML error on the line of a secret: no document, the line is
     * masked all the same */
    static const char broken[] = "alerts:\n  webhooks: [ { secret: \"Yaml-S3cret\\q\" } ]\n";
    rules_diag_init(&d);
    assert_int_equal(rules_load_mem("kw.yaml", broken, NULL, NULL, &m, &d), KW_E_CONFIG);
    buf = diag_text(&d);
    assert_true(rules_diag_errors(&d) > 0);
    assert_null(strstr(buf, "Yaml-S3cret"));
    free(buf);
    rules_diag_free(&d);

    /* env:NAME is a reference, not a secret: shown, so the operator sees
     * which variable is missing */
    static const char env[] = "alerts:\n  webhooks: [ { url: \"https://h.example/x\", "
                              "secret: \"env:KW_T_UNSET_VAR_15\" } ]\n";
    unsetenv("KW_T_UNSET_VAR_15");
    rules_diag_init(&d);
    assert_int_equal(rules_load_mem("kw.yaml", env, NULL, NULL, &m, &d), KW_E_CONFIG);
    buf = diag_text(&d);
    assert_non_null(strstr(buf, "secret: \"env:KW_T_UNSET_VAR_15\""));
    free(buf);
    rules_diag_free(&d);
}

static void test_warnings(void **state)
{
    static const struct want w[] = {
        {W, 4, 16, "host bits set"},
        {W, 6, 10, "shadowed by deny \"* /v1/admin/**\""},
        {W, 7, 10, "lower-case method"},
        {W, 8, 10, "can never match"},
    };
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m = NULL;
    assert_int_equal(rules_load(NULL, DATA "/broken/warnings.yaml", &m, &d), KW_E_OK);
    assert_non_null(m); /* warnings alone still give a model */
    expect_diag(&d, w, sizeof w / sizeof w[0], "broken/warnings.yaml");
    /* the host bits are cleared: 10.1.2.3/24 means 10.1.2.0/24 */
    struct kw_addr a;
    assert_true(kw_addr_parse("10.1.2.200", &a));
    assert_true(rules_sources_allow(rules_find_identity(m, "w01"), &a));
    rules_diag_free(&d);
    rules_model_free(m);
}

/* Table of small rule texts: each must give exactly one error at line:col. */
static void test_value_errors_table(void **state)
{
    static const struct {
        const char *text;
        int line, col;
        const char *needle;
    } t[] = {
        {"identities:\n  - id: a\n    schedule: { days: mon, hours: \"9-17\" }\n", 3, 36,
         "bad hours"},
        {"identities:\n  - id: a\n    schedule: { hours: \"09:00-09:00\" }\n", 3, 25,
         "empty window"},
        {"identities:\n  - id: a\n    access: { until: 2026-13-01 }\n", 3, 22, "bad date"},
        {"identities:\n  - id: a\n    access: { from: \"2026-01-01T10:00:00\" }\n", 3, 22,
         "needs a time zone offset"},
        {"identities:\n  - id: a\n    access: { from: 2026-03-01, until: 2026-02-01 }\n", 3, 40,
         "empty access window"},
        {"identities:\n  - id: a\n    sources: [ \"2001:db8::/129\" ]\n", 3, 17, "prefix /129"},
        {"identities:\n  - id: a\n    sources: [ 300.1.1.1 ]\n", 3, 16, "bad address"},
        {"identities:\n  - id: a\n    credentials: [ { sha256: abc } ]\n", 3, 30, "bad sha256"},
        {"identities:\n  - id: a\n    credentials: [ { jwt: { sub: x } } ]\n", 3, 29,
         "needs iss and sub"},
        {"identities:\n  - id: a\n    kind: vendor\n", 3, 11, "unknown identity kind"},
        /* refused before libfyaml, which hangs on "%\xe9" (fuzz_rules) */
        {"%\xe9", 1, 2, "not valid UTF-8"},
        {"identities:\n  - id: a\n    name: \"Acme \xe9\"\n", 3, 17, "not valid UTF-8"},
        {"identities:\n  - name: no id\n", 2, 5, "without an id"},
        {"identities:\n  - id: a\n    scope: [ \"GET /v1/or*ders\" ]\n", 3, 15,
         "whole path segment"},
        {"identities:\n  - id: a\n    limits: { requests_per_hour: [1] }\n", 3, 35, "single value"},
        {"identities:\n  - id: a\n    schedule: { grace: 13h }\n", 3, 24, "too long"},
        {"detections:\n  failed_auth: { count: 0 }\n", 2, 25, "too small"},
        {"detections:\n  enumeration: { distinct_id: 3 }\n", 2, 18, "unknown key \"distinct_id\""},
        {"detections:\n  unknown_credential: { severity: critical }\n", 2, 35, "unknown severity"},
        {"identitys: []\n", 1, 1, "unknown key \"identitys\""},
        {"detections:\n  baseline: { learn_templates: maybe }\n", 2, 32, "not a boolean"},
        {"identities:\n  - id: a\n\tname: x\n", 3, 2, "tab"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct rules_diag d;
        rules_diag_init(&d);
        struct rules_model *m;
        enum kw_err e = rules_load_mem(NULL, NULL, "r.yaml", t[i].text, &m, &d);
        if (e != KW_E_CONFIG || d.n != 1 || d.items[0].line != t[i].line ||
            d.items[0].col != t[i].col || !strstr(d.items[0].msg, t[i].needle)) {
            fprintf(stderr, "case %zu:\n%s", i, t[i].text);
            rules_diag_print(&d, stderr);
        }
        assert_int_equal(e, KW_E_CONFIG);
        assert_int_equal(d.n, 1);
        assert_int_equal(d.items[0].line, t[i].line);
        assert_int_equal(d.items[0].col, t[i].col);
        assert_non_null(strstr(d.items[0].msg, t[i].needle));
        rules_diag_free(&d);
    }
}

static void test_missing_paths(void **state)
{
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m;
    assert_int_equal(rules_load(DATA "/does-not-exist.yaml", NULL, &m, &d), KW_E_CONFIG);
    assert_int_equal(d.n, 1);
    assert_non_null(strstr(d.items[0].msg, "cannot open"));
    rules_diag_free(&d);
    rules_diag_init(&d);
    assert_int_equal(rules_load(NULL, DATA "/no-such-dir", &m, &d), KW_E_CONFIG);
    assert_non_null(strstr(d.items[0].msg, "rules path not found"));
    rules_diag_free(&d);
}

/* A rules file that crashes Debian's libfyaml (0.7.12: a tab used as
 * indentation after '?', upstream issue 57) is an error at its line, and
 * the caller lives to report it: the parse ran in a child first. Without
 * that isolation this test itself dies of SIGSEGV (or of ASan's report). */
static void test_parser_crash_contained(void **state)
{
    (void)state;
    static const char text[] = "# the six bytes below crash libfyaml 0.7.12\n? -:\t-\n";
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m = NULL;
    assert_int_equal(rules_load_mem(NULL, NULL, "crash.yaml", text, &m, &d), KW_E_CONFIG);
    assert_null(m);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.items[0].line, 2);
    assert_non_null(strstr(d.items[0].msg, "YAML parser (libfyaml)"));
    assert_non_null(strstr(d.items[0].msg, "did not load"));
    rules_diag_free(&d);

    /* The same file with its tab made spaces is an ordinary YAML error or
     * document: no fault is reported. */
    static const char fixed[] = "# the six bytes below crash libfyaml 0.7.12\n? -:  -\n";
    rules_diag_init(&d);
    enum kw_err e = rules_load_mem(NULL, NULL, "fixed.yaml", fixed, &m, &d);
    (void)e; /* a YAML error or a document: either is fine here */
    for (size_t i = 0; i < d.n; i++)
        assert_null(strstr(d.items[i].msg, "YAML parser (libfyaml)"));
    rules_diag_free(&d);
    rules_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_config),       cmocka_unit_test(test_good_identities),
        cmocka_unit_test(test_attribution),       cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_broken_all_errors), cmocka_unit_test(test_broken_duplicate_key),
        cmocka_unit_test(test_broken_config),     cmocka_unit_test(test_secret_never_printed),
        cmocka_unit_test(test_literal_secret_not_echoed),
        cmocka_unit_test(test_warnings),          cmocka_unit_test(test_value_errors_table),
        cmocka_unit_test(test_missing_paths),     cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_syslog_facility), cmocka_unit_test(test_fifo_refused),
        cmocka_unit_test(test_metrics_and_run_user),
        cmocka_unit_test(test_file_mode_warnings),   cmocka_unit_test(test_services),
        cmocka_unit_test(test_parser_crash_contained),
        cmocka_unit_test(test_learn_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
