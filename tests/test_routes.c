/* Tests of learned route templates (analyzer/shapes/routes.c): each rule
 * of docs/shapes.md on a short stream of paths, the renames a merge
 * reports, lookups that learn nothing, limits, and determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kw_exact.h"
#include "routes.h"
#include "echo.h"

#define T0 ((kw_ts)1772438400 * 1000000) /* 2026-03-02T08:00Z */
#define HOUR ((kw_ts)3600 * 1000000)
#define DAY (24 * HOUR)

struct ctx {
    struct routes *r;
    char renames[32][2][256];
    int nren;
    char out[512];
    const char *method; /* of the next tpl() calls: GET unless set */
};

static void on_merge(void *user, const char *svc, const char *o, const char *n)
{
    struct ctx *c = user;
    assert_string_equal(svc, "api.example:443");
    if (c->nren < 32) {
        snprintf(c->renames[c->nren][0], 256, "%s", o);
        snprintf(c->renames[c->nren][1], 256, "%s", n);
    }
    c->nren++;
}

static void setup(struct ctx *c, uint32_t max_nodes)
{
    memset(c, 0, sizeof *c);
    c->method = "GET";
    struct routes_config rc = {.max_nodes = max_nodes, .on_merge = on_merge, .user = c};
    assert_int_equal(routes_new(&rc, &c->r), KW_E_OK);
}

static const char *tpl(struct ctx *c, const char *path, kw_ts ts)
{
    size_t pl = strlen(path);
    uint8_t *x = kw_exact_dup(path, pl); /* the wire has no NUL after a path */
    size_t n = routes_template(c->r, "api.example:443", c->method, (const char *)x, pl, true, ts,
                               c->out, sizeof c->out);
    free(x);
    assert_int_equal(n, strlen(c->out));
    return c->out;
}

/* tpl with the segments the answer named back (echo.h) */
static const char *tpl_echo(struct ctx *c, const char *path, uint32_t echo, kw_ts ts)
{
    size_t pl = strlen(path);
    uint8_t *x = kw_exact_dup(path, pl);
    size_t n = routes_template_echo(c->r, "api.example:443", c->method, (const char *)x, pl, true,
                                    echo, ts, c->out, sizeof c->out);
    free(x);
    assert_int_equal(n, strlen(c->out));
    return c->out;
}

static bool renamed(const struct ctx *c, const char *o, const char *n)
{
    for (int i = 0; i < c->nren && i < 32; i++)
        if (!strcmp(c->renames[i][0], o) && !strcmp(c->renames[i][1], n)) return true;
    return false;
}

/* Id shapes are parameters at first sight; route words and the first
 * segment are not; suffixes and OData keys keep their literal part. */
static void test_first_sight(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, 0);
    assert_string_equal(tpl(&c, "/v1/orders/754865", T0), "/v1/orders/{id}");
    assert_string_equal(tpl(&c, "/v1/orders/550e8400-e29b-41d4-a716-446655440000", T0),
                        "/v1/orders/{id}");
    assert_string_equal(tpl(&c, "/v1/invoices/INV-2026-754865/lines", T0),
                        "/v1/invoices/{id}/lines");
    assert_string_equal(tpl(&c, "/v1/customers/cus_NffrFeUfNV2Hib", T0), "/v1/customers/{id}");
    assert_string_equal(tpl(&c, "/v1/files/42.json", T0), "/v1/files/{id}.json");
    assert_string_equal(tpl(&c, "/Updates('id_UZtWXu4ie3NoXPo')", T0), "/Updates('{id}')");
    assert_string_equal(tpl(&c, "/v1/users/me", T0), "/v1/users/me");
    assert_string_equal(tpl(&c, "/v1/users/4711", T0), "/v1/users/{id}");
    assert_string_equal(tpl(&c, "/v1/users/me", T0), "/v1/users/me"); /* stays beside it */
    assert_string_equal(tpl(&c, "/2015-03-31/functions", T0), "/2015-03-31/functions");
    assert_string_equal(tpl(&c, "/amazonclouddirectory/2017-01-11/schema", T0),
                        "/amazonclouddirectory/2017-01-11/schema");
    assert_string_equal(tpl(&c, "/v1/reports/2026-03-01", T0), "/v1/reports/{id}");
    assert_string_equal(tpl(&c, "/packages/7d0c1e2f3a4b/1.2.3", T0), "/packages/{id}/{id}");
    /* a v-version up to the fourth segment of the literal prefix is the
     * API's; a dotted release there is a value */
    assert_string_equal(tpl(&c, "/_ah/api/airportsapi/v1/airports/LHR", T0),
                        "/_ah/api/airportsapi/v1/airports/LHR");
    assert_string_equal(tpl(&c, "/bots/billing/versions/3.1.9", T0), "/bots/billing/versions/{id}");
    assert_string_equal(tpl(&c, "/", T0), "/");
    assert_string_equal(tpl(&c, "/v1/a/", T0), "/v1/a/");
    assert_int_equal(c.nren, 0);
    routes_destroy(c.r);
}

