/* rules_diag: the list of problems found while loading config and rules,
 * and the helpers that turn a YAML node into a positioned problem. The one
 * thing to know: loading never stops at the first problem; every check
 * reports into the diag and carries on, so `keywarden check` shows them
 * all. Positions are 1-based (fy_mark is 0-based: we add one). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules_int.h"

void rules_diag_init(struct rules_diag *d)
{
    memset(d, 0, sizeof *d);
}

void rules_diag_free(struct rules_diag *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->items[i].file);
        free(d->items[i].msg);
        free(d->items[i].text);
        free(d->items[i].hint);
    }
    free(d->items);
    rules_diag_init(d);
}

size_t rules_diag_errors(const struct rules_diag *d)
{
    return d->errors;
}

size_t rules_diag_warnings(const struct rules_diag *d)
{
    return d->warnings;
}

char *rl_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Keys whose value may be a secret (issue 15): a diagnostic shows the
 * offending line, and the warning about a secret written in the file must
 * not print the secret. Lexical on purpose: it also covers YAML syntax
 * errors, where there is no document to ask which node is which. */
static const char *const secret_keys[] = {"secret",   "webhook_url", "url",    "credentials",
                                          "password", "passwd",      "token",  "api_key",
                                          "apikey",   "key",         "nats",   "client_secret",
                                          NULL};

static bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

/* Length of a secret key starting at s (a whole word), 0 if none. */
static size_t secret_key_at(const char *line, const char *s)
{
    if (s > line && key_char(s[-1])) return 0;
    for (size_t i = 0; secret_keys[i]; i++) {
        size_t n = strlen(secret_keys[i]);
        if (!strncasecmp(s, secret_keys[i], n) && !key_char(s[n])) return n;
    }
    return 0;
}

/* End of the scalar starting at p: a quoted one at its closing quote
 * (escapes skipped in double quotes; unterminated: the end of the line), a
 * plain one before ',' '}' ']' in a flow collection, or before " #". */
static char *scalar_end(char *p, bool flow)
{
    if (*p == '"' || *p == '\'') {
        char q = *p++;
        while (*p && *p != q)
            p += (q == '"' && *p == '\\' && p[1]) ? 2 : 1;
        return p;
    }
    char *e = p;
    while (*e && !(flow && (*e == ',' || *e == '}' || *e == ']')) &&
           !((*e == ' ' || *e == '\t') && e[1] == '#'))
        e++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    return e;
}

/* Overwrites, in an echoed line, the value of every "KEY:" whose KEY may
 * hold a secret with '*' (quotes kept). Same length, so the caret still
 * points at the right column; a secret's length is all that shows.
 * "env:NAME" values are references, not secrets, and stay. */
static void mask_secrets(char *line)
{
    for (char *s = line; *s; s++) {
        size_t n = secret_key_at(line, s);
        if (!n) continue;
        char *p = s + n;
        if (*p == '"' || *p == '\'') p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != ':') continue;
        p++;
        if (*p && *p != ' ' && *p != '\t') continue; /* "url:x" is not a YAML key */
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#' || *p == '{' || *p == '[') continue; /* no scalar here */
        bool flow = memchr(line, '{', (size_t)(s - line)) || memchr(line, '[', (size_t)(s - line));
        bool quoted = *p == '"' || *p == '\'';
        char *v = p + quoted, *e = scalar_end(p, flow);
        if (strncmp(v, "env:", 4) != 0)
            memset(v, '*', (size_t)(e - v));
        s = *e ? e : e - 1;
    }
}

void rules_diag_add(struct rules_diag *d, enum rules_diag_level lv, const char *file, int line,
                    int col, const char *text, const char *hint, const char *fmt, ...)
{
    if (lv == RULES_DIAG_ERROR)
        d->errors++;
    else
        d->warnings++;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        struct rules_diag_item *it = realloc(d->items, cap * sizeof *it);
        if (!it) return; /* counted above, text lost: out of memory */
        d->items = it;
        d->cap = cap;
    }
    struct rules_diag_item *it = &d->items[d->n++];
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    it->level = lv;
    it->file = rl_strdup(file ? file : "(config)");
    it->line = line;
    it->col = col;
    it->msg = strdup(msg);
    it->text = rl_strdup(text);
    if (it->text) mask_secrets(it->text);
    it->hint = rl_strdup(hint);
}

