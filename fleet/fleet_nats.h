/* fleet_nats: keywarden's use of NATS JetStream (libnats), in one place:
 * the connection (URLs, credentials, TLS from files, reconnecting for
 * ever), the stream that holds the records, asynchronous publishing with
 * a message id (JetStream drops a duplicate id inside its window), and the
 * judge's durable pull consumers, one per (partition, sensor) subject.
 *
 * Subjects: kw.txn.<partition>.<sensor>. A partition is everything under
 * kw.txn.<partition>; splitting it by sensor lets a judge read each
 * sensor's records in their own order, so merging sensors in event time
 * never needs to buffer one sensor's backlog while waiting for another's.
 *
 * The one thing to know: nothing here blocks for long. The connection
 * retries in the background (a sensor spools meanwhile); publishing is
 * asynchronous and each message's outcome comes back through on_ack, on a
 * libnats thread; a consumer is acknowledged up to a message (AckAll)
 * only when the judge says its effects are committed. */
#ifndef KW_FLEET_NATS_H
#define KW_FLEET_NATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kw_err.h"

#define FN_SUBJECT_MAX 128
#define FN_MSGID_MAX 128
#define FN_REPLY_MAX 256

struct fn_opts {
    const char *url;         /* "nats://h:4222" or several, comma-separated */
    const char *name;        /* connection name, shown by the server */
    const char *credentials; /* "user:password" or a token; NULL = none */
    const char *creds_file;  /* .creds (JWT + NKey seed); NULL = none */
    const char *tls_ca, *tls_cert, *tls_key;
    const char *stream; /* NULL: "KW_TXN" */
    uint32_t replicas;
    int64_t max_age_s, duplicates_s;
    /* the outcome of each published message (ok, or failed: resend);
     * called on a libnats thread */
    void (*on_ack)(void *user, const char *msgid, bool ok);
    void *user;
};

struct fn_conn;
struct rules_config;

/* The fleet: section of the config as connection options (the strings
 * are borrowed from rc). */
void fn_opts_from_config(const struct rules_config *rc, const char *name, struct fn_opts *o);

/* Connects (or keeps trying in the background when wait_ms is 0 and the
 * servers are not there yet). err gets a one-line reason on failure. */
enum kw_err fn_open(const struct fn_opts *o, int64_t wait_ms, struct fn_conn **out, char *err,
                    size_t errlen) KW_WUR;
void fn_close(struct fn_conn *c);
bool fn_up(struct fn_conn *c);
/* How often the connection was lost, and found again, so far (from
 * libnats' callbacks: an outage shorter than the caller's loop counts). */
uint64_t fn_disconnects(struct fn_conn *c);
uint64_t fn_reconnects(struct fn_conn *c);
const char *fn_stream(const struct fn_conn *c);

/* Creates the stream (subjects kw.txn.>) when it does not exist yet. */
enum kw_err fn_stream_ensure(struct fn_conn *c, char *err, size_t errlen) KW_WUR;

/* kw.txn.<partition>.<sensor> */
void fn_subject(char out[FN_SUBJECT_MAX], uint32_t partition, const char *sensor);

/* Asynchronous publish; KW_E_AGAIN when not connected or the library's
 * window is full (nothing was sent: try again later). */
enum kw_err fn_publish(struct fn_conn *c, const char *subject, const void *data, size_t len,
                       const char *msgid) KW_WUR;
/* Forgets every publish not acknowledged yet (after a disconnection):
 * their on_ack never comes; the caller sends them again. */
void fn_publish_forget(struct fn_conn *c);

/* ---- consumers (judge) ---- */

struct fn_consumer;

struct fn_msg {
    const uint8_t *data; /* valid until the next fn_fetch on the consumer */
    size_t len;
    uint64_t stream_seq;
    uint64_t pending;  /* messages of the consumer still on the server after this one */
    const char *reply; /* the ack subject */
};

/* Binds a durable pull consumer on one subject, creating it. A consumer
 * that exists is recreated to start right after its acknowledged floor:
 * what was delivered but not acknowledged (a judge that died) comes
 * again at once, in order, not after the ack wait. */
enum kw_err fn_consumer_open(struct fn_conn *c, const char *durable, const char *subject,
                             struct fn_consumer **out, char *err, size_t errlen) KW_WUR;
void fn_consumer_close(struct fn_consumer *k);
/* Messages the consumer had on the server when it was (re)created. */
uint64_t fn_consumer_pending(const struct fn_consumer *k);
/* Up to `max` messages that are there now (waits at most wait_ms when
 * none are). *n = 0 on timeout; KW_E_IO when the connection is down. */
enum kw_err fn_fetch(struct fn_consumer *k, int max, int64_t wait_ms, struct fn_msg **msgs,
                     size_t *n) KW_WUR;
/* Acknowledges every message up to the one whose ack subject this is. */
enum kw_err fn_ack_all(struct fn_conn *c, const char *reply) KW_WUR;

/* Calls fn for every subject of the stream matching filter that holds
 * messages (kw.txn.3.* ...). */
enum kw_err fn_subjects(struct fn_conn *c, const char *filter,
                        void (*fn)(void *user, const char *subject, uint64_t msgs),
                        void *user) KW_WUR;

#endif
