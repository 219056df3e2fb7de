/* sim_apis: `kwsim apis`, traffic shaped like public APIs. Reads the API
 * surfaces of tests/data/apis/apis.jsonl (method, path template and
 * path-parameter schema of public OpenAPI specs, from the APIs.guru
 * directory), gives each chosen API one contractor, and has it call a
 * subset of the API's endpoints for a few working days with values minted
 * the way real services mint them; on the last day it also calls endpoints
 * it never used before (true new endpoints). Each request's truth line
 * carries the API, the spec's template and the phase, so an evaluation can
 * score templates and new_endpoint alerts (tests/shapes/api_eval.py).
 *
 * The one thing to know: how a parameter's values look is decided once per
 * (API, parameter name) from what the spec says (type, format, enum) and
 * from the name (…Id, …Name, region, date, email, version), with a seeded
 * choice among the id styles real services use (numbers, UUIDs, ULIDs,
 * ObjectIds, Stripe-style cus_…, INV-2026-…, SKU-…, base62, hex) and name
 * pools that grow over time. Nothing here knows how keywarden learns. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "sim_gen.h"
#include "sim_plan_int.h"

#define MAX_POOL 4096

enum mk {
    M_INT,
    M_UUID,
    M_ULID,
    M_OBJID,
    M_STRIPE,
    M_INVOICE,
    M_SKU,
    M_B62,
    M_HEX, /* ids */
    M_DATE,
    M_EMAIL,
    M_VERSION,
    M_SLUG,
    M_USER,
    M_FIXED,
    M_FILE,
    M__N
};
static const char *const mk_names[M__N] = {
    "int", "uuid", "ulid",  "objectid", "stripe", "invoice", "sku",   "base62",
    "hex", "date", "email", "version",  "slug",   "user",    "fixed", "file"};

struct minter {
    char name[64]; /* the parameter name it serves */
    enum mk k;
    char prefix[8];
    int64_t lo, hi;
    double reuse; /* chance a request uses a value already in the pool */
    int start;    /* values the contractor starts with */
    char (*pool)[96];
    int npool, cap;
    bool fixed; /* the pool never grows (enums, regions, kinds) */
};

struct aep {
    char method[8];
    char tmpl[400];
    int par[8], npar; /* minters, in template order */
};

struct api {
    char name[96], host[128];
    int server, ident;
    struct aep *ep;
    int nep;
    struct minter *m;
    int nm;
    int *used, nused; /* endpoints of the contractor's work, by weight */
    double *w;
    int fresh[2], nfresh; /* called only on the last day */
    bool echo;            /* names an item back in its answer (3 APIs in 4) */
    bool gzip;            /* gzip-codes its answers over 200 bytes (1 API in 3) */
    int label_base;
};

struct opts {
    const char *specs, *dir, *only, *family;
    int days, learn, rate, max;
    uint64_t seed;
};

static const char *const words[] = {
    "acme",   "web",     "api",     "data",     "lake",   "billing", "core",  "edge",    "mobile",
    "portal", "red",     "blue",    "green",    "east",   "west",    "north", "prod",    "stage",
    "dev",    "test",    "alpha",   "beta",     "orion",  "atlas",   "nova",  "delta",   "ledger",
    "orders", "ingest",  "search",  "media",    "assets", "infra",   "ops",   "metrics", "payments",
    "crm",    "shop",    "mail",    "chat",     "docs",   "wiki",    "cache", "batch",   "stream",
    "vault",  "gateway", "backend", "frontend", "reports"};
static const char *const first_names[] = {
    "anna",  "ben",  "chloe", "dev",  "elif", "farid", "grace", "hiro", "ines", "jonas",
    "kemal", "lena", "mei",   "nils", "omar", "priya", "quinn", "rosa", "sven", "tara"};
static const char *const surnames[] = {"smith",  "kumar", "muller", "tanaka", "garcia", "novak",
                                       "okafor", "rossi", "silva",  "chen",   "dubois", "larsen"};
static const char *const regions[] = {"us-east-1",     "eu-west-1",      "westeurope", "eastus",
                                      "us-central1-a", "europe-west1-b", "ap-south-1", "uksouth"};
static const char *const kinds[] = {"daily",   "summary", "full", "basic", "public",   "private",
                                    "default", "primary", "json", "csv",   "standard", "latest"};

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
static const char crock[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* The words of a parameter name: "resourceGroupName" -> resource group
 * name, "user_id" -> user id (lower case). Returns the count. */
static int name_words(const char *name, char w[8][32])
{
    int n = 0;
    size_t o = 0;
    for (const char *p = name;; p++) {
        bool brk = !*p || !isalnum((unsigned char)*p) ||
                   (p > name && isupper((unsigned char)*p) && islower((unsigned char)p[-1]));
        if (brk && o) {
            w[n][o] = 0;
            if (++n == 8) return n;
            o = 0;
        }
        if (!*p) return n;
        if (isalnum((unsigned char)*p) && o + 1 < 32) w[n][o++] = (char)tolower((unsigned char)*p);
    }
}

static bool in(const char *word, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(word, *list)) return true;
    return false;
}

