/* sim_incidents: the traffic of each staged incident, and the TLS/DNS noise.
 * The one thing to know: an incident's requests carry its index all the way
 * into truth.jsonl, and each incident draws from its own rng stream, so the
 * rest of the world is identical with or without it. Benign look-alikes that
 * shape a whole day (busy_day, weekend_work, dst_shift, late_work) are
 * planned with the ordinary traffic in sim_plan.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_plan_int.h"

struct inc_ctx {
    struct sim_gen *g;
    const struct sim_incident *c;
    int k, i; /* incident and identity index (i may be -1) */
    const struct sim_identity *id;
    struct sim_rng r;
    int64_t t;
};

static int64_t inc_time(struct inc_ctx *x, int def_min)
{
    int y, m, d, oy, om, od, wd;
    sim_parse_date(x->g->w->start, &y, &m, &d);
    sim_date_add(y, m, d, x->c->day, &oy, &om, &od, &wd);
    return sim_local_to_utc(x->id ? x->id->tz : "UTC", oy, om, od,
                            x->c->time_min >= 0 ? x->c->time_min : def_min);
}

static int other_net(const struct inc_ctx *x)
{
    if (x->c->net >= 0) return x->c->net;
    for (int n = x->g->w->nnet - 1; n >= 0; n--) {
        bool mine = false;
        for (int j = 0; x->id && j < x->id->nnets; j++)
            mine |= x->id->nets[j] == n;
        if (!mine && !x->g->w->net[n].base.v6) return n;
    }
    return -1;
}

static struct sim_session *sess(struct inc_ctx *x, int64_t t, int net)
{
    int server = x->id ? x->id->server : 0;
    return sim_new_session(x->g, t, x->i, server, net, (uint32_t)sim_rng_u64(&x->r), x->k, &x->r);
}

/* n requests on keep-alive connections from net, starting at t, one every
 * `gap` µs on average; each made by sim_normal_req and then `edit`ed. */
typedef void (*inc_edit)(struct inc_ctx *x, struct sim_req *q, int n);

static void burst(struct inc_ctx *x, int64_t t, int n, int64_t gap, int net, int cred,
                  inc_edit edit)
{
    struct sim_session *s = NULL;
    for (int j = 0; j < n; j++) {
        if (!s || s->nreq >= 40) s = sess(x, t - 2000, net);
        struct sim_req *q = sim_new_req(x->g, s, t);
        if (x->i >= 0) sim_normal_req(x->g, &x->r, x->i, cred, q);
        if (edit) edit(x, q, j);
        t += gap / 2 + (int64_t)sim_rng_below(&x->r, (uint64_t)gap);
    }
}

static void edit_out_of_scope(struct inc_ctx *x, struct sim_req *q, int n)
{
    const struct sim_server *sv = &x->g->w->srv[x->id->server];
    const char *tpl = x->c->target;
    for (int e = 0; !tpl[0] && e < sv->nep; e++) {
        bool in = false;
        for (int s = 0; s < x->id->nscope; s++)
            in |= x->id->scope[s].ep == e;
        if (!in) tpl = sv->ep[e].path;
    }
    sim_render_path(q->target, sizeof q->target, tpl, (int)sim_rng_range(&x->r, 1, 5000));
    snprintf(q->method, sizeof q->method, sv->proto == SIM_PROTO_GRPC ? "POST" : "GET");
    sim_add_query_cred(x->g, q);
    q->status = n % 3 == 2 ? 403 : 200;
}

static void edit_delete(struct inc_ctx *x, struct sim_req *q, int n)
{
    for (int s = 0; s < x->id->nscope; s++) {
        const struct sim_scope *sc = &x->id->scope[s];
        const char *p = x->g->w->srv[x->id->server].ep[sc->ep].path;
        bool del = false;
        for (int m = 0; m < sc->nmethods; m++)
            del |= !strcmp(sc->methods[m], "DELETE");
        if (!del && strchr(p, '{')) {
            sim_render_path(q->target, sizeof q->target, p,
                            (int)sim_rng_range(&x->r, x->id->id_min, x->id->id_max));
            sim_add_query_cred(x->g, q);
            break;
        }
    }
    snprintf(q->method, sizeof q->method, "DELETE");
    q->status = 204;
}

