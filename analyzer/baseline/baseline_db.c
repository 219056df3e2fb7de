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

enum kw_err bl_db_open(struct baseline *b, const char *path, struct dbw *writer)
{
    pthread_mutex_init(&b->smu, NULL);
    b->smu_ready = true;
    enum kw_err e = store_db_open(path, &b->db);
    if (e != KW_E_OK) return e;
    e = store_migrate(b->db, "baseline", bl_steps, sizeof bl_steps / sizeof *bl_steps);
    if (e != KW_E_OK) return e;
    if (writer) {
        b->w = writer;
        return KW_E_OK;
    }
    struct dbw_config wc = {.path = path};
    e = dbw_new(&wc, &b->w);
    b->own_w = e == KW_E_OK;
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

/* A stored profile is data from a file another user may have changed, read
 * by a process that may run as root: every count bounding an array, every
 * ring index and kind used as an index is checked before use (a count of
 * 2^31 would otherwise send the next update far outside the record), and
 * every text is ended within its field. */
#define TERM(field) (field)[sizeof(field) - 1] = 0
static bool profile_valid(struct bl_profile *p)
{
    if (p->n_end > BL_K_END || p->n_net > BL_K_NET || p->n_ua > BL_K_UA ||
        p->n_pend > BL_K_PEND || p->n_recent > BL_K_RECENT || p->n_vpend > BL_K_VPEND ||
        p->n_client > BL_K_CLIENT || p->n_pair > BL_K_PAIR || p->n_grant > BL_K_GRANT ||
        p->n_gone > BL_K_GONE || p->gone_next >= BL_K_GONE || p->cur_cls > 1 || p->is_cred > 1)
        return false;
    for (int c = 0; c < 2; c++)
        if (p->vol[c].n > BL_VOL_N || p->vol[c].next >= BL_VOL_N) return false;
    for (uint32_t i = 0; i < p->n_vpend; i++)
        if (p->vpend[i].cls > 1) return false;
    for (uint32_t i = 0; i < p->n_pend; i++) {
        const struct bl_pending *e = &p->pend[i];
        if (e->type < BL_P_ENDPOINT || e->type > BL_P_CONC) return false;
        if (e->type == BL_P_HOUR && (e->h < 1 || e->h > 48)) return false;
    }
    for (uint32_t i = 0; i < p->n_net; i++)
        if (p->net[i].family != 4 && p->net[i].family != 6) return false;
    TERM(p->key);
    TERM(p->tz);
    for (int i = 0; i < BL_K_END; i++)
        TERM(p->end[i].text);
    for (int i = 0; i < BL_K_UA; i++)
        TERM(p->ua[i].text);
    for (int i = 0; i < BL_K_PEND; i++)
        TERM(p->pend[i].text);
    for (int i = 0; i < BL_K_HOURTOP; i++)
        TERM(p->top[i].text);
    for (int i = 0; i < BL_K_CLIENT; i++)
        TERM(p->client[i].text);
    for (int i = 0; i < BL_K_GRANT; i++)
        TERM(p->grant[i].text);
    for (int i = 0; i < BL_K_GONE; i++)
        TERM(p->gone[i].method);
    return p->key[0] != 0;
}
#undef TERM

enum kw_err bl_db_load(struct baseline *b)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(b->db,
                           "SELECT format, data FROM baseline_profile "
                           "ORDER BY is_credential, last_seen DESC, key",
                           -1, &s, NULL) != SQLITE_OK) {
        kw_err_log("baseline: load: %s", sqlite3_errmsg(b->db));
        return KW_E_DB;
    }
    int rc;
    uint64_t over = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int fmt = sqlite3_column_int(s, 0), len = sqlite3_column_bytes(s, 1);
        bool older = (fmt == 3 && len == (int)BL_FORMAT_V3_SIZE) ||
                     (fmt == 4 && len == (int)BL_FORMAT_V4_SIZE) ||
                     (fmt == 5 && len == (int)BL_FORMAT_V5_SIZE);
        if (!older && (fmt != BL_FORMAT || len != (int)sizeof(struct bl_profile))) {
            b->st.load_incompatible++;
            continue;
        }
        if (b->n == b->max) {
            over++;
            continue;
        }
        struct bl_profile *p = &b->p[b->n];
        memset(p, 0, sizeof *p);
        memcpy(p, sqlite3_column_blob(s, 1), (size_t)len);
        if (!profile_valid(p)) {
            memset(p, 0, sizeof *p);
            b->st.load_invalid++;
            continue;
        }
        /* identities load first (the query's order), then the most recently
         * seen unattributed profiles up to their share */
        if (p->is_cred && b->n_cred >= b->max_cred) {
            memset(p, 0, sizeof *p);
            over++;
            continue;
        }
        b->n_cred += p->is_cred;
        b->n++; /* keys are unique: the table's primary key */
    }
    bl_reindex(b);
    sqlite3_finalize(s);
    b->st.profiles = b->n;
    b->st.profile_limit += over;
    if (b->st.load_incompatible)
        kw_warn("baseline: %llu stored profiles have an older format and were skipped",
                (unsigned long long)b->st.load_incompatible);
    if (b->st.load_invalid)
        kw_warn("baseline: %llu stored profiles refused: a count, index or kind out of range "
                "(a damaged or modified database); they learn again from scratch",
                (unsigned long long)b->st.load_invalid);
    if (over)
        kw_warn("baseline: %llu stored profiles not loaded: max_profiles (%u, of which %u "
                "for unattributed credentials) reached",
                (unsigned long long)over, b->max, b->max_cred);
    if (rc != SQLITE_DONE) {
        kw_err_log("baseline: load: %s", sqlite3_errmsg(b->db));
        return KW_E_DB;
    }
    return KW_E_OK;
}

