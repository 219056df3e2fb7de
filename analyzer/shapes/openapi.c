/* openapi: reading OpenAPI documents and matching requests against them
 * (see openapi.h). The one thing to know: the matcher is a trie of path
 * segments per service; a literal segment is tried before a templated one
 * at every level and the search backtracks, so /users/me wins over
 * /users/{id} and /users/{id}/keys is still found. */
#include "openapi.h"

#include <ctype.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kw_yaml.h"

static const char *const methods[] = {"GET",     "PUT",  "POST",  "DELETE",
                                      "OPTIONS", "HEAD", "PATCH", "TRACE"};
#define N_METHODS 8

struct rd {
    const char *name;
    char *err;
    size_t errlen;
    bool failed;
    struct oas_doc *d;
};

static void fail_at(struct rd *c, struct fy_node *n, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* libfyaml marks tokens: a node's position is its first scalar's */
static void node_pos(struct fy_node *n, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (int depth = 0; n && depth < 64; depth++) {
        if (fy_node_get_type(n) == FYNT_SCALAR) {
            struct fy_token *t = fy_node_get_scalar_token(n);
            const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
            if (m) {
                *line = m->line + 1;
                *col = m->column + 1;
            }
            return;
        }
        void *it = NULL;
        if (fy_node_get_type(n) == FYNT_MAPPING) {
            struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
            n = p ? fy_node_pair_key(p) : NULL;
        } else {
            n = fy_node_sequence_iterate(n, &it);
        }
    }
}

static void fail_at(struct rd *c, struct fy_node *n, const char *hint, const char *fmt, ...)
{
    if (c->failed) return;
    c->failed = true;
    int line, col;
    node_pos(n, &line, &col);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s:%d:%d: error: %s%s%s", c->name, line, col, msg,
             hint ? "; " : "", hint ? hint : "");
}

static struct fy_node *get(struct fy_node *map, const char *key)
{
    if (!map || fy_node_get_type(map) != FYNT_MAPPING) return NULL;
    return fy_node_mapping_lookup_by_string(map, key, FY_NT);
}

static const char *scalar(struct fy_node *n)
{
    return n && fy_node_get_type(n) == FYNT_SCALAR ? fy_node_get_scalar0(n) : NULL;
}

/* Follows "$ref": "#/a/b" (JSON pointer, RFC 6901 escapes) inside the
 * document, up to 16 times. */
static struct fy_node *deref(struct rd *c, struct fy_document *doc, struct fy_node *n)
{
    for (int depth = 0; n && depth < 17; depth++) {
        struct fy_node *ref = get(n, "$ref");
        const char *r = scalar(ref);
        if (!ref) return n;
        if (depth == 16) {
            fail_at(c, ref, "break the cycle of references", "$ref: more than 16 references");
            return NULL;
        }
        if (!r || strncmp(r, "#/", 2)) {
            fail_at(c, ref, "only references inside the document (#/...) are read",
                    "$ref \"%s\" is not a local reference", r ? r : "");
            return NULL;
        }
        struct fy_node *cur = fy_document_root(doc);
        for (const char *p = r + 2; cur && *p;) {
            size_t l = strcspn(p, "/");
            char key[256];
            size_t k = 0;
            for (size_t i = 0; i < l && k + 1 < sizeof key; i++) {
                if (p[i] == '~' && i + 1 < l && (p[i + 1] == '0' || p[i + 1] == '1')) {
                    key[k++] = p[i + 1] == '0' ? '~' : '/';
                    i++;
                } else {
                    key[k++] = p[i];
                }
            }
            key[k] = 0;
            cur = get(cur, key);
            p += l + (p[l] == '/');
        }
        if (!cur) {
            fail_at(c, ref, "check the name after #/", "$ref \"%s\" goes nowhere", r);
            return NULL;
        }
        n = cur;
    }
    return n;
}

static const char *kind_of(const char *type, const char *format)
{
    if (!type) type = "";
    if (!format) format = "";
    if (!strcmp(type, "integer")) return "int";
    if (!strcmp(type, "number")) return "number";
    if (!strcmp(type, "boolean")) return "bool";
    if (!strcmp(format, "uuid")) return "uuid";
    if (!strcmp(format, "date") || !strcmp(format, "date-time")) return "date";
    if (!strcmp(format, "email")) return "email";
    return "string";
}

