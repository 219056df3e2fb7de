/* Tests of the base layer: JSON escaping of network bytes, addresses and
 * prefixes, timestamps, the bounds-checked reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "kw_addr.h"
#include "kw_cond.h"
#include "kw_hash.h"
#include "kw_json.h"
#include "kw_jw.h"
#include "kw_rd.h"
#include "kw_sha256.h"
#include "kw_str.h"
#include "kw_term.h"
#include "kw_thread.h"
#include "kw_time.h"
#include "kw_txn.h"
#include "kw_wake.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>

static void test_json_bytes(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        {"abc", 3, "abc"},
        {"a\x00" "b", 3, "a\\x00b"},
        {"\xff\xfe", 2, "\\xff\\xfe"},
        {"caf\xc3\xa9", 5, "caf\xc3\xa9"},
        {"\xc3", 1, "\\xc3"},         /* cut sequence */
        {"\xe0\x80\x80", 3, "\\xe0\\x80\\x80"}, /* overlong */
        {"\xed\xa0\x80", 3, "\\xed\\xa0\\x80"}, /* surrogate */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *s = kw_json_bytes((const uint8_t *)cases[i].in, cases[i].len);
        assert_non_null(s);
        assert_string_equal(json_string_value(s), cases[i].want);
        json_decref(s);
    }
}

static void test_addr_prefix(void **state)
{
    struct kw_addr a, n;
    assert_true(kw_addr_parse("203.0.113.5", &a));
    assert_true(kw_addr_parse("203.0.113.0", &n));
    assert_true(kw_addr_in_prefix(&a, &n, 29));
    assert_true(kw_addr_parse("203.0.113.9", &a));
    assert_false(kw_addr_in_prefix(&a, &n, 29));
    assert_true(kw_addr_in_prefix(&a, &n, 0));
    assert_true(kw_addr_parse("2001:db8::1", &a));
    assert_true(kw_addr_parse("2001:db8::", &n));
    assert_true(kw_addr_in_prefix(&a, &n, 48));
    assert_false(kw_addr_in_prefix(&a, &n, 129));
    assert_true(kw_addr_parse("203.0.113.0", &n));
    assert_false(kw_addr_in_prefix(&a, &n, 8)); /* family mismatch */
    assert_false(kw_addr_parse("300.1.1.1", &a));
    char buf[64];
    assert_true(kw_addr_parse("::ffff:1.2.3.4", &a));
    assert_string_equal(kw_addr_str(&a, buf, sizeof buf), "::ffff:1.2.3.4");
}

/* The hand-made dotted quad prints what inet_ntop prints, for the edges
 * of every octet's digit count and a spread of others. */
static void test_addr_str_ipv4(void **state)
{
    (void)state;
    struct kw_addr a = {.family = 4};
    char got[64], want[64];
    static const uint8_t edge[] = {0, 1, 9, 10, 11, 99, 100, 101, 199, 200, 249, 250, 255};
    size_t ne = sizeof edge;
    for (size_t i = 0; i < ne * ne * ne * ne; i++) {
        size_t k = i;
        for (int o = 0; o < 4; o++) {
            a.a[o] = edge[k % ne];
            k /= ne;
        }
        assert_non_null(inet_ntop(AF_INET, a.a, want, sizeof want));
        assert_string_equal(kw_addr_str(&a, got, sizeof got), want);
    }
    uint32_t x = 2463534242u; /* xorshift32 */
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        memcpy(a.a, &x, 4);
        inet_ntop(AF_INET, a.a, want, sizeof want);
        assert_string_equal(kw_addr_str(&a, got, sizeof got), want);
    }
    /* exactly large enough, and one byte short: nothing (as inet_ntop) */
    memcpy(a.a, "\xff\xff\xff\xff", 4);
    assert_string_equal(kw_addr_str(&a, got, 16), "255.255.255.255");
    assert_string_equal(kw_addr_str(&a, got, 15), "");
}

/* kw_jw_ms prints what "%.3f" of us / 1000.0 prints. */
static void test_jw_ms(void **state)
{
    (void)state;
    static const int64_t v[] = {0, 1, 9, 10, 999, 1000, 1001, 12345, -1, -999, -1000, -1500,
                                86400000000LL, 123456789012LL, -123456789012LL};
    char buf[128], want[64];
    for (size_t i = 0; i < sizeof v / sizeof v[0] + 100000; i++) {
        int64_t us = i < sizeof v / sizeof v[0] ? v[i] : (int64_t)(i * 7919 % 5000000) - 1000000;
        struct kw_jw w;
        kw_jw_init(&w, buf, sizeof buf);
        kw_jw_obj_begin(&w, NULL);
        kw_jw_ms(&w, "d", us);
        kw_jw_obj_end(&w);
        assert_true(kw_jw_ok(&w));
        char *q = want + snprintf(want, sizeof want, "{\"d\":");
        snprintf(q, sizeof want - (size_t)(q - want), "%.3f}", (double)us / 1000.0);
        assert_int_equal(w.len, strlen(want));
        assert_memory_equal(buf, want, w.len);
    }
}

/* kw_str's joins write what snprintf writes, at every buffer size from 1
 * byte up, cut or not: "%s%s", "%c:%s", "%s %.*s" and "%s:%u". */
