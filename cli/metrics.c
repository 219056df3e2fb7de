/* metrics: Prometheus exposition of the stats record over libmicrohttpd
 * (see metrics.h). Text format 0.0.4:
 * https://prometheus.io/docs/instrumenting/exposition_formats/ */
#include "metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kw_addr.h"

/* One metric sample source: `path` into the stats object ("a.b"; one `*`
 * walks every key of an object and gives it to the label `label`; a path
 * ending in `_us` counts microseconds and is served in seconds),
 * exposed as `name` with `type` and `help`. Rows of one family stay
 * together and share help and type; `fixed` adds constant labels
 * (`where="kernel"`). Adding a metric is adding a row. */
struct metric_row {
    const char *name, *type, *path, *label, *fixed, *help;
};

#define C "counter"
#define G "gauge"
static const struct metric_row rows[] = {
    {"keywarden_packets_total", C, "capture.packets", NULL, NULL, "Packets read from the capture"},
    {"keywarden_bytes_total", C, "capture.bytes", NULL, NULL, "Bytes of the packets read"},
    {"keywarden_capture_drops_total", C, "capture.kernel_drop", NULL, "where=\"kernel_ring\"",
     "Packets the capture lost: kernel ring full, or dropped by the interface"},
    {"keywarden_capture_drops_total", C, "capture.iface_drop", NULL, "where=\"interface\"", ""},
    {"keywarden_capture_read_errors_total", C, "capture.read_errors", NULL, NULL,
     "Capture read errors"},
    {"keywarden_flows_total", C, "flow.flows_created", NULL, NULL, "Flows created"},
    {"keywarden_flows_active", G, "flow.flows_active", NULL, NULL, "Flows in the flow table"},
    /* counted as each is made: http.transactions adds a connection's at
     * its end, which a kept-alive connection may not reach for hours */
    {"keywarden_transactions_total", C, "pipeline.transactions_h1", NULL, "protocol=\"HTTP/1\"",
     "Request/response transactions, by protocol"},
    {"keywarden_transactions_total", C, "pipeline.transactions_h2", NULL, "protocol=\"HTTP/2\"",
     ""},
    {"keywarden_credentials_total", C, "pipeline.cred_bearer", NULL, "kind=\"bearer\"",
     "Transactions by the kind of credential they carried"},
    {"keywarden_credentials_total", C, "pipeline.cred_jwt", NULL, "kind=\"jwt\"", ""},
    {"keywarden_credentials_total", C, "pipeline.cred_basic", NULL, "kind=\"basic\"", ""},
    {"keywarden_credentials_total", C, "pipeline.cred_api_key", NULL, "kind=\"api_key\"", ""},
    {"keywarden_credentials_total", C, "pipeline.cred_other", NULL, "kind=\"other\"", ""},
    {"keywarden_credentials_total", C, "pipeline.without_credential", NULL, "kind=\"none\"", ""},
    {"keywarden_attribution_total", C, "pipeline.attributed", NULL, "result=\"known\"",
     "Transactions by attribution: a known identity, an unknown credential, no credential"},
    {"keywarden_attribution_total", C, "pipeline.unattributed_with_credential", NULL,
     "result=\"unknown\"", ""},
    {"keywarden_attribution_total", C, "pipeline.without_credential", NULL, "result=\"none\"", ""},
    {"keywarden_findings_total", C, "policy.findings.*", "kind", "source=\"policy\"",
     "Findings of the judge, by kind and source (policy rules, learned baselines)"},
    {"keywarden_findings_total", C, "baseline.findings.*", "kind", "source=\"baseline\"", ""},
    {"keywarden_alerts_total", C, "alerts.by_kind.*", "kind", NULL,
     "Alerts raised (after suppression), by kind"},
    {"keywarden_alerts_by_severity_total", C, "alerts.by_severity.*", "severity", NULL,
     "Alerts raised, by severity"},
    {"keywarden_alerts_suppressed_total", C, "alerts.suppressed", NULL, NULL,
     "Findings folded into an alert already raised"},
    {"keywarden_outbox_depth", G, "alerts.backlog", NULL, NULL,
     "Alert deliveries waiting in the outbox"},
    {"keywarden_alert_deliveries_total", C, "alerts.sinks.*.delivered", "sink", NULL,
     "Alerts delivered, by sink (a hash of its URL)"},
    {"keywarden_alert_delivery_failures_total", C, "alerts.sinks.*.failed", "sink",
     "final=\"true\"", "Failed deliveries by sink: failed for good, or to be retried"},
    {"keywarden_alert_delivery_failures_total", C, "alerts.sinks.*.retries", "sink",
     "final=\"false\"", ""},
    {"keywarden_audit_rows_total", C, "audit.written", NULL, "result=\"written\"",
     "Audit trail rows written and dropped"},
    {"keywarden_audit_rows_total", C, "audit.dropped", NULL, "result=\"dropped\"", ""},
    {"keywarden_audit_rows_total", C, "audit.errors", NULL, "result=\"refused\"", ""},
    {"keywarden_audit_rows_total", C, "audit.duplicates", NULL, "result=\"duplicate\"", ""},
    {"keywarden_alerts_not_stored_total", C, "alerts.not_stored", NULL, NULL,
     "Alerts the database refused (still delivered from memory)"},
    {"keywarden_alert_deliveries_lost_total", C, "alerts.lost", NULL, NULL,
     "Alert deliveries that will never happen (not stored, and memory full or the end)"},
    {"keywarden_database_failures_total", C, "database.failures", NULL, NULL,
     "Database transactions that failed (disk full, read-only, damaged...)"},
    {"keywarden_database_busy_retries_total", C, "database.busy_retries", NULL, NULL,
     "Database transactions retried because another connection held the lock"},
    {"keywarden_eve_records_dropped_total", C, "eve.dropped", NULL, NULL,
     "EVE records that could not be written"},
    {"keywarden_thread_cpu_seconds_total", C, "threads.*.cpu_us", "thread", NULL,
     "CPU time of keywarden's threads by name (main, kw-db, kw-eve, kw-worker...; threads of "
     "one name summed): a stage near one second per second is the one holding the rest back"},
    {"keywarden_limit_hits_total", C, "flow.memcap_hits", NULL, "limit=\"stream_memcap\"",
     "Times a configured memory cap or table limit refused work"},
    {"keywarden_limit_hits_total", C, "flow.stream_limit_hits", NULL, "limit=\"stream\"", ""},
    {"keywarden_limit_hits_total", C, "flow.flow_limit_hits", NULL, "limit=\"flow_table\"", ""},
    {"keywarden_limit_hits_total", C, "flow.flows_evicted", NULL, "limit=\"flow_evicted\"", ""},
    {"keywarden_limit_hits_total", C, "defrag.memcap", NULL, "limit=\"defrag_memcap\"", ""},
    {"keywarden_limit_hits_total", C, "http.memcap_refusals", NULL, "limit=\"http_memcap\"", ""},
    {"keywarden_limit_hits_total", C, "http.header_limit_hits", NULL, "limit=\"http_headers\"", ""},
    {"keywarden_limit_hits_total", C, "pipeline.h1_refused", NULL, "limit=\"http_conns\"", ""},
    {"keywarden_limit_hits_total", C, "http2.memcap_refusals", NULL, "limit=\"http2_memcap\"", ""},
    {"keywarden_limit_hits_total", C, "http2.streams_refused", NULL, "limit=\"http2_streams\"", ""},
    {"keywarden_limit_hits_total", C, "http2.header_list_limit", NULL, "limit=\"http2_headers\"",
     ""},
    {"keywarden_limit_hits_total", C, "pipeline.h2_refused", NULL, "limit=\"http2_conns\"", ""},
    {"keywarden_limit_hits_total", C, "baseline.profile_limit", NULL, "limit=\"profiles\"", ""},
    {"keywarden_limit_hits_total", C, "baseline.evict_unattributed", NULL,
     "limit=\"unattributed_profiles\"", ""},
    {"keywarden_parse_errors_total", C, "pipeline.decode_malformed", NULL, "layer=\"packet\"",
     "Malformed input, counted and skipped, by layer"},
    {"keywarden_parse_errors_total", C, "http.parse_errors", NULL, "layer=\"http\"", ""},
    {"keywarden_parse_errors_total", C, "http2.protocol_errors", NULL, "layer=\"http2\"", ""},
    {"keywarden_parse_errors_total", C, "http2.hpack_errors", NULL, "layer=\"hpack\"", ""},
    {"keywarden_parse_errors_total", C, "credentials.jwt_bad_payload", NULL, "layer=\"jwt\"", ""},
    {"keywarden_tcp_gaps_total", C, "flow.tcp_gaps", NULL, NULL,
     "Holes in TCP streams delivered as gaps"},
    {"keywarden_rules_reloads_total", C, "rules.reloads", NULL, "result=\"ok\"",
     "Rules reloads (SIGHUP), by result"},
    {"keywarden_rules_reloads_total", C, "rules.reload_failures", NULL, "result=\"failed\"", ""},
    {"keywarden_identities", G, "rules.identities", NULL, NULL, "Identities in the running rules"},
    {"keywarden_baseline_profiles", G, "baseline.profiles", NULL, NULL,
     "Baseline profiles in memory"},
    {"keywarden_baseline_profiles_learning", G, "baseline.learning_profiles", NULL, NULL,
     "Baseline profiles still in their learning period"},
};
#undef C
#undef G

