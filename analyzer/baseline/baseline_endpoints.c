/* baseline_endpoints: new_endpoint, a method x template the identity never
 * called, and the endpoint table behind it: end[] keeps the BL_K_END most
 * used, gone[] remembers evicted ones by hash so they never turn new
 * again, and template renames from analyzer/shapes (a literal becoming a
 * parameter) carry counts, evictions and quarantine over to the new name.
 * Two folds keep one change of an API from raising a storm of alerts: a
 * new area under a literal the identity never reached (fold_endpoint) and
 * the same endpoint written another way (fold_variant); both are
 * quarantined as usual, only the alert is spared. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "baseline_int.h"
#include "kw_str.h"

/* ---- the endpoint table ---- */

static long find_end(const struct bl_profile *p, uint64_t h)
{
    for (uint32_t i = 0; i < p->n_end; i++)
        if (p->end[i].h == h) return i;
    return -1;
}

/* An evicted endpoint with hash h (or, h == 0, template hash th), or -1. */
static long find_gone(const struct bl_profile *p, uint64_t h, uint64_t th)
{
    for (uint32_t i = 0; i < p->n_gone; i++)
        if (p->gone[i].h && (h ? p->gone[i].h == h : p->gone[i].th == th)) return i;
    return -1;
}

/* end[i] leaves the table: remembered by hash, the oldest evicted forgotten
 * first (a slot freed by a rename is used before). */
static void end_evict(struct bl_profile *p, uint32_t i)
{
    uint32_t at = p->gone_next;
    for (uint32_t k = 0; k < p->n_gone; k++)
        if (!p->gone[k].h) {
            at = k;
            break;
        }
    struct bl_gone *g = &p->gone[at];
    bool ring = at == p->gone_next;
    memset(g, 0, sizeof *g);
    g->h = p->end[i].h;
    g->th = p->end[i].th;
    size_t ml = strcspn(p->end[i].text, " ");
    if (ml >= sizeof g->method) ml = sizeof g->method - 1; /* a longer method: cut */
    memcpy(g->method, p->end[i].text, ml);
    if (!ring) return;
    p->gone_next = (p->gone_next + 1) % BL_K_GONE;
    if (p->n_gone < BL_K_GONE) p->n_gone++;
}

static void learn_end(struct baseline *b, struct bl_profile *p, uint64_t h, uint64_t th,
                      const char *text, float n, int32_t day)
{
    long i = find_end(p, h);
    if (i < 0) {
        /* known by hash: it stays there (bringing it back would evict
         * another, which would churn the ring) */
        if (find_gone(p, h, 0) >= 0) return;
        if (p->n_end == BL_K_END) {
            i = bl_min_slot(&p->end[0].count, sizeof p->end[0], p->n_end);
            end_evict(p, (uint32_t)i);
            b->st.evict_endpoint++;
        } else {
            i = p->n_end++;
        }
        memset(&p->end[i], 0, sizeof p->end[i]);
        p->end[i].h = h;
        p->end[i].th = th;
        bl_set_text(p->end[i].text, BL_TXT, text);
    }
    p->end[i].count += n;
    p->end[i].last_day = day;
}

/* ---- new_endpoint ---- */

static void top_endpoints(const struct bl_profile *p, char *buf, size_t n)
{
    long best = -1;
    for (uint32_t i = 0; i < p->n_end; i++)
        if (best < 0 || p->end[i].count > p->end[best].count) best = i;
    if (best < 0)
        snprintf(buf, n, "none");
    else
        snprintf(buf, n, "%s", p->end[best].text);
}

/* Is tmpl[0..n) (a prefix ending at a segment boundary) a prefix of the
 * template of a stored text "METHOD template"? 1 yes, 0 no, -1 cannot tell
 * (the text was cut at BL_TXT inside or right after it). */
