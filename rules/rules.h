/* rules: the policy model of keywarden, loaded from keywarden.yaml and a
 * directory of rule files (libfyaml), validated, and queried by the judge.
 *
 * The one thing to know: a model is immutable once loaded and is shared by
 * reference count. Readers take a reference (rules_handle_get) and keep
 * using their snapshot while a reload builds and swaps in a new one; the
 * old model is freed when its last reader lets go. Every problem found
 * while loading is collected in a rules_diag (all of them, not the first),
 * each with file:line:col, the offending text and a hint. */
#ifndef KW_RULES_H
#define KW_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kw_addr.h"
#include "kw_err.h"
#include "kw_time.h"
#include "kw_txn.h"
#include "kw_tz.h"

/* ---- diagnostics ------------------------------------------------------ */

enum rules_diag_level { RULES_DIAG_ERROR = 0, RULES_DIAG_WARNING = 1 };

struct rules_diag_item {
    enum rules_diag_level level;
    char *file;    /* as given or joined from the rules path */
    int line, col; /* 1-based; 0 when the problem has no position */
    char *msg;     /* what is wrong */
    char *text;    /* the offending source line (may be NULL) */
    char *hint;    /* how to fix (may be NULL) */
};

struct rules_diag {
    struct rules_diag_item *items;
    size_t n, cap;
    size_t errors, warnings;
    size_t files;      /* files read by the last load */
    size_t identities; /* identities in the last load */
};

void rules_diag_init(struct rules_diag *d);
void rules_diag_free(struct rules_diag *d);
/* gcc style: "file:line:col: error: msg; hint", the source line, a caret. */
void rules_diag_print(const struct rules_diag *d, FILE *f);
size_t rules_diag_errors(const struct rules_diag *d);
size_t rules_diag_warnings(const struct rules_diag *d);

/* ---- values ----------------------------------------------------------- */

struct rules_loc {
    const char *file; /* owned by the model */
    int line;         /* 1-based; 0 = embedded default */
};

struct rules_cidr {
    struct kw_addr net;
    uint8_t prefix;
};

/* ---- policy model ----------------------------------------------------- */

struct rules_schedule {
    bool set;
    uint8_t days;       /* bit d = tm_wday d (0 = Sunday) */
    uint16_t start_min; /* minutes after local midnight */
    uint16_t end_min;   /* <= start_min: the range crosses midnight; 1440 = 24:00 */
    int64_t grace_s;   /* effective: its own, or detections.schedule.grace */
    bool grace_set;    /* the schedule says grace: itself (0 = strict) */
    struct rules_loc loc;
};

struct rules_access {
    bool has_from, has_until;
    int64_t from_s;  /* first allowed instant (UTC seconds) */
    int64_t until_s; /* first instant NOT allowed (exclusive) */
    struct rules_loc loc;
};

#define RULES_PAT_MAX_METHODS 8
enum rules_seg_kind { RULES_SEG_LIT, RULES_SEG_STAR, RULES_SEG_DSTAR };

struct rules_seg {
    uint8_t kind; /* enum rules_seg_kind */
    char *lit;    /* RULES_SEG_LIT only */
};

/* "METHOD [HOST] PATH": METHOD is * or a comma list (case-sensitive,
 * RFC 9110 §9.1); HOST is matched case-insensitively without port; PATH
 * segments are literal, * (exactly one segment) or ** (any number). */
struct rules_pattern {
    char *text;
    bool any_method;
    unsigned n_methods;
    char methods[RULES_PAT_MAX_METHODS][24];
    char *host; /* lower case, no port; NULL = any host */
    struct rules_seg *segs;
    size_t n_segs;
    struct rules_loc loc;
};

struct rules_limits {
    uint64_t requests_per_hour;       /* 0 = no limit */
    uint64_t response_bytes_per_hour; /* 0 = no limit */
    struct rules_loc loc;
};

enum rules_cred_match {
    RULES_CM_SHA256,
    RULES_CM_BASIC_USER,
    RULES_CM_JWT,
    RULES_CM_CLIENT_ID,
    RULES_CM_CERT_SHA256,  /* client_cert: { sha256 } */
    RULES_CM_CERT_SUBJECT, /* client_cert: { subject } */
};

