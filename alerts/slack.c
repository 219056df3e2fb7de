/* slack: Block Kit messages for Slack incoming webhooks, built from the
 * stored EVE alert record (https://api.slack.com/reference/block-kit).
 * Limits kept: at most 50 blocks, header text 150 chars, section text
 * 3000, field text 2000 and 10 fields, 10 context elements; every cut is
 * on a UTF-8 boundary and ends with "…". The top-level `text` is the
 * notification fallback.
 *
 * The one thing to know: everything from the network (paths, host names,
 * summaries quoting them) is escaped for mrkdwn (&, <, > per Slack's
 * "Escaping text" rules; backticks become ') so a crafted path cannot
 * inject links or mentions into the security team's channel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerts_int.h"
#include "al_util.h"

#define SL_HEADER_MAX 150
#define SL_SECTION_MAX 3000
#define SL_FIELD_MAX 2000
#define SL_TEXT_MAX 3000

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* mrkdwn-escaped copy of s, cut to max bytes. Caller frees. */
static char *esc(const char *s, size_t max)
{
    size_t n = strlen(s);
    char *o = malloc(n * 5 + 8), *p = o;
    if (!o) return NULL;
    for (; *s; s++) {
        if (*s == '&')
            p += sprintf(p, "&amp;");
        else if (*s == '<')
            p += sprintf(p, "&lt;");
        else if (*s == '>')
            p += sprintf(p, "&gt;");
        else if (*s == '`')
            *p++ = '\'';
        else
            *p++ = *s;
    }
    *p = 0;
    al_utf8_trunc(o, max);
    return o;
}

static json_t *text_obj(const char *type, const char *s, size_t max)
{
    char *t = type[0] == 'p' ? strdup(s) : esc(s, max);
    if (!t) return NULL;
    al_utf8_trunc(t, max);
    json_t *o = json_pack("{s:s,s:s}", "type", type, "text", t);
    if (o && type[0] == 'p') json_object_set_new(o, "emoji", json_true());
    free(t);
    return o;
}

/* A field "*Title*\nbody" with body escaped; the title is ours. */
static void add_field(json_t *fields, const char *title, const char *body)
{
    char *b = esc(body, SL_FIELD_MAX - strlen(title) - 8);
    if (!b) return;
    size_t n = strlen(title) + strlen(b) + 8;
    char *t = malloc(n);
    if (t) {
        snprintf(t, n, "*%s*\n%s", title, b);
        json_array_append_new(fields, json_pack("{s:s,s:s}", "type", "mrkdwn", "text", t));
    }
    free(t);
    free(b);
}

static json_t *section(const char *mrkdwn)
{
    return json_pack("{s:s,s:o}", "type", "section", "text",
                     text_obj("mrkdwn", mrkdwn, SL_SECTION_MAX));
}

static const char *sev_label(int sev)
{
    return sev <= 1   ? ":red_circle: HIGH"
           : sev == 2 ? ":large_orange_circle: MEDIUM"
                      : ":large_yellow_circle: LOW";
}

/* "2026-03-28T02:13:05.123456+0000" -> Unix seconds; -1 when unparsable. */
static int64_t eve_ts_secs(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static void fields_who_what(json_t *f, const json_t *rec)
{
    const json_t *id = json_object_get(rec, "identity"), *cr = json_object_get(rec, "credential");
    const json_t *h = json_object_get(rec, "http");
    char buf[1024];
    if (id)
        snprintf(buf, sizeof buf, "%s (%s, %s)", jstr(id, "name"), jstr(id, "id"),
                 jstr(id, "kind"));
    else
        snprintf(buf, sizeof buf, "no identity claims this credential");
    if (cr) {
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof buf - n, "\ncredential %s %s", jstr(cr, "kind"), jstr(cr, "hint"));
    }
    add_field(f, "Who", buf);
    if (h) {
        char st[16] = "no response";
        if (json_integer_value(json_object_get(h, "status")))
            snprintf(st, sizeof st, "%lld",
                     (long long)json_integer_value(json_object_get(h, "status")));
        snprintf(buf, sizeof buf, "%s %s%s → %s", jstr(h, "http_method"), jstr(h, "hostname"),
                 jstr(h, "url"), st);
        add_field(f, "What", buf);
    }
}

