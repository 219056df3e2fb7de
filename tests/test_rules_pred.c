/* test_rules_pred: the pure predicates of rules/: schedules in the
 * identity's own time zone across DST changes in both directions (Berlin,
 * New York) and across midnight, with grace; the TZif reader against the
 * POSIX footer rules; access windows with dates and timestamps; the scope
 * pattern language; and reload keeping the old model on a broken file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rules.h"
#include "rules_int.h"

static kw_ts at(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return KW_TS_SEC(timegm(&tm));
}

static struct rules_model *load(const char *text)
{
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m = NULL;
    enum kw_err e = rules_load_mem(NULL, NULL, "t.yaml", text, &m, &d);
    if (e != KW_E_OK) rules_diag_print(&d, stderr);
    assert_int_equal(e, KW_E_OK);
    rules_diag_free(&d);
    return m;
}

struct sched_case {
    kw_ts ts;
    bool allowed;
};

static void run_cases(const char *yaml, const struct sched_case *c, size_t n)
{
    struct rules_model *m = load(yaml);
    const struct rules_identity *id = &m->identities[0];
    for (size_t i = 0; i < n; i++) {
        bool got = rules_schedule_allows(&id->schedule, id->tz, c[i].ts);
        if (got != c[i].allowed) {
            char b[40];
            fprintf(stderr, "case %zu: %s want %d\n", i, kw_ts_format(c[i].ts, b, sizeof b),
                    c[i].allowed);
        }
        assert_int_equal(got, c[i].allowed);
    }
    rules_model_free(m);
}

/* Berlin 2026-03-29 01:00Z: 02:00 CET -> 03:00 CEST. The Saturday window
 * 22:00-06:00 is 21:00Z..04:00Z: 7 real hours. */
static void test_dst_berlin_spring(void **state)
{
    static const char y[] = "identities:\n  - id: a\n    timezone: Europe/Berlin\n"
                            "    schedule: { days: sat, hours: \"22:00-06:00\", grace: 0 }\n";
    const struct sched_case c[] = {
        {at(2026, 3, 28, 20, 59, 59), false}, {at(2026, 3, 28, 21, 0, 0), true},
        {at(2026, 3, 29, 1, 30, 0), true},    {at(2026, 3, 29, 3, 59, 59), true},
        {at(2026, 3, 29, 4, 0, 0), false},    {at(2026, 3, 29, 4, 30, 0), false},
        {at(2026, 3, 29, 21, 30, 0), false}, /* Sunday night: not a window day */
    };
    run_cases(y, c, sizeof c / sizeof c[0]);
    static const char g[] = "identities:\n  - id: a\n    timezone: Europe/Berlin\n"
                            "    schedule: { days: sat, hours: \"22:00-06:00\", grace: 30m }\n";
    const struct sched_case cg[] = {
        {at(2026, 3, 28, 20, 29, 59), false},
        {at(2026, 3, 28, 20, 30, 0), true},
        {at(2026, 3, 29, 4, 29, 59), true},
        {at(2026, 3, 29, 4, 30, 0), false},
    };
    run_cases(g, cg, sizeof cg / sizeof cg[0]);
}

/* Berlin 2026-10-25 01:00Z: 03:00 CEST -> 02:00 CET. The same window is
 * 20:00Z..05:00Z: 9 real hours. */
static void test_dst_berlin_autumn(void **state)
{
    static const char y[] = "identities:\n  - id: a\n    timezone: Europe/Berlin\n"
                            "    schedule: { days: sat, hours: \"22:00-06:00\", grace: 0 }\n";
    const struct sched_case c[] = {
        {at(2026, 10, 24, 19, 59, 59), false}, {at(2026, 10, 24, 20, 0, 0), true},
        {at(2026, 10, 25, 0, 30, 0), true},    {at(2026, 10, 25, 1, 30, 0), true},
        {at(2026, 10, 25, 4, 30, 0), true},    {at(2026, 10, 25, 4, 59, 59), true},
        {at(2026, 10, 25, 5, 0, 0), false},
    };
    run_cases(y, c, sizeof c / sizeof c[0]);
}

/* New York 2026-03-08 07:00Z (02:00 EST -> 03:00 EDT) and 2026-11-01
 * 06:00Z (02:00 EDT -> 01:00 EST). */
