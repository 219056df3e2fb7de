/* sim_gen: a world turned into a plan of sessions, then into packets and
 * ground truth. The one thing to know: generation is two-phase. Planning
 * (sim_plan.c) decides every connection and request from per-identity,
 * per-day rng streams; rendering (sim_render.c) walks the sessions in start
 * order, writes their packets through the time-ordered sim_out and records one
 * truth line per HTTP transaction. */
#ifndef SIM_GEN_H
#define SIM_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "sim_pkt.h"
#include "sim_rng.h"
#include "sim_tcp.h"
#include "sim_world.h"

enum sim_sess_kind { SIM_SESS_HTTP, SIM_SESS_TLS };

struct sim_req {
    char method[8];
    char target[512];
    int cred; /* index into gen->creds */
    int status;
    uint32_t resp_size;
    uint8_t gzip, chunked;
    int16_t split_at; /* offset inside the target to cut the segment at, or -1 */
    int incident;     /* index into world incidents, or -1 */
    int64_t want;     /* planned start, µs */
    uint8_t dpop;     /* enum sim_dpop_mode, for a cred with a DPoP key */
    int64_t dpop_iat; /* SIM_DPOP_REPLAY: the proof's iat (µs) */
    int32_t label;    /* kwsim apis: index into gen->labels, or -1 */
    /* kwsim apis: the answer names the item back (target[echo_off..+echo_len)
     * under the member echo_key, after echo_skip records); echo_key NULL: no */
    const char *echo_key;
    uint16_t echo_off, echo_len;
    uint8_t echo_skip;
};

/* How a request of a DPoP-bound cred carries its proof. */
enum sim_dpop_mode {
    SIM_DPOP_AUTO = 0, /* a fresh proof for this request */
    SIM_DPOP_OMIT,     /* no proof (dpop_missing) */
    SIM_DPOP_REPLAY,   /* the incident's one proof, sent again (dpop_replay) */
    SIM_DPOP_HTU,      /* a proof made for another URI (dpop_mismatch) */
    SIM_DPOP_STALE,    /* a proof made 15 minutes before (dpop_stale) */
};

struct sim_session {
    int64_t t;
    uint64_t order;
    enum sim_sess_kind kind;
    int ident, server, net;
    uint32_t host; /* host number inside the network */
    uint16_t sport;
    size_t first_req;
    int nreq;
    uint64_t seed;
    int incident;
    bool dns;
    const char *sni;
};

struct sim_truth {
    int64_t ts;
    uint64_t order;
    struct sim_ip cip, sip;
    uint16_t cport, sport;
    char method[8];
    char target[512];
    int server;
    int status;
    size_t req_body, resp_body, resp_identity;
    int cred, ident, incident;
    bool lost, pipelined, split;
    int32_t label;
    /* HTTP/2 (h2c and gRPC servers): the stream, and for gRPC the
     * grpc-status of the trailers (status is then the HTTP :status, 200) */
    bool h2, grpc;
    uint32_t stream_id;
    int grpc_status;
};

struct sim_inc_state {
    bool enabled;
    int64_t first, last; /* actual request times */
    int nreq;
    int64_t planned;
};

struct sim_gen {
    struct sim_world *w;
    uint64_t seed;
    int64_t start_us, end_us;
    int days;
    struct sim_tcp_cfg tcp;
    double noise; /* TLS/DNS noise level, 0..1 */
    struct sim_inc_state inc[SIM_MAX_INCIDENTS];
    struct sim_cred *creds;
    int ncred, capcred;
    int *cred_ident; /* identity of each credential, -1 when unknown */
    struct sim_req *reqs;
    size_t nreq, capreq;
    struct sim_session *sess;
    size_t nsess, capsess;
    struct sim_truth *truth;
    size_t ntruth, captruth;
    struct sim_out out;
    /* --tls: every HTTP session is wrapped in TLS 1.3 (AES-128-GCM), the
     * traffic secrets written to DIR/keys.log as an NSS key log */
    bool tls;
    FILE *keylog;
    /* kwsim apis: JSON members added to a request's truth line (its API,
     * spec template and phase), by sim_req.label */
    char **labels;
    size_t nlabels, caplabels;
};

/* One encrypting direction of a simulated TLS 1.3 session (sim_tls.c). */
struct sim_tls_dir {
    void *ctx; /* EVP_CIPHER_CTX, keyed */
    uint8_t iv[12];
    uint64_t seq;
};
struct sim_tls_sess {
    struct sim_tls_dir d[2]; /* 0 client, 1 server: application keys */
};
struct sim_conn;
/* The handshake on an open connection (ClientHello, ServerHello, the
 * protected EncryptedExtensions/Finished of both sides); writes the
 * session's four secrets to g->keylog. Returns the time after it. */
int64_t sim_tls_open(struct sim_gen *g, struct sim_conn *c, struct sim_rng *r, const char *sni,
                     const char *alpn, int64_t t, struct sim_tls_sess *ts);
/* Application data as protected records appended to out. */
struct sim_buf;
void sim_tls_seal(struct sim_tls_dir *d, const uint8_t *p, size_t n, struct sim_buf *out);
void sim_tls_close(struct sim_tls_sess *ts);

/* A header field of a request (sim_render.c); value big enough for a DPoP
 * proof. */
struct sim_field {
    char name[64];
    char value[2400];
};
int sim_cred_fields(struct sim_gen *g, const struct sim_session *s, const struct sim_req *q,
                    struct sim_field f[2]);
struct sim_truth *sim_truth_add(struct sim_gen *g);

/* sim_h2.c: the requests of an HTTP/2 session (h2c or gRPC server) on an
 * open connection (sealed in TLS when tls is set): prefaces and SETTINGS,
 * then each request group as concurrent streams, header blocks through
 * libnghttp2's HPACK deflater. Returns the time after the last answer;
 * *closed when the server ended the connection (GOAWAY + FIN). */
int64_t sim_h2_session(struct sim_gen *g, struct sim_session *s, struct sim_rng *r,
                       struct sim_conn *c, struct sim_tls_sess *tls, int64_t t, bool *closed);

/* Planning. */
int sim_plan(struct sim_gen *g);
int sim_cred_add(struct sim_gen *g, const struct sim_cred *c, int ident);
void sim_jwt_make(struct sim_cred *c);
void sim_fingerprint(const struct sim_cred *c, char out[72]);
void sim_client_ip(const struct sim_world *w, int net, uint32_t host, struct sim_ip *ip);

/* Rendering to out/ (capture + truth). */
int sim_render(struct sim_gen *g);
int sim_write_truth(struct sim_gen *g, const char *dir);
int sim_write_incidents(struct sim_gen *g, const char *dir);
int sim_write_rules(struct sim_gen *g, const char *dir);

/* Alert kinds of a scenario (INTERFACES.md) and whether it is benign. */
struct sim_scenario {
    const char *name;
    const char *kind;     /* the alert kind it is, or looks like when benign */
    const char *expected; /* comma-separated kinds a correct keywarden raises */
    const char *also;     /* kinds that may also fire without being wrong */
    bool benign;
};
const struct sim_scenario *sim_scenario_find(const char *name);
extern const struct sim_scenario sim_scenarios[];

void sim_fmt_time(char *buf, size_t n, int64_t us);

/* `kwsim apis` (sim_apis.c). */
int sim_apis_main(int argc, char **argv);

#endif
