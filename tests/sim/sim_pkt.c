/* sim_pkt: frame building, mirror encapsulation and the time-ordered pcap
 * writer. Checksums are computed over the final bytes so tshark's
 * ip.check_checksum / tcp.check_checksum find nothing to complain about. */
#include "sim_pkt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct sim_pend {
    int64_t ts;
    uint64_t seq;
    uint32_t len;
    uint8_t site; /* split_site: 0 = a, 1 = b */
    uint8_t *data;
};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static void le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *p, uint32_t v)
{
    le16(p, (uint16_t)v);
    le16(p + 2, (uint16_t)(v >> 16));
}

uint32_t sim_sum(const uint8_t *p, size_t n, uint32_t acc)
{
    uint64_t s = acc;
    size_t i = 0;
    for (; i + 1 < n; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (i < n) s += (uint32_t)(p[i] << 8);
    while (s >> 32)
        s = (s & 0xffffffffu) + (s >> 32);
    return (uint32_t)s;
}

uint16_t sim_fold(uint32_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)~acc;
}

int sim_ip_parse(const char *s, struct sim_ip *ip)
{
    memset(ip, 0, sizeof *ip);
    if (inet_pton(AF_INET, s, ip->a) == 1) return 0;
    if (inet_pton(AF_INET6, s, ip->a) == 1) {
        ip->v6 = 1;
        return 0;
    }
    return -1;
}

void sim_ip_format(const struct sim_ip *ip, char *buf, size_t n)
{
    if (!inet_ntop(ip->v6 ? AF_INET6 : AF_INET, ip->a, buf, (socklen_t)n)) snprintf(buf, n, "?");
}

int sim_encap_parse(const char *s, struct sim_encap *e)
{
    memset(e, 0, sizeof *e);
    unsigned a = 0, b = 0;
    if (!s || !strcmp(s, "none")) return 0;
    if (sscanf(s, "vlan:%u", &a) == 1 && a > 0 && a < 4095)
        *e = (struct sim_encap){SIM_ENCAP_VLAN, a, 0};
    else if (sscanf(s, "qinq:%u:%u", &a, &b) == 2 && a > 0 && a < 4095 && b > 0 && b < 4095)
        *e = (struct sim_encap){SIM_ENCAP_QINQ, a, b};
    else if (sscanf(s, "vxlan:%u", &a) == 1 && a < (1u << 24))
        *e = (struct sim_encap){SIM_ENCAP_VXLAN, a, 0};
    else if (sscanf(s, "geneve:%u", &a) == 1 && a < (1u << 24))
        *e = (struct sim_encap){SIM_ENCAP_GENEVE, a, 0};
    else if (sscanf(s, "erspan:%u", &a) == 1 && a < 1024)
        *e = (struct sim_encap){SIM_ENCAP_ERSPAN, a, 0};
    else
        return -1;
    return 0;
}

/* Ethernet + IP header; returns offset of the L4 header. */
static size_t put_l2l3(uint8_t *b, const struct sim_ep *src, const struct sim_ep *dst,
                       uint8_t proto, size_t l4len, uint16_t ip_id, uint8_t ttl)
{
    memcpy(b, dst->mac, 6);
    memcpy(b + 6, src->mac, 6);
    if (!src->ip.v6) {
        put16(b + 12, 0x0800);
        uint8_t *ip = b + 14;
        ip[0] = 0x45;
        ip[1] = 0;
        put16(ip + 2, (uint16_t)(20 + l4len));
        put16(ip + 4, ip_id);
        put16(ip + 6, 0x4000); /* DF */
        ip[8] = ttl;
        ip[9] = proto;
        put16(ip + 10, 0);
        memcpy(ip + 12, src->ip.a, 4);
        memcpy(ip + 16, dst->ip.a, 4);
        put16(ip + 10, sim_fold(sim_sum(ip, 20, 0)));
        return 34;
    }
    put16(b + 12, 0x86dd);
    uint8_t *ip = b + 14;
    put32(ip, 0x60000000u | (ip_id & 0xfffff)); /* flow label varies per flow */
    put16(ip + 4, (uint16_t)l4len);
    ip[6] = proto;
    ip[7] = ttl;
    memcpy(ip + 8, src->ip.a, 16);
    memcpy(ip + 24, dst->ip.a, 16);
    return 54;
}

