/* fuzz_dec: the packet decoders on arbitrary bytes. The first input byte
 * picks a link type from the supported list, the rest is the packet; each
 * input gets a fresh context. The packet is a heap copy of exactly its
 * length so ASan sees any read past caplen. Half of the inputs (by the
 * selector's top bit) are decoded as snaplen-cut (wirelen > caplen), the
 * other half as whole packets, to reach both truncation paths. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dec.h"

static const int LINKTYPES[] = {0,   1,   9,   12,  14,  50,  101, 104,
                                105, 108, 113, 127, 228, 229, 239, 276};
#define N_LINKTYPES (sizeof(LINKTYPES) / sizeof(LINKTYPES[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536) return 0;
    int lt = LINKTYPES[(data[0] & 0x7f) % N_LINKTYPES];
    uint32_t caplen = (uint32_t)(size - 1);
    uint32_t wirelen = (data[0] & 0x80) ? caplen + 100 : caplen;
    uint8_t *pkt = malloc(caplen ? caplen : 1);
    if (!pkt) return 0;
    memcpy(pkt, data + 1, caplen);
    struct dec_ctx ctx;
    dec_ctx_init(&ctx, NULL);
    struct dec_packet out;
    enum dec_result r = dec_packet(&ctx, lt, 0, pkt, caplen, wirelen, &out);
    if (r == DEC_OK) {
        /* The contract: what the decoder hands out lies inside the packet. */
        if (out.payload_len && (out.payload < pkt || out.payload + out.payload_len > pkt + caplen))
            abort();
        if (out.l3_len && (out.l3 < pkt || out.l3 + out.l3_len > pkt + caplen)) abort();
    }
    free(pkt);
    return 0;
}
