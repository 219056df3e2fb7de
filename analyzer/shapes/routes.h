/* routes: endpoint templates learned from traffic, one route tree per
 * service (host:port). Each request path walks the tree segment by
 * segment; a segment of a strong id shape (analyzer/path/shape.h) becomes a
 * parameter at first sight, a weak one (word, slug, short code) stays a
 * literal until the traffic shows it is a value: several siblings that
 * share a continuation (/projects/acme-web/builds and
 * /projects/acme-api/builds), or many distinct leaf siblings. The first
 * segment of a path and the children of versions (/v1, /2.0,
 * /2015-03-31) are never merged by evidence.
 *
 * The one thing to know: templates are stable. A parameter never turns
 * back into literals; when literals are proven to be a parameter they are
 * merged into it (their subtrees too) and every endpoint template that
 * changes is reported once through on_merge (old -> new), so whoever keyed
 * state by the old name (baselines) can merge it. Deterministic: the tree
 * depends only on the order of the paths it is given (the judge stage).
 * Not thread-safe: one judge thread owns it. See docs/shapes.md. */
#ifndef KW_ROUTES_H
#define KW_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kw_err.h"
#include "kw_time.h"
#include "shape.h"

struct routes_config {
    uint32_t max_nodes;    /* route nodes over all services; 0: 262144 */
    uint32_t max_services; /* 0: 4096 */
    uint32_t max_depth;    /* segments learned per path; 0: 32 */
    /* Evidence thresholds (docs/shapes.md); 0: default. */
    unsigned shared_min;       /* siblings sharing a continuation: 2 */
    unsigned shared_min_top;   /* ... under a first segment (/users/x): 3 */
    unsigned leaves_min;       /* distinct leaf siblings under a literal: 5 */
    unsigned leaves_min_top;   /* ... under a first segment: 8 */
    unsigned leaves_min_param; /* ... under a parameter (actions): 10 */
    unsigned root_min;         /* first segments continuing alike: 6 */
    unsigned root_late;        /* ... of which first seen after `settle`: 3 */
    unsigned root_leaves_min;  /* first segments that are leaves (S3 buckets): 5 */
    /* Words become values only with time: siblings first seen within
     * `settle` of each other are routes of the API; a sibling first seen
     * later that continues like them is a value. 0: 24 hours. */
    kw_ts settle;
    /* Called for each endpoint template a merge renames (both strings
     * live for the call only). May be NULL. */
    void (*on_merge)(void *user, const char *service, const char *old_tmpl, const char *new_tmpl);
    void *user;
};

struct routes_stats {
    uint64_t learned;   /* paths learned */
    uint64_t looked_up; /* paths only looked up (learn = false) */
    uint64_t nodes;     /* live and merged nodes in use */
    uint64_t services;
    uint64_t merges;      /* literals merged into a parameter */
    uint64_t echoed;      /* ... of them named back by the answer (rule 6) */
    uint64_t renamed;     /* endpoint templates renamed by merges */
    uint64_t limit_nodes; /* paths not (fully) learned: max_nodes reached */
    uint64_t limit_services;
    uint64_t too_deep;     /* paths longer than max_depth segments */
    uint64_t loaded;       /* nodes loaded from the database at start */
    uint64_t load_refused; /* saved models not loaded (gaps, over max_nodes) */
    uint64_t saves, saved_nodes, save_errors;
};

struct routes;
struct dbw;

enum kw_err routes_new(const struct routes_config *c, struct routes **out) KW_WUR;
/* Waits for its saves in flight; does not save. NULL is a no-op. */
void routes_destroy(struct routes *r);

/* ---- persistence (SQLite, module "shapes"; routes_db.c) ---- */

/* Loads the model saved in the database at path into r (new, empty) and
 * saves through writer (NULL: an own one). A saved model that does not
 * hold together is not loaded (counted load_refused, a warning). */
enum kw_err routes_db_open(struct routes *r, const char *path, struct dbw *writer) KW_WUR;
/* Packet time moved: saves the changed nodes every hour of it. */
void routes_advance(struct routes *r, kw_ts now);
/* Saves the changed nodes now and waits; KW_E_DB when it failed. */
enum kw_err routes_save(struct routes *r) KW_WUR;
/* OpenAPI documents imported into the database (`openapi import`): one
 * per service ("host:port" or "host"), its text as given; a new one for a
 * service replaces the old. */
enum kw_err routes_db_put_spec(const char *path, const char *service, const char *source,
                               const char *text, size_t len, kw_ts now) KW_WUR;
/* Calls fn for each imported document (fn returns false to stop); no
 * database: none. */
enum kw_err routes_db_each_spec(const char *path,
                                bool (*fn)(void *user, const char *service, const char *source,
                                           const char *text, size_t len),
                                void *user) KW_WUR;
/* The saved model, read only (export): KW_E_NOTFOUND without database. */
enum kw_err routes_load_ro(const char *path, const struct routes_config *c,
                           struct routes **out) KW_WUR;

/* The endpoint template of normalised path[0..len) on service `service`
 * ("host:port"), written NUL-terminated to out (cut to fit); returns its
 * length. method: the request's (learning only; NULL: unknown). learn: the request was routed by
 * the service (not a 404), so what the path shows enters the model; otherwise the model is only
 * read and what it does not know is classified by shape alone. */
size_t routes_template(struct routes *r, const char *service, const char *method, const char *path,
                       size_t len, bool learn, kw_ts ts, char *out, size_t cap);

/* routes_template with the segments the response named back (bit i:
 * segment i; analyzer/path/echo.h): a literal word among them, under a
 * literal collection, is a value (docs/shapes.md rule 6). */
size_t routes_template_echo(struct routes *r, const char *service, const char *method,
                            const char *path, size_t len, bool learn, uint32_t echo, kw_ts ts,
                            char *out, size_t cap);

/* Replaces the config's on_merge (the pipeline that owns the baselines
 * hooks itself here). */
void routes_set_on_merge(struct routes *r,
                         void (*fn)(void *user, const char *service, const char *old_tmpl,
                                    const char *new_tmpl),
                         void *user);

void routes_get_stats(const struct routes *r, struct routes_stats *out);

/* ---- reading the model (export, persistence, tests) ---- */

struct routes_endpoint {
    const char *service; /* "host:port" */
    const char *tmpl;    /* "/v1/orders/{id}" */
    uint32_t count;      /* requests that ended here */
    kw_ts first, last;
    /* per segment of tmpl that is a parameter, in order: the value shapes
     * seen there (bit 1 << SHAPE_x) */
    unsigned n_params;
    uint16_t param_kinds[16];
};

/* Calls fn for every endpoint (a template some request ended on), services
 * in the order they were first seen, templates depth-first. service NULL:
 * all. Stops when fn returns false. */
void routes_each_endpoint(const struct routes *r, const char *service,
                          bool (*fn)(void *user, const struct routes_endpoint *e), void *user);

#endif
