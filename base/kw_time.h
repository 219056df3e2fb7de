/* kw_time: packet time. Analysis never reads the wall clock; it takes
 * time from packets as microseconds since the Unix epoch (kw_ts). */
#ifndef KW_TIME_H
#define KW_TIME_H

#include <stddef.h>
#include <stdint.h>

typedef int64_t kw_ts; /* microseconds since 1970-01-01T00:00:00Z */

#define KW_TS_SEC(s) ((kw_ts)(s) * 1000000)

/* EVE timestamp "2026-03-28T02:13:05.123456+0000" (UTC). buf >= 32 bytes.
 * Returns buf. */
char *kw_ts_format(kw_ts ts, char *buf, size_t len);

/* RFC 3339 UTC "2026-03-28T02:13:05Z" (seconds). buf >= 24. */
char *kw_ts_format_rfc3339(kw_ts ts, char *buf, size_t len);

/* Seconds in one duration unit as written in config and on the command
 * line: s, m, h, d, w; 0 for anything else. */
int64_t kw_time_unit_s(char unit);

/* Proleptic Gregorian calendar, exact for any year (Howard Hinnant's
 * algorithms): days since 1970-01-01 of a civil date, and back. */
int64_t kw_days_from_civil(int64_t y, unsigned m, unsigned d);
void kw_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* Wall clock, for the main loop and alert delivery only. */
kw_ts kw_ts_wall(void);

#endif
