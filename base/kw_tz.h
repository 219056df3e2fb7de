/* kw_tz: a time zone from the system tz database (TZif, RFC 8536), read
 * once: the transitions of the 64-bit section plus the POSIX TZ footer for
 * instants past the last transition, so "slim" files work as well as "fat"
 * ones. Never uses TZ/localtime_r, so it is thread-safe and independent of
 * the process time zone. The one TZif reader of keywarden. */
#ifndef KW_TZ_H
#define KW_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "kw_err.h"

struct kw_tz;

/* Loads zone `name` ("Europe/Berlin") from $TZDIR or /usr/share/zoneinfo.
 * On failure *out is NULL and err says why ("unknown time zone ..."). */
enum kw_err kw_tz_load(const char *name, struct kw_tz **out, char *err, size_t errlen) KW_WUR;
/* A zone from a POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3"). */
enum kw_err kw_tz_from_posix(const char *name, const char *posix, struct kw_tz **out) KW_WUR;
/* UTC; NULL only when out of memory. */
struct kw_tz *kw_tz_utc(void);
void kw_tz_free(struct kw_tz *tz);

const char *kw_tz_name(const struct kw_tz *tz);
/* UTC offset in seconds (local = utc + offset) at the UTC instant t. */
int32_t kw_tz_offset(const struct kw_tz *tz, int64_t t);
/* The UTC instant of a local wall time (seconds since the epoch as if the
 * local time were UTC). In a DST gap the result lies just after the gap;
 * in a repeated hour it is the first of the two instants. */
int64_t kw_tz_local_to_utc(const struct kw_tz *tz, int64_t local);

#endif