/* Pseudo-header sum (RFC 9293 §3.1, RFC 8200 §8.1). */
static uint32_t pseudo_sum(const struct sim_ep *src, const struct sim_ep *dst, uint8_t proto,
                           size_t l4len)
{
    size_t alen = src->ip.v6 ? 16 : 4;
    uint32_t s = sim_sum(src->ip.a, alen, 0);
    s = sim_sum(dst->ip.a, alen, s);
    uint8_t tail[8] = {0};
    put32(tail, (uint32_t)l4len);
    tail[7] = proto;
    return sim_sum(tail, 8, s);
}

size_t sim_frame_tcp(uint8_t *buf, const struct sim_ep *src, const struct sim_ep *dst,
                     const struct sim_tcp_hdr *h, const uint8_t *payload, size_t plen)
{
    size_t thl = 20 + h->optlen;
    size_t off = put_l2l3(buf, src, dst, 6, thl + plen, h->ip_id, h->ttl);
    uint8_t *t = buf + off;
    put16(t, src->port);
    put16(t + 2, dst->port);
    put32(t + 4, h->seq);
    put32(t + 8, h->ack);
    t[12] = (uint8_t)((thl / 4) << 4);
    t[13] = h->flags;
    put16(t + 14, h->win);
    put16(t + 16, 0);
    put16(t + 18, 0);
    if (h->optlen) memcpy(t + 20, h->opt, h->optlen);
    if (plen) memcpy(t + thl, payload, plen);
    uint32_t s = pseudo_sum(src, dst, 6, thl + plen);
    put16(t + 16, sim_fold(sim_sum(t, thl + plen, s)));
    return off + thl + plen;
}

size_t sim_frame_udp(uint8_t *buf, const struct sim_ep *src, const struct sim_ep *dst,
                     uint16_t ip_id, const uint8_t *payload, size_t plen)
{
    size_t off = put_l2l3(buf, src, dst, 17, 8 + plen, ip_id, 64);
    uint8_t *u = buf + off;
    put16(u, src->port);
    put16(u + 2, dst->port);
    put16(u + 4, (uint16_t)(8 + plen));
    put16(u + 6, 0);
    memcpy(u + 8, payload, plen);
    uint16_t c = sim_fold(sim_sum(u, 8 + plen, pseudo_sum(src, dst, 17, 8 + plen)));
    put16(u + 6, c ? c : 0xffff); /* RFC 768: a computed zero is sent as all ones */
    return off + 8 + plen;
}

/* Mirror encapsulation: the inner frame is copied behind the outer headers.
 * Outer addresses are the mirror source and the collector. */
