/* report_html: the page of `keywarden report` (see report.h): an overview
 * of every identity, then per identity its activity heat map, endpoints
 * against its scope, source networks, daily volume and alert timeline.
 *
 * The one thing to know: the page is one file that makes no request and
 * runs no script. Its Content-Security-Policy says so to the browser
 * (default-src 'none'), so even a string that escaped rep_esc() could not
 * load or run anything; every network-borne string still goes through
 * rep_esc(). */
#include <string.h>

#include "kw_eve.h"
#include "kw_json.h"
#include "kw_term.h"
#include "report.h"

static const char *const sev_name[] = {"unknown", "high", "medium", "low"};

/* Rows shown per table: the busiest first; the rest is summed in one line
 * (credential stuffing brings thousands of credentials). */
#define REP_ROWS_MAX 25

static void more_rows(FILE *f, size_t shown, size_t n, uint64_t rest, int cols)
{
    if (n > shown)
        fprintf(f,
                "<tr class=\"more\"><td colspan=\"%d\" class=\"meta\">and %zu more (%llu "
                "requests)</td></tr>\n",
                cols, n - shown, (unsigned long long)rest);
}

static const char css[] =
    "body{font:14px/1.45 system-ui,sans-serif;color:#1d2329;margin:0;background:#f6f7f9}"
    "main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}"
    "h1{font-size:22px;margin:8px 0 2px}h2{font-size:18px;margin:0 0 4px}"
    "h3{font-size:15px;margin:18px 0 6px;color:#38424c}"
    ".meta{color:#5b6670;font-size:13px}"
    "section.ident{background:#fff;border:1px solid #dde2e7;border-radius:6px;"
    "padding:14px 18px;margin:18px 0}"
    "table{border-collapse:collapse;font-size:13px;margin:4px 0}"
    "th,td{text-align:left;padding:3px 10px 3px 0;border-bottom:1px solid #edf0f2;"
    "vertical-align:top}th{color:#5b6670;font-weight:600}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "code,.mono{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}"
    ".badge{display:inline-block;border-radius:3px;padding:0 6px;font-size:12px;"
    "margin-right:4px;color:#fff;background:#6b7680;white-space:nowrap}"
    ".sev-1{background:#c0392b}.sev-2{background:#d68910}.sev-3{background:#2e86c1}"
    ".v-allowed{background:#2e8b57}.v-denied{background:#c0392b}.v-method{background:#d35400}"
    ".v-out{background:#8e44ad}.v-unused{background:#95a5a6}.v-norule{background:#6b7680}"
    ".ok{color:#2e8b57}.bad{color:#c0392b;font-weight:600}"
    "svg text.ax{font-size:11px;fill:#5b6670}"
    "svg rect.sched{fill:none;stroke:#111;stroke-width:2}"
    "svg rect.grace{fill:none;stroke:#111;stroke-width:1;stroke-dasharray:3 3}"
    "svg rect.bar{fill:#6baed6}svg rect.band{fill:#a1d99b;opacity:.6}"
    "svg line.median{stroke:#31a354;stroke-width:1.5}svg line.axis{stroke:#aab3bb}"
    "svg circle.peak{fill:#2171b5}svg circle.peak.above{fill:#c0392b}"
    ".legend span{display:inline-block;width:14px;height:10px;margin:0 2px 0 8px;"
    "vertical-align:middle}"
    "ol.timeline{list-style:none;padding:0;margin:0}"
    "ol.timeline li{border-left:4px solid #6b7680;padding:6px 12px;margin:8px 0;"
    "background:#fafbfc}"
    "ol.timeline li.sev-1{border-color:#c0392b;background:#fdf3f2}"
    "ol.timeline li.sev-2{border-color:#d68910;background:#fef9f0}"
    "ol.timeline li.sev-3{border-color:#2e86c1}"
    ".summary{margin:3px 0;font-weight:500}dl.evidence{margin:2px 0;display:grid;"
    "grid-template-columns:max-content auto;gap:0 12px;font-size:13px}"
    "dl.evidence dt{color:#5b6670}dl.evidence dd{margin:0}"
    ".when,.req,.rule{font-size:12px;color:#5b6670}"
    "a{color:#1f5f99}";

