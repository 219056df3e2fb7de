/* test_cred: credential extraction, fingerprints, hints and JWT claims.
 * Table-driven: each case is a request (headers + raw target), the
 * expected kind/source/fingerprint/hint/identifiers, and the strings that
 * must appear NOWHERE in the resulting struct kw_cred (passwords, raw
 * tokens): the whole struct is searched with memmem.
 *
 * Expected fingerprints are known answers from coreutils, e.g.
 *   printf %s sk_live_4eC39HqLyjWDarjtT1zdp7dc | sha256sum
 * and the JWTs were built with Python's hmac/json/base64 (HS256 key
 * "test-key"; the alg-none token has an empty signature). */
/* the case table leaves the JWT fields of non-JWT cases implicit (zero) */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <pcap/pcap.h>

#include "cred.h"
#include "jwt.h"
#include "kw_exact.h"

#define STRIPE "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
#define FP_STRIPE "sha256:78a08441f4314f0a2833cfe58c62e555a162264206982cda39f6804f5048f570"
#define FP_ACME "sha256:166ae22e334908b46c733bac70fbc3b5a650a3d43ef1c448e10e16682e915c07"
#define FP_K3Y "sha256:a49b1287870c10a76f1f46552aca4431842ced5dedf0ee3f28ffa12855a4e86a"
#define FP_EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define FP_SPACEY "sha256:825ef729812b267508f0b6a04a050b96954e77c4279ce51bdffe9d4be8e39af2"
#define FP_PLUS "sha256:03fb0f371984c4f96767a3ffc783204524b07926d6293d950a548a01c4871583"
#define FP_SESSION "sha256:f2c8f2c307ff96b63b6d0872e0f16bfd2aa5830edd1015ae952bb3064938a225"
#define FP_USERRRRR "sha256:545aa148a70e4dab22734f8bd492457eb2741463c02bc22693ef48a20400107b"

/* HS256; iss, sub, aud array, azp, exp 1700000000 (in the past), iat */
#define JWT1                                                                                       \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lkcC5hY21lLmV4YW1wbGUiLCJzdWIiOiJ" \
    "hY21lLWRhdGEiLCJhdWQiOlsib3JkZXJzLWFwaSIsImJpbGxpbmciXSwiYXpwIjoiYWNtZS1ldGwtY2xpZW50IiwiZXh" \
    "w"                                                                                            \
    "IjoxNzAwMDAwMDAwLCJpYXQiOjE2OTk5OTY0MDB9.-EZa40BrdWgNkAuTjQTNUPn-dWmkAsRdlh8JnmD_67w"
#define FP_JWT1 "sha256:b64a8ea3ca1c272bba3df00d17deeaa01892fe96d270599e676cb54b2f9245b2"
/* alg none, empty signature; aud string, client_id, exp as a real */
#define JWT2                                                                                       \
    "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lkcC5ldmlsLmV4YW1wbGUiLCJzdWIiOiJhZG1pbiIsImF1ZCI6" \
    "Im9yZGVycy1hcGkiLCJjbGllbnRfaWQiOiJjaWQtNDIiLCJleHAiOjEwMDAwMDAwMDAuNX0."
#define FP_JWT2 "sha256:d9babc9e7450c8a4c9f8668b589436e398d95522f607ee17231ead5d82651abb"
/* RS256; sub "ctl\u0001x" (a control character), iss "café" */
#define JWT3                                                                                       \
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJjdGxcdTAwMDF4IiwiaXNzIjoiY2Fmw6kifQ."          \
    "m5REm0eZNN"                                                                                   \
    "uDQ-Ixi-eYhzb7zMPZAG8dxti5k6gahME"
#define FP_JWT3 "sha256:1ac67e6e520b05ea96d023943ab5b070cc98ed350812d5da54d784d664b853ff"

#define ELL "\xe2\x80\xa6"
#define LIT(s) s, sizeof(s) - 1

struct hv {
    const char *name, *value;
};

struct ccase {
    const char *what;
    struct hv h[4];
    const char *target;
    bool cookie_cfg; /* use a config with cookie "session" first */
    enum kw_cred_kind kind;
    const char *source, *fp, *hint, *user;
    const char *iss, *sub, *aud, *client_id, *alg;
    int64_t exp; /* 0: no exp expected */
    const char *forbidden[3];
};

