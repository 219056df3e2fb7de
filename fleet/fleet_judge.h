/* fleet_judge: `keywarden judge`, the judging side of the fleet
 * (docs/fleet.md). It finds the (partition, sensor) subjects of the
 * partitions it owns, reads each through a durable pull consumer, merges
 * them in event time (fleet_merge.h) and hands every record to the
 * pipeline's judge stage (pipeline_judge_txn / _flow / _tick), exactly as
 * `run`'s single thread or its judge thread does: attribution, policy,
 * baselines, suppression, audit, EVE and alerts are that code, not a copy.
 *
 * The one thing to know: a message is acknowledged only after its effects
 * are committed. A commit (every commit_every records or commit_ms of
 * wall time) flushes the audit trail, saves the changed baselines, then
 * writes, in one transaction, the position of every source (the last
 * pseq judged) with the policy judge's and the alerts' window tables;
 * only then are the consumers acknowledged. A judge killed at any moment
 * restarts from that commit: the consumers deliver again from their
 * acknowledged floor, what was judged before the commit is skipped by
 * its pseq, the rest is judged again into the same state, so the same
 * alerts come out with the same ids (and the outbox, keyed by id, sends
 * none twice). */
#ifndef KW_FLEET_JUDGE_H
#define KW_FLEET_JUDGE_H

#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "alerts.h"
#include "audit.h"
#include "baseline.h"
#include "kw_err.h"
#include "pipeline.h"
#include "rules.h"

struct fj_config {
    const struct rules_config *rc; /* fleet: section */
    const uint32_t *parts;         /* the partitions this judge owns */
    size_t n_parts;
    struct pipeline *pipe; /* the judge stage (borrowed) */
    struct alerts *alerts;
    struct audit *audit;
    struct baseline *baseline;
    const char *db_path;   /* where positions and windows are committed */
    int64_t commit_ms;     /* 0: 250 */
    uint32_t commit_every; /* records; 0: 5000 */
    bool drain;            /* return once every source has ended and is judged */
    int64_t idle_ms;       /* with drain: also return after this long without a record
                              (0: 15000) */
    void (*each)(void *user); /* once per turn of the loop (reloads, stats); may be NULL */
    void *user;
};

struct fj;

/* Connects (waiting up to 10 s for NATS), opens the checkpoint tables and
 * restores the committed positions and windows. */
enum kw_err fj_new(const struct fj_config *c, struct fj **out) KW_WUR;
/* Judges until *stop is set (or, with drain, the input ended), commits,
 * returns. */
enum kw_err fj_run(struct fj *j, atomic_int *stop) KW_WUR;
void fj_destroy(struct fj *j);

/* The `fleet` object of the stats record (new reference). */
json_t *fj_stats_json(struct fj *j);
void fj_print_summary(struct fj *j, FILE *f);

#endif