static int text_has_prefix(const char *text, const char *tmpl, size_t n)
{
    const char *tt = strchr(text, ' ');
    if (!tt) return 0;
    tt++;
    size_t l = strlen(tt);
    bool cut = strlen(text) >= BL_TXT - 1;
    if (l < n) return cut && !memcmp(tt, tmpl, l) ? -1 : 0;
    if (memcmp(tt, tmpl, n)) return 0;
    if (tt[n] == '/') return 1;
    if (!tt[n]) return cut ? -1 : 1;
    return 0;
}

/* A new endpoint inside a new area of the API that already raised one:
 * its first segment the identity never reached (no known endpoint under
 * that prefix) is a literal below the first segment and not the last one
 * (/api/projects/nova-media/... after /api/projects/northingest/...: a new
 * account, a new language, a new zone), and an endpoint waiting in
 * quarantine lies under the same prefix. A small pool of word values
 * stays literal in the learned templates (docs/shapes.md), so the first
 * request with a new value opens a new area and each further call in it
 * would be one more new endpoint; one alert says it. New endpoints that
 * differ in a collection (/v1/cinema/..., /v1/company/...) or in their
 * last segment each still alert. */
static bool fold_endpoint(const struct bl_profile *p, const struct bl_pending *self,
                          const char *tmpl)
{
    size_t n = strlen(tmpl), pos = 0;
    for (unsigned seg = 1; pos < n && tmpl[pos] == '/'; seg++) {
        size_t e = pos + 1;
        while (e < n && tmpl[e] != '/')
            e++;
        if (e == pos + 1) return false; /* a trailing '/' */
        bool known = false;
        for (uint32_t i = 0; i < p->n_end && !known; i++)
            known = text_has_prefix(p->end[i].text, tmpl, e) != 0;
        if (!known) {
            bool last = e >= n || e + 1 == n; /* "/x" or "/x/" ends the template */
            if (seg < 2 || last || memchr(tmpl + pos + 1, '{', e - pos - 1)) return false;
            for (uint32_t i = 0; i < p->n_pend; i++) {
                const struct bl_pending *o = &p->pend[i];
                if (o != self && o->type == BL_P_ENDPOINT && text_has_prefix(o->text, tmpl, e) == 1)
                    return true;
            }
            return false;
        }
        pos = e;
    }
    return false;
}

/* The extension of the last segment of a[0..n): ".json", ".kml" (1-5
 * letters and digits, a letter first); its offset, or n when none. */
static size_t ext_at(const char *a, size_t n)
{
    size_t d = n;
    while (d > 0 && a[d - 1] != '.' && a[d - 1] != '/')
        d--;
    if (d == 0 || a[d - 1] != '.' || n - d < 1 || n - d > 5 || !isalpha((unsigned char)a[d]))
        return n;
    for (size_t i = d; i < n; i++)
        if (!isalnum((unsigned char)a[i])) return n;
    return d - 1;
}

/* Two templates of one endpoint, written differently: the same but for
 * the format extension (/distance.json, /distance.kml), or the same but
 * for one segment before the last, a parameter in one and a literal in
 * the other (/v2/portalingest/traces, /v2/{id}/traces: a value kept
 * literal beside its parameter, docs/shapes.md). */
static bool same_endpoint(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    size_t ea = ext_at(a, na), eb = ext_at(b, nb);
    if (ea < na && eb < nb && ea == eb && !memcmp(a, b, ea) && !memchr(a + ea, '/', na - ea))
        return na != nb || memcmp(a, b, na);
    unsigned diff = 0, at = 0, segs = 0;
    bool param = false;
    size_t i = 0, j = 0;
    while (i < na && j < nb) {
        size_t ie = i + 1, je = j + 1;
        while (ie < na && a[ie] != '/')
            ie++;
        while (je < nb && b[je] != '/')
            je++;
        segs++;
        if (ie - i != je - j || memcmp(a + i, b + j, ie - i)) {
            diff++;
            at = segs;
            param = (memchr(a + i, '{', ie - i) != NULL) != (memchr(b + j, '{', je - j) != NULL);
        }
        i = ie;
        j = je;
    }
    if (i < na || j < nb || diff != 1 || !param) return false;
    bool slash = na > 1 && a[na - 1] == '/'; /* "/x/" ends with an empty segment */
    return at < segs - (slash ? 1u : 0u);
}

