/* baseline_quarantine: what a detection does with a novelty it has just
 * reported (a new endpoint, network, hour or pair of networks at once):
 * it waits in the profile's pend[] instead of being learned at once, and
 * is learned only when it recurs on two local days at least `quarantine`
 * apart. One alert then stands for a one-off, and a lasting change of
 * habit stops alerting on its own; a single burst of attacker traffic can
 * never teach the profile that it is normal. Shared by the detection
 * files, so it is kept apart from any one of them. */
#include <string.h>

#include "baseline_int.h"

/* Finds or adds the pending entry (type, h). *fresh: just created. */
struct bl_pending *bl_pend_get(struct baseline *b, struct bl_obs *o, int type, uint64_t h,
                               bool *fresh)
{
    struct bl_profile *p = o->p;
    *fresh = false;
    for (uint32_t i = 0; i < p->n_pend; i++)
        if (p->pend[i].type == type && p->pend[i].h == h) return &p->pend[i];
    uint32_t i = p->n_pend;
    if (i == BL_K_PEND) { /* evict the oldest */
        i = 0;
        for (uint32_t k = 1; k < p->n_pend; k++)
            if (p->pend[k].first_ts < p->pend[i].first_ts) i = k;
        b->st.evict_pending++;
    } else {
        p->n_pend++;
    }
    struct bl_pending *e = &p->pend[i];
    memset(e, 0, sizeof *e);
    e->type = (uint8_t)type;
    e->h = h;
    e->first_ts = o->t->ts;
    e->last_day = INT32_MIN;
    *fresh = true;
    return e;
}

/* Records a sighting; true when the entry has now recurred on two local
 * days at least `quarantine` apart, and is removed to be learned. */
bool bl_pend_see(struct baseline *b, struct bl_obs *o, struct bl_pending *e)
{
    b->st.quarantined++;
    e->count++;
    if (e->last_day != (int32_t)o->local_day) {
        e->last_day = (int32_t)o->local_day;
        if (e->days < 255) e->days++;
    }
    if (e->days < 2 || o->t->ts - e->first_ts < b->quarantine) return false;
    b->st.promoted++;
    return true;
}

void bl_pend_drop(struct bl_profile *p, struct bl_pending *e)
{
    uint32_t i = (uint32_t)(e - p->pend);
    memmove(&p->pend[i], &p->pend[i + 1], (p->n_pend - i - 1) * sizeof *e);
    p->n_pend--;
    memset(&p->pend[p->n_pend], 0, sizeof *e);
}
