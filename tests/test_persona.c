/* test_persona: backend personalities end to end inside the process. Each
 * case is a raw HTTP/1.1 request, parsed by the real h1 parser (so the
 * override headers and flags come from bytes, split at every position
 * once), read by a personality (persona_effective) and judged with a real
 * rules model: a deny-only identity (c02: the rules a trick walks past)
 * and an allowlist one (c01). The table is the personality table's
 * evasion cases (docs/personalities.md): each forbidden effective request
 * alerts, with the trick named; what a personality ignores is flagged on
 * the record and does not alert. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h1.h"
#include "judge_policy.h"
#include "persona.h"

#define F(n) KW_TXN_F(n)
#define SHA_C01 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SHA_C02 "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

static const char rules_text[] =
    "identities:\n"
    "  - id: c01\n"
    "    credentials: [ { sha256: " SHA_C01 " } ]\n"
    "    scope:\n"
    "      - \"GET /v1/orders/**\"\n"
    "      - \"POST /v1/orders\"\n"
    "      - \"GET /v1/Reports/**\"\n"
    "  - id: c02\n"
    "    credentials: [ { sha256: " SHA_C02 " } ]\n"
    "    deny: [ \"* /v1/admin/**\", \"DELETE /v1/**\", \"* /v1/export\" ]\n"
    "scopes:\n"
    "  \"DELETE /v1/orders\": orders:admin\n";

enum { NONE = -1 };

struct pcase {
    enum rules_backend be;
    const char *who;                   /* c01 or c02 */
    const char *head;                  /* request line and extra headers (Host added) */
    const char *eff_method, *eff_path; /* "" = the wire one */
    uint32_t flags;                    /* flags that must be set */
    int kind;                          /* alert kind, or NONE */
};

