/* fuzz_h1: the HTTP/1.x parser fed bytes and gaps in both directions.
 *
 * Input: byte 0 picks limits (bit 0: tiny limits, to reach every limit
 * path); then up to 32 chunk descriptors of 3 bytes [op, len_hi, len_lo]
 * ending at op 0xff: op bit 0 = direction, bit 1 = gap of len bytes
 * instead of data, bit 2 = close after this chunk; then the data the
 * chunks take in order. Unconsumed bytes are kept and offered again, like
 * reassembly does. Every transaction is filled into a kw_txn and read by
 * every backend personality. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h1.h"
#include "kw_exact.h"
#include "kw_txn.h"
#include "persona.h"

#define FZ_BUF (256 * 1024) /* more pending than this: the reassembly would declare a gap */

static void on_txn(void *user, const struct h1_txn_view *t)
{
    struct kw_txn x;
    memset(&x, 0, sizeof(x));
    h1_txn_fill(t, &x);
    if (x.path[0] != '/' && t->req)
        abort(); /* norm_path promises a leading '/' */
    /* every personality's reading of it (persona.h): a path or nothing */
    for (int b = RULES_BACKEND_GENERIC; b <= RULES_BACKEND_IIS; b++) {
        persona_effective((enum rules_backend)b, &x);
        if (x.eff_path[0] && x.eff_path[0] != '/')
            abort();
        if (!memchr(x.eff_method, 0, sizeof x.eff_method) ||
            !memchr(x.eff_path, 0, sizeof x.eff_path))
            abort();
    }
    /* generic's loose reading (persona_loose): a path of the length told */
    char lp[sizeof x.path];
    size_t ll = 0;
    persona_loose(&x, lp, sizeof lp, &ll);
    if (strlen(lp) != ll || (t->req && lp[0] != '/'))
        abort();
    if (t->req)
        for (size_t i = 0; i < t->req->n_hdrs; i++)
            if (t->req->hdrs[i].name.len && !t->req->hdrs[i].name.p)
                abort();
    (*(size_t *)user)++;
}

/* Pending bytes live in an allocation of exactly their length
 * (kw_exact.h), so a read past what h1_feed was offered is an ASan report. */
static void fz_feed(struct h1_conn *c, struct kw_exact_buf *d, int dir, const uint8_t *p,
                    size_t n, kw_ts ts)
{
    if (d->len + n > FZ_BUF) {
        kw_exact_clear(d);
        h1_gap(c, dir, n, ts);
        return;
    }
    kw_exact_append(d, p, n);
    size_t k = h1_feed(c, dir, d->p, d->len, ts);
    if (k > d->len)
        abort();
    kw_exact_consume(d, k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct h1_limits l;
    h1_limits_default(&l);
    if (data[0] & 1) {
        l.max_header_bytes = 256;
        l.max_headers = 3;
        l.max_pending = 2;
        l.resync_scan_max = 64;
        l.req_arena_bytes = 1024;
        l.resp_arena_bytes = 512;
        l.salvage_bytes = 32;
    }
    size_t ntx = 0, pos = 1, nd = 0;
    uint8_t ops[32];
    uint16_t lens[32];
    while (nd < 32 && pos + 3 <= size && data[pos] != 0xff) {
        ops[nd] = data[pos];
        lens[nd++] = (uint16_t)(data[pos + 1] << 8 | data[pos + 2]);
        pos += 3;
    }
    if (pos < size && data[pos] == 0xff)
        pos++;
    struct h1_conn *c = h1_conn_new(&l, on_txn, &ntx);
    struct kw_exact_buf d[2] = {{NULL, 0}, {NULL, 0}};
    if (!c)
        abort();
    kw_ts ts = 1;
    for (size_t i = 0; i < nd; i++, ts++) {
        int dir = ops[i] & 1;
        if (ops[i] & 2) {
            kw_exact_clear(&d[dir]);
            h1_gap(c, dir, lens[i], ts);
        } else {
            size_t n = lens[i] < size - pos ? lens[i] : size - pos;
            fz_feed(c, &d[dir], dir, data + pos, n, ts);
            pos += n;
        }
        if (ops[i] & 4) {
            kw_exact_clear(&d[0]);
            kw_exact_clear(&d[1]);
            h1_close(c, ts);
        }
    }
    if (pos < size) /* the rest goes to the client side */
        fz_feed(c, &d[0], 0, data + pos, size - pos, ts);
    h1_close(c, ts + 1);
    kw_exact_clear(&d[0]);
    kw_exact_clear(&d[1]);
    h1_conn_destroy(c);
    return 0;
}
