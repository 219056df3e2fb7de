/* persona: what reaches a handler, by the framework behind the API (the
 * service's `backend:` in keywarden.yaml, docs/personalities.md).
 *
 * The one thing to know: norm_path gives ONE strict reading of a request
 * (decode once, dot segments, separators); a backend may read the same
 * bytes differently (drop ";params", ignore case, decode twice, take the
 * method from X-HTTP-Method-Override or the target from X-Original-URL).
 * persona_scan records on the transaction what the request asks for
 * (raw override values and flags, every backend alike); persona_effective
 * then works out, by the personality table, the method and path the
 * handler runs (kw_txn.eff_method / eff_path), which scope, deny and
 * method rules judge. `generic` honours nothing for certain: it leaves the
 * wire request as it is and offers what an override asks for as a second
 * reading, judged too (the judge fires when either is forbidden). */
#ifndef KW_PERSONA_H
#define KW_PERSONA_H

#include <stddef.h>
#include <stdint.h>

#include "kw_slice.h"
#include "kw_txn.h"
#include "rules.h"

#define PERSONA_SRC_BIT(s) (1u << (s)) /* s: enum kw_ovr_src */

/* How a personality reads a path (struct persona.path). */
#define PERSONA_MATRIX (1u << 0)   /* ";params" dropped from every segment */
#define PERSONA_NOCASE (1u << 1)   /* routes match whatever the case */
#define PERSONA_DECODE2 (1u << 2)  /* the path is percent-decoded a second time */
#define PERSONA_OVERLONG (1u << 3) /* overlong UTF-8 decoded (%c0%ae is '.') */
#define PERSONA_SUFFIX (1u << 4)   /* /users.json reaches /users */
#define PERSONA_TRAILING (1u << 5) /* /users/ reaches /users */
/* kw_txn.eff_how besides the path bits: an override was taken */
#define PERSONA_EFF_METHOD (1u << 8)
#define PERSONA_EFF_URL (1u << 9)

/* One row of the personality table (persona.c; docs/personalities.md
 * says why each cell is what it is). */
struct persona {
    const char *name;   /* rules_backend_name */
    unsigned path;      /* PERSONA_* */
    unsigned overrides; /* PERSONA_SRC_BIT of each override honoured */
};

/* The row of a backend (generic for an unknown value). Lives forever. */
const struct persona *persona_get(enum rules_backend b);

/* Reads the request's override headers and its ?_method= parameter into
 * t->ovr_method/_src and t->ovr_url/_src (the first of each, in the
 * order of enum kw_ovr_src; raw, cut to fit) and returns the flags to
 * add: METHOD_OVERRIDE, URL_OVERRIDE, TRUNCATED_FIELD. Header names
 * compare case-insensitively; `target` is the raw request target. */
uint32_t persona_scan(const struct kw_hdr *h, size_t n, const char *target, size_t tlen,
                      struct kw_txn *t);

/* Sets t->backend and t->eff_method / t->eff_path: the method and path
 * the backend `b` runs for t, left empty when they are the wire ones.
 * For generic, what the overrides ask for (a reading the judge checks
 * besides the wire one). Returns a flag to add (TRUNCATED_FIELD) or 0. */
uint32_t persona_effective(enum rules_backend b, struct kw_txn *t);

/* True when the backend's reading replaces the wire one for the judge
 * (every personality but generic, which judges both). */
bool persona_certain(const struct kw_txn *t);

/* generic's loose reading of t's path, judged by deny rules only (the
 * judge; docs/personalities.md): ";params" dropped from the raw target
 * before normalising (Tomcat, Spring), a last-segment suffix dropped
 * (Spring before 5.3), case folded to lower (Express, ASP.NET, IIS).
 * Writes it to out (cap bytes, NUL-terminated, *len its length) and
 * returns the PERSONA_* bits that changed it, 0 when it is the wire path. */
unsigned persona_loose(const struct kw_txn *t, char *out, size_t cap, size_t *len);

/* The PERSONA_* path bits of `how` in words ("case ignored", ...), joined
 * by ", "; returns buf. */
const char *persona_describe_how(unsigned how, char *buf, size_t len);

/* What the request did to be read that way, for an alert:
 * "X-HTTP-Method-Override: DELETE", "X-Original-URL: /v1/admin/users",
 * "matrix parameters dropped", "case ignored", ... joined by ", ";
 * "" when nothing. Returns buf. */
const char *persona_describe(const struct kw_txn *t, char *buf, size_t len);

#endif
