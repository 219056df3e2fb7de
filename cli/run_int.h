/* run_int: what the files of `keywarden run` share (cmd_run.c runs it,
 * run_report.c reports on it): its options and everything it owns. */
#ifndef KW_RUN_INT_H
#define KW_RUN_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "kw_time.h"
#include "limits.h"
#include "priv.h"
#include "source.h"

struct run_opts {
    const char *config, *rules, *eve, *db, *iface, *user;
    const char *files[CAP_MAX_FILES];
    unsigned n_files;
    char *bpf;
    bool quiet, no_progress;
    long stats_interval_s;
    long workers; /* --workers; -1 = capture.workers of the config */
    const char *keylogs[16]; /* --tls-keylog */
    unsigned n_keylogs;
};

/* Everything the run owns, torn down in reverse. */
struct run_ctx {
    struct run_opts o;
    struct rules_model *model; /* the handle's; borrowed */
    struct rules_handle *rules;
    struct kw_eve *eve;
    struct dbw *dbw; /* the one writer of the database (alerts, audit, baselines) */
    struct alerts *alerts;
    struct audit *audit;
    struct baseline *baseline;
    struct routes *routes; /* learned endpoint templates (judge stage) */
    struct tls_keylog *keylog; /* NULL: no key logs, TLS metadata only */
    struct pipeline *pipe;
    struct workers *wk; /* instead of pipe with 2 workers or more */
    struct cap_source *src;
    const char *db_path, *eve_path;
    struct priv_target priv; /* whom run becomes once capture and EVE are open */
    struct metrics *metrics;  /* outputs.metrics; NULL = off */
    uint64_t reloads, reload_failures;
    bool running; /* the packet loop runs (workers own their counters) */
    bool saved;   /* the end of the run saved the baselines (or tried): not again */
    struct fs *fleet; /* fleet.sensor: records go to NATS, judged by `judge` */
    char spool[4096];
    struct limits_eff lim; /* `limits:`, split over the packet workers */
};

/* The `stats` EVE record of the run so far (a new reference). */
json_t *run_stats_record(struct run_ctx *r);
/* The progress line on stderr (\r, no newline). */
void run_progress(struct run_ctx *r, kw_ts started);
/* The summary on stderr at the end. */
void run_print_summary(struct run_ctx *r, double secs);
/* Says on stderr what was lost (audit rows, EVE records, alerts,
 * baselines) and returns how much; 0 when nothing was. */
uint64_t run_report_losses(struct run_ctx *r, bool baselines_saved);

#endif
