/* baseline: learned habits per identity (and per unattributed credential
 * fingerprint), and the detections that compare a transaction with them:
 * unusual_hour, new_endpoint, new_source, volume_spike, key_sharing,
 * new_client (a TLS client fingerprint, JA4, never seen for the identity),
 * and scope_escalation (an OAuth grant its tokens never held).
 *
 * The one thing to know: a profile is a fixed-size record (top-K tables,
 * fixed rings), so memory is max_profiles x sizeof(profile) allocated at
 * baseline_new() and nothing is allocated per transaction; and an
 * observation that looks anomalous after the learning period is held in
 * quarantine (a per-profile pending table) instead of entering the profile:
 * it is learned only when it recurs on at least two local days at least
 * `quarantine` apart (default 3 days). Everything runs on packet time, so a
 * replay gives the same profiles, and learning over two runs (save, new
 * object, load) equals learning over one. Not thread-safe: one judge
 * thread owns a struct baseline. See docs/baselines.md. */
#ifndef KW_BASELINE_H
#define KW_BASELINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "alert.h"
#include "dbw.h"
#include "kw_err.h"
#include "kw_time.h"
#include "kw_txn.h"

#define BASELINE_DEFAULT_LEARNING ((kw_ts)14 * 86400 * 1000000)
#define BASELINE_DEFAULT_QUARANTINE ((kw_ts)3 * 86400 * 1000000)
#define BASELINE_DEFAULT_MAX_PROFILES 10000u

enum baseline_sensitivity { BASELINE_LOW = 0, BASELINE_MEDIUM = 1, BASELINE_HIGH = 2 };

struct baseline_config {
    kw_ts learning;        /* 0: 14 days from a profile's first request */
    int sensitivity;       /* enum baseline_sensitivity */
    const char *db_path;   /* NULL: memory only (nothing loaded or saved) */
    unsigned max_profiles; /* 0: 10000 */
    unsigned max_unattributed; /* slots for profiles of credentials no identity
                                  claims; 0: max_profiles - max_profiles / 10 (the
                                  rest is kept for configured identities) */
    /* additions */
    kw_ts quarantine;           /* 0: 3 days */
    unsigned learning_min_days; /* distinct active local days also needed; 0: 3 */
    kw_ts save_every;           /* baseline_advance() saves after this much packet
                                   time; 0: 1 hour; <0: only explicit saves */
    struct dbw *writer;         /* saves go through it (borrowed, outlives b); NULL: a
                                   private writer */
    bool read_only;             /* open db_path read-only, never migrate or save
                                   (`report`, `baseline show`): no table yet = no
                                   profiles */
};

struct baseline;

/* Allocates every profile slot, opens db_path (WAL), migrates module
 * "baseline" and loads the persisted profiles (the most recently seen
 * first, up to max_profiles). */
enum kw_err baseline_new(const struct baseline_config *c, struct baseline **out) KW_WUR;

/* Observes one attributed transaction: the profile is the identity id, or
 * the credential fingerprint when unattributed (neither: skipped, counted).
 * tz is the identity's IANA zone (NULL or "": UTC; unknown: UTC, counted).
 * has_schedule: the identity has an explicit schedule rule, so
 * unusual_hour stays quiet (off_hours covers it).
 *
 * Detections run first, then learning. emit() is called synchronously for
 * each finding; the callee takes over f->evidence (one reference) and must
 * copy what it keeps: f itself and its strings live for the call only. */
void baseline_observe(struct baseline *b, const struct kw_txn *t, const char *tz, bool has_schedule,
                      void (*emit)(void *user, struct alert_finding *f), void *user);

/* An attributed TLS session ended. t is its record at the end
 * (judge_session.h: identity id, ends, TLS fields; ts = the end,
 * req_len/resp_len = the bytes each way): the bytes per session of the
 * identity are learned and, after learning, a session that moved far more
 * than its sessions do (>= 1 MiB and 8x beyond the bucket of their 99th
 * percentile; 4x at high sensitivity, 16x at low) raises volume_spike.
 * Needs the profile made when the session's handshake was observed. */
void baseline_observe_session(struct baseline *b, const struct kw_txn *t, const char *tz,
                              void (*emit)(void *user, struct alert_finding *f), void *user);