static bool any_in(char w[8][32], int n, const char *const *list)
{
    for (int i = 0; i < n; i++)
        if (in(w[i], list)) return true;
    return false;
}

static void fixed_pool(struct minter *m, struct sim_rng *r, const char *const *vals, size_t nv)
{
    m->k = M_FIXED;
    m->fixed = true;
    size_t n = 1 + sim_rng_below(r, 3), s = sim_rng_below(r, nv);
    for (size_t i = 0; i < n; i++)
        snprintf(m->pool[m->npool++], 96, "%s", vals[(s + i * 3) % nv]);
}

/* How a service mints the values of one parameter (see the file comment).
 * container: the parameter has more path after it in some template (a
 * subscription, a project, an owner): a contractor works in a few of them
 * and rarely a new one; an object id at the end of a path takes a new
 * value often. */
static void minter_init(struct minter *m, struct sim_rng *r, const char *name, json_t *p,
                        bool container)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    char w[8][32];
    int nw = name_words(name, w);
    const char *last = nw ? w[nw - 1] : "";
    const char *type = json_string_value(json_object_get(p, "type"));
    const char *fmt = json_string_value(json_object_get(p, "format"));
    json_t *en = json_object_get(p, "enum");
    m->reuse = container ? 0.995 : 0.6;
    m->start = container ? 1 + (int)sim_rng_below(r, 3) : 1;
    m->cap = 16;
    m->pool = calloc((size_t)m->cap, sizeof *m->pool);
    if (!m->pool) abort();
    static const char *const idw[] = {"id",   "ids", "key",        "uuid", "guid", "number",
                                      "hash", "sha", "token",      "ref",  "code", "num",
                                      "no",   "sid", "identifier", NULL};
    static const char *const dates[] = {"date", "day", "month", "since", "until", NULL};
    static const char *const places[] = {"region", "zone",     "location", "locale", "country",
                                         "lang",   "language", "currency", NULL};
    static const char *const users[] = {"user",   "owner",    "login",    "member", "author",
                                        "person", "username", "assignee", NULL};
    static const char *const names[] = {
        "name",    "slug",    "org",       "organization", "project",     "repo",     "bucket",
        "team",    "group",   "account",   "workspace",    "space",       "site",     "app",
        "service", "cluster", "vault",     "server",       "instance",    "database", "db",
        "table",   "queue",   "topic",     "channel",      "folder",      "domain",   "store",
        "board",   "list",    "namespace", "tenant",       "environment", "env",      NULL};
    static const char *const files[] = {"file", "path", "object", "blob", "filename", NULL};
    static const char *const fixedw[] = {"type",     "kind",     "format",     "status", "mode",
                                         "provider", "category", "scope",      "action", "view",
                                         "field",    "resource", "collection", "source", "alt",
                                         "level",    NULL};
    bool isint = type && (!strcmp(type, "integer") || !strcmp(type, "number"));
    if (json_is_array(en) && json_array_size(en)) {
        m->k = M_FIXED;
        m->fixed = true;
        size_t n = json_array_size(en), use = 1 + sim_rng_below(r, n < 3 ? n : 3);
        size_t start = sim_rng_below(r, n);
        for (size_t i = 0; i < use; i++) {
            json_t *v = json_array_get(en, (start + i) % n);
            if (json_is_string(v) && strlen(json_string_value(v)) < 64 &&
                !strchr(json_string_value(v), '/'))
                snprintf(m->pool[m->npool++], 96, "%s", json_string_value(v));
            else if (json_is_integer(v))
                snprintf(m->pool[m->npool++], 96, "%lld", (long long)json_integer_value(v));
        }
        if (m->npool) return;
    }
    m->lo = 1000;
    m->hi = 9999999;
    if (isint) {
        m->k = M_INT;
        static const char *const small[] = {"page", "limit", "year",   "size",  "count", "level",
                                            "week", "hour",  "season", "index", NULL};
        bool sm = any_in(w, nw, small);
        m->lo = sm ? 1 : sim_rng_chance(r, 0.5) ? 1000 : 100000;
        m->hi = sm ? 60 : m->lo * (sim_rng_chance(r, 0.5) ? 100 : 10000);
        return;
    }
    if (fmt && !strcmp(fmt, "uuid")) {
        m->k = M_UUID;
        return;
    }
    if (fmt && (!strcmp(fmt, "date") || !strcmp(fmt, "date-time"))) {
        m->k = M_DATE;
        return;
    }
    if ((fmt && !strcmp(fmt, "email")) || !strcmp(last, "email") || !strcmp(last, "mail")) {
        m->k = M_EMAIL;
        if (!container) m->reuse = 0.85;
        return;
    }
    if (any_in(w, nw, dates)) {
        m->k = M_DATE;
        return;
    }
    if (!strcmp(last, "version") || !strcmp(last, "ver")) {
        m->k = M_VERSION;
        m->reuse = 0.95;
        return;
    }
    if (any_in(w, nw, places)) {
        fixed_pool(m, r, regions, 8);
        return;
    }
    if (!in(last, idw)) {
        if (in(last, users)) {
            m->k = M_USER;
            if (!container) m->reuse = 0.85;
            return;
        }
        if (in(last, files)) {
            m->k = M_FILE;
            if (!container) m->reuse = 0.7;
            return;
        }
        if (any_in(w, nw, names)) {
            m->k = M_SLUG;
            if (!container) m->reuse = 0.85;
            return;
        }
        if (any_in(w, nw, fixedw)) {
            fixed_pool(m, r, kinds, 12);
            return;
        }
        /* a string the spec does not describe: an id, or a name */
        if (sim_rng_chance(r, 0.3)) {
            m->k = M_SLUG;
            if (!container) m->reuse = 0.85;
            return;
        }
    }
    static const enum mk styles[] = {M_INT,    M_INT,    M_UUID,    M_UUID, M_ULID, M_OBJID,
                                     M_STRIPE, M_STRIPE, M_INVOICE, M_SKU,  M_B62,  M_HEX};
    m->k = styles[sim_rng_below(r, sizeof styles / sizeof styles[0])];
    size_t pl = 0;
    for (const char *s = w[0]; *s && pl < 3; s++)
        if (isalpha((unsigned char)*s)) m->prefix[pl++] = *s;
    if (pl < 2) memcpy(m->prefix, "obj", 4);
}

