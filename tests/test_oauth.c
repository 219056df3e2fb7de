/* test_oauth (issue 17): real JWTs and DPoP proofs, minted here with
 * libcrypto (ES256, ES384, RS256, PS256, EdDSA), go through the real
 * credential extraction (headers as a request carries them), the rules
 * loader and the policy judge. Each incident yields its finding (kind,
 * subject, what the summary says) and correct traffic yields none; the
 * JWK thumbprint matches RFC 7638's own example; nothing in a kw_txn holds
 * the token or the proof. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cred.h"
#include "dpop.h"
#include "judge_policy.h"
#include "jwt.h"
#include "kw_exact.h"
#include "oauth_mint.h"

#define NOW 1772500000LL /* 2026-03-03T01:06:40Z */
#define ISS "https://idp.acme.test"

/* ---- plumbing ------------------------------------------------------------ */

#define MAXF 32
struct rec {
    size_t n;
    struct {
        enum alert_kind kind;
        int severity;
        char subject[256], summary[1024];
    } f[MAXF];
};

static void record(void *user, struct alert_finding *f)
{
    struct rec *r = user;
    if (r->n < MAXF) {
        r->f[r->n].kind = f->kind;
        r->f[r->n].severity = f->severity;
        snprintf(r->f[r->n].subject, 256, "%s", f->subject);
        snprintf(r->f[r->n].summary, 1024, "%s", f->summary);
        r->n++;
    }
    json_decref(f->evidence);
}

static size_t count_kind(const struct rec *r, enum alert_kind k)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->f[i].kind == k;
    return n;
}

static const char *summary_of(const struct rec *r, enum alert_kind k)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->f[i].kind == k) return r->f[i].summary;
    return "";
}

static const char rules_text[] =
    "scopes:\n"
    "  \"POST /v1/refunds\": refunds:write\n"
    "  \"GET /v1/orders/*\": { any_of: [ orders:read, [ orders:admin, audit ] ] }\n"
    "  \"POST /acme.orders.v1.Orders/Cancel\": [ orders:write, orders:cancel ]\n"
    "identities:\n"
    "  - id: c01\n"
    "    name: Acme Data Ltd\n"
    "    credentials: [ { jwt: { iss: \"" ISS "\", sub: c01 } } ]\n"
    "    max_scopes: [ \"orders:*\", refunds:write, audit ]\n"
    "    session: { max_age: 8h }\n"
    "  - id: c02\n"
    "    name: Beta Ltd\n"
    "    credentials: [ { sha256: "
    "\"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\" } ]\n"
    "    session: { max_age: 1h }\n"
    "detections:\n"
    "  dpop: { window: 2m }\n";

struct fx {
    struct rules_model *m;
    struct judge_policy *jp;
    struct cred_config cc;
    struct rec r;
    EVP_PKEY *idp; /* the issuer's key (tokens) */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct rules_diag d;
    rules_diag_init(&d);
    if (rules_load_mem(NULL, NULL, "rules.d/oauth.yaml", rules_text, &f->m, &d) != KW_E_OK) {
        rules_diag_print(&d, stderr);
        return -1;
    }
    rules_diag_free(&d);
    f->jp = judge_policy_new(NULL);
    cred_config_default(&f->cc);
    f->idp = mint_key("RS256");
    *state = f;
    return f->jp && f->idp ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    judge_policy_destroy(f->jp);
    rules_model_free(f->m);
    EVP_PKEY_free(f->idp);
    free(f);
    return 0;
}

/* An access token of c01 with these extra claims ("" for none). */
static char *token(struct fx *f, const char *extra)
{
    char pl[1024];
    snprintf(pl, sizeof pl, "{\"iss\":\"" ISS "\",\"sub\":\"c01\",\"iat\":%lld,\"exp\":%lld%s%s}",
             NOW - 600, NOW + 3000, extra[0] ? "," : "", extra);
    return mint_jws(f->idp, "RS256", "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", pl);
}

/* What parsers are fed: exact-size heap copies (kw_exact.h), so a read
 * past a value is an ASan report rather than a peek at its NUL. Held
 * until ex_free(). */
static uint8_t *ex_own[16];
static size_t ex_n;

