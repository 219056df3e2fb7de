/* tls_fp: TLS client and server fingerprints from parsed hellos: JA4 and
 * JA4S (FoxIO's published specification, technical_details/JA4.md and
 * JA4S.md of FoxIO-LLC/ja4) and JA3/JA3S (Salesforce's, MD5 of the decimal
 * field lists, GREASE removed as Suricata and Wireshark do). The one thing
 * to know: every hash covers the values as sent, except GREASE (RFC 8701),
 * which all four ignore. */
#ifndef KW_TLS_FP_H
#define KW_TLS_FP_H

#include <stdbool.h>
#include <stddef.h>

#include "tls_hs.h"

#define TLS_JA3_STR_MAX 1536 /* 128 ciphers + 64 exts + 48 groups, 6 chars each */
#define TLS_JA4_LEN 48 /* "t13d1516h2_8daaf6152771_e5627efa2ab1" + NUL, with room */

/* JA3 string (cut to size, never mid-number) and its MD5 in hex. */
void tls_ja3(const struct tls_client_hello *h, char *str, size_t size, char hash[33]);
void tls_ja3s(const struct tls_server_hello *h, char *str, size_t size, char hash[33]);
/* JA4 of a ClientHello over TCP ('t'). original: JA4_o (lists in the order
 * sent, SNI and ALPN kept) instead of JA4. */
void tls_ja4(const struct tls_client_hello *h, bool original, char out[TLS_JA4_LEN]);
/* JA4_r / JA4_ro: the same with the lists in clear instead of hashed. */
void tls_ja4_raw(const struct tls_client_hello *h, bool original, char *out, size_t size);
void tls_ja4s(const struct tls_server_hello *h, char out[TLS_JA4_LEN]);

#endif
