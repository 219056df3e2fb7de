/* fleet_wire: encoding and decoding of fleet records (see fleet_wire.h).
 *
 * Head (FW_HEAD_SIZE bytes, little endian):
 *   0 'K'  1 version  2 kind  3 flags  4 partition u32  8 epoch u64
 *   16 pseq u64  24 gseq u64  32 time i64
 * then the sensor name and the body. Integers are LEB128 varints (signed
 * ones zigzag-coded, as protobuf does), strings a varint length and the
 * bytes without NUL, addresses a family byte, a length and the address
 * bytes up to the last non-zero one. A string longer than its field could
 * hold, a value out of its field's range or bytes left over make the
 * record malformed: a decoder never cuts or guesses. */
#include "fleet_wire.h"

#include <string.h>

#include "kw_rd.h"

#define FW_MAGIC 0x4B /* 'K' */

/* ---- writer ------------------------------------------------------------ */

struct wr {
    uint8_t *p;
    size_t size, len;
    bool bad;
};

static void w_bytes(struct wr *w, const void *b, size_t n)
{
    if (w->bad || w->size - w->len < n) {
        w->bad = true;
        return;
    }
    memcpy(w->p + w->len, b, n);
    w->len += n;
}

static void w_u8(struct wr *w, uint8_t v)
{
    w_bytes(w, &v, 1);
}

static void w_le(struct wr *w, uint64_t v, unsigned n)
{
    uint8_t b[8];
    for (unsigned i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    w_bytes(w, b, n);
}

static void w_var(struct wr *w, uint64_t v)
{
    uint8_t b[10];
    unsigned n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) b[n] |= 0x80;
        n++;
    } while (v);
    w_bytes(w, b, n);
}

static void w_zz(struct wr *w, int64_t v)
{
    w_var(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* A NUL-terminated field of `cap` bytes (at most cap - 1 are text). */
static void w_str(struct wr *w, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap - 1);
    w_var(w, n);
    w_bytes(w, s, n);
}

#define W_STR(w, field) w_str((w), (field), sizeof(field))

static void w_addr(struct wr *w, const struct kw_addr *a)
{
    unsigned n = sizeof a->a;
    while (n && !a->a[n - 1])
        n--;
    w_u8(w, a->family);
    w_u8(w, (uint8_t)n);
    w_bytes(w, a->a, n);
}

/* ---- reader ------------------------------------------------------------ */

static uint64_t r_var(struct kw_rd *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t b = kw_rd_u8(r);
        if (!kw_rd_ok(r)) return 0;
        if (shift == 63 && b > 1) break; /* more than 64 bits */
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    r->bad = true;
    return 0;
}

/* A varint that must fit `max`. */
static uint64_t r_max(struct kw_rd *r, uint64_t max)
{
    uint64_t v = r_var(r);
    if (v > max) r->bad = true;
    return v > max ? 0 : v;
}

static int64_t r_zz(struct kw_rd *r)
{
    uint64_t v = r_var(r);
    return (int64_t)((v >> 1) ^ (~(v & 1) + 1));
}

static uint64_t r_le(struct kw_rd *r, unsigned n)
{
    if (!kw_rd_need(r, n)) return 0;
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)r->p[r->off + i] << (8 * i);
    r->off += n;
    return v;
}

static void r_str(struct kw_rd *r, char *dst, size_t cap)
{
    uint64_t n = r_var(r);
    if (!kw_rd_ok(r) || n >= cap || !kw_rd_need(r, n) || memchr(kw_rd_ptr(r), 0, n)) {
        r->bad = true;
        dst[0] = 0;
        return;
    }
    memcpy(dst, kw_rd_ptr(r), n);
    dst[n] = 0;
    r->off += n;
}

#define R_STR(r, field) r_str((r), (field), sizeof(field))

static void r_addr(struct kw_rd *r, struct kw_addr *a)
{
    a->family = kw_rd_u8(r);
    uint8_t n = kw_rd_u8(r);
    if (n > sizeof a->a || !kw_rd_need(r, n)) {
        r->bad = true;
        return;
    }
    memcpy(a->a, kw_rd_ptr(r), n);
    r->off += n;
}

/* ---- bodies: each field once, in the same order on both sides ---------- */

