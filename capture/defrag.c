/* defrag: IP fragment reassembly (see defrag.h for the contract).
 *
 * Each datagram in reassembly is a slot from a pool allocated at init. Its
 * bytes sit at their datagram offset in chunks of DEFRAG_CHUNK bytes from
 * a shared chunk pool (the memcap), so fragments in any order cost one copy
 * in and one copy out, and the held ranges are a short sorted list of
 * disjoint pieces. The one thing to know: a dropped datagram stays as a
 * tombstone (no chunks) until its timeout, so the fragments still on their
 * way are dropped too instead of starting a new, never-complete datagram
 * (RFC 5722 §4: "including those not yet received").
 *
 * Overlap policy. IPv6: any overlap drops the whole datagram (RFC 5722,
 * RFC 8200 §4.5), except an exact duplicate (every byte already held, the
 * same), which RFC 8200 §4.5 allows to drop alone since networks duplicate
 * packets. IPv4: first wins, counted, with the bytes compared. That is the
 * TCP reassembler's policy (tcp_reasm.c) for the same reason: a passive
 * monitor cannot know which copy the host kept (Linux drops the datagram,
 * Windows keeps the first, RFC 791 the last), so it keeps one consistent
 * answer, the bytes it saw first, and makes the ambiguity a counter
 * (overlap_diff) instead of guessing. */
#include "defrag.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define DF_NONE UINT32_MAX
#define DF_MAX_DATAGRAM 65535u /* IPv4 total length, IPv6 payload length */
#define DF_CHUNKS ((DF_MAX_DATAGRAM + DEFRAG_CHUNK - 1) / DEFRAG_CHUNK)
#define DF_TCP 6
#define DF_TCP_MIN_HDR 20 /* RFC 9293 §3.1: data offset >= 5 words */

struct df_key {
    uint8_t src[16], dst[16];
    uint32_t id;
    uint32_t tunnel_id;
    uint16_t vlan;
    uint8_t ver;
    uint8_t proto; /* IPv4 only: RFC 8200 keys IPv6 on addresses and id */
    uint8_t tunnel_type;
    uint8_t pad[3];
};
_Static_assert(sizeof(struct df_key) % 8 == 0, "df_key is hashed in 8-byte words");

struct df_piece {
    uint32_t start, end; /* payload bytes [start, end) are held */
};

struct df_dgram {
    struct df_key key;
    kw_ts first_ts;
    uint32_t hnext;      /* hash chain */
    uint32_t prev, next; /* age list, oldest first; next = free list link */
    uint32_t total;      /* payload length, known once the last fragment came */
    uint32_t n_frags;
    uint32_t chunk[DF_CHUNKS];
    struct df_piece piece[DEFRAG_MAX_PIECES];
    uint8_t n_pieces;
    bool dead, have_first, have_last;
    uint8_t nh;      /* IPv6: Next Header of the offset-0 fragment header */
    uint16_t nh_off; /* IPv6: where that byte goes in hdr */
    uint16_t hdr_len;
    uint8_t hdr[DEFRAG_MAX_HDR];
};

struct defrag {
    struct defrag_config cfg;
    struct defrag_counters cnt;
    struct df_dgram *dg;
    uint32_t n_touched; /* slots handed out at least once (lazy pool) */
    uint32_t free_dg;
    uint32_t *bucket;
    uint32_t mask;
    uint32_t oldest, newest;
    uint8_t *pool;
    uint32_t n_chunks, chunks_touched, n_free_chunks;
    uint32_t *free_chunks;
    uint8_t *out; /* the rebuilt datagram */
    kw_ts now;
    struct kw_hkey key;
};

void defrag_config_default(struct defrag_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_datagrams = 4096;
    cfg->memcap = 16u << 20;
    cfg->max_fragments = 256;
    /* RFC 791 suggests a 15 s initial timer, RFC 8200 §4.5 at most 60 s;
     * 30 s is Linux's ipfrag_time. */
    cfg->timeout = KW_TS_SEC(30);
    cfg->hash_key = kw_hkey_random();
}

