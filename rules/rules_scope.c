/* rules_scope: the scope/deny pattern language "METHOD [HOST] PATH" and its
 * matcher. The one thing to know: patterns match the NORMALISED path of
 * the transaction (kw_txn.path: percent-decoded, dot segments removed,
 * duplicate slashes merged, no query), never the raw target, so encoding
 * tricks cannot walk around a deny. Segments are literal, `*` (exactly one
 * non-empty segment; `{name}` is a synonym) or `**` (any number, zero
 * included). A single trailing slash is not significant. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules_int.h"

#define PAT_MAX_SEGS 64
#define PATH_MAX_SEGS 256

void rules_pattern_free(struct rules_pattern *p)
{
    for (size_t i = 0; i < p->n_segs; i++)
        free(p->segs[i].lit);
    free(p->segs);
    free(p->host);
    free(p->text);
    memset(p, 0, sizeof *p);
}

static bool tchar(char ch)
{
    return isalnum((unsigned char)ch) || strchr("!#$%&'*+-.^_`|~", ch);
}

static bool parse_methods(const char *s, size_t n, struct rules_pattern *p, char *err)
{
    if (n == 1 && s[0] == '*') {
        p->any_method = true;
        return true;
    }
    const char *e = s + n;
    while (s < e) {
        const char *c = memchr(s, ',', (size_t)(e - s));
        size_t l = (size_t)((c ? c : e) - s);
        if (!l || l >= sizeof p->methods[0] || p->n_methods == RULES_PAT_MAX_METHODS) {
            snprintf(err, RV_ERRLEN, "bad method list \"%.*s\"", (int)n, e - n);
            return false;
        }
        for (size_t i = 0; i < l; i++)
            if (!tchar(s[i]) || s[i] == '*') {
                snprintf(err, RV_ERRLEN, "bad method \"%.*s\"", (int)l, s);
                return false;
            }
        memcpy(p->methods[p->n_methods], s, l);
        p->methods[p->n_methods++][l] = 0;
        s += l + (c ? 1 : 0);
        if (c && s == e) {
            snprintf(err, RV_ERRLEN, "bad method list \"%.*s\"", (int)n, e - n);
            return false;
        }
    }
    return true;
}

/* Host without port, lower case; "[v6]" keeps its address. */
static char *host_norm(const char *s, size_t n)
{
    if (n && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (rb) {
            s++;
            n = (size_t)(rb - s);
        }
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon && !memchr(colon + 1, ':', n - (size_t)(colon - s) - 1)) n = (size_t)(colon - s);
    }
    while (n && s[n - 1] == '.')
        n--;
    char *h = malloc(n + 1);
    if (!h) return NULL;
    for (size_t i = 0; i < n; i++)
        h[i] = (char)tolower((unsigned char)s[i]);
    h[n] = 0;
    return h;
}

static bool parse_path(const char *s, size_t n, struct rules_pattern *p, char *err)
{
    if (!n || s[0] != '/') {
        snprintf(err, RV_ERRLEN, "path \"%.*s\" must start with /", (int)n, s);
        return false;
    }
    p->segs = calloc(PAT_MAX_SEGS, sizeof *p->segs);
    if (!p->segs) return false;
    const char *e = s + n;
    s++;
    while (s <= e) {
        const char *sl = memchr(s, '/', (size_t)(e - s));
        size_t l = (size_t)((sl ? sl : e) - s);
        if (!sl && l == 0) break; /* trailing slash */
        if (p->n_segs == PAT_MAX_SEGS) {
            snprintf(err, RV_ERRLEN, "path has more than %d segments", PAT_MAX_SEGS);
            return false;
        }
        struct rules_seg *g = &p->segs[p->n_segs];
        if (l == 2 && !memcmp(s, "**", 2))
            g->kind = RULES_SEG_DSTAR;
        else if ((l == 1 && s[0] == '*') || (l > 2 && s[0] == '{' && s[l - 1] == '}'))
            g->kind = RULES_SEG_STAR;
        else if (memchr(s, '*', l)) {
            snprintf(err, RV_ERRLEN, "\"%.*s\": * and ** must be a whole path segment", (int)l, s);
            return false;
        } else {
            g->kind = RULES_SEG_LIT;
            g->lit = strndup(s, l);
            if (!g->lit) return false;
        }
        /* two ** in a row are one ** */
        if (!(g->kind == RULES_SEG_DSTAR && p->n_segs &&
              p->segs[p->n_segs - 1].kind == RULES_SEG_DSTAR))
            p->n_segs++;
        if (!sl) break;
        s = sl + 1;
    }
    return true;
}

