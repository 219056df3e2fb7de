/* baseline_tz: a minimal TZif reader (RFC 8536) for the baselines (see
 * baseline_tz.h). Only the v2+ 64-bit section is used; v1-only files are
 * refused (every tzdata since 2005 has v2). Leap-second records are
 * skipped: civil time ignores them. */
#include "baseline_tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZ_FILE_MAX (256 * 1024)

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct hdr {
    uint32_t isut, isstd, leap, time, type, chr;
};

static bool read_hdr(const uint8_t *p, size_t len, struct hdr *h)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0) return false;
    h->isut = be32(p + 20);
    h->isstd = be32(p + 24);
    h->leap = be32(p + 28);
    h->time = be32(p + 32);
    h->type = be32(p + 36);
    h->chr = be32(p + 40);
    return h->type > 0 && h->type <= 256 && h->time <= 4096;
}

static size_t block_len(const struct hdr *h, size_t tsz)
{
    return h->time * tsz + h->time + h->type * 6 + h->chr + h->leap * (tsz + 4) + h->isstd +
           h->isut;
}

/* Footer "\nTZ\n": a fixed offset like "IST-5:30" or "<+0530>-5:30" (POSIX
 * offsets are west-positive). False for DST rules or anything else. */
static bool footer_fixed(const char *s, int32_t *off)
{
    const char *p = s;
    if (*p == '<') {
        p = strchr(p, '>');
        if (!p) return false;
        p++;
    } else {
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
            p++;
    }
    int sign = -1, hh = 0, mm = 0, k = 0;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? 1 : -1;
    if (sscanf(p, "%2d%n", &hh, &k) != 1) return false;
    p += k;
    if (*p == ':' && sscanf(p + 1, "%2d%n", &mm, &k) == 1) p += 1 + k;
    if (*p == ':') /* seconds: ignore */
        return false;
    if (*p && *p != '\n') return false;
    *off = sign * (hh * 3600 + mm * 60);
    return true;
}

static bool parse(struct bl_zone *z, const uint8_t *p, size_t len)
{
    struct hdr h;
    if (!read_hdr(p, len, &h) || p[4] < '2') return false;
    size_t o = 44 + block_len(&h, 4);
    if (o > len || !read_hdr(p + o, len - o, &h)) return false;
    const uint8_t *d = p + o + 44;
    size_t need = block_len(&h, 8);
    if ((size_t)(d - p) + need > len) return false;
    const uint8_t *idx = d + h.time * 8, *types = idx + h.time;
    z->at = calloc(h.time ? h.time : 1, sizeof *z->at);
    z->off = calloc(h.time ? h.time : 1, sizeof *z->off);
    if (!z->at || !z->off) return false;
    for (uint32_t i = 0; i < h.time; i++) {
        if (idx[i] >= h.type) return false;
        z->at[i] = be64(d + 8 * i);
        z->off[i] = (int32_t)be32(types + 6 * idx[i]);
    }
    z->n = h.time;
    z->off_before = (int32_t)be32(types); /* RFC 8536 §3.2: type 0 */
    z->off_after = h.time ? z->off[h.time - 1] : z->off_before;
    const uint8_t *f = d + need;
    if (f < p + len && *f == '\n') {
        char foot[128];
        size_t fl = (size_t)(p + len - f - 1);
        if (fl >= sizeof foot) fl = sizeof foot - 1;
        memcpy(foot, f + 1, fl);
        foot[fl] = 0;
        int32_t fo;
        if (footer_fixed(foot, &fo)) z->off_after = fo;
    }
    return true;
}

static bool name_ok(const char *s)
{
    if (!s[0] || s[0] == '/' || strstr(s, "..") || strlen(s) >= 64) return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '/' || *s == '_' || *s == '-' || *s == '+'))
            return false;
    return true;
}

static void load(struct bl_tzcache *c, struct bl_zone *z, const char *name)
{
    snprintf(z->name, sizeof z->name, "%s", name);
    if (!name_ok(name)) return;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", c->dir ? c->dir : "/usr/share/zoneinfo", name);
    FILE *f = fopen(path, "rb");
    if (!f) return;
    uint8_t *buf = malloc(TZ_FILE_MAX);
    size_t len = buf ? fread(buf, 1, TZ_FILE_MAX, f) : 0;
    fclose(f);
    if (buf && len < TZ_FILE_MAX) z->ok = parse(z, buf, len);
    free(buf);
}

bool bl_tz_offset(struct bl_tzcache *c, const char *name, int64_t t, int32_t *off)
{
    *off = 0;
    if (!name || !name[0] || !strcmp(name, "UTC") || !strcmp(name, "Etc/UTC")) return true;
    struct bl_zone *z = NULL;
    for (unsigned i = 0; i < c->n && !z; i++)
        if (!strcmp(c->z[i].name, name)) z = &c->z[i];
    if (!z) {
        if (c->n == BL_TZ_MAX) return false;
        z = &c->z[c->n++];
        load(c, z, name);
    }
    if (!z->ok) return false;
    if (z->n == 0 || t < z->at[0]) {
        *off = z->n ? z->off_before : z->off_after;
        return true;
    }
    if (t >= z->at[z->n - 1]) {
        *off = z->off_after;
        return true;
    }
    uint32_t lo = 0, hi = z->n - 1; /* at[lo] <= t < at[hi] */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (z->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    *off = z->off[lo];
    return true;
}

void bl_tz_free(struct bl_tzcache *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        free(c->z[i].at);
        free(c->z[i].off);
    }
    c->n = 0;
}