static void test_dst_new_york(void **state)
{
    static const char y[] = "identities:\n  - id: a\n    timezone: America/New_York\n"
                            "    schedule: { days: sun, hours: \"00:00-12:00\", grace: 0 }\n";
    const struct sched_case c[] = {
        /* spring: 00:00 EST = 05:00Z .. 12:00 EDT = 16:00Z */
        {at(2026, 3, 8, 4, 59, 59), false},
        {at(2026, 3, 8, 5, 0, 0), true},
        {at(2026, 3, 8, 15, 59, 59), true},
        {at(2026, 3, 8, 16, 0, 0), false},
        /* autumn: 00:00 EDT = 04:00Z .. 12:00 EST = 17:00Z */
        {at(2026, 11, 1, 3, 59, 59), false},
        {at(2026, 11, 1, 4, 0, 0), true},
        {at(2026, 11, 1, 16, 59, 59), true},
        {at(2026, 11, 1, 17, 0, 0), false},
    };
    run_cases(y, c, sizeof c / sizeof c[0]);
    static const char w[] = "identities:\n  - id: a\n    timezone: America/New_York\n"
                            "    schedule: { days: mon-fri, hours: \"09:00-17:00\", grace: 0 }\n";
    const struct sched_case cw[] = {
        {at(2026, 3, 6, 13, 30, 0), false}, /* Fri 08:30 EST */
        {at(2026, 3, 6, 14, 0, 0), true},   /* Fri 09:00 EST */
        {at(2026, 3, 9, 12, 59, 0), false}, /* Mon 08:59 EDT */
        {at(2026, 3, 9, 13, 30, 0), true},  /* Mon 09:30 EDT */
        {at(2026, 3, 9, 21, 0, 0), false},  /* Mon 17:00 EDT */
        {at(2026, 3, 7, 15, 0, 0), false},  /* Saturday */
    };
    run_cases(w, cw, sizeof cw / sizeof cw[0]);
}

/* A window that crosses midnight belongs to the day it starts on. */
static void test_midnight(void **state)
{
    static const char y[] = "identities:\n  - id: a\n"
                            "    schedule: { days: sun-thu, hours: \"22:00-06:00\", grace: 10m }\n";
    /* 2026-03-01 is a Sunday */
    const struct sched_case c[] = {
        {at(2026, 3, 1, 21, 49, 59), false}, {at(2026, 3, 1, 21, 50, 0), true},
        {at(2026, 3, 1, 23, 0, 0), true},    {at(2026, 3, 2, 5, 59, 0), true}, /* Mon 05:59 */
        {at(2026, 3, 2, 6, 9, 59), true},    {at(2026, 3, 2, 6, 10, 0), false},
        {at(2026, 3, 6, 2, 0, 0), true},   /* Fri 02:00: Thursday's window */
        {at(2026, 3, 6, 22, 0, 0), false}, /* Fri 22:00: Friday is not a day */
        {at(2026, 3, 7, 2, 0, 0), false},  /* Sat 02:00: Friday's window */
        {at(2026, 3, 1, 2, 0, 0), false},  /* Sun 02:00: Saturday's window */
        {at(2026, 3, 4, 12, 0, 0), false}, /* Wed noon */
    };
    run_cases(y, c, sizeof c / sizeof c[0]);
}

/* The TZif transitions and our POSIX footer evaluator must agree: compare
 * a zone read from the file with its rule string alone, every 5 hours
 * over two years, north and south of the equator. */
/* rules_schedule_allows_span: the answer it gives for ts holds for every
 * instant in [ts, until), checked against the predicate itself at instants
 * drawn from that span, for schedules that cross midnight, with and
 * without grace, in zones with DST changes of an hour (Berlin, New York)
 * and of half an hour (Lord Howe) and without (Kolkata), over the days
 * around a change; and until is after ts, at most an hour on. */
