/* rules_config: the sections of keywarden.yaml (capture, credentials,
 * storage, outputs, alerts, rules, detections; limits in rules_limits.c) and the embedded defaults
 * that let `keywarden run -r x.pcap` work with no config at all. The one
 * thing to know: secrets are written as env:NAME and resolved here, at
 * load; the value is kept in memory only and never printed, and a secret
 * written literally in the file is a warning (it would be at rest). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

/* The alert kinds of INTERFACES.md, for `kinds:` filters. rules/ does not
 * link alerts/, so the names (the contract) are listed here. */
static const char *const alert_kinds[] = {"off_hours",
                                          "outside_access_window",
                                          "source_not_allowed",
                                          "out_of_scope",
                                          "method_not_allowed",
                                          "unknown_credential",
                                          "failed_auth_burst",
                                          "credential_stuffing",
                                          "rate_exceeded",
                                          "enumeration",
                                          "new_endpoint",
                                          "new_source",
                                          "unusual_hour",
                                          "volume_spike",
                                          "key_sharing",
                                          "expired_token_accepted",
                                          "new_client",
                                          "scope_not_granted_accepted",
                                          "scope_not_granted",
                                          "scope_escalation",
                                          "session_too_old",
                                          "dpop_mismatch",
                                          "dpop_replay",
                                          "dpop_stale",
                                          "dpop_missing",
                                          "undocumented_endpoint",
                                          NULL};

void rl_config_defaults(struct rules_model *m)
{
    struct rules_config *c = &m->config;
    c->capture.snaplen = 65535;
    c->capture.buffer_mb = 64;
    c->capture.workers = 0;
    /* No default filter: a "tcp" filter would drop VLAN-tagged and
     * tunnelled packets (BPF matches the outer headers) and the UDP that
     * nDPI reports on. */
    c->capture.bpf = NULL;
    static const struct {
        enum rules_cred_src_kind k;
        const char *name;
    } srcs[] = {{RULES_SRC_HEADER, "Authorization"},
                {RULES_SRC_HEADER, "X-API-Key"},
                {RULES_SRC_HEADER, "Api-Key"},
                {RULES_SRC_QUERY, "api_key"},
                {RULES_SRC_QUERY, "apikey"},
                {RULES_SRC_QUERY, "access_token"}};
    size_t nsrc = sizeof srcs / sizeof srcs[0];
    c->cred_sources = calloc(nsrc, sizeof *c->cred_sources);
    if (c->cred_sources) {
        for (size_t i = 0; i < nsrc; i++) {
            c->cred_sources[i].kind = srcs[i].k;
            c->cred_sources[i].name = strdup(srcs[i].name);
        }
        c->n_cred_sources = nsrc;
    }
    c->storage.database = strdup("./keywarden-state/keywarden.db");
    c->storage.audit_retention_s = 90 * 86400;
    c->storage.alert_retention_s = 90 * 86400;
    c->outputs.eve = strdup("./keywarden-state/eve.json");
    c->alerts.suppress_window_s = 3600;
    c->alerts.drain_timeout_s = 10;

    struct rules_detections *d = &m->detections;
    d->unknown_credential = (struct rules_detection){1, 0, 0, {NULL, 0}};
    d->failed_auth = (struct rules_detection){-1, 20, 120, {NULL, 0}};
    d->credential_stuffing = (struct rules_detection){-1, 20, 300, {NULL, 0}};
    d->enumeration = (struct rules_detection){-1, 200, 300, {NULL, 0}};
    d->dpop = (struct rules_detection){-1, 0, 300, {NULL, 0}};
    d->undocumented_endpoint = (struct rules_detection){0, 0, 0, {NULL, 0}}; /* off */
    d->schedule.grace_s = RULES_DEFAULT_GRACE_S;
    d->baseline.learning_s = 14 * 86400;
    d->baseline.sensitivity = RULES_SENS_MEDIUM;
    rl_fleet_defaults(c);
}

