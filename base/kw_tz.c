/* kw_tz: time zones read from the system tz database, without TZ or
 * localtime_r (process-global, not thread-safe). The one TZif reader of
 * keywarden: rules (schedules) and baselines (usual hours) both use it. We parse the TZif file
 * ourselves (RFC 8536): the 64-bit data of the v2+ section gives every
 * transition, and the POSIX TZ string of the footer (RFC 8536 §3.3, POSIX
 * XBD 8.3) gives the rule for instants after the last transition, so a
 * "slim" file is as good as a "fat" one. Leap-second records are ignored
 * (zoneinfo "right/" files are not meant for civil time). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kw_tz.h"

#include "kw_rd.h"
#include "kw_time.h"

#define TZ_FILE_MAX (1 << 20)

struct tz_rule {
    char kind; /* 'J' (1..365, no Feb 29), 'D' (0..365), 'M' (month.week.day) */
    int a, b, c;
    int32_t time; /* seconds after local midnight, may be < 0 or > 24h */
};

struct tz_posix {
    bool valid, has_dst;
    int32_t std_off, dst_off; /* local = utc + off */
    struct tz_rule start, end;
};

struct kw_tz {
    char name[64];
    int64_t *at;  /* transition instants, ascending */
    int32_t *off; /* offset in force from at[i] */
    size_t n;
    int32_t off_before; /* before the first transition (type 0) */
    struct tz_posix footer;
};

const char *kw_tz_name(const struct kw_tz *tz)
{
    return tz->name;
}

/* ---- POSIX TZ strings ----------------------------------------------- */

static bool px_name(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        const char *e = strchr(s, '>');
        if (!e || e - s < 4) return false;
        *p = e + 1;
        return true;
    }
    size_t n = 0;
    while (isalpha((unsigned char)s[n]))
        n++;
    if (n < 3) return false;
    *p = s + n;
    return true;
}

/* [+-]hh[:mm[:ss]], hours up to 167 (RFC 8536 §3.3.1 extension). */
static bool px_time(const char **p, int32_t *sec)
{
    const char *s = *p;
    int sign = 1;
    if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*s)) return false;
    int v[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        int n = 0;
        while (isdigit((unsigned char)*s) && n < 3)
            v[i] = v[i] * 10 + (*s++ - '0'), n++;
        if (i == 0 && v[0] > 167) return false;
        if (i > 0 && (n == 0 || v[i] > 59)) return false;
        if (*s != ':' || i == 2) break;
        s++;
    }
    *sec = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
    *p = s;
    return true;
}

static bool px_num(const char **p, int lo, int hi, int *out)
{
    const char *s = *p;
    int v = 0, n = 0;
    while (isdigit((unsigned char)*s) && n < 4)
        v = v * 10 + (*s++ - '0'), n++;
    if (!n || v < lo || v > hi) return false;
    *out = v;
    *p = s;
    return true;
}

static bool px_rule(const char **p, struct tz_rule *r)
{
    const char *s = *p;
    if (*s == 'J') {
        s++;
        r->kind = 'J';
        if (!px_num(&s, 1, 365, &r->a)) return false;
    } else if (*s == 'M') {
        s++;
        r->kind = 'M';
        if (!px_num(&s, 1, 12, &r->a) || *s++ != '.' || !px_num(&s, 1, 5, &r->b) || *s++ != '.' ||
            !px_num(&s, 0, 6, &r->c))
            return false;
    } else {
        r->kind = 'D';
        if (!px_num(&s, 0, 365, &r->a)) return false;
    }
    r->time = 7200;
    if (*s == '/') {
        s++;
        if (!px_time(&s, &r->time)) return false;
    }
    *p = s;
    return true;
}

static bool px_parse(const char *s, struct tz_posix *z)
{
    memset(z, 0, sizeof *z);
    int32_t t;
    if (!px_name(&s) || !px_time(&s, &t)) return false;
    z->std_off = -t; /* POSIX offsets count west of Greenwich */
    if (*s) {
        if (!px_name(&s)) return false;
        z->has_dst = true;
        z->dst_off = z->std_off + 3600;
        if (*s && *s != ',') {
            if (!px_time(&s, &t)) return false;
            z->dst_off = -t;
        }
        if (*s == ',') {
            s++;
            if (!px_rule(&s, &z->start) || *s++ != ',' || !px_rule(&s, &z->end)) return false;
        } else {
            /* POSIX leaves the default rule to the implementation; glibc
             * uses the US rules. */
            z->start = (struct tz_rule){'M', 3, 2, 0, 7200};
            z->end = (struct tz_rule){'M', 11, 1, 0, 7200};
        }
    }
    if (*s) return false;
    z->valid = true;
    return true;
}