/* A number right under a first segment waits for a second value a day
 * later (/api/16 is as often an API number as /users/42 is a user). */
static void test_number_waits(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, 0);
    assert_string_equal(tpl(&c, "/api/16/documentfrequency/get", T0),
                        "/api/16/documentfrequency/get");
    assert_string_equal(tpl(&c, "/api/23/twitter/search", T0 + HOUR), "/api/23/twitter/search");
    assert_string_equal(tpl(&c, "/users/42", T0), "/users/42");
    assert_string_equal(tpl(&c, "/users/42/repos", T0), "/users/42/repos");
    assert_string_equal(tpl(&c, "/users/43", T0 + 2 * DAY), "/users/{id}");
    assert_true(renamed(&c, "/users/42", "/users/{id}"));
    assert_true(renamed(&c, "/users/42/repos", "/users/{id}/repos"));
    assert_string_equal(tpl(&c, "/users/77/repos", T0 + 2 * DAY), "/users/{id}/repos");
    /* the API numbers, seen together, continue differently: kept */
    assert_string_equal(tpl(&c, "/api/16/documentfrequency/get", T0 + 3 * DAY),
                        "/api/16/documentfrequency/get");
    /* route numbers have one or two digits and lie in the literal prefix,
     * second or third segment: a longer one is an id at first sight */
    assert_string_equal(tpl(&c, "/members/1876897/recommendations", T0),
                        "/members/{id}/recommendations");
    assert_string_equal(tpl(&c, "/api/merchant/1/api/createOrder", T0),
                        "/api/merchant/1/api/createOrder");
    assert_string_equal(tpl(&c, "/api/merchant/4711/orders", T0), "/api/merchant/{id}/orders");
    assert_string_equal(tpl(&c, "/v2/files/7", T0), "/v2/files/{id}"); /* under a version */
    routes_destroy(c.r);
}

/* A route number still waiting heads an API, like a version: its
 * children are routes, not values in a value position (apitore's
 * /api/23/twitter/mytweet, a new endpoint beside /mytimeline and /search),
 * and two of them sharing a continuation stay apart
 * (/api/7/kuromoji-ipadic-neologd/tokenize beside
 * /api/7/kuromoji-ipadic/tokenize). A second number makes it a value. */
static void test_route_number_root(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, 0);
    assert_string_equal(tpl(&c, "/api/23/twitter/mytimeline", T0), "/api/23/twitter/mytimeline");
    assert_string_equal(tpl(&c, "/api/23/twitter/search", T0 + HOUR), "/api/23/twitter/search");
    assert_string_equal(tpl(&c, "/api/23/twitter/mytweet", T0 + 4 * DAY),
                        "/api/23/twitter/mytweet");
    assert_string_equal(tpl(&c, "/api/7/kuromoji-ipadic/tokenize", T0),
                        "/api/7/kuromoji-ipadic/tokenize");
    assert_string_equal(tpl(&c, "/api/7/kuromoji-ipadic-neologd/tokenize", T0 + 4 * DAY),
                        "/api/7/kuromoji-ipadic-neologd/tokenize");
    assert_int_equal(c.nren, 0);
    /* its limit: once the number is a value, words after it and a literal
     * are in a value position again (rule 2) */
    assert_string_equal(tpl(&c, "/teams/12/boards/alpha/cards", T0),
                        "/teams/12/boards/alpha/cards");
    assert_string_equal(tpl(&c, "/teams/34/boards/alpha/cards", T0 + 2 * DAY),
                        "/teams/{id}/boards/alpha/cards");
    assert_string_equal(tpl(&c, "/teams/34/boards/beta/cards", T0 + 4 * DAY),
                        "/teams/{id}/boards/{id}/cards");
    routes_destroy(c.r);
}

/* Words in a value position (/{id}/servers/x) first seen together are
 * routes; one that comes a day later and continues alike is a value. */
