/* cli_util: shared reading of keywarden.yaml for sub-commands (see
 * cli_util.h). */
#include "cli_util.h"

#include <libfyaml.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

char *cli_config_db(const char *config_path)
{
    struct fy_document *d = fy_document_build_from_file(NULL, config_path);
    if (!d)
        return NULL;
    char buf[1024];
    char *out = NULL;
    if (fy_document_scanf(d, "/storage/database %1023s", buf) == 1) {
        const char *slash = strrchr(config_path, '/');
        if (buf[0] == '/' || !slash) {
            out = strdup(buf);
        } else {
            size_t n = (size_t)(slash - config_path) + strlen(buf) + 2;
            out = malloc(n);
            if (out)
                snprintf(out, n, "%.*s/%s", (int)(slash - config_path), config_path, buf);
        }
    }
    fy_document_destroy(d);
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
