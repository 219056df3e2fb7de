/* fleet_sensor: `run` as a sensor of a fleet (docs/fleet.md). Plugged into
 * the pipeline as its forward, it takes every record the judge stage would
 * have judged (transactions, attributed; ended flows; the baselines' clock)
 * and publishes it to NATS JetStream, subject kw.txn.<partition>.<sensor>,
 * message id <sensor>:<epoch>:<partition>:<pseq>.
 *
 * Two threads: the forward's caller (the packet thread, or the workers'
 * judge thread) encodes each record and hands it over a bounded queue;
 * the publisher thread numbers it in its partition, appends it to the
 * spool (fleet_spool.h), publishes from the spool asynchronously and
 * releases it once JetStream acknowledged it. A failed or unanswered
 * publish, or a lost connection, rewinds to the first unacknowledged
 * record and sends again: JetStream's duplicate window and the judge's
 * per-partition numbers drop what arrives twice.
 *
 * Clock marks: when the packet clock enters a new hour (where the single
 * run's baseline tick closes hour buckets), every partition gets a TICK
 * mark; every 100 ms of wall time a partition that got no record since
 * gets a plain mark with the sensor's packet time, so a judge knows how
 * far the sensor has got even when a partition is quiet (this bounds how
 * long a judge holds a record back); at the end an END mark.
 *
 * The one thing to know: nothing is lost while the spool has room, even
 * across a sensor restart; a record that finds the spool full is counted
 * by kind (with the packet times of the first and last), never numbered,
 * so partitions stay gap-free and the judge knows what is missing from
 * the counts the marks carry. */
#ifndef KW_FLEET_SENSOR_H
#define KW_FLEET_SENSOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "fleet_nats.h"
#include "kw_err.h"
#include "pipeline.h"

struct fs_config {
    const char *sensor;
    uint32_t partitions;
    struct fn_opts nats; /* on_ack and user are the sensor's */
    const char *spool_dir;
    uint64_t spool_max;
    bool block_when_full; /* offline replay: the queue waits instead of dropping */
};

struct fs;

/* From the config's fleet: section; the spool defaults to spool-<sensor>
 * next to db_path. `spool_buf` holds that path. */
void fs_config_from_rules(const struct rules_config *rc, const char *db_path, bool offline,
                          struct fs_config *c, char *spool_buf, size_t spool_len);

enum kw_err fs_new(const struct fs_config *c, struct fs **out) KW_WUR;
/* The forward to put in pipeline_config (lives as long as s). */
const struct pipeline_forward *fs_forward(struct fs *s);
/* End of input at packet time `now`: END marks, then keeps publishing
 * until every record is acknowledged, or nothing moved for `idle_ms`
 * (NATS away: the rest stays in the spool for the next run). */
void fs_finish(struct fs *s, kw_ts now, int64_t idle_ms);
/* fs_finish for `run`: waits up to 30 s without progress, prints what
 * was published, is left in the spool and was lost (always when anything
 * was lost, else unless quiet). KW_E_LIMIT when records were lost. */
enum kw_err fs_finish_run(struct fs *s, kw_ts now, bool quiet);
void fs_destroy(struct fs *s);

struct fs_stats {
    uint64_t records, txns, tls, flows, marks; /* emitted by the packet path */
    uint64_t spooled;                     /* numbered and kept in the spool */
    uint64_t published;                   /* acknowledged by JetStream */
    uint64_t resent;                      /* published again after a failure */
    uint64_t dropped_txns, dropped_flows, dropped_marks; /* spool full (TLS sessions count as
                                                            transactions) */
    kw_ts dropped_first, dropped_last;    /* packet times of the first and last dropped */
    uint64_t queue_dropped;               /* live capture: the hand-over queue was full */
    uint64_t disconnects;
    uint64_t spool_bytes, spool_io_errors, spool_cut;
    uint64_t waiting; /* after fs_finish: records left in the spool for the next run */
};
void fs_get_stats(struct fs *s, struct fs_stats *out);
/* The `fleet` object of the stats record. New reference. */
json_t *fs_stats_json(struct fs *s);

#endif