static size_t encap_wrap(struct sim_out *o, uint8_t *dst, const uint8_t *in, size_t len)
{
    const struct sim_encap *e = &o->encap;
    if (e->kind == SIM_ENCAP_VLAN || e->kind == SIM_ENCAP_QINQ) {
        size_t off = 12;
        memcpy(dst, in, 12);
        if (e->kind == SIM_ENCAP_QINQ) {
            put16(dst + off, 0x88a8); /* IEEE 802.1ad service tag */
            put16(dst + off + 2, (uint16_t)e->id);
            off += 4;
        }
        put16(dst + off, 0x8100);
        put16(dst + off + 2, (uint16_t)(e->kind == SIM_ENCAP_QINQ ? e->inner : e->id));
        off += 4;
        memcpy(dst + off, in + 12, len - 12);
        return len + off - 12;
    }
    struct sim_ep mirror = {.ip = {0, {10, 255, 0, 1}}, .mac = {0x02, 0x00, 0x5e, 0xff, 0, 1}};
    struct sim_ep coll = {.ip = {0, {10, 255, 0, 2}}, .mac = {0x02, 0x00, 0x5e, 0xff, 0, 2}};
    uint8_t hdr[16];
    size_t hl = 0;
    if (e->kind == SIM_ENCAP_ERSPAN) {
        /* GRE with sequence (RFC 2890) + ERSPAN type II header. */
        put16(hdr, 0x1000);
        put16(hdr + 2, 0x88be);
        put32(hdr + 4, o->gre_seq++);
        put32(hdr + 8, (1u << 28) | (e->id & 0x3ff)); /* ver 1, vlan 0, cos 0, en 0, t 0 */
        put32(hdr + 12, 0);                           /* index */
        hl = 16;
        size_t off = put_l2l3(dst, &mirror, &coll, 47, hl + len, (uint16_t)o->gre_seq, 64);
        memcpy(dst + off, hdr, hl);
        memcpy(dst + off + hl, in, len);
        return off + hl + len;
    }
    if (e->kind == SIM_ENCAP_VXLAN) { /* RFC 7348 §5 */
        put32(hdr, 0x08000000u);
        put32(hdr + 4, e->id << 8);
    } else { /* GENEVE, RFC 8926 §3.4: no options, protocol 0x6558 */
        put16(hdr, 0x0000);
        put16(hdr + 2, 0x6558);
        put32(hdr + 4, e->id << 8);
    }
    hl = 8;
    uint8_t payload[SIM_MAX_FRAME];
    memcpy(payload, hdr, hl);
    memcpy(payload + hl, in, len);
    /* Source port from an inner-flow hash, as RFC 7348 recommends. */
    uint32_t h = sim_sum(in + 26, len > 38 ? 12 : 0, 0);
    mirror.port = (uint16_t)(49152 + (h % 16384));
    coll.port = e->kind == SIM_ENCAP_VXLAN ? 4789 : 6081;
    return sim_frame_udp(dst, &mirror, &coll, (uint16_t)o->packets, payload, hl + len);
}

void sim_pcap_file_header(uint8_t out[24])
{
    le32(out, 0xa1b2c3d4u);
    le16(out + 4, 2);
    le16(out + 6, 4);
    le32(out + 8, 0);
    le32(out + 12, 0);
    le32(out + 16, 262144);
    le32(out + 20, 1); /* LINKTYPE_ETHERNET */
}

void sim_pcap_rec_header(uint8_t out[16], int64_t ts, uint32_t len)
{
    le32(out, (uint32_t)(ts / 1000000));
    le32(out + 4, (uint32_t)(ts % 1000000));
    le32(out + 8, len);
    le32(out + 12, len);
}

int sim_out_open(struct sim_out *o, const char *dir, const char *name, bool split_day,
                 const struct sim_encap *encap)
{
    memset(o, 0, sizeof *o);
    snprintf(o->dir, sizeof o->dir, "%s", dir);
    snprintf(o->name, sizeof o->name, "%s", name);
    o->split_day = split_day;
    if (encap) o->encap = *encap;
    o->day = -1;
    char path[512];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) { /* mkdir -p */
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(path, 0755) && errno != EEXIST) return -1;
    return 0;
}

static bool pend_less(const struct sim_pend *a, const struct sim_pend *b)
{
    return a->ts < b->ts || (a->ts == b->ts && a->seq < b->seq);
}

static bool in_net(const struct sim_site_net *n, const uint8_t *a, bool v6)
{
    if (n->base.v6 != v6) return false;
    int bits = n->prefix;
    for (int i = 0; bits > 0; i++, bits -= 8) {
        uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
        if ((a[i] & mask) != (n->base.a[i] & mask)) return false;
    }
    return true;
}

/* The site of an Ethernet frame as built here (before any encapsulation):
 * a when its source or destination lies in one of the site's networks. */
static uint8_t site_of(const struct sim_out *o, const uint8_t *f, size_t len)
{
    if (len < 14) return 1;
    uint16_t et = (uint16_t)(f[12] << 8 | f[13]);
    const uint8_t *ip = f + 14, *src, *dst;
    bool v6 = et == 0x86dd;
    if (et == 0x0800 && len >= 34) {
        src = ip + 12;
        dst = ip + 16;
    } else if (v6 && len >= 54) {
        src = ip + 8;
        dst = ip + 24;
    } else {
        return 1;
    }
    for (int i = 0; i < o->nsite; i++)
        if (in_net(&o->site[i], src, v6) || in_net(&o->site[i], dst, v6)) return 0;
    return 1;
}

