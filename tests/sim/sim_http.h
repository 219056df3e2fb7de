/* sim_http: HTTP/1.1 messages (RFC 9112) and the JSON bodies inside them.
 * The one thing to know: bodies are generated from the rng so they are
 * realistic in shape and size but deterministic; gzip uses real zlib output
 * (mtime 0, so it is reproducible), and a chunked body is framed after any
 * content coding, as RFC 9112 §7 orders it. */
#ifndef SIM_HTTP_H
#define SIM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim_rng.h"

struct sim_buf {
    uint8_t *p;
    size_t len, cap;
};

void sim_buf_reserve(struct sim_buf *b, size_t extra);
void sim_buf_add(struct sim_buf *b, const void *d, size_t n);
void sim_buf_printf(struct sim_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_buf_free(struct sim_buf *b);

/* A JSON document of about `size` bytes describing `resource` records. */
void sim_json_body(struct sim_buf *b, struct sim_rng *r, const char *resource, size_t size,
                   int64_t now_us);

struct sim_resp_spec {
    int status;
    size_t body_size; /* identity body size wanted */
    bool gzip, chunked, close;
    const char *resource;
    int64_t now; /* µs epoch, for the Date header (RFC 9110 §6.6.1) */
    /* a 2xx answer for one item: {"<echo_key>":"<echo_val>", ...} with
     * echo_skip records before the member; echo_key NULL: a listing */
    const char *echo_key, *echo_val;
    size_t echo_len;
    unsigned echo_skip;
};

struct sim_resp_out {
    size_t body_wire;     /* content-coded body bytes, chunk framing removed */
    size_t body_identity; /* body bytes before content coding */
};

/* The body of a response as sim_http_response makes it: identity bytes in
 * body, what goes on the wire (gzip-coded when it returns true) in coded. */
bool sim_http_body(struct sim_buf *body, struct sim_buf *coded, struct sim_rng *r,
                   const struct sim_resp_spec *s);

void sim_http_response(struct sim_buf *b, struct sim_rng *r, const struct sim_resp_spec *s,
                       struct sim_resp_out *o);

const char *sim_http_reason(int status);
void sim_http_date(char *buf, size_t n, int64_t now_us);

#endif
