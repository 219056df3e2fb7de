/* judge_policy: an identity's explicit policy from the rules (access
 * window, schedule, sources, scopes, limits), the finding helpers every
 * check uses, and the order the checks run in (see judge_policy.h).
 * `limits` are per UTC clock hour of packet time (a fixed hour, reset on
 * the hour), which is what "600 requests per hour" means to a contract.
 * The bounded tables are judge_table.c; the credential detections
 * judge_cred.c; OAuth judge_oauth.c. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "judge_int.h"
#include "kw_json.h"
#include "kw_str.h"
#include "persona.h"

/* ---- findings ------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) void jp_fmt(char *buf, size_t len, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, len, f, ap);
    va_end(ap);
}


/* Most findings repeat one still open and end in jp_repeat (an unknown
 * credential on each of its requests, the same scope breach again), so
 * this runs on a large share of transactions: each field is set, not the
 * 1.6 KB struct cleared, and nothing goes through printf. */
void jp_finding_init(struct jp_ctx *c, struct alert_finding *f, enum alert_kind k,
                     const struct rules_loc *loc)
{
    f->kind = k;
    f->severity = 0;
    f->ts = c->t->ts;
    f->subject[0] = f->summary[0] = f->rule[0] = f->timezone[0] = '\0';
    f->evidence = NULL;
    f->txn = c->t;
    if (c->id) kw_stpecpy(f->timezone, f->timezone + sizeof f->timezone, kw_tz_name(c->id->tz));
    if (loc && loc->file && loc->line > 0) {
        char *e = f->rule + sizeof f->rule;
        kw_stpeu(kw_stpechr(kw_stpecpy(f->rule, e, loc->file), e, ':'), e, (uint64_t)loc->line);
    }
}

void jp_subject(struct alert_finding *f, const char *a, const char *b)
{
    char *e = f->subject + sizeof f->subject, *p = kw_stpecpy(f->subject, e, a);
    if (b) kw_stpecpy(kw_stpechr(p, e, ' '), e, b);
}

void jp_evidence(struct alert_finding *f, json_t *expected, json_t *observed)
{
    f->evidence = json_object();
    if (!f->evidence) {
        json_decref(expected);
        json_decref(observed);
        return;
    }
    json_object_set_new(f->evidence, "expected", expected ? expected : json_null());
    json_object_set_new(f->evidence, "observed", observed ? observed : json_null());
}

void judge_policy_set_repeat(struct judge_policy *jp, judge_policy_repeat_fn fn, void *user)
{
    jp->repeat = fn;
    jp->repeat_user = user;
}

bool jp_repeat(struct jp_ctx *c, struct alert_finding *f)
{
    if (!c->jp->repeat || !c->jp->repeat(c->jp->repeat_user, f)) return false;
    c->jp->cnt.findings[f->kind]++; /* as jp_fire counts it */
    return true;
}

void jp_fire(struct jp_ctx *c, struct alert_finding *f)
{
    c->jp->cnt.findings[f->kind]++;
    c->emit(c->user, f);
}

int jp_det_severity(const struct rules_detection *d)
{
    return d->severity < 0 ? 0 : d->severity;
}

const char *jp_who(struct jp_ctx *c)
{
    if (!c->have_who && c->id) {
        if (strcmp(c->id->id, c->id->name))
            snprintf(c->who, sizeof c->who, "%s %s", c->id->id, c->id->name);
        else
            snprintf(c->who, sizeof c->who, "%s", c->id->id);
    }
    c->have_who = true;
    return c->who;
}

static void describe_cred(const struct kw_txn *t, char *buf, size_t len);

const char *jp_cred(struct jp_ctx *c)
{
    if (c->have_cred) return c->cred;
    c->have_cred = true;
    describe_cred(c->t, c->cred, sizeof c->cred);
    if (jp_is_session(c->t) && c->id) {
        /* no HTTP to show: say plainly what was seen */
        char what[sizeof c->cred];
        snprintf(what, sizeof what, "%s", c->cred);
        jp_fmt(c->cred, sizeof c->cred, "an encrypted TLS session to %s (%s)",
               c->t->tls.sni[0] ? c->t->tls.sni : "(no SNI)",
               c->t->cred.kind == KW_CRED_NONE ? "no credential visible; known by its source address"
                                               : what);
    }
    return c->cred;
}