void rules_diag_print(const struct rules_diag *d, FILE *f)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct rules_diag_item *it = &d->items[i];
        const char *lv = it->level == RULES_DIAG_ERROR ? "error" : "warning";
        if (it->line > 0)
            fprintf(f, "%s:%d:%d: %s: %s", it->file, it->line, it->col, lv, it->msg);
        else
            fprintf(f, "%s: %s: %s", it->file, lv, it->msg);
        if (it->hint) fprintf(f, "; %s", it->hint);
        fputc('\n', f);
        if (it->text && it->line > 0) {
            fprintf(f, " %5d | %s\n       | ", it->line, it->text);
            size_t tl = strlen(it->text);
            for (int c = 1; c < it->col && (size_t)c <= tl; c++)
                fputc(it->text[c - 1] == '\t' ? '\t' : ' ', f);
            fputs("^\n", f);
        }
    }
}

/* ---- node positions ------------------------------------------------- */

void rl_pos(struct fy_node *n, int *line, int *col)
{
    *line = 0;
    *col = 0;
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

static char *line_text(const char *text, size_t len, int line)
{
    if (!text || line < 1) return NULL;
    const char *p = text, *end = text + len;
    for (int l = 1; l < line && p < end; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return NULL;
        p = nl + 1;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = (size_t)((nl ? nl : end) - p);
    if (n && p[n - 1] == '\r') n--;
    if (n > 200) n = 200;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

void rl_diag(struct rl_ctx *c, struct fy_node *n, enum rules_diag_level lv, const char *hint,
             const char *fmt, ...)
{
    int line, col;
    rl_pos(n, &line, &col);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *text = line_text(c->text, c->len, line);
    rules_diag_add(c->diag, lv, c->file, line, col, text, hint, "%s", msg);
    free(text);
}

struct rules_loc rl_loc(struct rl_ctx *c, struct fy_node *n)
{
    int line, col;
    rl_pos(n, &line, &col);
    return (struct rules_loc){c->file, line};
}

static const char *type_name(struct fy_node *n)
{
    switch (fy_node_get_type(n)) {
    case FYNT_MAPPING:
        return "a mapping";
    case FYNT_SEQUENCE:
        return "a list";
    default:
        return "a scalar";
    }
}

const char *rl_scalar(struct rl_ctx *c, struct fy_node *n, const char *what)
{
    if (!n || fy_node_get_type(n) != FYNT_SCALAR) {
        rl_err(c, n, NULL, "%s must be a single value, not %s", what, n ? type_name(n) : "empty");
        return NULL;
    }
    if (fy_node_is_alias(n)) {
        rl_err(c, n, "write the value out; anchors and aliases are not supported", "%s is an alias",
               what);
        return NULL;
    }
    const char *s = fy_node_get_scalar0(n);
    if (!s) rl_err(c, n, NULL, "%s: out of memory", what);
    return s;
}

bool rl_is_map(struct rl_ctx *c, struct fy_node *n, const char *what)
{
    if (n && fy_node_get_type(n) == FYNT_MAPPING) return true;
    rl_err(c, n, NULL, "%s must be a mapping (key: value), not %s", what,
           n ? type_name(n) : "empty");
    return false;
}

bool rl_is_seq(struct rl_ctx *c, struct fy_node *n, const char *what)
{
    if (n && fy_node_get_type(n) == FYNT_SEQUENCE) return true;
    rl_err(c, n, NULL, "%s must be a list, not %s", what, n ? type_name(n) : "empty");
    return false;
}

static unsigned edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40) return 99;
    unsigned row[41];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned prev = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned cur = row[j];
            unsigned sub = prev + (a[i - 1] != b[j - 1]);
            unsigned best = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            prev = cur;
        }
    }
    return row[lb];
}

void rl_unknown_key(struct rl_ctx *c, struct fy_node *key, const char *where,
                    const char *const *known)
{
    const char *k = fy_node_get_type(key) == FYNT_SCALAR ? fy_node_get_scalar0(key) : NULL;
    const char *best = NULL;
    unsigned bd = 3;
    for (size_t i = 0; k && known[i]; i++) {
        unsigned d = edit_distance(k, known[i]);
        if (d < bd) {
            bd = d;
            best = known[i];
        }
    }
    char hint[512];
    size_t o = 0;
    if (best)
        o += (size_t)snprintf(hint, sizeof hint, "did you mean \"%s\"?", best);
    else {
        o += (size_t)snprintf(hint, sizeof hint, "known keys:");
        for (size_t i = 0; known[i] && o < sizeof hint - 40; i++)
            o += (size_t)snprintf(hint + o, sizeof hint - o, " %s", known[i]);
    }
    rl_err(c, key, hint, "unknown key \"%s\" in %s", k ? k : "?", where);
}
