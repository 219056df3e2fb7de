/* test_tls: the TLS library (analyzer/tls). Fingerprints against FoxIO's
 * published JA4/JA4S examples and tshark's JA3/JA3S of a corpus capture;
 * handshake and certificate fields of that capture fed in awkward splits;
 * the record layer's resynchronisation; the key log (parsing, bounds,
 * permissions, following a file). Decryption: test_tls_decrypt.c. */
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

#include "kw_exact.h"
#include "tls_conn.h"
#include "tls_fp.h"
#include "tls_hs.h"
#include "tls_keylog.h"
#include "tls_rec.h"

/* ---- JA4 / JA4S: the examples of FoxIO's spec ------------------------- */

static void put16(uint8_t *b, size_t *o, uint16_t v)
{
    b[(*o)++] = (uint8_t)(v >> 8);
    b[(*o)++] = (uint8_t)v;
}

/* A ClientHello body with the JA4 spec's lists in the order sent (JA4_ro). */
static size_t spec_client_hello(uint8_t *b)
{
    static const uint16_t ciphers[] = {0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c,
                                       0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c,
                                       0x009d, 0x002f, 0x0035};
    static const uint16_t exts[] = {0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017,
                                    0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b,
                                    0xff01, 0x000b, 0x000a, 0x0015};
    static const uint16_t sigs[] = {0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601};
    size_t o = 0;
    put16(b, &o, 0x0303);
    memset(b + o, 0x11, 32);
    o += 32;
    b[o++] = 0;
    put16(b, &o, (uint16_t)(2 * (1 + sizeof ciphers / 2)));
    put16(b, &o, 0x3a3a); /* GREASE, ignored */
    for (size_t i = 0; i < sizeof ciphers / 2; i++)
        put16(b, &o, ciphers[i]);
    b[o++] = 1;
    b[o++] = 0;
    size_t ext_len_at = o;
    o += 2;
    put16(b, &o, 0x0a0a); /* a GREASE extension, empty */
    put16(b, &o, 0);
    for (size_t i = 0; i < sizeof exts / 2; i++) {
        put16(b, &o, exts[i]);
        size_t len_at = o;
        o += 2;
        if (exts[i] == 0x0000) {
            put16(b, &o, 14);
            b[o++] = 0;
            put16(b, &o, 11);
            memcpy(b + o, "example.com", 11);
            o += 11;
        } else if (exts[i] == 0x0010) {
            put16(b, &o, 3);
            b[o++] = 2;
            b[o++] = 'h';
            b[o++] = '2';
        } else if (exts[i] == 0x000d) {
            put16(b, &o, sizeof sigs);
            for (size_t k = 0; k < sizeof sigs / 2; k++)
                put16(b, &o, sigs[k]);
        } else if (exts[i] == 0x002b) {
            b[o++] = 6;
            put16(b, &o, 0x7a7a);
            put16(b, &o, 0x0304);
            put16(b, &o, 0x0303);
        }
        size_t l = o - len_at - 2;
        b[len_at] = (uint8_t)(l >> 8);
        b[len_at + 1] = (uint8_t)l;
    }
    size_t l = o - ext_len_at - 2;
    b[ext_len_at] = (uint8_t)(l >> 8);
    b[ext_len_at + 1] = (uint8_t)l;
    return o;
}

