/* alert: the kind table of alert.h and the EVE `alert` record
 * (INTERFACES.md). The record is built once, on the judge thread, and its
 * exact bytes are what the outbox stores, the EVE file holds and webhook
 * receivers get (and what the signature covers). */
#include "alert.h"

#include <stdio.h>
#include <string.h>

#include "alerts_int.h"
#include "al_util.h"
#include "kw_addr.h"
#include "kw_eve.h"
#include "kw_hash.h"
#include "kw_jw.h"
#include "kw_term.h"
#include "kw_sha256.h"
#include "kw_str.h"

static const struct {
    const char *name, *category, *signature;
    int severity;
} kinds[] = {
#define ALERT_KIND_ROW(e, n, c, s) {n, c, NULL, s},
    ALERT_KINDS(ALERT_KIND_ROW)
#undef ALERT_KIND_ROW
};

/* One human title per kind, shown as alert.signature and Slack headline. */
static const char *const signatures[ALERT__COUNT] = {
    [ALERT_OFF_HOURS] = "Access outside the identity's working hours",
    [ALERT_OUTSIDE_ACCESS_WINDOW] = "Access outside the identity's access window",
    [ALERT_SOURCE_NOT_ALLOWED] = "Access from a source network that is not allowed",
    [ALERT_OUT_OF_SCOPE] = "Request outside the identity's scope",
    [ALERT_METHOD_NOT_ALLOWED] = "HTTP method not allowed for the identity",
    [ALERT_UNKNOWN_CREDENTIAL] = "Credential that no identity claims",
    [ALERT_FAILED_AUTH_BURST] = "Burst of failed authentications",
    [ALERT_CREDENTIAL_STUFFING] = "Many distinct credentials from one source",
    [ALERT_RATE_EXCEEDED] = "Request or volume limit exceeded",
    [ALERT_ENUMERATION] = "Enumeration of many distinct object ids",
    [ALERT_NEW_ENDPOINT] = "Endpoint never used before by the identity",
    [ALERT_NEW_SOURCE] = "Source address never seen before for the identity",
    [ALERT_NEW_CLIENT] = "TLS client (JA4) never seen before for the identity",
    [ALERT_UNUSUAL_HOUR] = "Activity at an hour unusual for the identity",
    [ALERT_VOLUME_SPIKE] = "Volume far above the identity's baseline",
    [ALERT_KEY_SHARING] = "Credential used from several places at once",
    [ALERT_EXPIRED_TOKEN_ACCEPTED] = "Expired token accepted by the API",
    [ALERT_SCOPE_NOT_GRANTED_ACCEPTED] = "API accepted a token without the scope the endpoint needs",
    [ALERT_SCOPE_NOT_GRANTED] = "Token without the scope the endpoint needs (refused)",
    [ALERT_SCOPE_ESCALATION] = "Token holding scopes beyond the identity's cap",
    [ALERT_SESSION_TOO_OLD] = "Session older than the identity's maximum accepted by the API",
    [ALERT_DPOP_MISMATCH] = "DPoP proof that does not fit its request, accepted by the API",
    [ALERT_DPOP_REPLAY] = "DPoP proof replayed, accepted by the API",
    [ALERT_DPOP_STALE] = "DPoP proof outside its time window, accepted by the API",
    [ALERT_DPOP_MISSING] = "DPoP-bound token without a valid proof of its key, accepted by the API",
    [ALERT_UNDOCUMENTED_ENDPOINT] = "Request to an endpoint the service's OpenAPI document does "
                                    "not describe",
    [ALERT_METHOD_OVERRIDE] = "Request whose override header or parameter makes the backend run "
                              "a forbidden method or path",
};

const char *alert_kind_name(enum alert_kind k)
{
    return (unsigned)k < ALERT__COUNT ? kinds[k].name : "unknown";
}

const char *alert_kind_category(enum alert_kind k)
{
    return (unsigned)k < ALERT__COUNT ? kinds[k].category : "policy";
}