struct rules_identity {
    char *id, *name;
    char kind[16]; /* contractor | employee | service */
    size_t index;  /* dense 0..n_identities-1 within its model */
    struct rules_loc loc;
    const struct kw_tz *tz; /* never NULL (UTC when not given) */
    struct rules_schedule schedule;
    struct rules_access access;
    struct rules_cidr *sources;
    size_t n_sources;
    struct rules_loc sources_loc;
    struct rules_pattern *scope, *deny;
    size_t n_scope, n_deny;
    struct rules_loc scope_loc, deny_loc;
    struct rules_limits limits;
    /* OAuth (issue 17, rules_oauth.c) */
    char **max_scopes; /* grants a token may hold; "orders:*" = that prefix */
    size_t n_max_scopes;
    bool has_max_scopes;
    struct rules_loc max_scopes_loc;
    int64_t session_max_age_s; /* 0 = no limit */
    struct rules_loc session_loc;
};

/* One `scopes:` entry: requests matching `pattern` need a token holding
 * every grant of at least one alternative (docs/rules.md, scopes). */
struct rules_scope_req {
    struct rules_pattern pattern;
    char **alts; /* each: grants, space-separated, all needed */
    size_t n_alts;
    struct rules_loc loc;
};

/* ---- config ----------------------------------------------------------- */

enum rules_cred_src_kind { RULES_SRC_HEADER, RULES_SRC_QUERY, RULES_SRC_COOKIE };

struct rules_cred_source {
    enum rules_cred_src_kind kind;
    char *name;
};

struct rules_sink {
    char *url;        /* may itself be a secret (Slack): never print it */
    char *secret;     /* resolved from env:NAME; NULL when none */
    int min_severity; /* 1 high .. 3 low: deliver severities <= this */
    char **kinds;     /* alert kind names; NULL/0 = all kinds */
    size_t n_kinds;
};

/* How a service's framework routes requests (docs/config.md, services). */
enum rules_backend {
    RULES_BACKEND_GENERIC = 0,
    RULES_BACKEND_NGINX,
    RULES_BACKEND_APACHE,
    RULES_BACKEND_SPRING,
    RULES_BACKEND_EXPRESS,
    RULES_BACKEND_ASPNET,
    RULES_BACKEND_DJANGO,
    RULES_BACKEND_IIS,
};

/* One entry of `services:`: an API service keywarden knows about. */
struct rules_service {
    char *host;                 /* lower case, no port */
    uint16_t port;              /* 0 = any port */
    char *openapi;              /* OpenAPI document (resolved path) or NULL */
    enum rules_backend backend; /* generic unless written */
    struct rules_loc loc;
};

/* `limits:` of keywarden.yaml (docs/config.md, rules_limits.c): 0 = not
 * written, the compiled default applies. Totals for the whole process;
 * `run` splits them evenly across its packet workers (analyzer/limits.h),
 * except the per-message ones (max_header_bytes, max_header_list,
 * max_table_size, max_fragments). */
struct rules_res_limits {
    uint64_t flow_max;              /* flows tracked at once */
    uint64_t flow_memcap;           /* bytes of per-flow state (table + analyzer) */
    uint64_t stream_memcap;         /* bytes held by TCP reassembly */
    uint64_t defrag_memcap;         /* bytes of IP fragments held */
    uint64_t defrag_max_datagrams;  /* datagrams in reassembly at once */
    uint64_t defrag_max_fragments;  /* fragments per datagram */
    uint64_t http_max_header_bytes; /* one HTTP/1 head (start line + headers) */
    uint64_t http_memcap;           /* bytes all HTTP/1 parsers hold */
    uint64_t http2_memcap;          /* bytes all HTTP/2 parsers hold (HPACK included) */
    uint64_t http2_max_header_list; /* request header list per stream (RFC 9113 §6.5.2) */
    uint64_t http2_max_table_size;  /* HPACK dynamic table per direction */
    uint64_t tls_memcap;            /* bytes all TLS connections hold */
    uint64_t baseline_max_profiles; /* profiles kept (identities + unattributed) */
    uint64_t baseline_max_unattributed; /* of them, for credentials no identity claims */
    uint64_t stream_max_buffer;     /* unconsumed in-order bytes per TCP direction */
    uint64_t stream_ooo_window;     /* bytes held past a hole before it becomes a gap */
    uint64_t http_max_headers;      /* header fields kept per HTTP/1 message */
    uint64_t http_max_pending;      /* HTTP/1 requests awaiting their responses */
    uint64_t http2_max_streams;     /* open HTTP/2 streams followed per connection */
    uint64_t classify_max_active;   /* flows in nDPI classification at once */
    uint64_t http2_max_headers;     /* request fields kept per HTTP/2 stream */
    uint64_t http2_max_continuations; /* CONTINUATION frames per HTTP/2 header block */
    uint64_t http2_max_header_block;  /* encoded bytes per HTTP/2 header block */
    uint64_t http_request_buffer;   /* HTTP/1 request heads held awaiting answers, per connection */
    uint64_t http_response_buffer;  /* the HTTP/1 response head copy, per connection */
    uint64_t stream_ooo_max_segments; /* segments held past a hole per TCP direction */
    struct rules_loc loc;           /* the `limits:` key; line 0 = none */
    struct rules_loc ooo_window_loc; /* its value, checked against stream.max_buffer */
};