static void test_str_joins(void **state)
{
    (void)state;
    uint32_t x = 88172645u;
    char a[40], b[40], got[64], want[64];
    for (int round = 0; round < 3000; round++) {
        size_t la = 0, lb = 0;
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        la = x % sizeof a;
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        lb = x % sizeof b;
        for (size_t i = 0; i < la; i++)
            a[i] = (char)('a' + (x >> (i % 24)) % 26);
        for (size_t i = 0; i < lb; i++)
            b[i] = (char)('A' + (x >> (i % 20)) % 26);
        a[la] = b[lb] = '\0';
        unsigned u = x % 70000;
        size_t prec = x % 12;
        for (size_t cap = 1; cap <= sizeof got; cap++) {
            char *e = got + cap;
            memset(got, 'Z', sizeof got);
            memset(want, 'Z', sizeof want);
            char *p = kw_stpecpy(kw_stpecpy(got, e, a), e, b);
            int n = snprintf(want, cap, "%s%s", a, b);
            assert_memory_equal(got, want, sizeof got);
            assert_int_equal(kw_str_len(got, e, p), (size_t)n < cap ? (size_t)n : cap - 1);
            memset(got, 'Z', sizeof got);
            memset(want, 'Z', sizeof want);
            kw_stpecpy(kw_stpechr(kw_stpechr(got, e, 'j'), e, ':'), e, a);
            snprintf(want, cap, "%c:%s", 'j', a);
            assert_memory_equal(got, want, sizeof got);
            memset(got, 'Z', sizeof got);
            memset(want, 'Z', sizeof want);
            kw_stpencpy(kw_stpecpy(kw_stpecpy(got, e, a), e, " "), e, b, prec);
            snprintf(want, cap, "%s %.*s", a, (int)prec, b);
            assert_memory_equal(got, want, sizeof got);
            memset(got, 'Z', sizeof got);
            memset(want, 'Z', sizeof want);
            kw_stpeu(kw_stpecpy(kw_stpecpy(got, e, b), e, ":"), e, u);
            snprintf(want, cap, "%s:%u", b, u);
            assert_memory_equal(got, want, sizeof got);
        }
    }
}

