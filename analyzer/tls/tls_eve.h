/* tls_eve: the `tls` object of EVE records, Suricata's field names (its
 * etc/schema.json `tls`) plus keywarden's own: ja4s, alpn (the protocol
 * the server chose), client_cert {sha256, subject} (what rules name), and
 * decrypted. Suricata's `client` object carries the client certificate's
 * details as its own schema has them. */
#ifndef KW_TLS_EVE_H
#define KW_TLS_EVE_H

#include "kw_jw.h"
#include "tls_conn.h"

/* Writes "tls":{...} as a member of the object open in w. */
void tls_eve_jw(struct kw_jw *w, const struct tls_info *i);

#endif
