/* Tests of the `fleet:` config section (rules/rules_fleet.c): defaults, a
 * full section, the env: credentials, and each mistake reported at its
 * line with a hint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules.h"

static struct rules_model *load(const char *cfg, struct rules_diag *d, enum kw_err want)
{
    struct rules_model *m = NULL;
    rules_diag_init(d);
    assert_int_equal(rules_load_mem("kw.yaml", cfg, NULL, NULL, &m, d), want);
    return m;
}

static void test_defaults(void **state)
{
    struct rules_diag d;
    struct rules_model *m = load(NULL, &d, KW_E_OK);
    const struct rules_config *c = &m->config;
    assert_null(c->fleet.nats);
    assert_null(c->fleet.sensor);
    assert_int_equal(c->fleet.partitions, 16);
    assert_int_equal(c->fleet.replicas, 1);
    assert_int_equal(c->fleet.lateness_s, 10);
    assert_int_equal(c->fleet.spool_max, 1u << 30);
    rules_model_free(m);
    rules_diag_free(&d);
}

static void test_full(void **state)
{
    setenv("KW_TEST_NATS_CREDS", "kw:s3cret-pass", 1);
    static const char cfg[] =
        "fleet:\n"
        "  nats: \"nats://10.0.0.5:4222,nats://10.0.0.6:4222\"\n"
        "  sensor: fra-1\n"
        "  partitions: 32\n"
        "  credentials: \"env:KW_TEST_NATS_CREDS\"\n"
        "  tls: { ca: /etc/kw/ca.pem, cert: /etc/kw/c.pem, key: /etc/kw/c.key }\n"
        "  spool: { path: /var/spool/kw, max: 64MB }\n"
        "  stream: KW_PROD\n"
        "  replicas: 3\n"
        "  max_age: 3d\n"
        "  lateness: 30s\n";
    struct rules_diag d;
    struct rules_model *m = load(cfg, &d, KW_E_OK);
    const struct rules_config *c = &m->config;
    assert_string_equal(c->fleet.nats, "nats://10.0.0.5:4222,nats://10.0.0.6:4222");
    assert_string_equal(c->fleet.sensor, "fra-1");
    assert_int_equal(c->fleet.partitions, 32);
    assert_string_equal(c->fleet.credentials, "kw:s3cret-pass");
    assert_string_equal(c->fleet.tls_ca, "/etc/kw/ca.pem");
    assert_string_equal(c->fleet.tls_key, "/etc/kw/c.key");
    assert_string_equal(c->fleet.spool, "/var/spool/kw");
    assert_int_equal(c->fleet.spool_max, 64000000); /* MB is 10^6, as in limits */
    assert_string_equal(c->fleet.stream, "KW_PROD");
    assert_int_equal(c->fleet.replicas, 3);
    assert_int_equal(c->fleet.max_age_s, 3 * 86400);
    assert_int_equal(c->fleet.lateness_s, 30);
    assert_int_equal(rules_diag_warnings(&d), 0);
    rules_model_free(m);
    rules_diag_free(&d);
    unsetenv("KW_TEST_NATS_CREDS");
}

static void test_mistakes(void **state)
{
    static const char cfg[] = "fleet:\n"
                              "  nats: \"http://10.0.0.5:4222\"\n" /* 2 */
                              "  sensor: \"fra.1\"\n"              /* 3 */
                              "  partitions: 0\n"                  /* 4 */
                              "  credentials: \"env:KW_TEST_UNSET_VAR\"\n" /* 5 */
                              "  tls: { cert: c.pem }\n" /* 6: no key (told at the section, 2) */
                              "  spool: { max: 10KB }\n"           /* 7 */
                              "  replicas: 7\n"                    /* 8 */
                              "  speed: fast\n";                   /* 9 */
    unsetenv("KW_TEST_UNSET_VAR");
    struct rules_diag d;
    struct rules_model *m = load(cfg, &d, KW_E_CONFIG);
    assert_null(m);
    int lines[16] = {0};
    for (size_t i = 0; i < d.n; i++) {
        assert_int_equal(d.items[i].level, RULES_DIAG_ERROR);
        assert_true(d.items[i].line >= 1 && d.items[i].line < 16);
        lines[d.items[i].line]++;
    }
    for (int l = 2; l <= 9; l++)
        assert_int_equal(lines[l], l == 2 ? 2 : l == 6 ? 0 : 1);
    assert_int_equal(rules_diag_errors(&d), 8);
    rules_diag_free(&d);

    /* a sensor name without servers */
    m = load("fleet: { sensor: fra-1 }\n", &d, KW_E_CONFIG);
    assert_int_equal(rules_diag_errors(&d), 1);
    assert_non_null(strstr(d.items[0].msg, "fleet.nats"));
    rules_diag_free(&d);

    /* the smallest spool is the one the error names (1MB = 10^6 bytes) */
    m = load("fleet: { nats: \"nats://127.0.0.1:4222\", spool: { max: 1MB } }\n", &d, KW_E_OK);
    assert_int_equal(m->config.fleet.spool_max, 1000000);
    rules_model_free(m);
    rules_diag_free(&d);
    m = load("fleet: { nats: \"nats://127.0.0.1:4222\", spool: { max: 999999B } }\n", &d,
             KW_E_CONFIG);
    assert_int_equal(rules_diag_errors(&d), 1);
    assert_non_null(strstr(d.items[0].hint ? d.items[0].hint : "", "at least 1MB"));
    rules_diag_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_mistakes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
