/* sim_output: truth.jsonl, incidents.jsonl and the keywarden configuration
 * (keywarden.yaml + rules.d/<world>.yaml) that describes the world as its
 * security team would. The one thing to know: secrets never reach these
 * files; a credential is named by its world id and its fingerprint, and an
 * API key sent as a query parameter is replaced by "REDACTED" in the target
 * (the field secret_param says which parameter). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sim_gen.h"

void sim_fmt_time(char *buf, size_t n, int64_t us)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t len = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    unsigned frac = (unsigned)(us % 1000000 + 1000000) % 1000000u;
    snprintf(buf + len, n - len, ".%06uZ", frac);
}

static void jstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static int cmp_truth(const void *a, const void *b)
{
    const struct sim_truth *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void redact(char *target, const struct sim_cred *c)
{
    char *v = strstr(target, c->secret);
    if (c->kind != SIM_CRED_APIKEY_QUERY || !v) return;
    size_t n = strlen(c->secret);
    memmove(v + 8, v + n, strlen(v + n) + 1);
    memcpy(v, "REDACTED", 8);
}

static void truth_line(struct sim_gen *g, FILE *f, const struct sim_truth *t)
{
    char ts[40], cip[64], sip[64], fp[72];
    const struct sim_cred *c = &g->creds[t->cred];
    char target[512];
    memcpy(target, t->target, sizeof target);
    redact(target, c);
    sim_fmt_time(ts, sizeof ts, t->ts);
    sim_ip_format(&t->cip, cip, sizeof cip);
    sim_ip_format(&t->sip, sip, sizeof sip);
    sim_fingerprint(c, fp);
    fprintf(f,
            "{\"ts\":%lld,\"time\":\"%s\",\"client_ip\":\"%s\",\"client_port\":%u,"
            "\"server_ip\":\"%s\",\"server_port\":%u,\"method\":\"%s\",\"target\":",
            (long long)t->ts, ts, cip, t->cport, sip, t->sport, t->method);
    jstr(f, target);
    fprintf(f,
            ",\"host\":\"%s\",\"status\":%d,\"request_body_bytes\":%zu,"
            "\"response_body_bytes\":%zu,\"response_identity_bytes\":%zu,",
            g->w->srv[t->server].host, t->status, t->req_body, t->resp_body, t->resp_identity);
    static const char *const kinds[] = {"bearer", "jwt", "api_key", "api_key", "basic"};
    fprintf(f, "\"credential\":\"%s\",\"credential_kind\":\"%s\",\"fingerprint\":\"%s\",", c->id,
            kinds[c->kind], fp);
    if (c->kind == SIM_CRED_APIKEY_QUERY) fprintf(f, "\"secret_param\":\"%s\",", c->param);
    if (t->label >= 0 && (size_t)t->label < g->nlabels) fprintf(f, "%s,", g->labels[t->label]);
    if (t->h2) fprintf(f, "\"protocol\":\"HTTP/2\",\"stream_id\":%u,", t->stream_id);
    if (t->grpc) fprintf(f, "\"grpc_status\":%d,", t->grpc_status);
    fprintf(f,
            "\"identity\":\"%s\",\"incident\":\"%s\",\"lost\":%s,\"pipelined\":%s,"
            "\"split\":%s}\n",
            t->ident >= 0 ? g->w->id[t->ident].id : "",
            t->incident >= 0 ? g->w->inc[t->incident].id : "", t->lost ? "true" : "false",
            t->pipelined ? "true" : "false", t->split ? "true" : "false");
}

int sim_write_truth(struct sim_gen *g, const char *dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/truth.jsonl", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    qsort(g->truth, g->ntruth, sizeof *g->truth, cmp_truth);
    for (size_t i = 0; i < g->ntruth; i++) {
        const struct sim_truth *t = &g->truth[i];
        truth_line(g, f, t);
        if (t->incident >= 0) {
            struct sim_inc_state *s = &g->inc[t->incident];
            if (!s->nreq++ || t->ts < s->first) s->first = t->ts;
            if (t->ts > s->last) s->last = t->ts;
        }
    }
    return fclose(f);
}

static void jlist(FILE *f, const char *csv)
{
    fputc('[', f);
    for (const char *p = csv; *p;) {
        size_t n = strcspn(p, ",");
        fprintf(f, "%s\"%.*s\"", p == csv ? "" : ",", (int)n, p);
        p += n + (p[n] == ',');
    }
    fputc(']', f);
}

/* The generated rules let baselines learn for SIM_LEARNING_DAYS from an
 * identity's first request; no baseline finding can fire before. */
