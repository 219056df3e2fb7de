/* Tests of the audit trail (store/audit.c): rows go in through
 * audit_record() and the writer thread, come back through the query API;
 * retention, a full ring's drops and the absence of query-string secrets
 * are checked on a real SQLite file. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit.h"
#include "dbw.h"
#include "store.h"

#define T0 KW_TS_SEC(1774000000) /* 2026-03-20T09:46:40Z */

static char dir[512];

static void db_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s.db", dir, name);
    unlink(buf);
    char w[600];
    snprintf(w, sizeof w, "%s-wal", buf);
    unlink(w);
    snprintf(w, sizeof w, "%s-shm", buf);
    unlink(w);
}

static struct kw_txn *mk(const char *ident, const char *fp, kw_ts ts, const char *method,
                         const char *path, int status)
{
    struct kw_txn *t = calloc(1, sizeof *t);
    snprintf(t->identity.id, sizeof t->identity.id, "%s", ident);
    snprintf(t->cred.fingerprint, sizeof t->cred.fingerprint, "%s", fp);
    snprintf(t->cred.hint, sizeof t->cred.hint, "%s", fp[0] ? "sk_l..9f2c" : "");
    t->cred.kind = fp[0] ? KW_CRED_BEARER : KW_CRED_NONE;
    t->ts = ts;
    assert_true(kw_addr_parse("198.51.100.7", &t->src));
    assert_true(kw_addr_parse("10.0.0.1", &t->dst));
    t->sport = 40000;
    t->dport = 443;
    snprintf(t->method, sizeof t->method, "%s", method);
    snprintf(t->hostname, sizeof t->hostname, "api.acme.internal");
    snprintf(t->path, sizeof t->path, "%s", path);
    snprintf(t->url, sizeof t->url, "%s", path);
    snprintf(t->template_, sizeof t->template_, "/v1/orders/{id}");
    t->status = status;
    t->resp_len = 1234;
    t->req_len = 10;
    t->flow_id = 77;
    return t;
}

struct collect {
    unsigned n;
    kw_ts ts[64];
    char ident[64][64];
    int status[64];
    char path[64][128];
};

static void collect_row(void *user, const struct kw_txn *t)
{
    struct collect *c = user;
    if (c->n < 64) {
        c->ts[c->n] = t->ts;
        snprintf(c->ident[c->n], 64, "%.63s", t->identity.id);
        c->status[c->n] = t->status;
        snprintf(c->path[c->n], 128, "%.127s", t->path);
    }
    c->n++;
}

static struct collect run_q(sqlite3 *db, struct audit_query q)
{
    struct collect c = {0};
    assert_int_equal(audit_query_run(db, &q, collect_row, &c), KW_E_OK);
    return c;
}

