/* rules_oauth: what OAuth tokens must carry (issue 17). The `scopes:` map of
 * a rules file (endpoint pattern -> required grants), an identity's
 * `max_scopes:` cap and `session: { max_age }`, and the queries the judge
 * asks of them.
 *
 * The one thing to know: a requirement is a list of alternatives, each a
 * set of grants that must ALL be held, as OpenAPI's `security` is (a list
 * of requirement objects, any one of which suffices, each listing scopes
 * that are all needed). In YAML:
 *   "POST /v1/refunds": refunds:write                  one grant
 *   "POST /v1/refunds": [refunds:write, payments]      all of them
 *   "GET /v1/orders/{id}": { any_of: [orders:read, [orders:admin, audit]] }
 * Every `scopes:` entry whose pattern matches the request applies; a
 * token must meet each of them. Grants are compared exactly
 * (case-sensitive, RFC 6749 §3.3); in `max_scopes` a trailing `*` allows
 * every grant with that prefix. */
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

/* RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E. */
static bool scope_token_ok(const char *s)
{
    if (!*s || strlen(s) >= 256) return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x21 || ch > 0x7e || ch == '"' || ch == '\\') return false;
    }
    return true;
}

static const char *grant_scalar(struct rl_ctx *c, struct fy_node *n)
{
    const char *s = rl_scalar(c, n, "a scope");
    if (s && !scope_token_ok(s)) {
        rl_err(c, n, "a scope is one word of printable ASCII without quotes or backslashes",
               "\"%s\" is not an OAuth scope", s);
        return NULL;
    }
    return s;
}

/* "a b c" from a scalar or a sequence of scalars; NULL on error. */
static char *grant_set(struct rl_ctx *c, struct fy_node *n)
{
    if (n && fy_node_get_type(n) == FYNT_SCALAR) {
        const char *s = grant_scalar(c, n);
        return s ? rl_strdup(s) : NULL;
    }
    if (!rl_is_seq(c, n, "a list of scopes")) return NULL;
    size_t len = 0;
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(n, &it))) {
        const char *s = grant_scalar(c, item);
        if (!s) return NULL;
        len += strlen(s) + 1;
    }
    if (!len) {
        rl_err(c, n, "list at least one scope", "an empty list of scopes requires nothing");
        return NULL;
    }
    char *out = malloc(len), *w = out;
    if (!out) return NULL;
    it = NULL;
    while ((item = fy_node_sequence_iterate(n, &it))) {
        const char *s = fy_node_get_scalar0(item);
        if (w != out) *w++ = ' ';
        size_t l = strlen(s);
        memcpy(w, s, l);
        w += l;
    }
    *w = 0;
    return out;
}

static void req_add_alt(struct rules_scope_req *r, char *set)
{
    char **a = realloc(r->alts, (r->n_alts + 1) * sizeof *a);
    if (!a) {
        free(set);
        return;
    }
    r->alts = a;
    r->alts[r->n_alts++] = set;
}

static void any_of(struct rl_ctx *c, struct fy_node *n, struct rules_scope_req *r)
{
    static const char *const known[] = {"any_of", NULL};
    if (!rl_is_map(c, n, "a scope requirement")) return;
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(n, &it))) {
        struct fy_node *k = fy_node_pair_key(p), *v = fy_node_pair_value(p);
        const char *ks = rl_scalar(c, k, "key");
        if (!ks) continue;
        if (strcmp(ks, "any_of")) {
            rl_unknown_key(c, k, "a scope requirement", known);
            continue;
        }
        if (!rl_is_seq(c, v, "any_of")) continue;
        void *it2 = NULL;
        struct fy_node *alt;
        while ((alt = fy_node_sequence_iterate(v, &it2))) {
            char *set = grant_set(c, alt);
            if (set) req_add_alt(r, set);
        }
    }
}

static void req_free(struct rules_scope_req *r)
{
    rules_pattern_free(&r->pattern);
    for (size_t i = 0; i < r->n_alts; i++)
        free(r->alts[i]);
    free(r->alts);
}

void rl_scopes(struct rl_ctx *c, struct fy_node *n)
{
    if (!rl_is_map(c, n, "scopes")) return;
    struct rules_model *m = c->m;
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(n, &it))) {
        struct fy_node *k = fy_node_pair_key(p), *v = fy_node_pair_value(p);
        const char *ks = rl_scalar(c, k, "an endpoint pattern"), *hint;
        if (!ks) continue;
        struct rules_scope_req r = {0};
        char err[RV_ERRLEN];
        if (!rules_pattern_parse(ks, &r.pattern, err, &hint)) {
            rl_err(c, k, hint, "%s", err);
            continue;
        }
        r.pattern.loc = r.loc = rl_loc(c, k);
        if (v && fy_node_get_type(v) == FYNT_MAPPING) {
            any_of(c, v, &r);
        } else {
            char *set = grant_set(c, v);
            if (set) req_add_alt(&r, set);
        }
        if (!r.n_alts) {
            req_free(&r);
            continue;
        }
        struct rules_scope_req *a =
            realloc(m->scope_reqs, (m->n_scope_reqs + 1) * sizeof *m->scope_reqs);
        if (!a) {
            req_free(&r);
            continue;
        }
        m->scope_reqs = a;
        m->scope_reqs[m->n_scope_reqs++] = r;
    }
}

