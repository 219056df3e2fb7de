/* cred: finds the credential a request carries and turns it into something
 * that can be stored: a fingerprint ("sha256:<hex>" of the secret as sent),
 * a redacted hint, and for JWTs the decoded (NOT verified) claims.
 *
 * The one thing to know: the raw secret never leaves this module. Every
 * temporary copy (percent-decoded query value, decoded Basic "user:pass",
 * decoded JWT parts) lives on the stack and is wiped with OPENSSL_cleanse
 * before return; struct kw_cred only ever holds the fingerprint, a hint
 * that shows at most a third of the secret, and non-secret identifiers
 * (a Basic/Digest user name, JWT claims). See docs/credentials.md. */
#ifndef KW_CRED_H
#define KW_CRED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kw_err.h"
#include "kw_slice.h"
#include "kw_txn.h"

enum cred_src_kind { CRED_SRC_HEADER, CRED_SRC_QUERY, CRED_SRC_COOKIE };

/* header name (case-insensitive) / query parameter / cookie name (both
 * case-sensitive, as servers treat them) */
struct cred_source {
    enum cred_src_kind kind;
    char name[64];
};

#define CRED_MAX_SOURCES 16
struct cred_config {
    struct cred_source src[CRED_MAX_SOURCES];
    unsigned n;
};

/* Limits (bytes). A Basic value whose decoding exceeds CRED_MAX_BASIC is
 * not decoded (KW_CRED_OTHER, hint "Basic:too-long"); a percent-decoded
 * query/cookie secret longer than CRED_MAX_DECODED is still fingerprinted
 * (streamed) but not checked for a JWT. */
#define CRED_MAX_BASIC 4096
#define CRED_MAX_DECODED 16384

/* Per-caller counters (cred_extract_ex). Plain integers: each worker owns
 * its own and the stats record sums them. */
#define CRED_COUNTERS(X)                                                                           \
    X(found, "credentials found")                                                                  \
    X(none, "requests without a credential")                                                       \
    X(jwt, "JWTs decoded")                                                                         \
    X(jwt_too_big, "JWT header or payload over 8 KiB, claims not decoded")                         \
    X(jwt_bad_payload, "JWT payload not a JSON object (or duplicate claims)")                      \
    X(basic_bad, "Basic value not base64 or without ':'")                                          \
    X(basic_too_long, "Basic value over CRED_MAX_BASIC")                                           \
    X(basic_key, "Basic with empty password, user field treated as a key")                         \
    X(other_scheme, "Authorization scheme not decoded (Digest, AWS4, ...)")                        \
    X(empty_value, "credential source present but empty")                                          \
    X(too_long, "secret over CRED_MAX_DECODED, streamed, JWT check skipped")                       \
    X(field_truncated, "identifier cut to fit its field")                                          \
    X(dpop, "DPoP proofs read")                                                                    \
    X(dpop_bad, "DPoP header that is not a usable proof (or several)")                            \
    X(dpop_bad_signature, "DPoP proof whose signature does not verify with its own key")

struct cred_stats {
#define CRED_STAT_FIELD(n, d) uint64_t n;
    CRED_COUNTERS(CRED_STAT_FIELD)
#undef CRED_STAT_FIELD
};

/* Default, in order: header Authorization (Bearer, Basic, and JWTs inside
 * them), header X-API-Key, header Api-Key, query api_key, query apikey,
 * query access_token. */
void cred_config_default(struct cred_config *cfg);

/* Append a source (for the config loader). KW_E_LIMIT when full,
 * KW_E_INVAL when name is empty or does not fit name[64]. */
KW_WUR enum kw_err cred_config_add(struct cred_config *cfg, enum cred_src_kind kind,
                                   const char *name);

/* Finds the first credential present, in config order, among the request
 * headers and the query string of the raw target, and fills *out (always
 * fully initialised; kind KW_CRED_NONE when nothing is found). Returns true
 * if found. hdrs and target are borrowed for the call only. */
bool cred_extract(const struct cred_config *cfg, const struct kw_hdr *hdrs, size_t n_hdrs,
                  struct kw_slice target, struct kw_cred *out);

/* Same, counting what happened into *st (may be NULL). */
bool cred_extract_ex(const struct cred_config *cfg, const struct kw_hdr *hdrs, size_t n_hdrs,
                     struct kw_slice target, struct kw_cred *out, struct cred_stats *st);

/* "sha256:<64 lowercase hex>" of bytes; out >= 72. */
void cred_fingerprint(const uint8_t *p, size_t len, char out[72]);

/* Redacted hint of a secret into out (>= 16 bytes): first k + "…" + last k
 * printable-ASCII characters (others shown as '?'), k = 4 from 24 bytes up,
 * 2 from 16, 1 from 8, none below: never more than a third of the secret. */
void cred_hint(const uint8_t *p, size_t len, char *out, size_t outlen);

/* Copy network bytes into a NUL-terminated field, keeping valid UTF-8 and
 * escaping control characters and invalid bytes as "\xNN" text (the same
 * form kw_json uses), cut at a character boundary. Returns false when the
 * value was cut to fit. cap >= 1. */
bool cred_text_copy(char *dst, size_t cap, const uint8_t *p, size_t len);

/* Replaces, in a NUL-terminated request target, the value of every query
 * parameter that is a configured credential source (CRED_SRC_QUERY) or on
 * the default redaction list (cred_redact_default_names), names compared
 * case-insensitively after percent-decoding, with "REDACTED", so a secret
 * sent in the URL never reaches a record, a log or the database. Returns
 * true when something was replaced. */
bool cred_redact_target(const struct cred_config *cfg, char *target, size_t cap);

/* The default redaction list, NULL-terminated, lowercase (static). */
const char *const *cred_redact_default_names(void);

#endif