/* The first column of the first row of sql, as a number. */
static long long count_sql(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    long long n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

static void record(struct audit *a, struct kw_txn *t)
{
    audit_record(a, t);
    free(t);
}

/* c01: 10 requests a minute apart, 200/404 alternating; c02: 5; an
 * unattributed key: 5; one anonymous request that is not audited. */
static void fill(struct audit *a)
{
    char p[64];
    for (int i = 0; i < 10; i++) {
        snprintf(p, sizeof p, "/v1/orders/%d", i);
        record(a, mk("c01", "sha256:aaaa", T0 + KW_TS_SEC(60 * i), i % 2 ? "POST" : "GET", p,
                     i % 2 ? 404 : 200));
    }
    for (int i = 0; i < 5; i++)
        record(a, mk("c02", "sha256:bbbb", T0 + KW_TS_SEC(30 + 60 * i), "GET", "/v2/items", 500));
    for (int i = 0; i < 5; i++)
        record(a, mk("", "sha256:cccc", T0 + KW_TS_SEC(45 + 60 * i), "DELETE", "/v1/x", 0));
    record(a, mk("", "", T0, "GET", "/", 200));
}

static void test_record_and_query(void **state)
{
    char path[600];
    db_path(path, sizeof path, "query");
    struct audit *a = NULL;
    struct audit_config cfg = {.db_path = path, .batch_max = 3};
    assert_int_equal(audit_new(&cfg, &a), KW_E_OK);
    fill(a);
    audit_flush(a);
    struct audit_stats st;
    audit_get_stats(a, &st);
    assert_int_equal(st.queued, 20);
    assert_int_equal(st.written, 20);
    assert_int_equal(st.skipped, 1);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.errors, 0);
    assert_true(st.batches >= 7); /* batch_max 3: at least ceil(20/3) */
    audit_destroy(a);

    sqlite3 *db = NULL;
    assert_int_equal(store_db_open(path, &db), KW_E_OK);
    struct collect c = run_q(db, (struct audit_query){.identity = "c01"});
    assert_int_equal(c.n, 10);
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(c.ts[i], T0 + KW_TS_SEC(60 * i)); /* time order */

    c = run_q(db, (struct audit_query){.fingerprint = "sha256:cccc"});
    assert_int_equal(c.n, 5);
    assert_string_equal(c.ident[0], "");

    c = run_q(db, (struct audit_query){.identity = ""}); /* unattributed */
    assert_int_equal(c.n, 5);

    /* [T0+2m, T0+5m): c01 at 2,3,4 min; c02 at 2.5,3.5,4.5; cccc 2.75.. */
    c = run_q(db, (struct audit_query){.since = T0 + KW_TS_SEC(120), .until = T0 + KW_TS_SEC(300)});
    assert_int_equal(c.n, 9);
    c = run_q(db, (struct audit_query){.identity = "c01",
                                       .since = T0 + KW_TS_SEC(120),
                                       .until = T0 + KW_TS_SEC(300)});
    assert_int_equal(c.n, 3);
    assert_int_equal(c.ts[0], T0 + KW_TS_SEC(120));

    c = run_q(db, (struct audit_query){.path_glob = "/v1/orders/*"});
    assert_int_equal(c.n, 10);
    c = run_q(db, (struct audit_query){.path_glob = "/v1/orders/[13]"});
    assert_int_equal(c.n, 2);

    c = run_q(db, (struct audit_query){.identity = "c01", .status_class = 4});
    assert_int_equal(c.n, 5);
    for (unsigned i = 0; i < c.n; i++)
        assert_int_equal(c.status[i], 404);
    c = run_q(db, (struct audit_query){.status_class = 5});
    assert_int_equal(c.n, 5);
    c = run_q(db, (struct audit_query){.status_class = -1});
    assert_int_equal(c.n, 5);
    struct audit_query bad = {.status_class = 6};
    assert_int_equal(audit_query_run(db, &bad, collect_row, &c), KW_E_INVAL);

    /* limit: the newest 3, shown oldest first */
    c = run_q(db, (struct audit_query){.identity = "c01", .limit = 3});
    assert_int_equal(c.n, 3);
    assert_int_equal(c.ts[0], T0 + KW_TS_SEC(420));
    assert_int_equal(c.ts[2], T0 + KW_TS_SEC(540));

    kw_ts newest = 0;
    assert_int_equal(audit_newest(db, &newest), KW_E_OK);
    assert_int_equal(newest, T0 + KW_TS_SEC(540));
    store_db_close(db);
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t n = strlen(needle), cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    bool found = false;
    size_t r;
    while ((r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    for (size_t i = 0; i + n <= len && !found; i++)
        found = memcmp(buf + i, needle, n) == 0;
    free(buf);
    fclose(f);
    return found;
}

static void test_no_query_secret(void **state)
{
    char path[600], wal[640];
    db_path(path, sizeof path, "secret");
    snprintf(wal, sizeof wal, "%s-wal", path);
    struct audit *a = NULL;
    struct audit_config cfg = {.db_path = path};
    assert_int_equal(audit_new(&cfg, &a), KW_E_OK);
    struct kw_txn *t = mk("c01", "sha256:aaaa", T0, "GET", "/v1/export", 200);
    snprintf(t->url, sizeof t->url, "/v1/export?api_key=SUPERSECRET123&x=1");
    audit_record(a, t);
    /* a caller that wrongly hands over the raw target as the path */
    snprintf(t->path, sizeof t->path, "/v1/export2?api_key=SUPERSECRET456");
    audit_record(a, t);
    free(t);
    audit_flush(a);
    /* before the checkpoint the rows are in the WAL: check both files */
    assert_false(file_contains(path, "SUPERSECRET"));
    assert_false(file_contains(wal, "SUPERSECRET"));
    assert_true(file_contains(wal, "/v1/export2") || file_contains(path, "/v1/export2"));
    audit_destroy(a);
    assert_false(file_contains(path, "SUPERSECRET"));

    sqlite3 *db = NULL;
    assert_int_equal(store_db_open(path, &db), KW_E_OK);
    struct collect c = run_q(db, (struct audit_query){.identity = "c01"});
    assert_int_equal(c.n, 2);
    assert_string_equal(c.path[0], "/v1/export");
    assert_string_equal(c.path[1], "/v1/export2");
    store_db_close(db);
}

/* Five rows at T0 (of c01, or each of its own identity old0..old4), then,
 * 1.5 days later in packet time, three of c01: the five are past a day's
 * retention. */
static void old_then_new(struct audit *a, bool own_ids)
{
    char id[16];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "old%d", i);
        record(a, own_ids ? mk(id, id, T0 + KW_TS_SEC(i), "GET", "/old", 200)
                          : mk("c01", "sha256:aaaa", T0 + KW_TS_SEC(i), "GET", "/old", 200));
    }
    audit_flush(a);
    for (int i = 0; i < 3; i++)
        record(a, mk("c01", "sha256:aaaa", T0 + KW_TS_SEC(129600 + i), "GET", "/new", 200));
    audit_flush(a);
}

static void test_retention(void **state)
{
    char path[600];
    db_path(path, sizeof path, "retention");
    struct audit *a = NULL;
    struct audit_config cfg = {.db_path = path,
                               .retention = KW_TS_SEC(86400),
                               .retention_every = KW_TS_SEC(1),
                               .batch_max = 100};
    assert_int_equal(audit_new(&cfg, &a), KW_E_OK);
    old_then_new(a, false);
    struct audit_stats st;
    audit_get_stats(a, &st);
    assert_int_equal(st.expired, 5);
    audit_destroy(a);

    sqlite3 *db = NULL;
    assert_int_equal(store_db_open(path, &db), KW_E_OK);
    struct collect c = run_q(db, (struct audit_query){0});
    assert_int_equal(c.n, 3);
    assert_string_equal(c.path[0], "/new");
    store_db_close(db);
}

