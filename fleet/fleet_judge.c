/* fleet_judge: consumers, merge, judge stage, commit (see fleet_judge.h).
 *
 * The loop: find new subjects (every 2 s), fetch what each source has
 * (without waiting), release every record the merge can release into the
 * judge stage, commit when due. When nothing moved it waits on the source
 * the merge waits for (a long poll of 200 ms), or sleeps 50 ms. After the
 * connection to NATS came back, and when a source waits for a missing
 * message for 3 s, the source's consumer is started again from its
 * acknowledged floor: a message the server sent while the connection
 * died is then delivered again instead of being given up. */
#include "fleet_judge.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet_merge.h"
#include "fleet_nats.h"
#include "fleet_wire.h"
#include "judge_policy.h"
#include "kw_log.h"
#include "store.h"

#define FJ_BATCH 512
#define FJ_DISCOVER_US KW_TS_SEC(2)
#define FJ_GAP_RESET_US KW_TS_SEC(3)
#define FJ_LAT_BUCKETS 256

struct fj_counters {
    uint64_t txns, tls, flows, marks, ticks, late, commits, acks, ack_errors, resets, reconnects;
    uint64_t fetch_errors, state_restored;
    double commit_ms_total;
};

struct fj_src { /* by merge source index */
    struct fn_consumer *k;
    uint32_t part;
    char sensor[FW_SENSOR_MAX];
    bool ack_pending;
    char ack_reply[FM_REPLY_MAX];
    kw_ts gap_reset; /* the gap a reset was already tried for */
};

struct fj {
    struct fj_config c;
    struct fn_conn *nc;
    struct fm *m;
    struct fj_src *src;
    size_t n_src, cap_src;
    uint8_t *owned; /* [partitions] */
    sqlite3 *db;
    struct kw_txn *txn;
    struct tls_info *tls;
    struct fw_flow flow;
    int64_t tick_hour;
    uint32_t since_commit;
    kw_ts last_commit, next_discover, last_record;
    bool was_up;
    uint64_t seen_disconnects, seen_reconnects;
    uint64_t alerts_seen; /* alerts raised so far (latency of new alerts) */
    struct fj_counters n;
    uint64_t lat[FJ_LAT_BUCKETS], lat_alert[FJ_LAT_BUCKETS];
};

static const char *const fj_steps[] = {
    /* v1 */
    "CREATE TABLE fleet_source("
    " partition INTEGER NOT NULL, sensor TEXT NOT NULL,"
    " epoch INTEGER NOT NULL, pseq INTEGER NOT NULL," /* the last judged */
    " gseq INTEGER NOT NULL, clock INTEGER NOT NULL, ended INTEGER NOT NULL,"
    " PRIMARY KEY(partition, sensor));"
    "CREATE TABLE fleet_state(name TEXT PRIMARY KEY, data BLOB NOT NULL);",
};

/* ---- latency (wall time of judging - packet time of the record) ------- */

static void lat_add(uint64_t *h, kw_ts us)
{
    double x = us < 1 ? 0 : log2((double)us) * 8;
    int b = x >= FJ_LAT_BUCKETS - 1 ? FJ_LAT_BUCKETS - 1 : (int)x;
    h[b]++;
}

/* The upper bound of the bucket holding quantile q (µs); -1 when empty. */
static double lat_quantile(const uint64_t *h, double q)
{
    uint64_t total = 0, seen = 0;
    for (int i = 0; i < FJ_LAT_BUCKETS; i++)
        total += h[i];
    if (!total) return -1;
    for (int i = 0; i < FJ_LAT_BUCKETS; i++) {
        seen += h[i];
        if ((double)seen >= q * (double)total) return exp2((i + 1) / 8.0);
    }
    return -1;
}

/* ---- checkpoint -------------------------------------------------------- */

