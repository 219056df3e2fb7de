/* baseline_show: human and JSON summaries of one profile, for `keywarden
 * baseline show`: the hour-of-week heat map (local time), top endpoints,
 * hourly volumes, sources, agents, quarantine and learning state. Read
 * only; it never changes a profile. Every string learned from the wire
 * (keys with claimed names, endpoints, agents, grants) is escaped for the
 * terminal in the text form (kw_term.h). */
#include <stdlib.h>
#include <string.h>

#include "baseline_int.h"
#include "kw_term.h"

static const char *const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const shade[] = {"\xc2\xb7", "\xe2\x96\x91", "\xe2\x96\x92", "\xe2\x96\x93",
                                    "\xe2\x96\x88"}; /* · ░ ▒ ▓ █ */

static const struct bl_profile *lookup(const struct baseline *b, const char *key)
{
    long i = bl_find(b, key);
    return i < 0 ? NULL : &b->p[i];
}

static kw_ts learning_end(const struct baseline *b, const struct bl_profile *p, bool *done)
{
    kw_ts end = p->first_seen + b->learning;
    *done = p->last_seen >= end && p->active_days >= b->min_days;
    return end;
}

/* Indices of the n largest counts, descending (n <= 32). */
static unsigned top_idx(const float *first, size_t stride, unsigned n, unsigned *out, unsigned k)
{
    bool used[64] = {0};
    unsigned m = 0;
    for (; m < k && m < n; m++) {
        int best = -1;
        for (unsigned i = 0; i < n; i++) {
            float c = *(const float *)((const char *)first + i * stride);
            if (!used[i] && (best < 0 || c > *(const float *)((const char *)first + best * stride)))
                best = (int)i;
        }
        used[best] = true;
        out[m] = (unsigned)best;
    }
    return m;
}


static void show_heatmap(const struct bl_profile *p, FILE *f)
{
    float max = 0;
    for (int i = 0; i < BL_HOW; i++)
        if (p->how[i] > max) max = p->how[i];
    fprintf(f, "hours (local time, %s; shade = share of the busiest hour):\n       ",
            p->tz[0] ? p->tz : "UTC");
    for (int h = 0; h < 24; h += 3)
        fprintf(f, "%02d ", h);
    fprintf(f, "\n");
    for (int d = 0; d < 7; d++) {
        fprintf(f, "  %s  ", days[d]);
        for (int h = 0; h < 24; h++) {
            float v = p->how[d * 24 + h];
            int lvl = v <= 0.05f || max <= 0 ? 0 : 1 + (int)(3.999f * v / max);
            fprintf(f, "%s", shade[lvl > 4 ? 4 : lvl]);
        }
        fprintf(f, "\n");
    }
}

static void show_volume(const struct bl_profile *p, FILE *f)
{
    for (int c = 0; c < 2; c++) {
        struct bl_volstat v;
        char med[32], lo[32], hi[32], bm[32];
        if (!bl_volstat(p, c, &v) || v.cls != c) {
            fprintf(f, "  %-9s not enough hours yet (%u of 8)\n", c ? "weekends" : "weekdays",
                    p->vol[c].n);
            continue;
        }
        bl_fmt_count(v.med, med, sizeof med);
        bl_fmt_count(v.p10, lo, sizeof lo);
        bl_fmt_count(v.p90, hi, sizeof hi);
        bl_fmt_count(v.bmed, bm, sizeof bm);
        fprintf(f,
                "  %-9s median %s requests/h (usually %s-%s, MAD %.1f), median %s bytes/h, "
                "%u active hours\n",
                c ? "weekends" : "weekdays", med, lo, hi, v.mad, bm, v.n);
    }
}

static const char *pend_name(int t)
{
    return t == BL_P_ENDPOINT ? "endpoint"
           : t == BL_P_NET    ? "network"
           : t == BL_P_HOUR   ? "hour"
                              : "sharing";
}

