/* rules_ident: the `identities:` of a rules file: who a contractor is, the
 * credentials that are theirs, and the policy they work under (schedule in
 * their own time zone, access window, source networks, scope and deny,
 * limits). The one thing to know: the time zone is read before anything
 * else of the identity, because dates in `access` mean midnight in it. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

static const char *const identity_keys[] = {
    "id",     "name",    "kind",  "description", "credentials", "timezone", "schedule",
    "access", "sources", "scope", "deny",        "limits",      "max_scopes", "session", NULL};

static const struct kw_tz *tz_get(struct rl_ctx *c, struct fy_node *v)
{
    const char *name = rl_scalar(c, v, "timezone");
    if (!name) return NULL;
    for (size_t i = 0; i < c->m->n_tzs; i++)
        if (!strcmp(kw_tz_name(c->m->tzs[i]), name)) return c->m->tzs[i];
    char err[RV_ERRLEN];
    struct kw_tz *tz;
    enum kw_err e = kw_tz_load(name, &tz, err, RV_ERRLEN);
    if (e != KW_E_OK) {
        rl_err(c, v, "use an IANA name from the tz database, like Europe/Berlin or Asia/Kolkata",
               "%s", err);
        return NULL;
    }
    struct kw_tz **tzs = realloc(c->m->tzs, (c->m->n_tzs + 1) * sizeof *tzs);
    if (!tzs) {
        kw_tz_free(tz);
        return NULL;
    }
    c->m->tzs = tzs;
    tzs[c->m->n_tzs++] = tz;
    return tz;
}

static void claim(struct rl_ctx *c, struct fy_node *n, const char *key, size_t idx)
{
    size_t prev = rules_index_put(c->m->index, key, idx);
    if (prev == RULES_NO_ID || prev == RULES_NOMEM_ID) return;
    const struct rules_identity *o = &c->m->identities[prev];
    if (prev == idx)
        rl_err(c, n, "remove one of the two entries", "credential listed twice for \"%s\"", o->id);
    else
        rl_err(c, n, "a credential belongs to one identity; remove it from one of them",
               "credential already claimed by identity \"%s\" (%s:%d)", o->id, o->loc.file,
               o->loc.line);
}

static void cred_sha256(struct rl_ctx *c, struct fy_node *v, size_t idx)
{
    const char *s = rl_scalar(c, v, "sha256");
    if (!s) return;
    const char *h = !strncasecmp(s, "sha256:", 7) ? s + 7 : s;
    char key[80] = "f:";
    size_t n = strlen(h);
    bool ok = n == 64;
    for (size_t i = 0; ok && i < 64; i++) {
        ok = isxdigit((unsigned char)h[i]) != 0;
        key[2 + i] = (char)tolower((unsigned char)h[i]);
    }
    if (!ok) {
        rl_err(c, v, "write the 64 hex digits printed by `keywarden fingerprint`",
               "bad sha256 fingerprint (%zu characters, want 64 hex digits)", n);
        return;
    }
    key[66] = 0;
    claim(c, v, key, idx);
}

static void cred_jwt(struct rl_ctx *c, struct fy_node *v, size_t idx)
{
    if (!rl_is_map(c, v, "jwt")) return;
    const char *iss = NULL, *sub = NULL, *cid = NULL;
    static const char *const known[] = {"iss", "sub", "client_id", NULL};
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(v, &it))) {
        struct fy_node *k = fy_node_pair_key(p);
        const char *ks = rl_scalar(c, k, "jwt key");
        if (!ks) continue;
        const char **dst = !strcmp(ks, "iss")         ? &iss
                           : !strcmp(ks, "sub")       ? &sub
                           : !strcmp(ks, "client_id") ? &cid
                                                      : NULL;
        if (!dst)
            rl_unknown_key(c, k, "jwt", known);
        else
            *dst = rl_scalar(c, fy_node_pair_value(p), ks);
    }
    char key[1024];
    if (cid && !iss && !sub) {
        rules_cred_key(RULES_CM_CLIENT_ID, cid, NULL, key, sizeof key);
        claim(c, v, key, idx);
    } else if (iss && sub && !cid) {
        rules_cred_key(RULES_CM_JWT, iss, sub, key, sizeof key);
        claim(c, v, key, idx);
    } else {
        rl_err(c, v, "write { iss: ..., sub: ... } (both must match) or { client_id: ... }",
               "a jwt credential needs iss and sub, or client_id alone");
    }
}

/* client_cert: { sha256: HEX } or { subject: "O=Acme, CN=acme-etl" }: a TLS
 * client certificate by the SHA-256 of its DER or its subject as the `tls`
 * record prints it. */