static void sink_free(struct rules_sink *s)
{
    free(s->url);
    if (s->secret) {
        explicit_bzero(s->secret, strlen(s->secret));
        free(s->secret);
    }
    for (size_t i = 0; i < s->n_kinds; i++)
        free(s->kinds[i]);
    free(s->kinds);
}

void rl_config_free(struct rules_config *c)
{
    free(c->capture.interface);
    free(c->capture.bpf);
    for (size_t i = 0; i < c->n_cred_sources; i++)
        free(c->cred_sources[i].name);
    free(c->cred_sources);
    free(c->storage.database);
    free(c->storage.group);
    free(c->outputs.eve);
    free(c->outputs.metrics);
    free(c->run.user);
    if (c->alerts.has_slack) sink_free(&c->alerts.slack);
    for (size_t i = 0; i < c->alerts.n_webhooks; i++)
        sink_free(&c->alerts.webhooks[i]);
    free(c->alerts.webhooks);
    free(c->alerts.syslog);
    free(c->rules_path);
    for (size_t i = 0; i < c->tls.n_keylog; i++)
        free(c->tls.keylog[i]);
    free(c->tls.keylog);
    rl_services_free(c);
    rl_fleet_free(c);
}

/* ---- typed values --------------------------------------------------- */

static void set_str(struct rl_ctx *c, struct fy_node *v, const char *what, char **dst)
{
    const char *s = rl_scalar(c, v, what);
    if (!s) return;
    char *d = strdup(s);
    if (!d) return;
    free(*dst);
    *dst = d;
}

static void set_dur(struct rl_ctx *c, struct fy_node *v, const char *what, int64_t *dst)
{
    const char *s = rl_scalar(c, v, what), *hint;
    char err[RV_ERRLEN];
    if (s && !rv_duration(s, dst, err, &hint)) rl_err(c, v, hint, "%s: %s", what, err);
}

static void set_uint(struct rl_ctx *c, struct fy_node *v, const char *what, uint64_t lo,
                     uint64_t hi, uint32_t *dst)
{
    const char *s = rl_scalar(c, v, what), *hint;
    char err[RV_ERRLEN];
    uint64_t x;
    if (!s) return;
    if (!rv_uint(s, hi, &x, err, &hint))
        rl_err(c, v, hint, "%s: %s", what, err);
    else if (x < lo)
        rl_err(c, v, NULL, "%s: %s is too small (at least %llu)", what, s, (unsigned long long)lo);
    else
        *dst = (uint32_t)x;
}

static void set_severity(struct rl_ctx *c, struct fy_node *v, const char *what, int *dst,
                         bool allow_off)
{
    const char *s = rl_scalar(c, v, what);
    if (!s) return;
    if (allow_off && !strcmp(s, "off")) {
        *dst = 0;
        return;
    }
    int sev = rules_severity_parse(s);
    if (!sev)
        rl_err(c, v, allow_off ? "use high, medium, low or off" : "use high, medium or low",
               "%s: unknown severity \"%s\"", what, s);
    else
        *dst = sev;
}

/* env:NAME is resolved now; the value is never printed. */
static void set_secret(struct rl_ctx *c, struct fy_node *v, const char *what, char **dst)
{
    const char *s = rl_scalar(c, v, what);
    if (!s) return;
    const char *val = s;
    if (!strncmp(s, "env:", 4)) {
        val = getenv(s + 4);
        if (!s[4]) {
            rl_err(c, v, "write env:NAME", "%s: empty environment variable name", what);
            return;
        }
        if (!val || !*val) {
            rl_err(c, v, "export it before starting keywarden, or remove the key",
                   "%s: environment variable %s is not set", what, s + 4);
            return;
        }
    } else {
        c->literal_secret = true;
        rl_warn(c, v, "write env:NAME and export the secret in the environment",
                "%s is written in the file; secrets should not be at rest", what);
    }
    char *d = strdup(val);
    if (!d) return;
    if (*dst) {
        explicit_bzero(*dst, strlen(*dst));
        free(*dst);
    }
    *dst = d;
}