static void describe_cred(const struct kw_txn *t, char *buf, size_t len)
{
    const struct kw_cred *c = &t->cred;
    const char *hint = c->hint[0] ? c->hint : c->fingerprint;
    switch (c->kind) {
    case KW_CRED_BASIC:
        snprintf(buf, len, "account %s", c->basic_user);
        break;
    case KW_CRED_JWT:
        snprintf(buf, len, "token %s", hint);
        break;
    case KW_CRED_NONE:
        snprintf(buf, len, "no credential");
        break;
    case KW_CRED_CLIENT_CERT:
        snprintf(buf, len, "client certificate %s", hint);
        break;
    default:
        snprintf(buf, len, "key %s", hint);
        break;
    }
}

const char *jp_endpoint(const struct kw_txn *t)
{
    return t->template_[0] ? t->template_ : t->path;
}

/* "2026-07-01 09:15" local to tz. */
void jp_local_stamp(const struct kw_tz *tz, kw_ts ts, char *buf, size_t len)
{
    time_t s = (time_t)jp_floor_div(ts, 1000000);
    s += kw_tz_offset(tz, s);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M", &tm);
}

/* ---- identity policy ------------------------------------------------ */

/* rules_schedule_allows, through the judge's cache of answers. */
static bool schedule_allows(struct jp_ctx *c)
{
    const struct rules_schedule *s = &c->id->schedule;
    kw_ts ts = c->t->ts, until;
    const struct rules_model *m = c->m;
    if (c->id < m->identities || c->id >= m->identities + m->n_identities)
        return rules_schedule_allows(s, c->id->tz, ts); /* not this model's: no place */
    size_t idx = (size_t)(c->id - m->identities);
    struct jp_sched *e = &c->jp->sched[idx % JP_SCHED];
    if (e->serial == m->serial && e->idx == idx && ts >= e->from && ts < e->until) return e->ok;
    bool ok = rules_schedule_allows_span(s, c->id->tz, ts, &until);
    *e = (struct jp_sched){.serial = m->serial, .idx = idx, .from = ts, .until = until, .ok = ok};
    return ok;
}

static void check_schedule(struct jp_ctx *c)
{
    const struct rules_schedule *s = &c->id->schedule;
    if (!s->set || schedule_allows(c)) return;
    char when[32], allowed[96];
    rules_local_describe(c->id->tz, c->t->ts, when, sizeof when);
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_OFF_HOURS, &s->loc);
    /* subject: the local hour and day, so one alert per off-hours hour */
    char *se = f.subject + sizeof f.subject;
    kw_stpecpy(kw_stpecpy(kw_stpencpy(f.subject, se, when, 2), se, ":00 "), se, when + 6);
    if (jp_repeat(c, &f)) return;
    rules_schedule_describe(s, allowed, sizeof allowed);
    /* Severity grows with the distance from the schedule: minutes past
     * the grace are low, hours medium, the middle of the night high
     * (docs/rules.md). */
    int64_t dist = rules_schedule_distance(s, c->id->tz, c->t->ts);
    f.severity = dist <= 2 * 3600 ? 3 : dist <= 6 * 3600 ? 2 : 1;
    char far[48];
    if (dist < 3600)
        snprintf(far, sizeof far, "%lld min", (long long)(dist / 60));
    else
        snprintf(far, sizeof far, "%lld h %02lld min", (long long)(dist / 3600),
                 (long long)(dist / 60 % 60));
    jp_fmt(f.summary, sizeof f.summary, "%s used %s at %s (%s), %s outside its schedule; allowed %s",
        jp_who(c), jp_cred(c), when, kw_tz_name(c->id->tz), far, allowed);
    json_t *obs = json_pack("{s:s,s:I}", "local_time", when, "minutes_outside",
                            (json_int_t)(dist / 60));
    json_t *exp = json_pack("{s:s,s:I}", "schedule", allowed, "grace_minutes",
                            (json_int_t)(s->grace_s / 60));
    jp_evidence(&f, exp, obs);
    jp_fire(c, &f);
}

