/* Tests of OpenAPI reading and matching (analyzer/shapes/openapi.c): a 3.x
 * YAML document with $ref parameters, path-level parameters and a server
 * with a base path and variables; a 2.0 JSON document with basePath;
 * broken documents refused with file:line:col; the matcher's literal-first
 * order, methods and affixed parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "openapi.h"

static const char v3[] = "openapi: 3.0.3\n"
                         "info: { title: Billing, version: \"2.1\" }\n"
                         "servers:\n"
                         "  - url: https://API.acme.example:8443/{base}\n"
                         "    variables: { base: { default: billing/v2 } }\n"
                         "components:\n"
                         "  parameters:\n"
                         "    CustomerId: { name: customerId, in: path, required: true,\n"
                         "                  schema: { $ref: '#/components/schemas/Id' } }\n"
                         "  schemas:\n"
                         "    Id: { type: integer, format: int64 }\n"
                         "paths:\n"
                         "  /customers/{customerId}:\n"
                         "    parameters: [ { $ref: '#/components/parameters/CustomerId' } ]\n"
                         "    get: { responses: { '200': { description: ok } } }\n"
                         "    delete: { responses: { '204': { description: gone } } }\n"
                         "  /customers/me:\n"
                         "    get: { responses: { '200': { description: ok } } }\n"
                         "  /customers/{customerId}/invoices/{invoice}.pdf:\n"
                         "    parameters: [ { $ref: '#/components/parameters/CustomerId' } ]\n"
                         "    get:\n"
                         "      parameters:\n"
                         "        - { name: invoice, in: path, required: true, schema: { type: "
                         "string, format: uuid } }\n"
                         "        - { name: lang, in: query, schema: { type: string } }\n"
                         "      responses: { '200': { description: ok } }\n"
                         "  /Updates('{id}'):\n"
                         "    get: { responses: { '200': { description: ok } } }\n";

static const char v2[] =
    "{\"swagger\": \"2.0\", \"info\": {\"title\": \"Legacy\", \"version\": \"1\"},\n"
    " \"host\": \"legacy.example\", \"basePath\": \"/api/\",\n"
    " \"parameters\": {\"P\": {\"name\": \"id\", \"in\": \"path\", \"type\": \"integer\"}},\n"
    " \"paths\": {\"/items/{id}\": {\"get\": {\"parameters\": [{\"$ref\": \"#/parameters/P\"}],\n"
    "   \"responses\": {\"200\": {\"description\": \"ok\"}}}}}}\n";

static struct oas_doc *load_ok(const char *name, const char *text)
{
    struct oas_doc *d = NULL;
    char err[512];
    enum kw_err e = oas_load_mem(name, text, strlen(text), &d, err, sizeof err);
    if (e != KW_E_OK) fail_msg("%s", err);
    return d;
}

static const struct oas_endpoint *find(const struct oas_doc *d, const char *m, const char *t)
{
    for (size_t i = 0; i < d->n; i++)
        if (!strcmp(d->ep[i].method, m) && !strcmp(d->ep[i].tmpl, t)) return &d->ep[i];
    fail_msg("no %s %s", m, t);
    return NULL;
}

static void test_read_v3(void **state)
{
    (void)state;
    struct oas_doc *d = load_ok("billing.yaml", v3);
    assert_string_equal(d->title, "Billing");
    assert_string_equal(d->host, "api.acme.example");
    assert_string_equal(d->base, "/billing/v2");
    assert_int_equal(d->n, 5);
    const struct oas_endpoint *e = find(d, "GET", "/billing/v2/customers/{customerId}");
    assert_int_equal(e->n_params, 1);
    assert_string_equal(e->params[0].name, "customerId");
    assert_string_equal(e->params[0].kind, "int"); /* through two $refs */
    find(d, "DELETE", "/billing/v2/customers/{customerId}");
    e = find(d, "GET", "/billing/v2/customers/{customerId}/invoices/{invoice}.pdf");
    assert_int_equal(e->n_params, 2); /* path-level one and the operation's; query not */
    assert_string_equal(e->params[1].kind, "uuid");
    oas_free(d);
}

static void test_read_v2(void **state)
{
    (void)state;
    struct oas_doc *d = load_ok("legacy.json", v2);
    assert_string_equal(d->host, "legacy.example");
    assert_string_equal(d->base, "/api");
    assert_int_equal(d->n, 1);
    assert_string_equal(d->ep[0].tmpl, "/api/items/{id}");
    assert_string_equal(d->ep[0].params[0].kind, "int");
    oas_free(d);
}

struct bad {
    const char *text, *want;
};

