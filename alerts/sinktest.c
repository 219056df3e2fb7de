/* sinktest: `keywarden alerts test`: one sample alert to every configured
 * sink, sent at once (not through the outbox) so an operator sees what
 * each receiver answers. The sample is a normal alert record marked
 * "test": true, signed like any other. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "alerts_int.h"
#include "al_util.h"
#include "kw_jw.h"

static size_t keep_body(char *b, size_t size, size_t n, void *ud)
{
    struct alerts_test_result *r = ud;
    size_t len = size * n, have = strlen(r->error);
    if (have + 1 < sizeof r->error) {
        size_t c = sizeof r->error - 1 - have < len ? sizeof r->error - 1 - have : len;
        memcpy(r->error + have, b, c);
        r->error[have + c] = 0;
    }
    return len;
}

static json_t *sample_record(const char *id)
{
    struct kw_txn *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->ts = kw_ts_wall();
    kw_addr_parse("192.0.2.10", &x->src);
    kw_addr_parse("198.51.100.20", &x->dst);
    x->sport = 50123;
    x->dport = 443;
    snprintf(x->method, sizeof x->method, "GET");
    snprintf(x->protocol, sizeof x->protocol, "HTTP/1.1");
    snprintf(x->hostname, sizeof x->hostname, "api.example.internal");
    snprintf(x->url, sizeof x->url, "/v1/orders/42");
    snprintf(x->path, sizeof x->path, "/v1/orders/42");
    snprintf(x->template_, sizeof x->template_, "/v1/orders/{id}");
    x->status = 200;
    x->cred.kind = KW_CRED_BEARER;
    snprintf(x->cred.fingerprint, sizeof x->cred.fingerprint, "sha256:%064d", 0);
    snprintf(x->cred.hint, sizeof x->cred.hint, "test…0000");
    snprintf(x->identity.id, sizeof x->identity.id, "keywarden-test");
    snprintf(x->identity.name, sizeof x->identity.name, "keywarden alerts test");
    snprintf(x->identity.kind, sizeof x->identity.kind, "service");
    struct alert_finding f = {.kind = ALERT_OFF_HOURS, .ts = x->ts, .txn = x};
    snprintf(f.subject, sizeof f.subject, "test");
    snprintf(f.summary, sizeof f.summary,
             "This is a test alert sent by `keywarden alerts test`; no action needed.");
    f.evidence =
        json_pack("{s:s,s:s}", "expected", "a delivered test message", "observed", "this message");
    /* the record as alerts_submit writes it, then marked as a test */
    char *text = malloc(AL_RECORD_CAP);
    json_t *r = NULL;
    if (text) {
        struct kw_jw w;
        kw_jw_init(&w, text, AL_RECORD_CAP);
        al_record_write(&w, &f, 3, id);
        r = kw_jw_ok(&w) ? json_loadb(text, w.len, 0, NULL) : NULL;
        free(text);
    }
    json_decref(f.evidence);
    json_object_set_new(json_object_get(r, "alert"), "test", json_true());
    free(x);
    return r;
}

enum kw_err alerts_test_sinks(const struct alerts_config *c,
                              struct alerts_test_result res[ALERTS_MAX_SINKS])
{
    char id[AL_ID_LEN + 1], seed[32];
    snprintf(seed, sizeof seed, "%lld", (long long)kw_ts_wall());
    al_alert_id(ALERT_OFF_HOURS, "test", seed, 0, "test", id);
    json_t *rec = sample_record(id);
    if (!rec) return KW_E_NOMEM;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (unsigned i = 0; i < c->n_sinks && i < ALERTS_MAX_SINKS; i++) {
        const struct alerts_sink_cfg *s = &c->sinks[i];
        struct alerts_test_result *r = &res[i];
        memset(r, 0, sizeof *r);
        json_t *msg = s->kind == ALERTS_SINK_SLACK ? al_slack_alert(rec, "UTC") : json_incref(rec);
        char *body = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
        json_decref(msg);
        struct curl_slist *h = NULL;
        CURL *e = body ? al_request_new(s, body, id, &h, c->timeout_ms) : NULL;
        if (!e) {
            snprintf(r->error, sizeof r->error, "cannot build the request");
            free(body);
            continue;
        }
        char errbuf[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
        kw_ts t0 = kw_ts_wall();
        r->curl_code = (int)curl_easy_perform(e);
        r->ms = (double)(kw_ts_wall() - t0) / 1000.0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->http_status);
        if (r->curl_code)
            snprintf(r->error, sizeof r->error, "%s",
                     errbuf[0] ? errbuf : curl_easy_strerror((CURLcode)r->curl_code));
        curl_easy_cleanup(e);
        curl_slist_free_all(h);
        free(body);
    }
    json_decref(rec);
    return KW_E_OK;
}
