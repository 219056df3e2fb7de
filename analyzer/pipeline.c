/* pipeline: frames -> decode -> flows -> reassembly -> HTTP -> credential
 * -> identity -> judge/baseline/audit/EVE (see pipeline.h).
 *
 * HTTP is recognised by content, never by port: the first bytes a
 * connection carries decide whether its HTTP parser is created (a request
 * line or a status line), so HTTP on any port is seen and TLS on port 80
 * is not fed to the parser. Flows picked up midstream (and bytes after a
 * hole) may begin anywhere inside a message: they become HTTP at the first
 * whole HTTP/1.x start line found at a line start, and the parser starts
 * there. Everything that is not HTTP
 * is offered to nDPI for its first packets, so the `flow` record says what
 * it was (and its TLS SNI) instead of leaving a silent hole. */
#include "pipeline.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "defrag.h"
#include "dpop.h"
#include "kw_addr.h"
#include "kw_json.h"
#include "kw_jw.h"
#include "kw_log.h"
#include "judge_session.h"
#include "openapi.h"
#include "persona.h"
#include "pipeline_tls.h"
#include "tls_rec.h"

enum pf_http { PF_HTTP_UNKNOWN = 0, PF_HTTP_YES, PF_HTTP_NO };

/* Per-flow state; hangs off flow->app. */
struct pipe_flow {
    struct pipeline *p;
    struct flow *f;
    struct h1_conn *h1;
    struct h2_conn *h2;   /* HTTP/2: prior knowledge, h2c upgrade or ALPN h2 */
    struct tls_conn *tls; /* TLS: records go here; the plaintext to h1 */
    struct classify_flow *cls;
    bool cls_wants;
    uint8_t http;       /* enum pf_http */
    bool was_h2;        /* an HTTP/2 parser ran (the flow record says http2) */
    uint8_t probes[2];  /* data chunks seen per direction while undecided */
    uint32_t probed[2]; /* bytes of them */
    uint64_t gap[2];    /* bytes lost per direction while undecided (see cb_gap) */
    kw_ts held_ts[2];   /* when bytes held while undecided were first seen */
    uint32_t txns;
    uint64_t last_seq; /* worker mode: tag of the flow's last packet */
    struct pipe_flow *next_free;
};

struct pipeline {
    struct pipeline_config cfg;
    struct dec_ctx dec;
    struct flow_table *flows;
    struct defrag *defrag; /* IP fragments, on their way to flows */
    struct classify_ctx *cls;
    struct tls_ctx *tls; /* limits, key log, counters, scratch of TLS connections */
    struct judge_policy *judge;
    /* attributed TLS sessions until their flow ends (judge stage; made at
     * the first one), and a record to judge their bytes in */
    struct judge_sessions *sessions;
    struct kw_txn *sess_txn;
    /* OpenAPI documents of `services:` (judge stage): the one in use, and
     * one handed over by another thread, taken at the next transaction */
    struct oas_set *specs;
    _Atomic(struct oas_set *) new_specs;
    struct rules_model *model;
    struct pipeline_counters cnt;
    struct h1_counters h1_total;
    struct h2_counters h2_total;
    struct cred_stats cred;
    struct pipe_flow *free_flows; /* recycled per-flow states */
    /* HTTP parsers: the bytes they hold (bounded by cfg.h1.memcap), how
     * many are attached to flows (cfg.h1.max_conns), and closed ones kept
     * with their grown buffers for the next connections */
    struct h1_budget h1_budget;
    uint32_t h1_live, h1_nfree;
    struct h1_conn *h1_free[64];
    /* HTTP/2 parsers: bytes held (cfg.h2.memcap, HPACK tables included)
     * and how many are live (cfg.h2.max_conns) */
    struct h2_budget h2_budget;
    uint32_t h2_live;
    kw_ts now;
    int64_t last_sec;
    uint64_t seq; /* worker mode: tag of the packet being processed */
    int ending;   /* worker mode: why the flow whose end runs ends, or -1 */
    struct kw_txn txn; /* scratch: one transaction at a time */
    char eve_buf[65536]; /* one EVE record; bounded fields fit with room to spare */
};

void pipeline_config_default(struct pipeline_config *c)
{
    memset(c, 0, sizeof *c);
    dec_config_default(&c->dec);
    flow_config_default(&c->flow);
    defrag_config_default(&c->defrag);
    h1_limits_default(&c->h1);
    h2_limits_default(&c->h2);
    cred_config_default(&c->cred);
    tls_limits_default(&c->tls);
    c->classify = true;
    c->flow_records = true;
}

/* nDPI states at once: as configured (or the default), at most one per
 * flow of the table */
static size_t classify_active(const struct pipeline_config *c, uint32_t max_flows)
{
    size_t a = c->classify_max_active ? c->classify_max_active : CLASSIFY_DEFAULT_MAX_ACTIVE;
    return max_flows < a ? max_flows : a;
}

size_t pipeline_flows_mem(const struct pipeline_config *c, uint32_t max_flows)
{
    /* pipe_flow: malloc'd once per flow slot and recycled (16: malloc's
     * header); classification: both pools at their most */
    size_t m = (size_t)max_flows * (sizeof(struct pipe_flow) + 16);
    if (c->classify) m += classify_pools_mem(max_flows, classify_active(c, max_flows));
    return m;
}

/* ---- findings ---------------------------------------------------------- */

static void emit_finding(void *user, struct alert_finding *f)
{
    struct pipeline *p = user;
    /* A Basic user name or a JWT's claims name the identity; keywarden
     * checks neither the password nor the signature, so the reader is told
     * whose word it is (issue 15): policy and baseline findings alike. */
    const struct kw_identity_ref *r = f->txn ? &f->txn->identity : NULL;
    if (r && r->id[0] && kw_identity_claimed(r) && f->summary[0]) {
        size_t n = strlen(f->summary);
        snprintf(f->summary + n, sizeof f->summary - n,
                 " (claimed identity: %s, not verified by keywarden)",
                 !strcmp(r->via, "basic_user") ? "a Basic user name"
                 : !strcmp(r->via, "jwt")      ? "the token's iss and sub claims"
                                               : "the token's client_id claim");
    }
    p->cnt.findings++;
    if (p->cfg.alerts)
        alerts_submit(p->cfg.alerts, f);
    else
        json_decref(f->evidence);
    f->evidence = NULL;
}

static bool repeat_finding(void *user, struct alert_finding *f)
{
    struct pipeline *p = user;
    if (!p->cfg.alerts || !alerts_repeat(p->cfg.alerts, f)) return false;
    p->cnt.findings++; /* as emit_finding counts it */
    return true;
}

/* ---- transactions ------------------------------------------------------ */

