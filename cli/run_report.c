/* run_report: what `keywarden run` tells its operator: the periodic and
 * final `stats` EVE record (metrics.c serves the same), the progress line,
 * the summary at the end and, on stderr even with -q, whatever was lost. */
#include <stdio.h>
#include <string.h>

#include "alerts.h"
#include "audit.h"
#include "baseline.h"
#include "cli_util.h"
#include "dbw.h"
#include "fleet_sensor.h"
#include "kw_eve.h"
#include "limits.h"
#include "pipeline.h"
#include "routes.h"
#include "rules.h"
#include "run_int.h"
#include "source.h"
#include "workers.h"

/* The baselines' and the route model's counters. This thread reads them
 * when it owns them; while workers run, the judge thread owns them and
 * copies them with its snapshot (workers_judge_stats). */
struct judge_view {
    struct baseline_stats bs;
    size_t learning;
    bool have_learning;
    struct routes_stats rs;
    bool have_rs;
};

static void judge_view(struct run_ctx *r, kw_ts now, struct judge_view *v)
{
    memset(v, 0, sizeof *v);
    if (r->wk && r->running) {
        bool have = workers_judge_stats(r->wk, &v->bs, &v->learning, &v->rs);
        v->have_learning = have;
        v->have_rs = have && r->routes;
        return;
    }
    baseline_get_stats(r->baseline, &v->bs);
    v->have_learning = true;
    v->learning = baseline_learning_count(r->baseline, now);
    if (r->routes) { /* this thread's model; its save counters under their lock */
        routes_get_stats(r->routes, &v->rs);
        v->have_rs = true;
    }
}

/* What the stats record adds for operators (metrics.c maps it): alerts by
 * kind, severity and sink; baseline findings and profiles learning; the
 * rules' reloads. */
static void stats_more(struct run_ctx *r, json_t *s, const struct alerts_stats *as,
                       const struct judge_view *jv)
{
    json_t *a = json_object_get(s, "alerts"), *k = json_object(), *v = json_object();
    for (int i = 0; i < ALERT__COUNT; i++)
        if (as->by_kind[i])
            json_object_set_new(k, alert_kind_name((enum alert_kind)i),
                                json_integer((json_int_t)as->by_kind[i]));
    static const char *const sev[] = {NULL, "high", "medium", "low"};
    for (int i = 1; i <= 3; i++)
        json_object_set_new(v, sev[i], json_integer((json_int_t)as->by_severity[i]));
    json_object_set_new(a, "by_kind", k);
    json_object_set_new(a, "by_severity", v);
    json_t *sk = json_object();
    for (unsigned i = 0; i < as->n_sinks; i++)
        json_object_set_new(sk, as->sinks[i].key,
                            json_pack("{s:I,s:I,s:I}", "delivered",
                                      (json_int_t)as->sinks[i].delivered, "failed",
                                      (json_int_t)as->sinks[i].failed, "retries",
                                      (json_int_t)as->sinks[i].retries));
    json_object_set_new(a, "sinks", sk);

    const struct baseline_stats *bs = &jv->bs;
    json_t *b = json_object_get(s, "baseline"), *f = json_object();
    static const char *const bk[] = {"unusual_hour", "new_endpoint", "new_source", "volume_spike",
                                     "key_sharing",  "new_client",   "scope_escalation"};
    for (int i = 0; i < 7; i++)
        if (bs->findings[i])
            json_object_set_new(f, bk[i], json_integer((json_int_t)bs->findings[i]));
    json_object_set_new(b, "findings", f);
    if (bs->endpoint_folded)
        json_object_set_new(b, "endpoint_folded", json_integer((json_int_t)bs->endpoint_folded));
    if (jv->have_learning)
        json_object_set_new(b, "learning_profiles", json_integer((json_int_t)jv->learning));
    json_object_set_new(s, "limits", limits_stats_json(&r->lim, s));
    struct rules_model *m = rules_handle_get(r->rules);
    json_object_set_new(s, "rules",
                        json_pack("{s:I,s:I,s:I}", "reloads", (json_int_t)r->reloads,
                                  "reload_failures", (json_int_t)r->reload_failures, "identities",
                                  (json_int_t)(m ? m->n_identities : 0)));
    rules_model_unref(m);
}

