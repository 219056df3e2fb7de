/* test_tls_decrypt: decryption of sessions made by a real TLS
 * implementation. OpenSSL's libssl runs a client and a server in memory
 * (memory BIOs; no network), its key log callback writes the NSS lines
 * (what SSLKEYLOGFILE gives), and every byte each side sends is recorded
 * in capture order. Fed to tls_conn, the application data we recover must
 * equal what the peers sent: TLS 1.3 with its three suites, TLS 1.2 with
 * AES-GCM, ChaCha20-Poly1305 and AES-CBC (encrypt-then-MAC and not),
 * client certificates (mTLS, encrypted in TLS 1.3), key updates, a lost
 * record (sequence recovery), and keys written after the records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "kw_exact.h"
#include "tls_conn.h"

/* ---- a certificate made here ------------------------------------------ */

static X509 *make_cert(EVP_PKEY *k, const char *cn)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Acme", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_sign(x, k, EVP_sha256());
    return x;
}

/* ---- the recorded session --------------------------------------------- */

struct seg {
    int dir;
    size_t off, len;
};

struct session {
    uint8_t wire[2][1 << 20];
    size_t wire_len[2];
    struct seg segs[4096];
    size_t n_segs;
    uint8_t sent[2][1 << 20]; /* application bytes each side wrote */
    size_t sent_len[2];
    char keylog[8192];
    size_t keylog_len;
    X509 *client_cert;
};

static void on_keylog(const SSL *s, const char *line)
{
    struct session *ss = SSL_get_app_data(s);
    size_t n = strlen(line);
    if (ss->keylog_len + n + 1 < sizeof ss->keylog) {
        memcpy(ss->keylog + ss->keylog_len, line, n);
        ss->keylog[ss->keylog_len + n] = '\n';
        ss->keylog_len += n + 1;
    }
}

/* Moves what `from` wrote to `to`, recording it as direction dir. */
static void pump(struct session *ss, SSL *from, SSL *to, int dir)
{
    uint8_t b[16384];
    int n;
    while ((n = BIO_read(SSL_get_wbio(from), b, sizeof b)) > 0) {
        assert_true(ss->wire_len[dir] + (size_t)n <= sizeof ss->wire[dir]);
        memcpy(ss->wire[dir] + ss->wire_len[dir], b, (size_t)n);
        ss->segs[ss->n_segs++] = (struct seg){dir, ss->wire_len[dir], (size_t)n};
        ss->wire_len[dir] += (size_t)n;
        BIO_write(SSL_get_rbio(to), b, n);
    }
}

static void drain_read(SSL *s)
{
    uint8_t b[65536];
    while (SSL_read(s, b, sizeof b) > 0)
        ;
}

static void send_app(struct session *ss, SSL *s, SSL *peer, int dir, size_t n, uint8_t fill)
{
    uint8_t *p = ss->sent[dir] + ss->sent_len[dir];
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(fill + i * 7);
    assert_int_equal(SSL_write(s, p, (int)n), (int)n);
    ss->sent_len[dir] += n;
    pump(ss, s, peer, dir);
    drain_read(peer);
    pump(ss, peer, s, !dir); /* NewSessionTicket, KeyUpdate answers */
}

struct opts {
    int version;         /* TLS1_2_VERSION / TLS1_3_VERSION */
    const char *ciphers; /* a TLS 1.2 list or TLS 1.3 suite */
    bool mtls, key_update, no_etm;
};

