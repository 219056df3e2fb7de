/* judge_session: see judge_session.h. */
#include "judge_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What an alert about the session needs, not the whole record (a kw_txn
 * is ~15 KB; this is ~0.6 KB). */
struct sess {
    uint64_t flow_id; /* 0: empty */
    kw_ts start;
    struct kw_addr src, dst;
    uint16_t sport, dport;
    uint8_t cred_kind;
    char identity[64];
    char fingerprint[72];
    char hint[40];
    struct kw_tls_ref tls;
};

struct judge_sessions {
    struct sess *slot;
    unsigned mask;
    struct judge_session_counters c;
};

struct judge_sessions *judge_sessions_new(unsigned slots)
{
    if (!slots) slots = 4096;
    if (slots & (slots - 1)) return NULL;
    struct judge_sessions *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->slot = calloc(slots, sizeof *s->slot);
    if (!s->slot) {
        free(s);
        return NULL;
    }
    s->mask = slots - 1;
    return s;
}

void judge_sessions_destroy(struct judge_sessions *s)
{
    if (!s) return;
    free(s->slot);
    free(s);
}

/* Flow ids are sequential in a run and mixed with sensor and epoch in a
 * fleet: a multiplicative hash spreads both. */
static struct sess *slot_of(const struct judge_sessions *s, uint64_t id)
{
    return &s->slot[(id * 0x9e3779b97f4a7c15ULL) >> 32 & s->mask];
}

void judge_sessions_start(struct judge_sessions *s, const struct kw_txn *t)
{
    if (!t->flow_id || !t->identity.id[0]) return;
    struct sess *e = slot_of(s, t->flow_id);
    if (e->flow_id && e->flow_id != t->flow_id) s->c.evicted++;
    memset(e, 0, sizeof *e);
    e->flow_id = t->flow_id;
    e->start = t->ts;
    e->src = t->src;
    e->dst = t->dst;
    e->sport = t->sport;
    e->dport = t->dport;
    e->cred_kind = t->cred.kind;
    snprintf(e->identity, sizeof e->identity, "%s", t->identity.id);
    snprintf(e->fingerprint, sizeof e->fingerprint, "%s", t->cred.fingerprint);
    snprintf(e->hint, sizeof e->hint, "%s", t->cred.hint);
    e->tls = t->tls;
    s->c.started++;
}

bool judge_sessions_end(struct judge_sessions *s, uint64_t flow_id, kw_ts end, uint64_t to_server,
                        uint64_t to_client, struct kw_txn *t)
{
    struct sess *e = slot_of(s, flow_id);
    if (!flow_id || e->flow_id != flow_id) return false;
    kw_txn_clear(t);
    t->flow_id = flow_id;
    t->ts = end > e->start ? end : e->start;
    t->src = e->src;
    t->dst = e->dst;
    t->sport = e->sport;
    t->dport = e->dport;
    t->flags = KW_TXN_F(TLS_SESSION);
    snprintf(t->protocol, sizeof t->protocol, "TLS");
    snprintf(t->hostname, sizeof t->hostname, "%s", e->tls.sni);
    t->tls = e->tls;
    t->cred.kind = e->cred_kind;
    snprintf(t->cred.fingerprint, sizeof t->cred.fingerprint, "%s", e->fingerprint);
    snprintf(t->cred.hint, sizeof t->cred.hint, "%s", e->hint);
    snprintf(t->identity.id, sizeof t->identity.id, "%s", e->identity);
    t->req_len = to_server;
    t->resp_len = to_client;
    e->flow_id = 0;
    s->c.measured++;
    return true;
}

void judge_sessions_counters(const struct judge_sessions *s, struct judge_session_counters *out)
{
    *out = s->c;
}
