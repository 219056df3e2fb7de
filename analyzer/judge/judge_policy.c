/* judge_policy: explicit policy from the rules and the credential
 * detections (see judge_policy.h). The one thing to know: windowed
 * counters are sliding-window estimates over two fixed buckets (the
 * current and the previous window, the previous one weighted by how much
 * of it still overlaps), the classic bounded approximation: one entry per
 * key, exact when all events fall in one window, and it can never grow.
 * `limits` are per UTC clock hour of packet time (a fixed hour, reset on
 * the hour), which is what "600 requests per hour" means to a contract. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "judge_int.h"
#include "kw_json.h"
#include "persona.h"

struct judge_policy *judge_policy_new(const struct judge_policy_limits *lim)
{
    size_t nk = lim && lim->keys ? lim->keys : 16384;
    size_t np = lim && lim->pairs ? lim->pairs : 65536;
    struct judge_policy *jp = calloc(1, sizeof *jp);
    if (!jp) return NULL;
    jp->key_sets = (nk + WAYS - 1) / WAYS;
    jp->pair_sets = (np + WAYS - 1) / WAYS;
    bool ok = true;
    for (int i = 0; i < TAG__KEYS; i++)
        ok &= (jp->keys[i] = calloc(jp->key_sets * WAYS, sizeof *jp->keys[i])) != NULL;
    jp->pairs = calloc(jp->pair_sets * WAYS, sizeof *jp->pairs);
    if (!ok || !jp->pairs) {
        judge_policy_destroy(jp);
        return NULL;
    }
    jp->key = kw_hkey_random(); /* replaced by a saved state's own (load) */
    return jp;
}

void judge_policy_destroy(struct judge_policy *jp)
{
    if (!jp) return;
    for (int i = 0; i < TAG__KEYS; i++)
        free(jp->keys[i]);
    free(jp->pairs);
    free(jp);
}

void judge_policy_get_counters(const struct judge_policy *jp, struct judge_policy_counters *out)
{
    *out = jp->cnt;
}

size_t judge_policy_keys_used(const struct judge_policy *jp)
{
    size_t n = 0;
    for (int t = 0; t < TAG__KEYS; t++)
        for (size_t i = 0; i < jp->key_sets * WAYS; i++)
            n += jp->keys[t][i].h != 0;
    return n;
}

size_t judge_policy_pairs_used(const struct judge_policy *jp)
{
    size_t n = 0;
    for (size_t i = 0; i < jp->pair_sets * WAYS; i++)
        n += jp->pairs[i].h != 0;
    return n;
}

/* ---- checkpoint ----------------------------------------------------- */

#define JP_MAGIC 0x3253504au /* "JPS2": JPS1 had no key (unkeyed FNV-1a) */

struct jp_blob_head {
    uint32_t magic, key_size, pair_size, ways;
    uint64_t key_sets, pair_sets;
    uint64_t k0, k1; /* the hash key every saved entry was placed with */
};

/* Appends the used slots of one table: a count, then (index, slot). */
static uint8_t *put_table(uint8_t *w, const void *tab, size_t slots, size_t size)
{
    uint64_t n = 0;
    uint8_t *count = w;
    w += sizeof n;
    for (uint64_t i = 0; i < slots; i++) {
        const uint8_t *slot = (const uint8_t *)tab + i * size;
        uint64_t h;
        memcpy(&h, slot, sizeof h); /* both slot types start with h; 0 = empty */
        if (!h) continue;
        memcpy(w, &i, sizeof i);
        memcpy(w + sizeof i, slot, size);
        w += sizeof i + size;
        n++;
    }
    memcpy(count, &n, sizeof n);
    return w;
}

enum kw_err judge_policy_save(const struct judge_policy *jp, uint8_t **blob, size_t *len)
{
    size_t nk = jp->key_sets * WAYS, np = jp->pair_sets * WAYS;
    size_t used_k = 0, used_p = judge_policy_pairs_used(jp);
    used_k = judge_policy_keys_used(jp);
    size_t cap = sizeof(struct jp_blob_head) + (TAG__KEYS + 1) * 8 +
                 used_k * (8 + sizeof(struct jp_key)) + used_p * (8 + sizeof(struct jp_pair));
    uint8_t *b = malloc(cap), *w = b;
    if (!b) return KW_E_NOMEM;
    struct jp_blob_head h = {JP_MAGIC,     sizeof(struct jp_key), sizeof(struct jp_pair), WAYS,
                             jp->key_sets, jp->pair_sets,           jp->key.k0,
                             jp->key.k1};
    memcpy(w, &h, sizeof h);
    w += sizeof h;
    for (int t = 0; t < TAG__KEYS; t++)
        w = put_table(w, jp->keys[t], nk, sizeof(struct jp_key));
    w = put_table(w, jp->pairs, np, sizeof(struct jp_pair));
    *blob = b;
    *len = (size_t)(w - b);
    return KW_E_OK;
}