enum kw_err defrag_new(const struct defrag_config *cfg, struct defrag **out)
{
    *out = NULL;
    if (!cfg->max_datagrams || cfg->max_datagrams > (1u << 24) || !cfg->max_fragments ||
        cfg->timeout <= 0 || cfg->memcap < (uint64_t)DF_CHUNKS * DEFRAG_CHUNK ||
        cfg->memcap / DEFRAG_CHUNK >= DF_NONE)
        return KW_E_CONFIG;
    struct defrag *d = calloc(1, sizeof(*d));
    if (!d) return KW_E_NOMEM;
    d->cfg = *cfg;
    d->n_chunks = (uint32_t)(cfg->memcap / DEFRAG_CHUNK);
    uint32_t nb = 1;
    while (nb < cfg->max_datagrams)
        nb <<= 1;
    d->mask = nb - 1;
    /* calloc: untouched slots and chunks cost no resident memory. */
    d->dg = calloc(cfg->max_datagrams, sizeof(*d->dg));
    d->bucket = malloc(nb * sizeof(*d->bucket));
    d->pool = calloc(d->n_chunks, DEFRAG_CHUNK);
    d->free_chunks = malloc(d->n_chunks * sizeof(*d->free_chunks));
    d->out = malloc(DEFRAG_MAX_HDR + DF_MAX_DATAGRAM);
    if (!d->dg || !d->bucket || !d->pool || !d->free_chunks || !d->out) {
        defrag_destroy(d);
        return KW_E_NOMEM;
    }
    memset(d->bucket, 0xff, nb * sizeof(*d->bucket));
    d->free_dg = d->oldest = d->newest = DF_NONE;
    d->key = cfg->hash_key;
    *out = d;
    return KW_E_OK;
}

void defrag_destroy(struct defrag *d)
{
    if (!d) return;
    free(d->dg);
    free(d->bucket);
    free(d->pool);
    free(d->free_chunks);
    free(d->out);
    free(d);
}

const struct defrag_counters *defrag_counters(const struct defrag *d)
{
    return &d->cnt;
}

/* ---- table ------------------------------------------------------------- */

/* SipHash under a random key (kw_hash.h): fragments carry addresses and
 * ids an attacker chooses freely, so an unkeyed hash would let them stack
 * every datagram in one bucket. */
static uint32_t df_hash(const struct defrag *d, const struct df_key *k)
{
    return (uint32_t)kw_siphash(&d->key, k, sizeof(*k)) & d->mask;
}

static void df_key_of(const struct dec_packet *f, struct df_key *k)
{
    memset(k, 0, sizeof(*k));
    memcpy(k->src, f->src.a, 16);
    memcpy(k->dst, f->dst.a, 16);
    k->id = f->frag_id;
    k->ver = f->ip_version;
    k->proto = f->ip_version == 4 ? f->proto : 0;
    k->tunnel_type = f->tunnel.type;
    k->tunnel_id = f->tunnel.id;
    k->vlan = f->vlan[0];
}

static uint32_t df_lookup(const struct defrag *d, const struct df_key *k, uint32_t h)
{
    for (uint32_t i = d->bucket[h]; i != DF_NONE; i = d->dg[i].hnext)
        if (!memcmp(&d->dg[i].key, k, sizeof(*k))) return i;
    return DF_NONE;
}

static void df_free_chunks(struct defrag *d, struct df_dgram *g)
{
    for (uint32_t c = 0; c < DF_CHUNKS; c++)
        if (g->chunk[c] != DF_NONE) {
            d->free_chunks[d->n_free_chunks++] = g->chunk[c];
            g->chunk[c] = DF_NONE;
            d->cnt.bytes_held -= DEFRAG_CHUNK;
        }
    g->n_pieces = 0;
}

/* Drops the datagram but keeps its key until the timeout (tombstone). */
static void df_kill(struct defrag *d, uint32_t i)
{
    df_free_chunks(d, &d->dg[i]);
    d->dg[i].dead = true;
}

static void df_release(struct defrag *d, uint32_t i)
{
    struct df_dgram *g = &d->dg[i];
    df_free_chunks(d, g);
    uint32_t *pp = &d->bucket[df_hash(d, &g->key)];
    while (*pp != i)
        pp = &d->dg[*pp].hnext;
    *pp = g->hnext;
    if (g->prev != DF_NONE)
        d->dg[g->prev].next = g->next;
    else
        d->oldest = g->next;
    if (g->next != DF_NONE)
        d->dg[g->next].prev = g->prev;
    else
        d->newest = g->prev;
    g->next = d->free_dg;
    d->free_dg = i;
    d->cnt.active--;
}

/* Pushes the oldest datagram other than `keep` out; false if none. */
static bool df_evict_oldest(struct defrag *d, uint32_t keep)
{
    uint32_t i = d->oldest;
    if (i == keep && i != DF_NONE) i = d->dg[i].next;
    if (i == DF_NONE) return false;
    if (!d->dg[i].dead) d->cnt.evicted++;
    df_release(d, i);
    return true;
}

