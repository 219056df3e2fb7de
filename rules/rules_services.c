/* rules_services: the `services:` section of keywarden.yaml, what keywarden
 * knows about each API service it watches: the host (Host header,
 * :authority or TLS SNI) with an optional port, the OpenAPI document whose
 * path templates are authoritative for it, and the backend personality
 * (which framework routes its requests, so the paths and methods that
 * reach a handler can be worked out). The one thing to know: a request is
 * matched to the most specific entry, host:port before host alone, and
 * host names compare case-insensitively (RFC 9110 §4.2.3). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules_int.h"

static const char *const backend_names[] = {
    [RULES_BACKEND_GENERIC] = "generic", [RULES_BACKEND_NGINX] = "nginx",
    [RULES_BACKEND_APACHE] = "apache",   [RULES_BACKEND_SPRING] = "spring",
    [RULES_BACKEND_EXPRESS] = "express", [RULES_BACKEND_ASPNET] = "aspnet",
    [RULES_BACKEND_DJANGO] = "django",   [RULES_BACKEND_IIS] = "iis",
};

const char *rules_backend_name(enum rules_backend b)
{
    return (unsigned)b < sizeof backend_names / sizeof backend_names[0] ? backend_names[b]
                                                                        : "generic";
}

void rl_services_free(struct rules_config *cfg)
{
    for (size_t i = 0; i < cfg->n_services; i++) {
        free(cfg->services[i].host);
        free(cfg->services[i].openapi);
    }
    free(cfg->services);
    cfg->services = NULL;
    cfg->n_services = 0;
}

/* "api.acme.internal" or "api.acme.internal:8443"; "[::1]:8080" for IPv6. */
static bool parse_host(struct rl_ctx *c, struct fy_node *v, struct rules_service *s)
{
    const char *h = rl_scalar(c, v, "services.host");
    if (!h) return false;
    const char *end = h + strlen(h), *colon = NULL;
    if (h[0] == '[') {
        const char *rb = strchr(h, ']');
        if (!rb) {
            rl_err(c, v, "write an IPv6 address as [::1] or [::1]:8080",
                   "services.host: \"%s\" has no closing ']'", h);
            return false;
        }
        if (rb[1] == ':') colon = rb + 1;
        else if (rb[1]) {
            rl_err(c, v, "write [::1] or [::1]:8080", "services.host: \"%s\" is not a host", h);
            return false;
        }
    } else {
        colon = strchr(h, ':');
    }
    const char *hend = colon ? colon : end;
    if (hend == h) {
        rl_err(c, v, "write a host name like api.acme.internal", "services.host is empty");
        return false;
    }
    for (const char *p = h; p < hend; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-_[]:", *p)) {
            rl_err(c, v, "write a host name like api.acme.internal, optionally :port",
                   "services.host: \"%s\" is not a host name", h);
            return false;
        }
    if (colon) {
        char *e;
        unsigned long port = strtoul(colon + 1, &e, 10);
        if (!colon[1] || *e || port == 0 || port > 65535) {
            rl_err(c, v, "a port is 1..65535", "services.host: bad port in \"%s\"", h);
            return false;
        }
        s->port = (uint16_t)port;
    }
    s->host = strndup(h, (size_t)(hend - h));
    if (!s->host) return false;
    for (char *p = s->host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return true;
}

struct svc_arg {
    struct rules_service *s;
    const char *dir;
    bool has_host, host_written; /* a bad host is reported once, not twice */
};

static bool service_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                         void *arg)
{
    struct svc_arg *a = arg;
    if (!strcmp(key, "host")) {
        a->host_written = true;
        a->has_host = parse_host(c, v, a->s);
    } else if (!strcmp(key, "openapi")) {
        const char *p = rl_scalar(c, v, "services.openapi");
        if (!p) return true;
        size_t n = strlen(a->dir) + strlen(p) + 2;
        free(a->s->openapi);
        a->s->openapi = malloc(n);
        if (a->s->openapi) {
            if (p[0] == '/' || !a->dir[0])
                snprintf(a->s->openapi, n, "%s", p);
            else
                snprintf(a->s->openapi, n, "%s/%s", a->dir, p);
        }
    } else if (!strcmp(key, "backend")) {
        const char *b = rl_scalar(c, v, "services.backend");
        if (!b) return true;
        size_t i = 0;
        for (; i < sizeof backend_names / sizeof backend_names[0]; i++)
            if (!strcmp(b, backend_names[i])) break;
        if (i == sizeof backend_names / sizeof backend_names[0])
            rl_err(c, v, "use generic, nginx, apache, spring, express, aspnet, django or iis",
                   "services.backend: unknown backend \"%s\"", b);
        else
            a->s->backend = (enum rules_backend)i;
    } else {
        return false;
    }
    return true;
}

void rl_services(struct rl_ctx *c, struct fy_node *n, const char *config_dir)
{
    struct rules_config *cfg = &c->m->config;
    if (!rl_is_seq(c, n, "services")) return;
    size_t cnt = (size_t)fy_node_sequence_item_count(n);
    struct rules_service *sv = calloc(cnt ? cnt : 1, sizeof *sv);
    if (!sv) return;
    size_t k = 0;
    void *it = NULL;
    struct fy_node *item;
    static const char *const known[] = {"host", "openapi", "backend", NULL};
    while ((item = fy_node_sequence_iterate(n, &it))) {
        struct svc_arg a = {&sv[k], config_dir ? config_dir : "", false, false};
        sv[k].loc = rl_loc(c, item);
        rl_walk_map(c, item, "a services entry", known, service_pair, &a);
        if (!a.has_host) {
            if (!a.host_written && fy_node_get_type(item) == FYNT_MAPPING)
                rl_err(c, item, "add host: api.example.internal", "a services entry needs a host");
            free(sv[k].host);
            free(sv[k].openapi);
            memset(&sv[k], 0, sizeof sv[k]);
            continue;
        }
        for (size_t j = 0; j < k; j++)
            if (!strcmp(sv[j].host, sv[k].host) && sv[j].port == sv[k].port)
                rl_err(c, item, "merge the two entries",
                       "services: \"%s\" is listed twice (first at line %d)", sv[k].host,
                       sv[j].loc.line);
        k++;
    }
    rl_services_free(cfg);
    cfg->services = sv;
    cfg->n_services = k;
}

/* `hostname` may carry a port ("api:8080") as the Host header does; the
 * connection's port is used when it does not. */
const struct rules_service *rules_find_service(const struct rules_model *m, const char *hostname,
                                               uint16_t dport)
{
    const struct rules_config *cfg = &m->config;
    if (!cfg->n_services || !hostname || !hostname[0]) return NULL;
    size_t hl = strlen(hostname);
    uint16_t port = dport;
    const char *colon = hostname[0] == '[' ? strstr(hostname, "]:") : strrchr(hostname, ':');
    if (colon && hostname[0] == '[') colon++;
    if (colon && (hostname[0] == '[' || !memchr(hostname, ':', (size_t)(colon - hostname)))) {
        char *e;
        unsigned long p = strtoul(colon + 1, &e, 10);
        if (colon[1] && !*e && p > 0 && p <= 65535) {
            port = (uint16_t)p;
            hl = (size_t)(colon - hostname);
        }
    }
    const struct rules_service *any = NULL;
    for (size_t i = 0; i < cfg->n_services; i++) {
        const struct rules_service *s = &cfg->services[i];
        if (strlen(s->host) != hl || strncasecmp(s->host, hostname, hl) != 0) continue;
        if (s->port == port) return s;
        if (!s->port && !any) any = s;
    }
    return any;
}
