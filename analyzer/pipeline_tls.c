/* pipeline_tls: TLS sessions as transactions and records (see
 * pipeline_tls.h). */
#include "pipeline_tls.h"

#include <stdio.h>
#include <string.h>

#include "kw_eve.h"
#include "kw_jw.h"
#include "tls_eve.h"

void ptls_flow_fields(struct kw_txn *t, const struct flow *f)
{
    t->flow_id = f->id;
    t->src = f->cli;
    t->dst = f->srv;
    t->sport = f->cli_port;
    t->dport = f->srv_port;
    t->tunnel_type = f->tunnel.type;
    t->tunnel_id = f->tunnel.id;
    t->vlan = f->vlan;
}

static void tls_ref(struct kw_tls_ref *r, const struct tls_info *ti)
{
    r->decrypted = ti->decrypted;
    snprintf(r->sni, sizeof r->sni, "%s", ti->ch.sni);
    snprintf(r->ja4, sizeof r->ja4, "%s", ti->ja4);
    snprintf(r->version, sizeof r->version, "%s",
             ti->have_sh ? tls_version_name(ti->version) : "UNDETERMINED");
}

/* The CN of a one-line subject, for hints: "O=Acme, CN=acme-etl" -> "acme-etl". */
static void cn_hint(const char *subject, char *out, size_t size)
{
    const char *cn = strstr(subject, "CN=");
    const char *from = cn ? cn + 3 : subject;
    size_t n = cn ? strcspn(from, ",") : strlen(from);
    if (n >= size)
        n = size - 1;
    memcpy(out, from, n);
    out[n] = 0;
}

static void cert_cred(struct kw_cred *c, const struct tls_cert *cert)
{
    if (!cert->present)
        return;
    c->kind = KW_CRED_CLIENT_CERT;
    snprintf(c->source, sizeof c->source, "tls:client_certificate");
    snprintf(c->fingerprint, sizeof c->fingerprint, "sha256:%s", cert->sha256);
    cn_hint(cert->subject, c->hint, sizeof c->hint);
    snprintf(c->cert_subject, sizeof c->cert_subject, "%s", cert->subject);
}

void ptls_session_txn(struct kw_txn *t, const struct flow *f, const struct tls_info *ti, kw_ts ts)
{
    kw_txn_clear(t);
    ptls_flow_fields(t, f);
    t->ts = ti->have_ch && ti->ts_start ? ti->ts_start : ts;
    t->flags = KW_TXN_F(TLS_SESSION);
    snprintf(t->protocol, sizeof t->protocol, "TLS");
    snprintf(t->hostname, sizeof t->hostname, "%s", ti->ch.sni);
    /* judged at the handshake: no volume yet (req_len/resp_len stay 0) */
    tls_ref(&t->tls, ti);
    cert_cred(&t->cred, &ti->cli_cert);
}

void ptls_http_txn(struct kw_txn *t, const struct tls_info *ti)
{
    t->flags |= KW_TXN_F(TLS);
    tls_ref(&t->tls, ti);
    if (t->cred.kind == KW_CRED_NONE)
        cert_cred(&t->cred, &ti->cli_cert);
}

size_t ptls_format_record(char *buf, size_t size, const struct kw_txn *t, const struct tls_info *ti)
{
    struct kw_jw w;
    kw_jw_init(&w, buf, size);
    kw_jw_obj_begin(&w, NULL);
    kw_eve_jw_txn_header(&w, t, "tls", t->ts);
    tls_eve_jw(&w, ti);
    kw_eve_jw_cred(&w, t);
    kw_eve_jw_identity(&w, t);
    kw_jw_obj_end(&w);
    return kw_jw_ok(&w) ? w.len : 0;
}
