/* fleet_merge: sources in order, merged in event time (see fleet_merge.h).
 *
 * A source keeps the messages fetched from its consumer in stream order
 * (a ring of entries). Its candidate is the entry with the next expected
 * pseq of its current epoch; entries that can no longer be judged
 * (duplicates, older epochs) are marked done on the way. Done entries
 * leave the front of the ring, which moves the source's acknowledgement
 * point. */
#include "fleet_merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fm_entry {
    uint64_t sseq;
    struct fw_head h;
    uint8_t *data;
    size_t len;
    char *reply;
    bool done;
};

struct fm_src {
    uint32_t partition;
    char sensor[FW_SENSOR_MAX];
    struct fm_entry **q; /* ring, stream order */
    size_t head, n, cap;
    uint64_t epoch, next; /* current epoch; next pseq expected */
    uint64_t gseq;        /* of the last record released */
    kw_ts clock;          /* time of the last record released */
    bool ended, known, drained;
    kw_ts gap_since;
    uint64_t ack_sseq;
    char ack_reply[FM_REPLY_MAX];
    bool ack_moved;
    struct fm_entry *cand; /* fm_next's scratch */
};

struct fm_run { /* one run (epoch) of a sensor: what its marks said last */
    uint64_t epoch, records, dropped;
};

struct fm_sensor {
    char name[FW_SENSOR_MAX];
    struct fm_run *runs; /* a sensor restarted with its spool sends two runs at once */
    size_t n_runs, cap_runs;
    kw_ts clock;
};

struct fm {
    struct fm_config cfg;
    struct fm_src *src;
    size_t n_src, cap_src;
    struct fm_position *pos; /* loaded, not yet claimed by a source */
    size_t n_pos, cap_pos;
    struct fm_sensor *sen;
    size_t n_sen, cap_sen;
    struct fw_head last; /* the last record released in order: the merge's position */
    bool have_last;
    int waiting;
    struct fm_counters cnt;
};

static bool grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return true;
    size_t c = *cap ? *cap * 2 : 16;
    void *x = realloc(*p, c * size);
    if (!x) return false;
    *p = x;
    *cap = c;
    return true;
}

enum kw_err fm_new(const struct fm_config *c, struct fm **out)
{
    struct fm *m = calloc(1, sizeof *m);
    if (!m) return KW_E_NOMEM;
    m->cfg = *c;
    if (!m->cfg.source_max) m->cfg.source_max = 4096;
    m->waiting = -1;
    *out = m;
    return KW_E_OK;
}

static void entry_free(struct fm_entry *e)
{
    free(e);
}

void fm_destroy(struct fm *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_src; i++) {
        struct fm_src *s = &m->src[i];
        for (size_t k = 0; k < s->n; k++)
            entry_free(s->q[(s->head + k) % s->cap]);
        free(s->q);
    }
    free(m->src);
    free(m->pos);
    for (size_t i = 0; i < m->n_sen; i++)
        free(m->sen[i].runs);
    free(m->sen);
    free(m);
}

/* ---- sources and positions --------------------------------------------- */

enum kw_err fm_load_position(struct fm *m, const struct fm_position *p)
{
    if (!grow((void **)&m->pos, &m->cap_pos, m->n_pos, sizeof *m->pos)) return KW_E_NOMEM;
    m->pos[m->n_pos++] = *p;
    return KW_E_OK;
}

