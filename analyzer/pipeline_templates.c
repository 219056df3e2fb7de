/* pipeline_templates: the endpoint template of a transaction (judge
 * stage) and what a service's OpenAPI document says of it. A document, when
 * the service has one, is authoritative; else the learned route model
 * (routes.h) names the template, and its merges rename the baseline's
 * endpoints. A request the document does not describe is the
 * undocumented_endpoint finding. */
#include <string.h>

#include "kw_addr.h"
#include "pipeline_int.h"
#include "kw_str.h"
#include "norm.h"

/* The template of a transaction (judge stage): a service's OpenAPI
 * document is authoritative (its template, its parameter names); else the
 * learned model replaces the parser's cold-start template. Only requests
 * the service routed (2xx, 3xx) teach the model: a 404 or a scanner's 401
 * says nothing about the API's routes. */
/* The template by the shapes of the path's segments alone (norm.h): for a
 * pipeline without a route model, and requests no model describes
 * (CONNECT). Kept when a template came with the transaction. */
static void cold_template(struct kw_txn *t)
{
    if (t->template_[0] || !t->path[0]) return;
    size_t pl = strlen(t->path);
    size_t tl = norm_template(t->path, pl, t->template_, sizeof t->template_);
    if (tl + 1 >= sizeof t->template_ && tl < pl) t->flags |= KW_TXN_F(TRUNCATED_FIELD);
}

enum oas_match pl_learn_template(struct pipeline *p, struct kw_txn *t,
                                 const struct oas_endpoint **op)
{
    *op = NULL;
    struct oas_set *ns = atomic_exchange(&p->new_specs, NULL);
    if (ns) {
        oas_set_destroy(p->specs);
        p->specs = ns;
    }
    if (!t->method[0] || !t->path[0] || !strcmp(t->method, "CONNECT")) {
        cold_template(t);
        return OAS_NO_SPEC;
    }
    const char *tmpl = NULL;
    enum oas_match m =
        oas_set_lookup(p->specs, t->hostname, t->dport, t->method, t->path, &tmpl, op);
    if (m == OAS_MATCH) {
        kw_stpecpy(t->template_, t->template_ + sizeof t->template_, tmpl);
        p->cnt.documented++;
        return m;
    }
    if (m != OAS_NO_SPEC) p->cnt.undocumented++;
    if (!p->cfg.routes) {
        cold_template(t);
        return m;
    }
    char svc[300], *se = svc + sizeof svc, a[64];
    const char *host = t->hostname[0] ? t->hostname : kw_addr_str(&t->dst, a, sizeof a);
    kw_stpeu(kw_stpecpy(kw_stpecpy(svc, se, host), se, ":"), se, t->dport); /* "host:port" */
    bool learn = !p->cfg.routes_fixed && t->status >= 200 && t->status < 400;
    routes_template_echo(p->cfg.routes, svc, t->method, t->path, strlen(t->path), learn,
                         t->resp_echo, t->ts, t->template_, sizeof t->template_);
    return m;
}

/* undocumented_endpoint: a request the service answered (2xx/3xx) to an
 * endpoint its OpenAPI document does not describe: a shadow API. */
void pl_check_undocumented(struct pipeline *p, const struct rules_identity *id,
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
    if (id) snprintf(f.timezone, sizeof f.timezone, "%s", kw_tz_name(id->tz));
    snprintf(f.subject, sizeof f.subject, "%.16s %.200s", t->method, t->template_);
    const char *who = id ? id->id : t->cred.hint[0] ? t->cred.hint : "an unidentified client";
    snprintf(f.summary, sizeof f.summary,
             "%.64s called %.16s %.400s on %.200s, which its OpenAPI document does not describe "
             "(%s); the service answered %d",
             who, t->method, t->path, t->hostname[0] ? t->hostname : "the service",
             m == OAS_NO_METHOD ? "the path is there, not this method" : "no such path", t->status);
    f.evidence = json_pack("{s:{s:s},s:{s:s,s:s,s:s,s:i}}", "expected", "documented",
                           m == OAS_NO_METHOD ? "other methods of this path" : "no such path",
                           "observed", "method", t->method, "path", t->path, "template",
                           t->template_, "status", t->status);
    pl_emit_finding(p, &f);
}

void pl_on_template_merge(void *user, const char *service, const char *old_tmpl,
                          const char *new_tmpl)
{
    struct pipeline *p = user;
    (void)service;
    p->cnt.template_merges++;
    if (p->cfg.baseline) baseline_rename_template(p->cfg.baseline, old_tmpl, new_tmpl);
}
