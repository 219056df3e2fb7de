/* test_tcp_reasm: one TCP direction fed segments in every awkward order.
 *
 * A recording consumer writes what it consumed into a transcript, and a
 * gap of N bytes as N '?' characters, so each case states its expected
 * output as one string ("abcd????ijkl"). The consumer also checks the
 * buffer contract: each offer starts with the bytes it left last time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flow.h"
#include "kw_exact.h"
#include "tcp_reasm.h"

enum consume_mode { CONSUME_ALL, CONSUME_LINES, CONSUME_NONE, CONSUME_HALF };

struct rec {
    enum consume_mode mode;
    char out[8192];
    size_t out_len;
    uint8_t pending[8192]; /* what was left unconsumed at the last offer */
    size_t pending_len;
    unsigned gap_calls;
    uint64_t offered_new; /* sum of bytes offered for the first time */
};

static void rec_put(struct rec *r, const void *p, size_t n)
{
    assert_true(r->out_len + n <= sizeof(r->out));
    memcpy(r->out + r->out_len, p, n);
    r->out_len += n;
}

static size_t rec_data(void *ctx, const uint8_t *p, size_t len, kw_ts ts)
{
    struct rec *r = ctx;
    /* The unconsumed tail comes back first, unchanged. */
    assert_true(len >= r->pending_len);
    assert_memory_equal(p, r->pending, r->pending_len);
    assert_true(len > r->pending_len || len == 0 || r->pending_len > 0);
    size_t c = 0;
    switch (r->mode) {
    case CONSUME_ALL:
        c = len;
        break;
    case CONSUME_LINES:
        for (size_t i = len; i > 0; i--)
            if (p[i - 1] == '\n') {
                c = i;
                break;
            }
        break;
    case CONSUME_NONE:
        c = 0;
        break;
    case CONSUME_HALF:
        c = len / 2;
        break;
    }
    rec_put(r, p, c);
    r->pending_len = len - c;
    assert_true(r->pending_len <= sizeof(r->pending));
    memcpy(r->pending, p + c, r->pending_len);
    return c;
}

static void rec_gap(void *ctx, uint64_t len, kw_ts ts)
{
    struct rec *r = ctx;
    /* Bytes kept before the gap were offered one last time; a limit drop
     * reports them as the gap itself. Either way they are gone now. */
    r->pending_len = 0;
    r->gap_calls++;
    for (uint64_t i = 0; i < len; i++)
        rec_put(r, "?", 1);
}

struct seg {
    uint32_t off; /* relative to the ISN + 1 */
    const char *data;
    int64_t t_s; /* packet time, seconds */
};

struct rcase {
    const char *name;
    uint32_t isn1; /* sequence number of stream offset 0 */
    struct seg segs[12];
    bool flush;
    enum consume_mode mode;
    uint32_t buf_max, window, max_segs;
    uint64_t memcap;
    const char *want;
    int64_t in_order, ooo, retrans, diff, gaps, gap_bytes; /* -1: not checked */
};

struct harness {
    struct flow_counters cnt;
    struct tcp_reasm *r;
    struct tcp_stream s;
    struct rec rec;
    struct tcp_sink sink;
};

static void h_init(struct harness *h, const struct rcase *c)
{
    memset(h, 0, sizeof(*h));
    struct tcp_reasm_config cfg = {
        .memcap = c->memcap ? c->memcap : 64u << 20,
        .stream_buf_max = c->buf_max ? c->buf_max : 1u << 20,
        .ooo_window = c->window ? c->window : 256u << 10,
        .ooo_max_segments = c->max_segs ? c->max_segs : 1024,
        .gap_timeout = KW_TS_SEC(2),
    };
    assert_int_equal(tcp_reasm_new(&cfg, &h->cnt, &h->r), KW_E_OK);
    tcp_stream_init(&h->s);
    tcp_stream_set_base(&h->s, c->isn1);
    h->rec.mode = c->mode;
    h->sink = (struct tcp_sink){&h->rec, rec_data, rec_gap};
}

static void h_feed(struct harness *h, uint32_t isn1, const struct seg *g)
{
    size_t n = strlen(g->data);
    uint8_t *b = kw_exact_dup(g->data, n); /* ASan sees reads past the segment */
    tcp_stream_segment(h->r, &h->s, &h->sink, isn1 + g->off, b, (uint32_t)n, KW_TS_SEC(g->t_s));
    free(b);
}