/* The texts of rows retention deleted are deleted too (at most every
 * text_gc_every), and a text cached before that and seen again is stored
 * anew, not written as the id that went away. */
static long one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    long v = (long)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static void test_text_gc(void **state)
{
    (void)state;
    char path[600];
    db_path(path, sizeof path, "text-gc");
    struct audit *a = NULL;
    struct audit_config cfg = {.db_path = path,
                               .retention = KW_TS_SEC(86400),
                               .retention_every = KW_TS_SEC(1),
                               .text_gc_every = KW_TS_SEC(1),
                               .batch_max = 100};
    assert_int_equal(audit_new(&cfg, &a), KW_E_OK);
    old_then_new(a, true); /* old0..old4 */
    struct audit_stats st;
    audit_get_stats(a, &st);
    assert_int_equal(st.expired, 5);
    assert_int_equal(st.texts_collected, 5); /* old0..old4: identity = fingerprint */
    sqlite3 *db = NULL;
    assert_int_equal(store_db_open(path, &db), KW_E_OK);
    assert_int_equal(one_int(db, "SELECT count(*) FROM audit_text WHERE s GLOB 'old*'"), 0);
    assert_int_equal(one_int(db, "SELECT count(*) FROM audit_text WHERE s='c01'"), 1);
    /* old0 comes back: the writer's cache still knew its old id */
    record(a, mk("old0", "old0", T0 + KW_TS_SEC(129700), "GET", "/back", 200));
    audit_flush(a);
    audit_destroy(a);
    assert_int_equal(one_int(db, "SELECT count(*) FROM audit WHERE path='/back' AND "
                                 "identity='old0' AND fingerprint='old0'"),
                     1);
    assert_int_equal(one_int(db, "SELECT count(*) FROM audit WHERE identity IS NULL"), 0);
    store_db_close(db);
}

/* A capture dated a year ahead must not delete the real trail: retention
 * counts from the newest row, but never from later than the wall clock. */
static void test_retention_future(void **state)
{
    char path[600];
    db_path(path, sizeof path, "retention-future");
    struct audit *a = NULL;
    struct audit_config cfg = {.db_path = path,
                               .retention = KW_TS_SEC(86400),
                               .retention_every = KW_TS_SEC(1),
                               .batch_max = 100};
    assert_int_equal(audit_new(&cfg, &a), KW_E_OK);
    kw_ts now = kw_ts_wall();
    for (int i = 0; i < 5; i++)
        record(a, mk("c01", "sha256:aaaa", now - KW_TS_SEC(3600 + i), "GET", "/real", 200));
    audit_flush(a);
    for (int i = 0; i < 3; i++)
        record(a,
               mk("c01", "sha256:aaaa", now + KW_TS_SEC(365 * 86400 + i), "GET", "/future", 200));
    audit_flush(a);
    /* and rows older than a day by the wall clock do go */
    for (int i = 0; i < 2; i++)
        record(a, mk("c01", "sha256:aaaa", now - KW_TS_SEC(3 * 86400 + i), "GET", "/old", 200));
    audit_flush(a);
    record(a, mk("c01", "sha256:aaaa", now + KW_TS_SEC(365 * 86400 + 10), "GET", "/f", 200));
    audit_flush(a);
    struct audit_stats st;
    audit_get_stats(a, &st);
    audit_destroy(a);
    assert_int_equal(st.expired, 2);
    sqlite3 *db = NULL;
    assert_int_equal(store_db_open(path, &db), KW_E_OK);
    struct collect c = run_q(db, (struct audit_query){.path_glob = "/real"});
    assert_int_equal(c.n, 5);
    store_db_close(db);
}

/* Replaying the same transactions adds nothing (natural key); two
 * identical transactions in a row (pipelined) are two rows. */
static void test_replay_idempotent(void **state)
{
    char path[600];
    db_path(path, sizeof path, "replay");
    for (int run = 0; run < 2; run++) {
        struct audit *a = NULL;
        struct audit_config cfg = {.db_path = path};
        assert_int_equal(audit_new(&cfg, &a), KW_E_OK);
        for (int i = 0; i < 10; i++)
            record(a, mk("c01", "sha256:aaaa", T0 + KW_TS_SEC(i), "GET", "/x", 200));
        record(a, mk("c01", "sha256:aaaa", T0 + KW_TS_SEC(20), "GET", "/pipelined", 200));
        record(a, mk("c01", "sha256:aaaa", T0 + KW_TS_SEC(20), "GET", "/pipelined", 200));
        audit_flush(a);
        struct audit_stats st;
        audit_get_stats(a, &st);
        audit_destroy(a);
        assert_int_equal(st.written, run == 0 ? 12 : 0);
        assert_int_equal(st.duplicates, run == 0 ? 0 : 12);
    }
    sqlite3 *db = NULL;
    assert_int_equal(store_db_open(path, &db), KW_E_OK);
    struct collect c = run_q(db, (struct audit_query){0});
    assert_int_equal(c.n, 12);
    store_db_close(db);
}