void rep_esc(FILE *f, const char *s)
{
    if (!s) return;
    const uint8_t *p = (const uint8_t *)s;
    size_t left = strlen(s);
    while (left) {
        size_t k = kw_utf8_seq(p, left);
        if (!k || (*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7f) {
            fprintf(f, "\\x%02x", *p); /* as kw_json_bytes() writes it */
            k = 1;
        } else if (kw_term_hidden(p, k)) { /* a bidi override would flip what follows */
            fprintf(f, "\\u%04x", (unsigned)kw_term_hidden(p, k));
        } else if (*p == '&') {
            fputs("&amp;", f);
        } else if (*p == '<') {
            fputs("&lt;", f);
        } else if (*p == '>') {
            fputs("&gt;", f);
        } else if (*p == '"') {
            fputs("&quot;", f);
        } else if (*p == '\'') {
            fputs("&#39;", f);
        } else {
            fwrite(p, 1, k, f);
        }
        p += k;
        left -= k;
    }
}

static void esc_json(FILE *f, const json_t *v)
{
    if (json_is_string(v)) {
        rep_esc(f, json_string_value(v));
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    rep_esc(f, s ? s : "?");
    free(s);
}

static const char *str_at(const json_t *o, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(o, k1);
    if (k2) v = json_object_get(v, k2);
    return json_string_value(v);
}

/* "Mon 23 Mar 02:42" in tz. */
static void fmt_local(const struct kw_tz *tz, kw_ts ts, char *buf, size_t n)
{
    static const char *const wd[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t day, y;
    int sod;
    unsigned m, d;
    rep_local(tz, ts / 1000000, &day, &sod);
    kw_civil_from_days(day, &y, &m, &d);
    snprintf(buf, n, "%s %u %s %lld %02d:%02d", wd[rep_wday(day)], d, mon[(m - 1) % 12],
             (long long)y, sod / 3600, sod / 60 % 60);
}

static void fmt_utc(kw_ts ts, char *buf, size_t n)
{
    kw_ts_format_rfc3339(ts, buf, n);
}

static const char *title_of(const struct rep_ident *x)
{
    return x->id[0] ? x->id : "unattributed credentials";
}

/* ---- overview ---- */

static void learning_cell(FILE *f, const struct rep_ident *x)
{
    const json_t *l = json_object_get(x->baseline, "learning");
    if (!l)
        fputs("<td>no profile</td>", f);
    else if (json_is_true(json_object_get(l, "done")))
        fputs("<td class=\"ok\">learned</td>", f);
    else
        fputs("<td>learning</td>", f);
}

static void overview(FILE *f, const struct report *r)
{
    fputs("<h2>Overview</h2>\n<table class=\"overview\"><tr><th>identity</th><th>name</th>"
          "<th>kind</th><th>time zone</th><th>requests</th><th>errors</th><th>alerts</th>"
          "<th>last seen (local)</th><th>last seen (UTC)</th><th>baseline</th></tr>\n",
          f);
    for (size_t i = 0; i < r->n_ids; i++) {
        const struct rep_ident *x = &r->ids[i];
        char last[48] = "never", lastu[32] = "";
        if (x->last) {
            fmt_local(x->tz, x->last, last, sizeof last);
            fmt_utc(x->last, lastu, sizeof lastu);
        }
        fprintf(f, "<tr class=\"ident-row\" data-id=\"");
        rep_esc(f, x->id);
        fprintf(f, "\"><td><a href=\"#i%zu\">", i);
        rep_esc(f, title_of(x));
        fputs("</a></td><td>", f);
        rep_esc(f, x->rule ? x->rule->name : "");
        fputs("</td><td>", f);
        rep_esc(f, x->rule ? x->rule->kind : x->id[0] ? "not in the rules" : "");
        fputs("</td><td>", f);
        rep_esc(f, kw_tz_name(x->tz));
        fprintf(f, "</td><td class=\"n\">%llu</td><td class=\"n\">%llu</td><td>",
                (unsigned long long)x->requests, (unsigned long long)x->errors);
        for (int s = 1; s <= 3; s++)
            if (x->alerts_by_sev[s])
                fprintf(f, "<span class=\"badge sev-%d\">%u %s</span>", s, x->alerts_by_sev[s],
                        sev_name[s]);
        if (!x->n_alerts) fputs("none", f);
        fprintf(f, "</td><td>%s</td><td class=\"mono\">%s</td>", last, lastu);
        learning_cell(f, x);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* ---- one identity ---- */

static void policy_line(FILE *f, const struct rep_ident *x)
{
    const struct rules_identity *ri = x->rule;
    if (!ri) {
        fputs("<p class=\"meta\">No rules describe ", f);
        fputs(x->id[0] ? "this identity" : "these credentials", f);
        fputs(": activity is shown without a policy to compare it with.</p>\n", f);
        return;
    }
    char sched[96] = "";
    rules_schedule_describe(&ri->schedule, sched, sizeof sched);
    fputs("<p class=\"meta\">", f);
    if (sched[0]) {
        fputs("schedule <b>", f);
        rep_esc(f, sched);
        fputs("</b>", f);
    } else {
        fputs("no schedule", f);
    }
    fputs(" &middot; time zone ", f);
    rep_esc(f, kw_tz_name(x->tz));
    if (ri->access.has_from || ri->access.has_until) {
        char a[48] = "-", b[48] = "-";
        if (ri->access.has_from) fmt_local(x->tz, KW_TS_SEC(ri->access.from_s), a, sizeof a);
        if (ri->access.has_until) fmt_local(x->tz, KW_TS_SEC(ri->access.until_s), b, sizeof b);
        fprintf(f, " &middot; access from %s until %s (local)", a, b);
    }
    fprintf(f, " &middot; rule ");
    rep_esc(f, ri->loc.file);
    fprintf(f, ":%d</p>\n", ri->loc.line);
}

static void heat_section(FILE *f, const struct report *r, const struct rep_ident *x)
{
    fputs("<h3>Activity by hour of the week (local time, ", f);
    rep_esc(f, kw_tz_name(x->tz));
    fputs(")</h3>\n", f);
    rep_svg_heatmap(f, r, x);
    fputs("<div class=\"legend meta\">requests per hour: <span style=\"background:#eef1f4\">"
          "</span>0<span style=\"background:#c6dbef\"></span>few<span "
          "style=\"background:#2171b5\"></span>more<span style=\"background:#08306b\"></span>"
          "most",
          f);
    if (x->rule && x->rule->schedule.set)
        fputs(" &middot; solid outline: the schedule; dashed: with its grace", f);
    fputs("</div>\n", f);
}

static void verdict_badges(FILE *f, const struct rep_endpoint *e)
{
    static const char *const cls[] = {"v-allowed", "v-denied", "v-method", "v-out", "v-norule"};
    static const char *const txt[] = {"allowed", "denied by a deny rule", "method not allowed",
                                      "out of scope", "not judged: no rules"};
    for (int v = 0; v < REP__N; v++)
        if (e->by[v])
            fprintf(f, "<span class=\"badge %s\">%s %llu</span>", cls[v], txt[v],
                    (unsigned long long)e->by[v]);
}

static void pattern_rows(FILE *f, const struct rules_pattern *p, size_t n, const uint64_t *hits,
                         bool deny)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "<tr class=\"%s\"><td><code>",
                deny      ? "deny"
                : hits[i] ? "scope"
                          : "scope unused");
        rep_esc(f, p[i].text);
        fprintf(f, "</code></td><td class=\"n\">%llu</td><td>", (unsigned long long)hits[i]);
        if (deny)
            fputs(hits[i] ? "<span class=\"badge v-denied\">reached the API</span>" : "not tried",
                  f);
        else
            fputs(hits[i] ? "<span class=\"badge v-allowed\">used</span>"
                          : "<span class=\"badge v-unused\">never used</span>",
                  f);
        fprintf(f, "</td><td class=\"meta\">%d</td></tr>\n", p[i].loc.line);
    }
}

static void endpoint_section(FILE *f, const struct rep_ident *x)
{
    fputs("<h3>Endpoints used against the scope</h3>\n", f);
    if (!x->n_ends) {
        fputs("<p class=\"meta\">No requests in this period.</p>\n", f);
    } else {
        fputs("<table class=\"endpoints\"><tr><th>method</th><th>host</th><th>endpoint</th>"
              "<th>requests</th><th>errors</th><th>verdict</th><th>last (UTC)</th></tr>\n",
              f);
        uint64_t rest = 0;
        for (size_t i = REP_ROWS_MAX; i < x->n_ends; i++)
            rest += x->ends[i].n;
        for (size_t i = 0; i < x->n_ends && i < REP_ROWS_MAX; i++) {
            const struct rep_endpoint *e = &x->ends[i];
            char last[32];
            fmt_utc(e->last, last, sizeof last);
            fputs("<tr class=\"endpoint\"><td><code>", f);
            rep_esc(f, e->method);
            fputs("</code></td><td><code>", f);
            rep_esc(f, e->host);
            fputs("</code></td><td><code>", f);
            rep_esc(f, e->name);
            fprintf(f, "</code></td><td class=\"n\">%llu</td><td class=\"n\">%llu</td><td>",
                    (unsigned long long)e->n, (unsigned long long)e->n_err);
            verdict_badges(f, e);
            fprintf(f, "</td><td class=\"mono\">%s</td></tr>\n", last);
        }
        more_rows(f, REP_ROWS_MAX, x->n_ends, rest, 7);
        fputs("</table>\n", f);
    }
    const struct rules_identity *ri = x->rule;
    if (!ri || (!ri->n_scope && !ri->n_deny)) return;
    fputs("<table class=\"scope\"><tr><th>scope and deny rules</th><th>requests</th>"
          "<th></th><th>line</th></tr>\n",
          f);
    pattern_rows(f, ri->scope, ri->n_scope, x->scope_hits, false);
    pattern_rows(f, ri->deny, ri->n_deny, x->deny_hits, true);
    fputs("</table>\n", f);
}

static void source_section(FILE *f, const struct rep_ident *x)
{
    fputs("<h3>Source networks</h3>\n", f);
    if (!x->n_nets) {
        fputs("<p class=\"meta\">None.</p>\n", f);
        return;
    }
    bool rule = x->rule && x->rule->n_sources;
    fprintf(f,
            "<table class=\"sources\"><tr><th>network</th><th>requests</th><th>addresses"
            "</th><th>%s</th><th>baseline</th><th>last (UTC)</th></tr>\n",
            rule ? "allowed by <code>sources</code>" : "");
    uint64_t rest = 0;
    for (size_t i = REP_ROWS_MAX; i < x->n_nets; i++)
        rest += x->nets[i].n;
    for (size_t i = 0; i < x->n_nets && i < REP_ROWS_MAX; i++) {
        const struct rep_net *e = &x->nets[i];
        char last[32] = "";
        if (e->last) fmt_utc(e->last, last, sizeof last);
        fputs("<tr class=\"net\"><td><code>", f);
        rep_esc(f, e->net);
        fprintf(f, "</code></td><td class=\"n\">%llu</td><td class=\"n\">%u</td><td>",
                (unsigned long long)e->n, e->addrs);
        if (rule && e->n)
            fprintf(f,
                    e->n_out ? "<span class=\"bad\">no (%llu requests)</span>"
                             : "<span class=\"ok\">yes</span>",
                    (unsigned long long)e->n_out);
        fputs("</td><td>", f);
        if (e->learned >= 0)
            fprintf(f, "learned (weight %.1f)", e->learned);
        else if (x->baseline)
            fputs("<span class=\"bad\">not learned</span>", f);
        else
            fputs("no profile", f);
        fprintf(f, "</td><td class=\"mono\">%s</td></tr>\n", last);
    }
    more_rows(f, REP_ROWS_MAX, x->n_nets, rest, 6);
    fputs("</table>\n", f);
}

static void volume_section(FILE *f, const struct rep_ident *x)
{
    fputs("<h3>Daily volume</h3>\n", f);
    if (!x->n_days) {
        fputs("<p class=\"meta\">No requests in this period.</p>\n", f);
        return;
    }
    rep_svg_volume(f, x);
    fputs("<p class=\"meta\">Bars: requests per local day. Dots: the day's busiest hour; green "
          "band: the usual range (10th to 90th percentile of requests per active hour) the "
          "baseline learned for weekdays or weekends, line: its median. ",
          f);
    const json_t *vol = json_object_get(x->baseline, "volume");
    for (int c = 0; c < 2; c++) {
        const json_t *v = json_object_get(vol, c ? "weekends" : "weekdays");
        if (!v) continue;
        if (json_object_get(v, "requests_p10"))
            fprintf(f, "%s: %.0f&ndash;%.0f requests/h (median %.0f, %lld hours). ",
                    c ? "Weekends" : "Weekdays",
                    json_number_value(json_object_get(v, "requests_p10")),
                    json_number_value(json_object_get(v, "requests_p90")),
                    json_number_value(json_object_get(v, "requests_median")),
                    (long long)json_integer_value(json_object_get(v, "hours")));
        else
            fprintf(f, "%s: not enough active hours learned yet (%lld of 8). ",
                    c ? "Weekends" : "Weekdays",
                    (long long)json_integer_value(json_object_get(v, "hours")));
    }
    if (!x->baseline) fputs("No baseline profile.", f);
    fputs("</p>\n", f);
}

static void credential_section(FILE *f, const struct rep_ident *x)
{
    if (!x->n_creds) return;
    fputs("<h3>Credentials (fingerprints and hints only)</h3>\n<table class=\"creds\"><tr>"
          "<th>hint</th><th>kind</th><th>fingerprint</th><th>requests</th><th>errors</th>"
          "<th>last (UTC)</th></tr>\n",
          f);
    uint64_t rest = 0;
    for (size_t i = REP_ROWS_MAX; i < x->n_creds; i++)
        rest += x->creds[i].n;
    for (size_t i = 0; i < x->n_creds && i < REP_ROWS_MAX; i++) {
        const struct rep_cred *c = &x->creds[i];
        char last[32];
        fmt_utc(c->last, last, sizeof last);
        fputs("<tr class=\"cred\"><td><code>", f);
        rep_esc(f, c->hint);
        fputs("</code></td><td>", f);
        rep_esc(f, kw_eve_cred_kind_name((unsigned)c->kind));
        fputs("</td><td class=\"mono\">", f);
        rep_esc(f, c->fingerprint);
        fprintf(f,
                "</td><td class=\"n\">%llu</td><td class=\"n\">%llu</td><td class=\"mono\">"
                "%s</td></tr>\n",
                (unsigned long long)c->n, (unsigned long long)c->n_err, last);
    }
    more_rows(f, REP_ROWS_MAX, x->n_creds, rest, 6);
    fputs("</table>\n", f);
}

/* One alert, told so that it needs no other page: when (its local time
 * and UTC), what (kind, signature), the sentence the alert carries, the
 * evidence (expected against observed), the request, the rule. */
static void alert_entry(FILE *f, const struct rep_ident *x, const struct rep_alert *a)
{
    const json_t *al = json_object_get(a->rec, "alert"), *http = json_object_get(a->rec, "http");
    char loc[48], utc[32];
    fmt_local(x->tz, a->ts, loc, sizeof loc);
    fmt_utc(a->ts, utc, sizeof utc);
    fprintf(f, "<li class=\"alert sev-%d\" data-kind=\"", a->severity);
    rep_esc(f, str_at(al, "kind", NULL));
    fprintf(f, "\"><div class=\"when\">%s (", loc);
    rep_esc(f, kw_tz_name(x->tz));
    fprintf(f, ") &middot; %s</div>\n<div><span class=\"badge sev-%d\">%s</span><b>", utc,
            a->severity, sev_name[a->severity]);
    rep_esc(f, str_at(al, "kind", NULL));
    fputs("</b> &mdash; ", f);
    rep_esc(f, str_at(al, "signature", NULL));
    fputs("</div>\n<p class=\"summary\">", f);
    rep_esc(f, str_at(al, "summary", NULL));
    fputs("</p>\n", f);
    const json_t *ev = json_object_get(a->rec, "evidence");
    if (json_is_object(ev) && json_object_size(ev)) {
        const char *k;
        const json_t *v;
        fputs("<dl class=\"evidence\">", f);
        json_object_foreach((json_t *)ev, k, v)
        {
            fputs("<dt>", f);
            rep_esc(f, k);
            fputs("</dt><dd>", f);
            esc_json(f, v);
            fputs("</dd>", f);
        }
        fputs("</dl>\n", f);
    }
    if (http) { /* the normalised path, never url: a raw query may carry a key */
        const json_t *st = json_object_get(http, "status");
        fputs("<div class=\"req\">request <code>", f);
        rep_esc(f, str_at(http, "http_method", NULL));
        fputs(" ", f);
        rep_esc(f, str_at(http, "hostname", NULL));
        fputs(" ", f);
        rep_esc(f, str_at(http, "path", NULL) ? str_at(http, "path", NULL)
                                              : str_at(http, "template", NULL));
        fputs("</code>", f);
        if (json_is_integer(st)) fprintf(f, " answered %lld", (long long)json_integer_value(st));
        if (str_at(a->rec, "src_ip", NULL)) {
            fputs(" from <code>", f);
            rep_esc(f, str_at(a->rec, "src_ip", NULL));
            fputs("</code>", f);
        }
        if (str_at(http, "http_user_agent", NULL)) {
            fputs(" &middot; user agent <code class=\"ua\">", f);
            rep_esc(f, str_at(http, "http_user_agent", NULL));
            fputs("</code>", f);
        }
        fputs("</div>\n", f);
    }
    fputs("<div class=\"rule\">", f);
    if (str_at(al, "rule", NULL)) {
        fputs("rule ", f);
        rep_esc(f, str_at(al, "rule", NULL));
        fputs(" &middot; ", f);
    }
    if (str_at(a->rec, "credential", "hint")) {
        fputs("credential <code>", f);
        rep_esc(f, str_at(a->rec, "credential", "hint"));
        fputs("</code> &middot; ", f);
    }
    json_int_t count = json_integer_value(json_object_get(al, "count"));
    if (count > 1) fprintf(f, "%lld in all &middot; ", (long long)count);
    fputs("alert id <code>", f);
    rep_esc(f, str_at(al, "id", NULL));
    fputs("</code></div></li>\n", f);
}

static void alert_section(FILE *f, const struct rep_ident *x)
{
    fprintf(f, "<h3>Alerts (%zu)</h3>\n", x->n_alerts);
    if (!x->n_alerts) {
        fputs("<p class=\"meta\">No alerts in this period.</p>\n", f);
        return;
    }
    fputs("<ol class=\"timeline\">\n", f);
    for (size_t i = 0; i < x->n_alerts; i++)
        alert_entry(f, x, &x->alerts[i]);
    fputs("</ol>\n", f);
}

static void ident_section(FILE *f, const struct report *r, size_t i)
{
    const struct rep_ident *x = &r->ids[i];
    fprintf(f, "<section class=\"ident\" id=\"i%zu\" data-id=\"", i);
    rep_esc(f, x->id);
    fputs("\">\n<h2>", f);
    rep_esc(f, title_of(x));
    if (x->rule) {
        fputs(" &mdash; ", f);
        rep_esc(f, x->rule->name);
        fputs(" <span class=\"meta\">(", f);
        rep_esc(f, x->rule->kind);
        fputs(")</span>", f);
    }
    fputs("</h2>\n", f);
    policy_line(f, x);
    char first[48] = "-", last[48] = "-";
    if (x->first) fmt_local(x->tz, x->first, first, sizeof first);
    if (x->last) fmt_local(x->tz, x->last, last, sizeof last);
    fprintf(f,
            "<p>%llu requests (%llu answered with an error), %zu alerts; first %s, last %s "
            "(local)</p>\n",
            (unsigned long long)x->requests, (unsigned long long)x->errors, x->n_alerts, first,
            last);
    heat_section(f, r, x);
    if (x->id[0]) endpoint_section(f, x);
    credential_section(f, x);
    if (!x->id[0]) endpoint_section(f, x);
    source_section(f, x);
    volume_section(f, x);
    alert_section(f, x);
    fputs("</section>\n", f);
}

enum kw_err report_write_html(const struct report *r, FILE *f, const char *version)
{
    char since[32], until[32];
    fmt_utc(r->since, since, sizeof since);
    fmt_utc(r->until, until, sizeof until);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "style-src 'unsafe-inline'\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
          f);
    fprintf(f,
            "<title>keywarden report %s .. %s</title>\n<style>%s</style>\n</head>\n<body>"
            "<main>\n<h1>keywarden report</h1>\n<p class=\"meta\">%s .. %s (UTC) &middot; "
            "database <code>",
            since, until, css, since, until);
    rep_esc(f, r->db_path);
    fputs("</code>", f);
    if (r->model)
        fprintf(f, " &middot; %zu identities in the rules", r->model->n_identities);
    else
        fputs(" &middot; no rules loaded", f);
    if (r->alerts_bad)
        fprintf(f, " &middot; %llu stored alerts unreadable (skipped)",
                (unsigned long long)r->alerts_bad);
    fputs("</p>\n", f);
    overview(f, r);
    for (size_t i = 0; i < r->n_ids; i++)
        ident_section(f, r, i);
    fprintf(f,
            "<p class=\"meta\">keywarden %s. Times are packet times. Credentials appear "
            "only as fingerprints and hints.</p>\n</main></body></html>\n",
            version);
    return ferror(f) ? KW_E_IO : KW_E_OK;
}
