/* report_data: gathers what `keywarden report` shows (see report.h) from
 * one read-only connection: grouped counts of the audit trail, the stored
 * alert records, and the baselines of the identities.
 *
 * Identities are the rules' first (in their order, with or without
 * activity: an identity that did nothing is news too), then those only the
 * database knows (sorted), then the unattributed credentials. */
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "audit.h"
#include "baseline.h"
#include "kw_log.h"
#include "report.h"
#include "store.h"

#define GROW(arr, n, cap) ((n) < (cap) || grow((void **)&(arr), &(cap), sizeof *(arr)))

static bool grow(void **p, size_t *cap, size_t elem)
{
    size_t nc = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, nc * elem);
    if (!q) return false;
    memset((char *)q + *cap * elem, 0, (nc - *cap) * elem);
    *p = q;
    *cap = nc;
    return true;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

void rep_local(const struct kw_tz *tz, int64_t t, int64_t *day, int *sod)
{
    int64_t local = t + kw_tz_offset(tz, t);
    *day = floor_div(local, 86400);
    *sod = (int)(local - *day * 86400);
}

int rep_wday(int64_t day)
{
    return (int)(((day + 3) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
}

/* ---- identities ---- */

struct gather {
    struct report *r;
    struct baseline *b; /* read-only baselines; NULL when unreadable */
};

static struct rep_ident *find_ident(struct report *r, const char *id)
{
    for (size_t i = 0; i < r->n_ids; i++)
        if (!strcmp(r->ids[i].id, id)) return &r->ids[i];
    return NULL;
}

/* An identity the rules do not describe is drawn in the zone its baseline
 * saw last, so its hours still read as its own. */
static void zone_from_baseline(struct rep_ident *x)
{
    const char *z = json_string_value(json_object_get(x->baseline, "timezone"));
    char err[128];
    if (z && strcmp(z, "UTC") && kw_tz_load(z, &x->own_tz, err, sizeof err) == KW_E_OK)
        x->tz = x->own_tz;
}

static struct rep_ident *add_ident(struct gather *g, const char *id,
                                   const struct rules_identity *rule)
{
    struct report *r = g->r;
    if (!GROW(r->ids, r->n_ids, r->cap_ids)) return NULL;
    struct rep_ident *x = &r->ids[r->n_ids];
    memset(x, 0, sizeof *x);
    x->id = strdup(id);
    if (!x->id) return NULL;
    x->tz = r->utc;
    if (g->b && id[0]) x->baseline = baseline_show_json(g->b, id);
    if (rule) {
        x->rule = rule;
        x->tz = rule->tz;
        x->scope_hits = calloc(rule->n_scope ? rule->n_scope : 1, sizeof *x->scope_hits);
        x->deny_hits = calloc(rule->n_deny ? rule->n_deny : 1, sizeof *x->deny_hits);
        if (!x->scope_hits || !x->deny_hits) {
            free(x->scope_hits);
            free(x->deny_hits);
            free(x->id);
            json_decref(x->baseline);
            return NULL;
        }
    } else if (x->baseline) {
        zone_from_baseline(x);
    }
    r->n_ids++;
    return x;
}

/* The identity an audit row or alert belongs to: created when first seen
 * (unless --identity selects another one). NULL to skip. */
static struct rep_ident *ident_of(struct gather *g, const char *id)
{
    if (g->r->only && strcmp(g->r->only, id)) return NULL;
    struct rep_ident *x = find_ident(g->r, id);
    return x ? x : add_ident(g, id, NULL);
}

static void add_rule_idents(struct gather *g)
{
    const struct rules_model *m = g->r->model;
    for (size_t i = 0; m && i < m->n_identities; i++)
        if (!g->r->only || !strcmp(g->r->only, m->identities[i].id))
            (void)add_ident(g, m->identities[i].id, &m->identities[i]);
}

/* ---- audit groups ---- */

static struct rep_day *day_of(struct rep_ident *x, int64_t day)
{
    for (size_t i = 0; i < x->n_days; i++)
        if (x->days[i].day == day) return &x->days[i];
    if (!GROW(x->days, x->n_days, x->cap_days)) return NULL;
    struct rep_day *d = &x->days[x->n_days++];
    memset(d, 0, sizeof *d);
    d->day = day;
    return d;
}

static void on_quarter(void *user, const struct audit_group_row *g)
{
    struct rep_ident *x = ident_of(user, g->identity);
    if (!x) return;
    int64_t day;
    int sod;
    rep_local(x->tz, floor_div(g->bucket, 1000000), &day, &sod);
    int h = sod / 3600;
    x->heat[rep_wday(day)][h] += g->n;
    struct rep_day *d = day_of(x, day);
    if (d) {
        d->n += g->n;
        d->hours[h] += (uint32_t)g->n;
    }
    x->requests += g->n;
    x->errors += g->n_error;
    if (!x->first || g->first < x->first) x->first = g->first;
    if (g->last > x->last) x->last = g->last;
}

static enum rep_verdict verdict(struct rep_ident *x, const struct audit_group_row *g)
{
    if (!x->rule) return REP_NO_RULE;
    const struct rules_pattern *which = NULL;
    enum rules_scope_verdict v = rules_scope_check(x->rule, g->method, g->host, g->path, &which);
    for (size_t i = 0; i < x->rule->n_scope; i++)
        if (rules_pattern_match(&x->rule->scope[i], g->method, g->host, g->path))
            x->scope_hits[i] += g->n;
    if (v == RULES_SCOPE_DENIED && which >= x->rule->deny &&
        which < x->rule->deny + x->rule->n_deny)
        x->deny_hits[which - x->rule->deny] += g->n;
    return v == RULES_SCOPE_OK       ? REP_ALLOWED
           : v == RULES_SCOPE_DENIED ? REP_DENIED
           : v == RULES_SCOPE_METHOD ? REP_METHOD
                                     : REP_OUT;
}

static void on_path(void *user, const struct audit_group_row *g)
{
    struct rep_ident *x = ident_of(user, g->identity);
    if (!x) return;
    const char *name = g->template_[0] ? g->template_ : g->path;
    struct rep_endpoint *e = NULL;
    for (size_t i = 0; i < x->n_ends && !e; i++)
        if (!strcmp(x->ends[i].method, g->method) && !strcmp(x->ends[i].host, g->host) &&
            !strcmp(x->ends[i].name, name))
            e = &x->ends[i];
    if (!e) {
        if (!GROW(x->ends, x->n_ends, x->cap_ends)) return;
        e = &x->ends[x->n_ends];
        e->method = strdup(g->method);
        e->host = strdup(g->host);
        e->name = strdup(name);
        if (!e->method || !e->host || !e->name) {
            free(e->method);
            free(e->host);
            free(e->name);
            return;
        }
        x->n_ends++;
    }
    e->n += g->n;
    e->n_err += g->n_error;
    e->by[verdict(x, g)] += g->n;
    if (g->last > e->last) e->last = g->last;
}

static void on_source(void *user, const struct audit_group_row *g)
{
    struct rep_ident *x = ident_of(user, g->identity);
    if (!x || !g->src.family) return;
    char net[64];
    baseline_net_str(&g->src, net, sizeof net);
    struct rep_net *e = NULL;
    for (size_t i = 0; i < x->n_nets && !e; i++)
        if (!strcmp(x->nets[i].net, net)) e = &x->nets[i];
    if (!e) {
        if (!GROW(x->nets, x->n_nets, x->cap_nets)) return;
        e = &x->nets[x->n_nets++];
        snprintf(e->net, sizeof e->net, "%s", net);
        e->learned = -1;
    }
    e->n += g->n;
    e->addrs++;
    if (x->rule && x->rule->n_sources && !rules_sources_allow(x->rule, &g->src)) e->n_out += g->n;
    if (g->last > e->last) e->last = g->last;
}

static void on_cred(void *user, const struct audit_group_row *g)
{
    struct rep_ident *x = ident_of(user, g->identity);
    if (!x || !g->fingerprint[0] || !GROW(x->creds, x->n_creds, x->cap_creds)) return;
    struct rep_cred *c = &x->creds[x->n_creds];
    c->fingerprint = strdup(g->fingerprint);
    c->hint = strdup(g->hint);
    if (!c->fingerprint || !c->hint) {
        free(c->fingerprint);
        free(c->hint);
        return;
    }
    c->kind = g->cred_kind;
    c->n = g->n;
    c->n_err = g->n_error;
    c->last = g->last;
    x->n_creds++;
}

/* ---- alerts ---- */

static void on_alert(void *user, kw_ts ts, const char *text)
{
    struct gather *g = user;
    struct report *r = g->r;
    json_t *rec = json_loads(text, 0, NULL);
    if (!json_is_object(rec)) { /* counted and skipped, never fatal */
        r->alerts_bad++;
        json_decref(rec);
        return;
    }
    const char *id = json_string_value(json_object_get(json_object_get(rec, "identity"), "id"));
    struct rep_ident *x = ident_of(g, id ? id : "");
    if (!x || !GROW(x->alerts, x->n_alerts, x->cap_alerts)) {
        json_decref(rec);
        return;
    }
    json_int_t sev = json_integer_value(json_object_get(json_object_get(rec, "alert"), "severity"));
    struct rep_alert *a = &x->alerts[x->n_alerts++];
    a->ts = ts;
    a->rec = rec;
    a->severity = sev >= 1 && sev <= 3 ? (int)sev : 0;
    x->alerts_by_sev[a->severity]++;
    r->alerts++;
}

/* ---- baselines ---- */

/* The networks the baseline learned, next to those of the period. */
static void learned_nets(struct rep_ident *x)
{
    size_t k;
    json_t *v;
    json_array_foreach(json_object_get(x->baseline, "networks"), k, v)
    {
        const char *net = json_string_value(json_object_get(v, "network"));
        if (!net) continue;
        struct rep_net *e = NULL;
        for (size_t j = 0; j < x->n_nets && !e; j++)
            if (!strcmp(x->nets[j].net, net)) e = &x->nets[j];
        if (!e && GROW(x->nets, x->n_nets, x->cap_nets)) {
            e = &x->nets[x->n_nets++];
            snprintf(e->net, sizeof e->net, "%s", net);
        }
        if (e) e->learned = (float)json_number_value(json_object_get(v, "count"));
    }
}

static int cmp_day(const void *a, const void *b)
{
    int64_t x = ((const struct rep_day *)a)->day, y = ((const struct rep_day *)b)->day;
    return (x > y) - (x < y);
}

static int cmp_end(const void *a, const void *b)
{
    const struct rep_endpoint *x = a, *y = b;
    if (x->n != y->n) return x->n < y->n ? 1 : -1;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->method, y->method);
}

static int cmp_net(const void *a, const void *b)
{
    const struct rep_net *x = a, *y = b;
    if (x->n != y->n) return x->n < y->n ? 1 : -1;
    return strcmp(x->net, y->net);
}

static int cmp_cred(const void *a, const void *b)
{
    const struct rep_cred *x = a, *y = b;
    if (x->n != y->n) return x->n < y->n ? 1 : -1;
    return strcmp(x->fingerprint, y->fingerprint);
}

static int cmp_ident(const void *a, const void *b)
{
    const struct rep_ident *x = a, *y = b;
    /* rules' identities first in their order, then by id; unattributed last */
    if (!x->id[0] || !y->id[0]) return !x->id[0] - !y->id[0];
    if (x->rule && y->rule)
        return (x->rule->index > y->rule->index) - (x->rule->index < y->rule->index);
    if (x->rule || y->rule) return x->rule ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* The days of a replayed capture are those of its audit rows, not every
 * day of --since: a quiet day between two busy ones is still drawn. */
static void fill_days(struct rep_ident *x)
{
    if (!x->n_days) return;
    qsort(x->days, x->n_days, sizeof *x->days, cmp_day);
    int64_t lo = x->days[0].day, hi = x->days[x->n_days - 1].day;
    if (hi - lo > 366) return;
    for (int64_t d = lo + 1; d < hi; d++)
        (void)day_of(x, d);
    qsort(x->days, x->n_days, sizeof *x->days, cmp_day);
}

enum kw_err report_gather(struct report *r)
{
    struct gather g = {.r = r};
    sqlite3 *db = NULL;
    r->utc = kw_tz_utc();
    if (!r->utc) return KW_E_NOMEM;
    struct baseline_config bc = {.db_path = r->db_path, .read_only = true};
    if (baseline_new(&bc, &g.b) != KW_E_OK) {
        kw_warn("report: baselines not readable; the report shows no learned ranges");
        g.b = NULL;
    } else {
        struct baseline_stats st;
        baseline_get_stats(g.b, &st);
        r->profiles_skipped = st.load_incompatible;
    }
    add_rule_idents(&g);
    enum kw_err e = store_db_open_ro(r->db_path, &db);
    struct audit_query q = {.identity = r->only, .since = r->since, .until = r->until};
    if (e == KW_E_OK && store_has_table(db, "audit")) {
        static const enum audit_group gs[] = {AUDIT_BY_QUARTER, AUDIT_BY_PATH, AUDIT_BY_SOURCE,
                                              AUDIT_BY_CREDENTIAL};
        void (*const fns[])(void *, const struct audit_group_row *) = {on_quarter, on_path,
                                                                       on_source, on_cred};
        for (size_t i = 0; i < 4 && e == KW_E_OK; i++)
            e = audit_group_run(db, &q, gs[i], fns[i], &g);
    }
    if (e == KW_E_OK) e = alerts_read(db, r->since, r->until, on_alert, &g);
    if (db) store_db_close(db);
    baseline_destroy(g.b);
    if (e != KW_E_OK) return e;
    for (size_t i = 0; i < r->n_ids; i++) {
        struct rep_ident *x = &r->ids[i];
        learned_nets(x);
        fill_days(x);
        qsort(x->ends, x->n_ends, sizeof *x->ends, cmp_end);
        qsort(x->nets, x->n_nets, sizeof *x->nets, cmp_net);
        qsort(x->creds, x->n_creds, sizeof *x->creds, cmp_cred);
    }
    qsort(r->ids, r->n_ids, sizeof *r->ids, cmp_ident);
    return KW_E_OK;
}

void report_free(struct report *r)
{
    for (size_t i = 0; i < r->n_ids; i++) {
        struct rep_ident *x = &r->ids[i];
        free(x->id);
        kw_tz_free(x->own_tz);
        free(x->days);
        for (size_t j = 0; j < x->n_ends; j++) {
            free(x->ends[j].method);
            free(x->ends[j].host);
            free(x->ends[j].name);
        }
        free(x->ends);
        free(x->nets);
        for (size_t j = 0; j < x->n_creds; j++) {
            free(x->creds[j].fingerprint);
            free(x->creds[j].hint);
        }
        free(x->creds);
        free(x->scope_hits);
        free(x->deny_hits);
        for (size_t j = 0; j < x->n_alerts; j++)
            json_decref(x->alerts[j].rec);
        free(x->alerts);
        json_decref(x->baseline);
    }
    free(r->ids);
    kw_tz_free(r->utc);
    r->ids = NULL;
    r->n_ids = 0;
}
