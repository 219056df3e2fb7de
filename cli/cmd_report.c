/* cmd_report: `keywarden report`, one self-contained HTML page of what
 * every identity did (report.h): read from the database read-only, drawn
 * against the rules of the config when they load.
 *
 * The one thing to know: like `audit`, relative times count back from the
 * newest record (audit row or alert), not from the wall clock, because
 * keywarden often replays old captures; and a broken rules file does not
 * stop the report (it is what people read during an incident): the
 * problems are printed and the page shows the activity without policy. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alerts.h"
#include "audit.h"
#include "cli.h"
#include "cli_util.h"
#include "report.h"
#include "rules.h"
#include "store.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: keywarden report [-c CONFIG] [--rules PATH] [--db PATH] [--since T] "
               "[--until T]\n"
               "         [--identity ID] -o FILE.html\n"
               "One self-contained HTML page (inline SVG and CSS, no script, no external\n"
               "request): an overview of every identity, then per identity its activity by\n"
               "hour of the week in its time zone with its schedule, endpoints against its\n"
               "scope, source networks, daily volume against its learned range, alerts.\n"
               "T is RFC 3339 (2026-03-28T02:13:05Z, 2026-03-28) or relative to the newest\n"
               "record (7d, -7d, -12h); --since defaults to 7d. -o - writes to stdout.\n");
}

/* "7d" means "-7d": the last seven days, as in `--since 7d`. */
static enum kw_err parse_time(const char *s, kw_ts newest, kw_ts *out)
{
    size_t digits = strspn(s, "0123456789");
    if (digits && s[digits] && !s[digits + 1]) {
        char rel[32];
        snprintf(rel, sizeof rel, "-%s", s);
        return audit_parse_time(rel, newest, out);
    }
    return audit_parse_time(s, newest, out);
}

static int newest_record(const char *db_path, kw_ts *out)
{
    sqlite3 *db = NULL;
    kw_ts a = 0, b = 0;
    if (store_db_open_ro(db_path, &db) != KW_E_OK) return -1;
    int rc = 0;
    if ((store_has_table(db, "audit") && audit_newest(db, &a) != KW_E_OK) ||
        alerts_newest(db, &b) != KW_E_OK)
        rc = -1;
    store_db_close(db);
    *out = a > b ? a : b;
    return rc;
}

/* Writes next to the target and renames, so a reader never sees half a
 * page; 0600 like every file keywarden creates. */
static int write_page(const struct report *r, const char *out)
{
    if (!strcmp(out, "-"))
        return report_write_html(r, stdout, KW_VERSION) == KW_E_OK && fflush(stdout) == 0 ? 0 : 1;
    size_t n = strlen(out) + 16;
    char *tmp = malloc(n);
    if (!tmp) return 1;
    snprintf(tmp, n, "%s.tmpXXXXXX", out);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    int rc = 1;
    if (!f) {
        fprintf(stderr, "keywarden report: cannot write %s: %m\n", out);
        if (fd >= 0) close(fd);
    } else {
        enum kw_err e = report_write_html(r, f, KW_VERSION);
        if (fclose(f) != 0 || e != KW_E_OK)
            fprintf(stderr, "keywarden report: cannot write %s: %m\n", out);
        else if (rename(tmp, out) != 0)
            fprintf(stderr, "keywarden report: cannot rename %s to %s: %m\n", tmp, out);
        else
            rc = 0;
    }
    if (rc && fd >= 0) unlink(tmp);
    free(tmp);
    return rc;
}

static struct rules_model *load_rules(const char *cfg, const char *rules)
{
    if (!cfg && !rules) return NULL;
    struct rules_model *m = NULL;
    struct rules_diag d;
    rules_diag_init(&d);
    if (rules_load(cfg, rules, &m, &d) != KW_E_OK) {
        rules_diag_print(&d, stderr);
        fprintf(stderr, "keywarden report: the rules have errors (above); the report shows the "
                        "activity without policy\n");
        m = NULL;
    }
    rules_diag_free(&d);
    return m;
}

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", 1, NULL, 'c'}, {"rules", 1, NULL, 'r'}, {"db", 1, NULL, 'd'},
        {"since", 1, NULL, 's'},  {"until", 1, NULL, 'u'}, {"identity", 1, NULL, 'i'},
        {"output", 1, NULL, 'o'}, {"help", 0, NULL, 'h'},  {0},
    };
    const char *cfg = NULL, *rules = NULL, *db_path = NULL, *since = "7d", *until = NULL,
               *out = NULL;
    struct report r = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg = optarg;
            break;
        case 'r':
            rules = optarg;
            break;
        case 'd':
            db_path = optarg;
            break;
        case 's':
            since = optarg;
            break;
        case 'u':
            until = optarg;
            break;
        case 'i':
            r.only = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || !out) {
        if (optind < argc)
            fprintf(stderr, "keywarden report: unexpected argument \"%s\"\n", argv[optind]);
        else
            fprintf(stderr, "keywarden report: say where the page goes: -o FILE.html\n");
        usage(stderr);
        return 2;
    }
    char *from_cfg = !db_path && cfg ? cli_config_db(cfg) : NULL;
    r.db_path = db_path ? db_path : from_cfg ? from_cfg : AUDIT_DEFAULT_DB;
    int rc = 1;
    if (access(r.db_path, R_OK) != 0) {
        fprintf(stderr,
                "keywarden report: no database at %s; run `keywarden run` first or pass "
                "--db PATH\n",
                r.db_path);
        goto out;
    }
    if (newest_record(r.db_path, &r.newest) != 0) goto out;
    if (parse_time(since, r.newest, &r.since) != KW_E_OK ||
        (until && parse_time(until, r.newest, &r.until) != KW_E_OK)) {
        fprintf(stderr,
                "keywarden report: bad time \"%s\"; use RFC 3339 (2026-03-28T02:13:05Z) "
                "or 7d, -12h\n",
                parse_time(since, r.newest, &r.since) != KW_E_OK ? since : until);
        rc = 2;
        goto out;
    }
    if (!until) r.until = r.newest + 1;
    r.model = load_rules(cfg, rules);
    if (report_gather(&r) != KW_E_OK) {
        fprintf(stderr, "keywarden report: cannot read %s (see above)\n", r.db_path);
        goto out;
    }
    if (r.only && !r.n_ids) {
        fprintf(stderr, "keywarden report: no identity \"%s\" in the rules or the database\n",
                r.only);
        goto out;
    }
    rc = write_page(&r, out);
    if (!rc && strcmp(out, "-"))
        fprintf(stderr, "keywarden report: %s: %zu identities, %llu alerts\n", out, r.n_ids,
                (unsigned long long)r.alerts);
out:
    report_free(&r);
    if (r.model) rules_model_free(r.model);
    free(from_cfg);
    return rc;
}
