/* baseline_int: the profile record shared by baseline.c (the profile
 * table and the observation flow), the detection files (baseline_hours.c,
 * baseline_endpoints.c, baseline_sources.c, baseline_clients.c,
 * baseline_grants.c, baseline_volume.c, over baseline_quarantine.c),
 * baseline_db.c (persistence) and baseline_show.c (summaries), and what
 * those files share with one another (the end of this file).
 *
 * The one thing to know: struct bl_profile is persisted as its raw bytes
 * (a versioned blob, BL_FORMAT), so it holds no pointers, every slot is
 * zeroed before use (padding included) and any change to it must bump
 * BL_FORMAT; older blobs are then skipped and counted, not misread. */
#ifndef KW_BASELINE_INT_H
#define KW_BASELINE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sqlite3.h>

#include "dbw.h"

#include "baseline.h"
#include "baseline_tz.h"

#define BL_FORMAT 6 /* 2: TLS clients (JA4); 3: network pairs seen at once; 4: OAuth grants;
                       5: bytes per TLS session; 6: evicted endpoints */
/* Formats 3 to 5 are prefixes of format 6 (fields are appended): loaded
 * as they are, what they lack starting empty (baseline_db.c). */
#define BL_FORMAT_V3_SIZE offsetof(struct bl_profile, n_grant)
#define BL_FORMAT_V4_SIZE offsetof(struct bl_profile, sess)
#define BL_FORMAT_V5_SIZE offsetof(struct bl_profile, n_gone)
#define BL_K_END 32    /* endpoints (method x template) per profile */
#define BL_K_GONE 128  /* endpoints evicted from end[], by hash (a ring) */
#define BL_K_NET 16    /* source networks (/24, /48) */
#define BL_K_UA 8      /* user agents */
#define BL_K_PEND 16   /* quarantined observations */
#define BL_K_RECENT 8  /* (credential, network) pairs of the last minutes */
#define BL_K_HOURTOP 4 /* heavy hitters of the open hour (Misra-Gries) */
#define BL_VOL_N 48    /* closed active hours kept per day class */
#define BL_K_VPEND 8   /* quarantined spike hours */
#define BL_K_CLIENT 8 /* TLS client fingerprints (JA4) */
#define BL_K_PAIR 8   /* pairs of networks used at the same time */
#define BL_K_GRANT 24 /* OAuth grants its tokens have shown */
#define BL_SESS_B 48  /* TLS sessions by log2 of the bytes they moved */
#define BL_TXT 56
#define BL_HOW 168 /* hours of the week, Monday 00 local first */

#define BL_HOUR_US ((kw_ts)3600 * 1000000)
#define BL_DAY_US ((kw_ts)86400 * 1000000)
#define BL_WEEK_US ((kw_ts)7 * 86400 * 1000000)

enum bl_pend_type { BL_P_ENDPOINT = 1, BL_P_NET, BL_P_HOUR, BL_P_CONC };

struct bl_endpoint {
    uint64_t h;        /* hash of "METHOD template" */
    uint64_t th;       /* hash of the template alone */
    float count;       /* decayed */
    int32_t last_day;  /* local day index */
    char text[BL_TXT]; /* "GET /v1/orders/{id}", cut to fit */
};

/* An endpoint that lost its slot in end[] (the least used goes when the
 * table is full): its hashes and method only, enough to know it and to
 * follow a template rename. h == 0: a free slot. */
struct bl_gone {
    uint64_t h, th;
    char method[16];
};

struct bl_net {
    float count;
    int32_t last_day;
    uint8_t family, pad[3];
    uint8_t a[16]; /* network address: /24 (v4) or /48 (v6) */
};

struct bl_agent {
    uint64_t h;
    float count;
    int32_t pad;
    char text[BL_TXT];
};

struct bl_pending {
    kw_ts first_ts;
    uint64_t h;
    uint32_t count;
    int32_t last_day;
    uint8_t type, days, family, pad;
    uint8_t a[16];
    char text[BL_TXT];
};

