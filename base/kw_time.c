/* kw_time: formatting of packet timestamps (see kw_time.h). */
#include "kw_time.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static void split(kw_ts ts, time_t *sec, long *usec)
{
    kw_ts s = ts / 1000000, u = ts % 1000000;
    if (u < 0) { /* floor division for times before the epoch */
        u += 1000000;
        s -= 1;
    }
    *sec = (time_t)s;
    *usec = (long)u;
}

/* Civil date from days since 1970-01-01 (H. Hinnant's algorithm): exact for
 * the proleptic Gregorian calendar, no tables, no locale. */
static void civil(int64_t days, int *y, unsigned *m, unsigned *d)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static char *digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

/* Formatted by hand: it runs for every record (snprintf + gmtime_r cost
 * about 4,000 instructions a call). */
char *kw_ts_format(kw_ts ts, char *buf, size_t len)
{
    time_t sec;
    long usec;
    split(ts, &sec, &usec);
    int64_t days = (int64_t)sec / 86400, rem = (int64_t)sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int y;
    unsigned m, d;
    civil(days, &y, &m, &d);
    if (len < 32 || y < 0 || y > 9999) {
        struct tm tm;
        gmtime_r(&sec, &tm);
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ld+0000", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
        return buf;
    }
    char *p = digits(buf, (unsigned)y, 4);
    *p++ = '-';
    p = digits(p, m, 2);
    *p++ = '-';
    p = digits(p, d, 2);
    *p++ = 'T';
    p = digits(p, (unsigned)(rem / 3600), 2);
    *p++ = ':';
    p = digits(p, (unsigned)(rem / 60 % 60), 2);
    *p++ = ':';
    p = digits(p, (unsigned)(rem % 60), 2);
    *p++ = '.';
    p = digits(p, (unsigned)usec, 6);
    memcpy(p, "+0000", 6);
    return buf;
}

char *kw_ts_format_rfc3339(kw_ts ts, char *buf, size_t len)
{
    time_t sec;
    long usec;
    struct tm tm;
    split(ts, &sec, &usec);
    gmtime_r(&sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

kw_ts kw_ts_wall(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (kw_ts)tv.tv_sec * 1000000 + tv.tv_usec;
}

int64_t kw_time_unit_s(char unit)
{
    switch (unit) {
    case 's': return 1;
    case 'm': return 60;
    case 'h': return 3600;
    case 'd': return 86400;
    case 'w': return 7 * 86400;
    default: return 0;
    }
}

/* Howard Hinnant's days_from_civil: proleptic Gregorian, exact. */
int64_t kw_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void kw_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}