void defrag_advance(struct defrag *d, kw_ts now)
{
    if (now > d->now) d->now = now;
    while (d->oldest != DF_NONE && d->now - d->dg[d->oldest].first_ts >= d->cfg.timeout) {
        if (!d->dg[d->oldest].dead) d->cnt.timeouts++;
        df_release(d, d->oldest);
    }
}

static uint32_t df_alloc(struct defrag *d, const struct df_key *k, uint32_t h, kw_ts ts)
{
    if (d->free_dg == DF_NONE && d->n_touched == d->cfg.max_datagrams) {
        d->cnt.limit_datagrams++;
        df_evict_oldest(d, DF_NONE);
    }
    uint32_t i;
    if (d->free_dg != DF_NONE) {
        i = d->free_dg;
        d->free_dg = d->dg[i].next;
    } else {
        i = d->n_touched++;
    }
    struct df_dgram *g = &d->dg[i];
    memset(g, 0, offsetof(struct df_dgram, hdr));
    g->key = *k;
    g->first_ts = ts;
    memset(g->chunk, 0xff, sizeof(g->chunk));
    g->hnext = d->bucket[h];
    d->bucket[h] = i;
    g->next = DF_NONE;
    g->prev = d->newest;
    if (d->newest != DF_NONE)
        d->dg[d->newest].next = i;
    else
        d->oldest = i;
    d->newest = i;
    d->cnt.active++;
    return i;
}

/* ---- bytes ------------------------------------------------------------- */

static uint8_t *df_at(struct defrag *d, const struct df_dgram *g, uint32_t off)
{
    return d->pool + (size_t)g->chunk[off / DEFRAG_CHUNK] * DEFRAG_CHUNK + off % DEFRAG_CHUNK;
}

/* Copies in (cmp false) or compares (cmp true: returns false on a
 * difference) [off, off+len) of the datagram; the chunks exist. */
static bool df_bytes(struct defrag *d, const struct df_dgram *g, uint32_t off, const uint8_t *src,
                     uint32_t len, bool cmp)
{
    while (len) {
        uint32_t n = DEFRAG_CHUNK - off % DEFRAG_CHUNK;
        if (n > len) n = len;
        uint8_t *p = df_at(d, g, off);
        if (!cmp)
            memcpy(p, src, n);
        else if (memcmp(p, src, n))
            return false;
        off += n;
        src += n;
        len -= n;
    }
    return true;
}

/* Makes sure every chunk under [s, e) exists, evicting the oldest other
 * datagrams while the memcap is reached. */
static void df_chunks(struct defrag *d, uint32_t i, uint32_t s, uint32_t e)
{
    struct df_dgram *g = &d->dg[i];
    uint32_t need = 0;
    for (uint32_t c = s / DEFRAG_CHUNK; c <= (e - 1) / DEFRAG_CHUNK; c++)
        need += g->chunk[c] == DF_NONE;
    if (need > d->n_free_chunks + (d->n_chunks - d->chunks_touched)) d->cnt.memcap++;
    /* Terminates: with only `i` left, all chunks not its own are free,
     * and the memcap is at least one maximal datagram. */
    while (need > d->n_free_chunks + (d->n_chunks - d->chunks_touched))
        if (!df_evict_oldest(d, i)) break;
    for (uint32_t c = s / DEFRAG_CHUNK; c <= (e - 1) / DEFRAG_CHUNK; c++) {
        if (g->chunk[c] != DF_NONE) continue;
        g->chunk[c] = d->n_free_chunks ? d->free_chunks[--d->n_free_chunks] : d->chunks_touched++;
        d->cnt.bytes_held += DEFRAG_CHUNK;
    }
}

/* Adds [s, e) to the sorted disjoint pieces, merging neighbours; false
 * when that would need more than DEFRAG_MAX_PIECES. */
static bool df_merge(struct df_dgram *g, uint32_t s, uint32_t e)
{
    struct df_piece all[DEFRAG_MAX_PIECES + 1];
    unsigned n = 0, k = 0, m = 0;
    while (k < g->n_pieces && g->piece[k].start <= s)
        all[n++] = g->piece[k++];
    all[n++] = (struct df_piece){s, e};
    while (k < g->n_pieces)
        all[n++] = g->piece[k++];
    for (unsigned j = 0; j < n; j++) {
        if (m && all[j].start <= all[m - 1].end) {
            if (all[j].end > all[m - 1].end) all[m - 1].end = all[j].end;
        } else {
            all[m++] = all[j];
        }
    }
    if (m > DEFRAG_MAX_PIECES) return false;
    memcpy(g->piece, all, m * sizeof(all[0]));
    g->n_pieces = (uint8_t)m;
    return true;
}