struct bl_recent {
    kw_ts last_ts;
    uint64_t fp, net;
    uint8_t family, pad[7];
    uint8_t a[16];
};

struct bl_hourtop {
    uint64_t h;
    uint32_t count, pad;
    char text[BL_TXT];
};

struct bl_vol {
    uint32_t req[BL_VOL_N];
    float bytes[BL_VOL_N];
    uint32_t n, next;
};

struct bl_vpend {
    kw_ts hour_ts;
    float bytes;
    uint32_t req;
    uint8_t cls, pad[7];
};

struct bl_client {
    uint64_t h;
    int32_t last_day;
    uint32_t count;
    char text[48]; /* the JA4 */
};

/* Two networks the credential was used from at the same time (the hashes
 * of bl_recent.net, smaller first). */
struct bl_pair {
    uint64_t a, b;
    float count; /* decayed concurrent hours */
    int32_t last_day;
};

/* An OAuth grant (a scope, role or group of a JWT) the identity's tokens
 * have held. */
struct bl_grant {
    uint64_t h;
    int32_t last_day;
    uint32_t count;
    char text[48];
};

#define BL_KEYLEN 72 /* identity id or "sha256:" + 64 hex, NUL */

struct bl_profile {
    char key[BL_KEYLEN];
    char tz[64]; /* zone seen last, for display */
    kw_ts first_seen, last_seen;
    kw_ts last_share_alert;
    int64_t week;       /* epoch week the decay was last applied */
    int64_t local_hour; /* last local hour index counted in how[] */
    int64_t cur_hour;   /* open UTC hour bucket (index) */
    int64_t conc_hour;  /* last UTC hour counted as concurrent */
    uint64_t requests;  /* total observed */
    uint64_t cur_bytes;
    uint32_t cur_req, active_days;
    int32_t last_day; /* last local day index */
    uint32_t n_end, n_net, n_ua, n_pend, n_recent, n_vpend;
    float thr_req, thr_bytes;       /* thresholds of the open bucket, 0 = none */
    float conc_hours, active_hours; /* decayed */
    uint8_t is_cred, cur_alerted, cur_cls, pad[5];
    float how[BL_HOW];    /* decayed count of active local hours */
    struct bl_vol vol[2]; /* 0 Mon-Fri, 1 Sat-Sun (local) */
    struct bl_vpend vpend[BL_K_VPEND];
    struct bl_hourtop top[BL_K_HOURTOP];
    struct bl_endpoint end[BL_K_END];
    struct bl_net net[BL_K_NET];
    struct bl_agent ua[BL_K_UA];
    struct bl_pending pend[BL_K_PEND];
    struct bl_recent recent[BL_K_RECENT];
    struct bl_client client[BL_K_CLIENT];
    uint32_t n_client, n_pair;
    struct bl_pair pair[BL_K_PAIR];
    /* format 4: appended, so a format-3 blob is this record's prefix */
    uint32_t n_grant, pad_grant;
    kw_ts grants_since; /* first grant seen: they have a learning period of their own */
    struct bl_grant grant[BL_K_GRANT];
    /* format 5: attributed TLS sessions by the bytes they moved (both
     * ways), bucket k = [2^k, 2^(k+1)); halved past 10,000 sessions */
    float sess[BL_SESS_B];
    float n_sess;
    uint32_t pad_sess;
    /* format 6: endpoints evicted from end[]: an identity using more than
     * BL_K_END endpoints would otherwise find its rarer known ones new
     * again after learning (seen on the 281 public APIs, issue 10) */
    uint32_t n_gone, gone_next;
    struct bl_gone gone[BL_K_GONE];
};

