/* alerts: the alert pipeline object. Findings go in on the judge thread
 * (alerts_submit: dedup in memory, EVE line, one short SQLite transaction
 * into the durable outbox, never the network); a delivery thread owned by
 * this object sends outbox rows to Slack and signed webhooks with libcurl
 * multi, retries with backoff, honours 429 Retry-After, rate-limits per
 * sink and folds held Slack alerts into digests.
 *
 * The one thing to know: alerts_submit never waits on SQLite. The alert is
 * queued to the database writer (dbw.h) and handed to the delivery
 * thread, which sends it once the writer stored it (a replayed id is not
 * sent again), or from memory when the database refused it or stayed
 * locked past AL_GATE_MS. An outbox row leaves the pending state only when
 * a sink answered 2xx, answered a permanent 3xx/4xx, or it was folded into
 * a delivered digest. Delivery is at least once; receivers drop duplicates
 * by alert.id (the Idempotency-Key). */
#ifndef KW_ALERTS_H
#define KW_ALERTS_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "alert.h"
#include "kw_err.h"
#include "kw_eve.h"
#include "kw_time.h"

#define ALERTS_MAX_SINKS 16

enum alerts_sink_kind { ALERTS_SINK_SLACK, ALERTS_SINK_WEBHOOK };

struct alerts_sink_cfg {
    enum alerts_sink_kind kind;
    char url[1024];      /* a Slack webhook URL is itself a secret: never stored
                            (the outbox keys sinks by a hash of it) */
    char secret[256];    /* webhook HMAC key, resolved from env: by the config
                            loader; never written anywhere */
    int min_severity;    /* deliver alerts whose severity NUMBER is <= this:
                            1 = high only, 2 = high+medium, 3 or 0 = all */
    uint32_t kinds_mask; /* bit (1u << enum alert_kind); 0 = all kinds */
    double rate_per_min; /* token bucket refill; <= 0 = unlimited */
    unsigned burst;      /* bucket size; 0 = default 5 */
    char name[64];       /* label in reports; "" = "slack" / "webhook" */
};

struct alerts_config {
    const char *db_path;         /* required */
    const char *eve_path_unused; /* EVE goes through the kw_eve given to alerts_new */
    struct alerts_sink_cfg sinks[ALERTS_MAX_SINKS];
    unsigned n_sinks;
    kw_ts suppress_window;   /* packet time; default 1 h */
    kw_ts drain_timeout;     /* wall clock; default 10 s */
    bool syslog;             /* one line per alert */
    int syslog_facility;     /* LOG_* facility; 0 = LOG_AUTHPRIV */
    bool stdout_alerts;      /* one human line per alert */
    bool human_stderr;       /* ... on stderr instead of stdout (use with --eve -) */
    long timeout_ms;         /* per request, default 10000 */
    unsigned max_attempts;   /* give up (permanent failure) after this many; 0 = never */
    long backoff_base_ms;    /* default 1000 */
    long backoff_cap_ms;     /* default 300000 (5 min) */
    long retry_after_max_ms; /* ceiling on a 429 Retry-After; default 1 h */
    long digest_interval_ms; /* at most one Slack digest per interval; default 60 s */
    unsigned dedup_max;      /* open suppression windows kept; default 4096 */
    unsigned max_inflight;   /* concurrent requests per sink; default 8 */
    bool no_delivery;        /* do not start the delivery thread (tests, tools) */
    struct dbw *writer;      /* borrowed, outlives the alerts; NULL: a private writer */
    kw_ts retention;         /* settled alerts and their outbox rows are deleted this long
                                after they settled (wall clock); 0: 90 days. Pending
                                rows are never deleted. */
};

void alerts_config_default(struct alerts_config *c);
/* Fills a sink with its kind's defaults: Slack 20/min burst 5, webhook
 * unlimited; min_severity 3 (all). */
void alerts_sink_default(struct alerts_sink_cfg *s, enum alerts_sink_kind kind);
/* Stable key of a sink in the outbox: "slack:<16 hex>" of SHA-256(url). */
void alerts_sink_key(const struct alerts_sink_cfg *s, char out[40]);

struct alerts;

/* Opens the DB, migrates, starts the delivery thread (resuming undelivered
 * outbox rows). eve may be NULL; it is borrowed and must outlive a. */
enum kw_err alerts_new(const struct alerts_config *c, struct kw_eve *eve,
                       struct alerts **out) KW_WUR;
/* Judge thread. Never touches the network. Takes ownership of f->evidence
 * (and sets it to NULL). */
