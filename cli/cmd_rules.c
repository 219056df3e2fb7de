/* cmd_rules: `keywarden rules suggest --identity ID`, the rule lines that
 * would have allowed what an identity did during its learning period:
 * scope (one line per endpoint template, methods joined), sources (its
 * addresses, or their /24s and /64s when there are many) and a schedule
 * (the weekdays and the local hours it worked, in its time zone). An
 * operator tightens a rules file from this evidence instead of guessing.
 *
 * The one thing to know: templates come from the learned model as it is
 * now (the audit trail's paths looked up again), so the lines use the
 * names keywarden alerts with; {..} parameters become '*' (one segment). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "cli.h"
#include "cli_util.h"
#include "kw_term.h"
#include "kw_tz.h"
#include "routes.h"
#include "store.h"

struct ep {
    char host[256], pattern[512];
    unsigned methods; /* bit per method name in mnames */
    uint64_t n;
};

static const char *const mnames[] = {"GET",    "HEAD",    "POST",  "PUT",    "PATCH",
                                     "DELETE", "OPTIONS", "TRACE", "CONNECT"};

struct sg {
    struct routes *model;
    const struct kw_tz *tz;
    kw_ts since, until;
    struct ep *eps;
    size_t n, cap;
    struct kw_addr addr[64];
    unsigned naddr;
    bool many_addr;
    struct kw_addr nets[64];
    unsigned nnets;
    uint8_t days;               /* bit per weekday, 0 = Sunday */
    int min_minute, max_minute; /* local minutes after midnight */
    uint64_t rows;
    kw_ts first, last;
};

static void to_pattern(const char *tmpl, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = tmpl; *p && o + 2 < cap;) {
        if (*p == '/') {
            out[o++] = *p++;
            continue;
        }
        size_t l = strcspn(p, "/");
        if (memchr(p, '{', l)) {
            out[o++] = '*';
        } else {
            size_t k = l < cap - o - 1 ? l : cap - o - 1;
            memcpy(out + o, p, k);
            o += k;
        }
        p += l;
    }
    out[o] = 0;
}

static bool addr_eq(const struct kw_addr *a, const struct kw_addr *b)
{
    return a->family == b->family && !memcmp(a->a, b->a, sizeof a->a);
}

static void net_of(const struct kw_addr *a, struct kw_addr *n)
{
    *n = *a;
    unsigned keep = a->family == 4 ? 3 : 8; /* /24, /64 */
    memset(n->a + keep, 0, sizeof n->a - keep);
}

static void row(void *user, const struct kw_txn *t)
{
    struct sg *g = user;
    if (t->ts < g->since || (g->until && t->ts >= g->until) || !t->method[0]) return;
    g->rows++;
    if (!g->first || t->ts < g->first) g->first = t->ts;
    if (t->ts > g->last) g->last = t->ts;
    char svc[300], tmpl[512], pat[512];
    snprintf(svc, sizeof svc, "%s:%u", t->hostname, t->dport);
    if (g->model)
        routes_template(g->model, svc, t->method, t->path, strlen(t->path), false, t->ts, tmpl,
                        sizeof tmpl);
    else
        snprintf(tmpl, sizeof tmpl, "%s", t->template_);
    to_pattern(tmpl, pat, sizeof pat);
    struct ep *e = NULL;
    for (size_t i = 0; i < g->n && !e; i++)
        if (!strcmp(g->eps[i].pattern, pat) && !strcmp(g->eps[i].host, t->hostname)) e = &g->eps[i];
    if (!e) {
        if (g->n == g->cap) {
            size_t nc = g->cap ? g->cap * 2 : 32;
            struct ep *ne = realloc(g->eps, nc * sizeof *ne);
            if (!ne) return;
            g->eps = ne;
            g->cap = nc;
        }
        e = &g->eps[g->n++];
        memset(e, 0, sizeof *e);
        snprintf(e->host, sizeof e->host, "%s", t->hostname);
        snprintf(e->pattern, sizeof e->pattern, "%s", pat);
    }
    e->n++;
    for (unsigned m = 0; m < sizeof mnames / sizeof mnames[0]; m++)
        if (!strcmp(mnames[m], t->method)) e->methods |= 1u << m;
    bool seen = false;
    for (unsigned i = 0; i < g->naddr && !seen; i++)
        seen = addr_eq(&g->addr[i], &t->src);
    if (!seen && t->src.family) {
        if (g->naddr < 64)
            g->addr[g->naddr++] = t->src;
        else
            g->many_addr = true;
    }
    struct kw_addr n;
    net_of(&t->src, &n);
    seen = false;
    for (unsigned i = 0; i < g->nnets && !seen; i++)
        seen = addr_eq(&g->nets[i], &n);
    if (!seen && t->src.family && g->nnets < 64) g->nets[g->nnets++] = n;
    int64_t s = t->ts / 1000000;
    int64_t local = s + kw_tz_offset(g->tz, s);
    int64_t day = local >= 0 ? local / 86400 : (local - 86399) / 86400;
    int minute = (int)((local - day * 86400) / 60);
    g->days |= (uint8_t)(1u << (((day + 4) % 7 + 7) % 7));
    if (minute < g->min_minute) g->min_minute = minute;
    if (minute > g->max_minute) g->max_minute = minute;
}

