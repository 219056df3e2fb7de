/* store: shared SQLite opening and per-module migrations (see store.h). */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return;
        *p = '/';
    }
}

/* A new database is created here 0600, before SQLite sees it: SQLite
 * creates files 0644 (less the umask) and gives the -wal and -shm the
 * database's mode. An existing one that others may read is narrowed. */
static void create_private(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        return;
    }
    struct stat st;
    if (errno != EEXIST || stat(path, &st) != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 07))
        return;
    if (chmod(path, st.st_mode & 0770) == 0)
        kw_warn("database %s was readable by every user; now mode %04o", path,
                (unsigned)(st.st_mode & 0770));
}

/* An existing database the process may not write (a read-only mount, or
 * a folder it cannot create the -shm in) is opened for reading: the run
 * goes on, and the writer names the cause once and counts what it cannot
 * store. */
static bool fall_back_ro(const char *path, int rc, sqlite3 **out)
{
    if ((rc & 0xff) != SQLITE_CANTOPEN && (rc & 0xff) != SQLITE_READONLY) return false;
    if (access(path, F_OK) != 0 || access(path, W_OK) == 0) return false;
    return store_db_open_ro(path, out) == KW_E_OK;
}

/* Process-wide SQLite settings, before the first connection (sqlite3_config
 * refuses them later, harmlessly). Memory statistics off: with them on,
 * every allocation inside SQLite takes one global mutex, and keywarden
 * reads none of them (the audit writer spent ~4% of its time in it). */
static void lib_init(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static void lib_once(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, lib_init);
}

enum kw_err store_db_open(const char *path, sqlite3 **out)
{
    lib_once();
    mkdir_parent(path);
    create_private(path);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                           SQLITE_OPEN_NOMUTEX, NULL);
    char cause[160];
    if (rc != SQLITE_OK) {
        sqlite3_close(db);
        if (fall_back_ro(path, rc, out)) return KW_E_OK;
        kw_err_log("cannot open database %s: %s", path,
                   store_cause(NULL, rc, cause, sizeof cause));
        return KW_E_DB;
    }
    sqlite3_busy_timeout(db, 5000);
    rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                          "PRAGMA foreign_keys=ON;", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = sqlite3_extended_errcode(db);
        store_cause(db, rc, cause, sizeof cause);
        sqlite3_close(db);
        if (fall_back_ro(path, rc, out)) return KW_E_OK;
        kw_err_log("cannot open database %s: %s", path, cause);
        return KW_E_DB;
    }
    *out = db;
    return KW_E_OK;
}

void store_db_close(sqlite3 *db)
{
    sqlite3_close_v2(db); /* a statement finalized later still frees it */
}

/* Opens read-only; on read-only media a WAL database whose -shm cannot be
 * created fails with SQLITE_CANTOPEN: then immutable=1 (no locks, no WAL
 * index), which is exact for media nothing can write. */