/* The audit table as keywarden left it at schema v2 and v3 (v1's table
 * with the natural key; v3 moved the key's index behind ts). Copied from
 * store/audit.c as it was, since a test of an upgrade needs the old
 * layout itself, not the current code's idea of it. */
static const char old_v1[] =
    "CREATE TABLE audit(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, identity TEXT NOT NULL,"
    " fingerprint TEXT NOT NULL, cred_kind INTEGER NOT NULL, cred_hint TEXT NOT NULL,"
    " src_ip TEXT NOT NULL, src_port INTEGER NOT NULL, dst_ip TEXT NOT NULL,"
    " dst_port INTEGER NOT NULL, method TEXT NOT NULL, host TEXT NOT NULL, path TEXT NOT NULL,"
    " template TEXT NOT NULL, status INTEGER NOT NULL, req_len INTEGER NOT NULL,"
    " resp_len INTEGER NOT NULL, flow_id INTEGER NOT NULL, flags INTEGER NOT NULL);"
    "CREATE INDEX audit_identity_ts ON audit(identity, ts);"
    "CREATE INDEX audit_fingerprint_ts ON audit(fingerprint, ts);"
    "CREATE INDEX audit_ts ON audit(ts);"
    "ALTER TABLE audit ADD COLUMN natkey BLOB;"
    "CREATE UNIQUE INDEX audit_natkey ON audit(natkey);";
static const char old_v3[] = "DROP INDEX audit_natkey; DROP INDEX audit_ts;"
                             "CREATE UNIQUE INDEX audit_ts_natkey ON audit(ts, natkey);";

