/* judge_cred: the detections that need no identity, only a credential
 * or a source: an unknown credential accepted, refusals in a burst,
 * credential stuffing, id enumeration, expired or unsigned JWTs accepted.
 * Their windows are judge_table.c's sliding counters. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "judge_int.h"
#include "kw_json.h"

/* The API did what was asked: a 2xx/3xx answer, and for a gRPC call no
 * error in grpc-status (gRPC answers every call, refused ones included,
 * with HTTP 200). */
bool jp_success(const struct kw_txn *t)
{
    if (t->has_grpc_status && t->grpc_status != 0) return false;
    return t->status >= 200 && t->status < 400;
}

bool jp_is_session(const struct kw_txn *t)
{
    return (t->flags & KW_TXN_F(TLS_SESSION)) != 0;
}

void jp_check_unknown(struct jp_ctx *c)
{
    const struct kw_txn *t = c->t;
    const struct rules_detection *d = &c->m->detections.unknown_credential;
    /* a TLS session's client certificate was accepted when the handshake
     * went on (the session record is made at its end) */
    bool accepted = jp_is_session(t) || jp_success(t);
    if (c->id || !d->severity || t->cred.kind == KW_CRED_NONE || !accepted) return;
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_UNKNOWN_CREDENTIAL, &d->loc);
    f.severity = jp_det_severity(d);
    jp_subject(&f, t->cred.fingerprint, NULL);
    /* an unknown credential in use fires on every request it makes: the
     * alert is open after the first, so skip the summary and evidence */
    if (jp_repeat(c, &f)) return;
    char src[48];
    kw_addr_str(&t->src, src, sizeof src);
    if (jp_is_session(t))
        jp_fmt(f.summary, sizeof f.summary,
            "Unknown %s from %s was accepted in an encrypted TLS session to %s; no identity "
            "claims it",
            jp_cred(c), src, t->tls.sni[0] ? t->tls.sni : "(no SNI)");
    else
        jp_fmt(f.summary, sizeof f.summary,
            "Unknown %s from %s was accepted: %s %s answered %d; "
            "no identity claims it",
            jp_cred(c), src, t->method, t->path, t->status);
    jp_evidence(&f, json_string("a credential claimed by an identity"),
             json_pack("{ssss}", "fingerprint", t->cred.fingerprint, "source", t->cred.source));
    jp_fire(c, &f);
}

/* Refused for its credential: 401/403, or a gRPC call answered
 * UNAUTHENTICATED (16) or PERMISSION_DENIED (7), which gRPC sends with
 * HTTP status 200. */
static void check_failed_auth(struct jp_ctx *c)
{
    const struct kw_txn *t = c->t;
    const struct rules_detection *d = &c->m->detections.failed_auth;
    if (!d->severity || !kw_txn_refused(t) || !t->cred.fingerprint[0]) return;
    struct hasher h = jp_hash_begin(c->jp, TAG_FAIL);
    jp_hash_str(&h, t->cred.fingerprint);
    struct jp_key *e = jp_key_get(c->jp, TAG_FAIL, jp_hash_done(&h), t->ts);
    uint32_t est;
    if (!jp_slide_add(c->jp, e, t->ts, KW_TS_SEC(d->window_s), 1, d->threshold, &est)) return;
    char src[48];
    kw_addr_str(&t->src, src, sizeof src);
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_FAILED_AUTH_BURST, &d->loc);
    f.severity = jp_det_severity(d);
    jp_subject(&f, t->cred.fingerprint, NULL);
    if (jp_repeat(c, &f)) return;
    char cred[192];
    snprintf(cred, sizeof cred, "%s", jp_cred(c));
    if (!c->id) cred[0] = (char)toupper((unsigned char)cred[0]);
    jp_fmt(f.summary, sizeof f.summary,
        "%s%s%s was refused %u times (401/403, gRPC 16/7) within %llds; "
        "last from %s",
        c->id ? jp_who(c) : "", c->id ? " " : "", cred, est, (long long)d->window_s, src);
    jp_evidence(&f,
             json_pack("{sisI}", "max_failures", d->threshold, "window_s", (json_int_t)d->window_s),
             t->has_grpc_status
                 ? json_pack("{sisisi}", "failures", est, "last_status", t->status,
                             "last_grpc_status", t->grpc_status)
                 : json_pack("{sisi}", "failures", est, "last_status", t->status));
    jp_fire(c, &f);
}

static void check_stuffing(struct jp_ctx *c)
{
    const struct kw_txn *t = c->t;
    const struct rules_detection *d = &c->m->detections.credential_stuffing;
    if (c->id || !d->severity || t->cred.kind == KW_CRED_NONE || !t->cred.fingerprint[0]) return;
    kw_ts win = KW_TS_SEC(d->window_s);
    struct hasher h = jp_hash_begin(c->jp, TAG_STUFF_PAIR);
    jp_hash_bytes(&h, &t->src, sizeof t->src);
    jp_hash_str(&h, t->cred.fingerprint);
    if (!jp_pair_new(c->jp, jp_hash_done(&h), t->ts, win)) return;
    h = jp_hash_begin(c->jp, TAG_STUFF);
    jp_hash_bytes(&h, &t->src, sizeof t->src);
    struct jp_key *e = jp_key_get(c->jp, TAG_STUFF, jp_hash_done(&h), t->ts);
    uint32_t est;
    if (!jp_slide_add(c->jp, e, t->ts, win, 1, d->threshold, &est)) return;
    char src[48];
    kw_addr_str(&t->src, src, sizeof src);
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_CREDENTIAL_STUFFING, &d->loc);
    f.severity = jp_det_severity(d);
    jp_subject(&f, src, NULL);
    if (jp_repeat(c, &f)) return;
    jp_fmt(f.summary, sizeof f.summary,
        "%s tried %u different unknown credentials within "
        "%llds (last: %s %s answered %d)",
        src, est, (long long)d->window_s, t->method, t->path, t->status);
    jp_evidence(&f,
             json_pack("{sisI}", "max_distinct_credentials", d->threshold, "window_s",
                       (json_int_t)d->window_s),
             json_pack("{siss}", "distinct_credentials", est, "source", src));
    jp_fire(c, &f);
}

