/* baseline_sources: where a credential is used from. new_source reports a
 * /24 (/48) the identity never used, with the sensitivity deciding when a
 * neighbouring network still counts as known (a /16 at low, a roaming
 * campus /16 at medium); key_sharing reports one credential active from
 * two networks at once when that concurrency is new for it. Both live
 * here because both read and learn the same network table (net[]), and
 * key sharing asks whether each network is known. */
#include <stdio.h>
#include <string.h>

#include "baseline_int.h"

/* ---- the network table ---- */

static void net_of(const struct kw_addr *a, uint8_t out[16])
{
    memset(out, 0, 16);
    memcpy(out, a->a, a->family == 4 ? 3 : 6); /* /24 or /48 */
}

static long find_net(const struct bl_profile *p, uint8_t fam, const uint8_t a[16], size_t cmp)
{
    for (uint32_t i = 0; i < p->n_net; i++)
        if (p->net[i].family == fam && !memcmp(p->net[i].a, a, cmp)) return i;
    return -1;
}

static void learn_net(struct baseline *b, struct bl_profile *p, uint8_t fam, const uint8_t a[16],
                      float n, int32_t day)
{
    long i = find_net(p, fam, a, 16);
    if (i < 0) {
        if (p->n_net == BL_K_NET) {
            i = bl_min_slot(&p->net[0].count, sizeof p->net[0], p->n_net);
            b->st.evict_network++;
        } else {
            i = p->n_net++;
        }
        memset(&p->net[i], 0, sizeof p->net[i]);
        p->net[i].family = fam;
        memcpy(p->net[i].a, a, 16);
    }
    p->net[i].count += n;
    p->net[i].last_day = day;
}

/* ---- new_source ---- */

void bl_net_str(uint8_t fam, const uint8_t a[16], char *buf, size_t n)
{
    struct kw_addr x;
    memset(&x, 0, sizeof x);
    x.family = fam;
    memcpy(x.a, a, 16);
    char s[48]; /* INET6_ADDRSTRLEN is 46 */
    kw_addr_str(&x, s, sizeof s);
    snprintf(buf, n, "%s/%d", s, fam == 4 ? 24 : 48);
}

void baseline_net_str(const struct kw_addr *a, char *buf, size_t n)
{
    uint8_t net[16];
    net_of(a, net);
    bl_net_str(a->family, net, buf, n);
}

static void known_nets(const struct bl_profile *p, char *buf, size_t n)
{
    float total = 0;
    for (uint32_t i = 0; i < p->n_net; i++)
        total += p->net[i].count;
    size_t w = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < p->n_net && i < 3 && w < n; i++) {
        char ns[64];
        bl_net_str(p->net[i].family, p->net[i].a, ns, sizeof ns);
        w += (size_t)snprintf(buf + w, n - w, "%s%s (%.0f %%)", i ? ", " : "", ns,
                              total > 0 ? 100.0 * p->net[i].count / total : 0.0);
    }
    if (!p->n_net) snprintf(buf, n, "none");
}

/* Known /24s (/48s) of the profile inside the /16 (/32) of a. */
static uint32_t nets_in_wide(const struct bl_profile *p, uint8_t fam, const uint8_t a[16])
{
    size_t cmp = fam == 4 ? 2 : 4;
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->n_net; i++)
        n += p->net[i].family == fam && !memcmp(p->net[i].a, a, cmp);
    return n;
}

/* new_source: a /24 (/48) never seen. Not new: inside a known /16 (/32)
 * at low sensitivity, or, at medium, inside a /16 where the identity has
 * already used several /24s (its address moves around a campus; seen in
 * the simulator's employees on 10.50.0.0/16, a new /24 on most days). */
