/* cmd_db: `keywarden db check`, the full integrity check of the database
 * (PRAGMA integrity_check: every page, every index against its table),
 * read-only, so it runs on a copy, on read-only media, or beside a `run`.
 *
 * The one thing to know: `run` does the cheaper PRAGMA quick_check at
 * start and refuses a damaged file; this is what an operator runs next to
 * see every problem (exit 0 sound, 1 damaged or unreadable, 2 usage). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"
#include "store.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: keywarden db check [--db PATH] [-c CONFIG]\n"
               "\n"
               "Runs SQLite's full integrity check on the database, read-only, and prints\n"
               "\"ok\" or every problem found. Exit 0 sound, 1 damaged or unreadable, 2 usage.\n"
               "  -c, --config FILE  keywarden.yaml (its storage.database)\n"
               "      --db PATH      the database (default: storage.database or\n"
               "                     " CLI_DEFAULT_DB ")\n");
}

int cmd_db(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", 1, NULL, 'd'}, {"config", 1, NULL, 'c'}, {"help", 0, NULL, 'h'}, {0}};
    const char *db_path = NULL, *cfg = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db_path = optarg; break;
        case 'c': cfg = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind + 1 != argc || strcmp(argv[optind], "check") != 0) {
        usage(stderr);
        return 2;
    }
    char *from_cfg = !db_path && cfg ? cli_config_db(cfg) : NULL;
    if (!db_path) db_path = from_cfg ? from_cfg : CLI_DEFAULT_DB;
    int rc = 1;
    sqlite3 *db = NULL;
    enum kw_err e = store_db_open_ro(db_path, &db);
    if (e == KW_E_NOTFOUND) {
        fprintf(stderr, "keywarden db: no database at %s; pass --db PATH or -c CONFIG\n",
                db_path);
    } else if (e == KW_E_OK) {
        char msg[8192];
        int ok = store_check(db, true, msg, sizeof msg);
        if (ok == 1) {
            printf("%s: ok\n", db_path);
            rc = 0;
        } else {
            printf("%s: %s\n", db_path, ok == 0 ? "damaged" : "cannot be checked");
            for (char *p = msg, *q; *p; p = q) { /* one problem a line */
                q = strchr(p, '\n');
                printf("  %.*s\n", q ? (int)(q - p) : (int)strlen(p), p);
                q = q ? q + 1 : p + strlen(p);
            }
            if (ok == 0)
                printf("keep a copy of the file; `run` refuses it. To start again, move it "
                       "aside (a new database is created); to save what can be read, see "
                       "sqlite3's .recover\n");
        }
    }
    if (db) store_db_close(db);
    free(from_cfg);
    return rc;
}