static void h_finish(struct harness *h, bool flush)
{
    if (flush) tcp_stream_flush(h->r, &h->s, &h->sink, KW_TS_SEC(100));
    tcp_stream_free(h->r, &h->s);
    assert_int_equal(tcp_reasm_mem_used(h->r), 0);
    tcp_reasm_destroy(h->r);
}

static void check_cnt(const char *name, const char *what, int64_t want, uint64_t got)
{
    if (want >= 0 && (uint64_t)want != got) {
        print_error("case %s: %s = %llu, want %lld\n", name, what, (unsigned long long)got,
                    (long long)want);
        fail();
    }
}

static void run_case(const struct rcase *c)
{
    struct harness h;
    h_init(&h, c);
    for (const struct seg *g = c->segs; g->data; g++)
        h_feed(&h, c->isn1, g);
    h_finish(&h, c->flush);
    h.rec.out[h.rec.out_len] = 0;
    if (strlen(c->want) != h.rec.out_len || memcmp(c->want, h.rec.out, h.rec.out_len) != 0) {
        print_error("case %s: got \"%.*s\", want \"%s\"\n", c->name, (int)h.rec.out_len, h.rec.out,
                    c->want);
        fail();
    }
    check_cnt(c->name, "in_order", c->in_order, h.cnt.tcp_in_order);
    check_cnt(c->name, "out_of_order", c->ooo, h.cnt.tcp_out_of_order);
    check_cnt(c->name, "retransmitted", c->retrans, h.cnt.tcp_retransmitted);
    check_cnt(c->name, "overlap_diff", c->diff, h.cnt.tcp_overlap_diff);
    check_cnt(c->name, "gaps", c->gaps, h.cnt.tcp_gaps);
    check_cnt(c->name, "gap_bytes", c->gap_bytes, h.cnt.tcp_gap_bytes);
}