static void cred_client_cert(struct rl_ctx *c, struct fy_node *v, size_t idx)
{
    static const char *const known[] = {"sha256", "subject", NULL};
    const char *hint = "write { client_cert: { sha256: <64 hex> } } or { client_cert: { subject: "
                       "\"O=Acme, CN=acme-etl\" } }, as the tls record's client_cert shows";
    if (!rl_is_map(c, v, "client_cert")) return;
    if (fy_node_mapping_item_count(v) != 1) {
        rl_err(c, v, hint, "client_cert needs exactly one of sha256 or subject");
        return;
    }
    struct fy_node_pair *p = fy_node_mapping_get_by_index(v, 0);
    struct fy_node *k = fy_node_pair_key(p), *x = fy_node_pair_value(p);
    const char *ks = rl_scalar(c, k, "client_cert key");
    const char *val = ks ? rl_scalar(c, x, ks) : NULL;
    if (!ks || !val) return;
    char key[600];
    if (!strcmp(ks, "sha256")) {
        const char *h = !strncasecmp(val, "sha256:", 7) ? val + 7 : val;
        char low[65];
        size_t n = strlen(h);
        bool ok = n == 64;
        for (size_t i = 0; ok && i < 64; i++) {
            ok = isxdigit((unsigned char)h[i]) != 0;
            low[i] = (char)tolower((unsigned char)h[i]);
        }
        if (!ok) {
            rl_err(c, x, "the SHA-256 of the certificate's DER: openssl x509 -in C.pem -outform der "
                         "| sha256sum", "bad client_cert sha256 (%zu characters, want 64 hex digits)", n);
            return;
        }
        low[64] = 0;
        rules_cred_key(RULES_CM_CERT_SHA256, low, NULL, key, sizeof key);
    } else if (!strcmp(ks, "subject")) {
        if (!*val) {
            rl_err(c, x, hint, "empty client_cert subject");
            return;
        }
        rules_cred_key(RULES_CM_CERT_SUBJECT, val, NULL, key, sizeof key);
    } else {
        rl_unknown_key(c, k, "client_cert", known);
        return;
    }
    claim(c, v, key, idx);
}

static void credentials(struct rl_ctx *c, struct fy_node *n, size_t idx)
{
    static const char *const known[] = {"sha256", "basic_user", "jwt", "client_cert", NULL};
    if (!rl_is_seq(c, n, "credentials")) return;
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(n, &it))) {
        if (!rl_is_map(c, item, "a credential")) continue;
        if (fy_node_mapping_item_count(item) != 1) {
            rl_err(c, item, "write { sha256: ... }, { basic_user: ... } or { jwt: {...} }",
                   "a credential must have exactly one key");
            continue;
        }
        struct fy_node_pair *p = fy_node_mapping_get_by_index(item, 0);
        struct fy_node *k = fy_node_pair_key(p), *v = fy_node_pair_value(p);
        const char *ks = rl_scalar(c, k, "credential key");
        if (!ks) continue;
        if (!strcmp(ks, "sha256")) {
            cred_sha256(c, v, idx);
        } else if (!strcmp(ks, "basic_user")) {
            const char *u = rl_scalar(c, v, "basic_user");
            char key[300];
            if (u && !*u)
                rl_err(c, v, NULL, "empty basic_user");
            else if (u) {
                rules_cred_key(RULES_CM_BASIC_USER, u, NULL, key, sizeof key);
                claim(c, v, key, idx);
            }
        } else if (!strcmp(ks, "jwt")) {
            cred_jwt(c, v, idx);
        } else if (!strcmp(ks, "client_cert")) {
            cred_client_cert(c, v, idx);
        } else {
            rl_unknown_key(c, k, "a credential", known);
        }
    }
}

static void days_value(struct rl_ctx *c, struct fy_node *v, uint8_t *mask)
{
    char err[RV_ERRLEN];
    const char *hint;
    uint8_t m;
    *mask = 0;
    if (v && fy_node_get_type(v) == FYNT_SEQUENCE) {
        void *it = NULL;
        struct fy_node *item;
        while ((item = fy_node_sequence_iterate(v, &it))) {
            const char *s = rl_scalar(c, item, "schedule.days");
            if (s && !rv_days(s, &m, err, &hint))
                rl_err(c, item, hint, "%s", err);
            else if (s)
                *mask |= m;
        }
        return;
    }
    const char *s = rl_scalar(c, v, "schedule.days");
    if (s && !rv_days(s, mask, err, &hint)) rl_err(c, v, hint, "%s", err);
}

