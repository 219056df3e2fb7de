/* flow: the bidirectional flow table (see flow.h for the contract).
 *
 * Chained hash buckets over a pool of flows allocated once at init; the
 * hash is SipHash-1-3 of the key with the endpoints sorted (so both
 * directions meet) keyed by cfg.hash_key, random per table (kw_hash.h:
 * crafted traffic cannot aim at one bucket). The one thing to know: every flow sits on exactly one of
 * three LRU lists — TCP idle, UDP idle, closed — each ordered by last
 * packet time and each with a single timeout, so expiry scans from the
 * oldest end and stops at the first live flow (O(expired)). Eviction when
 * the pool is full takes the oldest head of the three. */
#include "flow.h"

#include <stdlib.h>
#include <string.h>

#include "tcp_reasm.h"

#define FLOW_PROTO_TCP 6
#define FLOW_PROTO_UDP 17

enum { LRU_TCP, LRU_UDP, LRU_CLOSED, LRU_N };

/* Filled field by field after a memset, so keys compare with memcmp. */
struct flow_key {
    uint8_t lo[16], hi[16];
    uint16_t lo_port, hi_port;
    uint16_t vlan[2];
    uint32_t tun_id;
    uint8_t tun_type, proto, family, pad;
};

struct flow_node {
    struct flow f; /* first: the consumer's view */
    struct flow_key key;
    struct flow_node *hnext;
    struct flow_node *h2next; /* chain of the tunnel-blind index */
    struct dec_tunnel tun2;   /* the other direction's tunnel, once joined */
    bool joined;
    struct flow_node *lru_prev, *lru_next;
    struct flow_node *hole_prev, *hole_next;
    kw_ts lru_ts; /* table time of the last packet: monotonic along a list */
    uint8_t lru;
    bool in_hole_list;
    bool fin[2];
    struct tcp_stream st[2];
};

struct lru_list {
    struct flow_node *head, *tail;
};

struct flow_table {
    struct flow_config cfg;
    struct flow_callbacks cb;
    struct flow_counters cnt;
    struct tcp_reasm *reasm;
    struct flow_node *pool, *free_list;
    uint32_t pool_used; /* entries ever handed out: the rest stay untouched (no RSS) */
    struct flow_node **buckets;
    struct flow_node **buckets2; /* same flows, keyed without the tunnel */
    uint64_t mask;
    struct kw_hkey key2; /* cfg.hash_key is the exact index's */
    struct lru_list lru[LRU_N];
    struct flow_node *holes; /* flows with a hole in either direction */
    uint64_t next_id;
    kw_ts now, last_advance;
    bool have_time;
};

struct flow_sink_ctx {
    struct flow_table *t;
    struct flow_node *n;
    int dir;
};

void flow_config_default(struct flow_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_flows = 262144;
    cfg->memcap = 512ull << 20;
    cfg->stream_buf_max = 1u << 20;
    cfg->ooo_window = 256u << 10;
    cfg->ooo_max_segments = 1024;
    cfg->idle_timeout = KW_TS_SEC(600);
    cfg->udp_timeout = KW_TS_SEC(60);
    cfg->closed_timeout = KW_TS_SEC(10);
    cfg->gap_timeout = KW_TS_SEC(2);
    cfg->hash_key = kw_hkey_random(); /* tests may set a fixed one */
}

const char *flow_end_reason_name(enum flow_end_reason r)
{
    switch (r) {
    case FLOW_END_CLOSED:
        return "closed";
    case FLOW_END_TIMEOUT:
        return "timeout";
    case FLOW_END_EVICTED:
        return "evicted";
    case FLOW_END_SHUTDOWN:
        return "shutdown";
    }
    return "unknown";
}