bool rules_pattern_parse(const char *s, struct rules_pattern *p, char *err, const char **hint)
{
    *hint = "write METHOD [HOST] PATH, e.g. \"GET /v1/orders/**\" or \"GET,POST api.example "
            "/v1/*\"";
    memset(p, 0, sizeof *p);
    const char *tok[4];
    size_t len[4];
    int nt = 0;
    for (const char *q = s; *q;) {
        while (*q == ' ' || *q == '\t')
            q++;
        if (!*q) break;
        if (nt == 3) {
            snprintf(err, RV_ERRLEN, "too many words in pattern \"%s\"", s);
            return false;
        }
        tok[nt] = q;
        while (*q && *q != ' ' && *q != '\t')
            q++;
        len[nt] = (size_t)(q - tok[nt]);
        nt++;
    }
    if (nt < 2) {
        snprintf(err, RV_ERRLEN, "pattern \"%s\" needs a method and a path", s);
        return false;
    }
    bool ok = parse_methods(tok[0], len[0], p, err);
    if (ok && nt == 3) {
        if (memchr(tok[1], '/', len[1])) {
            snprintf(err, RV_ERRLEN, "bad host \"%.*s\" in pattern", (int)len[1], tok[1]);
            ok = false;
        } else {
            p->host = host_norm(tok[1], len[1]);
            ok = p->host != NULL;
        }
    }
    ok = ok && parse_path(tok[nt - 1], len[nt - 1], p, err);
    p->text = ok ? strdup(s) : NULL;
    if (!ok || !p->text) {
        rules_pattern_free(p);
        return false;
    }
    return true;
}

/* ---- matching ------------------------------------------------------- */

struct pseg {
    const char *p;
    size_t n;
};

static size_t split_path(const char *path, struct pseg *out)
{
    size_t n = 0;
    const char *s = path;
    if (*s == '/') s++;
    while (*s) {
        const char *sl = strchr(s, '/');
        if (n == PATH_MAX_SEGS - 1 || !sl) { /* the rest is one segment */
            out[n++] = (struct pseg){s, strlen(s)};
            break;
        }
        out[n++] = (struct pseg){s, (size_t)(sl - s)};
        s = sl + 1;
    }
    return n;
}

/* Glob with backtracking: `*` is one segment, `**` any run (the classic
 * two-pointer wildcard matcher, over segments instead of characters). */
static bool segs_match(const struct rules_pattern *p, const struct pseg *ps, size_t np, bool nocase)
{
    size_t i = 0, j = 0, star_i = SIZE_MAX, star_j = 0;
    while (j < np) {
        if (i < p->n_segs && p->segs[i].kind == RULES_SEG_DSTAR) {
            star_i = i++;
            star_j = j;
            continue;
        }
        if (i < p->n_segs &&
            ((p->segs[i].kind == RULES_SEG_STAR && ps[j].n) ||
             (p->segs[i].kind == RULES_SEG_LIT && strlen(p->segs[i].lit) == ps[j].n &&
              !(nocase ? strncasecmp(p->segs[i].lit, ps[j].p, ps[j].n)
                       : memcmp(p->segs[i].lit, ps[j].p, ps[j].n))))) {
            i++;
            j++;
            continue;
        }
        if (star_i == SIZE_MAX) return false;
        i = star_i + 1;
        j = ++star_j;
    }
    while (i < p->n_segs && p->segs[i].kind == RULES_SEG_DSTAR)
        i++;
    return i == p->n_segs;
}

