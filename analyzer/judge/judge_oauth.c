/* judge_oauth: authorization the API should have refused (issue 17).
 *
 * - scopes: the `scopes:` entries matching a request name the grants it
 *   needs; a token whose grants (JWT scope/scp/roles/groups) do not meet
 *   them is scope_not_granted_accepted when the API answered 2xx/3xx (the
 *   API did not enforce its own requirement) and scope_not_granted when
 *   it refused (401/403); scope_escalation when a token holds grants
 *   beyond its identity's max_scopes.
 * - session age: identity `session: { max_age }` against the JWT's
 *   auth_time (else iat), or, for opaque tokens, the first time this judge
 *   saw the token (a lower bound of its age: a restart forgets it, so it
 *   can miss but never invent).
 * - DPoP (RFC 9449 §4.3): when the API accepted the request, the proof
 *   must fit it (htm, htu, ath), be fresh (iat within the window) and new
 *   (jti not seen within twice the window), and a token bound to a key
 *   (cnf.jkt, or sent with the DPoP scheme) needs a proof signed by that
 *   key.
 *
 * The one thing to know: nothing here claims a token is genuine. Access
 * tokens are not verified (we hold no issuer keys); the findings are about
 * what the API accepted given what the token itself says. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "judge_int.h"
#include "persona.h"
#include "kw_json.h"

/* The token's grants are known: a JWT with at least one grant claim. */
static bool grants_known(const struct kw_txn *t)
{
    return t->cred.kind == KW_CRED_JWT && t->cred.jwt.has_scope;
}

static const char *actor(struct jp_ctx *c)
{
    return c->id ? jp_who(c) : "An unattributed client";
}

static json_t *alts_json(const struct rules_scope_req *r)
{
    json_t *a = json_array();
    for (size_t i = 0; i < r->n_alts; i++)
        json_array_append_new(a, json_string(r->alts[i]));
    return a;
}

/* The first requirement of the request the grants do not meet: the rules
 * files' `scopes:` entries that match it, or, where none does, the
 * service's OpenAPI document (the operator's word before the document's).
 * The request as sent and as its backend runs it (kw_txn.eff_*,
 * persona.h), like scope and deny rules: a personality's reading alone,
 * generic's both; *on_eff tells which reading fell short. */
static const struct rules_scope_req *unmet_req(struct jp_ctx *c, const char *grants,
                                               size_t *applied, bool *on_eff)
{
    const struct kw_txn *t = c->t;
    bool eff = t->eff_method[0] || t->eff_path[0];
    const struct rules_scope_req *r = NULL;
    *applied = 0;
    *on_eff = false;
    if (c->m->n_scope_reqs && (!eff || !persona_certain(t)))
        r = rules_scopes_unmet(c->m, t->method, t->hostname, t->path, grants, applied);
    if (!*applied && c->doc && c->doc->n_alts) {
        *applied = 1;
        r = rules_scope_req_met(c->doc, grants) ? NULL : c->doc;
    }
    if (!r && eff && c->m->n_scope_reqs) {
        size_t more = 0;
        r = rules_scopes_unmet(c->m, t->eff_method[0] ? t->eff_method : t->method, t->hostname,
                               t->eff_path[0] ? t->eff_path : t->path, grants, &more);
        *applied += more;
        *on_eff = r != NULL;
    }
    return r;
}