static const uint8_t *get_table(const uint8_t *r, const uint8_t *end, void *tab, size_t slots,
                                size_t size)
{
    uint64_t n;
    if (!r || (size_t)(end - r) < sizeof n) return NULL;
    memcpy(&n, r, sizeof n);
    r += sizeof n;
    if (n > slots || (size_t)(end - r) < n * (8 + size)) return NULL;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t i;
        memcpy(&i, r, sizeof i);
        if (i >= slots) return NULL;
        memcpy((uint8_t *)tab + i * size, r + sizeof i, size);
        r += sizeof i + size;
    }
    return r;
}

enum kw_err judge_policy_load(struct judge_policy *jp, const uint8_t *blob, size_t len)
{
    size_t nk = jp->key_sets * WAYS, np = jp->pair_sets * WAYS;
    for (int t = 0; t < TAG__KEYS; t++)
        memset(jp->keys[t], 0, nk * sizeof *jp->keys[t]);
    memset(jp->pairs, 0, np * sizeof *jp->pairs);
    struct jp_blob_head h;
    if (len < sizeof h) return KW_E_UNSUPPORTED;
    memcpy(&h, blob, sizeof h);
    if (h.magic != JP_MAGIC || h.key_size != sizeof(struct jp_key) ||
        h.pair_size != sizeof(struct jp_pair) || h.ways != WAYS || h.key_sets != jp->key_sets ||
        h.pair_sets != jp->pair_sets)
        return KW_E_UNSUPPORTED;
    const uint8_t *r = blob + sizeof h, *end = blob + len;
    for (int t = 0; t < TAG__KEYS; t++)
        r = get_table(r, end, jp->keys[t], nk, sizeof(struct jp_key));
    r = get_table(r, end, jp->pairs, np, sizeof(struct jp_pair));
    if (r != end) {
        for (int t = 0; t < TAG__KEYS; t++)
            memset(jp->keys[t], 0, nk * sizeof *jp->keys[t]);
        memset(jp->pairs, 0, np * sizeof *jp->pairs);
        return KW_E_MALFORMED;
    }
    jp->key = (struct kw_hkey){h.k0, h.k1}; /* the entries were placed with it */
    return KW_E_OK;
}

/* ---- bounded tables ------------------------------------------------- */


void jp_hash_bytes(struct hasher *s, const void *p, size_t n)
{
    uint64_t len = n; /* length first: fields never run into each other */
    kw_sip_update(&s->s, &len, sizeof len);
    kw_sip_update(&s->s, p, n);
}

void jp_hash_str(struct hasher *s, const char *str)
{
    jp_hash_bytes(s, str, strlen(str));
}

uint64_t jp_hash_done(struct hasher *s)
{
    uint64_t z = kw_sip_final(&s->s);
    return z ? z : 1; /* 0 marks a free slot */
}

struct hasher jp_hash_begin(const struct judge_policy *jp, enum jp_tag tag)
{
    struct hasher s;
    kw_sip_init(&s.s, &jp->key);
    uint8_t t = (uint8_t)tag;
    jp_hash_bytes(&s, &t, 1);
    return s;
}

struct jp_key *jp_key_get(struct judge_policy *jp, enum jp_tag tag, uint64_t h, kw_ts now)
{
    struct jp_key *set = &jp->keys[tag][(h % jp->key_sets) * WAYS], *victim = NULL;
    for (int i = 0; i < WAYS; i++) {
        if (set[i].h == h) return &set[i];
        if (!victim || (victim->h && (!set[i].h || set[i].last < victim->last))) victim = &set[i];
    }
    if (victim->h) jp->cnt.key_evictions++;
    memset(victim, 0, sizeof *victim);
    victim->h = h;
    victim->last = now;
    victim->bucket = INT64_MIN;
    return victim;
}

