/* sim_world: loading and validating the world file with libfyaml. Errors
 * point at the node (fy_node_get_start_mark is 0-based; messages are
 * 1-based, as editors count). */
#include "sim_world.h"

#include <libfyaml.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_rng.h"

struct ld {
    const char *path;
    int err;
};

__attribute__((format(printf, 3, 4))) static void fail(struct ld *l, struct fy_node *n,
                                                       const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n) /* libfyaml prints file:line:col: error: and a caret */
        fy_node_report(n, FYET_ERROR, "%s", msg);
    else
        fprintf(stderr, "%s: error: %s\n", l->path, msg);
    l->err = -1;
}

static struct fy_node *key(struct fy_node *n, const char *k)
{
    return n && fy_node_is_mapping(n) ? fy_node_mapping_lookup_by_string(n, k, FY_NT) : NULL;
}

/* Copies a scalar; returns false (and keeps def) when absent. */
static bool str(struct ld *l, struct fy_node *n, const char *k, char *out, size_t cap,
                const char *def)
{
    struct fy_node *v = k ? key(n, k) : n;
    if (!v) {
        snprintf(out, cap, "%s", def ? def : "");
        return false;
    }
    size_t len = 0;
    const char *s = fy_node_is_scalar(v) ? fy_node_get_scalar(v, &len) : NULL;
    if (!s) {
        fail(l, v, "\"%s\" must be a scalar", k ? k : "value");
        out[0] = 0;
        return false;
    }
    if (len >= cap) {
        fail(l, v, "value of \"%s\" is too long", k ? k : "value");
        len = cap - 1;
    }
    memcpy(out, s, len);
    out[len] = 0;
    return true;
}

static double num(struct ld *l, struct fy_node *n, const char *k, double def)
{
    char b[64], *end;
    if (!str(l, n, k, b, sizeof b, NULL)) return def;
    double v = strtod(b, &end);
    if (end == b || *end) fail(l, key(n, k), "\"%s\" must be a number", k);
    return v;
}

int sim_parse_date(const char *s, int *y, int *m, int *d)
{
    char tail;
    return sscanf(s, "%4d-%2d-%2d%c", y, m, d, &tail) == 3 && *m >= 1 && *m <= 12 && *d >= 1 &&
                   *d <= 31
               ? 0
               : -1;
}

int sim_parse_duration(const char *s, int64_t *us)
{
    double v;
    char u[8] = "";
    if (sscanf(s, "%lf%7s", &v, u) < 1 || v < 0) return -1;
    double mul = !strcmp(u, "s") || !u[0] ? 1
                 : !strcmp(u, "m")        ? 60
                 : !strcmp(u, "h")        ? 3600
                 : !strcmp(u, "d")        ? 86400
                                          : -1;
    if (mul < 0) return -1;
    *us = (int64_t)(v * mul * 1e6);
    return 0;
}

int64_t sim_local_to_utc(const char *tz, int y, int mon, int d, int minute_of_day)
{
    setenv("TZ", tz, 1);
    tzset();
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = d;
    tm.tm_hour = minute_of_day / 60;
    tm.tm_min = minute_of_day % 60;
    tm.tm_isdst = -1; /* let the zone rules decide, DST included */
    return (int64_t)mktime(&tm) * 1000000;
}