void sim_out_push(struct sim_out *o, int64_t ts, const uint8_t *frame, size_t len)
{
    uint8_t tmp[SIM_MAX_FRAME + 128];
    uint8_t site = o->split_site ? site_of(o, frame, len) : 0;
    if (o->encap.kind != SIM_ENCAP_NONE) {
        len = encap_wrap(o, tmp, frame, len);
        frame = tmp;
    }
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 4096;
        o->heap = realloc(o->heap, o->cap * sizeof *o->heap);
        if (!o->heap) abort();
    }
    struct sim_pend p = {ts, o->seq++, (uint32_t)len, site, malloc(len)};
    if (!p.data) abort();
    memcpy(p.data, frame, len);
    size_t i = o->n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pend_less(&p, &o->heap[up])) break;
        o->heap[i] = o->heap[up];
        i = up;
    }
    o->heap[i] = p;
}

static struct sim_pend heap_pop(struct sim_out *o)
{
    struct sim_pend top = o->heap[0];
    struct sim_pend last = o->heap[--o->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= o->n) break;
        if (c + 1 < o->n && pend_less(&o->heap[c + 1], &o->heap[c])) c++;
        if (!pend_less(&o->heap[c], &last)) break;
        o->heap[i] = o->heap[c];
        i = c;
    }
    if (o->n) o->heap[i] = last;
    return top;
}

static FILE *open_pcap(struct sim_out *o, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        o->err = -1;
        return NULL;
    }
    uint8_t gh[24];
    sim_pcap_file_header(gh);
    fwrite(gh, 1, sizeof gh, f);
    return f;
}

static int open_sites(struct sim_out *o)
{
    char path[700];
    if (o->f) return 0;
    snprintf(path, sizeof path, "%s/%s-a.pcap", o->dir, o->name);
    o->f = open_pcap(o, path);
    snprintf(path, sizeof path, "%s/%s-b.pcap", o->dir, o->name);
    o->fb = open_pcap(o, path);
    return o->f && o->fb ? 0 : -1;
}

static int open_file(struct sim_out *o, int64_t ts)
{
    char path[700];
    int64_t day = ts / 86400000000LL;
    if (o->split_site) return open_sites(o);
    if (o->f && (!o->split_day || day == o->day)) return 0;
    if (o->f && fclose(o->f)) o->err = -1;
    if (o->split_day) {
        time_t t = (time_t)(day * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(path, sizeof path, "%s/%s-%04d-%02d-%02d.pcap", o->dir, o->name, tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday);
    } else {
        snprintf(path, sizeof path, "%s/%s.pcap", o->dir, o->name);
    }
    o->day = day;
    o->f = fopen(path, "wb");
    if (!o->f) {
        o->err = -1;
        return -1;
    }
    uint8_t gh[24];
    sim_pcap_file_header(gh);
    fwrite(gh, 1, sizeof gh, o->f);
    return 0;
}

void sim_out_flush(struct sim_out *o, int64_t before)
{
    while (o->n && o->heap[0].ts < before) {
        struct sim_pend p = heap_pop(o);
        if (open_file(o, p.ts) == 0) {
            uint8_t rh[16];
            FILE *f = p.site ? o->fb : o->f;
            sim_pcap_rec_header(rh, p.ts, p.len);
            fwrite(rh, 1, sizeof rh, f);
            fwrite(p.data, 1, p.len, f);
            o->packets++;
            o->bytes += p.len;
        }
        free(p.data);
    }
}

int sim_out_close(struct sim_out *o)
{
    sim_out_flush(o, INT64_MAX);
    if (!o->f && !o->err) /* an empty capture is still a valid file */
        open_file(o, 0);
    if (o->f && fclose(o->f)) o->err = -1;
    if (o->fb && fclose(o->fb)) o->err = -1;
    o->f = o->fb = NULL;
    free(o->heap);
    o->heap = NULL;
    return o->err;
}