json_t *run_stats_record(struct run_ctx *r)
{
    char tsb[40];
    json_t *rec = json_object();
    /* While workers run, their counters are theirs (no lock, no atomics):
     * the record takes the snapshots they last made (workers.h), at most
     * about a second old (loop asks for one every second). */
    kw_ts now = 0;
    json_t *s = !r->wk       ? pipeline_stats_json(r->pipe)
                : r->running ? workers_stats_snapshot(r->wk, &now)
                             : workers_stats_json(r->wk);
    if (!r->wk)
        now = pipeline_now(r->pipe);
    else if (!r->running)
        now = workers_now(r->wk);
    else if (!now) /* live, before any worker's snapshot: the wall clock */
        now = kw_ts_wall();
    json_object_set_new(rec, "timestamp", json_string(kw_ts_format(now, tsb, sizeof tsb)));
    json_object_set_new(rec, "event_type", json_string("stats"));

    struct cap_stats cs;
    cap_get_stats(r->src, &cs);
    json_object_set_new(s, "capture",
                        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "packets", (json_int_t)cs.packets,
                                  "bytes", (json_int_t)cs.bytes, "kernel_recv",
                                  (json_int_t)cs.kernel_recv, "kernel_drop",
                                  (json_int_t)cs.kernel_drop, "iface_drop",
                                  (json_int_t)cs.iface_drop, "truncated_files",
                                  (json_int_t)cs.truncated_files, "read_errors",
                                  (json_int_t)cs.read_errors));
    if (cs.sockets) { /* live: the fanout group's balance */
        json_t *sk = json_array();
        for (unsigned i = 0; i < cs.sockets; i++)
            json_array_append_new(sk, json_integer((json_int_t)cs.socket_packets[i]));
        json_object_set_new(json_object_get(s, "capture"), "socket_packets", sk);
    }
    struct alerts_stats as;
    alerts_get_stats(r->alerts, &as);
    json_t *aj =
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "findings", (json_int_t)as.findings,
                  "alerts", (json_int_t)as.alerts, "suppressed", (json_int_t)as.suppressed,
                  "delivered", (json_int_t)as.delivered, "failed_permanent",
                  (json_int_t)as.failed_permanent, "retries", (json_int_t)as.retries, "backlog",
                  (json_int_t)as.backlog, "db_errors", (json_int_t)as.db_errors);
    json_object_update_new(
        aj, json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "expired", (json_int_t)as.expired,
                      "stored", (json_int_t)as.stored,
                      "replayed", (json_int_t)as.replayed, "not_stored",
                      (json_int_t)as.not_stored, "lost", (json_int_t)as.lost, "state_unsaved",
                      (json_int_t)as.state_unsaved, "digested", (json_int_t)as.digested,
                      "waiting", (json_int_t)as.backlog));
    json_object_set_new(s, "alerts", aj);
    struct audit_stats us;
    audit_get_stats(r->audit, &us);
    json_object_set_new(s, "audit",
                        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "queued",
                                  (json_int_t)us.queued, "written", (json_int_t)us.written,
                                  "dropped", (json_int_t)us.dropped, "skipped",
                                  (json_int_t)us.skipped, "errors", (json_int_t)us.errors,
                                  "duplicates", (json_int_t)us.duplicates, "expired",
                                  (json_int_t)us.expired, "texts_collected",
                                  (json_int_t)us.texts_collected));
    struct judge_view jv;
    judge_view(r, now, &jv);
    const struct baseline_stats *bs = &jv.bs;
    json_object_set_new(
        s, "baseline",
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "observed", (json_int_t)bs->observed,
                  "profiles", (json_int_t)bs->profiles, "quarantined", (json_int_t)bs->quarantined,
                  "profile_limit", (json_int_t)bs->profile_limit, "evict_unattributed",
                  (json_int_t)bs->evict_unattributed, "saves", (json_int_t)bs->saves, "save_errors",
                  (json_int_t)bs->save_errors, "refused", (json_int_t)bs->refused, "load_invalid",
                  (json_int_t)bs->load_invalid));
    struct dbw_stats ds;
    dbw_get_stats(r->dbw, &ds);
    json_object_set_new(
        s, "database",
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:b,s:s}", "transactions", (json_int_t)ds.transactions,
                  "failures", (json_int_t)ds.failures, "jobs_failed", (json_int_t)ds.jobs_failed,
                  "busy_retries", (json_int_t)ds.busy_retries, "busy_ms",
                  (json_int_t)ds.busy_ms, "read_only", ds.read_only, "cause", ds.cause));
    struct kw_eve_stats es;
    kw_eve_get_stats(r->eve, &es);
    json_object_set_new(s, "eve",
                        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "written", (json_int_t)es.written,
                                  "dropped", (json_int_t)es.dropped, "write_errors",
                                  (json_int_t)es.write_errors, "recoveries",
                                  (json_int_t)es.recoveries, "reopens", (json_int_t)es.reopens,
                                  "torn_cut", (json_int_t)es.torn_cut));
    if (jv.have_rs) {
        const struct routes_stats rs = jv.rs;
        json_object_set_new(
            s, "shapes",
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "learned",
                      (json_int_t)rs.learned,
                      "looked_up", (json_int_t)rs.looked_up, "services", (json_int_t)rs.services,
                      "nodes", (json_int_t)rs.nodes, "merges", (json_int_t)rs.merges,
                      "echoed", (json_int_t)rs.echoed, "renamed",
                      (json_int_t)rs.renamed, "limit_nodes", (json_int_t)rs.limit_nodes,
                      "limit_services", (json_int_t)rs.limit_services, "too_deep",
                      (json_int_t)rs.too_deep, "loaded", (json_int_t)rs.loaded, "load_refused",
                      (json_int_t)rs.load_refused, "saves", (json_int_t)rs.saves, "save_errors",
                      (json_int_t)rs.save_errors));
    }
    stats_more(r, s, &as, &jv);
    if (r->fleet)
        json_object_set_new(s, "fleet", fs_stats_json(r->fleet));
    json_object_set_new(s, "threads", cli_threads_json());
    json_object_set_new(rec, "stats", s);
    return rec;
}

