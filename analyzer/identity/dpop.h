/* dpop: reads a DPoP proof (RFC 9449, OAuth 2.0 Demonstrating Proof of
 * Possession) from a request's `DPoP` header into struct kw_dpop: the
 * claims the judge compares with the request (htm, htu, iat, jti, ath),
 * the RFC 7638 thumbprint of the proof's public key, and whether the
 * signature verifies with that key.
 *
 * The one thing to know: a proof carries its own public key, so its
 * signature CAN be verified here (libcrypto: ES256/384/512, RS256/384/512,
 * PS256/384/512, EdDSA with Ed25519); what that proves is only that the
 * sender holds the key named by the thumbprint. Whether that key is the one
 * the access token is bound to (cnf.jkt) is the judge's comparison. The
 * proof itself is never kept: the jti is reduced to a fingerprint and the
 * decoded parts are wiped. */
#ifndef KW_DPOP_H
#define KW_DPOP_H

#include <stddef.h>

#include "kw_txn.h"

/* A proof longer than this is refused unread (state BAD, "too long"). */
#define DPOP_MAX_PROOF 16384

/* Parses proof[0..len) into *out (zeroed first). state is KW_DPOP_PARSED
 * when header and claims could be read (sig_valid says whether the
 * signature verified), KW_DPOP_BAD otherwise with `error` set. */
void dpop_parse(const char *proof, size_t len, struct kw_dpop *out);

/* Frees this thread's cache of proof keys (the last 16 built, by
 * thumbprint). Call before a thread that parsed proofs ends; harmless
 * when it parsed none. */
void dpop_thread_cleanup(void);

/* True when the proof's ath is the SHA-256 a credential fingerprint
 * ("sha256:<hex>", cred_fingerprint) names. */
bool dpop_ath_matches(const struct kw_dpop *d, const char *fingerprint);

/* The thumbprint (RFC 7638, SHA-256, base64url without padding: 43
 * characters) of a JWK given as JSON text; false when the key is not an
 * EC, RSA or OKP public key with its required members. */
bool dpop_jwk_thumbprint(const char *jwk_json, size_t len, char out[48]);

#endif