static void check_scopes(struct jp_ctx *c)
{
    const struct kw_txn *t = c->t;
    if (!c->m->n_scope_reqs && !c->doc) return;
    bool accepted = jp_success(t), refused = kw_txn_refused(t);
    if (!accepted && !refused) return;
    size_t applied = 0;
    bool on_eff;
    const char *grants = t->cred.jwt.scope;
    if (!grants_known(t)) {
        if (t->cred.kind != KW_CRED_NONE && (unmet_req(c, "", &applied, &on_eff), applied))
            c->jp->cnt.scopes_unknown++;
        return;
    }
    const struct rules_scope_req *r = unmet_req(c, grants, &applied, &on_eff);
    if (!r) return;
    struct alert_finding f;
    jp_finding_init(c, &f, accepted ? ALERT_SCOPE_NOT_GRANTED_ACCEPTED : ALERT_SCOPE_NOT_GRANTED,
                    &r->loc);
    /* what ran, and the trick that made it run so, after the path */
    char ran[2400] = "", trick[1400];
    if (on_eff)
        jp_fmt(ran, sizeof ran, " (run as %s %s: %s)",
               t->eff_method[0] ? t->eff_method : t->method, t->eff_path[0] ? t->eff_path : t->path,
               persona_describe(t, trick, sizeof trick));
    if (on_eff)
        jp_subject(&f, t->eff_method[0] ? t->eff_method : t->method,
                   t->eff_path[0] ? t->eff_path : t->path);
    else
        jp_subject(&f, t->method, jp_endpoint(t));
    char need[256] = "";
    for (size_t i = 0; i < r->n_alts; i++)
        jp_fmt(need + strlen(need), sizeof need - strlen(need), "%s\"%s\"", i ? " or " : "",
               r->alts[i]);
    const char *host = t->hostname[0] ? t->hostname : "(no host)";
    if (accepted)
        jp_fmt(f.summary, sizeof f.summary,
               "%s called %s %s%s on %s with %s granting \"%s\", without %s that \"%s\" "
               "requires; the API answered %d: it did not enforce the scope",
               actor(c), t->method, t->path, ran, host, jp_cred(c), grants, need, r->pattern.text,
               t->status);
    else
        jp_fmt(f.summary, sizeof f.summary,
               "%s called %s %s%s on %s with %s granting \"%s\", without %s that \"%s\" "
               "requires; the API refused it (%d)",
               actor(c), t->method, t->path, ran, host, jp_cred(c), grants, need, r->pattern.text,
               t->status);
    jp_evidence(&f,
                json_pack("{s:s,s:o,s:s}", "endpoint", r->pattern.text, "any_of", alts_json(r),
                          "from", r == c->doc ? "openapi" : "rules"),
                json_pack("{s:s,s:i}", "grants", grants, "status", t->status));
    jp_fire(c, &f);
}

static void check_escalation(struct jp_ctx *c)
{
    const struct kw_txn *t = c->t;
    if (!c->id || !c->id->has_max_scopes || !grants_known(t)) return;
    char over[256];
    size_t n = rules_grants_over_cap(c->id, t->cred.jwt.scope, over, sizeof over);
    if (!n) return;
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_SCOPE_ESCALATION, &c->id->max_scopes_loc);
    jp_subject(&f, t->cred.fingerprint, NULL);
    json_t *cap = json_array();
    char caps[256] = "";
    for (size_t i = 0; i < c->id->n_max_scopes; i++) {
        json_array_append_new(cap, json_string(c->id->max_scopes[i]));
        jp_fmt(caps + strlen(caps), sizeof caps - strlen(caps), "%s%s", i ? " " : "",
               c->id->max_scopes[i]);
    }
    jp_fmt(f.summary, sizeof f.summary,
           "%s used %s holding %zu grant%s beyond its cap (\"%s\"): \"%s\"; %s %s answered %d",
           jp_who(c), jp_cred(c), n, n == 1 ? "" : "s", caps, over, t->method, t->path, t->status);
    jp_evidence(&f, json_pack("{s:o}", "max_scopes", cap),
                json_pack("{s:s,s:s}", "grants", t->cred.jwt.scope, "beyond_cap", over));
    jp_fire(c, &f);
}

