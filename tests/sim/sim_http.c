/* sim_http: responses with Content-Length or chunked framing, optional gzip
 * (RFC 9110 §8.4.1.3), and plausible JSON records for an API resource. */
#include "sim_http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

void sim_buf_reserve(struct sim_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap) return;
    size_t nc = b->cap ? b->cap : 1024;
    while (nc < b->len + extra)
        nc *= 2;
    b->p = realloc(b->p, nc);
    if (!b->p) abort();
    b->cap = nc;
}

void sim_buf_add(struct sim_buf *b, const void *d, size_t n)
{
    sim_buf_reserve(b, n + 1);
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

void sim_buf_printf(struct sim_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    sim_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sim_buf_free(struct sim_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

const char *sim_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

void sim_http_date(char *buf, size_t n, int64_t now_us)
{
    time_t t = (time_t)(now_us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(buf, n, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday], tm.tm_mday,
             mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static const char *const k_status[] = {"paid", "open", "overdue", "void", "draft"};
static const char *const k_names[] = {"Nordwind GmbH",   "Acme Corp",  "Blue Harbor Ltd",
                                      "Sakura Trading",  "Oak & Iron", "Pampas SA",
                                      "Fjord Analytics", "Lumen BV"};
static const char *const k_cur[] = {"EUR", "USD", "GBP", "JPY", "INR"};

static void json_record(struct sim_buf *b, struct sim_rng *r, const char *res, int64_t now)
{
    char date[40];
    time_t t = (time_t)(now / 1000000 - (int64_t)sim_rng_below(r, 86400 * 400));
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    unsigned id = (unsigned)sim_rng_range(r, 1000, 999999);
    sim_buf_printf(b,
                   "{\"id\":%u,\"type\":\"%s\",\"customer\":{\"id\":%u,\"name\":\"%s\"},"
                   "\"amount\":{\"value\":%u.%02u,\"currency\":\"%s\"},\"status\":\"%s\","
                   "\"created_at\":\"%s\",\"lines\":%u,\"reference\":\"%s-%08x\"}",
                   id, res, (unsigned)sim_rng_range(r, 1, 20000), k_names[sim_rng_below(r, 8)],
                   (unsigned)sim_rng_below(r, 100000), (unsigned)sim_rng_below(r, 100),
                   k_cur[sim_rng_below(r, 5)], k_status[sim_rng_below(r, 5)], date,
                   (unsigned)sim_rng_range(r, 1, 40), res, (unsigned)sim_rng_u64(r));
}

void sim_json_body(struct sim_buf *b, struct sim_rng *r, const char *res, size_t size, int64_t now)
{
    size_t start = b->len;
    sim_buf_printf(b, "{\"data\":[");
    int n = 0;
    while (b->len - start + 40 < size || n == 0) {
        if (n++) sim_buf_add(b, ",", 1);
        json_record(b, r, res, now);
    }
    sim_buf_printf(b, "],\"count\":%d,\"has_more\":%s}", n,
                   sim_rng_chance(r, 0.3) ? "true" : "false");
}

/* One item, as REST answers GET/PUT/PATCH of /collection/{name}: its
 * name among its fields, after echo_skip nested records (a policy
 * document, a spec) that may push it past what a reader looks at. */
static void item_body(struct sim_buf *b, struct sim_rng *r, const struct sim_resp_spec *s)
{
    size_t start = b->len;
    sim_buf_printf(b, "{");
    for (unsigned k = 0; k < s->echo_skip; k++) {
        sim_buf_printf(b, "\"part%u\":", k);
        json_record(b, r, s->resource, s->now);
        sim_buf_add(b, ",", 1);
    }
    sim_buf_printf(b, "\"%s\": \"%.*s\",\"detail\":", s->echo_key, (int)s->echo_len,
                   s->echo_val);
    size_t used = b->len - start;
    sim_json_body(b, r, s->resource, s->body_size > used + 60 ? s->body_size - used : 60, s->now);
    sim_buf_add(b, "}", 1);
}

static void gzip_buf(const struct sim_buf *in, struct sim_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    uLong bound = deflateBound(&z, (uLong)in->len) + 32;
    sim_buf_reserve(out, bound);
    z.next_in = in->p;
    z.avail_in = (uInt)in->len;
    z.next_out = out->p + out->len;
    z.avail_out = (uInt)bound;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    out->len += bound - z.avail_out;
    deflateEnd(&z);
}

static void error_body(struct sim_buf *b, int status)
{
    const char *code = status == 401   ? "invalid_credentials"
                       : status == 403 ? "forbidden"
                       : status == 404 ? "not_found"
                       : status == 429 ? "rate_limited"
                                       : "internal_error";
    sim_buf_printf(b, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"status\":%d}}", code,
                   sim_http_reason(status), status);
}

bool sim_http_body(struct sim_buf *body, struct sim_buf *coded, struct sim_rng *r,
                   const struct sim_resp_spec *s)
{
    bool has_body = s->status != 204;
    if (has_body) {
        if (s->status >= 200 && s->status < 300 && s->echo_key)
            item_body(body, r, s);
        else if (s->status >= 200 && s->status < 300)
            sim_json_body(body, r, s->resource, s->body_size, s->now);
        else
            error_body(body, s->status);
    }
    bool gz = has_body && s->gzip && body->len > 200;
    if (gz)
        gzip_buf(body, coded);
    else if (has_body)
        sim_buf_add(coded, body->p, body->len);
    return gz;
}

void sim_http_response(struct sim_buf *b, struct sim_rng *r, const struct sim_resp_spec *s,
                       struct sim_resp_out *o)
{
    struct sim_buf body = {0}, coded = {0};
    bool has_body = s->status != 204;
    bool gz = sim_http_body(&body, &coded, r, s);
    char date[64];
    sim_http_date(date, sizeof date, s->now);
    sim_buf_printf(b, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: nginx\r\n", s->status,
                   sim_http_reason(s->status), date);
    if (has_body) sim_buf_printf(b, "Content-Type: application/json; charset=utf-8\r\n");
    if (gz) sim_buf_printf(b, "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
    if (s->status == 429) sim_buf_printf(b, "Retry-After: 30\r\n");
    if (s->status == 401) sim_buf_printf(b, "WWW-Authenticate: Bearer realm=\"api\"\r\n");
    sim_buf_printf(b, "X-Request-Id: %016llx\r\n", (unsigned long long)sim_rng_u64(r));
    bool chunked = has_body && s->chunked;
    if (chunked)
        sim_buf_printf(b, "Transfer-Encoding: chunked\r\n");
    else if (s->status != 204)
        sim_buf_printf(b, "Content-Length: %zu\r\n", coded.len);
    sim_buf_printf(b, "Connection: %s\r\n\r\n", s->close ? "close" : "keep-alive");
    if (chunked) { /* RFC 9112 §7.1: chunks of varying size, then a zero chunk */
        size_t off = 0;
        while (off < coded.len) {
            size_t n = (size_t)sim_rng_range(r, 512, 16384);
            if (n > coded.len - off) n = coded.len - off;
            sim_buf_printf(b, "%zx\r\n", n);
            sim_buf_add(b, coded.p + off, n);
            sim_buf_add(b, "\r\n", 2);
            off += n;
        }
        sim_buf_add(b, "0\r\n\r\n", 5);
    } else if (coded.len) {
        sim_buf_add(b, coded.p, coded.len);
    }
    o->body_wire = coded.len;
    o->body_identity = body.len;
    sim_buf_free(&body);
    sim_buf_free(&coded);
}