static const struct ccase cases[] = {
    {"bearer opaque",
     {{"Authorization", "Bearer " STRIPE}},
     "/v1/orders",
     false,
     KW_CRED_BEARER,
     "header:Authorization",
     FP_STRIPE,
     "sk_l" ELL "p7dc",
     "",
     .forbidden = {STRIPE}},
    {"bearer scheme case, extra spaces",
     {{"authorization", "bEaReR \t  " STRIPE "  "}},
     "/",
     false,
     KW_CRED_BEARER,
     "header:Authorization",
     FP_STRIPE,
     "sk_l" ELL "p7dc",
     "",
     .forbidden = {STRIPE}},
    {"bearer JWT HS256 with expired exp",
     {{"Authorization", "Bearer " JWT1}},
     "/",
     false,
     KW_CRED_JWT,
     "header:Authorization",
     FP_JWT1,
     "eyJh" ELL "_67w",
     "",
     "https://idp.acme.example",
     "acme-data",
     "orders-api",
     "acme-etl-client",
     "HS256",
     1700000000,
     {JWT1, "-EZa40BrdWgNkAuTjQTNUPn"}},
    {"alg none JWT in X-API-Key",
     {{"Host", "api"}, {"X-Api-Key", JWT2}},
     "/",
     false,
     KW_CRED_JWT,
     "header:X-API-Key",
     FP_JWT2,
     "eyJh" ELL "NX0.",
     "",
     "https://idp.evil.example",
     "admin",
     "orders-api",
     "cid-42",
     "none",
     1000000000,
     {JWT2}},
    {"JWT in query access_token, escaped claims",
     {{"Host", "api"}},
     "/v1/x?format=json&access_token=" JWT3,
     false,
     KW_CRED_JWT,
     "query:access_token",
     FP_JWT3,
     "eyJh" ELL "ahME",
     "",
     "caf\xc3\xa9",
     "ctl\\x01x",
     "",
     "",
     "RS256",
     0,
     {JWT3}},
    {"basic user:password",
     {{"Authorization", "Basic YWNtZS1ldGw6czNjcjN0LVBhc3N3MHJk"}},
     "/",
     false,
     KW_CRED_BASIC,
     "header:Authorization",
     FP_ACME,
     "acme-etl",
     "acme-etl",
     .forbidden = {"s3cr3t-Passw0rd", "YWNtZS1ldGw6czNjcjN0LVBhc3N3MHJk"}},
    {"basic with a Windows domain user keeps the backslash",
     {{"Authorization", "Basic Q09SUFxzdmMtZXRsOnB3MHJkIQ=="}},
     "/",
     false,
     KW_CRED_BASIC,
     "header:Authorization",
     "sha256:3ddd004478e51f6fe529795b86b2bc0478408d257b324e95e2553f5795d22cf5",
     "CORP\\svc-etl",
     "CORP\\svc-etl",
     .forbidden = {"pw0rd!"}},
    {"basic bad base64",
     {{"Authorization", "Basic !!not*base64!!"}},
     "/",
     false,
     KW_CRED_OTHER,
     "header:Authorization",
     "sha256:",
     "Basic:bad-base64",
     "",
     .forbidden = {"not*base64"}},
    {"basic without colon",
     {{"Authorization", "Basic anVzdGF0b2tlbg=="}},
     "/",
     false,
     KW_CRED_OTHER,
     "header:Authorization",
     "sha256:",
     "Basic:no-colon",
     "",
     .forbidden = {"justatoken", "anVzdGF0b2tlbg"}},
    {"basic with empty password is a key (Stripe style)",
     {{"Authorization", "Basic c2tfbGl2ZV80ZUMzOUhxTHlqV0Rhcmp0VDF6ZHA3ZGM6"}},
     "/",
     false,
     KW_CRED_API_KEY,
     "header:Authorization",
     FP_STRIPE,
     "sk_l" ELL "p7dc",
     "",
     .forbidden = {STRIPE}},
    {"empty bearer",
     {{"Authorization", "Bearer   "}},
     "/",
     false,
     KW_CRED_OTHER,
     "header:Authorization",
     FP_EMPTY,
     "Bearer:empty",
     ""},
    {"digest by username",
     {{"Authorization", "Digest username=\"acme-etl\", realm=\"api\", nonce=\"abc\", "
                        "response=\"6629fae49393a05397450978507c4ef1\""}},
     "/",
     false,
     KW_CRED_OTHER,
     "header:Authorization",
     FP_ACME,
     "Digest",
     "acme-etl",
     .forbidden = {"6629fae49393a05397450978507c4ef1"}},
    {"AWS SigV4 by access key id",
     {{"Authorization",
       "AWS4-HMAC-SHA256 Credential=k3y/20150830/us-east-1/iam/aws4_request, "
       "SignedHeaders=host, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c"}},
     "/",
     false,
     KW_CRED_OTHER,
     "header:Authorization",
     FP_K3Y,
     "AWS4-HMAC-SHA256",
     "k3y",
     .forbidden = {"5d672d79c15b13162d9279b0855cfba6789a8edb4c"}},
    {"short api key header, no hint characters",
     {{"x-api-key", "k3y"}},
     "/",
     false,
     KW_CRED_API_KEY,
     "header:X-API-Key",
     FP_K3Y,
     ELL,
     "",
     .forbidden = {"k3y"}},
    {"api-key header",
     {{"API-KEY", " " STRIPE}},
     "/",
     false,
     KW_CRED_API_KEY,
     "header:Api-Key",
     FP_STRIPE,
     "sk_l" ELL "p7dc",
     "",
     .forbidden = {STRIPE}},
    {"query percent-decoded",
     {{"Host", "h"}},
     "/a?x=1&api_key=abc%20def%2B%2F%3D&y=2",
     false,
     KW_CRED_API_KEY,
     "query:api_key",
     FP_SPACEY,
     "a" ELL "=",
     "",
     .forbidden = {"abc def"}},
    {"query ; separator, fragment, + as %2B",
     {{"Host", "h"}},
     "/a?a=1;apikey=abc%2Bdef#frag",
     false,
     KW_CRED_API_KEY,
     "query:apikey",
     FP_PLUS,
     ELL,
     "",
     .forbidden = {"abc+def"}},
    {"query '+' is a space (form encoding)",
     {{"Host", "h"}},
     "/a?api_key=abc+def%2B%2F%3D",
     false,
     KW_CRED_API_KEY,
     "query:api_key",
     FP_SPACEY,
     "a" ELL "=",
     ""},
    {"query absolute-form target, empty first value",
     {{"Host", "h"}},
     "http://h/p?api_key=&api_key=k3y",
     false,
     KW_CRED_API_KEY,
     "query:api_key",
     FP_K3Y,
     ELL,
     ""},
    {"query names that only look alike",
     {{"Host", "h"}},
     "/a?xapi_key=k3y&api_keys=k3y&api_key",
     false,
     KW_CRED_NONE,
     "",
     "",
     "",
     ""},
    {"cookie, quoted value",
     {{"Cookie", "theme=dark; session=\"sessiontoken-0123456789abcdef\"; x=1"}},
     "/",
     true,
     KW_CRED_API_KEY,
     "cookie:session",
     FP_SESSION,
     "sess" ELL "cdef",
     "",
     .forbidden = {"sessiontoken-0123456789abcdef"}},
    {"cookie in a second Cookie header",
     {{"Cookie", "theme=dark"}, {"Cookie", "session=k3y"}},
     "/",
     true,
     KW_CRED_API_KEY,
     "cookie:session",
     FP_K3Y,
     ELL,
     ""},
    {"precedence: Authorization before X-API-Key and query",
     {{"X-API-Key", "k3y"}, {"Authorization", "Bearer " STRIPE}},
     "/?api_key=abc",
     false,
     KW_CRED_BEARER,
     "header:Authorization",
     FP_STRIPE,
     "sk_l" ELL "p7dc",
     ""},
    {"precedence: config order puts the cookie first",
     {{"Authorization", "Bearer " STRIPE}, {"Cookie", "session=k3y"}},
     "/",
     true,
     KW_CRED_API_KEY,
     "cookie:session",
     FP_K3Y,
     ELL,
     ""},
    {"JWT with two parts is an opaque bearer",
     {{"Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0"}},
     "/",
     false,
     KW_CRED_BEARER,
     "header:Authorization",
     "sha256:",
     "eyJh" ELL "4In0",
     ""},
    {"JWT-shaped without alg is an opaque bearer",
     {{"Authorization", "Bearer eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.c2ln"}},
     "/",
     false,
     KW_CRED_BEARER,
     "header:Authorization",
     "sha256:",
     "eyJ0" ELL "c2ln",
     ""},
    {"no credential",
     {{"Host", "h"}, {"Accept", "*/*"}},
     "/a?b=c",
     false,
     KW_CRED_NONE,
     "",
     "",
     "",
     ""},
};