void rl_scopes_free(struct rules_model *m)
{
    for (size_t i = 0; i < m->n_scope_reqs; i++)
        req_free(&m->scope_reqs[i]);
    free(m->scope_reqs);
    m->scope_reqs = NULL;
    m->n_scope_reqs = 0;
}

void rl_max_scopes(struct rl_ctx *c, struct fy_node *k, struct fy_node *v,
                   struct rules_identity *id)
{
    id->max_scopes_loc = rl_loc(c, k);
    bool one = v && fy_node_get_type(v) == FYNT_SCALAR;
    if (!one && !rl_is_seq(c, v, "max_scopes")) return;
    size_t cnt = one ? 1 : (size_t)fy_node_sequence_item_count(v);
    free(id->max_scopes);
    id->max_scopes = calloc(cnt ? cnt : 1, sizeof *id->max_scopes);
    id->n_max_scopes = 0;
    id->has_max_scopes = true; /* an empty list caps at nothing */
    if (!id->max_scopes) return;
    void *it = NULL;
    struct fy_node *item;
    while ((item = one ? (it ? NULL : v) : fy_node_sequence_iterate(v, &it))) {
        if (one) it = v;
        const char *s = grant_scalar(c, item);
        if (s) id->max_scopes[id->n_max_scopes++] = rl_strdup(s);
    }
}

static bool session_pair(struct rl_ctx *c, const char *ks, struct fy_node *k, struct fy_node *v,
                         void *arg)
{
    (void)k;
    struct rules_identity *id = arg;
    if (strcmp(ks, "max_age")) return false;
    const char *s = rl_scalar(c, v, "session.max_age"), *hint;
    char err[RV_ERRLEN];
    if (s && !rv_duration(s, &id->session_max_age_s, err, &hint))
        rl_err(c, v, hint, "session.max_age: %s", err);
    else if (s && id->session_max_age_s <= 0)
        rl_err(c, v, "write a duration such as 8h", "session.max_age must be positive");
    return true;
}

void rl_session(struct rl_ctx *c, struct fy_node *k, struct fy_node *v, struct rules_identity *id)
{
    static const char *const known[] = {"max_age", NULL};
    id->session_loc = rl_loc(c, k);
    rl_walk_map(c, v, "session", known, session_pair, id);
}

void rl_identity_oauth_free(struct rules_identity *id)
{
    for (size_t i = 0; i < id->n_max_scopes; i++)
        free(id->max_scopes[i]);
    free(id->max_scopes);
}

/* ---- queries -------------------------------------------------------------- */

bool rules_grants_have(const char *grants, const char *g, size_t glen)
{
    for (const char *p = grants; *p;) {
        size_t l = strcspn(p, " ");
        if (l == glen && !memcmp(p, g, glen)) return true;
        p += l;
        while (*p == ' ')
            p++;
    }
    return false;
}

/* Every grant of `set` (space-separated) is in `grants`. */
static bool set_met(const char *set, const char *grants)
{
    for (const char *p = set; *p;) {
        size_t l = strcspn(p, " ");
        if (!rules_grants_have(grants, p, l)) return false;
        p += l;
        while (*p == ' ')
            p++;
    }
    return true;
}

bool rules_scope_req_met(const struct rules_scope_req *r, const char *grants)
{
    for (size_t a = 0; a < r->n_alts; a++)
        if (set_met(r->alts[a], grants)) return true;
    return false;
}

const struct rules_scope_req *rules_scopes_unmet(const struct rules_model *m, const char *method,
                                                 const char *host, const char *path,
                                                 const char *grants, size_t *applied)
{
    const struct rules_scope_req *unmet = NULL;
    size_t n = 0;
    for (size_t i = 0; i < m->n_scope_reqs; i++) {
        const struct rules_scope_req *r = &m->scope_reqs[i];
        if (!rules_pattern_match(&r->pattern, method, host, path)) continue;
        n++;
        if (!rules_scope_req_met(r, grants) && !unmet) unmet = r;
    }
    if (applied) *applied = n;
    return unmet;
}

static bool cap_allows(const struct rules_identity *id, const char *g, size_t glen)
{
    for (size_t i = 0; i < id->n_max_scopes; i++) {
        const char *c = id->max_scopes[i];
        size_t cl = strlen(c);
        if (cl && c[cl - 1] == '*') {
            if (glen >= cl - 1 && !memcmp(c, g, cl - 1)) return true;
        } else if (cl == glen && !memcmp(c, g, glen)) {
            return true;
        }
    }
    return false;
}

size_t rules_grants_over_cap(const struct rules_identity *id, const char *grants, char *buf,
                             size_t len)
{
    size_t n = 0, w = 0;
    if (len) buf[0] = 0;
    if (!id->has_max_scopes) return 0;
    for (const char *p = grants; *p;) {
        size_t l = strcspn(p, " ");
        if (l && !cap_allows(id, p, l)) {
            n++;
            if (w + l + 2 <= len) {
                if (w) buf[w++] = ' ';
                memcpy(buf + w, p, l);
                w += l;
                buf[w] = 0;
            }
        }
        p += l;
        while (*p == ' ')
            p++;
    }
    return n;
}