enum kw_err flow_table_new(const struct flow_config *cfg, const struct flow_callbacks *cb,
                           struct flow_table **out)
{
    if (!cfg || !cb || !out || cfg->max_flows == 0 || cfg->ooo_window > cfg->stream_buf_max)
        return KW_E_INVAL;
    struct flow_table *t = calloc(1, sizeof(*t));
    if (!t) return KW_E_NOMEM;
    t->cfg = *cfg;
    t->cb = *cb;
    uint64_t nb = 1;
    while (nb < cfg->max_flows)
        nb <<= 1;
    t->mask = nb - 1;
    t->buckets = calloc(nb, sizeof(*t->buckets));
    t->buckets2 = calloc(nb, sizeof(*t->buckets2));
    t->pool = calloc(cfg->max_flows, sizeof(*t->pool));
    struct tcp_reasm_config rc = {
        .memcap = cfg->memcap,
        .stream_buf_max = cfg->stream_buf_max,
        .ooo_window = cfg->ooo_window,
        .ooo_max_segments = cfg->ooo_max_segments,
        .gap_timeout = cfg->gap_timeout,
    };
    enum kw_err e = KW_E_NOMEM;
    if (!t->buckets || !t->buckets2 || !t->pool ||
        (e = tcp_reasm_new(&rc, &t->cnt, &t->reasm)) != KW_E_OK) {
        free(t->buckets);
        free(t->buckets2);
        free(t->pool);
        free(t);
        return e;
    }
    /* the tunnel-blind index gets its own key: a chain in one index
     * says nothing about the other */
    t->key2 = (struct kw_hkey){cfg->hash_key.k0 ^ 0x9e3779b97f4a7c15ull, cfg->hash_key.k1};
    *out = t;
    return KW_E_OK;
}

void flow_table_destroy(struct flow_table *t)
{
    if (!t) return;
    for (uint32_t i = 0; i < t->pool_used; i++)
        for (int d = 0; d < 2; d++)
            tcp_stream_free(t->reasm, &t->pool[i].st[d]);
    tcp_reasm_destroy(t->reasm);
    free(t->buckets);
    free(t->buckets2);
    free(t->pool);
    free(t);
}

static void key_build(const struct dec_packet *p, bool vlan, struct flow_key *k);

uint64_t flow_table_bucket(const struct flow_table *t, const struct dec_packet *p)
{
    struct flow_key k;
    key_build(p, t->cfg.vlan_in_key, &k);
    return kw_siphash(&t->cfg.hash_key, &k, sizeof(k)) & t->mask;
}

uint32_t flow_table_longest_chain(const struct flow_table *t)
{
    uint32_t best = 0;
    for (uint64_t i = 0; i <= t->mask; i++) {
        uint32_t n = 0;
        for (const struct flow_node *x = t->buckets[i]; x; x = x->hnext)
            n++;
        if (n > best) best = n;
    }
    return best;
}

const struct flow_counters *flow_table_counters(const struct flow_table *t)
{
    return &t->cnt;
}

size_t flow_table_mem(uint32_t max_flows)
{
    uint64_t nb = 1;
    while (nb < max_flows)
        nb <<= 1;
    return sizeof(struct flow_table) + (size_t)max_flows * sizeof(struct flow_node) +
           2 * (size_t)nb * sizeof(struct flow_node *);
}

/* ---- keys and lookup ---- */

static int endpoint_cmp(const struct kw_addr *a, uint16_t ap, const struct kw_addr *b, uint16_t bp)
{
    int c = memcmp(a->a, b->a, 16);
    if (c) return c;
    return (int)ap - (int)bp;
}

static void key_build(const struct dec_packet *p, bool vlan, struct flow_key *k)
{
    memset(k, 0, sizeof(*k));
    bool src_lo = endpoint_cmp(&p->src, p->sport, &p->dst, p->dport) <= 0;
    memcpy(k->lo, src_lo ? p->src.a : p->dst.a, 16);
    memcpy(k->hi, src_lo ? p->dst.a : p->src.a, 16);
    k->lo_port = src_lo ? p->sport : p->dport;
    k->hi_port = src_lo ? p->dport : p->sport;
    if (vlan) {
        k->vlan[0] = p->vlan_count > 0 ? p->vlan[0] : 0;
        k->vlan[1] = p->vlan_count > 1 ? p->vlan[1] : 0;
    }
    k->tun_type = p->tunnel.type;
    k->tun_id = p->tunnel.type ? p->tunnel.id : 0;
    k->proto = p->proto;
    k->family = p->ip_version;
}

