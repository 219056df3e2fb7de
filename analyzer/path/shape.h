/* shape: what one path segment looks like, the evidence an endpoint
 * template starts from. A segment is either a *strong* identifier shape
 * (a number, a UUID, a ULID, a Mongo ObjectId or other long hex, a date,
 * an e-mail address, a prefixed id such as cus_NffrFeUfNV2Hib or
 * INV-2026-754865, an opaque base62 token) that no API uses as a fixed
 * route word, or a version (v1, 2.0, v1beta1), or *weak*: a word, a slug,
 * a short code, which only evidence from traffic can turn into a
 * parameter (analyzer/shapes/routes.c).
 *
 * The one thing to know: the rules look at character classes only (no
 * list of words, no per-API format), so they are the same for every
 * service; docs/shapes.md gives each rule with its examples and the
 * literal route words of 281 public APIs that it must leave alone. */
#ifndef KW_SHAPE_H
#define KW_SHAPE_H

#include <stdbool.h>
#include <stddef.h>

enum shape_kind {
    SHAPE_WORD = 0, /* weak: word, slug, short code */
    SHAPE_INT,      /* decimal digits */
    SHAPE_UUID,     /* 8-4-4-4-12 hex */
    SHAPE_HEX,      /* >= 8 hex digits with a digit (ObjectId, hashes) */
    SHAPE_ULID,     /* 26 chars of Crockford base32 */
    SHAPE_DATE,     /* 2026-03-01, 2026-03, 2026-03-01T10:00:00Z */
    SHAPE_EMAIL,    /* local@domain.tld */
    SHAPE_PREFIXED, /* parts joined by - _ . : ~ with an id-like part */
    SHAPE_TOKEN,    /* one opaque id-like run (base62, base36 codes) */
    SHAPE_VERSION,  /* v1, v2.1, v1beta1, 2.0, 1.2.3 */
    SHAPE_NAME,     /* a weak value proven a parameter by evidence (learned) */
    SHAPE__COUNT
};

/* Classifies segment s[0..n). A segment with a suffix (".json",
 * ":cancel") is classified without it: see shape_core. */
enum shape_kind shape_classify(const char *s, size_t n);

/* Strong: a parameter at first sight (everything but WORD, VERSION and
 * NAME). */
bool shape_is_strong(enum shape_kind k);

/* Length of the core of a segment: "123.json" -> 3 (suffix ".json"),
 * "{x}:cancel" style "abc:cancel" -> 3 (suffix ":cancel"); otherwise n.
 * A suffix is '.' + 1-5 letters/digits starting with a letter, or ':' + a
 * word (Google's custom methods, AIP-136). */
size_t shape_core(const char *s, size_t n);

/* The value inside a segment: returns the core's length and sets *pre to
 * where it starts. Besides shape_core's suffixes, an OData key
 * (RFC-less but common: Updates('abc'), Orders(42)) has the entity name
 * and parenthesis (and quote) as prefix and the closing ones as suffix. */
size_t shape_split(const char *s, size_t n, size_t *pre);

/* "int", "uuid", ... "name"; "word" for SHAPE_WORD. */
const char *shape_kind_name(enum shape_kind k);

#endif