static void test_addr_hostport(void **state)
{
    struct kw_addr a;
    uint16_t port = 0;
    char buf[64];
    assert_true(kw_addr_parse_hostport("127.0.0.1:9753", &a, &port));
    assert_int_equal(port, 9753);
    assert_string_equal(kw_addr_str(&a, buf, sizeof buf), "127.0.0.1");
    assert_true(kw_addr_parse_hostport("[::1]:80", &a, &port));
    assert_int_equal(a.family, 6);
    assert_int_equal(port, 80);
    static const char *const bad[] = {"127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
                                      "::1:9753", "[::1]9753", "[::1]", "localhost:9753",
                                      ":9753", "127.0.0.1:97x", "127.0.0.1:+9", "[]:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(kw_addr_parse_hostport(bad[i], &a, &port));
}

static void test_ts_format(void **state)
{
    char buf[40];
    /* 2026-03-28T02:13:05.123456Z */
    kw_ts ts = KW_TS_SEC(1774663985) + 123456;
    assert_string_equal(kw_ts_format(ts, buf, sizeof buf), "2026-03-28T02:13:05.123456+0000");
    assert_string_equal(kw_ts_format_rfc3339(ts, buf, sizeof buf), "2026-03-28T02:13:05Z");
    assert_string_equal(kw_ts_format(-1, buf, sizeof buf), "1969-12-31T23:59:59.999999+0000");
    /* the hand-written formatter against gmtime_r, over leap years, century
     * rules and month ends */
    for (int64_t s = -86400LL * 800; s < 86400LL * 366 * 140; s += 86400 * 7 + 3607) {
        time_t t = (time_t)s;
        struct tm tm;
        char want[64];
        gmtime_r(&t, &tm);
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.000042+0000",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        assert_string_equal(kw_ts_format(KW_TS_SEC(s) + 42, buf, sizeof buf), want);
    }
}

static void test_reader(void **state)
{
    const uint8_t b[] = {0x12, 0x34, 0x56, 0x78, 0x9a};
    struct kw_rd r;
    kw_rd_init(&r, b, sizeof b);
    assert_int_equal(kw_rd_be16(&r), 0x1234);
    assert_int_equal(kw_rd_le16(&r), 0x7856);
    assert_true(kw_rd_ok(&r));
    assert_int_equal(kw_rd_be32(&r), 0); /* only one byte left */
    assert_false(kw_rd_ok(&r));
    assert_int_equal(kw_rd_left(&r), 0);
    assert_int_equal(kw_rd_u8(&r), 0);   /* stays bad */
}

/* got (kw_jw's text) is what jansson prints for o, compact, in order;
 * takes o's reference. */
static void assert_as_jansson(const char *got, json_t *o)
{
    char *want = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(got, want);
    free(want);
    json_decref(o);
}

/* kw_jw writes exactly what jansson writes for the same values, for every
 * kind of byte: random strings over a byte alphabet that mixes ASCII,
 * control characters, quotes, backslashes, valid and broken UTF-8. Half the
 * rounds are mostly plain letters with a rare special byte, up to 95 bytes
 * long, so the word-at-a-time scan meets specials at every position of a
 * word and words of plain bytes before and after them. */
static void test_jw_matches_jansson(void **state)
{
    static const uint8_t alphabet[] = {'a',  'Z',  '0',  ' ',  '"',  '\\', '/',  '\n', '\t',
                                       0x01, 0x1b, 0x0b, 0x00, 0x7f, 0xc3, 0xa9, 0xe2, 0x80,
                                       0xa6, 0xf0, 0x9f, 0x98, 0x80, 0xff, 0xed, 0xa0};
    uint64_t rng = 42;
    char buf[4096];
    for (int round = 0; round < 4000; round++) {
        uint8_t in[96];
        bool sparse = round & 1;
        size_t n = (size_t)(round % (sparse ? 96 : 48));
        for (size_t i = 0; i < n; i++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            uint64_t r = rng >> 33;
            in[i] = sparse && r % 16 ? (uint8_t)('a' + r % 26) : alphabet[r % sizeof alphabet];
        }
        struct kw_jw w;
        kw_jw_init(&w, buf, sizeof buf);
        kw_jw_obj_begin(&w, NULL);
        kw_jw_strn(&w, "k", (const char *)in, n);
        kw_jw_int(&w, "i", -(int64_t)round * 7919);
        kw_jw_int(&w, "m", round == 0 ? INT64_MIN : round == 1 ? INT64_MAX : round);
        kw_jw_arr_begin(&w, "a");
        kw_jw_bool(&w, NULL, round & 1);
        kw_jw_arr_end(&w);
        /* a key with bytes that need escaping (valid UTF-8: jansson's keys) */
        char key[24];
        size_t kl = 1 + (size_t)round % (sizeof key - 2);
        static const char kbytes[] = "abcxyz\"\\\n\x1b/";
        key[0] = '_'; /* no other member's name */
        for (size_t i = 1; i < kl; i++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            key[i] = kbytes[(rng >> 33) % (sizeof kbytes - 1)];
        }
        key[kl] = 0;
        kw_jw_int(&w, key, round);
        kw_jw_obj_end(&w);
        assert_true(kw_jw_ok(&w));

        json_t *o = json_object();
        json_object_set_new(o, "k", kw_json_bytes(in, n));
        json_object_set_new(o, "i", json_integer(-(json_int_t)round * 7919));
        json_object_set_new(o, "m", json_integer(round == 0   ? INT64_MIN
                                                 : round == 1 ? INT64_MAX
                                                              : round));
        json_object_set_new(o, "a", json_pack("[b]", round & 1));
        json_object_set_new(o, key, json_integer(round));
        assert_as_jansson(buf, o);
    }
}

/* One special byte at every position of plain strings of every length up
 * to 40, as a value and as a key: the word-at-a-time tests (whole words,
 * an overlapping last word, two overlapping halves under 8 bytes) must
 * see it wherever it is. */
static void test_jw_special_every_position(void **state)
{
    (void)state;
    static const uint8_t specials[] = {'"', '\\', '\n', 0x01, 0x1f, 0x7f, 0x80, 0xc3, 0xff};
    char buf[512];
    for (size_t n = 1; n <= 40; n++)
        for (size_t at = 0; at < n; at++)
            for (size_t k = 0; k < sizeof specials; k++) {
                uint8_t in[41];
                memset(in, 'q', n);
                in[at] = specials[k];
                in[n] = 0;
                bool key_ok = specials[k] < 0x80; /* jansson's keys are UTF-8 */
                struct kw_jw w;
                kw_jw_init(&w, buf, sizeof buf);
                kw_jw_obj_begin(&w, NULL);
                kw_jw_strn(&w, "v", (const char *)in, n);
                if (key_ok) kw_jw_int(&w, (const char *)in, 1);
                kw_jw_obj_end(&w);
                assert_true(kw_jw_ok(&w));
                json_t *o = json_object();
                json_object_set_new(o, "v", kw_json_bytes(in, n));
                if (key_ok) json_object_set_new(o, (const char *)in, json_integer(1));
                assert_as_jansson(buf, o);
            }
}

/* Whatever the buffer's size, the writer gives the whole text or says it
 * overflowed: never a cut text it calls good (the one-go key write checks
 * its room itself). */
static void test_jw_every_size(void **state)
{
    (void)state;
    char full[512], buf[512];
    size_t want = 0;
    for (size_t cap = sizeof buf; cap-- > 0;) {
        struct kw_jw w;
        kw_jw_init(&w, buf, cap);
        kw_jw_obj_begin(&w, NULL);
        kw_jw_str(&w, "hostname", "api.example.com");
        kw_jw_int(&w, "status", 200);
        kw_jw_str(&w, "url", "/v1/a\"b?q=\xc3\xa9\x01");
        kw_jw_arr_begin(&w, "flags");
        kw_jw_str(&w, NULL, "gap");
        kw_jw_arr_end(&w);
        kw_jw_ms(&w, "duration_ms", 1234);
        kw_jw_obj_end(&w);
        if (cap == sizeof buf - 1) {
            assert_true(kw_jw_ok(&w));
            want = w.len;
            memcpy(full, buf, want + 1);
        }
        assert_int_equal(kw_jw_ok(&w), cap > want);
        if (kw_jw_ok(&w)) assert_string_equal(buf, full);
    }
}

static void test_jw_overflow(void **state)
{
    char buf[16];
    struct kw_jw w;
    kw_jw_init(&w, buf, sizeof buf);
    kw_jw_obj_begin(&w, NULL);
    kw_jw_str(&w, "key", "a value longer than the buffer");
    kw_jw_obj_end(&w);
    assert_false(kw_jw_ok(&w));
    kw_jw_init(&w, buf, sizeof buf);
    kw_jw_obj_begin(&w, NULL); /* left open */
    assert_false(kw_jw_ok(&w));
}

/* kw_txn_clear leaves every field zero or empty, whatever was there. */
static void test_txn_clear(void **state)
{
    static struct kw_txn t;
    memset(&t, 0xa5, sizeof t);
    kw_txn_clear(&t);
    static const struct kw_txn zero;
    assert_memory_equal(&t, &zero, offsetof(struct kw_txn, hostname));
    assert_memory_equal(&t.status, &zero.status, sizeof t - offsetof(struct kw_txn, status));
    assert_string_equal(t.hostname, "");
    assert_string_equal(t.url, "");
    assert_string_equal(t.path, "");
    assert_string_equal(t.template_, "");
    assert_string_equal(t.user_agent, "");
}

/* kw_txn_pack/unpack carry every byte of a record: a field added to
 * kw_txn without a thought for the rings still arrives whole. Text after a
 * field's NUL is the only thing not carried. */
static void fill_random(void *p, size_t n, unsigned *seed)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(1 + rand_r(seed) % 255); /* no NUL: every text field full */
}