static int load_position(void *user, int ncol, char **v, char **col)
{
    struct fj *j = user;
    if (ncol < 7 || !v[0] || !v[1]) return 0;
    struct fm_position p = {.partition = (uint32_t)strtoul(v[0], NULL, 10),
                            .epoch = strtoull(v[2], NULL, 10),
                            .pseq = strtoull(v[3], NULL, 10),
                            .gseq = strtoull(v[4], NULL, 10),
                            .clock = strtoll(v[5], NULL, 10),
                            .ended = atoi(v[6]) != 0};
    snprintf(p.sensor, sizeof p.sensor, "%s", v[1]);
    if (p.partition < j->c.rc->fleet.partitions && j->owned[p.partition] &&
        fm_load_position(j->m, &p) != KW_E_OK)
        return 1;
    return 0;
}

static void restore_state(struct fj *j)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(j->db, "SELECT name, data FROM fleet_state", -1, &st, NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const uint8_t *b = sqlite3_column_blob(st, 1);
        size_t n = (size_t)sqlite3_column_bytes(st, 1);
        enum kw_err e = KW_E_OK;
        if (!name) continue;
        if (!strcmp(name, "policy"))
            e = judge_policy_load(pipeline_policy(j->c.pipe), b, n);
        else if (!strcmp(name, "alerts") && j->c.alerts)
            e = alerts_state_load(j->c.alerts, b, n);
        else if (!strcmp(name, "merge") && n == sizeof j->tick_hour)
            memcpy(&j->tick_hour, b, n);
        if (e != KW_E_OK)
            kw_warn("fleet: the committed %s windows do not fit this build or config: they "
                    "start empty",
                    name);
        else
            j->n.state_restored++;
    }
    sqlite3_finalize(st);
}

static enum kw_err open_db(struct fj *j)
{
    enum kw_err e = store_db_open(j->c.db_path, &j->db);
    if (e == KW_E_OK)
        e = store_migrate(j->db, "fleet_judge", fj_steps, sizeof fj_steps / sizeof *fj_steps);
    if (e != KW_E_OK) return e;
    if (sqlite3_exec(j->db,
                     "SELECT partition, sensor, epoch, pseq, gseq, clock, ended FROM fleet_source",
                     load_position, j, NULL) != SQLITE_OK)
        return KW_E_DB;
    restore_state(j);
    return KW_E_OK;
}

/* What a commit stores besides the audit rows: the stream positions and
 * the windows, copied on the judge thread (the write may run on the
 * database writer's thread, inside the baselines' transaction). */
struct fj_ckpt {
    struct fm_position *pos;
    size_t n_pos, cap_pos;
    uint8_t *policy, *alerts;
    size_t n_policy, n_alerts;
    int64_t tick_hour;
    bool oom;
};

static void ckpt_add_position(void *user, const struct fm_position *p)
{
    struct fj_ckpt *c = user;
    if (c->n_pos == c->cap_pos) {
        size_t cap = c->cap_pos ? c->cap_pos * 2 : 16;
        struct fm_position *n = realloc(c->pos, cap * sizeof *n);
        if (!n) {
            c->oom = true;
            return;
        }
        c->pos = n;
        c->cap_pos = cap;
    }
    c->pos[c->n_pos++] = *p;
}

static void ckpt_free(struct fj_ckpt *c)
{
    free(c->pos);
    free(c->policy);
    free(c->alerts);
    memset(c, 0, sizeof *c);
}

static enum kw_err ckpt_take(struct fj *j, struct fj_ckpt *c)
{
    memset(c, 0, sizeof *c);
    fm_positions(j->m, ckpt_add_position, c);
    c->tick_hour = j->tick_hour;
    if (c->oom || judge_policy_save(pipeline_policy(j->c.pipe), &c->policy, &c->n_policy) != KW_E_OK ||
        (j->c.alerts && alerts_state_save(j->c.alerts, &c->alerts, &c->n_alerts) != KW_E_OK)) {
        ckpt_free(c);
        return KW_E_NOMEM;
    }
    return KW_E_OK;
}

