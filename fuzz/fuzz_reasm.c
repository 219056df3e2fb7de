/* fuzz_reasm: the flow table and TCP reassembly fed a sequence of segments.
 *
 * Input: an 8-byte header (two ISNs), then records of
 *   [ctl] [off_hi] [off_lo] [len] [len bytes]
 * ctl bit 0 = direction, bits 1-3 = SYN/FIN/RST, bit 4 = ACK, bits 5-6 pick
 * one of four client ports (several flows, eviction with max_flows 3), bit 7
 * moves packet time on by 1.5 s (gap timeouts, flow timeouts). The sequence
 * number is ISN[dir] + offset, so every position of a stream lies within
 * 2^17 of its base. Limits are tiny so every limit path runs.
 *
 * The consumer consumes a pseudo-random share of what it is offered and
 * checks the contract: an offer starts with the bytes it left last time,
 * and no stream position runs past what the segments could have covered. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "kw_exact.h"

#define POS_LIMIT ((uint64_t)1 << 18)
#define BUF_MAX 4096

struct dir_state {
    uint8_t pending[BUF_MAX + 70000];
    size_t pending_len;
    uint64_t pos; /* consumed + gap bytes */
};

struct fz {
    uint64_t rng;
    struct dir_state d[8][2]; /* slot per flow (app points at the slot) */
    bool used[8];
    uint64_t delivered_total, fed_total;
};

static uint32_t next_rand(struct fz *z)
{
    z->rng = z->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(z->rng >> 33);
}

static void fz_start(void *u, struct flow *f, kw_ts ts)
{
    struct fz *z = u;
    for (int i = 0; i < 8; i++)
        if (!z->used[i]) {
            z->used[i] = true;
            memset(z->d[i], 0, sizeof(z->d[i]));
            f->app = (void *)(uintptr_t)(i + 1);
            return;
        }
    abort(); /* more live flows than max_flows */
}

static struct dir_state *slot(struct fz *z, struct flow *f, int dir)
{
    uintptr_t i = (uintptr_t)f->app;
    if (i == 0 || i > 8) abort();
    return &z->d[i - 1][dir];
}

static size_t fz_data(void *u, struct flow *f, int dir, const uint8_t *p, size_t len, kw_ts ts)
{
    struct fz *z = u;
    struct dir_state *s = slot(z, f, dir);
    if (len < s->pending_len || memcmp(p, s->pending, s->pending_len) != 0)
        abort(); /* the unconsumed tail must come back first */
    if (len > sizeof(s->pending)) abort();
    size_t c;
    switch (next_rand(z) % 4) {
    case 0:
        c = 0;
        break;
    case 1:
        c = len;
        break;
    default:
        c = len ? next_rand(z) % (len + 1) : 0;
    }
    s->pos += c;
    s->pending_len = len - c;
    memmove(s->pending, p + c, s->pending_len);
    if (s->pos > POS_LIMIT) abort();
    return c;
}

static void fz_gap(void *u, struct flow *f, int dir, uint64_t len, kw_ts ts)
{
    struct fz *z = u;
    struct dir_state *s = slot(z, f, dir);
    s->pending_len = 0;
    s->pos += len;
    if (len == 0 || s->pos > POS_LIMIT) abort();
}

static void fz_end(void *u, struct flow *f, enum flow_end_reason why, kw_ts ts)
{
    struct fz *z = u;
    uintptr_t i = (uintptr_t)f->app;
    if (i == 0 || i > 8 || !z->used[i - 1]) abort();
    z->used[i - 1] = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8) return 0;
    static struct fz z;
    memset(&z, 0, sizeof(z));
    uint32_t isn[2];
    memcpy(&isn[0], data, 4);
    memcpy(&isn[1], data + 4, 4);
    z.rng = isn[0] ^ ((uint64_t)isn[1] << 32);
    struct flow_config cfg;
    flow_config_default(&cfg);
    cfg.max_flows = 3;
    cfg.memcap = 48 * 1024;
    cfg.stream_buf_max = BUF_MAX;
    cfg.ooo_window = 2048;
    cfg.ooo_max_segments = 8;
    cfg.hash_key = (struct kw_hkey){1, 2}; /* fixed: runs replay exactly */
    struct flow_callbacks cb = {&z, fz_start, NULL, fz_data, fz_gap, fz_end};
    struct flow_table *t = NULL;
    if (flow_table_new(&cfg, &cb, &t) != KW_E_OK) abort();
    kw_ts now = KW_TS_SEC(1000);
    size_t i = 8;
    while (i + 4 <= size) {
        uint8_t ctl = data[i];
        uint16_t off = (uint16_t)(data[i + 1] << 8 | data[i + 2]);
        uint32_t len = data[i + 3];
        i += 4;
        if (len > size - i) len = (uint32_t)(size - i);
        struct dec_packet p = {0};
        int dir = ctl & 1;
        struct kw_addr a = {4, {10, 0, 0, 1}}, b = {4, {10, 0, 0, 2}};
        uint16_t cport = (uint16_t)(40000 + ((ctl >> 5) & 3));
        if (ctl & 0x80) now += 1500000;
        p.ts = now;
        p.ip_version = 4;
        p.proto = 6;
        p.src = dir ? b : a;
        p.dst = dir ? a : b;
        p.sport = dir ? 80 : cport;
        p.dport = dir ? cport : 80;
        p.tcp_flags =
            (uint8_t)(((ctl >> 1) & 1 ? DEC_TH_SYN : 0) | ((ctl >> 2) & 1 ? DEC_TH_FIN : 0) |
                      ((ctl >> 3) & 1 ? DEC_TH_RST : 0) | ((ctl >> 4) & 1 ? DEC_TH_ACK : 0));
        p.seq = isn[dir] + off;
        uint8_t *payload = kw_exact_dup(data + i, len); /* ASan sees overreads */
        p.payload = payload;
        p.payload_len = len;
        p.l3_len = 40 + len;
        z.fed_total += len;
        flow_table_packet(t, &p);
        free(payload);
        i += len;
    }
    flow_table_flush(t, now);
    const struct flow_counters *c = flow_table_counters(t);
    if (c->tcp_bytes_delivered > z.fed_total || c->flows_active != 0) abort();
    for (int k = 0; k < 8; k++)
        if (z.used[k]) abort(); /* every started flow ended */
    flow_table_destroy(t);
    return 0;
}
