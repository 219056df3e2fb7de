/* fuzz_h2: the HTTP/2 reader fed bytes and gaps in both directions.
 *
 * Input: byte 0 picks the setting (bit 0: tiny limits, to reach every
 * bound; bit 1: a connection picked up midstream; bit 2: an h2c upgrade
 * request as stream 1 first); then up to 64 chunk descriptors of 3 bytes
 * [op, len_hi, len_lo] ending at op 0xff: op bit 0 = direction, bit 1 =
 * a gap of len bytes instead of data, bit 2 = close after this chunk;
 * then the data the chunks take in order. Unconsumed bytes are kept and
 * offered again, like reassembly does. Every transaction is filled into a
 * kw_txn. Seeds: the recorded captures' payloads (tests/tools/make_h2_seeds.py). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2.h"
#include "kw_exact.h"
#include "kw_txn.h"

#define FZ_BUF (256 * 1024) /* more pending than this: the reassembly would declare a gap */

static void on_txn(void *user, const struct h2_txn_view *t)
{
    static struct kw_txn x;
    kw_txn_clear(&x);
    h2_txn_fill(t, &x);
    if (t->req && x.path[0] != '/')
        abort(); /* norm_path promises a leading '/' */
    if (!t->req && !t->resp)
        abort(); /* a transaction with nothing known is never reported */
    if (t->req)
        for (size_t i = 0; i < t->req->n_hdrs; i++)
            if (t->req->hdrs[i].name.len && !t->req->hdrs[i].name.p)
                abort();
    (*(size_t *)user)++;
}

static void fz_feed(struct h2_conn *c, struct kw_exact_buf *d, int dir, const uint8_t *p,
                    size_t n, kw_ts ts)
{
    if (d->len + n > FZ_BUF) {
        kw_exact_clear(d);
        h2_gap(c, dir, n, ts);
        return;
    }
    kw_exact_append(d, p, n);
    size_t k = h2_feed(c, dir, d->p, d->len, ts);
    if (k > d->len)
        abort();
    kw_exact_consume(d, k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct h2_limits l;
    h2_limits_default(&l);
    if (data[0] & 1) {
        l.max_streams = 3;
        l.max_header_list = 200;
        l.max_headers = 4;
        l.max_table_size = 256;
        l.max_continuations = 2;
        l.max_header_block = 300;
        l.max_resets_per_sec = 2;
        l.resync_scan_max = 64;
    }
    struct h2_budget b = {.max_bytes = data[0] & 8 ? 48 * 1024 : 0};
    size_t ntx = 0, pos = 1, nd = 0;
    uint8_t ops[64];
    uint16_t lens[64];
    while (nd < 64 && pos + 3 <= size && data[pos] != 0xff) {
        ops[nd] = data[pos];
        lens[nd++] = (uint16_t)(data[pos + 1] << 8 | data[pos + 2]);
        pos += 3;
    }
    if (pos < size && data[pos] == 0xff)
        pos++;
    struct h2_conn *c = h2_conn_new_in(&l, &b, data[0] & 2, on_txn, &ntx);
    if (!c)
        return 0; /* the budget refused it */
    if (data[0] & 4) {
        struct kw_hdr hd[] = {{KW_SLICE_LIT("Host"), KW_SLICE_LIT("h")},
                              {KW_SLICE_LIT("HTTP2-Settings"), KW_SLICE_LIT("AAEAAAEA")}};
        struct h1_msg_view req = {.method = KW_SLICE_LIT("GET"), .target = KW_SLICE_LIT("/"),
                                  .hdrs = hd, .n_hdrs = 2};
        h2_upgrade(c, &req);
    }
    struct kw_exact_buf d[2] = {{NULL, 0}, {NULL, 0}};
    kw_ts ts = 1;
    for (size_t i = 0; i < nd; i++, ts += 100000) {
        int dir = ops[i] & 1;
        if (ops[i] & 2) {
            kw_exact_clear(&d[dir]);
            h2_gap(c, dir, lens[i], ts);
        } else {
            size_t n = lens[i] < size - pos ? lens[i] : size - pos;
            fz_feed(c, &d[dir], dir, data + pos, n, ts);
            pos += n;
        }
        if (ops[i] & 4)
            h2_close(c, ts);
    }
    if (pos < size) /* the rest goes to the client side */
        fz_feed(c, &d[0], 0, data + pos, size - pos, ts);
    h2_close(c, ts + 1);
    if (b.max_bytes && b.bytes > b.max_bytes)
        abort(); /* the budget is a bound */
    kw_exact_clear(&d[0]);
    kw_exact_clear(&d[1]);
    h2_conn_destroy(c);
    if (b.bytes != 0)
        abort(); /* everything charged was given back */
    return 0;
}