#define SIM_LEARNING_DAYS 14
#define SIM_LEARNING_STR "14d"

static bool baseline_kind(const char *k, size_t n)
{
    static const char *const kinds[] = {"unusual_hour", "new_endpoint", "new_source",
                                        "volume_spike", "key_sharing"};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (strlen(kinds[i]) == n && !strncmp(kinds[i], k, n)) return true;
    return false;
}

/* Splits the scenario's expected kinds: a baseline kind staged while its
 * identity is still learning is only "also" (a correct keywarden cannot
 * raise it yet), everything else stays expected. */
static void split_expected(const char *exp, const char *also, bool learning, char *e_out,
                           char *a_out, size_t cap)
{
    snprintf(a_out, cap, "%s", also);
    e_out[0] = 0;
    for (const char *p = exp; *p;) {
        size_t n = strcspn(p, ",");
        char *dst = learning && baseline_kind(p, n) ? a_out : e_out;
        size_t l = strlen(dst);
        snprintf(dst + l, cap - l, "%s%.*s", l ? "," : "", (int)n, p);
        p += n + (p[n] == ',');
    }
}

/* First request of each identity (ordinary traffic or not), µs. */
static void first_seen(const struct sim_gen *g, int64_t *first)
{
    for (int i = 0; i < g->w->nid; i++)
        first[i] = INT64_MAX;
    for (size_t i = 0; i < g->ntruth; i++) {
        int id = g->truth[i].ident;
        if (id >= 0 && id < g->w->nid && g->truth[i].ts < first[id]) first[id] = g->truth[i].ts;
    }
}

int sim_write_incidents(struct sim_gen *g, const char *dir)
{
    int64_t *first = calloc((size_t)g->w->nid + 1, sizeof *first);
    if (!first) return -1;
    first_seen(g, first);
    char path[700], a[40], b[40];
    snprintf(path, sizeof path, "%s/incidents.jsonl", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        free(first);
        return -1;
    }
    for (int k = 0; k < g->w->ninc; k++) {
        const struct sim_incident *c = &g->w->inc[k];
        const struct sim_inc_state *s = &g->inc[k];
        if (!s->enabled) continue;
        const struct sim_scenario *sc = sim_scenario_find(c->scenario);
        bool learning = c->ident >= 0 &&
                        s->first - first[c->ident] < (int64_t)SIM_LEARNING_DAYS * 86400 * 1000000;
        char exp[256], also[256];
        split_expected(sc->expected, sc->also, learning, exp, also, sizeof exp);
        sim_fmt_time(a, sizeof a, s->first);
        sim_fmt_time(b, sizeof b, s->last);
        fprintf(f,
                "{\"id\":\"%s\",\"scenario\":\"%s\",\"kind\":\"%s\",\"identity\":\"%s\","
                "\"start\":\"%s\",\"end\":\"%s\",\"start_ts\":%lld,\"end_ts\":%lld,"
                "\"requests\":%d,\"benign\":%s,\"expected\":",
                c->id, c->scenario, sc->kind, c->ident >= 0 ? g->w->id[c->ident].id : "", a, b,
                (long long)s->first, (long long)s->last, s->nreq, sc->benign ? "true" : "false");
        jlist(f, exp);
        fprintf(f, ",\"also\":");
        jlist(f, also);
        fprintf(f, ",\"must_not\":");
        jlist(f, sc->benign ? sc->kind : "");
        fprintf(f, "}\n");
    }
    free(first);
    return fclose(f);
}

