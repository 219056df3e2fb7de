/* rules_int: what the files of rules/ share and nobody else sees: the value
 * parsers (durations, sizes, CIDRs, weekdays, hours, dates), the loader
 * context that turns a YAML node into a positioned diagnostic, and the
 * pieces of the model built by each file. The public contract is rules.h. */
#ifndef KW_RULES_INT_H
#define KW_RULES_INT_H

#include <libfyaml.h>

#include "rules.h"

#define RV_ERRLEN 256

/* Value parsers: true on success; on failure `err` says what is wrong and
 * `*hint` (static) how to write it. */
bool rv_duration(const char *s, int64_t *sec, char *err, const char **hint);
bool rv_size(const char *s, uint64_t *bytes, char *err, const char **hint);
bool rv_uint(const char *s, uint64_t max, uint64_t *v, char *err, const char **hint);
/* *host_bits: the address has bits set past the prefix (a warning). */
bool rv_cidr(const char *s, struct rules_cidr *c, bool *host_bits, char *err, const char **hint);
bool rv_days(const char *s, uint8_t *mask, char *err, const char **hint);
bool rv_hours(const char *s, uint16_t *start, uint16_t *end, char *err, const char **hint);
/* A date "2026-06-30" (*is_date, *days = days since epoch) or an RFC 3339
 * timestamp (*utc_s). */
bool rv_when(const char *s, bool *is_date, int64_t *days, int64_t *utc_s, char *err,
             const char **hint);

/* Diagnostics (rules_diag.c). */
void rules_diag_add(struct rules_diag *d, enum rules_diag_level lv, const char *file, int line,
                    int col, const char *text, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* Loader context: one per file being read. */
struct rl_ctx {
    struct rules_model *m;
    struct rules_diag *diag;
    const char *file; /* interned in m->files */
    const char *text;
    size_t len;
    bool is_rules_file; /* a rules file (identities:, detections:) */
    bool detections_seen;
    bool literal_secret; /* a secret written in this file, not env:NAME */
};

/* Position of a node: its own token for scalars, its first scalar inside
 * for collections (libfyaml 0.7 has no public start mark for those). */
void rl_pos(struct fy_node *n, int *line, int *col);
void rl_diag(struct rl_ctx *c, struct fy_node *n, enum rules_diag_level lv, const char *hint,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define rl_err(c, n, hint, ...) rl_diag((c), (n), RULES_DIAG_ERROR, (hint), __VA_ARGS__)
#define rl_warn(c, n, hint, ...) rl_diag((c), (n), RULES_DIAG_WARNING, (hint), __VA_ARGS__)
struct rules_loc rl_loc(struct rl_ctx *c, struct fy_node *n);

/* Scalar text (NUL-terminated, owned by the document) or NULL with an
 * error reported ("expected a string"). */
const char *rl_scalar(struct rl_ctx *c, struct fy_node *n, const char *what);
bool rl_is_map(struct rl_ctx *c, struct fy_node *n, const char *what);
bool rl_is_seq(struct rl_ctx *c, struct fy_node *n, const char *what);
/* Reports an unknown key with a did-you-mean among `known` (NULL-ended). */
/* Iterates a mapping, calling fn for each pair (fn returns false for a key
 * it does not know); non-scalar and unknown keys are reported. One walker
 * for the config sections and the identity fields alike. */
typedef bool (*rl_pair_fn)(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                           void *arg);
void rl_walk_map(struct rl_ctx *c, struct fy_node *n, const char *what, const char *const *known,
                 rl_pair_fn fn, void *arg);
void rl_unknown_key(struct rl_ctx *c, struct fy_node *key, const char *where,
                    const char *const *known);
char *rl_strdup(const char *s);

/* Sections (rules_config.c, rules_ident.c). */
void rl_config_defaults(struct rules_model *m);
void rl_config_root(struct rl_ctx *c, struct fy_node *root, const char *config_dir);
void rl_detections(struct rl_ctx *c, struct fy_node *n);
void rl_rules_root(struct rl_ctx *c, struct fy_node *root);
void rl_config_free(struct rules_config *cfg);
/* `services:` (rules_services.c). */
void rl_services(struct rl_ctx *c, struct fy_node *n, const char *config_dir);
void rl_services_free(struct rules_config *cfg);
/* `fleet:` (rules_fleet.c). */
void rl_fleet(struct rl_ctx *c, struct fy_node *n, const char *config_dir);
void rl_fleet_defaults(struct rules_config *cfg);
void rl_fleet_free(struct rules_config *cfg);
/* `limits:` (rules_limits.c). */
void rl_limits(struct rl_ctx *c, struct fy_node *k, struct fy_node *n);
/* Typed values of the config (rules_config.c), for the sections in their
 * own files. */
void rl_set_str(struct rl_ctx *c, struct fy_node *v, const char *what, char **dst);
void rl_set_secret(struct rl_ctx *c, struct fy_node *v, const char *what, char **dst);
void rl_identity_free(struct rules_identity *id);

/* OAuth (rules_oauth.c): `scopes:` of a rules file, an identity's
 * `max_scopes:` and `session:`. */
void rl_scopes(struct rl_ctx *c, struct fy_node *n);
void rl_scopes_free(struct rules_model *m);
void rl_max_scopes(struct rl_ctx *c, struct fy_node *k, struct fy_node *v,
                   struct rules_identity *id);
void rl_session(struct rl_ctx *c, struct fy_node *k, struct fy_node *v, struct rules_identity *id);
void rl_identity_oauth_free(struct rules_identity *id);

/* Scope patterns (rules_scope.c). */
bool rules_pattern_parse(const char *s, struct rules_pattern *p, char *err, const char **hint);
void rules_pattern_free(struct rules_pattern *p);
/* Warnings for patterns that can never match or are shadowed by a deny. */
void rl_scope_lint(struct rl_ctx *c, struct rules_identity *id, struct fy_node **scope_nodes,
                   struct fy_node **deny_nodes);
/* True when every request matched by p is also matched by d. */
bool rules_pattern_covers(const struct rules_pattern *d, const struct rules_pattern *p);

/* Attribution index (rules_attr.c): string key -> identity index, open
 * addressing, grows while loading and is read-only afterwards. */
struct rules_index *rules_index_new(size_t cap);
void rules_index_free(struct rules_index *ix);
/* Adds key -> identity index; returns the index that already holds the key,
 * RULES_NO_ID when it was free, RULES_NOMEM_ID when out of memory. */
#define RULES_NO_ID ((size_t)-1)
#define RULES_NOMEM_ID ((size_t)-2)
size_t rules_index_put(struct rules_index *ix, const char *key, size_t id);
size_t rules_index_get(const struct rules_index *ix, const char *key);
/* Canonical index key of a credential entry: "f:<hex>", "b:<user>", ... */
void rules_cred_key(enum rules_cred_match kind, const char *a, const char *b, char *out,
                    size_t len);

#endif
