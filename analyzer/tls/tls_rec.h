/* tls_rec: the TLS record layer framing (RFC 8446 §5.1, RFC 5246 §6.2):
 * a 5-byte header (content type, legacy version, length) in front of each
 * fragment. Pure functions over bytes. The one thing to know: after loss
 * the stream is re-entered by scanning for a plausible header whose
 * successor header (when in view) is plausible too, so a random byte run
 * that happens to look like one header is not enough. */
#ifndef KW_TLS_REC_H
#define KW_TLS_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tls_content_type {
    TLS_CT_CHANGE_CIPHER_SPEC = 20,
    TLS_CT_ALERT = 21,
    TLS_CT_HANDSHAKE = 22,
    TLS_CT_APPLICATION_DATA = 23,
    TLS_CT_HEARTBEAT = 24,
};

#define TLS_REC_HDR 5
/* TLSCiphertext.length may reach 2^14 + 2048 (RFC 5246 §6.2.3). */
#define TLS_REC_MAX (16384 + 2048)

struct tls_rec_hdr {
    uint8_t type;
    uint16_t version;
    uint16_t len;
};

/* 1: a plausible header at p (filled), 0: fewer than 5 bytes, -1: not a
 * TLS record header. */
int tls_rec_header(const uint8_t *p, size_t n, struct tls_rec_hdr *h);

/* Offset of the first position in p[0..n) where a record plausibly
 * starts (its header, and the next one when it lies within n), or n when
 * none; positions in the last 4 bytes that could begin a header are not
 * skipped (returned) so that more data can decide. */
size_t tls_rec_resync(const uint8_t *p, size_t n);

/* Does a stream start like TLS? 1 a ClientHello/ServerHello record, 0 no,
 * -1 too few bytes to tell. midstream: any plausible record header. */
int tls_rec_looks_tls(const uint8_t *p, size_t n, bool midstream);

#endif