static bool leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Local midnight (days since epoch) of the rule's day in year y. */
static int64_t rule_day(const struct tz_rule *r, int64_t y)
{
    int64_t jan1 = kw_days_from_civil(y, 1, 1);
    if (r->kind == 'J') return jan1 + r->a - 1 + (leap_year(y) && r->a >= 60 ? 1 : 0);
    if (r->kind == 'D') return jan1 + r->a;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t first = kw_days_from_civil(y, (unsigned)r->a, 1);
    int wd1 = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    int day = 1 + (r->c - wd1 + 7) % 7 + (r->b - 1) * 7;
    int max = mdays[r->a - 1] + (r->a == 2 && leap_year(y) ? 1 : 0);
    while (day > max)
        day -= 7;
    return first + day - 1;
}

static int32_t px_offset(const struct tz_posix *z, int64_t t)
{
    if (!z->has_dst) return z->std_off;
    int64_t y;
    unsigned m, d;
    int64_t local_days = (t + z->std_off) / 86400 - ((t + z->std_off) % 86400 < 0);
    kw_civil_from_days(local_days, &y, &m, &d);
    /* The start rule is written in standard time, the end rule in
     * daylight time (POSIX XBD 8.3). */
    int64_t s = rule_day(&z->start, y) * 86400 + z->start.time - z->std_off;
    int64_t e = rule_day(&z->end, y) * 86400 + z->end.time - z->dst_off;
    bool dst = s < e ? (t >= s && t < e) : (t < e || t >= s);
    return dst ? z->dst_off : z->std_off;
}

/* ---- TZif ------------------------------------------------------------- */

struct tzif_hdr {
    uint8_t version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static bool tzif_header(struct kw_rd *r, struct tzif_hdr *h)
{
    if (!kw_rd_need(r, 44) || memcmp(kw_rd_ptr(r), "TZif", 4) != 0) return false;
    kw_rd_skip(r, 4);
    h->version = kw_rd_u8(r);
    kw_rd_skip(r, 15);
    h->isutcnt = kw_rd_be32(r);
    h->isstdcnt = kw_rd_be32(r);
    h->leapcnt = kw_rd_be32(r);
    h->timecnt = kw_rd_be32(r);
    h->typecnt = kw_rd_be32(r);
    h->charcnt = kw_rd_be32(r);
    return kw_rd_ok(r) && h->typecnt > 0 && h->typecnt <= 256 && h->timecnt <= 100000 &&
           h->charcnt <= 10000 && h->leapcnt <= 10000 && h->isutcnt <= 256 && h->isstdcnt <= 256;
}

static size_t tzif_block_len(const struct tzif_hdr *h, size_t tsz)
{
    return h->timecnt * tsz + h->timecnt + h->typecnt * 6 + h->charcnt + h->leapcnt * (tsz + 4) +
           h->isstdcnt + h->isutcnt;
}

static bool tzif_parse(const uint8_t *buf, size_t len, struct kw_tz *tz)
{
    struct kw_rd r;
    kw_rd_init(&r, buf, len);
    struct tzif_hdr h;
    if (!tzif_header(&r, &h)) return false;
    size_t tsz = 4;
    if (h.version >= '2') { /* skip the v1 block: the v2 one has 64-bit times */
        kw_rd_skip(&r, tzif_block_len(&h, 4));
        if (!tzif_header(&r, &h)) return false;
        tsz = 8;
    }
    if (!kw_rd_need(&r, tzif_block_len(&h, tsz))) return false;
    const uint8_t *times = kw_rd_ptr(&r);
    const uint8_t *idx = times + h.timecnt * tsz;
    const uint8_t *types = idx + h.timecnt;
    tz->n = h.timecnt;
    tz->at = calloc(h.timecnt ? h.timecnt : 1, sizeof *tz->at);
    tz->off = calloc(h.timecnt ? h.timecnt : 1, sizeof *tz->off);
    if (!tz->at || !tz->off) return false;
    struct kw_rd tr;
    kw_rd_init(&tr, times, h.timecnt * tsz);
    for (size_t i = 0; i < h.timecnt; i++) {
        int64_t t = tsz == 8 ? (int64_t)(((uint64_t)kw_rd_be32(&tr) << 32) | kw_rd_be32(&tr))
                             : (int64_t)(int32_t)kw_rd_be32(&tr);
        if (idx[i] >= h.typecnt || (i && t <= tz->at[i - 1])) return false;
        tz->at[i] = t;
        const uint8_t *ti = types + idx[i] * 6;
        tz->off[i] = (int32_t)(((uint32_t)ti[0] << 24) | ((uint32_t)ti[1] << 16) |
                               ((uint32_t)ti[2] << 8) | ti[3]);
    }
    tz->off_before = (int32_t)(((uint32_t)types[0] << 24) | ((uint32_t)types[1] << 16) |
                               ((uint32_t)types[2] << 8) | types[3]);
    kw_rd_skip(&r, tzif_block_len(&h, tsz));
    if (tsz == 8 && kw_rd_left(&r) >= 2 && *kw_rd_ptr(&r) == '\n') {
        const char *f = (const char *)kw_rd_ptr(&r) + 1;
        size_t fl = kw_rd_left(&r) - 1;
        const char *nl = memchr(f, '\n', fl);
        char fs[128];
        if (nl && (size_t)(nl - f) < sizeof fs && nl > f) {
            memcpy(fs, f, (size_t)(nl - f));
            fs[nl - f] = 0;
            if (!px_parse(fs, &tz->footer)) return false;
        }
    }
    return true;
}

static bool tz_name_ok(const char *name)
{
    if (!*name || name[0] == '/' || strlen(name) >= 64 || strstr(name, "..")) return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p)) return false;
    return true;
}

