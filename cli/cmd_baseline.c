/* cmd_baseline: `keywarden baseline show [ID] [--json]` prints what was
 * learned (all profiles as a list, or one in detail with its heat map);
 * `keywarden baseline reset ID` forgets one identity so it learns anew.
 *
 * The one thing to know: it reads the same database `run` writes; a run
 * in progress saves at intervals, so `show` may lag it by one interval. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "baseline.h"
#include "cli.h"
#include "cli_util.h"
#include "kw_json.h"
#include "kw_term.h"
#include "store.h"


/* Slots for every stored profile (the run's max_profiles may differ). */
static unsigned profile_rows(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    unsigned n = 0;
    if (store_db_open_ro(path, &db) != KW_E_OK) return 1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM baseline_profile", -1, &s, NULL) ==
            SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        n = (unsigned)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    store_db_close(db);
    return n ? n : 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: keywarden baseline show [ID] [--json] [--db PATH] [-c CONFIG]\n"
               "       keywarden baseline reset ID [--db PATH] [-c CONFIG]\n");
}

static int list_all(struct baseline *b, bool json)
{
    size_t n = baseline_count(b);
    if (!json)
        printf("%-40s  %-10s  %10s  %-20s  %s\n", "PROFILE", "KIND", "REQUESTS", "LAST SEEN",
               "LEARNING");
    for (size_t i = 0; i < n; i++) {
        json_t *j = baseline_show_json(b, baseline_key(b, i));
        if (!j) continue;
        if (json) {
            kw_json_write_line(j, stdout);
        } else {
            json_t *l = json_object_get(j, "learning");
            char key[1024]; /* claimed names come from the wire (kw_term.h) */
            printf("%-40s  %-10s  %10lld  %-20s  %s\n",
                   kw_term_esc(key, sizeof key, json_string_value(json_object_get(j, "key"))),
                   json_string_value(json_object_get(j, "kind")),
                   (long long)json_integer_value(json_object_get(j, "requests")),
                   json_string_value(json_object_get(j, "last_seen")),
                   json_is_true(json_object_get(l, "done")) ? "done" : "learning");
        }
        json_decref(j);
    }
    return 0;
}

int cmd_baseline(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", 1, NULL, 'd'},
        {"config", 1, NULL, 'c'},
        {"json", 0, NULL, 'j'},
        {"help", 0, NULL, 'h'},
        {0},
    };
    const char *db_path = NULL, *cfg = NULL;
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
        case 'j':
            json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    const char *verb = optind < argc ? argv[optind] : NULL;
    const char *id = optind + 1 < argc ? argv[optind + 1] : NULL;
    bool show = verb && !strcmp(verb, "show"), reset = verb && !strcmp(verb, "reset");
    if ((!show && !reset) || (reset && !id) || optind + 2 < argc) {
        usage(stderr);
        return 2;
    }
    char *from_cfg = !db_path && cfg ? cli_config_db(cfg) : NULL;
    if (!db_path) db_path = from_cfg ? from_cfg : AUDIT_DEFAULT_DB;
    int rc = 1;
    struct baseline *b = NULL;
    if (access(db_path, R_OK) != 0) {
        if (errno == ENOENT)
            fprintf(stderr,
                    "keywarden baseline: no database at %s; run `keywarden run` first or pass "
                    "--db PATH\n",
                    db_path);
        else /* a folder or file this user may not read (storage.group shares it) */
            fprintf(stderr, "keywarden baseline: cannot read %s: %s\n", db_path, strerror(errno));
        goto out;
    }
    /* show reads only: it works on read-only media and beside a running `run` */
    struct baseline_config bc = {
        .db_path = db_path, .max_profiles = profile_rows(db_path), .read_only = show};
    if (baseline_new(&bc, &b) != KW_E_OK) goto out;
    if (reset) {
        enum kw_err e = baseline_reset(b, id);
        if (e == KW_E_NOTFOUND)
            fprintf(stderr, "keywarden baseline: no profile \"%s\"\n", id);
        else if (e == KW_E_OK)
            printf("baseline of %s reset; it learns again from its next request\n", id);
        rc = e == KW_E_OK ? 0 : 1;
    } else if (!id) {
        rc = list_all(b, json);
    } else if (json) {
        json_t *j = baseline_show_json(b, id);
        if (j) {
            kw_json_write_line(j, stdout);
            json_decref(j);
            rc = 0;
        }
    } else {
        rc = baseline_show_text(b, id, stdout) == KW_E_OK ? 0 : 1;
    }
    if (rc && show && id)
        fprintf(stderr,
                "keywarden baseline: no profile \"%s\" (keywarden baseline show lists "
                "them)\n",
                id);
out:
    baseline_destroy(b);
    free(from_cfg);
    return rc;
}
