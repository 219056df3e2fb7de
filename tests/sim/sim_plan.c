/* sim_plan: every session and request of the world, decided up front.
 * The one thing to know: each identity-day and each incident draws from its
 * own rng stream (seed, identity, day), so turning an incident on or off
 * changes only the traffic of that incident. Schedules are converted with
 * the identity's zone rules (mktime under TZ), so a DST change moves the UTC
 * hours but not the local ones. */
#include "sim_gen.h"
#include "sim_plan_int.h"

#include <math.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOUR_US 3600000000LL
#define MIN_US 60000000LL

const struct sim_scenario sim_scenarios[] = {
    {"off_hours", "off_hours", "off_hours", "unusual_hour", false},
    {"out_of_scope", "out_of_scope", "out_of_scope", "new_endpoint", false},
    {"method_escalation", "method_not_allowed", "method_not_allowed", "out_of_scope,new_endpoint",
     false},
    {"volume_spike", "rate_exceeded", "rate_exceeded", "volume_spike", false},
    {"new_source", "new_source", "source_not_allowed", "new_source", false},
    {"key_sharing", "key_sharing", "key_sharing,source_not_allowed", "new_source", false},
    {"outside_access_window", "outside_access_window", "outside_access_window",
     "off_hours,unusual_hour", false},
    {"failed_auth_burst", "failed_auth_burst", "failed_auth_burst", "rate_exceeded", false},
    {"credential_stuffing", "credential_stuffing", "credential_stuffing",
     "unknown_credential,failed_auth_burst", false},
    {"unknown_credential", "unknown_credential", "unknown_credential", "", false},
    {"scope_evasion", "out_of_scope", "out_of_scope", "new_endpoint", false},
    {"enumeration", "enumeration", "enumeration", "rate_exceeded,volume_spike", false},
    {"expired_token_accepted", "expired_token_accepted", "expired_token_accepted", "", false},
    {"scope_not_granted", "scope_not_granted_accepted", "scope_not_granted_accepted",
     "out_of_scope,method_not_allowed,new_endpoint", false},
    {"scope_escalation", "scope_escalation", "scope_escalation", "", false},
    {"session_too_old", "session_too_old", "session_too_old", "", false},
    {"dpop_replay", "dpop_replay", "dpop_replay", "", false},
    {"dpop_mismatch", "dpop_mismatch", "dpop_mismatch", "", false},
    {"dpop_stale", "dpop_stale", "dpop_stale", "", false},
    {"dpop_missing", "dpop_missing", "dpop_missing", "", false},
    {"late_work", "off_hours", "", "", true},
    {"busy_day", "volume_spike", "", "", true},
    {"new_id", "new_endpoint", "", "", true},
    {"weekend_work", "off_hours", "", "", true},
    {"dst_shift", "off_hours", "", "", true},
    {NULL, NULL, NULL, NULL, false},
};

const struct sim_scenario *sim_scenario_find(const char *name)
{
    for (const struct sim_scenario *s = sim_scenarios; s->name; s++)
        if (!strcmp(s->name, name)) return s;
    return NULL;
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return p;
    size_t nc = *cap ? *cap * 2 : 256;
    while (nc < need)
        nc *= 2;
    p = realloc(p, nc * elem);
    if (!p) abort();
    *cap = nc;
    return p;
}

int sim_cred_add(struct sim_gen *g, const struct sim_cred *c, int ident)
{
    size_t cap = (size_t)g->capcred;
    g->creds = grow(g->creds, &cap, (size_t)g->ncred + 1, sizeof *g->creds);
    size_t cap2 = (size_t)g->capcred;
    g->cred_ident = grow(g->cred_ident, &cap2, (size_t)g->ncred + 1, sizeof *g->cred_ident);
    g->capcred = (int)cap;
    g->creds[g->ncred] = *c;
    g->cred_ident[g->ncred] = ident;
    return g->ncred++;
}

void sim_b64(const uint8_t *in, size_t n, char *out, bool url)
{
    const char *t = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                        : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (i + 1 < n ? in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = t[v >> 6 & 63];
        else if (!url)
            out[o++] = '=';
        if (i + 2 < n)
            out[o++] = t[v & 63];
        else if (!url)
            out[o++] = '=';
    }
    out[o] = 0;
}