void bl_check_source(struct baseline *b, struct bl_obs *o)
{
    const struct kw_txn *t = o->t;
    struct bl_profile *p = o->p;
    if (t->src.family != 4 && t->src.family != 6) return;
    uint8_t a[16];
    net_of(&t->src, a);
    int32_t day = (int32_t)o->local_day;
    const struct bl_sens *s = &bl_sens_tab[b->sens];
    if (o->learning || find_net(p, t->src.family, a, 16) >= 0 ||
        (s->net_wide && find_net(p, t->src.family, a, t->src.family == 4 ? 2 : 4) >= 0) ||
        (s->roam_nets && nets_in_wide(p, t->src.family, a) >= s->roam_nets)) {
        learn_net(b, p, t->src.family, a, 1.f, day);
        return;
    }
    bool fresh;
    struct bl_pending *e =
        bl_pend_get(b, o, BL_P_NET, bl_hash((const char *)a, 16) ^ t->src.family, &fresh);
    if (fresh) {
        e->family = t->src.family;
        memcpy(e->a, a, 16);
    }
    if (bl_pend_see(b, o, e)) {
        learn_net(b, p, t->src.family, a, (float)e->count, day);
        bl_pend_drop(p, e);
        return;
    }
    if (!fresh) return;
    char ns[64], ip[64], known[256];
    bl_net_str(t->src.family, a, ns, sizeof ns);
    kw_addr_str(&t->src, ip, sizeof ip);
    known_nets(p, known, sizeof known);
    bl_emit(
        b, o, BL_F_SOURCE, ns, json_pack("{s:s,s:i}", "known_networks", known, "count", p->n_net),
        json_pack("{s:s,s:s}", "src_ip", ip, "network", ns),
        "%s used from %s (%s), a network it has never used; known: %s", bl_who(o), ip, ns, known);
}

/* ---- key sharing ---- */

static uint32_t min_slot_ts(const struct bl_profile *p)
{
    uint32_t m = 0;
    for (uint32_t i = 1; i < p->n_recent; i++)
        if (p->recent[i].last_ts < p->recent[m].last_ts) m = i;
    return m;
}

static uint64_t pair_key(uint64_t x, uint64_t y)
{
    uint64_t k[2] = {x < y ? x : y, x < y ? y : x};
    return bl_hash((const char *)k, sizeof k);
}

static long find_pair(const struct bl_profile *p, uint64_t x, uint64_t y)
{
    uint64_t lo = x < y ? x : y, hi = x < y ? y : x;
    for (uint32_t i = 0; i < p->n_pair; i++)
        if (p->pair[i].a == lo && p->pair[i].b == hi) return i;
    return -1;
}

static void learn_pair(struct baseline *b, struct bl_profile *p, uint64_t x, uint64_t y, float n,
                       int32_t day)
{
    long i = find_pair(p, x, y);
    if (i < 0) {
        if (p->n_pair == BL_K_PAIR) {
            i = bl_min_slot(&p->pair[0].count, sizeof p->pair[0], p->n_pair);
            b->st.evict_pair++;
        } else {
            i = p->n_pair++;
        }
        memset(&p->pair[i], 0, sizeof p->pair[i]);
        p->pair[i].a = x < y ? x : y;
        p->pair[i].b = x < y ? y : x;
    }
    p->pair[i].count += n;
    p->pair[i].last_day = day;
}

/* Share of the profile's (decayed) requests from a network, in %. */
static float net_share(const struct bl_profile *p, uint8_t fam, const uint8_t a[16])
{
    float total = 0, mine = 0;
    for (uint32_t i = 0; i < p->n_net; i++) {
        total += p->net[i].count;
        if (p->net[i].family == fam && !memcmp(p->net[i].a, a, 16)) mine = p->net[i].count;
    }
    return total > 0 ? 100.f * mine / total : 0.f;
}

/* key_sharing: the same credential from two networks within the window,
 * when that concurrency is new for it: a network it never used, or two
 * networks it never used at the same time while its history shows one
 * network at a time (concurrent hours below 5 % of active hours). At most
 * one finding per credential and hour; the evidence says which. */
