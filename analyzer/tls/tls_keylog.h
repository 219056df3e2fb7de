/* tls_keylog: the session secrets of an NSS key log (the SSLKEYLOGFILE
 * format written by curl, browsers, HAProxy, Envoy's tls_keylog, Java
 * agents): "CLIENT_RANDOM <client random> <master secret>" for TLS 1.2,
 * "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
 * "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0" for TLS 1.3, each
 * with the hex client random and secret.
 *
 * The one thing to know: these secrets decrypt every session they name, so
 * they live only in this table (bounded; the oldest entry is wiped to make
 * room), are wiped when replaced or freed, and are never printed: a bad
 * line is counted, its content never shown. A file that others may read is
 * refused. The table is shared by all packet workers behind a mutex; files
 * are read by tls_keylog_poll (at start, and by a follower thread in live
 * runs), never on the packet path. */
#ifndef KW_TLS_KEYLOG_H
#define KW_TLS_KEYLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kw_err.h"

struct tls_secrets {
    uint8_t master[48]; /* TLS 1.2 CLIENT_RANDOM */
    uint8_t chts[48], shts[48], cts0[48], sts0[48]; /* TLS 1.3 */
    uint8_t len13;    /* length of the TLS 1.3 secrets (32 or 48) */
    uint8_t have;     /* TLS_SEC_* bits */
};
enum {
    TLS_SEC_MASTER = 1,
    TLS_SEC_CHTS = 2,
    TLS_SEC_SHTS = 4,
    TLS_SEC_CTS0 = 8,
    TLS_SEC_STS0 = 16,
};

#define TLS_KEYLOG_COUNTERS(X)                                                        \
    X(lines, "key log lines read")                                                    \
    X(secrets, "secrets stored")                                                      \
    X(bad_lines, "lines that are not a key log entry (content never shown)")          \
    X(ignored_labels, "entries of labels not used (early data, exporter, RSA)")       \
    X(evicted, "sessions forgotten to stay within max_sessions (secrets wiped)")      \
    X(files, "key log files followed")                                                \
    X(refused_files, "files refused: others may read or write them")                  \
    X(reopened, "files read again from the start (rotated or truncated)")             \
    X(read_errors, "failed reads")                                                    \
    X(lookups, "lookups")                                                             \
    X(hits, "lookups that found a session")

struct tls_keylog_counters {
#define TLS_KL_FIELD(n, d) uint64_t n;
    TLS_KEYLOG_COUNTERS(TLS_KL_FIELD)
#undef TLS_KL_FIELD
};

struct tls_keylog;

/* max_sessions: client randoms kept (0: 65536). */
enum kw_err tls_keylog_new(size_t max_sessions, struct tls_keylog **out) KW_WUR;
/* Stops the follower, wipes every secret, frees. NULL is a no-op. */
void tls_keylog_destroy(struct tls_keylog *kl);

/* Follows a file, or every regular file of a directory (files that
 * appear later included). Reads what is there now. A file (or directory)
 * that others may read or write is refused: KW_E_CONFIG with `err` saying
 * what to do; a path that does not exist yet is followed (it is read when
 * it appears) unless must_exist. */
enum kw_err tls_keylog_add_path(struct tls_keylog *kl, const char *path, bool must_exist,
                                char *err, size_t errlen) KW_WUR;
/* Reads what the followed files gained since the last poll (rotation and
 * truncation handled). Returns the number of new secrets. */
size_t tls_keylog_poll(struct tls_keylog *kl);
/* A thread that polls every interval_ms (wall clock), for live runs. */
enum kw_err tls_keylog_follow(struct tls_keylog *kl, unsigned interval_ms) KW_WUR;

/* One key log line (without or with its newline). 1 stored, 0 ignored
 * (comment, blank, unused label), -1 malformed. */
int tls_keylog_add_line(struct tls_keylog *kl, const char *line, size_t len);

/* Copies the secrets known for a client random (thread-safe); false when
 * none. The caller wipes its copy (OPENSSL_cleanse) when done. */
bool tls_keylog_lookup(struct tls_keylog *kl, const uint8_t client_random[32],
                       struct tls_secrets *out);
/* Changes whenever a secret is added: a session waiting for its keys
 * looks again only when this moved. */
uint64_t tls_keylog_generation(const struct tls_keylog *kl);
void tls_keylog_get_counters(struct tls_keylog *kl, struct tls_keylog_counters *out);

#endif