void rl_set_str(struct rl_ctx *c, struct fy_node *v, const char *what, char **dst)
{
    set_str(c, v, what, dst);
}

void rl_set_secret(struct rl_ctx *c, struct fy_node *v, const char *what, char **dst)
{
    set_secret(c, v, what, dst);
}

void rl_walk_map(struct rl_ctx *c, struct fy_node *n, const char *what,
                 const char *const *known, rl_pair_fn fn, void *arg)
{
    if (!rl_is_map(c, n, what)) return;
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(n, &it))) {
        struct fy_node *k = fy_node_pair_key(p), *v = fy_node_pair_value(p);
        const char *key = k && fy_node_get_type(k) == FYNT_SCALAR ? fy_node_get_scalar0(k) : NULL;
        if (!key) {
            rl_err(c, k, NULL, "keys in %s must be plain names", what);
            continue;
        }
        if (!fn(c, key, k, v, arg)) rl_unknown_key(c, k, what, known);
    }
}

/* ---- sections ------------------------------------------------------- */

static bool capture_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                         void *arg)
{
    struct rules_config *cfg = arg;
    if (!strcmp(key, "interface"))
        set_str(c, v, "capture.interface", &cfg->capture.interface);
    else if (!strcmp(key, "bpf"))
        set_str(c, v, "capture.bpf", &cfg->capture.bpf);
    else if (!strcmp(key, "snaplen"))
        set_uint(c, v, "capture.snaplen", 64, 262144, &cfg->capture.snaplen);
    else if (!strcmp(key, "buffer_mb"))
        set_uint(c, v, "capture.buffer_mb", 1, 65536, &cfg->capture.buffer_mb);
    else if (!strcmp(key, "workers")) {
        const char *s = rl_scalar(c, v, "capture.workers");
        uint32_t w = 0;
        if (s && strcmp(s, "auto") != 0) {
            set_uint(c, v, "capture.workers", 1, 64, &w); /* as run --workers */
            cfg->capture.workers = w;
        } else if (s) {
            cfg->capture.workers = 0;
        }
    } else if (!strcmp(key, "vlan_tracking")) {
        const char *s = rl_scalar(c, v, "capture.vlan_tracking");
        if (s && (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")))
            cfg->capture.vlan_tracking = true;
        else if (s && (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")))
            cfg->capture.vlan_tracking = false;
        else if (s)
            rl_err(c, v, "use true or false", "capture.vlan_tracking: \"%s\" is not a boolean",
                   s);
    } else
        return false;
    return true;
}

static void credentials_list(struct rl_ctx *c, struct fy_node *n, struct rules_config *cfg)
{
    if (!rl_is_seq(c, n, "credentials")) return;
    size_t cnt = (size_t)fy_node_sequence_item_count(n);
    struct rules_cred_source *srcs = calloc(cnt ? cnt : 1, sizeof *srcs);
    if (!srcs) return;
    size_t k = 0;
    void *it = NULL;
    struct fy_node *item;
    static const char *const known[] = {"header", "query", "cookie", NULL};
    while ((item = fy_node_sequence_iterate(n, &it))) {
        if (!rl_is_map(c, item, "a credentials entry")) continue;
        if (fy_node_mapping_item_count(item) != 1) {
            rl_err(c, item, "write one of { header: X }, { query: X }, { cookie: X }",
                   "a credentials entry must have exactly one key");
            continue;
        }
        struct fy_node_pair *p = fy_node_mapping_get_by_index(item, 0);
        struct fy_node *key = fy_node_pair_key(p);
        const char *ks = rl_scalar(c, key, "credentials key");
        const char *vs = rl_scalar(c, fy_node_pair_value(p), "credentials value");
        if (!ks || !vs) continue;
        enum rules_cred_src_kind kind;
        if (!strcmp(ks, "header"))
            kind = RULES_SRC_HEADER;
        else if (!strcmp(ks, "query"))
            kind = RULES_SRC_QUERY;
        else if (!strcmp(ks, "cookie"))
            kind = RULES_SRC_COOKIE;
        else {
            rl_unknown_key(c, key, "a credentials entry", known);
            continue;
        }
        if (!*vs) {
            rl_err(c, fy_node_pair_value(p), NULL, "empty %s name", ks);
            continue;
        }
        srcs[k].kind = kind;
        srcs[k++].name = strdup(vs);
    }
    for (size_t i = 0; i < cfg->n_cred_sources; i++)
        free(cfg->cred_sources[i].name);
    free(cfg->cred_sources);
    cfg->cred_sources = srcs;
    cfg->n_cred_sources = k;
}

static bool storage_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                         void *arg)
{
    struct rules_config *cfg = arg;
    if (!strcmp(key, "database"))
        set_str(c, v, "storage.database", &cfg->storage.database);
    else if (!strcmp(key, "audit_retention"))
        set_dur(c, v, "storage.audit_retention", &cfg->storage.audit_retention_s);
    else if (!strcmp(key, "audit_queue"))
        set_uint(c, v, "storage.audit_queue", 64, 1u << 20, &cfg->storage.audit_queue);
    else if (!strcmp(key, "group"))
        set_str(c, v, "storage.group", &cfg->storage.group);
    else if (!strcmp(key, "alert_retention"))
        set_dur(c, v, "storage.alert_retention", &cfg->storage.alert_retention_s);
    else
        return false;
    return true;
}

static bool outputs_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                         void *arg)
{
    struct rules_config *cfg = arg;
    if (!strcmp(key, "eve")) {
        set_str(c, v, "outputs.eve", &cfg->outputs.eve);
    } else if (!strcmp(key, "metrics")) {
        set_str(c, v, "outputs.metrics", &cfg->outputs.metrics);
        struct kw_addr a;
        uint16_t port;
        if (cfg->outputs.metrics && !kw_addr_parse_hostport(cfg->outputs.metrics, &a, &port))
            rl_err(c, v, "write an address and a port: \"127.0.0.1:9753\" or \"[::1]:9753\"",
                   "outputs.metrics: \"%s\" is not ADDRESS:PORT", cfg->outputs.metrics);
    } else
        return false;
    return true;
}

static bool run_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                     void *arg)
{
    struct rules_config *cfg = arg;
    if (strcmp(key, "user") != 0) return false;
    set_str(c, v, "run.user", &cfg->run.user);
    if (cfg->run.user && !cfg->run.user[0])
        rl_err(c, v, "name a user, e.g. keywarden (root keeps root)", "run.user: empty");
    return true;
}

static void rebase_path(const char *dir, char **path);

/* tls: { keylog: PATH | [PATH, ...], max_sessions: N } */
static void keylog_path(struct rl_ctx *c, struct fy_node *v, struct rules_config *cfg,
                        const char *dir)
{
    char *p = NULL;
    set_str(c, v, "tls.keylog", &p);
    if (!p) return;
    if (!p[0]) {
        rl_err(c, v, "name an NSS key log file or a directory of them", "tls.keylog: empty path");
        free(p);
        return;
    }
    rebase_path(dir, &p);
    char **k = realloc(cfg->tls.keylog, (cfg->tls.n_keylog + 1) * sizeof *k);
    if (!k) {
        free(p);
        return;
    }
    cfg->tls.keylog = k;
    k[cfg->tls.n_keylog++] = p;
}

struct tls_arg {
    struct rules_config *cfg;
    const char *dir;
};

static bool tls_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                     void *arg)
{
    struct tls_arg *a = arg;
    if (!strcmp(key, "keylog")) {
        if (v && fy_node_get_type(v) == FYNT_SEQUENCE) {
            void *it = NULL;
            struct fy_node *item;
            while ((item = fy_node_sequence_iterate(v, &it)))
                keylog_path(c, item, a->cfg, a->dir);
        } else {
            keylog_path(c, v, a->cfg, a->dir);
        }
    } else if (!strcmp(key, "max_sessions")) {
        set_uint(c, v, "tls.max_sessions", 1, 16777216, &a->cfg->tls.max_sessions);
    } else {
        return false;
    }
    return true;
}