static bool host_match(const char *pat, const char *host)
{
    if (!pat) return true;
    if (!host) return false;
    size_t n = strlen(host);
    const char *h = host;
    if (n && h[0] == '[') {
        const char *rb = strchr(h, ']');
        h++;
        n = rb ? (size_t)(rb - h) : n - 1;
    } else {
        const char *colon = strchr(h, ':');
        if (colon && !strchr(colon + 1, ':')) n = (size_t)(colon - h);
    }
    while (n && h[n - 1] == '.')
        n--;
    if (pat[0] == '*' && pat[1] == '.') { /* *.example.com: any subdomain */
        size_t sl = strlen(pat + 1);
        return n > sl && !strncasecmp(h + n - sl, pat + 1, sl);
    }
    return strlen(pat) == n && !strncasecmp(pat, h, n);
}

static bool method_match(const struct rules_pattern *p, const char *method)
{
    if (p->any_method) return true;
    for (unsigned i = 0; i < p->n_methods; i++)
        if (!strcmp(p->methods[i], method)) return true;
    return false;
}

static bool path_match(const struct rules_pattern *p, const char *host, const char *path,
                       bool nocase)
{
    if (!host_match(p->host, host)) return false;
    struct pseg ps[PATH_MAX_SEGS];
    size_t np = split_path(path, ps);
    if (np && ps[np - 1].n == 0) np--; /* trailing slash */
    return segs_match(p, ps, np, nocase);
}

bool rules_pattern_match_path(const struct rules_pattern *p, const char *host, const char *path)
{
    return path_match(p, host, path, false);
}

bool rules_pattern_match(const struct rules_pattern *p, const char *method, const char *host,
                         const char *path)
{
    return method_match(p, method) && path_match(p, host, path, false);
}

enum rules_scope_verdict rules_scope_check_case(const struct rules_identity *id, const char *method,
                                                const char *host, const char *path, bool nocase,
                                                const struct rules_pattern **which)
{
    *which = NULL;
    for (size_t i = 0; i < id->n_deny; i++)
        if (method_match(&id->deny[i], method) && path_match(&id->deny[i], host, path, nocase)) {
            *which = &id->deny[i];
            return RULES_SCOPE_DENIED;
        }
    if (!id->n_scope) return RULES_SCOPE_OK;
    const struct rules_pattern *path_only = NULL;
    for (size_t i = 0; i < id->n_scope; i++) {
        if (!path_match(&id->scope[i], host, path, nocase)) continue;
        if (method_match(&id->scope[i], method)) return RULES_SCOPE_OK;
        if (!path_only) path_only = &id->scope[i];
    }
    *which = path_only;
    return path_only ? RULES_SCOPE_METHOD : RULES_SCOPE_OUT;
}

enum rules_scope_verdict rules_scope_check(const struct rules_identity *id, const char *method,
                                           const char *host, const char *path,
                                           const struct rules_pattern **which)
{
    return rules_scope_check_case(id, method, host, path, false, which);
}

/* ---- static analysis ------------------------------------------------ */

static bool host_covers(const char *d, const char *p)
{
    if (!d) return true;
    if (!p) return false;
    if (!strcmp(d, p)) return true;
    if (d[0] == '*' && d[1] == '.' && p[0] != '*') {
        size_t dl = strlen(d + 1), pl = strlen(p);
        return pl > dl && !strcmp(p + pl - dl, d + 1);
    }
    return false;
}

/* Language inclusion over segment tokens: d covers p when d matches p's
 * token string, with a d-`*` matching a literal or a `*`, and only a d-`**`
 * able to absorb a p-`**`. Exact for this pattern language. */
