/* report_svg: the two pictures of an identity in `keywarden report`, as
 * inline SVG (no script, no external resource): the 7x24 heat map of its
 * activity in its own time zone with its schedule drawn on it, and its
 * daily volume with the hourly range its baseline learned.
 *
 * The one thing to know: the schedule is not re-implemented here. Each
 * minute of a reference week (the local week of the identity's last
 * request, so the zone's offset is the one its activity had) is asked of
 * rules_schedule_allows(), the predicate the judge uses, once without
 * grace (solid outline) and once with it (dashed). */
#include <math.h>
#include <string.h>

#include "report.h"

#define HM_CW 24 /* cell width */
#define HM_CH 20
#define HM_X0 44
#define HM_Y0 22

static const char *const wd[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const heat_fill[] = {"#eef1f4", "#c6dbef", "#6baed6", "#2171b5", "#08306b"};

static int level(uint64_t n, uint64_t max)
{
    if (!n || !max) return 0;
    int l = 1 + (int)(3.999 * (double)n / (double)max);
    return l > 4 ? 4 : l;
}

/* Outlines of the minutes of each weekday row that s allows. */
static void schedule_rects(FILE *f, const struct rules_schedule *s, const struct kw_tz *tz,
                           int64_t monday, const char *cls)
{
    for (int d = 0; d < 7; d++) {
        int start = -1;
        for (int m = 0; m <= 1440; m++) {
            bool in = false;
            if (m < 1440) {
                int64_t utc = kw_tz_local_to_utc(tz, (monday + d) * 86400 + m * 60);
                in = rules_schedule_allows(s, tz, KW_TS_SEC(utc));
            }
            if (in && start < 0) start = m;
            if (!in && start >= 0) {
                fprintf(f,
                        "<rect class=\"%s\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\"/>\n",
                        cls, HM_X0 + start * HM_CW / 60.0, HM_Y0 + d * HM_CH,
                        (m - start) * HM_CW / 60.0, HM_CH);
                start = -1;
            }
        }
    }
}

void rep_svg_heatmap(FILE *f, const struct report *r, const struct rep_ident *id)
{
    uint64_t max = 0;
    for (int d = 0; d < 7; d++)
        for (int h = 0; h < 24; h++)
            if (id->heat[d][h] > max) max = id->heat[d][h];
    const char *zone = kw_tz_name(id->tz);
    int w = HM_X0 + 24 * HM_CW + 8, hgt = HM_Y0 + 7 * HM_CH + 6;
    fprintf(f,
            "<svg class=\"heatmap\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
            "role=\"img\" aria-label=\"requests per hour of the week, local time\">\n",
            w, hgt, w, hgt);
    for (int h = 0; h < 24; h += 3)
        fprintf(f, "<text class=\"ax\" x=\"%d\" y=\"%d\">%02d</text>\n", HM_X0 + h * HM_CW + 2,
                HM_Y0 - 6, h);
    for (int d = 0; d < 7; d++) {
        fprintf(f, "<text class=\"ax\" x=\"4\" y=\"%d\">%s</text>\n", HM_Y0 + d * HM_CH + 14,
                wd[d]);
        for (int h = 0; h < 24; h++) {
            uint64_t n = id->heat[d][h];
            fprintf(f,
                    "<rect class=\"cell\" data-day=\"%d\" data-hour=\"%d\" data-n=\"%llu\" "
                    "x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"><title>%s "
                    "%02d:00\xe2\x80\x93%02d:00 (",
                    d, h, (unsigned long long)n, HM_X0 + h * HM_CW + 1, HM_Y0 + d * HM_CH + 1,
                    HM_CW - 2, HM_CH - 2, heat_fill[level(n, max)], wd[d], h, h + 1);
            rep_esc(f, zone);
            fprintf(f, "): %llu request%s</title></rect>\n", (unsigned long long)n,
                    n == 1 ? "" : "s");
        }
    }
    const struct rules_schedule *s = id->rule ? &id->rule->schedule : NULL;
    if (s && s->set) {
        int64_t ref = id->last ? id->last : r->until;
        int64_t day;
        int sod;
        rep_local(id->tz, ref / 1000000, &day, &sod);
        int64_t monday = day - rep_wday(day);
        struct rules_schedule strict = *s;
        strict.grace_s = 0;
        if (s->grace_s) schedule_rects(f, s, id->tz, monday, "grace");
        schedule_rects(f, &strict, id->tz, monday, "sched");
    }
    fprintf(f, "</svg>\n");
}

/* ---- daily volume ---- */

#define VC_X0 48
#define VC_H1 110 /* requests per day */
#define VC_H2 90  /* busiest hour against the learned range */
#define VC_GAP 34

struct band {
    bool have;
    double lo, med, hi;
};

static struct band band_of(const json_t *bl, const char *cls)
{
    struct band b = {0};
    json_t *v = json_object_get(json_object_get(bl, "volume"), cls);
    json_t *p10 = json_object_get(v, "requests_p10"), *p90 = json_object_get(v, "requests_p90");
    if (json_is_number(p10) && json_is_number(p90)) {
        b.have = true;
        b.lo = json_number_value(p10);
        b.hi = json_number_value(p90);
        b.med = json_number_value(json_object_get(v, "requests_median"));
    }
    return b;
}

static uint32_t peak(const struct rep_day *d, int *hour)
{
    uint32_t p = 0;
    *hour = 0;
    for (int h = 0; h < 24; h++)
        if (d->hours[h] > p) {
            p = d->hours[h];
            *hour = h;
        }
    return p;
}

static void day_label(int64_t day, char *buf, size_t n)
{
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t y;
    unsigned m, dd;
    kw_civil_from_days(day, &y, &m, &dd);
    snprintf(buf, n, "%s %u %s", wd[rep_wday(day)], dd, mon[(m - 1) % 12]);
}

static void volume_axes(FILE *f, int w, int y0, int h, double max, const char *label)
{
    fprintf(f, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", VC_X0, y0 + h,
            w - 4, y0 + h);
    fprintf(f, "<text class=\"ax\" x=\"4\" y=\"%d\">%.0f</text>\n", y0 + 8, max);
    fprintf(f, "<text class=\"ax\" x=\"4\" y=\"%d\">0</text>\n", y0 + h);
    fprintf(f, "<text class=\"ax\" x=\"%d\" y=\"%d\">%s</text>\n", VC_X0, y0 - 4, label);
}

void rep_svg_volume(FILE *f, const struct rep_ident *id)
{
    size_t n = id->n_days;
    if (!n) return;
    double bw = n <= 20 ? 28 : 560.0 / (double)n;
    int w = VC_X0 + (int)ceil(bw * (double)n) + 16;
    if (w < 560) w = 560;
    struct band wk = band_of(id->baseline, "weekdays"), we = band_of(id->baseline, "weekends");
    uint64_t max1 = 1;
    double max2 = 1;
    for (size_t i = 0; i < n; i++) {
        int ph;
        if (id->days[i].n > max1) max1 = id->days[i].n;
        if (peak(&id->days[i], &ph) > max2) max2 = peak(&id->days[i], &ph);
    }
    if (wk.have && wk.hi > max2) max2 = wk.hi;
    if (we.have && we.hi > max2) max2 = we.hi;
    max2 = ceil(max2 * 1.1);
    size_t label_every = (size_t)ceil(66.0 / bw); /* "Mon 23 Mar" is ~60 px wide */
    int y1 = 16, y2 = y1 + VC_H1 + VC_GAP, hgt = y2 + VC_H2 + 22;
    fprintf(f,
            "<svg class=\"volume\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
            "role=\"img\" aria-label=\"requests per day and busiest hour\">\n",
            w, hgt, w, hgt);
    volume_axes(f, w, y1, VC_H1, (double)max1, "requests per day");
    volume_axes(f, w, y2, VC_H2, max2,
                "busiest hour of the day (requests/h) and the learned usual range");
    for (size_t i = 0; i < n; i++) {
        const struct rep_day *d = &id->days[i];
        double x = VC_X0 + bw * (double)i;
        double bh = (double)VC_H1 * (double)d->n / (double)max1;
        char lab[32];
        day_label(d->day, lab, sizeof lab);
        fprintf(f,
                "<rect class=\"bar\" data-n=\"%llu\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                "height=\"%.1f\"><title>%s: %llu requests</title></rect>\n",
                (unsigned long long)d->n, x + 2, y1 + VC_H1 - bh, bw - 4, bh, lab,
                (unsigned long long)d->n);
        bool weekend = rep_wday(d->day) >= 5;
        const struct band *b = weekend ? &we : &wk;
        if (b->have) {
            double ylo = y2 + VC_H2 - VC_H2 * b->lo / max2, yhi = y2 + VC_H2 - VC_H2 * b->hi / max2;
            double ymed = y2 + VC_H2 - VC_H2 * b->med / max2;
            fprintf(f,
                    "<rect class=\"band\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
                    "<title>learned %s range: %.0f\xe2\x80\x93%.0f requests/h (median %.0f)"
                    "</title></rect>\n",
                    x, yhi, bw, ylo - yhi > 1 ? ylo - yhi : 1, weekend ? "weekend" : "weekday",
                    b->lo, b->hi, b->med);
            fprintf(f, "<line class=\"median\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
                    x, ymed, x + bw, ymed);
        }
        int ph;
        uint32_t p = peak(d, &ph);
        if (p) {
            bool above = b->have && p > b->hi;
            fprintf(f,
                    "<circle class=\"peak%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\"><title>%s: busiest "
                    "hour %02d:00, %u requests%s</title></circle>\n",
                    above ? " above" : "", x + bw / 2, y2 + VC_H2 - VC_H2 * p / max2, lab, ph, p,
                    above ? " (above the learned range)" : "");
        }
        if (i % label_every == 0)
            fprintf(f, "<text class=\"ax day\" x=\"%.1f\" y=\"%d\">%s</text>\n", x + 1,
                    y1 + VC_H1 + 14, lab);
    }
    fprintf(f, "</svg>\n");
}