#define G RULES_BACKEND_GENERIC
static const struct pcase cases[] = {
    /* generic: every override is judged as a second reading */
    {G, "c02", "POST /v1/orders HTTP/1.1\r\nX-HTTP-Method-Override: DELETE\r\n", "DELETE", "",
     F(METHOD_OVERRIDE), ALERT_METHOD_OVERRIDE},
    {G, "c02", "POST /v1/orders HTTP/1.1\r\nx-http-method: DELETE\r\n", "DELETE", "",
     F(METHOD_OVERRIDE), ALERT_METHOD_OVERRIDE},
    {G, "c02", "POST /v1/orders HTTP/1.1\r\nX-Method-Override: delete\r\n", "DELETE", "",
     F(METHOD_OVERRIDE), ALERT_METHOD_OVERRIDE},
    {G, "c02", "POST /v1/orders?a=1&_method=DELETE HTTP/1.1\r\n", "DELETE", "", F(METHOD_OVERRIDE),
     ALERT_METHOD_OVERRIDE},
    {G, "c02", "GET /v1/orders HTTP/1.1\r\nX-Original-URL: /v1/admin/users\r\n", "",
     "/v1/admin/users", F(URL_OVERRIDE), ALERT_METHOD_OVERRIDE},
    {G, "c02", "GET /v1/orders HTTP/1.1\r\nX-Rewrite-URL: /v1/x/../admin/users?q=1\r\n", "",
     "/v1/admin/users", F(URL_OVERRIDE), ALERT_METHOD_OVERRIDE},
    {G, "c02", "POST /v1/orders HTTP/1.1\r\nX-HTTP-Method-Override: POST\r\n", "", "",
     F(METHOD_OVERRIDE), NONE}, /* asks for what it is: flagged only */
    {G, "c01", "POST /v1/orders HTTP/1.1\r\nX-HTTP-Method-Override: DELETE\r\n", "DELETE", "",
     F(METHOD_OVERRIDE), ALERT_METHOD_OVERRIDE}, /* allowlist: POST only */
    {G, "c01", "GET /v1/orders HTTP/1.1\r\nX-Original-URL: /v1/admin/users\r\n", "",
     "/v1/admin/users", F(URL_OVERRIDE), ALERT_METHOD_OVERRIDE},
    /* generic decodes once: a second decode and overlong UTF-8 are flagged */
    {G, "c02", "GET /v1/orders/%252e%252e/admin/users HTTP/1.1\r\n", "", "", F(PATH_DOUBLE_ENCODED),
     NONE},
    {G, "c02", "GET /v1/orders/%c0%ae%c0%ae/admin/users HTTP/1.1\r\n", "", "",
     F(PATH_OVERLONG_UTF8), NONE},
    /* ... and judges its loose reading (case, ;params, a suffix ignored, as
     * Express and Spring on Tomcat were measured to do: e2e_frameworks)
     * against deny rules only */
    {G, "c02", "GET /v1/admin;x=1/users HTTP/1.1\r\n", "", "", 0, ALERT_OUT_OF_SCOPE},
    {G, "c02", "GET /v1/orders/..;/admin/users HTTP/1.1\r\n", "", "", 0, ALERT_OUT_OF_SCOPE},
    {G, "c02", "GET /V1/ADMIN/users HTTP/1.1\r\n", "", "", 0, ALERT_OUT_OF_SCOPE},
    {G, "c02", "GET /v1/export.csv HTTP/1.1\r\n", "", "", 0, ALERT_OUT_OF_SCOPE},
    {G, "c02", "GET /v1/Orders/7.json HTTP/1.1\r\n", "", "", 0, NONE},
    {G, "c02", "GET /v1/orders;x=1/7 HTTP/1.1\r\n", "", "", 0, NONE},
    {G, "c01", "GET /v1/Reports/q1.pdf HTTP/1.1\r\n", "", "", 0, NONE}, /* not vs an allowlist */
    /* spring: matrix parameters, suffix patterns, _method */
    {RULES_BACKEND_SPRING, "c02", "GET /v1/admin;x=1/users HTTP/1.1\r\n", "", "/v1/admin/users", 0,
     ALERT_OUT_OF_SCOPE},
    {RULES_BACKEND_SPRING, "c02", "GET /v1/orders/..;/admin/users HTTP/1.1\r\n", "",
     "/v1/admin/users", 0, ALERT_OUT_OF_SCOPE},
    {RULES_BACKEND_SPRING, "c02", "GET /v1/export.csv HTTP/1.1\r\n", "", "/v1/export", 0,
     ALERT_OUT_OF_SCOPE},
    {RULES_BACKEND_SPRING, "c02", "POST /v1/orders?_method=DELETE HTTP/1.1\r\n", "DELETE", "",
     F(METHOD_OVERRIDE), ALERT_METHOD_OVERRIDE},
    {RULES_BACKEND_SPRING, "c02", "POST /v1/orders HTTP/1.1\r\nX-HTTP-Method-Override: DELETE\r\n",
     "", "", F(METHOD_OVERRIDE), NONE}, /* not honoured: flagged only */
    {RULES_BACKEND_SPRING, "c01", "GET /v1/orders;jsessionid=1/7 HTTP/1.1\r\n", "", "/v1/orders/7",
     0, NONE},
    /* express: case-insensitive routes, X-HTTP-Method-Override */
    {RULES_BACKEND_EXPRESS, "c02", "GET /V1/ADMIN/users HTTP/1.1\r\n", "", "/v1/admin/users", 0,
     ALERT_OUT_OF_SCOPE},
    {RULES_BACKEND_EXPRESS, "c02", "POST /v1/orders HTTP/1.1\r\nX-HTTP-Method-Override: delete\r\n",
     "DELETE", "", F(METHOD_OVERRIDE), ALERT_METHOD_OVERRIDE},
    {RULES_BACKEND_EXPRESS, "c02", "GET /v1/admin;x=1/users HTTP/1.1\r\n", "", "", 0, NONE},
    /* aspnet: case, X-HTTP-Method-Override and X-HTTP-Method */
    {RULES_BACKEND_ASPNET, "c02", "GET /v1/Admin/users HTTP/1.1\r\n", "", "/v1/admin/users", 0,
     ALERT_OUT_OF_SCOPE},
    {RULES_BACKEND_ASPNET, "c02", "POST /v1/orders HTTP/1.1\r\nX-HTTP-Method: DELETE\r\n", "DELETE",
     "", F(METHOD_OVERRIDE), ALERT_METHOD_OVERRIDE},
    {RULES_BACKEND_ASPNET, "c01", "GET /v1/reports/q1 HTTP/1.1\r\n", "", "", 0, NONE},
    {RULES_BACKEND_ASPNET, "c01", "GET /V1/ORDERS/7 HTTP/1.1\r\n", "", "/v1/orders/7", 0, NONE},
    {RULES_BACKEND_ASPNET, "c02", "GET /v1/orders HTTP/1.1\r\nX-Original-URL: /v1/admin\r\n", "",
     "", F(URL_OVERRIDE), NONE},
    /* iis: double decoding, overlong UTF-8, X-Original-URL, case */
    {RULES_BACKEND_IIS, "c02", "GET /v1/orders/%252e%252e/admin/users HTTP/1.1\r\n", "",
     "/v1/admin/users", F(PATH_DOUBLE_ENCODED), ALERT_OUT_OF_SCOPE},
    {RULES_BACKEND_IIS, "c02", "GET /v1/orders/%c0%ae%c0%ae/admin/users HTTP/1.1\r\n", "",
     "/v1/admin/users", F(PATH_OVERLONG_UTF8), ALERT_OUT_OF_SCOPE},
    {RULES_BACKEND_IIS, "c02", "GET /v1/orders/%25c0%25ae%25c0%25ae/admin/users HTTP/1.1\r\n", "",
     "/v1/admin/users", F(PATH_DOUBLE_ENCODED), ALERT_OUT_OF_SCOPE},
    {RULES_BACKEND_IIS, "c02", "GET /v1/admin%252fusers HTTP/1.1\r\n", "", "/v1/admin/users",
     F(PATH_DOUBLE_ENCODED), ALERT_OUT_OF_SCOPE},
    {RULES_BACKEND_IIS, "c02", "GET /v1/orders HTTP/1.1\r\nX-Original-URL: /v1/admin/users\r\n", "",
     "/v1/admin/users", F(URL_OVERRIDE), ALERT_METHOD_OVERRIDE},
    {RULES_BACKEND_IIS, "c02", "GET /V1/EXPORT HTTP/1.1\r\n", "", "/v1/export", 0,
     ALERT_OUT_OF_SCOPE},
    /* nginx, apache, django: one decode, case kept, no override honoured */
    {RULES_BACKEND_NGINX, "c02", "POST /v1/orders HTTP/1.1\r\nX-HTTP-Method-Override: DELETE\r\n",
     "", "", F(METHOD_OVERRIDE), NONE},
    {RULES_BACKEND_APACHE, "c02", "GET /v1/orders/%252e%252e/admin HTTP/1.1\r\n", "", "",
     F(PATH_DOUBLE_ENCODED), NONE},
    {RULES_BACKEND_DJANGO, "c02", "GET /v1/admin;x=1/users HTTP/1.1\r\n", "", "", 0, NONE},
    /* the wire request itself forbidden: today's alert, the trick named */
    {G, "c02", "GET /v1/admin/users HTTP/1.1\r\nX-HTTP-Method-Override: PUT\r\n", "PUT", "",
     F(METHOD_OVERRIDE), ALERT_OUT_OF_SCOPE},
};

