/* fleet_sensor: the sensor side of the fleet (see fleet_sensor.h). */
#include "fleet_sensor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet_spool.h"
#include "fleet_wire.h"
#include "kw_cond.h"
#include "kw_log.h"
#include "kw_thread.h"
#include "rules.h"

#define QUEUE_MAX (8u << 20) /* hand-over queue, bytes per side */
#define INFLIGHT_MAX 4096    /* published, not yet acknowledged */
#define HEARTBEAT_US 100000 /* wall time between plain marks to a quiet partition */
#define TICK_US 50000       /* packet time between the pipeline's calls of fwd_tick */
#define INFLIGHT_WAIT_US KW_TS_SEC(15) /* published, no answer: sent again */

/* A record is known by (epoch, partition, pseq): a restarted sensor
 * sends its earlier run's spooled records next to its own, numbered anew
 * in the same partitions. */
struct infl {
    uint64_t epoch;
    uint32_t part;
    uint64_t pseq;
    struct fsp_pos end; /* the spool position after the record */
    kw_ts sent;         /* wall */
    bool acked;
};

struct ackres {
    uint64_t epoch;
    uint32_t part;
    uint64_t pseq;
    bool ok;
};

struct qbuf {
    uint8_t *p;
    size_t len;
};

struct fs_counters {
    _Atomic uint64_t records, txns, tls, flows, marks, spooled, published, resent;
    _Atomic uint64_t dropped_txns, dropped_flows, dropped_marks, queue_dropped, disconnects;
    _Atomic int64_t dropped_first, dropped_last;
    _Atomic uint64_t waiting;
};

struct fs {
    char sensor[FW_SENSOR_MAX];
    uint32_t parts;
    uint64_t epoch;
    bool block;
    struct pipeline_forward fwd;
    struct fn_opts nopts;
    char url[1024];
    /* producer (the forward's thread) */
    uint64_t gseq;
    kw_ts now;
    int64_t hour;
    kw_ts hb_wall;
    uint8_t *busy; /* [parts]: a record went there since the last heartbeat */
    uint8_t *enc;
    size_t enc_cap;
    /* hand-over, and acknowledgements from libnats' thread */
    pthread_mutex_t mu;
    pthread_cond_t cv_space, cv_work;
    struct qbuf front, back;
    struct ackres *acks, *acks_back; /* libnats' side, the publisher's side */
    size_t n_acks, cap_acks, cap_back;
    bool stop;
    int64_t idle_ms;
    /* publisher thread */
    pthread_t th;
    bool started;
    struct fn_conn *nc;
    struct fsp *spool;
    uint64_t spool_max, reserve;
    uint64_t *pseq;
    struct fsp_pos rd;
    struct infl *inf;
    size_t inf_head, inf_n;
    bool was_up, stream_ok;
    uint64_t seen_disconnects;
    kw_ts stream_try, progress;
    uint64_t dropped_total;
    uint8_t *mark_buf;
    struct fs_counters n;
};

/* ---- producer ---------------------------------------------------------- */

