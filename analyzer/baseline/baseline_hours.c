/* baseline_hours: unusual_hour, activity in a local hour of the week the
 * identity does not use. The profile counts active local hours in how[]
 * (decayed weekly, Monday 00 first); an hour is usual when it or its
 * neighbours (sensitivity) have enough support in the same day class
 * (weekdays or weekends), which is all a contractor's schedule needs and
 * keeps the profile a fixed size. Local time comes from the identity's
 * zone (baseline_tz.c), so daylight saving moves nothing. */
#include <stdio.h>

#include "baseline_int.h"

static const char *const wd_names[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

static float hour_support(const struct bl_profile *p, int cls, int hod)
{
    float s = 0;
    for (int d = cls ? 5 : 0; d < (cls ? 7 : 5); d++)
        s += p->how[d * 24 + ((hod + 24) % 24)];
    return s;
}

void bl_usual_hours(const struct bl_profile *p, int cls, char *buf, size_t n)
{
    int lo = -1, hi = -1;
    for (int h = 0; h < 24; h++)
        if (hour_support(p, cls, h) >= 0.5f) {
            if (lo < 0) lo = h;
            hi = h;
        }
    if (lo < 0)
        snprintf(buf, n, "%s never", cls ? "weekends" : "weekdays");
    else
        snprintf(buf, n, "%s %02d:00-%02d:00", cls ? "weekends" : "weekdays", lo, hi + 1);
}

/* unusual_hour: no activity in this local hour (+-tol) of this day class in
 * the decayed history. Quarantined hours re-alert once per local day. */
void bl_check_hour(struct baseline *b, struct bl_obs *o, bool has_schedule, bool *learn_hour)
{
    const struct bl_sens *s = &bl_sens_tab[b->sens];
    struct bl_profile *p = o->p;
    *learn_hour = true;
    if (o->learning) return;
    for (int d = -s->hour_tol; d <= s->hour_tol; d++)
        if (hour_support(p, o->cls, o->hod + d) >= s->hour_support) return;
    *learn_hour = false;
    bool fresh;
    struct bl_pending *e =
        bl_pend_get(b, o, BL_P_HOUR, (uint64_t)(o->cls * 24 + o->hod + 1), &fresh);
    bool new_day = e->last_day != (int32_t)o->local_day;
    if (bl_pend_see(b, o, e)) {
        p->how[o->wd * 24 + o->hod] += (float)e->days - 1.f; /* this one is added by the caller */
        bl_pend_drop(p, e);
        *learn_hour = true;
        return;
    }
    if (!new_day || has_schedule) return;
    char usual[64], subj[32];
    bl_usual_hours(p, o->cls, usual, sizeof usual);
    snprintf(subj, sizeof subj, "hour:%s %02d", wd_names[o->wd], o->hod);
    int mm = (int)((o->local_sec % 3600 + 3600) % 3600 / 60);
    char lt[8];
    snprintf(lt, sizeof lt, "%02d:%02d", o->hod, mm);
    bl_emit(
        b, o, BL_F_HOUR, subj,
        json_pack("{s:s,s:f}", "usual_hours", usual, "support", hour_support(p, o->cls, o->hod)),
        json_pack("{s:s,s:i,s:s}", "local_time", lt, "hour", o->hod, "weekday", wd_names[o->wd]),
        "%s active at %s %s (%s), an hour it does not use; usually %s", bl_who(o), lt,
        wd_names[o->wd], o->tz && o->tz[0] ? o->tz : "UTC", usual);
}