/* ---- rendering ---- */

struct out {
    char *buf;
    size_t len, used;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->used < o->len ? o->len - o->used : 0;
    int n =
        vsnprintf(o->buf ? o->buf + (o->used < o->len ? o->used : o->len) : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) o->used += (size_t)n;
}

/* A label value from a JSON key: the exposition format escapes \, " and
 * newline; keys here are kinds and sink hashes, so this is defence. */
static void put_label_value(struct out *o, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            put(o, "\\%c", *v);
        else if (*v == '\n')
            put(o, "\\n");
        else
            put(o, "%c", *v);
    }
}

static void sample(struct out *o, const struct metric_row *r, const char *lname, const char *lval,
                   const json_t *v)
{
    if (!json_is_integer(v)) return;
    put(o, "%s", r->name);
    if (lname || r->fixed) {
        put(o, "{");
        if (r->fixed) put(o, "%s%s", r->fixed, lname ? "," : "");
        if (lname) {
            put(o, "%s=\"", lname);
            put_label_value(o, lval);
            put(o, "\"");
        }
        put(o, "}");
    }
    long long x = (long long)json_integer_value(v);
    size_t pl = strlen(r->path);
    if (pl > 3 && !strcmp(r->path + pl - 3, "_us")) /* kept in µs, served in seconds */
        put(o, " %lld.%06lld\n", x / 1000000, x % 1000000);
    else
        put(o, " %lld\n", x);
}