/* Ends a text field at a random length, zeroing what follows (the packed
 * form does not carry it; unpacking into zeros then gives the same bytes). */
#define CUT(t, f, seed)                                                                            \
    do {                                                                                           \
        size_t n_ = (size_t)rand_r(seed) % sizeof((t)->f);                                         \
        memset((t)->f + n_, 0, sizeof((t)->f) - n_);                                               \
    } while (0)

static void test_txn_pack(void **state)
{
    (void)state;
    static struct kw_txn a, b;
    static uint8_t buf[KW_TXN_PACKED_MAX];
    unsigned seed = 13;
    for (int round = 0; round < 200; round++) {
        fill_random(&a, sizeof a, &seed);
        if (round % 2) { /* every text field cut somewhere, as records are */
            CUT(&a, method, &seed);
            CUT(&a, protocol, &seed);
            CUT(&a, hostname, &seed);
            CUT(&a, url, &seed);
            CUT(&a, path, &seed);
            CUT(&a, template_, &seed);
            CUT(&a, user_agent, &seed);
            CUT(&a, ovr_url, &seed);
            CUT(&a, eff_path, &seed);
            CUT(&a, ovr_method, &seed);
            CUT(&a, eff_method, &seed);
            CUT(&a, grpc_message, &seed);
            CUT(&a, cred.source, &seed);
            CUT(&a, cred.fingerprint, &seed);
            CUT(&a, cred.hint, &seed);
            CUT(&a, cred.basic_user, &seed);
            CUT(&a, cred.jwt.iss, &seed);
            CUT(&a, cred.jwt.sub, &seed);
            CUT(&a, cred.jwt.aud, &seed);
            CUT(&a, cred.jwt.client_id, &seed);
            CUT(&a, cred.jwt.alg, &seed);
            CUT(&a, cred.jwt.scope, &seed);
            CUT(&a, cred.jwt.cnf_jkt, &seed);
            CUT(&a, cred.cert_subject, &seed);
            CUT(&a, cred.dpop.alg, &seed);
            CUT(&a, cred.dpop.htm, &seed);
            CUT(&a, cred.dpop.htu, &seed);
            CUT(&a, cred.dpop.jti, &seed);
            CUT(&a, cred.dpop.jkt, &seed);
            CUT(&a, cred.dpop.ath, &seed);
            CUT(&a, cred.dpop.error, &seed);
            CUT(&a, identity.id, &seed);
            CUT(&a, identity.name, &seed);
            CUT(&a, identity.kind, &seed);
            CUT(&a, tls.sni, &seed);
            CUT(&a, tls.ja4, &seed);
            CUT(&a, tls.version, &seed);
            memset(&b, 0, sizeof b);
        } else {
            memset(&b, 0x5a, sizeof b); /* full fields: every byte must be written */
        }
        size_t n = kw_txn_pack(&a, buf);
        assert_true(n <= KW_TXN_PACKED_MAX);
        assert_int_equal(kw_txn_unpack(&b, buf), n);
        assert_memory_equal(&a, &b, sizeof a);
    }
    /* an empty record is small: what the rings gain (fails when a large
     * text field is missing from kw_txn.c's list) */
    kw_txn_clear(&a);
    strcpy(a.method, "GET");
    strcpy(a.url, "/v1/orders/42");
    size_t n = kw_txn_pack(&a, buf);
    assert_true(n < 1024);
    memset(&b, 0x5a, sizeof b);
    assert_int_equal(kw_txn_unpack(&b, buf), n);
    assert_string_equal(b.url, "/v1/orders/42");
    assert_string_equal(b.path, "");
    assert_string_equal(b.identity.name, "");
    assert_int_equal(b.status, 0);
}

/* SipHash-1-3 of the reference implementation (github.com/veorq/SipHash,
 * built with cROUNDS=1 dROUNDS=3) under the all-zero key, as published in
 * other implementations' tests (OCaml's runtime, the digest-sip_hash
 * crate). */
