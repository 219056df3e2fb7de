/* Unit tests of the alerts module's pure parts: retry classification,
 * backoff bounds, Retry-After, HMAC signatures, UTF-8

 * truncation, TZif time zones, Slack Block Kit limits and digest text,
 * the kind table, and the alert record and human line against the jansson
 * path they replaced. No network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "al_util.h"
#include "alerts_int.h"
#include "kw_addr.h"
#include "kw_eve.h"
#include "kw_jw.h"
#include "kw_sha256.h"
#include "kw_term.h"

static void test_classify(void **state)
{
    static const struct {
        int code;
        long status;
        enum al_action want;
    } cases[] = {
        {0, 200, AL_DONE},      {0, 204, AL_DONE},      {0, 500, AL_RETRY},
        {0, 503, AL_RETRY},     {0, 429, AL_RETRY},     {0, 408, AL_RETRY},
        {0, 400, AL_PERMANENT}, {0, 403, AL_PERMANENT}, {0, 404, AL_PERMANENT},
        {0, 301, AL_PERMANENT}, {7, 0, AL_RETRY},       {28, 0, AL_RETRY},
        {52, 0, AL_RETRY},      {0, 0, AL_RETRY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(al_classify(cases[i].code, cases[i].status), cases[i].want);
}

static void test_backoff_bounds(void **state)
{
    uint64_t rng = 42;
    long max_seen = 0;
    for (unsigned attempt = 1; attempt < 40; attempt++)
        for (int k = 0; k < 50; k++) {
            long ms = al_backoff_ms(attempt, 1000, 300000, &rng);
            long ceil_ms = attempt < 20 ? 1000L << (attempt - 1) : 300000;
            if (ceil_ms > 300000) ceil_ms = 300000;
            assert_true(ms >= 0 && ms <= ceil_ms);
            if (ms > max_seen) max_seen = ms;
        }
    assert_true(max_seen > 150000); /* the cap is reached, jitter spreads */
}

static void test_retry_after(void **state)
{
    time_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    assert_int_equal(al_retry_after_ms("120", now), 120000);
    assert_int_equal(al_retry_after_ms(" 0", now), 0);
    assert_int_equal(al_retry_after_ms("Sun, 06 Nov 1994 08:49:47 GMT", now), 10000);
    assert_int_equal(al_retry_after_ms("Sun, 06 Nov 1994 08:49:00 GMT", now), 0);
    assert_int_equal(al_retry_after_ms("soon", now), -1);
    assert_int_equal(al_retry_after_ms("12abc", now), -1);
    assert_int_equal(al_retry_after_ms("", now), -1);
    assert_int_equal(al_retry_after_ms(NULL, now), -1);
}

/* The signed message is ts "." body; the expected value comes from an
 * independent implementation:
 *   printf '1700000000.{}' | openssl dgst -sha256 -hmac Jefe */
