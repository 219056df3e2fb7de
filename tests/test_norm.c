/* test_norm: table tests for request-path normalisation and endpoint
 * templates. The evasion table is the point: every spelling of an admin
 * path must normalise to the same string a deny rule on /v1/admin (and below) matches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kw_exact.h"
#include "kw_txn.h"
#include "echo.h"
#include "norm.h"

#define F(n) KW_TXN_F(n)

struct norm_case {
    const char *in;
    const char *out;
    uint32_t flags;
};

static const struct norm_case cases[] = {
    {"/v1/admin/users", "/v1/admin/users", 0},
    {"/v1/orders/../admin/users", "/v1/admin/users", F(PATH_DOT_SEGMENTS)},
    {"/v1/%61dmin/users", "/v1/admin/users", F(PATH_PERCENT_ENCODED)},
    {"/v1/%41dmin/users", "/v1/Admin/users", F(PATH_PERCENT_ENCODED)}, /* case kept */
    {"//v1/admin//users", "/v1/admin/users", F(PATH_DOUBLE_SLASH)},
    {"/v1/admin%2fusers", "/v1/admin/users", F(PATH_ENCODED_SLASH)},
    {"/v1/admin%2Fusers", "/v1/admin/users", F(PATH_ENCODED_SLASH)},
    {"/v1/admin%5cusers", "/v1/admin/users", F(PATH_ENCODED_SLASH)},
    {"/v1\\admin\\users", "/v1/admin/users", F(PATH_ENCODED_SLASH)},
    {"/v1/./admin", "/v1/admin", F(PATH_DOT_SEGMENTS)},
    {"/%2e%2e/admin", "/admin", F(PATH_DOT_SEGMENTS) | F(PATH_PERCENT_ENCODED)},
    {"/v1/orders/%2e%2e/admin/users", "/v1/admin/users",
     F(PATH_DOT_SEGMENTS) | F(PATH_PERCENT_ENCODED)},
    {"/v1/orders/%2e%2e%2fadmin/users", "/v1/admin/users",
     F(PATH_DOT_SEGMENTS) | F(PATH_PERCENT_ENCODED) | F(PATH_ENCODED_SLASH)},
    {"/v1/orders/.%2e/admin", "/v1/admin", F(PATH_DOT_SEGMENTS) | F(PATH_PERCENT_ENCODED)},
    {"/v1/admin/..", "/v1/", F(PATH_DOT_SEGMENTS)},
    {"/v1/admin/.", "/v1/admin/", F(PATH_DOT_SEGMENTS)},
    {"/v1/admin/users/", "/v1/admin/users/", 0},
    {"/../../admin", "/admin", F(PATH_DOT_SEGMENTS)},
    {"/..", "/", F(PATH_DOT_SEGMENTS)},
    {"/v1/admin?x=/../../y", "/v1/admin", 0},
    {"/v1/admin#frag", "/v1/admin", 0},
    {"/v1/admin%3fx", "/v1/admin%3Fx", 0}, /* encoded '?' is data, canonical hex */
    {"http://api.example/v1/admin/users?a=1", "/v1/admin/users", 0},
    {"HTTPS://api.example:8443/v1/../v1/admin", "/v1/admin", F(PATH_DOT_SEGMENTS)},
    {"http://api.example", "/", 0},
    {"http://api.example?x", "/", 0},
    {"*", "/", 0},
    {"/v1/%zzadmin", "/v1/%25zzadmin", F(PATH_BAD_ENCODING)},
    {"/v1/admin%", "/v1/admin%25", F(PATH_BAD_ENCODING)},
    {"/v1/admin%4", "/v1/admin%254", F(PATH_BAD_ENCODING)},
    {"/v1/admin%00.json", "/v1/admin%00.json", F(PATH_NUL)},
    /* NUL is kept, so dot segments after it still resolve like a server
     * that treats it as a plain byte would: no escape from /v1/admin */
    {"/v1/orders/%00/../../admin/x", "/v1/admin/x", F(PATH_NUL) | F(PATH_DOT_SEGMENTS)},
    {"/caf\xc3\xa9 x", "/caf%C3%A9%20x", 0},
    {"/caf%c3%a9%20x", "/caf%C3%A9%20x", 0},
    {"/a/b;c=1/@:!$&'()*+,=~", "/a/b;c=1/@:!$&'()*+,=~", 0},
    {"", "/", 0},
    {"v1/admin", "/v1/admin", 0},
    {"/.%2e/.%2E/v1/admin", "/v1/admin", F(PATH_DOT_SEGMENTS) | F(PATH_PERCENT_ENCODED)},
    {"/v1//..//admin", "/admin", F(PATH_DOUBLE_SLASH) | F(PATH_DOT_SEGMENTS)},
    /* decoded once, as always; what a second decode or an overlong UTF-8
     * decoder would make of them is flagged (persona.c decides) */
    {"/v1/orders/%252e%252e/admin", "/v1/orders/%252e%252e/admin", F(PATH_DOUBLE_ENCODED)},
    {"/v1/admin%252fusers", "/v1/admin%252fusers", F(PATH_DOUBLE_ENCODED)},
    {"/v1/100%25", "/v1/100%25", 0},          /* a percent sign, no hex after it */
    {"/v1/100%25zz", "/v1/100%25zz", 0},
    {"/v1/orders/%c0%ae%c0%ae/admin", "/v1/orders/%C0%AE%C0%AE/admin", F(PATH_OVERLONG_UTF8)},
    {"/v1/x/%c0%af", "/v1/x/%C0%AF", F(PATH_OVERLONG_UTF8)},
    {"/v1/x/%e0%80%ae", "/v1/x/%E0%80%AE", F(PATH_OVERLONG_UTF8)},
    {"/v1/x/\xc0\xae", "/v1/x/%C0%AE", F(PATH_OVERLONG_UTF8)},
    {"/v1/x/%c3%a9%e2%82%ac", "/v1/x/%C3%A9%E2%82%AC", 0}, /* well-formed: no flag */
};

