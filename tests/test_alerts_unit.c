/* Unit tests of the alerts module's pure parts: retry classification,
 * backoff bounds, Retry-After, HMAC signatures, UTF-8

 * truncation, TZif time zones, Slack Block Kit limits and digest text,
 * and the kind table. No network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "al_util.h"
#include "alerts_int.h"

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