struct got {
    struct kw_txn *t;
    int n;
};

static void on_txn(void *user, const struct h1_txn_view *v)
{
    struct got *g = user;
    kw_txn_clear(g->t);
    h1_txn_fill(v, g->t);
    g->n++;
}

struct rec {
    int n;
    int kind;
    char summary[1024];
    char *evidence;
};

static void record(void *user, struct alert_finding *f)
{
    struct rec *r = user;
    if (!r->n) {
        r->kind = f->kind;
        snprintf(r->summary, sizeof r->summary, "%s", f->summary);
        r->evidence = f->evidence ? json_dumps(f->evidence, JSON_COMPACT) : NULL;
    }
    r->n++;
    json_decref(f->evidence);
}

/* Parses head + response into t, the request split at `split`. */
static void parse(const char *head, size_t split, struct kw_txn *t)
{
    char req[2048];
    snprintf(req, sizeof req, "%sHost: api.acme.internal\r\n\r\n", head);
    const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    struct got g = {t, 0};
    struct h1_conn *c = h1_conn_new(NULL, on_txn, &g);
    assert_non_null(c);
    size_t n = strlen(req), a = split < n ? split : n;
    size_t k = h1_feed(c, 0, (const uint8_t *)req, a, 1000);
    /* the parser keeps what it did not consume: offer it again */
    char rest[2048];
    size_t rl = a - k;
    memcpy(rest, req + k, rl);
    memcpy(rest + rl, req + a, n - a);
    assert_int_equal(h1_feed(c, 0, (const uint8_t *)rest, rl + n - a, 1000), rl + n - a);
    assert_int_equal(h1_feed(c, 1, (const uint8_t *)resp, strlen(resp), 2000), strlen(resp));
    h1_close(c, 3000);
    h1_conn_destroy(c);
    assert_int_equal(g.n, 1);
}