static void check_access(struct jp_ctx *c)
{
    const struct rules_access *a = &c->id->access;
    int r = rules_access_check(a, c->t->ts);
    if (!r) return;
    char now[40], edge[40];
    jp_local_stamp(c->id->tz, c->t->ts, now, sizeof now);
    kw_ts_format_rfc3339(KW_TS_SEC(r < 0 ? a->from_s : a->until_s), edge, sizeof edge);
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_OUTSIDE_ACCESS_WINDOW, &a->loc);
    jp_subject(&f, r < 0 ? "before_from" : "after_until", NULL);
    if (jp_repeat(c, &f)) return;
    jp_fmt(f.summary, sizeof f.summary, "%s used %s at %s (%s), %s (%s)", jp_who(c), jp_cred(c), now,
        kw_tz_name(c->id->tz), r < 0 ? "before its access starts" : "after its access ended",
        edge);
    json_t *exp = json_object();
    char b[40];
    if (a->has_from)
        json_object_set_new(exp, "from",
                            json_string(kw_ts_format_rfc3339(KW_TS_SEC(a->from_s), b, sizeof b)));
    if (a->has_until)
        json_object_set_new(exp, "until",
                            json_string(kw_ts_format_rfc3339(KW_TS_SEC(a->until_s), b, sizeof b)));
    jp_evidence(&f, exp, json_string(kw_ts_format_rfc3339(c->t->ts, b, sizeof b)));
    jp_fire(c, &f);
}

static void check_sources(struct jp_ctx *c)
{
    const struct rules_identity *id = c->id;
    if (!c->t->src.family || rules_sources_allow(id, &c->t->src)) return;
    char src[48], net[64], list[256];
    kw_addr_str(&c->t->src, src, sizeof src);
    struct kw_addr n = c->t->src;
    unsigned plen = n.family == 4 ? 24 : 64; /* subject: the /24 or /64 */
    for (unsigned b = plen; b < (n.family == 4 ? 32u : 128u); b++)
        n.a[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
    kw_addr_str(&n, net, sizeof net);
    size_t o = 0;
    json_t *exp = json_array();
    list[0] = 0;
    for (size_t i = 0; i < id->n_sources; i++) {
        char a[48], cidr[56];
        kw_addr_str(&id->sources[i].net, a, sizeof a);
        snprintf(cidr, sizeof cidr, "%s/%u", a, id->sources[i].prefix);
        json_array_append_new(exp, json_string(cidr));
        if (i < 3 && o < sizeof list)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", cidr);
        else if (i == 3 && o < sizeof list)
            o += (size_t)snprintf(list + o, sizeof list - o, " +%zu more", id->n_sources - 3);
    }
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_SOURCE_NOT_ALLOWED, &id->sources_loc);
    char *se = f.subject + sizeof f.subject;
    kw_stpeu(kw_stpechr(kw_stpecpy(f.subject, se, net), se, '/'), se, plen);
    jp_fmt(f.summary, sizeof f.summary, "%s used %s from %s, outside its allowed sources (%s)", jp_who(c),
        jp_cred(c), src, list);
    jp_evidence(&f, exp, json_string(src));
    jp_fire(c, &f);
}

/* The tail of a scope summary: why the rules forbid `method path`. */
static void scope_why(const struct jp_ctx *c, enum rules_scope_verdict v,
                      const struct rules_pattern *p, char *buf, size_t len)
{
    if (v == RULES_SCOPE_DENIED)
        jp_fmt(buf, len, ", which its deny rule \"%s\" forbids", p->text);
    else if (v == RULES_SCOPE_METHOD)
        jp_fmt(buf, len, "; its scope allows this path only as \"%s\"", p->text);
    else
        jp_fmt(buf, len, ", outside its scope (%zu pattern%s)", c->id->n_scope,
               c->id->n_scope == 1 ? "" : "s");
}

static json_t *scope_expected(const struct jp_ctx *c, enum rules_scope_verdict v,
                              const struct rules_pattern *p)
{
    if (v == RULES_SCOPE_DENIED) return json_pack("{s:s}", "deny", p->text);
    json_t *exp = json_array();
    for (size_t i = 0; i < c->id->n_scope; i++)
        json_array_append_new(exp, json_string(c->id->scope[i].text));
    return exp;
}

/* generic only, after the wire and override readings passed: the loose
 * reading (persona_loose: case, ";params", a suffix ignored, as Express,
 * Spring and Tomcat were measured to do) against the deny rules alone. A
 * deny rule is what these tricks walk past; an allowlist already refuses
 * the wire reading, and judging the loose one against it would refuse
 * what a strict backend serves (an allowed "*.pdf" without its suffix). */
