/* al_util: small pure helpers of the alerts module, kept apart so unit
 * tests reach them without a network: retry classification, backoff with
 * full jitter, Retry-After parsing, HMAC signatures, SHA-256 hex, UTF-8
 * safe truncation and IANA time zones read from TZif files.
 *
 * The one thing to know: nothing here keeps state; the caller owns the
 * jitter RNG state and every buffer. */
#ifndef KW_AL_UTIL_H
#define KW_AL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum al_action { AL_DONE, AL_RETRY, AL_PERMANENT };

/* What to do after an attempt: curl_code is the CURLcode (0 = an HTTP
 * answer came back, then status decides). 2xx done; 408, 429, 5xx and
 * every transport error retry; any other status permanent (3xx too: we do
 * not follow redirects, a moved webhook is a configuration error). */
enum al_action al_classify(int curl_code, long status);

uint64_t al_rng_next(uint64_t *state);
/* "Full jitter" (AWS architecture blog, 2015): uniform in
 * [0, min(cap, base * 2^(attempt-1))] ms; attempt >= 1. */
long al_backoff_ms(unsigned attempt, long base_ms, long cap_ms, uint64_t *rng);
/* Retry-After (RFC 9110 §10.2.3): delta-seconds or an HTTP-date. Returns
 * the wait in ms from now (>= 0), or -1 when absent or unparsable. */
long al_retry_after_ms(const char *value, time_t now);

/* hex of SHA-256; out >= 65 bytes. */
void al_sha256_hex(const void *p, size_t n, char *out);
/* X-Keywarden-Signature value "sha256=<hex HMAC-SHA256(secret, ts "." body)>";
 * out >= 72 bytes. */
bool al_sign(const char *secret, const char *ts, const char *body, size_t body_len, char *out);

/* Cuts s to at most max bytes without splitting a UTF-8 sequence, ending
 * with "…" when it cut. max >= 4. Returns the new length. */
size_t al_utf8_trunc(char *s, size_t max);

/* UTC offset (seconds) and abbreviation of IANA zone `zone` at Unix time
 * t, read from /usr/share/zoneinfo (TZif v2+ 64-bit data). Thread-safe:
 * no TZ environment, no tzset. false on an unknown or invalid zone. Past
 * the file's last transition (2037 in Debian's "fat" files) the last
 * rule's type is kept. abbr >= 16 bytes. */
bool al_tz_offset(const char *zone, int64_t t, int *utoff, char *abbr);
/* The same lookup over a TZif image in memory (bounds-checked: any
 * truncated or corrupt image gives false). */
bool al_tzif_lookup(const unsigned char *b, size_t n, int64_t t, int *utoff, char *abbr);
/* "2026-03-28 07:43 IST (UTC+05:30)"; false when the zone is unknown. */
bool al_tz_format(const char *zone, int64_t t, char *buf, size_t len);

#endif
