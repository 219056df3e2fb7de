/* store: the SQLite database every persistent part of keywarden shares
 * (audit trail, outbox, baselines). One file, WAL, synchronous=NORMAL,
 * busy timeout; each module opens its own connection and owns its tables,
 * migrated by store_migrate() under the module's name, so modules evolve
 * their schemas independently. */
#ifndef KW_STORE_H
#define KW_STORE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "kw_err.h"

/* Opens (creating) path with WAL and a 5 s busy timeout. Creates the
 * missing parent directories (0700) and a new database file 0600, so its
 * -wal and -shm (which SQLite creates with the database's mode) are 0600
 * too; an existing database readable by others is narrowed to 0600. */
enum kw_err store_db_open(const char *path, sqlite3 **out) KW_WUR;
/* Opens an existing database for reading only (`audit`, `baseline show`,
 * `db check`): nothing is created or migrated. On read-only media, where
 * SQLite cannot create the -shm beside a WAL database, it opens the file
 * as immutable instead. KW_E_NOTFOUND when there is no such file. */
enum kw_err store_db_open_ro(const char *path, sqlite3 **out) KW_WUR;
void store_db_close(sqlite3 *db);

/* True when the database has a table or a view of that name (a read-only
 * reader cannot migrate, so it checks before querying a module's table;
 * audit is a view from its schema v4 on). */
bool store_has_table(sqlite3 *db, const char *name);

/* Names the cause of a failed SQLite call for an operator: "disk full
 * (ENOSPC)", "read-only file system (EROFS)", "permission denied
 * (EACCES)", "database damaged (corrupt)", "file too large (EFBIG)"...
 * followed by SQLite's message. rc is the code the call returned. */
const char *store_cause(sqlite3 *db, int rc, char *buf, size_t n);

/* PRAGMA quick_check (full = false) or integrity_check (full = true).
 * Returns 1 when the database is sound, 0 when damaged (the first
 * problem in msg), -1 when the check itself could not run (msg says why). */
int store_check(sqlite3 *db, bool full, char *msg, size_t n);

/* ROLLBACK when a transaction is open: SQLite rolls back by itself after
 * some errors (SQLITE_FULL, IOERR, BUSY), and a second ROLLBACK would only
 * add "cannot rollback - no transaction is active" to the log. */
void store_rollback(sqlite3 *db);

/* Reads the schema version of module (0 when none) without writing. */
int store_version(sqlite3 *db, const char *module);

/* Applies steps[v..n) for `module`, where v is the module's recorded
 * version (table schema_versions), each step in one transaction. Step i
 * moves the schema to version i+1. Returns KW_E_DB on failure, after
 * logging the SQL error. */
enum kw_err store_migrate(sqlite3 *db, const char *module, const char *const *steps,
                          unsigned n) KW_WUR;

#endif
