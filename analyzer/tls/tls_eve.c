/* tls_eve: the `tls` EVE object (see tls_eve.h). Optional fields are left
 * out when unknown, as Suricata does. */
#include "tls_eve.h"

static void cert_fields(struct kw_jw *w, const struct tls_cert *c)
{
    kw_jw_str_opt(w, "subject", c->subject);
    kw_jw_str_opt(w, "issuerdn", c->issuer);
    kw_jw_str_opt(w, "serial", c->serial);
    kw_jw_str_opt(w, "fingerprint", c->sha1);
    kw_jw_str_opt(w, "notbefore", c->not_before);
    kw_jw_str_opt(w, "notafter", c->not_after);
    if (c->n_san) {
        kw_jw_arr_begin(w, "subjectaltname");
        for (unsigned i = 0; i < c->n_san; i++)
            kw_jw_str(w, NULL, c->san[i]);
        kw_jw_arr_end(w);
    }
}

static void ints(struct kw_jw *w, const char *key, const uint16_t *v, size_t n, size_t max)
{
    size_t k = n < max ? n : max;
    if (!k)
        return;
    kw_jw_arr_begin(w, key);
    for (size_t i = 0; i < k; i++)
        kw_jw_int(w, NULL, v[i]);
    kw_jw_arr_end(w);
}

static void alpn(struct kw_jw *w, const struct tls_alpn *a)
{
    kw_jw_strn(w, NULL, (const char *)a->b, a->len);
}

static void fp(struct kw_jw *w, const char *key, const char *hash, const char *str)
{
    if (!hash[0])
        return;
    kw_jw_obj_begin(w, key);
    kw_jw_str(w, "hash", hash);
    kw_jw_str(w, "string", str);
    kw_jw_obj_end(w);
}

static void handshakes(struct kw_jw *w, const struct tls_info *i)
{
    const struct tls_client_hello *ch = &i->ch;
    if (i->have_ch) {
        kw_jw_obj_begin(w, "client_handshake");
        kw_jw_str(w, "version", tls_version_name(ch->legacy_version));
        ints(w, "ciphers", ch->ciphers, ch->n_ciphers, TLS_HS_MAX_CIPHERS);
        ints(w, "exts", ch->exts, ch->n_exts, TLS_HS_MAX_EXTS);
        ints(w, "sig_algs", ch->sig_algs, ch->n_sig_algs, TLS_HS_MAX_SIGALGS);
        kw_jw_obj_end(w);
        if (ch->n_alpn) {
            kw_jw_arr_begin(w, "client_alpns");
            for (unsigned k = 0; k < ch->n_alpn; k++)
                alpn(w, &ch->alpn[k]);
            kw_jw_arr_end(w);
        }
    }
    if (i->have_sh) {
        kw_jw_obj_begin(w, "server_handshake");
        kw_jw_str(w, "version", tls_version_name(i->sh.version));
        kw_jw_int(w, "cipher", i->sh.cipher);
        ints(w, "exts", i->sh.exts, i->sh.n_exts, TLS_HS_MAX_EXTS);
        kw_jw_obj_end(w);
        if (i->sh.has_alpn) {
            kw_jw_arr_begin(w, "server_alpns");
            alpn(w, &i->sh.alpn);
            kw_jw_arr_end(w);
        }
    }
}

void tls_eve_jw(struct kw_jw *w, const struct tls_info *i)
{
    kw_jw_obj_begin(w, "tls");
    if (i->ch.has_sni)
        kw_jw_str(w, "sni", i->ch.sni);
    kw_jw_str(w, "version", i->have_sh ? tls_version_name(i->version) : "UNDETERMINED");
    if (i->srv_cert.present)
        cert_fields(w, &i->srv_cert);
    if (i->resumed)
        kw_jw_bool(w, "session_resumed", true);
    fp(w, "ja3", i->ja3, i->ja3_str);
    fp(w, "ja3s", i->ja3s, i->ja3s_str);
    kw_jw_str_opt(w, "ja4", i->ja4);
    handshakes(w, i);
    if (i->cli_cert.present) {
        kw_jw_obj_begin(w, "client");
        cert_fields(w, &i->cli_cert);
        kw_jw_obj_end(w);
    }
    /* keywarden's own */
    kw_jw_str_opt(w, "ja4s", i->ja4s);
    char a[TLS_HS_ALPN_LEN + 1];
    tls_info_alpn(i, a, sizeof a);
    kw_jw_str_opt(w, "alpn", a);
    if (i->srv_cert.present)
        kw_jw_str(w, "cert_sha256", i->srv_cert.sha256);
    if (i->cli_cert.present) {
        kw_jw_obj_begin(w, "client_cert");
        kw_jw_str(w, "sha256", i->cli_cert.sha256);
        kw_jw_str_opt(w, "subject", i->cli_cert.subject);
        kw_jw_obj_end(w);
    }
    kw_jw_bool(w, "decrypted", i->decrypted);
    kw_jw_obj_end(w);
}
