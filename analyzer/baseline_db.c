/* baseline_db: persistence of the profiles in the shared SQLite database
 * (module "baseline", see store.h). A profile is one row: its key, a few
 * columns for people who read the database with sqlite3, and the profile
 * record as a blob tagged with BL_FORMAT. Changed profiles are written in
 * one transaction per save; a blob of another format or size is skipped
 * and counted (load_incompatible), never misread. */
#include <stdlib.h>
#include <string.h>

#include "baseline_int.h"
#include "kw_log.h"
#include "store.h"

static const char *const bl_steps[] = {
    /* v1 */
    "CREATE TABLE baseline_profile("
    " key TEXT PRIMARY KEY," /* identity id, or credential fingerprint */
    " is_credential INTEGER NOT NULL,"
    " first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL," /* µs, packet time */
    " requests INTEGER NOT NULL,"
    " format INTEGER NOT NULL," /* BL_FORMAT of data */
    " data BLOB NOT NULL);",
};

enum kw_err bl_db_open(struct baseline *b, const char *path)
{
    enum kw_err e = store_db_open(path, &b->db);
    if (e != KW_E_OK) return e;
    return store_migrate(b->db, "baseline", bl_steps, sizeof bl_steps / sizeof *bl_steps);
}

enum kw_err bl_db_load(struct baseline *b)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(b->db,
                           "SELECT format, data FROM baseline_profile ORDER BY last_seen DESC, key",
                           -1, &s, NULL) != SQLITE_OK) {
        kw_err_log("baseline: load: %s", sqlite3_errmsg(b->db));
        return KW_E_DB;
    }
    int rc;
    uint64_t over = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (sqlite3_column_int(s, 0) != BL_FORMAT ||
            sqlite3_column_bytes(s, 1) != (int)sizeof(struct bl_profile)) {
            b->st.load_incompatible++;
            continue;
        }
        if (b->n == b->max) {
            over++;
            continue;
        }
        struct bl_profile *p = &b->p[b->n];
        memcpy(p, sqlite3_column_blob(s, 1), sizeof *p);
        p->key[sizeof p->key - 1] = 0;
        b->n++; /* keys are unique: the table's primary key */
    }
    bl_reindex(b);
    sqlite3_finalize(s);
    b->st.profiles = b->n;
    b->st.profile_limit += over;
    if (b->st.load_incompatible)
        kw_warn("baseline: %llu stored profiles have an older format and were skipped",
                (unsigned long long)b->st.load_incompatible);
    if (over)
        kw_warn("baseline: %llu stored profiles not loaded: max_profiles (%u) reached",
                (unsigned long long)over, b->max);
    if (rc != SQLITE_DONE) {
        kw_err_log("baseline: load: %s", sqlite3_errmsg(b->db));
        return KW_E_DB;
    }
    return KW_E_OK;
}

enum kw_err baseline_save(struct baseline *b)
{
    if (!b->db) return KW_E_OK;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(b->db,
                           "INSERT OR REPLACE INTO baseline_profile(key,is_credential,first_seen,"
                           "last_seen,requests,format,data) VALUES(?,?,?,?,?,?,?)",
                           -1, &s, NULL) != SQLITE_OK ||
        sqlite3_exec(b->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    uint64_t n = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        if (!b->dirty[i]) continue;
        const struct bl_profile *p = &b->p[i];
        sqlite3_bind_text(s, 1, p->key, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, p->is_cred);
        sqlite3_bind_int64(s, 3, p->first_seen);
        sqlite3_bind_int64(s, 4, p->last_seen);
        sqlite3_bind_int64(s, 5, (sqlite3_int64)p->requests);
        sqlite3_bind_int(s, 6, BL_FORMAT);
        sqlite3_bind_blob(s, 7, p, sizeof *p, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) {
            sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
        n++;
    }
    if (sqlite3_exec(b->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
        goto fail;
    }
    sqlite3_finalize(s);
    memset(b->dirty, 0, b->n);
    b->st.saves++;
    b->st.saved_profiles += n;
    return KW_E_OK;
fail:
    kw_err_log("baseline: save failed: %s", sqlite3_errmsg(b->db));
    sqlite3_finalize(s);
    b->st.save_errors++;
    return KW_E_DB;
}

enum kw_err baseline_reset(struct baseline *b, const char *key)
{
    long i = bl_find(b, key);
    bool in_db = false;
    if (b->db) {
        sqlite3_stmt *s = NULL;
        if (sqlite3_prepare_v2(b->db, "DELETE FROM baseline_profile WHERE key=?", -1, &s, NULL) !=
            SQLITE_OK) {
            kw_err_log("baseline: reset: %s", sqlite3_errmsg(b->db));
            return KW_E_DB;
        }
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE) {
            kw_err_log("baseline: reset: %s", sqlite3_errmsg(b->db));
            return KW_E_DB;
        }
        in_db = sqlite3_changes(b->db) > 0;
    }
    if (i < 0) return in_db ? KW_E_OK : KW_E_NOTFOUND;
    b->n--;
    if ((uint32_t)i != b->n) { /* the last profile takes the freed slot */
        memcpy(&b->p[i], &b->p[b->n], sizeof b->p[0]);
        b->dirty[i] = b->dirty[b->n];
    }
    memset(&b->p[b->n], 0, sizeof b->p[0]);
    b->dirty[b->n] = 0;
    bl_reindex(b);
    b->st.profiles = b->n;
    return KW_E_OK;
}