/* "mon-fri", "mon-thu,sat", "daily": runs of three days or more as ranges */
/* s inside a YAML double-quoted scalar: " and \ escaped, then control
 * bytes as \xNN (kw_term.h; a YAML escape too), so a host or path from the
 * wire can neither end the string nor drive the terminal. */
static const char *yaml_dq(char *out, size_t cap, const char *s)
{
    char q[1200];
    size_t o = 0;
    for (; *s && o + 2 < sizeof q; s++) {
        if (*s == '"' || *s == '\\') q[o++] = '\\';
        q[o++] = *s;
    }
    q[o] = '\0';
    return kw_term_esc(out, cap, q);
}

static void print_days(uint8_t d)
{
    static const char *const names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    if (d == 0x7f) {
        printf("daily");
        return;
    }
    bool on[7];
    for (int i = 0; i < 7; i++)
        on[i] = d & (1u << ((i + 1) % 7)); /* Monday first */
    bool first = true;
    for (int i = 0; i < 7;) {
        if (!on[i]) {
            i++;
            continue;
        }
        int j = i;
        while (j + 1 < 7 && on[j + 1])
            j++;
        if (j - i >= 2)
            printf("%s%s-%s", first ? "" : ",", names[i], names[j]);
        else
            for (int k = i; k <= j; k++)
                printf("%s%s", first && k == i ? "" : ",", names[k]);
        first = false;
        i = j + 1;
    }
}