static void test_siphash_vectors(void **state)
{
    (void)state;
    struct kw_hkey z = {0, 0};
    assert_true(kw_siphash(&z, "", 0) == 0xd1fba762150c532cull);
    assert_true(kw_siphash(&z, "siphash", 7) == 0x8264ceeccb16bcbeull);
    assert_true(kw_siphash(&z, "digest-sip_hash", 15) == 0xce31007e34130c0aull);
    /* incremental = one-shot at every split, lengths across word borders */
    uint8_t m[40];
    for (int i = 0; i < 40; i++)
        m[i] = (uint8_t)(i * 7 + 1);
    struct kw_hkey k = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
    for (size_t n = 0; n <= sizeof m; n++)
        for (size_t a = 0; a <= n; a++)
            for (size_t b = a; b <= n; b++) {
                struct kw_sip s;
                kw_sip_init(&s, &k);
                kw_sip_update(&s, m, a);
                kw_sip_update(&s, m + a, b - a);
                kw_sip_update(&s, m + b, n - b);
                assert_true(kw_sip_final(&s) == kw_siphash(&k, m, n));
            }
}

/* A record written with KW_JK keys is the record written with plain
 * keys, byte for byte, at every buffer size (both overflow at the same
 * sizes, and neither leaves a partial text it calls good). */
static size_t jw_both(char *buf, size_t cap, bool lit)
{
    struct kw_jw w;
    kw_jw_init(&w, buf, cap);
    kw_jw_obj_begin(&w, NULL);
    if (lit) {
        kw_jw_str_k(&w, KW_JK("timestamp"), "2026-12-06T19:00:00.000000+0000");
        kw_jw_int_k(&w, KW_JK("flow_id"), 1234567890123);
        kw_jw_int_k(&w, KW_JK("neg"), -42);
        kw_jw_str_opt_k(&w, KW_JK("skipped"), "");
        kw_jw_obj_begin_k(&w, KW_JK("http"));
        kw_jw_str_k(&w, KW_JK("url"), "/v1/a\"b\x01\xff?q=1");
        kw_jw_ms_k(&w, KW_JK("duration_ms"), 12345);
        kw_jw_bool_k(&w, KW_JK("decrypted"), true);
        kw_jw_arr_begin_k(&w, KW_JK("flags"));
        kw_jw_str(&w, NULL, "gap");
        kw_jw_int(&w, NULL, 7);
        kw_jw_arr_end(&w);
        kw_jw_obj_end(&w);
    } else {
        kw_jw_str(&w, "timestamp", "2026-12-06T19:00:00.000000+0000");
        kw_jw_int(&w, "flow_id", 1234567890123);
        kw_jw_int(&w, "neg", -42);
        kw_jw_str_opt(&w, "skipped", "");
        kw_jw_obj_begin(&w, "http");
        kw_jw_str(&w, "url", "/v1/a\"b\x01\xff?q=1");
        kw_jw_ms(&w, "duration_ms", 12345);
        kw_jw_bool(&w, "decrypted", true);
        kw_jw_arr_begin(&w, "flags");
        kw_jw_str(&w, NULL, "gap");
        kw_jw_int(&w, NULL, 7);
        kw_jw_arr_end(&w);
        kw_jw_obj_end(&w);
    }
    kw_jw_obj_end(&w);
    return kw_jw_ok(&w) ? w.len : SIZE_MAX;
}

static void test_jw_literal_keys(void **state)
{
    (void)state;
    char a[512], b[512];
    size_t full = jw_both(a, sizeof a, false);
    assert_true(full != SIZE_MAX);
    assert_non_null(strstr(a, "\"duration_ms\":12.345"));
    for (size_t cap = 0; cap <= full + 2; cap++) {
        memset(a, 'x', sizeof a);
        memset(b, 'y', sizeof b);
        size_t la = jw_both(a, cap, false), lb = jw_both(b, cap, true);
        assert_true(la == lb);
        if (la != SIZE_MAX) assert_memory_equal(a, b, la + 1); /* the NUL too */
        for (size_t i = cap; i < sizeof a; i++) /* nothing past the buffer */
            assert_true(a[i] == 'x' && b[i] == 'y');
        assert_true((la != SIZE_MAX) == (cap > full));
    }
}

/* SipHash-1-3 as the paper states it, a byte at a time: the reference the
 * word-wise kw_sip_update (partial words loaded in 4-, 2- and 1-byte
 * pieces) must equal for every length and every way of splitting. */
