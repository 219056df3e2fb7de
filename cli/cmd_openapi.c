/* cmd_openapi: `keywarden openapi import FILE --host H` (a service's
 * OpenAPI document, checked and stored in the database: its templates are
 * authoritative for that service from the next run on) and `keywarden
 * openapi export [--identity ID] [--host H]` (an OpenAPI 3.1 document of
 * what was observed: paths, methods, parameter kinds, status codes,
 * counts, first and last seen). Also the loader `run`, `check` and `judge`
 * share for the documents of `services[].openapi` and the imported ones.
 *
 * The one thing to know: export reads the audit trail, not the learned
 * model alone, and puts every row's path through the model as it is now
 * (lookup only), so requests recorded under a name that a later merge
 * renamed are counted under the template they have today. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "cli_specs.h"
#include "cli_util.h"
#include "kw_json.h"
#include "openapi.h"
#include "routes.h"
#include "store.h"

/* ---- loading documents for a run ---- */

struct add_ctx {
    struct oas_set *set;
    char *err;
    size_t errlen;
    enum kw_err e;
};

static bool add_imported(void *user, const char *service, const char *source, const char *text,
                         size_t len)
{
    struct add_ctx *c = user;
    struct oas_doc *d = NULL;
    char name[600];
    snprintf(name, sizeof name, "%s (imported for %s)", source, service);
    c->e = oas_load_mem(name, text, len, &d, c->err, c->errlen);
    if (c->e == KW_E_OK) c->e = oas_set_add(c->set, service, d);
    return c->e == KW_E_OK;
}

enum kw_err cli_specs_load(const struct rules_model *m, const char *db_path, struct oas_set **out,
                           char *err, size_t errlen)
{
    *out = NULL;
    if (errlen) err[0] = 0;
    struct add_ctx c = {.err = err, .errlen = errlen, .e = KW_E_OK};
    enum kw_err e = oas_set_new(&c.set);
    if (e != KW_E_OK) return e;
    /* imported first: a document named in the config for the same service
     * is added after it, and literal matches of either win */
    if (db_path && access(db_path, R_OK) == 0) {
        e = routes_db_each_spec(db_path, add_imported, &c);
        if (e == KW_E_OK) e = c.e;
    }
    const struct rules_config *rc = &m->config;
    for (size_t i = 0; e == KW_E_OK && i < rc->n_services; i++) {
        const struct rules_service *s = &rc->services[i];
        if (!s->openapi) continue;
        struct oas_doc *d = NULL;
        char key[300];
        if (s->port)
            snprintf(key, sizeof key, "%s:%u", s->host, s->port);
        else
            snprintf(key, sizeof key, "%s", s->host);
        e = oas_load(s->openapi, &d, err, errlen);
        if (e == KW_E_OK) e = oas_set_add(c.set, key, d);
    }
    if (e != KW_E_OK) {
        oas_set_destroy(c.set);
        return e;
    }
    *out = c.set;
    return KW_E_OK;
}

/* ---- import ---- */