/* Every column of every row, natural key included, as one text. */
static char *dump(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(store_db_open(path, &db), KW_E_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT group_concat(r, char(10)) FROM (SELECT "
                                        "quote(id)||','||quote(ts)||','||quote(identity)||','||"
                                        "quote(fingerprint)||','||quote(cred_kind)||','||"
                                        "quote(cred_hint)||','||quote(src_ip)||','||"
                                        "quote(src_port)||','||quote(dst_ip)||','||"
                                        "quote(dst_port)||','||quote(method)||','||quote(host)"
                                        "||','||quote(path)||','||quote(template)||','||"
                                        "quote(status)||','||quote(req_len)||','||"
                                        "quote(resp_len)||','||quote(flow_id)||','||"
                                        "quote(flags)||','||quote(natkey) AS r FROM audit "
                                        "ORDER BY id)",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    char *out = strdup((const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    store_db_close(db);
    return out;
}

static void replay(const char *path, uint64_t written, uint64_t dups)
{
    struct audit *a = NULL;
    struct audit_config cfg = {.db_path = path};
    assert_int_equal(audit_new(&cfg, &a), KW_E_OK);
    for (int i = 0; i < 10; i++)
        record(a, mk(i % 3 ? "c01" : "", i % 2 ? "sha256:aaaa" : "sha256:bbbb", T0 + KW_TS_SEC(i),
                     i % 4 ? "GET" : "POST", "/x", 200));
    record(a, mk("c01", "sha256:aaaa", T0 + KW_TS_SEC(20), "GET", "/pipelined", 200));
    record(a, mk("c01", "sha256:aaaa", T0 + KW_TS_SEC(20), "GET", "/pipelined", 200));
    audit_flush(a);
    struct audit_stats st;
    audit_get_stats(a, &st);
    audit_destroy(a);
    assert_int_equal(st.written, written);
    assert_int_equal(st.duplicates, dups);
}

/* A database an older keywarden wrote (schema v2: natkey indexed alone;
 * v3: behind ts; both with the texts in every row) is converted to v4
 * (texts interned, a view named audit): every row reads back as it was,
 * column for column, id and natural key included, and replaying the same
 * capture adds nothing, since the keys themselves did not change. */
static void test_replay_across_versions(void **state)
{
    (void)state;
    char fresh[600];
    db_path(fresh, sizeof fresh, "replay-v4");
    replay(fresh, 12, 0);
    replay(fresh, 0, 12);
    char *want = dump(fresh);
    for (int v = 2; v <= 3; v++) {
        char path[600];
        db_path(path, sizeof path, v == 2 ? "replay-v2" : "replay-v3");
        sqlite3 *db = NULL;
        assert_int_equal(store_db_open(path, &db), KW_E_OK);
        char sql[1400];
        snprintf(sql, sizeof sql,
                 "%s%s CREATE TABLE schema_versions(module TEXT PRIMARY KEY, version INTEGER "
                 "NOT NULL); INSERT INTO schema_versions VALUES('audit', %d);"
                 "ATTACH '%s' AS v4; INSERT INTO audit SELECT * FROM v4.audit; DETACH v4;",
                 old_v1, v == 3 ? old_v3 : "", v, fresh);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        store_db_close(db);
        replay(path, 0, 12);
        char *got = dump(path);
        assert_string_equal(got, want);
        free(got);

        assert_int_equal(store_db_open(path, &db), KW_E_OK);
        struct collect c = run_q(db, (struct audit_query){.identity = "c01"});
        assert_int_equal(c.n, 8);
        sqlite3_stmt *s = NULL;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT group_concat(name) FROM (SELECT name FROM "
                                            "sqlite_master WHERE tbl_name IN ('audit',"
                                            "'audit_row') ORDER BY name)",
                                            -1, &s, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(s, 0),
                            "audit,audit_row,audit_ts_natkey,audit_who_ts");
        sqlite3_finalize(s);
        /* v6: every converted row has its who, every attributed
         * credential its pair, and a credential's rows are all found */
        assert_int_equal(count_sql(db, "SELECT count(*) FROM audit_row r WHERE who IS NOT "
                                       "(CASE WHEN (SELECT s FROM audit_text WHERE id=r.identity)"
                                       "='' THEN fingerprint ELSE identity END)"),
                         0);
        assert_int_equal(count_sql(db, "SELECT count(*) FROM audit_cred"), 2);
        assert_int_equal(run_q(db, (struct audit_query){.fingerprint = "sha256:aaaa"}).n, 7);
        assert_int_equal(run_q(db, (struct audit_query){.fingerprint = "sha256:bbbb"}).n, 5);
        assert_int_equal(run_q(db, (struct audit_query){.identity = ""}).n, 4);
        store_db_close(db);
    }
    free(want);
}

/* Queries by identity and by credential find exactly the rows a plain
 * scan of the view finds (the definition), whatever the attribution did:
 * a credential used unattributed, then claimed by c01, then by c02 (a
 * rules change), a credential only ever unattributed, one identity with
 * two credentials; with and without time bounds, and for unattributed
 * rows (--identity ''). The index on who is an access path, never a
 * filter. */
static void test_who_queries(void **state)
{
    (void)state;
    char path[600];
    db_path(path, sizeof path, "who");
    struct audit *a = NULL;
    struct audit_config cfg = {.db_path = path};
    assert_int_equal(audit_new(&cfg, &a), KW_E_OK);
    static const char *const ids[] = {"", "c01", "c02"};
    static const char *const fps[] = {"sha256:aaaa", "sha256:bbbb", "sha256:cccc"};
    unsigned seed = 5;
    for (int i = 0; i < 300; i++) {
        int f = rand_r(&seed) % 3, who = rand_r(&seed) % 3;
        if (f == 2) who = 0;               /* cccc: never claimed */
        if (f == 0 && i < 100) who = 0;    /* aaaa: unattributed first, */
        if (f == 0 && i >= 100) who = 1 + (i >= 200); /* then c01, then c02 */
        if (f == 1) who = 1;               /* bbbb: c01's second key */
        record(a, mk(ids[who], fps[f], T0 + KW_TS_SEC(i), "GET", "/v1/a", 200));
    }
    audit_flush(a);
    audit_destroy(a);
    sqlite3 *db = NULL;
    assert_int_equal(store_db_open(path, &db), KW_E_OK);
    const kw_ts bounds[][2] = {{0, 0}, {T0 + KW_TS_SEC(50), 0}, {0, T0 + KW_TS_SEC(250)},
                               {T0 + KW_TS_SEC(150), T0 + KW_TS_SEC(210)}};
    for (size_t b = 0; b < sizeof bounds / sizeof *bounds; b++) {
        char range[160];
        snprintf(range, sizeof range, " AND ts >= %lld AND ts < %lld",
                 (long long)(bounds[b][0] ? bounds[b][0] : INT64_MIN),
                 (long long)(bounds[b][1] ? bounds[b][1] : INT64_MAX));
        for (size_t k = 0; k < 3; k++) {
            char sql[400];
            snprintf(sql, sizeof sql, "SELECT count(*) FROM audit WHERE identity='%s'%s", ids[k],
                     range);
            struct audit_query q = {.identity = ids[k], .since = bounds[b][0],
                                    .until = bounds[b][1]};
            assert_int_equal(run_q(db, q).n, (unsigned)count_sql(db, sql));
            snprintf(sql, sizeof sql, "SELECT count(*) FROM audit WHERE fingerprint='%s'%s",
                     fps[k], range);
            q = (struct audit_query){.fingerprint = fps[k], .since = bounds[b][0],
                                     .until = bounds[b][1]};
            assert_int_equal(run_q(db, q).n, (unsigned)count_sql(db, sql));
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM audit WHERE identity='c01' AND fingerprint='%s'%s",
                     fps[k], range);
            q = (struct audit_query){.identity = "c01", .fingerprint = fps[k],
                                     .since = bounds[b][0], .until = bounds[b][1]};
            assert_int_equal(run_q(db, q).n, (unsigned)count_sql(db, sql));
        }
    }
    /* the pairs: aaaa with c01 and c02, bbbb with c01; cccc with nobody */
    assert_int_equal(count_sql(db, "SELECT count(*) FROM audit_cred"), 3);
    /* and the plan goes through the index on who */
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "EXPLAIN QUERY PLAN SELECT id FROM audit_row WHERE who IN "
                                        "(SELECT id FROM audit_text WHERE s='c01') AND ts>=0",
                                        -1, &s, NULL),
                     SQLITE_OK);
    bool uses = false;
    while (sqlite3_step(s) == SQLITE_ROW)
        uses |= strstr((const char *)sqlite3_column_text(s, 3), "audit_who_ts") != NULL;
    sqlite3_finalize(s);
    assert_true(uses);
    store_db_close(db);
}

/* The writer's ids of texts across a rolled-back transaction: the audit
 * job shares a transaction with a job that fails, so the writer rolls it
 * back and runs each job alone. The texts the audit job added in the
 * first attempt are gone; if it trusted the ids it had learned, its rows
 * would name texts that do not exist (NULL through the view). A job that
 * holds the writer thread until released makes the pairing certain. */
struct gate {
    struct dbw_job job;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool entered, open;
};

static int gate_run(struct dbw_job *j, sqlite3 *db)
{
    (void)db;
    struct gate *g = (struct gate *)j;
    pthread_mutex_lock(&g->mu);
    g->entered = true;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return SQLITE_OK;
}

static int fail_run(struct dbw_job *j, sqlite3 *db)
{
    (void)j;
    (void)db;
    return SQLITE_CONSTRAINT;
}

static void nothing_done(struct dbw_job *j, int rc)
{
    (void)j;
    (void)rc;
}

static void test_text_ids_rollback(void **state)
{
    (void)state;
    char path[600];
    db_path(path, sizeof path, "text-rollback");
    struct dbw *w = NULL;
    struct dbw_config wc = {.path = path};
    assert_int_equal(dbw_new(&wc, &w), KW_E_OK);
    struct audit *a = NULL;
    struct audit_config cfg = {.db_path = path, .writer = w};
    assert_int_equal(audit_new(&cfg, &a), KW_E_OK);
    struct gate g = {.job = {.run = gate_run, .done = nothing_done}};
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    /* lazy like the audit job, so the two gather into one chain (an eager
     * job runs at once without the lazy ones still gathering) */
    struct dbw_job fail = {.run = fail_run, .done = nothing_done, .lazy = true};
    char id[16];
    for (int round = 0; round < 3; round++) {
        g.entered = g.open = false;
        dbw_submit(w, &g.job);
        pthread_mutex_lock(&g.mu);
        while (!g.entered)
            pthread_cond_wait(&g.cv, &g.mu);
        pthread_mutex_unlock(&g.mu);
        /* the writer is inside the gate: the next two jobs form one chain */
        for (int i = 0; i < 4; i++) {
            snprintf(id, sizeof id, "c%02d", round * 4 + i);
            record(a, mk(id, id, T0 + KW_TS_SEC(round * 10 + i), "GET", "/r", 200));
        }
        dbw_submit(w, &fail);
        pthread_mutex_lock(&g.mu);
        g.open = true;
        pthread_cond_broadcast(&g.cv);
        pthread_mutex_unlock(&g.mu);
        audit_flush(a);
    }
    struct audit_stats st;
    audit_get_stats(a, &st);
    assert_int_equal(st.written, 12);
    audit_destroy(a);
    dbw_destroy(w);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);

    sqlite3 *db = NULL;
    assert_int_equal(store_db_open(path, &db), KW_E_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*), sum(identity = fingerprint AND "
                                        "identity GLOB 'c[0-9][0-9]' AND method = 'GET' AND "
                                        "src_ip = '198.51.100.7') FROM audit",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 12);
    assert_int_equal(sqlite3_column_int(s, 1), 12);
    sqlite3_finalize(s);
    store_db_close(db);
}