static bool schedule_pair(struct rl_ctx *c, const char *ks, struct fy_node *pk, struct fy_node *v,
                          void *arg)
{
    struct rules_schedule *s = arg;
    char err[RV_ERRLEN];
    const char *hint;
    if (!strcmp(ks, "days")) {
        days_value(c, v, &s->days);
    } else if (!strcmp(ks, "hours")) {
        const char *h = rl_scalar(c, v, "schedule.hours");
        if (h && !rv_hours(h, &s->start_min, &s->end_min, err, &hint))
            rl_err(c, v, hint, "%s", err);
    } else if (!strcmp(ks, "grace")) {
        const char *g = rl_scalar(c, v, "schedule.grace");
        if (g) s->grace_set = true;
        if (g && !rv_duration(g, &s->grace_s, err, &hint))
            rl_err(c, v, hint, "schedule.grace: %s", err);
        else if (g && s->grace_s > 12 * 3600)
            rl_err(c, v, "use at most 12h", "schedule.grace \"%s\" is too long", g);
    } else {
        return false;
    }
    return true;
}

static void schedule(struct rl_ctx *c, struct fy_node *k, struct fy_node *n,
                     struct rules_schedule *s)
{
    static const char *const known[] = {"days", "hours", "grace", NULL};
    s->set = true;
    s->days = 0x7f;
    s->start_min = 0;
    s->end_min = 1440;
    s->loc = rl_loc(c, k);
    rl_walk_map(c, n, "schedule", known, schedule_pair, s);
}

static void access_when(struct rl_ctx *c, struct fy_node *v, const struct kw_tz *tz, bool until,
                        int64_t *out)
{
    const char *s = rl_scalar(c, v, until ? "access.until" : "access.from"), *hint;
    char err[RV_ERRLEN];
    bool is_date;
    int64_t days, ts;
    if (!s) return;
    if (!rv_when(s, &is_date, &days, &ts, err, &hint)) {
        rl_err(c, v, hint, "%s", err);
        return;
    }
    /* A date is local midnight; `until` a date includes that whole day. */
    *out = is_date ? kw_tz_local_to_utc(tz, (days + (until ? 1 : 0)) * 86400) : ts;
}

static void access_map(struct rl_ctx *c, struct fy_node *k, struct fy_node *n,
                       const struct kw_tz *tz, struct rules_access *a)
{
    static const char *const known[] = {"from", "until", NULL};
    a->loc = rl_loc(c, k);
    if (!rl_is_map(c, n, "access")) return;
    void *it = NULL;
    struct fy_node_pair *p;
    struct fy_node *until_node = NULL;
    while ((p = fy_node_mapping_iterate(n, &it))) {
        struct fy_node *pk = fy_node_pair_key(p), *v = fy_node_pair_value(p);
        const char *ks = rl_scalar(c, pk, "access key");
        if (ks && !strcmp(ks, "from")) {
            a->from_s = INT64_MIN;
            access_when(c, v, tz, false, &a->from_s);
            a->has_from = a->from_s != INT64_MIN;
        } else if (ks && !strcmp(ks, "until")) {
            a->until_s = INT64_MIN;
            access_when(c, v, tz, true, &a->until_s);
            a->has_until = a->until_s != INT64_MIN;
            until_node = v;
        } else if (ks) {
            rl_unknown_key(c, pk, "access", known);
        }
    }
    if (a->has_from && a->has_until && a->until_s <= a->from_s)
        rl_err(c, until_node, "until must be after from", "empty access window");
}

static void sources(struct rl_ctx *c, struct fy_node *n, struct rules_identity *id)
{
    bool one = n && fy_node_get_type(n) == FYNT_SCALAR;
    if (!one && !rl_is_seq(c, n, "sources")) return;
    size_t cnt = one ? 1 : (size_t)fy_node_sequence_item_count(n);
    id->sources = calloc(cnt ? cnt : 1, sizeof *id->sources);
    if (!id->sources) return;
    void *it = NULL;
    struct fy_node *item;
    while ((item = one ? (it ? NULL : n) : fy_node_sequence_iterate(n, &it))) {
        if (one) it = n;
        const char *s = rl_scalar(c, item, "a source"), *hint;
        char err[RV_ERRLEN];
        bool hb;
        struct rules_cidr cidr;
        if (!s) continue;
        if (!rv_cidr(s, &cidr, &hb, err, &hint)) {
            rl_err(c, item, hint, "%s", err);
            continue;
        }
        if (hb)
            rl_warn(c, item, "write the network address, or drop the prefix for one host",
                    "\"%s\" has host bits set past the prefix; it means the whole network", s);
        id->sources[id->n_sources++] = cidr;
    }
}

