/* rules_pred: the pure policy predicates (schedule, access window,
 * sources) and the text that explains them. The one thing to know about
 * schedules: a window is turned into two absolute instants (local start
 * and end converted with the identity's own time zone) and the request's
 * instant is compared with them, widened by grace. So a 22:00-06:00 window
 * across a DST change is 7 or 9 real hours, exactly as the wall clock
 * says, and the window belongs to the day it starts on (INTERFACES.md). */
#include <stdio.h>
#include <string.h>

#include "rules_int.h"

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

static int weekday(int64_t days)
{
    return (int)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
}

bool rules_schedule_allows_span(const struct rules_schedule *s, const struct kw_tz *tz, kw_ts ts,
                                kw_ts *until)
{
    int64_t t = floor_div(ts, 1000000);
    int64_t next = t + 3600; /* the next edge after t, or an hour on */
    *until = next * 1000000;
    if (!s->set) return true;
    int64_t local = t + kw_tz_offset(tz, t);
    int64_t today = floor_div(local, 86400);
    bool crosses = s->end_min <= s->start_min, in = false;
    /* Windows that can reach `t`: started yesterday (crossing midnight),
     * today, or tomorrow (grace before its start); grace is at most 12h.
     * The answer only changes at an edge of one of them: a window from
     * another day has none within the hour after t. */
    for (int64_t d = today - 2; d <= today + 1; d++) {
        if (!(s->days & (1u << weekday(d)))) continue;
        int64_t ws = kw_tz_local_to_utc(tz, d * 86400 + s->start_min * 60) - s->grace_s;
        int64_t we = kw_tz_local_to_utc(tz, (d + crosses) * 86400 + s->end_min * 60) + s->grace_s;
        if (t >= ws && t < we) in = true;
        if (ws > t && ws < next) next = ws;
        if (we > t && we < next) next = we;
    }
    *until = next * 1000000;
    return in;
}

bool rules_schedule_allows(const struct rules_schedule *s, const struct kw_tz *tz, kw_ts ts)
{
    kw_ts until;
    return rules_schedule_allows_span(s, tz, ts, &until);
}

int64_t rules_schedule_distance(const struct rules_schedule *s, const struct kw_tz *tz, kw_ts ts)
{
    if (!s->set) return 0;
    int64_t t = floor_div(ts, 1000000);
    int64_t local = t + kw_tz_offset(tz, t);
    int64_t today = floor_div(local, 86400), best = INT64_MAX;
    bool crosses = s->end_min <= s->start_min;
    /* a window within a week either way: the nearest edge of one */
    for (int64_t d = today - 8; d <= today + 8; d++) {
        if (!(s->days & (1u << weekday(d)))) continue;
        int64_t ws = kw_tz_local_to_utc(tz, d * 86400 + s->start_min * 60);
        int64_t we = kw_tz_local_to_utc(tz, (d + crosses) * 86400 + s->end_min * 60);
        int64_t dist = t < ws ? ws - t : t >= we ? t - we : 0;
        if (dist < best) best = dist;
    }
    return best == INT64_MAX ? 0 : best;
}

int rules_access_check(const struct rules_access *a, kw_ts ts)
{
    int64_t t = floor_div(ts, 1000000);
    if (a->has_from && t < a->from_s) return -1;
    if (a->has_until && t >= a->until_s) return 1;
    return 0;
}

bool rules_sources_allow(const struct rules_identity *id, const struct kw_addr *src)
{
    if (!id->n_sources) return true;
    struct kw_addr a = *src;
    /* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 host. */
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (a.family == 6 && !memcmp(a.a, mapped, 12)) {
        memmove(a.a, a.a + 12, 4);
        memset(a.a + 4, 0, 12);
        a.family = 4;
    }
    for (size_t i = 0; i < id->n_sources; i++)
        if (kw_addr_in_prefix(&a, &id->sources[i].net, id->sources[i].prefix)) return true;
    return false;
}

static const char *const wd_short[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
#define EN_DASH "\xe2\x80\x93"

/* Days in Monday-first order, runs of 3+ as ranges: "Mon–Fri", "Sat, Sun". */
static size_t describe_days(uint8_t days, char *buf, size_t len)
{
    if (days == 0x7f) return (size_t)snprintf(buf, len, "daily");
    size_t o = 0;
    int order[7] = {1, 2, 3, 4, 5, 6, 0};
    for (int i = 0; i < 7;) {
        if (!(days & (1u << order[i]))) {
            i++;
            continue;
        }
        int j = i;
        while (j + 1 < 7 && (days & (1u << order[j + 1])))
            j++;
        if (o && o < len) o += (size_t)snprintf(buf + o, len - o, ", ");
        if (o < len) {
            if (j - i >= 2)
                o += (size_t)snprintf(buf + o, len - o, "%s" EN_DASH "%s", wd_short[order[i]],
                                      wd_short[order[j]]);
            else if (j == i + 1)
                o += (size_t)snprintf(buf + o, len - o, "%s, %s", wd_short[order[i]],
                                      wd_short[order[j]]);
            else
                o += (size_t)snprintf(buf + o, len - o, "%s", wd_short[order[i]]);
        }
        i = j + 1;
    }
    return o;
}

void rules_schedule_describe(const struct rules_schedule *s, char *buf, size_t len)
{
    if (!len) return;
    buf[0] = 0;
    if (!s->set) return;
    size_t o = describe_days(s->days, buf, len);
    if (o < len)
        o += (size_t)snprintf(buf + o, len - o, " %02u:%02u" EN_DASH "%02u:%02u", s->start_min / 60,
                              s->start_min % 60, s->end_min / 60, s->end_min % 60);
    if (o < len && !s->grace_s)
        snprintf(buf + o, len - o, " (no grace)");
    else if (o < len)
        snprintf(buf + o, len - o, " (grace %lldm%s)", (long long)(s->grace_s / 60),
                 s->grace_set ? "" : ", default");
}

void rules_local_describe(const struct kw_tz *tz, kw_ts ts, char *buf, size_t len)
{
    int64_t t = floor_div(ts, 1000000);
    int64_t local = t + kw_tz_offset(tz, t);
    int64_t days = floor_div(local, 86400), sod = local - days * 86400;
    snprintf(buf, len, "%02d:%02d %s", (int)(sod / 3600), (int)(sod / 60 % 60),
             wd_short[weekday(days)]);
}