static void test_ja4_spec(void **st)
{
    (void)st;
    uint8_t b[1024];
    size_t n = spec_client_hello(b);
    struct tls_client_hello h;
    assert_int_equal(tls_parse_client_hello(b, n, &h), 0);
    assert_string_equal(h.sni, "example.com");
    char ja4[TLS_JA4_LEN], raw[2048];
    tls_ja4(&h, false, ja4);
    assert_string_equal(ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
    tls_ja4(&h, true, ja4);
    assert_string_equal(ja4, "t13d1516h2_acb858a92679_18f69afefd3d");
    tls_ja4_raw(&h, false, raw, sizeof raw);
    assert_string_equal(raw, "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,"
                             "c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,"
                             "002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601");
    /* every truncation is refused (never over-read), but one: the hello
     * cut right after its compression methods is a valid hello without
     * extensions (RFC 5246 §7.4.1.2) */
    for (size_t k = 0; k < n; k++)
        assert_int_equal(tls_parse_client_hello(b, k, &h), k == 2 + 32 + 1 + 2 + 32 + 2 ? 0 : -1);
}

static void test_ja4s_spec(void **st)
{
    (void)st;
    uint8_t b[128];
    size_t o = 0;
    put16(b, &o, 0x0303);
    memset(b + o, 0x22, 32);
    o += 32;
    b[o++] = 0;
    put16(b, &o, 0xc030);
    b[o++] = 0;
    put16(b, &o, 16);
    static const uint16_t exts[] = {0x0005, 0x0017, 0xff01, 0x0000};
    for (int i = 0; i < 4; i++) {
        put16(b, &o, exts[i]);
        if (exts[i] == 0xff01) {
            put16(b, &o, 1);
            b[o++] = 0;
        } else {
            put16(b, &o, 0);
        }
    }
    struct tls_server_hello h;
    assert_int_equal(tls_parse_server_hello(b, o - 1, &h), -1);
    /* the spec's four extensions (renegotiation_info has a 1-byte body) */
    o = 0;
    put16(b, &o, 0x0303);
    memset(b + o, 0x22, 32);
    o += 32;
    b[o++] = 0;
    put16(b, &o, 0xc030);
    b[o++] = 0;
    put16(b, &o, 17);
    for (int i = 0; i < 4; i++) {
        put16(b, &o, exts[i]);
        put16(b, &o, exts[i] == 0xff01 ? 1 : 0);
        if (exts[i] == 0xff01)
            b[o++] = 0;
    }
    assert_int_equal(tls_parse_server_hello(b, o, &h), 0);
    char ja4s[TLS_JA4_LEN];
    tls_ja4s(&h, ja4s);
    assert_string_equal(ja4s, "t120400_c030_4e8089b08790");
}

/* ---- a corpus capture: tshark's fields as the oracle ------------------ */

/* Unconsumed bytes are offered again, always in an allocation of exactly
 * their length (kw_exact.h) so ASan sees any read past them. */
struct feeder {
    struct tls_conn *c;
    struct kw_exact_buf buf[2];
};

static void feed(struct feeder *f, int dir, const uint8_t *p, size_t n, kw_ts ts)
{
    struct kw_exact_buf *b = &f->buf[dir];
    kw_exact_append(b, p, n);
    size_t used = tls_conn_feed(f->c, dir, b->p, b->len, ts);
    assert_true(used <= b->len);
    kw_exact_consume(b, used);
}

static uint8_t *slurp(const char *name, size_t *n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/data/tls/%s", KW_TEST_DATA, name);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    uint8_t *b = malloc(1 << 20);
    *n = fread(b, 1, 1 << 20, fp);
    fclose(fp);
    return b;
}

struct hs_seen {
    int calls;
    struct tls_info info;
};

static void on_hs(void *u, const struct tls_info *i, kw_ts ts)
{
    struct hs_seen *s = u;
    s->calls++;
    s->info = *i;
}

static void test_arkime_capture(void **st)
{
    (void)st;
    size_t nc, ns;
    uint8_t *c = slurp("arkime-https-connect.client.bin", &nc);
    uint8_t *s = slurp("arkime-https-connect.server.bin", &ns);
    static const size_t steps[] = {100000, 1, 7, 333};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        struct tls_ctx *x = calloc(1, sizeof *x);
        tls_ctx_init(x, NULL, NULL);
        struct hs_seen seen = {0};
        struct tls_conn_cb cb = {.user = &seen, .on_handshake = on_hs};
        struct feeder *f = calloc(1, sizeof *f);
        f->c = tls_conn_new(x, &cb, false);
        /* capture order: ClientHello, the server's flight, the rest */
        for (size_t o = 0; o < 0x121; o += steps[k])
            feed(f, 0, c + o, (o + steps[k] < 0x121 ? steps[k] : 0x121 - o), 1);
        for (size_t o = 0; o < ns; o += steps[k])
            feed(f, 1, s + o, o + steps[k] < ns ? steps[k] : ns - o, 2);
        feed(f, 0, c + 0x121, nc - 0x121, 3);
        tls_conn_close(f->c, 4);
        assert_int_equal(seen.calls, 1);
        const struct tls_info *i = &seen.info;
        assert_false(i->ch.has_sni); /* tshark shows none either */
        assert_string_equal(i->ja3, "b288289af2999820648eb3ca4d8304c5");
        assert_string_equal(i->ja3s, "b7bd51222a09f3ad66a340710ae9c01a");
        assert_string_equal(i->ja3s_str, "771,49200,35-65281");
        assert_int_equal(i->version, 0x0303);
        assert_int_equal(i->sh.cipher, 0xc030);
        assert_true(i->srv_cert.present);
        assert_string_equal(i->srv_cert.sha1,
                            "1c:8a:39:c5:f7:18:dd:cb:6c:e0:da:9c:53:f9:c1:36:d2:37:15:07");
        assert_string_equal(i->srv_cert.subject,
                            "C=US, ST=California, L=Irvine, O=CrowdStrike, Inc., "
                            "CN=lfoup01-b.cloudsink.net");
        assert_string_equal(i->srv_cert.issuer, "C=US, O=DigiCert Inc, OU=www.digicert.com, "
                                                "CN=DigiCert SHA2 High Assurance Server CA");
        assert_string_equal(i->srv_cert.not_before, "2017-05-25T00:00:00");
        assert_string_equal(i->srv_cert.not_after, "2020-05-29T12:00:00");
        assert_string_equal(i->srv_cert.san[0], "lfoup01-b.cloudsink.net");
        assert_int_equal(strncmp(i->ja4, "t12i860500_", 11), 0);
        assert_int_equal(x->cnt.bad_handshake, 0);
        tls_conn_destroy(f->c);
        kw_exact_clear(&f->buf[0]);
        kw_exact_clear(&f->buf[1]);
        free(f);
        free(x);
    }
    free(c);
    free(s);
}