#define R64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
static uint64_t sip13_ref(const struct kw_hkey *k, const uint8_t *m, size_t n)
{
    uint64_t v[4] = {0x736f6d6570736575ull ^ k->k0, 0x646f72616e646f6dull ^ k->k1,
                     0x6c7967656e657261ull ^ k->k0, 0x7465646279746573ull ^ k->k1};
    uint64_t w = 0;
    for (size_t i = 0; i <= n; i++) {
        bool last = i == n;
        if (!last) w |= (uint64_t)m[i] << (8 * (i % 8));
        if (last) w |= (uint64_t)(n & 0xff) << 56;
        if (!last && i % 8 != 7) continue;
        int rounds = last ? 4 : 1; /* c = 1; the last block, then d = 3 */
        v[3] ^= w;
        for (int r = 0; r < rounds; r++) {
            if (r == 1) v[2] ^= 0xff;
            v[0] += v[1], v[1] = R64(v[1], 13), v[1] ^= v[0], v[0] = R64(v[0], 32);
            v[2] += v[3], v[3] = R64(v[3], 16), v[3] ^= v[2];
            v[0] += v[3], v[3] = R64(v[3], 21), v[3] ^= v[0];
            v[2] += v[1], v[1] = R64(v[1], 17), v[1] ^= v[2], v[2] = R64(v[2], 32);
            if (r == 0) v[0] ^= w;
        }
        w = 0;
    }
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static void test_siphash_reference(void **state)
{
    (void)state;
    struct kw_hkey z = {0, 0}, k = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
    /* the reference itself against the published vectors */
    assert_true(sip13_ref(&z, (const uint8_t *)"", 0) == 0xd1fba762150c532cull);
    assert_true(sip13_ref(&z, (const uint8_t *)"siphash", 7) == 0x8264ceeccb16bcbeull);
    assert_true(sip13_ref(&z, (const uint8_t *)"digest-sip_hash", 15) == 0xce31007e34130c0aull);
    uint8_t m[72];
    for (size_t i = 0; i < sizeof m; i++)
        m[i] = (uint8_t)(0xa5 ^ (i * 29));
    for (size_t n = 0; n <= sizeof m; n++) {
        uint64_t want = sip13_ref(&k, m, n);
        assert_true(kw_siphash(&k, m, n) == want);
        /* in pieces of every size, starting at every offset of a word */
        for (size_t piece = 1; piece <= 9; piece++)
            for (size_t first = 0; first < 8 && first <= n; first++) {
                struct kw_sip s;
                kw_sip_init(&s, &k);
                kw_sip_update(&s, m, first);
                for (size_t at = first; at < n; at += piece)
                    kw_sip_update(&s, m + at, n - at < piece ? n - at : piece);
                assert_true(kw_sip_final(&s) == want);
            }
    }
}

/* Two processes, two keys: each child draws its process key on first use
 * and sends it back; neither equals the other nor the parent's. */
static void test_hkey_per_process(void **state)
{
    (void)state;
    struct kw_hkey got[2];
    for (int c = 0; c < 2; c++) {
        int fd[2];
        assert_int_equal(pipe(fd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fd[0]);
            const struct kw_hkey *k = kw_hkey_process();
            _exit(write(fd[1], k, sizeof *k) == (ssize_t)sizeof *k && !kw_hkey_weak() ? 0 : 1);
        }
        close(fd[1]);
        assert_int_equal(read(fd[0], &got[c], sizeof got[c]), (ssize_t)sizeof got[c]);
        close(fd[0]);
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    const struct kw_hkey *mine = kw_hkey_process();
    assert_memory_not_equal(&got[0], &got[1], sizeof got[0]);
    assert_memory_not_equal(&got[0], mine, sizeof *mine);
    assert_memory_not_equal(&got[1], mine, sizeof *mine);
    assert_true(kw_hkey_process() == mine); /* drawn once */
    struct kw_hkey a = kw_hkey_random(), b = kw_hkey_random();
    assert_memory_not_equal(&a, &b, sizeof a);
}

/* Wire text for terminals: controls, DEL, bytes that are not UTF-8, C1
 * controls and bidi overrides escaped; UTF-8 text and backslashes kept. */
static void test_term_esc(void **state)
{
    (void)state;
    char out[256];
    assert_string_equal(kw_term_esc(out, sizeof out, "api\x1b]0;pwned\x07.acme"),
                        "api\\x1b]0;pwned\\x07.acme");
    assert_string_equal(kw_term_esc(out, sizeof out, "a\r\n\b\t\x7f"), "a\\x0d\\x0a\\x08\\x09\\x7f");
    assert_string_equal(kw_term_esc(out, sizeof out, "x\xc2\x9b" "31m"), "x\\u009b31m"); /* C1 CSI */
    assert_string_equal(kw_term_esc(out, sizeof out, "ua\xe2\x80\xaetxt.exe"), "ua\\u202etxt.exe");
    assert_string_equal(kw_term_esc(out, sizeof out, "\xe2\x81\xa6\xe2\x80\x8b"), "\\u2066\\u200b");
    assert_string_equal(kw_term_esc(out, sizeof out, "\xff\xc0\xae/"), "\\xff\\xc0\\xae/");
    assert_string_equal(kw_term_esc(out, sizeof out, "caf\xc3\xa9 \xe2\x82\xac \\x1b"), "caf\xc3\xa9 \xe2\x82\xac \\x1b");
    /* cut only between whole escapes or characters */
    assert_string_equal(kw_term_esc(out, 6, "ab\x1b"), "ab");
    assert_string_equal(kw_term_esc(out, 7, "ab\x1b"), "ab\\x1b");
    assert_string_equal(kw_term_esc(out, 4, "a\xc3\xa9\xc3\xa9"), "a\xc3\xa9");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    kw_term_fputs("\x1b[2Jok\xe2\x80\xae", f);
    fclose(f);
    assert_string_equal(buf, "\\x1b[2Jok\\u202e");
    free(buf);
}

/* kw_sha256 against FIPS 180-2's examples (appendix B: "abc", the
 * two-block message, a million 'a') and against OpenSSL over every length
 * to 300 bytes (both sides of each 64-byte block and the 55/56-byte
 * padding edge), each fed in two pieces split at every point. */
static void hex32(const uint8_t *h, char *out)
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", h[i]);
}

static void test_sha256(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } fips[] = {
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    };
    uint8_t h[32], o[32];
    char hex[65];
    for (size_t i = 0; i < sizeof fips / sizeof *fips; i++) {
        assert_true(kw_sha256(fips[i].in, strlen(fips[i].in), h));
        hex32(h, hex);
        assert_string_equal(hex, fips[i].want);
    }
    struct kw_sha256_ctx c;
    kw_sha256_init(&c);
    static char as[1000];
    memset(as, 'a', sizeof as);
    for (int i = 0; i < 1000; i++)
        kw_sha256_update(&c, as, sizeof as);
    kw_sha256_final(&c, h);
    hex32(h, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

    uint8_t buf[300];
    srand(13);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rand();
    for (size_t n = 0; n <= sizeof buf; n++) {
        unsigned ol = 0;
        assert_int_equal(EVP_Digest(buf, n, o, &ol, EVP_sha256(), NULL), 1);
        for (size_t cut = 0; cut <= n; cut++) {
            kw_sha256_init(&c);
            kw_sha256_update(&c, buf, cut);
            kw_sha256_update(&c, buf + cut, n - cut);
            kw_sha256_final(&c, h);
            assert_memory_equal(h, o, 32);
        }
    }
}

/* kw_wake: a notifier kicks only an announced waiter, once per
 * announcement, and the kick makes the eventfd readable. */
static void test_wake_kicks(void **state)
{
    (void)state;
    struct kw_wake w;
    assert_int_equal(kw_wake_init(&w), KW_E_OK);
    kw_wake_notify(&w); /* nobody waits: no system call */
    assert_int_equal(atomic_load(&w.kicks), 0);
    kw_wake_prepare(&w);
    kw_wake_notify(&w);
    kw_wake_notify(&w);
    assert_int_equal(atomic_load(&w.kicks), 1);
    struct pollfd p = {.fd = kw_wake_fd(&w), .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 1);
    kw_wake_wait(&w, -1); /* returns at once: drains the kick */
    assert_int_equal(poll(&p, 1, 0), 0);
    kw_wake_prepare(&w);
    kw_wake_cancel(&w);
    kw_wake_notify(&w);
    assert_int_equal(atomic_load(&w.kicks), 1);
    kw_wake_free(&w);
}

/* Two threads hand a counter back and forth 20,000 times, each sleeping
 * with no timeout until the other moved it: a lost wakeup hangs the test
 * (ctest's timeout fails it). */
struct pingpong {
    struct kw_wake wake[2];
    _Atomic unsigned turn; /* even: thread 0 moves it, odd: thread 1 */
};

enum { PINGPONG_ROUNDS = 20000 };

static void pingpong_run(struct pingpong *pp, unsigned me)
{
    for (unsigned i = 0; i < PINGPONG_ROUNDS; i++) {
        while (atomic_load(&pp->turn) % 2 != me) {
            kw_wake_prepare(&pp->wake[me]);
            if (atomic_load(&pp->turn) % 2 == me) {
                kw_wake_cancel(&pp->wake[me]);
                break;
            }
            kw_wake_wait(&pp->wake[me], -1);
        }
        atomic_fetch_add(&pp->turn, 1);
        kw_wake_notify(&pp->wake[!me]);
    }
}

static void *pingpong_thread(void *arg)
{
    pingpong_run(arg, 1);
    return NULL;
}

static void test_wake_pingpong(void **state)
{
    (void)state;
    struct pingpong pp;
    atomic_init(&pp.turn, 0);
    assert_int_equal(kw_wake_init(&pp.wake[0]), KW_E_OK);
    assert_int_equal(kw_wake_init(&pp.wake[1]), KW_E_OK);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, pingpong_thread, &pp), 0);
    pingpong_run(&pp, 0);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&pp.turn), 2 * PINGPONG_ROUNDS);
    kw_wake_free(&pp.wake[0]);
    kw_wake_free(&pp.wake[1]);
}

