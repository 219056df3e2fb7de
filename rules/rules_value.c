/* rules_value: parsers for the small value languages of the rule files:
 * durations (30m, 14d), sizes (200MB, 1GiB), CIDRs, weekday lists and
 * ranges, hours ranges, dates and RFC 3339 timestamps. Pure functions; the
 * one thing to know: every failure fills a message and a static hint that
 * the loader prints verbatim after file:line:col. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules_int.h"

#define ERR(...) snprintf(err, RV_ERRLEN, __VA_ARGS__)

bool rv_uint(const char *s, uint64_t max, uint64_t *v, char *err, const char **hint)
{
    *hint = "write a whole number such as 20";
    if (!*s || !isdigit((unsigned char)*s)) {
        ERR("expected a whole number, got \"%s\"", s);
        return false;
    }
    errno = 0;
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end || errno) {
        ERR("expected a whole number, got \"%s\"", s);
        return false;
    }
    if (x > max) {
        ERR("%s is too large (at most %llu)", s, (unsigned long long)max);
        *hint = NULL;
        return false;
    }
    *v = x;
    return true;
}

/* One or more <number><unit> groups: "90s", "1h30m". A bare number is an
 * error: "30" could mean seconds or minutes, and guessing is how alerts go
 * missing. */
bool rv_duration(const char *s, int64_t *sec, char *err, const char **hint)
{
    *hint = "use a number and a unit: 10s, 30m, 2h, 14d or 1w (combined like 1h30m)";
    const char *p = s;
    int64_t total = 0;
    if (!*p) {
        ERR("empty duration");
        return false;
    }
    if (!strcmp(p, "0")) { /* zero needs no unit (grace: 0, strict) */
        *sec = 0;
        return true;
    }
    while (*p) {
        if (!isdigit((unsigned char)*p)) {
            ERR("bad duration \"%s\"", s);
            return false;
        }
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            n = n * 10 + (*p++ - '0');
            if (n > 100000000) {
                ERR("duration \"%s\" is too long", s);
                return false;
            }
        }
        int64_t unit = kw_time_unit_s(*p);
        if (!*p) {
            ERR("duration \"%s\" has no unit", s);
            return false;
        }
        if (!unit) {
            ERR("unknown unit '%c' in duration \"%s\"", *p, s);
            return false;
        }
        p++;
        total += n * unit;
        if (total > (int64_t)100 * 365 * 86400) {
            ERR("duration \"%s\" is too long (at most 100 years)", s);
            return false;
        }
    }
    *sec = total;
    return true;
}

/* Decimal (kB, MB: powers of 1000) and binary (KiB, MiB: powers of 1024)
 * units as in IEC 80000-13; a bare number is bytes. */
bool rv_size(const char *s, uint64_t *bytes, char *err, const char **hint)
{
    *hint = "use a number and a unit: 512KB, 200MB, 1GiB (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)";
    const char *p = s;
    uint64_t n = 0;
    if (!isdigit((unsigned char)*p)) {
        ERR("bad size \"%s\"", s);
        return false;
    }
    while (isdigit((unsigned char)*p)) {
        n = n * 10 + (uint64_t)(*p++ - '0');
        if (n > (UINT64_C(1) << 40)) {
            ERR("size \"%s\" is too large", s);
            return false;
        }
    }
    while (*p == ' ')
        p++;
    static const struct {
        const char *u;
        uint64_t mul;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"KB", 1000},
                 {"MB", 1000000},
                 {"GB", 1000000000},
                 {"TB", UINT64_C(1000000000000)},
                 {"KiB", 1024},
                 {"MiB", 1024 * 1024},
                 {"GiB", UINT64_C(1) << 30},
                 {"TiB", UINT64_C(1) << 40}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(p, units[i].u) == 0) {
            if (units[i].mul > 1 && n > UINT64_MAX / units[i].mul) {
                ERR("size \"%s\" is too large", s);
                return false;
            }
            *bytes = n * units[i].mul;
            return true;
        }
    }
    ERR("unknown size unit \"%s\" in \"%s\"", p, s);
    return false;
}