/* ---- record layer ----------------------------------------------------- */

static void test_resync(void **st)
{
    (void)st;
    uint8_t b[64] = {0};
    /* junk, then two records back to back */
    memcpy(b, "\x16\x03\x03\xff\xff junk", 10);
    const uint8_t r1[] = {0x17, 0x03, 0x03, 0x00, 0x02, 0xaa, 0xbb};
    memcpy(b + 10, r1, sizeof r1);
    memcpy(b + 17, r1, sizeof r1);
    assert_int_equal(tls_rec_resync(b, 24), 10);
    struct tls_rec_hdr h;
    assert_int_equal(tls_rec_header(b + 10, 14, &h), 1);
    assert_int_equal(h.len, 2);
    assert_int_equal(tls_rec_header((const uint8_t *)"GET / H", 7, &h), -1);
    assert_int_equal(tls_rec_looks_tls((const uint8_t *)"\x16\x03\x01\x00\x10\x01", 6, false), 1);
    assert_int_equal(tls_rec_looks_tls((const uint8_t *)"\x16\x03", 2, false), -1);
    assert_int_equal(tls_rec_looks_tls((const uint8_t *)"\x17\x03\x03\x00\x10", 5, false), 0);
    assert_int_equal(tls_rec_looks_tls((const uint8_t *)"\x17\x03\x03\x00\x10", 5, true), 1);
}

/* ---- key log ---------------------------------------------------------- */

static const char CR1[] = "0101010101010101010101010101010101010101010101010101010101010101";

/* A key log line as the parser gets it: an exact-size heap copy. */
static int keylog_line_x(struct tls_keylog *kl, const char *line)
{
    size_t n = strlen(line);
    uint8_t *b = kw_exact_dup(line, n);
    int r = tls_keylog_add_line(kl, (const char *)b, n);
    free(b);
    return r;
}

