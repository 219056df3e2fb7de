/* openapi: OpenAPI documents in and out. In: an OpenAPI 2.0 (Swagger) or
 * 3.x document, JSON or YAML, read into its endpoints (method and full path
 * template, base path included, with each path parameter's kind), and a
 * set of such documents matched against requests per service. Out: an
 * OpenAPI 3.1 document of what was observed (cli/cmd_openapi.c writes it
 * from the audit trail and the learned model).
 *
 * The one thing to know: one parser reads both formats (libfyaml: JSON is
 * YAML 1.2), so a broken document is refused with file:line:col whatever
 * its format; $ref is followed inside the document only ("#/..."), with a
 * depth limit, and a reference that goes nowhere is an error like any
 * other. See docs/shapes.md. */
#ifndef KW_OPENAPI_H
#define KW_OPENAPI_H

#include <stdbool.h>
#include <stddef.h>

#include "kw_err.h"

struct oas_param {
    char *name;
    const char *kind; /* "int", "number", "uuid", "date", "email", "string", "bool" */
};

struct oas_endpoint {
    char method[12];
    char *tmpl; /* "/v1/customers/{customerId}", base path included */
    struct oas_param *params;
    unsigned n_params;
    /* The OAuth scopes its `security` (or the document's) requires: any
     * one alternative suffices, each a space-separated set of scopes all
     * needed, as rules files' `scopes:` (docs/oauth.md). None (0) when
     * the operation needs no scope: no security, `security: []`, or an
     * alternative met without one (an API key, an OAuth scheme with []). */
    char **scope_alts;
    unsigned n_scope_alts;
    int scope_line;  /* line of that `security` in the document */
    const char *src; /* the document's name (borrowed from its oas_doc) */
};

struct oas_doc {
    char *name;            /* as given to oas_load_mem (the file's path for oas_load) */
    char *title, *version; /* info.title, info.version ("" when absent) */
    char *host;            /* from host (2.0) or servers[0].url (3.x), lower case; may be "" */
    char *base;            /* base path ("" or "/v1") */
    struct oas_endpoint *ep;
    size_t n;
};

/* Reads path. On failure returns KW_E_CONFIG (or KW_E_IO, KW_E_NOMEM) and
 * writes "path:line:col: error: what; how to fix" to err. */
enum kw_err oas_load(const char *path, struct oas_doc **out, char *err, size_t errlen) KW_WUR;
/* The same from memory (name is used in messages). */
enum kw_err oas_load_mem(const char *name, const char *text, size_t len, struct oas_doc **out,
                         char *err, size_t errlen) KW_WUR;
void oas_free(struct oas_doc *d); /* NULL is a no-op */

/* ---- matching requests against documents, per service ---- */

struct oas_set;

enum kw_err oas_set_new(struct oas_set **out) KW_WUR;
/* Adds d's endpoints for service ("host:port", or "host" for any port);
 * takes d over. */
enum kw_err oas_set_add(struct oas_set *s, const char *service, struct oas_doc *d) KW_WUR;
void oas_set_destroy(struct oas_set *s);
size_t oas_set_count(const struct oas_set *s); /* endpoints over all services */

enum oas_match { OAS_NO_SPEC = 0, OAS_MATCH, OAS_NO_PATH, OAS_NO_METHOD };
/* The documented template of a request: literal segments win over
 * templated ones (OpenAPI 3.1 "Path Templating Matching"). host is the
 * request's host (lower case, no port), port its port. On OAS_MATCH the
 * template (borrowed, lives as long as s) is in *tmpl. */
enum oas_match oas_set_match(const struct oas_set *s, const char *host, unsigned port,
                             const char *method, const char *path, const char **tmpl);
/* The same, and on OAS_MATCH the operation itself in *op (borrowed, lives
 * as long as s; the first document added for the service wins). */
enum oas_match oas_set_lookup(const struct oas_set *s, const char *host, unsigned port,
                              const char *method, const char *path, const char **tmpl,
                              const struct oas_endpoint **op);

#endif
