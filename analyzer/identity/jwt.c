/* jwt: JWS compact serialisation (RFC 7515 §7.1) recognised and decoded
 * for its claims, never verified (see jwt.h). Decoding is bounded: each
 * part is decoded into a JWT_MAX_PART stack buffer, which is wiped before
 * return because the payload belongs to a bearer secret. A 5-part JWE is
 * encrypted and therefore not a JWT here (it is an opaque bearer token). */
#include "jwt.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <string.h>

#include "cred.h"

/* RFC 4648 §5 alphabet; -1 for bytes outside it. */
static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Length of a part with trailing '=' padding removed (RFC 7515 §2 says
 * there is none, but some encoders add it). */
static size_t strip_pad(const char *p, size_t len)
{
    size_t n = 0;
    while (len > 0 && p[len - 1] == '=' && n < 2) {
        len--;
        n++;
    }
    return len;
}

/* Decodes base64url without padding into out[cap]. Returns the decoded
 * length, or SIZE_MAX when the input is not base64url or does not fit. */
size_t jwt_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    len = strip_pad(in, len);
    if (len % 4 == 1) return SIZE_MAX; /* a lone 6-bit group cannot end a byte */
    if (len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > cap) return SIZE_MAX;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_val((unsigned char)in[i]);
        if (v < 0) return SIZE_MAX;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return o;
}

bool jwt_shape(const char *tok, size_t len)
{
    size_t dots[2], nd = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)tok[i];
        if (c == '.') {
            if (nd == 2) return false;
            dots[nd++] = i;
        } else if (b64url_val(c) < 0 && c != '=') {
            return false;
        }
    }
    /* header and payload non-empty; the signature may be empty (alg none) */
    return nd == 2 && dots[0] > 0 && dots[1] > dots[0] + 1;
}

/* A claim that is a JSON string, escaped into dst. */
static void claim_str(json_t *obj, const char *key, char *dst, size_t cap, bool *trunc)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_array(v)) /* "aud" may be an array (RFC 7519 §4.1.3) */
        v = json_array_get(v, 0);
    if (!json_is_string(v)) return;
    if (!cred_text_copy(dst, cap, (const uint8_t *)json_string_value(v), json_string_length(v)))
        *trunc = true;
}

/* A NumericDate claim (RFC 7519 §2): integer or real seconds. */
static bool claim_time(json_t *obj, const char *key, int64_t *dst)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v)) {
        *dst = (int64_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d > -9.2e18 && d < 9.2e18) {
            *dst = (int64_t)d;
            return true;
        }
    }
    return false;
}

/* Appends one grant to the space-separated list in dst unless it is
 * already there. A grant holding a space or a control byte cannot be one
 * scope-token (RFC 6749 §3.3): it is escaped by cred_text_copy and kept,
 * so a rule never matches it by accident. */
static void grant_add(char *dst, size_t cap, const char *g, size_t glen, bool *trunc)
{
    if (!glen) return;
    size_t have = strlen(dst);
    for (const char *p = dst; *p;) {
        size_t l = strcspn(p, " ");
        if (l == glen && !memcmp(p, g, glen)) return;
        p += l;
        if (*p) p++;
    }
    char tmp[256];
    if (!cred_text_copy(tmp, sizeof tmp, (const uint8_t *)g, glen)) *trunc = true;
    size_t tl = strlen(tmp);
    if (have + (have ? 1 : 0) + tl + 1 > cap) {
        *trunc = true;
        return;
    }
    if (have) dst[have++] = ' ';
    memcpy(dst + have, tmp, tl + 1);
}

/* `scope`/`scp`/`roles`/`groups`: a space-separated string or an array of
 * strings. Returns true when the claim is present. */
static bool claim_grants(json_t *obj, const char *key, char *dst, size_t cap, bool *trunc)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        for (size_t i = 0; i < n;) {
            size_t l = 0;
            while (i + l < n && s[i + l] != ' ')
                l++;
            grant_add(dst, cap, s + i, l, trunc);
            i += l + 1;
        }
        return true;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (json_is_string(e))
                grant_add(dst, cap, json_string_value(e), json_string_length(e), trunc);
        }
        return true;
    }
    return false;
}

/* Decodes one part and parses it as a JSON object. */
static enum jwt_result part_json(const char *p, size_t len, json_t **out)
{
    uint8_t buf[JWT_MAX_PART];
    size_t n = jwt_b64url_decode(p, len, buf, sizeof buf);
    enum jwt_result r = JWT_OK;
    *out = NULL;
    if (n == SIZE_MAX) {
        /* not base64url at all, or too big: tell the two apart */
        size_t raw = strip_pad(p, len);
        r = raw / 4 * 3 > sizeof buf ? JWT_TOO_BIG : JWT_NOT_JWT;
        OPENSSL_cleanse(buf, sizeof buf);
        return r;
    }
    json_error_t err;
    *out = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &err);
    OPENSSL_cleanse(buf, n);
    if (*out && !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
    }
    return *out ? JWT_OK : JWT_BAD_PAYLOAD;
}

enum jwt_result jwt_parse(const char *tok, size_t len, struct kw_jwt_claims *out, bool *truncated)
{
    bool trunc = false;
    memset(out, 0, sizeof *out);
    if (truncated) *truncated = false;
    if (!jwt_shape(tok, len)) return JWT_NOT_JWT;
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));

    json_t *hdr;
    if (part_json(tok, (size_t)(d1 - tok), &hdr) != JWT_OK)
        return JWT_NOT_JWT; /* a header we cannot read is no evidence of a JWT */
    json_t *alg = json_object_get(hdr, "alg");
    if (!json_is_string(alg)) {
        json_decref(hdr);
        return JWT_NOT_JWT;
    }
    if (!cred_text_copy(out->alg, sizeof out->alg, (const uint8_t *)json_string_value(alg),
                        json_string_length(alg)))
        trunc = true;
    json_decref(hdr);

    json_t *pl;
    enum jwt_result r = part_json(d1 + 1, (size_t)(d2 - d1 - 1), &pl);
    if (r == JWT_NOT_JWT) r = JWT_BAD_PAYLOAD;
    if (r == JWT_OK) {
        claim_str(pl, "iss", out->iss, sizeof out->iss, &trunc);
        claim_str(pl, "sub", out->sub, sizeof out->sub, &trunc);
        claim_str(pl, "aud", out->aud, sizeof out->aud, &trunc);
        claim_str(pl, "client_id", out->client_id, sizeof out->client_id, &trunc);
        if (!out->client_id[0]) /* OIDC Core §2: azp, the authorised party */
            claim_str(pl, "azp", out->client_id, sizeof out->client_id, &trunc);
        out->has_exp = claim_time(pl, "exp", &out->exp);
        out->has_iat = claim_time(pl, "iat", &out->iat);
        out->has_auth_time = claim_time(pl, "auth_time", &out->auth_time);
        bool any = false;
        static const char *const grants[] = {"scope", "scp", "roles", "groups"};
        for (size_t i = 0; i < sizeof grants / sizeof *grants; i++)
            any |= claim_grants(pl, grants[i], out->scope, sizeof out->scope, &trunc);
        out->has_scope = any;
        json_t *cnf = json_object_get(pl, "cnf");
        if (json_is_object(cnf))
            claim_str(cnf, "jkt", out->cnf_jkt, sizeof out->cnf_jkt, &trunc);
        json_decref(pl);
    }
    if (truncated) *truncated = trunc;
    return r;
}

bool jwt_decode(const char *tok, size_t len, struct kw_jwt_claims *out)
{
    return jwt_parse(tok, len, out, NULL) != JWT_NOT_JWT;
}
