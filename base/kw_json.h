/* kw_json: helpers for building EVE records with jansson from network
 * bytes. jansson refuses invalid UTF-8, so network strings go through
 * kw_json_bytes(), which escapes bytes that are not valid UTF-8 as \xNN
 * text (Suricata prints them the same way). */
#ifndef KW_JSON_H
#define KW_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is not
 * one (NUL counts as invalid, so it is escaped too). left >= 1. */
size_t kw_utf8_seq(const uint8_t *p, size_t left);

/* New reference; never NULL unless out of memory. */
json_t *kw_json_bytes(const uint8_t *p, size_t len);

/* The text kw_json_bytes(p, len) holds, written into out (NUL-terminated;
 * cut at a whole character or \xNN when cap is short). Returns its
 * length. For lines built from the same values without jansson. */
size_t kw_json_text(char *out, size_t cap, const uint8_t *p, size_t len);

/* Set obj[key] to kw_json_bytes(p,len); no-op when p is NULL. */
void kw_json_set_bytes(json_t *obj, const char *key, const uint8_t *p, size_t len);

/* Dump one record as a single line + '\n' to f. Returns 0 or -1. */
int kw_json_write_line(json_t *rec, void *file /* FILE* */);

#endif