static void judge_case(struct rules_model *m, struct judge_policy *jp, const struct pcase *pc,
                       size_t split, struct kw_txn *t, struct rec *r)
{
    parse(pc->head, split, t);
    t->flags |= persona_effective(pc->be, t);
    t->cred.kind = KW_CRED_BEARER;
    snprintf(t->cred.fingerprint, sizeof t->cred.fingerprint, "sha256:%s",
             !strcmp(pc->who, "c01") ? SHA_C01 : SHA_C02);
    memset(r, 0, sizeof *r);
    const struct rules_identity *id = rules_attribute_txn(m, t);
    assert_non_null(id);
    judge_policy_check(jp, m, id, t, record, r);
}

static int setup(void **state)
{
    struct rules_model *m = NULL;
    struct rules_diag d;
    rules_diag_init(&d);
    if (rules_load_mem(NULL, NULL, "rules.d/p.yaml", rules_text, &m, &d) != KW_E_OK) {
        rules_diag_print(&d, stderr);
        return -1;
    }
    rules_diag_free(&d);
    *state = m;
    return 0;
}

static int teardown(void **state)
{
    rules_model_free(*state);
    return 0;
}

static void test_table(void **state)
{
    struct rules_model *m = *state;
    struct kw_txn *t = malloc(sizeof *t);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct pcase *pc = &cases[i];
        size_t len = strlen(pc->head);
        for (size_t split = 1; split <= len; split++) {
            /* a fresh judge each time: no alert is a repeat of another */
            struct judge_policy *jp = judge_policy_new(&(struct judge_policy_limits){64, 64});
            struct rec r;
            judge_case(m, jp, pc, split, t, &r);
            judge_policy_destroy(jp);
            bool ok = !strcmp(t->eff_method, pc->eff_method) &&
                      !strcmp(t->eff_path, pc->eff_path) && (t->flags & pc->flags) == pc->flags &&
                      (pc->kind == NONE ? r.n == 0 : r.n == 1 && r.kind == pc->kind);
            if (!ok)
                fail_msg("case %zu (%s, %s) split %zu: eff \"%s\" \"%s\" flags %#x, %d "
                         "finding(s) kind %s: %s",
                         i, rules_backend_name(pc->be), pc->head, split, t->eff_method, t->eff_path,
                         t->flags, r.n, r.n ? alert_kind_name(r.kind) : "-", r.summary);
            free(r.evidence);
            if (split > 64) split = len; /* long heads: the start and the end */
        }
    }
    free(t);
}

/* The alert says what was sent, what ran and which rule forbids it. */
static void test_summaries(void **state)
{
    struct rules_model *m = *state;
    struct kw_txn *t = malloc(sizeof *t);
    struct judge_policy *jp = judge_policy_new(NULL);
    struct rec r;
    judge_case(m, jp, &cases[0], 1000, t, &r);
    assert_string_equal(r.summary,
                        "c02 called POST /v1/orders on api.acme.internal with "
                        "X-HTTP-Method-Override: DELETE; a backend that honours it runs DELETE "
                        "/v1/orders, which its deny rule \"DELETE /v1/**\" forbids");
    assert_non_null(strstr(r.evidence, "\"runs_as\":\"DELETE api.acme.internal /v1/orders\""));
    assert_non_null(strstr(r.evidence, "\"by\":\"X-HTTP-Method-Override: DELETE\""));
    free(r.evidence);
    judge_case(m, jp, &cases[4], 1000, t, &r);
    assert_string_equal(r.summary,
                        "c02 called GET /v1/orders on api.acme.internal with X-Original-URL: "
                        "/v1/admin/users; a backend that honours it runs GET /v1/admin/users, "
                        "which its deny rule \"* /v1/admin/**\" forbids");
    free(r.evidence);
    const struct pcase spring = {
        RULES_BACKEND_SPRING, "c02", "GET /v1/admin;x=1/users HTTP/1.1\r\n", "", "", 0, 0};
    judge_case(m, jp, &spring, 1000, t, &r);
    assert_string_equal(r.summary,
                        "c02 called GET /v1/admin;x=1/users on api.acme.internal; spring runs it "
                        "as GET /v1/admin/users (matrix parameters dropped), which its deny rule "
                        "\"* /v1/admin/**\" forbids");
    free(r.evidence);
    const struct pcase loose = {G, "c02", "GET /V1/Admin;x=1/users.json HTTP/1.1\r\n", "", "",
                                0, 0};
    judge_case(m, jp, &loose, 1000, t, &r);
    assert_string_equal(r.summary,
                        "c02 called GET /V1/Admin;x=1/users.json on api.acme.internal; a backend "
                        "that reads it loosely (matrix parameters dropped, suffix ignored, case "
                        "ignored) runs GET /v1/admin/users, which its deny rule \"* /v1/admin/**\" "
                        "forbids");
    assert_non_null(strstr(r.evidence, "\"runs_as\":\"GET api.acme.internal /v1/admin/users\""));
    free(r.evidence);
    judge_policy_destroy(jp);
    free(t);
}