static void default_or_cookie(struct cred_config *cfg, bool cookie)
{
    if (!cookie) {
        cred_config_default(cfg);
        return;
    }
    memset(cfg, 0, sizeof *cfg);
    assert_int_equal(cred_config_add(cfg, CRED_SRC_COOKIE, "session"), KW_E_OK);
    assert_int_equal(cred_config_add(cfg, CRED_SRC_HEADER, "Authorization"), KW_E_OK);
}

static void assert_never_in(const struct kw_cred *c, const char *secret, const char *what)
{
    if (!secret || !secret[0]) return;
    if (memmem(c, sizeof *c, secret, strlen(secret))) {
        fail_msg("%s: a secret (%zu bytes) leaked into struct kw_cred", what, strlen(secret));
    }
}

static void run_case(const struct ccase *t)
{
    /* names, values and target in exact-size heap copies (kw_exact.h): a
     * read past a value is an ASan report, not a peek at its NUL */
    struct kw_hdr hdrs[4];
    uint8_t *own[9];
    size_t n = 0;
    for (; n < 4 && t->h[n].name; n++) {
        size_t nl = strlen(t->h[n].name), vl = strlen(t->h[n].value);
        own[2 * n] = kw_exact_dup(t->h[n].name, nl);
        own[2 * n + 1] = kw_exact_dup(t->h[n].value, vl);
        hdrs[n].name = (struct kw_slice){(const char *)own[2 * n], nl};
        hdrs[n].value = (struct kw_slice){(const char *)own[2 * n + 1], vl};
    }
    size_t tl = strlen(t->target);
    own[2 * n] = kw_exact_dup(t->target, tl);
    struct cred_config cfg;
    default_or_cookie(&cfg, t->cookie_cfg);
    struct kw_cred c;
    memset(&c, 0xa5, sizeof c); /* must be fully rewritten */
    bool found = cred_extract(&cfg, hdrs, n, (struct kw_slice){(const char *)own[2 * n], tl}, &c);
    for (size_t i = 0; i <= 2 * n; i++)
        free(own[i]);
    print_message("case: %s\n", t->what);
    assert_int_equal(found, t->kind != KW_CRED_NONE);
    assert_int_equal(c.kind, t->kind);
    assert_string_equal(c.source, t->source);
    if (strlen(t->fp) == 71)
        assert_string_equal(c.fingerprint, t->fp);
    else if (t->kind != KW_CRED_NONE) /* fingerprint present and well formed */
        assert_true(strncmp(c.fingerprint, t->fp, 7) == 0 && strlen(c.fingerprint) == 71);
    else
        assert_string_equal(c.fingerprint, "");
    assert_string_equal(c.hint, t->hint);
    assert_string_equal(c.basic_user, t->user);
    if (t->kind == KW_CRED_JWT) {
        assert_string_equal(c.jwt.iss, t->iss);
        assert_string_equal(c.jwt.sub, t->sub);
        assert_string_equal(c.jwt.aud, t->aud);
        assert_string_equal(c.jwt.client_id, t->client_id);
        assert_string_equal(c.jwt.alg, t->alg);
        assert_int_equal(c.jwt.has_exp, t->exp != 0);
        if (t->exp) assert_int_equal(c.jwt.exp, t->exp);
    } else {
        struct kw_jwt_claims zero;
        memset(&zero, 0, sizeof zero);
        assert_memory_equal(&c.jwt, &zero, sizeof zero);
    }
    for (size_t i = 0; i < 3; i++)
        assert_never_in(&c, t->forbidden[i], t->what);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i]);
}

