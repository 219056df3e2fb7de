/* kw_addr: address text and prefix matching (see kw_addr.h). */
#include "kw_addr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* Dotted quad by hand: glibc's inet_ntop formats IPv4 with sprintf, and
 * an address is written several times per transaction (issue 13). */
static void ntop4(const uint8_t *a, char *buf, size_t len)
{
    char b[16], *q = b;
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (v >= 100)
            *q++ = (char)('0' + v / 100);
        if (v >= 10)
            *q++ = (char)('0' + v / 10 % 10);
        *q++ = (char)('0' + v % 10);
        *q++ = i < 3 ? '.' : 0;
    }
    size_t n = (size_t)(q - b); /* NUL included */
    if (n > len) { /* as inet_ntop: too small a buffer gets nothing */
        if (len)
            buf[0] = 0;
        return;
    }
    memcpy(buf, b, n);
}

char *kw_addr_str(const struct kw_addr *x, char *buf, size_t len)
{
    if (x->family == 4)
        ntop4(x->a, buf, len);
    else if (x->family == 6)
        inet_ntop(AF_INET6, x->a, buf, (socklen_t)len);
    else if (len)
        buf[0] = 0;
    return buf;
}

bool kw_addr_parse(const char *s, struct kw_addr *out)
{
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, s, out->a) == 1) {
        out->family = 4;
        return true;
    }
    if (inet_pton(AF_INET6, s, out->a) == 1) {
        out->family = 6;
        return true;
    }
    return false;
}

bool kw_addr_parse_hostport(const char *s, struct kw_addr *out, uint16_t *port)
{
    char host[64];
    const char *colon;
    size_t n;
    if (s[0] == '[') { /* RFC 3986 §3.2.2: an IPv6 literal in brackets */
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return false;
        n = (size_t)(end - s - 1);
        colon = end + 1;
        s++;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return false; /* no port, or an IPv6 literal without brackets */
        n = (size_t)(colon - s);
    }
    if (n == 0 || n >= sizeof host)
        return false;
    memcpy(host, s, n);
    host[n] = 0;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || p < 1 || p > 65535)
        return false;
    if (!kw_addr_parse(host, out))
        return false;
    *port = (uint16_t)p;
    return true;
}

bool kw_addr_in_prefix(const struct kw_addr *x, const struct kw_addr *net, unsigned prefix)
{
    if (x->family != net->family)
        return false;
    unsigned max = x->family == 4 ? 32 : 128;
    if (prefix > max)
        return false;
    unsigned full = prefix / 8, rem = prefix % 8;
    if (memcmp(x->a, net->a, full) != 0)
        return false;
    if (rem == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rem));
    return (x->a[full] & mask) == (net->a[full] & mask);
}