/* True when h was not seen within `window` (and remembers it now). */
bool jp_pair_new(struct judge_policy *jp, uint64_t h, kw_ts now, kw_ts window)
{
    struct jp_pair *set = &jp->pairs[(h % jp->pair_sets) * WAYS], *victim = NULL;
    for (int i = 0; i < WAYS; i++) {
        if (set[i].h == h) {
            bool fresh = now - set[i].last >= window;
            set[i].last = now > set[i].last ? now : set[i].last;
            return fresh;
        }
        if (!victim || (victim->h && (!set[i].h || set[i].last < victim->last))) victim = &set[i];
    }
    if (victim->h && now - victim->last < window) jp->cnt.pair_evictions++;
    victim->h = h;
    victim->last = now;
    return true;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* Adds n events; returns true once when the estimate reaches threshold.
 * *est is the estimated count in the sliding window ending now. */
static bool slide_add(struct judge_policy *jp, struct jp_key *e, kw_ts now, kw_ts win, uint32_t n,
                      uint32_t threshold, uint32_t *est)
{
    int64_t b = floor_div(now, win);
    if (now < e->last) jp->cnt.time_backwards++;
    if (e->bucket == INT64_MIN || b > e->bucket + 1) {
        e->cur = e->prev = 0;
        e->bucket = b;
    } else if (b == e->bucket + 1) {
        e->prev = e->cur;
        e->cur = 0;
        e->bucket = b;
    } /* b <= bucket: late event, counted in the current bucket */
    e->last = now > e->last ? now : e->last;
    e->cur = e->cur + n < e->cur ? UINT32_MAX : e->cur + n;
    kw_ts el = now - e->bucket * win;
    if (el < 0) el = 0;
    if (el > win) el = win;
    unsigned __int128 scaled = (unsigned __int128)e->cur * (uint64_t)win +
                               (unsigned __int128)e->prev * (uint64_t)(win - el);
    *est = (uint32_t)(scaled / (uint64_t)win);
    bool over = scaled >= (unsigned __int128)threshold * (uint64_t)win;
    if (!over) {
        e->fired &= (uint8_t)~1u;
        return false;
    }
    if (e->fired & 1) return false;
    e->fired |= 1;
    return true;
}

/* ---- findings ------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) void jp_fmt(char *buf, size_t len, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, len, f, ap);
    va_end(ap);
}


void jp_finding_init(struct jp_ctx *c, struct alert_finding *f, enum alert_kind k,
                         const struct rules_loc *loc)
{
    memset(f, 0, sizeof *f);
    f->kind = k;
    f->ts = c->t->ts;
    f->txn = c->t;
    if (c->id) snprintf(f->timezone, sizeof f->timezone, "%s", kw_tz_name(c->id->tz));
    if (loc && loc->file && loc->line > 0)
        snprintf(f->rule, sizeof f->rule, "%s:%d", loc->file, loc->line);
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
    time_t s = (time_t)floor_div(ts, 1000000);
    s += kw_tz_offset(tz, s);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M", &tm);
}

/* ---- identity policy ------------------------------------------------ */

static void check_schedule(struct jp_ctx *c)
{
    const struct rules_schedule *s = &c->id->schedule;
    if (!s->set || rules_schedule_allows(s, c->id->tz, c->t->ts)) return;
    char when[32], allowed[96];
    rules_local_describe(c->id->tz, c->t->ts, when, sizeof when);
    rules_schedule_describe(s, allowed, sizeof allowed);
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_OFF_HOURS, &s->loc);
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
    /* subject: the local hour and day, so one alert per off-hours hour */
    jp_fmt(f.subject, sizeof f.subject, "%.2s:00 %s", when, when + 6);
    if (jp_repeat(c, &f)) return;
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
    jp_fmt(f.subject, sizeof f.subject, "%s", r < 0 ? "before_from" : "after_until");
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
    jp_fmt(f.subject, sizeof f.subject, "%s/%u", net, plen);
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
    jp_fmt(f.subject, sizeof f.subject, "%s %s", t->method, lp);
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
        jp_fmt(f.subject, sizeof f.subject, "%s %s", em, ep);
    else
        jp_fmt(f.subject, sizeof f.subject, "%s %s", t->method, jp_endpoint(t));
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
    jp_fmt(f.subject, sizeof f.subject, "%s", what);
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
    int64_t hour = floor_div(c->t->ts, HOUR_US);
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

/* ---- credential detections ------------------------------------------ */

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

static void check_unknown(struct jp_ctx *c)
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
    jp_fmt(f.subject, sizeof f.subject, "%s", t->cred.fingerprint);
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
    if (!slide_add(c->jp, e, t->ts, KW_TS_SEC(d->window_s), 1, d->threshold, &est)) return;
    char src[48];
    kw_addr_str(&t->src, src, sizeof src);
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_FAILED_AUTH_BURST, &d->loc);
    f.severity = jp_det_severity(d);
    jp_fmt(f.subject, sizeof f.subject, "%s", t->cred.fingerprint);
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
    if (!slide_add(c->jp, e, t->ts, win, 1, d->threshold, &est)) return;
    char src[48];
    kw_addr_str(&t->src, src, sizeof src);
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_CREDENTIAL_STUFFING, &d->loc);
    f.severity = jp_det_severity(d);
    jp_fmt(f.subject, sizeof f.subject, "%s", src);
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
    if (!slide_add(c->jp, e, t->ts, win, 1, d->threshold, &est)) return;
    char src[48];
    kw_addr_str(&t->src, src, sizeof src);
    struct alert_finding f;
    jp_finding_init(c, &f, ALERT_ENUMERATION, &d->loc);
    f.severity = jp_det_severity(d);
    jp_fmt(f.subject, sizeof f.subject, "%s %s", t->method, t->template_);
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
    jp_fmt(f.subject, sizeof f.subject, "%s %s", none ? "alg_none" : "expired", t->cred.fingerprint);
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
    check_unknown(&c);
    if (jp_is_session(t))
        return; /* the rest judge HTTP requests */
    check_failed_auth(&c);
    check_stuffing(&c);
    check_enumeration(&c);
    check_expired(&c);
    jp_check_oauth(&c);
}