static void write_http_record(struct pipeline *p, const struct kw_txn *t)
{
    if (!p->cfg.eve)
        return;
    struct kw_jw w;
    kw_jw_init(&w, p->eve_buf, sizeof p->eve_buf);
    kw_jw_obj_begin(&w, NULL);
    kw_eve_jw_txn_header(&w, t, "http", t->ts);
    kw_eve_jw_http(&w, t);
    if (t->flags & KW_TXN_F(TLS)) {
        kw_jw_obj_begin(&w, "tls");
        kw_jw_str_opt(&w, "sni", t->tls.sni);
        kw_jw_str(&w, "version", t->tls.version);
        kw_jw_str_opt(&w, "ja4", t->tls.ja4);
        kw_jw_bool(&w, "decrypted", t->tls.decrypted);
        kw_jw_obj_end(&w);
    }
    kw_eve_jw_cred(&w, t);
    kw_eve_jw_identity(&w, t);
    kw_jw_obj_end(&w);
    if (kw_jw_ok(&w))
        kw_eve_write_text(p->cfg.eve, w.buf, w.len);
    else
        p->cnt.eve_overflow++;
}

/* The rest of a transaction's way, whatever parser filled p->txn: the
 * flow's addresses, the credential, redaction, TLS, then the judge (or the
 * workers' sink). */
static void emit_txn(struct pipe_flow *pf, const struct h1_msg_view *req)
{
    struct pipeline *p = pf->p;
    const struct flow *f = pf->f;
    struct kw_txn *t = &p->txn;

    ptls_flow_fields(t, f);
    if (req)
        cred_extract_ex(&p->cfg.cred, req->hdrs, req->n_hdrs, req->target, &t->cred, &p->cred);
    /* A key in the query string must not reach any record: from here on
     * every consumer (EVE, alerts, audit) sees the redacted target. */
    if (cred_redact_target(&p->cfg.cred, t->url, sizeof t->url))
        p->cnt.urls_redacted++;
    if (pf->tls)
        ptls_http_txn(t, tls_conn_info(pf->tls));
    p->cnt.transactions++;
    pf->txns++;
    if (p->cfg.sink) {
        p->cfg.sink->txn(p->cfg.sink->user, f, pf->last_seq, p->ending, t);
        return;
    }
    pipeline_judge_txn(p, t);
}

static bool start_h2(struct pipe_flow *pf, bool midstream);

/* h2c (RFC 7540 §3.2): a request with "Upgrade: h2c" answered 101. */
static bool is_h2c_upgrade(const struct h1_txn_view *v)
{
    if (!v->req || !v->resp || v->resp->status != 101)
        return false;
    const struct kw_hdr *u = h1_hdr_find(v->req, "Upgrade");
    return u && u->value.len >= 3 && memmem(u->value.p, u->value.len, "h2c", 3);
}

static void on_txn(void *user, const struct h1_txn_view *v)
{
    struct pipe_flow *pf = user;
    if (is_h2c_upgrade(v) && !pf->h2 && start_h2(pf, false)) {
        /* the request becomes stream 1; its answer comes in HTTP/2 */
        h2_upgrade(pf->h2, v->req);
        h1_handoff(pf->h1);
        return;
    }
    kw_txn_clear(&pf->p->txn);
    h1_txn_fill(v, &pf->p->txn);
    emit_txn(pf, v->req);
}

static void on_h2_txn(void *user, const struct h2_txn_view *v)
{
    struct pipe_flow *pf = user;
    kw_txn_clear(&pf->p->txn);
    h2_txn_fill(v, &pf->p->txn);
    emit_txn(pf, v->req);
}

/* The template of a transaction (judge stage): a service's OpenAPI
 * document is authoritative (its template, its parameter names); else the
 * learned model replaces the parser's cold-start template. Only requests
 * the service routed (2xx, 3xx) teach the model: a 404 or a scanner's 401
 * says nothing about the API's routes. */
static enum oas_match learn_template(struct pipeline *p, struct kw_txn *t,
                                     const struct oas_endpoint **op)
{
    *op = NULL;
    struct oas_set *ns = atomic_exchange(&p->new_specs, NULL);
    if (ns) {
        oas_set_destroy(p->specs);
        p->specs = ns;
    }
    if (!t->method[0] || !t->path[0] || !strcmp(t->method, "CONNECT"))
        return OAS_NO_SPEC;
    const char *tmpl = NULL;
    enum oas_match m =
        oas_set_lookup(p->specs, t->hostname, t->dport, t->method, t->path, &tmpl, op);
    if (m == OAS_MATCH) {
        snprintf(t->template_, sizeof t->template_, "%s", tmpl);
        p->cnt.documented++;
        return m;
    }
    if (m != OAS_NO_SPEC)
        p->cnt.undocumented++;
    if (!p->cfg.routes)
        return m;
    char svc[300];
    if (t->hostname[0])
        snprintf(svc, sizeof svc, "%s:%u", t->hostname, t->dport);
    else {
        char a[64];
        snprintf(svc, sizeof svc, "%s:%u", kw_addr_str(&t->dst, a, sizeof a), t->dport);
    }
    bool learn = !p->cfg.routes_fixed && t->status >= 200 && t->status < 400;
    routes_template(p->cfg.routes, svc, t->method, t->path, strlen(t->path), learn, t->ts,
                    t->template_, sizeof t->template_);
    return m;
}

/* undocumented_endpoint: a request the service answered (2xx/3xx) to an
 * endpoint its OpenAPI document does not describe: a shadow API. */
static void check_undocumented(struct pipeline *p, const struct rules_identity *id,
                               const struct kw_txn *t, enum oas_match m)
{
    const struct rules_detection *d = &p->model->detections.undocumented_endpoint;
    if ((m != OAS_NO_PATH && m != OAS_NO_METHOD) || !d->severity || t->status < 200 ||
        t->status >= 400)
        return;
    struct alert_finding f;
    memset(&f, 0, sizeof f);
    f.kind = ALERT_UNDOCUMENTED_ENDPOINT;
    f.severity = d->severity > 0 ? d->severity : 0;
    f.ts = t->ts;
    f.txn = t;
    if (d->loc.file && d->loc.line > 0)
        snprintf(f.rule, sizeof f.rule, "%s:%d", d->loc.file, d->loc.line);
    if (id)
        snprintf(f.timezone, sizeof f.timezone, "%s", kw_tz_name(id->tz));
    snprintf(f.subject, sizeof f.subject, "%.16s %.200s", t->method, t->template_);
    const char *who = id ? id->id : t->cred.hint[0] ? t->cred.hint : "an unidentified client";
    snprintf(f.summary, sizeof f.summary,
             "%.64s called %.16s %.400s on %.200s, which its OpenAPI document does not describe "
             "(%s); the service answered %d",
             who, t->method, t->path, t->hostname[0] ? t->hostname : "the service",
             m == OAS_NO_METHOD ? "the path is there, not this method" : "no such path",
             t->status);
    f.evidence = json_pack("{s:{s:s},s:{s:s,s:s,s:s,s:i}}", "expected", "documented",
                           m == OAS_NO_METHOD ? "other methods of this path" : "no such path",
                           "observed", "method", t->method, "path", t->path, "template",
                           t->template_, "status", t->status);
    emit_finding(p, &f);
}

static void on_template_merge(void *user, const char *service, const char *old_tmpl,
                              const char *new_tmpl)
{
    struct pipeline *p = user;
    (void)service;
    p->cnt.template_merges++;
    if (p->cfg.baseline)
        baseline_rename_template(p->cfg.baseline, old_tmpl, new_tmpl);
}