/* A new endpoint that is one already waiting in quarantine (same method)
 * written differently (same_endpoint). */
static bool fold_variant(const struct bl_profile *p, const struct bl_pending *self,
                         const char *method, const char *tmpl)
{
    size_t ml = strlen(method);
    for (uint32_t i = 0; i < p->n_pend; i++) {
        const struct bl_pending *o = &p->pend[i];
        if (o == self || o->type != BL_P_ENDPOINT || strlen(o->text) >= BL_TXT - 1) continue;
        if (strncmp(o->text, method, ml) || o->text[ml] != ' ') continue;
        if (same_endpoint(tmpl, o->text + ml + 1)) return true;
    }
    return false;
}

/* new_endpoint: a method x template never seen (low sensitivity: a
 * template never seen under any method). */
void bl_check_endpoint(struct baseline *b, struct bl_obs *o)
{
    const struct kw_txn *t = o->t;
    struct bl_profile *p = o->p;
    if (!t->method[0] || !t->template_[0])
        return; /* a response without its request has no endpoint */
    char text[BL_TXT + 32], *te = text + sizeof text;
    kw_stpencpy(kw_stpecpy(kw_stpecpy(text, te, t->method), te, " "), te, t->template_, BL_TXT);
    char full[600], *fe = full + sizeof full;
    char *fp = kw_stpecpy(kw_stpecpy(kw_stpecpy(full, fe, t->method), fe, " "), fe, t->template_);
    uint64_t h = bl_hash(full, kw_str_len(full, fe, fp));
    uint64_t th = bl_hash(t->template_, strlen(t->template_));
    int32_t day = (int32_t)o->local_day;
    if (o->learning || find_end(p, h) >= 0 || find_gone(p, h, 0) >= 0) {
        learn_end(b, p, h, th, text, 1.f, day);
        return;
    }
    if (!bl_sens_tab[b->sens].endpoint_method) {
        bool known = find_gone(p, 0, th) >= 0;
        for (uint32_t i = 0; i < p->n_end && !known; i++)
            known = p->end[i].th == th;
        if (known) {
            learn_end(b, p, h, th, text, 1.f, day);
            return;
        }
    }
    bool fresh;
    struct bl_pending *e = bl_pend_get(b, o, BL_P_ENDPOINT, h, &fresh);
    if (fresh) bl_set_text(e->text, BL_TXT, text);
    if (bl_pend_see(b, o, e)) {
        learn_end(b, p, h, th, text, (float)e->count, day);
        bl_pend_drop(p, e);
        return;
    }
    if (!fresh) return;
    if (fold_endpoint(p, e, t->template_) || fold_variant(p, e, t->method, t->template_)) {
        b->st.endpoint_folded++; /* quarantined as any other, not alerted */
        return;
    }
    char top[BL_TXT];
    top_endpoints(p, top, sizeof top);
    bl_emit(
        b, o, BL_F_ENDPOINT, text,
        json_pack("{s:i,s:s}", "known_endpoints", p->n_end, "most_used", top),
        json_pack("{s:s,s:s,s:s}", "method", t->method, "template", t->template_, "path", t->path),
        "%s called %s for the first time; it knows %u endpoints, most used %s", bl_who(o), text,
        p->n_end, top);
}

/* ---- template merges (analyzer/shapes) ---- */

