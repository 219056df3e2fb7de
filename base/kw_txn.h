/* kw_txn: the compact, self-contained record of one HTTP transaction after
 * parsing and attribution. It is the boundary between the packet path
 * (workers) and the judge, the audit trail and the alerts: it owns all its
 * bytes (fixed, bounded buffers; longer values are cut and flagged), so it
 * can cross a queue and outlive the stream buffers it came from.
 *
 * It never holds a secret: the credential is a fingerprint and a hint. */
#ifndef KW_TXN_H
#define KW_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kw_addr.h"
#include "kw_time.h"

/* Flags on a transaction; X(enum suffix, EVE name). */
#define KW_TXN_FLAGS(X)                                                      \
    X(NO_RESPONSE, "no_response")          /* request seen, response missing */ \
    X(NO_REQUEST, "no_request")            /* response without its request */ \
    X(GAP_REQUEST, "gap_in_request")       /* loss inside the request */       \
    X(GAP_RESPONSE, "gap_in_response")     /* loss inside the response */      \
    X(RESYNC, "resynchronised")            /* parser skipped to this message */ \
    X(TRUNCATED_FIELD, "field_truncated")  /* a value was cut to fit */        \
    X(PATH_ENCODED_SLASH, "path_encoded_slash") /* %2f or %5c in path */       \
    X(PATH_DOT_SEGMENTS, "path_dot_segments")                                  \
    X(PATH_DOUBLE_SLASH, "path_double_slash")                                  \
    X(PATH_NUL, "path_nul")                                                    \
    X(PATH_BAD_ENCODING, "path_bad_encoding")                                  \
    X(PATH_PERCENT_ENCODED, "path_percent_encoded") /* unreserved chars encoded */ \
    X(UPGRADE, "upgrade")                  /* Upgrade/WebSocket: parsing stopped */ \
    X(CONNECT, "connect")                  /* CONNECT tunnel: parsing stopped */ \
    X(EXPECT_100, "expect_100")                                                \
    X(PIPELINED, "pipelined")                                                  \
    X(PARSE_ERROR, "parse_error")                                              \
    X(BODY_TRUNCATED, "body_truncated")    /* connection ended inside the body */ \
    X(HTTP09, "http09")                                                        \
    X(TLS, "tls")                          /* decrypted from a TLS session */  \
    X(TLS_SESSION, "tls_session")          /* a TLS session, no HTTP: the record of its handshake */ \
    X(GRPC, "grpc")                        /* HTTP/2 stream carrying gRPC */     \
    X(PUSHED, "server_push")               /* HTTP/2 stream promised by the server */ \
    X(STREAM_RESET, "stream_reset")        /* HTTP/2 RST_STREAM ended the stream */ \
    X(HEADERS_UNDECODABLE, "headers_undecodable") /* an HPACK block could not be decoded */ \
    X(PATH_DOUBLE_ENCODED, "path_double_encoded") /* %25 then two hex digits: %252e */ \
    X(PATH_OVERLONG_UTF8, "path_overlong_utf8") /* %c0%ae: '.' spelt in two bytes */ \
    X(METHOD_OVERRIDE, "method_override") /* X-HTTP-Method-Override & co., ?_method= */ \
    X(URL_OVERRIDE, "url_override")       /* X-Original-URL, X-Rewrite-URL */

enum kw_txn_flag_bit {
#define KW_TXN_FLAG_BIT(n, s) KW_TXN_BIT_##n,
    KW_TXN_FLAGS(KW_TXN_FLAG_BIT)
#undef KW_TXN_FLAG_BIT
    KW_TXN_BIT__COUNT
};
#define KW_TXN_F(n) (UINT32_C(1) << KW_TXN_BIT_##n)

/* Where a request asks a backend to run another method or target
 * (kw_txn.ovr_method_src / ovr_url_src; analyzer/path/persona.h). */
enum kw_ovr_src {
    KW_OVR_NONE = 0,
    KW_OVR_X_HTTP_METHOD_OVERRIDE, /* Google APIs, Express method-override, ASP.NET Core */
    KW_OVR_X_HTTP_METHOD,          /* OData, SharePoint, ASP.NET Web API */
    KW_OVR_X_METHOD_OVERRIDE,      /* older REST toolkits */
    KW_OVR_QUERY_METHOD,           /* ?_method=DELETE (Rails, Laravel, Express) */
    KW_OVR_X_ORIGINAL_URL,         /* IIS URL Rewrite; Symfony/Zend on IIS */
    KW_OVR_X_REWRITE_URL,          /* ISAPI_Rewrite; Symfony/Zend on IIS */
    KW_OVR__COUNT
};
/* "X-HTTP-Method-Override", ..., "?_method"; "" for none or past the end. */
const char *kw_txn_ovr_src_name(unsigned src);

