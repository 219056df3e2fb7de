/* kw_time: formatting of packet timestamps (see kw_time.h). */
#include "kw_time.h"

#include <stdio.h>
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

char *kw_ts_format(kw_ts ts, char *buf, size_t len)
{
    time_t sec;
    long usec;
    struct tm tm;
    split(ts, &sec, &usec);
    gmtime_r(&sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ld+0000", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
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