static const char *const k_wd[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static int wday(const char *s, size_t n)
{
    for (int i = 0; i < 7; i++)
        if (n == 3 && !strncmp(s, k_wd[i], 3)) return i;
    return -1;
}

/* "mon-fri", "sat,sun", "sun-thu", "daily", "mon-sun" -> bit per tm_wday. */
static int parse_days(const char *s, uint8_t *mask)
{
    *mask = 0;
    if (!strcmp(s, "daily")) {
        *mask = 0x7f;
        return 0;
    }
    while (*s) {
        size_t n = strcspn(s, ",");
        const char *dash = memchr(s, '-', n);
        int a = wday(s, dash ? (size_t)(dash - s) : n);
        int b = dash ? wday(dash + 1, n - (size_t)(dash - s) - 1) : a;
        if (a < 0 || b < 0) return -1;
        for (int i = a;; i = (i + 1) % 7) {
            *mask |= (uint8_t)(1u << i);
            if (i == b) break;
        }
        s += n + (s[n] == ',');
    }
    return *mask ? 0 : -1;
}

static int parse_hours(const char *s, int *a, int *b)
{
    int h1, m1, h2, m2;
    if (sscanf(s, "%d:%d-%d:%d", &h1, &m1, &h2, &m2) != 4 || h1 > 23 || h2 > 24 || m1 > 59 ||
        m2 > 59)
        return -1;
    *a = h1 * 60 + m1;
    *b = h2 * 60 + m2;
    return *a == *b ? -1 : 0;
}

static void load_endpoint(struct ld *l, struct fy_node *n, struct sim_endpoint *e)
{
    if (!str(l, n, "path", e->path, sizeof e->path, NULL) || e->path[0] != '/')
        fail(l, n, "endpoint needs a \"path\" starting with /");
    /* The resource is the last literal segment: /v1/customers/{id}/invoices -> invoice */
    const char *p = e->path, *best = "item";
    size_t blen = 4;
    while (*p) {
        p++;
        size_t n2 = strcspn(p, "/");
        if (n2 && p[0] != '{' && !(p[0] == 'v' && p[1] >= '0' && p[1] <= '9')) {
            best = p;
            blen = n2;
        }
        p += n2;
    }
    if (blen > 1 && best[blen - 1] == 's') blen--;
    snprintf(e->resource, sizeof e->resource, "%.*s", (int)blen, best);
    struct fy_node *sz = key(n, "size");
    e->size_min = 300;
    e->size_max = 3000;
    if (sz && fy_node_is_sequence(sz) && fy_node_sequence_item_count(sz) == 2) {
        char a[32], b[32];
        str(l, fy_node_sequence_get_by_index(sz, 0), NULL, a, sizeof a, "300");
        str(l, fy_node_sequence_get_by_index(sz, 1), NULL, b, sizeof b, "3000");
        e->size_min = atof(a);
        e->size_max = atof(b);
    } else if (sz) {
        fail(l, sz, "\"size\" is [min, max] in bytes");
    }
    if (e->size_min < 2 || e->size_max < e->size_min) fail(l, sz, "bad size range");
    e->gzip = num(l, n, "gzip", 0.2);
    e->chunked = num(l, n, "chunked", 0.2);
    str(l, n, "scopes", e->scopes, sizeof e->scopes, "");
}

static void load_server(struct ld *l, struct fy_node *n, struct sim_server *s)
{
    char b[64];
    str(l, n, "id", s->id, sizeof s->id, NULL);
    str(l, n, "host", s->host, sizeof s->host, NULL);
    if (!s->id[0] || !s->host[0]) fail(l, n, "a server needs \"id\" and \"host\"");
    str(l, n, "ip", b, sizeof b, "");
    if (sim_ip_parse(b, &s->ip) || s->ip.v6)
        fail(l, key(n, "ip"), "server \"ip\" must be an IPv4 address, got \"%s\"", b);
    if (str(l, n, "ip6", b, sizeof b, NULL)) {
        if (sim_ip_parse(b, &s->ip6) || !s->ip6.v6)
            fail(l, key(n, "ip6"), "\"ip6\" must be an IPv6 address, got \"%s\"", b);
        s->has_ip6 = true;
    }
    s->port = (uint16_t)num(l, n, "port", 80);
    str(l, n, "protocol", b, sizeof b, "http1");
    if (!strcmp(b, "http1"))
        s->proto = SIM_PROTO_HTTP1;
    else if (!strcmp(b, "h2c"))
        s->proto = SIM_PROTO_H2C;
    else if (!strcmp(b, "grpc"))
        s->proto = SIM_PROTO_GRPC;
    else
        fail(l, key(n, "protocol"), "unknown \"protocol\" \"%s\"; use http1, h2c or grpc", b);
    struct fy_node *eps = key(n, "endpoints"), *it;
    void *iter = NULL;
    if (!eps || !fy_node_is_sequence(eps)) fail(l, n, "server needs a list of \"endpoints\"");
    while (eps && (it = fy_node_sequence_iterate(eps, &iter)) && s->nep < SIM_MAX_EPS)
        load_endpoint(l, it, &s->ep[s->nep++]);
    struct fy_node *deny = key(n, "deny");
    iter = NULL;
    while (deny && (it = fy_node_sequence_iterate(deny, &iter)) && s->ndeny < SIM_MAX_DENY)
        str(l, it, NULL, s->deny[s->ndeny++], sizeof s->deny[0], NULL);
}

static void load_network(struct ld *l, struct fy_node *n, struct sim_network *w)
{
    str(l, n, "id", w->id, sizeof w->id, NULL);
    str(l, n, "cidr", w->cidr, sizeof w->cidr, "");
    char ip[64];
    int pfx = -1;
    if (sscanf(w->cidr, "%63[^/]/%d", ip, &pfx) != 2 || sim_ip_parse(ip, &w->base) ||
        pfx < (w->base.v6 ? 64 : 8) || pfx > (w->base.v6 ? 128 : 32))
        fail(l, key(n, "cidr"), "bad \"cidr\" \"%s\"; write 203.0.113.0/28 or 2001:db8::/64",
             w->cidr);
    w->prefix = pfx;
    w->rtt_ms = (int)num(l, n, "rtt_ms", 30);
    w->mbps = (int)num(l, n, "mbps", 100);
}

static int find_server(const struct sim_world *w, const char *id)
{
    for (int i = 0; i < w->nsrv; i++)
        if (!strcmp(w->srv[i].id, id)) return i;
    return -1;
}

int sim_find_network(const struct sim_world *w, const char *id);
int sim_find_network(const struct sim_world *w, const char *id)
{
    for (int i = 0; i < w->nnet; i++)
        if (!strcmp(w->net[i].id, id)) return i;
    return -1;
}

static void derive_secret(const struct sim_world *w, struct sim_cred *c, const char *prefix,
                          int nhex)
{
    struct sim_rng r;
    sim_rng_fork(&r, sim_hash_str(w->name), sim_hash_str(c->id));
    static const char k_b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    size_t n = strlen(prefix);
    memcpy(c->secret, prefix, n);
    for (int i = 0; i < nhex; i++)
        c->secret[n + (size_t)i] = k_b62[sim_rng_below(&r, 62)];
    c->secret[n + (size_t)nhex] = 0;
}

static void load_cred(struct ld *l, const struct sim_world *w, struct fy_node *n,
                      struct sim_identity *id)
{
    struct sim_cred *c = &id->cred;
    char kind[32];
    if (!n) return fail(l, NULL, "identity %s needs a \"credential\"", id->id);
    str(l, n, "kind", kind, sizeof kind, "bearer");
    snprintf(c->id, sizeof c->id, "%s-cred", id->id);
    str(l, n, "id", c->id, sizeof c->id, c->id);
    bool have = str(l, n, "secret", c->secret, sizeof c->secret, NULL);
    if (!strcmp(kind, "bearer")) {
        c->kind = SIM_CRED_BEARER;
        if (!have) derive_secret(w, c, "kwt_", 40);
    } else if (!strcmp(kind, "api_key_header") || !strcmp(kind, "api_key_query")) {
        c->kind = kind[8] == 'h' ? SIM_CRED_APIKEY_HEADER : SIM_CRED_APIKEY_QUERY;
        str(l, n, c->kind == SIM_CRED_APIKEY_HEADER ? "header" : "param", c->param, sizeof c->param,
            c->kind == SIM_CRED_APIKEY_HEADER ? "X-API-Key" : "api_key");
        if (!have) derive_secret(w, c, "ak_live_", 32);
    } else if (!strcmp(kind, "basic")) {
        c->kind = SIM_CRED_BASIC;
        str(l, n, "user", c->user, sizeof c->user, id->id);
        if (!have) derive_secret(w, c, "", 20);
    } else if (!strcmp(kind, "jwt")) {
        c->kind = SIM_CRED_JWT;
        str(l, n, "iss", c->iss, sizeof c->iss, "https://idp.example.internal");
        str(l, n, "sub", c->sub, sizeof c->sub, id->id);
        str(l, n, "client_id", c->client_id, sizeof c->client_id, c->sub);
        str(l, n, "key", c->key, sizeof c->key, "kwsim-demo-signing-key-not-a-secret");
        str(l, n, "scope", c->scope, sizeof c->scope, "api.read api.write");
        char dp[8];
        str(l, n, "dpop", dp, sizeof dp, "false");
        if (!strcmp(dp, "true")) { /* a DPoP-bound token: the key from the world's seed */
            struct sim_rng r;
            sim_rng_fork(&r, sim_hash_str(w->name), sim_hash_str(id->id) ^ 0xd90);
            for (int i = 0; i < 32; i++)
                c->dpop_seed[i] = (uint8_t)sim_rng_below(&r, 256);
            c->dpop = true;
            sim_dpop_key(c);
        }
    } else {
        fail(l, key(n, "kind"),
             "unknown credential kind \"%s\"; use bearer, jwt, api_key_header, api_key_query "
             "or basic",
             kind);
    }
}

static void load_scope(struct ld *l, const struct sim_world *w, struct fy_node *n,
                       struct sim_identity *id)
{
    struct fy_node *it;
    void *iter = NULL;
    if (!n || !fy_node_is_sequence(n))
        return fail(l, NULL, "identity %s needs a \"scope\" list", id->id);
    const struct sim_server *s = &w->srv[id->server];
    while ((it = fy_node_sequence_iterate(n, &iter)) && id->nscope < SIM_MAX_SCOPE) {
        char line[256], meth[64], path[180];
        double weight = 1;
        str(l, it, NULL, line, sizeof line, "");
        int got = sscanf(line, "%63s %179s %lf", meth, path, &weight);
        if (got < 2)
            return fail(l, it, "scope entry \"%s\" must be \"METHOD[,METHOD] PATH [weight]\"",
                        line);
        struct sim_scope *sc = &id->scope[id->nscope];
        sc->weight = weight > 0 ? weight : 1;
        sc->ep = -1;
        for (int i = 0; i < s->nep; i++)
            if (!strcmp(s->ep[i].path, path)) sc->ep = i;
        if (sc->ep < 0)
            return fail(l, it, "scope path \"%s\" is not an endpoint of the identity's server",
                        path);
        for (char *tok = strtok(meth, ","); tok && sc->nmethods < 8; tok = strtok(NULL, ","))
            snprintf(sc->methods[sc->nmethods++], sizeof sc->methods[0], "%s", tok);
        id->nscope++;
    }
}

static void load_schedule(struct ld *l, struct fy_node *n, struct sim_identity *id)
{
    struct fy_node *s = key(n, "schedule");
    str(l, s, "days", id->days_text, sizeof id->days_text, "mon-fri");
    str(l, s, "hours", id->hours_text, sizeof id->hours_text, "09:00-17:00");
    str(l, s, "grace", id->grace_text, sizeof id->grace_text, "30m");
    int64_t g = 0;
    if (parse_days(id->days_text, &id->days))
        fail(l, key(s, "days"),
             "unknown days \"%s\"; use mon..sun, a range like mon-fri, a "
             "list like sat,sun, or daily",
             id->days_text);
    if (parse_hours(id->hours_text, &id->start_min, &id->end_min))
        fail(l, key(s, "hours"), "bad hours \"%s\"; write \"09:00-17:00\" or \"22:00-06:00\"",
             id->hours_text);
    if (sim_parse_duration(id->grace_text, &g))
        fail(l, key(s, "grace"), "bad grace \"%s\"; write 30m or 1h", id->grace_text);
    id->grace_min = (int)(g / 60000000);
    struct fy_node *a = key(n, "access");
    int y, m, d;
    if (str(l, a, "from", id->access_from, sizeof id->access_from, NULL)) {
        if (sim_parse_date(id->access_from, &y, &m, &d))
            fail(l, key(a, "from"), "access dates are YYYY-MM-DD, got \"%s\"", id->access_from);
        id->from_us = sim_local_to_utc(id->tz, y, m, d, 0);
    }
    if (str(l, a, "until", id->access_until, sizeof id->access_until, NULL)) {
        if (sim_parse_date(id->access_until, &y, &m, &d))
            fail(l, key(a, "until"), "access dates are YYYY-MM-DD, got \"%s\"", id->access_until);
        id->until_us = sim_local_to_utc(id->tz, y, m, d, 0);
    }
}

static void load_identity(struct ld *l, struct sim_world *w, struct fy_node *n,
                          struct sim_identity *id)
{
    char b[64];
    str(l, n, "id", id->id, sizeof id->id, NULL);
    if (!id->id[0]) return fail(l, n, "an identity needs an \"id\"");
    str(l, n, "name", id->name, sizeof id->name, id->id);
    str(l, n, "kind", id->kind, sizeof id->kind, "contractor");
    if (strcmp(id->kind, "contractor") && strcmp(id->kind, "employee") &&
        strcmp(id->kind, "service"))
        fail(l, key(n, "kind"), "kind \"%s\" must be contractor, employee or service", id->kind);
    str(l, n, "timezone", id->tz, sizeof id->tz, "UTC");
    char zpath[160];
    snprintf(zpath, sizeof zpath, "/usr/share/zoneinfo/%s", id->tz);
    FILE *zf = fopen(zpath, "rb");
    if (!zf)
        fail(l, key(n, "timezone"), "unknown time zone \"%s\" (not in /usr/share/zoneinfo)",
             id->tz);
    else
        fclose(zf);
    str(l, n, "user_agent", id->ua, sizeof id->ua, "python-requests/2.31.0");
    str(l, n, "server", b, sizeof b, "");
    id->server = find_server(w, b);
    if (id->server < 0)
        return fail(l, n, "identity needs \"server\" naming a server id, got \"%s\"", b);
    load_schedule(l, n, id);
    struct fy_node *nets = key(n, "networks"), *it;
    void *iter = NULL;
    while (nets && (it = fy_node_sequence_iterate(nets, &iter)) && id->nnets < 4) {
        str(l, it, NULL, b, sizeof b, "");
        int k = sim_find_network(w, b);
        if (k < 0) fail(l, it, "unknown network \"%s\"", b);
        id->nets[id->nnets++] = k < 0 ? 0 : k;
    }
    if (!id->nnets) fail(l, n, "identity %s needs \"networks\"", id->id);
    id->ipv6_share = num(l, n, "ipv6_share", 0);
    load_cred(l, w, key(n, "credential"), id);
    load_scope(l, w, key(n, "scope"), id);
    id->rate = num(l, n, "rate", 30);
    id->errors = num(l, n, "errors", 0.02);
    struct fy_node *ids = key(n, "ids");
    id->id_min = 1000;
    id->id_max = 1200;
    if (ids && fy_node_sequence_item_count(ids) == 2) {
        str(l, fy_node_sequence_get_by_index(ids, 0), NULL, b, sizeof b, "1000");
        id->id_min = atoi(b);
        str(l, fy_node_sequence_get_by_index(ids, 1), NULL, b, sizeof b, "1200");
        id->id_max = atoi(b);
    }
    str(l, n, "max_scopes", id->max_scopes, sizeof id->max_scopes, "");
    str(l, n, "session_max_age", id->session_max, sizeof id->session_max, "");
    id->limit_rph = (int)num(l, n, "limit_per_hour", 0);
    if (!id->limit_rph) /* room for a busy day (2x), not for a spike (20x) */
        id->limit_rph = (int)(id->rate * 4 < 40 ? 40 : id->rate * 4);
}

static int find_ident(const struct sim_world *w, const char *id)
{
    for (int i = 0; i < w->nid; i++)
        if (!strcmp(w->id[i].id, id)) return i;
    return -1;
}

static void load_incident(struct ld *l, struct sim_world *w, struct fy_node *n,
                          struct sim_incident *c)
{
    char b[64];
    str(l, n, "id", c->id, sizeof c->id, NULL);
    str(l, n, "scenario", c->scenario, sizeof c->scenario, NULL);
    if (!c->id[0] || !c->scenario[0])
        return fail(l, n, "an incident needs \"id\" and \"scenario\"");
    str(l, n, "identity", b, sizeof b, "");
    c->ident = b[0] ? find_ident(w, b) : -1;
    if (b[0] && c->ident < 0) fail(l, key(n, "identity"), "unknown identity \"%s\"", b);
    c->day = (int)num(l, n, "day", 0);
    str(l, n, "time", b, sizeof b, "");
    int h = -1, m = 0;
    c->time_min = -1;
    if (b[0] && (sscanf(b, "%d:%d", &h, &m) != 2 || h > 23 || m > 59))
        fail(l, key(n, "time"), "time is \"HH:MM\" in the identity's zone, got \"%s\"", b);
    if (h >= 0) c->time_min = h * 60 + m;
    str(l, n, "duration", b, sizeof b, "");
    if (b[0] && sim_parse_duration(b, &c->duration))
        fail(l, key(n, "duration"), "bad duration \"%s\"", b);
    c->factor = num(l, n, "factor", 0);
    c->count = (int)num(l, n, "count", 0);
    str(l, n, "target", c->target, sizeof c->target, "");
    str(l, n, "network", b, sizeof b, "");
    c->net = b[0] ? sim_find_network(w, b) : -1;
    if (b[0] && c->net < 0) fail(l, key(n, "network"), "unknown network \"%s\"", b);
}

#define EACH(seq, it, iter)                                                                        \
    for (void *iter = NULL; seq && (it = fy_node_sequence_iterate(seq, &iter));)

static void load_root(struct ld *l, struct sim_world *w, struct fy_node *root)
{
    struct fy_node *it;
    char b[64];
    str(l, root, "world", w->name, sizeof w->name, "world");
    str(l, root, "start", w->start, sizeof w->start, "2026-03-23");
    w->days = (int)num(l, root, "days", 1);
    w->noise = num(l, root, "noise", 1);
    str(l, root, "dns_resolver", b, sizeof b, "10.0.0.53");
    if (sim_ip_parse(b, &w->resolver)) fail(l, key(root, "dns_resolver"), "bad address \"%s\"", b);
    struct fy_node *s = key(root, "servers");
    EACH(s, it, i1) if (w->nsrv < SIM_MAX_SERVERS) load_server(l, it, &w->srv[w->nsrv++]);
    struct fy_node *nn = key(root, "networks");
    EACH(nn, it, i2) if (w->nnet < SIM_MAX_NETS) load_network(l, it, &w->net[w->nnet++]);
    struct fy_node *ids = key(root, "identities");
    EACH(ids, it, i3) if (w->nid < SIM_MAX_IDENTS) load_identity(l, w, it, &w->id[w->nid++]);
    struct fy_node *inc = key(root, "incidents");
    EACH(inc, it, i4) if (w->ninc < SIM_MAX_INCIDENTS) load_incident(l, w, it, &w->inc[w->ninc++]);
    struct fy_node *sni = key(root, "tls_noise");
    EACH(sni, it, i5) if (w->nsni < 8) str(l, it, NULL, w->noise_sni[w->nsni++], 96, "");
    if (!w->nsrv || !w->nid) fail(l, root, "a world needs \"servers\" and \"identities\"");
}

int sim_world_load(struct sim_world *w, const char *path)
{
    memset(w, 0, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s", path);
    struct ld l = {path, 0};
    struct fy_document *d = fy_document_build_from_file(NULL, path);
    if (!d) {
        fprintf(stderr, "%s: error: cannot read or parse the world file (YAML)\n", path);
        return -1;
    }
    struct fy_node *root = fy_document_root(d);
    if (!root || !fy_node_is_mapping(root))
        fail(&l, root, "the world file must be a mapping");
    else
        load_root(&l, w, root);
    fy_document_destroy(d);
    return l.err;
}
