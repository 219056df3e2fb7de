/* pipeline_tls: the pipeline's TLS glue that needs none of its internals:
 * the transaction that stands for a TLS session (KW_TXN_F(TLS_SESSION)),
 * the TLS context of HTTP transactions decrypted from one, and the EVE
 * `tls` record. */
#ifndef KW_PIPELINE_TLS_H
#define KW_PIPELINE_TLS_H

#include <stddef.h>

#include "flow.h"
#include "kw_txn.h"
#include "tls_conn.h"

/* The flow's addresses, ports, tunnel and VLAN into t. */
void ptls_flow_fields(struct kw_txn *t, const struct flow *f);
/* A session record: t cleared and filled (ts: the ClientHello's time, or
 * `ts` when none was seen). The client certificate is its credential. */
void ptls_session_txn(struct kw_txn *t, const struct flow *f, const struct tls_info *ti, kw_ts ts);
/* An HTTP transaction decrypted from the session: the TLS flag and
 * context, and the client certificate as credential when the request
 * carried none. */
void ptls_http_txn(struct kw_txn *t, const struct tls_info *ti);
/* The EVE `tls` record of a session; 0 when it does not fit. */
size_t ptls_format_record(char *buf, size_t size, const struct kw_txn *t, const struct tls_info *ti);

#endif