static struct kw_slice ex(const char *s)
{
    size_t n = strlen(s);
    assert_true(ex_n < sizeof ex_own / sizeof *ex_own);
    ex_own[ex_n] = kw_exact_dup(s, n);
    return (struct kw_slice){(const char *)ex_own[ex_n++], n};
}

static void ex_free(void)
{
    while (ex_n)
        free(ex_own[--ex_n]);
}

static bool jwt_decode_x(const char *s, size_t n, struct kw_jwt_claims *c)
{
    (void)n;
    bool ok = jwt_decode(ex(s).p, strlen(s), c);
    ex_free();
    return ok;
}

static void dpop_parse_x(const char *s, size_t n, struct kw_dpop *d)
{
    (void)n;
    dpop_parse(ex(s).p, strlen(s), d);
    ex_free();
}

/* A transaction as the pipeline makes it: the credential from the real
 * headers, then the request line's facts. */
static void txn(struct fx *f, struct kw_txn *t, const char *method, const char *target,
                const char *authz, const char *dpop, int status, long long when)
{
    memset(t, 0, sizeof *t);
    struct kw_hdr h[4];
    size_t n = 0;
    h[n++] = (struct kw_hdr){ex("Host"), ex("api.acme.test")};
    if (authz) h[n++] = (struct kw_hdr){ex("Authorization"), ex(authz)};
    if (dpop) h[n++] = (struct kw_hdr){ex("DPoP"), ex(dpop)};
    cred_extract(&f->cc, h, n, ex(target), &t->cred);
    ex_free();
    t->ts = KW_TS_SEC(when);
    kw_addr_parse("203.0.113.3", &t->src);
    kw_addr_parse("10.0.0.1", &t->dst);
    snprintf(t->method, sizeof t->method, "%s", method);
    snprintf(t->hostname, sizeof t->hostname, "api.acme.test");
    snprintf(t->url, sizeof t->url, "%s", target);
    snprintf(t->path, sizeof t->path, "%.*s", (int)strcspn(target, "?"), target);
    t->status = status;
}

static void judge(struct fx *f, struct kw_txn *t)
{
    f->r.n = 0;
    const struct rules_identity *id = rules_attribute_txn(f->m, t);
    judge_policy_check(f->jp, f->m, id, t, record, &f->r);
}

/* No byte string of the secret anywhere in the struct. */
static void assert_no_secret(const struct kw_txn *t, const char *secret)
{
    size_t n = strlen(secret) < 40 ? strlen(secret) : 40;
    const char *mid = secret + strlen(secret) / 2 - n / 2;
    assert_null(memmem(t, sizeof *t, mid, n));
}

/* ---- claims ------------------------------------------------------------- */