void bl_check_sharing(struct baseline *b, struct bl_obs *o)
{
    const struct kw_txn *t = o->t;
    struct bl_profile *p = o->p;
    if (t->src.family != 4 && t->src.family != 6) return;
    const char *cred = t->cred.fingerprint[0] ? t->cred.fingerprint : p->key;
    uint64_t fp = bl_hash(cred, strlen(cred));
    uint8_t a[16];
    net_of(&t->src, a);
    uint64_t net = bl_hash((const char *)a, 16) ^ t->src.family;
    kw_ts win = bl_sens_tab[b->sens].share_window;
    long self = -1, other = -1;
    for (uint32_t i = 0; i < p->n_recent; i++) {
        struct bl_recent *r = &p->recent[i];
        if (r->fp != fp) continue;
        if (r->net == net)
            self = i;
        else if (t->ts - r->last_ts <= win && r->last_ts - t->ts <= win)
            other = i;
    }
    if (self < 0) {
        self = p->n_recent < BL_K_RECENT ? (long)p->n_recent++ : (long)min_slot_ts(p);
        memset(&p->recent[self], 0, sizeof p->recent[self]);
        p->recent[self].fp = fp;
        p->recent[self].net = net;
        p->recent[self].family = t->src.family;
        memcpy(p->recent[self].a, a, 16);
    }
    if (t->ts > p->recent[self].last_ts) p->recent[self].last_ts = t->ts;
    if (other < 0) return;
    /* one finding per episode: sharing that goes on extends it */
    bool episode = p->last_share_alert && t->ts - p->last_share_alert < BL_HOUR_US;
    if (episode) p->last_share_alert = t->ts;
    int64_t hour = bl_floordiv(t->ts, BL_HOUR_US);
    if (p->conc_hour == hour) return;
    p->conc_hour = hour;
    /* New concurrency is what matters: two networks this credential has
     * been used from at the same time before (office and VPN) are its
     * habit; so is a known network beside another known one for a
     * credential that is often used from several at once. A network
     * never seen, or two that were never used together by a credential
     * that works from one at a time, is new. */
    const struct bl_recent *ro = &p->recent[other];
    long pi = find_pair(p, net, ro->net);
    bool known_self = find_net(p, t->src.family, a, 16) >= 0;
    bool known_other = find_net(p, ro->family, ro->a, 16) >= 0;
    bool shared_before = p->conc_hours >= 1.f && p->conc_hours >= 0.05f * p->active_hours;
    if (o->learning || pi >= 0 || (shared_before && known_self && known_other)) {
        p->conc_hours += 1.f;
        learn_pair(b, p, net, ro->net, 1.f, (int32_t)o->local_day);
        return;
    }
    bool fresh;
    struct bl_pending *e = bl_pend_get(b, o, BL_P_CONC, fp ^ pair_key(net, ro->net), &fresh);
    if (bl_pend_see(b, o, e)) {
        p->conc_hours += (float)e->days;
        learn_pair(b, p, net, ro->net, (float)e->days, (int32_t)o->local_day);
        bl_pend_drop(p, e);
        return;
    }
    if (episode) return;
    p->last_share_alert = t->ts;
    char ns[64], ns2[64], ip[64];
    bl_net_str(t->src.family, a, ns, sizeof ns);
    bl_net_str(ro->family, ro->a, ns2, sizeof ns2);
    kw_addr_str(&t->src, ip, sizeof ip);
    float pct_self = net_share(p, t->src.family, a), pct_other = net_share(p, ro->family, ro->a);
    char why[160];
    if (!known_self || !known_other)
        snprintf(why, sizeof why, "%s was never used by it", !known_self ? ns : ns2);
    else
        snprintf(why, sizeof why, "it never used these two networks at the same time");
    bl_emit(b, o, BL_F_SHARING, cred,
            json_pack("{s:s,s:f,s:f,s:b,s:i}", "pattern",
                      shared_before ? "several networks at once" : "one network at a time",
                      "concurrent_hours", p->conc_hours, "active_hours", p->active_hours,
                      "seen_together_before", 0, "known_pairs", p->n_pair),
            json_pack("{s:s,s:[{s:s,s:b,s:f},{s:s,s:b,s:f}],s:I}", "src_ip", ip, "networks", "net",
                      ns2, "known", known_other, "share", pct_other, "net", ns, "known", known_self,
                      "share", pct_self, "window_s", (json_int_t)(win / 1000000)),
            "credential %s of %s active from %s (%s) and %s (%s) within %lld min; %s (%.0f of %.0f "
            "active hours shared)",
            t->cred.hint[0] ? t->cred.hint : "?", p->key, ns2, known_other ? "known" : "never seen",
            ns, known_self ? "known" : "never seen", (long long)(win / 60000000), why,
            p->conc_hours, p->active_hours);
}