int fm_source(struct fm *m, uint32_t partition, const char *sensor)
{
    for (size_t i = 0; i < m->n_src; i++)
        if (m->src[i].partition == partition && !strcmp(m->src[i].sensor, sensor)) return (int)i;
    if (!grow((void **)&m->src, &m->cap_src, m->n_src, sizeof *m->src)) return -1;
    struct fm_src *s = &m->src[m->n_src];
    memset(s, 0, sizeof *s);
    s->partition = partition;
    snprintf(s->sensor, sizeof s->sensor, "%s", sensor);
    s->cap = m->cfg.source_max;
    s->q = calloc(s->cap, sizeof *s->q);
    if (!s->q) return -1;
    for (size_t i = 0; i < m->n_pos; i++) {
        const struct fm_position *p = &m->pos[i];
        if (p->partition != partition || strcmp(p->sensor, sensor) != 0) continue;
        s->epoch = p->epoch;
        s->next = p->pseq + 1;
        s->gseq = p->gseq;
        s->clock = p->clock;
        s->ended = p->ended;
        s->known = true;
    }
    return (int)m->n_src++;
}

size_t fm_sources(const struct fm *m)
{
    return m->n_src;
}

bool fm_wants(const struct fm *m, int src, size_t *n)
{
    const struct fm_src *s = &m->src[src];
    *n = s->cap - s->n;
    return s->n < s->cap;
}

void fm_set_drained(struct fm *m, int src, bool drained)
{
    m->src[src].drained = drained;
}

enum kw_err fm_push(struct fm *m, int src, const uint8_t *data, size_t len, uint64_t stream_seq,
                    const char *reply)
{
    struct fm_src *s = &m->src[src];
    if (s->n == s->cap) return KW_E_LIMIT;
    m->cnt.messages++;
    struct fw_head h;
    size_t rl = reply ? strnlen(reply, FM_REPLY_MAX - 1) : 0;
    struct fm_entry *e = malloc(sizeof *e + len + rl + 1);
    if (!e) return KW_E_NOMEM;
    memset(e, 0, sizeof *e);
    e->sseq = stream_seq;
    e->data = (uint8_t *)(e + 1);
    e->len = len;
    memcpy(e->data, data, len);
    e->reply = (char *)e->data + len;
    memcpy(e->reply, reply ? reply : "", rl);
    e->reply[rl] = 0;
    if (fw_decode(data, len, &h, NULL) != KW_E_OK || strcmp(h.sensor, s->sensor) != 0) {
        m->cnt.malformed++;
        e->done = true;
    } else if (h.partition != s->partition) {
        m->cnt.wrong_partition++;
        e->done = true;
    }
    e->h = h;
    s->q[(s->head + s->n) % s->cap] = e;
    s->n++;
    return KW_E_OK;
}

/* ---- a source's next record -------------------------------------------- */

static void pop_done(struct fm_src *s)
{
    while (s->n && s->q[s->head]->done) {
        struct fm_entry *e = s->q[s->head];
        s->ack_sseq = e->sseq;
        memcpy(s->ack_reply, e->reply, strlen(e->reply) + 1);
        s->ack_moved = true;
        entry_free(e);
        s->head = (s->head + 1) % s->cap;
        s->n--;
    }
}

/* Skips what cannot be judged; returns the entry with the next pseq, or
 * NULL. Adopts the first epoch, moves to a newer one when the current
 * has nothing left, gives up a gap after FM_GAP_WAIT. */
static struct fm_entry *candidate(struct fm *m, struct fm_src *s, kw_ts wall)
{
    for (int round = 0; round < 4; round++) {
        pop_done(s);
        uint64_t min_same = 0, min_newer = 0;
        for (size_t k = 0; k < s->n; k++) {
            struct fm_entry *e = s->q[(s->head + k) % s->cap];
            if (e->done) continue;
            if (!s->epoch) {
                s->epoch = e->h.epoch;
                s->next = 1;
            }
            if (e->h.epoch < s->epoch || (e->h.epoch == s->epoch && e->h.pseq < s->next)) {
                e->done = true;
                if (e->h.epoch < s->epoch) m->cnt.stale++;
                else m->cnt.duplicates++;
                continue;
            }
            if (e->h.epoch == s->epoch && e->h.pseq == s->next) {
                s->gap_since = 0;
                return e;
            }
            if (e->h.epoch == s->epoch && (!min_same || e->h.pseq < min_same)) min_same = e->h.pseq;
            if (e->h.epoch > s->epoch && (!min_newer || e->h.epoch < min_newer))
                min_newer = e->h.epoch;
        }
        if (min_same) { /* a gap: wait for the resend, for a while */
            if (!s->gap_since) s->gap_since = wall;
            if (wall - s->gap_since < FM_GAP_WAIT) return NULL;
            m->cnt.lost += min_same - s->next;
            s->next = min_same;
            s->gap_since = 0;
            continue;
        }
        if (!min_newer) return NULL;
        s->epoch = min_newer; /* the sensor restarted; what its old run did not send is lost */
        s->next = 1;
        s->ended = false;
    }
    return NULL;
}