/* Packet time moved to `now`: closes hour buckets that ended (volume is
 * learned at hour close) and saves at the configured interval. Cheap when
 * the hour has not changed. */
void baseline_advance(struct baseline *b, kw_ts now);

/* An endpoint template was renamed (analyzer/shapes merged literals into
 * a parameter): every profile's endpoints and quarantined endpoints named
 * "METHOD old" become "METHOD new", their counts merged with what the new
 * name already has, so the endpoint stays known under its new name. */
void baseline_rename_template(struct baseline *b, const char *old_tmpl, const char *new_tmpl);

/* Writes every changed profile in one transaction (through the writer)
 * and waits for it: KW_E_DB when the database refused it (the writer
 * named the cause; the next save writes every profile). */
enum kw_err baseline_save(struct baseline *b) KW_WUR;

/* baseline_save, and also(user, db) in the same transaction on the
 * writer's connection, after the profiles (run even when no profile
 * changed). For a caller whose own progress must be stored atomically
 * with what was learned from it: a fleet judge's stream positions, so that
 * a judge killed between the two writes neither learns the records it
 * judges again twice nor forgets them. also() may run more than once (busy
 * retries) and must only write; it runs on the writer thread while this
 * call waits, so it should read a snapshot the caller made before. */
enum kw_err baseline_save_along(struct baseline *b, int (*also)(void *user, sqlite3 *db),
                                void *user) KW_WUR;

/* NULL is a no-op. Does not save. */
void baseline_destroy(struct baseline *b);

struct baseline_stats {
    uint64_t observed;      /* transactions observed */
    uint64_t skipped;       /* no identity and no fingerprint */
    uint64_t refused;       /* refused by the server (kw_txn_refused): not learned */
    uint64_t profiles;      /* profiles in memory */
    uint64_t profile_limit; /* dropped: max_profiles reached */
    uint64_t evict_unattributed; /* unattributed profiles taken over by a newer one */
    uint64_t tz_unknown;    /* zone not found: UTC used */
    uint64_t learning;      /* observations inside a learning period */
    uint64_t quarantined;   /* anomalous observations held back */
    uint64_t promoted;      /* quarantined items learned after recurring */
    uint64_t evict_endpoint, evict_network, evict_agent, evict_pending, evict_pair;
    uint64_t findings[7]; /* unusual_hour, new_endpoint, new_source,
                             volume_spike, key_sharing, new_client,
                             scope_escalation (a grant never held) */
    uint64_t saves, saved_profiles, save_errors, load_incompatible;
    uint64_t load_invalid; /* stored profiles refused by validation (tampered or damaged) */
    uint64_t save_deferred; /* periodic save skipped: the previous one was still running */
    uint64_t renamed;       /* profiles changed by template renames */
    uint64_t endpoint_folded; /* new endpoints not alerted: in an area already alerted */
};
void baseline_get_stats(const struct baseline *b, struct baseline_stats *out);

/* Profiles still learning at packet time now (not judged by their own
 * habits yet). Walks every profile: for the periodic stats, from the
 * thread that owns b. */
size_t baseline_learning_count(const struct baseline *b, kw_ts now);

/* Bytes of memory one profile slot takes (for sizing). */
size_t baseline_profile_size(void);

/* ---- inspection, for `keywarden baseline` ---- */

/* Number of profiles and the key of the i-th (borrowed, lives until the
 * next observe/reset/destroy). */
size_t baseline_count(const struct baseline *b);
const char *baseline_key(const struct baseline *b, size_t i);

/* Human summary of one profile (heat map, endpoints, volumes, sources,
 * learning state) to f; KW_E_NOTFOUND when no such profile. Learning
 * state is judged at the profile's last request (packet time). */
enum kw_err baseline_show_text(const struct baseline *b, const char *key, FILE *f) KW_WUR;
/* The same as JSON (new reference), NULL when not found. */
json_t *baseline_show_json(const struct baseline *b, const char *key);

/* The source network a baseline learns for an address: "198.51.100.0/24"
 * (IPv4) or "2001:db8:1::/48" (IPv6), so other views group sources the
 * same way. buf >= 64. */
void baseline_net_str(const struct kw_addr *a, char *buf, size_t n);

/* Forgets a profile in memory and in the database. */
enum kw_err baseline_reset(struct baseline *b, const char *key) KW_WUR;

#endif