struct baseline {
    kw_ts learning, quarantine, save_every, last_save, swept_hour;
    int sens;
    unsigned min_days, max;
    unsigned max_cred; /* slots unattributed profiles may hold */
    uint32_t n_cred;   /* unattributed profiles now */
    /* keys of evicted profiles: the next save deletes their rows */
    char (*del)[BL_KEYLEN];
    uint32_t n_del, cap_del;
    struct bl_profile *p; /* [max] */
    uint8_t *dirty;       /* [max] */
    uint32_t *index;      /* open addressing, [cap]: profile index + 1 */
    uint32_t cap, n;
    /* The unattributed profiles in the order eviction takes them
     * (last_seen, then key): a list through [max] slots, so finding the
     * least recently seen is O(1), not a pass over every profile (which a
     * stream of new credentials paid on each one: 4.5 s of a 6 s run with
     * 40,000). BL_LRU_NONE ends it. */
    uint32_t *lru_prev, *lru_next, lru_head, lru_tail;
    struct bl_tzcache tzc;
    sqlite3 *db; /* load, reset; saves go through the writer */
    bool read_only; /* db opened read-only: saves and resets are refused */
    struct dbw *w;
    bool own_w;
    struct baseline_stats st;
    /* Saves (baseline_db.c): a save copies the changed profiles into a job
     * for the database writer (dbw.h), so SQLite (and a lock held by
     * another writer of the same database) never stalls the packet path. */
    pthread_mutex_t smu; /* guards the fields below and the save counters */
    bool smu_ready, save_inflight, save_failed;
    int last_save_rc; /* SQLite code of the last finished save */
};

uint64_t bl_hash(const char *s, size_t n);
/* Slot of key or -1. */
long bl_find(const struct baseline *b, const char *key);
/* Rebuilds the index and the eviction order from b->p[0..n). */
void bl_reindex(struct baseline *b);
#define BL_LRU_NONE UINT32_MAX
/* Volume statistics of a day class (pooled when it has too few hours):
 * median, MAD and p10/p90 of requests and bytes; false when < 8 hours. */
struct bl_volstat {
    float med, mad, p10, p90, bmed, bmad;
    unsigned n;
    int cls; /* 0, 1 or 2 = pooled */
};
bool bl_volstat(const struct bl_profile *p, int cls, struct bl_volstat *out);
/* "09-17" style description of the usual local hours of a day class. */
void bl_usual_hours(const struct bl_profile *p, int cls, char *buf, size_t n);
void bl_fmt_count(double v, char *buf, size_t n); /* 9,400 / 1.2M */
/* "198.51.100.0/24" or "2001:db8:1::/48" of a profile's network. */
void bl_net_str(uint8_t fam, const uint8_t a[16], char *buf, size_t n);

enum kw_err bl_db_open(struct baseline *b, const char *path, struct dbw *writer) KW_WUR;
/* Read-only: no migration, no writer (nothing is ever saved); says
 * whether the profile table exists and how many rows it has. */
enum kw_err bl_db_open_ro(struct baseline *b, const char *path, bool *has_table,
                          uint32_t *rows) KW_WUR;
/* Hands the changed profiles to the writer (skipped, and counted in
 * save_deferred, while the previous save is still being written). */
void bl_save_async(struct baseline *b);
/* Waits for the last save, stops a private writer. */
void bl_saver_stop(struct baseline *b);
enum kw_err bl_db_load(struct baseline *b) KW_WUR;

/* Queues a key whose row the next save deletes (an evicted profile). */
void bl_del_push(struct baseline *b, const char *key);

/* ---- shared by the detection files (baseline.c and baseline_*.c) ----
 * Each detection lives in a file of its own; what they share is below:
 * the sensitivity table, the per-observation context, the finding
 * emitter, the quarantine and a few small helpers. */

/* Thresholds per sensitivity (low, medium, high); see docs/baselines.md.
 * The table itself is in baseline.c. */
