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

static void saver_start(struct baseline *b);

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
    e = store_migrate(b->db, "baseline", bl_steps, sizeof bl_steps / sizeof *bl_steps);
    if (e == KW_E_OK) saver_start(b);
    return e;
}

enum kw_err bl_db_open_ro(struct baseline *b, const char *path, bool *has_table, uint32_t *rows)
{
    *has_table = false;
    *rows = 0;
    enum kw_err e = store_db_open_ro(path, &b->db);
    if (e != KW_E_OK || !store_has_table(b->db, "baseline_profile")) return e;
    *has_table = true;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(b->db, "SELECT count(*) FROM baseline_profile", -1, &s, NULL) !=
            SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
        kw_err_log("baseline: load: %s", sqlite3_errmsg(b->db));
        sqlite3_finalize(s);
        return KW_E_DB;
    }
    *rows = (uint32_t)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return KW_E_OK;
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

/* Writes profiles in one transaction. Runs on the saver thread, or on the
 * caller's while the saver is idle: never both at once (one connection). */
static enum kw_err write_rows(struct baseline *b, const struct bl_profile *const *ps, uint32_t n)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(b->db,
                           "INSERT OR REPLACE INTO baseline_profile(key,is_credential,first_seen,"
                           "last_seen,requests,format,data) VALUES(?,?,?,?,?,?,?)",
                           -1, &s, NULL) != SQLITE_OK ||
        sqlite3_exec(b->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    for (uint32_t i = 0; i < n; i++) {
        const struct bl_profile *p = ps[i];
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
    }
    if (sqlite3_exec(b->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
        goto fail;
    }
    sqlite3_finalize(s);
    pthread_mutex_lock(&b->smu);
    b->st.saves++;
    b->st.saved_profiles += n;
    pthread_mutex_unlock(&b->smu);
    return KW_E_OK;
fail:
    kw_err_log("baseline: save failed: %s", sqlite3_errmsg(b->db));
    sqlite3_finalize(s);
    pthread_mutex_lock(&b->smu);
    b->st.save_errors++;
    pthread_mutex_unlock(&b->smu);
    return KW_E_DB;
}

static void *saver_main(void *arg)
{
    struct baseline *b = arg;
    pthread_mutex_lock(&b->smu);
    for (;;) {
        while (!b->saver_busy && !b->saver_stop)
            pthread_cond_wait(&b->scond, &b->smu);
        if (!b->saver_busy) break;
        uint32_t n = b->snap_n;
        pthread_mutex_unlock(&b->smu);
        const struct bl_profile **ps = malloc((n ? n : 1) * sizeof *ps);
        if (ps) {
            for (uint32_t i = 0; i < n; i++)
                ps[i] = &b->snap[i];
            if (write_rows(b, ps, n) != KW_E_OK) {
                kw_warn("baseline: periodic save failed; the next one writes every profile");
                pthread_mutex_lock(&b->smu);
                b->save_failed = true; /* the packet thread re-marks (it owns dirty[]) */
                pthread_mutex_unlock(&b->smu);
            }
            free(ps);
        }
        pthread_mutex_lock(&b->smu);
        b->saver_busy = false;
        pthread_cond_broadcast(&b->scond);
    }
    pthread_mutex_unlock(&b->smu);
    return NULL;
}

static void saver_start(struct baseline *b)
{
    pthread_mutex_init(&b->smu, NULL);
    pthread_cond_init(&b->scond, NULL);
    b->smu_ready = true;
    b->saver_on = pthread_create(&b->saver, NULL, saver_main, b) == 0;
}

/* Waits until the saver has written what it was given. */
static void saver_idle(struct baseline *b)
{
    if (!b->saver_on) return;
    pthread_mutex_lock(&b->smu);
    while (b->saver_busy)
        pthread_cond_wait(&b->scond, &b->smu);
    pthread_mutex_unlock(&b->smu);
}

void bl_saver_stop(struct baseline *b)
{
    if (b->saver_on) {
        pthread_mutex_lock(&b->smu);
        b->saver_stop = true;
        pthread_cond_broadcast(&b->scond);
        pthread_mutex_unlock(&b->smu);
        pthread_join(b->saver, NULL);
        b->saver_on = false;
    }
    if (b->smu_ready) {
        pthread_mutex_destroy(&b->smu);
        pthread_cond_destroy(&b->scond);
        b->smu_ready = false;
    }
}

void bl_save_async(struct baseline *b)
{
    if (!b->db || b->read_only) return;
    if (!b->saver_on) {
        if (baseline_save(b) != KW_E_OK)
            kw_warn("baseline: periodic save failed; will retry at the next interval");
        return;
    }
    pthread_mutex_lock(&b->smu);
    if (b->saver_busy) {
        b->st.save_deferred++; /* dirty flags stay: the next save takes them */
        pthread_mutex_unlock(&b->smu);
        return;
    }
    if (b->save_failed) {
        /* the rows copied for the failed save were lost: write them all */
        memset(b->dirty, 1, b->n);
        b->save_failed = false;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < b->n; i++)
        k += b->dirty[i] != 0;
    if (k > b->snap_cap) {
        struct bl_profile *ns = realloc(b->snap, (size_t)k * sizeof *ns);
        if (!ns) {
            b->st.save_errors++;
            pthread_mutex_unlock(&b->smu);
            return;
        }
        b->snap = ns;
        b->snap_cap = k;
    }
    k = 0;
    for (uint32_t i = 0; i < b->n; i++)
        if (b->dirty[i]) {
            b->snap[k++] = b->p[i];
            b->dirty[i] = 0;
        }
    b->snap_n = k;
    b->saver_busy = k > 0;
    pthread_cond_broadcast(&b->scond);
    pthread_mutex_unlock(&b->smu);
}

enum kw_err baseline_save(struct baseline *b)
{
    if (!b->db || b->read_only) return KW_E_OK;
    saver_idle(b);
    uint32_t n = 0;
    const struct bl_profile **ps = malloc((b->n ? b->n : 1) * sizeof *ps);
    if (!ps) return KW_E_NOMEM;
    for (uint32_t i = 0; i < b->n; i++)
        if (b->dirty[i]) ps[n++] = &b->p[i];
    enum kw_err e = write_rows(b, ps, n);
    free(ps);
    if (e == KW_E_OK) memset(b->dirty, 0, b->n);
    return e;
}

enum kw_err baseline_reset(struct baseline *b, const char *key)
{
    saver_idle(b); /* one connection: never while the saver writes */
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