static void sink_kinds(struct rl_ctx *c, struct fy_node *v, struct rules_sink *s)
{
    if (!rl_is_seq(c, v, "kinds")) return;
    size_t cnt = (size_t)fy_node_sequence_item_count(v);
    s->kinds = calloc(cnt ? cnt : 1, sizeof *s->kinds);
    if (!s->kinds) return;
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(v, &it))) {
        const char *k = rl_scalar(c, item, "an alert kind");
        if (!k) continue;
        bool ok = false;
        for (size_t i = 0; alert_kinds[i]; i++)
            ok |= !strcmp(alert_kinds[i], k);
        if (!ok) {
            rl_unknown_key(c, item, "kinds (alert kinds)", alert_kinds);
            continue;
        }
        s->kinds[s->n_kinds++] = strdup(k);
    }
}

static bool sink_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                      void *arg)
{
    struct rules_sink *s = arg;
    if (!strcmp(key, "webhook_url") || !strcmp(key, "url"))
        set_secret(c, v, key, &s->url);
    else if (!strcmp(key, "secret"))
        set_secret(c, v, "secret", &s->secret);
    else if (!strcmp(key, "min_severity"))
        set_severity(c, v, "min_severity", &s->min_severity, false);
    else if (!strcmp(key, "kinds"))
        sink_kinds(c, v, s);
    else
        return false;
    return true;
}

