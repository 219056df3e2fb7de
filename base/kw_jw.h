/* kw_jw: a small streaming JSON writer into a caller's fixed buffer, for
 * the records written once per transaction and per flow. Building those
 * with jansson (a tree of heap objects, then a dump) was the largest cost
 * of the whole packet path after reassembly; this writes the text
 * directly.
 *
 * Strings are network bytes: valid UTF-8 passes through, anything else is
 * written as the text \xNN (a backslash escaped for JSON), exactly as
 * kw_json_bytes() does, so both writers produce the same values; control
 * characters are escaped as jansson escapes them (\n, \u001B), so the
 * same value gives the same bytes from either writer.
 * When the buffer is too small the writer stops, sets `overflow`, and the
 * caller must not use the text (kw_jw_ok() says false). */
#ifndef KW_JW_H
#define KW_JW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KW_JW_MAX_DEPTH 8

struct kw_jw {
    char *buf;
    size_t len, cap;
    bool overflow;
    int depth;
    bool first[KW_JW_MAX_DEPTH]; /* no comma needed before the next member */
};

void kw_jw_init(struct kw_jw *w, char *buf, size_t cap);
static inline bool kw_jw_ok(const struct kw_jw *w)
{
    return !w->overflow && w->depth == 0;
}

/* key is NULL inside arrays and for the top-level object. */
void kw_jw_obj_begin(struct kw_jw *w, const char *key);
void kw_jw_obj_end(struct kw_jw *w);
void kw_jw_arr_begin(struct kw_jw *w, const char *key);
void kw_jw_arr_end(struct kw_jw *w);
void kw_jw_strn(struct kw_jw *w, const char *key, const char *s, size_t n);
void kw_jw_str(struct kw_jw *w, const char *key, const char *s);
/* Skipped when s is NULL or empty (most optional EVE fields). */
void kw_jw_str_opt(struct kw_jw *w, const char *key, const char *s);
void kw_jw_int(struct kw_jw *w, const char *key, int64_t v);
void kw_jw_bool(struct kw_jw *w, const char *key, bool v);
/* A duration in microseconds as milliseconds with 3 decimals ("12.345"),
 * what "%.3f" of us / 1000.0 prints. */
void kw_jw_ms(struct kw_jw *w, const char *key, int64_t us);
/* Members named by a key known when compiled, for the records written
 * once per transaction: KW_JK("status") is the quoted key with its colon,
 * "\"status\":", and its length (only a string literal compiles), copied
 * as it stands: no strlen, no escaping test (issue 13: a member cost ~120
 * instructions, 30 of them a record, a third of the EVE writer's time).
 * The key must be plain (letters, digits, '_'); debug builds check it. */
#define KW_JK(k) ("\"" k "\":"), (sizeof("\"" k "\":") - 1)
void kw_jw_obj_begin_k(struct kw_jw *w, const char *qk, size_t qkl);
void kw_jw_arr_begin_k(struct kw_jw *w, const char *qk, size_t qkl);
void kw_jw_str_k(struct kw_jw *w, const char *qk, size_t qkl, const char *s);
void kw_jw_str_opt_k(struct kw_jw *w, const char *qk, size_t qkl, const char *s);
void kw_jw_int_k(struct kw_jw *w, const char *qk, size_t qkl, int64_t v);
void kw_jw_bool_k(struct kw_jw *w, const char *qk, size_t qkl, bool v);
void kw_jw_ms_k(struct kw_jw *w, const char *qk, size_t qkl, int64_t us);

/* A jansson value, dumped compact (as json_dumps(v, JSON_COMPACT) writes
 * it) straight into the buffer; for the few parts still built as jansson
 * trees (an alert's evidence). */
struct json_t;
void kw_jw_json(struct kw_jw *w, const char *key, const struct json_t *v);

#endif