static void test_value_position(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, 0);
    const char *acct = "/accounts/7d0c1e2f3a4b";
    char p[256];
    snprintf(p, sizeof p, "%s/servers/alpha/start", acct);
    assert_string_equal(tpl(&c, p, T0), "/accounts/{id}/servers/alpha/start");
    snprintf(p, sizeof p, "%s/servers/beta/start", acct);
    assert_string_equal(tpl(&c, p, T0 + HOUR), "/accounts/{id}/servers/beta/start");
    snprintf(p, sizeof p, "%s/servers/gamma/start", acct);
    assert_string_equal(tpl(&c, p, T0 + 2 * DAY), "/accounts/{id}/servers/{id}/start");
    assert_true(
        renamed(&c, "/accounts/{id}/servers/alpha/start", "/accounts/{id}/servers/{id}/start"));
    assert_true(
        renamed(&c, "/accounts/{id}/servers/beta/start", "/accounts/{id}/servers/{id}/start"));
    snprintf(p, sizeof p, "%s/servers/delta/start", acct); /* the parameter is there now */
    assert_string_equal(tpl(&c, p, T0 + 2 * DAY), "/accounts/{id}/servers/{id}/start");
    snprintf(p, sizeof p, "%s/servers/alpha/start", acct); /* old literal resolves to it */
    assert_string_equal(tpl(&c, p, T0 + 3 * DAY), "/accounts/{id}/servers/{id}/start");
    routes_destroy(c.r);
}

/* name:verb (AIP-136): two names with one verb are one value. */
static void test_verb(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, 0);
    assert_string_equal(tpl(&c, "/v1/billing:cancel", T0), "/v1/billing:cancel");
    assert_string_equal(tpl(&c, "/v1/edge-vault:cancel", T0), "/v1/{id}:cancel");
    assert_true(renamed(&c, "/v1/billing:cancel", "/v1/{id}:cancel"));
    assert_string_equal(tpl(&c, "/v1/lake:cancel", T0), "/v1/{id}:cancel");
    routes_destroy(c.r);
}

/* Words elsewhere: siblings sharing a continuation, first seen a day
 * apart; and many leaves that keep coming after the first day. Never the
 * children of the root or a version seen together. */
static void test_words(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, 0);
    assert_string_equal(tpl(&c, "/repos/acme/web/issues", T0), "/repos/acme/web/issues");
    assert_string_equal(tpl(&c, "/repos/acme/api/issues", T0 + HOUR), "/repos/acme/api/issues");
    assert_string_equal(tpl(&c, "/repos/acme/infra/issues", T0 + 2 * DAY),
                        "/repos/acme/{id}/issues");
    assert_true(renamed(&c, "/repos/acme/web/issues", "/repos/acme/{id}/issues"));
    /* collections under a version, seen together, sharing "search" */
    assert_string_equal(tpl(&c, "/api/v1/news/search", T0), "/api/v1/news/search");
    assert_string_equal(tpl(&c, "/api/v1/cinema/search", T0), "/api/v1/cinema/search");
    assert_string_equal(tpl(&c, "/api/v1/people/search", T0 + HOUR), "/api/v1/people/search");
    /* a few root children never merge, whatever they share (test_root_late) */
    tpl(&c, "/orders/export", T0);
    tpl(&c, "/users/export", T0 + 2 * DAY);
    assert_string_equal(tpl(&c, "/invoices/export", T0 + 3 * DAY), "/invoices/export");
    /* leaves: 5 on day 0 stay; new ones on later days make them a value */
    const char *terms[] = {"anchor", "bridge", "cloud",  "delta",
                           "ember",  "forest", "garden", "harbor"};
    for (int i = 0; i < 5; i++) {
        char p[64];
        snprintf(p, sizeof p, "/icons/%s", terms[i]);
        assert_string_equal(tpl(&c, p, T0 + i * HOUR), p);
    }
    for (int i = 5; i < 8; i++) {
        char p[64];
        snprintf(p, sizeof p, "/icons/%s", terms[i]);
        tpl(&c, p, T0 + i * DAY);
    }
    assert_string_equal(c.out, "/icons/{id}"); /* 8 leaves, 3 of them late */
    assert_string_equal(tpl(&c, "/icons/island", T0 + 9 * DAY), "/icons/{id}");
    routes_destroy(c.r);
}

/* Rule 0: one stem in two formats (leaves) is one resource, the
 * extension its value; stems with a continuation (Azure's providers
 * Microsoft.Sql/servers, Microsoft.Cdn/profiles) are routes. */