static void rand_str(struct sim_rng *r, char *out, size_t n, const char *alpha, size_t na)
{
    for (size_t i = 0; i < n; i++)
        out[i] = alpha[sim_rng_below(r, na)];
    out[n] = 0;
}

static void mint(struct minter *m, struct sim_rng *r, int64_t now_us, char *out, size_t cap)
{
    char a[64], b[64];
    switch (m->k) {
    case M_INT:
        snprintf(out, cap, "%lld", (long long)sim_rng_range(r, m->lo, m->hi));
        break;
    case M_UUID: {
        uint64_t x = sim_rng_u64(r), y = sim_rng_u64(r);
        snprintf(out, cap, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(x >> 32),
                 (unsigned)(x >> 16) & 0xffff, (unsigned)x & 0xfff,
                 0x8000 | ((unsigned)(y >> 48) & 0x3fff),
                 (unsigned long long)(y & 0xffffffffffffULL));
        break;
    }
    case M_ULID: { /* 48-bit ms time + 80 random bits, Crockford base32 */
        uint64_t ms = (uint64_t)(now_us / 1000);
        for (int i = 9; i >= 0; i--) {
            a[i] = crock[ms & 31];
            ms >>= 5;
        }
        rand_str(r, a + 10, 16, crock, 32);
        snprintf(out, cap, "%s", a);
        break;
    }
    case M_OBJID: /* 4-byte seconds + 8 random bytes, hex */
        snprintf(out, cap, "%08llx%016llx", (unsigned long long)(now_us / 1000000),
                 (unsigned long long)sim_rng_u64(r));
        break;
    case M_STRIPE:
        rand_str(r, a, 14 + sim_rng_below(r, 11), b62, 62);
        snprintf(out, cap, "%s_%s", m->prefix, a);
        break;
    case M_INVOICE: {
        /* up to three letters of the prefix; a shorter one ends at its
         * own end (b[2] was left unset for "id": release builds minted
         * "ID4-2026-..." from stack garbage, sanitized ones "ID\xf5-...") */
        int i = 0;
        for (; m->prefix[i] && i < 3; i++)
            b[i] = (char)toupper((unsigned char)m->prefix[i]);
        b[i] = 0;
        snprintf(out, cap, "%s-2026-%06lld", b, (long long)sim_rng_range(r, 1, 999999));
        break;
    }
    case M_SKU:
        snprintf(out, cap, "%s-%05lld", sim_rng_chance(r, 0.5) ? "SKU" : "PRD",
                 (long long)sim_rng_range(r, 10000, 99999));
        break;
    case M_B62:
        rand_str(r, a, 22, b62, 62);
        snprintf(out, cap, "%s", a);
        break;
    case M_HEX:
        rand_str(r, a, sim_rng_chance(r, 0.5) ? 16 : 40, "0123456789abcdef", 16);
        snprintf(out, cap, "%s", a);
        break;
    case M_DATE: {
        int64_t day = now_us / 86400000000LL - (int64_t)sim_rng_below(r, 30);
        time_t t = (time_t)(day * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, cap, "%Y-%m-%d", &tm);
        break;
    }
    case M_EMAIL:
        snprintf(out, cap, "%s.%s@%s.example", first_names[sim_rng_below(r, 20)],
                 surnames[sim_rng_below(r, 12)], words[sim_rng_below(r, 50)]);
        break;
    case M_VERSION:
        snprintf(out, cap, "%d.%d.%d", (int)sim_rng_range(r, 1, 4), (int)sim_rng_range(r, 0, 12),
                 (int)sim_rng_range(r, 0, 30));
        break;
    case M_SLUG: {
        const char *w1 = words[sim_rng_below(r, 50)], *w2 = words[sim_rng_below(r, 50)];
        double u = sim_rng_unit(r);
        if (u < 0.3)
            snprintf(out, cap, "%s-%s", w1, w2);
        else if (u < 0.55)
            snprintf(out, cap, "%s-%s-%02d", w1, w2, (int)sim_rng_range(r, 1, 99));
        else if (u < 0.75)
            snprintf(out, cap, "%s%s", w1, w2);
        else if (u < 0.9)
            snprintf(out, cap, "%s_%s", w1, w2);
        else
            snprintf(out, cap, "%s", w1);
        break;
    }
    case M_USER: {
        const char *f = first_names[sim_rng_below(r, 20)], *s = surnames[sim_rng_below(r, 12)];
        double u = sim_rng_unit(r);
        if (u < 0.4)
            snprintf(out, cap, "%c%s", f[0], s);
        else if (u < 0.7)
            snprintf(out, cap, "%s.%s", f, s);
        else
            snprintf(out, cap, "%s%d", f, (int)sim_rng_range(r, 1, 99));
        break;
    }
    case M_FILE:
        snprintf(out, cap, "%s-%s-%lld.%s", words[sim_rng_below(r, 50)],
                 words[sim_rng_below(r, 50)], (long long)sim_rng_range(r, 1, 999),
                 sim_rng_chance(r, 0.5) ? "csv" : "json");
        break;
    default:
        snprintf(out, cap, "x");
    }
}

