/* audit_query: the reading side of the audit trail (see audit.h): rows
 * for `keywarden audit` and the report, grouped counts, and the time
 * arguments they take (RFC 3339 or relative to the newest row). The
 * writer is audit.c. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "kw_log.h"
#include "store.h"

static void cpy(char *dst, size_t n, const char *src)
{
    size_t l = strnlen(src, n - 1);
    memcpy(dst, src, l);
    dst[l] = 0;
}

/* ---- queries ---- */

enum kw_err audit_newest(sqlite3 *db, kw_ts *out)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT max(ts) FROM audit", -1, &s, NULL) != SQLITE_OK) {
        kw_err_log("audit: %s", sqlite3_errmsg(db));
        return KW_E_DB;
    }
    enum kw_err e = KW_E_DB;
    if (sqlite3_step(s) == SQLITE_ROW) {
        *out = sqlite3_column_int64(s, 0);
        e = KW_E_OK;
    }
    sqlite3_finalize(s);
    return e;
}

/* Ends a query whose last sqlite3_step returned rc: an error is named. */
static enum kw_err query_done(sqlite3 *db, sqlite3_stmt *s, int rc)
{
    enum kw_err e = KW_E_OK;
    if (rc != SQLITE_DONE) {
        kw_err_log("audit: query: %s", sqlite3_errmsg(db));
        e = KW_E_DB;
    }
    sqlite3_finalize(s);
    return e;
}

static void col_text(sqlite3_stmt *s, int i, char *dst, size_t n)
{
    const char *v = (const char *)sqlite3_column_text(s, i);
    cpy(dst, n, v ? v : "");
}

static void row_to_txn(sqlite3_stmt *s, struct kw_txn *t)
{
    char ip[64];
    memset(t, 0, sizeof *t);
    t->ts = sqlite3_column_int64(s, 0);
    col_text(s, 1, t->identity.id, sizeof t->identity.id);
    col_text(s, 2, t->cred.fingerprint, sizeof t->cred.fingerprint);
    t->cred.kind = (uint8_t)sqlite3_column_int(s, 3);
    col_text(s, 4, t->cred.hint, sizeof t->cred.hint);
    col_text(s, 5, ip, sizeof ip);
    if (!kw_addr_parse(ip, &t->src)) memset(&t->src, 0, sizeof t->src);
    t->sport = (uint16_t)sqlite3_column_int(s, 6);
    col_text(s, 7, ip, sizeof ip);
    if (!kw_addr_parse(ip, &t->dst)) memset(&t->dst, 0, sizeof t->dst);
    t->dport = (uint16_t)sqlite3_column_int(s, 8);
    col_text(s, 9, t->method, sizeof t->method);
    col_text(s, 10, t->hostname, sizeof t->hostname);
    col_text(s, 11, t->path, sizeof t->path);
    col_text(s, 12, t->template_, sizeof t->template_);
    t->status = sqlite3_column_int(s, 13);
    t->req_len = (uint64_t)sqlite3_column_int64(s, 14);
    t->resp_len = (uint64_t)sqlite3_column_int64(s, 15);
    t->flow_id = (uint64_t)sqlite3_column_int64(s, 16);
    t->flags = (uint32_t)sqlite3_column_int64(s, 17);
}

/* The WHERE clause of a query; binds follow the same order in
 * bind_query(). Shared by the row query and the grouped counts, so both
 * select exactly the same rows. */
/* The rows of one identity or one credential come from the index on
 * (who, ts) (schema v6, audit.c): an identity is its own `who`; a
 * credential is its own `who` when unattributed, and the `who` of each
 * identity audit_cred says it was attributed to. The exact test
 * (identity=?, fingerprint=?) follows, so a `who` range holding other rows
 * costs time, never a wrong row. Unattributed rows as such (--identity '')
 * have no `who` of their own: the time range and the test find them. */
static bool by_who(const struct audit_query *q)
{
    return (q->identity && q->identity[0]) || (!q->identity && q->fingerprint);
}