static int suggest(int argc, char **argv)
{
    static const struct option opts[] = {{"identity", 1, NULL, 'i'}, {"db", 1, NULL, 'd'},
                                         {"config", 1, NULL, 'c'},   {"all", 0, NULL, 'a'},
                                         {"help", 0, NULL, 'h'},     {0}};
    const char *identity = NULL, *db_path = NULL, *cfg = NULL;
    bool all = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            identity = optarg;
            break;
        case 'd':
            db_path = optarg;
            break;
        case 'c':
            cfg = optarg;
            break;
        case 'a':
            all = true;
            break;
        case 'h':
            printf("usage: keywarden rules suggest --identity ID [-c CONFIG] [--db PATH] [--all]\n"
                   "The scope, sources and schedule that would have allowed what ID did in its\n"
                   "learning period (detections.baseline.learning, 14d; --all: the whole audit\n"
                   "trail), as rules lines.\n");
            return 0;
        default:
            return 2;
        }
    }
    if (!identity || optind != argc) {
        fprintf(stderr, "usage: keywarden rules suggest --identity ID [-c CONFIG] [--db PATH] "
                        "[--all]\n");
        return 2;
    }
    struct rules_model *m = NULL;
    if (cfg) {
        struct rules_diag d;
        rules_diag_init(&d);
        if (rules_load(cfg, NULL, &m, &d) != KW_E_OK) {
            rules_diag_print(&d, stderr);
            rules_diag_free(&d);
            return 2;
        }
        rules_diag_free(&d);
    }
    char *from_cfg = !db_path && cfg ? cli_config_db(cfg) : NULL;
    if (!db_path) db_path = from_cfg ? from_cfg : CLI_DEFAULT_DB;
    const struct rules_identity *id = m ? rules_find_identity(m, identity) : NULL;
    struct kw_tz *utc = kw_tz_utc();
    struct sg g = {.tz = id ? id->tz : utc, .min_minute = 24 * 60, .max_minute = -1};
    int64_t learning_s =
        m && m->detections.baseline.learning_s > 0 ? m->detections.baseline.learning_s : 14 * 86400;
    int rc = 1;
    sqlite3 *db = NULL;
    struct routes_config rcfg = {0};
    if (store_db_open_ro(db_path, &db) != KW_E_OK) {
        fprintf(stderr, "keywarden rules suggest: no database at %s\n", db_path);
        goto out;
    }
    enum kw_err e = routes_load_ro(db_path, &rcfg, &g.model);
    if (e != KW_E_OK && e != KW_E_NOTFOUND) goto out;
    struct audit_query q = {.identity = identity};
    /* the learning period starts at the identity's first request */
    struct audit_query q1 = q;
    q1.limit = 0;
    if (store_version(db, "audit") <= 0) {
        fprintf(stderr, "keywarden rules suggest: no audit trail in %s\n", db_path);
        goto out;
    }
    if (audit_query_run(db, &q1, row, &g) != KW_E_OK) goto out;
    if (!g.rows) {
        fprintf(stderr, "keywarden rules suggest: no request of %s in the audit trail\n", identity);
        goto out;
    }
    if (!all) { /* again, inside the learning period only */
        kw_ts first = g.first;
        free(g.eps);
        struct routes *keep = g.model;
        memset(&g, 0, sizeof g);
        g.model = keep;
        g.tz = id ? id->tz : utc;
        g.min_minute = 24 * 60;
        g.max_minute = -1;
        g.since = first;
        g.until = first + KW_TS_SEC(learning_s);
        if (audit_query_run(db, &q, row, &g) != KW_E_OK) goto out;
    }
    char a[40], b[40];
    printf("# What %s did from %s to %s (%llu requests%s), as rules lines.\n", identity,
           kw_ts_format_rfc3339(g.first, a, sizeof a), kw_ts_format_rfc3339(g.last, b, sizeof b),
           (unsigned long long)g.rows, all ? "" : ", its learning period");
    printf("# Paste into its entry in a rules file; review before use.\n");
    printf("  - id: %s\n", identity);
    printf("    timezone: %s\n", kw_tz_name(g.tz));
    int h0 = g.min_minute / 60, h1 = (g.max_minute + 59) / 60 + (g.max_minute % 60 == 0);
    if (h1 > 24) h1 = 24;
    printf("    schedule: { days: \"");
    print_days(g.days);
    printf("\", hours: \"%02d:00-%02d:00\" }   # first request %02d:%02d, last %02d:%02d local; "
           "default grace 30m\n",
           h0, h1, g.min_minute / 60, g.min_minute % 60, g.max_minute / 60, g.max_minute % 60);
    printf("    sources: [");
    bool nets = g.many_addr || g.naddr > 8;
    for (unsigned i = 0; i < (nets ? g.nnets : g.naddr); i++) {
        char s[64];
        kw_addr_str(nets ? &g.nets[i] : &g.addr[i], s, sizeof s);
        const struct kw_addr *x = nets ? &g.nets[i] : &g.addr[i];
        if (nets)
            printf("%s %s/%d", i ? "," : "", s, x->family == 4 ? 24 : 64);
        else
            printf("%s %s", i ? "," : "", s);
    }
    printf(" ]\n    scope:\n");
    for (size_t i = 0; i < g.n; i++) {
        char ms[96] = "";
        size_t o = 0;
        for (unsigned k = 0; k < sizeof mnames / sizeof mnames[0]; k++)
            if (g.eps[i].methods & (1u << k))
                o += (size_t)snprintf(ms + o, sizeof ms - o, "%s%s", o ? "," : "", mnames[k]);
        char h[4 * sizeof g.eps[i].host], pt[4 * sizeof g.eps[i].pattern];
        printf("      - \"%s %s %s\"   # %llu requests\n", ms, yaml_dq(h, sizeof h, g.eps[i].host),
               yaml_dq(pt, sizeof pt, g.eps[i].pattern), (unsigned long long)g.eps[i].n);
    }
    rc = 0;
out:
    store_db_close(db);
    routes_destroy(g.model);
    free(g.eps);
    kw_tz_free(utc);
    free(from_cfg);
    if (m) rules_model_free(m);
    return rc;
}

int cmd_rules(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "suggest")) return suggest(argc - 1, argv + 1);
    fprintf(stderr,
            "usage: keywarden rules suggest --identity ID [-c CONFIG] [--db PATH] [--all]\n");
    return argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) ? 0 : 2;
}
