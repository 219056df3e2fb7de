/* tls_hs: parsers of the TLS handshake messages keywarden reads, pure
 * functions over the bytes of one whole message body (the 4-byte handshake
 * header already removed): ClientHello and ServerHello (RFC 8446 §4.1.2,
 * §4.1.3; RFC 5246 §7.4.1), and the certificate list of a Certificate
 * message (RFC 8446 §4.4.2, RFC 5246 §7.4.2). The one thing to know: lists
 * are kept up to fixed bounds (what a real hello carries, with room); a
 * longer list is still counted in full (n_*), only its tail is not kept,
 * and `truncated` says so. Nothing here allocates. */
#ifndef KW_TLS_HS_H
#define KW_TLS_HS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tls_hs_type {
    TLS_HS_CLIENT_HELLO = 1,
    TLS_HS_SERVER_HELLO = 2,
    TLS_HS_NEW_SESSION_TICKET = 4,
    TLS_HS_END_OF_EARLY_DATA = 5,
    TLS_HS_ENCRYPTED_EXTENSIONS = 8,
    TLS_HS_CERTIFICATE = 11,
    TLS_HS_SERVER_KEY_EXCHANGE = 12,
    TLS_HS_CERTIFICATE_REQUEST = 13,
    TLS_HS_SERVER_HELLO_DONE = 14,
    TLS_HS_CERTIFICATE_VERIFY = 15,
    TLS_HS_CLIENT_KEY_EXCHANGE = 16,
    TLS_HS_FINISHED = 20,
    TLS_HS_KEY_UPDATE = 24,
};

/* Extension code points used here (IANA TLS ExtensionType registry). */
enum {
    TLS_EXT_SERVER_NAME = 0x0000,
    TLS_EXT_GROUPS = 0x000a,
    TLS_EXT_EC_POINT_FORMATS = 0x000b,
    TLS_EXT_SIG_ALGS = 0x000d,
    TLS_EXT_ALPN = 0x0010,
    TLS_EXT_ENCRYPT_THEN_MAC = 0x0016,
    TLS_EXT_EXTENDED_MASTER_SECRET = 0x0017,
    TLS_EXT_SUPPORTED_VERSIONS = 0x002b,
};

#define TLS_HS_MAX_CIPHERS 128
#define TLS_HS_MAX_EXTS 64
#define TLS_HS_MAX_GROUPS 48
#define TLS_HS_MAX_SIGALGS 64
#define TLS_HS_MAX_VERSIONS 16
#define TLS_HS_MAX_FORMATS 8
#define TLS_HS_MAX_ALPN 8
#define TLS_HS_ALPN_LEN 32

/* One ALPN protocol name, raw bytes (may be anything; RFC 7301 §3.1). */
struct tls_alpn {
    uint8_t len; /* bytes kept (cut to TLS_HS_ALPN_LEN) */
    uint8_t full_len;
    uint8_t last; /* the last byte, kept even when the name is cut (JA4) */
    uint8_t b[TLS_HS_ALPN_LEN];
};

struct tls_client_hello {
    uint16_t legacy_version;
    uint8_t random[32];
    uint8_t sid_len;
    uint8_t sid[32];
    uint16_t ciphers[TLS_HS_MAX_CIPHERS], exts[TLS_HS_MAX_EXTS];
    uint16_t groups[TLS_HS_MAX_GROUPS], sig_algs[TLS_HS_MAX_SIGALGS];
    uint16_t versions[TLS_HS_MAX_VERSIONS];
    uint8_t formats[TLS_HS_MAX_FORMATS];
    /* counts as found in the message; kept entries are min(n, MAX) */
    uint16_t n_ciphers, n_exts, n_groups, n_sig_algs, n_versions, n_formats;
    struct tls_alpn alpn[TLS_HS_MAX_ALPN];
    uint8_t n_alpn;
    bool has_sni, has_alpn;
    char sni[256]; /* host_name, bytes as sent (NUL-terminated, cut to fit) */
    bool truncated; /* a list was longer than kept, or sni was cut */
};

struct tls_server_hello {
    uint16_t legacy_version;
    uint16_t version; /* selected_version (supported_versions) or legacy_version */
    uint8_t random[32];
    uint8_t sid_len;
    uint8_t sid[32];
    uint16_t cipher;
    uint8_t compression;
    uint16_t exts[TLS_HS_MAX_EXTS];
    uint16_t n_exts;
    struct tls_alpn alpn; /* the one protocol chosen; len 0 = none */
    bool has_alpn;
    bool hrr;       /* a HelloRetryRequest (RFC 8446 §4.1.3 special random) */
    bool etm;       /* encrypt_then_mac acknowledged (RFC 7366) */
    bool truncated;
};

/* 0 ok, -1 malformed. Fills *out (zeroed first). */
int tls_parse_client_hello(const uint8_t *p, size_t len, struct tls_client_hello *out);
int tls_parse_server_hello(const uint8_t *p, size_t len, struct tls_server_hello *out);
/* TLS 1.3 EncryptedExtensions (RFC 8446 §4.3.1), decrypted: the server's
 * ALPN choice lives here, not in the ServerHello. Sets out->alpn and
 * has_alpn when present; 0, or -1 when malformed (out untouched then). */
int tls_parse_encrypted_extensions(const uint8_t *p, size_t len, struct tls_server_hello *out);

/* The leaf (first) certificate of a Certificate message body and how many
 * certificates it lists. tls13: the RFC 8446 layout (request context,
 * per-entry extensions). 0 ok (count may be 0: an empty list, as a client
 * without a certificate sends), -1 malformed. *leaf points into p. */
int tls_parse_certificate(const uint8_t *p, size_t len, bool tls13, const uint8_t **leaf,
                          size_t *leaf_len, unsigned *count);

/* RFC 8701 GREASE values (0x?a?a with both bytes equal). */
static inline bool tls_is_grease(uint16_t v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

/* "TLS 1.2", "TLS 1.3", "SSLv3", ... as Suricata names versions;
 * "UNDETERMINED" for anything else. */
const char *tls_version_name(uint16_t v);

#endif
