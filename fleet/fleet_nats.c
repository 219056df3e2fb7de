/* fleet_nats: libnats behind a small contract (see fleet_nats.h).
 *
 * Connection: reconnects for ever (MaxReconnect -1, 250 ms apart with
 * jitter). While the servers are away the sensor does not publish (its
 * spool holds the records); libnats' small reconnect buffer only takes
 * what was on its way when the connection dropped. Publishing: js_PublishMsgAsync with Nats-Msg-Id and
 * a 5 s answer deadline, so a message sent just before a server died is
 * reported failed (and sent again) instead of waiting for ever. */
#include "fleet_nats.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kw_cond.h"
#include "kw_log.h"
#include "rules.h"
#include "kw_time.h"

#define FN_PUB_WAIT_MS 5000
#define FN_MAX_PENDING 8192

struct fn_conn {
    natsConnection *nc;
    natsOptions *opts;
    jsCtx *js;
    char stream[64];
    struct fn_opts o;
    bool published; /* libnats' pending list exists only after a first async publish */
    /* counted by libnats' callbacks: polling the status misses an outage
     * that began and ended while the caller was busy */
    _Atomic uint64_t disconnects, reconnects;
    /* libnats runs connection callbacks on its own thread, queued: the
     * disconnected callback of our own close can run after
     * natsConnection_Destroy returns. The closed callback is queued last,
     * so fn_close waits for it before freeing what the callbacks touch. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool closed;
};

struct fn_consumer {
    struct fn_conn *c;
    uint64_t pending;
    natsSubscription *sub;
    natsMsgList list;
    struct fn_msg *msgs;
    int cap;
};

void fn_opts_from_config(const struct rules_config *rc, const char *name, struct fn_opts *o)
{
    memset(o, 0, sizeof *o);
    o->url = rc->fleet.nats;
    o->name = name;
    o->credentials = rc->fleet.credentials;
    o->creds_file = rc->fleet.creds_file;
    o->tls_ca = rc->fleet.tls_ca;
    o->tls_cert = rc->fleet.tls_cert;
    o->tls_key = rc->fleet.tls_key;
    o->stream = rc->fleet.stream;
    o->replicas = rc->fleet.replicas;
    o->max_age_s = rc->fleet.max_age_s;
    o->duplicates_s = rc->fleet.duplicates_s;
}

static void errf(char *err, size_t len, const char *what, natsStatus s, jsErrCode je)
{
    if (!err || !len) return;
    const char *last = nats_GetLastError(NULL);
    snprintf(err, len, "%s: %s%s%s (jetstream error %d)", what, natsStatus_GetText(s),
             last && *last ? ": " : "", last ? last : "", (int)je);
}

static void on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    struct fn_conn *c = closure;
    const char *id = NULL;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id && c->o.on_ack)
        c->o.on_ack(c->o.user, id, pa != NULL && pae == NULL);
    natsMsg_Destroy(msg);
}

static natsStatus set_auth(natsOptions *no, const struct fn_opts *o)
{
    natsStatus s = NATS_OK;
    if (o->credentials && o->credentials[0]) {
        const char *colon = strchr(o->credentials, ':');
        if (colon) {
            char user[256];
            snprintf(user, sizeof user, "%.*s", (int)(colon - o->credentials), o->credentials);
            s = natsOptions_SetUserInfo(no, user, colon + 1);
            explicit_bzero(user, sizeof user);
        } else {
            s = natsOptions_SetToken(no, o->credentials);
        }
    }
    if (s == NATS_OK && o->creds_file)
        s = natsOptions_SetUserCredentialsFromFiles(no, o->creds_file, NULL);
    bool tls = o->tls_ca || o->tls_cert || (o->url && strstr(o->url, "tls://"));
    if (s == NATS_OK && tls) s = natsOptions_SetSecure(no, true);
    if (s == NATS_OK && o->tls_ca) s = natsOptions_LoadCATrustedCertificates(no, o->tls_ca);
    if (s == NATS_OK && o->tls_cert)
        s = natsOptions_LoadCertificatesChain(no, o->tls_cert, o->tls_key);
    return s;
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    atomic_fetch_add(&((struct fn_conn *)closure)->disconnects, 1);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    atomic_fetch_add(&((struct fn_conn *)closure)->reconnects, 1);
}

static void on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    struct fn_conn *c = closure;
    pthread_mutex_lock(&c->mu);
    c->closed = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* A callback makes the first connect asynchronous: without one, libnats
 * blocks in natsConnection_Connect until a server answers (for ever, with
 * MaxReconnect -1), and a sensor started while NATS is down would never
 * read a packet. */
static void on_connected(natsConnection *nc, void *closure)
{
    (void)nc;
    (void)closure;
}

static natsStatus make_opts(struct fn_conn *c, const struct fn_opts *o, bool retry)
{
    natsOptions *no = NULL;
    natsStatus s = natsOptions_Create(&no);
    c->opts = no;
    if (s == NATS_OK) s = natsOptions_SetURL(no, o->url);
    if (s == NATS_OK && o->name) s = natsOptions_SetName(no, o->name);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(no, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(no, 250);
    if (s == NATS_OK) s = natsOptions_SetReconnectJitter(no, 100, 1000);
    if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(no, 1 << 20);
    if (s == NATS_OK) s = natsOptions_SetTimeout(no, 2000);
    if (s == NATS_OK) s = natsOptions_SetPingInterval(no, 2000);
    if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(no, 3);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(no, on_disconnected, c);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(no, on_reconnected, c);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(no, on_closed, c);
    if (s == NATS_OK && retry)
        s = natsOptions_SetRetryOnFailedConnect(no, true, on_connected, c);
    if (s == NATS_OK) s = set_auth(no, o);
    return s;
}

enum kw_err fn_open(const struct fn_opts *o, int64_t wait_ms, struct fn_conn **out, char *err,
                    size_t errlen)
{
    struct fn_conn *c = calloc(1, sizeof *c);
    if (!c) return KW_E_NOMEM;
    pthread_mutex_init(&c->mu, NULL);
    kw_cond_init(&c->cv);
    c->o = *o;
    snprintf(c->stream, sizeof c->stream, "%s", o->stream ? o->stream : "KW_TXN");
    natsStatus s = make_opts(c, o, wait_ms == 0);
    if (s != NATS_OK) {
        errf(err, errlen, "NATS options (credentials, TLS files)", s, 0);
        fn_close(c);
        return KW_E_CONFIG;
    }
    kw_ts until = kw_ts_wall() + wait_ms * 1000;
    for (;;) {
        s = natsConnection_Connect(&c->nc, c->opts);
        if (s == NATS_OK || s == NATS_NOT_YET_CONNECTED || kw_ts_wall() >= until) break;
        nats_Sleep(250);
    }
    if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
        errf(err, errlen, o->url, s, 0);
        fn_close(c);
        return KW_E_IO;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = FN_PUB_WAIT_MS;
    jo.PublishAsync.MaxPending = FN_MAX_PENDING;
    jo.PublishAsync.AckHandler = on_puback;
    jo.PublishAsync.AckHandlerClosure = c;
    jo.PublishAsync.StallWait = 1;
    if ((s = natsConnection_JetStream(&c->js, c->nc, &jo)) != NATS_OK) {
        errf(err, errlen, "JetStream context", s, 0);
        fn_close(c);
        return KW_E_IO;
    }
    *out = c;
    return KW_E_OK;
}

void fn_close(struct fn_conn *c)
{
    if (!c) return;
    if (c->js) {
        fn_publish_forget(c);
        jsCtx_Destroy(c->js);
    }
    bool settled = true;
    if (c->nc) {
        natsConnection_Close(c->nc);
        /* bounded: a wedged callback thread must not hang shutdown */
        kw_ts until = kw_mono_now() + KW_TS_SEC(5);
        pthread_mutex_lock(&c->mu);
        while (!c->closed)
            if (kw_cond_wait_until(&c->cv, &c->mu, until) != 0) break;
        settled = c->closed;
        pthread_mutex_unlock(&c->mu);
        natsConnection_Destroy(c->nc);
    }
    natsOptions_Destroy(c->opts);
    if (!settled) {
        /* a callback may still run against c: keep it (a few hundred
         * bytes, once, at exit) rather than let it touch freed memory */
        kw_warn("fleet: NATS did not confirm the close within 5 s");
        return;
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

bool fn_up(struct fn_conn *c)
{
    return c->nc && natsConnection_Status(c->nc) == NATS_CONN_STATUS_CONNECTED;
}

uint64_t fn_disconnects(struct fn_conn *c)
{
    return atomic_load(&c->disconnects);
}

uint64_t fn_reconnects(struct fn_conn *c)
{
    return atomic_load(&c->reconnects);
}

const char *fn_stream(const struct fn_conn *c)
{
    return c->stream;
}

enum kw_err fn_stream_ensure(struct fn_conn *c, char *err, size_t errlen)
{
    jsStreamInfo *si = NULL;
    jsErrCode je = 0;
    natsStatus s = js_GetStreamInfo(&si, c->js, c->stream, NULL, &je);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return KW_E_OK;
    }
    if (s != NATS_NOT_FOUND) {
        errf(err, errlen, "stream info", s, je);
        return KW_E_IO;
    }
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {"kw.txn.>"};
    sc.Name = c->stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Retention = js_LimitsPolicy;
    sc.Replicas = c->o.replicas ? c->o.replicas : 1;
    sc.MaxAge = (c->o.max_age_s > 0 ? c->o.max_age_s : 7 * 86400) * (int64_t)1000000000;
    sc.Duplicates = (c->o.duplicates_s > 0 ? c->o.duplicates_s : 120) * (int64_t)1000000000;
    sc.Description = "keywarden fleet: transaction, flow and clock records of the sensors";
    s = js_AddStream(&si, c->js, &sc, NULL, &je);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        kw_info("fleet: created JetStream stream %s (kw.txn.>, %lld replica(s))", c->stream,
                (long long)sc.Replicas);
        return KW_E_OK;
    }
    /* another sensor or judge created it meanwhile */
    if (js_GetStreamInfo(&si, c->js, c->stream, NULL, NULL) == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return KW_E_OK;
    }
    if (je == JSStreamSubjectOverlapErr)
        snprintf(err, errlen, "creating the stream %s: another stream of this NATS account "
                 "already takes kw.txn.> (give every sensor and judge the same fleet.stream; "
                 "one fleet per account)", c->stream);
    else
        errf(err, errlen, "creating the stream", s, je);
    return KW_E_IO;
}

void fn_subject(char out[FN_SUBJECT_MAX], uint32_t partition, const char *sensor)
{
    snprintf(out, FN_SUBJECT_MAX, "kw.txn.%u.%s", (unsigned)partition, sensor);
}

enum kw_err fn_publish(struct fn_conn *c, const char *subject, const void *data, size_t len,
                       const char *msgid)
{
    if (!fn_up(c)) return KW_E_AGAIN;
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, data, (int)len);
    if (s == NATS_OK) s = natsMsgHeader_Set(m, "Nats-Msg-Id", msgid);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = FN_PUB_WAIT_MS;
    if (s == NATS_OK) s = js_PublishMsgAsync(c->js, &m, &po);
    if (s == NATS_OK) c->published = true;
    natsMsg_Destroy(m); /* NULL when the library took it */
    return s == NATS_OK ? KW_E_OK : KW_E_AGAIN;
}

void fn_publish_forget(struct fn_conn *c)
{
    if (!c->published) return;
    natsMsgList pending = {0};
    if (js_PublishAsyncGetPendingList(&pending, c->js) == NATS_OK) natsMsgList_Destroy(&pending);
}

/* ---- consumers --------------------------------------------------------- */

static enum kw_err consumer_create(struct fn_conn *c, const char *durable, const char *subject,
                                   uint64_t *pending, char *err, size_t errlen)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode je = 0;
    uint64_t floor = 0;
    natsStatus s = js_GetConsumerInfo(&ci, c->js, c->stream, durable, NULL, &je);
    if (s == NATS_OK) {
        floor = ci->AckFloor.Stream;
        jsConsumerInfo_Destroy(ci);
        if ((s = js_DeleteConsumer(c->js, c->stream, durable, NULL, &je)) != NATS_OK) {
            errf(err, errlen, "resetting the consumer", s, je);
            return KW_E_IO;
        }
    } else if (s != NATS_NOT_FOUND) {
        errf(err, errlen, "consumer info", s, je);
        return KW_E_IO;
    }
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    cc.FilterSubject = subject;
    cc.AckPolicy = js_AckAll;
    cc.AckWait = (int64_t)600 * 1000000000; /* a restart resets; this is the last resort */
    cc.MaxAckPending = 1000000;
    cc.MaxRequestBatch = 0;
    cc.DeliverPolicy = floor ? js_DeliverByStartSequence : js_DeliverAll;
    cc.OptStartSeq = floor ? floor + 1 : 0;
    cc.Description = "keywarden judge";
    s = js_AddConsumer(&ci, c->js, c->stream, &cc, NULL, &je);
    if (s != NATS_OK) {
        errf(err, errlen, "creating the consumer", s, je);
        return KW_E_IO;
    }
    *pending = ci->NumPending;
    jsConsumerInfo_Destroy(ci);
    return KW_E_OK;
}