/* A URL that is not a secret is fine in the file: webhooks[].url. */
static bool webhook_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                         void *arg)
{
    struct rules_sink *s = arg;
    if (!strcmp(key, "url")) {
        const char *u = rl_scalar(c, v, "url");
        if (u && !strncmp(u, "env:", 4))
            set_secret(c, v, "url", &s->url);
        else
            set_str(c, v, "url", &s->url);
        return true;
    }
    if (!strcmp(key, "webhook_url")) return false;
    return sink_pair(c, key, k, v, arg);
}

static void sink_check(struct rl_ctx *c, struct fy_node *n, struct rules_sink *s, const char *w)
{
    if (!s->url)
        rl_err(c, n, NULL, "%s needs a url", w);
    else if (strncmp(s->url, "https://", 8) && strncmp(s->url, "http://", 7))
        rl_err(c, n, "use an http:// or https:// URL", "%s: the url is not an http(s) URL", w);
}

static void webhooks_list(struct rl_ctx *c, struct fy_node *n, struct rules_config *cfg)
{
    static const char *const known[] = {"url", "secret", "min_severity", "kinds", NULL};
    if (!rl_is_seq(c, n, "alerts.webhooks")) return;
    size_t cnt = (size_t)fy_node_sequence_item_count(n);
    cfg->alerts.webhooks = calloc(cnt ? cnt : 1, sizeof *cfg->alerts.webhooks);
    if (!cfg->alerts.webhooks) return;
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(n, &it))) {
        struct rules_sink *s = &cfg->alerts.webhooks[cfg->alerts.n_webhooks++];
        s->min_severity = 3;
        size_t e0 = c->diag->errors;
        rl_walk_map(c, item, "a webhook", known, webhook_pair, s);
        if (fy_node_get_type(item) == FYNT_MAPPING && c->diag->errors == e0)
            sink_check(c, item, s, "a webhook");
    }
}