/* ---- fragments --------------------------------------------------------- */

enum df_verdict { DF_KEEP, DF_DROP, DF_KILL };

/* Header bytes before the fragment's data: the IPv4 header with options;
 * the IPv6 unfragmentable part, without the fragment header. */
static uint32_t df_hdr_len(const struct dec_packet *f)
{
    uint32_t h = (uint32_t)(f->payload - f->l3);
    return f->ip_version == 6 ? h - 8 : h;
}

/* What the datagram's length field will count besides the payload. */
static uint32_t df_len_base(uint8_t ver, uint32_t hdr_len)
{
    return ver == 4 ? hdr_len : hdr_len - 40; /* IPv6 Payload Length excludes the fixed header */
}

/* The checks that can drop a datagram before its bytes are looked at. */
static enum df_verdict df_check(struct defrag *d, struct df_dgram *g, const struct dec_packet *f)
{
    uint32_t s = f->frag_off, e = s + f->payload_len, hl = df_hdr_len(f);
    if (f->truncated) { /* the snaplen cut it: the datagram cannot complete */
        d->cnt.truncated++;
        return DF_KILL;
    }
    if (df_len_base(f->ip_version, hl) + e > DF_MAX_DATAGRAM) { /* RFC 8200 §4.5 */
        d->cnt.too_big++;
        return DF_KILL;
    }
    /* RFC 1858 §3.1: a first fragment too short for the TCP header hides
     * the flags from a filter; §3.2: offset 8 (FO=1) rewrites them. IPv6
     * names the protocol only in the first fragment (RFC 8200 §4.5). */
    if (f->proto == DF_TCP &&
        ((s == 0 && f->payload_len < DF_TCP_MIN_HDR) || (s == 8 && f->ip_version == 4))) {
        d->cnt.tiny++;
        return DF_KILL;
    }
    if (++g->n_frags > d->cfg.max_fragments) {
        d->cnt.limit_fragments++;
        return DF_KILL;
    }
    bool bad_end = f->frag_more ? g->have_last && e > g->total
                                : (g->have_last && g->total != e) ||
                                      (g->n_pieces && g->piece[g->n_pieces - 1].end > e);
    if (bad_end || (s == 0 && f->ip_version == 6 && f->frag_nh_off >= hl)) {
        d->cnt.inconsistent++;
        return DF_KILL;
    }
    if (s == 0 && !g->have_first && hl > DEFRAG_MAX_HDR) {
        d->cnt.header_too_long++;
        return DF_KILL;
    }
    return DF_KEEP;
}

/* Writes the bytes of [s, e) that no earlier fragment brought (first
 * wins); the pieces are sorted. */
static void df_write_new(struct defrag *d, const struct df_dgram *g, uint32_t s, uint32_t e,
                         const uint8_t *data)
{
    uint32_t cur = s;
    for (unsigned k = 0; k < g->n_pieces && cur < e; k++) {
        const struct df_piece *p = &g->piece[k];
        if (p->end <= cur) continue;
        if (p->start >= e) break;
        if (p->start > cur) df_bytes(d, g, cur, data + (cur - s), p->start - cur, false);
        cur = p->end;
    }
    if (cur < e) df_bytes(d, g, cur, data + (cur - s), e - cur, false);
}

static enum df_verdict df_add(struct defrag *d, uint32_t i, const struct dec_packet *f)
{
    struct df_dgram *g = &d->dg[i];
    uint32_t s = f->frag_off, e = s + f->payload_len, covered = 0;
    bool same = true;
    for (unsigned k = 0; k < g->n_pieces; k++) {
        uint32_t os = s > g->piece[k].start ? s : g->piece[k].start;
        uint32_t oe = e < g->piece[k].end ? e : g->piece[k].end;
        if (os >= oe) continue;
        covered += oe - os;
        if (!df_bytes(d, g, os, f->payload + (os - s), oe - os, true)) same = false;
    }
    if (covered && covered == e - s && same) { /* RFC 8200 §4.5: exact duplicate */
        d->cnt.duplicates++;
        return DF_DROP;
    }
    if (covered) {
        d->cnt.overlaps++;
        if (!same) d->cnt.overlap_diff++;
        if (f->ip_version == 6) { /* RFC 5722 §4 */
            d->cnt.v6_overlaps++;
            return DF_KILL;
        }
    }
    if (s < e) {
        df_chunks(d, i, s, e);
        df_write_new(d, g, s, e, f->payload);
        if (!df_merge(g, s, e)) {
            d->cnt.limit_pieces++;
            return DF_KILL;
        }
    }
    if (s == 0 && !g->have_first) { /* RFC 791 §3.2 / RFC 8200 §4.5: its header is the one kept */
        g->have_first = true;
        g->hdr_len = (uint16_t)df_hdr_len(f);
        memcpy(g->hdr, f->l3, g->hdr_len);
        g->nh = f->proto;
        g->nh_off = f->frag_nh_off;
    }
    if (!f->frag_more) {
        g->have_last = true;
        g->total = e;
    }
    return DF_KEEP;
}