/* The path parameters of a path item and an operation (the operation's
 * win by name), kinds from their schema (3.x) or themselves (2.0). */
static void add_params(struct rd *c, struct fy_document *doc, struct fy_node *list,
                       struct oas_endpoint *e)
{
    if (!list) return;
    if (fy_node_get_type(list) != FYNT_SEQUENCE) {
        fail_at(c, list, "write a list of parameters", "parameters is not a list");
        return;
    }
    void *it = NULL;
    struct fy_node *p;
    while (!c->failed && (p = fy_node_sequence_iterate(list, &it))) {
        p = deref(c, doc, p);
        if (!p) return;
        const char *in = scalar(get(p, "in")), *name = scalar(get(p, "name"));
        if (!in || strcmp(in, "path")) continue;
        if (!name) {
            fail_at(c, p, "give the parameter a name", "a path parameter without name");
            return;
        }
        struct fy_node *sch = get(p, "schema");
        if (sch) sch = deref(c, doc, sch);
        if (c->failed) return;
        const char *kind =
            kind_of(scalar(get(sch ? sch : p, "type")), scalar(get(sch ? sch : p, "format")));
        unsigned i = 0;
        while (i < e->n_params && strcmp(e->params[i].name, name))
            i++;
        if (i == e->n_params) {
            struct oas_param *np = realloc(e->params, (e->n_params + 1) * sizeof *np);
            if (!np) return;
            e->params = np;
            e->params[e->n_params].name = strdup(name);
            e->n_params++;
        }
        e->params[i].kind = kind;
    }
}

/* host and base path: "host"/"basePath" (2.0) or servers[0].url (3.x),
 * its {variables} replaced by their defaults. */
static void server_of(struct rd *c, struct fy_node *root, bool v2)
{
    char url[1024] = "";
    if (v2) {
        snprintf(url, sizeof url, "%s%s", scalar(get(root, "host")) ? "//" : "",
                 scalar(get(root, "host")) ? scalar(get(root, "host")) : "");
        const char *bp = scalar(get(root, "basePath"));
        if (bp) snprintf(url + strlen(url), sizeof url - strlen(url), "%s", bp);
    } else {
        struct fy_node *sv = get(root, "servers");
        struct fy_node *s0 = sv && fy_node_get_type(sv) == FYNT_SEQUENCE
                                 ? fy_node_sequence_get_by_index(sv, 0)
                                 : NULL;
        const char *u = scalar(get(s0, "url"));
        struct fy_node *vars = get(s0, "variables");
        for (size_t o = 0; u && *u && o + 1 < sizeof url;) {
            const char *e = *u == '{' ? strchr(u, '}') : NULL;
            if (e) {
                char v[128];
                snprintf(v, sizeof v, "%.*s", (int)(e - u - 1), u + 1);
                const char *def = scalar(get(get(vars, v), "default"));
                o += (size_t)snprintf(url + o, sizeof url - o, "%s", def ? def : "");
                u = e + 1;
            } else {
                url[o++] = *u++;
                url[o] = 0;
            }
        }
    }
    const char *p = url, *sch = strstr(url, "//");
    const char *h = "";
    size_t hl = 0;
    if (sch) {
        h = sch + 2;
        hl = strcspn(h, "/");
        p = h + hl;
    }
    c->d->host = strndup(h, hl);
    char *colon = c->d->host ? strchr(c->d->host, ':') : NULL;
    if (colon) *colon = 0; /* a port in the document says nothing about the mirror's view */
    for (char *q = c->d->host; q && *q; q++)
        *q = (char)tolower((unsigned char)*q);
    size_t pl = strlen(p);
    while (pl && p[pl - 1] == '/')
        pl--;
    c->d->base = strndup(p, pl);
}

/* An OAuth scope as RFC 6749 §3.3 allows it (no spaces: sets are
 * space-separated). */
static bool scope_ok(const char *s)
{
    if (!*s || strlen(s) >= 256) return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\')
            return false;
    return true;
}

/* An operation's scope requirement from `security` (the operation's, or
 * the document's when it has none): a list of requirement objects, any
 * one of which suffices, each naming schemes whose listed scopes are all
 * needed. Only the scopes of OAuth 2 and OpenID Connect schemes are grants
 * a token shows (in 3.1 other schemes may list roles, which no token here
 * carries); a scheme the document does not declare is read as not OAuth.
 * An alternative that needs no scope (an API key alone, or `[]`) is met by
 * any caller the API lets in, so the operation then requires none. */