enum kw_err fn_consumer_open(struct fn_conn *c, const char *durable, const char *subject,
                             struct fn_consumer **out, char *err, size_t errlen)
{
    uint64_t pending = 0;
    enum kw_err e = consumer_create(c, durable, subject, &pending, err, errlen);
    if (e != KW_E_OK) return e;
    struct fn_consumer *k = calloc(1, sizeof *k);
    if (!k) return KW_E_NOMEM;
    k->c = c;
    k->pending = pending;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = c->stream;
    so.Consumer = durable;
    jsErrCode je = 0;
    natsStatus s = js_PullSubscribe(&k->sub, c->js, subject, durable, NULL, &so, &je);
    if (s != NATS_OK) {
        errf(err, errlen, "binding the consumer", s, je);
        free(k);
        return KW_E_IO;
    }
    *out = k;
    return KW_E_OK;
}

uint64_t fn_consumer_pending(const struct fn_consumer *k)
{
    return k->pending;
}

void fn_consumer_close(struct fn_consumer *k)
{
    if (!k) return;
    natsMsgList_Destroy(&k->list);
    natsSubscription_Destroy(k->sub); /* keeps the durable consumer (libnats >= 3.4) */
    free(k->msgs);
    free(k);
}

enum kw_err fn_fetch(struct fn_consumer *k, int max, int64_t wait_ms, struct fn_msg **msgs,
                     size_t *n)
{
    natsMsgList_Destroy(&k->list);
    memset(&k->list, 0, sizeof k->list);
    *n = 0;
    *msgs = k->msgs;
    if (!fn_up(k->c)) return KW_E_IO;
    jsFetchRequest fr;
    jsFetchRequest_Init(&fr);
    fr.Batch = max;
    fr.Expires = (wait_ms > 0 ? wait_ms : 1) * 1000000;
    fr.NoWait = wait_ms <= 0;
    natsStatus s = natsSubscription_FetchRequest(&k->list, k->sub, &fr);
    if (s == NATS_TIMEOUT || s == NATS_NOT_FOUND) return KW_E_OK;
    if (s != NATS_OK) return KW_E_IO;
    if (k->cap < k->list.Count) {
        struct fn_msg *m = realloc(k->msgs, (size_t)k->list.Count * sizeof *m);
        if (!m) return KW_E_NOMEM;
        k->msgs = m;
        k->cap = k->list.Count;
    }
    size_t j = 0;
    for (int i = 0; i < k->list.Count; i++) {
        natsMsg *m = k->list.Msgs[i];
        jsMsgMetaData *md = NULL;
        if (natsMsg_GetMetaData(&md, m) != NATS_OK) continue; /* not a stream message */
        k->msgs[j] = (struct fn_msg){.data = (const uint8_t *)natsMsg_GetData(m),
                                     .len = (size_t)natsMsg_GetDataLength(m),
                                     .stream_seq = md->Sequence.Stream,
                                     .pending = md->NumPending,
                                     .reply = natsMsg_GetReply(m)};
        jsMsgMetaData_Destroy(md);
        j++;
    }
    *msgs = k->msgs;
    *n = j;
    return KW_E_OK;
}