static void test_broken(void **state)
{
    (void)state;
    static const struct bad bad[] = {
        {"openapi: 3.0.0\ninfo: {title: x}\npaths:\n  /a: { get: [ }\n", "broken.yaml:4:"},
        {"{\"openapi\": \"3.0.0\", \"paths\": {\"/a\": }}", "broken.yaml:1:"},
        {"openapi: 3.0.0\npaths:\n  /a:\n    get:\n      parameters:\n"
         "        - $ref: '#/components/parameters/Nope'\n",
         "broken.yaml:6:18: error: $ref \"#/components/parameters/Nope\" goes nowhere"},
        {"openapi: 3.0.0\ninfo: {title: x}\n", "broken.yaml:1:1: error: the document has no paths"},
        {"title: not a spec\n", "not an OpenAPI 2.0 or 3.x document"},
        {"openapi: 3.0.0\npaths:\n  a/b: { get: {} }\n", "broken.yaml:3:3: error: path \"a/b\""},
        {"openapi: 3.0.0\npaths:\n  /a:\n    get:\n      parameters:\n"
         "        - $ref: '#/x'\nx: { $ref: '#/x' }\n",
         "more than 16 references"},
        /* crashes Debian's libfyaml 0.7.12 (upstream issue 57): contained
         * in kw_yaml's child, reported at its line */
        {"openapi: 3.0.0\n? -:\t-\n", "broken.yaml:2:1: error: the YAML parser (libfyaml)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct oas_doc *d = NULL;
        char err[512];
        enum kw_err e =
            oas_load_mem("broken.yaml", bad[i].text, strlen(bad[i].text), &d, err, sizeof err);
        if (e != KW_E_CONFIG || d || !strstr(err, bad[i].want))
            fail_msg("case %zu: %d \"%s\", want \"%s\"", i, e, err, bad[i].want);
    }
    char err[512];
    struct oas_doc *d = NULL;
    assert_int_equal(oas_load("/nonexistent/spec.yaml", &d, err, sizeof err), KW_E_IO);
    assert_non_null(strstr(err, "/nonexistent/spec.yaml"));
}

static void test_match(void **state)
{
    (void)state;
    struct oas_set *s = NULL;
    assert_int_equal(oas_set_new(&s), KW_E_OK);
    assert_int_equal(oas_set_add(s, "api.acme.example:8443", load_ok("b.yaml", v3)), KW_E_OK);
    assert_int_equal(oas_set_add(s, "legacy.example", load_ok("l.json", v2)), KW_E_OK);
    assert_int_equal(oas_set_count(s), 6);
    const char *t = NULL;
    assert_int_equal(
        oas_set_match(s, "api.acme.example", 8443, "GET", "/billing/v2/customers/me", &t),
        OAS_MATCH);
    assert_string_equal(t, "/billing/v2/customers/me"); /* the literal wins */
    assert_int_equal(
        oas_set_match(s, "api.acme.example", 8443, "DELETE", "/billing/v2/customers/4711", &t),
        OAS_MATCH);
    assert_string_equal(t, "/billing/v2/customers/{customerId}");
    /* /me has no DELETE; {customerId} has: backtracking finds it */
    assert_int_equal(
        oas_set_match(s, "api.acme.example", 8443, "DELETE", "/billing/v2/customers/me", &t),
        OAS_MATCH);
    assert_string_equal(t, "/billing/v2/customers/{customerId}");
    assert_int_equal(
        oas_set_match(s, "api.acme.example", 8443, "PUT", "/billing/v2/customers/4711", &t),
        OAS_NO_METHOD);
    assert_int_equal(oas_set_match(s, "api.acme.example", 8443, "GET",
                                   "/billing/v2/customers/9/invoices/7c2e.pdf", &t),
                     OAS_MATCH);
    assert_string_equal(t, "/billing/v2/customers/{customerId}/invoices/{invoice}.pdf");
    assert_int_equal(oas_set_match(s, "api.acme.example", 8443, "GET",
                                   "/billing/v2/customers/9/invoices/7c2e.csv", &t),
                     OAS_NO_PATH);
    assert_int_equal(
        oas_set_match(s, "api.acme.example", 8443, "GET", "/billing/v2/Updates('x1')", &t),
        OAS_MATCH);
    assert_int_equal(oas_set_match(s, "api.acme.example", 8443, "GET", "/admin/debug", &t),
                     OAS_NO_PATH);
    assert_int_equal(oas_set_match(s, "api.acme.example", 443, "GET", "/admin", &t), OAS_NO_SPEC);
    /* a service named without a port: any port */
    assert_int_equal(oas_set_match(s, "legacy.example", 8080, "GET", "/api/items/5", &t),
                     OAS_MATCH);
    assert_int_equal(oas_set_match(NULL, "x", 80, "GET", "/", &t), OAS_NO_SPEC);
    oas_set_destroy(s);
}

/* Scope requirements from `security`, in the shapes public specs use (the
 * Swagger Petstore's: an OAuth 2 scheme with scopes, an API key as an
 * alternative, a document-wide default, operations that override it, and
 * `security: []` for an open operation). */
static const char sec3[] =
    "openapi: 3.0.2\n"
    "info: { title: Shop, version: \"1\" }\n"
    "servers: [ { url: /v3 } ]\n"
    "security: [ { shop_auth: [ 'read:pets' ] } ]\n"
    "components:\n"
    "  securitySchemes:\n"
    "    shop_auth: { type: oauth2, flows: { implicit: { authorizationUrl: 'https://a.example/o',\n"
    "                 scopes: { 'read:pets': r, 'write:pets': w } } } }\n"
    "    oidc: { $ref: '#/components/x-oidc' }\n"
    "    api_key: { type: apiKey, name: api_key, in: header }\n"
    "  x-oidc: { type: openIdConnect, openIdConnectUrl: 'https://a.example/.well-known' }\n"
    "paths:\n"
    "  /pet:\n"
    "    post:\n"
    "      security:\n"
    "        - shop_auth: [ 'write:pets', 'read:pets' ]\n"
    "        - oidc: [ admin ]\n"
    "      responses: { '200': { description: ok } }\n"
    "    get: { responses: { '200': { description: ok } } }\n"
    "  /pet/{petId}:\n"
    "    get:\n"
    "      security: [ { api_key: [] }, { shop_auth: [ 'read:pets' ] } ]\n"
    "      responses: { '200': { description: ok } }\n"
    "  /store/inventory:\n"
    "    get: { security: [ { api_key: [] } ], responses: { '200': { description: ok } } }\n"
    "  /health:\n"
    "    get: { security: [], responses: { '200': { description: ok } } }\n"
    "  /odd:\n"
    "    get: { security: [ { shop_auth: [ 'has space', 'read:pets' ] } ],\n"
    "           responses: { '200': { description: ok } } }\n";

static const struct oas_endpoint *op_of(const struct oas_set *s, const char *m, const char *path)
{
    const char *tmpl = NULL;
    const struct oas_endpoint *op = NULL;
    assert_int_equal(oas_set_lookup(s, "shop.example", 443, m, path, &tmpl, &op), OAS_MATCH);
    assert_non_null(op);
    assert_string_equal(op->method, m);
    return op;
}

static void test_security(void **state)
{
    (void)state;
    struct oas_set *s = NULL;
    assert_int_equal(oas_set_new(&s), KW_E_OK);
    assert_int_equal(oas_set_add(s, "shop.example", load_ok("shop.yaml", sec3)), KW_E_OK);
    /* the operation's own: two alternatives, the OIDC one through a $ref */
    const struct oas_endpoint *op = op_of(s, "POST", "/v3/pet");
    assert_int_equal(op->n_scope_alts, 2);
    assert_string_equal(op->scope_alts[0], "write:pets read:pets");
    assert_string_equal(op->scope_alts[1], "admin");
    assert_string_equal(op->src, "shop.yaml");
    assert_int_equal(op->scope_line, 16); /* its security list's first entry */
    /* the document's default where the operation says nothing */
    op = op_of(s, "GET", "/v3/pet");
    assert_int_equal(op->n_scope_alts, 1);
    assert_string_equal(op->scope_alts[0], "read:pets");
    assert_int_equal(op->scope_line, 4);
    /* an API key alone lets a caller in without any scope */
    assert_int_equal(op_of(s, "GET", "/v3/pet/17")->n_scope_alts, 0);
    assert_int_equal(op_of(s, "GET", "/v3/store/inventory")->n_scope_alts, 0);
    assert_int_equal(op_of(s, "GET", "/v3/health")->n_scope_alts, 0);
    /* a scope no token can carry (a space) is left out, the rest kept */
    op = op_of(s, "GET", "/v3/odd");
    assert_int_equal(op->n_scope_alts, 1);
    assert_string_equal(op->scope_alts[0], "read:pets");
    oas_set_destroy(s);

    /* 2.0: securityDefinitions */
    static const char sec2[] =
        "{\"swagger\": \"2.0\", \"info\": {\"title\": \"L\", \"version\": \"1\"},\n"
        " \"securityDefinitions\": {\"o\": {\"type\": \"oauth2\", \"flow\": \"implicit\",\n"
        "   \"authorizationUrl\": \"https://a.example/o\", \"scopes\": {\"items:write\": \"w\"}}},\n"
        " \"paths\": {\"/items\": {\"post\": {\"security\": [{\"o\": [\"items:write\"]}],\n"
        "   \"responses\": {\"200\": {\"description\": \"ok\"}}}}}}\n";
    struct oas_doc *d = load_ok("legacy.json", sec2);
    assert_int_equal(d->n, 1);
    assert_int_equal(d->ep[0].n_scope_alts, 1);
    assert_string_equal(d->ep[0].scope_alts[0], "items:write");
    oas_free(d);

    /* a security that is not a list is refused with its place */
    char err[512];
    d = NULL;
    static const char bad[] = "openapi: 3.0.0\n"
                              "info: { title: B, version: \"1\" }\n"
                              "paths:\n"
                              "  /a:\n"
                              "    get:\n"
                              "      security: { shop_auth: [] }\n"
                              "      responses: { '200': { description: ok } }\n";
    assert_int_equal(oas_load_mem("bad.yaml", bad, strlen(bad), &d, err, sizeof err), KW_E_CONFIG);
    assert_null(d);
    assert_non_null(strstr(err, "bad.yaml:6:"));
    assert_non_null(strstr(err, "security is not a list"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_v3),
        cmocka_unit_test(test_read_v2),
        cmocka_unit_test(test_broken),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_security),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