static void read_security(struct rd *c, struct fy_document *doc, struct fy_node *schemes,
                          struct fy_node *sec, struct oas_endpoint *e)
{
    if (!sec) return;
    if (fy_node_get_type(sec) != FYNT_SEQUENCE) {
        fail_at(c, sec, "security is a list of requirement objects", "security is not a list");
        return;
    }
    char **alts = NULL;
    unsigned n = 0;
    bool open = false;
    void *it = NULL;
    struct fy_node *req;
    while (!c->failed && !open && (req = fy_node_sequence_iterate(sec, &it))) {
        if (fy_node_get_type(req) != FYNT_MAPPING) {
            fail_at(c, req, "each entry maps scheme names to scopes",
                    "a security requirement is not a mapping");
            break;
        }
        char set[1024] = "";
        size_t len = 0;
        void *it2 = NULL;
        struct fy_node_pair *pp;
        while (!c->failed && (pp = fy_node_mapping_iterate(req, &it2))) {
            const char *name = scalar(fy_node_pair_key(pp));
            struct fy_node *scopes = fy_node_pair_value(pp);
            struct fy_node *sch = name ? get(schemes, name) : NULL;
            if (sch) sch = deref(c, doc, sch);
            const char *type = scalar(get(sch, "type"));
            if (!type || (strcmp(type, "oauth2") && strcmp(type, "openIdConnect"))) continue;
            if (!scopes || fy_node_get_type(scopes) != FYNT_SEQUENCE) {
                fail_at(c, scopes ? scopes : fy_node_pair_key(pp), "list the scopes, or []",
                        "the scopes of \"%s\" are not a list", name);
                break;
            }
            void *it3 = NULL;
            struct fy_node *sn;
            while ((sn = fy_node_sequence_iterate(scopes, &it3))) {
                const char *sc = scalar(sn);
                /* a scope with a space can never be among a token's
                 * (space-separated) grants: requiring it would flag every
                 * call, so it is left out */
                if (!sc || !scope_ok(sc)) continue;
                size_t l = strlen(sc);
                if (len + l + 2 > sizeof set) {
                    fail_at(c, sn, "list fewer scopes", "more than 1 KB of scopes");
                    break;
                }
                if (len) set[len++] = ' ';
                memcpy(set + len, sc, l + 1);
                len += l;
            }
        }
        if (c->failed) break;
        if (!len) {
            open = true;
            break;
        }
        char **na = realloc(alts, (n + 1) * sizeof *na);
        char *dup = strdup(set);
        if (!na || !dup) {
            free(dup);
            if (na) alts = na;
            fail_at(c, req, NULL, "out of memory");
            break;
        }
        alts = na;
        alts[n++] = dup;
    }
    if (c->failed || open || !n) {
        for (unsigned i = 0; i < n; i++)
            free(alts[i]);
        free(alts);
        return;
    }
    int col;
    e->scope_alts = alts;
    e->n_scope_alts = n;
    node_pos(sec, &e->scope_line, &col);
}

