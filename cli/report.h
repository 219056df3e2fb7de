/* report: what `keywarden report` shows, gathered from the database
 * (report_data.c) and written as one self-contained HTML page
 * (report_html.c, report_svg.c).
 *
 * The one thing to know: everything here was read from the audit trail,
 * the stored alert records and the baselines through the modules that own
 * those tables (audit_group_run, alerts_read, baseline_show_json), on a
 * read-only connection; the rules only add the policy (schedule, scope,
 * sources) that the activity is drawn against. Hosts, paths, user agents
 * and alert texts are network bytes and are written only through
 * rep_esc(). */
#ifndef KW_REPORT_H
#define KW_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kw_err.h"
#include "kw_time.h"
#include "kw_tz.h"
#include "rules.h"

/* Verdicts of an endpoint against the identity's scope (rules_scope_check),
 * plus "no rules" for identities the rules do not describe. */
enum rep_verdict { REP_ALLOWED, REP_DENIED, REP_METHOD, REP_OUT, REP_NO_RULE, REP__N };

struct rep_endpoint {
    char *method, *host, *name; /* name: the template, or the path when none */
    uint64_t n, n_err;          /* requests; answered >= 400 */
    uint64_t by[REP__N];        /* requests per verdict */
    kw_ts last;
};

struct rep_net {
    char net[64];   /* baseline_net_str(): /24 or /48 */
    uint64_t n;     /* requests in the period */
    uint64_t n_out; /* ... from addresses outside the identity's `sources` */
    unsigned addrs; /* distinct addresses */
    float learned;  /* decayed count in the baseline; < 0 = not learned */
    kw_ts last;
};

struct rep_cred {
    char *fingerprint, *hint;
    int kind;
    uint64_t n, n_err;
    kw_ts last;
};

/* One local day of the identity's time zone. */
struct rep_day {
    int64_t day;        /* days since 1970-01-01, local */
    uint64_t n;         /* requests */
    uint32_t hours[24]; /* requests per local hour */
};

struct rep_alert {
    kw_ts ts;
    json_t *rec;  /* the EVE alert record as stored (owned) */
    int severity; /* 1 high .. 3 low; 0 unknown */
};

struct rep_ident {
    char *id;                          /* "" = unattributed credentials */
    const struct rules_identity *rule; /* NULL: not in the rules */
    const struct kw_tz *tz;            /* the rule's zone, the baseline's, or UTC */
    struct kw_tz *own_tz;              /* loaded here (freed with the report) */
    uint64_t requests, errors;
    kw_ts first, last;
    uint64_t heat[7][24]; /* requests per local weekday (Mon = 0) and hour */
    struct rep_day *days;
    size_t n_days, cap_days;
    struct rep_endpoint *ends;
    size_t n_ends, cap_ends;
    struct rep_net *nets;
    size_t n_nets, cap_nets;
    struct rep_cred *creds;
    size_t n_creds, cap_creds;
    uint64_t *scope_hits, *deny_hits; /* per scope / deny pattern of the rule */
    struct rep_alert *alerts;
    size_t n_alerts, cap_alerts;
    unsigned alerts_by_sev[4];
    json_t *baseline; /* baseline_show_json() of its profile, or NULL */
};

struct report {
    kw_ts since, until; /* since <= ts < until */
    const char *db_path;
    const char *only;          /* --identity, or NULL */
    struct rules_model *model; /* NULL: no rules loaded */
    struct kw_tz *utc;
    struct rep_ident *ids;
    size_t n_ids, cap_ids;
    uint64_t alerts, alerts_bad; /* read; records that were not JSON (skipped) */
    uint64_t profiles_skipped;   /* baseline_load_incompatible */
    kw_ts newest;
    char *error;
};

/* Reads everything of [since, until) from db_path. The model (may be
 * NULL) is borrowed and must outlive the report. */
enum kw_err report_gather(struct report *r) KW_WUR;
void report_free(struct report *r);

/* The page. version is the keywarden version shown in the footer. */
enum kw_err report_write_html(const struct report *r, FILE *f, const char *version) KW_WUR;

/* ---- shared by the HTML writers ---- */

/* Writes s HTML-escaped (& < > " ' and control characters); bytes that are
 * not valid UTF-8 become the text \xNN, as in the EVE records. NULL = "". */
void rep_esc(FILE *f, const char *s);
/* Local day index and seconds of day of UTC second t in tz. */
void rep_local(const struct kw_tz *tz, int64_t t, int64_t *day, int *sod);
/* Monday = 0 of a local day index. */
int rep_wday(int64_t day);

/* The 7x24 heat map with the schedule drawn on it, and the daily volume
 * chart with the learned hourly range (report_svg.c). */
void rep_svg_heatmap(FILE *f, const struct report *r, const struct rep_ident *id);
void rep_svg_volume(FILE *f, const struct rep_ident *id);

#endif