static void edit_401(struct inc_ctx *x, struct sim_req *q, int n)
{
    q->status = 401;
}

static void edit_enum(struct inc_ctx *x, struct sim_req *q, int n)
{
    const char *p = NULL;
    for (int s = 0; s < x->id->nscope && !p; s++) {
        const char *e = x->g->w->srv[x->id->server].ep[x->id->scope[s].ep].path;
        if (strchr(e, '{')) p = e;
    }
    sim_render_path(q->target, sizeof q->target, p ? p : "/v1/items/{id}", x->id->id_min + n);
    snprintf(q->method, sizeof q->method, "GET");
    sim_add_query_cred(x->g, q);
    q->status = n % 17 == 16 ? 404 : 200;
}

static void edit_new_id(struct inc_ctx *x, struct sim_req *q, int n)
{
    for (int s = 0; s < x->id->nscope; s++) {
        const char *e = x->g->w->srv[x->id->server].ep[x->id->scope[s].ep].path;
        if (strchr(e, '{')) {
            sim_render_path(q->target, sizeof q->target, e, x->id->id_max + 4711 + n);
            snprintf(q->method, sizeof q->method, "GET");
            sim_add_query_cred(x->g, q);
            q->status = 200;
            return;
        }
    }
}

/* Path tricks that a naive prefix match misses (RFC 3986 §5.2.4 dot
 * segments, §2.1 percent-encoding of unreserved characters, empty segments),
 * and a clean request cut inside the path across two segments. */
static void edit_evasion(struct inc_ctx *x, struct sim_req *q, int n)
{
    const char *t = x->c->target[0] ? x->c->target : "/v1/admin/users";
    const char *s1 = strchr(t + 1, '/'); /* "/admin/users" */
    int v = s1 ? (int)(s1 - t) : 0;      /* length of "/v1" */
    const char *scope_seg = "orders";
    char segbuf[64];
    const char *sp = x->g->w->srv[x->id->server].ep[x->id->scope[0].ep].path;
    if (sscanf(sp, "/%*[^/]/%63[^/]", segbuf) == 1) scope_seg = segbuf;
    switch (n % 5) {
    case 0:
        snprintf(q->target, sizeof q->target, "%.*s/%s/..%s", v, t, scope_seg, s1 ? s1 : t);
        break;
    case 1:
        snprintf(q->target, sizeof q->target, "%.*s/%%%02x%s", v, t, s1 ? s1[1] : 'a',
                 s1 ? s1 + 2 : "");
        break;
    case 2: {
        const char *last = strrchr(t, '/');
        snprintf(q->target, sizeof q->target, "/%.*s/%s", (int)(last - t), t, last + 1);
        break;
    }
    case 3:
        snprintf(q->target, sizeof q->target, "%.*s/./%s", v, t, s1 ? s1 + 1 : "");
        break;
    default:
        snprintf(q->target, sizeof q->target, "%s", t);
        q->split_at = (int16_t)(v + 3);
    }
    snprintf(q->method, sizeof q->method, "GET");
    sim_add_query_cred(x->g, q);
    q->status = 200;
}

static int unknown_cred(struct inc_ctx *x, const char *prefix)
{
    struct sim_cred c = {.kind = SIM_CRED_BEARER};
    snprintf(c.id, sizeof c.id, "unknown-%s-%d", x->c->id, x->g->ncred);
    size_t n = (size_t)snprintf(c.secret, sizeof c.secret, "%s", prefix);
    for (int j = 0; j < 40; j++)
        c.secret[n + (size_t)j] = "0123456789abcdefghijklmnopqrstuvwxyz"[sim_rng_below(&x->r, 36)];
    c.secret[n + 40] = 0;
    return sim_cred_add(x->g, &c, -1);
}