static void read_doc(struct rd *c, struct fy_document *doc)
{
    struct fy_node *root = fy_document_root(doc);
    if (!root || fy_node_get_type(root) != FYNT_MAPPING) {
        fail_at(c, root, "an OpenAPI document is a mapping with openapi: or swagger:",
                "not an OpenAPI document");
        return;
    }
    const char *oa = scalar(get(root, "openapi")), *sw = scalar(get(root, "swagger"));
    if (!(oa && oa[0] == '3') && !(sw && !strncmp(sw, "2.", 2))) {
        fail_at(c, root, "OpenAPI 2.0 (swagger: \"2.0\") and 3.x (openapi: 3.0.3) are read",
                "not an OpenAPI 2.0 or 3.x document");
        return;
    }
    struct fy_node *info = get(root, "info");
    c->d->title = strdup(scalar(get(info, "title")) ? scalar(get(info, "title")) : "");
    c->d->version = strdup(scalar(get(info, "version")) ? scalar(get(info, "version")) : "");
    server_of(c, root, sw != NULL);
    struct fy_node *schemes =
        sw ? get(root, "securityDefinitions") : get(get(root, "components"), "securitySchemes");
    if (schemes) schemes = deref(c, doc, schemes);
    struct fy_node *doc_sec = get(root, "security");
    struct fy_node *paths = get(root, "paths");
    if (!paths || fy_node_get_type(paths) != FYNT_MAPPING) {
        fail_at(c, paths ? paths : root, "add paths: with at least one path",
                "the document has no paths");
        return;
    }
    void *it = NULL;
    struct fy_node_pair *pp;
    size_t cap = 0;
    while (!c->failed && (pp = fy_node_mapping_iterate(paths, &it))) {
        struct fy_node *kn = fy_node_pair_key(pp);
        const char *key = scalar(kn);
        if (!key || strncmp(key, "x-", 2) == 0) continue;
        if (key[0] != '/') {
            fail_at(c, kn, "a path starts with /", "path \"%s\" does not start with /", key);
            return;
        }
        struct fy_node *item = deref(c, doc, fy_node_pair_value(pp));
        if (!item) return;
        if (fy_node_get_type(item) != FYNT_MAPPING) {
            fail_at(c, item, "a path item maps methods to operations",
                    "path \"%s\" is not a mapping", key);
            return;
        }
        for (int m = 0; m < N_METHODS && !c->failed; m++) {
            char lm[12];
            for (int k = 0; methods[m][k] || (lm[k] = 0); k++)
                lm[k] = (char)tolower((unsigned char)methods[m][k]);
            struct fy_node *op = get(item, lm);
            if (!op) continue;
            op = deref(c, doc, op);
            if (!op) return;
            if (c->d->n == cap) {
                cap = cap ? cap * 2 : 32;
                struct oas_endpoint *ne = realloc(c->d->ep, cap * sizeof *ne);
                if (!ne) {
                    fail_at(c, op, NULL, "out of memory");
                    return;
                }
                c->d->ep = ne;
            }
            struct oas_endpoint *e = &c->d->ep[c->d->n++];
            memset(e, 0, sizeof *e);
            snprintf(e->method, sizeof e->method, "%s", methods[m]);
            size_t tl = strlen(c->d->base) + strlen(key) + 1;
            e->tmpl = malloc(tl);
            if (e->tmpl) snprintf(e->tmpl, tl, "%s%s", c->d->base, key);
            add_params(c, doc, get(item, "parameters"), e);
            add_params(c, doc, get(op, "parameters"), e);
            struct fy_node *sec = get(op, "security");
            read_security(c, doc, schemes, sec ? sec : doc_sec, e);
            e->src = c->d->name;
        }
    }
}

static enum kw_err load_doc(struct rd *c, struct fy_document *doc, struct fy_diag *fd,
                            const char *text, size_t len)
{
    if (!doc) {
        void *it = NULL;
        struct fy_diag_error *e;
        while ((e = fy_diag_errors_iterate(fd, &it)))
            if (e->type >= FYET_ERROR) {
                snprintf(c->err, c->errlen, "%s:%d:%d: error: %s", c->name, e->line, e->column,
                         e->msg ? e->msg : "not valid JSON or YAML");
                return KW_E_CONFIG;
            }
        snprintf(c->err, c->errlen, "%s:1:1: error: not valid JSON or YAML", c->name);
        return KW_E_CONFIG;
    }
    (void)text;
    (void)len;
    read_doc(c, doc);
    return c->failed ? KW_E_CONFIG : KW_E_OK;
}

enum kw_err oas_load_mem(const char *name, const char *text, size_t len, struct oas_doc **out,
                         char *err, size_t errlen)
{
    *out = NULL;
    struct rd c = {.name = name, .err = err, .errlen = errlen};
    if (errlen) err[0] = 0;
    c.d = calloc(1, sizeof *c.d);
    if (c.d && !(c.d->name = strdup(name))) {
        free(c.d);
        c.d = NULL;
    }
    struct fy_diag_cfg dc;
    fy_diag_cfg_default(&dc);
    dc.fp = NULL;
    dc.colorize = false;
    struct fy_diag *fd = fy_diag_create(&dc);
    if (!c.d || !fd) {
        free(c.d);
        if (fd) fy_diag_destroy(fd);
        return KW_E_NOMEM;
    }
    fy_diag_set_collect_errors(fd, true);
    struct kw_yaml_fault fault;
    struct fy_document *doc = kw_yaml_parse(text, len, fd, 0, &fault);
    enum kw_err e;
    if (kw_yaml_fault_crashed(&fault)) {
        char msg[200];
        snprintf(err, errlen, "%s:%d:1: error: %s", name, fault.line ? fault.line : 1,
                 kw_yaml_fault_text(&fault, msg, sizeof msg));
        e = KW_E_CONFIG;
    } else {
        e = load_doc(&c, doc, fd, text, len);
    }
    fy_document_destroy(doc);
    fy_diag_destroy(fd);
    if (e != KW_E_OK) {
        oas_free(c.d);
        return e;
    }
    *out = c.d;
    return KW_E_OK;
}