/* RFC 7519 JWT, HS256 (RFC 7515 §A.1) with the world's made-up key. */
void sim_jwt_make(struct sim_cred *c)
{
    char payload[1000], hp[1500], hb[64], pb[1400], extra[200] = "";
    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    if (c->auth_time)
        snprintf(extra, sizeof extra, ",\"auth_time\":%lld", (long long)c->auth_time);
    if (c->dpop)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ",\"cnf\":{\"jkt\":\"%s\"}",
                 c->dpop_jkt);
    snprintf(payload, sizeof payload,
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"client_id\":\"%s\",\"aud\":\"api\","
             "\"scope\":\"%s\",\"iat\":%lld,\"exp\":%lld%s}",
             c->iss, c->sub, c->client_id, c->scope[0] ? c->scope : "api.read api.write",
             (long long)c->iat, (long long)c->exp, extra);
    sim_b64((const uint8_t *)hdr, strlen(hdr), hb, true);
    sim_b64((const uint8_t *)payload, strlen(payload), pb, true);
    if ((size_t)snprintf(hp, sizeof hp, "%s.%s", hb, pb) >= sizeof hp) abort();
    uint8_t mac[32];
    unsigned ml = 0;
    HMAC(EVP_sha256(), c->key, (int)strlen(c->key), (const uint8_t *)hp, strlen(hp), mac, &ml);
    char sb[64];
    sim_b64(mac, ml, sb, true);
    if ((size_t)snprintf(c->secret, sizeof c->secret, "%s.%s", hp, sb) >= sizeof c->secret) abort();
}

/* What keywarden fingerprints: the secret exactly as sent; Basic by user. */
void sim_fingerprint(const struct sim_cred *c, char out[72])
{
    const char *s = c->kind == SIM_CRED_BASIC ? c->user : c->secret;
    uint8_t h[32];
    SHA256((const uint8_t *)s, strlen(s), h);
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", h[i]);
}

void sim_client_ip(const struct sim_world *w, int net, uint32_t host, struct sim_ip *ip)
{
    const struct sim_network *n = &w->net[net];
    *ip = n->base;
    if (n->base.v6) {
        for (int i = 0; i < 4; i++)
            ip->a[12 + i] = (uint8_t)(host >> (24 - 8 * i));
        ip->a[15] |= 1;
        return;
    }
    uint32_t size = n->prefix >= 31 ? 1 : (1u << (32 - n->prefix)) - 2;
    uint32_t base = (uint32_t)ip->a[0] << 24 | ip->a[1] << 16 | ip->a[2] << 8 | ip->a[3];
    uint32_t a = n->prefix >= 31 ? base : base + 1 + host % size;
    for (int i = 0; i < 4; i++)
        ip->a[i] = (uint8_t)(a >> (24 - 8 * i));
}

struct sim_session *sim_new_session(struct sim_gen *g, int64_t t, int ident, int server, int net,
                                    uint32_t host, int incident, struct sim_rng *r)
{
    g->sess = grow(g->sess, &g->capsess, g->nsess + 1, sizeof *g->sess);
    struct sim_session *s = &g->sess[g->nsess];
    memset(s, 0, sizeof *s);
    s->t = t;
    s->order = g->nsess++;
    s->kind = SIM_SESS_HTTP;
    s->ident = ident;
    s->server = server;
    s->net = net;
    s->host = host;
    s->sport = (uint16_t)sim_rng_range(r, 32768, 60999);
    s->first_req = g->nreq;
    s->seed = sim_rng_u64(r);
    s->incident = incident;
    s->dns = sim_rng_chance(r, 0.15 * g->noise);
    return s;
}

struct sim_req *sim_new_req(struct sim_gen *g, struct sim_session *s, int64_t want)
{
    g->reqs = grow(g->reqs, &g->capreq, g->nreq + 1, sizeof *g->reqs);
    struct sim_req *q = &g->reqs[g->nreq++];
    memset(q, 0, sizeof *q);
    q->want = want;
    q->split_at = -1;
    q->label = -1;
    q->incident = s->incident;
    s->nreq++;
    return q;
}

/* Replace "{id}" (any {...}) in a template by a number. */
void sim_render_path(char *out, size_t cap, const char *tpl, int id)
{
    size_t o = 0;
    for (const char *p = tpl; *p && o + 12 < cap; p++) {
        if (*p == '{') {
            const char *e = strchr(p, '}');
            if (e) {
                o += (size_t)snprintf(out + o, cap - o, "%d", id);
                p = e;
                continue;
            }
        }
        out[o++] = *p;
    }
    out[o] = 0;
}

