/* pipeline_http: HTTP recognised by content, parsers started and fed, and
 * each transaction sent on its way.
 *
 * HTTP is recognised by content, never by port: the first bytes a
 * connection carries decide whether its HTTP parser is created (a request
 * line or a status line), so HTTP on any port is seen and TLS on port 80
 * is not fed to the parser. Flows picked up midstream (and bytes after a
 * hole) may begin anywhere inside a message: they become HTTP at the first
 * whole HTTP/1.x start line found at a line start, and the parser starts
 * there. Everything that is not HTTP
 * is offered to nDPI for its first packets, so the `flow` record says what
 * it was (and its TLS SNI) instead of leaving a silent hole. */
#include <string.h>

#include "classify.h"
#include "pipeline_int.h"
#include "pipeline_tls.h"

/* The rest of a transaction's way, whatever parser filled p->txn: the
 * flow's addresses, the credential, redaction, TLS, then the judge (or the
 * workers' sink). */
static void emit_txn(struct pipe_flow *pf, const struct h1_msg_view *req)
{
    struct pipeline *p = pf->p;
    const struct flow *f = pf->f;
    struct kw_txn *t = &p->txn;

    ptls_flow_fields(t, f);
    if (req) cred_extract_ex(&p->cfg.cred, req->hdrs, req->n_hdrs, req->target, &t->cred, &p->cred);
    /* A key in the query string must not reach any record: from here on
     * every consumer (EVE, alerts, audit) sees the redacted target. */
    if (cred_redact_target(&p->cfg.cred, t->url, sizeof t->url)) p->cnt.urls_redacted++;
    if (pf->tls) ptls_http_txn(t, tls_conn_info(pf->tls));
    p->cnt.transactions++;
    pf->txns++;
    if (p->cfg.sink) {
        p->cfg.sink->txn(p->cfg.sink->user, f, pf->last_seq, p->ending, t);
        return;
    }
    pipeline_judge_txn(p, t);
}

/* h2c (RFC 7540 §3.2): a request with "Upgrade: h2c" answered 101. */
static bool is_h2c_upgrade(const struct h1_txn_view *v)
{
    if (!v->req || !v->resp || v->resp->status != 101) return false;
    const struct kw_hdr *u = h1_hdr_find(v->req, "Upgrade");
    return u && u->value.len >= 3 && memmem(u->value.p, u->value.len, "h2c", 3);
}

static void on_txn(void *user, const struct h1_txn_view *v)
{
    struct pipe_flow *pf = user;
    if (is_h2c_upgrade(v) && !pf->h2 && pl_start_h2(pf, false)) {
        /* the request becomes stream 1; its answer comes in HTTP/2 */
        h2_upgrade(pf->h2, v->req);
        h1_handoff(pf->h1);
        return;
    }
    kw_txn_clear(&pf->p->txn);
    h1_txn_fill(v, &pf->p->txn);
    pf->p->cnt.transactions_h1++;
    emit_txn(pf, v->req);
}

static void on_h2_txn(void *user, const struct h2_txn_view *v)
{
    struct pipe_flow *pf = user;
    kw_txn_clear(&pf->p->txn);
    h2_txn_fill(v, &pf->p->txn);
    pf->p->cnt.transactions_h2++;
    emit_txn(pf, v->req);
}

/* ---- HTTP recognition -------------------------------------------------- */

/* Does a data chunk start like HTTP/1.x? 1 yes, 0 no, -1 not sure yet
 * (too few bytes). A request starts with a method token (RFC 9110 §9: we
 * accept upper-case letters, '-' and '_', as servers do) and a space, or
 * is a well-known method alone on its line (servers answer those); a
 * response with "HTTP/". Empty lines before a request are tolerated
 * (RFC 9112 §2.2). */