/* "/v1/customers/{id}/invoices" becomes "/v1/customers/STAR/invoices" (one segment). */
static void scope_path(char *out, size_t cap, const char *tpl)
{
    size_t o = 0;
    for (const char *p = tpl; *p && o + 2 < cap; p++) {
        if (*p == '{' && strchr(p, '}')) {
            out[o++] = '*';
            p = strchr(p, '}');
        } else {
            out[o++] = *p;
        }
    }
    out[o] = 0;
}

static void rules_identity(struct sim_gen *g, FILE *f, const struct sim_identity *id)
{
    const struct sim_server *sv = &g->w->srv[id->server];
    const struct sim_cred *c = &id->cred;
    char fp[72], path[200];
    fprintf(f, "  - id: %s\n    name: \"%s\"\n    kind: %s\n    credentials:\n", id->id, id->name,
            id->kind);
    if (c->kind == SIM_CRED_BASIC)
        fprintf(f, "      - { basic_user: \"%s\" }\n", c->user);
    else if (c->kind == SIM_CRED_JWT)
        fprintf(f, "      - { jwt: { iss: \"%s\", sub: \"%s\" } }\n", c->iss, c->sub);
    else {
        sim_fingerprint(c, fp);
        fprintf(f, "      - { sha256: \"%s\" }   # %s\n", fp + 7, c->id);
    }
    fprintf(f, "    timezone: %s\n    schedule: { days: \"%s\", hours: \"%s\", grace: %s }\n",
            id->tz, id->days_text, id->hours_text, id->grace_text);
    if (id->access_from[0] || id->access_until[0]) {
        fprintf(f, "    access: {");
        if (id->access_from[0])
            fprintf(f, " from: %s%s", id->access_from, id->access_until[0] ? "," : "");
        if (id->access_until[0]) fprintf(f, " until: %s", id->access_until);
        fprintf(f, " }\n");
    }
    fprintf(f, "    sources: [");
    for (int n = 0; n < id->nnets; n++)
        fprintf(f, "%s%s", n ? ", " : " ", g->w->net[id->nets[n]].cidr);
    fprintf(f, " ]\n    scope:\n");
    for (int s = 0; s < id->nscope; s++)
        for (int m = 0; m < id->scope[s].nmethods; m++) {
            scope_path(path, sizeof path, sv->ep[id->scope[s].ep].path);
            fprintf(f, "      - \"%s %s %s\"\n", id->scope[s].methods[m], sv->host, path);
        }
    /* A server-wide deny does not apply to an identity whose scope grants
     * part of it (an employee allowed /v1/admin/users). */
    int ndeny = 0;
    for (int d = 0; d < sv->ndeny; d++) {
        const char *sp = strchr(sv->deny[d], ' ');
        size_t plen = sp ? strcspn(sp + 1, "*") : 0;
        bool granted = false;
        for (int k = 0; sp && k < id->nscope; k++)
            granted |= !strncmp(sv->ep[id->scope[k].ep].path, sp + 1, plen);
        if (granted) continue;
        fprintf(f, "%s\"%s\"", ndeny++ ? ", " : "    deny: [ ", sv->deny[d]);
    }
    if (ndeny) fprintf(f, " ]\n");
    double maxsz = 0;
    for (int s = 0; s < id->nscope; s++)
        if (sv->ep[id->scope[s].ep].size_max > maxsz) maxsz = sv->ep[id->scope[s].ep].size_max;
    fprintf(f, "    limits: { requests_per_hour: %d, response_bytes_per_hour: %dMB }\n",
            id->limit_rph, (int)(id->limit_rph * maxsz / 1e6) + 1);
    if (id->max_scopes[0]) { /* "a b" -> [ "a", "b" ] */
        char buf[sizeof id->max_scopes], *save = NULL;
        snprintf(buf, sizeof buf, "%s", id->max_scopes);
        fprintf(f, "    max_scopes: [");
        int n = 0;
        for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save))
            fprintf(f, "%s\"%s\"", n++ ? ", " : " ", t);
        fprintf(f, " ]\n");
    }
    if (id->session_max[0]) fprintf(f, "    session: { max_age: %s }\n", id->session_max);
}