/* "9h 12m" */
static void age_text(int64_t s, char *buf, size_t len)
{
    if (s >= 86400)
        jp_fmt(buf, len, "%lldd %lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
    else
        jp_fmt(buf, len, "%lldh %02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
}

static void check_session(struct jp_ctx *c)
{
    const struct kw_txn *t = c->t;
    if (!c->id || !c->id->session_max_age_s || !t->cred.fingerprint[0]) return;
    if (t->cred.kind == KW_CRED_BASIC) return; /* a password has no session to age */
    const struct kw_jwt_claims *j = &t->cred.jwt;
    kw_ts start;
    const char *from;
    bool jwt = t->cred.kind == KW_CRED_JWT && (j->has_auth_time || j->has_iat);
    if (jwt) {
        start = KW_TS_SEC(j->has_auth_time ? j->auth_time : j->iat);
        from = j->has_auth_time ? "auth_time" : "iat";
    } else {
        struct hasher h = jp_hash_begin(c->jp, TAG_SESSION);
        jp_hash_str(&h, t->cred.fingerprint);
        struct jp_key *e = jp_key_get(c->jp, TAG_SESSION, jp_hash_done(&h), t->ts);
        if (e->bucket == INT64_MIN || t->ts < e->bucket) e->bucket = t->ts; /* first sight */
        e->last = t->ts > e->last ? t->ts : e->last;
        start = e->bucket;
        from = "first_seen";
    }
    if (!jp_success(t)) return;
    kw_ts age = t->ts - start;
    if (age <= KW_TS_SEC(c->id->session_max_age_s)) return;
    char since[32], ages[32], maxs[32];
    kw_ts_format_rfc3339(start, since, sizeof since);
    age_text(age / 1000000, ages, sizeof ages);
    age_text(c->id->session_max_age_s, maxs, sizeof maxs);
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_SESSION_TOO_OLD, &c->id->session_loc);
    jp_subject(&f, t->cred.fingerprint, NULL);
    jp_fmt(f.summary, sizeof f.summary,
           "%s used %s %s %s (%s ago), past its %s session limit; %s %s answered %d",
           jp_who(c), jp_cred(c),
           !strcmp(from, "first_seen") ? "first seen at" : !strcmp(from, "iat") ? "issued at"
                                                                                 : "authenticated at",
           since, ages, maxs, t->method, t->path, t->status);
    jp_evidence(&f, json_pack("{s:I}", "max_age_s", (json_int_t)c->id->session_max_age_s),
                json_pack("{s:s,s:s,s:I}", "since", since, "from", from, "age_s",
                          (json_int_t)(age / 1000000)));
    jp_fire(c, &f);
}

/* ---- DPoP --------------------------------------------------------------- */

static bool unreserved(int ch)
{
    return isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

static int hexv(int ch)
{
    return isdigit(ch) ? ch - '0' : isxdigit(ch) ? (tolower(ch) - 'a' + 10) : -1;
}

/* RFC 9449 §4.3 check 9: htu and the request URI compared after RFC 3986
 * §6.2.2 normalisation, query and fragment left out. Here: host lower
 * case, %XX of unreserved characters decoded and other %xx upper-cased, an
 * empty path is "/"; scheme and port are left out, because a mirror behind
 * a TLS terminator or a load balancer sees another scheme and port than
 * the ones the client signed (https://api:443 arrives as http://api:8080,
 * and kw_txn.hostname carries no port). */
static void uri_key(const char *auth, size_t alen, const char *path, size_t plen, char *out,
                    size_t cap)
{
    size_t o = 0;
    const char *close = memchr(auth, ']', alen); /* "[::1]:8443" */
    const char *colon = memchr(close ? close : auth, ':', alen - (size_t)((close ? close : auth) - auth));
    if (colon) alen = (size_t)(colon - auth);
    for (size_t i = 0; i < alen && o + 1 < cap; i++)
        out[o++] = (char)tolower((unsigned char)auth[i]);
    if (!plen && o + 1 < cap) out[o++] = '/';
    for (size_t i = 0; i < plen && o + 4 < cap; i++) {
        int a = i + 2 < plen ? hexv((unsigned char)path[i + 1]) : -1;
        int b = a >= 0 ? hexv((unsigned char)path[i + 2]) : -1;
        if (path[i] == '%' && a >= 0 && b >= 0) {
            int v = a * 16 + b;
            if (unreserved(v)) {
                out[o++] = (char)v;
            } else {
                out[o++] = '%';
                out[o++] = (char)toupper((unsigned char)path[i + 1]);
                out[o++] = (char)toupper((unsigned char)path[i + 2]);
            }
            i += 2;
        } else {
            out[o++] = path[i];
        }
    }
    out[o] = 0;
}

/* Splits an absolute URI into authority and path (query/fragment cut). */
static bool split_abs(const char *u, const char **auth, size_t *alen, const char **path,
                      size_t *plen)
{
    const char *s = strstr(u, "://");
    if (!s) return false;
    *auth = s + 3;
    *alen = strcspn(*auth, "/?#");
    *path = *auth + *alen;
    *plen = strcspn(*path, "?#");
    return true;
}

static bool htu_matches(const struct kw_txn *t, const char *htu, char *req, size_t cap)
{
    const char *ha, *hp, *ra, *rp;
    size_t hal, hpl, ral, rpl;
    char hk[1024];
    if (!split_abs(htu, &ha, &hal, &hp, &hpl)) return false;
    uri_key(ha, hal, hp, hpl, hk, sizeof hk);
    if (t->url[0] == '/') {
        ra = t->hostname;
        ral = strlen(t->hostname);
        rp = t->url;
        rpl = strcspn(t->url, "?#");
    } else if (!split_abs(t->url, &ra, &ral, &rp, &rpl)) {
        req[0] = 0;
        return true; /* "*" or authority-form: nothing to compare */
    }
    uri_key(ra, ral, rp, rpl, req, cap);
    return !strcmp(hk, req);
}

static void dpop_fire(struct jp_ctx *c, enum alert_kind k, const char *subject, const char *what,
                      json_t *expected, json_t *observed)
{
    const struct kw_txn *t = c->t;
    const struct rules_detection *d = &c->m->detections.dpop;
    struct alert_finding f;
    jp_finding_init(c, &f, k, &d->loc);
    f.severity = jp_det_severity(d);
    jp_subject(&f, subject, NULL);
    jp_fmt(f.summary, sizeof f.summary, "%s sent %s with %s; %s %s answered %d", actor(c), jp_cred(c),
           what, t->method, t->path, t->status);
    jp_evidence(&f, expected, observed);
    jp_fire(c, &f);
}

static void check_dpop(struct jp_ctx *c)
{
    const struct kw_txn *t = c->t;
    const struct kw_dpop *d = &t->cred.dpop;
    const struct rules_detection *det = &c->m->detections.dpop;
    const char *jkt = t->cred.jwt.cnf_jkt;
    bool bound = t->cred.dpop_scheme || jkt[0];
    if (d->state == KW_DPOP_NONE && !bound) return;
    if (!det->severity) return;
    bool good = d->state == KW_DPOP_PARSED && d->sig_valid;
    kw_ts win = KW_TS_SEC(det->window_s);
    /* every proof's jti is remembered, refused or not: a refused first use
     * does not make an accepted second one less of a replay */
    bool replay = false;
    if (good) {
        struct hasher h = jp_hash_begin(c->jp, TAG_DPOP_JTI);
        jp_hash_str(&h, d->jkt);
        jp_hash_str(&h, d->jti);
        replay = !jp_pair_new(c->jp, jp_hash_done(&h), t->ts, 2 * win);
    }
    if (!jp_success(t)) return;

    if (bound && !good) {
        const char *why = d->state == KW_DPOP_NONE ? "no DPoP proof"
                          : d->state == KW_DPOP_BAD ? d->error
                                                    : "a proof whose signature does not verify";
        char what[160];
        jp_fmt(what, sizeof what, "a token bound to a DPoP key but %s%s", d->state == KW_DPOP_BAD ? "an unusable proof: " : "", why);
        dpop_fire(c, ALERT_DPOP_MISSING, t->cred.fingerprint, what,
                  json_pack("{s:s}", "proof", "a valid DPoP proof of the bound key"),
                  json_pack("{s:s,s:s*}", "proof", why, "cnf_jkt", jkt[0] ? jkt : NULL));
        return;
    }
    if (!good) return; /* a proof nobody asked for, unusable: nothing to compare */
    if (jkt[0] && strcmp(jkt, d->jkt)) {
        dpop_fire(c, ALERT_DPOP_MISSING, t->cred.fingerprint,
                  "a proof signed by another key than the one its token is bound to",
                  json_pack("{s:s}", "jkt", jkt), json_pack("{s:s}", "jkt", d->jkt));
        return;
    }
    char req[1024];
    if (strcmp(d->htm, t->method)) {
        char what[96];
        jp_fmt(what, sizeof what, "a DPoP proof made for %s", d->htm);
        dpop_fire(c, ALERT_DPOP_MISMATCH, "htm", what, json_pack("{s:s}", "htm", t->method),
                  json_pack("{s:s}", "htm", d->htm));
    } else if (!htu_matches(t, d->htu, req, sizeof req)) {
        dpop_fire(c, ALERT_DPOP_MISMATCH, "htu", "a DPoP proof made for another URI",
                  json_pack("{s:o}", "htu", kw_json_bytes((const uint8_t *)req, strlen(req))),
                  json_pack("{s:o}", "htu",
                            kw_json_bytes((const uint8_t *)d->htu, strlen(d->htu))));
    } else if (d->has_ath && t->cred.kind != KW_CRED_NONE && t->cred.kind != KW_CRED_BASIC &&
               !d->ath_match) {
        dpop_fire(c, ALERT_DPOP_MISMATCH, "ath", "a DPoP proof made for another access token",
                  json_pack("{s:s}", "ath", "SHA-256 of the access token sent"),
                  json_pack("{s:s}", "ath", "a hash of another token"));
    } else if (!d->has_ath && t->cred.dpop_scheme) {
        dpop_fire(c, ALERT_DPOP_MISMATCH, "ath",
                  "a DPoP proof without ath for a DPoP-bound access token",
                  json_pack("{s:s}", "ath", "SHA-256 of the access token sent"),
                  json_pack("{s:n}", "ath"));
    }
    int64_t skew = t->ts / 1000000 - d->iat;
    if (skew > det->window_s || -skew > det->window_s) {
        char what[96], when[32];
        kw_ts_format_rfc3339(KW_TS_SEC(d->iat), when, sizeof when);
        jp_fmt(what, sizeof what, "a DPoP proof made at %s (%llds %s)", when,
               (long long)(skew < 0 ? -skew : skew), skew < 0 ? "ahead" : "old");
        dpop_fire(c, ALERT_DPOP_STALE, t->cred.fingerprint[0] ? t->cred.fingerprint : d->jkt, what,
                  json_pack("{s:I}", "window_s", (json_int_t)det->window_s),
                  json_pack("{s:s,s:I}", "iat", when, "skew_s", (json_int_t)skew));
    }
    if (replay)
        dpop_fire(c, ALERT_DPOP_REPLAY, d->jti, "a DPoP proof (jti) already used",
                  json_pack("{s:s,s:I}", "jti", "unique per proof", "window_s",
                            (json_int_t)(2 * det->window_s)),
                  json_pack("{s:s,s:s}", "jti", d->jti, "jkt", d->jkt));
}

void jp_check_oauth(struct jp_ctx *c)
{
    check_scopes(c);
    check_escalation(c);
    check_session(c);
    check_dpop(c);
}