/* The concrete values under the template's {…} segments: "/v1/orders/{id}"
 * over "/v1/orders/123" gives "123". False when there is none. */
static bool template_ids(const char *tmpl, const char *path, struct hasher *h)
{
    bool any = false;
    while (*tmpl && *path) {
        size_t tl = strcspn(tmpl + 1, "/") + 1, pl = strcspn(path + 1, "/") + 1;
        if (memchr(tmpl, '{', tl)) {
            jp_hash_bytes(h, path, pl);
            any = true;
        }
        tmpl += tl;
        path += pl;
    }
    return any;
}

static void check_enumeration(struct jp_ctx *c)
{
    const struct kw_txn *t = c->t;
    const struct rules_detection *d = &c->m->detections.enumeration;
    if (!d->severity || !t->template_[0] || !strchr(t->template_, '{')) return;
    /* who: the identity, else the credential, else the source address */
    struct hasher k = jp_hash_begin(c->jp, TAG_ENUM);
    if (c->id)
        jp_hash_str(&k, c->id->id);
    else if (t->cred.fingerprint[0])
        jp_hash_str(&k, t->cred.fingerprint);
    else
        jp_hash_bytes(&k, &t->src, sizeof t->src);
    jp_hash_str(&k, t->method);
    jp_hash_str(&k, t->template_);
    uint64_t key = jp_hash_done(&k);
    struct hasher p = jp_hash_begin(c->jp, TAG_ENUM_PAIR);
    jp_hash_bytes(&p, &key, sizeof key);
    if (!template_ids(t->template_, t->path, &p)) return;
    kw_ts win = KW_TS_SEC(d->window_s);
    if (!jp_pair_new(c->jp, jp_hash_done(&p), t->ts, win)) return;
    struct jp_key *e = jp_key_get(c->jp, TAG_ENUM, key, t->ts);
    uint32_t est;
    if (!jp_slide_add(c->jp, e, t->ts, win, 1, d->threshold, &est)) return;
    char src[48];
    kw_addr_str(&t->src, src, sizeof src);
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_ENUMERATION, &d->loc);
    f.severity = jp_det_severity(d);
    jp_subject(&f, t->method, t->template_);
    if (jp_repeat(c, &f)) return;
    jp_fmt(f.summary, sizeof f.summary,
        "%s requested %u different ids under %s %s within "
        "%llds",
        c->id ? jp_who(c) : src, est, t->method, t->template_, (long long)d->window_s);
    jp_evidence(
        &f,
        json_pack("{sisI}", "max_distinct_ids", d->threshold, "window_s", (json_int_t)d->window_s),
        json_pack("{siso}", "distinct_ids", est, "last_path",
                  kw_json_bytes((const uint8_t *)t->path, strlen(t->path))));
    jp_fire(c, &f);
}

static void check_expired(struct jp_ctx *c)
{
    const struct kw_txn *t = c->t;
    const struct kw_jwt_claims *j = &t->cred.jwt;
    if (t->cred.kind != KW_CRED_JWT || !jp_success(t)) return;
    bool none = !strcasecmp(j->alg, "none");
    bool expired = j->has_exp && KW_TS_SEC(j->exp) < t->ts;
    if (!none && !expired) return;
    char exp[32] = "", now[32];
    if (j->has_exp) kw_ts_format_rfc3339(KW_TS_SEC(j->exp), exp, sizeof exp);
    kw_ts_format_rfc3339(t->ts, now, sizeof now);
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_EXPIRED_TOKEN_ACCEPTED, c->id ? &c->id->loc : NULL);
    jp_subject(&f, none ? "alg_none" : "expired", t->cred.fingerprint);
    if (jp_repeat(c, &f)) return;
    if (none)
        jp_fmt(f.summary, sizeof f.summary,
            "%s%sunsigned JWT (alg none) %s was accepted: %s %s "
            "answered %d; the server is not checking signatures",
            c->id ? jp_who(c) : "", c->id ? " used an " : "An ", t->cred.hint, t->method, t->path,
            t->status);
    else
        jp_fmt(f.summary, sizeof f.summary,
            "%s%sJWT %s that expired at %s was accepted at %s: "
            "%s %s answered %d; the server is not checking exp",
            c->id ? jp_who(c) : "", c->id ? " used a " : "A ", t->cred.hint, exp, now, t->method,
            t->path, t->status);
    jp_evidence(&f, json_string(none ? "a signed token" : "a token used before its exp"),
             json_pack("{ss*ss}", "exp", j->has_exp ? exp : NULL, "alg", j->alg));
    jp_fire(c, &f);
}

void jp_check_credential(struct jp_ctx *c)
{
    check_failed_auth(c);
    check_stuffing(c);
    check_enumeration(c);
    check_expired(c);
}
