/* cli_util: shared reading of keywarden.yaml for sub-commands (see
 * cli_util.h). */
#include "cli_util.h"

#include <libfyaml.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "kw_thread.h"
#include "kw_yaml.h"

char *cli_config_db(const char *config_path)
{
    /* Only storage.database is wanted here; the full loader reports every
     * other problem. The text goes through kw_yaml_parse like every YAML
     * keywarden reads, so a file that crashes libfyaml yields "no
     * database named" instead of taking the command down. */
    FILE *f = fopen(config_path, "rb");
    if (!f) return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char chunk[8192];
    size_t n;
    while (mem && (n = fread(chunk, 1, sizeof chunk, f)) > 0 && len < ((size_t)4 << 20))
        fwrite(chunk, 1, n, mem);
    fclose(f);
    if (!mem) return NULL;
    fclose(mem);
    /* the document points into text: text lives until it is destroyed */
    struct fy_document *d = text ? kw_yaml_parse(text, len, NULL, 0, NULL) : NULL;
    if (!d) {
        free(text);
        return NULL;
    }
    struct fy_node *root = fy_document_root(d), *st = NULL, *db = NULL;
    if (root && fy_node_get_type(root) == FYNT_MAPPING)
        st = fy_node_mapping_lookup_by_string(root, "storage", FY_NT);
    if (st && fy_node_get_type(st) == FYNT_MAPPING)
        db = fy_node_mapping_lookup_by_string(st, "database", FY_NT);
    const char *buf = db && fy_node_get_type(db) == FYNT_SCALAR ? fy_node_get_scalar0(db) : NULL;
    char *out = NULL;
    if (buf && *buf) {
        const char *slash = strrchr(config_path, '/');
        if (buf[0] == '/' || !slash) {
            out = strdup(buf);
        } else {
            size_t need = (size_t)(slash - config_path) + strlen(buf) + 2;
            out = malloc(need);
            if (out)
                snprintf(out, need, "%.*s/%s", (int)(slash - config_path), config_path, buf);
        }
    }
    fy_document_destroy(d);
    free(text);
    return out;
}

static void fill_sink(struct alerts_sink_cfg *s, enum alerts_sink_kind kind,
                      const struct rules_sink *r)
{
    alerts_sink_default(s, kind);
    snprintf(s->url, sizeof s->url, "%s", r->url ? r->url : "");
    if (r->secret)
        snprintf(s->secret, sizeof s->secret, "%s", r->secret);
    if (r->min_severity > 0)
        s->min_severity = r->min_severity;
    for (size_t i = 0; i < r->n_kinds; i++) {
        int k = alert_kind_from_name(r->kinds[i]);
        if (k >= 0)
            s->kinds_mask |= 1u << k;
    }
}

void cli_alerts_from_config(const struct rules_config *rc, struct alerts_config *ac)
{
    if (rc->alerts.has_slack && ac->n_sinks < ALERTS_MAX_SINKS)
        fill_sink(&ac->sinks[ac->n_sinks++], ALERTS_SINK_SLACK, &rc->alerts.slack);
    for (size_t i = 0; i < rc->alerts.n_webhooks && ac->n_sinks < ALERTS_MAX_SINKS; i++)
        fill_sink(&ac->sinks[ac->n_sinks++], ALERTS_SINK_WEBHOOK, &rc->alerts.webhooks[i]);
    if (rc->alerts.suppress_window_s > 0)
        ac->suppress_window = KW_TS_SEC(rc->alerts.suppress_window_s);
    if (rc->alerts.drain_timeout_s > 0)
        ac->drain_timeout = KW_TS_SEC(rc->alerts.drain_timeout_s);
    if (rc->storage.alert_retention_s > 0)
        ac->retention = KW_TS_SEC(rc->storage.alert_retention_s);
    ac->syslog = rc->alerts.syslog != NULL;
    if (ac->syslog) {
        static const struct {
            const char *name;
            int fac;
        } fac[] = {{"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}, {"daemon", LOG_DAEMON},
                   {"user", LOG_USER},     {"local0", LOG_LOCAL0},     {"local1", LOG_LOCAL1},
                   {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},     {"local4", LOG_LOCAL4},
                   {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6},     {"local7", LOG_LOCAL7}};
        for (size_t i = 0; i < sizeof fac / sizeof fac[0]; i++)
            if (!strcmp(rc->alerts.syslog, fac[i].name))
                ac->syslog_facility = fac[i].fac;
    }
}

void cli_install_signals(void (*on_stop)(int), void (*on_hup)(int))
{
    struct sigaction sa = {.sa_handler = on_stop, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
}

json_t *cli_threads_json(void)
{
    struct kw_thread_cpu t[64];
    size_t n = kw_thread_cpu(t, sizeof t / sizeof *t);
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) /* whole µs: every counter of the record is an integer */
        json_object_set_new(o, t[i].name,
                            json_pack("{s:I,s:I}", "cpu_us", (json_int_t)(t[i].seconds * 1e6 + 0.5),
                                      "threads", (json_int_t)t[i].threads));
    return o;
}