struct rules_config {
    struct {
        char *interface, *bpf;
        uint32_t snaplen, buffer_mb;
        unsigned workers; /* 0 = auto */
        bool vlan_tracking; /* VLAN ids in the flow key (default off: mirrors
                               often tag one direction only) */
    } capture;
    struct rules_cred_source *cred_sources;
    size_t n_cred_sources;
    struct {
        char *database;
        int64_t audit_retention_s;
        uint32_t audit_queue;      /* audit rows waiting for the database; 0: the default */
        int64_t alert_retention_s; /* settled alerts and outbox rows, wall clock */
        char *group; /* database and EVE 0640 for this group (folders 2750); NULL: 0600 */
    } storage;
    struct {
        char *eve;
        char *metrics; /* "127.0.0.1:9753": Prometheus endpoint; NULL = off */
    } outputs;
    struct {
        char *user; /* drop to it after opening capture and files; NULL = "keywarden"
                       when that user exists */
    } run;
    struct {
        bool has_slack;
        struct rules_sink slack;
        struct rules_sink *webhooks;
        size_t n_webhooks;
        int64_t suppress_window_s;
        int64_t drain_timeout_s;
        char *syslog; /* facility name, NULL = off */
    } alerts;
    struct {
        char **keylog; /* NSS key log files or directories (resolved paths) */
        size_t n_keylog;
        uint32_t max_sessions; /* client randoms kept; 0 = 65536 */
    } tls;
    char *rules_path; /* resolved against the config file's folder */
    struct rules_res_limits limits;
    struct rules_service *services;
    size_t n_services;
    struct { /* docs/fleet.md; rules_fleet.c */
        char *nats;        /* server URL(s), comma-separated; NULL = no fleet */
        char *sensor;      /* `run` publishes to the fleet under this name */
        uint32_t partitions; /* 16 */
        char *credentials; /* "user:password" or a token (env:); never printed */
        char *creds_file;  /* NATS .creds file (user JWT and NKey seed) */
        char *tls_ca, *tls_cert, *tls_key;
        char *spool;       /* the sensor's spool folder; NULL = next to the database */
        uint64_t spool_max; /* bytes; 1 GiB */
        char *stream;      /* JetStream stream; NULL = "KW_TXN" */
        uint32_t replicas; /* 1; 3 on a three-server cluster */
        int64_t max_age_s, duplicates_s; /* stream limits: 7 d, 2 min */
        int64_t lateness_s; /* how far (packet time) a judge waits for a slow sensor: 10 s */
    } fleet;
};

/* severity 0 = detection off. */
struct rules_detection {
    int severity;       /* 1..3; 0 = off; -1 = the kind's default */
    uint32_t threshold; /* count / distinct_credentials / distinct_ids */
    int64_t window_s;
    struct rules_loc loc;
};

enum rules_sensitivity { RULES_SENS_LOW = 1, RULES_SENS_MEDIUM = 2, RULES_SENS_HIGH = 3 };

