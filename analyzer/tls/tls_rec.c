/* tls_rec: record headers and resynchronisation (see tls_rec.h). */
#include "tls_rec.h"

int tls_rec_header(const uint8_t *p, size_t n, struct tls_rec_hdr *h)
{
    if (n >= 1 && (p[0] < TLS_CT_CHANGE_CIPHER_SPEC || p[0] > TLS_CT_HEARTBEAT))
        return -1;
    if (n >= 2 && p[1] != 3)
        return -1;
    if (n >= 3 && p[2] > 4)
        return -1;
    if (n < TLS_REC_HDR)
        return 0;
    uint16_t len = (uint16_t)(p[3] << 8 | p[4]);
    if (len == 0 || len > TLS_REC_MAX)
        return -1;
    h->type = p[0];
    h->version = (uint16_t)(p[1] << 8 | p[2]);
    h->len = len;
    return 1;
}

size_t tls_rec_resync(const uint8_t *p, size_t n)
{
    struct tls_rec_hdr h, h2;
    for (size_t i = 0; i < n; i++) {
        int r = tls_rec_header(p + i, n - i, &h);
        if (r == 0)
            return i; /* too short to judge: wait for more */
        if (r < 0)
            continue;
        size_t next = i + TLS_REC_HDR + h.len;
        if (next >= n)
            return i; /* the record runs past what we have: take it */
        if (tls_rec_header(p + next, n - next, &h2) >= 0)
            return i;
    }
    return n;
}

int tls_rec_looks_tls(const uint8_t *p, size_t n, bool midstream)
{
    struct tls_rec_hdr h;
    int r = tls_rec_header(p, n, &h);
    if (r <= 0)
        return r < 0 ? 0 : -1;
    if (midstream)
        return 1;
    if (h.type != TLS_CT_HANDSHAKE)
        return 0;
    if (n < TLS_REC_HDR + 1)
        return -1;
    uint8_t t = p[TLS_REC_HDR];
    return t == 1 || t == 2 ? 1 : 0;
}
