/* pipeline_judge: the judge stage. A transaction (or a TLS handshake, or a
 * flow's end) is attributed to an identity by the rules, written as an EVE
 * record, checked against the policy and the baseline, and audited; the
 * findings go to alerts. In worker mode this runs on the judge thread, fed
 * by the workers' sink; with `forward` set it hands everything on instead
 * (a sensor partitions by identity, so attribution happens first). */
#include <stdlib.h>
#include <string.h>

#include "judge_session.h"
#include "kw_jw.h"
#include "persona.h"
#include "pipeline_int.h"
#include "pipeline_tls.h"

/* ---- findings ---------------------------------------------------------- */

void pl_emit_finding(void *user, struct alert_finding *f)
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

bool pl_repeat_finding(void *user, struct alert_finding *f)
{
    struct pipeline *p = user;
    if (!p->cfg.alerts || !alerts_repeat(p->cfg.alerts, f)) return false;
    p->cnt.findings++; /* as pl_emit_finding counts it */
    return true;
}

/* ---- transactions ------------------------------------------------------ */

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
    case KW_CRED_BEARER:
        p->cnt.cred_bearer++;
        break;
    case KW_CRED_JWT:
        p->cnt.cred_jwt++;
        break;
    case KW_CRED_BASIC:
        p->cnt.cred_basic++;
        break;
    case KW_CRED_API_KEY:
        p->cnt.cred_api_key++;
        break;
    case KW_CRED_OTHER:
        p->cnt.cred_other++;
        break;
    default:
        break;
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
    enum oas_match m = pl_learn_template(p, t, &op);
    kw_eve_write_txn(p->cfg.eve, t); /* rendered by the EVE writer's thread */
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
        judge_policy_check_doc(p->judge, p->model, id, t, doc.n_alts ? &doc : NULL, pl_emit_finding,
                               p);
    }
    if (p->model) pl_check_undocumented(p, id, t, m);
    if (p->cfg.baseline && (id || t->cred.kind != KW_CRED_NONE))
        baseline_observe(p->cfg.baseline, t, id ? kw_tz_name(id->tz) : NULL, id && id->schedule.set,
                         pl_emit_finding, p);
    if (p->cfg.audit) audit_record(p->cfg.audit, t);
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
    const struct rules_identity *id =
        p->model ? rules_find_identity(p->model, t->identity.id) : NULL;
    if (!id || !p->cfg.baseline) return;
    rules_identity_ref_fill(id, &t->identity);
    baseline_observe_session(p->cfg.baseline, t, kw_tz_name(id->tz), pl_emit_finding, p);
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
    if (!id && !svc) return;
    if (p->model && p->judge) judge_policy_check(p->judge, p->model, id, t, pl_emit_finding, p);
    if (p->cfg.baseline && id) {
        baseline_observe(p->cfg.baseline, t, kw_tz_name(id->tz), id->schedule.set, pl_emit_finding,
                         p);
        session_start(p, t);
    }
}

void pipeline_judge_flow(struct pipeline *p, const struct flow *f, const char *app, const char *sni,
                         int64_t http_txns, enum flow_end_reason why, kw_ts ts)
{
    if (p->cfg.forward) {
        p->cfg.forward->flow(p->cfg.forward->user, p->now, f, app, sni, http_txns, why, ts);
        return;
    }
    if (p->sessions && app && !strcmp(app, "tls")) session_end(p, f, ts);
    if (!p->cfg.eve || !p->cfg.flow_records) return;
    size_t n = pipeline_format_flow(p->eve_buf, sizeof p->eve_buf, f, app, sni, http_txns, why, ts);
    if (n)
        kw_eve_write_text(p->cfg.eve, p->eve_buf, n);
    else
        p->cnt.eve_overflow++;
}