static void test_hmac_signature(void **state)
{
    char sig[80];
    assert_true(al_sign("Jefe", "1700000000", "{}", 2, sig));
    assert_string_equal(sig,
                        "sha256=d3793e2b4103edfbd98cc19591832f5fad701d413db9fcae0ae7dab8184ed207");
    assert_true(al_sign("Jefe", "1700000001", "{}", 2, sig)); /* the timestamp is signed */
    assert_string_not_equal(
        sig, "sha256=d3793e2b4103edfbd98cc19591832f5fad701d413db9fcae0ae7dab8184ed207");
    char h[65];
    al_sha256_hex("abc", 3, h); /* FIPS 180-2 example */
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_utf8_trunc(void **state)
{
    char s[64];
    snprintf(s, sizeof s, "abc\xc3\xa9\xc3\xa9\xc3\xa9"); /* abcééé, 9 bytes */
    size_t n = al_utf8_trunc(s, 8);
    assert_true(n <= 8);
    assert_string_equal(s, "abc\xc3\xa9\xe2\x80\xa6"); /* cut before the 2nd é */
    snprintf(s, sizeof s, "short");
    assert_int_equal(al_utf8_trunc(s, 8), 5);
    snprintf(s, sizeof s, "ab\xe2\x82"); /* a cut 3-byte sequence at the end */
    assert_int_equal(al_utf8_trunc(s, 30), 2);
    json_t *j = json_string(s);
    assert_non_null(j);
    json_decref(j);
}

static void test_tz(void **state)
{
    int off;
    char abbr[16], buf[96];
    assert_true(al_tz_offset("Asia/Kolkata", 1774664000, &off, abbr));
    assert_int_equal(off, 19800);
    assert_string_equal(abbr, "IST");
    assert_true(al_tz_offset("America/New_York", 1768000000, &off, abbr)); /* Jan 2026 */
    assert_int_equal(off, -18000);
    assert_string_equal(abbr, "EST");
    assert_true(al_tz_offset("America/New_York", 1782000000, &off, abbr)); /* Jun 2026 */
    assert_int_equal(off, -14400);
    assert_string_equal(abbr, "EDT");
    assert_false(al_tz_offset("Mars/Olympus", 0, &off, abbr));
    assert_false(al_tz_offset("../../etc/passwd", 0, &off, abbr));
    assert_true(al_tz_format("Asia/Kolkata", 1774664000, buf, sizeof buf));
    assert_string_equal(buf, "2026-03-28 07:43 IST (UTC+05:30)");
}

/* Every truncation and a corrupted count of a real TZif file: never a read
 * out of bounds (ASan run), and false whenever the data is cut short. */
static void test_tzif_corrupt(void **state)
{
    FILE *f = fopen("/usr/share/zoneinfo/America/New_York", "rb");
    assert_non_null(f);
    static unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    int off;
    char abbr[16];
    assert_true(al_tzif_lookup(buf, n, 1782000000, &off, abbr));
    for (size_t cut = 0; cut < n; cut++) {
        unsigned char *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        bool ok = al_tzif_lookup(copy, cut, 1782000000, &off, abbr);
        free(copy);
        if (cut < n - 64) /* the footer may be cut without losing data */
            assert_false(ok && cut < 44);
    }
    buf[32] = 0x7f; /* a huge v1 timecnt (bytes 32..35) */
    assert_false(al_tzif_lookup(buf, n, 1782000000, &off, abbr));
}

static json_t *big_record(void)
{
    /* a 10 KB summary of 2-byte characters and a hostile path */
    char *sum = malloc(10001);
    for (int i = 0; i < 5000; i++)
        memcpy(sum + 2 * i, "\xc3\xa9", 2);
    sum[10000] = 0;
    json_t *r =
        json_pack("{s:s,s:s,s:s,s:i,s:s,s:i,s:{s:s,s:s,s:s,s:i,s:s,s:s,s:i,s:s},"
                  "s:{s:s,s:s,s:s},s:{s:s,s:s},s:{s:s,s:s}}",
                  "timestamp", "2026-03-28T02:13:20.000000+0000", "event_type", "alert", "src_ip",
                  "10.0.0.5", "src_port", 40000, "dest_ip", "10.0.0.9", "dest_port", 80, "alert",
                  "kind", "off_hours", "signature", "Sig", "category", "policy", "severity", 1,
                  "summary", sum, "rule", "r.yaml:1", "count", 1, "id", "abc", "identity", "id",
                  "c01", "name", "Acme", "kind", "contractor", "http", "http_method", "GET", "url",
                  "/<!channel>&`x`", "evidence", "expected", "mon-fri", "observed", "sat");
    free(sum);
    return r;
}

static void test_slack_limits(void **state)
{
    json_t *rec = big_record();
    assert_non_null(rec);
    json_t *m = al_slack_alert(rec, "Asia/Kolkata");
    assert_non_null(m);
    const char *text = json_string_value(json_object_get(m, "text"));
    assert_non_null(text);
    assert_true(strlen(text) <= 3000);
    assert_non_null(strstr(text, "[high] off_hours by c01"));
    json_t *blocks = json_object_get(m, "blocks");
    assert_true(json_array_size(blocks) > 0 && json_array_size(blocks) <= 50);
    size_t i;
    json_t *b;
    char *all = json_dumps(m, 0);
    assert_null(strstr(all, "<!channel>")); /* escaped, no mention */
    assert_non_null(strstr(all, "&lt;!channel&gt;"));
    assert_non_null(strstr(all, "07:43 IST (UTC+05:30)"));
    assert_non_null(strstr(all, "keywarden audit --identity c01 --since 2026-03-28T01:13:20Z"));
    free(all);
    json_array_foreach(blocks, i, b)
    {
        json_t *t = json_object_get(json_object_get(b, "text"), "text");
        if (t) assert_true(strlen(json_string_value(t)) <= 3000);
        json_t *f, *fields = json_object_get(b, "fields");
        size_t k;
        assert_true(json_array_size(fields) <= 10);
        json_array_foreach(fields, k, f)
            assert_true(strlen(json_string_value(json_object_get(f, "text"))) <= 2000);
    }
    json_decref(m);
    json_decref(rec);
}

static void test_digest(void **state)
{
    struct al_digest d;
    memset(&d, 0, sizeof d);
    for (int i = 0; i < 30; i++)
        al_digest_add(&d, "off_hours", "c01", 2, KW_TS_SEC(1000 + i));
    for (int i = 0; i < 7; i++)
        al_digest_add(&d, "out_of_scope", "c03", 1, KW_TS_SEC(900));
    json_t *m = al_slack_digest(&d);
    const char *t = json_string_value(json_object_get(m, "text"));
    assert_string_equal(t, "37 more alerts (67 findings): 30 off_hours c01, 7 out_of_scope c03");
    assert_int_equal(json_array_size(json_object_get(m, "blocks")), 3);
    json_decref(m);
}

static void test_kinds(void **state)
{
    for (int k = 0; k < ALERT__COUNT; k++) {
        assert_int_equal(alert_kind_from_name(alert_kind_name((enum alert_kind)k)), k);
        int s = alert_kind_default_severity((enum alert_kind)k);
        assert_true(s >= 1 && s <= 3);
    }
    assert_int_equal(alert_kind_from_name("nope"), -1);
    assert_string_equal(alert_kind_name(ALERT_KEY_SHARING), "key_sharing");
}

static void test_sink_filter_and_key(void **state)
{
    struct alerts_sink_cfg s;
    alerts_sink_default(&s, ALERTS_SINK_WEBHOOK);
    s.min_severity = 2;
    assert_true(al_sink_accepts(&s, ALERT_OFF_HOURS, 1));
    assert_true(al_sink_accepts(&s, ALERT_OFF_HOURS, 2));
    assert_false(al_sink_accepts(&s, ALERT_OFF_HOURS, 3));
    s.kinds_mask = 1u << ALERT_OUT_OF_SCOPE;
    assert_false(al_sink_accepts(&s, ALERT_OFF_HOURS, 1));
    assert_true(al_sink_accepts(&s, ALERT_OUT_OF_SCOPE, 1));
    char k1[40], k2[40];
    snprintf(s.url, sizeof s.url, "https://hooks.slack.com/services/T/B/secretpart");
    alerts_sink_key(&s, k1);
    assert_null(strstr(k1, "secretpart"));
    assert_int_equal(strncmp(k1, "webhook:", 8), 0);
    snprintf(s.url, sizeof s.url, "https://hooks.slack.com/services/T/B/other");
    alerts_sink_key(&s, k2);
    assert_string_not_equal(k1, k2);
}

/* ---- the alert record and its human line, against the jansson path ----
 * The record used to be a jansson tree (the transaction's parts parsed back
 * from kw_jw text, the finding's strings through kw_json_bytes) dumped
 * compact, and the human line read its fields back from that tree. These
 * oracles are that path; the record now written directly must give the same
 * bytes, and the line the same text, for any bytes in the strings. */

static json_t *oracle_record(const struct alert_finding *f, int sev, const char *id)
{
    const struct kw_txn *t = f->txn;
    json_t *r = kw_eve_txn_header(t, "alert", f->ts);
    json_t *a = json_object();
    json_object_set_new(a, "kind", json_string(alert_kind_name(f->kind)));
    json_object_set_new(a, "signature", json_string(al_kind_signature(f->kind)));
    json_object_set_new(a, "category", json_string(alert_kind_category(f->kind)));
    json_object_set_new(a, "severity", json_integer(sev));
    kw_json_set_bytes(a, "summary", (const uint8_t *)f->summary,
                      strnlen(f->summary, sizeof f->summary));
    if (f->rule[0])
        kw_json_set_bytes(a, "rule", (const uint8_t *)f->rule, strnlen(f->rule, sizeof f->rule));
    kw_json_set_bytes(a, "subject", (const uint8_t *)f->subject,
                      strnlen(f->subject, sizeof f->subject));
    json_object_set_new(a, "count", json_integer(1));
    json_object_set_new(a, "id", json_string(id));
    json_object_set_new(r, "alert", a);
    json_t *o;
    if ((o = kw_eve_identity_obj(t))) json_object_set_new(r, "identity", o);
    if ((o = kw_eve_cred_obj(t))) json_object_set_new(r, "credential", o);
    json_object_set_new(r, "http", kw_eve_http_obj(t));
    if (f->evidence) json_object_set(r, "evidence", f->evidence);
    return r;
}

static void oracle_line(const json_t *rec, char *buf, size_t len)
{
    const json_t *a = json_object_get(rec, "alert");
    const json_t *h = json_object_get(rec, "http");
    const json_t *who = json_object_get(json_object_get(rec, "identity"), "id");
    const char *sv = al_severity_name((int)json_integer_value(json_object_get(a, "severity")));
    char req[1200] = "";
    const char *method = json_string_value(json_object_get(h, "http_method"));
    if (method && snprintf(req, sizeof req, "%s %s%s -> %lld: ", method,
                           json_string_value(json_object_get(h, "hostname")) ?: "",
                           json_string_value(json_object_get(h, "url")) ?: "",
                           (long long)json_integer_value(json_object_get(h, "status"))) < 0)
        req[0] = 0;
    char raw[2048];
    if (snprintf(raw, sizeof raw, "%s ALERT %s %s %s %s%s [id %s]",
                 json_string_value(json_object_get(rec, "timestamp")) ?: "?", sv,
                 json_string_value(json_object_get(a, "kind")) ?: "?",
                 who ? json_string_value(who) : "-", req,
                 json_string_value(json_object_get(a, "summary")) ?: "",
                 json_string_value(json_object_get(a, "id")) ?: "?") < 0)
        raw[0] = 0;
    kw_term_esc(buf, len, raw);
}

static uint64_t rng_next(uint64_t *r)
{
    *r = *r * 6364136223846793005ULL + 1442695040888963407ULL;
    return *r >> 33;
}

/* n bytes drawn from what a wire string can hold that JSON writers treat
 * differently: quotes, backslash, '/', control characters (with and
 * without a short escape), DEL, valid and broken UTF-8. */
static void fill(uint64_t *r, char *dst, size_t cap, size_t n)
{
    static const uint8_t alphabet[] = {'a',  'Z',  '0',  ' ',  '"',  '\\', '/',  '\n', '\t', 0x01,
                                       0x1b, 0x0b, 0x1f, 0x7f, 0xc3, 0xa9, 0xe2, 0x80, 0xa6, 0xf0,
                                       0x9f, 0x98, 0x80, 0xff, 0xed, 0xa0, 0xc0, '%'};
    if (n >= cap) n = cap - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)alphabet[rng_next(r) % sizeof alphabet];
    dst[n] = 0;
}