static void build_where(const struct audit_query *q, char *where, size_t n)
{
    size_t w = (size_t)snprintf(where, n, "1");
    if (by_who(q)) {
        w += (size_t)snprintf(
            where + w, n - w, " AND id IN (SELECT id FROM audit_row WHERE who IN %s%s%s)",
            q->identity ? "(SELECT id FROM audit_text WHERE s=?)"
                        : "(SELECT id FROM audit_text WHERE s=? UNION ALL SELECT c.identity FROM "
                          "audit_cred c JOIN audit_text f ON f.id=c.fingerprint WHERE f.s=?)",
            q->since ? " AND ts>=?" : "", q->until ? " AND ts<?" : "");
    }
    if (q->identity) w += (size_t)snprintf(where + w, n - w, " AND identity=?");
    if (q->fingerprint) w += (size_t)snprintf(where + w, n - w, " AND fingerprint=?");
    if (q->path_glob) w += (size_t)snprintf(where + w, n - w, " AND path GLOB ?");
    if (q->since) w += (size_t)snprintf(where + w, n - w, " AND ts>=?");
    if (q->until) w += (size_t)snprintf(where + w, n - w, " AND ts<?");
    if (q->status_class > 0)
        snprintf(where + w, n - w, " AND status BETWEEN ? AND ?");
    else if (q->status_class < 0)
        snprintf(where + w, n - w, " AND status=0");
}

static void build_query(const struct audit_query *q, char *sql, size_t n)
{
    const char *cols = "ts,identity,fingerprint,cred_kind,cred_hint,src_ip,src_port,dst_ip,"
                       "dst_port,method,host,path,template,status,req_len,resp_len,flow_id,"
                       "flags,id";
    char where[1024];
    build_where(q, where, sizeof where);
    if (q->limit) /* the newest `limit` rows, shown oldest first */
        snprintf(sql, n,
                 "SELECT * FROM (SELECT %s FROM audit WHERE %s ORDER BY ts DESC, id DESC "
                 "LIMIT ?) ORDER BY ts, id",
                 cols, where);
    else
        snprintf(sql, n, "SELECT %s FROM audit WHERE %s ORDER BY ts, id", cols, where);
}

static void bind_query(sqlite3_stmt *s, const struct audit_query *q)
{
    int i = 1;
    if (by_who(q)) {
        const char *who = q->identity ? q->identity : q->fingerprint;
        sqlite3_bind_text(s, i++, who, -1, SQLITE_STATIC);
        if (!q->identity) sqlite3_bind_text(s, i++, who, -1, SQLITE_STATIC);
        if (q->since) sqlite3_bind_int64(s, i++, q->since);
        if (q->until) sqlite3_bind_int64(s, i++, q->until);
    }
    if (q->identity) sqlite3_bind_text(s, i++, q->identity, -1, SQLITE_STATIC);
    if (q->fingerprint) sqlite3_bind_text(s, i++, q->fingerprint, -1, SQLITE_STATIC);
    if (q->path_glob) sqlite3_bind_text(s, i++, q->path_glob, -1, SQLITE_STATIC);
    if (q->since) sqlite3_bind_int64(s, i++, q->since);
    if (q->until) sqlite3_bind_int64(s, i++, q->until);
    if (q->status_class > 0) {
        sqlite3_bind_int(s, i++, q->status_class * 100);
        sqlite3_bind_int(s, i++, q->status_class * 100 + 99);
    }
    if (q->limit) sqlite3_bind_int64(s, i++, q->limit);
}

enum kw_err audit_query_run(sqlite3 *db, const struct audit_query *q,
                            void (*row)(void *user, const struct kw_txn *t), void *user)
{
    if (q->status_class > 5) return KW_E_INVAL;
    char sql[2048];
    build_query(q, sql, sizeof sql);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        kw_err_log("audit: query: %s", sqlite3_errmsg(db));
        return KW_E_DB;
    }
    bind_query(s, q);
    struct kw_txn *t = malloc(sizeof *t);
    if (!t) {
        sqlite3_finalize(s);
        return KW_E_NOMEM;
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        row_to_txn(s, t);
        row(user, t);
    }
    free(t);
    return query_done(db, s, rc);
}

/* ---- grouped counts ---- */

/* Columns of each grouping: key columns first, then count, errors
 * (status >= 400), first and last ts. */
static const char *const group_sql[] = {
    [AUDIT_BY_QUARTER] = "identity, ts - (ts % 900000000)",
    [AUDIT_BY_PATH] = "identity, method, host, path, template",
    [AUDIT_BY_SOURCE] = "identity, src_ip",
    [AUDIT_BY_CREDENTIAL] = "identity, fingerprint, cred_hint, cred_kind",
};