static bool suppress_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                          void *arg)
{
    if (strcmp(key, "window") != 0) return false;
    set_dur(c, v, "alerts.suppress.window", arg);
    return true;
}

static bool alerts_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                        void *arg)
{
    struct rules_config *cfg = arg;
    if (!strcmp(key, "slack")) {
        static const char *const known[] = {"webhook_url", "min_severity", "kinds", NULL};
        if (cfg->alerts.has_slack) sink_free(&cfg->alerts.slack);
        memset(&cfg->alerts.slack, 0, sizeof cfg->alerts.slack);
        cfg->alerts.slack.min_severity = 3;
        cfg->alerts.has_slack = true;
        size_t e0 = c->diag->errors;
        rl_walk_map(c, v, "alerts.slack", known, sink_pair, &cfg->alerts.slack);
        if (fy_node_get_type(v) == FYNT_MAPPING && c->diag->errors == e0)
            sink_check(c, k, &cfg->alerts.slack, "alerts.slack");
    } else if (!strcmp(key, "webhooks")) {
        webhooks_list(c, v, cfg);
    } else if (!strcmp(key, "suppress")) {
        static const char *const known[] = {"window", NULL};
        rl_walk_map(c, v, "alerts.suppress", known, suppress_pair, &cfg->alerts.suppress_window_s);
    } else if (!strcmp(key, "drain_timeout")) {
        set_dur(c, v, "alerts.drain_timeout", &cfg->alerts.drain_timeout_s);
    } else if (!strcmp(key, "syslog")) {
        set_str(c, v, "alerts.syslog", &cfg->alerts.syslog);
        static const char *const fac[] = {"auth", "authpriv", "daemon", "user", "local0",
                                          "local1", "local2", "local3", "local4", "local5",
                                          "local6", "local7", NULL};
        bool ok = false;
        for (int i = 0; cfg->alerts.syslog && fac[i]; i++)
            ok |= !strcmp(cfg->alerts.syslog, fac[i]);
        if (cfg->alerts.syslog && !ok)
            rl_err(c, v, "use auth, authpriv, daemon, user or local0..local7",
                   "alerts.syslog: unknown facility \"%s\"", cfg->alerts.syslog);
    } else
        return false;
    return true;
}

struct root_arg {
    struct rules_config *cfg;
    const char *dir;
};

static bool config_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                        void *arg)
{
    struct root_arg *ra = arg;
    struct rules_config *cfg = ra->cfg;
    if (!strcmp(key, "capture")) {
        static const char *const known[] = {"interface", "bpf",     "snaplen",      "buffer_mb",
                                            "workers",   "vlan_tracking", NULL};
        rl_walk_map(c, v, "capture", known, capture_pair, cfg);
    } else if (!strcmp(key, "credentials")) {
        credentials_list(c, v, cfg);
    } else if (!strcmp(key, "storage")) {
        static const char *const known[] = {"database",        "audit_retention", "audit_queue",
                                            "alert_retention", "group",           NULL};
        rl_walk_map(c, v, "storage", known, storage_pair, cfg);
    } else if (!strcmp(key, "outputs")) {
        static const char *const known[] = {"eve", "metrics", NULL};
        rl_walk_map(c, v, "outputs", known, outputs_pair, cfg);
    } else if (!strcmp(key, "run")) {
        static const char *const known[] = {"user", NULL};
        rl_walk_map(c, v, "run", known, run_pair, cfg);
    } else if (!strcmp(key, "alerts")) {
        static const char *const known[] = {"slack",         "webhooks", "suppress",
                                            "drain_timeout", "syslog",   NULL};
        rl_walk_map(c, v, "alerts", known, alerts_pair, cfg);
    } else if (!strcmp(key, "rules")) {
        const char *s = rl_scalar(c, v, "rules");
        if (s) {
            free(cfg->rules_path);
            size_t n = strlen(ra->dir) + strlen(s) + 2;
            cfg->rules_path = malloc(n);
            if (cfg->rules_path) {
                if (s[0] == '/' || !ra->dir[0])
                    snprintf(cfg->rules_path, n, "%s", s);
                else
                    snprintf(cfg->rules_path, n, "%s/%s", ra->dir, s);
            }
        }
    } else if (!strcmp(key, "detections")) {
        rl_detections(c, v);
    } else if (!strcmp(key, "services")) {
        rl_services(c, v, ra->dir);
    } else if (!strcmp(key, "fleet")) {
        rl_fleet(c, v, ra->dir);
    } else if (!strcmp(key, "limits")) {
        rl_limits(c, k, v);
    } else if (!strcmp(key, "tls")) {
        static const char *const known[] = {"keylog", "max_sessions", NULL};
        struct tls_arg ta = {cfg, ra->dir};
        rl_walk_map(c, v, "tls", known, tls_pair, &ta);
    } else
        return false;
    return true;
}