static void random_txn(uint64_t *r, struct kw_txn *t, int round)
{
    memset(t, 0, sizeof *t);
    t->flow_id = rng_next(r) << 20;
    t->ts = KW_TS_SEC(1774252800) + (kw_ts)rng_next(r);
    t->resp_ts = round % 4 ? t->ts + (kw_ts)(rng_next(r) % (round % 3 ? 5000000 : 900)) : 0;
    kw_addr_parse(round & 1 ? "10.4.174.63" : "2001:db8::7", &t->src);
    kw_addr_parse("10.20.0.10", &t->dst);
    t->sport = (uint16_t)rng_next(r);
    t->dport = 8080;
    t->vlan = round % 5 == 0 ? 42 : 0;
    t->status = round % 6 ? (uint16_t)(100 + rng_next(r) % 500) : 0;
    t->resp_len = rng_next(r);
    fill(r, t->method, sizeof t->method, round % 7 ? 1 + rng_next(r) % 8 : 0);
    fill(r, t->protocol, sizeof t->protocol, 8);
    fill(r, t->hostname, sizeof t->hostname, rng_next(r) % 300);
    /* up to the whole url: the line is cut at its end, the record not */
    fill(r, t->url, sizeof t->url, round % 10 == 0 ? sizeof t->url : rng_next(r) % 2000);
    fill(r, t->path, sizeof t->path, rng_next(r) % 200);
    fill(r, t->template_, sizeof t->template_, rng_next(r) % 50);
    fill(r, t->user_agent, sizeof t->user_agent, rng_next(r) % 80);
    if (round % 3) {
        t->cred.kind = (uint8_t)(1 + round % 6);
        fill(r, t->cred.source, sizeof t->cred.source, 20);
        fill(r, t->cred.fingerprint, sizeof t->cred.fingerprint, 71);
        fill(r, t->cred.hint, sizeof t->cred.hint, 12);
        fill(r, t->cred.basic_user, sizeof t->cred.basic_user, rng_next(r) % 30);
        fill(r, t->cred.jwt.iss, sizeof t->cred.jwt.iss, rng_next(r) % 40);
        fill(r, t->cred.jwt.sub, sizeof t->cred.jwt.sub, rng_next(r) % 40);
        t->cred.jwt.has_exp = round & 2;
        t->cred.jwt.exp = (int64_t)rng_next(r);
    }
    if (round % 4 == 1) {
        fill(r, t->identity.id, sizeof t->identity.id, 1 + rng_next(r) % 60);
        fill(r, t->identity.name, sizeof t->identity.name, rng_next(r) % 60);
        snprintf(t->identity.kind, sizeof t->identity.kind, "service");
        snprintf(t->identity.via, sizeof t->identity.via, round & 8 ? "jwt" : "credential");
    }
}