void pipeline_judge_txn(struct pipeline *p, struct kw_txn *t)
{
    const struct rules_identity *id = p->model ? rules_attribute_txn(p->model, t) : NULL;
    if (id)
        p->cnt.attributed++;
    else if (t->cred.kind != KW_CRED_NONE)
        p->cnt.unattributed_with_credential++;
    else
        p->cnt.without_credential++;
    switch (t->cred.kind) {
    case KW_CRED_BEARER: p->cnt.cred_bearer++; break;
    case KW_CRED_JWT: p->cnt.cred_jwt++; break;
    case KW_CRED_BASIC: p->cnt.cred_basic++; break;
    case KW_CRED_API_KEY: p->cnt.cred_api_key++; break;
    case KW_CRED_OTHER: p->cnt.cred_other++; break;
    default: break;
    }
    if (p->cfg.forward) { /* attributed here too: a sensor partitions by identity */
        p->cfg.forward->txn(p->cfg.forward->user, p->now, t);
        return;
    }

    /* the method and path the service's backend runs (persona.h), before
     * the record is written: it keeps both */
    const struct rules_service *svc =
        p->model ? rules_find_service(p->model, t->hostname, t->dport) : NULL;
    t->flags |= persona_effective(svc ? svc->backend : RULES_BACKEND_GENERIC, t);
    const struct oas_endpoint *op;
    enum oas_match m = learn_template(p, t, &op);
    write_http_record(p, t);
    if (p->model && p->judge) {
        /* the document's `security` as a requirement the judge reads like
         * a rules file's `scopes:` entry, named by the document's line */
        struct rules_scope_req doc = {0};
        char what[320];
        if (op && op->n_scope_alts) {
            snprintf(what, sizeof what, "%s %s (OpenAPI security)", op->method, op->tmpl);
            doc.pattern.text = what;
            doc.alts = op->scope_alts;
            doc.n_alts = op->n_scope_alts;
            doc.loc.file = op->src;
            doc.loc.line = op->scope_line;
        }
        judge_policy_check_doc(p->judge, p->model, id, t, doc.n_alts ? &doc : NULL,
                               emit_finding, p);
    }
    if (p->model)
        check_undocumented(p, id, t, m);
    if (p->cfg.baseline && (id || t->cred.kind != KW_CRED_NONE))
        baseline_observe(p->cfg.baseline, t, id ? kw_tz_name(id->tz) : NULL,
                         id && id->schedule.set, emit_finding, p);
    if (p->cfg.audit)
        audit_record(p->cfg.audit, t);
}

/* Bytes per TLS session (issue 12): an attributed session is remembered
 * at its handshake and measured when its flow ends. */
static void session_start(struct pipeline *p, const struct kw_txn *t)
{
    if (!p->sessions) {
        p->sessions = judge_sessions_new(0);
        p->sess_txn = malloc(sizeof *p->sess_txn);
        if (!p->sessions || !p->sess_txn) {
            judge_sessions_destroy(p->sessions);
            free(p->sess_txn);
            p->sessions = NULL;
            p->sess_txn = NULL;
            p->cnt.tls_sessions_unmeasured++;
            return;
        }
    }
    judge_sessions_start(p->sessions, t);
    struct judge_session_counters c;
    judge_sessions_counters(p->sessions, &c);
    p->cnt.tls_sessions_unmeasured = c.evicted;
}

static void session_end(struct pipeline *p, const struct flow *f, kw_ts ts)
{
    struct kw_txn *t = p->sess_txn;
    if (!judge_sessions_end(p->sessions, f->id, f->last_ts ? f->last_ts : ts, f->bytes[0],
                            f->bytes[1], t))
        return;
    p->cnt.tls_sessions_measured++;
    /* the identity as the rules say now (a reload may have renamed it) */
    const struct rules_identity *id = p->model ? rules_find_identity(p->model, t->identity.id) : NULL;
    if (!id || !p->cfg.baseline)
        return;
    rules_identity_ref_fill(id, &t->identity);
    baseline_observe_session(p->cfg.baseline, t, kw_tz_name(id->tz), emit_finding, p);
}

void pipeline_judge_tls(struct pipeline *p, struct kw_txn *t, const struct tls_info *ti)
{
    /* A session is judged when it is known to be API traffic: its client
     * certificate names an identity, or its SNI is one of `services:`;
     * only then does a source address alone attribute it (a contractor's
     * laptop also talks TLS to CDNs at night). */
    const struct rules_identity *id = NULL;
    const struct rules_service *svc = NULL;
    if (p->model) {
        id = rules_attribute_txn(p->model, t);
        svc = t->tls.sni[0] ? rules_find_service(p->model, t->tls.sni, t->dport) : NULL;
        if (!id && svc && t->cred.kind == KW_CRED_NONE) {
            id = rules_attribute_source(p->model, &t->src);
            rules_identity_ref_fill(id, &t->identity);
            if (id) snprintf(t->identity.via, sizeof t->identity.via, "source");
        }
    }
    if (p->cfg.forward) { /* attributed here too: a sensor partitions by identity */
        if (p->cfg.forward->tls)
            p->cfg.forward->tls(p->cfg.forward->user, p->now, t, ti);
        else
            p->cnt.tls_not_forwarded++;
        return;
    }
    if (p->cfg.eve) {
        size_t n = ptls_format_record(p->eve_buf, sizeof p->eve_buf, t, ti);
        if (n)
            kw_eve_write_text(p->cfg.eve, p->eve_buf, n);
        else
            p->cnt.eve_overflow++;
    }
    if (!id && !svc)
        return;
    if (p->model && p->judge)
        judge_policy_check(p->judge, p->model, id, t, emit_finding, p);
    if (p->cfg.baseline && id) {
        baseline_observe(p->cfg.baseline, t, kw_tz_name(id->tz), id->schedule.set, emit_finding, p);
        session_start(p, t);
    }
}

/* ---- HTTP recognition -------------------------------------------------- */

/* Does a data chunk start like HTTP/1.x? 1 yes, 0 no, -1 not sure yet
 * (too few bytes). A request starts with a method token (RFC 9110 §9: we
 * accept upper-case letters, '-' and '_', as servers do) and a space, or
 * is a well-known method alone on its line (servers answer those); a
 * response with "HTTP/". Empty lines before a request are tolerated
 * (RFC 9112 §2.2). */