static int put_blob(sqlite3 *db, const char *name, const void *b, size_t n)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO fleet_state(name, data) VALUES(?,?)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, b, (int)n, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Inside a transaction on db; may run more than once (dbw retries). */
static int ckpt_write(void *user, sqlite3 *db)
{
    const struct fj_ckpt *c = user;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "INSERT OR REPLACE INTO fleet_source(partition, sensor, epoch, pseq,"
                                " gseq, clock, ended) VALUES(?,?,?,?,?,?,?)",
                                -1, &st, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < c->n_pos; i++) {
        const struct fm_position *p = &c->pos[i];
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, p->partition);
        sqlite3_bind_text(st, 2, p->sensor, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)p->epoch);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)p->pseq);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)p->gseq);
        sqlite3_bind_int64(st, 6, p->clock);
        sqlite3_bind_int(st, 7, p->ended);
        if (sqlite3_step(st) != SQLITE_DONE) rc = SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK) rc = put_blob(db, "policy", c->policy, c->n_policy);
    if (rc == SQLITE_OK && c->alerts) rc = put_blob(db, "alerts", c->alerts, c->n_alerts);
    if (rc == SQLITE_OK) rc = put_blob(db, "merge", &c->tick_hour, sizeof c->tick_hour);
    return rc;
}

static void acknowledge(struct fj *j)
{
    for (size_t i = 0; i < j->n_src; i++) {
        struct fj_src *x = &j->src[i];
        uint64_t seq;
        if (fm_ack_point(j->m, (int)i, &seq, x->ack_reply)) x->ack_pending = true;
        if (!x->ack_pending || !x->ack_reply[0]) continue;
        if (fn_ack_all(j->nc, x->ack_reply) == KW_E_OK) {
            x->ack_pending = false;
            j->n.acks++;
        } else {
            j->n.ack_errors++; /* sent again at the next commit */
        }
    }
}

/* Audit rows first (their natural key makes a row written again after a
 * restart a no-op), then the positions with the windows and the baselines
 * in one transaction, then the acks. The baselines must go with the
 * positions: saved before them, a judge killed in between judged the
 * records after the old positions again and learned them twice (seen once
 * in CI as different alerts after e2e_fleet judge_kill); saved after them,
 * it would forget what it learned. */
static enum kw_err commit(struct fj *j)
{
    kw_ts t0 = kw_ts_wall();
    if (j->c.audit) audit_flush(j->c.audit);
    struct fj_ckpt c;
    if (ckpt_take(j, &c) != KW_E_OK) {
        kw_warn("fleet: commit failed (out of memory): nothing acknowledged; retrying");
        return KW_E_NOMEM;
    }
    int rc = SQLITE_OK;
    if (j->c.baseline) {
        rc = baseline_save_along(j->c.baseline, ckpt_write, &c) == KW_E_OK ? SQLITE_OK : SQLITE_ERROR;
    } else {
        rc = sqlite3_exec(j->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK) rc = ckpt_write(&c, j->db);
        if (rc == SQLITE_OK) rc = sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    }
    ckpt_free(&c);
    if (rc != SQLITE_OK) {
        kw_warn("fleet: commit failed (%s): nothing acknowledged; retrying",
                j->c.baseline ? "the database writer named the cause" : sqlite3_errmsg(j->db));
        return KW_E_DB;
    }
    acknowledge(j);
    j->since_commit = 0;
    j->last_commit = kw_ts_wall();
    j->n.commits++;
    j->n.commit_ms_total += (double)(j->last_commit - t0) / 1000.0;
    return KW_E_OK;
}

/* ---- sources ----------------------------------------------------------- */

static enum kw_err open_consumer(struct fj *j, struct fj_src *x)
{
    char durable[96], subj[FN_SUBJECT_MAX], err[512] = "";
    snprintf(durable, sizeof durable, "kwj_%u_%s", (unsigned)x->part, x->sensor);
    fn_subject(subj, x->part, x->sensor);
    fn_consumer_close(x->k);
    x->k = NULL;
    enum kw_err e = fn_consumer_open(j->nc, durable, subj, &x->k, err, sizeof err);
    if (e != KW_E_OK) kw_warn("fleet: %s: %s", subj, err);
    else fm_set_drained(j->m, (int)(x - j->src), fn_consumer_pending(x->k) == 0);
    return e;
}

