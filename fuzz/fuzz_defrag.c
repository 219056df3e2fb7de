/* fuzz_defrag: the decoder and the defragmenter fed a sequence of IPv4 and
 * IPv6 fragments built from the input.
 *
 * Input: one config byte (bits 0-2: max_datagrams 1..8, bits 3-5:
 * max_fragments 1..8 times 8, bit 6: memcap 64 or 128 KiB), then records of
 *   [ctl] [id] [fo_hi] [fo_lo] [len]
 * ctl bit 0: IPv6, bit 1: MF/M, bit 2: TCP (else UDP), bit 3: a hop-by-hop
 * header before the IPv6 fragment header, bit 4: data length len*64 (else
 * len), bit 5: the data bytes flipped (an overlap with different bytes),
 * bit 6: cut by the snaplen, bit 7: packet time moves 7 s on. The fragment
 * offset is the 13-bit field of fo_hi:fo_lo. The data byte at datagram
 * offset o of datagram id is a function of (id, o), flipped or not, so a
 * rebuilt datagram that put any byte at the wrong offset is caught.
 *
 * Invariants: a rebuilt datagram has a consistent header (length fields,
 * no MF, offset 0, IPv4 checksum) and only well-placed bytes; the gauges
 * stay within the limits; the counters add up; at the end every datagram
 * times out and every byte is released. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dec.h"
#include "defrag.h"
#include "kw_exact.h"

#define LT_RAW 101
#define PKT_MAX (48 + 8 + 255 * 64)

static uint8_t byte_at(uint8_t id, uint32_t off)
{
    return (uint8_t)(off * 31u + id * 7u + 1u);
}

static size_t build(uint8_t ctl, uint8_t id, uint16_t fo, uint32_t len, uint8_t *p)
{
    bool v6 = ctl & 1, mf = ctl & 2, hbh = v6 && (ctl & 8);
    uint8_t proto = (ctl & 4) ? 6 : 17;
    size_t hl = v6 ? (hbh ? 56 : 48) : 20;
    memset(p, 0, hl);
    if (!v6) {
        p[0] = 0x45;
        p[2] = (uint8_t)((hl + len) >> 8), p[3] = (uint8_t)(hl + len);
        p[5] = id;
        p[6] = (uint8_t)((fo >> 8) | (mf ? 0x20 : 0)), p[7] = (uint8_t)fo;
        p[8] = 64, p[9] = proto;
        p[12] = 10, p[15] = 1, p[16] = 10, p[19] = 2;
    } else {
        uint32_t pl = (uint32_t)(hl - 40 + len);
        p[0] = 0x60;
        p[3] = id; /* flow label: the id survives the fragment header's removal */
        p[4] = (uint8_t)(pl >> 8), p[5] = (uint8_t)pl;
        p[6] = hbh ? 0 : 44, p[7] = 64;
        p[8] = 0x20, p[23] = 1, p[24] = 0x20, p[39] = 2;
        if (hbh) p[40] = 44, p[42] = 1, p[43] = 4; /* PadN */
        uint8_t *f = p + hl - 8;
        f[0] = proto;
        f[2] = (uint8_t)(fo >> 5), f[3] = (uint8_t)((fo << 3) | (mf ? 1 : 0));
        f[7] = id;
    }
    for (uint32_t i = 0; i < len; i++) {
        uint8_t b = byte_at(id, (uint32_t)fo * 8 + i);
        p[hl + i] = (ctl & 32) ? (uint8_t)~b : b;
    }
    return hl + len;
}

static uint16_t sum16(const uint8_t *p, size_t len)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

/* A rebuilt datagram: header consistent, every byte where it belongs. */
static void check_datagram(const uint8_t *l3, uint32_t len)
{
    if (len < 20 || len > DEFRAG_MAX_HDR + 65535u) abort();
    uint32_t hl, id;
    if ((l3[0] >> 4) == 4) {
        hl = (uint32_t)(l3[0] & 15) * 4;
        if ((uint32_t)(l3[2] << 8 | l3[3]) != len || (l3[6] & 0x3f) || l3[7]) abort();
        if (sum16(l3, hl) != 0xffff) abort(); /* checksum verifies */
        id = l3[5];
    } else {
        if (len < 40 || (uint32_t)(l3[4] << 8 | l3[5]) != len - 40) abort();
        hl = l3[6] == 0 ? 48 : 40;                              /* the fuzzer's two layouts */
        if (l3[6] == 44 || (hl == 48 && l3[40] == 44)) abort(); /* fragment header gone */
        id = l3[3];
    }
    if (hl > len) abort();
    for (uint32_t o = 0; o < len - hl; o++) {
        uint8_t b = byte_at((uint8_t)id, o), nb = (uint8_t)(b ^ 0xff);
        if (l3[hl + o] != b && l3[hl + o] != nb) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t pkt[PKT_MAX];
    if (size < 1) return 0;
    struct defrag_config cfg;
    defrag_config_default(&cfg);
    cfg.max_datagrams = 1 + (data[0] & 7);
    cfg.max_fragments = 8 * (1 + ((data[0] >> 3) & 7));
    cfg.memcap = (data[0] & 64) ? 128 * 1024 : 64 * 1024;
    struct defrag *d = NULL;
    if (defrag_new(&cfg, &d) != KW_E_OK) abort();
    struct dec_ctx dec;
    dec_ctx_init(&dec, NULL);
    const struct defrag_counters *c = defrag_counters(d);
    kw_ts now = KW_TS_SEC(1000);
    uint64_t fed = 0, done = 0;
    for (size_t i = 1; i + 5 <= size; i += 5) {
        uint8_t ctl = data[i], id = data[i + 1];
        uint16_t fo = (uint16_t)((data[i + 2] << 8 | data[i + 3]) & 0x1fff);
        uint32_t len = data[i + 4] * ((ctl & 16) ? 64u : 1u);
        if (ctl & 128) now += KW_TS_SEC(7);
        size_t n = build(ctl, id, fo, len, pkt);
        uint32_t cap = (ctl & 64) && n > 1 ? (uint32_t)n - 1 : (uint32_t)n;
        struct dec_packet p, out;
        uint8_t *exact = kw_exact_dup(pkt, cap); /* ASan sees overreads */
        if (dec_packet(&dec, LT_RAW, now, exact, cap, (uint32_t)n, &p) != DEC_SKIP ||
            !p.ip_fragment) {
            free(exact);
            continue;
        }
        const uint8_t *l3;
        uint32_t l3_len;
        fed++;
        if (defrag_packet(d, &p, &l3, &l3_len) == DEFRAG_DONE) {
            done++;
            check_datagram(l3, l3_len);
            enum dec_result r = dec_reassembled(&dec, &p, l3, l3_len, &out);
            if (r == DEC_OK && out.ip_fragment) abort();
        }
        free(exact);
        if (c->active > cfg.max_datagrams || c->bytes_held > cfg.memcap) abort();
        if (c->bytes_held > c->active * 64 * DEFRAG_CHUNK) abort();
    }
    if (c->fragments != fed || c->datagrams_reassembled != done) abort();
    defrag_advance(d, now + cfg.timeout);
    if (c->active || c->bytes_held) abort();
    defrag_destroy(d);
    return 0;
}
