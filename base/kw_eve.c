/* kw_eve: EVE JSON line writer and the common parts of records built from
 * a transaction (see kw_eve.h). Field names follow Suricata's EVE so jq,
 * Filebeat and friends read them unchanged. */
#include "kw_eve.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kw_addr.h"
#include "kw_json.h"
#include "kw_log.h"

struct kw_eve {
    FILE *f;
    bool is_stdout;
    pthread_mutex_t mu;
};

enum kw_err kw_eve_open(const char *path, struct kw_eve **out)
{
    struct kw_eve *e = calloc(1, sizeof *e);
    if (!e)
        return KW_E_NOMEM;
    if (strcmp(path, "-") == 0) {
        e->f = stdout;
        e->is_stdout = true;
    } else {
        e->f = fopen(path, "a");
        if (!e->f) {
            kw_err_log("cannot open EVE file %s: %s", path, strerror(errno));
            free(e);
            return KW_E_IO;
        }
    }
    pthread_mutex_init(&e->mu, NULL);
    *out = e;
    return KW_E_OK;
}

void kw_eve_close(struct kw_eve *e)
{
    if (!e)
        return;
    fflush(e->f);
    if (!e->is_stdout)
        fclose(e->f);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

void kw_eve_write(struct kw_eve *e, json_t *rec)
{
    if (e && rec) {
        pthread_mutex_lock(&e->mu);
        if (kw_json_write_line(rec, e->f) != 0)
            kw_warn("EVE write failed: %s", strerror(errno));
        pthread_mutex_unlock(&e->mu);
    }
    json_decref(rec);
}

void kw_eve_flush(struct kw_eve *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    fflush(e->f);
    pthread_mutex_unlock(&e->mu);
}

const char *kw_tunnel_type_name(unsigned type)
{
    static const char *const names[] = {"none", "vxlan", "geneve", "gre", "erspan"};
    return type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

json_t *kw_eve_txn_header(const struct kw_txn *t, const char *event_type, kw_ts ts)
{
    char tsb[40], a[64], b[64];
    json_t *r = json_object();
    json_object_set_new(r, "timestamp", json_string(kw_ts_format(ts, tsb, sizeof tsb)));
    json_object_set_new(r, "flow_id", json_integer((json_int_t)(t->flow_id & INT64_MAX)));
    json_object_set_new(r, "event_type", json_string(event_type));
    json_object_set_new(r, "src_ip", json_string(kw_addr_str(&t->src, a, sizeof a)));
    json_object_set_new(r, "src_port", json_integer(t->sport));
    json_object_set_new(r, "dest_ip", json_string(kw_addr_str(&t->dst, b, sizeof b)));
    json_object_set_new(r, "dest_port", json_integer(t->dport));
    json_object_set_new(r, "proto", json_string("TCP"));
    if (t->vlan)
        json_object_set_new(r, "vlan", json_pack("[i]", t->vlan));
    if (t->tunnel_type)
        json_object_set_new(r, "tunnel", json_pack("{s:s,s:I}", "type",
                                                   kw_tunnel_type_name(t->tunnel_type), "id",
                                                   (json_int_t)t->tunnel_id));
    return r;
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v && v[0])
        kw_json_set_bytes(o, k, (const uint8_t *)v, strlen(v));
}

json_t *kw_eve_http_obj(const struct kw_txn *t)
{
    json_t *h = json_object();
    set_str(h, "hostname", t->hostname);
    set_str(h, "url", t->url);
    set_str(h, "http_method", t->method);
    set_str(h, "protocol", t->protocol);
    if (t->status)
        json_object_set_new(h, "status", json_integer(t->status));
    if (!(t->flags & KW_TXN_F(NO_RESPONSE)))
        json_object_set_new(h, "length", json_integer((json_int_t)t->resp_len));
    if (!(t->flags & KW_TXN_F(NO_REQUEST)))
        json_object_set_new(h, "request_length", json_integer((json_int_t)t->req_len));
    set_str(h, "http_user_agent", t->user_agent);
    set_str(h, "path", t->path);
    set_str(h, "template", t->template_);
    if (t->resp_ts && t->ts && t->resp_ts >= t->ts)
        json_object_set_new(h, "duration_ms", json_real((double)(t->resp_ts - t->ts) / 1000.0));
    json_t *flags = json_array();
    for (unsigned b = 0; b < KW_TXN_BIT__COUNT; b++)
        if (t->flags & (UINT32_C(1) << b))
            json_array_append_new(flags, json_string(kw_txn_flag_name(b)));
    json_object_set_new(h, "flags", flags);
    return h;
}

static const char *cred_kind_name(unsigned k)
{
    static const char *const names[] = {"none", "bearer", "jwt", "basic", "api_key", "other"};
    return k < sizeof names / sizeof names[0] ? names[k] : "unknown";
}

json_t *kw_eve_cred_obj(const struct kw_txn *t)
{
    const struct kw_cred *c = &t->cred;
    if (c->kind == KW_CRED_NONE)
        return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "kind", json_string(cred_kind_name(c->kind)));
    set_str(o, "source", c->source);
    set_str(o, "fingerprint", c->fingerprint);
    set_str(o, "hint", c->hint);
    set_str(o, "user", c->basic_user);
    if (c->kind == KW_CRED_JWT) {
        json_t *j = json_object();
        set_str(j, "iss", c->jwt.iss);
        set_str(j, "sub", c->jwt.sub);
        set_str(j, "aud", c->jwt.aud);
        set_str(j, "client_id", c->jwt.client_id);
        set_str(j, "alg", c->jwt.alg);
        if (c->jwt.has_exp)
            json_object_set_new(j, "exp", json_integer(c->jwt.exp));
        if (c->jwt.has_iat)
            json_object_set_new(j, "iat", json_integer(c->jwt.iat));
        json_object_set_new(o, "jwt", j);
    }
    return o;
}

json_t *kw_eve_identity_obj(const struct kw_txn *t)
{
    if (!t->identity.id[0])
        return NULL;
    json_t *o = json_object();
    set_str(o, "id", t->identity.id);
    set_str(o, "name", t->identity.name);
    set_str(o, "kind", t->identity.kind);
    return o;
}
