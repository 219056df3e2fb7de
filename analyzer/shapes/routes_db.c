/* routes_db: the learned route trees in the shared SQLite database
 * (module "shapes"): one row per service and one per node, every field of
 * the node but its hash chain. Saves write the nodes changed since the
 * last one through the database writer (store/dbw.h), so the judge thread
 * never waits on SQLite; a failed save makes the next one write every
 * node.
 *
 * The one thing to know: node ids are dense and stable (nodes are never
 * freed), so a model loads as exactly the tree that was saved, aliases
 * included: a literal merged into a parameter before a restart still
 * resolves to it after. A stored model that does not hold together (a gap
 * in the ids, a link out of range) is not loaded: the run starts with an
 * empty model and says so. */
#include <stdlib.h>
#include <string.h>

#include "kw_log.h"
#include "routes_int.h"
#include "store.h"

static const char *const rt_steps[] = {
    /* v1 */
    "CREATE TABLE shapes_service("
    " root INTEGER PRIMARY KEY,"  /* node id of the service's root */
    " key TEXT NOT NULL UNIQUE);" /* host:port */
    "CREATE TABLE shapes_node("
    " id INTEGER PRIMARY KEY,"
    " parent INTEGER NOT NULL, child INTEGER NOT NULL, next INTEGER NOT NULL," /* -1: none */
    " alias INTEGER NOT NULL," /* merged into node alias-1; 0: live */
    " seg BLOB NOT NULL,"      /* literal, or a parameter's affix (\\1 = the value) */
    " flags INTEGER NOT NULL, kinds INTEGER NOT NULL, depth INTEGER NOT NULL,"
    " count INTEGER NOT NULL, ends INTEGER NOT NULL, ends_slash INTEGER NOT NULL,"
    " first INTEGER NOT NULL, last INTEGER NOT NULL);", /* µs, packet time */
    /* v2: OpenAPI documents imported with `keywarden openapi import` */
    "CREATE TABLE shapes_openapi("
    " service TEXT PRIMARY KEY,"  /* host:port, or host for any port */
    " source TEXT NOT NULL,"      /* the file it came from */
    " imported INTEGER NOT NULL," /* wall clock, µs */
    " text BLOB NOT NULL);",
};

static int64_t link_out(uint32_t v)
{
    return v == NIL ? -1 : (int64_t)v;
}

static bool link_in(int64_t v, uint32_t n, uint32_t *out)
{
    if (v == -1) {
        *out = NIL;
        return true;
    }
    if (v < 0 || v >= n) return false;
    *out = (uint32_t)v;
    return true;
}

/* Reads the saved model into r (empty). false: it does not hold
 * together (r is left empty). */