static void test_formats(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, 0);
    assert_string_equal(tpl(&c, "/directions.json", T0), "/directions.json");
    assert_string_equal(tpl(&c, "/route.json", T0), "/route.json"); /* another stem */
    assert_string_equal(tpl(&c, "/directions.kml", T0), "/directions.{id}");
    assert_true(renamed(&c, "/directions.json", "/directions.{id}"));
    assert_string_equal(tpl(&c, "/directions.json", T0), "/directions.{id}");
    assert_string_equal(tpl(&c, "/directions.xml", T0), "/directions.{id}");
    assert_string_equal(tpl(&c, "/route.json", T0), "/route.json");
    assert_string_equal(tpl(&c, "/api/v1/pocs.csv", T0), "/api/v1/pocs.csv");
    assert_string_equal(tpl(&c, "/api/v1/pocs.json", T0), "/api/v1/pocs.{id}");
    tpl(&c, "/providers/Microsoft.Sql/servers", T0);
    assert_string_equal(tpl(&c, "/providers/Microsoft.Cdn/profiles", T0),
                        "/providers/Microsoft.Cdn/profiles");
    assert_string_equal(tpl(&c, "/providers/Microsoft.Sql/servers", T0),
                        "/providers/Microsoft.Sql/servers");
    routes_destroy(c.r);
}

/* First segments that are values (S3's path-style buckets): 6 or more continuing
 * alike, 3 of them first seen a day or more after the service, become one
 * parameter; newcomers then resolve to it. Routes of an API seen on its
 * first day, however many, stay. */
static void test_root_late(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, 0);
    const char *routes[] = {"users",   "orders",   "invoices", "refunds", "payouts",
                            "charges", "disputes", "events",   "files",   "tokens"};
    for (int i = 0; i < 10; i++)
        for (int k = 0; k < 2; k++) {
            char p[64], want[64];
            snprintf(p, sizeof p, "/%s/ID%05d", routes[i], 1000 + 10 * i + k);
            snprintf(want, sizeof want, "/%s/{id}", routes[i]);
            assert_string_equal(tpl(&c, p, T0 + i * HOUR + k), want);
        }
    /* two collections first used later: 2 late of 12 alike is not enough */
    assert_string_equal(tpl(&c, "/coupons/cpn_Xq81LmZr0pQw7T", T0 + 2 * DAY), "/coupons/{id}");
    assert_string_equal(tpl(&c, "/balance/txn_1MqLpWx94ZbE2k", T0 + 3 * DAY), "/balance/{id}");
    assert_string_equal(tpl(&c, "/users/ID01234", T0 + 3 * DAY), "/users/{id}");
    assert_int_equal(c.nren, 0);
    /* the limit of the rule (docs/shapes.md): a third collection first
     * used days later makes the first segment a value too */
    assert_string_equal(tpl(&c, "/quotes/qt_9ZrT4vBnW2xLpQ", T0 + 3 * DAY), "/{id}/{id}");
    routes_destroy(c.r);

    setup(&c, 0);
    const char *buckets[] = {"edge_portal", "mobile_gateway", "devorders",
                             "assets",      "payments",       "acme-mail-91",
                             "east-orders", "payments-api",   "green_frontend"};
    kw_ts when[] = {0, HOUR, 2 * HOUR, 3 * HOUR, 4 * HOUR, 5 * HOUR, DAY + HOUR, 2 * DAY, 3 * DAY};
    for (int i = 0; i < 9; i++)
        for (int k = 0; k < 2; k++) {
            char p[64];
            snprintf(p, sizeof p, "/%s/obj%06d", buckets[i], 4000 + 7 * i + k);
            tpl(&c, p, T0 + when[i] + k * HOUR);
        }
    assert_string_equal(c.out, "/{id}/{id}"); /* 9 alike, 3 late */
    assert_true(renamed(&c, "/edge_portal/{id}", "/{id}/{id}"));
    assert_string_equal(tpl(&c, "/media-west-85/obj123456", T0 + 4 * DAY), "/{id}/{id}");
    assert_string_equal(tpl(&c, "/prod-search", T0 + 4 * DAY), "/{id}");
    assert_string_equal(tpl(&c, "/v1/objects", T0 + 4 * DAY), "/v1/objects"); /* a version */
    routes_destroy(c.r);

    /* root_min is 6: six continuing alike, three late, merge; five do not */
    for (int n = 5; n <= 6; n++) {
        setup(&c, 0);
        for (int i = 0; i < n; i++) {
            char p[64];
            snprintf(p, sizeof p, "/%s/obj%06d", buckets[i], 4000 + i);
            tpl(&c, p, T0 + (i < n - 3 ? i * HOUR : (i - 1) * DAY));
        }
        assert_string_equal(c.out, n == 6 ? "/{id}/{id}" : "/payments/{id}");
        routes_destroy(c.r);
    }

    /* Buckets used only as a whole (S3's /{Bucket}?acl) are leaves: five
     * leaf first segments, three of them late, are values; five leaves
     * used from the first day are routes, and so are four with three late */
    const char *leaves[] = {"greendelta", "red-nova-72", "backend-alpha-24", "nova-payments-16",
                            "east-assets-58"};
    kw_ts lw[] = {0, HOUR, DAY + HOUR, 2 * DAY, 3 * DAY};
    char lp[64];
    setup(&c, 0); /* four, three of them late */
    for (int i = 1; i < 5; i++) {
        snprintf(lp, sizeof lp, "/%s", leaves[i]);
        assert_string_equal(tpl(&c, lp, T0 + lw[i]), lp);
    }
    routes_destroy(c.r);
    setup(&c, 0);
    for (int i = 0; i < 4; i++) {
        snprintf(lp, sizeof lp, "/%s", leaves[i]);
        assert_string_equal(tpl(&c, lp, T0 + lw[i]), lp);
    }
    snprintf(lp, sizeof lp, "/%s", leaves[4]);
    assert_string_equal(tpl(&c, lp, T0 + lw[4]), "/{id}");
    assert_true(renamed(&c, "/greendelta", "/{id}"));
    assert_string_equal(tpl(&c, "/north-reports", T0 + 4 * DAY), "/{id}");
    routes_destroy(c.r);
    setup(&c, 0);
    for (int i = 0; i < 5; i++) {
        snprintf(lp, sizeof lp, "/%s", leaves[i]);
        assert_string_equal(tpl(&c, lp, T0 + i * HOUR), lp);
    }
    routes_destroy(c.r);
}