static void enc_cred(struct wr *w, const struct kw_cred *c)
{
    w_var(w, c->kind);
    W_STR(w, c->source);
    W_STR(w, c->fingerprint);
    W_STR(w, c->hint);
    W_STR(w, c->basic_user);
    const struct kw_jwt_claims *j = &c->jwt;
    W_STR(w, j->iss);
    W_STR(w, j->sub);
    W_STR(w, j->aud);
    W_STR(w, j->client_id);
    W_STR(w, j->alg);
    w_zz(w, j->exp);
    w_zz(w, j->iat);
    w_var(w, (uint64_t)j->has_exp | (uint64_t)j->has_iat << 1);
    /* version 2 (issue 17): grants, session age, DPoP binding and proof */
    W_STR(w, j->scope);
    w_zz(w, j->auth_time);
    W_STR(w, j->cnf_jkt);
    const struct kw_dpop *d = &c->dpop;
    w_var(w, (uint64_t)j->has_scope | (uint64_t)j->has_auth_time << 1 |
                 (uint64_t)c->dpop_scheme << 2 | (uint64_t)d->sig_valid << 3 |
                 (uint64_t)d->has_iat << 4 | (uint64_t)d->has_ath << 5 |
                 (uint64_t)d->ath_match << 6);
    w_var(w, d->state);
    w_zz(w, d->iat);
    W_STR(w, d->alg);
    W_STR(w, d->htm);
    W_STR(w, d->htu);
    W_STR(w, d->jti);
    W_STR(w, d->jkt);
    W_STR(w, d->ath);
    W_STR(w, d->error);
}

static void dec_cred(struct kw_rd *r, struct kw_cred *c)
{
    c->kind = (uint8_t)r_max(r, UINT8_MAX);
    R_STR(r, c->source);
    R_STR(r, c->fingerprint);
    R_STR(r, c->hint);
    R_STR(r, c->basic_user);
    struct kw_jwt_claims *j = &c->jwt;
    R_STR(r, j->iss);
    R_STR(r, j->sub);
    R_STR(r, j->aud);
    R_STR(r, j->client_id);
    R_STR(r, j->alg);
    j->exp = r_zz(r);
    j->iat = r_zz(r);
    uint64_t bits = r_max(r, 3);
    j->has_exp = bits & 1;
    j->has_iat = (bits >> 1) & 1;
    R_STR(r, j->scope);
    j->auth_time = r_zz(r);
    R_STR(r, j->cnf_jkt);
    struct kw_dpop *d = &c->dpop;
    bits = r_max(r, 127);
    j->has_scope = bits & 1;
    j->has_auth_time = (bits >> 1) & 1;
    c->dpop_scheme = (bits >> 2) & 1;
    d->sig_valid = (bits >> 3) & 1;
    d->has_iat = (bits >> 4) & 1;
    d->has_ath = (bits >> 5) & 1;
    d->ath_match = (bits >> 6) & 1;
    d->state = (uint8_t)r_max(r, KW_DPOP_BAD);
    d->iat = r_zz(r);
    R_STR(r, d->alg);
    R_STR(r, d->htm);
    R_STR(r, d->htu);
    R_STR(r, d->jti);
    R_STR(r, d->jkt);
    R_STR(r, d->ath);
    R_STR(r, d->error);
}