static void check_loose(struct jp_ctx *c)
{
    const struct kw_txn *t = c->t;
    static _Thread_local char lp[sizeof t->path];
    size_t ll;
    unsigned how = persona_loose(t, lp, sizeof lp, &ll);
    const struct rules_pattern *p = NULL;
    if (!how ||
        rules_scope_check_case(c->id, t->method, t->hostname, lp, true, &p) != RULES_SCOPE_DENIED)
        return;
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_OUT_OF_SCOPE, &p->loc);
    jp_subject(&f, t->method, lp);
    if (jp_repeat(c, &f)) return;
    char trick[200];
    persona_describe_how(how, trick, sizeof trick);
    jp_fmt(f.summary, sizeof f.summary,
           "%s called %s %s on %s; a backend that reads it loosely (%s) runs %s %s, which its deny "
           "rule \"%s\" forbids",
           jp_who(c), t->method, t->path, t->hostname[0] ? t->hostname : "(no host)", trick, t->method,
           lp, p->text);
    char obs[2400], run[2400];
    jp_fmt(obs, sizeof obs, "%s %s %s", t->method, t->hostname, t->path);
    jp_fmt(run, sizeof run, "%s %s %s", t->method, t->hostname, lp);
    jp_evidence(&f, json_pack("{s:s}", "deny", p->text),
                json_pack("{s:o,s:o,s:s,s:s}", "request",
                          kw_json_bytes((const uint8_t *)obs, strlen(obs)), "runs_as",
                          kw_json_bytes((const uint8_t *)run, strlen(run)), "by", trick, "backend",
                          "generic"));
    jp_fire(c, &f);
}

/* Scope, deny and method rules, on the request as sent and on what the
 * service's backend runs for it (kw_txn.eff_*, persona.h): a personality's
 * reading replaces the wire one; with `generic` both are judged, and an
 * override that would make a forbidden call fires even though the wire
 * request is allowed. The alert names the trick. */
static void check_scope(struct jp_ctx *c)
{
    const struct kw_txn *t = c->t;
    bool eff = t->eff_method[0] || t->eff_path[0];
    bool certain = persona_certain(t);
    bool nocase = certain && (persona_get((enum rules_backend)t->backend)->path & PERSONA_NOCASE);
    const char *em = t->eff_method[0] ? t->eff_method : t->method;
    const char *ep = t->eff_path[0] ? t->eff_path : t->path;
    const char *host = t->hostname[0] ? t->hostname : "(no host)";
    const struct rules_pattern *p = NULL;
    enum rules_scope_verdict v = RULES_SCOPE_OK;
    bool on_eff = false;
    if (!certain) v = rules_scope_check(c->id, t->method, t->hostname, t->path, &p);
    if (v == RULES_SCOPE_OK && (eff || certain)) {
        v = rules_scope_check_case(c->id, em, t->hostname, ep, nocase, &p);
        on_eff = eff;
    }
    if (v == RULES_SCOPE_OK) {
        if (!certain) check_loose(c);
        return;
    }
    bool override = on_eff && (t->eff_how & (PERSONA_EFF_METHOD | PERSONA_EFF_URL));
    enum alert_kind k = override                  ? ALERT_METHOD_OVERRIDE
                        : v == RULES_SCOPE_METHOD ? ALERT_METHOD_NOT_ALLOWED
                                                  : ALERT_OUT_OF_SCOPE;
    struct alert_finding f;
    jp_finding_init(c, &f, k, p ? &p->loc : &c->id->scope_loc);
    if (on_eff)
        jp_subject(&f, em, ep);
    else
        jp_subject(&f, t->method, jp_endpoint(t));
    if (jp_repeat(c, &f)) return;
    char why[640], trick[1400] = "";
    scope_why(c, v, p, why, sizeof why);
    if (eff) persona_describe(t, trick, sizeof trick);
    const char *be = rules_backend_name((enum rules_backend)t->backend);
    if (!on_eff)
        jp_fmt(f.summary, sizeof f.summary, "%s called %s %s on %s%s%s%s%s", jp_who(c), t->method,
               t->path, host, why, trick[0] ? " (it also sent " : "", trick, trick[0] ? ")" : "");
    else if (certain)
        jp_fmt(f.summary, sizeof f.summary, "%s called %s %s on %s; %s runs it as %s %s (%s)%s",
               jp_who(c), t->method, t->path, host, be, em, ep, trick, why);
    else
        jp_fmt(f.summary, sizeof f.summary,
               "%s called %s %s on %s with %s; a backend that honours it runs %s %s%s", jp_who(c),
               t->method, t->path, host, trick, em, ep, why);
    char obs[2400];
    jp_fmt(obs, sizeof obs, "%s %s %s", t->method, host, t->path);
    json_t *o = kw_json_bytes((const uint8_t *)obs, strlen(obs));
    if (on_eff) {
        char run[2400];
        jp_fmt(run, sizeof run, "%s %s %s", em, host, ep);
        o = json_pack("{s:o,s:o,s:o,s:s}", "request", o, "runs_as",
                      kw_json_bytes((const uint8_t *)run, strlen(run)), "by",
                      kw_json_bytes((const uint8_t *)trick, strlen(trick)), "backend", be);
    }
    jp_evidence(&f, scope_expected(c, v, p), o);
    jp_fire(c, &f);
}