enum kw_err oas_load(const char *path, struct oas_doc **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: error: cannot read it", path);
        return KW_E_IO;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[65536];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n > (size_t)64 << 20) {
            fclose(f);
            free(buf);
            snprintf(err, errlen, "%s: error: larger than 64 MB", path);
            return KW_E_CONFIG;
        }
        if (len + n > cap) {
            cap = (len + n) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                fclose(f);
                free(buf);
                return KW_E_NOMEM;
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    enum kw_err e = oas_load_mem(path, buf ? buf : "", len, out, err, errlen);
    free(buf);
    return e;
}

void oas_free(struct oas_doc *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) {
        for (unsigned k = 0; k < d->ep[i].n_params; k++)
            free(d->ep[i].params[k].name);
        free(d->ep[i].params);
        free(d->ep[i].tmpl);
        for (unsigned k = 0; k < d->ep[i].n_scope_alts; k++)
            free(d->ep[i].scope_alts[k]);
        free(d->ep[i].scope_alts);
    }
    free(d->ep);
    free(d->name);
    free(d->title);
    free(d->version);
    free(d->host);
    free(d->base);
    free(d);
}

/* ---- matching ---- */

struct tnode {
    char *seg;    /* literal, or a pattern with {..} */
    bool pattern; /* has {..} */
    struct tnode *kids;
    size_t nk, capk;
    char *tmpl;       /* an endpoint ends here: its template */
    unsigned methods; /* bit per methods[] */
    const struct oas_endpoint *op[N_METHODS];
};

struct svc {
    char *key;
    struct tnode root;
    struct oas_doc **docs;
    size_t ndocs;
};

struct oas_set {
    struct svc *s;
    size_t n, count;
};

enum kw_err oas_set_new(struct oas_set **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? KW_E_OK : KW_E_NOMEM;
}

static struct tnode *child(struct tnode *t, const char *seg, size_t n)
{
    for (size_t i = 0; i < t->nk; i++)
        if (strlen(t->kids[i].seg) == n && !memcmp(t->kids[i].seg, seg, n)) return &t->kids[i];
    if (t->nk == t->capk) {
        size_t nc = t->capk ? t->capk * 2 : 4;
        struct tnode *k = realloc(t->kids, nc * sizeof *k);
        if (!k) return NULL;
        t->kids = k;
        t->capk = nc;
    }
    struct tnode *c = &t->kids[t->nk];
    memset(c, 0, sizeof *c);
    c->seg = strndup(seg, n);
    if (!c->seg) return NULL;
    c->pattern = memchr(seg, '{', n) != NULL;
    t->nk++;
    return c;
}

static int method_bit(const char *m)
{
    for (int i = 0; i < N_METHODS; i++)
        if (!strcasecmp(m, methods[i])) return i;
    return -1;
}

enum kw_err oas_set_add(struct oas_set *s, const char *service, struct oas_doc *d)
{
    size_t i = 0;
    while (i < s->n && strcmp(s->s[i].key, service))
        i++;
    if (i == s->n) {
        struct svc *ns = realloc(s->s, (s->n + 1) * sizeof *ns);
        if (!ns) return KW_E_NOMEM;
        s->s = ns;
        memset(&s->s[i], 0, sizeof s->s[i]);
        s->s[i].key = strdup(service);
        if (!s->s[i].key) return KW_E_NOMEM;
        s->n++;
    }
    struct svc *v = &s->s[i];
    struct oas_doc **nd = realloc(v->docs, (v->ndocs + 1) * sizeof *nd);
    if (!nd) return KW_E_NOMEM;
    v->docs = nd;
    v->docs[v->ndocs++] = d;
    for (size_t k = 0; k < d->n; k++) {
        const struct oas_endpoint *e = &d->ep[k];
        struct tnode *t = &v->root;
        for (const char *p = e->tmpl; t && *p;) {
            while (*p == '/')
                p++;
            size_t l = strcspn(p, "/");
            if (l) t = child(t, p, l);
            p += l;
        }
        if (!t) return KW_E_NOMEM;
        if (!t->tmpl && !(t->tmpl = strdup(e->tmpl))) return KW_E_NOMEM;
        int b = method_bit(e->method);
        if (b >= 0) {
            t->methods |= 1u << b;
            if (!t->op[b]) t->op[b] = e;
        }
        s->count++;
    }
    return KW_E_OK;
}