static void test_claims(void **state)
{
    struct fx *f = *state;
    char *tok = token(f, "\"scope\":\"orders:read audit orders:read\",\"scp\":[\"refunds:write\"],"
                         "\"roles\":[\"ops\"],\"auth_time\":1772490000,"
                         "\"cnf\":{\"jkt\":\"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I\"}");
    struct kw_jwt_claims c;
    assert_true(jwt_decode_x(tok, strlen(tok), &c));
    assert_true(c.has_scope);
    assert_string_equal(c.scope, "orders:read audit refunds:write ops");
    assert_true(c.has_auth_time);
    assert_int_equal(c.auth_time, 1772490000);
    assert_string_equal(c.cnf_jkt, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    free(tok);
    tok = token(f, "");
    assert_true(jwt_decode_x(tok, strlen(tok), &c));
    assert_false(c.has_scope);
    free(tok);
    tok = token(f, "\"scope\":\"\"");
    assert_true(jwt_decode_x(tok, strlen(tok), &c));
    assert_true(c.has_scope); /* a grant of nothing is still a statement */
    assert_string_equal(c.scope, "");
    free(tok);
}

/* RFC 7638 §3.1: the example RSA key and its thumbprint. */
static void test_thumbprint_rfc7638(void **state)
{
    (void)state;
    static const char jwk[] =
        "{\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1"
        "RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf"
        "0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbIS"
        "D08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJ"
        "zKnqDKgw\",\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";
    char out[48];
    assert_true(dpop_jwk_thumbprint(jwk, strlen(jwk), out));
    assert_string_equal(out, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    assert_false(dpop_jwk_thumbprint("{\"kty\":\"EC\",\"x\":\"AA\"}", 22, out));
}

/* Every algorithm verifies; a flipped payload byte does not; the
 * thumbprint is the one computed independently from the same key. */
static void test_dpop_parse(void **state)
{
    (void)state;
    const char *algs[] = {"ES256", "ES384", "RS256", "PS256", "EdDSA"};
    for (size_t i = 0; i < sizeof algs / sizeof *algs; i++) {
        EVP_PKEY *k = mint_key(algs[i]);
        assert_non_null(k);
        char *p = mint_dpop(k, algs[i], "POST", "https://api.acme.test/v1/refunds", NOW, "j-1",
                            "tok");
        struct kw_dpop d;
        dpop_parse_x(p, strlen(p), &d);
        assert_int_equal(d.state, KW_DPOP_PARSED);
        assert_true(d.sig_valid);
        assert_string_equal(d.htm, "POST");
        assert_string_equal(d.htu, "https://api.acme.test/v1/refunds");
        assert_int_equal(d.iat, NOW);
        assert_true(d.has_ath);
        char jkt[48];
        mint_jkt(k, jkt);
        assert_string_equal(d.jkt, jkt);
        /* tamper with the signature: still a readable proof, not a valid one */
        char *sig = strrchr(p, '.') + 10;
        *sig = *sig == 'A' ? 'B' : 'A';
        dpop_parse_x(p, strlen(p), &d);
        assert_int_equal(d.state, KW_DPOP_PARSED);
        assert_false(d.sig_valid);
        free(p);
        EVP_PKEY_free(k);
    }
}

static void test_dpop_refused_forms(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *k = mint_key("ES256");
    char *jwk = mint_jwk(k), hdr[1024];
    struct kw_dpop d;
    /* typ JWT */
    snprintf(hdr, sizeof hdr, "{\"typ\":\"JWT\",\"alg\":\"ES256\",\"jwk\":%s}", jwk);
    char *p = mint_jws(k, "ES256", hdr, "{\"jti\":\"a\",\"htm\":\"GET\",\"htu\":\"https://x/\",\"iat\":1}");
    dpop_parse_x(p, strlen(p), &d);
    assert_int_equal(d.state, KW_DPOP_BAD);
    assert_string_equal(d.error, "typ is not dpop+jwt");
    free(p);
    /* no jti */
    snprintf(hdr, sizeof hdr, "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":%s}", jwk);
    p = mint_jws(k, "ES256", hdr, "{\"htm\":\"GET\",\"htu\":\"https://x/\",\"iat\":1}");
    dpop_parse_x(p, strlen(p), &d);
    assert_int_equal(d.state, KW_DPOP_BAD);
    free(p);
    /* HS256 (symmetric) */
    p = mint_jws(f->idp, "RS256", "{\"typ\":\"dpop+jwt\",\"alg\":\"HS256\",\"jwk\":{}}",
                 "{\"jti\":\"a\",\"htm\":\"GET\",\"htu\":\"https://x/\",\"iat\":1}");
    dpop_parse_x(p, strlen(p), &d);
    assert_int_equal(d.state, KW_DPOP_BAD);
    free(p);
    /* a private key in the header */
    snprintf(hdr, sizeof hdr,
             "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":{\"kty\":\"EC\",\"d\":\"AA\"}}");
    p = mint_jws(k, "ES256", hdr, "{\"jti\":\"a\",\"htm\":\"GET\",\"htu\":\"https://x/\",\"iat\":1}");
    dpop_parse_x(p, strlen(p), &d);
    assert_int_equal(d.state, KW_DPOP_BAD);
    free(p);
    dpop_parse("garbage", 7, &d);
    assert_int_equal(d.state, KW_DPOP_BAD);
    free(jwk);
    EVP_PKEY_free(k);
}

/* ---- scopes --------------------------------------------------------------- */

static void test_scopes(void **state)
{
    struct fx *f = *state;
    struct kw_txn t;
    char authz[4096];
    char *tok = token(f, "\"scope\":\"orders:read\"");
    snprintf(authz, sizeof authz, "Bearer %s", tok);

    /* needs refunds:write; answered 201: the API did not enforce it */
    txn(f, &t, "POST", "/v1/refunds", authz, NULL, 201, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.f[0].kind, ALERT_SCOPE_NOT_GRANTED_ACCEPTED);
    assert_string_equal(f->r.f[0].subject, "POST /v1/refunds");
    assert_non_null(strstr(f->r.f[0].summary, "without \"refunds:write\""));
    assert_non_null(strstr(f->r.f[0].summary, "answered 201"));
    assert_non_null(strstr(f->r.f[0].summary, "c01 Acme Data Ltd"));
    assert_no_secret(&t, tok);

    /* refused: low */
    txn(f, &t, "POST", "/v1/refunds", authz, NULL, 403, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.f[0].kind, ALERT_SCOPE_NOT_GRANTED);

    /* a 404 says nothing about authorization */
    txn(f, &t, "POST", "/v1/refunds", authz, NULL, 404, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 0);

    /* any_of: orders:read alone is enough */
    txn(f, &t, "GET", "/v1/orders/17", authz, NULL, 200, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 0);
    free(tok);

    /* the other alternative needs both grants */
    tok = token(f, "\"scp\":[\"orders:admin\"]");
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    txn(f, &t, "GET", "/v1/orders/17", authz, NULL, 200, NOW);
    judge(f, &t);
    assert_int_equal(count_kind(&f->r, ALERT_SCOPE_NOT_GRANTED_ACCEPTED), 1);
    free(tok);
    tok = token(f, "\"scp\":[\"orders:admin\",\"audit\"]");
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    txn(f, &t, "GET", "/v1/orders/17", authz, NULL, 200, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 0);
    free(tok);

    /* gRPC paths are endpoints as they are */
    tok = token(f, "\"scope\":\"orders:write\"");
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    txn(f, &t, "POST", "/acme.orders.v1.Orders/Cancel", authz, NULL, 200, NOW);
    judge(f, &t);
    assert_int_equal(count_kind(&f->r, ALERT_SCOPE_NOT_GRANTED_ACCEPTED), 1);
    free(tok);

    /* a JWT with no grant claim at all, or an opaque token: not judged,
     * counted */
    struct judge_policy_counters c0, c1;
    judge_policy_get_counters(f->jp, &c0);
    tok = token(f, "");
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    txn(f, &t, "POST", "/v1/refunds", authz, NULL, 201, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 0);
    txn(f, &t, "POST", "/v1/refunds", "Bearer opaque-token-0123456789abcdef", NULL, 201, NOW);
    judge(f, &t);
    assert_int_equal(count_kind(&f->r, ALERT_SCOPE_NOT_GRANTED_ACCEPTED), 0);
    judge_policy_get_counters(f->jp, &c1);
    assert_int_equal(c1.scopes_unknown - c0.scopes_unknown, 2);
    free(tok);
}

static void test_escalation(void **state)
{
    struct fx *f = *state;
    struct kw_txn t;
    char authz[4096];
    char *tok = token(f, "\"scope\":\"orders:read orders:write audit\"");
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    txn(f, &t, "GET", "/v1/orders/1", authz, NULL, 200, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 0); /* orders:* covers both */
    free(tok);
    tok = token(f, "\"scope\":\"orders:read admin:users payments:write\"");
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    txn(f, &t, "GET", "/v1/orders/1", authz, NULL, 200, NOW);
    judge(f, &t);
    assert_int_equal(count_kind(&f->r, ALERT_SCOPE_ESCALATION), 1);
    const char *s = summary_of(&f->r, ALERT_SCOPE_ESCALATION);
    assert_non_null(strstr(s, "2 grants beyond its cap"));
    assert_non_null(strstr(s, "\"admin:users payments:write\""));
    free(tok);
}

/* ---- session age -------------------------------------------------------- */

static void test_session_age(void **state)
{
    struct fx *f = *state;
    struct kw_txn t;
    char authz[4096];
    /* auth_time 9 h before: past the 8 h limit */
    char extra[128];
    snprintf(extra, sizeof extra, "\"scope\":\"orders:read\",\"auth_time\":%lld",
             NOW - 9 * 3600);
    char *tok = token(f, extra);
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    txn(f, &t, "GET", "/v1/orders/1", authz, NULL, 200, NOW);
    judge(f, &t);
    assert_int_equal(count_kind(&f->r, ALERT_SESSION_TOO_OLD), 1);
    assert_non_null(strstr(summary_of(&f->r, ALERT_SESSION_TOO_OLD), "authenticated at"));
    /* refused: the API did its job */
    txn(f, &t, "GET", "/v1/orders/1", authz, NULL, 401, NOW);
    judge(f, &t);
    assert_int_equal(count_kind(&f->r, ALERT_SESSION_TOO_OLD), 0);
    free(tok);
    /* iat 10 min before (token()): fine */
    tok = token(f, "\"scope\":\"orders:read\"");
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    txn(f, &t, "GET", "/v1/orders/1", authz, NULL, 200, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 0);
    free(tok);

    /* an opaque token of c02 (1 h limit), aged from first sight */
    const char *key = "Bearer test"; /* sha256("test") is c02's fingerprint */
    txn(f, &t, "GET", "/v1/orders/1", key, NULL, 200, NOW);
    judge(f, &t);
    assert_int_equal(count_kind(&f->r, ALERT_SESSION_TOO_OLD), 0);
    txn(f, &t, "GET", "/v1/orders/1", key, NULL, 200, NOW + 3000);
    judge(f, &t);
    assert_int_equal(count_kind(&f->r, ALERT_SESSION_TOO_OLD), 0);
    txn(f, &t, "GET", "/v1/orders/1", key, NULL, 200, NOW + 3700);
    judge(f, &t);
    assert_int_equal(count_kind(&f->r, ALERT_SESSION_TOO_OLD), 1);
    assert_non_null(strstr(summary_of(&f->r, ALERT_SESSION_TOO_OLD), "first seen at"));
}

/* ---- DPoP ------------------------------------------------------------------ */

static void test_dpop(void **state)
{
    struct fx *f = *state;
    struct kw_txn t;
    EVP_PKEY *k = mint_key("ES256"), *other = mint_key("ES256");
    char jkt[48], extra[256], authz[4096];
    mint_jkt(k, jkt);
    snprintf(extra, sizeof extra, "\"scope\":\"orders:read refunds:write\",\"cnf\":{\"jkt\":\"%s\"}",
             jkt);
    char *tok = token(f, extra);
    snprintf(authz, sizeof authz, "DPoP %s", tok);
    const char *htu = "https://api.acme.test/v1/refunds";

    /* correct: quiet; the transaction holds neither token nor proof */
    char *p = mint_dpop(k, "ES256", "POST", htu, NOW, "jti-1", tok);
    txn(f, &t, "POST", "/v1/refunds?x=1", authz, p, 201, NOW + 5);
    assert_true(t.cred.dpop_scheme);
    assert_true(t.cred.dpop.ath_match);
    judge(f, &t);
    assert_int_equal(f->r.n, 0);
    assert_no_secret(&t, tok);
    assert_no_secret(&t, p);

    /* the same proof again: replay */
    txn(f, &t, "POST", "/v1/refunds", authz, p, 201, NOW + 20);
    judge(f, &t);
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.f[0].kind, ALERT_DPOP_REPLAY);
    free(p);

    /* made for GET */
    p = mint_dpop(k, "ES256", "GET", htu, NOW, "jti-2", tok);
    txn(f, &t, "POST", "/v1/refunds", authz, p, 201, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.f[0].kind, ALERT_DPOP_MISMATCH);
    assert_string_equal(f->r.f[0].subject, "htm");
    free(p);

    /* made for another endpoint (a proof replayed elsewhere) */
    p = mint_dpop(k, "ES256", "POST", "https://api.acme.test/v1/orders", NOW, "jti-3", tok);
    txn(f, &t, "POST", "/v1/refunds", authz, p, 201, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.f[0].kind, ALERT_DPOP_MISMATCH);
    assert_string_equal(f->r.f[0].subject, "htu");
    free(p);
    /* the same URI written differently (port, case, %-encoding) fits */
    p = mint_dpop(k, "ES256", "POST", "https://API.acme.test:443/v1/%72efunds", NOW, "jti-3b",
                  tok);
    txn(f, &t, "POST", "/v1/refunds", authz, p, 201, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 0);
    free(p);

    /* made for another token */
    p = mint_dpop(k, "ES256", "POST", htu, NOW, "jti-4", "another-token");
    txn(f, &t, "POST", "/v1/refunds", authz, p, 201, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.f[0].kind, ALERT_DPOP_MISMATCH);
    assert_string_equal(f->r.f[0].subject, "ath");
    free(p);

    /* stale: made 10 minutes before (window 2m) */
    p = mint_dpop(k, "ES256", "POST", htu, NOW - 600, "jti-5", tok);
    txn(f, &t, "POST", "/v1/refunds", authz, p, 201, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.f[0].kind, ALERT_DPOP_STALE);
    free(p);

    /* bound token without a proof */
    txn(f, &t, "POST", "/v1/refunds", authz, NULL, 201, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.f[0].kind, ALERT_DPOP_MISSING);

    /* ... with a proof of another key (a stolen token, the thief's key) */
    p = mint_dpop(other, "ES256", "POST", htu, NOW, "jti-6", tok);
    txn(f, &t, "POST", "/v1/refunds", authz, p, 201, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.f[0].kind, ALERT_DPOP_MISSING);
    assert_non_null(strstr(f->r.f[0].summary, "another key"));

    free(p);
    /* ... with a proof of the right key whose signature does not verify */
    p = mint_dpop(k, "ES256", "POST", htu, NOW, "jti-7", tok);
    char *sig = strrchr(p, '.') + 10;
    *sig = *sig == 'A' ? 'B' : 'A';
    txn(f, &t, "POST", "/v1/refunds", authz, p, 201, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 1);
    assert_int_equal(f->r.f[0].kind, ALERT_DPOP_MISSING);
    assert_non_null(strstr(f->r.f[0].summary, "does not verify"));

    /* refused by the API: nothing to report */
    txn(f, &t, "POST", "/v1/refunds", authz, NULL, 401, NOW);
    judge(f, &t);
    assert_int_equal(f->r.n, 0);
    free(p);

    /* a bound token sent as Bearer (downgrade) with no proof */
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    txn(f, &t, "POST", "/v1/refunds", authz, NULL, 200, NOW);
    judge(f, &t);
    assert_int_equal(count_kind(&f->r, ALERT_DPOP_MISSING), 1);

    free(tok);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

/* ---- rules ------------------------------------------------------------------ */

static void test_rules_errors(void **state)
{
    (void)state;
    static const char bad[] = "scopes:\n"
                              "  \"POST /v1/refunds\": [ \"refunds write\" ]\n"
                              "  \"GET /x\": []\n"
                              "  \"BAD PATTERN\": x\n"
                              "identities:\n"
                              "  - id: c01\n"
                              "    credentials: [ { jwt: { iss: a, sub: b } } ]\n"
                              "    session: { max_age: soon }\n";
    struct rules_model *m = NULL;
    struct rules_diag d;
    rules_diag_init(&d);
    assert_int_equal(rules_load_mem(NULL, NULL, "r.yaml", bad, &m, &d), KW_E_CONFIG);
    assert_null(m);
    assert_true(d.errors >= 4);
    bool scope_line = false, session_line = false;
    for (size_t i = 0; i < d.n; i++) {
        if (d.items[i].line == 2 && strstr(d.items[i].msg, "not an OAuth scope")) scope_line = true;
        if (d.items[i].line == 8 && strstr(d.items[i].msg, "session.max_age")) session_line = true;
    }
    assert_true(scope_line);
    assert_true(session_line);
    rules_diag_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thumbprint_rfc7638),
        cmocka_unit_test(test_dpop_parse),
        cmocka_unit_test(test_rules_errors),
        cmocka_unit_test_setup_teardown(test_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dpop_refused_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scopes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escalation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dpop, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dpop_thread_cleanup();
    return rc;
}