int alert_kind_default_severity(enum alert_kind k)
{
    return (unsigned)k < ALERT__COUNT ? kinds[k].severity : 2;
}

int alert_kind_from_name(const char *name)
{
    for (unsigned i = 0; name && i < ALERT__COUNT; i++)
        if (strcmp(kinds[i].name, name) == 0) return (int)i;
    return -1;
}

const char *al_kind_signature(enum alert_kind k)
{
    return (unsigned)k < ALERT__COUNT ? signatures[k] : "keywarden alert";
}

const char *al_severity_name(int sev)
{
    return sev <= 1 ? "high" : sev == 2 ? "medium" : "low";
}

void al_who(const struct alert_finding *f, char *key, size_t klen, char *label, size_t llen)
{
    const struct kw_txn *t = f->txn;
    char ip[64], *ke = key + klen, *le = label + llen;
    /* on every finding, repeats included: joined without printf */
    if (t && t->identity.id[0]) {
        kw_stpecpy(kw_stpecpy(key, ke, "id:"), ke, t->identity.id);
        kw_stpecpy(label, le, t->identity.id);
    } else if (t && t->cred.fingerprint[0]) {
        kw_stpecpy(kw_stpecpy(key, ke, "cred:"), ke, t->cred.fingerprint);
        kw_stpecpy(label, le, t->cred.hint[0] ? t->cred.hint : "unknown credential");
    } else if (t && t->src.family) {
        kw_addr_str(&t->src, ip, sizeof ip);
        kw_stpecpy(kw_stpecpy(key, ke, "src:"), ke, ip);
        kw_stpecpy(label, le, ip);
    } else {
        kw_stpecpy(key, ke, "none");
        kw_stpecpy(label, le, "unknown");
    }
}

/* The last window keys this thread made, by their text: a finding that
 * repeats (an unknown credential on each of its requests, the same scope
 * breach) asks for the same key again and again, and its SHA-256 was ~3 %
 * of the packet thread (issue 13). Direct-mapped by SipHash under the
 * process key; a hit is the same text, compared whole, so the key is the
 * one SHA-256 gives. Texts longer than a slot are not kept. */
#define WK_SLOTS 64
#define WK_TEXT 248
struct wk_slot {
    uint16_t len; /* 0: empty (a text holds at least the kind's name) */
    char text[WK_TEXT];
    uint8_t key[32];
};
static _Thread_local struct wk_slot wk_memo[WK_SLOTS];

void al_window_key(enum alert_kind k, const char *who_key, const char *subject, uint8_t out[32])
{
    /* kind NUL who NUL subject, cut at 1023 bytes (as the snprintf this
     * replaced on the per-finding path cut it) */
    char buf[1024];
    const char *part[3] = {alert_kind_name(k), who_key, subject};
    size_t n = 0;
    for (int i = 0; i < 3 && n < sizeof buf - 1; i++) {
        size_t l = strlen(part[i]);
        if (l > sizeof buf - 1 - n) l = sizeof buf - 1 - n;
        memcpy(buf + n, part[i], l);
        n += l;
        if (i < 2 && n < sizeof buf - 1) buf[n++] = 0;
    }
    struct wk_slot *m = NULL;
    if (n <= WK_TEXT) {
        m = &wk_memo[kw_siphash(kw_hkey_process(), buf, n) % WK_SLOTS];
        if (m->len == n && !memcmp(m->text, buf, n)) {
            memcpy(out, m->key, 32);
            return;
        }
    }
    if (!kw_sha256(buf, n, out)) memset(out, 0, 32);
    if (m) {
        m->len = (uint16_t)n;
        memcpy(m->text, buf, n);
        memcpy(m->key, out, 32);
    }
}

/* The idempotency id: 128 bits of SHA-256 over what makes the alert the
 * same alert, including its window start in packet time, so a replay or a
 * restart re-creates the same id (the outbox then ignores the insert). */