static void enc_txn(struct wr *w, const struct kw_txn *t)
{
    w_var(w, t->flow_id);
    w_zz(w, t->ts);
    w_zz(w, t->resp_ts);
    w_addr(w, &t->src);
    w_addr(w, &t->dst);
    w_var(w, t->sport);
    w_var(w, t->dport);
    w_var(w, t->tunnel_type);
    w_var(w, t->tunnel_id);
    w_var(w, t->vlan);
    W_STR(w, t->method);
    W_STR(w, t->protocol);
    W_STR(w, t->hostname);
    W_STR(w, t->url);
    W_STR(w, t->path);
    W_STR(w, t->template_);
    W_STR(w, t->user_agent);
    w_zz(w, t->status);
    w_var(w, t->resp_len);
    w_var(w, t->req_len);
    w_var(w, t->flags);
    enc_cred(w, &t->cred);
    W_STR(w, t->identity.id);
    W_STR(w, t->identity.name);
    W_STR(w, t->identity.kind);
    /* TLS (issue 12): the client certificate's subject, the session */
    W_STR(w, t->cred.cert_subject);
    w_var(w, t->tls.decrypted);
    W_STR(w, t->tls.sni);
    W_STR(w, t->tls.ja4);
    W_STR(w, t->tls.version);
    /* version 3 (issue 11): HTTP/2 stream, gRPC status and message */
    w_var(w, t->stream_id);
    w_var(w, t->has_grpc_status);
    w_zz(w, t->grpc_status);
    W_STR(w, t->grpc_message);
    /* version 4 (issue 15): what the request asked the backend to run
     * instead; the judge works out the effective method and path itself */
    W_STR(w, t->ovr_method);
    w_var(w, t->ovr_method_src);
    W_STR(w, t->ovr_url);
    w_var(w, t->ovr_url_src);
    /* version 5 (issue 15): how the identity was attributed */
    W_STR(w, t->identity.via);
    /* version 6 (issue 10): the path segments the answer named back
     * (echo.h), so central judges learn templates as a sensor would */
    w_var(w, t->resp_echo);
}

static void dec_txn(struct kw_rd *r, struct kw_txn *t)
{
    memset(t, 0, sizeof *t);
    t->flow_id = r_var(r);
    t->ts = r_zz(r);
    t->resp_ts = r_zz(r);
    r_addr(r, &t->src);
    r_addr(r, &t->dst);
    t->sport = (uint16_t)r_max(r, UINT16_MAX);
    t->dport = (uint16_t)r_max(r, UINT16_MAX);
    t->tunnel_type = (uint8_t)r_max(r, UINT8_MAX);
    t->tunnel_id = (uint32_t)r_max(r, UINT32_MAX);
    t->vlan = (uint16_t)r_max(r, UINT16_MAX);
    R_STR(r, t->method);
    R_STR(r, t->protocol);
    R_STR(r, t->hostname);
    R_STR(r, t->url);
    R_STR(r, t->path);
    R_STR(r, t->template_);
    R_STR(r, t->user_agent);
    int64_t st = r_zz(r);
    if (st < INT32_MIN || st > INT32_MAX) r->bad = true;
    t->status = (int)st;
    t->resp_len = r_var(r);
    t->req_len = r_var(r);
    t->flags = (uint32_t)r_max(r, UINT32_MAX);
    dec_cred(r, &t->cred);
    R_STR(r, t->identity.id);
    R_STR(r, t->identity.name);
    R_STR(r, t->identity.kind);
    R_STR(r, t->cred.cert_subject);
    t->tls.decrypted = r_max(r, 1) != 0;
    R_STR(r, t->tls.sni);
    R_STR(r, t->tls.ja4);
    R_STR(r, t->tls.version);
    t->stream_id = (uint32_t)r_max(r, UINT32_MAX);
    t->has_grpc_status = r_max(r, 1) != 0;
    int64_t g = r_zz(r);
    if (g < INT32_MIN || g > INT32_MAX) r->bad = true;
    t->grpc_status = (int32_t)g;
    R_STR(r, t->grpc_message);
    R_STR(r, t->ovr_method);
    t->ovr_method_src = (uint8_t)r_max(r, KW_OVR__COUNT - 1);
    R_STR(r, t->ovr_url);
    t->ovr_url_src = (uint8_t)r_max(r, KW_OVR__COUNT - 1);
    R_STR(r, t->identity.via);
    t->resp_echo = (uint32_t)r_max(r, UINT32_MAX);
}

static void enc_flow(struct wr *w, const struct fw_flow *x)
{
    const struct flow *f = &x->f;
    w_var(w, f->id);
    w_addr(w, &f->cli);
    w_addr(w, &f->srv);
    w_var(w, f->cli_port);
    w_var(w, f->srv_port);
    w_var(w, f->proto);
    w_var(w, f->ip_version);
    w_var(w, f->tunnel.type);
    w_var(w, f->tunnel.id);
    w_var(w, f->vlan);
    w_zz(w, f->first_ts);
    w_zz(w, f->last_ts);
    for (int d = 0; d < 2; d++) {
        w_var(w, f->pkts[d]);
        w_var(w, f->bytes[d]);
        w_var(w, f->gaps[d]);
        w_var(w, f->gap_bytes[d]);
    }
    w_var(w, f->tcp_state);
    w_var(w, (uint64_t)f->midstream | (uint64_t)f->roles_guessed << 1);
    W_STR(w, x->app);
    W_STR(w, x->sni);
    w_zz(w, x->http_txns);
    w_var(w, x->why);
    w_zz(w, x->ts);
}

