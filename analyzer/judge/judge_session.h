/* judge_session: attributed TLS sessions remembered from their handshake
 * to their end, so the bytes they moved reach the identity's baseline.
 *
 * The one thing to know: a session is judged at its handshake (who, when,
 * from where), but how much it moved is known only when its flow ends,
 * possibly hours later and with nothing but the flow id in hand. This is a
 * fixed table (direct-mapped by flow id, nothing allocated per session):
 * a session whose slot was taken by a later one before it ended is not
 * measured, and counted. Judge stage only; not thread-safe. */
#ifndef KW_JUDGE_SESSION_H
#define KW_JUDGE_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "kw_txn.h"

struct judge_sessions;

struct judge_session_counters {
    uint64_t started;  /* sessions remembered */
    uint64_t measured; /* ended and handed on */
    uint64_t evicted;  /* forgotten for a later session before they ended */
};

/* slots: a power of two (0: 4096). NULL when out of memory. */
struct judge_sessions *judge_sessions_new(unsigned slots);
void judge_sessions_destroy(struct judge_sessions *s); /* NULL is a no-op */

/* The session record t was attributed (t->identity.id set) at its
 * handshake: remember it until its flow ends. */
void judge_sessions_start(struct judge_sessions *s, const struct kw_txn *t);

/* The flow flow_id ended at `end` having moved to_server / to_client
 * bytes. When it was a remembered session, fills *t as that session's
 * record at its end (identity id, credential fingerprint and hint, ends,
 * TLS fields; ts = end, req_len/resp_len = the bytes) and forgets it. */
bool judge_sessions_end(struct judge_sessions *s, uint64_t flow_id, kw_ts end, uint64_t to_server,
                        uint64_t to_client, struct kw_txn *t);

void judge_sessions_counters(const struct judge_sessions *s, struct judge_session_counters *out);

#endif