#define NC -1
static const struct rcase cases[] = {
    {"in order",
     1000,
     {{0, "abc", 0}, {3, "def", 0}, {6, "ghi", 0}},
     false,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "abcdefghi",
     3,
     0,
     0,
     0,
     0,
     0},
    {"reversed",
     1000,
     {{6, "ghi", 0}, {3, "def", 0}, {0, "abc", 0}},
     false,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "abcdefghi",
     1,
     2,
     0,
     0,
     0,
     0},
    {"duplicate in order",
     7,
     {{0, "abc", 0}, {0, "abc", 0}, {3, "def", 0}, {3, "def", 0}},
     false,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "abcdef",
     2,
     0,
     2,
     0,
     0,
     0},
    {"duplicate held",
     7,
     {{3, "def", 0}, {3, "def", 0}, {0, "abc", 0}},
     false,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "abcdef",
     1,
     1,
     1,
     0,
     0,
     0},
    /* First wins: the held XXXX stays, the later "efgh" is counted. */
    {"overlap held conflict",
     1,
     {{4, "XXXX", 0}, {0, "abcdefgh", 0}},
     false,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "abcdXXXX",
     1,
     1,
     0,
     1,
     0,
     0},
    /* Partial overlap with a held segment on both ends. */
    {"overlap straddle",
     1,
     {{2, "CD", 0}, {6, "GH", 0}, {0, "abcdefghij", 0}},
     false,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "abCDefGHij",
     1,
     2,
     0,
     1,
     0,
     0},
    {"overlap same bytes",
     1,
     {{2, "cd", 0}, {0, "abcdef", 0}},
     false,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "abcdef",
     1,
     1,
     0,
     0,
     0,
     0},
    /* A retransmission of unconsumed bytes with other content: first wins. */
    {"retransmit conflict in buffer",
     1,
     {{0, "abc", 0}, {0, "xyz\n", 0}},
     true,
     CONSUME_LINES,
     0,
     0,
     0,
     0,
     "abc\n",
     2,
     0,
     0,
     1,
     0,
     0},
    {"retransmit conflict partial",
     1,
     {{0, "ab\ncd", 0}, {3, "XY\n", 0}},
     true,
     CONSUME_LINES,
     0,
     0,
     0,
     0,
     "ab\ncd\n",
     2,
     0,
     0,
     1,
     0,
     0},
    /* A hole that never fills. */
    {"hole at close",
     1,
     {{0, "abcd", 0}, {8, "ijkl", 0}},
     true,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "abcd????ijkl",
     1,
     1,
     0,
     0,
     1,
     4},
    {"hole no close",
     1,
     {{0, "abcd", 0}, {8, "ijkl", 0}},
     false,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "abcd",
     1,
     1,
     0,
     0,
     0,
     0},
    {"hole by window",
     1,
     {{0, "abcd", 0}, {8, "ijkl", 0}, {12, "mnop", 0}, {16, "qrst", 0}},
     false,
     CONSUME_ALL,
     0,
     10,
     0,
     0,
     "abcd????ijklmnopqrst",
     2,
     2,
     0,
     0,
     1,
     4},
    {"hole by timeout",
     1,
     {{0, "abcd", 0}, {8, "ijkl", 1}, {12, "mnop", 3}},
     false,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "abcd????ijklmnop",
     1,
     2,
     0,
     0,
     1,
     4},
    {"hole before timeout",
     1,
     {{0, "abcd", 0}, {8, "ijkl", 1}, {12, "mnop", 2}},
     false,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "abcd",
     1,
     2,
     0,
     0,
     0,
     0},
    {"two holes at close",
     1,
     {{2, "cd", 0}, {6, "gh", 0}, {10, "kl", 0}},
     true,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "??cd??gh??kl",
     0,
     3,
     0,
     0,
     3,
     6},
    {"late fill after gap",
     1,
     {{0, "ab", 0}, {4, "ef", 0}, {6, "gh", 5}, {2, "CD", 5}},
     false,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "ab??efgh",
     1,
     2,
     1,
     0,
     1,
     2},
    /* Wrap-around: offset 0 at 0xfffffff8, data crosses 2^32. */
    {"wrap in order",
     0xfffffff8u,
     {{0, "abcdef", 0}, {6, "ghijkl", 0}, {12, "mnop", 0}},
     false,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "abcdefghijklmnop",
     3,
     0,
     0,
     0,
     0,
     0},
    {"wrap reversed",
     0xfffffffcu,
     {{12, "mnop", 0}, {6, "ghijkl", 0}, {0, "abcdef", 0}},
     false,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "abcdefghijklmnop",
     1,
     2,
     0,
     0,
     0,
     0},
    {"wrap hole",
     0xfffffffeu,
     {{0, "ab", 0}, {4, "ef", 0}},
     true,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "ab??ef",
     1,
     1,
     0,
     0,
     1,
     2},
    /* A consumer that takes whole lines only. */
    {"partial consumer",
     1,
     {{0, "GET /", 0}, {5, "a\nHo", 0}, {9, "st: x\n\n", 0}},
     true,
     CONSUME_LINES,
     0,
     0,
     0,
     0,
     "GET /a\nHost: x\n\n",
     3,
     0,
     0,
     0,
     0,
     0},
    {"partial consumer ooo",
     1,
     {{9, "st: x\n\n", 0}, {0, "GET /", 0}, {5, "a\nHo", 0}},
     true,
     CONSUME_LINES,
     0,
     0,
     0,
     0,
     "GET /a\nHost: x\n\n",
     2,
     1,
     0,
     0,
     0,
     0},
    /* Buffer limit: a consumer that keeps everything loses the oldest. */
    {"buffer limit",
     1,
     {{0, "abcdefgh", 0}, {8, "ijklmnop", 0}, {16, "qrst", 0}},
     false,
     CONSUME_NONE,
     10,
     8,
     0,
     0,
     "??????????",
     3,
     0,
     0,
     0,
     1,
     10},
    {"buffer limit big segment",
     1,
     {{0, "abcdefgh", 0}, {8, "ijklmnopqrstuvwx", 0}},
     true,
     CONSUME_NONE,
     10,
     8,
     0,
     0,
     NULL,
     2,
     0,
     0,
     0,
     NC,
     NC},
    /* Held-segment limit: the hole gives way, newer data is kept. */
    {"segment limit",
     1,
     {{0, "ab", 0}, {4, "ef", 0}, {6, "gh", 0}, {8, "ij", 0}, {10, "kl", 0}},
     false,
     CONSUME_ALL,
     0,
     0,
     2,
     0,
     "ab??efghijkl",
     2,
     3,
     0,
     0,
     1,
     2},
    /* Memcap: nothing can be held, so holes turn into gaps at once. */
    {"memcap",
     1,
     {{0, "ab", 0}, {4, "ef", 0}, {8, "ij", 0}},
     true,
     CONSUME_ALL,
     0,
     0,
     0,
     1,
     "ab??ef??ij",
     1,
     2,
     0,
     0,
     2,
     4},
    {"memcap buffer",
     1,
     {{0, "abcdefgh", 0}, {12, "mn", 0}, {16, "qr", 0}},
     true,
     CONSUME_NONE,
     0,
     0,
     0,
     4500,
     NULL,
     1,
     2,
     0,
     0,
     NC,
     NC},
    {"before start",
     100,
     {{0, "abc", 0}, {(uint32_t)-4, "wxyz", 0}, {(uint32_t)-2, "yzabcd", 0}},
     false,
     CONSUME_ALL,
     0,
     0,
     0,
     0,
     "abcd",
     2,
     0,
     0,
     0,
     0,
     0},
};