static void edit_stuffing(struct inc_ctx *x, struct sim_req *q, int n)
{
    q->cred = unknown_cred(x, "kwt_");
    char *qs = strchr(q->target, '?'); /* drop any owner's api_key parameter */
    if (qs) *qs = 0;
    q->status = 401;
}

static int scoped(struct inc_ctx *x, const char *scen)
{
    struct sim_gen *g = x->g;
    const struct sim_identity *id = x->id;
    int cred;
    int64_t work = (id->start_min + 120) % 1440;
    int cnt = x->c->count;
    int64_t dur = x->c->duration;
    if (!strcmp(scen, "off_hours")) {
        x->t = inc_time(x, (id->end_min + id->grace_min + 180) % 1440);
        sim_spread(g, &x->r, x->i, x->t, x->t + (dur ? dur : 20 * SIM_MIN_US), cnt ? cnt : 8,
                   id->nets[0], sim_day_cred(g, x->i, x->t), x->k);
        return 0;
    }
    x->t = inc_time(x, (int)work);
    cred = sim_day_cred(g, x->i, x->t - 3 * SIM_HOUR_US);
    if (!strcmp(scen, "out_of_scope"))
        burst(x, x->t, cnt ? cnt : 6, 20000000, id->nets[0], cred, edit_out_of_scope);
    else if (!strcmp(scen, "method_escalation"))
        burst(x, x->t, cnt ? cnt : 3, 15000000, id->nets[0], cred, edit_delete);
    else if (!strcmp(scen, "volume_spike")) {
        int64_t d = dur ? dur : SIM_HOUR_US;
        int n = (int)(id->rate * (x->c->factor > 0 ? x->c->factor : 30) * (double)d / SIM_HOUR_US);
        sim_spread(g, &x->r, x->i, x->t, x->t + d, n, id->nets[0], cred, x->k);
    } else if (!strcmp(scen, "new_source") || !strcmp(scen, "key_sharing")) {
        int net = other_net(x);
        if (net < 0) return -1;
        int64_t d = dur ? dur : 30 * SIM_MIN_US;
        sim_spread(g, &x->r, x->i, x->t, x->t + d, cnt ? cnt : 12, net, cred, x->k);
        if (!strcmp(scen, "key_sharing")) /* the owner keeps working meanwhile */
            sim_spread(g, &x->r, x->i, x->t, x->t + d, cnt ? cnt : 12, id->nets[0], cred, x->k);
    } else if (!strcmp(scen, "failed_auth_burst")) {
        if (id->cred.kind == SIM_CRED_BASIC) { /* right user, wrong password */
            struct sim_cred c = id->cred;
            snprintf(c.secret, sizeof c.secret, "Winter2026!");
            cred = sim_cred_add(g, &c, x->i);
        }
        burst(x, x->t, cnt ? cnt : 40, 3000000, id->nets[0], cred, edit_401);
    } else if (!strcmp(scen, "enumeration"))
        burst(x, x->t, cnt ? cnt : 300, 800000, id->nets[0], cred, edit_enum);
    else if (!strcmp(scen, "scope_evasion"))
        burst(x, x->t, cnt ? cnt : 5, 10000000, id->nets[0], cred, edit_evasion);
    else if (!strcmp(scen, "new_id"))
        burst(x, x->t, cnt ? cnt : 1, 5000000, id->nets[0], cred, edit_new_id);
    else
        return 1;
    return 0;
}

/* OAuth (issue 17). */
static void edit_target(struct inc_ctx *x, struct sim_req *q, int n)
{
    char meth[16] = "POST", path[160] = "/v1/refunds";
    sscanf(x->c->target, "%15s %159s", meth, path);
    snprintf(q->method, sizeof q->method, "%s", meth);
    sim_render_path(q->target, sizeof q->target, path, x->id->id_min + n);
    q->status = !strcmp(meth, "POST") ? 201 : 200;
}

