/* deliver_int: what the delivery thread (deliver.c) and its outbox I/O
 * (deliver_ob.c: items, loading earlier runs' rows, the changes queued to
 * the database writer) share. Not a public contract. */
#ifndef KW_DELIVER_INT_H
#define KW_DELIVER_INT_H

#include <curl/curl.h>

#include "alerts_int.h"

#define DL_TICK_MS 200
#define DL_DIGEST_MAX 100000
#define DL_PAGE 1000

/* One (alert, sink) delivery. */
struct dl_item {
    struct dl_item *next;
    struct al_msg *m; /* a reference */
    unsigned sink;
    unsigned attempts;
    kw_ts next_at, gate_until;
    int64_t rowid; /* loaded from the outbox: its row (checked before each send) */
    bool inflight, done;
    bool settled; /* done, and already taken off the backlog */
};

struct dl_job {
    struct dl_job *next;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    unsigned sink;
    bool digest;
    struct dl_item **items, *one;
    size_t n_items;
    unsigned attempts; /* including this one */
    char alert_id[AL_ID_LEN + 1];
    char retry_after[64];
    char resp[128];
    size_t resp_len;
    char errbuf[CURL_ERROR_SIZE];
};

struct dl_sink {
    double tokens;
    kw_ts refilled, paused_until, last_digest;
    unsigned inflight;
    /* answered, the answer not yet committed by the writer: in doubt for a
     * process killed now, so they count against max_inflight (a kill
     * repeats at most max_inflight deliveries per sink) */
    atomic_uint doubt;
    bool digest_inflight;
    struct dl_item *head, *tail; /* its items, oldest first */
};

/* One outbox change, queued to the writer. */
enum dl_op { DL_LEASE, DL_STATE, DL_RETRY };
struct dl_upd {
    char alert_id[AL_ID_LEN + 1];
    uint8_t op, state;
    uint16_t sink;
    unsigned attempts;
    long status;
    kw_ts at;
    char err[160];
};
struct dl_upd_job {
    struct dbw_job job;
    struct al_deliver *d;
    size_t n, cap;
    struct dl_upd u[];
};

struct al_deliver {
    struct alerts *a;
    sqlite3 *db; /* reads only: loading and re-checking outbox rows */
    sqlite3_stmt *q_page, *q_check;
    CURLM *multi;
    pthread_t thr;
    atomic_bool stop;
    struct dl_sink sinks[ALERTS_MAX_SINKS];
    struct dl_job *jobs; /* in flight */
    uint64_t rng;

    pthread_mutex_t in_mu; /* the inbox: items handed over by al_deliver_add */
    struct dl_item *in_head, *in_tail;
    atomic_long mem; /* items held (inbox included) */

    struct dl_upd_job *upd;     /* changes of this turn */
    atomic_long upd_pending;    /* update jobs in the writer */
    kw_ts next_retention;       /* wall clock */
    int64_t page_from, page_to; /* outbox rows of earlier runs still to load */
};

/* deliver_ob.c */
/* Queues a change of the item's outbox row (none for an alert the database
 * refused); dl_upd_submit hands this turn's changes to the writer. */
void dl_upd_add(struct al_deliver *d, const struct dl_item *it, enum dl_op op, enum al_state state,
                long status, kw_ts at, const char *err);
void dl_upd_submit(struct al_deliver *d);
void dl_item_free(struct al_deliver *d, struct dl_item *it);
/* Moves the items al_deliver_add handed over to their sinks' lists. */
void dl_take_inbox(struct al_deliver *d);
/* Loads a page of the pending rows earlier runs left, while memory allows. */
void dl_load_page(struct al_deliver *d);
/* Reads a loaded row again: false when another process delivered or
 * leased it meanwhile (it->done, or it->next_at moved). */
bool dl_still_ours(struct al_deliver *d, struct dl_item *it, kw_ts now);
/* The read connection and its statements (none: delivery of this run only). */
void dl_open_reader(struct al_deliver *d);

#endif
