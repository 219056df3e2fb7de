/* sim_world: the world file (YAML, read with libfyaml) as plain structs:
 * servers and their endpoints, source networks, identities with their
 * credential, schedule and scope, and the incidents to stage. The one thing to
 * know: everything is validated at load with file:line:col messages, and
 * every secret the world does not spell out is derived from the world name and
 * the credential id (not the seed), so rules stay valid across seeds. */
#ifndef SIM_WORLD_H
#define SIM_WORLD_H

#include <stdbool.h>
#include <stdint.h>

#include "sim_pkt.h"

#define SIM_MAX_SERVERS 512
#define SIM_MAX_EPS 32
#define SIM_MAX_NETS 600
#define SIM_MAX_IDENTS 512
#define SIM_MAX_SCOPE 16
#define SIM_MAX_INCIDENTS 96
#define SIM_MAX_DENY 8

enum sim_cred_kind {
    SIM_CRED_BEARER,
    SIM_CRED_JWT,
    SIM_CRED_APIKEY_HEADER,
    SIM_CRED_APIKEY_QUERY,
    SIM_CRED_BASIC
};

struct sim_cred {
    enum sim_cred_kind kind;
    char id[64];
    char secret[1024]; /* token, key, JWT or Basic password: what goes on the wire */
    char user[64];     /* Basic */
    char param[64];    /* API-key header name or query parameter name */
    char iss[128], sub[128], client_id[128], key[128]; /* JWT claims and HS256 key */
    int64_t iat, exp;                                  /* JWT, seconds */
    /* OAuth (issue 17): the grants a JWT carries ("" = "api.read
     * api.write"), auth_time (0 = none), and DPoP: a token bound to an
     * Ed25519 key (deterministic signatures keep kwsim's output the same
     * for a seed) whose every request carries a proof */
    char scope[256];
    int64_t auth_time;
    bool dpop;
    uint8_t dpop_seed[32];
    char dpop_jkt[48];
};

struct sim_endpoint {
    char path[160]; /* template, {id} is a number */
    char resource[32];
    double size_min, size_max;
    double gzip, chunked;
    char scopes[96]; /* OAuth grants it needs, space-separated (all of them) */
};

/* What a server speaks in clear: HTTP/1.1, HTTP/2 with prior knowledge
 * (h2c, RFC 9113 §3.3), or gRPC over h2c. */
enum sim_proto { SIM_PROTO_HTTP1, SIM_PROTO_H2C, SIM_PROTO_GRPC };

struct sim_server {
    char id[32], host[128];
    enum sim_proto proto;
    struct sim_ip ip, ip6;
    bool has_ip6;
    uint16_t port;
    struct sim_endpoint ep[SIM_MAX_EPS];
    int nep;
    char deny[SIM_MAX_DENY][128];
    int ndeny;
};

struct sim_network {
    char id[32], cidr[64];
    struct sim_ip base;
    int prefix;
    int rtt_ms, mbps;
};

struct sim_scope {
    char methods[8][8];
    int nmethods;
    int ep; /* index into the server's endpoints */
    double weight;
};

struct sim_identity {
    char id[32], name[96], kind[16], tz[64], ua[160];
    char days_text[32], hours_text[16], grace_text[16];
    uint8_t days; /* bit per tm_wday */
    int start_min, end_min, grace_min;
    char access_from[32], access_until[32];
    int64_t from_us, until_us; /* 0 = open */
    int server;
    int nets[4], nnets;
    double ipv6_share; /* share of sessions over IPv6 when the server has one */
    struct sim_cred cred;
    struct sim_scope scope[SIM_MAX_SCOPE];
    int nscope;
    double rate; /* requests per scheduled hour */
    int id_min, id_max;
    double errors;
    int limit_rph;
    char max_scopes[160];  /* rule max_scopes, space-separated ("" = none) */
    char session_max[16];  /* rule session.max_age ("" = none) */
};

struct sim_incident {
    char id[48], scenario[32], target[160];
    int ident; /* -1 for none */
    int day;   /* days after the world start, in the identity's time zone */
    int time_min;
    int64_t duration; /* µs */
    double factor;
    int count;
    int net; /* -1 = derived */
};

struct sim_world {
    char name[64], path[512];
    char start[16];
    int days;
    struct sim_ip resolver;
    struct sim_server srv[SIM_MAX_SERVERS];
    int nsrv;
    struct sim_network net[SIM_MAX_NETS];
    int nnet;
    struct sim_identity id[SIM_MAX_IDENTS];
    int nid;
    struct sim_incident inc[SIM_MAX_INCIDENTS];
    int ninc;
    double noise; /* TLS/DNS noise level, 1 = default */
    char noise_sni[8][96];
    int nsni;
};

/* Returns 0, or -1 after printing file:line:col: error: ... to stderr. */
int sim_world_load(struct sim_world *w, const char *path);

/* "2026-03-23" -> local midnight in tz, µs epoch. Sets TZ (single-threaded). */
int64_t sim_local_to_utc(const char *tz, int y, int mon, int d, int minute_of_day);
int sim_parse_date(const char *s, int *y, int *m, int *d);
int sim_parse_duration(const char *s, int64_t *us);

/* sim_oauth.c: the RFC 7638 thumbprint of a cred's DPoP key into
 * c->dpop_jkt; and a DPoP proof (RFC 9449, EdDSA) into out. */
void sim_dpop_key(struct sim_cred *c);
void sim_dpop_proof(const struct sim_cred *c, const char *htm, const char *htu, int64_t iat,
                    const char *jti, char *out, size_t cap);
#endif