static void edit_dpop_replay(struct inc_ctx *x, struct sim_req *q, int n)
{
    q->dpop = SIM_DPOP_REPLAY;
    q->dpop_iat = x->t;
    /* the one proof sent again: same method and URI each time */
    snprintf(q->method, sizeof q->method, "GET");
    sim_render_path(q->target, sizeof q->target,
                    x->g->w->srv[x->id->server].ep[x->id->scope[0].ep].path, x->id->id_min);
    q->status = 200;
}

static void edit_dpop_htu(struct inc_ctx *x, struct sim_req *q, int n)
{
    q->dpop = SIM_DPOP_HTU;
}

static void edit_dpop_stale(struct inc_ctx *x, struct sim_req *q, int n)
{
    q->dpop = SIM_DPOP_STALE;
}

static void edit_dpop_omit(struct inc_ctx *x, struct sim_req *q, int n)
{
    q->dpop = SIM_DPOP_OMIT;
}

static int oauth_scenarios(struct inc_ctx *x, const char *scen)
{
    struct sim_gen *g = x->g;
    const struct sim_identity *id = x->id;
    int cnt = x->c->count;
    if (id->cred.kind != SIM_CRED_JWT) return -1;
    x->t = inc_time(x, (id->start_min + 140) % 1440);
    int cred = sim_day_cred(g, x->i, x->t - 2 * SIM_HOUR_US);
    bool dpop = id->cred.dpop;
    if (!strcmp(scen, "scope_not_granted")) {
        burst(x, x->t, cnt ? cnt : 3, 20000000, id->nets[0], cred, edit_target);
    } else if (!strcmp(scen, "scope_escalation") || !strcmp(scen, "session_too_old")) {
        struct sim_cred c = g->creds[cred];
        if (scen[1] == 'c') /* a token that grants more than the contract caps */
            snprintf(c.scope + strlen(c.scope), sizeof c.scope - strlen(c.scope), " %s",
                     x->c->target[0] ? x->c->target : "admin:all");
        else /* a session opened two days ago, still accepted */
            c.auth_time = x->t / 1000000 - 2 * 86400;
        sim_jwt_make(&c);
        burst(x, x->t, cnt ? cnt : 4, 30000000, id->nets[0], sim_cred_add(g, &c, x->i), NULL);
    } else if (dpop && !strcmp(scen, "dpop_replay")) {
        burst(x, x->t, cnt ? cnt : 3, 15000000, id->nets[0], cred, edit_dpop_replay);
    } else if (dpop && !strcmp(scen, "dpop_mismatch")) {
        burst(x, x->t, cnt ? cnt : 3, 15000000, id->nets[0], cred, edit_dpop_htu);
    } else if (dpop && !strcmp(scen, "dpop_stale")) {
        burst(x, x->t, cnt ? cnt : 3, 15000000, id->nets[0], cred, edit_dpop_stale);
    } else if (dpop && !strcmp(scen, "dpop_missing")) {
        burst(x, x->t, cnt ? cnt : 3, 15000000, id->nets[0], cred, edit_dpop_omit);
    } else if (!strncmp(scen, "dpop_", 5) || !strncmp(scen, "scope_", 6) ||
               !strcmp(scen, "session_too_old")) {
        return -1; /* needs a DPoP-bound JWT identity */
    } else {
        return 1;
    }
    return 0;
}

