/* test_defrag: IP fragment reassembly, fragments in every awkward order.
 *
 * Each case builds one original datagram (IPv4, IPv6, or IPv6 with a
 * hop-by-hop header before the fragment header) carrying TCP, cuts it into
 * the fragments its table row lists, and feeds them through the real
 * decoder (raw IP link type) and defrag_decode() in the row's order. The
 * expected result comes from an independent first-wins model of the bytes,
 * so a row states only what must complete and which counters move; a
 * completed datagram must equal the model byte for byte, header included
 * (length, flags, checksum, IPv6 next header).
 *
 * Then the limits, the timeout (memory released), and the corpus captures
 * that carry fragments, checked against tshark's numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <pcap/pcap.h>

#include "dec.h"
#include "defrag.h"
#include "kw_exact.h"
#include "streams_dump.h"

#define LT_RAW 101
#define MAXD 70000

enum fam { V4 = 4, V6 = 6, V6X = 66 /* IPv6 + hop-by-hop before the fragment header */ };

struct frag_spec {
    uint16_t off, len;
    int8_t mf;      /* -1: set unless the fragment ends the datagram */
    uint8_t poison; /* the first `poison` data bytes are flipped */
};

/* ---- building packets -------------------------------------------------- */

static uint16_t csum(const uint8_t *p, size_t len)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        s += (uint32_t)p[i] << 8 | p[i + 1];
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Header bytes before the fragmentable part. */
static size_t hdr_len(enum fam f)
{
    return f == V4 ? 20 : f == V6 ? 40 : 48;
}