enum kw_err kw_tz_load(const char *name, struct kw_tz **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!tz_name_ok(name)) {
        snprintf(err, errlen, "unknown time zone \"%s\"", name);
        return KW_E_NOTFOUND;
    }
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "unknown time zone \"%s\"", name);
        return KW_E_NOTFOUND;
    }
    uint8_t *buf = malloc(TZ_FILE_MAX);
    struct kw_tz *tz = calloc(1, sizeof *tz);
    size_t n = buf ? fread(buf, 1, TZ_FILE_MAX, f) : 0;
    fclose(f);
    if (!buf || !tz) {
        free(buf);
        free(tz);
        return KW_E_NOMEM;
    }
    snprintf(tz->name, sizeof tz->name, "%s", name);
    bool ok = tzif_parse(buf, n, tz);
    free(buf);
    if (!ok) {
        kw_tz_free(tz);
        snprintf(err, errlen, "time zone \"%s\" is not a valid tz database file", name);
        return KW_E_MALFORMED;
    }
    *out = tz;
    return KW_E_OK;
}

enum kw_err kw_tz_from_posix(const char *name, const char *posix, struct kw_tz **out)
{
    struct kw_tz *tz = calloc(1, sizeof *tz);
    if (!tz) return KW_E_NOMEM;
    snprintf(tz->name, sizeof tz->name, "%s", name);
    if (!px_parse(posix, &tz->footer)) {
        free(tz);
        return KW_E_MALFORMED;
    }
    *out = tz;
    return KW_E_OK;
}

struct kw_tz *kw_tz_utc(void)
{
    struct kw_tz *tz = calloc(1, sizeof *tz);
    if (tz) {
        snprintf(tz->name, sizeof tz->name, "UTC");
        tz->footer.valid = true;
    }
    return tz;
}

void kw_tz_free(struct kw_tz *tz)
{
    if (!tz) return;
    free(tz->at);
    free(tz->off);
    free(tz);
}

int32_t kw_tz_offset(const struct kw_tz *tz, int64_t t)
{
    if (tz->n == 0) return tz->footer.valid ? px_offset(&tz->footer, t) : tz->off_before;
    if (t < tz->at[0]) return tz->off_before;
    if (t >= tz->at[tz->n - 1] && tz->footer.valid) return px_offset(&tz->footer, t);
    size_t lo = 0, hi = tz->n; /* last i with at[i] <= t */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->off[lo];
}

/* Real zones change offset at most once within a day, so the offsets a
 * day before and a day after are the only candidates. */
int64_t kw_tz_local_to_utc(const struct kw_tz *tz, int64_t local)
{
    int32_t before = kw_tz_offset(tz, local - 86400);
    int32_t after = kw_tz_offset(tz, local + 86400);
    int64_t best = INT64_MAX;
    int32_t cand[2] = {before, after};
    for (int i = 0; i < 2; i++) {
        int64_t t = local - cand[i];
        if (kw_tz_offset(tz, t) == cand[i] && t < best) best = t;
    }
    if (best != INT64_MAX) return best;
    return local - before; /* in a gap: the wall clock had jumped past it */
}
