/* jwt: recognises a JSON Web Token (RFC 7519) and decodes its claims for
 * attribution. The one thing to know: nothing here VERIFIES a signature.
 * keywarden holds no keys; the claims say who the token claims to be, which
 * is what a passive monitor needs to attribute traffic (a forged token is
 * still attributed to the identity it names, and the server's 401 shows it
 * was refused). Claims are network bytes: every string is escaped into
 * valid UTF-8 (cred_text_copy) before it reaches struct kw_jwt_claims. */
#ifndef KW_JWT_H
#define KW_JWT_H

#include <stdbool.h>
#include <stddef.h>

#include "kw_txn.h"

/* A JWS compact part (header or payload) over this many DECODED bytes is
 * not decoded. */
#define JWT_MAX_PART 8192

enum jwt_result {
    JWT_OK,          /* header and payload decoded */
    JWT_NOT_JWT,     /* not three base64url parts with a JSON header holding "alg" */
    JWT_TOO_BIG,     /* a JWT whose payload (or header) exceeds JWT_MAX_PART: alg only */
    JWT_BAD_PAYLOAD, /* a JWT whose payload is not a JSON object: alg only */
};

/* Decodes tok[0..len) into *out (zeroed first). Returns false if tok is not
 * a JWT. A JWT whose payload cannot be decoded still returns true (with
 * alg set and no other claims); jwt_parse says why. */
bool jwt_decode(const char *tok, size_t len, struct kw_jwt_claims *out);

/* Same as jwt_decode, with the detailed outcome. *truncated (may be NULL)
 * is set when a claim was cut to fit its field. */
enum jwt_result jwt_parse(const char *tok, size_t len, struct kw_jwt_claims *out, bool *truncated);

/* base64url (RFC 4648 §5; trailing '=' tolerated) into out[cap]: the
 * decoded length, or SIZE_MAX when in is not base64url or does not fit. */
size_t jwt_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* Quick shape test without decoding: three parts of base64url characters
 * (optional '=' padding), the first two non-empty. */
bool jwt_shape(const char *tok, size_t len);

#endif