static void test_keylog_lines(void **st)
{
    (void)st;
    struct tls_keylog *kl;
    assert_int_equal(tls_keylog_new(2, &kl), KW_E_OK);
    char line[512];
    snprintf(line, sizeof line, "CLIENT_RANDOM %s %096d\n", CR1, 7);
    assert_int_equal(keylog_line_x(kl, line), 1);
    assert_int_equal(tls_keylog_add_line(kl, "# comment", 9), 0);
    assert_int_equal(tls_keylog_add_line(kl, "CLIENT_RANDOM 12 34", 19), -1);
    snprintf(line, sizeof line, "CLIENT_EARLY_TRAFFIC_SECRET %s %064d", CR1, 1);
    assert_int_equal(keylog_line_x(kl, line), 0);
    snprintf(line, sizeof line, "SERVER_TRAFFIC_SECRET_0 %s %063dz", CR1, 1);
    assert_int_equal(keylog_line_x(kl, line), -1);
    uint8_t cr[32];
    memset(cr, 1, 32);
    struct tls_secrets s;
    assert_true(tls_keylog_lookup(kl, cr, &s));
    assert_true(s.have & TLS_SEC_MASTER);
    assert_int_equal(s.master[47], 0x07);
    /* bounded: two more sessions push the first out */
    for (int i = 2; i <= 3; i++) {
        snprintf(line, sizeof line, "CLIENT_RANDOM %064d %096d", i, i);
        assert_int_equal(keylog_line_x(kl, line), 1);
    }
    assert_false(tls_keylog_lookup(kl, cr, &s));
    struct tls_keylog_counters n;
    tls_keylog_get_counters(kl, &n);
    assert_int_equal(n.evicted, 1);
    assert_int_equal(n.bad_lines, 2);
    assert_int_equal(n.ignored_labels, 1);
    tls_keylog_destroy(kl);
}

static void test_keylog_files(void **st)
{
    (void)st;
    char dir[] = "/tmp/kw_tls_XXXXXX", path[128], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/keys.log", dir);
    FILE *fp = fopen(path, "w");
    fprintf(fp, "CLIENT_RANDOM %s %096d\nCLIENT_RANDOM %064d", CR1, 1, 5); /* 2nd line partial */
    fclose(fp);
    struct tls_keylog *kl;
    assert_int_equal(tls_keylog_new(0, &kl), KW_E_OK);
    chmod(path, 0644);
    assert_int_equal(tls_keylog_add_path(kl, path, true, err, sizeof err), KW_E_CONFIG);
    assert_non_null(strstr(err, "chmod o-rwx"));
    chmod(path, 0600);
    assert_int_equal(tls_keylog_add_path(kl, path, true, err, sizeof err), KW_E_OK);
    uint64_t g = tls_keylog_generation(kl);
    fp = fopen(path, "a");
    fprintf(fp, " %096d\n", 5); /* completes the partial line */
    fclose(fp);
    assert_int_equal(tls_keylog_poll(kl), 1);
    assert_true(tls_keylog_generation(kl) > g);
    uint8_t cr[32] = {0};
    cr[31] = 0x05;
    struct tls_secrets s;
    assert_true(tls_keylog_lookup(kl, cr, &s));
    /* rotation: a new file under the same name is read from its start */
    unlink(path);
    fp = fopen(path, "w");
    fprintf(fp, "CLIENT_RANDOM %064d %096d\n", 9, 9);
    fclose(fp);
    chmod(path, 0600);
    assert_int_equal(tls_keylog_poll(kl), 1);
    /* a directory: files appearing in it are followed */
    snprintf(path, sizeof path, "%s/d", dir);
    mkdir(path, 0700);
    assert_int_equal(tls_keylog_add_path(kl, path, true, err, sizeof err), KW_E_OK);
    snprintf(path, sizeof path, "%s/d/a.log", dir);
    fp = fopen(path, "w");
    fprintf(fp, "CLIENT_RANDOM %064d %096d\n", 8, 8);
    fclose(fp);
    chmod(path, 0600);
    assert_int_equal(tls_keylog_poll(kl), 1);
    tls_keylog_destroy(kl);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ja4_spec),
        cmocka_unit_test(test_ja4s_spec),
        cmocka_unit_test(test_arkime_capture),
        cmocka_unit_test(test_resync),
        cmocka_unit_test(test_keylog_lines),
        cmocka_unit_test(test_keylog_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
