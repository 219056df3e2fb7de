/* kw_eve: the EVE JSON line writer (file or stdout) shared by every module
 * that emits records. One record per line, flushed per batch; a mutex makes
 * it safe to call from the packet thread and the alert thread. Also builds
 * the common header of flow-bound records. */
#ifndef KW_EVE_H
#define KW_EVE_H

#include <jansson.h>
#include <stdbool.h>

#include "kw_err.h"
#include "kw_time.h"
#include "kw_txn.h"

struct kw_eve;

/* path "-" is stdout. The directory must exist. */
enum kw_err kw_eve_open(const char *path, struct kw_eve **out) KW_WUR;
void kw_eve_close(struct kw_eve *e);
/* Writes and releases the caller's reference to rec. NULL e: just releases. */
void kw_eve_write(struct kw_eve *e, json_t *rec);
void kw_eve_flush(struct kw_eve *e);
/* Records lost to a failed output (the first failure is logged once). */
uint64_t kw_eve_dropped(struct kw_eve *e);
/* Writes one record already rendered as JSON text (no newline). */
void kw_eve_write_text(struct kw_eve *e, const char *text, size_t len);

struct kw_jw;
/* The common fields of a flow-bound record, written as members of the
 * object open in w: timestamp, flow_id, event_type, addresses, ports,
 * proto, vlan, tunnel. */
void kw_eve_jw_txn_header(struct kw_jw *w, const struct kw_txn *t, const char *event_type,
                          kw_ts ts);
/* "http":{...}, "credential":{...} (absent without one) and
 * "identity":{...} (absent when unattributed) of a transaction. */
void kw_eve_jw_http(struct kw_jw *w, const struct kw_txn *t);
void kw_eve_jw_cred(struct kw_jw *w, const struct kw_txn *t);
void kw_eve_jw_identity(struct kw_jw *w, const struct kw_txn *t);

/* {"timestamp":..,"flow_id":..,"event_type":..,"src_ip":..,...,"tunnel":..}
 * for a transaction. New reference. */
json_t *kw_eve_txn_header(const struct kw_txn *t, const char *event_type, kw_ts ts);
/* The "http", "credential" and "identity" objects of a transaction; each
 * a new reference, credential/identity NULL when absent. */
json_t *kw_eve_http_obj(const struct kw_txn *t);
json_t *kw_eve_cred_obj(const struct kw_txn *t);
json_t *kw_eve_identity_obj(const struct kw_txn *t);
const char *kw_tunnel_type_name(unsigned type);

#endif