/* Eager jobs (alerts) run at once without the lazy jobs still gathering
 * (audit batches), which wait for their own gathering time, a kick or a
 * flush, and keep their order among themselves; nothing is lost. The
 * gathering time is a minute here, so what runs first does not depend on
 * the machine's speed; the flush at the end runs the rest at once. */
struct order_job {
    struct dbw_job job;
    int name;
    int *log, *n;
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
};

static int order_run(struct dbw_job *j, sqlite3 *db)
{
    (void)j;
    (void)db;
    return SQLITE_OK;
}

static void order_done(struct dbw_job *j, int rc)
{
    struct order_job *o = (struct order_job *)j;
    assert_int_equal(rc, SQLITE_OK);
    pthread_mutex_lock(o->mu);
    o->log[(*o->n)++] = o->name;
    pthread_cond_broadcast(o->cv);
    pthread_mutex_unlock(o->mu);
}

static void test_eager_skips_gathering(void **state)
{
    (void)state;
    char path[600];
    db_path(path, sizeof path, "eager");
    struct dbw *w = NULL;
    struct dbw_config wc = {.path = path, .gather = KW_TS_SEC(60)};
    assert_int_equal(dbw_new(&wc, &w), KW_E_OK);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    int log[8], n = 0;
    struct order_job jobs[5];
    /* lazy 1, lazy 2, eager 3, lazy 4, eager 5 */
    static const bool lazy[5] = {true, true, false, true, false};
    for (int i = 0; i < 5; i++)
        jobs[i] = (struct order_job){.job = {.run = order_run, .done = order_done, .lazy = lazy[i]},
                                     .name = i + 1, .log = log, .n = &n, .mu = &mu, .cv = &cv};
    for (int i = 0; i < 3; i++)
        dbw_submit(w, &jobs[i].job);
    pthread_mutex_lock(&mu);
    while (n < 1)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    dbw_submit(w, &jobs[3].job);
    dbw_submit(w, &jobs[4].job);
    pthread_mutex_lock(&mu);
    while (n < 2)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    assert_int_equal(log[0], 3);
    assert_int_equal(log[1], 5);
    pthread_mutex_lock(&mu);
    assert_int_equal(n, 2); /* the lazy ones still gather */
    pthread_mutex_unlock(&mu);
    dbw_flush(w);
    assert_int_equal(n, 5);
    assert_int_equal(log[2], 1);
    assert_int_equal(log[3], 2);
    assert_int_equal(log[4], 4);
    /* a kick ends the gathering too */
    n = 0;
    jobs[0].job.next = NULL;
    dbw_submit(w, &jobs[0].job);
    dbw_kick(w);
    pthread_mutex_lock(&mu);
    while (n < 1)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    assert_int_equal(log[0], 1);
    dbw_destroy(w);
}

