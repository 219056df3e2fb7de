/* alerts_int: what alerts.c (judge side), outbox.c (SQLite), deliver.c
 * (delivery thread) and slack.c share. Not a public contract.
 *
 * The one thing to know: the judge thread never touches SQLite. An alert
 * becomes an al_msg, shared (reference counted) by the store job queued to
 * the database writer (dbw.h) and by the delivery thread's items, one per
 * sink; the writer's verdict (new, a replay, or not stored) tells the
 * delivery thread whether to send it. Delivery works from memory and
 * queues each lease and answer to the writer as well: a database that
 * cannot be written neither stops delivery nor makes it send twice. */
#ifndef KW_ALERTS_INT_H
#define KW_ALERTS_INT_H

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>

#include "dbw.h"

#include "alerts.h"
#include "kw_json.h"

#define AL_ID_LEN 32
#define AL_SYSLOG_RING 256
#define AL_SYSLOG_LINE 512

/* Outbox row states (column alert_outbox.state). */
enum al_state { AL_PENDING = 0, AL_DELIVERED = 1, AL_FAILED = 2, AL_DIGESTED = 3 };

/* What the writer made of an alert's store job. */
enum al_verdict {
    AL_V_UNKNOWN = 0, /* not written yet (queued, or the database is locked) */
    AL_V_NEW,         /* stored with its outbox rows: deliver */
    AL_V_REPLAY,      /* the id was already stored (a replayed capture): do not send again */
    AL_V_UNSTORED,    /* the database refused it: deliver from memory only */
    AL_V_FROM_DB,     /* loaded from the outbox of an earlier run */
};

/* Delivery waits this long for the writer's verdict before sending an
 * alert anyway (the database is locked): a replayed alert may then be
 * sent again, which receivers drop by id. */
#define AL_GATE_MS 1000
/* (alert, sink) items delivery holds in memory; more alerts wait in the
 * outbox (stored) or are lost (not stored), both counted. */
#define AL_MEM_MAX 20000
#define AL_FAIL_LIST 32
/* The alert record buffer (struct alerts, used under mu): every string of
 * a transaction at its worst escaping (a control byte is written as six
 * characters), with room for the finding's texts and its evidence. A
 * record larger than this is not written (counted lost, and said). */
#define AL_RECORD_CAP (6 * sizeof(struct kw_txn) + (64u << 10))

/* One alert: the exact EVE record and what delivery and digests need. */
struct al_msg {
    atomic_int refs;
    atomic_int verdict; /* enum al_verdict */
    bool deferred;      /* not taken by delivery (no delivery thread, or memory full) */
    uint8_t sev;
    uint32_t mask; /* sinks that take it (bit i = cfg.sinks[i]) */
    uint64_t findings;
    kw_ts ts;
    char id[AL_ID_LEN + 1];
    char kind[32], who[72], tz[64];
    char *record;
};

/* One open suppression window (dedup entry), fixed size, in a table
 * allocated at alerts_new. */
struct al_window {
    uint8_t key[32];
    bool used;
    uint8_t kind, severity;
    kw_ts start, last;
    uint64_t count, reported;
    char id[AL_ID_LEN + 1];
    char who_key[96], who[72];
    char subject[256];
    char tz[64];
    char ident_id[64], ident_name[128], ident_kind[16], ident_via[16];
    char fp[72], hint[40];
};

/* The windows' table (alerts.c), for alerts_state.c's load. Insert needs a
 * free window: fewer than dedup_max open. */
struct al_window *al_win_find(struct alerts *a, const uint8_t key[32]);
struct al_window *al_win_insert(struct alerts *a, const uint8_t key[32]);
void al_win_remove(struct alerts *a, struct al_window *w);
void al_win_clear(struct alerts *a);

/* An index slot: the window's place in the pool + 1 (0 = free) and the low
 * 32 bits of its key's hash (its home slot, and a cheap first compare). */
struct al_slot {
    uint32_t tag, w;
};

/* The windows by start, for evicting the oldest when dedup_max are open:
 * a min-heap of (start, key) entries. A window that closes leaves its
 * entry behind; an entry whose window is gone or started again is
 * skipped when it comes up. al_age_reset empties it (the table was
 * emptied or loaded); al_age_push adds a window whose start is set. */
struct al_age {
    kw_ts start;
    uint8_t key[32];
};
void al_age_reset(struct alerts *a);
void al_age_push(struct alerts *a, const struct al_window *w);

/* The saved windows' blob (alerts_state.c): this head, then `used` times
 * (u32 place, struct al_window). The place is where the saving process kept
 * the window; a loading process places each window anew under its own hash
 * key. The head's win_cap is the index size (2 x dedup_max, rounded up). */
#define AW_MAGIC 0x31574c41u /* "ALW1" */
struct aw_head {
    uint32_t magic, win_size, win_cap, used;
    int64_t sweep_at;
};

struct al_counters {
    _Atomic uint64_t findings, alerts, suppressed, delivered, failed_permanent, retries;
    _Atomic uint64_t updates, digests, digested, dedup_evicted, db_errors, syslog_dropped;
    _Atomic uint64_t filtered;
    _Atomic uint64_t stored, replayed, not_stored, lost, state_unsaved, mem_full, expired;
    _Atomic int64_t backlog, orphaned;
    /* for the stats record and metrics: alerts by kind and by severity
     * (1 high .. 3 low), and per sink (index as cfg.sinks) */
    _Atomic uint64_t by_kind[ALERT__COUNT], by_severity[4];
    _Atomic uint64_t sink_delivered[ALERTS_MAX_SINKS], sink_failed[ALERTS_MAX_SINKS],
        sink_retries[ALERTS_MAX_SINKS];
};