/* ---- merge ------------------------------------------------------------- */

static int key_cmp(const struct fw_head *a, const struct fw_head *b)
{
    if (a->time != b->time) return a->time < b->time ? -1 : 1;
    int c = strcmp(a->sensor, b->sensor);
    if (c) return c < 0 ? -1 : 1;
    if (a->epoch != b->epoch) return a->epoch < b->epoch ? -1 : 1;
    if (a->gseq != b->gseq) return a->gseq < b->gseq ? -1 : 1;
    return 0;
}

/* Can nothing earlier than `best` still come from s (which holds no
 * candidate)? Its next record sorts after its last one. */
static bool holds_nothing_before(const struct fm *m, const struct fm_src *s,
                                 const struct fw_head *best, kw_ts most)
{
    if (s->ended) return true;
    if (s->known) {
        struct fw_head last = {.time = s->clock, .epoch = s->epoch, .gseq = s->gseq};
        memcpy(last.sensor, s->sensor, sizeof last.sensor);
        if (key_cmp(&last, best) > 0) return true;
    }
    if (!s->drained) return false; /* more of it is waiting on the server */
    if (!s->known) return true;    /* never heard of: nothing to wait for */
    return most - s->clock > m->cfg.lateness; /* stale: not waited for */
}

static struct fm_sensor *sensor_of(struct fm *m, const char *name)
{
    for (size_t i = 0; i < m->n_sen; i++)
        if (!strcmp(m->sen[i].name, name)) return &m->sen[i];
    if (!grow((void **)&m->sen, &m->cap_sen, m->n_sen, sizeof *m->sen)) return NULL;
    struct fm_sensor *x = &m->sen[m->n_sen++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    return x;
}

static void release(struct fm *m, struct fm_src *s, struct fm_entry *e, struct fm_rec *out)
{
    e->done = true;
    s->next++;
    s->clock = e->h.time;
    s->gseq = e->h.gseq;
    s->known = true;
    out->h = e->h;
    out->data = e->data;
    out->len = e->len;
    out->late = m->have_last && key_cmp(&e->h, &m->last) < 0;
    if (out->late) m->cnt.late++;
    else {
        m->last = e->h;
        m->have_last = true;
    }
    m->cnt.released++;
    struct fm_sensor *x = sensor_of(m, s->sensor);
    if (x && e->h.time > x->clock) x->clock = e->h.time;
    if (e->h.kind != FW_MARK) return;
    if (e->h.flags & FW_MARK_END) s->ended = true;
    struct fw_mark mk;
    struct fw_head h;
    if (!x || fw_decode(e->data, e->len, &h, &(struct fw_body){.mark = &mk}) != KW_E_OK) return;
    struct fm_run *r = NULL;
    for (size_t i = 0; i < x->n_runs && !r; i++)
        if (x->runs[i].epoch == h.epoch) r = &x->runs[i];
    if (!r && grow((void **)&x->runs, &x->cap_runs, x->n_runs, sizeof *x->runs)) {
        r = &x->runs[x->n_runs++];
        *r = (struct fm_run){.epoch = h.epoch};
    }
    if (!r) return;
    if (mk.records > r->records) r->records = mk.records;
    if (mk.dropped > r->dropped) r->dropped = mk.dropped;
}

enum fm_state fm_next(struct fm *m, kw_ts wall, struct fm_rec *out)
{
    struct fm_src *best = NULL;
    kw_ts most = INT64_MIN;
    bool any = false;
    for (size_t i = 0; i < m->n_src; i++) {
        struct fm_src *s = &m->src[i];
        s->cand = candidate(m, s, wall);
        if (s->n) any = true;
        if (s->known && s->clock > most) most = s->clock;
        if (s->cand && s->cand->h.time > most) most = s->cand->h.time;
        if (s->cand && (!best || key_cmp(&s->cand->h, &best->cand->h) < 0)) best = s;
    }
    m->waiting = -1;
    if (!best) return any ? FM_WAIT : FM_EMPTY;
    for (size_t i = 0; i < m->n_src; i++) {
        struct fm_src *s = &m->src[i];
        if (s == best || s->cand) continue;
        if (!holds_nothing_before(m, s, &best->cand->h, most)) {
            m->waiting = (int)i;
            return FM_WAIT;
        }
    }
    release(m, best, best->cand, out);
    return FM_RECORD;
}

bool fm_all_ended(const struct fm *m)
{
    for (size_t i = 0; i < m->n_src; i++) {
        const struct fm_src *s = &m->src[i];
        if (!s->ended) return false;
        for (size_t k = 0; k < s->n; k++)
            if (!s->q[(s->head + k) % s->cap]->done) return false;
    }
    return true;
}

int fm_waiting_for(const struct fm *m)
{
    return m->waiting;
}

kw_ts fm_gap_since(const struct fm *m, int src)
{
    return m->src[src].gap_since;
}

void fm_source_reset(struct fm *m, int src)
{
    struct fm_src *s = &m->src[src];
    for (size_t k = 0; k < s->n; k++)
        entry_free(s->q[(s->head + k) % s->cap]);
    s->head = s->n = 0;
    s->ack_moved = false; /* the new consumer starts at the floor already acknowledged */
}

/* ---- commit and acknowledgement ---------------------------------------- */

void fm_positions(const struct fm *m, void (*fn)(void *user, const struct fm_position *p),
                  void *user)
{
    for (size_t i = 0; i < m->n_src; i++) {
        const struct fm_src *s = &m->src[i];
        if (!s->epoch || !s->next) continue;
        struct fm_position p = {.partition = s->partition,
                                .epoch = s->epoch,
                                .pseq = s->next - 1,
                                .gseq = s->gseq,
                                .clock = s->clock,
                                .ended = s->ended};
        memcpy(p.sensor, s->sensor, sizeof p.sensor);
        fn(user, &p);
    }
}

bool fm_ack_point(struct fm *m, int src, uint64_t *stream_seq, char reply[FM_REPLY_MAX])
{
    struct fm_src *s = &m->src[src];
    pop_done(s);
    if (!s->ack_moved) return false;
    s->ack_moved = false;
    *stream_seq = s->ack_sseq;
    memcpy(reply, s->ack_reply, FM_REPLY_MAX);
    return true;
}

void fm_get_counters(const struct fm *m, struct fm_counters *out)
{
    *out = m->cnt;
}

void fm_sensor_each(const struct fm *m,
                    void (*fn)(void *user, const char *sensor, uint64_t records, uint64_t dropped,
                               kw_ts clock, bool ended),
                    void *user)
{
    for (size_t i = 0; i < m->n_sen; i++) {
        bool ended = true;
        for (size_t k = 0; k < m->n_src; k++)
            if (!strcmp(m->src[k].sensor, m->sen[i].name) && !m->src[k].ended) ended = false;
        uint64_t records = 0, dropped = 0;
        for (size_t r = 0; r < m->sen[i].n_runs; r++) {
            records += m->sen[i].runs[r].records;
            dropped += m->sen[i].runs[r].dropped;
        }
        fn(user, m->sen[i].name, records, dropped, m->sen[i].clock, ended);
    }
}
