/* tls_conn: one TLS connection seen from the wire, both directions: the
 * record layer, the handshake (ClientHello, ServerHello, certificates),
 * fingerprints, and -- when a key log names the session -- decryption of
 * the records, whose application data goes on to an app-layer parser
 * (HTTP/1, or HTTP/2 when ALPN says h2) through a callback.
 *
 * Feeding contract (as h1): tls_conn_feed returns the bytes consumed, whole
 * records only; the caller keeps the rest and offers it again with more
 * appended. While a session's keys are not (yet) in the key log, its
 * encrypted records are left unconsumed, up to limits.wait_bytes per
 * direction, so keys written a little after the handshake still decrypt
 * them (the reassembly buffer holds them; bounded). After a gap the record
 * layer resynchronises on the next plausible header and decryption tries
 * the next few sequence numbers before giving up on that direction.
 *
 * The one thing to know: keys are derived into the connection when the
 * ServerHello and the key log allow, wiped by tls_conn_close/destroy, and
 * never leave this module except as plaintext records. Not thread-safe:
 * one connection belongs to one packet worker (the key log it reads is
 * shared and locked). */
#ifndef KW_TLS_CONN_H
#define KW_TLS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kw_err.h"
#include "kw_time.h"
#include "tls_crypt.h"
#include "tls_fp.h"
#include "tls_hs.h"
#include "tls_keylog.h"
#include "tls_x509.h"

struct tls_limits {
    uint32_t hs_bytes;     /* one handshake message (certificate chains): 64 KiB */
    uint32_t plain_bytes;  /* decrypted bytes held for the app parser per direction: 256 KiB */
    uint32_t wait_bytes;   /* encrypted bytes held per direction while keys are awaited: 512 KiB */
    uint32_t resync_tries; /* sequence numbers tried after a gap: 64 */
    /* Bytes all connections of a ctx hold (their structs, handshake and
     * plaintext buffers); beyond, a new connection is refused and buffers
     * do not grow (memcap_refusals). 0: unbounded. 512 MiB */
    uint64_t memcap;
};
void tls_limits_default(struct tls_limits *l);
/* The most one connection holds with these limits (every buffer grown). */
size_t tls_conn_mem(const struct tls_limits *l);

/* Everything the `tls` record says about a session. Self-contained (no
 * pointers): it crosses the worker queue as is. */
struct tls_info {
    bool have_ch, have_sh, hrr, resumed, midstream;
    bool decrypted;  /* at least one record decrypted */
    bool keys_found; /* the key log named this session */
    uint16_t version; /* negotiated (ServerHello), 0 before */
    struct tls_client_hello ch;
    struct tls_server_hello sh;
    char ja3[33], ja3s[33], ja4[TLS_JA4_LEN], ja4s[TLS_JA4_LEN];
    char ja3_str[TLS_JA3_STR_MAX], ja3s_str[512];
    struct tls_cert srv_cert, cli_cert;
    uint16_t srv_chain, cli_chain; /* certificates in each Certificate message */
    kw_ts ts_start;                /* first byte of the ClientHello */
    uint64_t bytes[2];             /* TLS bytes per direction (records, headers included) */
    uint64_t plain[2];             /* decrypted application bytes per direction */
};

#define TLS_COUNTERS(X)                                                                   \
    X(sessions, "TLS connections parsed")                                                 \
    X(midstream, "connections picked up after their handshake (no keys possible)")       \
    X(client_hellos, "ClientHello messages")                                             \
    X(server_hellos, "ServerHello messages")                                             \
    X(certificates, "Certificate messages with a certificate")                          \
    X(bad_handshake, "handshake messages that did not parse (counted, skipped)")        \
    X(hs_limit, "handshake messages over limits.hs_bytes (skipped)")                      \
    X(records, "records")                                                                 \
    X(bad_records, "bytes that are not a record header (resynchronised)")                 \
    X(records_decrypted, "records decrypted")                                             \
    X(decrypt_failures, "records that did not authenticate with the session's keys")     \
    X(keys_found, "sessions whose keys were in the key log")                              \
    X(keys_missing, "sessions with a key log but no keys for them (after waiting)")      \
    X(records_waited, "times encrypted records were held for keys not yet logged")       \
    X(unsupported, "sessions with keys but a version or cipher we cannot decrypt")       \
    X(key_updates, "TLS 1.3 KeyUpdate messages applied")                                  \
    X(gaps, "gaps in a TLS stream")                                                       \
    X(gap_bytes, "bytes lost in those gaps")                                              \
    X(resync_bytes, "bytes skipped to find the next record header")                       \
    X(seq_recovered, "decryption resumed after a gap (sequence number found)")           \
    X(dir_lost, "directions whose decryption was given up after a gap")                   \
    X(plain_limit, "decrypted bytes dropped: the app parser did not take them")          \
    X(app_bytes, "decrypted application bytes handed to the app parser")                  \
    X(memcap_refusals, "connections or buffer growths refused by limits.memcap")

struct tls_counters {
#define TLS_CNT_FIELD(n, d) uint64_t n;
    TLS_COUNTERS(TLS_CNT_FIELD)
#undef TLS_CNT_FIELD
};
void tls_counters_add(struct tls_counters *total, const struct tls_counters *c);

struct tls_conn_cb {
    void *user;
    /* Decrypted application data of one direction; returns bytes consumed
     * (the rest is offered again with more). */
    size_t (*on_data)(void *user, int dir, const uint8_t *p, size_t len, kw_ts ts);
    /* Application bytes lost (a gap, or a record that would not decrypt). */
    void (*on_gap)(void *user, int dir, uint64_t len, kw_ts ts);
    /* The handshake is over as far as the wire shows (or the connection
     * ended first): the metadata is final. Called once. */
    void (*on_handshake)(void *user, const struct tls_info *info, kw_ts ts);
};

/* Shared by the connections of one worker: limits, key log, counters,
 * and a scratch buffer for decrypted records. */
struct tls_ctx {
    struct tls_limits lim;
    struct tls_keylog *kl; /* borrowed; NULL: metadata only */
    struct tls_counters cnt;
    uint64_t mem; /* bytes the connections hold now, against lim.memcap */
    uint8_t scratch[TLS_PLAIN_MAX + 256];
};
void tls_ctx_init(struct tls_ctx *x, const struct tls_limits *l, struct tls_keylog *kl);

struct tls_conn;

/* midstream: the connection's start was not seen. */
struct tls_conn *tls_conn_new(struct tls_ctx *x, const struct tls_conn_cb *cb, bool midstream);
/* Wipes the keys and frees. */
void tls_conn_destroy(struct tls_conn *c);

/* dir 0 client->server, 1 server->client. */
size_t tls_conn_feed(struct tls_conn *c, int dir, const uint8_t *p, size_t len, kw_ts ts);
void tls_conn_gap(struct tls_conn *c, int dir, uint64_t len, kw_ts ts);
/* End of the connection: on_handshake if not yet called; keys wiped. */
void tls_conn_close(struct tls_conn *c, kw_ts ts);

const struct tls_info *tls_conn_info(const struct tls_conn *c);
/* The negotiated ALPN is "h2". */
bool tls_info_is_h2(const struct tls_info *i);
/* "h2", "http/1.1" (printable; "" when none) of the negotiated ALPN. */
void tls_info_alpn(const struct tls_info *i, char *out, size_t size);

#endif