static void run_session(struct session *ss, const struct opts *o)
{
    memset(ss, 0, sizeof *ss);
    EVP_PKEY *sk = EVP_EC_gen("P-256"), *ck = EVP_EC_gen("P-256");
    X509 *sc = make_cert(sk, "api.acme.internal"), *cc = make_cert(ck, "acme-etl");
    SSL_CTX *sx = SSL_CTX_new(TLS_server_method()), *cx = SSL_CTX_new(TLS_client_method());
    for (int i = 0; i < 2; i++) {
        SSL_CTX *x = i ? cx : sx;
        SSL_CTX_set_min_proto_version(x, o->version);
        SSL_CTX_set_max_proto_version(x, o->version);
        if (o->version == TLS1_3_VERSION)
            SSL_CTX_set_ciphersuites(x, o->ciphers);
        else
            SSL_CTX_set_cipher_list(x, o->ciphers);
        if (o->no_etm)
            SSL_CTX_set_options(x, SSL_OP_NO_ENCRYPT_THEN_MAC);
    }
    SSL_CTX_use_certificate(sx, sc);
    SSL_CTX_use_PrivateKey(sx, sk);
    if (o->mtls) {
        SSL_CTX_use_certificate(cx, cc);
        SSL_CTX_use_PrivateKey(cx, ck);
        SSL_CTX_set_verify(sx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_cert_verify_callback(sx, (int (*)(X509_STORE_CTX *, void *))(void *)abs, NULL);
    }
    SSL_CTX_set_keylog_callback(cx, on_keylog);
    SSL *s = SSL_new(sx), *c = SSL_new(cx);
    SSL_set_app_data(c, ss);
    SSL_set_bio(s, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_bio(c, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    SSL_set_tlsext_host_name(c, "api.acme.internal");
    SSL_set_alpn_protos(c, (const unsigned char *)"\x08http/1.1", 9);
    for (int i = 0; i < 20 && (!SSL_is_init_finished(c) || !SSL_is_init_finished(s)); i++) {
        SSL_do_handshake(c);
        pump(ss, c, s, 0);
        SSL_do_handshake(s);
        pump(ss, s, c, 1);
    }
    assert_true(SSL_is_init_finished(c) && SSL_is_init_finished(s));
    send_app(ss, c, s, 0, 300, 'G');
    send_app(ss, s, c, 1, 40000, 'R'); /* three records */
    if (o->key_update) {
        assert_int_equal(SSL_key_update(c, SSL_KEY_UPDATE_REQUESTED), 1);
        send_app(ss, c, s, 0, 100, 'K');
        send_app(ss, s, c, 1, 5000, 'S');
    }
    send_app(ss, c, s, 0, 2000, 'P');
    send_app(ss, s, c, 1, 700, 'Q');
    ss->client_cert = o->mtls ? X509_dup(cc) : NULL;
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(sx);
    SSL_CTX_free(cx);
    X509_free(sc);
    X509_free(cc);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(ck);
}

/* ---- the analyzer side ------------------------------------------------ */

struct got {
    uint8_t data[2][1 << 20];
    size_t len[2];
    uint64_t gaps[2];
    struct tls_info info;
    int hs;
    size_t take; /* bytes the "parser" takes per call (0: all) */
};

static size_t on_data(void *u, int dir, const uint8_t *p, size_t n, kw_ts ts)
{
    struct got *g = u;
    size_t k = g->take && g->take < n ? g->take : n;
    memcpy(g->data[dir] + g->len[dir], p, k);
    g->len[dir] += k;
    return k;
}

static void on_gap(void *u, int dir, uint64_t n, kw_ts ts)
{
    ((struct got *)u)->gaps[dir] += n;
}

static void on_hs(void *u, const struct tls_info *i, kw_ts ts)
{
    struct got *g = u;
    g->hs++;
    g->info = *i;
}

/* Unconsumed bytes are offered again, always in an allocation of exactly
 * their length (kw_exact.h) so ASan sees any read past them. */
struct feed {
    struct tls_conn *c;
    struct kw_exact_buf buf[2];
};

static void feed(struct feed *f, int dir, const uint8_t *p, size_t n)
{
    struct kw_exact_buf *b = &f->buf[dir];
    kw_exact_append(b, p, n);
    size_t used = tls_conn_feed(f->c, dir, b->p, b->len, 1);
    assert_true(used <= b->len);
    kw_exact_consume(b, used);
}

/* Replays the session; `drop_record` removes the n-th server record of
 * application data (0 = none) and reports it as a gap. keys_late: the key
 * log is filled after the first half of the segments. */
static struct got *replay(struct session *ss, struct tls_ctx *x, int drop_record, bool keys_late)
{
    struct tls_keylog *kl;
    assert_int_equal(tls_keylog_new(0, &kl), KW_E_OK);
    tls_ctx_init(x, NULL, kl);
    if (!keys_late)
        for (char *l = ss->keylog, *e; (e = strchr(l, '\n')); l = e + 1)
            if (tls_keylog_add_line(kl, l, (size_t)(e - l)) < 0)
                fail_msg("bad key log line (test keys): %.*s", (int)(e - l), l);
    struct got *g = calloc(1, sizeof *g);
    struct feed *f = calloc(1, sizeof *f);
    struct tls_conn_cb cb = {g, on_data, on_gap, on_hs};
    f->c = tls_conn_new(x, &cb, false);
    int app_recs = 0;
    size_t pos[2] = {0, 0}, avail[2] = {0, 0};
    for (size_t i = 0; i < ss->n_segs; i++) {
        const struct seg *s = &ss->segs[i];
        int d = s->dir;
        const uint8_t *w = ss->wire[d];
        if (keys_late && i == ss->n_segs / 2)
            for (char *l = ss->keylog, *e; (e = strchr(l, '\n')); l = e + 1)
                tls_keylog_add_line(kl, l, (size_t)(e - l));
        avail[d] = s->off + s->len;
        /* the whole records this segment completes (one may span segments) */
        while (pos[d] + 5 <= avail[d]) {
            size_t rl = 5 + (size_t)(w[pos[d] + 3] << 8 | w[pos[d] + 4]);
            if (pos[d] + rl > avail[d])
                break;
            if (d == 1 && w[pos[d]] == 23 && g->hs && ++app_recs == drop_record) {
                tls_conn_gap(f->c, 1, rl, 1);
                kw_exact_clear(&f->buf[1]);
            } else {
                feed(f, d, w + pos[d], rl);
            }
            pos[d] += rl;
        }
    }
    tls_conn_close(f->c, 2);
    tls_conn_destroy(f->c);
    kw_exact_clear(&f->buf[0]);
    kw_exact_clear(&f->buf[1]);
    free(f);
    tls_keylog_destroy(kl);
    return g;
}

static void check_plain(struct session *ss, struct got *g)
{
    for (int d = 0; d < 2; d++) {
        assert_int_equal(g->len[d], ss->sent_len[d]);
        assert_memory_equal(g->data[d], ss->sent[d], ss->sent_len[d]);
    }
}

static void one(const struct opts *o)
{
    struct session *ss = malloc(sizeof *ss);
    run_session(ss, o);
    struct tls_ctx *x = calloc(1, sizeof *x);
    struct got *g = replay(ss, x, 0, false);
    assert_int_equal(g->hs, 1);
    assert_true(g->info.decrypted);
    assert_string_equal(g->info.ch.sni, "api.acme.internal");
    assert_int_equal(g->info.version, o->version == TLS1_3_VERSION ? 0x0304 : 0x0303);
    check_plain(ss, g);
    assert_int_equal(x->cnt.decrypt_failures, 0);
    /* the server certificate, in clear (1.2) or decrypted (1.3) */
    assert_string_equal(g->info.srv_cert.subject, "O=Acme, CN=api.acme.internal");
    if (o->mtls) {
        uint8_t *der = NULL;
        int n = i2d_X509(ss->client_cert, &der);
        unsigned char md[32];
        unsigned int ml;
        EVP_Digest(der, (size_t)n, md, &ml, EVP_sha256(), NULL);
        char hex[65];
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        assert_string_equal(g->info.cli_cert.sha256, hex);
        assert_string_equal(g->info.cli_cert.subject, "O=Acme, CN=acme-etl");
        OPENSSL_free(der);
    }
    if (o->key_update)
        assert_true(x->cnt.key_updates >= 2);
    free(g);
    free(x);
    X509_free(ss->client_cert);
    free(ss);
}

static void test_tls13_suites(void **st)
{
    (void)st;
    const char *s[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                       "TLS_CHACHA20_POLY1305_SHA256"};
    for (int i = 0; i < 3; i++)
        one(&(struct opts){TLS1_3_VERSION, s[i], false, false, false});
}

static void test_tls12_suites(void **st)
{
    (void)st;
    const char *s[] = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                       "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES128-SHA",
                       "ECDHE-ECDSA-AES256-SHA384"};
    for (int i = 0; i < 5; i++) {
        one(&(struct opts){TLS1_2_VERSION, s[i], false, false, false});
        if (i >= 3) /* CBC: MAC-then-encrypt as well as encrypt-then-MAC */
            one(&(struct opts){TLS1_2_VERSION, s[i], false, false, true});
    }
}

static void test_mtls_key_update(void **st)
{
    (void)st;
    one(&(struct opts){TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", true, true, false});
    one(&(struct opts){TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", true, false, false});
}

/* A lost server record: what follows still decrypts, the loss is a gap. */
static void test_loss(void **st)
{
    (void)st;
    const struct opts os[] = {{TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", false, false, false},
                              {TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305", false, false, false}};
    for (int k = 0; k < 2; k++) {
        struct session *ss = malloc(sizeof *ss);
        run_session(ss, &os[k]);
        struct tls_ctx *x = calloc(1, sizeof *x);
        /* TLS 1.3: record 1 is a NewSessionTicket; drop the 2nd of the 3
         * records of the 40000-byte answer */
        struct got *g = replay(ss, x, k == 0 ? 4 : 2, false);
        assert_int_equal(x->cnt.seq_recovered, 1);
        assert_true(g->gaps[1] > 0);
        assert_int_equal(g->len[0], ss->sent_len[0]);
        /* everything after the lost record arrived: the tail matches */
        assert_int_equal(g->len[1], ss->sent_len[1] - 16384);
        assert_memory_equal(g->data[1] + g->len[1] - 700, ss->sent[1] + ss->sent_len[1] - 700,
                            700);
        free(g);
        free(x);
        free(ss);
    }
}

/* Keys written after the session's first records (a live key log). */
static void test_keys_late(void **st)
{
    (void)st;
    struct session *ss = malloc(sizeof *ss);
    run_session(ss, &(struct opts){TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", false, false, false});
    struct tls_ctx *x = calloc(1, sizeof *x);
    struct got *g = replay(ss, x, 0, true);
    assert_true(x->cnt.records_waited > 0);
    check_plain(ss, g);
    free(g);
    free(x);
    free(ss);
}

/* Without keys: metadata only, and the handshake is still reported once. */
static void test_no_keys(void **st)
{
    (void)st;
    struct session *ss = malloc(sizeof *ss);
    run_session(ss, &(struct opts){TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", true, false, false});
    ss->keylog_len = 0;
    ss->keylog[0] = 0;
    struct tls_ctx *x = calloc(1, sizeof *x);
    struct got *g = replay(ss, x, 0, false);
    assert_int_equal(g->hs, 1);
    assert_false(g->info.decrypted);
    assert_int_equal(g->len[0] + g->len[1], 0);
    assert_int_equal(x->cnt.keys_missing, 1);
    assert_false(g->info.cli_cert.present); /* encrypted in TLS 1.3 */
    free(g);
    free(x);
    X509_free(ss->client_cert);
    free(ss);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls13_suites), cmocka_unit_test(test_tls12_suites),
        cmocka_unit_test(test_mtls_key_update), cmocka_unit_test(test_loss),
        cmocka_unit_test(test_keys_late), cmocka_unit_test(test_no_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