static void dec_flow(struct kw_rd *r, struct fw_flow *x)
{
    memset(x, 0, sizeof *x);
    struct flow *f = &x->f;
    f->id = r_var(r);
    r_addr(r, &f->cli);
    r_addr(r, &f->srv);
    f->cli_port = (uint16_t)r_max(r, UINT16_MAX);
    f->srv_port = (uint16_t)r_max(r, UINT16_MAX);
    f->proto = (uint8_t)r_max(r, UINT8_MAX);
    f->ip_version = (uint8_t)r_max(r, UINT8_MAX);
    f->tunnel.type = (uint8_t)r_max(r, UINT8_MAX);
    f->tunnel.id = (uint32_t)r_max(r, UINT32_MAX);
    f->vlan = (uint16_t)r_max(r, UINT16_MAX);
    f->first_ts = r_zz(r);
    f->last_ts = r_zz(r);
    for (int d = 0; d < 2; d++) {
        f->pkts[d] = r_var(r);
        f->bytes[d] = r_var(r);
        f->gaps[d] = r_var(r);
        f->gap_bytes[d] = r_var(r);
    }
    f->tcp_state = (uint8_t)r_max(r, UINT8_MAX);
    uint64_t bits = r_max(r, 3);
    f->midstream = bits & 1;
    f->roles_guessed = (bits >> 1) & 1;
    R_STR(r, x->app);
    R_STR(r, x->sni);
    x->http_txns = r_zz(r);
    x->why = (uint8_t)r_max(r, UINT8_MAX);
    x->ts = r_zz(r);
}

/* Fixed arrays go up to their last non-zero element (what follows is
 * zero by construction, and comes back zero). */
static void w_u16s(struct wr *w, const uint16_t *a, size_t max)
{
    size_t n = max;
    while (n && !a[n - 1])
        n--;
    w_var(w, n);
    for (size_t i = 0; i < n; i++)
        w_var(w, a[i]);
}

static void r_u16s(struct kw_rd *r, uint16_t *a, size_t max)
{
    uint64_t n = r_max(r, max);
    for (uint64_t i = 0; i < n; i++)
        a[i] = (uint16_t)r_max(r, UINT16_MAX);
}

static void w_u8s(struct wr *w, const uint8_t *a, size_t max)
{
    size_t n = max;
    while (n && !a[n - 1])
        n--;
    w_var(w, n);
    w_bytes(w, a, n);
}

static void r_u8s(struct kw_rd *r, uint8_t *a, size_t max)
{
    uint64_t n = r_max(r, max);
    if (!kw_rd_need(r, n)) return;
    memcpy(a, kw_rd_ptr(r), n);
    r->off += n;
}

#define W_ARR(w, a) _Generic((a)[0], uint16_t: w_u16s, uint8_t: w_u8s)((w), (a), sizeof(a) / sizeof((a)[0]))
#define R_ARR(r, a) _Generic((a)[0], uint16_t: r_u16s, uint8_t: r_u8s)((r), (a), sizeof(a) / sizeof((a)[0]))

static void enc_alpn(struct wr *w, const struct tls_alpn *a)
{
    w_var(w, a->len);
    w_var(w, a->full_len);
    w_var(w, a->last);
    W_ARR(w, a->b);
}

static void dec_alpn(struct kw_rd *r, struct tls_alpn *a)
{
    a->len = (uint8_t)r_max(r, UINT8_MAX);
    a->full_len = (uint8_t)r_max(r, UINT8_MAX);
    a->last = (uint8_t)r_max(r, UINT8_MAX);
    R_ARR(r, a->b);
}