struct rules_detections {
    struct rules_detection unknown_credential; /* threshold/window unused */
    struct rules_detection failed_auth;
    struct rules_detection credential_stuffing;
    struct rules_detection enumeration;
    struct rules_detection undocumented_endpoint; /* severity only; off by default */
    struct rules_detection dpop; /* window: how far a proof's iat may be from
                                    the packet clock; jti replays are
                                    remembered for twice that */
    struct {
        int64_t learning_s;
        enum rules_sensitivity sensitivity;
        /* learn_templates: false: the learned endpoint model is only read
         * (templates from OpenAPI documents, the saved model and segment
         * shapes); it learns nothing new */
        bool fixed_templates;
        struct rules_loc loc;
    } baseline;
    struct {
        int64_t grace_s; /* schedules without their own grace: 30 min */
        struct rules_loc loc;
    } schedule;
};

#define RULES_DEFAULT_GRACE_S (30 * 60)

struct rules_index; /* attribution hash index (rules_attr.c) */

struct rules_model {
    struct rules_config config;
    struct rules_detections detections;
    struct rules_identity *identities;
    size_t n_identities;
    struct rules_index *index;
    struct rules_scope_req *scope_reqs; /* `scopes:` of every rules file, in order */
    size_t n_scope_reqs;
    /* internals: identity array capacity, owned file names, time zones,
     * reference count */
    size_t cap_identities;
    char **files;
    size_t n_files;
    struct kw_tz **tzs;
    size_t n_tzs;
    int refs; /* atomic */
    /* unique in the process (never reused, unlike an address): what a
     * cache of results over a model keys on, so a reload is never mistaken
     * for the model before it */
    uint64_t serial;
};

/* ---- loading ---------------------------------------------------------- */

/* Loads the config (NULL = embedded defaults) and every *.yaml / *.yml of
 * the rules path (a folder, sorted by name, or one file; the override wins
 * over `rules:` of the config). Returns KW_E_CONFIG when diag has errors
 * (*out stays NULL); warnings alone still give a model. */
KW_WUR enum kw_err rules_load(const char *config_path, const char *rules_path_override,
                              struct rules_model **out, struct rules_diag *diag);

/* Same, from memory: a config text (NULL = defaults) and one rules text.
 * Names are used in diagnostics only. For tests and the fuzzer. */
KW_WUR enum kw_err rules_load_mem(const char *config_name, const char *config_text,
                                  const char *rules_name, const char *rules_text,
                                  struct rules_model **out, struct rules_diag *diag);

/* Reference counting; rules_model_free drops one reference (the loader's). */
struct rules_model *rules_model_ref(struct rules_model *m);
void rules_model_unref(struct rules_model *m);
void rules_model_free(struct rules_model *m);

/* The `services:` entry of a request's host: host:port first, then the
 * host alone; NULL when none. `hostname` may carry ":port" (Host header);
 * otherwise `dport` is the port. The pointer lives as long as the model. */
const struct rules_service *rules_find_service(const struct rules_model *m, const char *hostname,
                                               uint16_t dport);
const char *rules_backend_name(enum rules_backend b);

const struct rules_identity *rules_find_identity(const struct rules_model *m, const char *id);

/* ---- reload ----------------------------------------------------------- */

struct rules_handle;

/* Takes ownership of `m`; remembers the paths for reloads. */
struct rules_handle *rules_handle_new(struct rules_model *m, const char *config_path,
                                      const char *rules_path_override);
void rules_handle_destroy(struct rules_handle *h);
/* A referenced snapshot: release with rules_model_unref. */
struct rules_model *rules_handle_get(struct rules_handle *h);
/* Loads again; swaps only when the new model has no errors. On failure the
 * running model stays in force and diag says why. */
KW_WUR enum kw_err rules_handle_reload(struct rules_handle *h, struct rules_diag *diag);
/* Number of successful swaps so far. */
uint64_t rules_handle_generation(struct rules_handle *h);

/* ---- attribution ------------------------------------------------------ */

/* The identity that claims the credential, or NULL. O(1): one hash lookup
 * per credential form (fingerprint, Basic user, JWT iss+sub, client_id,
 * client certificate SHA-256 then subject).
 * The result lives as long as the model. */
const struct rules_identity *rules_attribute(const struct rules_model *m, const struct kw_cred *c);
/* For a connection that carries no credential (a TLS session): the one
 * identity whose `sources` contain the address, or NULL when none or
 * several do. O(identities with sources). */
