/* baseline_grants: scope_escalation from the baseline, an OAuth grant
 * (scope, role, group of a JWT) the identity's tokens never held. Grants
 * are learned per identity, with a learning period of their own from the
 * first token that showed any, because a policy rule can only list the
 * grants someone thought of; the baseline knows the ones actually used. */
#include <stdio.h>
#include <string.h>

#include "baseline_int.h"

/* scope_escalation from the baseline: a token of the identity holds an
 * OAuth grant (scope, role, group) its tokens never held before, after its
 * learning period: a token minted with more rights than the contractor has
 * ever used. One finding per transaction naming every new grant, which is
 * then learned (one alert per new grant). The table keeps the BL_K_GRANT
 * most used. */
void bl_check_grants(struct baseline *b, struct bl_obs *o)
{
    const struct kw_txn *t = o->t;
    struct bl_profile *p = o->p;
    if (t->cred.kind != KW_CRED_JWT || !t->cred.jwt.has_scope) return;
    /* grants have a learning period of their own from the first token
     * that showed any: an identity that moves to JWTs, or a profile kept
     * from before grants were learned, is not judged on its first ones */
    if (!p->grants_since) p->grants_since = t->ts;
    bool quiet = o->learning || t->ts - p->grants_since < b->learning;
    char fresh[256] = "", known[4 * 48 + 16] = "";
    size_t nf = 0, nk = 0;
    unsigned n_new = 0;
    for (uint32_t i = 0; i < p->n_grant && i < 4; i++)
        nk +=
            (size_t)snprintf(known + nk, sizeof known - nk, "%s%s", i ? " " : "", p->grant[i].text);
    uint32_t known_before = p->n_grant;
    for (const char *g = t->cred.jwt.scope; *g;) {
        size_t l = strcspn(g, " ");
        char text[48];
        snprintf(text, sizeof text, "%.*s", (int)l, g);
        uint64_t h = bl_hash(text, strlen(text));
        uint32_t victim = 0, i;
        for (i = 0; i < p->n_grant && p->grant[i].h != h; i++)
            if (p->grant[i].count < p->grant[victim].count) victim = i;
        if (i < p->n_grant) {
            p->grant[i].count++;
            p->grant[i].last_day = (int32_t)o->local_day;
        } else {
            if (!quiet) {
                n_new++;
                if (nf < sizeof fresh)
                    nf += (size_t)snprintf(fresh + nf, sizeof fresh - nf, "%s%s", nf ? " " : "",
                                           text);
            }
            struct bl_grant *e =
                p->n_grant < BL_K_GRANT ? &p->grant[p->n_grant++] : &p->grant[victim];
            memset(e, 0, sizeof *e);
            e->h = h;
            e->count = 1;
            e->last_day = (int32_t)o->local_day;
            bl_set_text(e->text, sizeof e->text, text);
        }
        g += l;
        while (*g == ' ')
            g++;
    }
    if (!n_new) return;
    char subj[280];
    snprintf(subj, sizeof subj, "grants %s", fresh);
    bl_emit(b, o, BL_F_GRANT, subj,
            json_pack("{s:s,s:i}", "known_grants", known, "count", known_before),
            json_pack("{s:s,s:s}", "new_grants", fresh, "grants", t->cred.jwt.scope),
            "%s used a token holding %s \"%s\" that its tokens never held in its baseline (%u "
            "grant%s known: %s%s); the token grants \"%s\"",
            bl_who(o), n_new == 1 ? "the grant" : "the grants", fresh, known_before,
            known_before == 1 ? "" : "s", known, known_before > 4 ? " ..." : "", t->cred.jwt.scope);
}