static void group_row(sqlite3_stmt *s, enum audit_group g, struct audit_group_row *r)
{
    memset(r, 0, sizeof *r);
    const char *v = (const char *)sqlite3_column_text(s, 0);
    r->identity = v ? v : "";
    int k = 1;
    switch (g) {
    case AUDIT_BY_QUARTER:
        r->bucket = sqlite3_column_int64(s, k++);
        break;
    case AUDIT_BY_PATH:
        r->method = (const char *)sqlite3_column_text(s, k++);
        r->host = (const char *)sqlite3_column_text(s, k++);
        r->path = (const char *)sqlite3_column_text(s, k++);
        r->template_ = (const char *)sqlite3_column_text(s, k++);
        break;
    case AUDIT_BY_SOURCE:
        v = (const char *)sqlite3_column_text(s, k++);
        if (!v || !kw_addr_parse(v, &r->src)) memset(&r->src, 0, sizeof r->src);
        break;
    case AUDIT_BY_CREDENTIAL:
        r->fingerprint = (const char *)sqlite3_column_text(s, k++);
        r->hint = (const char *)sqlite3_column_text(s, k++);
        r->cred_kind = sqlite3_column_int(s, k++);
        break;
    }
    r->n = (uint64_t)sqlite3_column_int64(s, k++);
    r->n_error = (uint64_t)sqlite3_column_int64(s, k++);
    r->first = sqlite3_column_int64(s, k++);
    r->last = sqlite3_column_int64(s, k);
    if (!r->method) r->method = "";
    if (!r->host) r->host = "";
    if (!r->path) r->path = "";
    if (!r->template_) r->template_ = "";
    if (!r->fingerprint) r->fingerprint = "";
    if (!r->hint) r->hint = "";
}

enum kw_err audit_group_run(sqlite3 *db, const struct audit_query *q, enum audit_group g,
                            void (*fn)(void *user, const struct audit_group_row *r), void *user)
{
    if (q->status_class > 5 || q->limit || (unsigned)g > AUDIT_BY_CREDENTIAL) return KW_E_INVAL;
    char where[1024], sql[2048];
    build_where(q, where, sizeof where);
    snprintf(sql, sizeof sql,
             "SELECT %s, count(*), sum(status >= 400), min(ts), max(ts) FROM audit WHERE %s "
             "GROUP BY %s",
             group_sql[g], where, group_sql[g]);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        kw_err_log("audit: query: %s", sqlite3_errmsg(db));
        return KW_E_DB;
    }
    bind_query(s, q);
    struct audit_group_row r;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        group_row(s, g, &r);
        fn(user, &r);
    }
    return query_done(db, s, rc);
}

/* ---- time arguments ---- */

static enum kw_err parse_relative(const char *s, kw_ts newest, kw_ts *out)
{
    char *end = NULL;
    long long v = strtoll(s + 1, &end, 10);
    if (end == s + 1 || v < 0 || v > 100000 || end[0] == 0 || end[1] != 0) return KW_E_INVAL;
    long long unit = kw_time_unit_s(end[0]);
    if (!unit) return KW_E_INVAL;
    *out = newest - KW_TS_SEC(v * unit);
    return KW_E_OK;
}

enum kw_err audit_parse_time(const char *s, kw_ts newest, kw_ts *out)
{
    if (!s || !*s) return KW_E_INVAL;
    if (s[0] == '-') return parse_relative(s, newest, out);
    struct tm tm = {0};
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
        return KW_E_INVAL;
    const char *p = s + n;
    long usec = 0, off = 0;
    if (*p) {
        if (*p != 'T' && *p != 't' && *p != ' ') return KW_E_INVAL;
        int m = 0;
        if (sscanf(p + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &m) != 3 || m != 8)
            return KW_E_INVAL;
        p += 1 + m;
        if (*p == '.') { /* fraction: up to µs kept */
            long scale = 100000;
            for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
                usec += scale > 0 ? (*p - '0') * scale : 0;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int hh, mm, k = 0;
            if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &k) != 2 || k != 5 || hh > 23 || mm > 59)
                return KW_E_INVAL;
            off = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
            p += 1 + k;
        } else {
            return KW_E_INVAL; /* RFC 3339 requires an offset */
        }
        if (*p) return KW_E_INVAL;
    }
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return KW_E_INVAL;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    *out = KW_TS_SEC((kw_ts)t - off) + usec;
    return KW_E_OK;
}
