/* rules_fleet: the `fleet:` section of keywarden.yaml (docs/fleet.md):
 * where the NATS JetStream servers are, this machine's sensor name, how
 * many partitions the records are spread over, the credentials and TLS
 * files for NATS, the sensor's spool and the judge's merge bound.
 *
 * The one thing to know: a config without `fleet:` (or without
 * `fleet.nats`) is the single machine of today; `run` becomes a sensor
 * only when `fleet.sensor` names it, and `keywarden judge` needs
 * `fleet.nats`. The NATS credentials come from the environment (env:),
 * like every other secret, and are never printed. */
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

void rl_fleet_defaults(struct rules_config *cfg)
{
    cfg->fleet.partitions = 16;
    cfg->fleet.replicas = 1;
    cfg->fleet.max_age_s = 7 * 86400;
    cfg->fleet.duplicates_s = 120;
    cfg->fleet.lateness_s = 10;
    cfg->fleet.spool_max = (uint64_t)1 << 30;
}

void rl_fleet_free(struct rules_config *cfg)
{
    free(cfg->fleet.nats);
    free(cfg->fleet.sensor);
    if (cfg->fleet.credentials) {
        explicit_bzero(cfg->fleet.credentials, strlen(cfg->fleet.credentials));
        free(cfg->fleet.credentials);
    }
    free(cfg->fleet.creds_file);
    free(cfg->fleet.tls_ca);
    free(cfg->fleet.tls_cert);
    free(cfg->fleet.tls_key);
    free(cfg->fleet.spool);
    free(cfg->fleet.stream);
}

/* A sensor name is a NATS subject token and a consumer name. */
static bool name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (!n || n >= max) return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", s[i]))
            return false;
    return true;
}

static void set_path(struct rl_ctx *c, struct fy_node *v, const char *what, const char *dir,
                     char **dst)
{
    const char *s = rl_scalar(c, v, what);
    if (!s) return;
    if (!s[0]) {
        rl_err(c, v, "give a file name or remove the key", "%s is empty", what);
        return;
    }
    size_t n = strlen(dir) + strlen(s) + 2;
    char *p = malloc(n);
    if (!p) return;
    if (s[0] == '/' || !dir[0])
        snprintf(p, n, "%s", s);
    else
        snprintf(p, n, "%s/%s", dir, s);
    free(*dst);
    *dst = p;
}

struct fleet_arg {
    struct rules_config *cfg;
    const char *dir;
};

static bool tls_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                     void *arg)
{
    struct fleet_arg *a = arg;
    if (!strcmp(key, "ca"))
        set_path(c, v, "fleet.tls.ca", a->dir, &a->cfg->fleet.tls_ca);
    else if (!strcmp(key, "cert"))
        set_path(c, v, "fleet.tls.cert", a->dir, &a->cfg->fleet.tls_cert);
    else if (!strcmp(key, "key"))
        set_path(c, v, "fleet.tls.key", a->dir, &a->cfg->fleet.tls_key);
    else
        return false;
    return true;
}

static bool spool_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                       void *arg)
{
    struct fleet_arg *a = arg;
    if (!strcmp(key, "path")) {
        set_path(c, v, "fleet.spool.path", a->dir, &a->cfg->fleet.spool);
    } else if (!strcmp(key, "max")) {
        const char *s = rl_scalar(c, v, "fleet.spool.max"), *hint;
        char err[RV_ERRLEN];
        uint64_t b;
        if (s && !rv_size(s, &b, err, &hint))
            rl_err(c, v, hint, "fleet.spool.max: %s", err);
        else if (s && b < 1000000) /* 1MB, as the hint says */
            rl_err(c, v, "give at least 1MB", "fleet.spool.max: %s is too small", s);
        else if (s)
            a->cfg->fleet.spool_max = b;
    } else {
        return false;
    }
    return true;
}

