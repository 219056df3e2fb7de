/* audit_text: interned texts of the audit trail (see audit_text.h).
 *
 * The cache is an array of AUDIT_TEXT_SLOTS slots in buckets of 4, keyed
 * by a hash of (kind, bytes): a text is its own bytes, an address its raw
 * kw_addr, so a hit costs neither inet_ntop nor SQLite. Keys longer than a
 * slot holds are not cached (a miss each time, still correct). */
#include "audit_text.h"

#include "dbw.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 106 /* a slot is 128 bytes */
#define WAYS 4

enum { K_TEXT = 1, K_ADDR = 2 };

struct slot {
    uint64_t hash;
    sqlite3_int64 id;
    uint32_t epoch; /* the run that learned it; 0: empty */
    uint8_t kind, len;
    char key[KEY_MAX];
};

struct audit_text {
    struct slot *slots;
    uint32_t run;       /* the current (or last) run */
    uint32_t committed; /* runs up to this one committed */
    sqlite3_int64 gen;  /* audit_meta text_gen the cache was filled under */
    bool open;          /* a run began and its outcome is not known yet */
    sqlite3 *db;
    sqlite3_stmt *sel, *ins;
};

enum kw_err audit_text_new(struct audit_text **out)
{
    struct audit_text *c = calloc(1, sizeof *c);
    if (c) c->slots = calloc(AUDIT_TEXT_SLOTS, sizeof *c->slots);
    if (!c || !c->slots) {
        audit_text_destroy(c);
        return KW_E_NOMEM;
    }
    *out = c;
    return KW_E_OK;
}

void audit_text_destroy(struct audit_text *c)
{
    if (!c) return;
    audit_text_end(c);
    free(c->slots);
    free(c);
}

static void forget(struct audit_text *c)
{
    for (unsigned i = 0; i < AUDIT_TEXT_SLOTS; i++)
        c->slots[i].epoch = 0;
}

static const char gen_sql[] = "SELECT v FROM audit_meta WHERE k='text_gen'",
                  sel_sql[] = "SELECT id FROM audit_text WHERE s=?",
                  ins_sql[] = "INSERT INTO audit_text(s) VALUES(?)";

int audit_text_begin(struct audit_text *c, sqlite3 *db)
{
    /* the last run's transaction was rolled back (or is in doubt): what it
     * learned may name rows that do not exist */
    if (c->open) forget(c);
    c->run++;
    c->open = true;
    c->db = db;
    /* kept on the writer's connection (dbw_stmt): a prepare costs dozens of
     * mallocs, and a run is one batch of rows */
    sqlite3_stmt *gen = NULL;
    int rc = dbw_stmt(db, gen_sql, &gen);
    if (rc == SQLITE_OK) rc = dbw_stmt(db, sel_sql, &c->sel);
    if (rc == SQLITE_OK) rc = dbw_stmt(db, ins_sql, &c->ins);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(gen);
    sqlite3_int64 g = rc == SQLITE_ROW ? sqlite3_column_int64(gen, 0) : 0;
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(db);
    sqlite3_reset(gen);
    if (g != c->gen) { /* texts were collected since the cache was filled */
        forget(c);
        c->gen = g;
    }
    return rc;
}

int audit_text_gc(sqlite3 *db, sqlite3_int64 *deleted)
{
    /* one pass over the rows (a NOT IN list built once), so it runs at most
     * daily (audit.c); the two indexed columns alone would not do */
    int rc = sqlite3_exec(db,
                          "DELETE FROM audit_text WHERE id NOT IN (SELECT identity FROM audit_row"
                          " UNION SELECT fingerprint FROM audit_row UNION SELECT cred_hint FROM"
                          " audit_row UNION SELECT src_ip FROM audit_row UNION SELECT dst_ip FROM"
                          " audit_row UNION SELECT method FROM audit_row UNION SELECT host FROM"
                          " audit_row UNION SELECT template FROM audit_row)",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK) return sqlite3_extended_errcode(db);
    *deleted = sqlite3_changes64(db);
    rc = sqlite3_exec(db, "UPDATE audit_meta SET v=v+1 WHERE k='text_gen'", NULL, NULL, NULL);
    return rc == SQLITE_OK ? SQLITE_OK : sqlite3_extended_errcode(db);
}

