/* al_util: pure helpers of the alerts module (see al_util.h). */
#include "al_util.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kw_sha256.h"

enum al_action al_classify(int curl_code, long status)
{
    if (curl_code != 0 || status == 0)
        return AL_RETRY; /* refused (7), timeout (28), empty reply (52)... */
    if (status >= 200 && status < 300) return AL_DONE;
    if (status == 408 || status == 429 || status >= 500) return AL_RETRY;
    return AL_PERMANENT;
}

uint64_t al_rng_next(uint64_t *s)
{
    /* splitmix64: tiny, good enough for jitter, state owned by the caller */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

long al_backoff_ms(unsigned attempt, long base_ms, long cap_ms, uint64_t *rng)
{
    if (attempt < 1) attempt = 1;
    long ceil_ms = base_ms;
    for (unsigned i = 1; i < attempt && ceil_ms < cap_ms; i++)
        ceil_ms *= 2;
    if (ceil_ms > cap_ms) ceil_ms = cap_ms;
    if (ceil_ms <= 0) return 0;
    return (long)(al_rng_next(rng) % (uint64_t)(ceil_ms + 1));
}

long al_retry_after_ms(const char *v, time_t now)
{
    if (!v) return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!*v) return -1;
    if (isdigit((unsigned char)*v)) {
        char *end;
        long long s = strtoll(v, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (*end || s < 0) return -1;
        if (s > 86400LL * 365) s = 86400LL * 365;
        return (long)(s * 1000);
    }
    /* IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7) */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end) return -1;
    time_t at = timegm(&tm);
    if (at == (time_t)-1) return -1;
    return at <= now ? 0 : (long)((at - now) * 1000);
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = 0;
}

void al_sha256_hex(const void *p, size_t n, char *out)
{
    uint8_t md[32]; /* kw_sha256: EVP_Digest allocated a context per alert */
    kw_sha256(p, n, md);
    hex(md, sizeof md, out);
}

bool al_sign(const char *secret, const char *ts, const char *body, size_t body_len, char *out)
{
    size_t tl = strlen(ts);
    char *msg = malloc(tl + 1 + body_len);
    if (!msg) return false;
    memcpy(msg, ts, tl);
    msg[tl] = '.';
    memcpy(msg + tl + 1, body, body_len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    const unsigned char *r = HMAC(EVP_sha256(), secret, (int)strlen(secret),
                                  (const unsigned char *)msg, tl + 1 + body_len, md, &len);
    free(msg);
    if (!r || len != 32) return false;
    memcpy(out, "sha256=", 7);
    hex(md, len, out + 7);
    return true;
}

/* Drops a multi-byte sequence cut short at the end of s (snprintf into a
 * fixed buffer can leave one; jansson refuses such strings). */
static size_t utf8_fix_tail(char *s, size_t n)
{
    size_t i = n, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0) return n;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (want > 1 && back + 1 < want) {
        s[i - 1] = 0;
        return i - 1;
    }
    return n;
}

size_t al_utf8_trunc(char *s, size_t max)
{
    size_t n = utf8_fix_tail(s, strlen(s));
    if (n <= max) return n;
    size_t cut = max - 3; /* room for U+2026 (3 bytes) */
    /* back off continuation bytes (10xxxxxx) so no sequence is split */
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    memcpy(s + cut, "\xe2\x80\xa6", 4);
    return cut + 3;
}

/* ---- TZif (RFC 8536) ---- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool zone_name_ok(const char *z)
{
    if (!z[0] || z[0] == '/' || strstr(z, "..") || strlen(z) > 64) return false;
    for (const char *p = z; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p)) return false;
    return true;
}

bool al_tzif_lookup(const unsigned char *b, size_t n, int64_t t, int *utoff, char *abbr)
{
    if (n < 44 || memcmp(b, "TZif", 4) != 0 || b[4] < '2') return false;
    uint32_t c[6];
    for (int i = 0; i < 6; i++)
        c[i] = be32(b + 20 + 4 * i); /* isut, isstd, leap, time, type, char */
    size_t v1 = (size_t)c[3] * 5 + (size_t)c[4] * 6 + c[5] + (size_t)c[2] * 8 + c[1] + c[0];
    /* offsets, not pointers: counts come from the file and may be huge */
    size_t ho = 44 + v1;
    if (v1 > n || ho + 44 > n || memcmp(b + ho, "TZif", 4) != 0) return false;
    const unsigned char *h = b + ho;
    for (int i = 0; i < 6; i++)
        c[i] = be32(h + 20 + 4 * i);
    size_t to = ho + 44, io = to + (size_t)c[3] * 8, yo = io + c[3], co = yo + (size_t)c[4] * 6;
    if (c[4] == 0 || co + c[5] > n) return false;
    const unsigned char *times = b + to, *idx = b + io, *types = b + yo, *chars = b + co;
    unsigned type = 0; /* RFC 8536 §3.2: type 0 before the first transition */
    for (uint32_t i = 0; i < c[3]; i++) {
        int64_t tt = (int64_t)((uint64_t)be32(times + 8 * i) << 32 | be32(times + 8 * i + 4));
        if (tt > t) break;
        type = idx[i];
    }
    if (type >= c[4]) return false;
    const unsigned char *ti = types + 6 * type;
    *utoff = (int32_t)be32(ti);
    unsigned di = ti[5];
    if (di >= c[5]) return false;
    size_t k = 0;
    while (k < 15 && di + k < c[5] && chars[di + k])
        k++;
    memcpy(abbr, chars + di, k);
    abbr[k] = 0;
    return true;
}

bool al_tz_offset(const char *zone, int64_t t, int *utoff, char *abbr)
{
    if (!zone || !zone_name_ok(zone)) return false;
    char path[128];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", zone);
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    unsigned char *buf = malloc(1 << 16);
    size_t n = buf ? fread(buf, 1, 1 << 16, f) : 0;
    fclose(f);
    bool ok = buf && al_tzif_lookup(buf, n, t, utoff, abbr);
    free(buf);
    return ok;
}

bool al_tz_format(const char *zone, int64_t t, char *buf, size_t len)
{
    int off;
    char abbr[16];
    if (!al_tz_offset(zone, t, &off, abbr)) return false;
    time_t lt = (time_t)(t + off);
    struct tm tm;
    gmtime_r(&lt, &tm);
    int a = off < 0 ? -off : off;
    snprintf(buf, len, "%04d-%02d-%02d %02d:%02d %s (UTC%c%02d:%02d)", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, abbr, off < 0 ? '-' : '+', a / 3600,
             a / 60 % 60);
    return true;
}