static void set_count(struct rl_ctx *c, struct fy_node *v, const char *what, uint64_t lo,
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

static void set_secs(struct rl_ctx *c, struct fy_node *v, const char *what, int64_t lo,
                     int64_t *dst)
{
    const char *s = rl_scalar(c, v, what), *hint;
    char err[RV_ERRLEN];
    int64_t x;
    if (!s) return;
    if (!rv_duration(s, &x, err, &hint))
        rl_err(c, v, hint, "%s: %s", what, err);
    else if (x < lo)
        rl_err(c, v, NULL, "%s: %s is too short", what, s);
    else
        *dst = x;
}

static bool fleet_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                       void *arg)
{
    struct fleet_arg *a = arg;
    struct rules_config *cfg = a->cfg;
    if (!strcmp(key, "nats")) {
        rl_set_str(c, v, "fleet.nats", &cfg->fleet.nats);
        if (cfg->fleet.nats && strncmp(cfg->fleet.nats, "nats://", 7) != 0 &&
            strncmp(cfg->fleet.nats, "tls://", 6) != 0)
            rl_err(c, v, "write nats://HOST:4222 (several: comma-separated)",
                   "fleet.nats: \"%s\" is not a nats:// or tls:// URL", cfg->fleet.nats);
    } else if (!strcmp(key, "sensor")) {
        rl_set_str(c, v, "fleet.sensor", &cfg->fleet.sensor);
        if (cfg->fleet.sensor && !name_ok(cfg->fleet.sensor, 64))
            rl_err(c, v, "use letters, digits, '-' and '_' (at most 63), e.g. fra-1",
                   "fleet.sensor: \"%s\" is not a sensor name", cfg->fleet.sensor);
    } else if (!strcmp(key, "partitions")) {
        set_count(c, v, "fleet.partitions", 1, 1024, &cfg->fleet.partitions);
    } else if (!strcmp(key, "credentials")) {
        rl_set_secret(c, v, "fleet.credentials", &cfg->fleet.credentials);
    } else if (!strcmp(key, "creds_file")) {
        set_path(c, v, "fleet.creds_file", a->dir, &cfg->fleet.creds_file);
    } else if (!strcmp(key, "tls")) {
        static const char *const known[] = {"ca", "cert", "key", NULL};
        rl_walk_map(c, v, "fleet.tls", known, tls_pair, a);
    } else if (!strcmp(key, "spool")) {
        static const char *const known[] = {"path", "max", NULL};
        rl_walk_map(c, v, "fleet.spool", known, spool_pair, a);
    } else if (!strcmp(key, "stream")) {
        rl_set_str(c, v, "fleet.stream", &cfg->fleet.stream);
        if (cfg->fleet.stream && !name_ok(cfg->fleet.stream, 64))
            rl_err(c, v, "use letters, digits, '-' and '_'",
                   "fleet.stream: \"%s\" is not a stream name", cfg->fleet.stream);
    } else if (!strcmp(key, "replicas")) {
        set_count(c, v, "fleet.replicas", 1, 5, &cfg->fleet.replicas);
    } else if (!strcmp(key, "max_age")) {
        set_secs(c, v, "fleet.max_age", 60, &cfg->fleet.max_age_s);
    } else if (!strcmp(key, "duplicates")) {
        set_secs(c, v, "fleet.duplicates", 1, &cfg->fleet.duplicates_s);
    } else if (!strcmp(key, "lateness")) {
        set_secs(c, v, "fleet.lateness", 0, &cfg->fleet.lateness_s);
    } else {
        return false;
    }
    return true;
}

void rl_fleet(struct rl_ctx *c, struct fy_node *n, const char *config_dir)
{
    static const char *const known[] = {"nats",   "sensor",   "partitions", "credentials",
                                        "creds_file", "tls",  "spool",      "stream",
                                        "replicas",   "max_age", "duplicates", "lateness",
                                        NULL};
    struct fleet_arg a = {&c->m->config, config_dir ? config_dir : ""};
    rl_walk_map(c, n, "fleet", known, fleet_pair, &a);
    const struct rules_config *cfg = &c->m->config;
    if (cfg->fleet.sensor && !cfg->fleet.nats)
        rl_err(c, n, "add nats: nats://HOST:4222", "fleet.sensor needs fleet.nats");
    if ((cfg->fleet.tls_cert != NULL) != (cfg->fleet.tls_key != NULL))
        rl_err(c, n, "give both fleet.tls.cert and fleet.tls.key (a client certificate)",
               "fleet.tls: a certificate needs its key and a key its certificate");
    if (cfg->fleet.credentials && cfg->fleet.creds_file)
        rl_err(c, n, "keep one of them", "fleet: credentials and creds_file both given");
}