static void rebase_path(const char *dir, char **path)
{
    if (!*path || (*path)[0] == '/' || !strcmp(*path, "-") || !dir || !dir[0]) return;
    size_t n = strlen(dir) + strlen(*path) + 2;
    char *p = malloc(n);
    if (!p) return;
    snprintf(p, n, "%s/%s", dir, *path);
    free(*path);
    *path = p;
}

void rl_config_root(struct rl_ctx *c, struct fy_node *root, const char *config_dir)
{
    static const char *const known[] = {"capture", "credentials", "storage",    "outputs",
                                        "alerts",  "rules",       "detections", "services",
                                        "run",     "fleet",       "tls",        "limits",
                                        NULL};
    struct root_arg ra = {&c->m->config, config_dir};
    if (!root) return; /* an empty file is a valid config: all defaults */
    struct rules_config *cfg = &c->m->config;
    const char *db0 = cfg->storage.database, *eve0 = cfg->outputs.eve;
    rl_walk_map(c, root, "the config", known, config_pair, &ra);
    /* Relative paths written in the file are relative to the file's folder,
     * like `rules:`, so the config means the same from any working
     * directory; the embedded defaults stay relative to it. */
    if (cfg->storage.database != db0) rebase_path(config_dir, &cfg->storage.database);
    if (cfg->outputs.eve != eve0) rebase_path(config_dir, &cfg->outputs.eve);
}

/* ---- detections ----------------------------------------------------- */

struct det_arg {
    struct rules_detection *d;
    const char *name;
    const char *threshold_key;
};

static bool det_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                     void *arg)
{
    struct det_arg *da = arg;
    char what[96];
    snprintf(what, sizeof what, "detections.%s.%s", da->name, key);
    if (!strcmp(key, "severity"))
        set_severity(c, v, what, &da->d->severity, true);
    else if (da->threshold_key && !strcmp(key, da->threshold_key))
        set_uint(c, v, what, 1, 1000000, &da->d->threshold);
    else if ((da->threshold_key || da->d == &c->m->detections.dpop) && !strcmp(key, "window")) {
        set_dur(c, v, what, &da->d->window_s);
        if (da->d->window_s <= 0 || da->d->window_s > 86400)
            rl_err(c, v, "use a window between 1s and 1d", "%s out of range", what);
    } else
        return false;
    return true;
}