/* Walks path from v; at a `*`, every key of the object there. */
static void walk(struct out *o, const struct metric_row *r, const json_t *v, const char *path,
                 const char *lval)
{
    while (v && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n == 1 && path[0] == '*') {
            const char *k;
            const json_t *x;
            json_object_foreach((json_t *)v, k, x) walk(o, r, x, dot ? dot + 1 : "", k);
            return;
        }
        char key[64];
        if (n >= sizeof key) return;
        memcpy(key, path, n);
        key[n] = 0;
        v = json_object_get(v, key);
        path = dot ? dot + 1 : "";
    }
    if (v) sample(o, r, lval ? r->label : NULL, lval, v);
}

size_t metrics_render(const json_t *stats, kw_ts at, char *buf, size_t len)
{
    struct out o = {buf, len, 0};
    if (buf && len) buf[0] = 0;
    put(&o,
        "# HELP keywarden_info keywarden's version\n# TYPE keywarden_info gauge\n"
        "keywarden_info{version=\"%s\"} 1\n",
        KW_VERSION);
    put(&o,
        "# HELP keywarden_stats_timestamp_seconds When these counters were taken (wall "
        "clock)\n# TYPE keywarden_stats_timestamp_seconds gauge\n"
        "keywarden_stats_timestamp_seconds %lld.%06lld\n",
        (long long)(at / 1000000), (long long)(at % 1000000));
    const char *family = "";
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct metric_row *r = &rows[i];
        if (strcmp(r->name, family) != 0) {
            put(&o, "# HELP %s %s\n# TYPE %s %s\n", r->name, r->help, r->name, r->type);
            family = r->name;
        }
        if (stats) walk(&o, r, stats, r->path, NULL);
    }
    return o.used;
}