/* Words that continue alike two segments deep through a literal are
 * values at once, first seen together or not (rule 3b): zones of a cloud
 * API. Route words that share one segment, or only a parameter then a
 * literal (/users/{id}/roles, /groups/{id}/roles), stay; so do the
 * children of a first segment. */
static void test_deep_share(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, 0);
    assert_string_equal(tpl(&c, "/v1/projects/prj_8Kq2Lw9ZpX/zones/us-east-1/clusters/ID00001", T0),
                        "/v1/projects/{id}/zones/us-east-1/clusters/{id}");
    assert_string_equal(
        tpl(&c, "/v1/projects/prj_8Kq2Lw9ZpX/zones/eu-west-1/clusters/ID00002", T0 + HOUR),
        "/v1/projects/{id}/zones/{id}/clusters/{id}");
    assert_true(renamed(&c, "/v1/projects/{id}/zones/us-east-1/clusters/{id}",
                        "/v1/projects/{id}/zones/{id}/clusters/{id}"));
    assert_string_equal(tpl(&c, "/v1/projects/prj_8Kq2Lw9ZpX/zones/asia-east1/clusters", T0 + HOUR),
                        "/v1/projects/{id}/zones/{id}/clusters");
    /* a parameter then a literal in common: two collections */
    tpl(&c, "/api/teams/users/ID00003/roles", T0);
    assert_string_equal(tpl(&c, "/api/teams/groups/ID00004/roles", T0 + HOUR),
                        "/api/teams/groups/{id}/roles");
    /* one literal in common (clouddirectory's object/attach, policy/attach) */
    tpl(&c, "/dir/v2/object/attach", T0);
    assert_string_equal(tpl(&c, "/dir/v2/policy/attach", T0 + HOUR), "/dir/v2/policy/attach");
    /* under a first segment */
    tpl(&c, "/accounts/nova-media/builds/ID00005", T0);
    assert_string_equal(tpl(&c, "/accounts/northingest/builds/ID00006", T0 + HOUR),
                        "/accounts/northingest/builds/{id}");
    routes_destroy(c.r);
}

/* learn = false (a 404): nothing enters the model, the template comes
 * from what is known and the shapes of the rest. */
static void test_lookup_only(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, 0);
    tpl(&c, "/v1/orders/12", T0);
    struct routes_stats st;
    routes_get_stats(c.r, &st);
    uint64_t nodes = st.nodes;
    size_t n = routes_template(c.r, "api.example:443", "GET", "/v1/orders/12/admin/9f3c2a7b11", 27,
                               false, T0, c.out, sizeof c.out);
    assert_int_equal(n, strlen(c.out));
    assert_string_equal(c.out, "/v1/orders/{id}/admin/{id}");
    n = routes_template(c.r, "other:80", "GET", "/wp-login.php", 13, false, T0, c.out,
                        sizeof c.out);
    assert_string_equal(c.out, "/wp-login.php");
    routes_get_stats(c.r, &st);
    assert_int_equal(st.nodes, nodes);
    assert_int_equal(st.services, 1);
    assert_int_equal(st.looked_up, 2);
    routes_destroy(c.r);
}