static void show_lists(const struct bl_profile *p, FILE *f)
{
    unsigned idx[BL_K_END], n;
    fprintf(f, "endpoints (%u known):\n", p->n_end);
    n = top_idx(&p->end[0].count, sizeof p->end[0], p->n_end, idx, 10);
    for (unsigned i = 0; i < n; i++) {
        fprintf(f, "  %10.1f  ", p->end[idx[i]].count);
        kw_term_fputs(p->end[idx[i]].text, f);
        fputc('\n', f);
    }
    fprintf(f, "sources (%u networks):\n", p->n_net);
    n = top_idx(&p->net[0].count, sizeof p->net[0], p->n_net, idx, 10);
    for (unsigned i = 0; i < n; i++) {
        char ns[64];
        bl_net_str(p->net[idx[i]].family, p->net[idx[i]].a, ns, sizeof ns);
        fprintf(f, "  %10.1f  %s\n", p->net[idx[i]].count, ns);
    }
    fprintf(f, "user agents:\n");
    n = top_idx(&p->ua[0].count, sizeof p->ua[0], p->n_ua, idx, BL_K_UA);
    for (unsigned i = 0; i < n; i++) {
        fprintf(f, "  %10.1f  ", p->ua[idx[i]].count);
        kw_term_fputs(p->ua[idx[i]].text, f);
        fputc('\n', f);
    }
    if (p->n_grant) {
        /* escaped: a grant comes from a token anyone could mint */
        fprintf(f, "OAuth grants its tokens held (%u):", p->n_grant);
        for (unsigned i = 0; i < p->n_grant; i++) {
            fputc(' ', f);
            kw_term_fputs(p->grant[i].text, f);
        }
        fputc('\n', f);
    }
    fprintf(f, "concurrency: %.1f of %.1f active hours from two networks at once\n", p->conc_hours,
            p->active_hours);
    if (p->n_pend || p->n_vpend)
        fprintf(f, "in quarantine (not learned until they recur on 2 days, 3+ days apart):\n");
    for (unsigned i = 0; i < p->n_pend; i++) {
        const struct bl_pending *e = &p->pend[i];
        char first[32], what[80], esc[4 * sizeof what];
        kw_ts_format_rfc3339(e->first_ts, first, sizeof first);
        if (e->type == BL_P_NET)
            bl_net_str(e->family, e->a, what, sizeof what);
        else if (e->type == BL_P_HOUR)
            snprintf(what, sizeof what, "%s %02d:00", e->h > 24 ? "weekend" : "weekday",
                     (int)((e->h - 1) % 24));
        else
            snprintf(what, sizeof what, "%s", e->text);
        fprintf(f, "  %-8s %s  first %s, %u seen on %u days\n", pend_name(e->type),
                kw_term_esc(esc, sizeof esc, what), first, e->count, e->days);
    }
    if (p->n_vpend) fprintf(f, "  volume   %u spike hours\n", p->n_vpend);
}

enum kw_err baseline_show_text(const struct baseline *b, const char *key, FILE *f)
{
    const struct bl_profile *p = lookup(b, key);
    if (!p) return KW_E_NOTFOUND;
    char first[32], last[32], end[32], total[32];
    bool done;
    kw_ts le = learning_end(b, p, &done);
    kw_ts_format_rfc3339(p->first_seen, first, sizeof first);
    kw_ts_format_rfc3339(p->last_seen, last, sizeof last);
    kw_ts_format_rfc3339(le, end, sizeof end);
    bl_fmt_count((double)p->requests, total, sizeof total);
    kw_term_fputs(p->key, f);
    fprintf(f, " (%s)\n", p->is_cred ? "unattributed credential" : "identity");
    fprintf(f, "seen %s .. %s, %s requests, %u active days\n", first, last, total, p->active_days);
    if (done)
        fprintf(f, "learning: done (since %s); baseline alerts active\n", end);
    else
        fprintf(f,
                "learning: until %s and at least %u active days (%u so far); no baseline "
                "alerts yet\n",
                end, b->min_days, p->active_days);
    show_heatmap(p, f);
    fprintf(f, "volume per hour:\n");
    show_volume(p, f);
    show_lists(p, f);
    return KW_E_OK;
}