enum kw_err fn_ack_all(struct fn_conn *c, const char *reply)
{
    /* down: fail now (the ack is sent again at the next commit) instead of
     * waiting in the flush below while the loop could notice the outage */
    if (!fn_up(c)) return KW_E_IO;
    natsStatus s = natsConnection_PublishString(c->nc, reply, "+ACK");
    if (s == NATS_OK) s = natsConnection_FlushTimeout(c->nc, 2000);
    return s == NATS_OK ? KW_E_OK : KW_E_IO;
}

enum kw_err fn_subjects(struct fn_conn *c, const char *filter,
                        void (*fn)(void *user, const char *subject, uint64_t msgs), void *user)
{
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Stream.Info.SubjectsFilter = filter;
    jsStreamInfo *si = NULL;
    natsStatus s = js_GetStreamInfo(&si, c->js, c->stream, &jo, NULL);
    if (s != NATS_OK) return s == NATS_NOT_FOUND ? KW_E_NOTFOUND : KW_E_IO;
    if (si->State.Subjects)
        for (int i = 0; i < si->State.Subjects->Count; i++)
            fn(user, si->State.Subjects->List[i].Subject, si->State.Subjects->List[i].Msgs);
    jsStreamInfo_Destroy(si);
    return KW_E_OK;
}