static bool df_complete(const struct df_dgram *g)
{
    if (!g->have_first || !g->have_last) return false;
    if (g->total == 0) return g->n_pieces == 0;
    return g->n_pieces == 1 && g->piece[0].start == 0 && g->piece[0].end == g->total;
}

/* RFC 1071 Internet checksum of the IPv4 header. */
static uint16_t df_ip_csum(const uint8_t *p, uint32_t len)
{
    uint32_t sum = 0;
    for (uint32_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* The datagram with a rebuilt header into d->out; returns its length. */
static uint32_t df_build(struct defrag *d, const struct df_dgram *g)
{
    uint8_t *o = d->out;
    memcpy(o, g->hdr, g->hdr_len);
    for (uint32_t off = 0; off < g->total; off += DEFRAG_CHUNK) {
        uint32_t n = g->total - off < DEFRAG_CHUNK ? g->total - off : DEFRAG_CHUNK;
        memcpy(o + g->hdr_len + off, df_at(d, g, off), n);
    }
    uint32_t len = g->hdr_len + g->total;
    if (g->key.ver == 4) {
        o[2] = (uint8_t)(len >> 8);
        o[3] = (uint8_t)len;
        o[6] &= 0xc0; /* keep reserved and DF; MF and the offset are 0 */
        o[7] = 0;
        o[10] = o[11] = 0;
        uint16_t c = df_ip_csum(o, g->hdr_len);
        o[10] = (uint8_t)(c >> 8);
        o[11] = (uint8_t)c;
    } else {
        uint32_t pl = len - 40;
        o[4] = (uint8_t)(pl >> 8);
        o[5] = (uint8_t)pl;
        o[g->nh_off] = g->nh; /* the fragment header is gone from the chain */
    }
    return len;
}

enum defrag_result defrag_packet(struct defrag *d, const struct dec_packet *f, const uint8_t **l3,
                                 uint32_t *len)
{
    d->cnt.fragments++;
    defrag_advance(d, f->ts);
    if (f->frag_more && f->payload_len % 8 && !f->truncated) {
        /* RFC 8200 §4.5 (and RFC 791's 8-byte units): only the last
         * fragment may end off the 8-byte grid. The fragment alone goes. */
        d->cnt.bad_length++;
        return DEFRAG_DROPPED;
    }
    struct df_key k;
    df_key_of(f, &k);
    uint32_t h = df_hash(d, &k);
    uint32_t i = df_lookup(d, &k, h);
    if (i == DF_NONE) i = df_alloc(d, &k, h, d->now);
    struct df_dgram *g = &d->dg[i];
    if (g->dead) {
        d->cnt.dropped_fragments++;
        return DEFRAG_DROPPED;
    }
    enum df_verdict v = df_check(d, g, f);
    if (v == DF_KEEP) v = df_add(d, i, f);
    if (v == DF_KEEP && df_complete(g) &&
        df_len_base(g->key.ver, g->hdr_len) + g->total > DF_MAX_DATAGRAM) {
        d->cnt.too_big++; /* the first fragment's header made it too long */
        v = DF_KILL;
    }
    if (v == DF_KILL) df_kill(d, i);
    if (v != DF_KEEP) return DEFRAG_DROPPED;
    if (!df_complete(g)) return DEFRAG_HELD;
    *len = df_build(d, g);
    *l3 = d->out;
    df_release(d, i);
    d->cnt.datagrams_reassembled++;
    return DEFRAG_DONE;
}

enum dec_result defrag_decode(struct defrag *d, struct dec_ctx *dec, struct dec_packet *pkt)
{
    for (int depth = 0; depth < 2; depth++) {
        const uint8_t *l3;
        uint32_t len;
        if (defrag_packet(d, pkt, &l3, &len) != DEFRAG_DONE) return DEC_SKIP;
        struct dec_packet frag = *pkt;
        enum dec_result r = dec_reassembled(dec, &frag, l3, len, pkt);
        if (r != DEC_SKIP || !pkt->ip_fragment) return r;
    }
    return DEC_SKIP;
}