static void patterns(struct rl_ctx *c, struct fy_node *n, const char *list, const char *what,
                     struct rules_pattern **out, size_t *nout, struct fy_node ***nodes)
{
    if (!rl_is_seq(c, n, list)) return;
    size_t cnt = (size_t)fy_node_sequence_item_count(n);
    *out = calloc(cnt ? cnt : 1, sizeof **out);
    if (nodes) *nodes = calloc(cnt ? cnt : 1, sizeof **nodes);
    if (!*out || (nodes && !*nodes)) return;
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(n, &it))) {
        const char *s = rl_scalar(c, item, what), *hint;
        char err[RV_ERRLEN];
        if (!s) continue;
        struct rules_pattern *p = &(*out)[*nout];
        if (!rules_pattern_parse(s, p, err, &hint)) {
            rl_err(c, item, hint, "%s", err);
            continue;
        }
        p->loc = rl_loc(c, item);
        if (nodes) (*nodes)[*nout] = item;
        (*nout)++;
    }
}

static bool limits_pair(struct rl_ctx *c, const char *ks, struct fy_node *pk, struct fy_node *v,
                        void *arg)
{
    struct rules_limits *l = arg;
    char err[RV_ERRLEN];
    const char *hint, *s;
    if (!strcmp(ks, "requests_per_hour")) {
        s = rl_scalar(c, v, "limits.requests_per_hour");
        if (s && !rv_uint(s, UINT32_MAX, &l->requests_per_hour, err, &hint))
            rl_err(c, v, hint, "limits.requests_per_hour: %s", err);
    } else if (!strcmp(ks, "response_bytes_per_hour")) {
        s = rl_scalar(c, v, "limits.response_bytes_per_hour");
        if (s && !rv_size(s, &l->response_bytes_per_hour, err, &hint))
            rl_err(c, v, hint, "limits.response_bytes_per_hour: %s", err);
    } else {
        return false;
    }
    return true;
}

static void limits(struct rl_ctx *c, struct fy_node *k, struct fy_node *n, struct rules_limits *l)
{
    static const char *const known[] = {"requests_per_hour", "response_bytes_per_hour", NULL};
    l->loc = rl_loc(c, k);
    rl_walk_map(c, n, "limits", known, limits_pair, l);
}

static bool id_ok(const char *s)
{
    if (!*s || strlen(s) >= 64) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._-@", *s)) return false;
    return true;
}

static void identity_pair(struct rl_ctx *c, struct rules_identity *id, size_t idx,
                          struct fy_node *k, struct fy_node *v, const char *ks,
                          struct fy_node ***scope_nodes, struct fy_node ***deny_nodes)
{
    if (!strcmp(ks, "id") || !strcmp(ks, "timezone")) {
        /* read first, in identity() */
    } else if (!strcmp(ks, "name")) {
        const char *s = rl_scalar(c, v, "name");
        if (s) {
            free(id->name);
            id->name = strdup(s);
        }
    } else if (!strcmp(ks, "kind")) {
        const char *s = rl_scalar(c, v, "kind");
        if (s && strcmp(s, "contractor") && strcmp(s, "employee") && strcmp(s, "service"))
            rl_err(c, v, "use contractor, employee or service", "unknown identity kind \"%s\"", s);
        else if (s)
            snprintf(id->kind, sizeof id->kind, "%s", s);
    } else if (!strcmp(ks, "description")) {
        (void)rl_scalar(c, v, "description");
    } else if (!strcmp(ks, "credentials")) {
        credentials(c, v, idx);
    } else if (!strcmp(ks, "schedule")) {
        schedule(c, k, v, &id->schedule);
    } else if (!strcmp(ks, "access")) {
        access_map(c, k, v, id->tz, &id->access);
    } else if (!strcmp(ks, "sources")) {
        id->sources_loc = rl_loc(c, k);
        sources(c, v, id);
    } else if (!strcmp(ks, "scope")) {
        id->scope_loc = rl_loc(c, k);
        patterns(c, v, "scope", "a scope pattern", &id->scope, &id->n_scope, scope_nodes);
    } else if (!strcmp(ks, "deny")) {
        id->deny_loc = rl_loc(c, k);
        patterns(c, v, "deny", "a deny pattern", &id->deny, &id->n_deny, deny_nodes);
    } else if (!strcmp(ks, "limits")) {
        limits(c, k, v, &id->limits);
    } else if (!strcmp(ks, "max_scopes")) {
        rl_max_scopes(c, k, v, id);
    } else if (!strcmp(ks, "session")) {
        rl_session(c, k, v, id);
    } else {
        rl_unknown_key(c, k, "an identity", identity_keys);
    }
}