/* A value of m for a request at now_us: one the contractor used before, or
 * a new one (the pool grows; fixed pools never do). */
static const char *value(struct minter *m, struct sim_rng *r, int64_t now_us)
{
    if (m->npool && (m->fixed || m->npool >= MAX_POOL || sim_rng_chance(r, m->reuse)) &&
        (m->fixed || m->npool >= m->start)) {
        /* recent values are used more: pick from the last ones by preference */
        int n = m->npool, k = sim_rng_chance(r, 0.7) && n > 8 ? n - 1 - (int)sim_rng_below(r, 8)
                                                              : (int)sim_rng_below(r, (uint64_t)n);
        return m->pool[k];
    }
    if (m->npool == m->cap) {
        m->cap *= 2;
        m->pool = realloc(m->pool, (size_t)m->cap * sizeof *m->pool);
        if (!m->pool) abort();
    }
    char v[96];
    for (int tries = 0; tries < 8; tries++) {
        mint(m, r, now_us, v, sizeof v);
        bool dup = false;
        for (int i = 0; i < m->npool && !dup; i++)
            dup = !strcmp(m->pool[i], v);
        if (!dup) break;
    }
    snprintf(m->pool[m->npool], 96, "%s", v);
    return m->pool[m->npool++];
}

static int minter_of(struct api *a, struct sim_rng *r, const char *name, json_t *p, bool container)
{
    for (int i = 0; i < a->nm; i++)
        if (!strcmp(a->m[i].name, name)) return i;
    a->m = realloc(a->m, (size_t)(a->nm + 1) * sizeof *a->m);
    if (!a->m) abort();
    struct sim_rng mr;
    sim_rng_fork(&mr, sim_rng_u64(r), sim_hash_str(name));
    minter_init(&a->m[a->nm], &mr, name, p, container);
    return a->nm++;
}

static bool api_selected(const struct opts *o, const char *name)
{
    if (o->family) {
        size_t n = strcspn(name, "/:");
        if (strlen(o->family) != n || strncmp(name, o->family, n)) return false;
    }
    if (!o->only) return true;
    const char *p = o->only;
    size_t n = strlen(name);
    while (*p) {
        size_t l = strcspn(p, ",");
        if (l == n && !strncmp(p, name, n)) return true;
        p += l + (p[l] == ',');
    }
    return false;
}

/* Has {name} more path after it in some template of the API? */
static bool container_param(json_t *eps, const char *name)
{
    char pat[80];
    snprintf(pat, sizeof pat, "{%s}/", name);
    size_t i;
    json_t *e;
    json_array_foreach(eps, i, e)
    {
        const char *t = json_string_value(json_object_get(e, "template"));
        const char *at = t ? strstr(t, pat) : NULL;
        if (at && at[strlen(pat)]) return true;
    }
    return false;
}