/* The alerts that failed for good, one line each (the first few). */
static void print_failures(struct run_ctx *r)
{
    struct alerts_failure f[5];
    unsigned n = alerts_failures(r->alerts, f, 5);
    for (unsigned i = 0; i < n && i < 5; i++)
        fprintf(stderr, "keywarden: failed for good: alert %s to %s: %s\n", f[i].id, f[i].sink,
                f[i].why);
    if (n > 5)
        fprintf(stderr, "keywarden: ... and %u more failed for good (EVE has every alert)\n",
                n - 5);
}

/* Whatever did not reach where it was going: audit rows, EVE records,
 * alerts not stored or never to be delivered, baselines not saved. Said
 * on stderr even with -q, and the exit code is 1 (docs/operations.md). */
uint64_t run_report_losses(struct run_ctx *r, bool baselines_saved)
{
    struct alerts_stats as;
    struct audit_stats us;
    struct kw_eve_stats es;
    struct dbw_stats ds;
    alerts_get_stats(r->alerts, &as);
    audit_get_stats(r->audit, &us);
    kw_eve_get_stats(r->eve, &es);
    dbw_get_stats(r->dbw, &ds);
    uint64_t lost = us.dropped + us.errors + es.dropped + as.not_stored + as.lost +
                    as.failed_permanent + !baselines_saved;
    if (!lost)
        return 0;
    fprintf(stderr,
            "keywarden: LOST: %llu audit rows (%llu queue full, %llu refused by the database), "
            "%llu EVE records, %llu alerts not stored in the database, %llu alert deliveries "
            "(%llu failed for good, %llu never sent)%s\n",
            (unsigned long long)(us.dropped + us.errors), (unsigned long long)us.dropped,
            (unsigned long long)us.errors, (unsigned long long)es.dropped,
            (unsigned long long)as.not_stored, (unsigned long long)(as.failed_permanent + as.lost),
            (unsigned long long)as.failed_permanent, (unsigned long long)as.lost,
            baselines_saved ? "" : "; baselines not saved");
    if (ds.cause[0])
        fprintf(stderr, "keywarden: database %s: %s\n", r->db_path, ds.cause);
    if (as.failed_permanent)
        print_failures(r);
    return lost;
}