struct bl_sens {
    int hour_tol;         /* neighbouring hours that count as usual */
    float hour_support;   /* decayed active-hour count that makes an hour usual */
    float vol_k;          /* robust z: median + k * 1.4826 * MAD */
    float vol_ratio;      /* and at least ratio x median */
    float vol_min_req;    /* and at least median + this many requests */
    float vol_min_bytes;  /* bytes: at least median + this */
    kw_ts share_window;   /* two networks within this = concurrent */
    bool endpoint_method; /* a known template under a new method is new */
    bool net_wide;        /* low: a new /24 inside a known /16 is not new */
    uint32_t roam_nets;   /* a /16 (/32) with this many known /24s (/48s) is
                           * one roaming network (a campus handing out
                           * addresses by DHCP); 0 = off */
};
extern const struct bl_sens bl_sens_tab[3];

/* Findings, in the order of baseline_stats.findings[]. */
enum { BL_F_HOUR, BL_F_ENDPOINT, BL_F_SOURCE, BL_F_VOLUME, BL_F_SHARING, BL_F_CLIENT, BL_F_GRANT };

/* Per-observation context: the transaction in local time. */
struct bl_obs {
    const struct kw_txn *t;
    struct bl_profile *p;
    const char *tz;
    int64_t local_sec, local_day, local_hour; /* since the epoch, local time */
    int wd, hod, cls;                         /* Mon=0..Sun=6, 0..23, weekend? */
    bool learning;
    void (*emit)(void *user, struct alert_finding *f);
    void *user;
};

/* Copies src into dst[n], cut to fit, the rest zeroed (profiles are
 * persisted as raw bytes: no stale bytes after the text). */
static inline void bl_set_text(char *dst, size_t n, const char *src)
{
    memset(dst, 0, n);
    size_t l = strnlen(src, n - 1);
    memcpy(dst, src, l);
}

/* a / b rounded towards minus infinity (times before 1970 stay in order). */
static inline int64_t bl_floordiv(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Index of the smallest count among n float fields spaced `stride` apart
 * (the slot a full table gives up). */
uint32_t bl_min_slot(const float *first, size_t stride, uint32_t n);
bool bl_in_learning(const struct baseline *b, const struct bl_profile *p, kw_ts ts);
/* Fills o's local time fields from o->t->ts in zone tz. */
void bl_local_time(struct baseline *b, struct bl_obs *o, const char *tz);
/* Reports finding f (BL_F_*) to o->emit; takes expected and observed. */
void bl_emit(struct baseline *b, struct bl_obs *o, int f, const char *subject, json_t *expected,
             json_t *observed, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* How a finding names the profile: the credential's hint when it has one. */
const char *bl_who(const struct bl_obs *o);

/* Quarantine (baseline_quarantine.c). */
struct bl_pending *bl_pend_get(struct baseline *b, struct bl_obs *o, int type, uint64_t h,
                               bool *fresh);
bool bl_pend_see(struct baseline *b, struct bl_obs *o, struct bl_pending *e);
void bl_pend_drop(struct bl_profile *p, struct bl_pending *e);

/* The detections, in the order baseline_observe runs them. */
void bl_check_hour(struct baseline *b, struct bl_obs *o, bool has_schedule,
                   bool *learn_hour);                         /* baseline_hours.c */
void bl_check_endpoint(struct baseline *b, struct bl_obs *o); /* baseline_endpoints.c */
void bl_check_source(struct baseline *b, struct bl_obs *o);   /* baseline_sources.c */
void bl_check_sharing(struct baseline *b, struct bl_obs *o);  /* baseline_sources.c */
void bl_check_client(struct baseline *b, struct bl_obs *o);   /* baseline_clients.c */
void bl_check_grants(struct baseline *b, struct bl_obs *o);   /* baseline_grants.c */
void bl_learn_agent(struct baseline *b, struct bl_profile *p, const char *ua);

/* Hourly volume (baseline_volume.c): the open hour's bucket. */
void bl_open_bucket(struct baseline *b, struct bl_profile *p, int64_t hour, int cls);
void bl_close_bucket(struct baseline *b, struct bl_profile *p);
void bl_hourtop_add(struct bl_profile *p, const char *text);
void bl_check_volume(struct baseline *b, struct bl_obs *o);

#endif