/* The original datagram: IP header(s), TCP header, `plen` pattern bytes. */
static size_t build_orig(enum fam f, size_t plen, uint8_t *o)
{
    size_t hl = hdr_len(f), len = hl + 20 + plen;
    memset(o, 0, len);
    if (f == V4) {
        o[0] = 0x45;
        put16(o + 2, (uint32_t)len);
        put16(o + 4, 0x1234);
        o[8] = 64;
        o[9] = 6;
        memcpy(o + 12, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
        put16(o + 10, csum(o, 20));
    } else {
        o[0] = 0x60;
        put16(o + 4, (uint32_t)(len - 40));
        o[6] = f == V6 ? 6 : 0;
        o[7] = 64;
        o[8] = 0x20, o[9] = 0x01, o[23] = 1;
        o[24] = 0x20, o[25] = 0x01, o[39] = 2;
        if (f == V6X) o[40] = 6; /* hop-by-hop: next TCP, length 0 (8 bytes), PadN */
        if (f == V6X) o[42] = 1, o[43] = 4;
    }
    uint8_t *t = o + hl;
    put16(t, 40000);
    put16(t + 2, 80);
    t[12] = 0x50;
    t[13] = 0x18; /* PSH ACK */
    for (size_t i = 0; i < plen; i++)
        t[20 + i] = (uint8_t)('a' + i % 26);
    return len;
}

/* One fragment of `orig` as it travels: header(s) + fragment header
 * (IPv6) + data. */
static size_t build_frag(enum fam f, const uint8_t *orig, size_t olen, const struct frag_spec *s,
                         uint32_t id, uint8_t *o)
{
    size_t hl = hdr_len(f), flen = olen - hl;
    bool mf = s->mf < 0 ? (size_t)s->off + s->len < flen : s->mf;
    memcpy(o, orig, hl);
    size_t at = hl;
    if (f == V4) {
        put16(o + 2, (uint32_t)(hl + s->len));
        put16(o + 4, id);
        put16(o + 6, (uint32_t)(s->off / 8) | (mf ? 0x2000 : 0));
        o[10] = o[11] = 0;
        put16(o + 10, csum(o, 20));
    } else {
        put16(o + 4, (uint32_t)(hl - 40 + 8 + s->len));
        o[f == V6 ? 6 : 40] = 44;
        o[at] = 6;
        o[at + 1] = 0;
        put16(o + at + 2, (uint32_t)(s->off & 0xfff8) | (mf ? 1 : 0));
        put16(o + at + 4, id >> 16);
        put16(o + at + 6, id);
        at += 8;
    }
    for (size_t i = 0; i < s->len; i++) {
        size_t src = hl + s->off + i;
        uint8_t b = src < olen ? orig[src] : (uint8_t)i;
        o[at + i] = i < s->poison ? (uint8_t)~b : b;
    }
    return at + s->len;
}

/* ---- running ----------------------------------------------------------- */

struct run {
    struct defrag *df;
    struct dec_ctx dec;
    unsigned done;
    uint8_t got[MAXD];
    size_t got_len;
    struct dec_packet last;
};

static void run_init(struct run *r, const struct defrag_config *cfg)
{
    memset(r, 0, sizeof(*r));
    struct defrag_config c;
    defrag_config_default(&c);
    if (!cfg) cfg = &c;
    assert_int_equal(defrag_new(cfg, &r->df), KW_E_OK);
    dec_ctx_init(&r->dec, NULL);
}

/* Each fragment is decoded from an exact-size heap copy (kw_exact.h), so
 * ASan sees a read past the packet; it is freed once defrag has it, so a
 * datagram that kept pointing into it would be a use-after-free report. */
static enum dec_result feed(struct run *r, const uint8_t *p0, size_t len, kw_ts ts)
{
    struct dec_packet d;
    uint8_t *p = kw_exact_dup(p0, len);
    enum dec_result res = dec_packet(&r->dec, LT_RAW, ts, p, (uint32_t)len, (uint32_t)len, &d);
    assert_int_equal(res, DEC_SKIP);
    assert_true(d.ip_fragment);
    res = defrag_decode(r->df, &r->dec, &d);
    if (res == DEC_OK) {
        r->done++;
        memcpy(r->got, d.l3, d.l3_len);
        r->got_len = d.l3_len;
        r->last = d;
    }
    free(p);
    return res;
}

/* What the datagram must be after first-wins delivery of `order`: the
 * original, with each byte taken from the first fragment that held it. */
static void model(enum fam f, const uint8_t *orig, size_t olen, const struct frag_spec *fs,
                  const uint8_t *order, unsigned n, uint8_t *want)
{
    static uint8_t have[MAXD];
    uint8_t pkt[MAXD];
    size_t hl = hdr_len(f), dat = f == V4 ? hl : hl + 8;
    memcpy(want, orig, olen);
    memset(have, 0, olen);
    for (unsigned k = 0; k < n; k++) {
        const struct frag_spec *s = &fs[order[k]];
        build_frag(f, orig, olen, s, 1, pkt);
        for (size_t i = 0; i < s->len && hl + s->off + i < olen; i++)
            if (!have[hl + s->off + i]) {
                have[hl + s->off + i] = 1;
                want[hl + s->off + i] = pkt[dat + i];
            }
    }
}

/* ---- the table --------------------------------------------------------- */

struct dcase {
    const char *name;
    enum fam fam;
    uint16_t plen; /* TCP payload: the fragmentable part is plen + 20 */
    struct frag_spec f[8];
    unsigned n;
    uint8_t order[16];
    unsigned n_order; /* 0: 0..n-1 */
    unsigned done;
    struct defrag_counters want; /* every counter but the ones run_case sets */
};

#define F(o, l)                                                                                    \
    {                                                                                              \
        o, l, -1, 0                                                                                \
    }
#define F4(o) F(o * 24, 24)

static const struct dcase cases[] = {
    {"v4 in order", V4, 44, {F(0, 24), F(24, 16), F(40, 24)}, 3, {0}, 0, 1, {0}},
    {"v4 reversed", V4, 44, {F(0, 24), F(24, 16), F(40, 24)}, 3, {2, 1, 0}, 3, 1, {0}},
    {"v6 in order", V6, 44, {F(0, 24), F(24, 16), F(40, 24)}, 3, {0}, 0, 1, {0}},
    {"v6 reversed", V6X, 44, {F(0, 24), F(24, 16), F(40, 24)}, 3, {2, 1, 0}, 3, 1, {0}},
    {"v4 middle last", V4, 44, {F(0, 24), F(24, 16), F(40, 24)}, 3, {0, 2, 1}, 3, 1, {0}},
    {"v4 duplicated",
     V4,
     44,
     {F(0, 24), F(24, 16), F(40, 24)},
     3,
     {0, 0, 2, 2, 1},
     5,
     1,
     {.duplicates = 2}},
    {"v6 duplicated: exact duplicates are not overlaps (RFC 8200 4.5)",
     V6,
     44,
     {F(0, 24), F(24, 16), F(40, 24)},
     3,
     {2, 0, 2, 0, 1},
     5,
     1,
     {.duplicates = 2}},
    {"v4 overlap, same bytes",
     V4,
     44,
     {F(0, 32), F(24, 16), F(40, 24)},
     3,
     {0},
     0,
     1,
     {.overlaps = 1}},
    {"v4 overlap, different bytes: first wins",
     V4,
     44,
     {F(0, 32), {24, 16, -1, 8}, F(40, 24)},
     3,
     {0},
     0,
     1,
     {.overlaps = 1, .overlap_diff = 1}},
    {"v4 overlap, different bytes first: they win",
     V4,
     44,
     {F(0, 32), {24, 16, -1, 8}, F(40, 24)},
     3,
     {1, 0, 2},
     3,
     1,
     {.overlaps = 1, .overlap_diff = 1}},
    {"v4 overlap spanning two pieces",
     V4,
     60,
     {F(0, 24), F(40, 16), F(16, 48), F(64, 16)},
     4,
     {0, 1, 2, 3},
     4,
     1,
     {.overlaps = 1}},
    {"v6 overlap drops the datagram and the rest (RFC 5722)",
     V6,
     44,
     {F(0, 32), F(24, 16), F(40, 24)},
     3,
     {0, 1, 2},
     3,
     0,
     {.overlaps = 1, .v6_overlaps = 1, .dropped_fragments = 1, .active = 1}},
    {"v6 overlap with different bytes",
     V6X,
     44,
     {F(0, 32), {24, 16, -1, 4}, F(40, 24)},
     3,
     {2, 0, 1},
     3,
     0,
     {.overlaps = 1, .overlap_diff = 1, .v6_overlaps = 1, .active = 1}},
    {"v4 tiny first fragment (RFC 1858 3.1)",
     V4,
     44,
     {F(0, 16), F(16, 48)},
     2,
     {0, 1},
     2,
     0,
     {.tiny = 1, .dropped_fragments = 1, .active = 1}},
    {"v4 offset 8 rewrites TCP flags (RFC 1858 3.2)",
     V4,
     44,
     {F(0, 24), F(8, 56)},
     2,
     {0, 1},
     2,
     0,
     {.tiny = 1, .active = 1}},
    {"v6 tiny first fragment",
     V6,
     44,
     {F(0, 8), F(8, 56)},
     2,
     {0},
     0,
     0,
     {.tiny = 1, .dropped_fragments = 1, .active = 1}},
    {"not a multiple of 8: that fragment only",
     V4,
     44,
     {F(0, 24), F(24, 20), F(24, 16), F(40, 24)},
     4,
     {0, 1, 2, 3},
     4,
     1,
     {.bad_length = 1}},
    {"two different ends",
     V4,
     44,
     {F(0, 24), {24, 16, 0, 0}, F(40, 24)},
     3,
     {1, 2, 0},
     3,
     0,
     {.inconsistent = 1, .dropped_fragments = 1, .active = 1}},
    {"data past the end",
     V6,
     44,
     {F(0, 24), {24, 16, 0, 0}, {40, 16, 1, 0}},
     3,
     {1, 2, 0},
     3,
     0,
     {.inconsistent = 1, .dropped_fragments = 1, .active = 1}},
    {"over 65535 bytes (RFC 8200 4.5)",
     V6,
     44,
     {F(0, 24), {65520, 24, 0, 0}},
     2,
     {0, 1},
     2,
     0,
     {.too_big = 1, .active = 1}},
    {"incomplete: held", V4, 44, {F(0, 24), F(40, 24)}, 2, {0}, 0, 0, {.active = 1}},
    {"four fragments, 1 3 0 2", V4, 76, {F4(0), F4(1), F4(2), F4(3)}, 4, {1, 3, 0, 2}, 4, 1, {0}},
};

static void run_case(const struct dcase *c)
{
    static uint8_t orig[MAXD], model_out[MAXD], pkt[MAXD];
    size_t olen = build_orig(c->fam, c->plen, orig);
    uint8_t order[16];
    unsigned n = c->n_order ? c->n_order : c->n;
    for (unsigned k = 0; k < n; k++)
        order[k] = c->n_order ? c->order[k] : (uint8_t)k;
    struct run r;
    run_init(&r, NULL);
    for (unsigned k = 0; k < n; k++) {
        size_t len = build_frag(c->fam, orig, olen, &c->f[order[k]], 0x1234, pkt);
        feed(&r, pkt, len, KW_TS_SEC(1) + k);
    }
    struct defrag_counters got = *defrag_counters(r.df), want = c->want;
    want.fragments = n;
    want.datagrams_reassembled = c->done;
    want.bytes_held = got.bytes_held;
    if (memcmp(&got, &want, sizeof(got))) {
#define PR(x)                                                                                      \
    if (got.x != want.x)                                                                           \
        print_error("%s: " #x " %llu, want %llu\n", c->name, (unsigned long long)got.x,            \
                    (unsigned long long)want.x);
        DEFRAG_COUNTERS(PR)
#undef PR
        fail_msg("%s: counters", c->name);
    }
    assert_int_equal(r.done, c->done);
    if (!got.active) assert_int_equal(got.bytes_held, 0);
    if (c->done) {
        model(c->fam, orig, olen, c->f, order, n, model_out);
        assert_int_equal(r.got_len, olen);
        assert_memory_equal(r.got, model_out, olen);
        assert_int_equal(r.last.proto, 6);
        assert_int_equal(r.last.sport, 40000);
        assert_int_equal(r.last.payload_len, c->plen);
        assert_false(r.last.ip_fragment);
    }
    defrag_destroy(r.df);
}

static void test_table(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

/* Every order of four fragments, each family: always one datagram equal
 * to the original. */
static void test_permutations(void **st)
{
    (void)st;
    static const enum fam fams[] = {V4, V6, V6X};
    uint8_t orig[200], pkt[200];
    const struct frag_spec fs[4] = {F(0, 24), F(24, 16), F(40, 8), F(48, 20)};
    for (size_t fi = 0; fi < 3; fi++) {
        size_t olen = build_orig(fams[fi], 48, orig);
        unsigned perms = 0;
        for (unsigned a = 0; a < 4; a++)
            for (unsigned b = 0; b < 4; b++)
                for (unsigned c = 0; c < 4; c++) {
                    unsigned d = 6 - a - b - c;
                    if (a == b || a == c || b == c || d > 3 || d == a || d == b || d == c) continue;
                    const unsigned ord[4] = {a, b, c, d};
                    struct run r;
                    run_init(&r, NULL);
                    for (unsigned k = 0; k < 4; k++) {
                        size_t len = build_frag(fams[fi], orig, olen, &fs[ord[k]], 0x1234, pkt);
                        assert_int_equal(feed(&r, pkt, len, 1000 + k), k == 3 ? DEC_OK : DEC_SKIP);
                    }
                    assert_int_equal(r.got_len, olen);
                    assert_memory_equal(r.got, orig, olen);
                    assert_int_equal(defrag_counters(r.df)->bytes_held, 0);
                    assert_int_equal(defrag_counters(r.df)->active, 0);
                    defrag_destroy(r.df);
                    perms++;
                }
        assert_int_equal(perms, 24);
    }
}

/* ---- timeouts ---------------------------------------------------------- */

/* A datagram with a missing fragment expires after `timeout` of packet
 * time, from defrag_advance or from any later fragment, and its memory is
 * released; the straggler then starts a new datagram. */
static void test_timeout(void **st)
{
    (void)st;
    uint8_t orig[200], pkt[200];
    const struct frag_spec fs[3] = {F(0, 24), F(24, 16), F(40, 24)};
    size_t olen = build_orig(V4, 44, orig);
    struct run r;
    run_init(&r, NULL);
    const struct defrag_counters *c = defrag_counters(r.df);
    feed(&r, pkt, build_frag(V4, orig, olen, &fs[0], 5, pkt), KW_TS_SEC(100));
    feed(&r, pkt, build_frag(V4, orig, olen, &fs[2], 5, pkt), KW_TS_SEC(101));
    assert_int_equal(c->active, 1);
    assert_int_equal(c->bytes_held, DEFRAG_CHUNK); /* both in chunk 0 */
    defrag_advance(r.df, KW_TS_SEC(130) - 1);
    assert_int_equal(c->timeouts, 0);
    defrag_advance(r.df, KW_TS_SEC(130));
    assert_int_equal(c->timeouts, 1);
    assert_int_equal(c->active, 0);
    assert_int_equal(c->bytes_held, 0);
    assert_int_equal(feed(&r, pkt, build_frag(V4, orig, olen, &fs[1], 5, pkt), KW_TS_SEC(131)),
                     DEC_SKIP);
    assert_int_equal(c->active, 1);
    /* A fragment of another datagram 30 s later expires this one. */
    feed(&r, pkt, build_frag(V4, orig, olen, &fs[0], 6, pkt), KW_TS_SEC(161));
    assert_int_equal(c->timeouts, 2);
    assert_int_equal(c->active, 1);
    /* A dropped datagram's tombstone also goes, without counting. */
    const struct frag_spec tiny = F(0, 8);
    feed(&r, pkt, build_frag(V4, orig, olen, &tiny, 7, pkt), KW_TS_SEC(162));
    assert_int_equal(c->tiny, 1);
    defrag_advance(r.df, KW_TS_SEC(200));
    assert_int_equal(c->timeouts, 3);
    assert_int_equal(c->active, 0);
    assert_int_equal(c->bytes_held, 0);
    assert_int_equal(r.done, 0);
    defrag_destroy(r.df);
}

/* ---- limits ------------------------------------------------------------ */

static void test_limit_datagrams(void **st)
{
    (void)st;
    uint8_t orig[200], pkt[200];
    const struct frag_spec fs[2] = {F(0, 24), F(24, 40)};
    size_t olen = build_orig(V4, 44, orig);
    struct defrag_config cfg;
    defrag_config_default(&cfg);
    cfg.max_datagrams = 2;
    struct run r;
    run_init(&r, &cfg);
    const struct defrag_counters *c = defrag_counters(r.df);
    for (uint32_t id = 1; id <= 3; id++)
        feed(&r, pkt, build_frag(V4, orig, olen, &fs[0], id, pkt), id);
    assert_int_equal(c->limit_datagrams, 1);
    assert_int_equal(c->evicted, 1);
    assert_int_equal(c->active, 2);
    /* id 1 was the oldest: its tail starts over (evicting id 2) */
    assert_int_equal(feed(&r, pkt, build_frag(V4, orig, olen, &fs[1], 1, pkt), 10), DEC_SKIP);
    assert_int_equal(c->evicted, 2);
    assert_int_equal(feed(&r, pkt, build_frag(V4, orig, olen, &fs[1], 3, pkt), 11), DEC_OK);
    assert_memory_equal(r.got + 20, orig + 20, olen - 20);
    defrag_destroy(r.df);
}

static void test_limit_fragments(void **st)
{
    (void)st;
    uint8_t orig[200], pkt[200];
    const struct frag_spec fs[4] = {F(0, 24), F(24, 8), F(32, 16), F(48, 16)};
    size_t olen = build_orig(V6, 44, orig);
    struct defrag_config cfg;
    defrag_config_default(&cfg);
    cfg.max_fragments = 3;
    struct run r;
    run_init(&r, &cfg);
    for (unsigned k = 0; k < 4; k++)
        feed(&r, pkt, build_frag(V6, orig, olen, &fs[k], 1, pkt), k);
    assert_int_equal(defrag_counters(r.df)->limit_fragments, 1);
    assert_int_equal(r.done, 0);
    assert_int_equal(defrag_counters(r.df)->bytes_held, 0);
    defrag_destroy(r.df);
}

/* 17 disjoint pieces: one more than DEFRAG_MAX_PIECES. */
static void test_limit_pieces(void **st)
{
    (void)st;
    static uint8_t orig[1000], pkt[1000];
    size_t olen = build_orig(V4, 400, orig);
    struct run r;
    run_init(&r, NULL);
    for (uint16_t k = 1; k <= DEFRAG_MAX_PIECES + 1; k++) {
        struct frag_spec s = F(k * 16, 8);
        feed(&r, pkt, build_frag(V4, orig, olen, &s, 1, pkt), k);
    }
    assert_int_equal(defrag_counters(r.df)->limit_pieces, 1);
    assert_int_equal(defrag_counters(r.df)->bytes_held, 0);
    defrag_destroy(r.df);
}

/* memcap of one maximal datagram: a second big datagram pushes the first
 * out and still completes. */
static void test_memcap(void **st)
{
    (void)st;
    static uint8_t orig[MAXD], pkt[MAXD];
    size_t olen = build_orig(V4, 40000, orig);
    const struct frag_spec fs[2] = {F(0, 32000), F(32000, 8020)};
    struct defrag_config cfg;
    defrag_config_default(&cfg);
    cfg.memcap = 64 * 1024;
    struct run r;
    run_init(&r, &cfg);
    const struct defrag_counters *c = defrag_counters(r.df);
    feed(&r, pkt, build_frag(V4, orig, olen, &fs[0], 1, pkt), 1);
    feed(&r, pkt, build_frag(V4, orig, olen, &fs[0], 2, pkt), 2);
    assert_int_equal(c->memcap, 0);
    assert_int_equal(c->bytes_held, 64 * 1024); /* 32 chunks each */
    assert_int_equal(feed(&r, pkt, build_frag(V4, orig, olen, &fs[1], 2, pkt), 3), DEC_OK);
    assert_int_equal(c->memcap, 1);
    assert_int_equal(c->evicted, 1);
    assert_int_equal(r.got_len, olen);
    assert_memory_equal(r.got + 20, orig + 20, olen - 20);
    assert_int_equal(c->bytes_held, 0);
    defrag_destroy(r.df);
}

static void test_config(void **st)
{
    (void)st;
    struct defrag_config cfg;
    struct defrag *d;
    defrag_config_default(&cfg);
    cfg.memcap = 65535;
    assert_int_equal(defrag_new(&cfg, &d), KW_E_CONFIG);
    defrag_config_default(&cfg);
    cfg.max_datagrams = 0;
    assert_int_equal(defrag_new(&cfg, &d), KW_E_CONFIG);
    defrag_config_default(&cfg);
    cfg.timeout = 0;
    assert_int_equal(defrag_new(&cfg, &d), KW_E_CONFIG);
}

/* ---- keys -------------------------------------------------------------- */

/* The same addresses and id on two VLANs are two datagrams, and the
 * rebuilt packet keeps its VLAN (it is part of the flow key). */
static void test_vlan_key(void **st)
{
    (void)st;
    uint8_t orig[200], pkt[200], frame[220];
    const struct frag_spec fs[2] = {F(0, 24), F(24, 40)};
    size_t olen = build_orig(V4, 44, orig);
    struct run r;
    run_init(&r, NULL);
    const uint16_t vlans[3] = {10, 20, 10};
    for (unsigned k = 0; k < 3; k++) {
        size_t len = build_frag(V4, orig, olen, &fs[k ? 1 : 0], 9, pkt);
        memset(frame, 0, 12);
        put16(frame + 12, 0x8100);
        put16(frame + 14, vlans[k]);
        put16(frame + 16, 0x0800);
        memcpy(frame + 18, pkt, len);
        struct dec_packet d;
        assert_int_equal(
            dec_packet(&r.dec, 1, 1, frame, (uint32_t)len + 18, (uint32_t)len + 18, &d), DEC_SKIP);
        enum dec_result res = defrag_decode(r.df, &r.dec, &d);
        assert_int_equal(res, k == 2 ? DEC_OK : DEC_SKIP);
        if (res == DEC_OK) {
            assert_int_equal(d.vlan[0], 10);
            assert_int_equal(d.vlan_count, 1);
            assert_int_equal(d.dport, 80);
        }
    }
    assert_int_equal(defrag_counters(r.df)->active, 1); /* VLAN 20's head */
    defrag_destroy(r.df);
}

/* An outer IPv4 packet (IP-in-IP, RFC 2003) from 192.0.2.1 to 192.0.2.2
 * carrying inner[off, off+len), itself a fragment when mf or off. */
static size_t wrap4(const uint8_t *inner, size_t off, size_t len, bool mf, uint8_t *o)
{
    memset(o, 0, 20);
    o[0] = 0x45;
    put16(o + 2, (uint32_t)(20 + len));
    put16(o + 4, 0x4242);
    put16(o + 6, (uint32_t)(off / 8) | (mf ? 0x2000 : 0));
    o[8] = 64;
    o[9] = 4;
    memcpy(o + 12, "\xc0\x00\x02\x01\xc0\x00\x02\x02", 8);
    put16(o + 10, csum(o, 20));
    memcpy(o + 20, inner + off, len);
    return 20 + len;
}

/* A fragmented tunnel carrying a fragment: the outer datagram completes,
 * its inner packet is a fragment that completes the inner datagram, in
 * the same call (defrag_decode feeds a rebuilt fragment once more). */
static void test_nested(void **st)
{
    (void)st;
    uint8_t orig[200], in0[200], in1[200], pkt[300];
    const struct frag_spec fs[2] = {F(0, 24), F(24, 40)};
    size_t olen = build_orig(V4, 44, orig);
    size_t n0 = build_frag(V4, orig, olen, &fs[0], 0x1234, in0);
    size_t n1 = build_frag(V4, orig, olen, &fs[1], 0x1234, in1);
    struct run r;
    run_init(&r, NULL);
    struct dec_packet d;
    /* inner fragment 1 in a whole outer packet */
    size_t len = wrap4(in1, 0, n1, false, pkt);
    assert_int_equal(dec_packet(&r.dec, LT_RAW, 1, pkt, (uint32_t)len, (uint32_t)len, &d),
                     DEC_SKIP);
    assert_true(d.ip_fragment);
    assert_int_equal(defrag_decode(r.df, &r.dec, &d), DEC_SKIP);
    /* inner fragment 0 in two outer fragments */
    assert_int_equal(feed(&r, pkt, wrap4(in0, 0, 24, true, pkt), 2), DEC_SKIP);
    assert_int_equal(feed(&r, pkt, wrap4(in0, 24, n0 - 24, false, pkt), 3), DEC_OK);
    assert_int_equal(r.got_len, olen);
    assert_memory_equal(r.got, orig, olen);
    assert_int_equal(r.last.sport, 40000);
    assert_int_equal(defrag_counters(r.df)->datagrams_reassembled, 2);
    assert_int_equal(defrag_counters(r.df)->active, 0);
    defrag_destroy(r.df);
}

/* ---- corpus ------------------------------------------------------------ */

struct corpus_want {
    const char *file;
    uint64_t reassembled; /* tshark: fragments with MF clear and an offset */
    const char *needle;   /* must appear in a reassembled TCP payload */
};

static void test_corpus(void **st)
{
    (void)st;
    static const struct corpus_want want[] = {
        {"arkime-socks5-http-302-frag.pcap", 4, "GET / HTTP/1.1"},
        {"zeek-erspan.pcap", 16, NULL},                              /* GRE over fragments */
        {"zeek-tunnels-gtp-gtp2_different_udp_port.pcap", 42, NULL}, /* GTP-U over them */
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char path[512], eb[PCAP_ERRBUF_SIZE];
        snprintf(path, sizeof(path), "%s/corpus/%s", KW_TEST_DATA, want[i].file);
        pcap_t *p = pcap_open_offline(path, eb);
        assert_non_null(p);
        struct run r;
        run_init(&r, NULL);
        struct pcap_pkthdr *h;
        const u_char *data;
        unsigned tcp_ok = 0;
        bool found = want[i].needle == NULL;
        while (pcap_next_ex(p, &h, &data) == 1) {
            struct dec_packet d;
            kw_ts ts = KW_TS_SEC(h->ts.tv_sec) + h->ts.tv_usec;
            uint8_t *copy = kw_exact_dup(data, h->caplen); /* ASan sees overreads */
            enum dec_result dr =
                dec_packet(&r.dec, pcap_datalink(p), ts, copy, h->caplen, h->len, &d);
            dr = dr == DEC_SKIP && d.ip_fragment ? defrag_decode(r.df, &r.dec, &d) : DEC_SKIP;
            free(copy);
            if (dr != DEC_OK) continue;
            tcp_ok += d.proto == 6;
            if (want[i].needle && d.payload_len >= strlen(want[i].needle) &&
                memmem(d.payload, d.payload_len, want[i].needle, strlen(want[i].needle)))
                found = true;
        }
        pcap_close(p);
        const struct defrag_counters *c = defrag_counters(r.df);
        print_message("%s: %llu fragments, %llu datagrams, %u TCP\n", want[i].file,
                      (unsigned long long)c->fragments,
                      (unsigned long long)c->datagrams_reassembled, tcp_ok);
        assert_int_equal(c->datagrams_reassembled, want[i].reassembled);
        assert_int_equal(tcp_ok, want[i].reassembled); /* every one carried TCP inside */
        assert_int_equal(c->active, 0);
        assert_int_equal(c->overlaps + c->tiny + c->inconsistent + c->dropped_fragments, 0);
        assert_true(found);
        defrag_destroy(r.df);
    }
}

static size_t file_size(const char *dir, const char *name, char *buf, size_t cap)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* `keywarden streams` sees the HTTP carried in fragments: the whole
 * connection, as tshark's "follow tcp" shows it (3+21+395 bytes from the
 * client, 2+10+930 from the server). */
static void test_streams(void **st)
{
    (void)st;
    char dir[512], cmd[600], buf[4096];
    snprintf(dir, sizeof(dir), "%s/test-defrag-XXXXXX", KW_BINARY_DIR);
    assert_non_null(mkdtemp(dir));
    struct cap_config cc;
    cap_config_default(&cc);
    char path[512];
    snprintf(path, sizeof(path), "%s/corpus/arkime-socks5-http-302-frag.pcap", KW_TEST_DATA);
    cc.files[cc.n_files++] = path;
    struct streams_run_stats rs;
    char err[256];
    assert_int_equal(streams_dump_run(&cc, NULL, NULL, dir, &rs, err, sizeof(err)), KW_E_OK);
    size_t n = file_size(dir, "010.000.000.001.01637-010.000.000.002.21477", buf, sizeof(buf));
    assert_int_equal(n, 3 + 21 + 395);
    assert_non_null(memmem(buf, n, "GET / HTTP/1.1\r\nHost: www.google.com", 36));
    n = file_size(dir, "010.000.000.002.21477-010.000.000.001.01637", buf, sizeof(buf));
    assert_int_equal(n, 2 + 10 + 930);
    assert_non_null(memmem(buf, n, "HTTP/1.1 302 Found", 18));
    assert_non_null(memmem(buf, n, "</BODY></HTML>", 14));
    assert_int_equal(rs.flow.tcp_gaps, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),           cmocka_unit_test(test_permutations),
        cmocka_unit_test(test_timeout),         cmocka_unit_test(test_limit_datagrams),
        cmocka_unit_test(test_limit_fragments), cmocka_unit_test(test_limit_pieces),
        cmocka_unit_test(test_memcap),          cmocka_unit_test(test_config),
        cmocka_unit_test(test_vlan_key),        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_corpus),          cmocka_unit_test(test_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
