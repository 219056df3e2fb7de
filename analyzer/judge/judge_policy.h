/* judge_policy: the policy half of the judge. For each attributed (or
 * unattributed) transaction it checks the identity's rules (schedule,
 * access window, sources, scope/deny, limits) and the credential
 * detections (unknown credential, failed-auth burst, credential stuffing,
 * enumeration, expired token accepted), and hands each finding to a
 * callback (the alerts module's submit, in `run`).
 *
 * The one thing to know: all windowed state lives in fixed-size tables
 * allocated at judge_policy_new (set-associative, least recently seen
 * evicted, every eviction counted), driven by packet time only; a flood of
 * distinct credentials cannot grow memory. Windowed detections fire once
 * when their threshold is crossed and re-arm when the rate falls below it;
 * cross-request dedup is the alerts module's job. Not thread-safe: one
 * judge thread owns it. */
#ifndef KW_JUDGE_POLICY_H
#define KW_JUDGE_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "kw_txn.h"
#include "rules.h"

struct judge_policy_limits {
    size_t keys;  /* windowed counters per detection (identity/credential/source); 0 = 16384 */
    size_t pairs; /* distinct-value memory (stuffing, enumeration); 0 = 65536 */
};

struct judge_policy_counters {
    uint64_t checked; /* transactions judged */
    uint64_t findings[ALERT__COUNT];
    uint64_t key_evictions;  /* a live counter was evicted to make room */
    uint64_t pair_evictions; /* a live distinct value was forgotten */
    uint64_t time_backwards; /* packet time older than the entry's (reordered input) */
    uint64_t scopes_unknown; /* `scopes:` applied but the token shows no grants (opaque, or a
                                JWT without scope/scp/roles/groups): not judged */
};

typedef void (*judge_policy_emit_fn)(void *user, struct alert_finding *f);
/* Asked before a finding's summary and evidence are built (alerts_repeat):
 * true when the finding repeats an open alert and has been counted there,
 * so the rest of it would only be thrown away. */
typedef bool (*judge_policy_repeat_fn)(void *user, struct alert_finding *f);

/* NULL limits = defaults. NULL when out of memory. */
struct judge_policy *judge_policy_new(const struct judge_policy_limits *lim);
void judge_policy_destroy(struct judge_policy *jp);
/* The repeat check (NULL: none, every finding is built and emitted). */
void judge_policy_set_repeat(struct judge_policy *jp, judge_policy_repeat_fn fn, void *user);

/* `id` is rules_attribute()'s answer (NULL when unattributed). Findings are
 * built on the stack; emit must copy what it keeps (alerts_submit does)
 * and takes over the evidence reference. */
void judge_policy_check(struct judge_policy *jp, const struct rules_model *m,
                        const struct rules_identity *id, const struct kw_txn *t,
                        judge_policy_emit_fn emit, void *user);
/* The same, with the scopes the service's OpenAPI document requires of the
 * request's operation (its `security`; NULL when none): they apply where no
 * `scopes:` entry of the rules files does (docs/oauth.md). */
void judge_policy_check_doc(struct judge_policy *jp, const struct rules_model *m,
                            const struct rules_identity *id, const struct kw_txn *t,
                            const struct rules_scope_req *doc, judge_policy_emit_fn emit,
                            void *user);

/* A fleet judge's checkpoint (docs/fleet.md): the live entries of the
 * windowed tables as one blob (*blob malloc'd: free it), and back. Load
 * refuses (KW_E_UNSUPPORTED) a blob of other limits or another build's
 * layout, leaving the tables empty. */
enum kw_err judge_policy_save(const struct judge_policy *jp, uint8_t **blob, size_t *len) KW_WUR;
enum kw_err judge_policy_load(struct judge_policy *jp, const uint8_t *blob, size_t len) KW_WUR;

void judge_policy_get_counters(const struct judge_policy *jp, struct judge_policy_counters *out);
/* Live entries, for tests and stats. */
size_t judge_policy_keys_used(const struct judge_policy *jp);
size_t judge_policy_pairs_used(const struct judge_policy *jp);

#endif
