/* metrics: `outputs.metrics: "127.0.0.1:9753"` serves the counters of the
 * stats record as Prometheus text exposition (format 0.0.4) at /metrics,
 * through libmicrohttpd's own thread.
 *
 * The one thing to know: the packet thread never does extra work per
 * packet for this. About once a second, where `run` already reads the
 * clock, it builds the stats record (the same JSON the EVE `stats` line
 * carries) and hands it over with metrics_publish; a scrape renders the
 * latest one under a mutex that only those two ever take. Which counter
 * becomes which metric is one table in metrics.c: adding a metric is one
 * line there (docs/metrics.md). */
#ifndef KW_METRICS_H
#define KW_METRICS_H

#include <jansson.h>
#include <stddef.h>

#include "kw_err.h"
#include "kw_time.h"

struct metrics;

/* Listens on addr ("127.0.0.1:9753", "[::1]:9753") and starts serving
 * (an empty snapshot until the first publish). Start it after the
 * privilege drop, so its thread holds no capability. KW_E_IO with err
 * set when the address cannot be bound. */
KW_WUR enum kw_err metrics_start(const char *addr, struct metrics **out, char *err, size_t errlen);

/* Takes stats (the "stats" object of a stats record; reference stolen)
 * as the snapshot the next scrapes see; at is its wall-clock time. */
void metrics_publish(struct metrics *m, json_t *stats, kw_ts at);

/* Renders a stats object as exposition text into buf (always
 * NUL-terminated); returns the length it needed (> len - 1 = cut). */
size_t metrics_render(const json_t *stats, kw_ts at, char *buf, size_t len);

void metrics_stop(struct metrics *m);

#endif
