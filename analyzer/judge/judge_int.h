/* judge_int: what the files of analyzer/judge share and nobody else sees:
 * the bounded tables, the hasher, and the finding helpers. judge_table.c
 * owns the tables and their checkpoint; judge_policy.c the finding helpers
 * and the rules' policy checks; judge_cred.c the credential detections;
 * judge_oauth.c the OAuth checks (scopes, session age, DPoP). The public
 * contract is judge_policy.h. */
#ifndef KW_JUDGE_INT_H
#define KW_JUDGE_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "judge_policy.h"
#include "kw_hash.h"

#define WAYS 8
#define HOUR_US ((kw_ts)3600 * 1000000)

struct jp_key {
    uint64_t h; /* 0 = empty */
    kw_ts last;
    int64_t bucket;
    uint32_t cur, prev;
    uint64_t bytes;
    uint8_t fired; /* bit 0: count, bit 1: bytes */
};

struct jp_pair {
    uint64_t h;
    kw_ts last;
};

/* Key tables (one each) before TAG__KEYS; the tags after it only salt
 * hashes into the shared pair table. */
enum jp_tag {
    TAG_RATE,
    TAG_FAIL,
    TAG_STUFF,
    TAG_ENUM,
    TAG_SESSION, /* first sight of an opaque token (session age) */
    TAG__KEYS,
    TAG_STUFF_PAIR,
    TAG_ENUM_PAIR,
    TAG_DPOP_JTI, /* proofs seen (jkt, jti) */
};

/* One key table per detection, so a flood feeding one (failed-auth state
 * for 100k distinct credentials) cannot evict another's counters. */
#define JP_SCHED 256 /* identities whose schedule answer is kept (direct-mapped) */

struct judge_policy {
    struct jp_key *keys[TAG__KEYS];
    size_t key_sets;
    struct jp_pair *pairs;
    size_t pair_sets;
    struct judge_policy_counters cnt;
    /* Entries are known by their hash alone (no key is kept) and persist,
     * so the SipHash key (kw_hash.h) is drawn once, saved with the state
     * it places and adopted on load: unpredictable from outside, stable
     * across restarts. */
    struct kw_hkey key;
    judge_policy_repeat_fn repeat;
    void *repeat_user;
    /* each identity's last schedule answer and how long it holds
     * (rules_schedule_allows_span), by the identity's place in the model
     * whose serial it names: an answer is asked for again about once an
     * hour, not for every request */
    struct jp_sched {
        uint64_t serial; /* the model's; 0: empty */
        size_t idx;
        kw_ts from, until;
        bool ok;
    } sched[JP_SCHED];
};

/* A key built field by field: the fields are gathered here and hashed in
 * one pass at jp_hash_done (the same value as hashing each as it comes:
 * SipHash is a stream). A transaction's checks build ~5 keys of ~3 fields
 * each; a SipHash update per field and per length cost ~6 % of the packet
 * thread (issue 13). */
struct hasher {
    struct kw_sip s;
    size_t n;
    uint8_t buf[240];
};

struct jp_ctx {
    struct judge_policy *jp;
    const struct rules_model *m;
    const struct rules_identity *id;
    const struct kw_txn *t;
    judge_policy_emit_fn emit;
    void *user;
    /* jp_who(), jp_cred(): made on first use (most transactions raise
     * nothing and need neither) */
    char who[224];  /* "c01 Acme Data Ltd" */
    char cred[192]; /* "key sk_l…9f2c" */
    bool have_who, have_cred;
    /* the scopes the service's OpenAPI document requires of this
     * operation (NULL: none known); rules files' `scopes:` win */
    const struct rules_scope_req *doc;
};

/* The identity ("c01 Acme Data Ltd") and the credential ("key sk_l…9f2c")
 * as a finding's summary names them. */
const char *jp_who(struct jp_ctx *c);
const char *jp_cred(struct jp_ctx *c);

void jp_hash_bytes(struct hasher *s, const void *p, size_t n);
void jp_hash_str(struct hasher *s, const char *str);
uint64_t jp_hash_done(struct hasher *s);
struct hasher jp_hash_begin(const struct judge_policy *jp, enum jp_tag tag);
/* The entry of h in the tag's table, made (zeroed, bucket INT64_MIN) when
 * absent by evicting the least recently seen of its set. */
struct jp_key *jp_key_get(struct judge_policy *jp, enum jp_tag tag, uint64_t h, kw_ts now);
/* True when h was not seen within `window` (and remembers it now). */
bool jp_pair_new(struct judge_policy *jp, uint64_t h, kw_ts now, kw_ts window);
int64_t jp_floor_div(int64_t a, int64_t b);
/* Adds n events to e's sliding window of length win; true once when the
 * estimate reaches threshold (*est: the estimated count ending now). */
bool jp_slide_add(struct judge_policy *jp, struct jp_key *e, kw_ts now, kw_ts win, uint32_t n,
                  uint32_t threshold, uint32_t *est);

/* snprintf whose cut is intended: summaries and subjects are bounded. */
void jp_fmt(char *buf, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));
void jp_finding_init(struct jp_ctx *c, struct alert_finding *f, enum alert_kind k,
                     const struct rules_loc *loc);
/* The subject "a" or "a b" (b NULL: a alone), cut to fit as snprintf would. */
void jp_subject(struct alert_finding *f, const char *a, const char *b);
/* Takes over both references. */
void jp_evidence(struct alert_finding *f, json_t *expected, json_t *observed);
void jp_fire(struct jp_ctx *c, struct alert_finding *f);
/* With kind, ts, txn and subject set: true when the finding repeats an open
 * alert (counted as fired); build nothing more then. */
bool jp_repeat(struct jp_ctx *c, struct alert_finding *f);
int jp_det_severity(const struct rules_detection *d);
const char *jp_endpoint(const struct kw_txn *t);
bool jp_success(const struct kw_txn *t); /* 2xx/3xx, and grpc-status 0 if any */
bool jp_is_session(const struct kw_txn *t);
void jp_local_stamp(const struct kw_tz *tz, kw_ts ts, char *buf, size_t len);

/* judge_cred.c: an unknown credential accepted (HTTP and TLS sessions),
 * and the rest for HTTP requests: refusal bursts, stuffing, enumeration,
 * expired or unsigned JWTs. */
void jp_check_unknown(struct jp_ctx *c);
void jp_check_credential(struct jp_ctx *c);

/* judge_oauth.c: scopes, session age and DPoP proofs of one transaction. */
void jp_check_oauth(struct jp_ctx *c);

#endif