enum kw_cred_kind {
    KW_CRED_NONE = 0,
    KW_CRED_BEARER,  /* opaque bearer token */
    KW_CRED_JWT,     /* bearer (or key) that is a JWT */
    KW_CRED_BASIC,   /* identified by user name; password never kept */
    KW_CRED_API_KEY, /* header or query parameter */
    KW_CRED_OTHER,   /* Authorization scheme we do not decode (Digest, ...) */
    KW_CRED_CLIENT_CERT, /* TLS client certificate: fingerprint = its SHA-256 */
};

struct kw_jwt_claims {
    char iss[256];
    char sub[256];
    char aud[256];
    char client_id[128]; /* client_id, or azp when client_id is absent */
    char alg[16];
    int64_t exp, iat;    /* valid when has_exp / has_iat */
    bool has_exp, has_iat;
    /* What the token says its holder may do (issue 17): `scope` (RFC 8693
     * §4.2, space-separated) and `scp` (an array or a string, as Azure AD
     * and Okta write it), then `roles` and `groups`, joined by single
     * spaces, duplicates kept out. has_scope: at least one of those claims
     * was present (an empty grant is then a grant of nothing). */
    char scope[512];
    bool has_scope;
    bool has_auth_time;
    int64_t auth_time; /* OIDC Core §2: when the user authenticated */
    char cnf_jkt[48];  /* RFC 9449 §6.1: the DPoP key the token is bound to */
};

/* What a request's DPoP proof (RFC 9449 §4) says, read from its `DPoP`
 * header: never the proof itself, only what the judge compares with the
 * request and the access token. */
enum kw_dpop_state {
    KW_DPOP_NONE = 0, /* no DPoP header */
    KW_DPOP_PARSED,   /* a proof whose header and claims could be read */
    KW_DPOP_BAD,      /* present but not a usable proof (error says why) */
};

struct kw_dpop {
    uint8_t state;    /* enum kw_dpop_state */
    bool sig_valid;   /* the signature verifies with the proof's own jwk */
    bool has_iat, has_ath;
    bool ath_match;   /* ath is the SHA-256 of the access token sent with it */
    int64_t iat;
    char alg[16];
    char htm[24];
    char htu[512];
    char jti[72];     /* "sha256:<hex>" of the jti (bounded, comparable) */
    char jkt[48];     /* RFC 7638 thumbprint of the proof's jwk (base64url) */
    char ath[48];     /* the ath claim as sent (base64url SHA-256 of the token) */
    char error[64];   /* KW_DPOP_BAD: why */
};

struct kw_cred {
    uint8_t kind;            /* enum kw_cred_kind */
    char source[64];         /* where found: "header:Authorization", "query:api_key" */
    char fingerprint[72];    /* "sha256:<64 hex>" of the secret; for Basic, of the user name */
    char hint[40];           /* redacted: "sk_l…9f2c", Basic: user name */
    char basic_user[128];    /* Basic only */
    struct kw_jwt_claims jwt; /* KW_CRED_JWT only */
    char cert_subject[256];   /* KW_CRED_CLIENT_CERT only: "O=Acme, CN=acme-etl" */
    bool dpop_scheme;         /* sent as `Authorization: DPoP <token>` (RFC 9449 §7.1) */
    struct kw_dpop dpop;      /* the request's DPoP proof, if any */
};

/* The TLS session a transaction came over (TLS flag), or that a
 * TLS_SESSION record describes. */
struct kw_tls_ref {
    bool decrypted;   /* its records were decrypted (key log) */
    char sni[256];
    char ja4[48];
    char version[16]; /* "TLS 1.3" */
};

struct kw_identity_ref {
    char id[64];   /* empty when no identity claims the credential */
    char name[128];
    char kind[16]; /* contractor | employee | service */
    /* How it was attributed: "credential" (the secret's fingerprint or the
     * client certificate's SHA-256: keywarden saw the thing itself),
     * "cert_subject", "source" (the client address, TLS sessions), or a
     * claim keywarden cannot verify: "basic_user" (the password is not
     * checked), "jwt" (iss+sub; signatures are not verified), "client_id".
     * kw_identity_claimed() says which. */
    char via[16];
};

/* The attribution rests on a name the client asserts (Basic user, JWT
 * claims): the server's answer, not keywarden, vouches for it. */