/* A save: a copy of the changed profiles, written by the writer thread in
 * its transaction. */
struct bl_save_job {
    struct dbw_job job;
    struct baseline *b;
    int (*also)(void *user, sqlite3 *db); /* baseline_save_along */
    void *also_user;
    char (*del)[BL_KEYLEN]; /* rows of evicted profiles, deleted first */
    uint32_t n_del, n;
    struct bl_profile p[];
};

static int save_run(struct dbw_job *jb, sqlite3 *db)
{
    struct bl_save_job *j = (struct bl_save_job *)jb;
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    if (j->n_del) {
        /* before the inserts: an evicted key that came back is written anew */
        rc = sqlite3_prepare_v2(db, "DELETE FROM baseline_profile WHERE key=?", -1, &s, NULL);
        for (uint32_t i = 0; rc == SQLITE_OK && i < j->n_del; i++) {
            sqlite3_bind_text(s, 1, j->del[i], -1, SQLITE_STATIC);
            rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(db);
            sqlite3_reset(s);
        }
        sqlite3_finalize(s);
        s = NULL;
        if (rc != SQLITE_OK) return rc;
    }
    rc = sqlite3_prepare_v2(db,
                                "INSERT OR REPLACE INTO baseline_profile(key,is_credential,"
                                "first_seen,last_seen,requests,format,data) VALUES(?,?,?,?,?,?,?)",
                                -1, &s, NULL);
    for (uint32_t i = 0; rc == SQLITE_OK && i < j->n; i++) {
        const struct bl_profile *p = &j->p[i];
        sqlite3_bind_text(s, 1, p->key, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, p->is_cred);
        sqlite3_bind_int64(s, 3, p->first_seen);
        sqlite3_bind_int64(s, 4, p->last_seen);
        sqlite3_bind_int64(s, 5, (sqlite3_int64)p->requests);
        sqlite3_bind_int(s, 6, BL_FORMAT);
        sqlite3_bind_blob(s, 7, p, sizeof *p, SQLITE_STATIC);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(db);
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    if (rc == SQLITE_OK && j->also) rc = j->also(j->also_user, db);
    return rc;
}

static void save_done(struct dbw_job *jb, int rc)
{
    struct bl_save_job *j = (struct bl_save_job *)jb;
    struct baseline *b = j->b;
    pthread_mutex_lock(&b->smu);
    if (rc == SQLITE_OK) {
        b->st.saves++;
        b->st.saved_profiles += j->n;
    } else {
        /* the writer named the cause; the next save writes every profile
         * and deletes these rows again */
        b->st.save_errors++;
        b->save_failed = true;
        for (uint32_t i = 0; i < j->n_del; i++)
            bl_del_push(b, j->del[i]);
    }
    free(j->del);
    b->last_save_rc = rc;
    b->save_inflight = false;
    pthread_mutex_unlock(&b->smu);
    free(j);
}

/* Copies the changed profiles (all of them after a failed save) into a
 * job and queues it; with also, even when nothing changed. Called with smu
 * held, on the thread that owns b. */
static bool queue_save(struct baseline *b, int (*also)(void *, sqlite3 *), void *also_user)
{
    if (b->save_failed) {
        memset(b->dirty, 1, b->n);
        b->save_failed = false;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < b->n; i++)
        k += b->dirty[i] != 0;
    if (!k && !b->n_del && !also) return false;
    struct bl_save_job *j = malloc(sizeof *j + (size_t)k * sizeof j->p[0]);
    if (!j) {
        b->st.save_errors++;
        return false;
    }
    memset(&j->job, 0, sizeof j->job);
    j->also = also;
    j->also_user = also_user;
    j->job.run = save_run;
    j->job.done = save_done;
    j->job.lazy = true;
    j->b = b;
    j->n = 0;
    /* the job takes the list of evicted keys; a new one starts empty */
    j->del = b->del;
    j->n_del = b->n_del;
    b->del = NULL;
    b->n_del = b->cap_del = 0;
    for (uint32_t i = 0; i < b->n; i++)
        if (b->dirty[i]) {
            j->p[j->n++] = b->p[i];
            b->dirty[i] = 0;
        }
    b->save_inflight = true;
    dbw_submit(b->w, &j->job);
    return true;
}

void bl_saver_stop(struct baseline *b)
{
    if (b->w) dbw_flush(b->w); /* save jobs point at b */
    if (b->own_w) dbw_destroy(b->w);
    b->w = NULL;
    b->own_w = false;
    if (b->smu_ready) {
        pthread_mutex_destroy(&b->smu);
        b->smu_ready = false;
    }
}

void bl_save_async(struct baseline *b)
{
    if (!b->w) return;
    pthread_mutex_lock(&b->smu);
    if (b->save_inflight)
        b->st.save_deferred++; /* dirty flags stay: the next save takes them */
    else
        queue_save(b, NULL, NULL);
    pthread_mutex_unlock(&b->smu);
}

enum kw_err baseline_save(struct baseline *b)
{
    return baseline_save_along(b, NULL, NULL);
}

enum kw_err baseline_save_along(struct baseline *b, int (*also)(void *user, sqlite3 *db),
                                void *user)
{
    if (!b->w) return KW_E_OK;
    dbw_flush(b->w); /* a periodic save still queued ends first */
    pthread_mutex_lock(&b->smu);
    bool queued = queue_save(b, also, user);
    pthread_mutex_unlock(&b->smu);
    if (!queued) return also ? KW_E_DB : KW_E_OK; /* no memory for the job */
    dbw_flush(b->w);
    pthread_mutex_lock(&b->smu);
    int rc = b->last_save_rc;
    pthread_mutex_unlock(&b->smu);
    return rc == SQLITE_OK ? KW_E_OK : KW_E_DB;
}

enum kw_err baseline_reset(struct baseline *b, const char *key)
{
    if (b->w) dbw_flush(b->w); /* a save in flight would write the profile back */
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
    b->n_cred -= b->p[i].is_cred;
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