static void enqueue(struct fs *s, const uint8_t *rec, size_t len)
{
    pthread_mutex_lock(&s->mu);
    while (s->front.len + 4 + len > QUEUE_MAX) {
        if (!s->block) {
            atomic_fetch_add(&s->n.queue_dropped, 1);
            pthread_mutex_unlock(&s->mu);
            return;
        }
        pthread_cond_wait(&s->cv_space, &s->mu);
    }
    uint32_t l = (uint32_t)len;
    memcpy(s->front.p + s->front.len, &l, 4);
    memcpy(s->front.p + s->front.len + 4, rec, len);
    bool wake = s->front.len == 0;
    s->front.len += 4 + len;
    if (wake) pthread_cond_signal(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
}

static void head_init(struct fs *s, struct fw_head *h, uint8_t kind, uint32_t part, kw_ts now)
{
    if (now > s->now) s->now = now;
    memset(h, 0, sizeof *h);
    h->kind = kind;
    h->partition = part;
    s->busy[part] = 1;
    h->epoch = s->epoch;
    h->gseq = ++s->gseq;
    h->time = s->now;
    memcpy(h->sensor, s->sensor, sizeof h->sensor);
}

static void emit(struct fs *s, const struct fw_head *h, const struct fw_body *b)
{
    size_t n = fw_encode(h, b, s->enc, s->enc_cap);
    if (!n) { /* cannot happen with a valid head: the buffer holds any record */
        kw_warn("fleet: a record could not be encoded");
        return;
    }
    atomic_fetch_add(&s->n.records, 1);
    enqueue(s, s->enc, n);
}

static void marks(struct fs *s, uint8_t flags, kw_ts now)
{
    struct fw_mark m = {.records = atomic_load(&s->n.records)};
    for (uint32_t p = 0; p < s->parts; p++) {
        if (!flags && s->busy[p]) { /* its records told the time since the last heartbeat */
            s->busy[p] = 0;
            continue;
        }
        struct fw_head h;
        head_init(s, &h, FW_MARK, p, now);
        h.flags = flags;
        atomic_fetch_add(&s->n.marks, 1);
        emit(s, &h, &(struct fw_body){.mark = &m});
    }
}

static void fwd_txn(void *user, kw_ts now, const struct kw_txn *t)
{
    struct fs *s = user;
    struct fw_head h;
    head_init(s, &h, FW_TXN, fw_partition_txn(t, s->parts), now);
    atomic_fetch_add(&s->n.txns, 1);
    emit(s, &h, &(struct fw_body){.txn = (struct kw_txn *)t}); /* read only */
}

static void fwd_tls(void *user, kw_ts now, const struct kw_txn *t, const struct tls_info *ti)
{
    struct fs *s = user;
    struct fw_head h;
    head_init(s, &h, FW_TLS, fw_partition_txn(t, s->parts), now);
    atomic_fetch_add(&s->n.tls, 1);
    /* read only: the body pointers are not const for the decoder's sake */
    emit(s, &h, &(struct fw_body){.txn = (struct kw_txn *)t, .tls = (struct tls_info *)ti});
}

static void fwd_flow(void *user, kw_ts now, const struct flow *f, const char *app, const char *sni,
                     int64_t http_txns, enum flow_end_reason why, kw_ts ts)
{
    struct fs *s = user;
    struct fw_flow x;
    memset(&x, 0, sizeof x);
    x.f = *f;
    x.f.app = NULL;
    snprintf(x.app, sizeof x.app, "%s", app ? app : "");
    snprintf(x.sni, sizeof x.sni, "%s", sni ? sni : "");
    x.http_txns = http_txns;
    x.why = (uint8_t)why;
    x.ts = ts;
    struct fw_head h;
    head_init(s, &h, FW_FLOW, fw_partition_addr(&f->cli, s->parts), now);
    atomic_fetch_add(&s->n.flows, 1);
    emit(s, &h, &(struct fw_body){.flow = &x});
}

/* The pipeline's tick, every TICK_US of packet time: a TICK mark on
 * entering a new hour (baseline_advance acts on hours), else, every
 * HEARTBEAT_US of wall time, a plain mark to each partition that got no
 * record since the last heartbeat. A judge releases a record only when
 * every source's clock passed it, so this bounds how long a record waits
 * for quiet partitions (docs/fleet.md: latency). */
static void fwd_tick(void *user, kw_ts now)
{
    struct fs *s = user;
    if (now > s->now) s->now = now;
    int64_t hour = s->now / ((kw_ts)3600 * 1000000);
    kw_ts wall = kw_ts_wall();
    if (hour != s->hour) {
        s->hour = hour;
        s->hb_wall = wall;
        marks(s, FW_MARK_TICK, now);
    } else if (wall - s->hb_wall >= HEARTBEAT_US) {
        s->hb_wall = wall;
        marks(s, 0, now);
    }
}

/* ---- acknowledgements (libnats' thread) ------------------------------- */

static void on_ack(void *user, const char *msgid, bool ok)
{
    struct fs *s = user;
    /* <sensor>:<epoch>:<partition>:<pseq> */
    const char *c3 = strrchr(msgid, ':');
    if (!c3 || c3 == msgid) return;
    const char *c2 = c3 - 1;
    while (c2 > msgid && *c2 != ':')
        c2--;
    if (*c2 != ':') return;
    const char *c1 = c2 - 1;
    while (c1 > msgid && *c1 != ':')
        c1--;
    if (*c1 != ':') return;
    struct ackres a = {.epoch = strtoull(c1 + 1, NULL, 10),
                       .part = (uint32_t)strtoul(c2 + 1, NULL, 10),
                       .pseq = strtoull(c3 + 1, NULL, 10),
                       .ok = ok};
    pthread_mutex_lock(&s->mu);
    if (s->n_acks == s->cap_acks) {
        size_t cap = s->cap_acks ? s->cap_acks * 2 : 1024;
        struct ackres *x = realloc(s->acks, cap * sizeof *x);
        if (x) {
            s->acks = x;
            s->cap_acks = cap;
        }
    }
    if (s->n_acks < s->cap_acks) s->acks[s->n_acks++] = a;
    /* (out of memory: the ack is lost; the publish times out and is sent
     * again, which the duplicate window absorbs) */
    pthread_cond_signal(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
}

/* ---- publisher thread -------------------------------------------------- */

static void count_drop(struct fs *s, const uint8_t *rec, kw_ts t)
{
    uint8_t kind = rec[2];
    atomic_fetch_add(kind == FW_TXN || kind == FW_TLS ? &s->n.dropped_txns
                     : kind == FW_FLOW ? &s->n.dropped_flows
                                       : &s->n.dropped_marks,
                     1);
    if (!s->dropped_total++) {
        atomic_store(&s->n.dropped_first, t);
        kw_warn("fleet: the spool is full (%llu bytes): records are dropped and counted until "
                "NATS takes them again",
                (unsigned long long)s->spool_max);
    }
    atomic_store(&s->n.dropped_last, t);
}

/* A mark carries the exact count of what was dropped before it: this
 * thread knows it only now, so the mark is written again. */
static const uint8_t *mark_fill(struct fs *s, const uint8_t *rec, size_t *len)
{
    struct fw_head h;
    struct fw_mark m;
    if (fw_decode(rec, *len, &h, &(struct fw_body){.mark = &m}) != KW_E_OK) return rec;
    m.dropped = s->dropped_total;
    size_t n = fw_encode(&h, &(struct fw_body){.mark = &m}, s->mark_buf, 512);
    if (!n) return rec;
    *len = n;
    return s->mark_buf;
}

static void apply_acks(struct fs *s, size_t n);
static void publish_more(struct fs *s);
static void connection(struct fs *s);
static void wait_work_locked(struct fs *s);
static size_t swap_acks_locked(struct fs *s);

/* Room for `need` more bytes under `limit`. An offline replay (s->block)
 * whose NATS is up waits for JetStream to take what the spool holds
 * instead of dropping: the file is there to be read at the pace NATS
 * takes it. Live capture never waits here (the packet path must not
 * stall behind the network), nor does anyone while NATS is away or makes
 * no progress for 30 s: then the record is dropped and counted. */
static bool make_room(struct fs *s, uint64_t need, uint64_t limit)
{
    for (;;) {
        struct fsp_stats st;
        fsp_get_stats(s->spool, &st);
        if (st.bytes + need <= limit) return true;
        if (!s->block) return false;
        connection(s);
        if (!s->was_up || !s->stream_ok || kw_ts_wall() - s->progress > KW_TS_SEC(30))
            return false;
        if (fsp_flush(s->spool) != KW_E_OK) return false;
        publish_more(s);
        pthread_mutex_lock(&s->mu);
        if (!s->n_acks) wait_work_locked(s);
        size_t n = swap_acks_locked(s);
        pthread_mutex_unlock(&s->mu);
        apply_acks(s, n);
    }
}

static void spool_one(struct fs *s, const uint8_t *rec, size_t len)
{
    struct fsp_stats st;
    fsp_get_stats(s->spool, &st);
    uint8_t kind = rec[2], flags = rec[3];
    uint32_t part = (uint32_t)rec[4] | (uint32_t)rec[5] << 8 | (uint32_t)rec[6] << 16 |
                    (uint32_t)rec[7] << 24;
    kw_ts t = 0;
    for (int i = 7; i >= 0; i--)
        t = (kw_ts)((uint64_t)t << 8 | rec[32 + i]);
    if (part >= s->parts) return;
    if (kind == FW_MARK && !flags && st.bytes + len > s->spool_max - s->reserve)
        return; /* a plain mark only tells time; later records tell it too */
    /* The reserve keeps room for marks once records no longer fit: TICK
     * marks may take half of it, END marks (with the run's final count of
     * what was dropped) all of it, so hours of TICKs cannot crowd out the
     * END that tells the judge what was lost. */
    uint64_t limit = kind != FW_MARK             ? s->spool_max - s->reserve
                     : (flags & FW_MARK_END) ? s->spool_max
                                             : s->spool_max - s->reserve / 2;
    if (st.bytes + 8 + len > limit && !make_room(s, 8 + len, limit)) {
        count_drop(s, rec, t);
        return;
    }
    uint8_t *w = (uint8_t *)rec; /* our own queue's bytes */
    if (kind == FW_MARK) w = (uint8_t *)mark_fill(s, rec, &len);
    fw_set_pseq(w, s->pseq[part] + 1);
    enum kw_err e = fsp_append(s->spool, w, len);
    if (e != KW_E_OK) {
        count_drop(s, rec, t);
        return;
    }
    s->pseq[part]++;
    atomic_fetch_add(&s->n.spooled, 1);
    s->progress = kw_ts_wall();
}

/* Up to 20 ms for the packet path or libnats (s->mu held). */
static void wait_work_locked(struct fs *s)
{
    kw_cond_wait_until(&s->cv_work, &s->mu, kw_mono_now() + 20000);
}

/* The acknowledgements libnats queued become the publisher's (s->mu held). */
static size_t swap_acks_locked(struct fs *s)
{
    struct ackres *a = s->acks;
    s->acks = s->acks_back;
    s->acks_back = a;
    size_t cap = s->cap_acks;
    s->cap_acks = s->cap_back;
    s->cap_back = cap;
    size_t n = s->n_acks;
    s->n_acks = 0;
    return n;
}

static bool take_work(struct fs *s, size_t *n_acks, bool *stopping)
{
    pthread_mutex_lock(&s->mu);
    /* also when stopping: waiting for NATS to take the rest must not spin */
    if (!s->front.len && !s->n_acks) wait_work_locked(s);
    struct qbuf q = s->front;
    s->front = s->back;
    s->back = q;
    s->front.len = 0;
    *n_acks = swap_acks_locked(s);
    *stopping = s->stop;
    pthread_cond_broadcast(&s->cv_space);
    pthread_mutex_unlock(&s->mu);
    return s->back.len || *n_acks;
}

static void rewind_all(struct fs *s)
{
    fn_publish_forget(s->nc);
    atomic_fetch_add(&s->n.resent, s->inf_n);
    s->inf_n = 0;
    s->inf_head = 0;
    s->rd = fsp_acked(s->spool);
}

static void apply_acks(struct fs *s, size_t n)
{
    bool failed = false;
    for (size_t i = 0; i < n; i++) {
        const struct ackres *a = &s->acks_back[i];
        for (size_t k = 0; k < s->inf_n; k++) {
            struct infl *f = &s->inf[(s->inf_head + k) % INFLIGHT_MAX];
            if (f->part == a->part && f->pseq == a->pseq && f->epoch == a->epoch) {
                if (a->ok) f->acked = true;
                else failed = true;
                break;
            }
        }
    }
    struct fsp_pos upto = {0, 0};
    bool moved = false;
    while (s->inf_n && s->inf[s->inf_head].acked) {
        upto = s->inf[s->inf_head].end;
        moved = true;
        s->inf_head = (s->inf_head + 1) % INFLIGHT_MAX;
        s->inf_n--;
        atomic_fetch_add(&s->n.published, 1);
    }
    if (moved) {
        fsp_release(s->spool, upto);
        s->progress = kw_ts_wall();
    }
    /* an answer that never came (libnats gives up after FN_PUB_WAIT_MS;
     * this is the last resort) must not hold the window for ever */
    if (s->inf_n && kw_ts_wall() - s->inf[s->inf_head].sent > INFLIGHT_WAIT_US) failed = true;
    if (failed) {
        s->stream_ok = false; /* a server restarted without it? check before sending again */
        rewind_all(s);
    }
}

static void publish_more(struct fs *s)
{
    char subj[FN_SUBJECT_MAX], id[FN_MSGID_MAX];
    while (s->inf_n < INFLIGHT_MAX) {
        struct fsp_pos at = s->rd;
        const uint8_t *rec;
        size_t len;
        if (fsp_read(s->spool, &at, &rec, &len) != KW_E_OK) return;
        struct fw_head h;
        if (fw_decode(rec, len, &h, NULL) != KW_E_OK) { /* cannot be: we wrote it */
            s->rd = at;
            continue;
        }
        fn_subject(subj, h.partition, h.sensor);
        snprintf(id, sizeof id, "%s:%llu:%u:%llu", h.sensor, (unsigned long long)h.epoch,
                 (unsigned)h.partition, (unsigned long long)h.pseq);
        if (fn_publish(s->nc, subj, rec, len, id) != KW_E_OK) return;
        s->inf[(s->inf_head + s->inf_n) % INFLIGHT_MAX] =
            (struct infl){.epoch = h.epoch, .part = h.partition, .pseq = h.pseq, .end = at,
                          .sent = kw_ts_wall()};
        s->inf_n++;
        s->rd = at;
    }
}

static void connection(struct fs *s)
{
    bool up = fn_up(s->nc);
    uint64_t lost = fn_disconnects(s->nc);
    if (lost != s->seen_disconnects) { /* also an outage over before this look */
        atomic_fetch_add(&s->n.disconnects, lost - s->seen_disconnects);
        s->seen_disconnects = lost;
        kw_warn("fleet: NATS connection lost: spooling (%s)", s->url);
        if (s->inf_n) rewind_all(s);
        s->stream_ok = false; /* the server may have come back without it */
    }
    if (!up && s->inf_n) rewind_all(s);
    if (up && !s->was_up) kw_info("fleet: connected to NATS (%s)", s->url);
    s->was_up = up;
    kw_ts now = kw_ts_wall();
    if (up && !s->stream_ok && now - s->stream_try >= KW_TS_SEC(1)) {
        char err[512];
        s->stream_try = now;
        s->stream_ok = fn_stream_ensure(s->nc, err, sizeof err) == KW_E_OK;
        if (!s->stream_ok) kw_warn("fleet: %s", err);
    }
}

static void *pub_main(void *arg)
{
    struct fs *s = arg;
    kw_thread_role("kw-fleet", false);
    s->progress = kw_ts_wall();
    for (;;) {
        size_t n_acks = 0;
        bool stopping = false;
        take_work(s, &n_acks, &stopping);
        /* before spooling: spool_one may wait for room (make_room), which
         * takes the acknowledgements that arrive meanwhile itself */
        apply_acks(s, n_acks);
        for (size_t off = 0; off + 4 <= s->back.len;) {
            uint32_t l;
            memcpy(&l, s->back.p + off, 4);
            spool_one(s, s->back.p + off + 4, l);
            off += 4 + l;
        }
        s->back.len = 0;
        if (fsp_flush(s->spool) != KW_E_OK) kw_warn("fleet: spool write failed; retrying");
        connection(s);
        if (s->was_up && s->stream_ok) publish_more(s);
        if (stopping && !s->front.len && !s->inf_n && fsp_empty(s->spool)) break;
        if (stopping && kw_ts_wall() - s->progress > s->idle_ms * 1000) break;
    }
    return NULL;
}

/* ---- life cycle -------------------------------------------------------- */

void fs_config_from_rules(const struct rules_config *rc, const char *db_path, bool offline,
                          struct fs_config *c, char *spool_buf, size_t spool_len)
{
    memset(c, 0, sizeof *c);
    c->sensor = rc->fleet.sensor;
    c->partitions = rc->fleet.partitions;
    fn_opts_from_config(rc, "keywarden sensor", &c->nats);
    if (rc->fleet.spool) {
        snprintf(spool_buf, spool_len, "%s", rc->fleet.spool);
    } else {
        const char *slash = strrchr(db_path, '/');
        int dir = slash ? (int)(slash - db_path) : 1;
        snprintf(spool_buf, spool_len, "%.*s/spool-%s", dir, slash ? db_path : ".",
                 rc->fleet.sensor);
    }
    c->spool_dir = spool_buf;
    c->spool_max = rc->fleet.spool_max;
    c->block_when_full = offline;
}

static enum kw_err alloc_all(struct fs *s)
{
    s->enc_cap = fw_max_size();
    s->enc = malloc(s->enc_cap);
    s->front.p = malloc(QUEUE_MAX);
    s->back.p = malloc(QUEUE_MAX);
    s->pseq = calloc(s->parts, sizeof *s->pseq);
    s->inf = calloc(INFLIGHT_MAX, sizeof *s->inf);
    s->mark_buf = malloc(512);
    s->busy = calloc(s->parts, 1);
    bool ok = s->enc && s->front.p && s->back.p && s->pseq && s->inf && s->mark_buf && s->busy;
    return ok ? KW_E_OK : KW_E_NOMEM;
}

enum kw_err fs_new(const struct fs_config *c, struct fs **out)
{
    if (!fw_sensor_name_ok(c->sensor) || !c->partitions) return KW_E_INVAL;
    struct fs *s = calloc(1, sizeof *s);
    if (!s) return KW_E_NOMEM;
    snprintf(s->sensor, sizeof s->sensor, "%s", c->sensor);
    snprintf(s->url, sizeof s->url, "%s", c->nats.url);
    s->parts = c->partitions;
    s->block = c->block_when_full;
    s->epoch = (uint64_t)kw_ts_wall();
    s->hour = INT64_MIN;
    s->spool_max = c->spool_max;
    s->reserve = 4096ull * c->partitions < c->spool_max / 2 ? 4096ull * c->partitions
                                                            : c->spool_max / 2;
    s->fwd = (struct pipeline_forward){
        .user = s,
        .txn = fwd_txn,
        .flow = fwd_flow,
        .tick = fwd_tick,
        .tls = fwd_tls,
        .tick_us = TICK_US};
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv_space, NULL);
    kw_cond_init(&s->cv_work);
    enum kw_err e = alloc_all(s);
    if (e != KW_E_OK || (e = fsp_open(c->spool_dir, c->spool_max, &s->spool)) != KW_E_OK)
        goto fail;
    s->rd = fsp_acked(s->spool);
    if (!fsp_empty(s->spool))
        kw_info("fleet: the spool holds records of an earlier run: they are sent first");
    s->nopts = c->nats;
    s->nopts.url = s->url;
    s->nopts.on_ack = on_ack;
    s->nopts.user = s;
    char err[512] = "";
    if ((e = fn_open(&s->nopts, 0, &s->nc, err, sizeof err)) != KW_E_OK) {
        kw_err_log("fleet: %s", err);
        goto fail;
    }
    if (pthread_create(&s->th, NULL, pub_main, s) != 0) {
        e = KW_E_NOMEM;
        goto fail;
    }
    s->started = true;
    *out = s;
    return KW_E_OK;
fail:
    fs_destroy(s);
    return e;
}

const struct pipeline_forward *fs_forward(struct fs *s)
{
    return &s->fwd;
}

void fs_finish(struct fs *s, kw_ts now, int64_t idle_ms)
{
    if (!s->started) return;
    marks(s, FW_MARK_END, now);
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    s->idle_ms = idle_ms;
    pthread_cond_signal(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    s->started = false;
    struct fsp_pos at = fsp_acked(s->spool);
    const uint8_t *rec;
    size_t len;
    uint64_t left = 0;
    while (fsp_read(s->spool, &at, &rec, &len) == KW_E_OK)
        left++;
    atomic_store(&s->n.waiting, left);
}

enum kw_err fs_finish_run(struct fs *s, kw_ts now, bool quiet)
{
    fs_finish(s, now, 30000);
    struct fs_stats st;
    fs_get_stats(s, &st);
    uint64_t lost = st.dropped_txns + st.dropped_flows + st.dropped_marks;
    if (!quiet || lost || st.queue_dropped)
        fprintf(stderr,
                "keywarden: fleet sensor %s: %llu records (%llu transactions, %llu TLS sessions, "
                "%llu flows, %llu marks); %llu acknowledged by NATS (%llu sent again); %llu left "
                "in the spool%s\n",
                s->sensor, (unsigned long long)st.records, (unsigned long long)st.txns,
                (unsigned long long)st.tls,
                (unsigned long long)st.flows, (unsigned long long)st.marks,
                (unsigned long long)st.published, (unsigned long long)st.resent,
                (unsigned long long)st.waiting,
                st.waiting ? " (sent by the next run)" : "");
    if (lost) {
        char a[40], b[40];
        fprintf(stderr,
                "keywarden: fleet sensor %s: LOST %llu records, the spool was full: %llu "
                "transactions, %llu flows, %llu marks, packet time %s to %s\n",
                s->sensor, (unsigned long long)lost, (unsigned long long)st.dropped_txns,
                (unsigned long long)st.dropped_flows, (unsigned long long)st.dropped_marks,
                kw_ts_format(st.dropped_first, a, sizeof a),
                kw_ts_format(st.dropped_last, b, sizeof b));
    }
    if (st.queue_dropped)
        fprintf(stderr,
                "keywarden: fleet sensor %s: LOST %llu records: the publisher fell behind the "
                "capture (hand-over queue full)\n",
                s->sensor, (unsigned long long)st.queue_dropped);
    return lost || st.queue_dropped ? KW_E_LIMIT : KW_E_OK;
}

void fs_destroy(struct fs *s)
{
    if (!s) return;
    if (s->started) fs_finish(s, s->now, 0);
    fn_close(s->nc); /* before the spool: no acknowledgement arrives after */
    fsp_close(s->spool);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv_space);
    pthread_cond_destroy(&s->cv_work);
    free(s->enc);
    free(s->front.p);
    free(s->back.p);
    free(s->acks);
    free(s->acks_back);
    free(s->pseq);
    free(s->inf);
    free(s->mark_buf);
    free(s->busy);
    free(s);
}

void fs_get_stats(struct fs *s, struct fs_stats *o)
{
    memset(o, 0, sizeof *o);
    o->records = atomic_load(&s->n.records);
    o->txns = atomic_load(&s->n.txns);
    o->tls = atomic_load(&s->n.tls);
    o->flows = atomic_load(&s->n.flows);
    o->marks = atomic_load(&s->n.marks);
    o->spooled = atomic_load(&s->n.spooled);
    o->published = atomic_load(&s->n.published);
    o->resent = atomic_load(&s->n.resent);
    o->dropped_txns = atomic_load(&s->n.dropped_txns);
    o->dropped_flows = atomic_load(&s->n.dropped_flows);
    o->dropped_marks = atomic_load(&s->n.dropped_marks);
    o->dropped_first = atomic_load(&s->n.dropped_first);
    o->dropped_last = atomic_load(&s->n.dropped_last);
    o->queue_dropped = atomic_load(&s->n.queue_dropped);
    o->disconnects = atomic_load(&s->n.disconnects);
    o->waiting = atomic_load(&s->n.waiting);
    if (!s->started && s->spool) { /* the spool is the publisher's while it runs */
        struct fsp_stats st;
        fsp_get_stats(s->spool, &st);
        o->spool_bytes = st.bytes;
        o->spool_io_errors = st.io_errors;
        o->spool_cut = st.cut;
    }
}

json_t *fs_stats_json(struct fs *s)
{
    struct fs_stats st;
    fs_get_stats(s, &st);
    json_t *o = json_object();
#define FJ(n) json_object_set_new(o, #n, json_integer((json_int_t)st.n));
    FJ(records) FJ(txns) FJ(tls) FJ(flows) FJ(marks) FJ(spooled) FJ(published) FJ(resent)
    FJ(dropped_txns) FJ(dropped_flows) FJ(dropped_marks) FJ(queue_dropped) FJ(disconnects)
    FJ(waiting)
#undef FJ
    char tsb[40];
    if (st.dropped_first) {
        json_object_set_new(o, "dropped_first",
                            json_string(kw_ts_format(st.dropped_first, tsb, sizeof tsb)));
        json_object_set_new(o, "dropped_last",
                            json_string(kw_ts_format(st.dropped_last, tsb, sizeof tsb)));
    }
    json_object_set_new(o, "sensor", json_string(s->sensor));
    return o;
}