void al_alert_id(enum alert_kind k, const char *who_key, const char *subject, kw_ts start,
                 const char *extra, char out[AL_ID_LEN + 1])
{
    char buf[1200], h[65];
    int n = snprintf(buf, sizeof buf, "%s|%s|%s|%lld|%s", alert_kind_name(k), who_key, subject,
                     (long long)start, extra ? extra : "");
    if (n < 0 || (size_t)n >= sizeof buf) n = sizeof buf - 1;
    al_sha256_hex(buf, (size_t)n, h);
    memcpy(out, h, AL_ID_LEN);
    out[AL_ID_LEN] = 0;
}

void al_record_write(struct kw_jw *w, const struct alert_finding *f, int sev, const char *id)
{
    char tsb[40];
    const struct kw_txn *t = f->txn;
    kw_jw_obj_begin(w, NULL);
    if (t) {
        kw_eve_jw_txn_header(w, t, "alert", f->ts);
    } else {
        kw_jw_str(w, "timestamp", kw_ts_format(f->ts, tsb, sizeof tsb));
        kw_jw_str(w, "event_type", "alert");
    }
    kw_jw_obj_begin(w, "alert");
    kw_jw_str(w, "kind", alert_kind_name(f->kind));
    kw_jw_str(w, "signature", al_kind_signature(f->kind));
    kw_jw_str(w, "category", alert_kind_category(f->kind));
    kw_jw_int(w, "severity", sev);
    kw_jw_strn(w, "summary", f->summary, strnlen(f->summary, sizeof f->summary));
    if (f->rule[0]) kw_jw_strn(w, "rule", f->rule, strnlen(f->rule, sizeof f->rule));
    kw_jw_strn(w, "subject", f->subject, strnlen(f->subject, sizeof f->subject));
    kw_jw_int(w, "count", 1);
    kw_jw_str(w, "id", id);
    kw_jw_obj_end(w);
    if (t) {
        kw_eve_jw_identity(w, t);
        kw_eve_jw_cred(w, t);
        kw_eve_jw_http(w, t);
    }
    if (f->evidence) kw_jw_json(w, "evidence", f->evidence);
    kw_jw_obj_end(w);
}

/* The string the record holds for s (invalid UTF-8 as the text \xNN), the
 * form this line has always shown. */
static const char *shown(char *out, size_t cap, const char *s, size_t n)
{
    kw_json_text(out, cap, (const uint8_t *)s, n);
    return out;
}

void al_human_line(const struct al_line *l, char *buf, size_t len)
{
    /* each field's buffer holds more than the line keeps of it (req 1200,
     * raw 2048), so cutting it changes nothing */
    char who[300], method[100], host[1100], url[1400], summary[2100];
    const struct kw_txn *t = l->t;
    /* "GET host/path -> 200: " when there is a request to show; a repeat
     * count update has none. */
    char req[1200] = "";
    /* both lines are cut where they always were (the return values are
     * looked at only to say so to the compiler) */
    if (t && t->method[0] &&
        snprintf(req, sizeof req,
                 "%s %s%s -> %lld: ", shown(method, sizeof method, t->method, strlen(t->method)),
                 shown(host, sizeof host, t->hostname, strlen(t->hostname)),
                 shown(url, sizeof url, t->url, strlen(t->url)), (long long)t->status) < 0)
        req[0] = 0;
    char raw[2048];
    if (snprintf(raw, sizeof raw, "%s ALERT %s %s %s %s%s [id %s]", l->ts, al_severity_name(l->sev),
                 alert_kind_name(l->kind),
                 l->who[0] ? shown(who, sizeof who, l->who, strlen(l->who)) : "-", req,
                 shown(summary, sizeof summary, l->summary, l->summary_len), l->id) < 0)
        raw[0] = 0;
    /* host, path, names and summaries quote the wire: this line goes to a
     * terminal and to syslog, so control bytes are escaped (kw_term.h) */
    kw_term_esc(buf, len, raw);
}
