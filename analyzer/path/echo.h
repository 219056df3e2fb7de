/* echo: which segments of a request path the response named back.
 *
 * REST APIs answer a request for one item with that item, and the item
 * carries its own name or id: GET /policies/api-green returns
 * {"policyName":"api-green",...}, RabbitMQ's GET /api/queues/%2F/orders
 * returns {"name":"orders",...}. A route word (/v1/users/me,
 * /orders/export) is not returned as a value of its own answer. So a path
 * segment that comes back whole as a JSON string value is evidence that
 * the segment is a value (analyzer/shapes, docs/shapes.md rule 6), the
 * one kind of evidence that separates a small pool of word values from an
 * API's route words, which look alike by shape (docs/detection-results.md).
 *
 * The one thing to know: only the mask leaves the HTTP parsers; the body
 * bytes are looked at while the response streams by and never stored. */
#ifndef KW_ECHO_H
#define KW_ECHO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of a response body looked at (the start of it): an item's name
 * or id is usually early in its JSON, and a bounded look keeps the cost
 * flat. Not 1 KiB: RabbitMQ's queue object, keys in alphabetical order,
 * has "name" at byte 1,276 once messages have flowed. */
#define ECHO_HEAD 4096

/* How to read a response's body for echo_segments: not at all, as it is,
 * or through zlib (gzip, x-gzip, deflate). Looked at: a 2xx answer whose
 * Content-Type is JSON (application/json, application/problem+json,
 * application/vnd.x+json, ...). ctype / cenc: the header values, NULL
 * when absent. */
enum echo_coding { ECHO_NONE, ECHO_PLAIN, ECHO_INFLATE };
enum echo_coding echo_wanted(int status, const char *ctype, size_t ctype_len, const char *cenc,
                             size_t cenc_len);
/* Its two halves, for a parser that meets the headers one by one: is the
 * Content-Type JSON; how is a body with this Content-Encoding read (NULL:
 * none sent, as it is). */
bool echo_json_type(const char *ctype, size_t len);
enum echo_coding echo_coding_of(const char *cenc, size_t len);

/* May the answer to a request for this target (raw, as sent; a query
 * ignored) name its last segment usefully: the same test echo_segments
 * makes, so a parser keeps no body it would not use. */
bool echo_target(const char *target, size_t len);

/* Set in a mask when the whole answer was looked at (its body fit in
 * ECHO_HEAD and arrived without a hole): a segment it does not name, it
 * does not name at all. */
#define ECHO_WHOLE (1u << 31)

/* Bit i set: segment i (0 = first) of the normalised path path[0..len)
 * appears in body[0..n) as the whole string value of a member named like
 * an id or a name ("policyName": "seg", "id": "seg"; echo.c says which). Segments of 1 character, over 128,
 * or holding a byte JSON would escape are never reported; segments past
 * the 31st neither (bit 31 is ECHO_WHOLE). Only segments rule 6 can use
 * are looked for: the last, not the first, not a number, not after a
 * number.
 * body[n] must be NUL: the search is strstr's (a NUL inside the body ends
 * the look there). */
uint32_t echo_segments(const char *path, size_t len, const char *body, size_t n);

#endif