void alerts_submit(struct alerts *a, struct alert_finding *f);
/* Judge thread, before building a finding's summary and evidence: when f
 * (kind, ts, subject and txn set) repeats an alert whose suppression window
 * is still open, counts it exactly as alerts_submit would and returns true,
 * and the finding need not be built nor submitted. False changes nothing
 * (also whenever alerts_submit would first sweep expired windows). Most
 * findings on busy traffic are such repeats (issue 13). */
bool alerts_repeat(struct alerts *a, struct alert_finding *f);
/* End of input: emits pending repeat counts as updates, then keeps
 * delivering until the outbox is empty or drain_timeout (wall clock)
 * passed, then stops the delivery thread. The rest stays in the outbox. */
void alerts_drain(struct alerts *a);
/* Emits pending repeat counts into the outbox, stops delivery (in-flight
 * requests are abandoned and retried by the next run), closes. */
void alerts_destroy(struct alerts *a);

/* A fleet judge's checkpoint (docs/fleet.md): the open suppression
 * windows as a blob (*blob malloc'd: free it), and back (alerts_state.c).
 * Load refuses another build's layout or dedup_max, leaving no window. */
enum kw_err alerts_state_save(struct alerts *a, uint8_t **blob, size_t *len) KW_WUR;
enum kw_err alerts_state_load(struct alerts *a, const uint8_t *blob, size_t len) KW_WUR;

struct alerts_stats {
    uint64_t findings, alerts, suppressed, delivered, failed_permanent, retries;
    uint64_t backlog;        /* waiting: (alert, sink) deliveries not done yet, in memory or
                                in the outbox */
    uint64_t stored;         /* alerts written to the database */
    uint64_t replayed;       /* alerts whose id was already stored (not sent again) */
    uint64_t not_stored;     /* alerts the database refused (kept in memory for delivery) */
    uint64_t lost;           /* deliveries that never happen: not stored, and memory full or
                                the process ended first */
    uint64_t state_unsaved;  /* delivery states the database refused (resent next run) */
    uint64_t expired;        /* alerts deleted by retention */
    uint64_t updates;        /* "N more" follow-ups emitted at window end */
    uint64_t digests;        /* digest messages delivered */
    uint64_t digested;       /* outbox rows delivered inside a digest */
    uint64_t dedup_evicted;  /* windows closed early because dedup_max was reached */
    uint64_t db_errors;      /* SQLite failures (the alert still went to EVE) */
    uint64_t syslog_dropped; /* syslog queue full */
    uint64_t orphaned;       /* pending rows of sinks no longer configured */
    uint64_t filtered;       /* (alert, sink) pairs skipped by min_severity/kinds */
    uint64_t by_kind[ALERT__COUNT]; /* alerts raised, by enum alert_kind */
    uint64_t by_severity[4];        /* [1] high, [2] medium, [3] low */
    unsigned n_sinks;
    struct {
        char key[40]; /* "slack:…" / "webhook:…" (a hash of the URL, never the URL) */
        uint64_t delivered, failed, retries; /* failed: for good */
    } sinks[ALERTS_MAX_SINKS];
};
void alerts_get_stats(struct alerts *a, struct alerts_stats *st);

/* Alerts that failed for good (a redirect, 410, another 4xx, or
 * max_attempts), the first ALERTS ones kept: copies up to max into out and
 * returns how many there were in all. */
struct alerts_failure {
    char id[40];
    char sink[40];  /* the sink's key, never its URL */
    char why[200];  /* "HTTP 410: gone" */
};
unsigned alerts_failures(struct alerts *a, struct alerts_failure *out, unsigned max);

/* `keywarden alerts test`: sends one sample alert to every sink of c,
 * synchronously, bypassing the outbox. */
struct alerts_test_result {
    long http_status; /* 0 when no answer */
    int curl_code;
    double ms;
    char error[256];
};
enum kw_err alerts_test_sinks(const struct alerts_config *c,
                              struct alerts_test_result res[ALERTS_MAX_SINKS]) KW_WUR;

/* ---- reading, for `keywarden report` ---- */

/* Calls fn for each stored alert with since <= ts < until (0 = open),
 * oldest first, with the EVE alert record exactly as it was emitted
 * (borrowed for the call). A database without the alerts table (no run
 * has alerted into it) is no error: fn is simply not called. Works on a
 * read-only connection (store_db_open_ro). */
enum kw_err alerts_read(sqlite3 *db, kw_ts since, kw_ts until,
                        void (*fn)(void *user, kw_ts ts, const char *record),
                        void *user) KW_WUR;
/* Packet time of the newest stored alert; 0 when none. */
enum kw_err alerts_newest(sqlite3 *db, kw_ts *out) KW_WUR;

#endif