static int load_api(struct api *a, json_t *j, struct sim_rng *r)
{
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", json_string_value(json_object_get(j, "api")));
    const char *h = json_string_value(json_object_get(j, "host"));
    if (h && *h)
        snprintf(a->host, sizeof a->host, "%s", h);
    else
        snprintf(a->host, sizeof a->host, "api-%llx.example",
                 (unsigned long long)(sim_hash_str(a->name) & 0xffffff));
    for (char *c = a->host; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    json_t *eps = json_object_get(j, "endpoints");
    a->ep = calloc(json_array_size(eps) + 1, sizeof *a->ep);
    if (!a->ep) abort();
    size_t i;
    json_t *e;
    json_array_foreach(eps, i, e)
    {
        const char *t = json_string_value(json_object_get(e, "template"));
        const char *m = json_string_value(json_object_get(e, "method"));
        if (!t || !m || strlen(t) >= sizeof a->ep[0].tmpl || t[0] != '/') continue;
        struct aep *x = &a->ep[a->nep];
        snprintf(x->method, sizeof x->method, "%s", m);
        snprintf(x->tmpl, sizeof x->tmpl, "%s", t);
        json_t *params = json_object_get(e, "params");
        bool ok = true;
        for (const char *p = strchr(t, '{'); p && ok; p = strchr(p + 1, '{')) {
            const char *q = strchr(p, '}');
            if (!q || x->npar == 8) {
                ok = false;
                break;
            }
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(q - p - 1), p + 1);
            json_t *ps = NULL, *pp;
            size_t k;
            json_array_foreach(params, k, pp)
            {
                const char *pn = json_string_value(json_object_get(pp, "name"));
                if (pn && !strcmp(pn, name)) ps = pp;
            }
            x->par[x->npar++] = minter_of(a, r, name, ps, container_param(eps, name));
        }
        if (ok) a->nep++;
    }
    return a->nep ? 0 : -1;
}

/* The endpoints the contractor works with (a Zipf-like share each), and
 * up to two it first calls on the last day. */
static void pick_work(struct api *a, struct sim_rng *r)
{
    int n = a->nep;
    int *perm = malloc((size_t)n * sizeof *perm);
    for (int i = 0; i < n; i++)
        perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)sim_rng_below(r, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    a->nfresh = n >= 4 ? 2 : n >= 2 ? 1 : 0;
    int want = 3 + (int)sim_rng_below(r, 20);
    a->nused = n - a->nfresh < want ? n - a->nfresh : want;
    a->used = malloc((size_t)a->nused * sizeof *a->used);
    a->w = malloc((size_t)a->nused * sizeof *a->w);
    for (int i = 0; i < a->nused; i++) {
        a->used[i] = perm[i];
        a->w[i] = 1.0 / (1.0 + 0.8 * i);
    }
    for (int i = 0; i < a->nfresh; i++)
        a->fresh[i] = perm[a->nused + i];
    free(perm);
}

static int add_label(struct sim_gen *g, const struct api *a, const struct aep *e, bool fresh,
                     bool learn)
{
    if (g->nlabels == g->caplabels) {
        g->caplabels = g->caplabels ? g->caplabels * 2 : 1024;
        g->labels = realloc(g->labels, g->caplabels * sizeof *g->labels);
        if (!g->labels) abort();
    }
    json_t *o = json_pack("{s:s,s:s,s:s,s:b}", "api", a->name, "template", e->tmpl, "phase",
                          learn ? "learn" : "detect", "fresh_endpoint", fresh);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    size_t n = strlen(s); /* the members only: drop the braces */
    memmove(s, s + 1, n - 2);
    s[n - 2] = 0;
    g->labels[g->nlabels] = s;
    return (int)g->nlabels++;
}

/* The member an item names itself under: the parameter's own name when
 * it reads as one (policyName, location-id, FunctionName), else "name",
 * as Azure, Kubernetes and RabbitMQ answer. */
static const char *echo_member(const char *param)
{
    static const char *const ends[] = {"id", "name", "key", "slug", "login", "code"};
    size_t n = strlen(param);
    for (size_t i = 0; i < sizeof ends / sizeof *ends; i++) {
        size_t l = strlen(ends[i]);
        if (n >= l && !strcasecmp(param + n - l, ends[i])) return param;
    }
    return "name";
}

static void fill_req(struct sim_gen *g, struct api *a, struct sim_rng *r, int epi, bool fresh,
                     bool learn, struct sim_req *q, int cred)
{
    const struct aep *e = &a->ep[epi];
    snprintf(q->method, sizeof q->method, "%s", e->method);
    size_t o = 0;
    int k = 0;
    q->echo_key = NULL;
    for (const char *p = e->tmpl; *p && o + 1 < sizeof q->target; p++) {
        if (*p == '{' && strchr(p, '}') && k < e->npar) {
            /* an item (/collection/{name}, its last segment a bare
             * parameter): an API that names items back (a->echo) answers
             * GET, PUT and PATCH with it */
            const char *close = strchr(p, '}');
            if (a->echo && p > e->tmpl && p[-1] == '/' && !close[1] && o < 65535 &&
                (!strcmp(e->method, "GET") || !strcmp(e->method, "PUT") ||
                 !strcmp(e->method, "PATCH"))) {
                q->echo_key = echo_member(a->m[e->par[k]].name);
                q->echo_off = (uint16_t)o;
            }
            const char *v = value(&a->m[e->par[k++]], r, q->want);
            o += (size_t)snprintf(q->target + o, sizeof q->target - o, "%s", v);
            if (o >= sizeof q->target) o = sizeof q->target - 1;
            p = strchr(p, '}');
            continue;
        }
        q->target[o++] = *p;
    }
    q->target[o] = 0;
    if (q->echo_key) {
        q->echo_len = (uint16_t)(o - q->echo_off);
        /* 0-4 records first (0 to ~1.1 KB), from the target's hash so the
         * traffic's random stream is the same with or without echo */
        q->echo_skip = (uint8_t)((sim_hash_str(q->target) >> 11) % 5);
    }
    q->cred = cred;
    q->label = add_label(g, a, e, fresh, learn);
    q->resp_size = (uint32_t)sim_rng_range(r, 150, 1200);
    q->gzip = a->gzip;
    q->chunked = (uint8_t)sim_rng_chance(r, 0.1);
    q->status = !strcmp(q->method, "POST") ? 201 : !strcmp(q->method, "DELETE") ? 204 : 200;
    if (sim_rng_chance(r, 0.01)) q->status = 500;
}