/* kw_cond: timed waits run on the monotonic clock. A deadline 200 ms
 * ahead on that clock is waited for (a condition on the wall clock, the
 * pthread default, would read the small monotonic value as a moment in
 * 1970 and time out at once), then ETIMEDOUT; a signal ends a wait with 0. */
struct cond_sig {
    pthread_mutex_t m;
    pthread_cond_t c;
    int flag;
};

static void *cond_signaller(void *arg)
{
    struct cond_sig *x = arg;
    usleep(20000);
    pthread_mutex_lock(&x->m);
    x->flag = 1;
    pthread_cond_signal(&x->c);
    pthread_mutex_unlock(&x->m);
    return NULL;
}

static void test_cond_monotonic(void **state)
{
    (void)state;
    struct cond_sig x = {.m = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(kw_cond_init(&x.c), 0);
    pthread_mutex_lock(&x.m);
    kw_ts t0 = kw_mono_now();
    int rc;
    do /* a wakeup may be spurious */
        rc = kw_cond_wait_until(&x.c, &x.m, t0 + 200000);
    while (rc == 0);
    assert_int_equal(rc, ETIMEDOUT);
    assert_true(kw_mono_now() - t0 >= 199000);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cond_signaller, &x), 0);
    rc = 0;
    while (!x.flag && rc == 0)
        rc = kw_cond_wait_until(&x.c, &x.m, kw_mono_now() + KW_TS_SEC(30));
    assert_int_equal(rc, 0);
    assert_int_equal(x.flag, 1);
    pthread_mutex_unlock(&x.m);
    pthread_join(th, NULL);
    pthread_cond_destroy(&x.c);
}

/* kw_thread_role: the kernel's view of the thread afterwards (its comm,
 * cut to 15 bytes, and its policy), read back from /proc. */
struct role_seen {
    const char *name;
    bool background;
    char comm[64];
    int policy;
};

