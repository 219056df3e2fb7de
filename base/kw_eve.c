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
#include "kw_jw.h"
#include "kw_log.h"

struct kw_eve {
    FILE *f;
    bool is_stdout;
    bool failed;      /* a write failed: later records are counted, not tried */
    uint64_t dropped; /* records not written since */
    pthread_mutex_t mu;
};

/* One warning, not one per record: a full disk or a reader that went away
 * (`--eve - | head`) would otherwise flood stderr. */
static void write_failed(struct kw_eve *e)
{
    e->failed = true;
    e->dropped++;
    kw_warn("EVE output failed (%s); further records are dropped and counted", strerror(errno));
}

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
        if (e->failed)
            e->dropped++;
        else if (kw_json_write_line(rec, e->f) != 0)
            write_failed(e);
        pthread_mutex_unlock(&e->mu);
    }
    json_decref(rec);
}

void kw_eve_write_text(struct kw_eve *e, const char *text, size_t len)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    if (e->failed)
        e->dropped++;
    else if (fwrite(text, 1, len, e->f) != len || fputc('\n', e->f) == EOF)
        write_failed(e);
    pthread_mutex_unlock(&e->mu);
}

uint64_t kw_eve_dropped(struct kw_eve *e)
{
    if (!e)
        return 0;
    pthread_mutex_lock(&e->mu);
    uint64_t n = e->dropped;
    pthread_mutex_unlock(&e->mu);
    return n;
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

/* ---- records of a transaction, written with kw_jw --------------------- */

void kw_eve_jw_txn_header(struct kw_jw *w, const struct kw_txn *t, const char *event_type,
                          kw_ts ts)
{
    char tsb[40], a[64], b[64];
    kw_jw_str(w, "timestamp", kw_ts_format(ts, tsb, sizeof tsb));
    kw_jw_int(w, "flow_id", (int64_t)(t->flow_id & INT64_MAX));
    kw_jw_str(w, "event_type", event_type);
    kw_jw_str(w, "src_ip", kw_addr_str(&t->src, a, sizeof a));
    kw_jw_int(w, "src_port", t->sport);
    kw_jw_str(w, "dest_ip", kw_addr_str(&t->dst, b, sizeof b));
    kw_jw_int(w, "dest_port", t->dport);
    kw_jw_str(w, "proto", "TCP");
    if (t->vlan) {
        kw_jw_arr_begin(w, "vlan");
        kw_jw_int(w, NULL, t->vlan);
        kw_jw_arr_end(w);
    }
    if (t->tunnel_type) {
        kw_jw_obj_begin(w, "tunnel");
        kw_jw_str(w, "type", kw_tunnel_type_name(t->tunnel_type));
        kw_jw_int(w, "id", t->tunnel_id);
        kw_jw_obj_end(w);
    }
}

void kw_eve_jw_http(struct kw_jw *w, const struct kw_txn *t)
{
    kw_jw_obj_begin(w, "http");
    kw_jw_str_opt(w, "hostname", t->hostname);
    kw_jw_str_opt(w, "url", t->url);
    kw_jw_str_opt(w, "http_method", t->method);
    kw_jw_str_opt(w, "protocol", t->protocol);
    if (t->status)
        kw_jw_int(w, "status", t->status);
    if (!(t->flags & KW_TXN_F(NO_RESPONSE)))
        kw_jw_int(w, "length", (int64_t)t->resp_len);
    if (!(t->flags & KW_TXN_F(NO_REQUEST)))
        kw_jw_int(w, "request_length", (int64_t)t->req_len);
    kw_jw_str_opt(w, "http_user_agent", t->user_agent);
    kw_jw_str_opt(w, "path", t->path);
    kw_jw_str_opt(w, "template", t->template_);
    if (t->resp_ts && t->ts && t->resp_ts >= t->ts)
        kw_jw_ms(w, "duration_ms", (double)(t->resp_ts - t->ts) / 1000.0);
    kw_jw_arr_begin(w, "flags");
    for (unsigned bit = 0; bit < KW_TXN_BIT__COUNT; bit++)
        if (t->flags & (UINT32_C(1) << bit))
            kw_jw_str(w, NULL, kw_txn_flag_name(bit));
    kw_jw_arr_end(w);
    kw_jw_obj_end(w);
}

static const char *cred_kind_name(unsigned k)
{
    static const char *const names[] = {"none", "bearer", "jwt", "basic", "api_key", "other"};
    return k < sizeof names / sizeof names[0] ? names[k] : "unknown";
}

void kw_eve_jw_cred(struct kw_jw *w, const struct kw_txn *t)
{
    const struct kw_cred *c = &t->cred;
    if (c->kind == KW_CRED_NONE)
        return;
    kw_jw_obj_begin(w, "credential");
    kw_jw_str(w, "kind", cred_kind_name(c->kind));
    kw_jw_str_opt(w, "source", c->source);
    kw_jw_str_opt(w, "fingerprint", c->fingerprint);
    kw_jw_str_opt(w, "hint", c->hint);
    kw_jw_str_opt(w, "user", c->basic_user);
    if (c->kind == KW_CRED_JWT) {
        kw_jw_obj_begin(w, "jwt");
        kw_jw_str_opt(w, "iss", c->jwt.iss);
        kw_jw_str_opt(w, "sub", c->jwt.sub);
        kw_jw_str_opt(w, "aud", c->jwt.aud);
        kw_jw_str_opt(w, "client_id", c->jwt.client_id);
        kw_jw_str_opt(w, "alg", c->jwt.alg);
        if (c->jwt.has_exp)
            kw_jw_int(w, "exp", c->jwt.exp);
        if (c->jwt.has_iat)
            kw_jw_int(w, "iat", c->jwt.iat);
        kw_jw_obj_end(w);
    }
    kw_jw_obj_end(w);
}

void kw_eve_jw_identity(struct kw_jw *w, const struct kw_txn *t)
{
    if (!t->identity.id[0])
        return;
    kw_jw_obj_begin(w, "identity");
    kw_jw_str_opt(w, "id", t->identity.id);
    kw_jw_str_opt(w, "name", t->identity.name);
    kw_jw_str_opt(w, "kind", t->identity.kind);
    kw_jw_obj_end(w);
}

/* ---- the same as jansson objects, for records built around them (alerts).
 * One writer defines the fields; these parse its text back. */

enum { EVE_PART_HEADER, EVE_PART_HTTP, EVE_PART_CRED, EVE_PART_IDENTITY };

static json_t *render(const struct kw_txn *t, int part, const char *event_type, kw_ts ts)
{
    size_t cap = 65536;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    struct kw_jw w;
    kw_jw_init(&w, buf, cap);
    kw_jw_obj_begin(&w, NULL);
    if (part == EVE_PART_HEADER)
        kw_eve_jw_txn_header(&w, t, event_type, ts);
    else if (part == EVE_PART_HTTP)
        kw_eve_jw_http(&w, t);
    else if (part == EVE_PART_CRED)
        kw_eve_jw_cred(&w, t);
    else
        kw_eve_jw_identity(&w, t);
    kw_jw_obj_end(&w);
    json_t *o = kw_jw_ok(&w) ? json_loadb(buf, w.len, 0, NULL) : NULL;
    free(buf);
    if (!o || part == EVE_PART_HEADER)
        return o;
    /* the part's single member */
    json_t *v = json_object_size(o) ? json_incref(json_object_iter_value(json_object_iter(o)))
                                    : NULL;
    json_decref(o);
    return v;
}

json_t *kw_eve_txn_header(const struct kw_txn *t, const char *event_type, kw_ts ts)
{
    return render(t, EVE_PART_HEADER, event_type, ts);
}

json_t *kw_eve_http_obj(const struct kw_txn *t)
{
    return render(t, EVE_PART_HTTP, NULL, 0);
}

json_t *kw_eve_cred_obj(const struct kw_txn *t)
{
    return render(t, EVE_PART_CRED, NULL, 0);
}

json_t *kw_eve_identity_obj(const struct kw_txn *t)
{
    return render(t, EVE_PART_IDENTITY, NULL, 0);
}