/* Sources are numbered as the merge numbers them: a new one is added to
 * both, and gets its consumer (again at the next discovery if that
 * failed). */
static void add_source(struct fj *j, uint32_t part, const char *sensor)
{
    int idx = fm_source(j->m, part, sensor);
    if (idx < 0) return;
    if ((size_t)idx >= j->n_src) {
        if (j->n_src == j->cap_src) {
            size_t cap = j->cap_src ? j->cap_src * 2 : 32;
            struct fj_src *n = realloc(j->src, cap * sizeof *n);
            if (!n) return;
            j->src = n;
            j->cap_src = cap;
        }
        struct fj_src *x = &j->src[j->n_src++];
        memset(x, 0, sizeof *x);
        x->part = part;
        size_t l = strnlen(sensor, sizeof x->sensor - 1);
        memcpy(x->sensor, sensor, l);
        x->sensor[l] = 0;
    }
    struct fj_src *x = &j->src[idx];
    if (!x->k && open_consumer(j, x) == KW_E_OK)
        kw_info("fleet: judging partition %u of sensor %s", (unsigned)part, sensor);
}

static void on_subject(void *user, const char *subject, uint64_t msgs)
{
    struct fj *j = user;
    unsigned part;
    char sensor[FW_SENSOR_MAX + 1];
    int used = 0;
    if (sscanf(subject, "kw.txn.%u.%64[A-Za-z0-9_-]%n", &part, sensor, &used) != 2 ||
        subject[used] || !fw_sensor_name_ok(sensor))
        return;
    if (part >= j->c.rc->fleet.partitions) {
        kw_warn("fleet: %s is past partition %u: every sensor and judge must have the same "
                "fleet.partitions",
                subject, j->c.rc->fleet.partitions - 1);
        return;
    }
    if (j->owned[part]) add_source(j, part, sensor);
}

static void discover(struct fj *j)
{
    if (fn_subjects(j->nc, "kw.txn.*.*", on_subject, j) == KW_E_IO) j->n.fetch_errors++;
}

/* Starts source i's consumer again from its acknowledged floor. */
static void reset_source(struct fj *j, size_t i)
{
    fm_source_reset(j->m, (int)i);
    j->src[i].ack_pending = false;
    if (open_consumer(j, &j->src[i]) == KW_E_OK) j->n.resets++;
}

static size_t fetch_all(struct fj *j)
{
    size_t got = 0;
    for (size_t i = 0; i < j->n_src; i++) {
        struct fj_src *x = &j->src[i];
        size_t room;
        if (!x->k || !fm_wants(j->m, (int)i, &room) || room < FJ_BATCH / 4) continue;
        struct fn_msg *msgs;
        size_t n = 0;
        int want = room < FJ_BATCH ? (int)room : FJ_BATCH;
        if (fn_fetch(x->k, want, 0, &msgs, &n) != KW_E_OK) {
            j->n.fetch_errors++;
            continue;
        }
        /* the server says how many are left after each message: none
         * left means the source has been read to its end (a fetch that
         * comes back short or empty does not: a new consumer can be slow
         * to deliver its first messages) */
        if (n) fm_set_drained(j->m, (int)i, msgs[n - 1].pending == 0);
        for (size_t k = 0; k < n; k++)
            if (fm_push(j->m, (int)i, msgs[k].data, msgs[k].len, msgs[k].stream_seq,
                        msgs[k].reply) != KW_E_OK)
                j->n.fetch_errors++;
        got += n;
    }
    return got;
}

/* ---- the judge stage ---------------------------------------------------- */

/* Flow ids are numbered per sensor run: mixed with the sensor and its
 * epoch they stay unique across the fleet. */
static uint64_t fleet_flow_id(const struct fw_head *h, uint64_t id)
{
    if (!id) return 0;
    uint64_t x = h->epoch ^ (id * 0x9e3779b97f4a7c15ULL);
    for (const char *p = h->sensor; *p; p++)
        x = (x ^ (uint8_t)*p) * 0x100000001b3ULL;
    x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ULL;
    return (x ^ (x >> 29)) & INT64_MAX;
}

