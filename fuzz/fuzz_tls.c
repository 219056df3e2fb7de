/* fuzz_tls: a TLS connection (record layer, handshake reassembly,
 * certificates, fingerprints, key schedule and decryption) fed bytes and
 * gaps in both directions.
 *
 * Input: byte 0: bit 0 tiny limits, bit 1 a key log whose entries name the
 * client random bytes[1..33) (so the fuzzer can reach decryption by
 * putting those bytes in a ClientHello), bit 2 midstream; then, when bit 1
 * is set, 32 random bytes and 48 secret bytes; then up to 32 chunk
 * descriptors of 3 bytes [op, len_hi, len_lo] ending at op 0xff (op bit 0:
 * direction, bit 1: gap of len bytes, bit 2: close after); then the data.
 * Unconsumed bytes are kept and offered again, like reassembly does. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kw_exact.h"
#include "tls_conn.h"

#define FZ_BUF (1 << 20)

struct fz {
    struct tls_conn *c;
    struct kw_exact_buf buf[2]; /* pending bytes, exact-size: ASan sees overreads */
    size_t plain;
};

static size_t on_data(void *u, int dir, const uint8_t *p, size_t n, kw_ts ts)
{
    struct fz *f = u;
    f->plain += n;
    return n / 2; /* a parser that keeps half: the held-plaintext path */
}

static void on_gap(void *u, int dir, uint64_t n, kw_ts ts)
{
}

static void on_hs(void *u, const struct tls_info *i, kw_ts ts)
{
    if (i->ja4[0] && strlen(i->ja4) >= TLS_JA4_LEN)
        abort();
}

static void feed(struct fz *f, int dir, const uint8_t *p, size_t n, kw_ts ts)
{
    struct kw_exact_buf *b = &f->buf[dir];
    if (b->len + n > FZ_BUF) { /* the reassembly would declare a gap */
        kw_exact_clear(b);
        tls_conn_gap(f->c, dir, n, ts);
        return;
    }
    kw_exact_append(b, p, n);
    size_t k = tls_conn_feed(f->c, dir, b->p, b->len, ts);
    if (k > b->len)
        abort();
    kw_exact_consume(b, k);
}

static void keylog(struct tls_keylog *kl, const uint8_t *cr, const uint8_t *sec)
{
    static const char *const labels[] = {"CLIENT_RANDOM", "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                                          "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                                          "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"};
    for (int l = 0; l < 5; l++) {
        char line[300];
        int o = snprintf(line, sizeof line, "%s ", labels[l]);
        for (int i = 0; i < 32; i++)
            o += snprintf(line + o, sizeof line - (size_t)o, "%02x", cr[i]);
        line[o++] = ' ';
        int n = l == 0 ? 48 : (sec[0] & 1) ? 48 : 32;
        for (int i = 0; i < n; i++)
            o += snprintf(line + o, sizeof line - (size_t)o, "%02x", sec[(i + l) % 48]);
        tls_keylog_add_line(kl, line, (size_t)o);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct tls_limits l;
    tls_limits_default(&l);
    if (data[0] & 1) {
        l.hs_bytes = 512;
        l.plain_bytes = 256;
        l.wait_bytes = 64;
        l.resync_tries = 4;
    }
    size_t pos = 1;
    struct tls_keylog *kl = NULL;
    if ((data[0] & 2) && size >= 1 + 80) {
        if (tls_keylog_new(16, &kl) != KW_E_OK)
            abort();
        keylog(kl, data + 1, data + 33);
        pos += 80;
    }
    struct tls_ctx *x = malloc(sizeof *x);
    struct fz f = {0};
    if (!x)
        abort();
    tls_ctx_init(x, &l, kl);
    struct tls_conn_cb cb = {&f, on_data, on_gap, on_hs};
    f.c = tls_conn_new(x, &cb, data[0] & 4);
    uint8_t ops[32];
    uint16_t lens[32];
    size_t nd = 0;
    while (nd < 32 && pos + 3 <= size && data[pos] != 0xff) {
        ops[nd] = data[pos];
        lens[nd++] = (uint16_t)(data[pos + 1] << 8 | data[pos + 2]);
        pos += 3;
    }
    if (pos < size && data[pos] == 0xff)
        pos++;
    kw_ts ts = 1;
    for (size_t i = 0; i < nd; i++, ts++) {
        int dir = ops[i] & 1;
        if (ops[i] & 2) {
            kw_exact_clear(&f.buf[dir]);
            tls_conn_gap(f.c, dir, lens[i], ts);
        } else {
            size_t n = lens[i] < size - pos ? lens[i] : size - pos;
            feed(&f, dir, data + pos, n, ts);
            pos += n;
        }
        if (ops[i] & 4)
            break;
    }
    if (pos < size)
        feed(&f, 0, data + pos, size - pos, ts);
    tls_conn_close(f.c, ts + 1);
    tls_conn_destroy(f.c);
    tls_keylog_destroy(kl);
    kw_exact_clear(&f.buf[0]);
    kw_exact_clear(&f.buf[1]);
    free(x);
    return 0;
}