static struct rules_identity *identity_slot(struct rules_model *m)
{
    if (m->n_identities == m->cap_identities) {
        size_t cap = m->cap_identities ? m->cap_identities * 2 : 16;
        struct rules_identity *a = realloc(m->identities, cap * sizeof *a);
        if (!a) return NULL;
        m->identities = a;
        m->cap_identities = cap;
    }
    struct rules_identity *id = &m->identities[m->n_identities];
    memset(id, 0, sizeof *id);
    id->index = m->n_identities++;
    return id;
}

static void identity(struct rl_ctx *c, struct fy_node *n)
{
    if (!rl_is_map(c, n, "an identity")) return;
    struct rules_identity *id = identity_slot(c->m);
    if (!id) return;
    size_t idx = id->index;
    id->loc = rl_loc(c, n);
    snprintf(id->kind, sizeof id->kind, "contractor");
    id->tz = c->m->tzs[0]; /* UTC */
    struct fy_node *idn = fy_node_mapping_lookup_by_string(n, "id", 2);
    const char *s = idn ? rl_scalar(c, idn, "id") : NULL;
    if (!idn)
        rl_err(c, n, "add id: <short unique name>", "identity without an id");
    else if (s && !id_ok(s))
        rl_err(c, idn, "use letters, digits, . _ - @ (at most 63)", "bad identity id \"%s\"", s);
    id->id = strdup(s && id_ok(s) ? s : "?");
    if (s && id_ok(s)) {
        char key[80];
        snprintf(key, sizeof key, "i:%s", s);
        size_t prev = rules_index_put(c->m->index, key, idx);
        if (prev != RULES_NO_ID && prev != RULES_NOMEM_ID)
            rl_err(c, idn, "identity ids must be unique across all rules files",
                   "duplicate identity id \"%s\" (first at %s:%d)", s,
                   c->m->identities[prev].loc.file, c->m->identities[prev].loc.line);
    }
    struct fy_node *tzn = fy_node_mapping_lookup_by_string(n, "timezone", 8);
    if (tzn) {
        const struct kw_tz *tz = tz_get(c, tzn);
        if (tz) id->tz = tz;
    }
    struct fy_node **scope_nodes = NULL, **deny_nodes = NULL;
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(n, &it))) {
        struct fy_node *k = fy_node_pair_key(p);
        const char *ks = rl_scalar(c, k, "identity key");
        if (ks) /* c->m->identities may move: re-fetch by index */
            identity_pair(c, &c->m->identities[idx], idx, k, fy_node_pair_value(p), ks,
                          &scope_nodes, &deny_nodes);
    }
    id = &c->m->identities[idx];
    if (!id->name) id->name = strdup(id->id);
    rl_scope_lint(c, id, scope_nodes, deny_nodes);
    free(scope_nodes);
    free(deny_nodes);
}

void rl_rules_root(struct rl_ctx *c, struct fy_node *root)
{
    static const char *const known[] = {"identities", "detections", "scopes", NULL};
    if (!root) return;
    if (!rl_is_map(c, root, "a rules file")) return;
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(root, &it))) {
        struct fy_node *k = fy_node_pair_key(p), *v = fy_node_pair_value(p);
        const char *ks = rl_scalar(c, k, "key");
        if (!ks) continue;
        if (!strcmp(ks, "identities")) {
            if (!rl_is_seq(c, v, "identities")) continue;
            void *it2 = NULL;
            struct fy_node *item;
            while ((item = fy_node_sequence_iterate(v, &it2)))
                identity(c, item);
        } else if (!strcmp(ks, "detections")) {
            rl_detections(c, v);
        } else if (!strcmp(ks, "scopes")) {
            rl_scopes(c, v);
        } else {
            rl_unknown_key(c, k, "a rules file", known);
        }
    }
}

void rl_identity_free(struct rules_identity *id)
{
    free(id->id);
    free(id->name);
    free(id->sources);
    for (size_t i = 0; i < id->n_scope; i++)
        rules_pattern_free(&id->scope[i]);
    for (size_t i = 0; i < id->n_deny; i++)
        rules_pattern_free(&id->deny[i]);
    free(id->scope);
    free(id->deny);
    rl_identity_oauth_free(id);
}
