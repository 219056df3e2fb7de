/* pipeline_flow: the flow table's callbacks. A flow's start takes a
 * recycled per-flow state; its bytes go to TLS, HTTP/2 or HTTP/1 (or are
 * probed until recognised, see pipeline_http.c); its end closes the
 * parsers, writes the `flow` record (or hands it to the workers' sink) and
 * returns the state to the free list. TLS connections feed their decrypted
 * bytes back through the same recognition. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "kw_addr.h"
#include "kw_jw.h"
#include "pipeline_int.h"
#include "pipeline_tls.h"
#include "tls_rec.h"

/* ---- TLS ----------------------------------------------------------------- */

/* A server's first bytes that are an HTTP/2 SETTINGS frame header (RFC
 * 9113 §3.4: its connection preface), when the ALPN answer was not seen. */
static bool h2_server_preface(const uint8_t *d, size_t len)
{
    return len >= 9 && d[3] == 0x4 && d[4] == 0 && !(d[5] | d[6] | d[7] | d[8]) &&
           ((uint32_t)d[0] << 16 | (uint32_t)d[1] << 8 | d[2]) % 6 == 0;
}

/* Decrypted application bytes: HTTP/2 when ALPN chose h2 (or the bytes
 * start with its preface: a TLS 1.3 server may speak first, and without
 * the EncryptedExtensions the ALPN is unknown), else HTTP/1, recognised as
 * on clear connections. */
static size_t tls_on_data(void *user, int dir, const uint8_t *d, size_t len, kw_ts ts)
{
    struct pipe_flow *pf = user;
    if (pf->http == PF_HTTP_UNKNOWN && !pf->h2) {
        bool h2 = tls_info_is_h2(tls_conn_info(pf->tls)) ||
                  (dir == 0 ? h2_is_preface(d, len) > 0 : h2_server_preface(d, len));
        if (h2 && !pl_start_h2(pf, pf->f->midstream)) {
            pf->http = PF_HTTP_NO;
            return len;
        }
    }
    if (pf->http == PF_HTTP_NO || (pf->http == PF_HTTP_UNKNOWN && !pl_start_http(pf))) return len;
    return pl_feed_http(pf, dir, d, len, ts);
}

static void tls_on_gap(void *user, int dir, uint64_t len, kw_ts ts)
{
    struct pipe_flow *pf = user;
    if (pf->h2)
        h2_gap(pf->h2, dir, len, ts);
    else if (pf->h1)
        h1_gap(pf->h1, dir, len, ts);
}

static void tls_on_handshake(void *user, const struct tls_info *ti, kw_ts ts)
{
    struct pipe_flow *pf = user;
    struct pipeline *p = pf->p;
    struct kw_txn *t = &p->txn;
    ptls_session_txn(t, pf->f, ti, ts);
    p->cnt.tls_sessions++;
    if (p->cfg.sink)
        p->cfg.sink->tls(p->cfg.sink->user, pf->f, pf->last_seq, p->ending, t, ti);
    else
        pipeline_judge_tls(p, t, ti);
}

static bool start_tls(struct pipe_flow *pf)
{
    struct pipeline *p = pf->p;
    struct tls_conn_cb cb = {pf, tls_on_data, tls_on_gap, tls_on_handshake};
    pf->tls = tls_conn_new(p->tls, &cb, pf->f->midstream);
    if (!pf->tls) {
        p->cnt.tls_alloc_failures++;
        return false;
    }
    p->cnt.tls_flows++;
    return true;
}

/* ---- flow callbacks ---------------------------------------------------- */

void pl_cb_flow_start(void *user, struct flow *f, kw_ts ts)
{
    struct pipeline *p = user;
    struct pipe_flow *pf = p->free_flows;
    if (pf)
        p->free_flows = pf->next_free;
    else
        pf = malloc(sizeof *pf);
    if (!pf) {
        f->app = NULL;
        return;
    }
    memset(pf, 0, sizeof *pf);
    pf->p = p;
    pf->f = f;
    pf->last_seq = p->seq;
    if (p->cfg.sink) p->cfg.sink->flow_start(p->cfg.sink->user, f);
    if (p->cls) {
        pf->cls = classify_flow_new(p->cls);
        pf->cls_wants = pf->cls != NULL;
    }
    f->app = pf;
}