static void enc_ch(struct wr *w, const struct tls_client_hello *c)
{
    w_var(w, c->legacy_version);
    W_ARR(w, c->random);
    w_var(w, c->sid_len);
    W_ARR(w, c->sid);
    W_ARR(w, c->ciphers);
    W_ARR(w, c->exts);
    W_ARR(w, c->groups);
    W_ARR(w, c->sig_algs);
    W_ARR(w, c->versions);
    W_ARR(w, c->formats);
    w_var(w, c->n_ciphers);
    w_var(w, c->n_exts);
    w_var(w, c->n_groups);
    w_var(w, c->n_sig_algs);
    w_var(w, c->n_versions);
    w_var(w, c->n_formats);
    for (int i = 0; i < TLS_HS_MAX_ALPN; i++)
        enc_alpn(w, &c->alpn[i]);
    w_var(w, c->n_alpn);
    w_var(w, (uint64_t)c->has_sni | (uint64_t)c->has_alpn << 1 | (uint64_t)c->truncated << 2);
    W_STR(w, c->sni);
}

static void dec_ch(struct kw_rd *r, struct tls_client_hello *c)
{
    c->legacy_version = (uint16_t)r_max(r, UINT16_MAX);
    R_ARR(r, c->random);
    c->sid_len = (uint8_t)r_max(r, UINT8_MAX);
    R_ARR(r, c->sid);
    R_ARR(r, c->ciphers);
    R_ARR(r, c->exts);
    R_ARR(r, c->groups);
    R_ARR(r, c->sig_algs);
    R_ARR(r, c->versions);
    R_ARR(r, c->formats);
    c->n_ciphers = (uint16_t)r_max(r, UINT16_MAX);
    c->n_exts = (uint16_t)r_max(r, UINT16_MAX);
    c->n_groups = (uint16_t)r_max(r, UINT16_MAX);
    c->n_sig_algs = (uint16_t)r_max(r, UINT16_MAX);
    c->n_versions = (uint16_t)r_max(r, UINT16_MAX);
    c->n_formats = (uint16_t)r_max(r, UINT16_MAX);
    for (int i = 0; i < TLS_HS_MAX_ALPN; i++)
        dec_alpn(r, &c->alpn[i]);
    c->n_alpn = (uint8_t)r_max(r, UINT8_MAX);
    uint64_t b = r_max(r, 7);
    c->has_sni = b & 1;
    c->has_alpn = (b >> 1) & 1;
    c->truncated = (b >> 2) & 1;
    R_STR(r, c->sni);
}

static void enc_sh(struct wr *w, const struct tls_server_hello *h)
{
    w_var(w, h->legacy_version);
    w_var(w, h->version);
    W_ARR(w, h->random);
    w_var(w, h->sid_len);
    W_ARR(w, h->sid);
    w_var(w, h->cipher);
    w_var(w, h->compression);
    W_ARR(w, h->exts);
    w_var(w, h->n_exts);
    enc_alpn(w, &h->alpn);
    w_var(w, (uint64_t)h->has_alpn | (uint64_t)h->hrr << 1 | (uint64_t)h->etm << 2 |
                 (uint64_t)h->truncated << 3);
}

static void dec_sh(struct kw_rd *r, struct tls_server_hello *h)
{
    h->legacy_version = (uint16_t)r_max(r, UINT16_MAX);
    h->version = (uint16_t)r_max(r, UINT16_MAX);
    R_ARR(r, h->random);
    h->sid_len = (uint8_t)r_max(r, UINT8_MAX);
    R_ARR(r, h->sid);
    h->cipher = (uint16_t)r_max(r, UINT16_MAX);
    h->compression = (uint8_t)r_max(r, UINT8_MAX);
    R_ARR(r, h->exts);
    h->n_exts = (uint16_t)r_max(r, UINT16_MAX);
    dec_alpn(r, &h->alpn);
    uint64_t b = r_max(r, 15);
    h->has_alpn = b & 1;
    h->hrr = (b >> 1) & 1;
    h->etm = (b >> 2) & 1;
    h->truncated = (b >> 3) & 1;
}

static void enc_cert(struct wr *w, const struct tls_cert *c)
{
    w_var(w, (uint64_t)c->present | (uint64_t)c->cut << 1);
    W_STR(w, c->subject);
    W_STR(w, c->issuer);
    W_STR(w, c->serial);
    W_STR(w, c->sha1);
    W_STR(w, c->sha256);
    W_STR(w, c->not_before);
    W_STR(w, c->not_after);
    for (int i = 0; i < TLS_X509_MAX_SAN; i++)
        W_STR(w, c->san[i]);
    w_var(w, c->n_san);
}