int pl_looks_http(const uint8_t *d, size_t len)
{
    size_t i = 0;
    while (i < len && (d[i] == '\r' || d[i] == '\n'))
        i++;
    if (i == len) return len < 8 ? -1 : 0;
    static const char http[] = "HTTP/";
    size_t k = 0;
    while (k < 5 && i + k < len && d[i + k] == (uint8_t)http[k])
        k++;
    if (k == 5) return 1;
    if (i + k == len && k > 0) return -1;
    static const char *const alone[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"};
    size_t n = 0;
    for (; i + n < len && n <= 24; n++) {
        uint8_t c = d[i + n];
        if (c == ' ') return n > 0 ? 1 : 0;
        if (c == '\r' || c == '\n') {
            for (size_t m = 0; m < sizeof alone / sizeof alone[0]; m++)
                if (strlen(alone[m]) == n && memcmp(d + i, alone[m], n) == 0) return 1;
            return 0;
        }
        if (!((c >= 'A' && c <= 'Z') || c == '-' || c == '_')) return 0;
    }
    return n > 24 ? 0 : -1;
}

/* A later chunk must hold a whole start line with an HTTP/1.x version
 * ("GET /x HTTP/1.1", "HTTP/1.1 200"): after a first chunk that was not
 * HTTP, line protocols (SMTP's "EHLO host", FTP's "USER x") must not pass
 * for requests. */
int pl_looks_http_line(const uint8_t *d, size_t len)
{
    if (len >= 7 && memcmp(d, "HTTP/1.", 7) == 0) return 1;
    if (len < 7 && len && memcmp(d, "HTTP/1.", len) == 0)
        return -1; /* a status line's first bytes */
    size_t n = len < 2048 ? len : 2048, i = 0;
    while (i < n && ((d[i] >= 'A' && d[i] <= 'Z') || d[i] == '-' || d[i] == '_'))
        i++;
    if (i == n) return n < 24 ? -1 : 0;
    if (i == 0 || i > 24 || d[i] != ' ') return 0;
    const uint8_t *eol = memchr(d + i, '\n', n - i);
    size_t e = eol ? (size_t)(eol - d) : n;
    const uint8_t *v = memmem(d + i, e - i, " HTTP/1.", 8);
    if (v && v > d + i + 1) return 1;
    return eol || n == 2048 ? 0 : -1;
}

/* A chunk that does not start HTTP: counted against the bounds above; the
 * flow is given up when they are spent. Returns len (the chunk is used). */
size_t pl_probe_skip(struct pipe_flow *pf, int dir, size_t len)
{
    pf->p->cnt.probe_chunks_skipped++;
    pf->probed[dir] += (uint32_t)(len < PROBE_BYTES ? len : PROBE_BYTES);
    if (++pf->probes[dir] >= PROBE_CHUNKS || pf->probed[dir] >= PROBE_BYTES) {
        pf->http = PF_HTTP_NO;
        pf->p->cnt.non_http_flows++;
    }
    return len;
}

bool pl_start_http(struct pipe_flow *pf)
{
    struct pipeline *p = pf->p;
    const struct h1_limits *l = &p->cfg.h1;
    p->h1_budget.max_bytes = l->memcap;
    /* Over the bounds a new connection is refused (counted, and its flow
     * record says it was not parsed); no live parser is evicted. */
    if ((l->max_conns && p->h1_live >= l->max_conns) ||
        (!p->h1_nfree && l->memcap && p->h1_budget.bytes + h1_conn_base_mem(l) > l->memcap)) {
        p->cnt.h1_refused++;
        pf->http = PF_HTTP_NO;
        return false;
    }
    if (p->h1_nfree) {
        pf->h1 = p->h1_free[--p->h1_nfree];
        h1_conn_reset(pf->h1, on_txn, pf);
    } else {
        pf->h1 = h1_conn_new_in(l, &p->h1_budget, on_txn, pf);
    }
    if (!pf->h1) {
        p->cnt.h1_alloc_failures++;
        pf->http = PF_HTTP_NO;
        return false;
    }
    pf->http = PF_HTTP_YES;
    p->cnt.http_flows++;
    p->h1_live++;
    /* HTTP needs no nDPI verdict: release its state early. */
    if (pf->cls) {
        classify_flow_free(p->cls, pf->cls);
        pf->cls = NULL;
    }
    return true;
}

/* An HTTP/2 parser for the flow (bounded like HTTP/1's: refused past
 * max_conns or the memcap, counted). */
bool pl_start_h2(struct pipe_flow *pf, bool midstream)
{
    struct pipeline *p = pf->p;
    const struct h2_limits *l = &p->cfg.h2;
    p->h2_budget.max_bytes = l->memcap;
    if (l->max_conns && p->h2_live >= l->max_conns) {
        p->cnt.h2_refused++;
        return false;
    }
    pf->h2 = h2_conn_new_in(l, &p->h2_budget, midstream, on_h2_txn, pf);
    if (!pf->h2) {
        p->cnt.h2_alloc_failures++;
        return false;
    }
    pf->http = PF_HTTP_YES;
    pf->was_h2 = true;
    p->cnt.h2_flows++;
    p->h2_live++;
    if (pf->cls) {
        classify_flow_free(p->cls, pf->cls);
        pf->cls = NULL;
    }
    return true;
}

size_t pl_feed_h2(struct pipe_flow *pf, int dir, const uint8_t *d, size_t len, kw_ts ts)
{
    size_t used = h2_feed(pf->h2, dir, d, len, ts);
    if (pf->p->h2_budget.peak > pf->p->cnt.h2_mem_peak)
        pf->p->cnt.h2_mem_peak = pf->p->h2_budget.peak;
    return used;
}

/* HTTP/1 until it hands the connection over (h2c): the rest to HTTP/2. */
size_t pl_feed_http(struct pipe_flow *pf, int dir, const uint8_t *d, size_t len, kw_ts ts)
{
    if (pf->h2) return pl_feed_h2(pf, dir, d, len, ts);
    size_t used = h1_feed(pf->h1, dir, d, len, ts);
    pf->p->cnt.h1_mem_peak = pf->p->h1_budget.peak; /* buffers grow while feeding */
    if (pf->h2 && used < len) used += pl_feed_h2(pf, dir, d + used, len - used, ts);
    return used;
}

/* After a hole, or picked up midstream, the bytes may begin anywhere
 * inside a message: the offset of the first line (within the probed
 * bytes) that is a whole HTTP/1.x start line, or -1. *keep, when asked:
 * where a last line that may still become one begins (len when none),
 * what the caller may hold for the next call. */
static long find_start_line(const uint8_t *d, size_t len, size_t *keep)
{
    size_t n = len < PROBE_BYTES ? len : PROBE_BYTES;
    if (keep) *keep = len;
    for (size_t i = 0; i < n;) {
        int v = pl_looks_http_line(d + i, len - i);
        if (v == 1) return (long)i;
        const uint8_t *nl = memchr(d + i, '\n', n - i);
        if (!nl) {
            if (v < 0 && keep) *keep = i;
            break;
        }
        i = (size_t)(nl - d) + 1;
    }
    return -1;
}

/* A flow still undecided when one of its directions lost bytes: only an
 * HTTP/1 start line makes it HTTP (a first chunk's looser test, a method
 * token and a space, would take any bytes after a hole; before this, the
 * hole itself started a parser, so 1,200 bytes of 'x' after a hole were
 * counted an HTTP flow). The parser is then told of the holes first, so
 * it resynchronises and keeps its request FIFO in step with the loss. */
size_t pl_probe_after_gap(struct pipe_flow *pf, int dir, const uint8_t *d, size_t len, kw_ts ts)
{
    size_t keep;
    long o = find_start_line(d, len, &keep);
    if (o < 0) {
        if (keep == 0) return 0; /* a start line's first bytes: wait for the rest */
        pf->gap[dir] += keep;
        (void)pl_probe_skip(pf, dir, keep);
        return keep; /* a last line that may become a start line is held */
    }
    if (!pl_start_http(pf)) return len;
    pf->gap[dir] += (uint64_t)o;
    for (int k = 0; k < 2; k++)
        if (pf->gap[k]) h1_gap(pf->h1, k, pf->gap[k], ts);
    pf->gap[0] = pf->gap[1] = 0;
    return (size_t)o + pl_feed_http(pf, dir, d + o, len - (size_t)o, ts);
}

/* Has a direction of a midstream flow spent its probe budget? */
static bool probe_spent(const struct pipe_flow *pf, int dir)
{
    return pf->probes[dir] >= PROBE_CHUNKS || pf->probed[dir] >= PROBE_BYTES;
}

/* A flow picked up midstream (no handshake seen), not yet recognised: its
 * first bytes may be the middle of a body, so only a whole HTTP/1.x start
 * line at a line start makes it HTTP, and the parser starts there (before,
 * any midstream flow was taken as HTTP on its first byte: every such flow
 * counted in pipeline.http_flows and held a parser whatever it carried).
 * A trailing line that may be a start line still arriving is kept for the
 * next call. The budget is per direction, and the flow is given up only
 * when both directions have spent theirs: picked up inside a long
 * download, the server's direction spends its budget in the body, and the
 * client's next request must still be found. */
size_t pl_probe_midstream(struct pipe_flow *pf, int dir, const uint8_t *d, size_t len, kw_ts ts)
{
    if (probe_spent(pf, dir)) {
        pf->p->cnt.probe_chunks_skipped++;
        return len; /* this direction's say is over: wait for the other's */
    }
    size_t keep;
    long o = find_start_line(d, len, &keep);
    if (o >= 0) {
        if (!pl_start_http(pf)) return len;
        if (pf->held_ts[dir]) {
            ts = pf->held_ts[dir];
            pf->held_ts[dir] = 0;
        }
        return (size_t)o + pl_feed_http(pf, dir, d + o, len - (size_t)o, ts);
    }
    if (keep == 0) {
        /* a start line's first bytes, nothing else: wait for the rest (not
         * a probe; pl_looks_http_line decides by a newline or 2 KiB) */
        if (!pf->held_ts[dir]) pf->held_ts[dir] = ts;
        return 0;
    }
    pf->held_ts[dir] = keep < len ? ts : 0;
    pf->p->cnt.probe_chunks_skipped++;
    pf->probed[dir] += (uint32_t)(keep < PROBE_BYTES ? keep : PROBE_BYTES);
    if (++pf->probes[dir] >= PROBE_CHUNKS || pf->probed[dir] >= PROBE_BYTES) {
        if (probe_spent(pf, !dir)) {
            pf->http = PF_HTTP_NO;
            pf->p->cnt.non_http_flows++;
            return len;
        }
    }
    return keep;
}