static int pick_used(const struct api *a, struct sim_rng *r)
{
    double tot = 0;
    for (int i = 0; i < a->nused; i++)
        tot += a->w[i];
    double u = sim_rng_unit(r) * tot;
    for (int i = 0; i < a->nused; i++) {
        if (u < a->w[i]) return a->used[i];
        u -= a->w[i];
    }
    return a->used[a->nused - 1];
}

static void plan_api(struct sim_gen *g, struct api *a, const struct opts *o)
{
    struct sim_rng r;
    sim_rng_fork(&r, g->seed, sim_hash_str(a->name) * 7 + 1);
    pick_work(a, &r);
    struct sim_rng er; /* its own stream: the traffic stays as it was */
    sim_rng_fork(&er, g->seed, sim_hash_str(a->name) * 7 + 3);
    a->echo = sim_rng_below(&er, 4) != 0;
    a->gzip = sim_rng_below(&er, 3) == 0;
    const struct sim_identity *id = &g->w->id[a->ident];
    for (int d = 0; d < o->days; d++) {
        int64_t day0 = g->start_us + (int64_t)d * 86400000000LL;
        int64_t s = day0 + 8 * SIM_HOUR_US + (int64_t)sim_rng_below(&r, 20 * SIM_MIN_US);
        int64_t e = day0 + 17 * SIM_HOUR_US - (int64_t)sim_rng_below(&r, 20 * SIM_MIN_US);
        bool learn = d < o->learn;
        int n = (int)((double)o->rate * (double)(e - s) / SIM_HOUR_US *
                      (0.85 + 0.3 * sim_rng_unit(&r)));
        int64_t *ts = malloc((size_t)n * sizeof *ts);
        for (int k = 0; k < n; k++)
            ts[k] = s + (int64_t)sim_rng_below(&r, (uint64_t)(e - s));
        for (int k = 1; k < n; k++)
            for (int j = k; j > 0 && ts[j] < ts[j - 1]; j--) {
                int64_t t = ts[j];
                ts[j] = ts[j - 1];
                ts[j - 1] = t;
            }
        /* the new endpoints: a few calls each, somewhere in the last day */
        int fresh_at[2][6] = {{0}}, nf[2] = {0, 0};
        if (!learn)
            for (int f = 0; f < a->nfresh && n > 10; f++) {
                nf[f] = 2 + (int)sim_rng_below(&r, 4);
                int base = (int)sim_rng_below(&r, (uint64_t)n - 6);
                for (int k = 0; k < nf[f]; k++)
                    fresh_at[f][k] = base + k;
            }
        struct sim_session *ss = NULL;
        int max = 0;
        for (int k = 0; k < n; k++) {
            if (!ss || ss->nreq >= max || ts[k] - ts[k - 1] > 45000000) {
                ss = sim_new_session(g, ts[k] - 2000, a->ident, a->server, id->nets[0],
                                     (uint32_t)sim_rng_u64(&r), -1, &r);
                max = (int)sim_rng_range(&r, 3, 40);
            }
            int epi = -1;
            bool fresh = false;
            for (int f = 0; f < 2 && epi < 0; f++)
                for (int j = 0; j < nf[f]; j++)
                    if (fresh_at[f][j] == k) {
                        epi = a->fresh[f];
                        fresh = true;
                    }
            if (epi < 0) epi = pick_used(a, &r);
            fill_req(g, a, &r, epi, fresh, learn, sim_new_req(g, ss, ts[k]), a->ident);
        }
        free(ts);
    }
}

/* keywarden.yaml and rules.d/apis.yaml: identities by credential only (no
 * schedule, sources or scope: what the user has on day one), learning
 * for `learn` days. */