/* An ACK from the peer past a hole means the peer has those bytes and the
 * mirror missed them: the hole becomes a gap at once, with wrap-around of
 * the sequence space, and an ACK short of the held data changes nothing. */
static void test_acked_hole(void **state)
{
    static const uint32_t isns[] = {1000, 0xffffffa0u};
    for (size_t i = 0; i < sizeof isns / sizeof isns[0]; i++) {
        struct rcase c = {.name = "acked", .isn1 = isns[i], .mode = CONSUME_ALL};
        struct harness h;
        h_init(&h, &c);
        const struct seg a = {0, "aaaa", 0}, b = {8, "cccc", 0};
        h_feed(&h, c.isn1, &a);
        h_feed(&h, c.isn1, &b); /* hole at [4, 8) */
        tcp_stream_acked(h.r, &h.s, &h.sink, c.isn1 + 6, KW_TS_SEC(0));
        assert_int_equal(h.rec.out_len, 4); /* ack inside the hole: wait */
        tcp_stream_acked(h.r, &h.s, &h.sink, c.isn1 + 2, KW_TS_SEC(0));
        assert_int_equal(h.rec.out_len, 4); /* old ack: nothing */
        tcp_stream_acked(h.r, &h.s, &h.sink, c.isn1 + 10, KW_TS_SEC(0));
        assert_int_equal(h.rec.out_len, 12);
        assert_memory_equal(h.rec.out, "aaaa????cccc", 12);
        assert_int_equal(h.cnt.tcp_gaps_acked, 1);
        assert_int_equal(h.cnt.tcp_gap_bytes, 4);
        h_finish(&h, true);
    }
}

static void test_table(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (!cases[i].want) continue;
        run_case(&cases[i]);
    }
}

/* Cases whose output depends on where limits cut: check the invariants. */
static void test_limit_invariants(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct rcase *c = &cases[i];
        if (c->want) continue;
        struct harness h;
        h_init(&h, c);
        size_t total = 0, end = 0;
        for (const struct seg *g = c->segs; g->data; g++) {
            h_feed(&h, c->isn1, g);
            size_t e = g->off + strlen(g->data);
            total += strlen(g->data);
            if (e > end) end = e;
        }
        h_finish(&h, true);
        /* Every offset up to the end is accounted for exactly once as
         * consumed, gap, or dropped-unconsumed, and nothing is invented. */
        assert_int_equal(h.rec.out_len + h.cnt.tcp_unconsumed_dropped, end);
        assert_true(h.cnt.tcp_bytes_delivered <= total);
        for (size_t j = 0; j < h.rec.out_len; j++)
            if (h.rec.out[j] != '?') {
                /* A real byte sits at its own offset. */
                bool found = false;
                for (const struct seg *g = c->segs; g->data; g++)
                    if (j >= g->off && j < g->off + strlen(g->data) &&
                        g->data[j - g->off] == h.rec.out[j])
                        found = true;
                assert_true(found);
            }
        assert_true(h.cnt.stream_limit_hits + h.cnt.memcap_hits > 0);
    }
}

/* Every order of five segments (and each with one duplicate) gives the
 * same bytes and no gap. */