void pl_cb_packet(void *user, struct flow *f, int dir, const struct dec_packet *pkt)
{
    struct pipe_flow *pf = f->app;
    if (pf) pf->last_seq = pf->p->seq;
    if (!pf || !pf->cls || !pf->cls_wants || pf->http == PF_HTTP_YES) return;
    /* A whole HTTP/1.x request line as the client's first data: the HTTP
     * parser takes the flow right after (pl_cb_data), and nDPI's dissectors
     * on that packet cost ~22k instructions (callgrind), once per
     * connection (issue 13: over half of what the rest of a transaction
     * costs, for a client that opens a connection per request). Its
     * handshake packets still go to nDPI, and every packet of a flow the
     * parser then refuses. */
    if (pkt->proto == IPPROTO_TCP && dir == FLOW_DIR_TO_SERVER && pf->http == PF_HTTP_UNKNOWN &&
        pkt->payload_len && !pf->probes[0] && !pf->probes[1] && !f->midstream &&
        pl_looks_http_line(pkt->payload, pkt->payload_len) == 1)
        return; /* TCP only: SSDP's "M-SEARCH * HTTP/1.1" is nDPI's to name */
    pf->cls_wants = classify_packet(pf->p->cls, pf->cls, pkt->l3, pkt->l3_len, pkt->ts,
                                    dir == FLOW_DIR_TO_SERVER);
}

size_t pl_cb_data(void *user, struct flow *f, int dir, const uint8_t *d, size_t len, kw_ts ts)
{
    struct pipe_flow *pf = f->app;
    if (pf && pf->tls) return tls_conn_feed(pf->tls, dir, d, len, ts);
    if (!pf || pf->http == PF_HTTP_NO) return len;
    if (pf->h2) return pl_feed_h2(pf, dir, d, len, ts);
    if (pf->http == PF_HTTP_UNKNOWN && (pf->gap[0] || pf->gap[1]))
        return pl_probe_after_gap(pf, dir, d, len, ts);
    if (pf->http == PF_HTTP_UNKNOWN && dir == 0 && !f->midstream) {
        /* prior knowledge (RFC 9113 §3.3): the preface, on any port */
        int v = h2_is_preface(d, len);
        if (v < 0) { /* its first bytes: wait for the rest */
            if (!pf->held_ts[dir]) pf->held_ts[dir] = ts;
            return 0;
        }
        if (v > 0) {
            if (!pl_start_h2(pf, false)) {
                pf->http = PF_HTTP_NO;
                return len;
            }
            if (pf->held_ts[dir]) {
                ts = pf->held_ts[dir];
                pf->held_ts[dir] = 0;
            }
            return pl_feed_h2(pf, dir, d, len, ts);
        }
    }
    if (pf->http == PF_HTTP_UNKNOWN && dir == 1 && !f->midstream && !pf->probes[0] &&
        !pf->probes[1] && h2_server_preface(d, len)) {
        /* The server's preface (RFC 9113 §3.4), a SETTINGS frame, seen before
         * the client's: servers like nghttpd send it at accept, and when the
         * mirror lost the client's first segment it is all there is. The
         * client's direction then starts with a hole and resynchronises on
         * its frames (a connection otherwise lost whole). */
        if (!pl_start_h2(pf, false)) {
            pf->http = PF_HTTP_NO;
            return len;
        }
        return pl_feed_h2(pf, dir, d, len, ts);
    }
    if (pf->http == PF_HTTP_UNKNOWN && !pf->probes[0] && !pf->probes[1]) {
        int t = tls_rec_looks_tls(d, len, f->midstream);
        if (t > 0 && start_tls(pf)) return tls_conn_feed(pf->tls, dir, d, len, ts);
        if (t < 0 && !f->midstream) return 0; /* a record header's first bytes: wait for the rest */
    }
    if (pf->http == PF_HTTP_UNKNOWN && f->midstream && !pf->probes[0] && !pf->probes[1] &&
        h2_looks_like_frames(d, len, dir)) {
        /* picked up midstream inside HTTP/2: frames, tables unknown */
        if (!pl_start_h2(pf, true)) {
            pf->http = PF_HTTP_NO;
            return len;
        }
        return pl_feed_h2(pf, dir, d, len, ts);
    }
    if (pf->http == PF_HTTP_UNKNOWN && f->midstream) return pl_probe_midstream(pf, dir, d, len, ts);
    if (pf->http == PF_HTTP_UNKNOWN) {
        int v = pl_looks_http(d, len);
        if (v > 0 && (pf->probes[0] || pf->probes[1]))
            v = pl_looks_http_line(d, len); /* a later chunk: a whole start line */
        if (v < 0 && len < PROBE_BYTES) {
            /* keep the bytes; decide when more arrive, but remember when
             * the first of them was seen: that is when the request began */
            if (!pf->held_ts[dir]) pf->held_ts[dir] = ts;
            return 0;
        }
        if (v <= 0) {
            /* not a start line: drop this chunk, look at the next ones */
            return pl_probe_skip(pf, dir, len);
        }
        if (!pl_start_http(pf)) return len;
        if (pf->held_ts[dir]) {
            ts = pf->held_ts[dir];
            pf->held_ts[dir] = 0;
        }
    }
    return pl_feed_http(pf, dir, d, len, ts);
}