void sim_add_query_cred(struct sim_gen *g, struct sim_req *q)
{
    const struct sim_cred *c = &g->creds[q->cred];
    if (c->kind != SIM_CRED_APIKEY_QUERY) return;
    size_t n = strlen(q->target);
    snprintf(q->target + n, sizeof q->target - n, "%c%s=%s", strchr(q->target, '?') ? '&' : '?',
             c->param, c->secret);
}

static void set_response(struct sim_req *q, const struct sim_endpoint *e, struct sim_rng *r)
{
    double lo = log(e->size_min), hi = log(e->size_max);
    q->resp_size = (uint32_t)exp(lo + (hi - lo) * sim_rng_unit(r));
    q->gzip = (uint8_t)sim_rng_chance(r, e->gzip);
    q->chunked = (uint8_t)sim_rng_chance(r, e->chunked);
}

/* One ordinary request of identity i: a scope entry by weight, a method, an
 * id from the usual range, the usual mix of answers. */
void sim_normal_req(struct sim_gen *g, struct sim_rng *r, int i, int cred, struct sim_req *q)
{
    const struct sim_identity *id = &g->w->id[i];
    const struct sim_server *sv = &g->w->srv[id->server];
    double tot = 0, pick;
    for (int k = 0; k < id->nscope; k++)
        tot += id->scope[k].weight;
    pick = sim_rng_unit(r) * tot;
    int k = 0;
    for (; k < id->nscope - 1 && pick >= id->scope[k].weight; k++)
        pick -= id->scope[k].weight;
    const struct sim_scope *sc = &id->scope[k];
    int m = sc->nmethods > 1 && sim_rng_chance(r, 0.25)
                ? 1 + (int)sim_rng_below(r, (uint64_t)sc->nmethods - 1)
                : 0;
    snprintf(q->method, sizeof q->method, "%s", sc->methods[m]);
    const struct sim_endpoint *e = &sv->ep[sc->ep];
    sim_render_path(q->target, sizeof q->target, e->path,
                    (int)sim_rng_range(r, id->id_min, id->id_max));
    if (!strcmp(q->method, "GET") && !strchr(e->path, '{') && sim_rng_chance(r, 0.4))
        snprintf(q->target + strlen(q->target), sizeof q->target - strlen(q->target),
                 "?page=%d&limit=%d", (int)sim_rng_range(r, 1, 12), 50);
    q->cred = cred;
    sim_add_query_cred(g, q);
    set_response(q, e, r);
    q->status = !strcmp(q->method, "POST") ? 201 : !strcmp(q->method, "DELETE") ? 204 : 200;
    if (sim_rng_chance(r, id->errors)) {
        static const int errs[] = {404, 404, 400, 429, 500, 503};
        q->status = errs[sim_rng_below(r, 6)];
    }
}

/* The credential identity i sends on day `day`: its own, or for a JWT a token
 * issued that day (so exp is always in the future for ordinary traffic). */
int sim_day_cred(struct sim_gen *g, int i, int64_t day_start)
{
    const struct sim_cred *c = &g->w->id[i].cred;
    if (c->kind != SIM_CRED_JWT) return i;
    struct sim_cred j = *c;
    j.iat = day_start / 1000000 - 3600;
    j.exp = j.iat + 2 * 86400;
    sim_jwt_make(&j);
    return sim_cred_add(g, &j, i);
}

/* Spread n requests of identity i over [a, b) and group them into keep-alive
 * sessions (a pause over ~45 s or a full connection starts a new one). */
void sim_spread(struct sim_gen *g, struct sim_rng *r, int i, int64_t a, int64_t b, int n, int net,
                int cred, int incident)
{
    if (n <= 0 || b <= a) return;
    int64_t *ts = malloc((size_t)n * sizeof *ts);
    for (int k = 0; k < n; k++)
        ts[k] = a + (int64_t)sim_rng_below(r, (uint64_t)(b - a));
    for (int k = 1; k < n; k++) /* insertion sort: n is small per window */
        for (int j = k; j > 0 && ts[j] < ts[j - 1]; j--) {
            int64_t t = ts[j];
            ts[j] = ts[j - 1];
            ts[j - 1] = t;
        }
    const struct sim_identity *id = &g->w->id[i];
    uint32_t host = (uint32_t)sim_rng_u64(r);
    struct sim_session *s = NULL;
    int max = 0;
    for (int k = 0; k < n; k++) {
        if (!s || s->nreq >= max || ts[k] - ts[k - 1] > 45000000) {
            int nn =
                net >= 0
                    ? net
                    : id->nets[sim_rng_chance(r, 0.8) ? 0 : sim_rng_below(r, (uint64_t)id->nnets)];
            if (g->w->net[nn].base.v6 && !g->w->srv[id->server].has_ip6) nn = id->nets[0];
            s = sim_new_session(g, ts[k] - 2000, i, id->server, nn, host, incident, r);
            max = (int)sim_rng_range(r, 3, 40);
        }
        sim_normal_req(g, r, i, cred, sim_new_req(g, s, ts[k]));
    }
    free(ts);
}