/* Over max_nodes: counted, and the template still comes (by shape). */
static void test_limits(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, 8);
    char p[64];
    for (int i = 0; i < 20; i++) {
        snprintf(p, sizeof p, "/v1/coll%c/items/%d", 'a' + i, 1000 + i);
        snprintf(c.out, 4, "x");
        tpl(&c, p, T0);
        char want[64];
        snprintf(want, sizeof want, "/v1/coll%c/items/{id}", 'a' + i);
        assert_string_equal(c.out, want);
    }
    struct routes_stats st;
    routes_get_stats(c.r, &st);
    assert_true(st.limit_nodes > 0);
    assert_int_equal(st.nodes, 8);
    /* a cut output buffer stays terminated */
    char small[8];
    size_t n = routes_template(c.r, "api.example:443", "GET", "/v1/colla/items/5", 17, true, T0,
                               small, sizeof small);
    assert_int_equal(n, strlen(small));
    assert_true(n < sizeof small);
    routes_destroy(c.r);
}

static bool collect(void *user, const struct routes_endpoint *e)
{
    char *buf = user;
    size_t l = strlen(buf);
    snprintf(buf + l, 8192 - l, "%s %s %u %u;", e->service, e->tmpl, e->count, e->n_params);
    return true;
}

/* The same paths in the same order give the same model. */
static void test_determinism(void **state)
{
    (void)state;
    char dump[2][8192];
    for (int run = 0; run < 2; run++) {
        struct ctx c;
        setup(&c, 0);
        uint64_t x = 42;
        for (int i = 0; i < 3000; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            char p[128];
            static const char *const coll[] = {"servers", "disks", "networks"};
            snprintf(p, sizeof p, "/subscriptions/%08llx/resourceGroups/rg%llu/%s/n%llu",
                     (unsigned long long)(x >> 40), (unsigned long long)(x >> 61),
                     coll[(x >> 20) % 3], (unsigned long long)((x >> 30) % 40));
            tpl(&c, p, T0 + (kw_ts)i * 120 * 1000000);
        }
        dump[run][0] = 0;
        routes_each_endpoint(c.r, NULL, collect, dump[run]);
        routes_destroy(c.r);
    }
    assert_string_equal(dump[0], dump[1]);
    assert_non_null(strstr(dump[0], "/subscriptions/{id}/resourceGroups/"));
}

static void stream(struct ctx *c, uint64_t *x, int from, int to, char *log, size_t cap)
{
    size_t o = strlen(log);
    for (int i = from; i < to; i++) {
        *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
        char p[128];
        static const char *const coll[] = {"servers", "disks", "networks"};
        static const char *const names[] = {"alpha", "beta", "gamma", "delta", "eps"};
        snprintf(p, sizeof p, "/subscriptions/%08llx/resourceGroups/%s/%s/%s/start",
                 (unsigned long long)(*x >> 62), names[(*x >> 20) % 5], coll[(*x >> 30) % 3],
                 names[(*x >> 40) % 5]);
        o += (size_t)snprintf(log + o, cap - o, "%s\n",
                              tpl(c, p, T0 + (kw_ts)i * 600 * 1000000)); /* 10 min apart */
    }
}

/* A fresh model saved in test-tmp/NAME (db gets the path). */
static void open_db(struct ctx *c, const char *name, char *db, size_t cap)
{
    snprintf(db, cap, "%s/test-tmp/%s", KW_BINARY_DIR, name);
    unlink(db);
    setup(c, 0);
    assert_int_equal(routes_db_open(c->r, db, NULL), KW_E_OK);
}

/* Saved, closed and loaded again, as at a restart. */
static void reopen(struct ctx *c, const char *db)
{
    assert_int_equal(routes_save(c->r), KW_E_OK);
    routes_destroy(c->r);
    setup(c, 0);
    assert_int_equal(routes_db_open(c->r, db, NULL), KW_E_OK);
}

/* Rule 5: two sibling words each the target of a DELETE are items, not
 * routes (Google's /v1/{name}, a contractor deleting two of its
 * lexicons); GETs alone prove nothing; first segments are rule 4's; the
 * DELETE seen before a restart still counts after it. */