static void fields_when_where(json_t *f, const json_t *rec, const char *tz)
{
    char buf[512], loc[96];
    int64_t t = eve_ts_secs(jstr(rec, "timestamp"));
    add_field(f, "When (UTC)", jstr(rec, "timestamp"));
    if (tz && tz[0] && t >= 0 && al_tz_format(tz, t, loc, sizeof loc)) {
        snprintf(buf, sizeof buf, "%s\n%s", loc, tz);
        add_field(f, "When (identity's local time)", buf);
    } else if (tz && tz[0]) {
        snprintf(buf, sizeof buf, "unknown time zone %s", tz);
        add_field(f, "When (identity's local time)", buf);
    }
    if (json_object_get(rec, "src_ip")) {
        snprintf(buf, sizeof buf, "%s:%lld → %s:%lld", jstr(rec, "src_ip"),
                 (long long)json_integer_value(json_object_get(rec, "src_port")),
                 jstr(rec, "dest_ip"),
                 (long long)json_integer_value(json_object_get(rec, "dest_port")));
        const json_t *tun = json_object_get(rec, "tunnel");
        if (tun) {
            size_t n = strlen(buf);
            snprintf(buf + n, sizeof buf - n, "\ntunnel %s %lld", jstr(tun, "type"),
                     (long long)json_integer_value(json_object_get(tun, "id")));
        }
        add_field(f, "Where", buf);
    }
}

static void add_code_field(json_t *f, const char *title, const json_t *v)
{
    char *d = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (!d) return;
    char *e = esc(d, SL_FIELD_MAX - 40);
    size_t n = e ? strlen(e) + strlen(title) + 16 : 0;
    char *t = e ? malloc(n) : NULL;
    if (t) {
        snprintf(t, n, "*%s*\n```%s```", title, e);
        json_array_append_new(f, json_pack("{s:s,s:s}", "type", "mrkdwn", "text", t));
    }
    free(t);
    free(e);
    free(d);
}

/* "Why": the rule or baseline's expectation next to what was observed. */
static void add_why(json_t *blocks, const json_t *rec)
{
    const json_t *a = json_object_get(rec, "alert"), *ev = json_object_get(rec, "evidence");
    char buf[512];
    snprintf(buf, sizeof buf, "*Why* — %s",
             json_object_get(a, "rule") ? jstr(a, "rule") : "learned baseline");
    json_t *s = section(buf);
    if (ev && (json_object_get(ev, "expected") || json_object_get(ev, "observed"))) {
        json_t *f = json_array();
        add_code_field(f, "Expected", json_object_get(ev, "expected"));
        add_code_field(f, "Observed", json_object_get(ev, "observed"));
        json_object_set_new(s, "fields", f);
    } else if (ev) {
        json_t *f = json_array();
        add_code_field(f, "Evidence", ev);
        json_object_set_new(s, "fields", f);
    }
    json_array_append_new(blocks, s);
}

static void add_context(json_t *blocks, const json_t *rec)
{
    const json_t *a = json_object_get(rec, "alert");
    const json_t *id = json_object_get(rec, "identity"), *cr = json_object_get(rec, "credential");
    char since[40], buf[700];
    int64_t t = eve_ts_secs(jstr(rec, "timestamp"));
    kw_ts_format_rfc3339(KW_TS_SEC(t > 3600 ? t - 3600 : 0), since, sizeof since);
    if (id)
        snprintf(buf, sizeof buf, "Look closer: `keywarden audit --identity %.64s --since %s`",
                 jstr(id, "id"), since);
    else if (cr)
        snprintf(buf, sizeof buf, "Look closer: `keywarden audit --credential %.80s --since %s`",
                 jstr(cr, "fingerprint"), since);
    else
        snprintf(buf, sizeof buf, "Look closer: `keywarden audit --since %s`", since);
    json_t *el = json_array();
    json_array_append_new(el, json_pack("{s:s,s:s}", "type", "mrkdwn", "text", buf));
    snprintf(buf, sizeof buf, "alert id %s · %s · count %lld", jstr(a, "id"), jstr(a, "category"),
             (long long)json_integer_value(json_object_get(a, "count")));
    json_array_append_new(el, json_pack("{s:s,s:s}", "type", "mrkdwn", "text", buf));
    json_array_append_new(blocks, json_pack("{s:s,s:o}", "type", "context", "elements", el));
}

json_t *al_slack_alert(const json_t *rec, const char *tz)
{
    const json_t *a = json_object_get(rec, "alert");
    int sev = (int)json_integer_value(json_object_get(a, "severity"));
    bool update = json_object_get(a, "update_of") != NULL;
    const json_t *id = json_object_get(rec, "identity");
    const char *who = id ? jstr(id, "id") : jstr(json_object_get(rec, "credential"), "hint");
    char buf[SL_TEXT_MAX + 1];
    json_t *blocks = json_array();

    snprintf(buf, sizeof buf, "%s · %s%s", sev_label(sev), update ? "update: " : "",
             jstr(a, "signature"));
    json_array_append_new(blocks, json_pack("{s:s,s:o}", "type", "header", "text",
                                            text_obj("plain_text", buf, SL_HEADER_MAX)));
    snprintf(buf, sizeof buf, "*%s* by *%s*: %s", jstr(a, "kind"), who[0] ? who : "unknown",
             jstr(a, "summary"));
    json_array_append_new(blocks, section(buf));
    json_t *f = json_array();
    fields_who_what(f, rec);
    fields_when_where(f, rec, tz);
    if (json_array_size(f)) {
        json_t *s = json_pack("{s:s,s:o}", "type", "section", "fields", f);
        json_array_append_new(blocks, s);
    } else {
        json_decref(f);
    }
    if (!update) add_why(blocks, rec);
    add_context(blocks, rec);

    if (update)
        snprintf(buf, sizeof buf, "[%s] %s", al_severity_name(sev), jstr(a, "summary"));
    else
        snprintf(buf, sizeof buf, "[%s] %s by %s: %s", al_severity_name(sev), jstr(a, "kind"),
                 who[0] ? who : "unknown", jstr(a, "summary"));
    json_t *text = text_obj("mrkdwn", buf, SL_TEXT_MAX);
    json_t *msg = json_pack("{s:O,s:o}", "text", json_object_get(text, "text"), "blocks", blocks);
    json_decref(text);
    return msg;
}

