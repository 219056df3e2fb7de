/* store: shared SQLite opening and per-module migrations (see store.h). */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kw_log.h"

static void mkdir_parent(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return;
        *p = '/';
    }
}

enum kw_err store_db_open(const char *path, sqlite3 **out)
{
    mkdir_parent(path);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                       SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        kw_err_log("cannot open database %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return KW_E_DB;
    }
    sqlite3_busy_timeout(db, 5000);
    char *err = NULL;
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                         "PRAGMA foreign_keys=ON;", NULL, NULL, &err) != SQLITE_OK) {
        kw_err_log("database %s: %s", path, err ? err : "?");
        sqlite3_free(err);
        sqlite3_close(db);
        return KW_E_DB;
    }
    *out = db;
    return KW_E_OK;
}

void store_db_close(sqlite3 *db)
{
    sqlite3_close(db);
}

enum kw_err store_db_open_ro(const char *path, sqlite3 **out)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        kw_err_log("cannot open database %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return KW_E_DB;
    }
    sqlite3_busy_timeout(db, 5000);
    *out = db;
    return KW_E_OK;
}

bool store_has_table(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = NULL;
    bool has = false;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        has = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return has;
}

static int current_version(sqlite3 *db, const char *module)
{
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(db, "SELECT version FROM schema_versions WHERE module=?", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, module, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : rc == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return v;
}

enum kw_err store_migrate(sqlite3 *db, const char *module, const char *const *steps, unsigned n)
{
    char *err = NULL;
    if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS schema_versions("
                         "module TEXT PRIMARY KEY, version INTEGER NOT NULL)",
                     NULL, NULL, &err) != SQLITE_OK)
        goto fail;
    int v = current_version(db, module);
    if (v < 0) {
        kw_err_log("store: cannot read schema version of %s: %s", module, sqlite3_errmsg(db));
        return KW_E_DB;
    }
    if ((unsigned)v > n) {
        kw_err_log("store: database schema of %s is version %d, newer than this keywarden "
                   "(%u); upgrade keywarden or use another --db",
                   module, v, n);
        return KW_E_DB;
    }
    for (unsigned i = (unsigned)v; i < n; i++) {
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &err) != SQLITE_OK)
            goto fail;
        if (sqlite3_exec(db, steps[i], NULL, NULL, &err) != SQLITE_OK) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
        sqlite3_stmt *st = NULL;
        sqlite3_prepare_v2(db, "INSERT INTO schema_versions(module,version) VALUES(?,?) "
                               "ON CONFLICT(module) DO UPDATE SET version=excluded.version",
                           -1, &st, NULL);
        sqlite3_bind_text(st, 1, module, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, (int)i + 1);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE || sqlite3_exec(db, "COMMIT", NULL, NULL, &err) != SQLITE_OK) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
    }
    return KW_E_OK;
fail:
    kw_err_log("store: migration of %s failed: %s", module, err ? err : sqlite3_errmsg(db));
    sqlite3_free(err);
    return KW_E_DB;
}