static int looks_http(const uint8_t *d, size_t len)
{
    size_t i = 0;
    while (i < len && (d[i] == '\r' || d[i] == '\n'))
        i++;
    if (i == len)
        return len < 8 ? -1 : 0;
    static const char http[] = "HTTP/";
    size_t k = 0;
    while (k < 5 && i + k < len && d[i + k] == (uint8_t)http[k])
        k++;
    if (k == 5)
        return 1;
    if (i + k == len && k > 0)
        return -1;
    static const char *const alone[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"};
    size_t n = 0;
    for (; i + n < len && n <= 24; n++) {
        uint8_t c = d[i + n];
        if (c == ' ')
            return n > 0 ? 1 : 0;
        if (c == '\r' || c == '\n') {
            for (size_t m = 0; m < sizeof alone / sizeof alone[0]; m++)
                if (strlen(alone[m]) == n && memcmp(d + i, alone[m], n) == 0)
                    return 1;
            return 0;
        }
        if (!((c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
            return 0;
    }
    return n > 24 ? 0 : -1;
}

/* A later chunk must hold a whole start line with an HTTP/1.x version
 * ("GET /x HTTP/1.1", "HTTP/1.1 200"): after a first chunk that was not
 * HTTP, line protocols (SMTP's "EHLO host", FTP's "USER x") must not pass
 * for requests. */
static int looks_http_line(const uint8_t *d, size_t len)
{
    if (len >= 7 && memcmp(d, "HTTP/1.", 7) == 0)
        return 1;
    if (len < 7 && len && memcmp(d, "HTTP/1.", len) == 0)
        return -1; /* a status line's first bytes */
    size_t n = len < 2048 ? len : 2048, i = 0;
    while (i < n && ((d[i] >= 'A' && d[i] <= 'Z') || d[i] == '-' || d[i] == '_'))
        i++;
    if (i == n)
        return n < 24 ? -1 : 0;
    if (i == 0 || i > 24 || d[i] != ' ')
        return 0;
    const uint8_t *eol = memchr(d + i, '\n', n - i);
    size_t e = eol ? (size_t)(eol - d) : n;
    const uint8_t *v = memmem(d + i, e - i, " HTTP/1.", 8);
    if (v && v > d + i + 1)
        return 1;
    return eol || n == 2048 ? 0 : -1;
}

/* Recognition keeps looking at the start of later chunks for a while:
 * HTTP inside a SOCKS or proxy tunnel, or after some other preamble,
 * begins a later chunk, not the first. Bounded so a TLS or binary flow is
 * given up quickly (and is never fed to the parser). */
enum { PROBE_CHUNKS = 8, PROBE_BYTES = 16 * 1024 };

/* A chunk that does not start HTTP: counted against the bounds above; the
 * flow is given up when they are spent. Returns len (the chunk is used). */
static size_t probe_skip(struct pipe_flow *pf, int dir, size_t len)
{
    pf->p->cnt.probe_chunks_skipped++;
    pf->probed[dir] += (uint32_t)(len < PROBE_BYTES ? len : PROBE_BYTES);
    if (++pf->probes[dir] >= PROBE_CHUNKS || pf->probed[dir] >= PROBE_BYTES) {
        pf->http = PF_HTTP_NO;
        pf->p->cnt.non_http_flows++;
    }
    return len;
}

static bool start_http(struct pipe_flow *pf)
{
    struct pipeline *p = pf->p;
    const struct h1_limits *l = &p->cfg.h1;
    p->h1_budget.max_bytes = l->memcap;
    /* Over the bounds a new connection is refused (counted, and its flow
     * record says it was not parsed); no live parser is evicted. */
    if ((l->max_conns && p->h1_live >= l->max_conns) ||
        (!p->h1_nfree && l->memcap && p->h1_budget.bytes + h1_conn_base_mem(l) > l->memcap)) {
        p->cnt.h1_refused++;
        pf->http = PF_HTTP_NO;
        return false;
    }
    if (p->h1_nfree) {
        pf->h1 = p->h1_free[--p->h1_nfree];
        h1_conn_reset(pf->h1, on_txn, pf);
    } else {
        pf->h1 = h1_conn_new_in(l, &p->h1_budget, on_txn, pf);
    }
    if (!pf->h1) {
        p->cnt.h1_alloc_failures++;
        pf->http = PF_HTTP_NO;
        return false;
    }
    pf->http = PF_HTTP_YES;
    p->cnt.http_flows++;
    p->h1_live++;
    /* HTTP needs no nDPI verdict: release its state early. */
    if (pf->cls) {
        classify_flow_free(p->cls, pf->cls);
        pf->cls = NULL;
    }
    return true;
}

/* An HTTP/2 parser for the flow (bounded like HTTP/1's: refused past
 * max_conns or the memcap, counted). */
static bool start_h2(struct pipe_flow *pf, bool midstream)
{
    struct pipeline *p = pf->p;
    const struct h2_limits *l = &p->cfg.h2;
    p->h2_budget.max_bytes = l->memcap;
    if (l->max_conns && p->h2_live >= l->max_conns) {
        p->cnt.h2_refused++;
        return false;
    }
    pf->h2 = h2_conn_new_in(l, &p->h2_budget, midstream, on_h2_txn, pf);
    if (!pf->h2) {
        p->cnt.h2_alloc_failures++;
        return false;
    }
    pf->http = PF_HTTP_YES;
    pf->was_h2 = true;
    p->cnt.h2_flows++;
    p->h2_live++;
    if (pf->cls) {
        classify_flow_free(p->cls, pf->cls);
        pf->cls = NULL;
    }
    return true;
}

static size_t feed_h2(struct pipe_flow *pf, int dir, const uint8_t *d, size_t len, kw_ts ts)
{
    size_t used = h2_feed(pf->h2, dir, d, len, ts);
    if (pf->p->h2_budget.peak > pf->p->cnt.h2_mem_peak)
        pf->p->cnt.h2_mem_peak = pf->p->h2_budget.peak;
    return used;
}

/* HTTP/1 until it hands the connection over (h2c): the rest to HTTP/2. */
static size_t feed_http(struct pipe_flow *pf, int dir, const uint8_t *d, size_t len, kw_ts ts)
{
    if (pf->h2)
        return feed_h2(pf, dir, d, len, ts);
    size_t used = h1_feed(pf->h1, dir, d, len, ts);
    pf->p->cnt.h1_mem_peak = pf->p->h1_budget.peak; /* buffers grow while feeding */
    if (pf->h2 && used < len)
        used += feed_h2(pf, dir, d + used, len - used, ts);
    return used;
}

/* ---- TLS ----------------------------------------------------------------- */

/* A server's first bytes that are an HTTP/2 SETTINGS frame header (RFC
 * 9113 §3.4: its connection preface), when the ALPN answer was not seen. */
static bool h2_server_preface(const uint8_t *d, size_t len)
{
    return len >= 9 && d[3] == 0x4 && d[4] == 0 && !(d[5] | d[6] | d[7] | d[8]) &&
           ((uint32_t)d[0] << 16 | (uint32_t)d[1] << 8 | d[2]) % 6 == 0;
}

/* Decrypted application bytes: HTTP/2 when ALPN chose h2 (or the bytes
 * start with its preface: a TLS 1.3 server may speak first, and without
 * the EncryptedExtensions the ALPN is unknown), else HTTP/1, recognised as
 * on clear connections. */
static size_t tls_on_data(void *user, int dir, const uint8_t *d, size_t len, kw_ts ts)
{
    struct pipe_flow *pf = user;
    if (pf->http == PF_HTTP_UNKNOWN && !pf->h2) {
        bool h2 = tls_info_is_h2(tls_conn_info(pf->tls)) ||
                  (dir == 0 ? h2_is_preface(d, len) > 0 : h2_server_preface(d, len));
        if (h2 && !start_h2(pf, pf->f->midstream)) {
            pf->http = PF_HTTP_NO;
            return len;
        }
    }
    if (pf->http == PF_HTTP_NO || (pf->http == PF_HTTP_UNKNOWN && !start_http(pf)))
        return len;
    return feed_http(pf, dir, d, len, ts);
}

static void tls_on_gap(void *user, int dir, uint64_t len, kw_ts ts)
{
    struct pipe_flow *pf = user;
    if (pf->h2)
        h2_gap(pf->h2, dir, len, ts);
    else if (pf->h1)
        h1_gap(pf->h1, dir, len, ts);
}

static void tls_on_handshake(void *user, const struct tls_info *ti, kw_ts ts)
{
    struct pipe_flow *pf = user;
    struct pipeline *p = pf->p;
    struct kw_txn *t = &p->txn;
    ptls_session_txn(t, pf->f, ti, ts);
    p->cnt.tls_sessions++;
    if (p->cfg.sink)
        p->cfg.sink->tls(p->cfg.sink->user, pf->f, pf->last_seq, p->ending, t, ti);
    else
        pipeline_judge_tls(p, t, ti);
}

static bool start_tls(struct pipe_flow *pf)
{
    struct pipeline *p = pf->p;
    struct tls_conn_cb cb = {pf, tls_on_data, tls_on_gap, tls_on_handshake};
    pf->tls = tls_conn_new(p->tls, &cb, pf->f->midstream);
    if (!pf->tls) {
        p->cnt.tls_alloc_failures++;
        return false;
    }
    p->cnt.tls_flows++;
    return true;
}

/* ---- flow callbacks ---------------------------------------------------- */

static void cb_flow_start(void *user, struct flow *f, kw_ts ts)
{
    struct pipeline *p = user;
    struct pipe_flow *pf = p->free_flows;
    if (pf)
        p->free_flows = pf->next_free;
    else
        pf = malloc(sizeof *pf);
    if (!pf) {
        f->app = NULL;
        return;
    }
    memset(pf, 0, sizeof *pf);
    pf->p = p;
    pf->f = f;
    pf->last_seq = p->seq;
    if (p->cfg.sink)
        p->cfg.sink->flow_start(p->cfg.sink->user, f);
    if (p->cls) {
        pf->cls = classify_flow_new(p->cls);
        pf->cls_wants = pf->cls != NULL;
    }
    f->app = pf;
}

static void cb_packet(void *user, struct flow *f, int dir, const struct dec_packet *pkt)
{
    struct pipe_flow *pf = f->app;
    if (pf)
        pf->last_seq = pf->p->seq;
    if (!pf || !pf->cls || !pf->cls_wants || pf->http == PF_HTTP_YES)
        return;
    pf->cls_wants = classify_packet(pf->p->cls, pf->cls, pkt->l3, pkt->l3_len, pkt->ts,
                                    dir == FLOW_DIR_TO_SERVER);
}

/* After a hole, or picked up midstream, the bytes may begin anywhere
 * inside a message: the offset of the first line (within the probed
 * bytes) that is a whole HTTP/1.x start line, or -1. *keep, when asked:
 * where a last line that may still become one begins (len when none),
 * what the caller may hold for the next call. */
static long find_start_line(const uint8_t *d, size_t len, size_t *keep)
{
    size_t n = len < PROBE_BYTES ? len : PROBE_BYTES;
    if (keep)
        *keep = len;
    for (size_t i = 0; i < n;) {
        int v = looks_http_line(d + i, len - i);
        if (v == 1)
            return (long)i;
        const uint8_t *nl = memchr(d + i, '\n', n - i);
        if (!nl) {
            if (v < 0 && keep)
                *keep = i;
            break;
        }
        i = (size_t)(nl - d) + 1;
    }
    return -1;
}

/* A flow still undecided when one of its directions lost bytes: only an
 * HTTP/1 start line makes it HTTP (a first chunk's looser test, a method
 * token and a space, would take any bytes after a hole; before this, the
 * hole itself started a parser, so 1,200 bytes of 'x' after a hole were
 * counted an HTTP flow). The parser is then told of the holes first, so
 * it resynchronises and keeps its request FIFO in step with the loss. */
static size_t probe_after_gap(struct pipe_flow *pf, int dir, const uint8_t *d, size_t len,
                              kw_ts ts)
{
    size_t keep;
    long o = find_start_line(d, len, &keep);
    if (o < 0) {
        if (keep == 0)
            return 0; /* a start line's first bytes: wait for the rest */
        pf->gap[dir] += keep;
        (void)probe_skip(pf, dir, keep);
        return keep; /* a last line that may become a start line is held */
    }
    if (!start_http(pf))
        return len;
    pf->gap[dir] += (uint64_t)o;
    for (int k = 0; k < 2; k++)
        if (pf->gap[k])
            h1_gap(pf->h1, k, pf->gap[k], ts);
    pf->gap[0] = pf->gap[1] = 0;
    return (size_t)o + feed_http(pf, dir, d + o, len - (size_t)o, ts);
}

/* Has a direction of a midstream flow spent its probe budget? */
static bool probe_spent(const struct pipe_flow *pf, int dir)
{
    return pf->probes[dir] >= PROBE_CHUNKS || pf->probed[dir] >= PROBE_BYTES;
}

/* A flow picked up midstream (no handshake seen), not yet recognised: its
 * first bytes may be the middle of a body, so only a whole HTTP/1.x start
 * line at a line start makes it HTTP, and the parser starts there (before,
 * any midstream flow was taken as HTTP on its first byte: every such flow
 * counted in pipeline.http_flows and held a parser whatever it carried).
 * A trailing line that may be a start line still arriving is kept for the
 * next call. The budget is per direction, and the flow is given up only
 * when both directions have spent theirs: picked up inside a long
 * download, the server's direction spends its budget in the body, and the
 * client's next request must still be found. */
static size_t probe_midstream(struct pipe_flow *pf, int dir, const uint8_t *d, size_t len,
                              kw_ts ts)
{
    if (probe_spent(pf, dir)) {
        pf->p->cnt.probe_chunks_skipped++;
        return len; /* this direction's say is over: wait for the other's */
    }
    size_t keep;
    long o = find_start_line(d, len, &keep);
    if (o >= 0) {
        if (!start_http(pf))
            return len;
        if (pf->held_ts[dir]) {
            ts = pf->held_ts[dir];
            pf->held_ts[dir] = 0;
        }
        return (size_t)o + feed_http(pf, dir, d + o, len - (size_t)o, ts);
    }
    if (keep == 0) {
        /* a start line's first bytes, nothing else: wait for the rest (not
         * a probe; looks_http_line decides by a newline or 2 KiB) */
        if (!pf->held_ts[dir])
            pf->held_ts[dir] = ts;
        return 0;
    }
    pf->held_ts[dir] = keep < len ? ts : 0;
    pf->p->cnt.probe_chunks_skipped++;
    pf->probed[dir] += (uint32_t)(keep < PROBE_BYTES ? keep : PROBE_BYTES);
    if (++pf->probes[dir] >= PROBE_CHUNKS || pf->probed[dir] >= PROBE_BYTES) {
        if (probe_spent(pf, !dir)) {
            pf->http = PF_HTTP_NO;
            pf->p->cnt.non_http_flows++;
            return len;
        }
    }
    return keep;
}

static size_t cb_data(void *user, struct flow *f, int dir, const uint8_t *d, size_t len,
                      kw_ts ts)
{
    struct pipe_flow *pf = f->app;
    if (pf && pf->tls)
        return tls_conn_feed(pf->tls, dir, d, len, ts);
    if (!pf || pf->http == PF_HTTP_NO)
        return len;
    if (pf->h2)
        return feed_h2(pf, dir, d, len, ts);
    if (pf->http == PF_HTTP_UNKNOWN && (pf->gap[0] || pf->gap[1]))
        return probe_after_gap(pf, dir, d, len, ts);
    if (pf->http == PF_HTTP_UNKNOWN && dir == 0 && !f->midstream) {
        /* prior knowledge (RFC 9113 §3.3): the preface, on any port */
        int v = h2_is_preface(d, len);
        if (v < 0) { /* its first bytes: wait for the rest */
            if (!pf->held_ts[dir])
                pf->held_ts[dir] = ts;
            return 0;
        }
        if (v > 0) {
            if (!start_h2(pf, false)) {
                pf->http = PF_HTTP_NO;
                return len;
            }
            if (pf->held_ts[dir]) {
                ts = pf->held_ts[dir];
                pf->held_ts[dir] = 0;
            }
            return feed_h2(pf, dir, d, len, ts);
        }
    }
    if (pf->http == PF_HTTP_UNKNOWN && dir == 1 && !f->midstream && !pf->probes[0] &&
        !pf->probes[1] && h2_server_preface(d, len)) {
        /* The server's preface (RFC 9113 §3.4), a SETTINGS frame, seen before
         * the client's: servers like nghttpd send it at accept, and when the
         * mirror lost the client's first segment it is all there is. The
         * client's direction then starts with a hole and resynchronises on
         * its frames (a connection otherwise lost whole). */
        if (!start_h2(pf, false)) {
            pf->http = PF_HTTP_NO;
            return len;
        }
        return feed_h2(pf, dir, d, len, ts);
    }
    if (pf->http == PF_HTTP_UNKNOWN && !pf->probes[0] && !pf->probes[1]) {
        int t = tls_rec_looks_tls(d, len, f->midstream);
        if (t > 0 && start_tls(pf))
            return tls_conn_feed(pf->tls, dir, d, len, ts);
        if (t < 0 && !f->midstream)
            return 0; /* a record header's first bytes: wait for the rest */
    }
    if (pf->http == PF_HTTP_UNKNOWN && f->midstream && !pf->probes[0] && !pf->probes[1] &&
        h2_looks_like_frames(d, len, dir)) {
        /* picked up midstream inside HTTP/2: frames, tables unknown */
        if (!start_h2(pf, true)) {
            pf->http = PF_HTTP_NO;
            return len;
        }
        return feed_h2(pf, dir, d, len, ts);
    }
    if (pf->http == PF_HTTP_UNKNOWN && f->midstream)
        return probe_midstream(pf, dir, d, len, ts);
    if (pf->http == PF_HTTP_UNKNOWN) {
        int v = looks_http(d, len);
        if (v > 0 && (pf->probes[0] || pf->probes[1]))
            v = looks_http_line(d, len); /* a later chunk: a whole start line */
        if (v < 0 && len < PROBE_BYTES) {
            /* keep the bytes; decide when more arrive, but remember when
             * the first of them was seen: that is when the request began */
            if (!pf->held_ts[dir])
                pf->held_ts[dir] = ts;
            return 0;
        }
        if (v <= 0) {
            /* not a start line: drop this chunk, look at the next ones */
            return probe_skip(pf, dir, len);
        }
        if (!start_http(pf))
            return len;
        if (pf->held_ts[dir]) {
            ts = pf->held_ts[dir];
            pf->held_ts[dir] = 0;
        }
    }
    return feed_http(pf, dir, d, len, ts);
}

static void cb_gap(void *user, struct flow *f, int dir, uint64_t len, kw_ts ts)
{
    struct pipe_flow *pf = f->app;
    if (pf && pf->tls) {
        tls_conn_gap(pf->tls, dir, len, ts);
        return;
    }
    if (!pf || pf->http == PF_HTTP_NO)
        return;
    if (pf->h2) {
        h2_gap(pf->h2, dir, len, ts);
        return;
    }
    /* A hole before the flow was recognised: remembered, and what follows
     * must hold an HTTP/1 start line (probe_after_gap). */
    if (pf->http == PF_HTTP_UNKNOWN) {
        pf->gap[dir] += len ? len : 1;
        return;
    }
    h1_gap(pf->h1, dir, len, ts);
}

static const char *end_reason_name(enum flow_end_reason r)
{
    switch (r) {
    case FLOW_END_CLOSED: return "closed";
    case FLOW_END_TIMEOUT: return "timeout";
    case FLOW_END_EVICTED: return "evicted";
    case FLOW_END_SHUTDOWN: return "shutdown";
    }
    return "unknown";
}

static const char *tcp_state_name(uint8_t s)
{
    static const char *const names[] = {"none", "syn_sent", "syn_recv", "established",
                                        "fin_wait", "closed"};
    return s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

size_t pipeline_format_flow(char *buf, size_t size, const struct flow *f, const char *app,
                            const char *sni, int64_t http_txns, enum flow_end_reason why,
                            kw_ts ts)
{
    char tsb[40], a[64], b[64];
    struct kw_jw w;
    kw_jw_init(&w, buf, size);
    kw_jw_obj_begin(&w, NULL);
    kw_jw_str(&w, "timestamp", kw_ts_format(ts, tsb, sizeof tsb));
    kw_jw_int(&w, "flow_id", (int64_t)(f->id & INT64_MAX));
    kw_jw_str(&w, "event_type", "flow");
    kw_jw_str(&w, "src_ip", kw_addr_str(&f->cli, a, sizeof a));
    kw_jw_int(&w, "src_port", f->cli_port);
    kw_jw_str(&w, "dest_ip", kw_addr_str(&f->srv, b, sizeof b));
    kw_jw_int(&w, "dest_port", f->srv_port);
    kw_jw_str(&w, "proto", f->proto == 6 ? "TCP" : f->proto == 17 ? "UDP" : "other");
    if (f->vlan) {
        kw_jw_arr_begin(&w, "vlan");
        kw_jw_int(&w, NULL, f->vlan);
        kw_jw_arr_end(&w);
    }
    if (f->tunnel.type) {
        kw_jw_obj_begin(&w, "tunnel");
        kw_jw_str(&w, "type", kw_tunnel_type_name(f->tunnel.type));
        kw_jw_int(&w, "id", f->tunnel.id);
        kw_jw_obj_end(&w);
    }
    kw_jw_str_opt(&w, "app_proto", app);
    kw_jw_obj_begin(&w, "flow");
    kw_jw_int(&w, "pkts_toserver", (int64_t)f->pkts[0]);
    kw_jw_int(&w, "pkts_toclient", (int64_t)f->pkts[1]);
    kw_jw_int(&w, "bytes_toserver", (int64_t)f->bytes[0]);
    kw_jw_int(&w, "bytes_toclient", (int64_t)f->bytes[1]);
    kw_jw_str(&w, "start", kw_ts_format(f->first_ts, tsb, sizeof tsb));
    kw_jw_str(&w, "end", kw_ts_format(f->last_ts, tsb, sizeof tsb));
    kw_jw_str(&w, "reason", end_reason_name(why));
    if (f->proto == 6) {
        kw_jw_str(&w, "state", tcp_state_name(f->tcp_state));
        kw_jw_bool(&w, "midstream", f->midstream);
        kw_jw_int(&w, "gaps", (int64_t)(f->gaps[0] + f->gaps[1]));
        kw_jw_int(&w, "gap_bytes", (int64_t)(f->gap_bytes[0] + f->gap_bytes[1]));
    }
    if (http_txns >= 0)
        kw_jw_int(&w, "http_transactions", http_txns);
    kw_jw_obj_end(&w);
    kw_jw_str_opt(&w, "tls_sni", sni);
    kw_jw_obj_end(&w);
    return kw_jw_ok(&w) ? w.len : 0;
}

void pipeline_judge_flow(struct pipeline *p, const struct flow *f, const char *app,
                         const char *sni, int64_t http_txns, enum flow_end_reason why, kw_ts ts)
{
    if (p->cfg.forward) {
        p->cfg.forward->flow(p->cfg.forward->user, p->now, f, app, sni, http_txns, why, ts);
        return;
    }
    if (p->sessions && app && !strcmp(app, "tls"))
        session_end(p, f, ts);
    if (!p->cfg.eve || !p->cfg.flow_records)
        return;
    size_t n = pipeline_format_flow(p->eve_buf, sizeof p->eve_buf, f, app, sni, http_txns, why, ts);
    if (n)
        kw_eve_write_text(p->cfg.eve, p->eve_buf, n);
    else
        p->cnt.eve_overflow++;
}

static void write_flow_record(struct pipeline *p, struct pipe_flow *pf, const struct flow *f,
                              enum flow_end_reason why, kw_ts ts)
{
    char app[64] = "", sni[256] = "";
    if (pf && pf->tls) {
        strcpy(app, "tls");
        snprintf(sni, sizeof sni, "%s", tls_conn_info(pf->tls)->ch.sni);
    } else if (pf && pf->was_h2)
        strcpy(app, "http2");
    else if (pf && pf->http == PF_HTTP_YES)
        strcpy(app, "http");
    else if (pf && pf->cls)
        classify_result(p->cls, pf->cls, app, sizeof app, sni, sizeof sni);
    int64_t txns = pf && pf->http == PF_HTTP_YES ? (int64_t)pf->txns : -1;
    if (p->cfg.sink)
        p->cfg.sink->flow_end(p->cfg.sink->user, f, pf ? pf->last_seq : 0, why, ts, app, sni,
                              txns);
    else
        pipeline_judge_flow(p, f, app, sni, txns, why, ts);
}

static void cb_flow_end(void *user, struct flow *f, enum flow_end_reason why, kw_ts ts)
{
    struct pipeline *p = user;
    struct pipe_flow *pf = f->app;
    if (pf && pf->tls) {
        p->ending = (int)why;
        tls_conn_close(pf->tls, ts); /* its record, if the handshake never ended */
        p->ending = -1;
    }
    if (pf && pf->h2) {
        p->ending = (int)why;
        h2_close(pf->h2, ts);
        p->ending = -1;
        h2_counters_add(&p->h2_total, h2_conn_counters(pf->h2));
        h2_conn_destroy(pf->h2);
        pf->h2 = NULL;
        p->h2_live--;
    }
    if (pf && pf->h1) {
        p->ending = (int)why;
        h1_close(pf->h1, ts);
        p->ending = -1;
        h1_counters_add(&p->h1_total, h1_conn_counters(pf->h1));
        p->h1_live--;
        if (p->h1_nfree < sizeof p->h1_free / sizeof p->h1_free[0])
            p->h1_free[p->h1_nfree++] = pf->h1; /* reset when reused */
        else
            h1_conn_destroy(pf->h1);
        pf->h1 = NULL;
    }
    /* a TLS flow's end always reaches the judge stage: the bytes of an
     * attributed session are judged there (flow records or not) */
    if (((p->cfg.eve || p->cfg.sink || p->cfg.forward) && p->cfg.flow_records) ||
        (pf && pf->tls))
        write_flow_record(p, pf, f, why, ts);
    if (pf) {
        tls_conn_destroy(pf->tls);
        pf->tls = NULL;
        if (pf->cls)
            classify_flow_free(p->cls, pf->cls);
        pf->next_free = p->free_flows;
        p->free_flows = pf;
    }
    f->app = NULL;
}

/* ---- lifecycle --------------------------------------------------------- */

enum kw_err pipeline_new(const struct pipeline_config *c, struct pipeline **out)
{
    struct pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return KW_E_NOMEM;
    p->cfg = *c;
    p->model = c->model;
    p->ending = -1;
    dec_ctx_init(&p->dec, &c->dec);
    enum kw_err e = KW_E_NOMEM;
    if (!(p->tls = malloc(sizeof *p->tls)))
        goto fail;
    tls_ctx_init(p->tls, &c->tls, c->tls_keylog);
    /* one classification state per flow slot at most (flow.max) */
    if (c->classify && (e = classify_ctx_new_limits(&p->cls, c->flow.max_flows,
                                                    classify_active(c, c->flow.max_flows))) !=
                           KW_E_OK)
        goto fail;
    if (c->routes && !c->sink)
        routes_set_on_merge(c->routes, on_template_merge, p);
    p->judge = judge_policy_new(NULL);
    if (!p->judge) {
        e = KW_E_NOMEM;
        goto fail;
    }
    judge_policy_set_repeat(p->judge, repeat_finding, p);
    struct flow_callbacks cb = {
        .user = p,
        .on_flow_start = cb_flow_start,
        .on_packet = cb_packet,
        .on_data = cb_data,
        .on_gap = cb_gap,
        .on_flow_end = cb_flow_end,
    };
    if ((e = flow_table_new(&c->flow, &cb, &p->flows)) != KW_E_OK)
        goto fail;
    if ((e = defrag_new(&c->defrag, &p->defrag)) != KW_E_OK)
        goto fail;
    *out = p;
    return KW_E_OK;
fail:
    p->model = NULL; /* the caller keeps its reference on failure */
    pipeline_destroy(p);
    return e;
}

void pipeline_destroy(struct pipeline *p)
{
    if (!p)
        return;
    dpop_thread_cleanup(); /* the proof keys built on this thread, if any */
    flow_table_destroy(p->flows); /* ends the flows: their parsers go to h1_free */
    while (p->h1_nfree)
        h1_conn_destroy(p->h1_free[--p->h1_nfree]);
    defrag_destroy(p->defrag);
    free(p->tls);
    judge_policy_destroy(p->judge);
    judge_sessions_destroy(p->sessions);
    free(p->sess_txn);
    oas_set_destroy(p->specs);
    oas_set_destroy(atomic_exchange(&p->new_specs, NULL));
    classify_ctx_destroy(p->cls);
    while (p->free_flows) {
        struct pipe_flow *n = p->free_flows->next_free;
        free(p->free_flows);
        p->free_flows = n;
    }
    if (p->model)
        rules_model_unref(p->model);
    free(p);
}

void pipeline_set_specs(struct pipeline *p, struct oas_set *s)
{
    oas_set_destroy(atomic_exchange(&p->new_specs, s));
}

void pipeline_set_model(struct pipeline *p, struct rules_model *m)
{
    if (p->model)
        rules_model_unref(p->model);
    p->model = m;
}

static void tick(struct pipeline *p, kw_ts now)
{
    kw_ts period = p->cfg.forward && p->cfg.forward->tick_us > 0 ? p->cfg.forward->tick_us
                                                                  : KW_TS_SEC(1);
    int64_t sec = now / period;
    if (sec == p->last_sec)
        return;
    p->last_sec = sec;
    pipeline_judge_tick(p, now);
}

void pipeline_packet(struct pipeline *p, const struct cap_pkt *pkt)
{
    struct dec_packet d;
    p->cnt.packets++;
    p->cnt.bytes += pkt->caplen;
    enum dec_result r =
        dec_packet(&p->dec, pkt->linktype, pkt->ts, pkt->data, pkt->caplen, pkt->wirelen, &d);
    if (pkt->ts > p->now)
        p->now = pkt->ts;
    if (r == DEC_SKIP && d.ip_fragment) /* the one branch fragments cost others */
        r = defrag_decode(p->defrag, &p->dec, &d);
    if (r == DEC_OK)
        flow_table_packet(p->flows, &d);
    else if (r == DEC_MALFORMED)
        p->cnt.decode_malformed++;
    else
        p->cnt.decode_skipped++;
    tick(p, p->now);
}

void pipeline_advance(struct pipeline *p, kw_ts now)
{
    if (now > p->now)
        p->now = now;
    defrag_advance(p->defrag, p->now); /* a quiet link still frees old fragments */
    flow_table_advance(p->flows, p->now);
    tick(p, p->now);
}

void pipeline_finish(struct pipeline *p)
{
    flow_table_flush(p->flows, p->now);
    pipeline_judge_tick(p, p->now);
}

void pipeline_set_seq(struct pipeline *p, uint64_t seq)
{
    p->seq = seq;
}

void pipeline_flow_advance(struct pipeline *p, kw_ts now)
{
    flow_table_advance(p->flows, now);
}

void pipeline_judge_at(struct pipeline *p, kw_ts now)
{
    if (now > p->now)
        p->now = now;
}

void pipeline_judge_tick(struct pipeline *p, kw_ts now)
{
    if (p->cfg.forward)
        p->cfg.forward->tick(p->cfg.forward->user, now);
    else {
        if (p->cfg.baseline)
            baseline_advance(p->cfg.baseline, now);
        if (p->cfg.routes)
            routes_advance(p->cfg.routes, now);
    }
}

void pipeline_finish_at(struct pipeline *p, kw_ts now)
{
    if (now > p->now)
        p->now = now;
    pipeline_finish(p);
}

struct judge_policy *pipeline_policy(struct pipeline *p)
{
    return p->judge;
}

kw_ts pipeline_now(const struct pipeline *p)
{
    return p->now;
}

const struct pipeline_counters *pipeline_counters(const struct pipeline *p)
{
    return &p->cnt;
}

/* ---- stats ------------------------------------------------------------- */

static void add_h1(void *u, const char *name, uint64_t v)
{
    json_object_set_new(u, name, json_integer((json_int_t)v));
}

json_t *pipeline_stats_json(const struct pipeline *p)
{
    json_t *s = json_object();
    json_t *o = json_object();
#define PJ(n) json_object_set_new(o, #n, json_integer((json_int_t)p->cnt.n));
    PIPELINE_COUNTERS(PJ)
#undef PJ
    json_object_set_new(s, "pipeline", o);

    o = json_object();
#define DJ(n) json_object_set_new(o, #n, json_integer((json_int_t)p->dec.cnt.n));
    DEC_COUNTERS(DJ)
#undef DJ
    json_object_set_new(s, "decoder", o);

    o = json_object();
    const struct flow_counters *fc = flow_table_counters(p->flows);
#define FJ(n) json_object_set_new(o, #n, json_integer((json_int_t)fc->n));
    FLOW_COUNTERS(FJ)
#undef FJ
    json_object_set_new(s, "flow", o);

    o = json_object();
    const struct defrag_counters *dc = defrag_counters(p->defrag);
#define DFJ(n) json_object_set_new(o, #n, json_integer((json_int_t)dc->n));
    DEFRAG_COUNTERS(DFJ)
#undef DFJ
    json_object_set_new(s, "defrag", o);

    o = json_object();
    h1_counters_each(&p->h1_total, add_h1, o);
    json_object_set_new(s, "http", o);

    o = json_object();
    h2_counters_each(&p->h2_total, add_h1, o);
    json_object_set_new(s, "http2", o);

    o = json_object();
#define TJ(n, d) json_object_set_new(o, #n, json_integer((json_int_t)p->tls->cnt.n));
    TLS_COUNTERS(TJ)
#undef TJ
    if (p->cfg.tls_keylog && !p->cfg.sink) { /* shared: counted once, by the judge */
        struct tls_keylog_counters kc;
        tls_keylog_get_counters(p->cfg.tls_keylog, &kc);
        json_t *k = json_object();
#define KLJ(n, d) json_object_set_new(k, #n, json_integer((json_int_t)kc.n));
        TLS_KEYLOG_COUNTERS(KLJ)
#undef KLJ
        json_object_set_new(o, "keylog", k);
    }
    json_object_set_new(s, "tls", o);

    o = json_object();
#define CJ(n, d) json_object_set_new(o, #n, json_integer((json_int_t)p->cred.n));
    CRED_COUNTERS(CJ)
#undef CJ
    json_object_set_new(s, "credentials", o);

    if (p->cls) {
        struct classify_stats cs;
        classify_get_stats(p->cls, &cs);
        o = json_object();
#define KJ(n, d) json_object_set_new(o, #n, json_integer((json_int_t)cs.n));
        CLASSIFY_COUNTERS(KJ)
#undef KJ
        json_object_set_new(s, "classify", o);
    }
    struct judge_policy_counters jc;
    judge_policy_get_counters(p->judge, &jc);
    o = json_object();
    json_object_set_new(o, "checked", json_integer((json_int_t)jc.checked));
    json_object_set_new(o, "key_evictions", json_integer((json_int_t)jc.key_evictions));
    json_object_set_new(o, "pair_evictions", json_integer((json_int_t)jc.pair_evictions));
    json_t *k = json_object();
    for (int i = 0; i < ALERT__COUNT; i++)
        if (jc.findings[i])
            json_object_set_new(k, alert_kind_name((enum alert_kind)i),
                                json_integer((json_int_t)jc.findings[i]));
    json_object_set_new(o, "findings", k);
    json_object_set_new(s, "policy", o);
    return s;
}