static void judge(struct fj *j, const struct fm_rec *r)
{
    struct fw_head h;
    pipeline_judge_at(j->c.pipe, r->h.time);
    if (r->late) j->n.late++;
    switch (r->h.kind) {
    case FW_TXN: {
        if (fw_decode(r->data, r->len, &h, &(struct fw_body){.txn = j->txn}) != KW_E_OK) return;
        j->txn->flow_id = fleet_flow_id(&h, j->txn->flow_id);
        uint64_t before = pipeline_counters(j->c.pipe)->findings;
        pipeline_judge_txn(j->c.pipe, j->txn);
        kw_ts lat = kw_ts_wall() - h.time;
        lat_add(j->lat, lat);
        if (pipeline_counters(j->c.pipe)->findings != before && j->c.alerts) {
            /* a new alert, not a repeat folded into one (suppressed) */
            struct alerts_stats as;
            alerts_get_stats(j->c.alerts, &as);
            if (as.alerts != j->alerts_seen) lat_add(j->lat_alert, lat);
            j->alerts_seen = as.alerts;
        }
        j->n.txns++;
        break;
    }
    case FW_TLS:
        if (fw_decode(r->data, r->len, &h, &(struct fw_body){.txn = j->txn, .tls = j->tls}) !=
            KW_E_OK)
            return;
        j->txn->flow_id = fleet_flow_id(&h, j->txn->flow_id);
        pipeline_judge_tls(j->c.pipe, j->txn, j->tls);
        j->n.tls++;
        break;
    case FW_FLOW:
        if (fw_decode(r->data, r->len, &h, &(struct fw_body){.flow = &j->flow}) != KW_E_OK) return;
        j->flow.f.id = fleet_flow_id(&h, j->flow.f.id);
        pipeline_judge_flow(j->c.pipe, &j->flow.f, j->flow.app, j->flow.sni, j->flow.http_txns,
                            (enum flow_end_reason)j->flow.why, j->flow.ts);
        j->n.flows++;
        break;
    case FW_MARK:
        j->n.marks++;
        /* the single run's baseline tick: the first packet of an hour */
        if ((r->h.flags & FW_MARK_TICK) && r->h.time / KW_TS_SEC(3600) > j->tick_hour) {
            j->tick_hour = r->h.time / KW_TS_SEC(3600);
            pipeline_judge_tick(j->c.pipe, r->h.time);
            j->n.ticks++;
        }
        break;
    default: break;
    }
}

/* ---- the loop ----------------------------------------------------------- */

static void connection(struct fj *j)
{
    bool up = fn_up(j->nc);
    uint64_t lost = fn_disconnects(j->nc), back = fn_reconnects(j->nc);
    if (lost != j->seen_disconnects) {
        kw_warn("fleet: NATS connection lost; waiting for it");
        j->seen_disconnects = lost;
    }
    if (up && back != j->seen_reconnects) {
        /* what the server sent while the connection died is delivered
         * again from each consumer's floor (a server that restarted also
         * forgot the pull requests it had) */
        kw_info("fleet: NATS is back: consumers restart from their acknowledged floor");
        j->seen_reconnects = back;
        j->n.reconnects++;
        for (size_t i = 0; i < j->n_src; i++)
            reset_source(j, i);
    }
    j->was_up = up;
}

static void gap_resets(struct fj *j)
{
    kw_ts now = kw_ts_wall();
    for (size_t i = 0; i < j->n_src; i++) {
        kw_ts since = fm_gap_since(j->m, (int)i);
        if (since && now - since >= FJ_GAP_RESET_US && j->src[i].gap_reset != since) {
            j->src[i].gap_reset = since;
            reset_source(j, i);
        }
    }
}

static size_t release_all(struct fj *j)
{
    size_t n = 0;
    struct fm_rec r;
    while (fm_next(j->m, kw_ts_wall(), &r) == FM_RECORD) {
        judge(j, &r);
        n++;
        if (++j->since_commit >= j->c.commit_every && commit(j) != KW_E_OK) break;
    }
    if (n) j->last_record = kw_ts_wall();
    return n;
}

