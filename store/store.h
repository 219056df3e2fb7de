/* store: the SQLite database every persistent part of keywarden shares
 * (audit trail, outbox, baselines). One file, WAL, synchronous=NORMAL,
 * busy timeout; each module opens its own connection and owns its tables,
 * migrated by store_migrate() under the module's name, so modules evolve
 * their schemas independently. */
#ifndef KW_STORE_H
#define KW_STORE_H

#include <sqlite3.h>
#include <stdbool.h>

#include "kw_err.h"

/* Opens (creating) path with WAL and a 5 s busy timeout. Creates the
 * parent directory if missing. */
enum kw_err store_db_open(const char *path, sqlite3 **out) KW_WUR;
void store_db_close(sqlite3 *db);

/* Opens an existing database read-only (SQLITE_OPEN_READONLY, 5 s busy
 * timeout), for commands that only look (`report`): they never create,
 * migrate or change a file that `run` may be writing at the same time. */
enum kw_err store_db_open_ro(const char *path, sqlite3 **out) KW_WUR;

/* True when the database has a table of that name (a read-only reader
 * cannot migrate, so it checks before querying a module's table). */
bool store_has_table(sqlite3 *db, const char *name);

/* Applies steps[v..n) for `module`, where v is the module's recorded
 * version (table schema_versions), each step in one transaction. Step i
 * moves the schema to version i+1. Returns KW_E_DB on failure, after
 * logging the SQL error. */
enum kw_err store_migrate(sqlite3 *db, const char *module, const char *const *steps,
                          unsigned n) KW_WUR;

#endif