/* `scopes:` from the endpoints that need OAuth grants (issue 17). */
static void rules_scopes(struct sim_gen *g, FILE *f)
{
    int n = 0;
    char path[200];
    for (int s = 0; s < g->w->nsrv; s++) {
        const struct sim_server *sv = &g->w->srv[s];
        for (int e = 0; e < sv->nep; e++) {
            if (!sv->ep[e].scopes[0]) continue;
            if (!n++) fprintf(f, "scopes:\n");
            scope_path(path, sizeof path, sv->ep[e].path);
            char buf[sizeof sv->ep[e].scopes], *save = NULL;
            snprintf(buf, sizeof buf, "%s", sv->ep[e].scopes);
            fprintf(f, "  \"* %s %s\": [", sv->host, path);
            int k = 0;
            for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save))
                fprintf(f, "%s\"%s\"", k++ ? ", " : " ", t);
            fprintf(f, " ]\n");
        }
    }
}

int sim_write_rules(struct sim_gen *g, const char *dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/rules.d", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/rules.d/%s.yaml", dir, g->w->name);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f,
            "# Generated by kwsim from %s: the world \"%s\" as its security team describes "
            "it.\n# Credentials appear only as fingerprints (sha256 of the secret as sent), "
            "Basic user names\n# or JWT issuer and subject.\nidentities:\n",
            g->w->path, g->w->name);
    for (int i = 0; i < g->w->nid; i++)
        rules_identity(g, f, &g->w->id[i]);
    rules_scopes(g, f);
    fprintf(f, "detections:\n"
               "  unknown_credential: { severity: high }\n"
               "  failed_auth:        { count: 20, window: 2m }\n"
               "  credential_stuffing: { distinct_credentials: 20, window: 5m }\n"
               "  enumeration:        { distinct_ids: 200, window: 5m }\n"
               "  baseline:           { learning: " SIM_LEARNING_STR ", sensitivity: medium }\n");
    if (fclose(f)) return -1;
    snprintf(path, sizeof path, "%s/keywarden.yaml", dir);
    f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f,
            "# Generated by kwsim for the world \"%s\".\ncredentials:\n"
            "  - { header: Authorization }\n",
            g->w->name);
    char seen[SIM_MAX_IDENTS][64];
    int nseen = 0;
    for (int i = 0; i < g->w->nid; i++) {
        const struct sim_cred *c = &g->w->id[i].cred;
        if (c->kind != SIM_CRED_APIKEY_HEADER && c->kind != SIM_CRED_APIKEY_QUERY) continue;
        bool dup = false;
        for (int k = 0; k < nseen; k++)
            dup |= !strcmp(seen[k], c->param);
        if (dup) continue;
        snprintf(seen[nseen++], 64, "%s", c->param);
        fprintf(f, "  - { %s: %s }\n", c->kind == SIM_CRED_APIKEY_HEADER ? "header" : "query",
                c->param);
    }
    fprintf(f, "storage: { database: keywarden.db }\noutputs: { eve: eve.json }\n"
               "alerts:\n  suppress: { window: 1h }\nrules: rules.d\n");
    if (g->tls) /* the simulated sessions' secrets (--tls) */
        fprintf(f, "tls: { keylog: [ keys.log ] }\n");
    return fclose(f);
}