static enum kw_err load(struct routes *r, sqlite3 *db)
{
    sqlite3_stmt *s = NULL;
    uint32_t n = 0;
    enum kw_err e = KW_E_DB;
    if (sqlite3_prepare_v2(db, "SELECT count(*), coalesce(max(id), -1) FROM shapes_node", -1, &s,
                           NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW)
        goto db_fail;
    n = (uint32_t)sqlite3_column_int64(s, 0);
    bool dense = sqlite3_column_int64(s, 1) == (sqlite3_int64)n - 1;
    sqlite3_finalize(s);
    s = NULL;
    if (!n) return KW_E_OK;
    if (!dense || n > r->c.max_nodes || !rt_reserve(r, n)) {
        kw_warn("shapes: the saved route model (%u nodes) %s; starting with an empty one", n,
                dense ? "is larger than max_nodes" : "has gaps");
        r->st.load_refused++;
        return KW_E_OK;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT id,parent,child,next,alias,seg,flags,kinds,depth,count,ends,"
                           "ends_slash,first,last FROM shapes_node ORDER BY id",
                           -1, &s, NULL) != SQLITE_OK)
        goto db_fail;
    uint32_t i = 0;
    int rc;
    bool ok = true;
    while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct rt_node *x = &r->n[i];
        memset(x, 0, sizeof *x);
        int sl = sqlite3_column_bytes(s, 5);
        const void *seg = sqlite3_column_blob(s, 5);
        uint32_t alias = NIL;
        ok = sqlite3_column_int64(s, 0) == i &&
             link_in(sqlite3_column_int64(s, 1), n, &x->parent) &&
             link_in(sqlite3_column_int64(s, 2), n, &x->child) &&
             link_in(sqlite3_column_int64(s, 3), n, &x->next) &&
             link_in(sqlite3_column_int64(s, 4) - 1, n, &alias) && sl >= 0 && sl <= MAX_SEG &&
             rt_arena_put(r, seg ? seg : "", (size_t)sl, &x->seg);
        x->alias = alias == NIL ? 0 : alias + 1;
        x->hnext = NIL;
        x->seg_len = (uint16_t)sl;
        int fl = sqlite3_column_int(s, 6);
        x->flags = (uint8_t)fl;
        x->methods = (uint8_t)(fl >> 8);
        x->kinds = (uint16_t)sqlite3_column_int(s, 7);
        x->depth = (uint16_t)sqlite3_column_int(s, 8);
        x->count = (uint32_t)sqlite3_column_int64(s, 9);
        x->ends = (uint32_t)sqlite3_column_int64(s, 10);
        x->ends_slash = (uint32_t)sqlite3_column_int64(s, 11);
        x->first = sqlite3_column_int64(s, 12);
        x->last = sqlite3_column_int64(s, 13);
        i++;
    }
    sqlite3_finalize(s);
    s = NULL;
    if (!ok || i != n) {
        kw_warn("shapes: the saved route model does not hold together (node %u); starting with "
                "an empty one",
                i);
        r->st.load_refused++;
        r->nn = 0;
        r->alen = 0;
        return KW_E_OK;
    }
    r->nn = n;
    /* every literal, merged ones too: a merged literal resolves to the
     * parameter it went into, so the old name still finds it */
    for (uint32_t k = 0; k < n; k++)
        if (r->n[k].parent != NIL && !(r->n[k].flags & RT_PARAM)) rt_hash_insert(r, k);
    if (sqlite3_prepare_v2(db, "SELECT root, key FROM shapes_service ORDER BY rowid", -1, &s,
                           NULL) != SQLITE_OK)
        goto db_fail;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && r->nsvc < r->c.max_services) {
        uint32_t root;
        const char *key = (const char *)sqlite3_column_text(s, 1);
        if (!link_in(sqlite3_column_int64(s, 0), n, &root) || root == NIL || !key) continue;
        if (rt_add_service(r, key, root) != KW_E_OK) break;
    }
    sqlite3_finalize(s);
    r->svc_saved = r->nsvc;
    r->st.nodes = r->nn;
    r->st.services = r->nsvc;
    r->st.loaded = r->nn;
    return KW_E_OK;
db_fail:
    kw_err_log("shapes: load: %s", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return e;
}

enum kw_err routes_db_open(struct routes *r, const char *path, struct dbw *writer)
{
    sqlite3 *db = NULL;
    enum kw_err e = store_db_open(path, &db);
    if (e == KW_E_OK) e = store_migrate(db, "shapes", rt_steps, sizeof rt_steps / sizeof *rt_steps);
    if (e == KW_E_OK) e = load(r, db);
    store_db_close(db);
    if (e != KW_E_OK) return e;
    pthread_mutex_init(&r->smu, NULL);
    r->smu_ready = true;
    if (writer) {
        r->w = writer;
        return KW_E_OK;
    }
    struct dbw_config wc = {.path = path};
    e = dbw_new(&wc, &r->w);
    r->own_w = e == KW_E_OK;
    return e;
}

enum kw_err routes_load_ro(const char *path, const struct routes_config *c, struct routes **out)
{
    sqlite3 *db = NULL;
    enum kw_err e = store_db_open_ro(path, &db);
    if (e != KW_E_OK) return e;
    e = routes_new(c, out);
    if (e == KW_E_OK && store_has_table(db, "shapes_node")) e = load(*out, db);
    store_db_close(db);
    if (e != KW_E_OK) {
        routes_destroy(*out);
        *out = NULL;
    }
    return e;
}

/* ---- saving ---- */

struct rt_row {
    uint32_t id;
    struct rt_node x;
    uint32_t seg; /* offset into the job's text */
};

struct rt_svc_row {
    uint32_t root, key; /* key: offset into the job's text */
};

struct rt_save_job {
    struct dbw_job job;
    struct routes *r;
    uint32_t n, nsvc;
    struct rt_row *rows;
    struct rt_svc_row *svc;
    char *text;
};