static void record_all(void *user, struct alert_finding *f)
{
    struct rec *r = user;
    if (f->kind == ALERT_SCOPE_NOT_GRANTED_ACCEPTED) {
        r->kind = f->kind;
        snprintf(r->summary, sizeof r->summary, "%s", f->summary);
    }
    r->n++;
    json_decref(f->evidence);
}

/* OAuth `scopes:` judge the effective request too: a token granting
 * orders:write that makes the backend run DELETE /v1/orders (which needs
 * orders:admin) through an override is caught, the trick named. */
static void test_scopes(void **state)
{
    struct rules_model *m = *state;
    struct kw_txn *t = malloc(sizeof *t);
    struct judge_policy *jp = judge_policy_new(NULL);
    static const enum rules_backend bes[] = {RULES_BACKEND_GENERIC, RULES_BACKEND_EXPRESS,
                                             RULES_BACKEND_SPRING};
    for (size_t i = 0; i < 3; i++) {
        parse("POST /v1/orders HTTP/1.1\r\nX-HTTP-Method-Override: DELETE\r\n", 1000, t);
        t->flags |= persona_effective(bes[i], t);
        t->cred.kind = KW_CRED_JWT;
        t->cred.jwt.has_scope = true;
        snprintf(t->cred.jwt.scope, sizeof t->cred.jwt.scope, "orders:write");
        snprintf(t->cred.fingerprint, sizeof t->cred.fingerprint, "sha256:%s", SHA_C01);
        struct rec r;
        memset(&r, 0, sizeof r);
        judge_policy_check(jp, m, rules_attribute_txn(m, t), t, record_all, &r);
        if (bes[i] == RULES_BACKEND_SPRING) { /* spring ignores the header: nothing */
            assert_int_equal(r.kind, 0);
            continue;
        }
        assert_int_equal(r.kind, ALERT_SCOPE_NOT_GRANTED_ACCEPTED);
        assert_non_null(strstr(r.summary, "called POST /v1/orders (run as DELETE /v1/orders: "
                                          "X-HTTP-Method-Override: DELETE) on api.acme.internal"));
    }
    judge_policy_destroy(jp);
    free(t);
}

/* Override values are kept raw and bounded; the first source wins. */
static void test_scan(void **state)
{
    (void)state;
    struct kw_txn *t = malloc(sizeof *t);
    char head[3000];
    memset(head, 0, sizeof head);
    strcpy(head, "GET /a?_method=PATCH HTTP/1.1\r\nX-Method-Override: PUT\r\n"
                 "X-HTTP-Method-Override: DELETE\r\nX-Original-URL: /");
    size_t n = strlen(head);
    memset(head + n, 'a', 1500);
    strcpy(head + n + 1500, "\r\n");
    parse(head, 1000000, t);
    assert_string_equal(t->ovr_method, "DELETE");
    assert_int_equal(t->ovr_method_src, KW_OVR_X_HTTP_METHOD_OVERRIDE);
    assert_int_equal(t->ovr_url_src, KW_OVR_X_ORIGINAL_URL);
    assert_int_equal(strlen(t->ovr_url), sizeof t->ovr_url - 1);
    assert_true(t->flags & F(TRUNCATED_FIELD));
    parse("GET /a?x=_method=PUT&_methodx=1#_method=DELETE HTTP/1.1\r\n", 1000000, t);
    assert_false(t->flags & F(METHOD_OVERRIDE));
    assert_string_equal(t->ovr_method, "");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_summaries),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_scopes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