bool rv_cidr(const char *s, struct rules_cidr *c, bool *host_bits, char *err, const char **hint)
{
    *hint = "write an address (198.51.100.7, 2001:db8::1) or a network (203.0.113.0/29, "
            "2001:db8::/32)";
    char buf[64];
    *host_bits = false;
    if (strlen(s) >= sizeof buf) {
        ERR("bad address or network \"%.40s...\"", s);
        return false;
    }
    strcpy(buf, s);
    char *slash = strchr(buf, '/');
    if (slash) *slash = 0;
    if (!kw_addr_parse(buf, &c->net)) {
        ERR("bad address \"%s\"", buf);
        return false;
    }
    unsigned max = c->net.family == 4 ? 32 : 128;
    unsigned prefix = max;
    if (slash) {
        const char *q = slash + 1;
        if (!*q || strlen(q) > 3) {
            ERR("bad prefix length in \"%s\"", s);
            return false;
        }
        prefix = 0;
        for (; *q; q++) {
            if (!isdigit((unsigned char)*q)) {
                ERR("bad prefix length in \"%s\"", s);
                return false;
            }
            prefix = prefix * 10 + (unsigned)(*q - '0');
        }
        if (prefix > max) {
            ERR("prefix /%u is longer than the address (/%u) in \"%s\"", prefix, max, s);
            return false;
        }
    }
    c->prefix = (uint8_t)prefix;
    for (unsigned b = prefix; b < max; b++) {
        if (c->net.a[b / 8] & (0x80 >> (b % 8))) {
            *host_bits = true;
            c->net.a[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
        }
    }
    return true;
}

static const char *const day_names[7][2] = {
    {"sun", "sunday"},   {"mon", "monday"}, {"tue", "tuesday"}, {"wed", "wednesday"},
    {"thu", "thursday"}, {"fri", "friday"}, {"sat", "saturday"}};

static int day_parse(const char *s, size_t n)
{
    for (int d = 0; d < 7; d++)
        for (int k = 0; k < 2; k++)
            if (strlen(day_names[d][k]) == n && strncasecmp(s, day_names[d][k], n) == 0) return d;
    return -1;
}

/* "mon-fri", "sat,sun", "mon-fri,sun", "daily". A range runs forward
 * through the week and may wrap: "sun-thu" is Sun, Mon, Tue, Wed, Thu. */
bool rv_days(const char *s, uint8_t *mask, char *err, const char **hint)
{
    *hint = "use mon..sun, a list like sat,sun or a range like mon-fri";
    *mask = 0;
    if (!strcasecmp(s, "daily") || !strcasecmp(s, "all") || !strcmp(s, "*")) {
        *mask = 0x7f;
        return true;
    }
    const char *p = s;
    while (1) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ')
            n--;
        const char *dash = memchr(p, '-', n);
        int a, b;
        if (dash) {
            a = day_parse(p, (size_t)(dash - p));
            b = day_parse(dash + 1, n - (size_t)(dash - p) - 1);
        } else {
            a = b = day_parse(p, n);
        }
        if (a < 0 || b < 0) {
            const char *bad = p;
            size_t bl = n;
            if (dash && a >= 0) {
                bad = dash + 1;
                bl = n - (size_t)(dash - p) - 1;
            } else if (dash) {
                bl = (size_t)(dash - p);
            }
            ERR("unknown weekday \"%.*s\"", (int)bl, bad);
            return false;
        }
        for (int d = a;; d = (d + 1) % 7) {
            *mask |= (uint8_t)(1u << d);
            if (d == b) break;
        }
        p += strcspn(p, ",");
        if (!*p) break;
        p++;
    }
    return true;
}

static bool hhmm(const char *p, size_t n, uint16_t *min)
{
    unsigned h, m;
    char extra;
    char buf[8];
    if (n < 4 || n > 5) return false;
    memcpy(buf, p, n);
    buf[n] = 0;
    if (sscanf(buf, "%u:%2u%c", &h, &m, &extra) != 2 || buf[n - 3] != ':') return false;
    if (m > 59 || h > 24 || (h == 24 && m)) return false;
    *min = (uint16_t)(h * 60 + m);
    return true;
}