void al_digest_add(struct al_digest *d, const char *kind, const char *who, uint64_t findings,
                   kw_ts ts)
{
    kind = kind ? kind : "?";
    who = who ? who : "?";
    d->alerts++;
    d->findings += findings;
    if (!d->first || ts < d->first) d->first = ts;
    if (ts > d->last) d->last = ts;
    const unsigned cap = sizeof d->groups / sizeof d->groups[0];
    for (unsigned i = 0; i < d->n_groups; i++) {
        struct al_digest_group *g = &d->groups[i];
        if (strcmp(g->kind, kind) == 0 && strcmp(g->who, who) == 0) {
            g->alerts++;
            g->findings += findings;
            return;
        }
    }
    if (d->n_groups == cap) {
        d->other_alerts++;
        return;
    }
    struct al_digest_group *g = &d->groups[d->n_groups++];
    snprintf(g->kind, sizeof g->kind, "%s", kind);
    snprintf(g->who, sizeof g->who, "%s", who);
    g->alerts = 1;
    g->findings = findings;
}

static int group_cmp(const void *x, const void *y)
{
    const struct al_digest_group *a = x, *b = y;
    return a->alerts < b->alerts ? 1 : a->alerts > b->alerts ? -1 : strcmp(a->kind, b->kind);
}

json_t *al_slack_digest(const struct al_digest *d0)
{
    struct al_digest d = *d0;
    qsort(d.groups, d.n_groups, sizeof d.groups[0], group_cmp);
    char head[200], list[SL_SECTION_MAX + 1] = "", text[SL_TEXT_MAX + 1], t0[40], t1[40];
    snprintf(head, sizeof head, "%llu more alerts (%llu findings)", (unsigned long long)d.alerts,
             (unsigned long long)d.findings);
    size_t ln = 0, tn = (size_t)snprintf(text, sizeof text, "%s:", head);
    unsigned shown = d.n_groups < 8 ? d.n_groups : 8;
    for (unsigned i = 0; i < shown; i++) {
        const struct al_digest_group *g = &d.groups[i];
        ln += (size_t)snprintf(list + ln, sizeof list - ln, "• %llu × %s — %s (%llu findings)\n",
                               (unsigned long long)g->alerts, g->kind, g->who,
                               (unsigned long long)g->findings);
        if (ln >= sizeof list) ln = sizeof list - 1;
        tn += (size_t)snprintf(text + tn, sizeof text - tn, "%s %llu %s %s", i ? "," : "",
                               (unsigned long long)g->alerts, g->kind, g->who);
        if (tn >= sizeof text) tn = sizeof text - 1;
    }
    uint64_t rest = d.other_alerts;
    for (unsigned i = shown; i < d.n_groups; i++)
        rest += d.groups[i].alerts;
    if (rest) {
        snprintf(list + ln, sizeof list - ln, "• … and %llu more alerts of other kinds/identities",
                 (unsigned long long)rest);
        snprintf(text + tn, sizeof text - tn, " …");
    }
    json_t *blocks = json_array();
    char h[220];
    snprintf(h, sizeof h, ":package: %s", head);
    json_array_append_new(blocks, json_pack("{s:s,s:o}", "type", "header", "text",
                                            text_obj("plain_text", h, SL_HEADER_MAX)));
    json_array_append_new(blocks, section(list));
    char ctx[300];
    snprintf(ctx, sizeof ctx,
             "Rate limit reached: held alerts from %s to %s (packet time) summarised. Every "
             "alert is in the EVE log and `keywarden audit`.",
             kw_ts_format_rfc3339(d.first, t0, sizeof t0),
             kw_ts_format_rfc3339(d.last, t1, sizeof t1));
    json_t *el = json_array();
    json_array_append_new(el, json_pack("{s:s,s:s}", "type", "mrkdwn", "text", ctx));
    json_array_append_new(blocks, json_pack("{s:s,s:o}", "type", "context", "elements", el));
    json_t *tx = text_obj("mrkdwn", text, SL_TEXT_MAX);
    json_t *msg = json_pack("{s:O,s:o}", "text", json_object_get(tx, "text"), "blocks", blocks);
    json_decref(tx);
    return msg;
}