void sim_date_add(int y, int m, int d, int add, int *oy, int *om, int *od, int *wday)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d + add, .tm_hour = 12};
    time_t t = timegm(&tm);
    gmtime_r(&t, &tm);
    *oy = tm.tm_year + 1900;
    *om = tm.tm_mon + 1;
    *od = tm.tm_mday;
    *wday = tm.tm_wday;
}

/* Incidents that shape a whole scheduled day: busy_day, weekend_work,
 * dst_shift (factor and tag) and late_work (stretch the end in grace). */
static int day_incident(struct sim_gen *g, int i, int dd, const char *scen)
{
    for (int k = 0; k < g->w->ninc; k++) {
        const struct sim_incident *c = &g->w->inc[k];
        if (g->inc[k].enabled && c->ident == i && c->day == dd && !strcmp(c->scenario, scen))
            return k;
    }
    return -1;
}

static void plan_identity(struct sim_gen *g, int i)
{
    const struct sim_identity *id = &g->w->id[i];
    int y, m, d;
    sim_parse_date(g->w->start, &y, &m, &d);
    for (int dd = -1; dd < g->days; dd++) {
        int ly, lm, ld, wd;
        sim_date_add(y, m, d, dd, &ly, &lm, &ld, &wd);
        if (!(id->days >> wd & 1)) continue;
        struct sim_rng r;
        sim_rng_fork(&r, g->seed, sim_hash_str(id->id) * 31 + (uint64_t)(dd + 7));
        int64_t ws = sim_local_to_utc(id->tz, ly, lm, ld, id->start_min);
        int64_t we =
            sim_local_to_utc(id->tz, ly, lm, ld + (id->end_min <= id->start_min), id->end_min);
        bool svc = !strcmp(id->kind, "service");
        int64_t a = ws + (svc ? 0 : (int64_t)sim_rng_below(&r, 20 * MIN_US));
        int64_t b = we - (svc ? 0 : (int64_t)sim_rng_below(&r, 20 * MIN_US)) - MIN_US;
        double factor = 1;
        int tag = -1;
        const char *day_kinds[] = {"busy_day", "weekend_work", "dst_shift"};
        for (int k = 0; k < 3 && tag < 0; k++)
            if ((tag = day_incident(g, i, dd, day_kinds[k])) >= 0 && g->w->inc[tag].factor > 0)
                factor = g->w->inc[tag].factor;
        if (a < g->start_us) a = g->start_us;
        if (b > g->end_us) b = g->end_us;
        if (id->from_us && a < id->from_us) a = id->from_us;
        if (id->until_us && b > id->until_us) b = id->until_us;
        if (b <= a) continue;
        double hours = (double)(b - a) / HOUR_US;
        int n = (int)lround(id->rate * hours * factor * (0.85 + 0.3 * sim_rng_unit(&r)));
        int cred = sim_day_cred(g, i, ws);
        sim_spread(g, &r, i, a, b, n, -1, cred, tag);
        int late = day_incident(g, i, dd, "late_work");
        if (late >= 0 && we < g->end_us) { /* ends within grace: 5..(grace-5) min late */
            int64_t e =
                we +
                (int64_t)sim_rng_range(&r, 5, id->grace_min > 10 ? id->grace_min - 5 : 5) * MIN_US;
            sim_spread(g, &r, i, we - 10 * MIN_US, e, 6 + (int)sim_rng_below(&r, 6), -1, cred,
                       late);
        }
    }
}

int sim_plan(struct sim_gen *g)
{
    for (int i = 0; i < g->w->nid; i++)
        if (sim_cred_add(g, &g->w->id[i].cred, i) != i) return -1;
    for (int i = 0; i < g->w->nid; i++)
        plan_identity(g, i);
    for (int k = 0; k < g->w->ninc; k++)
        if (g->inc[k].enabled && sim_plan_incident(g, k)) return -1;
    sim_plan_noise(g);
    return 0;
}