static void *role_thread(void *arg)
{
    struct role_seen *r = arg;
    kw_thread_role(r->name, r->background);
    FILE *f = fopen("/proc/thread-self/comm", "r");
    if (f) {
        if (!fgets(r->comm, sizeof r->comm, f)) r->comm[0] = 0;
        fclose(f);
    }
    r->comm[strcspn(r->comm, "\n")] = 0;
    r->policy = sched_getscheduler(0);
    return NULL;
}

static void test_thread_role(void **state)
{
    (void)state;
    struct role_seen bg = {.name = "kw-db", .background = true};
    struct role_seen fg = {.name = "kw-worker-with-a-long-name", .background = false};
    pthread_t a, b;
    assert_int_equal(pthread_create(&a, NULL, role_thread, &bg), 0);
    assert_int_equal(pthread_create(&b, NULL, role_thread, &fg), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    assert_string_equal(bg.comm, "kw-db");
    assert_int_equal(bg.policy, SCHED_BATCH);
    assert_string_equal(fg.comm, "kw-worker-with-"); /* 15 bytes */
    assert_int_equal(fg.policy, SCHED_OTHER);
}

/* kw_thread_cpu: each named thread's CPU, summed by name, counted whether
 * the thread still runs or ended; a thread named twice is one thread. The
 * threads burn CPU until their own clock says so, so the sums have a floor
 * without any timing. */
struct burn {
    const char *name, *rename;
    double burnt;          /* what the thread's own clock read at the end */
    pthread_mutex_t *hold; /* held by the test until it has looked */
    _Atomic int done;      /* burnt is set */
};

static double thread_cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *burn_thread(void *arg)
{
    struct burn *b = arg;
    kw_thread_role(b->name, false);
    if (b->rename) kw_thread_role(b->rename, false);
    volatile uint64_t x = 0;
    while (thread_cpu_now() < 0.02)
        x++;
    b->burnt = thread_cpu_now();
    atomic_store(&b->done, 1);
    if (b->hold) {
        pthread_mutex_lock(b->hold);
        pthread_mutex_unlock(b->hold);
    }
    return NULL;
}

static const struct kw_thread_cpu *cpu_row(const struct kw_thread_cpu *t, size_t n,
                                           const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i].name, name)) return &t[i];
    return NULL;
}

static void test_thread_cpu(void **state)
{
    (void)state;
    kw_thread_main();
    pthread_mutex_t hold = PTHREAD_MUTEX_INITIALIZER;
    struct burn a1 = {.name = "kw-cpu-a"}, a2 = {.name = "kw-cpu-a"};
    struct burn b = {.name = "kw-cpu-x", .rename = "kw-cpu-b", .hold = &hold};
    pthread_t ta1, ta2, tb;
    pthread_mutex_lock(&hold);
    assert_int_equal(pthread_create(&ta1, NULL, burn_thread, &a1), 0);
    assert_int_equal(pthread_create(&ta2, NULL, burn_thread, &a2), 0);
    assert_int_equal(pthread_create(&tb, NULL, burn_thread, &b), 0);
    pthread_join(ta1, NULL);
    pthread_join(ta2, NULL);
    while (!atomic_load(&b.done)) /* b has burnt its share and now waits on hold */
        sched_yield();
    struct kw_thread_cpu t[64];
    size_t n = kw_thread_cpu(t, 64);
    const struct kw_thread_cpu *ra = cpu_row(t, n, "kw-cpu-a"), *rb = cpu_row(t, n, "kw-cpu-b");
    assert_non_null(ra);
    assert_int_equal(ra->threads, 2); /* both ended: their totals stay */
    assert_true(ra->seconds >= a1.burnt + a2.burnt - 1e-6);
    assert_non_null(rb); /* alive, under its second name only */
    assert_int_equal(rb->threads, 1);
    assert_true(rb->seconds >= b.burnt - 1e-6);
    assert_null(cpu_row(t, n, "kw-cpu-x"));
    assert_non_null(cpu_row(t, n, "main"));
    pthread_mutex_unlock(&hold);
    pthread_join(tb, NULL);
    n = kw_thread_cpu(t, 64);
    rb = cpu_row(t, n, "kw-cpu-b");
    assert_non_null(rb); /* ended now: counted once, from its own last reading */
    assert_int_equal(rb->threads, 1);
    assert_true(rb->seconds >= b.burnt - 1e-6);
    assert_int_equal(kw_thread_cpu(t, 1), 1); /* never more rows than asked */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_bytes),
        cmocka_unit_test(test_addr_prefix),
        cmocka_unit_test(test_addr_hostport),
        cmocka_unit_test(test_addr_str_ipv4),
        cmocka_unit_test(test_jw_ms),
        cmocka_unit_test(test_str_joins),
        cmocka_unit_test(test_cond_monotonic),
        cmocka_unit_test(test_ts_format),
        cmocka_unit_test(test_reader),
        cmocka_unit_test(test_jw_matches_jansson),
        cmocka_unit_test(test_jw_overflow),
        cmocka_unit_test(test_jw_every_size),
        cmocka_unit_test(test_jw_special_every_position),
        cmocka_unit_test(test_txn_clear),
        cmocka_unit_test(test_txn_pack),
        cmocka_unit_test(test_siphash_vectors),
        cmocka_unit_test(test_siphash_reference),
        cmocka_unit_test(test_jw_literal_keys),
        cmocka_unit_test(test_hkey_per_process),
        cmocka_unit_test(test_term_esc),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_wake_kicks),
        cmocka_unit_test(test_wake_pingpong),
        cmocka_unit_test(test_thread_role),
        cmocka_unit_test(test_thread_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