static json_t *vol_json(const struct bl_profile *p, int c)
{
    struct bl_volstat v;
    if (!bl_volstat(p, c, &v) || v.cls != c) return json_pack("{s:i}", "hours", p->vol[c].n);
    return json_pack("{s:i,s:f,s:f,s:f,s:f,s:f,s:f}", "hours", v.n, "requests_median", v.med,
                     "requests_mad", v.mad, "requests_p10", v.p10, "requests_p90", v.p90,
                     "bytes_median", v.bmed, "bytes_mad", v.bmad);
}

json_t *baseline_show_json(const struct baseline *b, const char *key)
{
    const struct bl_profile *p = lookup(b, key);
    if (!p) return NULL;
    char first[32], last[32], end[32];
    bool done;
    kw_ts le = learning_end(b, p, &done);
    json_t *hours = json_array(), *ends = json_array(), *nets = json_array(), *uas = json_array(),
           *pend = json_array();
    for (int d = 0; d < 7; d++) {
        json_t *row = json_array();
        for (int h = 0; h < 24; h++)
            json_array_append_new(row, json_real(p->how[d * 24 + h]));
        json_array_append_new(hours, row);
    }
    for (unsigned i = 0; i < p->n_end; i++)
        json_array_append_new(
            ends, json_pack("{s:s,s:f}", "endpoint", p->end[i].text, "count", p->end[i].count));
    for (unsigned i = 0; i < p->n_net; i++) {
        char ns[64];
        bl_net_str(p->net[i].family, p->net[i].a, ns, sizeof ns);
        json_array_append_new(nets,
                              json_pack("{s:s,s:f}", "network", ns, "count", p->net[i].count));
    }
    for (unsigned i = 0; i < p->n_ua; i++)
        json_array_append_new(
            uas, json_pack("{s:s,s:f}", "user_agent", p->ua[i].text, "count", p->ua[i].count));
    json_t *grants = json_array();
    for (unsigned i = 0; i < p->n_grant; i++)
        json_array_append_new(grants, json_pack("{s:s,s:i}", "grant", p->grant[i].text, "count",
                                                (int)p->grant[i].count));
    for (unsigned i = 0; i < p->n_pend; i++) {
        kw_ts_format_rfc3339(p->pend[i].first_ts, first, sizeof first);
        json_array_append_new(pend, json_pack("{s:s,s:s,s:i,s:i}", "type",
                                              pend_name(p->pend[i].type), "first_seen", first,
                                              "count", p->pend[i].count, "days", p->pend[i].days));
    }
    kw_ts_format_rfc3339(p->first_seen, first, sizeof first);
    kw_ts_format_rfc3339(p->last_seen, last, sizeof last);
    kw_ts_format_rfc3339(le, end, sizeof end);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:i,s:{s:b,s:s},s:o,s:{s:o,s:o},s:o,s:o,s:o,"
                     "s:{s:f,s:f},s:o,s:i,s:o}",
                     "key", p->key, "kind", p->is_cred ? "credential" : "identity", "timezone",
                     p->tz[0] ? p->tz : "UTC", "first_seen", first, "last_seen", last, "requests",
                     (json_int_t)p->requests, "active_days", p->active_days, "learning", "done",
                     done, "until", end, "hours_of_week", hours, "volume", "weekdays",
                     vol_json(p, 0), "weekends", vol_json(p, 1), "endpoints", ends, "networks",
                     nets, "user_agents", uas, "concurrency", "concurrent_hours", p->conc_hours,
                     "active_hours", p->active_hours, "quarantine", pend, "volume_spike_hours_held",
                     p->n_vpend, "grants", grants);
}