void run_print_summary(struct run_ctx *r, double secs)
{
    const struct pipeline_counters *pc =
        r->wk ? workers_counters(r->wk) : pipeline_counters(r->pipe);
    struct cap_stats cs;
    struct alerts_stats as;
    struct audit_stats us;
    struct kw_eve_stats es;
    cap_get_stats(r->src, &cs);
    alerts_get_stats(r->alerts, &as);
    audit_get_stats(r->audit, &us);
    kw_eve_get_stats(r->eve, &es);
    fprintf(stderr,
            "keywarden: %llu packets (%.1f MB) in %.1f s; %llu malformed, %llu kernel drops\n"
            "keywarden: %llu HTTP transactions in %llu HTTP flows (%llu other flows); "
            "%llu attributed, %llu with an unknown credential, %llu without credential\n"
            "keywarden: %llu findings -> %llu alerts (%llu suppressed as repeats); "
            "%llu stored, %llu not stored; %llu delivered (+%llu in digests), %llu failed for "
            "good, %llu waiting in the outbox, %llu lost\n"
            "keywarden: audit trail %llu rows written, %llu dropped (%llu queue full, %llu "
            "database), %llu already recorded; EVE: %s; %llu records, %llu dropped; database: "
            "%s\n",
            (unsigned long long)pc->packets, (double)pc->bytes / 1e6, secs,
            (unsigned long long)pc->decode_malformed, (unsigned long long)cs.kernel_drop,
            (unsigned long long)pc->transactions, (unsigned long long)pc->http_flows,
            (unsigned long long)pc->non_http_flows, (unsigned long long)pc->attributed,
            (unsigned long long)pc->unattributed_with_credential,
            (unsigned long long)pc->without_credential, (unsigned long long)pc->findings,
            (unsigned long long)as.alerts, (unsigned long long)as.suppressed,
            (unsigned long long)as.stored, (unsigned long long)as.not_stored,
            (unsigned long long)as.delivered, (unsigned long long)as.digested,
            (unsigned long long)as.failed_permanent, (unsigned long long)as.backlog,
            (unsigned long long)as.lost, (unsigned long long)us.written,
            (unsigned long long)(us.dropped + us.errors), (unsigned long long)us.dropped,
            (unsigned long long)us.errors, (unsigned long long)us.duplicates, r->eve_path,
            (unsigned long long)es.written, (unsigned long long)es.dropped, r->db_path);
    json_t *st = r->wk ? workers_stats_json(r->wk) : pipeline_stats_json(r->pipe);
    limits_summary(&r->lim, st, stderr);
    json_decref(st);
    if (cs.truncated_files)
        fprintf(stderr, "keywarden: %llu capture file(s) ended mid-packet (read to the last "
                        "whole packet)\n",
                (unsigned long long)cs.truncated_files);
}

void run_progress(struct run_ctx *r, kw_ts started)
{
    uint64_t done = 0, total = 0;
    cap_progress(r->src, &done, &total);
    const struct pipeline_counters *pc =
        r->wk ? workers_counters(r->wk) : pipeline_counters(r->pipe);
    double secs = (double)(kw_ts_wall() - started) / 1e6;
    if (total)
        fprintf(stderr, "\r[%3.0f%%] ", 100.0 * (double)done / (double)total);
    else
        fprintf(stderr, "\r");
    fprintf(stderr, "%llu packets, %.1f MB, %llu transactions, %llu findings, %.0f s   ",
            (unsigned long long)pc->packets, (double)pc->bytes / 1e6,
            (unsigned long long)pc->transactions, (unsigned long long)pc->findings, secs);
}
