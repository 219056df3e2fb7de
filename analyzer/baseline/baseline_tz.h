/* baseline_tz: the baselines' cache of time zones by name. A baseline gets
 * the zone of an identity as a name (the rules model may be reloaded under
 * it), so it keeps its own bounded cache of zones loaded with kw_tz (the
 * one TZif reader): thread-safe, and no file access after a zone's first
 * use. */
#ifndef KW_BASELINE_TZ_H
#define KW_BASELINE_TZ_H

#include <stdbool.h>
#include <stdint.h>

#include "kw_tz.h"

#define BL_TZ_MAX 64

struct bl_zone {
    char name[64];
    struct kw_tz *tz; /* NULL: unknown zone (remembered, not retried) */
};

struct bl_tzcache {
    struct bl_zone z[BL_TZ_MAX];
    unsigned n;
};

/* Offset in seconds (local = utc + off) of zone `name` at UTC second t.
 * NULL/""/"UTC" are UTC. False (and *off = 0) when the zone is unknown or
 * the cache is full. */
bool bl_tz_offset(struct bl_tzcache *c, const char *name, int64_t t, int32_t *off);
void bl_tz_free(struct bl_tzcache *c);

#endif