/* "09:00-19:00"; "22:00-06:00" crosses midnight (the window belongs to the
 * day it starts on); "00:00-24:00" is the whole day. */
bool rv_hours(const char *s, uint16_t *start, uint16_t *end, char *err, const char **hint)
{
    *hint = "use HH:MM-HH:MM, e.g. 09:00-19:00 or 22:00-06:00 (crosses midnight)";
    const char *dash = strchr(s, '-');
    if (!dash || !hhmm(s, (size_t)(dash - s), start) || !hhmm(dash + 1, strlen(dash + 1), end)) {
        ERR("bad hours \"%s\"", s);
        return false;
    }
    if (*start == *end || *start == 1440) {
        ERR("hours \"%s\" describe an empty window", s);
        *hint = "for the whole day write 00:00-24:00";
        return false;
    }
    return true;
}

static bool valid_date(int y, unsigned mo, unsigned d)
{
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1) return false;
    unsigned max = mdays[mo - 1];
    if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) max = 29;
    return d <= max;
}

static int digits(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i])) return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* RFC 3339 §5.6: full-date "T" full-time with Z or +hh:mm; fractions of a
 * second are accepted and dropped (access windows are to the second). */
bool rv_when(const char *s, bool *is_date, int64_t *days, int64_t *utc_s, char *err,
             const char **hint)
{
    *hint = "use a date 2026-06-30 or an RFC 3339 timestamp 2026-06-30T18:00:00+05:30";
    size_t n = strlen(s);
    int y = n >= 10 ? digits(s, 4) : -1, mo = n >= 10 ? digits(s + 5, 2) : -1,
        d = n >= 10 ? digits(s + 8, 2) : -1;
    if (y < 0 || mo < 0 || d < 0 || s[4] != '-' || s[7] != '-' ||
        !valid_date(y, (unsigned)mo, (unsigned)d)) {
        ERR("bad date \"%s\"", s);
        return false;
    }
    *days = kw_days_from_civil(y, (unsigned)mo, (unsigned)d);
    if (n == 10) {
        *is_date = true;
        return true;
    }
    *is_date = false;
    const char *t = s + 10;
    int hh = -1, mm = -1, ss = -1;
    if ((*t == 'T' || *t == 't' || *t == ' ') && strlen(t) >= 9 && t[3] == ':' && t[6] == ':') {
        hh = digits(t + 1, 2);
        mm = digits(t + 4, 2);
        ss = digits(t + 7, 2);
    }
    if (hh < 0 || mm < 0 || ss < 0 || hh > 23 || mm > 59 || ss > 60) {
        ERR("bad timestamp \"%s\"", s);
        return false;
    }
    const char *z = t + 9;
    if (*z == '.') {
        z++;
        if (!isdigit((unsigned char)*z)) {
            ERR("bad timestamp \"%s\"", s);
            return false;
        }
        while (isdigit((unsigned char)*z))
            z++;
    }
    int off = 0;
    if ((*z == 'Z' || *z == 'z') && !z[1]) {
        off = 0;
    } else if ((*z == '+' || *z == '-') && strlen(z) == 6 && z[3] == ':' && digits(z + 1, 2) >= 0 &&
               digits(z + 4, 2) >= 0 && digits(z + 1, 2) < 24 && digits(z + 4, 2) < 60) {
        off = (digits(z + 1, 2) * 60 + digits(z + 4, 2)) * 60;
        if (*z == '-') off = -off;
    } else {
        ERR("timestamp \"%s\" needs a time zone offset (Z or +hh:mm)", s);
        return false;
    }
    *utc_s = *days * 86400 + hh * 3600 + mm * 60 + (ss == 60 ? 59 : ss) - off;
    return true;
}

int rules_severity_parse(const char *s)
{
    if (!strcasecmp(s, "high") || !strcmp(s, "1")) return 1;
    if (!strcasecmp(s, "medium") || !strcmp(s, "2")) return 2;
    if (!strcasecmp(s, "low") || !strcmp(s, "3")) return 3;
    return 0;
}