static void idle_wait(struct fj *j)
{
    int w = fm_waiting_for(j->m);
    if (w >= 0 && j->src[w].k && fn_up(j->nc)) {
        size_t room;
        struct fn_msg *msgs;
        size_t n = 0;
        int want = FJ_BATCH;
        if (fm_wants(j->m, w, &room) && room < FJ_BATCH) want = (int)room;
        if (room && fn_fetch(j->src[w].k, want, 200, &msgs, &n) == KW_E_OK) {
            if (n) fm_set_drained(j->m, w, msgs[n - 1].pending == 0);
            for (size_t k = 0; k < n; k++)
                if (fm_push(j->m, w, msgs[k].data, msgs[k].len, msgs[k].stream_seq,
                            msgs[k].reply) != KW_E_OK)
                    j->n.fetch_errors++;
        }
        if (n) return;
    }
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
}

enum kw_err fj_run(struct fj *j, atomic_int *stop)
{
    j->last_record = j->last_commit = kw_ts_wall();
    while (!atomic_load(stop)) {
        kw_ts now = kw_ts_wall();
        connection(j);
        if (j->was_up && now >= j->next_discover) {
            discover(j);
            j->next_discover = now + FJ_DISCOVER_US;
        }
        size_t got = j->was_up ? fetch_all(j) : 0;
        size_t rel = release_all(j);
        gap_resets(j);
        if (j->since_commit && kw_ts_wall() - j->last_commit >= j->c.commit_ms * 1000)
            (void)commit(j);
        if (j->c.drain && j->n_src && fm_all_ended(j->m)) break;
        if (j->c.drain && kw_ts_wall() - j->last_record >= j->c.idle_ms * 1000) {
            kw_warn("fleet: nothing to judge for %lld s: stopping (--drain)",
                    (long long)(j->c.idle_ms / 1000));
            break;
        }
        if (j->c.each) j->c.each(j->c.user);
        if (!got && !rel) idle_wait(j);
    }
    return commit(j);
}

/* ---- life cycle ---------------------------------------------------------- */

enum kw_err fj_new(const struct fj_config *c, struct fj **out)
{
    struct fj *j = calloc(1, sizeof *j);
    if (!j) return KW_E_NOMEM;
    j->c = *c;
    if (!j->c.commit_ms) j->c.commit_ms = 250;
    if (!j->c.commit_every) j->c.commit_every = 5000;
    if (!j->c.idle_ms) j->c.idle_ms = 15000;
    j->tick_hour = INT64_MIN;
    uint32_t parts = c->rc->fleet.partitions;
    j->owned = calloc(parts, 1);
    j->txn = malloc(sizeof *j->txn);
    j->tls = malloc(sizeof *j->tls);
    enum kw_err e = KW_E_NOMEM;
    if (!j->owned || !j->txn || !j->tls) goto fail;
    for (size_t i = 0; i < c->n_parts; i++)
        if (c->parts[i] < parts) j->owned[c->parts[i]] = 1;
    if ((e = fm_new(&(struct fm_config){.lateness = KW_TS_SEC(c->rc->fleet.lateness_s)},
                    &j->m)) != KW_E_OK ||
        (e = open_db(j)) != KW_E_OK)
        goto fail;
    struct fn_opts o;
    fn_opts_from_config(c->rc, "keywarden judge", &o);
    char err[512] = "";
    if ((e = fn_open(&o, 10000, &j->nc, err, sizeof err)) != KW_E_OK ||
        (e = fn_stream_ensure(j->nc, err, sizeof err)) != KW_E_OK) {
        kw_err_log("fleet: %s", err);
        goto fail;
    }
    j->was_up = fn_up(j->nc);
    *out = j;
    return KW_E_OK;
fail:
    fj_destroy(j);
    return e;
}

