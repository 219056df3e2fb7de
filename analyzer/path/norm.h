/* norm: the request path as policy sees it, and its endpoint template.
 *
 * The one thing to know: norm_path decodes percent-encodings ONCE, treats
 * %2f, %5c and '\' as '/', then removes dot segments (RFC 3986 §5.2.4) and
 * empty segments, so every spelling of /v1/admin/users a server would route
 * there normalises to exactly that; what is not decoded (reserved chars,
 * non-ASCII, NUL, stray '%') is written as canonical upper-case %XX, so the
 * output is printable ASCII and has one spelling. See docs/http.md. */
#ifndef KW_NORM_H
#define KW_NORM_H

#include <stddef.h>
#include <stdint.h>

/* Normalise the path of a request target (origin-form, absolute-form,
 * authority-form or "*"). Writes a NUL-terminated path that always starts
 * with '/' (outcap >= 2) and returns KW_TXN_F(PATH_*) flags, plus
 * KW_TXN_F(TRUNCATED_FIELD) when out was too small (the output is then
 * cut at a segment boundary where possible). *outlen excludes the NUL. */
uint32_t norm_path(const char *target, size_t len, char *out, size_t outcap, size_t *outlen);

/* Endpoint template of a normalised path with no learned model (cold
 * start; analyzer/shapes learns better ones from traffic): a segment of a
 * strong id shape (shape.h: numbers, UUIDs, ULIDs, hex, dates, e-mails,
 * prefixed ids, opaque tokens) becomes "{id}", keeping a suffix such as
 * ".json" or ":cancel"; a date as the first segment (an API version such
 * as /2015-03-31) and every other segment are kept. Writes a
 * NUL-terminated template (cut to fit), returns its length. */
size_t norm_template(const char *path, size_t len, char *out, size_t outcap);

#endif
