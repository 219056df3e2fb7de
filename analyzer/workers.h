/* workers: the multi-worker packet path of `keywarden run` (capture.workers
 * or --workers N, N >= 2). The calling thread is the dispatcher: it decodes
 * each frame just enough to hash it to a worker, and copies it into that
 * worker's bounded ring. Each worker owns a pipeline in worker mode (its own
 * decoder, defrag, flow table, HTTP parsers, credential extraction) and
 * hands finished transactions and ended flows to ONE judge thread, which
 * owns attribution, the policy judge, the baselines, the audit trail and
 * the EVE writer (pipeline_judge_txn / pipeline_judge_flow).
 *
 * The one thing to know: the judge's order is decided by the data, never by
 * thread timing. Every frame gets a sequence number; every record a worker
 * emits is tagged with it (and, for flows ended by a timeout, with the
 * timeout list and the flow's last packet, as the one flow table would
 * order them); the judge releases a tag only when every worker has passed
 * it. Flow ids are renumbered in creation order, so a replay (-r) gives the
 * same EVE and alerts with 1, 2 or 4 workers.
 *
 * Live (fanout): no dispatcher. Each worker reads its own socket of the
 * capture's PACKET_FANOUT group (cap_next_member: its own kernel ring, no
 * copy), and tags its packets itself from their kernel timestamps; the
 * judge merges the same way. The order across workers then follows the
 * kernel's clock, as far as each quiet worker has said it got; what N
 * workers judge is the same set of transactions and flows as one. */
#ifndef KW_WORKERS_H
#define KW_WORKERS_H

#include "pipeline.h"

struct workers;

/* n >= 2 workers. `pc` as for pipeline_new: its EVE writer, rules model
 * (the reference is taken over), alerts, audit and baselines are used by
 * the judge thread only. `live`: a live capture whose cap_members()
 * sockets (n of them) the workers read themselves (borrowed, open until
 * workers_destroy); NULL: the caller dispatches with workers_packet. */
enum kw_err workers_new(unsigned n, const struct pipeline_config *pc, struct cap_source *live,
                        struct workers **out) KW_WUR;
/* Live: false once a worker's socket ended (a stop, or an error: then
 * *failed is set). The caller waits while it is true. */
bool workers_capturing(const struct workers *w, bool *failed);
/* Dispatcher thread (the caller's): one captured frame. */
void workers_packet(struct workers *w, const struct cap_pkt *pkt);
/* Hand a reloaded rules model to the judge thread (takes the reference). */
void workers_set_model(struct workers *w, struct rules_model *m);
/* OpenAPI documents for the judge thread (pipeline_set_specs). */
void workers_set_specs(struct workers *w, struct oas_set *s);
/* End of input: flush every flow, wait for the judge, join the threads
 * (live: stops every socket first, each read to the end of its ring). */
void workers_finish(struct workers *w);
void workers_destroy(struct workers *w);

kw_ts workers_now(const struct workers *w);
/* Before workers_finish only packets and bytes (the dispatcher's); after
 * it, the sum of every worker and the judge. */
const struct pipeline_counters *workers_counters(const struct workers *w);
/* The summed `stats` object; only after workers_finish. New reference. */
json_t *workers_stats_json(const struct workers *w);
/* While they run (the caller's thread, e.g. once a second): ask every
 * worker and the judge for a snapshot of their counters, which each makes
 * on its own thread when it next looks; and the sum of the latest ones
 * they made (a request or more behind; empty sections before the first),
 * with the newest packet time among them in *now (0: none yet, live). New
 * reference. */
void workers_stats_request(struct workers *w);
json_t *workers_stats_snapshot(struct workers *w, kw_ts *now);
/* While they run: the baselines' and the route model's counters (and the
 * profiles still learning) as the judge thread, their owner, copied them
 * with its last snapshot; false (all zero) before its first. */
bool workers_judge_stats(struct workers *w, struct baseline_stats *bs, size_t *learning,
                         struct routes_stats *rs);

#endif