/* Eager jobs wait for each other for a moment (DBW_EAGER_GATHER_US; 300 ms
 * here so that the machine's speed does not matter): an alert storm
 * commits several alerts per transaction, not one each. The first job is
 * not done 50 ms after it came; the 19 that follow join its transaction.
 * DBW_EAGER_MAX queued end the wait at once (a minute here). */
static void test_eager_gather(void **state)
{
    (void)state;
    char path[600];
    db_path(path, sizeof path, "eagergather");
    struct dbw *w = NULL;
    struct dbw_config wc = {.path = path, .eager_gather = 300000};
    assert_int_equal(dbw_new(&wc, &w), KW_E_OK);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    static int log[DBW_EAGER_MAX];
    int n = 0;
    static struct order_job jobs[DBW_EAGER_MAX];
    for (int i = 0; i < DBW_EAGER_MAX; i++)
        jobs[i] = (struct order_job){.job = {.run = order_run, .done = order_done},
                                     .name = i + 1, .log = log, .n = &n, .mu = &mu, .cv = &cv};
    dbw_submit(w, &jobs[0].job);
    usleep(50000);
    pthread_mutex_lock(&mu);
    assert_int_equal(n, 0); /* still waiting for company */
    pthread_mutex_unlock(&mu);
    for (int i = 1; i < 20; i++)
        dbw_submit(w, &jobs[i].job);
    pthread_mutex_lock(&mu);
    while (n < 20)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    struct dbw_stats st;
    dbw_get_stats(w, &st);
    assert_int_equal(st.transactions, 1);
    for (int i = 0; i < 20; i++)
        assert_int_equal(log[i], i + 1);
    dbw_destroy(w);

    wc.eager_gather = KW_TS_SEC(60);
    assert_int_equal(dbw_new(&wc, &w), KW_E_OK);
    n = 0;
    for (int i = 0; i < DBW_EAGER_MAX; i++) {
        jobs[i].job.next = NULL;
        dbw_submit(w, &jobs[i].job);
    }
    pthread_mutex_lock(&mu);
    while (n < DBW_EAGER_MAX) /* without the limit: a minute */
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    dbw_get_stats(w, &st);
    assert_true(st.transactions <= 2); /* the writer may have taken the first alone */
    dbw_destroy(w);
}

/* Another connection holds the write lock, so the writer is stuck on its
 * first batch and the 4-slot ring fills: the rest is dropped and counted,
 * and audit_record() returns at once instead of waiting. */