static int write_config(struct sim_gen *g, const char *dir, const struct opts *o)
{
    char path[700];
    snprintf(path, sizeof path, "%s/rules.d", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/rules.d/apis.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "# Generated by kwsim apis: one contractor per API, credentials only.\n"
               "identities:\n");
    for (int i = 0; i < g->w->nid; i++) {
        const struct sim_identity *id = &g->w->id[i];
        char fp[72];
        fprintf(f, "  - id: %s\n    name: \"%s\"\n    kind: contractor\n    credentials:\n", id->id,
                id->name);
        if (id->cred.kind == SIM_CRED_BASIC) {
            fprintf(f, "      - { basic_user: \"%s\" }\n", id->cred.user);
        } else {
            sim_fingerprint(&id->cred, fp);
            fprintf(f, "      - { sha256: \"%s\" }\n", fp + 7);
        }
    }
    fprintf(f, "detections:\n  baseline: { learning: %dd, sensitivity: medium }\n", o->learn);
    if (fclose(f)) return -1;
    snprintf(path, sizeof path, "%s/keywarden.yaml", dir);
    f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "# Generated by kwsim apis.\ncredentials:\n  - { header: Authorization }\n"
               "  - { header: X-API-Key }\nstorage: { database: keywarden.db }\n"
               "outputs: { eve: eve.json }\nalerts:\n  suppress: { window: 1h }\n"
               "rules: rules.d\n");
    return fclose(f);
}

static void add_identity(struct sim_world *w, struct api *a, int idx, uint64_t seed)
{
    (void)seed;
    struct sim_identity *id = &w->id[w->nid];
    memset(id, 0, sizeof *id);
    snprintf(id->id, sizeof id->id, "a%03d", idx);
    snprintf(id->name, sizeof id->name, "%s", a->name);
    snprintf(id->kind, sizeof id->kind, "contractor");
    snprintf(id->tz, sizeof id->tz, "UTC");
    snprintf(id->ua, sizeof id->ua, "%s-client/1.%d", idx % 2 ? "python-requests" : "okhttp",
             idx % 10);
    id->days = 0x3e;
    struct sim_network *n = &w->net[w->nnet];
    memset(n, 0, sizeof *n);
    snprintf(n->id, sizeof n->id, "net%03d", idx);
    snprintf(n->cidr, sizeof n->cidr, "100.%d.%d.0/28", 64 + idx / 250, idx % 250);
    n->base.a[0] = 100;
    n->base.a[1] = (uint8_t)(64 + idx / 250);
    n->base.a[2] = (uint8_t)(idx % 250);
    n->prefix = 28;
    n->rtt_ms = 20 + idx % 60;
    n->mbps = 100;
    id->nets[0] = w->nnet++;
    id->nnets = 1;
    id->server = a->server;
    struct sim_cred *c = &id->cred;
    c->kind = idx % 3 == 0   ? SIM_CRED_BEARER
              : idx % 3 == 1 ? SIM_CRED_APIKEY_HEADER
                             : SIM_CRED_BASIC;
    char iid[32];
    memcpy(iid, id->id, sizeof iid);
    snprintf(c->id, sizeof c->id, "%s-cred", iid);
    snprintf(c->param, sizeof c->param, "X-API-Key");
    snprintf(c->user, sizeof c->user, "svc-%s", iid);
    unsigned char h[32];
    char hex[65];
    uint64_t x = sim_hash_str(a->name);
    for (int i = 0; i < 32; i++) /* made up, derived from the API name: stable across seeds */
        h[i] = (uint8_t)(x >> (8 * (i % 8))) ^ (uint8_t)(i * 37);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    snprintf(c->secret, sizeof c->secret, "%s_%s", c->kind == SIM_CRED_BEARER ? "tok" : "key", hex);
    a->ident = w->nid++;
}

static int server_for(struct sim_world *w, const char *host)
{
    for (int i = 0; i < w->nsrv; i++)
        if (!strcmp(w->srv[i].host, host)) return i;
    if (w->nsrv == SIM_MAX_SERVERS) return -1;
    struct sim_server *s = &w->srv[w->nsrv];
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "s%03d", w->nsrv);
    snprintf(s->host, sizeof s->host, "%s", host);
    s->ip.a[0] = 10;
    s->ip.a[1] = 30;
    s->ip.a[2] = (uint8_t)(w->nsrv / 250);
    s->ip.a[3] = (uint8_t)(1 + w->nsrv % 250);
    s->port = 80;
    snprintf(s->ep[0].resource, sizeof s->ep[0].resource, "item");
    return w->nsrv++;
}

static void usage_apis(FILE *f)
{
    fprintf(f, "usage: kwsim apis --specs FILE -o DIR [--only API,API...] [--family F]\n"
               "                  [--seed N] [--days D] [--learn L] [--rate R] [--max N]\n"
               "One contractor per API of FILE (apis.jsonl), D working days (5) from\n"
               "2026-03-02, the last D-L (1) with new endpoints; R requests per hour (25).\n");
}

