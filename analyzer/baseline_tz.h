/* baseline_tz: UTC offsets of IANA time zones for the baselines, read from
 * the system tz database (TZif, RFC 8536) into a cache owned by one
 * struct baseline: thread-safe (no TZ, no localtime_r) and no file access
 * after a zone's first use. rules/ has its own reader, but its loader is
 * internal to rules/ and the baseline contract takes a zone name.
 *
 * Limit: after a file's last transition the footer is used only when it is
 * a fixed offset ("IST-5:30"); a DST rule there falls back to the last
 * transition's offset. Debian's tzdata files are "fat" (transitions listed
 * to 2037), so this matters only for slim files. */
#ifndef KW_BASELINE_TZ_H
#define KW_BASELINE_TZ_H

#include <stdbool.h>
#include <stdint.h>

#define BL_TZ_MAX 64

struct bl_zone {
    char name[64];
    int64_t *at;  /* transition instants (s), ascending */
    int32_t *off; /* offset from at[i] on */
    uint32_t n;
    int32_t off_before, off_after;
    bool ok;
};

struct bl_tzcache {
    const char *dir; /* NULL: /usr/share/zoneinfo */
    struct bl_zone z[BL_TZ_MAX];
    unsigned n;
};

/* Offset in seconds (local = utc + off) of zone `name` at UTC second t.
 * NULL/""/"UTC" are UTC. False (and *off = 0) when the zone is unknown or
 * the cache is full. */
bool bl_tz_offset(struct bl_tzcache *c, const char *name, int64_t t, int32_t *off);
void bl_tz_free(struct bl_tzcache *c);

#endif