/* norm_path over an exact-size heap copy (kw_exact.h): paths come from
 * the wire with no NUL after them, and ASan must see any read past one. */
static uint32_t norm_x(const char *in, size_t n, char *out, size_t cap, size_t *ol)
{
    uint8_t *b = kw_exact_dup(in, n);
    uint32_t f = norm_path((const char *)b, n, out, cap, ol);
    free(b);
    return f;
}

static void test_norm_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];
        size_t ol = 99;
        uint32_t f = norm_x(cases[i].in, strlen(cases[i].in), out, sizeof(out), &ol);
        if (strcmp(out, cases[i].out) != 0 || f != cases[i].flags || ol != strlen(out))
            fail_msg("case %zu \"%s\": got \"%s\" flags %#x, want \"%s\" %#x", i, cases[i].in, out,
                     f, cases[i].out, cases[i].flags);
    }
}

/* Every evasion spelling lands on the same normalised path. */
static void test_norm_evasions_converge(void **state)
{
    (void)state;
    static const char *spellings[] = {
        "/v1/admin/users",          "/v1/orders/../admin/users", "/v1/%61dmin/users",
        "//v1/admin//users",        "/v1/admin%2fusers",         "/v1/./admin/users",
        "/x/%2e%2e/v1/admin/users", "/v1\\admin\\users",         "/v1/admin/users?q=1",
        "http://h/v1/admin/users",  "/v1/adm%69n/%75sers",       "/v1/admin/x/../users",
    };
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        char out[64];
        norm_x(spellings[i], strlen(spellings[i]), out, sizeof(out), NULL);
        if (strcmp(out, "/v1/admin/users") != 0)
            fail_msg("\"%s\" -> \"%s\"", spellings[i], out);
    }
}