static void rate_fire(struct jp_ctx *c, const char *what, uint64_t seen, uint64_t limit, kw_ts hour)
{
    char start[32];
    kw_ts_format_rfc3339(hour, start, sizeof start);
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_RATE_EXCEEDED, &c->id->limits.loc);
    jp_subject(&f, what, NULL);
    if (!strcmp(what, "requests_per_hour"))
        jp_fmt(f.summary, sizeof f.summary,
            "%s made %llu requests in the hour from %.16s UTC; "
            "limit %llu per hour",
            jp_who(c), (unsigned long long)seen, start, (unsigned long long)limit);
    else
        jp_fmt(f.summary, sizeof f.summary,
            "%s received %llu response bytes in the hour from "
            "%.16s UTC; limit %llu per hour",
            jp_who(c), (unsigned long long)seen, start, (unsigned long long)limit);
    jp_evidence(&f, json_pack("{sI}", what, (json_int_t)limit),
             json_pack("{sIss}", what, (json_int_t)seen, "hour", start));
    jp_fire(c, &f);
}

static void check_rate(struct jp_ctx *c)
{
    const struct rules_limits *l = &c->id->limits;
    if (!l->requests_per_hour && !l->response_bytes_per_hour) return;
    struct hasher h = jp_hash_begin(c->jp, TAG_RATE);
    jp_hash_str(&h, c->id->id);
    struct jp_key *e = jp_key_get(c->jp, TAG_RATE, jp_hash_done(&h), c->t->ts);
    int64_t hour = jp_floor_div(c->t->ts, HOUR_US);
    if (hour > e->bucket) { /* a fixed UTC clock hour */
        e->bucket = hour;
        e->cur = 0;
        e->bytes = 0;
        e->fired = 0;
    }
    e->last = c->t->ts > e->last ? c->t->ts : e->last;
    e->cur = e->cur == UINT32_MAX ? e->cur : e->cur + 1;
    e->bytes += c->t->resp_len;
    if (l->requests_per_hour && e->cur > l->requests_per_hour && !(e->fired & 1)) {
        e->fired |= 1;
        rate_fire(c, "requests_per_hour", e->cur, l->requests_per_hour, hour * HOUR_US);
    }
    if (l->response_bytes_per_hour && e->bytes > l->response_bytes_per_hour && !(e->fired & 2)) {
        e->fired |= 2;
        rate_fire(c, "response_bytes_per_hour", e->bytes, l->response_bytes_per_hour,
                  hour * HOUR_US);
    }
}

void judge_policy_check(struct judge_policy *jp, const struct rules_model *m,
                        const struct rules_identity *id, const struct kw_txn *t,
                        judge_policy_emit_fn emit, void *user)
{
    judge_policy_check_doc(jp, m, id, t, NULL, emit, user);
}

void judge_policy_check_doc(struct judge_policy *jp, const struct rules_model *m,
                            const struct rules_identity *id, const struct kw_txn *t,
                            const struct rules_scope_req *doc, judge_policy_emit_fn emit,
                            void *user)
{
    struct jp_ctx c = {.jp = jp, .m = m, .id = id, .t = t, .emit = emit, .user = user, .doc = doc};
    jp->cnt.checked++;
    if (id) {
        check_access(&c);
        check_schedule(&c);
        check_sources(&c);
        if (!jp_is_session(t)) {
            check_scope(&c);
            check_rate(&c);
        }
    }
    jp_check_unknown(&c);
    if (jp_is_session(t))
        return; /* the rest judge HTTP requests */
    jp_check_credential(&c);
    jp_check_oauth(&c);
}