void audit_text_end(struct audit_text *c)
{
    sqlite3_reset(c->sel); /* the writer keeps them (dbw_stmt) */
    sqlite3_reset(c->ins);
    c->sel = c->ins = NULL;
}

void audit_text_done(struct audit_text *c, bool committed)
{
    if (committed)
        c->committed = c->run;
    else
        forget(c);
    c->open = false;
}

/* Eight bytes a step: a fingerprint is 71 of them, and a byte-wise hash
 * of every text of every row showed in the writer's profile. Not keyed:
 * the texts come from traffic, but a crafted collision only costs misses
 * (a bucket of 4 ways, then an indexed SELECT), never a wrong id. */
static uint64_t hash(uint8_t kind, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)kind << 56) ^ n, w;
    for (; n >= 8; n -= 8, b += 8) {
        memcpy(&w, b, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, b, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

static bool valid(const struct audit_text *c, const struct slot *s)
{
    return s->epoch && (s->epoch <= c->committed || s->epoch == c->run);
}

static struct slot *find(struct audit_text *c, uint64_t h, uint8_t kind, const void *k, size_t n)
{
    struct slot *b = &c->slots[(h % (AUDIT_TEXT_SLOTS / WAYS)) * WAYS];
    for (unsigned i = 0; i < WAYS; i++)
        if (b[i].hash == h && b[i].kind == kind && b[i].len == n && valid(c, &b[i]) &&
            memcmp(b[i].key, k, n) == 0)
            return &b[i];
    return NULL;
}

static void keep(struct audit_text *c, uint64_t h, uint8_t kind, const void *k, size_t n,
                 sqlite3_int64 id)
{
    if (n > KEY_MAX) return;
    struct slot *b = &c->slots[(h % (AUDIT_TEXT_SLOTS / WAYS)) * WAYS], *s = &b[(h >> 32) % WAYS];
    for (unsigned i = 0; i < WAYS; i++)
        if (!valid(c, &b[i])) {
            s = &b[i];
            break;
        }
    s->hash = h;
    s->id = id;
    s->epoch = c->run;
    s->kind = kind;
    s->len = (uint8_t)n;
    memcpy(s->key, k, n);
}

/* The id of the text in the table, inserted when absent. */
static int lookup(struct audit_text *c, const char *s, size_t len, sqlite3_int64 *id)
{
    sqlite3_bind_text(c->sel, 1, s, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(c->sel);
    if (rc == SQLITE_ROW) *id = sqlite3_column_int64(c->sel, 0);
    sqlite3_reset(c->sel);
    if (rc == SQLITE_ROW) return SQLITE_OK;
    if (rc != SQLITE_DONE) return rc;
    sqlite3_bind_text(c->ins, 1, s, (int)len, SQLITE_STATIC);
    rc = sqlite3_step(c->ins);
    sqlite3_reset(c->ins);
    if (rc != SQLITE_DONE) return rc;
    *id = sqlite3_last_insert_rowid(c->db);
    return SQLITE_OK;
}

int audit_text_id(struct audit_text *c, const char *s, size_t len, sqlite3_int64 *id)
{
    uint64_t h = hash(K_TEXT, s, len);
    struct slot *hit = find(c, h, K_TEXT, s, len);
    if (hit) {
        *id = hit->id;
        return SQLITE_OK;
    }
    int rc = lookup(c, s, len, id);
    if (rc == SQLITE_OK) keep(c, h, K_TEXT, s, len, *id);
    return rc;
}

int audit_text_addr(struct audit_text *c, const struct kw_addr *x, sqlite3_int64 *id)
{
    uint8_t k[17];
    k[0] = x->family;
    memcpy(k + 1, x->a, 16);
    uint64_t h = hash(K_ADDR, k, sizeof k);
    struct slot *hit = find(c, h, K_ADDR, k, sizeof k);
    if (hit) {
        *id = hit->id;
        return SQLITE_OK;
    }
    char buf[64];
    kw_addr_str(x, buf, sizeof buf);
    int rc = lookup(c, buf, strlen(buf), id);
    if (rc == SQLITE_OK) keep(c, h, K_ADDR, k, sizeof k, *id);
    return rc;
}