static int do_import(int argc, char **argv)
{
    static const struct option opts[] = {{"host", 1, NULL, 'H'},
                                         {"db", 1, NULL, 'd'},
                                         {"config", 1, NULL, 'c'},
                                         {"help", 0, NULL, 'h'},
                                         {0}};
    const char *host = NULL, *db_path = NULL, *cfg = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            host = optarg;
            break;
        case 'd':
            db_path = optarg;
            break;
        case 'c':
            cfg = optarg;
            break;
        case 'h':
            printf("usage: keywarden openapi import FILE [--host HOST[:PORT]] [--db PATH] "
                   "[-c CONFIG]\n");
            return 0;
        default:
            return 2;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: keywarden openapi import FILE [--host HOST[:PORT]] [--db PATH] "
                        "[-c CONFIG]\n");
        return 2;
    }
    const char *file = argv[optind];
    char err[1024];
    struct oas_doc *d = NULL;
    enum kw_err e = oas_load(file, &d, err, sizeof err);
    if (e != KW_E_OK) {
        fprintf(stderr, "%s\n", err);
        return e == KW_E_NOMEM ? 1 : 2;
    }
    const char *service = host ? host : d->host;
    if (!service || !service[0]) {
        fprintf(stderr, "keywarden openapi import: %s names no host; give --host api.example\n",
                file);
        oas_free(d);
        return 2;
    }
    char svc[300];
    snprintf(svc, sizeof svc, "%s", service);
    for (char *p = svc; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
    char *from_cfg = !db_path && cfg ? cli_config_db(cfg) : NULL;
    if (!db_path) db_path = from_cfg ? from_cfg : CLI_DEFAULT_DB;
    FILE *f = fopen(file, "rb");
    char *text = NULL;
    size_t len = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        text = n >= 0 ? malloc((size_t)n + 1) : NULL;
        len = text ? fread(text, 1, (size_t)n, f) : 0;
        fclose(f);
    }
    e = text ? routes_db_put_spec(db_path, svc, file, text, len, kw_ts_wall()) : KW_E_IO;
    if (e == KW_E_OK)
        printf("imported %zu endpoints of \"%s\" %s for %s into %s; `keywarden run` uses them "
               "from its next start\n",
               d->n, d->title, d->version, svc, db_path);
    else
        fprintf(stderr, "keywarden openapi import: could not store it in %s\n", db_path);
    free(text);
    free(from_cfg);
    oas_free(d);
    return e == KW_E_OK ? 0 : 1;
}

/* ---- export ---- */

struct status_n {
    int status;
    uint64_t n;
};

struct op {
    char service[300], tmpl[512], method[16];
    uint64_t n;
    kw_ts first, last;
    struct status_n st[16];
    unsigned nst;
};

struct exp_ctx {
    struct routes *model;
    const char *host;
    struct op *ops;
    size_t n, cap;
    uint64_t rows;
};

static struct op *op_get(struct exp_ctx *c, const char *svc, const char *tmpl, const char *m)
{
    for (size_t i = 0; i < c->n; i++) /* a few hundred endpoints: a scan is fine */
        if (!strcmp(c->ops[i].tmpl, tmpl) && !strcmp(c->ops[i].method, m) &&
            !strcmp(c->ops[i].service, svc))
            return &c->ops[i];
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        struct op *o = realloc(c->ops, nc * sizeof *o);
        if (!o) return NULL;
        c->ops = o;
        c->cap = nc;
    }
    struct op *o = &c->ops[c->n++];
    memset(o, 0, sizeof *o);
    snprintf(o->service, sizeof o->service, "%s", svc);
    snprintf(o->tmpl, sizeof o->tmpl, "%s", tmpl);
    snprintf(o->method, sizeof o->method, "%.15s", m);
    return o;
}

static void exp_row(void *user, const struct kw_txn *t)
{
    struct exp_ctx *c = user;
    if (!t->method[0] || (c->host && strcmp(t->hostname, c->host))) return;
    char svc[300], tmpl[512], meth[16];
    snprintf(meth, sizeof meth, "%.15s", t->method);
    snprintf(svc, sizeof svc, "%s:%u", t->hostname, t->dport);
    if (c->model)
        routes_template(c->model, svc, t->method, t->path, strlen(t->path), false, t->ts, tmpl,
                        sizeof tmpl);
    else
        snprintf(tmpl, sizeof tmpl, "%s", t->template_);
    struct op *o = op_get(c, svc, tmpl, meth);
    if (!o) return;
    c->rows++;
    if (!o->n || t->ts < o->first) o->first = t->ts;
    if (t->ts > o->last) o->last = t->ts;
    o->n++;
    unsigned i = 0;
    while (i < o->nst && o->st[i].status != t->status)
        i++;
    if (i == o->nst && o->nst < 16) o->st[o->nst++] = (struct status_n){t->status, 0};
    if (i < o->nst) o->st[i].n++;
}

struct kinds_ctx {
    const char *service, *tmpl;
    uint16_t kinds[16];
    unsigned n;
    bool found;
};

static bool find_kinds(void *user, const struct routes_endpoint *e)
{
    struct kinds_ctx *k = user;
    if (strcmp(e->tmpl, k->tmpl)) return true;
    k->n = e->n_params;
    memcpy(k->kinds, e->param_kinds, sizeof k->kinds);
    k->found = true;
    return false;
}

