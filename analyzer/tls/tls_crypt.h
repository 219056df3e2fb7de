/* tls_crypt: record decryption for one direction of a TLS session, with
 * the key schedule and the AEAD/CBC work done by OpenSSL's libcrypto
 * (EVP_KDF "HKDF" and "TLS1-PRF", EVP_CIPHER AES-GCM, ChaCha20-Poly1305,
 * AES-CBC, HMAC). TLS 1.3: RFC 8446 §7.1 (HKDF-Expand-Label), §7.2 (key
 * update), §5.2-5.3 (record protection, per-record nonce). TLS 1.2:
 * RFC 5246 §5 (PRF), §6.3 (key block), RFC 5288 (GCM), RFC 7905
 * (ChaCha20-Poly1305), RFC 7366 (encrypt-then-MAC).
 *
 * The one thing to know: key material lives only in struct tls_keys and
 * the cipher context; tls_keys_wipe clears both (OPENSSL_cleanse), and
 * nothing here ever prints a key. */
#ifndef KW_TLS_CRYPT_H
#define KW_TLS_CRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tls_cipher_kind { TLS_CK_GCM = 1, TLS_CK_CHACHA, TLS_CK_CBC };

struct tls_suite {
    uint16_t id;
    uint8_t kind;    /* enum tls_cipher_kind */
    uint8_t key_len; /* bytes */
    uint8_t mac_len; /* CBC: HMAC output (and key) bytes; 0 for AEAD */
    bool sha384;     /* PRF / HKDF hash is SHA-384 (else SHA-256) */
    const char *name;
};

/* The suite, or NULL when keywarden cannot decrypt it. */
const struct tls_suite *tls_suite_find(uint16_t id);

struct tls_keys {
    const struct tls_suite *s;
    void *ctx; /* EVP_CIPHER_CTX */
    void *mac; /* EVP_MAC_CTX (HMAC, CBC suites) */
    bool tls13, etm;
    uint8_t key[32], iv[16], mac_key[48];
    uint8_t secret[48]; /* TLS 1.3 traffic secret (key updates) */
    uint8_t secret_len;
    uint64_t seq; /* next record's sequence number */
};

/* Largest plaintext a record can give (TLSInnerPlaintext included). */
#define TLS_PLAIN_MAX (16384 + 2048)

/* TLS 1.3: keys of a traffic secret (32 or 48 bytes, the suite's hash
 * size); seq restarts at 0. 0 ok, -1 failure (k is wiped). */
int tls13_keys_set(struct tls_keys *k, const struct tls_suite *s, const uint8_t *secret,
                   size_t len);
/* TLS 1.3 KeyUpdate: the next generation of the traffic secret. */
int tls13_key_update(struct tls_keys *k);
/* TLS 1.2: both directions from the master secret and the two randoms. */
int tls12_keys_set(struct tls_keys *cli, struct tls_keys *srv, const struct tls_suite *s,
                   const uint8_t master[48], const uint8_t client_random[32],
                   const uint8_t server_random[32], bool etm);

/* Decrypts one record (hdr: its 5 header bytes; body: the len bytes after
 * them) with sequence number `seq` into out (room for len bytes). Returns
 * the plaintext length and *type (TLS 1.3: the inner content type), or -1
 * when the record does not authenticate. Does not change k->seq. */
int tls_decrypt_seq(struct tls_keys *k, uint64_t seq, const uint8_t hdr[5], const uint8_t *body,
                    size_t len, uint8_t *out, uint8_t *type);

void tls_keys_wipe(struct tls_keys *k);

#endif