static int open_ro(const char *path, bool immutable, sqlite3 **out)
{
    lib_once();
    char uri[8192];
    const char *name = path;
    int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
    if (immutable) {
        size_t o = (size_t)snprintf(uri, sizeof uri, "file:");
        for (const char *p = path; *p && o + 4 < sizeof uri; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '?' || c == '#' || c == '%' || c < 0x21)
                o += (size_t)snprintf(uri + o, sizeof uri - o, "%%%02X", c);
            else
                uri[o++] = (char)c;
        }
        snprintf(uri + o, sizeof uri - o, "?immutable=1");
        name = uri;
        flags |= SQLITE_OPEN_URI;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(name, &db, flags, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return SQLITE_OK;
}

enum kw_err store_db_open_ro(const char *path, sqlite3 **out)
{
    if (access(path, F_OK) != 0) return KW_E_NOTFOUND;
    int rc = open_ro(path, false, out);
    if (rc == SQLITE_OK) return KW_E_OK;
    if ((rc & 0xff) == SQLITE_CANTOPEN || (rc & 0xff) == SQLITE_READONLY) {
        char wal[4200];
        snprintf(wal, sizeof wal, "%s-wal", path);
        struct stat st;
        if (open_ro(path, true, out) == SQLITE_OK) {
            if (stat(wal, &st) == 0 && st.st_size > 0)
                kw_warn("database %s opened as immutable (read-only media): the %lld bytes of "
                        "its -wal are not read",
                        path, (long long)st.st_size);
            return KW_E_OK;
        }
    }
    kw_err_log("cannot open database %s for reading: %s", path, sqlite3_errstr(rc));
    return KW_E_DB;
}

static const char *errno_name(int e)
{
    switch (e) {
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EFBIG: return "EFBIG";
    case EIO: return "EIO";
    case EDQUOT: return "EDQUOT";
    case ENOENT: return "ENOENT";
    case ENOMEM: return "ENOMEM";
    default: return NULL;
    }
}

const char *store_cause(sqlite3 *db, int rc, char *buf, size_t n)
{
    int sys = db ? sqlite3_system_errno(db) : 0;
    const char *en = errno_name(sys);
    if (sys == ENOSPC) { /* whichever call met it: one name for one cause */
        snprintf(buf, n, "disk full (ENOSPC)");
        return buf;
    }
    switch (rc & 0xff) {
    case SQLITE_FULL:
        if (sys == EFBIG || sys == EDQUOT)
            snprintf(buf, n, "%s (%s)", strerror(sys), en);
        else
            snprintf(buf, n, "disk full (ENOSPC)");
        break;
    case SQLITE_READONLY:
        if (sys == EROFS || sys == EACCES || sys == EPERM)
            snprintf(buf, n, "%s (%s)", strerror(sys), en);
        else
            snprintf(buf, n, "the database is read-only (file or folder not writable: EACCES, "
                             "or a read-only file system: EROFS)");
        break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: snprintf(buf, n, "database damaged (corrupt)"); break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: snprintf(buf, n, "locked by another connection (busy)"); break;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        if (en)
            snprintf(buf, n, "%s (%s)", strerror(sys), en);
        else if (sys)
            snprintf(buf, n, "%s (errno %d)", strerror(sys), sys);
        else
            snprintf(buf, n, "%s", sqlite3_errstr(rc));
        break;
    default: snprintf(buf, n, "%s", sqlite3_errstr(rc)); break;
    }
    return buf;
}

int store_check(sqlite3 *db, bool full, char *msg, size_t n)
{
    sqlite3_stmt *st = NULL;
    msg[0] = 0;
    int rc = sqlite3_prepare_v2(db, full ? "PRAGMA integrity_check" : "PRAGMA quick_check", -1,
                                &st, NULL);
    if (rc != SQLITE_OK) {
        store_cause(db, rc, msg, n);
        return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB ? 0 : -1;
    }
    int ok = -1;
    size_t o = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        if (ok < 0 && r && strcmp(r, "ok") == 0) {
            ok = 1;
            break;
        }
        ok = 0;
        if (r && strncmp(r, "*** in database ", 16) == 0) /* a heading line */
            r = strchr(r, '\n') ? strchr(r, '\n') + 1 : "";
        if (r && !*r) continue;
        if (o + 2 < n) /* every problem, one per line, as far as msg holds */
            o += (size_t)snprintf(msg + o, n - o, "%s%s", o ? "\n" : "", r ? r : "?");
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) ok = 0;
        if (!o) store_cause(db, rc, msg, n);
    }
    sqlite3_finalize(st);
    if (o >= n - 2 && n > 4) memcpy(msg + n - 4, "...", 4);
    return ok;
}

void store_rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int store_version(sqlite3 *db, const char *module)
{
    sqlite3_stmt *st = NULL;
    int v = 0;
    if (sqlite3_prepare_v2(db, "SELECT version FROM schema_versions WHERE module=?", -1, &st,
                           NULL) != SQLITE_OK)
        return 0; /* no table yet */
    sqlite3_bind_text(st, 1, module, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

bool store_has_table(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = NULL;
    bool has = false;
    if (sqlite3_prepare_v2(db,
                           "SELECT 1 FROM sqlite_master WHERE type IN ('table','view') AND name=?",
                           -1, &st, NULL) == SQLITE_OK) {
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
    /* a current schema needs no write at all (a read-only database opens) */
    int have = store_version(db, module);
    if (have == (int)n) return KW_E_OK;
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
            store_rollback(db);
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
            store_rollback(db);
            goto fail;
        }
    }
    return KW_E_OK;
fail:
    kw_err_log("store: migration of %s failed: %s", module, err ? err : sqlite3_errmsg(db));
    sqlite3_free(err);
    return KW_E_DB;
}