static void test_schedule_span(void **state)
{
    (void)state;
    static const char *const zones[] = {"Europe/Berlin", "America/New_York",
                                        "Australia/Lord_Howe", "Asia/Kolkata"};
    static const char *const scheds[] = {
        "{ days: sat, hours: \"22:00-06:00\", grace: 0 }",
        "{ days: mon-fri, hours: \"09:00-17:30\", grace: 30m }",
        "{ days: daily, hours: \"01:30-02:30\", grace: 0 }",
        "{ days: sun-thu, hours: \"23:00-23:30\", grace: 12h }",
    };
    /* around each zone's changes: late March / early April, October */
    const kw_ts starts[] = {at(2026, 3, 25, 0, 0, 0), at(2026, 10, 21, 0, 0, 0),
                            at(2026, 4, 1, 0, 0, 0), at(2026, 11, 1, 0, 0, 0)};
    unsigned seed = 11;
    for (size_t z = 0; z < sizeof zones / sizeof *zones; z++)
        for (size_t k = 0; k < sizeof scheds / sizeof *scheds; k++) {
            char y[300];
            snprintf(y, sizeof y, "identities:\n  - id: a\n    timezone: %s\n    schedule: %s\n",
                     zones[z], scheds[k]);
            struct rules_model *m = load(y);
            const struct rules_identity *id = &m->identities[0];
            for (size_t st = 0; st < sizeof starts / sizeof *starts; st++)
                for (kw_ts ts = starts[st]; ts < starts[st] + KW_TS_SEC(10 * 86400);
                     ts += KW_TS_SEC(1 + rand_r(&seed) % 1800) + rand_r(&seed) % 1000000) {
                    kw_ts until;
                    bool ok = rules_schedule_allows_span(&id->schedule, id->tz, ts, &until);
                    assert_int_equal(ok, rules_schedule_allows(&id->schedule, id->tz, ts));
                    assert_true(until > ts && until <= ts + KW_TS_SEC(3601));
                    for (int j = 0; j < 6; j++) {
                        kw_ts t2 = j == 0 ? until - 1
                                          : ts + (kw_ts)((uint64_t)rand_r(&seed) *
                                                         (uint64_t)(until - ts) / RAND_MAX);
                        if (t2 >= until) t2 = until - 1;
                        assert_int_equal(rules_schedule_allows(&id->schedule, id->tz, t2), ok);
                    }
                }
            rules_model_free(m);
        }
}

static void test_tz_footer_matches_file(void **state)
{
    static const struct {
        const char *zone, *posix;
    } z[] = {{"Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3"},
             {"America/New_York", "EST5EDT,M3.2.0,M11.1.0"},
             {"Australia/Sydney", "AEST-10AEDT,M10.1.0,M4.1.0/3"},
             {"Asia/Kolkata", "IST-5:30"}};
    for (size_t i = 0; i < sizeof z / sizeof z[0]; i++) {
        char err[RV_ERRLEN];
        struct kw_tz *file, *rule;
        assert_int_equal(kw_tz_load(z[i].zone, &file, err, sizeof err), KW_E_OK);
        assert_int_equal(kw_tz_from_posix("x", z[i].posix, &rule), KW_E_OK);
        for (int64_t t = at(2025, 1, 1, 0, 0, 0) / 1000000; t < at(2027, 1, 1, 0, 0, 0) / 1000000;
             t += 5 * 3600 + 7)
            assert_int_equal(kw_tz_offset(file, t), kw_tz_offset(rule, t));
        /* far past the last transition in the file: the footer rules */
        assert_int_equal(kw_tz_offset(file, at(2100, 7, 1, 0, 0, 0) / 1000000),
                         kw_tz_offset(rule, at(2100, 7, 1, 0, 0, 0) / 1000000));
        kw_tz_free(file);
        kw_tz_free(rule);
    }
    char err[RV_ERRLEN];
    struct kw_tz *tz;
    assert_int_equal(kw_tz_load("../etc/passwd", &tz, err, sizeof err), KW_E_NOTFOUND);
    assert_int_equal(kw_tz_load("Europe/Nowhere", &tz, err, sizeof err), KW_E_NOTFOUND);
    assert_int_equal(kw_tz_load("Europe/Berlin", &tz, err, sizeof err), KW_E_OK);
    assert_int_equal(kw_tz_offset(tz, at(2026, 7, 1, 0, 0, 0) / 1000000), 7200);
    /* local -> UTC: a gap maps past it, a repeated hour to its first instant */
    int64_t gap = (at(2026, 3, 29, 2, 30, 0)) / 1000000; /* 02:30 local does not exist */
    assert_int_equal(kw_tz_local_to_utc(tz, gap), at(2026, 3, 29, 1, 30, 0) / 1000000);
    int64_t rep = (at(2026, 10, 25, 2, 30, 0)) / 1000000; /* 02:30 happens twice */
    assert_int_equal(kw_tz_local_to_utc(tz, rep), at(2026, 10, 25, 0, 30, 0) / 1000000);
    char buf[32];
    rules_local_describe(tz, at(2026, 3, 28, 1, 13, 5), buf, sizeof buf);
    assert_string_equal(buf, "02:13 Sat");
    kw_tz_free(tz);
}