static void test_item_methods(void **state)
{
    (void)state;
    char db[512];
    struct ctx c;
    open_db(&c, "routes-items.db", db, sizeof db);
    assert_string_equal(tpl(&c, "/v1/lexicons", T0), "/v1/lexicons");
    assert_string_equal(tpl(&c, "/v1/lexicons/reports-prod", T0), "/v1/lexicons/reports-prod");
    assert_string_equal(tpl(&c, "/v1/lexicons/ledger-west", T0), "/v1/lexicons/ledger-west");
    c.method = "DELETE";
    assert_string_equal(tpl(&c, "/v1/lexicons/reports-prod", T0 + HOUR),
                        "/v1/lexicons/reports-prod");
    /* first segments: never by this rule */
    tpl(&c, "/cache", T0 + HOUR);
    assert_string_equal(tpl(&c, "/session", T0 + HOUR), "/session");
    reopen(&c, db);
    c.method = "GET";
    assert_string_equal(tpl(&c, "/v1/lexicons/ledger-west", T0 + 2 * HOUR),
                        "/v1/lexicons/ledger-west"); /* a GET: nothing new */
    c.method = "DELETE";
    assert_string_equal(tpl(&c, "/v1/lexicons/ledger-west", T0 + 3 * HOUR), "/v1/lexicons/{id}");
    assert_true(renamed(&c, "/v1/lexicons/reports-prod", "/v1/lexicons/{id}"));
    assert_true(renamed(&c, "/v1/lexicons/ledger-west", "/v1/lexicons/{id}"));
    /* the collection itself stays; a word deleted later joins the parameter */
    c.method = "GET";
    assert_string_equal(tpl(&c, "/v1/lexicons", T0 + 4 * HOUR), "/v1/lexicons");
    assert_string_equal(tpl(&c, "/v1/lexicons/mail-assets", T0 + 4 * HOUR), "/v1/lexicons/{id}");
    assert_string_equal(tpl(&c, "/session", T0 + 4 * HOUR), "/session");
    routes_destroy(c.r);
}

/* Learning over two runs (save, new object, load) equals learning over
 * one: the same templates after the cut, the same model, old literal
 * names still resolving to the parameters they were merged into. */
/* Rule 6: a word its own answer names back is a value, where REST puts
 * an item: under a literal collection or a version, not under a parameter
 * nor as the first segment. Words join that parameter after it, but a
 * GET answered whole without naming its word is a route word; beside a
 * version only an echo makes a word a value. */
static void test_echo(void **state)
{
    (void)state;
    struct ctx c;
    setup(&c, 0);
    kw_ts t = T0;
    assert_string_equal(tpl(&c, "/api/users", t), "/api/users");
    /* PUT answered without a body: a literal, as before */
    c.method = "PUT";
    assert_string_equal(tpl(&c, "/api/users/alice", t), "/api/users/alice");
    c.method = "GET";
    /* GET /api/users/alice answered {"name":"alice",...}: bit 2 */
    assert_string_equal(tpl_echo(&c, "/api/users/alice", 1u << 2, t), "/api/users/{id}");
    assert_true(renamed(&c, "/api/users/alice", "/api/users/{id}"));
    /* a whole segment: no extension is split off */
    assert_string_equal(tpl_echo(&c, "/api/users/bob.smith", 1u << 2, t), "/api/users/{id}");
    /* another user, its answer not looked at (DELETE, 204): joins */
    c.method = "DELETE";
    assert_string_equal(tpl(&c, "/api/users/carol", t), "/api/users/{id}");
    c.method = "GET";
    /* a GET answered whole ([]) that does not name it: a route word */
    assert_string_equal(tpl_echo(&c, "/api/users/without-permissions", ECHO_WHOLE, t),
                        "/api/users/without-permissions");
    /* ... and an answer seen only in part says nothing */
    assert_string_equal(tpl_echo(&c, "/api/users/dave", 0, t), "/api/users/{id}");
    /* under a parameter: an action ("status":"void"), not an item */
    assert_string_equal(tpl(&c, "/v1/invoices/in_1MtHbELkdIwHu7ix/send", t),
                        "/v1/invoices/{id}/send");
    assert_string_equal(tpl_echo(&c, "/v1/invoices/in_1MtHbELkdIwHu7iy/void", 1u << 3, t),
                        "/v1/invoices/{id}/void");
    /* the first segment: never */
    assert_string_equal(tpl_echo(&c, "/status", 1u << 0, t), "/status");
    /* beside a version: the echoed word is a value; a word without its
     * own echo stays a literal (/v1/{name} beside /v1/projects) */
    assert_string_equal(tpl_echo(&c, "/v2/east-delta", 1u << 1, t), "/v2/{id}");
    assert_string_equal(tpl(&c, "/v2/projects", t), "/v2/projects");
    assert_string_equal(tpl_echo(&c, "/v2/west-gamma", 1u << 1, t), "/v2/{id}");
    /* a route word proved so stays, even where another rule would take
     * it for a value (rule 2: a word after a parameter and a literal) */
    assert_string_equal(tpl_echo(&c, "/v3/accounts/8812/members/alice", 1u << 4, t),
                        "/v3/accounts/{id}/members/{id}");
    assert_string_equal(tpl_echo(&c, "/v3/accounts/8812/members/me", ECHO_WHOLE, t + KW_TS_SEC(90000)),
                        "/v3/accounts/{id}/members/me");
    assert_string_equal(tpl(&c, "/v3/accounts/8812/members/me", t + KW_TS_SEC(90001)),
                        "/v3/accounts/{id}/members/me");
    /* ... until its own answer names it */
    assert_string_equal(tpl_echo(&c, "/v3/accounts/8812/members/me", 1u << 4, t + KW_TS_SEC(90002)),
                        "/v3/accounts/{id}/members/{id}");
    struct routes_stats st;
    routes_get_stats(c.r, &st);
    assert_int_equal(st.echoed, 6);
    routes_destroy(c.r);
}