void fj_destroy(struct fj *j)
{
    if (!j) return;
    for (size_t i = 0; i < j->n_src; i++)
        fn_consumer_close(j->src[i].k);
    free(j->src);
    fn_close(j->nc);
    fm_destroy(j->m);
    if (j->db) store_db_close(j->db);
    free(j->owned);
    free(j->txn);
    free(j->tls);
    free(j);
}

/* ---- stats ---------------------------------------------------------------- */

struct sensor_json {
    json_t *arr;
};

static void sensor_one(void *user, const char *sensor, uint64_t records, uint64_t dropped,
                       kw_ts clock, bool ended)
{
    char tsb[40];
    json_array_append_new(user, json_pack("{s:s,s:I,s:I,s:s,s:b}", "sensor", sensor, "records",
                                          (json_int_t)records, "dropped", (json_int_t)dropped,
                                          "clock", kw_ts_format(clock, tsb, sizeof tsb), "ended",
                                          ended));
}

json_t *fj_stats_json(struct fj *j)
{
    struct fm_counters k;
    fm_get_counters(j->m, &k);
    json_t *o = json_object();
#define JN(n, v) json_object_set_new(o, n, json_integer((json_int_t)(v)));
    JN("sources", j->n_src)
    JN("messages", k.messages)
    JN("judged", k.released)
    JN("transactions", j->n.txns)
    JN("tls_sessions", j->n.tls)
    JN("flows", j->n.flows)
    JN("marks", j->n.marks)
    JN("ticks", j->n.ticks)
    JN("duplicates", k.duplicates)
    JN("stale", k.stale)
    JN("late", k.late)
    JN("lost", k.lost)
    JN("malformed", k.malformed + k.wrong_partition)
    JN("commits", j->n.commits)
    JN("acks", j->n.acks)
    JN("ack_errors", j->n.ack_errors)
    JN("consumer_resets", j->n.resets)
    JN("reconnects", j->n.reconnects)
    JN("fetch_errors", j->n.fetch_errors)
#undef JN
    json_object_set_new(o, "commit_ms_avg",
                        json_real(j->n.commits ? j->n.commit_ms_total / (double)j->n.commits : 0));
    json_t *lat = json_object();
    json_object_set_new(lat, "judged_p50_ms", json_real(lat_quantile(j->lat, 0.5) / 1000));
    json_object_set_new(lat, "judged_p99_ms", json_real(lat_quantile(j->lat, 0.99) / 1000));
    json_object_set_new(lat, "alert_p50_ms", json_real(lat_quantile(j->lat_alert, 0.5) / 1000));
    json_object_set_new(lat, "alert_p99_ms", json_real(lat_quantile(j->lat_alert, 0.99) / 1000));
    json_object_set_new(o, "latency", lat);
    json_t *arr = json_array();
    fm_sensor_each(j->m, sensor_one, arr);
    json_object_set_new(o, "sensors", arr);
    return o;
}

static void sensor_line(void *user, const char *sensor, uint64_t records, uint64_t dropped,
                        kw_ts clock, bool ended)
{
    char tsb[40];
    fprintf(user, "keywarden: fleet sensor %s: %llu records sent, %llu lost by its spool, %s, "
                  "at %s\n",
            sensor, (unsigned long long)records, (unsigned long long)dropped,
            ended ? "ended" : "running", kw_ts_format(clock, tsb, sizeof tsb));
}

void fj_print_summary(struct fj *j, FILE *f)
{
    struct fm_counters k;
    fm_get_counters(j->m, &k);
    fprintf(f,
            "keywarden: fleet judge: %zu sources; %llu records judged (%llu transactions, %llu "
            "TLS sessions, %llu flows, %llu marks); %llu duplicates skipped, %llu late, %llu "
            "lost; %llu commits\n",
            j->n_src, (unsigned long long)k.released, (unsigned long long)j->n.txns,
            (unsigned long long)j->n.tls,
            (unsigned long long)j->n.flows, (unsigned long long)j->n.marks,
            (unsigned long long)k.duplicates, (unsigned long long)k.late,
            (unsigned long long)k.lost, (unsigned long long)j->n.commits);
    fm_sensor_each(j->m, sensor_line, f);
}