static int other_scenarios(struct inc_ctx *x, const char *scen)
{
    struct sim_gen *g = x->g;
    const struct sim_identity *id = x->id;
    int cnt = x->c->count;
    if (!strcmp(scen, "outside_access_window")) {
        if (!id->until_us) return -1;
        x->t = x->c->time_min >= 0 || x->c->day ? inc_time(x, id->start_min + 60)
                                                : id->until_us + (id->start_min + 60) * SIM_MIN_US;
        int cred = sim_day_cred(g, x->i, x->t - SIM_HOUR_US);
        sim_spread(g, &x->r, x->i, x->t, x->t + 30 * SIM_MIN_US, cnt ? cnt : 8, id->nets[0], cred,
                   x->k);
    } else if (!strcmp(scen, "expired_token_accepted")) {
        if (id->cred.kind != SIM_CRED_JWT) return -1;
        x->t = inc_time(x, (id->start_min + 150) % 1440);
        struct sim_cred c = id->cred;
        c.iat = x->t / 1000000 - 3 * 86400;
        c.exp = c.iat + 86400; /* expired two days ago, still answered 200 */
        sim_jwt_make(&c);
        burst(x, x->t, cnt ? cnt : 5, 30000000, id->nets[0], sim_cred_add(g, &c, x->i), NULL);
    } else if (!strcmp(scen, "unknown_credential")) {
        x->t = inc_time(x, (id->start_min + 200) % 1440);
        int net = x->c->net >= 0 ? x->c->net : id->nets[0];
        int cred = unknown_cred(x, "sk_live_");
        burst(x, x->t, cnt ? cnt : 10, 20000000, net, cred, NULL);
    } else if (!strcmp(scen, "credential_stuffing")) {
        x->t = inc_time(x, 3 * 60 + 17);
        int net = other_net(x);
        if (net < 0) return -1;
        burst(x, x->t, cnt ? cnt : 60, 3000000, net, 0, edit_stuffing);
    } else {
        return 1;
    }
    return 0;
}

int sim_plan_incident(struct sim_gen *g, int k)
{
    const struct sim_incident *c = &g->w->inc[k];
    struct inc_ctx x = {.g = g, .c = c, .k = k, .i = c->ident};
    x.id = c->ident >= 0 ? &g->w->id[c->ident] : NULL;
    sim_rng_fork(&x.r, g->seed, sim_hash_str(c->id) ^ 0x1c1de47ULL);
    const char *s = c->scenario;
    if (!sim_scenario_find(s)) {
        fprintf(stderr, "%s: error: incident %s: unknown scenario \"%s\"\n", g->w->path, c->id, s);
        return -1;
    }
    if (!strcmp(s, "late_work") || !strcmp(s, "busy_day") || !strcmp(s, "weekend_work") ||
        !strcmp(s, "dst_shift"))
        return 0; /* planned with the identity's day */
    if (!x.id) {
        fprintf(stderr, "%s: error: incident %s needs an \"identity\"\n", g->w->path, c->id);
        return -1;
    }
    int rc = scoped(&x, s);
    if (rc == 1) rc = other_scenarios(&x, s);
    if (rc == 1) rc = oauth_scenarios(&x, s);
    if (rc)
        fprintf(stderr,
                "%s: error: incident %s (%s) does not fit identity %s (needs a JWT, an "
                "access.until or another network)\n",
                g->w->path, c->id, s, x.id->id);
    g->inc[k].planned = x.t;
    return rc ? -1 : 0;
}

/* TLS to SaaS hosts from the same client networks: opaque to keywarden, but
 * a real mirror is full of it. */
void sim_plan_noise(struct sim_gen *g)
{
    static const char *const def[] = {"telemetry.vendor.example", "login.idp.example",
                                      "cdn.assets.example"};
    struct sim_rng r;
    sim_rng_fork(&r, g->seed, 0x7015e);
    int per_day = (int)(g->noise * (8 + 2 * g->w->nid));
    for (int d = 0; d < g->days; d++) {
        for (int j = 0; j < per_day; j++) {
            int i = (int)sim_rng_below(&r, (uint64_t)g->w->nid);
            const struct sim_identity *id = &g->w->id[i];
            if (g->w->net[id->nets[0]].base.v6) continue;
            int64_t t = g->start_us + d * 86400000000LL +
                        (int64_t)sim_rng_below(&r, 86400000000ULL - 60000000ULL);
            struct sim_session *s =
                sim_new_session(g, t, -1, -1, id->nets[0], (uint32_t)sim_rng_u64(&r), -1, &r);
            s->kind = SIM_SESS_TLS;
            s->sni = g->w->nsni ? g->w->noise_sni[sim_rng_below(&r, (uint64_t)g->w->nsni)]
                                : def[sim_rng_below(&r, 3)];
            s->dns = true;
        }
    }
}