static void test_record_matches_jansson(void **state)
{
    (void)state;
    uint64_t rng = 7;
    struct kw_txn *t = malloc(sizeof *t);
    char *buf = malloc(AL_RECORD_CAP);
    assert_non_null(t);
    assert_non_null(buf);
    for (int round = 0; round < 400; round++) {
        random_txn(&rng, t, round);
        struct alert_finding f = {
            .kind = (enum alert_kind)(round % ALERT__COUNT), .ts = t->ts, .txn = t};
        fill(&rng, f.summary, sizeof f.summary,
             round % 9 == 0 ? sizeof f.summary : rng_next(&rng) % 400);
        fill(&rng, f.subject, sizeof f.subject, rng_next(&rng) % 300);
        fill(&rng, f.rule, sizeof f.rule, round & 1 ? rng_next(&rng) % 40 : 0);
        char ev[64];
        fill(&rng, ev, sizeof ev, 30);
        f.evidence = round % 5 ? json_pack("{s:s,s:o,s:f}", "expected", "a credential", "observed",
                                           kw_json_bytes((const uint8_t *)ev, strlen(ev)), "ratio",
                                           0.1 * round)
                               : NULL;
        int sev = 1 + round % 3;
        const char *id = "3fc32e1123d2afcf525ade82a5ed6983";

        struct kw_jw w;
        kw_jw_init(&w, buf, AL_RECORD_CAP);
        al_record_write(&w, &f, sev, id);
        assert_true(kw_jw_ok(&w));
        json_t *want = oracle_record(&f, sev, id);
        char *wtext = json_dumps(want, JSON_COMPACT);
        assert_non_null(wtext);
        /* the one difference from the jansson path: duration_ms reads
         * "%.3f" as in the EVE http records, not the double jansson prints
         * back (0.27500000000000002) */
        char *gd = strstr(buf, "\"duration_ms\":"), *wd = strstr(wtext, "\"duration_ms\":");
        assert_true((gd == NULL) == (wd == NULL));
        if (gd) {
            char ms[40];
            long long us = (long long)(t->resp_ts - t->ts);
            snprintf(ms, sizeof ms, "\"duration_ms\":%.3f", (double)us / 1000.0);
            assert_memory_equal(gd, ms, strlen(ms));
            size_t gl = strlen(ms), wl = strcspn(wd + 14, ",}") + 14;
            assert_int_equal(gd - buf, wd - wtext);
            assert_string_equal(gd + gl, wd + wl); /* the rest, byte for byte */
            *gd = *wd = 0;
        }
        assert_string_equal(buf, wtext); /* before it */
        if (gd) *gd = '"';
        /* and it is JSON whose strings read back as the values the jansson
         * path held (with the oracle, that also checks the oracle) */
        json_t *back = json_loadb(buf, w.len, 0, NULL);
        assert_non_null(back);
        assert_true(json_equal(back, want));

        char tsb[40], got[1024], exp[1024];
        struct al_line hl = {.ts = kw_ts_format(f.ts, tsb, sizeof tsb),
                             .sev = sev,
                             .kind = f.kind,
                             .who = t->identity.id,
                             .t = t,
                             .summary = f.summary,
                             .summary_len = strnlen(f.summary, sizeof f.summary),
                             .id = id};
        al_human_line(&hl, got, sizeof got);
        oracle_line(want, exp, sizeof exp);
        assert_string_equal(got, exp);
        free(wtext);
        json_decref(back);
        json_decref(want);
        json_decref(f.evidence);
    }
    free(buf);
    free(t);
}