int sim_apis_main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"specs", 1, 0, 'f'}, {"only", 1, 0, 'O'},  {"family", 1, 0, 'F'}, {"seed", 1, 0, 's'},
        {"days", 1, 0, 'd'},  {"learn", 1, 0, 'L'}, {"rate", 1, 0, 'R'},   {"max", 1, 0, 'M'},
        {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    struct opts o = {.days = 5, .learn = 4, .rate = 25, .seed = 1, .max = 512};
    int c;
    while ((c = getopt_long(argc, argv, "o:", lo, NULL)) != -1) {
        switch (c) {
        case 'f':
            o.specs = optarg;
            break;
        case 'o':
            o.dir = optarg;
            break;
        case 'O':
            o.only = optarg;
            break;
        case 'F':
            o.family = optarg;
            break;
        case 's':
            o.seed = strtoull(optarg, NULL, 0);
            break;
        case 'd':
            o.days = atoi(optarg);
            break;
        case 'L':
            o.learn = atoi(optarg);
            break;
        case 'R':
            o.rate = atoi(optarg);
            break;
        case 'M':
            o.max = atoi(optarg);
            break;
        case 'h':
            usage_apis(stdout);
            return 0;
        default:
            usage_apis(stderr);
            return 2;
        }
    }
    if (!o.specs || !o.dir || o.days < 1 || o.learn < 0 || o.learn > o.days || o.rate < 1) {
        usage_apis(stderr);
        return 2;
    }
    FILE *sf = fopen(o.specs, "r");
    if (!sf) {
        fprintf(stderr, "kwsim: error: cannot read %s: %s\n", o.specs, strerror(errno));
        return 2;
    }
    struct sim_world *w = calloc(1, sizeof *w);
    struct sim_gen *g = calloc(1, sizeof *g);
    struct api *apis = calloc((size_t)o.max, sizeof *apis);
    if (!w || !g || !apis) abort();
    snprintf(w->name, sizeof w->name, "apis");
    snprintf(w->path, sizeof w->path, "%s", o.specs);
    snprintf(w->start, sizeof w->start, "2026-03-02");
    w->resolver.a[0] = 10;
    w->resolver.a[3] = 53;
    g->w = w;
    g->seed = o.seed;
    g->days = o.days;
    g->noise = 0;
    g->tcp = (struct sim_tcp_cfg){.reorder = 0.002, .retransmit = 0.002, .loss = 0};
    g->start_us = sim_local_to_utc("UTC", 2026, 3, 2, 0);
    g->end_us = g->start_us + (int64_t)o.days * 86400000000LL;
    char *line = NULL;
    size_t lcap = 0;
    int napi = 0, lineno = 0;
    while (getline(&line, &lcap, sf) > 0) {
        lineno++;
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);
        if (!j) {
            fprintf(stderr, "kwsim: error: %s:%d:%d: %s\n", o.specs, lineno, err.column, err.text);
            return 2;
        }
        const char *name = json_string_value(json_object_get(j, "api"));
        if (name && api_selected(&o, name) && napi < o.max) {
            struct sim_rng r;
            sim_rng_fork(&r, 0x5eed, sim_hash_str(name)); /* shapes: the same for every seed */
            struct api *a = &apis[napi];
            if (!load_api(a, j, &r) && (a->server = server_for(w, a->host)) >= 0 &&
                w->nid < SIM_MAX_IDENTS) {
                add_identity(w, a, napi, o.seed);
                napi++;
            }
        }
        json_decref(j);
    }
    free(line);
    fclose(sf);
    if (!napi) {
        fprintf(stderr, "kwsim: error: no API of %s matches --only/--family\n", o.specs);
        return 2;
    }
    for (int i = 0; i < w->nid; i++)
        sim_cred_add(g, &w->id[i].cred, i);
    for (int i = 0; i < napi; i++)
        plan_api(g, &apis[i], &o);
    if (sim_out_open(&g->out, o.dir, "capture", false, NULL)) {
        fprintf(stderr, "kwsim: error: cannot create %s\n", o.dir);
        return 1;
    }
    if (sim_render(g) || sim_write_truth(g, o.dir) || write_config(g, o.dir, &o)) {
        fprintf(stderr, "kwsim: error: writing into %s failed\n", o.dir);
        return 1;
    }
    /* how each parameter's values were minted, for the evaluation's table */
    char path[700];
    snprintf(path, sizeof path, "%s/minters.jsonl", o.dir);
    FILE *mf = fopen(path, "w");
    for (int i = 0; mf && i < napi; i++)
        for (int k = 0; k < apis[i].nm; k++)
            fprintf(mf, "{\"api\":\"%s\",\"param\":\"%s\",\"style\":\"%s\",\"values\":%d}\n",
                    apis[i].name, apis[i].m[k].name, mk_names[apis[i].m[k].k], apis[i].m[k].npool);
    if (mf) fclose(mf);
    fprintf(stderr,
            "kwsim apis: %d APIs on %d hosts, %llu packets, %.1f MB, %zu HTTP "
            "transactions -> %s\n",
            napi, w->nsrv, (unsigned long long)g->out.packets, (double)g->out.bytes / 1e6,
            g->ntruth, o.dir);
    for (int i = 0; i < napi; i++) {
        for (int k = 0; k < apis[i].nm; k++)
            free(apis[i].m[k].pool);
        free(apis[i].m);
        free(apis[i].ep);
        free(apis[i].used);
        free(apis[i].w);
    }
    for (size_t i = 0; i < g->nlabels; i++)
        free(g->labels[i]);
    free(g->labels);
    free(apis);
    free(g->creds);
    free(g->cred_ident);
    free(g->reqs);
    free(g->sess);
    free(g->truth);
    free(g);
    free(w);
    return 0;
}