static void tfree(struct tnode *t)
{
    for (size_t i = 0; i < t->nk; i++)
        tfree(&t->kids[i]);
    free(t->kids);
    free(t->seg);
    free(t->tmpl);
}

void oas_set_destroy(struct oas_set *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        tfree(&s->s[i].root);
        for (size_t k = 0; k < s->s[i].ndocs; k++)
            oas_free(s->s[i].docs[k]);
        free(s->s[i].docs);
        free(s->s[i].key);
    }
    free(s->s);
    free(s);
}

size_t oas_set_count(const struct oas_set *s)
{
    return s ? s->count : 0;
}

/* Does seg[0..n) fit pattern p ("{id}.json", "Updates('{id}')",
 * "{lat},{lon}")? A {..} takes one or more characters. */
static bool glob(const char *p, const char *seg, size_t n)
{
    if (!*p) return n == 0;
    if (*p == '{') {
        const char *e = strchr(p, '}');
        if (!e) return false;
        for (size_t k = 1; k <= n; k++)
            if (glob(e + 1, seg + k, n - k)) return true;
        return false;
    }
    return n && *p == *seg && glob(p + 1, seg + 1, n - 1);
}

struct mstate {
    int method;
    const char *tmpl_path; /* found a path, not the method */
};

static const struct tnode *walk(const struct tnode *t, const char *p, struct mstate *m)
{
    while (*p == '/')
        p++;
    if (!*p) {
        if (!t->tmpl) return NULL;
        if (m->method >= 0 && (t->methods & (1u << m->method))) return t;
        if (!m->tmpl_path) m->tmpl_path = t->tmpl;
        return NULL;
    }
    size_t l = strcspn(p, "/");
    for (int pass = 0; pass < 2; pass++) /* literals first */
        for (size_t i = 0; i < t->nk; i++) {
            const struct tnode *c = &t->kids[i];
            if (c->pattern != (pass == 1)) continue;
            bool ok = pass ? glob(c->seg, p, l) : strlen(c->seg) == l && !memcmp(c->seg, p, l);
            const struct tnode *r = ok ? walk(c, p + l, m) : NULL;
            if (r) return r;
        }
    return NULL;
}

enum oas_match oas_set_match(const struct oas_set *s, const char *host, unsigned port,
                             const char *method, const char *path, const char **tmpl)
{
    const struct oas_endpoint *op;
    return oas_set_lookup(s, host, port, method, path, tmpl, &op);
}

enum oas_match oas_set_lookup(const struct oas_set *s, const char *host, unsigned port,
                              const char *method, const char *path, const char **tmpl,
                              const struct oas_endpoint **op)
{
    *op = NULL;
    if (!s || !s->n) return OAS_NO_SPEC;
    char key[300];
    snprintf(key, sizeof key, "%s:%u", host, port);
    const struct svc *v = NULL;
    for (size_t i = 0; i < s->n && !v; i++)
        if (!strcmp(s->s[i].key, key)) v = &s->s[i];
    for (size_t i = 0; i < s->n && !v; i++)
        if (!strcmp(s->s[i].key, host)) v = &s->s[i];
    if (!v) return OAS_NO_SPEC;
    struct mstate m = {method_bit(method), NULL};
    const struct tnode *t = walk(&v->root, path, &m);
    if (t) {
        *tmpl = t->tmpl;
        *op = t->op[m.method];
        return OAS_MATCH;
    }
    if (m.tmpl_path) {
        *tmpl = m.tmpl_path;
        return OAS_NO_METHOD;
    }
    return OAS_NO_PATH;
}