static void test_norm_truncation(void **state)
{
    (void)state;
    char out[8];
    size_t ol;
    uint32_t f = norm_x("/v1/admin/users", 15, out, sizeof(out), &ol);
    assert_true(f & F(TRUNCATED_FIELD));
    assert_int_equal(ol, strlen(out));
    assert_true(ol < sizeof(out));
    assert_int_equal(out[0], '/');
    f = norm_x("/a", 2, out, 1, &ol);
    assert_true(f & F(TRUNCATED_FIELD));
    assert_string_equal(out, "");
}

struct tpl_case {
    const char *in, *out;
};

static const struct tpl_case tpls[] = {
    {"/v1/customers/123/invoices", "/v1/customers/{id}/invoices"},
    {"/v1/orders/550e8400-e29b-41d4-a716-446655440000", "/v1/orders/{id}"},
    {"/v1/blobs/deadbeef01", "/v1/blobs/{id}"},
    {"/v1/blobs/deadbeef", "/v1/blobs/deadbeef"}, /* no digit: a word */
    {"/v1/keys/Ab3dEf6hIj9kLm2nOp", "/v1/keys/{id}"},
    {"/v1/keys/cus_L8x7Qw2ErT5yUi9o", "/v1/keys/{id}"},
    {"/v1/users/me", "/v1/users/me"},
    {"/v2/items", "/v2/items"},
    {"/v1/reports/2024/summary.json", "/v1/reports/{id}/summary.json"},
    {"/v1/files/42.json", "/v1/files/{id}.json"},
    {"/v1/accounts/administrator", "/v1/accounts/administrator"},
    {"/", "/"},
    {"/v1/a/", "/v1/a/"},
    {"/v1/x/12/", "/v1/x/{id}/"},
};

/* Every byte between two letters of a path: kept as it is when RFC 3986
 * lets it stand in a segment (unreserved, sub-delims, ':', '@'), else
 * percent-encoded in upper case; '/' and '\\' separate, '?' and '#' end
 * the path, a '%' without two hex digits is kept as %25. */
static void test_norm_every_byte(void **state)
{
    (void)state;
    for (int c = 1; c < 256; c++) {
        char in[4] = {'a', (char)c, 'b', 0}, tgt[8] = "/", out[64], want[16];
        memcpy(tgt + 1, in, 4);
        size_t ol = 0;
        norm_path(tgt, strlen(tgt), out, sizeof out, &ol);
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    strchr("-._~!$&'()*+,;=:@", c);
        if (c == '?' || c == '#')
            strcpy(want, "/a");
        else if (c == '/' || c == '\\')
            strcpy(want, "/a/b");
        else if (c == '%')
            strcpy(want, "/a%25b");
        else if (keep)
            snprintf(want, sizeof want, "/a%cb", c);
        else
            snprintf(want, sizeof want, "/a%%%02Xb", c);
        if (strcmp(out, want)) fail_msg("byte 0x%02x: %s, not %s", c, out, want);
        assert_int_equal(ol, strlen(want));
    }
}

static void test_template_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(tpls) / sizeof(tpls[0]); i++) {
        char out[128];
        size_t n = norm_template(tpls[i].in, strlen(tpls[i].in), out, sizeof(out));
        if (strcmp(out, tpls[i].out) != 0 || n != strlen(out))
            fail_msg("\"%s\" -> \"%s\", want \"%s\"", tpls[i].in, out, tpls[i].out);
    }
    char small[6];
    size_t n = norm_template("/v1/customers/1", 15, small, sizeof(small));
    assert_int_equal(n, 5);
    assert_string_equal(small, "/v1/c");
}

/* echo.h: a segment counts when it is the whole string value of a member
 * named like an id or a name; not a member name, not part of a longer
 * string, not under "type" (JSON:API names collections there), not cut. */
static uint32_t echo(const char *path, const char *body)
{
    size_t n = strlen(body);
    char *b = (char *)kw_exact_dup(body, n + 1); /* the body and the NUL echo.h asks for */
    uint32_t m = echo_segments(path, strlen(path), b, n);
    free(b);
    return m;
}