/* jwt_decode over an exact-size heap copy, so ASan sees any overread */
static bool jwt_decode_exact(const char *p, size_t n, struct kw_jwt_claims *j)
{
    uint8_t *b = kw_exact_dup(p, n);
    bool ok = jwt_decode((const char *)b, n, j);
    free(b);
    return ok;
}

static void test_jwt_claims_detail(void **state)
{
    (void)state;
    struct kw_jwt_claims j;
    assert_true(jwt_decode_exact(JWT1, strlen(JWT1), &j));
    assert_true(j.has_iat);
    assert_int_equal(j.iat, 1699996400);
    assert_true(jwt_decode_exact(JWT2, strlen(JWT2), &j));
    assert_false(j.has_iat);
    /* not JWTs */
    static const char *const bad[] = {
        "",
        "a.b",
        "a..c",
        ".b.c",
        "a.b.c.d",
        "eyJhbGciOiJub25lIn0.e$$.x",
        "abc.def.ghi" /* header is not JSON */,
        "WzFd.eyJzdWIiOiJ4In0.x" /* header is a JSON array */,
        "eyJhbGciOjF9.eyJzdWIiOiJ4In0.x" /* alg is a number */,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(jwt_decode_exact(bad[i], strlen(bad[i]), &j));
    /* padding tolerated; payload that is not JSON still makes a JWT */
    assert_true(jwt_decode_exact(LIT("eyJhbGciOiJub25lIn0=.eyJzdWIiOiJ4In0=."), &j));
    assert_string_equal(j.sub, "x");
    bool tr;
    assert_int_equal(jwt_parse(LIT("eyJhbGciOiJub25lIn0.bm90IGpzb24."), &j, &tr), JWT_BAD_PAYLOAD);
    assert_string_equal(j.alg, "none");
    assert_string_equal(j.sub, "");
    /* duplicate claims are refused rather than guessed at (parser
     * differential: the server may take the other one) */
    assert_int_equal(jwt_parse(LIT("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIiwic3ViIjoiYiJ9."), &j, &tr),
                     JWT_BAD_PAYLOAD);
}

/* base64url of n bytes of JSON {"sub":"xxxx..."} built in a heap buffer */
static char *big_jwt(size_t payload_bytes)
{
    size_t n = payload_bytes;
    char *json = malloc(n + 1);
    memcpy(json, "{\"sub\":\"", 8);
    memset(json + 8, 'x', n - 10);
    memcpy(json + n - 2, "\"}", 2);
    size_t cap = 20 + 1 + (n + 2) / 3 * 4 + 4;
    char *tok = malloc(cap);
    strcpy(tok, "eyJhbGciOiJub25lIn0.");
    int e = EVP_EncodeBlock((unsigned char *)tok + 20, (unsigned char *)json, (int)n);
    size_t o = 20 + (size_t)e;
    while (o > 20 && tok[o - 1] == '=')
        o--;
    for (size_t i = 20; i < o; i++)
        tok[i] = tok[i] == '+' ? '-' : tok[i] == '/' ? '_' : tok[i];
    tok[o++] = '.';
    tok[o] = '\0';
    free(json);
    return tok;
}

static enum jwt_result jwt_parse_exact(const char *tok, struct kw_jwt_claims *j, bool *tr)
{
    size_t n = strlen(tok);
    uint8_t *b = kw_exact_dup(tok, n);
    enum jwt_result r = jwt_parse((const char *)b, n, j, tr);
    free(b);
    return r;
}

static void test_jwt_size_limit(void **state)
{
    (void)state;
    struct kw_jwt_claims j;
    char *ok = big_jwt(JWT_MAX_PART);
    assert_int_equal(jwt_parse_exact(ok, &j, NULL), JWT_OK);
    assert_int_equal(strlen(j.sub), sizeof j.sub - 1); /* cut to fit */
    bool tr = false;
    assert_int_equal(jwt_parse_exact(ok, &j, &tr), JWT_OK);
    assert_true(tr);
    char *big = big_jwt(JWT_MAX_PART + 1);
    assert_int_equal(jwt_parse_exact(big, &j, NULL), JWT_TOO_BIG);
    assert_string_equal(j.alg, "none");
    /* through cred_extract: still a JWT, fingerprinted over the token */
    struct cred_config cfg;
    cred_config_default(&cfg);
    struct kw_hdr h = {KW_SLICE_LIT("Authorization"), {NULL, 0}};
    char *v = malloc(strlen(big) + 8);
    sprintf(v, "Bearer %s", big);
    h.value = (struct kw_slice){v, strlen(v)};
    struct kw_cred c;
    struct cred_stats st = {0};
    assert_true(cred_extract_ex(&cfg, &h, 1, KW_SLICE_LIT("/"), &c, &st));
    assert_int_equal(c.kind, KW_CRED_JWT);
    assert_int_equal(st.jwt_too_big, 1);
    char fp[72];
    cred_fingerprint((const uint8_t *)big, strlen(big), fp);
    assert_string_equal(c.fingerprint, fp);
    free(v);
    free(big);
    free(ok);
}

/* Independent SHA-256 (EVP one-shot) for inputs too big for a literal. */
static void sha_ref(const uint8_t *p, size_t n, char out[72])
{
    uint8_t md[32];
    unsigned l = 0;
    assert_true(EVP_Digest(p, n, md, &l, EVP_sha256(), NULL));
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; i++)
        sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

static void test_huge_values(void **state)
{
    (void)state;
    struct cred_config cfg;
    cred_config_default(&cfg);
    struct kw_cred c;
    /* a 100 KB bearer token: fingerprinted whole, never copied */
    size_t n = 100010;
    char *v = malloc(n + 8);
    memcpy(v, "Bearer ", 7);
    for (size_t i = 0; i < n; i++)
        v[7 + i] = (char)('a' + i % 26);
    struct kw_hdr h = {KW_SLICE_LIT("Authorization"), {v, n + 7}};
    assert_true(cred_extract(&cfg, &h, 1, KW_SLICE_LIT("/"), &c));
    char fp[72];
    sha_ref((const uint8_t *)v + 7, n, fp);
    assert_string_equal(c.fingerprint, fp);
    assert_string_equal(c.hint, "abcd" ELL "klmn"); /* 100009 % 26 = 13 -> 'n' */
    free(v);

    /* a 50 KB percent-encoded query value: streamed through SHA-256 */
    size_t m = 50000;
    char *t = malloc(m * 3 + 32);
    uint8_t *dec = malloc(m);
    size_t o = (size_t)sprintf(t, "/p?api_key=");
    for (size_t i = 0; i < m; i++) {
        dec[i] = (uint8_t)('A' + i % 7);
        o += (size_t)sprintf(t + o, i % 2 ? "%%%02X" : "%c", dec[i]);
    }
    struct kw_hdr none = {KW_SLICE_LIT("Host"), KW_SLICE_LIT("h")};
    struct cred_stats st = {0};
    assert_true(cred_extract_ex(&cfg, &none, 1, (struct kw_slice){t, o}, &c, &st));
    sha_ref(dec, m, fp);
    assert_string_equal(c.fingerprint, fp);
    assert_int_equal(st.too_long, 1);
    /* hint from the decoded ends: 49996..49999 % 7 = 2,3,4,5 */
    assert_string_equal(c.hint, "ABCD" ELL "CDEF");
    free(t);
    free(dec);

    /* a 10 KB Basic value is not decoded */
    char *b = malloc(10008);
    memcpy(b, "Basic ", 6);
    memset(b + 6, 'Q', 10000);
    h.value = (struct kw_slice){b, 10006};
    memset(&st, 0, sizeof st);
    assert_true(cred_extract_ex(&cfg, &h, 1, KW_SLICE_LIT("/"), &c, &st));
    assert_int_equal(c.kind, KW_CRED_OTHER);
    assert_string_equal(c.hint, "Basic:too-long");
    assert_int_equal(st.basic_too_long, 1);
    free(b);
}

static void test_hint_rules(void **state)
{
    (void)state;
    static const struct {
        const char *secret, *hint;
    } t[] = {
        {"", ELL},
        {"abcdefg", ELL},
        {"abcdefgh", "a" ELL "h"},
        {"abcdefghijklmno", "a" ELL "o"},
        {"abcdefghijklmnop", "ab" ELL "op"},
        {"abcdefghijklmnopqrstuvw", "ab" ELL "vw"},
        {"abcdefghijklmnopqrstuvwx", "abcd" ELL "uvwx"},
        {"ab\x01\xff"
         "efghijklmnopqrstuvw x",
         "ab??" ELL "vw?x"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char h[40];
        size_t len = strlen(t[i].secret);
        cred_hint((const uint8_t *)t[i].secret, len, h, sizeof h);
        assert_string_equal(h, t[i].hint);
        assert_true((strlen(h) - 3) * 3 <= len); /* never more than a third */
    }
}

static void test_text_copy(void **state)
{
    (void)state;
    char d[16];
    assert_true(cred_text_copy(d, sizeof d, (const uint8_t *)"ab", 2));
    assert_string_equal(d, "ab");
    assert_true(cred_text_copy(d, sizeof d, (const uint8_t *)"D\\u\xff\0", 5));
    assert_string_equal(d, "D\\u\\xff\\x00");
    assert_false(cred_text_copy(d, 8, (const uint8_t *)"abcd\x7f", 5));
    assert_string_equal(d, "abcd");
    /* cut at a character boundary, never inside a UTF-8 sequence */
    assert_false(cred_text_copy(d, 8, (const uint8_t *)"aaaaaa\xc3\xa9", 8));
    assert_string_equal(d, "aaaaaa");
    assert_true(cred_text_copy(d, 9, (const uint8_t *)"aaaaaa\xc3\xa9", 8));
    assert_string_equal(d, "aaaaaa\xc3\xa9");
}

static void test_stats(void **state)
{
    (void)state;
    struct cred_config cfg;
    cred_config_default(&cfg);
    struct cred_stats st = {0};
    struct kw_cred c;
    struct kw_hdr h[2] = {{KW_SLICE_LIT("X-API-Key"), KW_SLICE_LIT("  ")},
                          {KW_SLICE_LIT("Authorization"), KW_SLICE_LIT("Basic Zm9vOmJhcg==")}};
    assert_false(cred_extract_ex(&cfg, h, 1, KW_SLICE_LIT("/"), &c, &st));
    assert_int_equal(st.none, 1);
    assert_int_equal(st.empty_value, 1);
    assert_true(cred_extract_ex(&cfg, h, 2, KW_SLICE_LIT("/"), &c, &st));
    assert_int_equal(st.found, 1);
    assert_string_equal(c.basic_user, "foo");
    h[1].value = KW_SLICE_LIT("Basic Zm9v");
    assert_true(cred_extract_ex(&cfg, h, 2, KW_SLICE_LIT("/"), &c, &st));
    assert_int_equal(st.basic_bad, 1);
    h[1].value = KW_SLICE_LIT("Negotiate YIIabc");
    assert_true(cred_extract_ex(&cfg, h, 2, KW_SLICE_LIT("/"), &c, &st));
    assert_int_equal(st.other_scheme, 1);
    assert_string_equal(c.hint, "Negotiate");
    assert_int_equal(st.found, 3);

    struct cred_config full;
    memset(&full, 0, sizeof full);
    for (int i = 0; i < CRED_MAX_SOURCES; i++)
        assert_int_equal(cred_config_add(&full, CRED_SRC_QUERY, "k"), KW_E_OK);
    assert_int_equal(cred_config_add(&full, CRED_SRC_QUERY, "k"), KW_E_LIMIT);
    memset(&full, 0, sizeof full);
    assert_int_equal(cred_config_add(&full, CRED_SRC_QUERY, ""), KW_E_INVAL);
    char longname[80];
    memset(longname, 'n', sizeof longname - 1);
    longname[79] = 0;
    assert_int_equal(cred_config_add(&full, CRED_SRC_HEADER, longname), KW_E_INVAL);
}

/* The request in a corpus capture holding `marker`, split into a target
 * and header slices (the test's own minimal splitter over real bytes). */
static size_t corpus_request(const char *file, const char *marker, char *buf, size_t cap,
                             struct kw_hdr *hdrs, size_t max, struct kw_slice *target)
{
    char path[512], err[PCAP_ERRBUF_SIZE];
    snprintf(path, sizeof path, "%s/corpus/%s", KW_TEST_DATA, file);
    pcap_t *pc = pcap_open_offline(path, err);
    assert_non_null(pc);
    assert_int_equal(pcap_datalink(pc), DLT_EN10MB);
    struct pcap_pkthdr *ph;
    const u_char *p;
    size_t len = 0;
    while (pcap_next_ex(pc, &ph, &p) == 1) {
        if (ph->caplen < 14 + 20 + 20 || p[12] != 8 || p[13] != 0 || p[23] != 6) continue;
        size_t ihl = (size_t)(p[14] & 15) * 4, off = 14 + ihl + (size_t)(p[14 + ihl + 12] >> 4) * 4;
        if (off < ph->caplen && memmem(p + off, ph->caplen - off, marker, strlen(marker))) {
            len = ph->caplen - off < cap ? ph->caplen - off : cap;
            memcpy(buf, p + off, len);
            break;
        }
    }
    pcap_close(pc);
    assert_true(len > 0);
    char *eol = memmem(buf, len, "\r\n", 2);
    char *sp1 = memchr(buf, ' ', len),
         *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    assert_non_null(sp2);
    *target = (struct kw_slice){sp1 + 1, (size_t)(sp2 - sp1 - 1)};
    size_t n = 0;
    for (char *l = eol + 2; n < max && l < buf + len;) {
        char *e = memmem(l, len - (size_t)(l - buf), "\r\n", 2);
        if (!e || e == l) break;
        char *colon = memchr(l, ':', (size_t)(e - l));
        if (colon) {
            char *v = colon + 1;
            while (v < e && *v == ' ')
                v++;
            hdrs[n].name = (struct kw_slice){l, (size_t)(colon - l)};
            hdrs[n++].value = (struct kw_slice){v, (size_t)(e - v)};
        }
        l = e + 2;
    }
    return n;
}

/* arkime-http-basicauth.pcap: "Authorization: Basic dXNlcnJycnI6cGFzc3dvcmRkZGRk"
 * (tshark: userrrrr:passworddddd); arkime-http-digestauth.pcap: Digest
 * username="user12345678@domain.xxxx". */
static void test_corpus_basic_digest(void **state)
{
    (void)state;
    char buf[4096];
    struct kw_hdr hdrs[32];
    struct kw_slice target;
    struct cred_config cfg;
    cred_config_default(&cfg);
    struct kw_cred c;
    size_t n = corpus_request("arkime-http-basicauth.pcap", "Authorization: Basic", buf, sizeof buf,
                              hdrs, 32, &target);
    assert_true(cred_extract(&cfg, hdrs, n, target, &c));
    assert_int_equal(c.kind, KW_CRED_BASIC);
    assert_string_equal(c.basic_user, "userrrrr");
    assert_string_equal(c.hint, "userrrrr");
    assert_string_equal(c.fingerprint, FP_USERRRRR);
    assert_never_in(&c, "passworddddd", "corpus basic");
    assert_never_in(&c, "dXNlcnJycnI6cGFzc3dvcmRkZGRk", "corpus basic");

    n = corpus_request("arkime-http-digestauth.pcap", "Authorization: Digest", buf, sizeof buf,
                       hdrs, 32, &target);
    assert_true(cred_extract(&cfg, hdrs, n, target, &c));
    assert_int_equal(c.kind, KW_CRED_OTHER);
    assert_string_equal(c.basic_user, "user12345678@domain.xxxx");
    assert_string_equal(c.hint, "Digest");
    char fp[72];
    sha_ref((const uint8_t *)"user12345678@domain.xxxx", 24, fp);
    assert_string_equal(c.fingerprint, fp);
}

/* Keys in the query string are replaced before the target reaches any
 * record (cred_redact_target). */
static void test_redact_target(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want; /* want NULL: unchanged */
    } rcases[] = {
        {"/v1/x?api_key=SECRETSECRET&a=1", "/v1/x?api_key=REDACTED&a=1"},
        {"/p?a=1;apikey=S3#frag", "/p?a=1;apikey=REDACTED#frag"},
        {"/p?api%5Fkey=S3&access_token=eyJ.x.y", "/p?api%5Fkey=REDACTED&access_token=REDACTED"},
        {"/p?api_key=", NULL},          /* empty value: nothing to hide */
        {"/p?page=2&sort=api_key", NULL}, /* a value, not a parameter name */
        {"/p", NULL},
        {"http://h/p?x=1&api_key=k1&api_key=k2", "http://h/p?x=1&api_key=REDACTED&api_key=REDACTED"},
    };
    struct cred_config cfg;
    cred_config_default(&cfg);
    for (size_t i = 0; i < sizeof rcases / sizeof rcases[0]; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", rcases[i].in);
        bool changed = cred_redact_target(&cfg, buf, sizeof buf);
        assert_int_equal(changed, rcases[i].want != NULL);
        assert_string_equal(buf, rcases[i].want ? rcases[i].want : rcases[i].in);
    }
}

/* Issue 15: every name on the default list is redacted whatever the
 * configured sources (here: only a cookie), in any case and
 * percent-encoded; a parameter not on the list is left alone. */
static void test_redact_default_list(void **state)
{
    (void)state;
    struct cred_config ck;
    memset(&ck, 0, sizeof ck);
    assert_int_equal(cred_config_add(&ck, CRED_SRC_COOKIE, "session"), KW_E_OK);
    const char *const *names = cred_redact_default_names();
    size_t n = 0;
    for (; names[n]; n++) {
        char in[256], want[256], upper[64], enc[192];
        size_t l = strlen(names[n]);
        for (size_t i = 0; i <= l; i++)
            upper[i] = (char)toupper((unsigned char)names[n][i]);
        /* every character percent-encoded: the name is compared decoded */
        for (size_t i = 0; i < l; i++)
            snprintf(enc + 3 * i, 4, "%%%02X", (unsigned char)names[n][i]);
        snprintf(in, sizeof in, "/v1/x?page=2&%s=S3cr3tVal&%s=S3cr3tVal&%s=S3cr3tVal#f", names[n],
                 upper, enc);
        snprintf(want, sizeof want, "/v1/x?page=2&%s=REDACTED&%s=REDACTED&%s=REDACTED#f", names[n],
                 upper, enc);
        assert_true(cred_redact_target(&ck, in, sizeof in));
        assert_string_equal(in, want);
        assert_null(strstr(in, "S3cr3t"));
    }
    /* the names the issue lists are among them */
    static const char *const must[] = {"token",     "access_token", "client_secret",
                                       "password",  "passwd",       "api_key",
                                       "apikey",    "key",          "secret",
                                       "signature", "sig",          "x-amz-signature",
                                       "x-amz-credential", "code"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) {
        bool found = false;
        for (size_t k = 0; k < n; k++)
            found |= strcmp(names[k], must[i]) == 0;
        if (!found) fail_msg("%s is not on the default redaction list", must[i]);
    }
    char keep[] = "/v1/x?page=2&sort=name&keys=3&tokens=1";
    assert_false(cred_redact_target(&ck, keep, sizeof keep));
    /* a configured query source is redacted in any case too */
    assert_int_equal(cred_config_add(&ck, CRED_SRC_QUERY, "acme_auth"), KW_E_OK);
    char cfgd[64] = "/v1/x?ACME_AUTH=abc";
    assert_true(cred_redact_target(&ck, cfgd, sizeof cfgd));
    assert_string_equal(cfgd, "/v1/x?ACME_AUTH=REDACTED");
}

/* A key in a long URL (kw_txn.url holds 8 KiB) is redacted too. */
static void test_redact_long_target(void **state)
{
    (void)state;
    static char buf[8192];
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "/p/", 3);
    size_t q = 6000;
    snprintf(buf + q, sizeof buf - q, "?x=1&api_key=SECRETSECRETSECRET&y=%s", "2");
    struct cred_config cfg;
    cred_config_default(&cfg);
    assert_true(cred_redact_target(&cfg, buf, sizeof buf));
    assert_null(strstr(buf, "SECRET"));
    assert_non_null(strstr(buf, "api_key=REDACTED&y=2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_jwt_claims_detail),
        cmocka_unit_test(test_jwt_size_limit), cmocka_unit_test(test_huge_values),
        cmocka_unit_test(test_hint_rules),     cmocka_unit_test(test_text_copy),
        cmocka_unit_test(test_stats),          cmocka_unit_test(test_corpus_basic_digest),
        cmocka_unit_test(test_redact_target),
        cmocka_unit_test(test_redact_long_target),
        cmocka_unit_test(test_redact_default_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
