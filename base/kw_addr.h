/* kw_addr: an IPv4 or IPv6 address. IPv4 lives in a[0..3]; the rest is
 * zero so addresses compare with memcmp. */
#ifndef KW_ADDR_H
#define KW_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kw_addr {
    uint8_t family; /* 4 or 6; 0 = none */
    uint8_t a[16];
};

/* "192.0.2.1" / "2001:db8::1". buf >= 46 bytes. Returns buf. */
char *kw_addr_str(const struct kw_addr *x, char *buf, size_t len);
/* Parses either family; false on bad text. */
bool kw_addr_parse(const char *s, struct kw_addr *out);
/* "127.0.0.1:9753" or "[::1]:9753": an address literal and a port
 * 1..65535 (a listening address; names are not resolved). */
bool kw_addr_parse_hostport(const char *s, struct kw_addr *out, uint16_t *port);
/* True when x is inside net/prefix (same family). */
bool kw_addr_in_prefix(const struct kw_addr *x, const struct kw_addr *net, unsigned prefix);

#endif