static void test_permutations(void **state)
{
    const char *parts[5] = {"GET ", "/a/b", " HTTP", "/1.1\r\n", "\r\n"};
    uint32_t offs[5];
    uint32_t o = 0;
    for (int i = 0; i < 5; i++) {
        offs[i] = o;
        o += (uint32_t)strlen(parts[i]);
    }
    const char *want = "GET /a/b HTTP/1.1\r\n\r\n";
    int idx[5] = {0, 1, 2, 3, 4};
    unsigned perms = 0;
    for (;;) {
        for (int dup = -1; dup < 5; dup++) {
            for (uint32_t isn = 0xfffffff0u; isn != 0x10u; isn += 0x10u) {
                struct rcase c = {.name = "perm", .isn1 = isn, .mode = CONSUME_LINES};
                struct harness h;
                h_init(&h, &c);
                for (int k = 0; k < 5; k++) {
                    struct seg g = {offs[idx[k]], parts[idx[k]], 0};
                    h_feed(&h, isn, &g);
                    if (idx[k] == dup) h_feed(&h, isn, &g);
                }
                h_finish(&h, true);
                assert_int_equal(h.rec.out_len, strlen(want));
                assert_memory_equal(h.rec.out, want, strlen(want));
                assert_int_equal(h.cnt.tcp_gaps, 0);
                assert_int_equal(h.cnt.tcp_in_order + h.cnt.tcp_out_of_order, 5);
                assert_int_equal(h.cnt.tcp_retransmitted, dup >= 0 ? 1 : 0);
                assert_int_equal(h.cnt.tcp_overlap_diff, 0);
            }
        }
        perms++;
        /* next permutation (lexicographic) */
        int i = 3;
        while (i >= 0 && idx[i] > idx[i + 1])
            i--;
        if (i < 0) break;
        int j = 4;
        while (idx[j] < idx[i])
            j--;
        int tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
        for (int a = i + 1, b = 4; a < b; a++, b--) {
            tmp = idx[a];
            idx[a] = idx[b];
            idx[b] = tmp;
        }
    }
    assert_int_equal(perms, 120);
}

/* Random segmentation, order, duplication and loss of a long stream: what
 * comes out is the original with exactly the lost ranges as gaps. */
static void test_random_streams(void **state)
{
    uint64_t rng = 0x1234567;
    for (int round = 0; round < 300; round++) {
        enum { N = 3000 };
        static uint8_t src[N];
        for (int i = 0; i < N; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            src[i] = (uint8_t)('a' + (rng >> 33) % 26);
        }
        struct {
            uint32_t off, len;
        } segs[400];
        int ns = 0;
        for (uint32_t o = 0; o < N;) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t len = 1 + (uint32_t)((rng >> 33) % 60);
            if (o + len > N) len = N - o;
            segs[ns].off = o;
            segs[ns++].len = len;
            o += len;
        }
        /* Shuffle locally (reorder within a small distance). */
        for (int i = 0; i < ns; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            int j = i + (int)((rng >> 33) % 4);
            if (j < ns) {
                uint32_t a = segs[i].off, b = segs[i].len;
                segs[i] = segs[j];
                segs[j].off = a;
                segs[j].len = b;
            }
        }
        uint8_t lost[N] = {0};
        struct rcase c = {.name = "random", .isn1 = (uint32_t)(rng >> 7), .mode = CONSUME_ALL};
        struct harness h;
        h_init(&h, &c);
        for (int i = 0; i < ns; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            unsigned r = (unsigned)((rng >> 33) % 100);
            bool drop = r < 3 && segs[i].off > 0;
            if (drop) {
                memset(lost + segs[i].off, 1, segs[i].len);
                continue;
            }
            tcp_stream_segment(h.r, &h.s, &h.sink, c.isn1 + segs[i].off, src + segs[i].off,
                               segs[i].len, 0);
            if (r > 90)
                tcp_stream_segment(h.r, &h.s, &h.sink, c.isn1 + segs[i].off, src + segs[i].off,
                                   segs[i].len, 0);
        }
        h_finish(&h, true);
        /* Lost bytes at the very end are never known to exist. */
        size_t end = N;
        while (end > 0 && lost[end - 1])
            end--;
        assert_int_equal(h.rec.out_len, end);
        for (size_t i = 0; i < end; i++) {
            if (lost[i])
                assert_int_equal(h.rec.out[i], '?');
            else
                assert_int_equal((uint8_t)h.rec.out[i], src[i]);
        }
        assert_int_equal(h.cnt.tcp_overlap_diff, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_limit_invariants),
        cmocka_unit_test(test_permutations),
        cmocka_unit_test(test_random_streams),
        cmocka_unit_test(test_acked_hole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
