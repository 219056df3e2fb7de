/* cmd_audit: `keywarden audit`, who did what, from the audit trail
 * (store/audit.h): a table for people or JSON lines for scripts.
 *
 * The one thing to know: relative times (-2h, -7d) count back from the
 * newest audit record, not from the wall clock, because keywarden often
 * replays old captures; RFC 3339 times are absolute. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "cli_util.h"
#include "kw_eve.h"
#include "kw_json.h"
#include "kw_term.h"
#include "store.h"


static void usage(FILE *f)
{
    fprintf(f, "usage: keywarden audit [--db PATH] [-c CONFIG] [--identity ID] "
               "[--credential sha256:..]\n"
               "         [--since T] [--until T] [--path GLOB] [--status 2xx|3xx|4xx|5xx|none]\n"
               "         [--limit N] [--json]\n"
               "T is RFC 3339 (2026-03-28T02:13:05Z, 2026-03-28) or relative to the newest\n"
               "record (-90m, -2h, -7d). --path is a glob on the normalised path (* matches /).\n"
               "With --limit the newest N rows are shown, oldest first.\n");
}

static void print_row(void *user, const struct kw_txn *t)
{
    bool json = *(bool *)user;
    char ts[40], src[64];
    kw_addr_str(&t->src, src, sizeof src);
    if (!json) {
        kw_ts_format_rfc3339(t->ts, ts, sizeof ts);
        char st[8] = "-";
        if (t->status) snprintf(st, sizeof st, "%d", t->status);
        /* names, method, host and path come from the wire: escaped for the
         * terminal (kw_term.h) */
        char who[4 * sizeof t->identity.id], m[4 * sizeof t->method], h[4 * sizeof t->hostname],
            p[4 * sizeof t->path];
        kw_term_esc(who, sizeof who, t->identity.id[0] ? t->identity.id : t->cred.hint);
        kw_term_esc(m, sizeof m, t->method);
        kw_term_esc(h, sizeof h, t->hostname);
        kw_term_esc(p, sizeof p, t->path);
        printf("%-20s  %-12s  %-7s  %-24s  %-40s  %3s  %10llu  %s\n", ts, who, m, h, p, st,
               (unsigned long long)t->resp_len, src);
        return;
    }
    json_t *r = kw_eve_txn_header(t, "audit", t->ts);
    json_object_set_new(r, "http", kw_eve_http_obj(t));
    json_t *c = kw_eve_cred_obj(t), *i = kw_eve_identity_obj(t);
    if (c) json_object_set_new(r, "credential", c);
    if (i) json_object_set_new(r, "identity", i);
    kw_json_write_line(r, stdout);
    json_decref(r);
}

static int parse_status(const char *s)
{
    if (!strcmp(s, "none")) return -1;
    if (s[0] >= '1' && s[0] <= '5' && (!s[1] || !strcmp(s + 1, "xx"))) return s[0] - '0';
    return 0;
}

int cmd_audit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", 1, NULL, 'd'},         {"config", 1, NULL, 'c'}, {"identity", 1, NULL, 'i'},
        {"credential", 1, NULL, 'k'}, {"since", 1, NULL, 's'},  {"until", 1, NULL, 'u'},
        {"path", 1, NULL, 'p'},       {"status", 1, NULL, 'S'}, {"limit", 1, NULL, 'n'},
        {"json", 0, NULL, 'j'},       {"help", 0, NULL, 'h'},   {0},
    };
    struct audit_query q = {0};
    const char *db_path = NULL, *cfg = NULL, *since = NULL, *until = NULL;
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db_path = optarg;
            break;
        case 'c':
            cfg = optarg;
            break;
        case 'i':
            q.identity = optarg;
            break;
        case 'k':
            q.fingerprint = optarg;
            break;
        case 's':
            since = optarg;
            break;
        case 'u':
            until = optarg;
            break;
        case 'p':
            q.path_glob = optarg;
            break;
        case 'n':
            q.limit = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'j':
            json = true;
            break;
        case 'S':
            q.status_class = parse_status(optarg);
            if (!q.status_class) {
                fprintf(stderr,
                        "keywarden audit: bad --status \"%s\"; use 2xx, 3xx, 4xx, 5xx "
                        "or none\n",
                        optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "keywarden audit: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    char *from_cfg = !db_path && cfg ? cli_config_db(cfg) : NULL;
    if (!db_path) db_path = from_cfg ? from_cfg : AUDIT_DEFAULT_DB;
    int rc = 1;
    sqlite3 *db = NULL;
    if (access(db_path, R_OK) != 0) {
        if (errno == ENOENT)
            fprintf(stderr,
                    "keywarden audit: no database at %s; run `keywarden run` first or pass "
                    "--db PATH\n",
                    db_path);
        else /* a folder or file this user may not read (storage.group shares it) */
            fprintf(stderr, "keywarden audit: cannot read %s: %s\n", db_path, strerror(errno));
        goto out;
    }
    kw_ts newest = 0;
    /* read-only: works on read-only media, creates and migrates nothing */
    if (store_db_open_ro(db_path, &db) != KW_E_OK) goto out;
    bool have = store_version(db, "audit") > 0;
    if (have && audit_newest(db, &newest) != KW_E_OK) goto out;
    if ((since && audit_parse_time(since, newest, &q.since) != KW_E_OK) ||
        (until && audit_parse_time(until, newest, &q.until) != KW_E_OK)) {
        fprintf(stderr,
                "keywarden audit: bad time \"%s\"; use RFC 3339 "
                "(2026-03-28T02:13:05Z) or -30m, -2h, -7d\n",
                since && audit_parse_time(since, newest, &q.since) != KW_E_OK ? since : until);
        rc = 2;
        goto out;
    }
    if (!json)
        printf("%-20s  %-12s  %-7s  %-24s  %-40s  %3s  %10s  %s\n", "TIME (UTC)", "IDENTITY",
               "METHOD", "HOST", "PATH", "ST", "BYTES", "SOURCE");
    rc = !have || audit_query_run(db, &q, print_row, &json) == KW_E_OK ? 0 : 1;
out:
    if (db) store_db_close(db);
    free(from_cfg);
    return rc;
}