static void test_access(void **state)
{
    static const char y[] =
        "identities:\n  - id: a\n    timezone: Asia/Kolkata\n"
        "    access: { from: 2026-01-01, until: 2026-06-30 }\n"
        "  - id: b\n    access: { from: \"2026-01-01T10:00:00.5+02:00\", until: "
        "\"2026-01-02T00:00:00Z\" }\n";
    struct rules_model *m = load(y);
    const struct rules_access *a = &m->identities[0].access;
    assert_int_equal(rules_access_check(a, at(2025, 12, 31, 18, 29, 59)), -1);
    assert_int_equal(rules_access_check(a, at(2025, 12, 31, 18, 30, 0)), 0);
    assert_int_equal(rules_access_check(a, at(2026, 6, 30, 18, 29, 59)), 0); /* 23:59:59 IST */
    assert_int_equal(rules_access_check(a, at(2026, 6, 30, 18, 30, 0)), 1);
    const struct rules_access *b = &m->identities[1].access;
    assert_int_equal(rules_access_check(b, at(2026, 1, 1, 7, 59, 59)), -1);
    assert_int_equal(rules_access_check(b, at(2026, 1, 1, 8, 0, 0)), 0);
    assert_int_equal(rules_access_check(b, at(2026, 1, 1, 23, 59, 59)), 0);
    assert_int_equal(rules_access_check(b, at(2026, 1, 2, 0, 0, 0)), 1);
    rules_model_free(m);
}

static void test_scope_table(void **state)
{
    static const char y[] = "identities:\n  - id: a\n    scope:\n"
                            "      - \"GET api.acme.internal /v1/orders/**\"\n"
                            "      - \"POST /v1/orders\"\n"
                            "      - \"GET,HEAD /v1/customers/*/invoices\"\n"
                            "      - \"* *.files.example /blobs/{id}\"\n"
                            "    deny: [ \"* /v1/admin/**\", \"DELETE /v1/orders/*/items/**\" ]\n";
    static const struct {
        const char *method, *host, *path;
        enum rules_scope_verdict v;
    } t[] = {
        {"GET", "api.acme.internal", "/v1/orders", RULES_SCOPE_OK}, /* ** = zero segments */
        {"GET", "API.Acme.Internal:8443", "/v1/orders/7/items/3", RULES_SCOPE_OK},
        {"GET", "api.acme.internal.", "/v1/orders/7", RULES_SCOPE_OK},
        {"GET", "other.example", "/v1/orders/7", RULES_SCOPE_OUT}, /* host-aware */
        {"GET", "", "/v1/orders/7", RULES_SCOPE_OUT},
        {"POST", "api.acme.internal", "/v1/orders", RULES_SCOPE_OK},
        {"POST", "x", "/v1/orders/", RULES_SCOPE_OK}, /* trailing slash */
        {"POST", "api.acme.internal", "/v1/orders/7", RULES_SCOPE_METHOD},
        {"PUT", "x", "/v1/orders", RULES_SCOPE_METHOD},
        {"get", "x", "/v1/orders", RULES_SCOPE_METHOD}, /* methods are case-sensitive */
        {"HEAD", "x", "/v1/customers/42/invoices", RULES_SCOPE_OK},
        {"GET", "x", "/v1/customers/invoices", RULES_SCOPE_OUT}, /* * is exactly one */
        {"GET", "x", "/v1/customers/4/2/invoices", RULES_SCOPE_OUT},
        {"GET", "x", "/v1/customers//invoices", RULES_SCOPE_OUT}, /* * is non-empty */
        {"GET", "x", "/v1/admin/users", RULES_SCOPE_DENIED},
        {"GET", "api.acme.internal", "/v1/admin", RULES_SCOPE_DENIED},
        {"DELETE", "api.acme.internal", "/v1/orders/7/items", RULES_SCOPE_DENIED},
        {"GET", "api.acme.internal", "/v1/orders/7/items", RULES_SCOPE_OK},
        {"GET", "x", "/v1/Admin/users", RULES_SCOPE_OUT}, /* paths are case-sensitive */
        {"PATCH", "cdn.files.example", "/blobs/abc", RULES_SCOPE_OK},
        {"PATCH", "files.example", "/blobs/abc", RULES_SCOPE_OUT},
        {"GET", "x", "/", RULES_SCOPE_OUT},
    };
    struct rules_model *m = load(y);
    const struct rules_identity *id = &m->identities[0];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const struct rules_pattern *p;
        enum rules_scope_verdict v = rules_scope_check(id, t[i].method, t[i].host, t[i].path, &p);
        if (v != t[i].v)
            fprintf(stderr, "case %zu: %s %s %s -> %d\n", i, t[i].method, t[i].host, t[i].path, v);
        assert_int_equal(v, t[i].v);
        if (v == RULES_SCOPE_DENIED || v == RULES_SCOPE_METHOD) assert_non_null(p);
    }
    /* no scope at all: everything but deny is allowed */
    struct rules_model *m2 = load("identities:\n  - id: b\n    deny: [ \"GET /x/**\" ]\n");
    const struct rules_pattern *p;
    assert_int_equal(rules_scope_check(&m2->identities[0], "GET", "h", "/y", &p), RULES_SCOPE_OK);
    assert_int_equal(rules_scope_check(&m2->identities[0], "GET", "h", "/x", &p),
                     RULES_SCOPE_DENIED);
    rules_model_free(m2);
    rules_model_free(m);
}