static void dec_cert(struct kw_rd *r, struct tls_cert *c)
{
    uint64_t b = r_max(r, 3);
    c->present = b & 1;
    c->cut = (b >> 1) & 1;
    R_STR(r, c->subject);
    R_STR(r, c->issuer);
    R_STR(r, c->serial);
    R_STR(r, c->sha1);
    R_STR(r, c->sha256);
    R_STR(r, c->not_before);
    R_STR(r, c->not_after);
    for (int i = 0; i < TLS_X509_MAX_SAN; i++)
        R_STR(r, c->san[i]);
    c->n_san = (uint8_t)r_max(r, UINT8_MAX);
}

static void enc_tls(struct wr *w, const struct tls_info *t)
{
    w_var(w, (uint64_t)t->have_ch | (uint64_t)t->have_sh << 1 | (uint64_t)t->hrr << 2 |
                 (uint64_t)t->resumed << 3 | (uint64_t)t->midstream << 4 |
                 (uint64_t)t->decrypted << 5 | (uint64_t)t->keys_found << 6);
    w_var(w, t->version);
    enc_ch(w, &t->ch);
    enc_sh(w, &t->sh);
    W_STR(w, t->ja3);
    W_STR(w, t->ja3s);
    W_STR(w, t->ja4);
    W_STR(w, t->ja4s);
    W_STR(w, t->ja3_str);
    W_STR(w, t->ja3s_str);
    enc_cert(w, &t->srv_cert);
    enc_cert(w, &t->cli_cert);
    w_var(w, t->srv_chain);
    w_var(w, t->cli_chain);
    w_zz(w, t->ts_start);
    for (int d = 0; d < 2; d++) {
        w_var(w, t->bytes[d]);
        w_var(w, t->plain[d]);
    }
}

static void dec_tls(struct kw_rd *r, struct tls_info *t)
{
    memset(t, 0, sizeof *t);
    uint64_t b = r_max(r, 127);
    t->have_ch = b & 1;
    t->have_sh = (b >> 1) & 1;
    t->hrr = (b >> 2) & 1;
    t->resumed = (b >> 3) & 1;
    t->midstream = (b >> 4) & 1;
    t->decrypted = (b >> 5) & 1;
    t->keys_found = (b >> 6) & 1;
    t->version = (uint16_t)r_max(r, UINT16_MAX);
    dec_ch(r, &t->ch);
    dec_sh(r, &t->sh);
    R_STR(r, t->ja3);
    R_STR(r, t->ja3s);
    R_STR(r, t->ja4);
    R_STR(r, t->ja4s);
    R_STR(r, t->ja3_str);
    R_STR(r, t->ja3s_str);
    dec_cert(r, &t->srv_cert);
    dec_cert(r, &t->cli_cert);
    t->srv_chain = (uint16_t)r_max(r, UINT16_MAX);
    t->cli_chain = (uint16_t)r_max(r, UINT16_MAX);
    t->ts_start = r_zz(r);
    for (int d = 0; d < 2; d++) {
        t->bytes[d] = r_var(r);
        t->plain[d] = r_var(r);
    }
}

static void enc_mark(struct wr *w, const struct fw_mark *m)
{
    w_var(w, m->records);
    w_var(w, m->dropped);
}

static void dec_mark(struct kw_rd *r, struct fw_mark *m)
{
    memset(m, 0, sizeof *m);
    m->records = r_var(r);
    m->dropped = r_var(r);
}

/* ---- records ----------------------------------------------------------- */

size_t fw_max_size(void)
{
    /* every string full (its bytes plus a 2-byte length), every integer
     * 10 bytes: far more than any real record */
    return FW_HEAD_SIZE + FW_SENSOR_MAX + 2 * sizeof(struct kw_txn) + 3 * sizeof(struct tls_info) +
           512;
}

