/* workers_file.c: the dispatcher of file mode (-r), on the caller's
 * thread. It decodes each frame just enough to hash it to a worker, runs
 * the one flow table's timeout clock to broadcast ticks, and copies the
 * frame into that worker's bounded in ring, so every record gets the
 * sequence number the judge orders by. */
#include "workers_int.h"

/* ---- dispatcher -------------------------------------------------------- */

void wk_send_in(struct worker *k, uint32_t kind, uint64_t seq, kw_ts ts, const struct cap_pkt *pkt)
{
    uint32_t caplen = pkt ? pkt->caplen : 0;
    struct in_rec *r = wk_ring_reserve(&k->in, kind, sizeof *r + caplen);
    r->seq = seq;
    r->ts = ts;
    r->caplen = caplen;
    r->wirelen = pkt ? pkt->wirelen : 0;
    r->linktype = pkt ? pkt->linktype : 0;
    if (caplen) memcpy(r->data, pkt->data, caplen);
    wk_ring_commit(&k->in);
}

static void broadcast(struct workers *w, uint32_t kind, uint64_t seq, kw_ts ts)
{
    for (unsigned i = 0; i < w->n; i++)
        wk_send_in(&w->wk[i], kind, seq, ts, NULL);
}

static void judge_tick(struct workers *w, uint64_t seq)
{
    int64_t sec = w->now / w->tick_us;
    if (sec == w->last_sec) return;
    w->last_sec = sec;
    struct ev *e = wk_ring_reserve(&w->ticks, REC_TICK, EV_HEAD + sizeof e->u.now);
    e->kind = REC_TICK;
    e->k = (struct key){.seq = seq, .phase = 2};
    e->now = e->u.now = w->now;
    wk_ring_commit(&w->ticks);
}

unsigned wk_pick(struct workers *w, enum dec_result r, const struct dec_packet *d)
{
    if (r == DEC_MALFORMED || (d->src.family != 4 && d->src.family != 6)) return 0;
    const struct kw_addr *lo = &d->src, *hi = &d->dst;
    if (memcmp(lo->a, hi->a, 16) > 0) {
        lo = &d->dst;
        hi = &d->src;
    }
    /* keyed (kw_hash.h): traffic cannot pile every flow on one worker */
    struct kw_sip h;
    kw_sip_init(&h, kw_hkey_process());
    kw_sip_update(&h, lo->a, 16);
    kw_sip_update(&h, hi->a, 16);
    return (unsigned)(kw_sip_final(&h) % w->n);
}

void workers_packet(struct workers *w, const struct cap_pkt *pkt)
{
    uint64_t seq = ++w->seq;
    w->disp_cnt.packets++;
    w->disp_cnt.bytes += pkt->caplen;
    struct dec_packet d;
    memset(&d.src, 0, sizeof d.src);
    enum dec_result r =
        dec_packet(&w->dec, pkt->linktype, pkt->ts, pkt->data, pkt->caplen, pkt->wirelen, &d);
    if (pkt->ts > w->now) w->now = pkt->ts;
    /* the flow table's own tick rule (flow_table_packet), on the packets
     * that reach a flow table */
    if (r == DEC_OK && (d.proto == 6 || d.proto == 17) && !d.ip_fragment &&
        (!w->tbl_have || pkt->ts > w->tbl_now)) {
        if (!w->tbl_have) w->tbl_last = pkt->ts;
        w->tbl_have = true;
        w->tbl_now = pkt->ts;
        if (w->tbl_now - w->tbl_last >= KW_TS_SEC(1)) {
            broadcast(w, REC_ADV, seq, w->tbl_now);
            w->tbl_last = w->tbl_now;
        }
    }
    wk_send_in(&w->wk[wk_pick(w, r, &d)], REC_PKT, seq, pkt->ts, pkt);
    judge_tick(w, seq);
    w->mark_bytes += pkt->caplen;
    if (seq % MARK_EVERY == 0 || w->mark_bytes >= MARK_BYTES) {
        broadcast(w, REC_MARK, seq, 0);
        w->mark_bytes = 0;
    }
}