static void test_pattern_covers(void **state)
{
    static const struct {
        const char *d, *p;
        bool covers;
    } t[] = {
        {"* /v1/admin/**", "GET /v1/admin/users", true}, {"* /v1/admin/**", "GET /v1/admin", true},
        {"* /v1/admin/**", "GET /v1/**", false},         {"GET /v1/*", "GET /v1/orders", true},
        {"GET /v1/*", "GET,POST /v1/orders", false},     {"GET /v1/*", "GET /v1/**", false},
        {"* /**", "* h.example /anything/*/x", true},    {"* h.example /**", "* /a", false},
        {"GET /a/**/z", "GET /a/b/**/c/z", true},        {"GET /a/*/z", "GET /a/**/z", false},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct rules_pattern d, p;
        char err[RV_ERRLEN];
        const char *hint;
        assert_true(rules_pattern_parse(t[i].d, &d, err, &hint));
        assert_true(rules_pattern_parse(t[i].p, &p, err, &hint));
        if (rules_pattern_covers(&d, &p) != t[i].covers)
            fprintf(stderr, "case %zu: %s covers %s?\n", i, t[i].d, t[i].p);
        assert_int_equal(rules_pattern_covers(&d, &p), t[i].covers);
        rules_pattern_free(&d);
        rules_pattern_free(&p);
    }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_reload(void **state)
{
    char dir[] = "/tmp/kw-rules-reload-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char file[128];
    snprintf(file, sizeof file, "%s/a.yaml", dir);
    write_file(file, "identities:\n  - id: first\n");
    struct rules_diag d;
    rules_diag_init(&d);
    struct rules_model *m;
    assert_int_equal(rules_load(NULL, dir, &m, &d), KW_E_OK);
    struct rules_handle *h = rules_handle_new(m, NULL, dir);
    struct rules_model *snap = rules_handle_get(h);
    assert_non_null(rules_find_identity(snap, "first"));

    write_file(file, "identities:\n  - id: second\n    schedule: { days: funday }\n");
    rules_diag_free(&d);
    rules_diag_init(&d);
    assert_int_equal(rules_handle_reload(h, &d), KW_E_CONFIG);
    assert_int_equal(rules_diag_errors(&d), 1);
    assert_int_equal(rules_handle_generation(h), 0);
    struct rules_model *s2 = rules_handle_get(h);
    assert_ptr_equal(s2, snap); /* the running model stays in force */
    rules_model_unref(s2);

    write_file(file, "identities:\n  - id: second\n");
    rules_diag_free(&d);
    rules_diag_init(&d);
    assert_int_equal(rules_handle_reload(h, &d), KW_E_OK);
    assert_int_equal(rules_handle_generation(h), 1);
    struct rules_model *s3 = rules_handle_get(h);
    assert_non_null(rules_find_identity(s3, "second"));
    assert_null(rules_find_identity(s3, "first"));
    /* the old snapshot is still valid while held */
    assert_non_null(rules_find_identity(snap, "first"));
    rules_model_unref(snap);
    rules_model_unref(s3);
    rules_handle_destroy(h);
    rules_diag_free(&d);
    unlink(file);
    rmdir(dir);
}

static void test_describe(void **state)
{
    struct rules_model *m = load("identities:\n  - id: a\n    schedule: { days: mon-fri, hours: "
                                 "\"09:00-19:00\", grace: 30m }\n  - id: b\n    schedule: { days: "
                                 "\"sat,sun\", hours: \"22:00-06:00\" }\n");
    char buf[96];
    rules_schedule_describe(&m->identities[0].schedule, buf, sizeof buf);
    assert_string_equal(buf, "Mon\xe2\x80\x93"
                             "Fri 09:00\xe2\x80\x93"
                             "19:00 (grace 30m)");
    rules_schedule_describe(&m->identities[1].schedule, buf, sizeof buf);
    assert_string_equal(buf, "Sat, Sun 22:00\xe2\x80\x93"
                             "06:00 (grace 30m, default)");
    rules_model_free(m);
}

/* A schedule without grace gets the default (detections.schedule.grace,
 * 30 min); grace: 0 is strict. Issue 10: a contractor 8 minutes early and
 * one working until 17:20 are within the default. */
static void test_default_grace(void **state)
{
    (void)state;
    static const char y[] = "identities:\n  - id: a\n    schedule: { days: mon-fri, hours: "
                            "\"08:00-17:00\" }\n  - id: b\n    schedule: { days: mon-fri, hours: "
                            "\"08:00-17:00\", grace: 0 }\n";
    struct rules_model *m = load(y);
    kw_ts early = at(2026, 3, 3, 7, 52, 0), late = at(2026, 3, 3, 17, 20, 0);
    kw_ts later = at(2026, 3, 3, 17, 31, 0);
    const struct rules_identity *a = &m->identities[0], *b = &m->identities[1];
    assert_int_equal(a->schedule.grace_s, 1800);
    assert_false(a->schedule.grace_set);
    assert_true(rules_schedule_allows(&a->schedule, a->tz, early));
    assert_true(rules_schedule_allows(&a->schedule, a->tz, late));
    assert_false(rules_schedule_allows(&a->schedule, a->tz, later));
    assert_false(rules_schedule_allows(&b->schedule, b->tz, early));
    assert_false(rules_schedule_allows(&b->schedule, b->tz, late));
    assert_int_equal(rules_schedule_distance(&b->schedule, b->tz, late), 20 * 60);
    assert_int_equal(rules_schedule_distance(&b->schedule, b->tz, early), 8 * 60);
    char buf[96];
    rules_schedule_describe(&b->schedule, buf, sizeof buf);
    assert_non_null(strstr(buf, "(no grace)"));
    rules_model_free(m);
    /* detections.schedule.grace sets the default, in any rules file */
    m = load("identities:\n  - id: a\n    schedule: { days: mon-fri, hours: \"08:00-17:00\" }\n"
             "detections:\n  schedule: { grace: 10m }\n");
    a = &m->identities[0];
    assert_int_equal(a->schedule.grace_s, 600);
    assert_false(rules_schedule_allows(&a->schedule, a->tz, late));
    rules_model_free(m);
    /* a bad one is refused with its place */
    struct rules_diag d;
    rules_diag_init(&d);
    m = NULL;
    assert_int_equal(rules_load_mem(NULL, NULL, "t.yaml", "detections:\n  schedule: { grace: 13h }\n",
                                    &m, &d),
                     KW_E_CONFIG);
    assert_null(m);
    assert_true(d.n > 0);
    rules_diag_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dst_berlin_spring),
        cmocka_unit_test(test_default_grace),
        cmocka_unit_test(test_dst_berlin_autumn),
        cmocka_unit_test(test_dst_new_york),
        cmocka_unit_test(test_midnight),
        cmocka_unit_test(test_schedule_span),
        cmocka_unit_test(test_tz_footer_matches_file),
        cmocka_unit_test(test_access),
        cmocka_unit_test(test_scope_table),
        cmocka_unit_test(test_pattern_covers),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