static json_t *schema_of(uint16_t kinds)
{
    uint16_t ids = kinds & (uint16_t) ~((1u << SHAPE_WORD) | (1u << SHAPE_NAME));
    if (kinds == (1u << SHAPE_INT)) return json_pack("{s:s}", "type", "integer");
    if (kinds == (1u << SHAPE_UUID))
        return json_pack("{s:s,s:s}", "type", "string", "format", "uuid");
    if (kinds == (1u << SHAPE_DATE))
        return json_pack("{s:s,s:s}", "type", "string", "format", "date");
    if (kinds == (1u << SHAPE_EMAIL))
        return json_pack("{s:s,s:s}", "type", "string", "format", "email");
    json_t *s = json_pack("{s:s}", "type", "string");
    json_t *seen = json_array();
    for (int k = 0; k < SHAPE__COUNT; k++)
        if (kinds & (1u << k))
            json_array_append_new(seen, json_string(shape_kind_name((enum shape_kind)k)));
    json_object_set_new(s, "x-keywarden-shapes", seen);
    (void)ids;
    return s;
}

/* "/v1/{id}/x/{id}" -> "/v1/{id}/x/{id2}" (names unique in a path). */
static void unique_names(const char *in, char *out, size_t cap, unsigned *n)
{
    size_t o = 0;
    *n = 0;
    for (const char *p = in; *p && o + 8 < cap;) {
        if (!strncmp(p, "{id}", 4)) {
            ++*n;
            o += (size_t)(*n == 1 ? snprintf(out + o, cap - o, "{id}")
                                  : snprintf(out + o, cap - o, "{id%u}", *n));
            p += 4;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = 0;
}

static json_t *build_doc(struct exp_ctx *c, const char *identity)
{
    char tsb[2][40];
    json_t *paths = json_object(), *servers = json_array();
    for (size_t i = 0; i < c->n; i++) {
        struct op *o = &c->ops[i];
        bool have = false;
        size_t k;
        json_t *v;
        char url[320];
        snprintf(url, sizeof url, "http://%s", o->service);
        json_array_foreach(servers, k, v) have |=
            !strcmp(json_string_value(json_object_get(v, "url")), url);
        if (!have) json_array_append_new(servers, json_pack("{s:s}", "url", url));
        char path[600];
        unsigned np;
        unique_names(o->tmpl, path, sizeof path, &np);
        json_t *item = json_object_get(paths, path);
        if (!item) {
            item = json_object();
            json_object_set_new(paths, path, item);
            struct kinds_ctx kc = {.service = o->service, .tmpl = o->tmpl};
            if (c->model) routes_each_endpoint(c->model, o->service, find_kinds, &kc);
            json_t *params = json_array();
            for (unsigned p = 0; p < np; p++) {
                char name[16];
                snprintf(name, sizeof name, p ? "id%u" : "id", p + 1);
                json_array_append_new(
                    params, json_pack("{s:s,s:s,s:b,s:o}", "name", name, "in", "path", "required",
                                      1, "schema",
                                      kc.found && p < kc.n ? schema_of(kc.kinds[p])
                                                           : json_pack("{s:s}", "type", "string")));
            }
            if (np)
                json_object_set_new(item, "parameters", params);
            else
                json_decref(params);
        }
        char lm[16];
        for (k = 0; k < sizeof lm - 1 && o->method[k]; k++)
            lm[k] = (char)(o->method[k] >= 'A' && o->method[k] <= 'Z' ? o->method[k] + 32
                                                                      : o->method[k]);
        lm[k] = 0;
        json_t *resp = json_object();
        for (unsigned s = 0; s < o->nst; s++) {
            char code[16], desc[64];
            snprintf(code, sizeof code, "%d", o->st[s].status);
            snprintf(desc, sizeof desc, "observed %llu times", (unsigned long long)o->st[s].n);
            json_object_set_new(resp, o->st[s].status ? code : "default",
                                json_pack("{s:s,s:I}", "description",
                                          o->st[s].status ? desc : "no response seen",
                                          "x-keywarden-count", (json_int_t)o->st[s].n));
        }
        json_object_set_new(
            item, lm,
            json_pack("{s:o,s:I,s:s,s:s}", "responses", resp, "x-keywarden-count", (json_int_t)o->n,
                      "x-keywarden-first-seen", kw_ts_format_rfc3339(o->first, tsb[0], 40),
                      "x-keywarden-last-seen", kw_ts_format_rfc3339(o->last, tsb[1], 40)));
    }
    char title[256];
    snprintf(title, sizeof title, "Observed by keywarden%s%s%s%s", identity ? " for " : "",
             identity ? identity : "", c->host ? " on " : "", c->host ? c->host : "");
    return json_pack("{s:s,s:{s:s,s:s,s:s},s:o,s:o,s:{s:I}}", "openapi", "3.1.0", "info", "title",
                     title, "version", "observed", "description",
                     "What keywarden saw on the wire: templates learned from traffic (or from "
                     "the service's own OpenAPI document), methods, status codes and counts "
                     "from the audit trail.",
                     "servers", servers, "paths", paths, "x-keywarden", "requests",
                     (json_int_t)c->rows);
}

static int do_export(int argc, char **argv)
{
    static const struct option opts[] = {{"identity", 1, NULL, 'i'},
                                         {"host", 1, NULL, 'H'},
                                         {"db", 1, NULL, 'd'},
                                         {"config", 1, NULL, 'c'},
                                         {"output", 1, NULL, 'o'},
                                         {"help", 0, NULL, 'h'},
                                         {0}};
    const char *identity = NULL, *host = NULL, *db_path = NULL, *cfg = NULL, *outp = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            identity = optarg;
            break;
        case 'H':
            host = optarg;
            break;
        case 'd':
            db_path = optarg;
            break;
        case 'c':
            cfg = optarg;
            break;
        case 'o':
            outp = optarg;
            break;
        case 'h':
            printf("usage: keywarden openapi export [--identity ID] [--host HOST] [--db PATH] "
                   "[-c CONFIG] [-o FILE]\n");
            return 0;
        default:
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "keywarden openapi export: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    char *from_cfg = !db_path && cfg ? cli_config_db(cfg) : NULL;
    if (!db_path) db_path = from_cfg ? from_cfg : CLI_DEFAULT_DB;
    int rc = 1;
    sqlite3 *db = NULL;
    struct exp_ctx x = {.host = host};
    struct routes_config rcfg = {0};
    if (store_db_open_ro(db_path, &db) != KW_E_OK) {
        fprintf(stderr,
                "keywarden openapi export: no database at %s; run `keywarden run` first "
                "or pass --db PATH\n",
                db_path);
        goto out;
    }
    enum kw_err e = routes_load_ro(db_path, &rcfg, &x.model);
    if (e != KW_E_OK && e != KW_E_NOTFOUND) goto out;
    struct audit_query q = {.identity = identity};
    if (store_version(db, "audit") > 0 && audit_query_run(db, &q, exp_row, &x) != KW_E_OK) goto out;
    json_t *doc = build_doc(&x, identity);
    FILE *f = outp ? fopen(outp, "w") : stdout;
    if (!f) {
        fprintf(stderr, "keywarden openapi export: cannot write %s: %s\n", outp, strerror(errno));
        json_decref(doc);
        goto out;
    }
    rc = json_dumpf(doc, f, JSON_INDENT(2) | JSON_SORT_KEYS) == 0 && fputc('\n', f) != EOF ? 0 : 1;
    if (outp && fclose(f)) rc = 1;
    json_decref(doc);
    if (!x.rows)
        fprintf(stderr, "keywarden openapi export: no request of %s%s%s in the audit trail\n",
                identity ? identity : "anyone", host ? " on " : "", host ? host : "");
out:
    store_db_close(db);
    routes_destroy(x.model);
    free(x.ops);
    free(from_cfg);
    return rc;
}

int cmd_openapi(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "import")) return do_import(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "export")) return do_export(argc - 1, argv + 1);
    fprintf(stderr, "usage: keywarden openapi import FILE [--host HOST[:PORT]] [--db PATH]\n"
                    "       keywarden openapi export [--identity ID] [--host HOST] [--db PATH] "
                    "[-o FILE]\n");
    return argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) ? 0 : 2;
}