struct al_deliver;

struct alerts {
    struct alerts_config cfg;
    struct kw_eve *eve;
    char sink_keys[ALERTS_MAX_SINKS][40];

    /* judge side */
    pthread_mutex_t mu; /* submit/drain/destroy may come from two threads */
    sqlite3 *db;        /* migrations and the outbox count at start */
    struct dbw *w;      /* every write */
    bool own_w;
    struct al_window *win;  /* the pool: win_max windows, `used` when open */
    struct al_slot *win_ix; /* win_cap slots (a power of two >= 2 x win_max) */
    uint32_t *win_free;     /* the pool's free windows, a stack */
    unsigned win_cap, win_used, win_max, win_nfree;
    unsigned win_hwm;   /* pool windows below it were handed out at least once */
    struct al_age *age; /* al_age_push */
    unsigned age_n, age_cap;
    bool age_lost; /* a push found no memory: eviction scans the table */
    char *rec;     /* the record being written (AL_RECORD_CAP) */
    kw_ts sweep_at;

    struct al_counters n;

    /* backlog reached zero / changed: delivery signals, drain waits */
    pthread_mutex_t bl_mu;
    pthread_cond_t bl_cv;

    /* syslog lines handed from submit to the delivery thread */
    pthread_mutex_t sl_mu;
    char (*sl_ring)[AL_SYSLOG_LINE];
    unsigned sl_head, sl_len;

    struct al_deliver *dl;

    /* alerts that failed for good, for the summary and `alerts flush` */
    pthread_mutex_t fail_mu;
    struct alerts_failure fails[AL_FAIL_LIST];
    unsigned n_fails;
};

static inline void al_backlog_add(struct alerts *a, int64_t d)
{
    pthread_mutex_lock(&a->bl_mu);
    a->n.backlog += d;
    pthread_cond_broadcast(&a->bl_cv);
    pthread_mutex_unlock(&a->bl_mu);
}

/* alert.c */
const char *al_kind_signature(enum alert_kind k);
const char *al_severity_name(int sev);
void al_who(const struct alert_finding *f, char *key, size_t klen, char *label, size_t llen);
void al_window_key(enum alert_kind k, const char *who_key, const char *subject, uint8_t out[32]);
void al_alert_id(enum alert_kind k, const char *who_key, const char *subject, kw_ts start,
                 const char *extra, char out[AL_ID_LEN + 1]);
/* Writes the EVE alert record of f, with its alert id, into w as one
 * object (the text the outbox, EVE and webhooks get). */
struct kw_jw;
void al_record_write(struct kw_jw *w, const struct alert_finding *f, int sev, const char *id);
/* What the human line of an alert shows, taken from the values the record
 * is written from. */
struct al_line {
    const char *ts; /* the record's timestamp */
    int sev;
    enum alert_kind kind;
    const char *who;        /* identity id, "" when none */
    const struct kw_txn *t; /* the request shown, NULL for an update */
    const char *summary;
    size_t summary_len;
    const char *id;
};
/* "TS ALERT high kind who GET host/url -> 200: summary [id ...]", control
 * bytes escaped for a terminal (kw_term.h). */
void al_human_line(const struct al_line *l, char *buf, size_t len);

/* outbox.c */
enum kw_err al_ob_open(const char *path, sqlite3 **out) KW_WUR;
/* Hands a new alert (record taken over) to delivery and queues its store
 * job. Judge thread; never waits on SQLite. */
void al_route(struct alerts *a, const char *id, char *record, enum alert_kind kind, int sev,
              const char *who, const char *subject, uint64_t findings, const char *tz, kw_ts ts);
struct al_msg *al_msg_new(const char *id, char *record, const char *kind, int sev,
                          const char *who, uint64_t findings, const char *tz, kw_ts ts);
void al_msg_unref(struct al_msg *m);
/* Queues the retention pass (at start, then hourly from delivery). */
void al_retention(struct alerts *a);
/* Records an alert that failed for good (for the summary). */
void al_note_failure(struct alerts *a, const char *id, unsigned sink, const char *why);
/* Pending rows of configured sinks, and of sinks no longer configured. */
int64_t al_ob_backlog(sqlite3 *db, char keys[][40], unsigned n, int64_t *orphaned);
bool al_sink_accepts(const struct alerts_sink_cfg *s, enum alert_kind kind, int sev);

/* deliver.c */
enum kw_err al_deliver_start(struct alerts *a, struct al_deliver **out) KW_WUR;
/* Takes the alert's items (one per sink of m->mask); false when memory is
 * full (AL_MEM_MAX). Any thread. */
bool al_deliver_add(struct al_deliver *d, struct al_msg *m);
void al_deliver_wake(struct al_deliver *d);
void al_deliver_stop(struct al_deliver *d);
/* HTTP request of one message to one sink (shared with alerts test). */
struct curl_slist;
void *al_request_new(const struct alerts_sink_cfg *s, const char *body, const char *alert_id,
                     struct curl_slist **hdrs, long timeout_ms);

/* slack.c */
struct al_digest_group {
    char kind[32], who[72];
    uint64_t alerts, findings;
};
struct al_digest {
    uint64_t alerts, findings;
    kw_ts first, last;
    struct al_digest_group groups[64];
    unsigned n_groups;
    uint64_t other_alerts;
};
/* Block Kit payload of one alert record (new reference). */
json_t *al_slack_alert(const json_t *rec, const char *tz);
json_t *al_slack_digest(const struct al_digest *d);
void al_digest_add(struct al_digest *d, const char *kind, const char *who, uint64_t findings,
                   kw_ts ts);

#endif