bool rules_pattern_covers(const struct rules_pattern *d, const struct rules_pattern *p)
{
    if (!d->any_method) {
        if (p->any_method) return false;
        for (unsigned i = 0; i < p->n_methods; i++) {
            bool found = false;
            for (unsigned j = 0; j < d->n_methods && !found; j++)
                found = !strcmp(d->methods[j], p->methods[i]);
            if (!found) return false;
        }
    }
    if (!host_covers(d->host, p->host)) return false;
    size_t nd = d->n_segs, np = p->n_segs;
    bool t[PAT_MAX_SEGS + 1][PAT_MAX_SEGS + 1];
    for (size_t i = nd + 1; i-- > 0;) {
        for (size_t j = np + 1; j-- > 0;) {
            bool v;
            if (i == nd)
                v = j == np;
            else if (d->segs[i].kind == RULES_SEG_DSTAR)
                v = t[i + 1][j] || (j < np && t[i][j + 1]);
            else if (j == np || p->segs[j].kind == RULES_SEG_DSTAR)
                v = false;
            else if (d->segs[i].kind == RULES_SEG_STAR)
                v = t[i + 1][j + 1];
            else
                v = p->segs[j].kind == RULES_SEG_LIT && !strcmp(d->segs[i].lit, p->segs[j].lit) &&
                    t[i + 1][j + 1];
            t[i][j] = v;
        }
    }
    return t[0][0];
}

/* The normaliser (analyzer/norm.h) decodes %XX of unreserved characters
 * (RFC 3986 §2.3) and of / and \, and writes what it keeps as upper-case
 * %XX: a pattern with any other spelling can never match. */
static bool decoded_escape(const char *l)
{
    for (const char *p = strchr(l, '%'); p; p = strchr(p + 1, '%')) {
        if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
            return true;
        if (islower((unsigned char)p[1]) || islower((unsigned char)p[2]))
            return true;
        unsigned v = (unsigned)strtoul((char[]){p[1], p[2], 0}, NULL, 16);
        if (isalnum(v) || v == '-' || v == '.' || v == '_' || v == '~' || v == '/' || v == '\\')
            return true;
    }
    return false;
}

/* Why a pattern can never match a transaction, or NULL. */
static const char *never_matches(const struct rules_pattern *p, const char **hint)
{
    for (unsigned i = 0; i < p->n_methods; i++)
        for (const char *m = p->methods[i]; *m; m++)
            if (islower((unsigned char)*m)) {
                *hint = "methods are case-sensitive (RFC 9110 §9.1); write GET, POST...";
                return "has a lower-case method";
            }
    for (size_t i = 0; i < p->n_segs; i++) {
        const char *l = p->segs[i].lit;
        if (!l) continue;
        if (!*l || !strcmp(l, ".") || !strcmp(l, "..")) {
            *hint = "paths are matched after normalisation (RFC 3986 §5.2.4): no //, . or ..";
            return "has an empty, . or .. segment";
        }
        if (strchr(l, '?')) {
            *hint = "the query string is ignored; match the path only";
            return "contains a query string";
        }
        if (decoded_escape(l)) {
            *hint = "paths are matched percent-decoded (unreserved characters, / and \\ are "
                    "decoded; the rest is upper-case %XX); write the characters themselves";
            return "contains a percent-encoding that normalisation removes";
        }
    }
    return NULL;
}

void rl_scope_lint(struct rl_ctx *c, struct rules_identity *id, struct fy_node **scope_nodes,
                   struct fy_node **deny_nodes)
{
    const char *why, *hint;
    for (size_t i = 0; i < id->n_deny && deny_nodes; i++)
        if ((why = never_matches(&id->deny[i], &hint)))
            rl_warn(c, deny_nodes[i], hint, "deny pattern \"%s\" %s and can never match",
                    id->deny[i].text, why);
    for (size_t i = 0; i < id->n_scope && scope_nodes; i++) {
        const struct rules_pattern *p = &id->scope[i];
        if ((why = never_matches(p, &hint))) {
            rl_warn(c, scope_nodes[i], hint, "scope pattern \"%s\" %s and can never match", p->text,
                    why);
            continue;
        }
        for (size_t j = 0; j < id->n_deny; j++)
            if (rules_pattern_covers(&id->deny[j], p)) {
                rl_warn(c, scope_nodes[i], "remove it, or narrow the deny",
                        "scope pattern \"%s\" is entirely shadowed by deny \"%s\" (line %d)",
                        p->text, id->deny[j].text, id->deny[j].loc.line);
                break;
            }
    }
}