static bool baseline_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                          void *arg)
{
    struct rules_detections *d = arg;
    if (!strcmp(key, "learning")) {
        set_dur(c, v, "detections.baseline.learning", &d->baseline.learning_s);
    } else if (!strcmp(key, "sensitivity")) {
        const char *s = rl_scalar(c, v, "detections.baseline.sensitivity");
        int sev = s ? rules_severity_parse(s) : 0;
        if (s && (!sev || isdigit((unsigned char)s[0])))
            rl_err(c, v, "use low, medium or high", "unknown sensitivity \"%s\"", s);
        else if (s) /* low=3 .. high=1 as severities; sensitivity is the reverse */
            d->baseline.sensitivity = (enum rules_sensitivity)(4 - sev);
    } else if (!strcmp(key, "learn_templates")) {
        const char *s = rl_scalar(c, v, "detections.baseline.learn_templates");
        if (s && (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")))
            d->baseline.fixed_templates = false;
        else if (s && (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")))
            d->baseline.fixed_templates = true;
        else if (s)
            rl_err(c, v, "use true or false",
                   "detections.baseline.learn_templates: \"%s\" is not a boolean", s);
    } else
        return false;
    return true;
}

/* detections.schedule.grace: the grace of schedules that do not say. */
static bool schedule_default_pair(struct rl_ctx *c, const char *key, struct fy_node *k,
                                  struct fy_node *v, void *arg)
{
    (void)k;
    struct rules_detections *d = arg;
    if (strcmp(key, "grace")) return false;
    const char *g = rl_scalar(c, v, "detections.schedule.grace"), *hint;
    char err[RV_ERRLEN];
    if (g && !rv_duration(g, &d->schedule.grace_s, err, &hint))
        rl_err(c, v, hint, "detections.schedule.grace: %s", err);
    else if (g && d->schedule.grace_s > 12 * 3600)
        rl_err(c, v, "use at most 12h", "detections.schedule.grace \"%s\" is too long", g);
    return true;
}

static bool detections_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                            void *arg)
{
    struct rules_detections *d = arg;
    struct det_arg da = {NULL, key, NULL};
    if (!strcmp(key, "unknown_credential"))
        da.d = &d->unknown_credential;
    else if (!strcmp(key, "failed_auth"))
        da.d = &d->failed_auth, da.threshold_key = "count";
    else if (!strcmp(key, "credential_stuffing"))
        da.d = &d->credential_stuffing, da.threshold_key = "distinct_credentials";
    else if (!strcmp(key, "enumeration"))
        da.d = &d->enumeration, da.threshold_key = "distinct_ids";
    else if (!strcmp(key, "dpop"))
        da.d = &d->dpop;
    else if (!strcmp(key, "undocumented_endpoint"))
        da.d = &d->undocumented_endpoint;
    else if (!strcmp(key, "schedule")) {
        static const char *const known[] = {"grace", NULL};
        d->schedule.loc = rl_loc(c, k);
        rl_walk_map(c, v, "detections.schedule", known, schedule_default_pair, d);
        return true;
    } else if (!strcmp(key, "baseline")) {
        static const char *const known[] = {"learning", "sensitivity", "learn_templates", NULL};
        d->baseline.loc = rl_loc(c, k);
        rl_walk_map(c, v, "detections.baseline", known, baseline_pair, d);
        return true;
    } else
        return false;
    da.d->loc = rl_loc(c, k);
    if (da.d == &d->undocumented_endpoint) da.d->severity = -1; /* named: on */
    if (v && fy_node_get_type(v) == FYNT_SCALAR) {
        const char *s = fy_node_get_scalar0(v);
        if (s && !strcmp(s, "off")) {
            da.d->severity = 0;
            return true;
        }
    }
    const char *known[] = {"severity", da.threshold_key ? da.threshold_key : "window",
                           da.threshold_key ? "window" : NULL, NULL};
    if (!da.threshold_key && da.d != &d->dpop) known[1] = NULL;
    char where[64];
    snprintf(where, sizeof where, "detections.%s", key);
    rl_walk_map(c, v, where, known, det_pair, &da);
    return true;
}

void rl_detections(struct rl_ctx *c, struct fy_node *n)
{
    static const char *const known[] = {"unknown_credential", "failed_auth", "credential_stuffing",
                                        "enumeration",        "baseline",    "dpop",
                                        "schedule",           "undocumented_endpoint",
                                        NULL};
    rl_walk_map(c, n, "detections", known, detections_pair, &c->m->detections);
}