/* A record that does not fit is refused whole, never cut. */
static void test_record_overflow(void **state)
{
    (void)state;
    struct kw_txn *t = calloc(1, sizeof *t);
    assert_non_null(t);
    snprintf(t->url, sizeof t->url, "/v1/orders");
    struct alert_finding f = {.kind = ALERT_OFF_HOURS, .txn = t};
    char small[300];
    for (size_t cap = 1; cap < sizeof small; cap += 37) {
        struct kw_jw w;
        kw_jw_init(&w, small, cap);
        al_record_write(&w, &f, 2, "x");
        assert_false(kw_jw_ok(&w));
    }
    free(t);
}

/* The suppression window's key is SHA-256 of "kind NUL who NUL subject"
 * whatever the thread's memo holds: 300 findings (far more than its 64
 * slots, so slots are shared and replaced), asked in three rounds in
 * different orders, one subject too long for a slot, against the digest
 * of the text laid out here. */
static void test_window_key_memo(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++)
        for (int j = 0; j < 300; j++) {
            int i = round == 1 ? 299 - j : (j * 7) % 300;
            char who[96], subject[600], text[1024];
            snprintf(who, sizeof who, "cred:sha256:%064x", i % 40);
            if (i == 17)
                memset(subject, 'x', 500), subject[500] = 0;
            else
                snprintf(subject, sizeof subject, "GET /v1/items/{id} %d", i / 40);
            enum alert_kind k = (enum alert_kind)(i % 3);
            size_t n = 0;
            const char *part[3] = {alert_kind_name(k), who, subject};
            for (int p = 0; p < 3; p++) {
                size_t l = strlen(part[p]);
                memcpy(text + n, part[p], l);
                n += l;
                if (p < 2) text[n++] = 0;
            }
            uint8_t want[32], got[32];
            assert_true(kw_sha256(text, n, want));
            al_window_key(k, who, subject, got);
            assert_memory_equal(got, want, 32);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_hmac_signature),
        cmocka_unit_test(test_utf8_trunc),
        cmocka_unit_test(test_tz),
        cmocka_unit_test(test_tzif_corrupt),
        cmocka_unit_test(test_slack_limits),
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_sink_filter_and_key),
        cmocka_unit_test(test_record_matches_jansson),
        cmocka_unit_test(test_record_overflow),
        cmocka_unit_test(test_window_key_memo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
