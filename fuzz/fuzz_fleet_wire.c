/* fuzz_fleet_wire: the fleet record decoder over arbitrary bytes (what a
 * judge takes from NATS). Each input is decoded as whatever kind its head
 * names. Checked invariants: every string the decoder fills is
 * NUL-terminated inside its field, and a record that decodes encodes again
 * to bytes that decode to the very same structs (the format has one
 * meaning per record). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_wire.h"
#include "kw_exact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kw_txn t1, t2;
static struct fw_flow f1, f2;
static struct tls_info i1, i2;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fw_head h1, h2;
    struct fw_mark m1, m2;
    struct fw_body b1 = {&t1, &f1, &m1, &i1}, b2 = {&t2, &f2, &m2, &i2};
    if (fw_decode(data, size, &h1, &b1) != KW_E_OK) return 0;
    if (!memchr(h1.sensor, 0, sizeof h1.sensor) || !memchr(t1.url, 0, sizeof t1.url) ||
        !memchr(t1.identity.kind, 0, sizeof t1.identity.kind) || !memchr(f1.sni, 0, sizeof f1.sni) ||
        !memchr(i1.ja3_str, 0, sizeof i1.ja3_str) || !memchr(i1.cli_cert.san[7], 0, 128))
        abort();
    size_t cap = fw_max_size();
    uint8_t *buf = malloc(cap);
    if (!buf) return 0;
    size_t n = fw_encode(&h1, &b1, buf, cap);
    uint8_t *exact = kw_exact_dup(buf, n); /* ASan sees overreads */
    enum kw_err e2 = n ? fw_decode(exact, n, &h2, &b2) : KW_E_MALFORMED;
    free(exact);
    if (!n || e2 != KW_E_OK || memcmp(&h1, &h2, sizeof h1) != 0)
        abort();
    int same = h1.kind == FW_TXN    ? memcmp(&t1, &t2, sizeof t1)
               : h1.kind == FW_FLOW ? memcmp(&f1, &f2, sizeof f1)
               : h1.kind == FW_TLS  ? memcmp(&t1, &t2, sizeof t1) | memcmp(&i1, &i2, sizeof i1)
                                    : memcmp(&m1, &m2, sizeof m1);
    if (same != 0) abort();
    free(buf);
    return 0;
}