void pl_cb_gap(void *user, struct flow *f, int dir, uint64_t len, kw_ts ts)
{
    struct pipe_flow *pf = f->app;
    if (pf && pf->tls) {
        tls_conn_gap(pf->tls, dir, len, ts);
        return;
    }
    if (!pf || pf->http == PF_HTTP_NO) return;
    if (pf->h2) {
        h2_gap(pf->h2, dir, len, ts);
        return;
    }
    /* A hole before the flow was recognised: remembered, and what follows
     * must hold an HTTP/1 start line (pl_probe_after_gap). */
    if (pf->http == PF_HTTP_UNKNOWN) {
        pf->gap[dir] += len ? len : 1;
        return;
    }
    h1_gap(pf->h1, dir, len, ts);
}

static const char *tcp_state_name(uint8_t s)
{
    static const char *const names[] = {"none",        "syn_sent", "syn_recv",
                                        "established", "fin_wait", "closed"};
    return s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

size_t pipeline_format_flow(char *buf, size_t size, const struct flow *f, const char *app,
                            const char *sni, int64_t http_txns, enum flow_end_reason why, kw_ts ts)
{
    char tsb[40], a[64], b[64];
    struct kw_jw w;
    kw_jw_init(&w, buf, size);
    kw_jw_obj_begin(&w, NULL);
    kw_jw_str(&w, "timestamp", kw_ts_format(ts, tsb, sizeof tsb));
    kw_jw_int(&w, "flow_id", (int64_t)(f->id & INT64_MAX));
    kw_jw_str(&w, "event_type", "flow");
    kw_jw_str(&w, "src_ip", kw_addr_str(&f->cli, a, sizeof a));
    kw_jw_int(&w, "src_port", f->cli_port);
    kw_jw_str(&w, "dest_ip", kw_addr_str(&f->srv, b, sizeof b));
    kw_jw_int(&w, "dest_port", f->srv_port);
    kw_jw_str(&w, "proto", f->proto == 6 ? "TCP" : f->proto == 17 ? "UDP" : "other");
    if (f->vlan) {
        kw_jw_arr_begin(&w, "vlan");
        kw_jw_int(&w, NULL, f->vlan);
        kw_jw_arr_end(&w);
    }
    if (f->tunnel.type) {
        kw_jw_obj_begin(&w, "tunnel");
        kw_jw_str(&w, "type", kw_tunnel_type_name(f->tunnel.type));
        kw_jw_int(&w, "id", f->tunnel.id);
        kw_jw_obj_end(&w);
    }
    kw_jw_str_opt(&w, "app_proto", app);
    kw_jw_obj_begin(&w, "flow");
    kw_jw_int(&w, "pkts_toserver", (int64_t)f->pkts[0]);
    kw_jw_int(&w, "pkts_toclient", (int64_t)f->pkts[1]);
    kw_jw_int(&w, "bytes_toserver", (int64_t)f->bytes[0]);
    kw_jw_int(&w, "bytes_toclient", (int64_t)f->bytes[1]);
    kw_jw_str(&w, "start", kw_ts_format(f->first_ts, tsb, sizeof tsb));
    kw_jw_str(&w, "end", kw_ts_format(f->last_ts, tsb, sizeof tsb));
    kw_jw_str(&w, "reason", flow_end_reason_name(why));
    if (f->proto == 6) {
        kw_jw_str(&w, "state", tcp_state_name(f->tcp_state));
        kw_jw_bool(&w, "midstream", f->midstream);
        kw_jw_int(&w, "gaps", (int64_t)(f->gaps[0] + f->gaps[1]));
        kw_jw_int(&w, "gap_bytes", (int64_t)(f->gap_bytes[0] + f->gap_bytes[1]));
    }
    if (http_txns >= 0) kw_jw_int(&w, "http_transactions", http_txns);
    kw_jw_obj_end(&w);
    kw_jw_str_opt(&w, "tls_sni", sni);
    kw_jw_obj_end(&w);
    return kw_jw_ok(&w) ? w.len : 0;
}

static void write_flow_record(struct pipeline *p, struct pipe_flow *pf, const struct flow *f,
                              enum flow_end_reason why, kw_ts ts)
{
    char app[64] = "", sni[256] = "";
    if (pf && pf->tls) {
        strcpy(app, "tls");
        snprintf(sni, sizeof sni, "%s", tls_conn_info(pf->tls)->ch.sni);
    } else if (pf && pf->was_h2)
        strcpy(app, "http2");
    else if (pf && pf->http == PF_HTTP_YES)
        strcpy(app, "http");
    else if (pf && pf->cls)
        classify_result(p->cls, pf->cls, app, sizeof app, sni, sizeof sni);
    int64_t txns = pf && pf->http == PF_HTTP_YES ? (int64_t)pf->txns : -1;
    if (p->cfg.sink)
        p->cfg.sink->flow_end(p->cfg.sink->user, f, pf ? pf->last_seq : 0, why, ts, app, sni, txns);
    else
        pipeline_judge_flow(p, f, app, sni, txns, why, ts);
}

void pl_cb_flow_end(void *user, struct flow *f, enum flow_end_reason why, kw_ts ts)
{
    struct pipeline *p = user;
    struct pipe_flow *pf = f->app;
    if (pf && pf->tls) {
        p->ending = (int)why;
        tls_conn_close(pf->tls, ts); /* its record, if the handshake never ended */
        p->ending = -1;
    }
    if (pf && pf->h2) {
        p->ending = (int)why;
        h2_close(pf->h2, ts);
        p->ending = -1;
        h2_counters_add(&p->h2_total, h2_conn_counters(pf->h2));
        h2_conn_destroy(pf->h2);
        pf->h2 = NULL;
        p->h2_live--;
    }
    if (pf && pf->h1) {
        p->ending = (int)why;
        h1_close(pf->h1, ts);
        p->ending = -1;
        h1_counters_add(&p->h1_total, h1_conn_counters(pf->h1));
        p->h1_live--;
        if (p->h1_nfree < sizeof p->h1_free / sizeof p->h1_free[0])
            p->h1_free[p->h1_nfree++] = pf->h1; /* reset when reused */
        else
            h1_conn_destroy(pf->h1);
        pf->h1 = NULL;
    }
    /* a TLS flow's end always reaches the judge stage: the bytes of an
     * attributed session are judged there (flow records or not) */
    if (((p->cfg.eve || p->cfg.sink || p->cfg.forward) && p->cfg.flow_records) || (pf && pf->tls))
        write_flow_record(p, pf, f, why, ts);
    if (pf) {
        tls_conn_destroy(pf->tls);
        pf->tls = NULL;
        if (pf->cls) classify_flow_free(p->cls, pf->cls);
        pf->next_free = p->free_flows;
        p->free_flows = pf;
    }
    f->app = NULL;
}