/* "GET /v1/x" -> hash of "GET " + tmpl, the key bl_check_endpoint uses. */
static uint64_t method_hash(const char *text, const char *tmpl)
{
    const char *sp = strchr(text, ' ');
    size_t ml = sp ? (size_t)(sp - text) : strlen(text);
    char full[600];
    int fl = snprintf(full, sizeof full, "%.*s %s", (int)ml, text, tmpl);
    return bl_hash(full, (size_t)fl < sizeof full ? (size_t)fl : sizeof full - 1);
}

static void method_text(char *dst, const char *text, const char *tmpl)
{
    const char *sp = strchr(text, ' ');
    size_t ml = sp ? (size_t)(sp - text) : strlen(text);
    char t[BL_TXT + 32];
    snprintf(t, sizeof t, "%.*s %.*s", (int)ml, text, BL_TXT, tmpl);
    bl_set_text(dst, BL_TXT, t);
}

static bool rename_profile(struct bl_profile *p, uint64_t th_old, const char *old_tmpl,
                           const char *new_tmpl)
{
    bool changed = false;
    uint64_t th_new = bl_hash(new_tmpl, strlen(new_tmpl));
    for (uint32_t i = 0; i < p->n_end; i++) {
        struct bl_endpoint *e = &p->end[i];
        if (e->th != th_old || e->h != method_hash(e->text, old_tmpl)) continue;
        uint64_t h = method_hash(e->text, new_tmpl);
        long j = find_end(p, h);
        changed = true;
        if (j >= 0 && (uint32_t)j != i) { /* the parameter is known: counts merge */
            p->end[j].count += e->count;
            if (e->last_day > p->end[j].last_day) p->end[j].last_day = e->last_day;
            memmove(e, e + 1, (p->n_end - i - 1) * sizeof *e);
            memset(&p->end[--p->n_end], 0, sizeof *e);
            i--;
            continue;
        }
        e->h = h;
        e->th = th_new;
        method_text(e->text, e->text, new_tmpl);
    }
    for (uint32_t i = 0; i < p->n_gone; i++) {
        struct bl_gone *g = &p->gone[i];
        if (!g->h || g->th != th_old || g->h != method_hash(g->method, old_tmpl)) continue;
        uint64_t h = method_hash(g->method, new_tmpl);
        changed = true;
        long k = find_gone(p, h, 0);
        if (find_end(p, h) >= 0 || (k >= 0 && (uint32_t)k != i)) { /* known under the new name */
            memset(g, 0, sizeof *g);
            continue;
        }
        g->h = h;
        g->th = th_new;
    }
    for (uint32_t i = 0; i < p->n_pend; i++) {
        struct bl_pending *e = &p->pend[i];
        if (e->type != BL_P_ENDPOINT || e->h != method_hash(e->text, old_tmpl)) continue;
        uint64_t h = method_hash(e->text, new_tmpl);
        changed = true;
        if (find_end(p, h) >= 0) { /* now a known endpoint: nothing to wait for */
            bl_pend_drop(p, e);
            i--;
            continue;
        }
        e->h = h;
        method_text(e->text, e->text, new_tmpl);
        for (uint32_t k = 0; k < p->n_pend; k++) {
            struct bl_pending *o = &p->pend[k];
            if (k == i || o->type != BL_P_ENDPOINT || o->h != h) continue;
            o->count += e->count; /* two names of one endpoint: one entry */
            if (e->first_ts < o->first_ts) o->first_ts = e->first_ts;
            if (e->days > o->days) o->days = e->days;
            if (e->last_day > o->last_day) o->last_day = e->last_day;
            bl_pend_drop(p, e);
            i--;
            break;
        }
    }
    return changed;
}

void baseline_rename_template(struct baseline *b, const char *old_tmpl, const char *new_tmpl)
{
    uint64_t th = bl_hash(old_tmpl, strlen(old_tmpl));
    for (uint32_t i = 0; i < b->n; i++)
        if (rename_profile(&b->p[i], th, old_tmpl, new_tmpl)) {
            b->dirty[i] = 1;
            b->st.renamed++;
        }
}