bool fw_sensor_name_ok(const char *s)
{
    size_t n = strnlen(s, FW_SENSOR_MAX);
    if (!n || n >= FW_SENSOR_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

size_t fw_encode(const struct fw_head *h, const struct fw_body *b, uint8_t *buf, size_t size)
{
    if (!fw_sensor_name_ok(h->sensor)) return 0;
    struct wr w = {.p = buf, .size = size};
    w_u8(&w, FW_MAGIC);
    w_u8(&w, FW_VERSION);
    w_u8(&w, h->kind);
    w_u8(&w, h->flags);
    w_le(&w, h->partition, 4);
    w_le(&w, h->epoch, 8);
    w_le(&w, h->pseq, 8);
    w_le(&w, h->gseq, 8);
    w_le(&w, (uint64_t)h->time, 8);
    W_STR(&w, h->sensor);
    switch (h->kind) {
    case FW_TXN: enc_txn(&w, b->txn); break;
    case FW_FLOW: enc_flow(&w, b->flow); break;
    case FW_MARK: enc_mark(&w, b->mark); break;
    case FW_TLS:
        enc_txn(&w, b->txn);
        enc_tls(&w, b->tls);
        break;
    default: return 0;
    }
    return w.bad ? 0 : w.len;
}

enum kw_err fw_decode(const uint8_t *p, size_t len, struct fw_head *h, const struct fw_body *b)
{
    struct kw_rd r;
    kw_rd_init(&r, p, len);
    memset(h, 0, sizeof *h);
    if (kw_rd_u8(&r) != FW_MAGIC) return KW_E_MALFORMED;
    uint8_t version = kw_rd_u8(&r);
    if (!kw_rd_ok(&r) || version == 0) return KW_E_MALFORMED;
    /* sensors and judges of one fleet run one release: a record of another
     * layout is refused whole, never half-read */
    if (version != FW_VERSION) return KW_E_UNSUPPORTED;
    h->kind = kw_rd_u8(&r);
    h->flags = kw_rd_u8(&r);
    h->partition = (uint32_t)r_le(&r, 4);
    h->epoch = r_le(&r, 8);
    h->pseq = r_le(&r, 8);
    h->gseq = r_le(&r, 8);
    h->time = (kw_ts)r_le(&r, 8);
    R_STR(&r, h->sensor);
    if (!kw_rd_ok(&r) || !fw_sensor_name_ok(h->sensor)) return KW_E_MALFORMED;
    if (!b) return h->kind >= FW_TXN && h->kind <= FW_TLS ? KW_E_OK : KW_E_MALFORMED;
    switch (h->kind) {
    case FW_TXN:
        if (!b->txn) return KW_E_INVAL;
        dec_txn(&r, b->txn);
        break;
    case FW_FLOW:
        if (!b->flow) return KW_E_INVAL;
        dec_flow(&r, b->flow);
        break;
    case FW_MARK:
        if (!b->mark) return KW_E_INVAL;
        dec_mark(&r, b->mark);
        break;
    case FW_TLS:
        if (!b->txn || !b->tls) return KW_E_INVAL;
        dec_txn(&r, b->txn);
        dec_tls(&r, b->tls);
        break;
    default: return KW_E_MALFORMED;
    }
    /* version 1 is the only one yet; a later version's decoder stops here
     * for older records, leaving the fields it added zero */
    if (!kw_rd_ok(&r) || kw_rd_left(&r) != 0) return KW_E_MALFORMED;
    return KW_E_OK;
}

void fw_set_pseq(uint8_t *buf, uint64_t pseq)
{
    for (unsigned i = 0; i < 8; i++)
        buf[FW_PSEQ_OFFSET + i] = (uint8_t)(pseq >> (8 * i));
}

/* ---- partitions -------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint32_t reduce(uint64_t z, uint32_t partitions)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return partitions ? (uint32_t)(z % partitions) : 0;
}

uint32_t fw_partition_addr(const struct kw_addr *a, uint32_t partitions)
{
    uint64_t h = fnv(0xcbf29ce484222325ULL, "a", 1);
    h = fnv(h, &a->family, 1);
    return reduce(fnv(h, a->a, sizeof a->a), partitions);
}

uint32_t fw_partition_txn(const struct kw_txn *t, uint32_t partitions)
{
    size_t n = strnlen(t->identity.id, sizeof t->identity.id);
    if (!n) return fw_partition_addr(&t->src, partitions);
    uint64_t h = fnv(0xcbf29ce484222325ULL, "i", 1);
    return reduce(fnv(h, t->identity.id, n), partitions);
}