const struct rules_identity *rules_attribute_source(const struct rules_model *m,
                                                    const struct kw_addr *src);
/* Fills ref from id (clears it when id is NULL). */
void rules_identity_ref_fill(const struct rules_identity *id, struct kw_identity_ref *ref);
/* rules_attribute on t->cred, then fills t->identity. */
const struct rules_identity *rules_attribute_txn(const struct rules_model *m, struct kw_txn *t);

/* ---- predicates (pure) ------------------------------------------------ */

/* True when ts lies in an allowed window of the schedule (or no schedule),
 * widened by grace on both sides, in the identity's time zone. */
bool rules_schedule_allows(const struct rules_schedule *s, const struct kw_tz *tz, kw_ts ts);
/* The same answer, and *until: the answer holds for every instant in
 * [ts, *until) (the next edge of a window, widened by grace, after ts; at
 * most an hour on), so a caller may keep it that long instead of asking
 * again for every request (the judge: ~2 % of the packet thread with
 * rules, issue 13). */
bool rules_schedule_allows_span(const struct rules_schedule *s, const struct kw_tz *tz, kw_ts ts,
                                kw_ts *until);
/* 0 inside; -1 before `from`; +1 at or after `until`. */
int rules_access_check(const struct rules_access *a, kw_ts ts);
/* True when the address is in one of the sources (or there are none). */
bool rules_sources_allow(const struct rules_identity *id, const struct kw_addr *src);

enum rules_scope_verdict {
    RULES_SCOPE_OK,
    RULES_SCOPE_DENIED, /* a deny pattern matched (deny wins) */
    RULES_SCOPE_METHOD, /* path+host in scope, but not for this method */
    RULES_SCOPE_OUT,    /* no scope pattern matches */
};
/* `path` is the normalised path (kw_txn.path), never the raw target. *which
 * is the deny pattern that matched, or the scope pattern whose path
 * matched (METHOD), or NULL. */
enum rules_scope_verdict rules_scope_check(const struct rules_identity *id, const char *method,
                                           const char *host, const char *path,
                                           const struct rules_pattern **which);
/* The same, path literals compared ignoring ASCII case when `nocase`: for
 * a backend whose routing ignores case (analyzer/path/persona.h). */
enum rules_scope_verdict rules_scope_check_case(const struct rules_identity *id,
                                                const char *method, const char *host,
                                                const char *path, bool nocase,
                                                const struct rules_pattern **which);
bool rules_pattern_match(const struct rules_pattern *p, const char *method, const char *host,
                         const char *path);
/* Path (and host) only, ignoring the method. */
bool rules_pattern_match_path(const struct rules_pattern *p, const char *host, const char *path);

/* OAuth grants (rules_oauth.c). `grants` is a token's space-separated list
 * (kw_jwt_claims.scope). The first `scopes:` entry matching the request
 * whose requirement the grants do not meet, or NULL; *applied (may be
 * NULL) counts the entries that matched. */
const struct rules_scope_req *rules_scopes_unmet(const struct rules_model *m, const char *method,
                                                 const char *host, const char *path,
                                                 const char *grants, size_t *applied);
bool rules_grants_have(const char *grants, const char *g, size_t glen);
/* grants meet at least one alternative of r. */
bool rules_scope_req_met(const struct rules_scope_req *r, const char *grants);
/* Grants beyond the identity's max_scopes: their number, and the first of
 * them space-separated in buf (cut to fit). 0 when it has no cap. */
size_t rules_grants_over_cap(const struct rules_identity *id, const char *grants, char *buf,
                             size_t len);

/* "Mon–Fri 09:00–19:00" (UTF-8 en dashes); "" when not set. */
void rules_schedule_describe(const struct rules_schedule *s, char *buf, size_t len);
/* Seconds from ts to the nearest window of the schedule (grace not
 * counted; 0 inside a window or without a schedule). */
int64_t rules_schedule_distance(const struct rules_schedule *s, const struct kw_tz *tz, kw_ts ts);
/* Local "02:13 Sat" of ts in tz. */
void rules_local_describe(const struct kw_tz *tz, kw_ts ts, char *buf, size_t len);

/* "high"/"medium"/"low" -> 1..3, 0 when unknown. */
int rules_severity_parse(const char *s);

#endif