static struct flow_node **bucket_of(struct flow_table *t, const struct flow_key *k)
{
    uint64_t h = kw_siphash(&t->cfg.hash_key, k, sizeof(*k));
    return &t->buckets[h & t->mask];
}

/* The tunnel-blind index: mirrors often deliver the two directions of one
 * connection in different tunnels (an ERSPAN session or GRE key per
 * direction, a VXLAN session per port), or one tunnelled and one not.
 * The exact key keeps flows of different tunnels apart (two mirrored VPCs
 * may reuse addresses); this index lets the first packet of the missing
 * direction find its connection (see join_lookup). */
static struct flow_node **bucket2_of(struct flow_table *t, const struct flow_key *k)
{
    struct flow_key k2 = *k;
    k2.tun_id = 0;
    k2.tun_type = 0;
    uint64_t h = kw_siphash(&t->key2, &k2, sizeof(k2));
    return &t->buckets2[h & t->mask];
}

static bool same_but_tunnel(const struct flow_key *a, const struct flow_key *b)
{
    struct flow_key x = *a, y = *b;
    x.tun_id = y.tun_id = 0;
    x.tun_type = y.tun_type = 0;
    return memcmp(&x, &y, sizeof(x)) == 0;
}

static bool same_tunnel(const struct dec_tunnel *a, const struct dec_tunnel *b)
{
    return a->type == b->type && (a->type == 0 || a->id == b->id);
}

static void hash2_remove(struct flow_table *t, struct flow_node *n)
{
    struct flow_node **pp = bucket2_of(t, &n->key);
    while (*pp && *pp != n)
        pp = &(*pp)->h2next;
    if (*pp) *pp = n->h2next;
    n->h2next = NULL;
}

static int packet_dir(const struct flow *f, const struct dec_packet *p);

/* A packet whose exact key is unknown: is it the other direction of a
 * connection seen so far in another tunnel only? Joined when that flow has
 * no packet in this packet's direction yet (then it cannot be a second
 * connection with the same addresses), or was joined with this tunnel. */
static struct flow_node *join_lookup(struct flow_table *t, const struct dec_packet *p,
                                     const struct flow_key *k)
{
    for (struct flow_node *m = *bucket2_of(t, k); m; m = m->h2next) {
        if (!same_but_tunnel(&m->key, k)) continue;
        if (m->joined) {
            if (same_tunnel(&m->tun2, &p->tunnel)) return m;
            continue;
        }
        if (same_tunnel(&m->f.tunnel, &p->tunnel) || m->f.pkts[packet_dir(&m->f, p)]) continue;
        m->joined = true;
        m->tun2 = p->tunnel;
        t->cnt.flows_tunnel_joined++;
        return m;
    }
    return NULL;
}

static void hash_remove(struct flow_table *t, struct flow_node *n)
{
    struct flow_node **pp = bucket_of(t, &n->key);
    while (*pp && *pp != n)
        pp = &(*pp)->hnext;
    if (*pp) *pp = n->hnext;
    n->hnext = NULL;
}

/* ---- LRU and hole lists ---- */

static void lru_unlink(struct flow_table *t, struct flow_node *n)
{
    struct lru_list *l = &t->lru[n->lru];
    if (n->lru_prev)
        n->lru_prev->lru_next = n->lru_next;
    else
        l->head = n->lru_next;
    if (n->lru_next)
        n->lru_next->lru_prev = n->lru_prev;
    else
        l->tail = n->lru_prev;
    n->lru_prev = n->lru_next = NULL;
}

static void lru_append(struct flow_table *t, struct flow_node *n, uint8_t which)
{
    struct lru_list *l = &t->lru[which];
    n->lru = which;
    n->lru_prev = l->tail;
    n->lru_next = NULL;
    if (l->tail)
        l->tail->lru_next = n;
    else
        l->head = n;
    l->tail = n;
}

static void hole_list_update(struct flow_table *t, struct flow_node *n)
{
    bool want = tcp_stream_has_hole(&n->st[0]) || tcp_stream_has_hole(&n->st[1]);
    if (want == n->in_hole_list) return;
    if (want) {
        n->hole_prev = NULL;
        n->hole_next = t->holes;
        if (t->holes) t->holes->hole_prev = n;
        t->holes = n;
    } else {
        if (n->hole_prev)
            n->hole_prev->hole_next = n->hole_next;
        else
            t->holes = n->hole_next;
        if (n->hole_next) n->hole_next->hole_prev = n->hole_prev;
        n->hole_prev = n->hole_next = NULL;
    }
    n->in_hole_list = want;
}