/* ---- serving ---- */

#define METRICS_MAX_BYTES (1u << 20) /* a scrape is a few KiB; a ceiling all the same */

struct metrics {
    struct MHD_Daemon *d;
    pthread_mutex_t mu; /* snap and at: the publisher and the scrapes */
    json_t *snap;
    kw_ts at;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, char *body, size_t n,
                             const char *type)
{
    struct MHD_Response *rsp = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_FREE);
    if (!rsp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(rsp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(c, status, rsp);
    MHD_destroy_response(rsp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_len, void **req_cls)
{
    (void)version;
    (void)upload;
    (void)req_cls;
    struct metrics *m = cls;
    if (*upload_len) return MHD_NO; /* no request bodies here */
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, strdup("GET /metrics\n"), 13, "text/plain");
    if (strcmp(url, "/metrics") != 0)
        return reply(c, MHD_HTTP_NOT_FOUND, strdup("keywarden: the metrics are at /metrics\n"), 39,
                     "text/plain");
    char *buf = malloc(METRICS_MAX_BYTES);
    if (!buf) return MHD_NO;
    pthread_mutex_lock(&m->mu);
    size_t n = metrics_render(m->snap, m->at, buf, METRICS_MAX_BYTES);
    pthread_mutex_unlock(&m->mu);
    if (n >= METRICS_MAX_BYTES) n = METRICS_MAX_BYTES - 1;
    return reply(c, MHD_HTTP_OK, buf, n, "text/plain; version=0.0.4; charset=utf-8");
}

enum kw_err metrics_start(const char *addr, struct metrics **out, char *err, size_t errlen)
{
    *out = NULL;
    struct kw_addr a;
    uint16_t port;
    if (!kw_addr_parse_hostport(addr, &a, &port)) {
        snprintf(err, errlen, "outputs.metrics: \"%s\" is not ADDRESS:PORT", addr);
        return KW_E_CONFIG;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (a.family == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        memcpy(&s4->sin_addr, a.a, 4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        memcpy(&s6->sin6_addr, a.a, 16);
        flags |= MHD_USE_IPv6;
    }
    struct metrics *m = calloc(1, sizeof *m);
    if (!m) return KW_E_NOMEM;
    pthread_mutex_init(&m->mu, NULL);
    m->at = kw_ts_wall();
    m->d = MHD_start_daemon(flags, port, NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR, &ss,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!m->d) {
        snprintf(err, errlen,
                 "outputs.metrics: cannot listen on %s (in use, or not an address of this "
                 "machine)",
                 addr);
        pthread_mutex_destroy(&m->mu);
        free(m);
        return KW_E_IO;
    }
    *out = m;
    return KW_E_OK;
}

void metrics_publish(struct metrics *m, json_t *stats, kw_ts at)
{
    if (!m) {
        json_decref(stats);
        return;
    }
    pthread_mutex_lock(&m->mu);
    json_t *old = m->snap;
    m->snap = stats;
    m->at = at;
    pthread_mutex_unlock(&m->mu);
    json_decref(old); /* outside the lock: a big object takes a while to free */
}

void metrics_stop(struct metrics *m)
{
    if (!m) return;
    MHD_stop_daemon(m->d);
    json_decref(m->snap);
    pthread_mutex_destroy(&m->mu);
    free(m);
}