bool kw_identity_claimed(const struct kw_identity_ref *r);

struct kw_txn {
    uint64_t flow_id;
    kw_ts ts;        /* request start (packet time); response time when no request */
    kw_ts resp_ts;   /* 0 when no response */
    struct kw_addr src, dst;
    uint16_t sport, dport;
    uint8_t tunnel_type; /* enum dec_tunnel_type values */
    uint32_t tunnel_id;
    uint16_t vlan;

    char method[24];
    char protocol[16];     /* "HTTP/1.1" */
    char hostname[256];
    char url[8192];        /* raw request target, as sent (8 KiB, nginx/Apache line limit) */
    char path[2048];       /* normalised path (no query) */
    char template_[512];   /* endpoint template "/v1/orders/{id}" */
    char user_agent[256];
    /* What the request asks the backend to run instead of its own method
     * and target (analyzer/path/persona.h), raw as sent (cut to fit,
     * flagged): empty when it asks nothing. */
    char ovr_url[1024];
    /* The request as its handler sees it, by the service's backend
     * personality (persona_effective, judge stage): empty when the same as
     * method and path. */
    char eff_path[2048];
    int status;            /* 0 when no response */
    uint64_t resp_len;     /* response body bytes */
    uint64_t req_len;      /* request body bytes */
    uint32_t flags;        /* KW_TXN_F(...) */
    /* Bit i: segment i of `path` came back whole as a JSON string value in
     * the start of a 2xx JSON answer (analyzer/path/echo.h): evidence that
     * it is a value, not a route word (docs/shapes.md rule 6). The body
     * itself is never kept. */
    uint32_t resp_echo;
    uint32_t stream_id;    /* HTTP/2 stream id; 0 for HTTP/1 */
    bool has_grpc_status;  /* a grpc-status was seen (gRPC trailers) */
    int32_t grpc_status;   /* 0 OK, 7 PERMISSION_DENIED, 16 UNAUTHENTICATED, ... */
    char grpc_message[128]; /* grpc-message, percent-encoded as sent, cut */
    char ovr_method[24];   /* the method an override header or ?_method= names */
    uint8_t ovr_method_src; /* enum kw_ovr_src: where ovr_method came from */
    uint8_t ovr_url_src;    /* enum kw_ovr_src: where ovr_url came from */
    uint8_t backend;        /* enum rules_backend of the service (judge stage) */
    uint16_t eff_how;       /* what made eff_*: PERSONA_* path bits, PERSONA_EFF_* */
    char eff_method[24];   /* see eff_path */

    struct kw_cred cred;
    struct kw_identity_ref identity;
    struct kw_tls_ref tls; /* with KW_TXN_F(TLS) or KW_TXN_F(TLS_SESSION) */
};

/* Empties a transaction for reuse: every field zero, the large text
 * buffers (~11 KB) only made empty strings, since every writer of them
 * NUL-terminates (a full memset was 6 % of the packet path on small
 * requests). */
void kw_txn_clear(struct kw_txn *t);

/* Packing for the rings between packet workers and the judge (issue 13):
 * a kw_txn is ~15 KB of mostly empty text buffers, and copying all of it
 * into the ring and out again per transaction cost more than judging it.
 * kw_txn_pack writes every byte outside the larger text fields as it is
 * and each of those fields as a length and its used bytes (a few hundred
 * bytes for an API call); kw_txn_unpack restores an equal record (text
 * after a field's NUL is not carried). A field added to kw_txn travels
 * without any change here (as raw bytes, uncompacted until listed).
 * In-process only, same binary both sides: the portable, versioned,
 * validating format across machines is fleet_wire's. */
#define KW_TXN_PACKED_MAX (sizeof(struct kw_txn) + 128)

/* Writes at most KW_TXN_PACKED_MAX bytes to buf; returns how many. */
size_t kw_txn_pack(const struct kw_txn *t, void *buf);

/* Reads what kw_txn_pack wrote into *t (every field set; nothing else
 * needs clearing first); returns the bytes read. */
size_t kw_txn_unpack(struct kw_txn *t, const void *buf);

/* The server refused the credential: 401 or 403, or gRPC status 16
 * (UNAUTHENTICATED) or 7 (PERMISSION_DENIED). Counted as failed
 * authentication by the judge, never learned by the baseline. */
bool kw_txn_refused(const struct kw_txn *t);

/* EVE name of a flag bit; NULL past the end. */
const char *kw_txn_flag_name(unsigned bit);

#endif
