/* alert: the alert model. A detection (analyzer's judge) hands over a
 * finding; this module turns it into an EVE `alert` record with a stable
 * id, deduplicates it (one alert per identity, kind and subject per
 * suppression window, with a count), writes it to the EVE output and to
 * the durable outbox for delivery to Slack and webhooks.
 *
 * Kinds, categories and default severities are one X-macro table; the
 * names are the contract of INTERFACES.md. */
#ifndef KW_ALERT_H
#define KW_ALERT_H

#include <jansson.h>
#include <stdint.h>

#include "kw_err.h"
#include "kw_time.h"
#include "kw_txn.h"

/* X(enum suffix, kind name, category, default severity 1 high..3 low) */
#define ALERT_KINDS(X)                                                       \
    X(OFF_HOURS, "off_hours", "policy", 2)                                   \
    X(OUTSIDE_ACCESS_WINDOW, "outside_access_window", "policy", 1)           \
    X(SOURCE_NOT_ALLOWED, "source_not_allowed", "policy", 1)                 \
    X(OUT_OF_SCOPE, "out_of_scope", "policy", 1)                             \
    X(METHOD_NOT_ALLOWED, "method_not_allowed", "policy", 1)                 \
    X(UNKNOWN_CREDENTIAL, "unknown_credential", "credential", 1)             \
    X(FAILED_AUTH_BURST, "failed_auth_burst", "credential", 2)               \
    X(CREDENTIAL_STUFFING, "credential_stuffing", "credential", 1)           \
    X(RATE_EXCEEDED, "rate_exceeded", "policy", 2)                           \
    X(ENUMERATION, "enumeration", "policy", 2)                               \
    X(NEW_ENDPOINT, "new_endpoint", "baseline", 3)                           \
    X(NEW_SOURCE, "new_source", "baseline", 2)                               \
    X(UNUSUAL_HOUR, "unusual_hour", "baseline", 3)                           \
    X(VOLUME_SPIKE, "volume_spike", "baseline", 2)                           \
    X(KEY_SHARING, "key_sharing", "baseline", 1)                             \
    X(EXPIRED_TOKEN_ACCEPTED, "expired_token_accepted", "credential", 1)     \
    X(NEW_CLIENT, "new_client", "baseline", 3)                               \
    X(SCOPE_NOT_GRANTED_ACCEPTED, "scope_not_granted_accepted", "policy", 1) \
    X(SCOPE_NOT_GRANTED, "scope_not_granted", "policy", 3)                   \
    X(SCOPE_ESCALATION, "scope_escalation", "policy", 2)                     \
    X(SESSION_TOO_OLD, "session_too_old", "credential", 2)                   \
    X(DPOP_MISMATCH, "dpop_mismatch", "credential", 1)                       \
    X(DPOP_REPLAY, "dpop_replay", "credential", 1)                           \
    X(DPOP_STALE, "dpop_stale", "credential", 2)                             \
    X(DPOP_MISSING, "dpop_missing", "credential", 1)                         \
    X(UNDOCUMENTED_ENDPOINT, "undocumented_endpoint", "policy", 2)           \
    X(METHOD_OVERRIDE, "method_override", "policy", 1)

enum alert_kind {
#define ALERT_KIND_ENUM(e, n, c, s) ALERT_##e,
    ALERT_KINDS(ALERT_KIND_ENUM)
#undef ALERT_KIND_ENUM
    ALERT__COUNT
};

const char *alert_kind_name(enum alert_kind k);
const char *alert_kind_category(enum alert_kind k);
int alert_kind_default_severity(enum alert_kind k);
/* -1 when unknown. */
int alert_kind_from_name(const char *name);

/* What a detection hands to the alerts module. Everything is copied by
 * alerts_submit(); the caller keeps ownership of `txn`. `evidence` is a
 * new reference handed over (may be NULL). */
struct alert_finding {
    enum alert_kind kind;
    int severity;          /* 1 high .. 3 low; 0 = the kind's default */
    kw_ts ts;              /* packet time of the triggering request */
    char subject[256];     /* what the alert is about, for dedup: a path
                              template, a source network, an hour... */
    char summary[1024];    /* one human sentence */
    char rule[256];        /* "rules.d/acme.yaml:12" or "" for baselines */
    char timezone[64];     /* identity's time zone, for local-time display */
    json_t *evidence;      /* {"expected":..., "observed":...} */
    const struct kw_txn *txn; /* triggering request (borrowed) */
};

#endif