/* Rule 6's marks survive a restart: a parameter only echoes made beside
 * a version still takes only echoed words, a word proved a route stays. */
static void test_echo_restart(void **state)
{
    (void)state;
    char db[512];
    struct ctx c;
    open_db(&c, "routes-echo.db", db, sizeof db);
    kw_ts t = T0;
    assert_string_equal(tpl_echo(&c, "/v2/east-delta", 1u << 1, t), "/v2/{id}");
    assert_string_equal(tpl_echo(&c, "/v3/accounts/8812/members/alice", 1u << 4, t),
                        "/v3/accounts/{id}/members/{id}");
    assert_string_equal(tpl_echo(&c, "/v3/accounts/8812/members/me", ECHO_WHOLE, t),
                        "/v3/accounts/{id}/members/me");
    reopen(&c, db);
    t += KW_TS_SEC(90000);
    assert_string_equal(tpl(&c, "/v2/projects", t), "/v2/projects");
    assert_string_equal(tpl(&c, "/v3/accounts/8812/members/bob", t), "/v3/accounts/{id}/members/{id}");
    assert_string_equal(tpl(&c, "/v3/accounts/8812/members/me", t), "/v3/accounts/{id}/members/me");
    routes_destroy(c.r);
}

static void test_restart(void **state)
{
    (void)state;
    char db[512];
    snprintf(db, sizeof db, "%s/test-tmp/routes-restart.db", KW_BINARY_DIR);
    static char one[1 << 18], two[1 << 18], d1[8192], d2[8192];
    for (int run = 0; run < 2; run++) {
        char *log = run ? two : one;
        log[0] = 0;
        uint64_t x = 7;
        struct ctx c;
        setup(&c, 0);
        if (run) {
            unlink(db);
            assert_int_equal(routes_db_open(c.r, db, NULL), KW_E_OK);
        }
        stream(&c, &x, 0, 400, log, sizeof one); /* about 3 days: merges happen */
        if (run) {
            assert_int_equal(routes_save(c.r), KW_E_OK);
            struct routes_stats st;
            routes_get_stats(c.r, &st);
            assert_true(st.saves >= 1);
            assert_true(st.merges >= 1);
            routes_destroy(c.r);
            c.r = NULL;
            struct routes_config rc = {.on_merge = on_merge, .user = &c};
            assert_int_equal(routes_new(&rc, &c.r), KW_E_OK);
            assert_int_equal(routes_db_open(c.r, db, NULL), KW_E_OK);
            routes_get_stats(c.r, &st);
            assert_true(st.loaded > 0);
        }
        stream(&c, &x, 400, 800, log, sizeof one);
        char *d = run ? d2 : d1;
        d[0] = 0;
        routes_each_endpoint(c.r, NULL, collect, d);
        if (run) assert_int_equal(routes_save(c.r), KW_E_OK);
        routes_destroy(c.r);
    }
    assert_string_equal(one, two);
    assert_string_equal(d1, d2);
    /* read only, as export reads it */
    struct routes *ro = NULL;
    struct routes_config rc = {0};
    assert_int_equal(routes_load_ro(db, &rc, &ro), KW_E_OK);
    static char d3[8192];
    d3[0] = 0;
    routes_each_endpoint(ro, NULL, collect, d3);
    assert_string_equal(d1, d3);
    routes_destroy(ro);
    snprintf(db + strlen(db), sizeof db - strlen(db), "-none");
    assert_int_equal(routes_load_ro(db, &rc, &ro), KW_E_NOTFOUND);
}

int main(void)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s/test-tmp", KW_BINARY_DIR);
    mkdir(tmp, 0700);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_sight),
        cmocka_unit_test(test_number_waits),
        cmocka_unit_test(test_route_number_root),
        cmocka_unit_test(test_value_position),
        cmocka_unit_test(test_verb),
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_lookup_only),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_root_late),
        cmocka_unit_test(test_deep_share),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_item_methods),
        cmocka_unit_test(test_echo),
        cmocka_unit_test(test_echo_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