static int save_run(struct dbw_job *jb, sqlite3 *db)
{
    struct rt_save_job *j = (struct rt_save_job *)jb;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO shapes_service(root,key) VALUES(?,?)",
                                -1, &s, NULL);
    for (uint32_t i = 0; rc == SQLITE_OK && i < j->nsvc; i++) {
        sqlite3_bind_int64(s, 1, j->svc[i].root);
        sqlite3_bind_text(s, 2, j->text + j->svc[i].key, -1, SQLITE_STATIC);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(db);
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    s = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "INSERT OR REPLACE INTO shapes_node(id,parent,child,next,alias,seg,"
                                "flags,kinds,depth,count,ends,ends_slash,first,last) VALUES("
                                "?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                -1, &s, NULL);
    for (uint32_t i = 0; rc == SQLITE_OK && i < j->n; i++) {
        const struct rt_row *w = &j->rows[i];
        sqlite3_bind_int64(s, 1, w->id);
        sqlite3_bind_int64(s, 2, link_out(w->x.parent));
        sqlite3_bind_int64(s, 3, link_out(w->x.child));
        sqlite3_bind_int64(s, 4, link_out(w->x.next));
        sqlite3_bind_int64(s, 5, w->x.alias);
        sqlite3_bind_blob(s, 6, j->text + w->seg, w->x.seg_len, SQLITE_STATIC);
        sqlite3_bind_int(s, 7, w->x.flags | w->x.methods << 8);
        sqlite3_bind_int(s, 8, w->x.kinds);
        sqlite3_bind_int(s, 9, w->x.depth);
        sqlite3_bind_int64(s, 10, w->x.count);
        sqlite3_bind_int64(s, 11, w->x.ends);
        sqlite3_bind_int64(s, 12, w->x.ends_slash);
        sqlite3_bind_int64(s, 13, w->x.first);
        sqlite3_bind_int64(s, 14, w->x.last);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(db);
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    return rc;
}

static void save_done(struct dbw_job *jb, int rc)
{
    struct rt_save_job *j = (struct rt_save_job *)jb;
    struct routes *r = j->r;
    pthread_mutex_lock(&r->smu);
    if (rc == SQLITE_OK) {
        r->st.saves++;
        r->st.saved_nodes += j->n;
    } else {
        r->st.save_errors++; /* the writer named the cause */
        r->save_failed = true;
    }
    pthread_mutex_unlock(&r->smu);
    free(j->rows);
    free(j->svc);
    free(j->text);
    free(j);
}

/* Copies the changed nodes and the new services into a job and queues it. */
static void queue_save(struct routes *r)
{
    if (!r->w) return;
    pthread_mutex_lock(&r->smu);
    bool again = r->save_failed;
    r->save_failed = false;
    pthread_mutex_unlock(&r->smu);
    if (again) { /* the last save did not land: write everything */
        memset(r->dirty, 1, r->nn);
        r->svc_saved = 0;
    }
    uint32_t k = 0;
    size_t text = 0;
    for (uint32_t i = 0; i < r->nn; i++)
        if (r->dirty[i]) {
            k++;
            text += r->n[i].seg_len + 1;
        }
    for (uint32_t i = r->svc_saved; i < r->nsvc; i++)
        text += r->svc[i].key_len + 1;
    if (!k && r->svc_saved == r->nsvc) return;
    struct rt_save_job *j = calloc(1, sizeof *j);
    if (j) {
        j->rows = malloc((size_t)(k ? k : 1) * sizeof *j->rows);
        j->svc = malloc((size_t)(r->nsvc - r->svc_saved + 1) * sizeof *j->svc);
        j->text = malloc(text + 1);
    }
    if (!j || !j->rows || !j->svc || !j->text) {
        if (j) {
            free(j->rows);
            free(j->svc);
            free(j->text);
        }
        free(j);
        pthread_mutex_lock(&r->smu);
        r->st.save_errors++;
        r->save_failed = true;
        pthread_mutex_unlock(&r->smu);
        return;
    }
    j->job.run = save_run;
    j->job.done = save_done;
    j->job.lazy = true;
    j->r = r;
    size_t o = 0;
    for (uint32_t i = r->svc_saved; i < r->nsvc; i++) {
        j->svc[j->nsvc++] = (struct rt_svc_row){r->svc[i].root, (uint32_t)o};
        memcpy(j->text + o, r->arena + r->svc[i].key, r->svc[i].key_len);
        o += r->svc[i].key_len;
        j->text[o++] = 0;
    }
    r->svc_saved = r->nsvc;
    for (uint32_t i = 0; i < r->nn; i++) {
        if (!r->dirty[i]) continue;
        r->dirty[i] = 0;
        struct rt_row *w = &j->rows[j->n++];
        w->id = i;
        w->x = r->n[i];
        w->seg = (uint32_t)o;
        memcpy(j->text + o, r->arena + r->n[i].seg, r->n[i].seg_len);
        o += r->n[i].seg_len;
        j->text[o++] = 0;
    }
    dbw_submit(r->w, &j->job);
}

void routes_advance(struct routes *r, kw_ts now)
{
    if (!r->w || r->save_every < 0) return;
    if (!r->last_save) r->last_save = now;
    if (now - r->last_save < (r->save_every ? r->save_every : (kw_ts)3600 * 1000000)) return;
    r->last_save = now;
    queue_save(r);
}

enum kw_err routes_save(struct routes *r)
{
    if (!r->w) return KW_E_OK;
    queue_save(r);
    dbw_flush(r->w);
    pthread_mutex_lock(&r->smu);
    bool failed = r->save_failed;
    pthread_mutex_unlock(&r->smu);
    return failed ? KW_E_DB : KW_E_OK;
}

void rt_db_close(struct routes *r)
{
    if (r->w) dbw_flush(r->w); /* save jobs point at r */
    if (r->own_w) dbw_destroy(r->w);
    r->w = NULL;
    r->own_w = false;
    if (r->smu_ready) {
        pthread_mutex_destroy(&r->smu);
        r->smu_ready = false;
    }
}

/* ---- imported OpenAPI documents ---- */

enum kw_err routes_db_put_spec(const char *path, const char *service, const char *source,
                               const char *text, size_t len, kw_ts now)
{
    sqlite3 *db = NULL;
    enum kw_err e = store_db_open(path, &db);
    if (e == KW_E_OK) e = store_migrate(db, "shapes", rt_steps, sizeof rt_steps / sizeof *rt_steps);
    sqlite3_stmt *s = NULL;
    if (e == KW_E_OK &&
        (sqlite3_prepare_v2(db,
                            "INSERT OR REPLACE INTO shapes_openapi(service,source,imported,text) "
                            "VALUES(?,?,?,?)",
                            -1, &s, NULL) != SQLITE_OK ||
         sqlite3_bind_text(s, 1, service, -1, SQLITE_STATIC) != SQLITE_OK ||
         sqlite3_bind_text(s, 2, source, -1, SQLITE_STATIC) != SQLITE_OK ||
         sqlite3_bind_int64(s, 3, now) != SQLITE_OK ||
         sqlite3_bind_blob(s, 4, text, (int)len, SQLITE_STATIC) != SQLITE_OK ||
         sqlite3_step(s) != SQLITE_DONE)) {
        char cause[256];
        kw_err_log("shapes: cannot store the document: %s",
                   store_cause(db, sqlite3_extended_errcode(db), cause, sizeof cause));
        e = KW_E_DB;
    }
    sqlite3_finalize(s);
    store_db_close(db);
    return e;
}

enum kw_err routes_db_each_spec(const char *path,
                                bool (*fn)(void *user, const char *service, const char *source,
                                           const char *text, size_t len),
                                void *user)
{
    sqlite3 *db = NULL;
    enum kw_err e = store_db_open_ro(path, &db);
    if (e == KW_E_NOTFOUND) return KW_E_OK; /* no database yet: nothing imported */
    if (e != KW_E_OK) return e;
    sqlite3_stmt *s = NULL;
    if (store_has_table(db, "shapes_openapi") &&
        sqlite3_prepare_v2(db, "SELECT service, source, text FROM shapes_openapi ORDER BY service",
                           -1, &s, NULL) == SQLITE_OK) {
        while (sqlite3_step(s) == SQLITE_ROW)
            if (!fn(user, (const char *)sqlite3_column_text(s, 0),
                    (const char *)sqlite3_column_text(s, 1),
                    (const char *)sqlite3_column_blob(s, 2), (size_t)sqlite3_column_bytes(s, 2)))
                break;
    }
    sqlite3_finalize(s);
    store_db_close(db);
    return KW_E_OK;
}