/* ---- sinks from reassembly to the consumer ---- */

static size_t sink_data(void *ctx, const uint8_t *p, size_t len, kw_ts ts)
{
    struct flow_sink_ctx *c = ctx;
    if (!c->t->cb.on_data) return len;
    return c->t->cb.on_data(c->t->cb.user, &c->n->f, c->dir, p, len, ts);
}

static void sink_gap(void *ctx, uint64_t len, kw_ts ts)
{
    struct flow_sink_ctx *c = ctx;
    c->n->f.gaps[c->dir]++;
    c->n->f.gap_bytes[c->dir] += len;
    if (c->t->cb.on_gap) c->t->cb.on_gap(c->t->cb.user, &c->n->f, c->dir, len, ts);
}

#define SINK(name, table, node, d)                                                                 \
    struct flow_sink_ctx name##_ctx = {(table), (node), (d)};                                      \
    struct tcp_sink name = {&name##_ctx, sink_data, sink_gap}

/* ---- flow life ---- */

static void flow_end(struct flow_table *t, struct flow_node *n, enum flow_end_reason why, kw_ts ts)
{
    if (n->f.proto == FLOW_PROTO_TCP) {
        for (int d = 0; d < 2; d++) {
            SINK(k, t, n, d);
            tcp_stream_flush(t->reasm, &n->st[d], &k, ts);
        }
    }
    if (t->cb.on_flow_end) t->cb.on_flow_end(t->cb.user, &n->f, why, ts);
    for (int d = 0; d < 2; d++)
        tcp_stream_free(t->reasm, &n->st[d]);
    hash_remove(t, n);
    hash2_remove(t, n);
    lru_unlink(t, n);
    hole_list_update(t, n); /* the streams hold nothing now */
    t->cnt.flows_active--;
    if (why == FLOW_END_CLOSED)
        t->cnt.flows_closed++;
    else if (why == FLOW_END_TIMEOUT)
        t->cnt.flows_timed_out++;
    else if (why == FLOW_END_EVICTED)
        t->cnt.flows_evicted++;
    n->hnext = t->free_list;
    t->free_list = n;
}

/* The oldest flow of the three lists (by last packet time). */
static struct flow_node *oldest_flow(struct flow_table *t)
{
    struct flow_node *best = NULL;
    for (int i = 0; i < LRU_N; i++) {
        struct flow_node *h = t->lru[i].head;
        if (h && (!best || h->lru_ts < best->lru_ts)) best = h;
    }
    return best;
}

static bool port_server_like(uint16_t p)
{
    static const uint16_t well_known[] = {1080, 3000, 3128, 5000, 8000, 8008, 8080,
                                          8081, 8443, 8888, 9000, 9090, 9200, 9443};
    if (p < 1024) return true;
    for (size_t i = 0; i < sizeof(well_known) / sizeof(well_known[0]); i++)
        if (p == well_known[i]) return true;
    return false;
}

/* Roles: the handshake says who the client is; otherwise the server-like
 * port (below 1024 or a well-known service port) is the server; when both
 * or neither look like one, the first packet's destination is the server. */
static bool src_is_client(const struct dec_packet *p, bool *guessed)
{
    *guessed = false;
    if (p->proto == FLOW_PROTO_TCP && (p->tcp_flags & DEC_TH_SYN))
        return !(p->tcp_flags & DEC_TH_ACK);
    bool s = port_server_like(p->sport), d = port_server_like(p->dport);
    if (p->proto == FLOW_PROTO_TCP || s != d) *guessed = true;
    if (s != d) return d;
    return true;
}

static struct flow_node *flow_create(struct flow_table *t, const struct dec_packet *p,
                                     const struct flow_key *k, struct flow_node **bucket)
{
    if (!t->free_list && t->pool_used < t->cfg.max_flows) {
        t->pool[t->pool_used].hnext = NULL;
        t->free_list = &t->pool[t->pool_used++];
    }
    if (!t->free_list) {
        t->cnt.flow_limit_hits++;
        struct flow_node *old = oldest_flow(t);
        flow_end(t, old, FLOW_END_EVICTED, p->ts);
    }
    struct flow_node *n = t->free_list;
    t->free_list = n->hnext;
    memset(n, 0, sizeof(*n));
    n->key = *k;
    n->hnext = *bucket;
    *bucket = n;
    struct flow_node **b2 = bucket2_of(t, k);
    n->h2next = *b2;
    *b2 = n;

    struct flow *f = &n->f;
    bool guessed;
    bool cli = src_is_client(p, &guessed);
    f->id = ++t->next_id;
    f->cli = cli ? p->src : p->dst;
    f->srv = cli ? p->dst : p->src;
    f->cli_port = cli ? p->sport : p->dport;
    f->srv_port = cli ? p->dport : p->sport;
    f->proto = p->proto;
    f->ip_version = p->ip_version;
    f->tunnel = p->tunnel;
    f->vlan = p->vlan_count ? p->vlan[0] : 0;
    f->first_ts = f->last_ts = p->ts;
    f->roles_guessed = guessed;
    if (p->proto == FLOW_PROTO_TCP) {
        tcp_stream_init(&n->st[0]);
        tcp_stream_init(&n->st[1]);
        f->midstream = !(p->tcp_flags & DEC_TH_SYN);
        if (f->midstream) {
            t->cnt.flows_midstream++;
            f->tcp_state = FLOW_TCP_ESTABLISHED;
        }
    }
    n->lru_ts = t->now;
    lru_append(t, n, p->proto == FLOW_PROTO_TCP ? LRU_TCP : LRU_UDP);
    t->cnt.flows_created++;
    t->cnt.flows_active++;
    if (t->cb.on_flow_start) t->cb.on_flow_start(t->cb.user, f, p->ts);
    return n;
}

static int packet_dir(const struct flow *f, const struct dec_packet *p)
{
    if (p->sport == f->cli_port && memcmp(p->src.a, f->cli.a, 16) == 0) return FLOW_DIR_TO_SERVER;
    return FLOW_DIR_TO_CLIENT;
}

/* TCP state (RFC 9293 §3.3.2, as seen from the middle) and reassembly. */
static void tcp_packet(struct flow_table *t, struct flow_node *n, int dir,
                       const struct dec_packet *p)
{
    struct flow *f = &n->f;
    struct tcp_stream *s = &n->st[dir];
    uint8_t fl = p->tcp_flags;
    uint32_t data_seq = p->seq;
    if (fl & DEC_TH_SYN) {
        /* The SYN takes one sequence number; TFO data follows it. */
        tcp_stream_set_base(s, p->seq + 1);
        data_seq = p->seq + 1;
        if ((fl & DEC_TH_ACK) && f->tcp_state < FLOW_TCP_SYN_RECV)
            f->tcp_state = FLOW_TCP_SYN_RECV;
        else if (!(fl & DEC_TH_ACK) && f->tcp_state == FLOW_TCP_NONE)
            f->tcp_state = FLOW_TCP_SYN_SENT;
    } else if (f->tcp_state == FLOW_TCP_SYN_RECV && (fl & DEC_TH_ACK)) {
        f->tcp_state = FLOW_TCP_ESTABLISHED;
    }
    /* What this packet acknowledges was sent before it: a hole of the other
     * direction that the ACK covers becomes a gap, and the bytes held after
     * it are delivered, before this packet's own payload (a server's answer
     * after a lost request segment must not reach the parser before the
     * rest of the request). */
    SINK(o, t, n, !dir);
    if ((fl & DEC_TH_ACK) && !(fl & DEC_TH_RST))
        tcp_stream_acked(t->reasm, &n->st[!dir], &o, p->ack, p->ts);
    if (p->payload_len) {
        if (f->tcp_state < FLOW_TCP_ESTABLISHED) f->tcp_state = FLOW_TCP_ESTABLISHED;
        SINK(k, t, n, dir);
        tcp_stream_segment(t->reasm, s, &k, data_seq, p->payload, p->payload_len, p->ts);
    }
    if (fl & DEC_TH_RST) {
        /* RST ends the connection both ways: what is held is delivered,
         * the holes become gaps. Unconsumed bytes stay with the stream
         * until the flow ends (a spoofed RST may be followed by data). */
        f->tcp_state = FLOW_TCP_CLOSED;
        for (int d = 0; d < 2; d++) {
            SINK(k, t, n, d);
            tcp_stream_close_holes(t->reasm, &n->st[d], &k, p->ts);
        }
    } else if (fl & DEC_TH_FIN) {
        n->fin[dir] = true;
        f->tcp_state = n->fin[!dir] ? FLOW_TCP_CLOSED : FLOW_TCP_FIN_WAIT;
    }
    tcp_stream_check_timeout(t->reasm, &n->st[!dir], &o, p->ts);
    hole_list_update(t, n);
}

void flow_table_packet(struct flow_table *t, const struct dec_packet *p)
{
    if ((p->proto != FLOW_PROTO_TCP && p->proto != FLOW_PROTO_UDP) || p->ip_fragment) {
        t->cnt.packets_ignored++;
        return;
    }
    if (!t->have_time || p->ts > t->now) {
        if (!t->have_time) t->last_advance = p->ts;
        t->have_time = true;
        t->now = p->ts;
        if (t->now - t->last_advance >= KW_TS_SEC(1)) flow_table_advance(t, t->now);
    }
    struct flow_key k;
    key_build(p, t->cfg.vlan_in_key, &k);
    struct flow_node **b = bucket_of(t, &k);
    struct flow_node *n = *b;
    while (n && memcmp(&n->key, &k, sizeof(k)) != 0)
        n = n->hnext;
    if (n && p->proto == FLOW_PROTO_TCP &&
        (p->tcp_flags & (DEC_TH_SYN | DEC_TH_ACK)) == DEC_TH_SYN &&
        n->f.tcp_state == FLOW_TCP_CLOSED) {
        /* A new connection on a closed one's 4-tuple (port reuse). */
        t->cnt.flows_reused++;
        flow_end(t, n, FLOW_END_CLOSED, p->ts);
        n = NULL;
    }
    if (!n) n = join_lookup(t, p, &k);
    if (!n) n = flow_create(t, p, &k, b);
    struct flow *f = &n->f;
    int dir = packet_dir(f, p);
    f->pkts[dir]++;
    f->bytes[dir] += p->l3_len;
    if (p->ts > f->last_ts) f->last_ts = p->ts;
    lru_unlink(t, n);
    n->lru_ts = t->now;
    if (t->cb.on_packet) t->cb.on_packet(t->cb.user, f, dir, p);
    if (p->proto == FLOW_PROTO_TCP) tcp_packet(t, n, dir, p);
    lru_append(t, n,
               p->proto == FLOW_PROTO_UDP        ? LRU_UDP
               : f->tcp_state == FLOW_TCP_CLOSED ? LRU_CLOSED
                                                 : LRU_TCP);
}

void flow_table_advance(struct flow_table *t, kw_ts now)
{
    if (now > t->now) t->now = now;
    t->last_advance = t->now;
    const kw_ts tmo[LRU_N] = {t->cfg.idle_timeout, t->cfg.udp_timeout, t->cfg.closed_timeout};
    for (int i = 0; i < LRU_N; i++) {
        struct flow_node *n;
        while ((n = t->lru[i].head) && n->lru_ts + tmo[i] <= t->now)
            flow_end(t, n, i == LRU_CLOSED ? FLOW_END_CLOSED : FLOW_END_TIMEOUT, t->now);
    }
    struct flow_node *n = t->holes;
    while (n) {
        struct flow_node *next = n->hole_next;
        for (int d = 0; d < 2; d++) {
            SINK(k, t, n, d);
            tcp_stream_check_timeout(t->reasm, &n->st[d], &k, t->now);
        }
        hole_list_update(t, n);
        n = next;
    }
}

void flow_table_flush(struct flow_table *t, kw_ts now)
{
    if (now > t->now) t->now = now;
    struct flow_node *n;
    while ((n = oldest_flow(t)))
        flow_end(t, n, FLOW_END_SHUTDOWN, t->now);
}