static void test_echo_segments(void **state)
{
    (void)state;
    assert_int_equal(echo("/policies/api-green", "{\"policyName\":\"api-green\",\"x\":1}"),
                     1u << 1);
    assert_int_equal(echo("/api/queues/prod/orders", "{\"name\" : \"orders\" }"), 1u << 3);
    assert_int_equal(echo("/u/octo", "{\"login\":\"octo\",\"id\":1}"), 1u << 1);
    assert_int_equal(echo("/a/b/orders", "{\"meta\":{\"order_id\":\"orders\"}}"), 1u << 2);
    /* a member name, a collection named under "type", a longer string */
    assert_int_equal(echo("/x/orders", "{\"orders\":[]}"), 0);
    assert_int_equal(echo("/api/articles", "{\"data\":[{\"type\":\"articles\",\"id\":\"1\"}]}"), 0);
    assert_int_equal(echo("/x/red", "{\"name\":\"red-east\"}"), 0);
    assert_int_equal(echo("/x/red", "{\"name\":\"a \\\"red\\\" b\"}"), 0);
    /* array elements, and a value cut by the end of the look */
    assert_int_equal(echo("/x/red", "{\"names\":[\"red\",\"blue\"]}"), 0);
    assert_int_equal(echo("/x/red", "{\"name\":\"red\""), 0);
    /* one character, or a byte JSON escapes: never */
    assert_int_equal(echo("/x/a", "{\"id\":\"a\"}"), 0);
    assert_int_equal(echo("/x/a\"b", "{\"id\":\"a\\\"b\"}"), 0);
    /* the last segment only (the item addressed), not after a number */
    assert_int_equal(echo("/v/prod/orders/prod", "{\"vhostName\":\"prod\",\"name\":\"orders\"}"),
                     1u << 3);
    assert_int_equal(echo("/v/prod/orders/", "{\"vhostName\":\"prod\",\"name\":\"orders\"}"),
                     1u << 2);
    assert_int_equal(echo("/v/orders/12/red", "{\"name\":\"red\"}"), 0);
    assert_int_equal(echo("/v/orders/12", "{\"id\":\"12\"}"), 0);
    assert_int_equal(echo_segments("/x/y", 4, NULL, 0), 0);
}

static void test_echo_wanted(void **state)
{
    (void)state;
    const char *j = "application/json; charset=utf-8", *p = "application/problem+json";
    assert_int_equal(echo_wanted(200, j, strlen(j), NULL, 0), ECHO_PLAIN);
    assert_int_equal(echo_wanted(201, p, strlen(p), " identity", 9), ECHO_PLAIN);
    assert_int_equal(echo_wanted(404, j, strlen(j), NULL, 0), ECHO_NONE);
    assert_int_equal(echo_wanted(200, j, strlen(j), "gzip", 4), ECHO_INFLATE);
    assert_int_equal(echo_wanted(200, j, strlen(j), "Deflate ", 8), ECHO_INFLATE);
    assert_int_equal(echo_wanted(200, j, strlen(j), "br", 2), ECHO_NONE);
    assert_int_equal(echo_wanted(200, j, strlen(j), "gzip, br", 8), ECHO_NONE);
    assert_int_equal(echo_wanted(200, "text/html", 9, NULL, 0), ECHO_NONE);
    assert_int_equal(echo_wanted(200, "text/plain; x=json", 18, NULL, 0), ECHO_NONE);
    assert_int_equal(echo_wanted(200, NULL, 0, NULL, 0), ECHO_NONE);
    /* targets whose last segment an answer may usefully name */
    assert_true(echo_target("/api/users/alice?x=1", 20));
    assert_true(echo_target("http://h/api/users/alice/", 25));
    assert_false(echo_target("/api/users/42", 13));
    assert_false(echo_target("/api/users/42/roles", 19));
    assert_false(echo_target("/users", 6));
    assert_false(echo_target("/", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_segments),
        cmocka_unit_test(test_echo_wanted),
        cmocka_unit_test(test_norm_table),
        cmocka_unit_test(test_norm_evasions_converge),
        cmocka_unit_test(test_norm_truncation),
        cmocka_unit_test(test_norm_every_byte),
        cmocka_unit_test(test_template_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