static void test_full_queue_drops(void **state)
{
    char path[600];
    db_path(path, sizeof path, "drops");
    struct audit *a = NULL;
    struct audit_config cfg = {.db_path = path, .queue_max = 4, .batch_max = 4};
    assert_int_equal(audit_new(&cfg, &a), KW_E_OK);
    sqlite3 *lock = NULL;
    assert_int_equal(store_db_open(path, &lock), KW_E_OK);
    assert_int_equal(sqlite3_exec(lock, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < 50; i++)
        record(a, mk("c01", "sha256:aaaa", T0 + KW_TS_SEC(i), "GET", "/x", 200));
    struct audit_stats st;
    audit_get_stats(a, &st);
    assert_int_equal(st.queued, 4);
    assert_int_equal(st.dropped, 46);
    assert_int_equal(sqlite3_exec(lock, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    store_db_close(lock);
    audit_flush(a);
    audit_get_stats(a, &st);
    assert_int_equal(st.written + st.errors, 4);
    assert_int_equal(st.written, 4);
    audit_destroy(a);
}

/* The ring holds rows of any size back to back and wraps around: with 4
 * rows of room (~5 KB), 600 rows of every size, some with every text at
 * its largest, all arrive whole and in order (the writer takes batches of
 * 3 while the producer waits for room, as an offline replay does). */
static void fill_text(char *dst, size_t cap, size_t n, int seed)
{
    n = n < cap ? n : cap - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)('a' + (seed + (int)i) % 26);
    dst[n] = 0;
}

static void test_ring_wraps(void **state)
{
    (void)state;
    char path[600];
    db_path(path, sizeof path, "wraps");
    struct audit *a = NULL;
    struct audit_config cfg = {
        .db_path = path, .queue_max = 4, .batch_max = 3, .block_when_full = true};
    assert_int_equal(audit_new(&cfg, &a), KW_E_OK);
    enum { N = 600 };
    for (int i = 0; i < N; i++) {
        struct kw_txn *t = mk("c01", "sha256:aaaa", T0 + i, "GET", "/", 200);
        bool big = i % 50 == 7;
        size_t pl = big ? SIZE_MAX : (size_t)(i * 37) % 1500;
        t->path[0] = '/';
        fill_text(t->path + 1, sizeof t->path - 1, pl, i);
        if (big) {
            fill_text(t->identity.id, sizeof t->identity.id, SIZE_MAX, i);
            fill_text(t->cred.fingerprint, sizeof t->cred.fingerprint, SIZE_MAX, i);
            fill_text(t->cred.hint, sizeof t->cred.hint, SIZE_MAX, i);
            fill_text(t->method, sizeof t->method, SIZE_MAX, i);
            fill_text(t->hostname, sizeof t->hostname, SIZE_MAX, i);
            fill_text(t->template_, sizeof t->template_, SIZE_MAX, i);
        } else {
            fill_text(t->template_, sizeof t->template_, (size_t)i % 300, i + 1);
        }
        record(a, t);
    }
    audit_flush(a);
    struct audit_stats st;
    audit_get_stats(a, &st);
    assert_int_equal(st.written, N);
    assert_int_equal(st.dropped, 0);
    audit_destroy(a);

    sqlite3 *db = NULL;
    assert_int_equal(store_db_open(path, &db), KW_E_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT ts, identity, fingerprint, cred_hint, method, host,"
                                        " path, template FROM audit ORDER BY id",
                                        -1, &q, NULL),
                     SQLITE_OK);
    int i = 0;
    for (; sqlite3_step(q) == SQLITE_ROW; i++) {
        struct kw_txn *t = mk("c01", "sha256:aaaa", T0 + i, "GET", "/", 200);
        bool big = i % 50 == 7;
        size_t pl = big ? SIZE_MAX : (size_t)(i * 37) % 1500;
        fill_text(t->path + 1, sizeof t->path - 1, pl, i);
        if (big) {
            fill_text(t->identity.id, sizeof t->identity.id, SIZE_MAX, i);
            fill_text(t->cred.fingerprint, sizeof t->cred.fingerprint, SIZE_MAX, i);
            fill_text(t->cred.hint, sizeof t->cred.hint, SIZE_MAX, i);
            fill_text(t->method, sizeof t->method, SIZE_MAX, i);
            fill_text(t->hostname, sizeof t->hostname, SIZE_MAX, i);
            fill_text(t->template_, sizeof t->template_, SIZE_MAX, i);
        } else {
            fill_text(t->template_, sizeof t->template_, (size_t)i % 300, i + 1);
        }
        assert_int_equal(sqlite3_column_int64(q, 0), T0 + i);
        assert_string_equal((const char *)sqlite3_column_text(q, 1), t->identity.id);
        assert_string_equal((const char *)sqlite3_column_text(q, 2), t->cred.fingerprint);
        assert_string_equal((const char *)sqlite3_column_text(q, 3), t->cred.hint);
        assert_string_equal((const char *)sqlite3_column_text(q, 4), t->method);
        assert_string_equal((const char *)sqlite3_column_text(q, 5), t->hostname);
        assert_string_equal((const char *)sqlite3_column_text(q, 6), t->path);
        assert_string_equal((const char *)sqlite3_column_text(q, 7), t->template_);
        free(t);
    }
    assert_int_equal(i, N);
    sqlite3_finalize(q);
    store_db_close(db);
}

static void test_parse_time(void **state)
{
    static const struct {
        const char *in;
        kw_ts want; /* seconds; -1 = invalid */
    } cases[] = {
        {"2026-03-28T02:13:05Z", 1774663985},
        {"2026-03-28t02:13:05z", 1774663985},
        {"2026-03-28T04:13:05+02:00", 1774663985},
        {"2026-03-27T21:13:05-05:00", 1774663985},
        {"2026-03-28", 1774656000},
        {"-2h", 1774000000 - 7200},
        {"-7d", 1774000000 - 7 * 86400},
        {"-30m", 1774000000 - 1800},
        {"-1w", 1774000000 - 604800},
        {"2026-03-28T02:13:05", -1}, /* no offset */
        {"2026-13-01", -1},
        {"yesterday", -1},
        {"-2x", -1},
        {"-h", -1},
        {"", -1},
        {"2026-03-28T02:13:05Zjunk", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kw_ts out = 0;
        enum kw_err e = audit_parse_time(cases[i].in, T0, &out);
        if (cases[i].want < 0) {
            assert_int_equal(e, KW_E_INVAL);
        } else {
            assert_int_equal(e, KW_E_OK);
            assert_int_equal(out, KW_TS_SEC(cases[i].want));
        }
    }
    kw_ts out = 0;
    assert_int_equal(audit_parse_time("2026-03-28T02:13:05.25Z", 0, &out), KW_E_OK);
    assert_int_equal(out, KW_TS_SEC(1774663985) + 250000);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/test-tmp", KW_BINARY_DIR);
    mkdir(dir, 0700);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_and_query),
        cmocka_unit_test(test_no_query_secret),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_retention_future),
        cmocka_unit_test(test_text_gc),
        cmocka_unit_test(test_replay_idempotent),
        cmocka_unit_test(test_full_queue_drops),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_ring_wraps),
        cmocka_unit_test(test_replay_across_versions),
        cmocka_unit_test(test_who_queries),
        cmocka_unit_test(test_text_ids_rollback),
        cmocka_unit_test(test_eager_skips_gathering),
        cmocka_unit_test(test_eager_gather),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
