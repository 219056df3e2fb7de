/* h1_head: the pure byte-level pieces of the HTTP/1.x parser: start lines
 * (RFC 9112 §3, §4), header lines with obs-fold (RFC 9112 §5), the framing
 * headers (Content-Length, Transfer-Encoding, Expect, Upgrade) and the
 * copy of a head into connection-owned memory.
 *
 * The one thing to know: nothing here keeps state between calls; a head is
 * parsed only once it is complete (or for a salvage after loss), and every
 * slice points into the bytes passed in. */
#include "h1_int.h"

#include <string.h>

static bool is_tchar(unsigned char c)
{
    /* RFC 9110 §5.6.2 token */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* White space inside a field value being interpreted: an obs-fold leaves
 * CR/LF in the raw slice, and RFC 9112 §5.2 reads each fold as SP. */
static bool is_vws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* p[0..n) against a literal prefix: VALID when all of lit matched. */
static enum h1_chk prefix(const uint8_t *p, size_t n, const char *lit)
{
    size_t l = strlen(lit), m = n < l ? n : l;
    if (memcmp(p, lit, m) != 0) return H1_CHK_INVALID;
    return m == l ? H1_CHK_VALID : H1_CHK_NEED;
}

/* Line end at p[i]: CRLF or bare LF (RFC 9112 §2.2 lets a recipient
 * accept LF alone). Sets *end past it. */
static enum h1_chk line_end(const uint8_t *p, size_t n, size_t i, size_t *end)
{
    if (i >= n) return H1_CHK_NEED;
    if (p[i] == '\n') {
        *end = i + 1;
        return H1_CHK_VALID;
    }
    if (p[i] != '\r') return H1_CHK_INVALID;
    if (i + 1 >= n) return H1_CHK_NEED;
    *end = i + 2;
    return p[i + 1] == '\n' ? H1_CHK_VALID : H1_CHK_INVALID;
}

/* "HTTP/" DIGIT "." DIGIT at p[i]. */
static enum h1_chk version_at(const uint8_t *p, size_t n, size_t i, bool strict, struct h1_head *h)
{
    enum h1_chk r = prefix(p + i, n - i, "HTTP/");
    if (r != H1_CHK_VALID) return r;
    if (n - i < 8) return H1_CHK_NEED;
    if (!is_digit(p[i + 5]) || p[i + 6] != '.' || !is_digit(p[i + 7])) return H1_CHK_INVALID;
    char major = (char)p[i + 5], minor = (char)p[i + 7];
    if (strict)
        return major == '1' && (minor == '0' || minor == '1') ? H1_CHK_VALID : H1_CHK_INVALID;
    if (major != '1' && major != '0')
        h->not_http1 = true; /* e.g. the HTTP/2 preface "PRI * HTTP/2.0" */
    return H1_CHK_VALID;
}

/* Methods a request line may consist of alone ("OPTIONS" CRLF): servers
 * answer such lines (with 400), so the exchange is reported, flagged. */
static bool known_method(const uint8_t *p, size_t n)
{
    static const char *const m[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                    "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    for (size_t k = 0; k < sizeof(m) / sizeof(m[0]); k++)
        if (strlen(m[k]) == n && memcmp(p, m[k], n) == 0) return true;
    return false;
}

/* A line without an HTTP-version: "GET" SP target CRLF is an HTTP/0.9
 * simple request (RFC 1945 §4.1); any other method, or a method alone,
 * is malformed but still acted on (answered) by servers, so it is kept as
 * an HTTP/0.9-shaped request flagged PARSE_ERROR. */
static enum h1_chk versionless(const uint8_t *p, size_t n, size_t i, struct h1_head *h)
{
    size_t e;
    enum h1_chk r = line_end(p, n, i, &e);
    if (r != H1_CHK_VALID) return r;
    h->http09 = true;
    h->v.version = (struct kw_slice){(const char *)p + i, 0};
    h->line_len = e;
    if (!kw_slice_eq(h->v.method, "GET") || h->v.target.len == 0)
        h->v.flags |= KW_TXN_F(PARSE_ERROR);
    return r;
}

/* The version of a lenient request line: "HTTP/" DIGIT "." DIGIT, or (not
 * strict) any other token starting with "HTTP/" such as "HTTP/1." that
 * servers still answer as HTTP/1.x: kept as sent, flagged PARSE_ERROR. */
static enum h1_chk request_version(const uint8_t *p, size_t n, size_t i, bool strict,
                                   struct h1_head *h)
{
    enum h1_chk r = version_at(p, n, i, strict, h);
    if (r == H1_CHK_VALID) {
        h->v.version = (struct kw_slice){(const char *)p + i, 8};
        return r;
    }
    if (strict || prefix(p + i, n - i, "HTTP/") != H1_CHK_VALID) return r;
    size_t k = i + 5;
    while (k < n && p[k] > 0x20 && p[k] < 0x7f && k - i < 16)
        k++;
    if (k == n) return H1_CHK_NEED;
    if (p[k] != '\r' && p[k] != '\n' && !is_ows(p[k])) return H1_CHK_INVALID;
    h->v.version = (struct kw_slice){(const char *)p + i, k - i};
    h->v.flags |= KW_TXN_F(PARSE_ERROR);
    return H1_CHK_VALID;
}

/* "GET /a b HTTP/1.1": a target with spaces. Servers such as nginx take
 * everything up to the last SP before the version as the target, so that
 * is what a request reaching them means (a policy judging only "/a" could
 * be walked around with "/a /../admin"); kept whole, flagged PARSE_ERROR.
 * *i is set to the version. */
static enum h1_chk spaced_target(const uint8_t *p, size_t n, size_t ts, size_t *i,
                                 struct h1_head *h)
{
    const uint8_t *nl = memchr(p + ts, '\n', n - ts);
    if (!nl) return H1_CHK_NEED;
    size_t ce = (size_t)(nl - p);
    while (ce > ts && (p[ce - 1] == '\r' || is_ows(p[ce - 1])))
        ce--;
    if (ce < ts + 10 || p[ce - 9] != ' ') return H1_CHK_INVALID;
    struct h1_head tmp = {0};
    if (version_at(p, ce, ce - 8, true, &tmp) != H1_CHK_VALID) return H1_CHK_INVALID;
    size_t te = ce - 9;
    while (te > ts && p[te - 1] == ' ')
        te--;
    for (size_t k = ts; k < te; k++)
        if ((p[k] < 0x20 && p[k] != '\t') || p[k] == 0x7f) return H1_CHK_INVALID;
    h->v.target = (struct kw_slice){(const char *)p + ts, te - ts};
    h->v.version = (struct kw_slice){(const char *)p + ce - 8, 8};
    h->v.flags |= KW_TXN_F(PARSE_ERROR);
    *i = ce - 8;
    return H1_CHK_VALID;
}

/* End of a request target: the first SP, CR or LF; strict (a resync, where
 * the line must look like HTTP), the first SP, CTL, DEL or byte >= 0x80.
 * Outside a resync, other control bytes and DEL are part of the target and
 * set *ctl: some servers (Python's http.server, many hand-written ones)
 * route such a request, and dropping it would hide its credential and path
 * from every check. Targets are the longest field of a request line. */
static size_t target_end(const uint8_t *p, size_t i, size_t n, bool strict, bool *ctl)
{
    for (;;) {
#if defined(__SSE2__)
        const __m128i sp = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
        for (; !strict && i + 16 <= n; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
            __m128i stop = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(v, sp), v), /* <= 0x20 */
                                        _mm_cmpeq_epi8(v, del));
            unsigned m = (unsigned)_mm_movemask_epi8(stop);
            if (m) {
                i += (size_t)__builtin_ctz(m);
                break;
            }
        }
#endif
        while (i < n && p[i] > 0x20 && p[i] != 0x7f && !(strict && p[i] >= 0x80))
            i++;
        if (strict || i == n || p[i] == ' ' || p[i] == '\r' || p[i] == '\n') return i;
        *ctl = true; /* a CTL or DEL inside the target: keep going */
        i++;
    }
}

static enum h1_chk request_line(const uint8_t *p, size_t n, bool strict, struct h1_head *h)
{
    size_t i = 0, e;
    while (i < n && is_tchar(p[i])) {
        if (strict && !((p[i] >= 'A' && p[i] <= 'Z') || p[i] == '-' || p[i] == '_'))
            return H1_CHK_INVALID;
        if (++i > 32) return H1_CHK_INVALID;
    }
    if (i == n) return H1_CHK_NEED;
    h->v.method = (struct kw_slice){(const char *)p, i};
    if (!strict && (p[i] == '\r' || p[i] == '\n') && known_method(p, i)) {
        h->v.target = (struct kw_slice){(const char *)p + i, 0};
        return versionless(p, n, i, h);
    }
    if (i == 0 || p[i] != ' ' || (strict && (i < 3 || i > 20))) return H1_CHK_INVALID;
    while (i < n && p[i] == ' ' && !(strict && i > h->v.method.len))
        i++;
    size_t ts = i;
    bool ctl = false;
    i = target_end(p, i, n, strict, &ctl);
    if (ctl) h->v.flags |= KW_TXN_F(PARSE_ERROR);
    if (i == n) return H1_CHK_NEED;
    if (i == ts) return H1_CHK_INVALID;
    if (strict &&
        !(p[ts] == '/' || p[ts] == '*' || ((p[ts] | 0x20) >= 'a' && (p[ts] | 0x20) <= 'z')))
        return H1_CHK_INVALID;
    h->v.target = (struct kw_slice){(const char *)p + ts, i - ts};
    if (p[i] == '\r' || p[i] == '\n') return strict ? H1_CHK_INVALID : versionless(p, n, i, h);
    if (p[i] != ' ') return H1_CHK_INVALID;
    while (i < n && p[i] == ' ' && !strict)
        i++;
    if (strict) i++;
    enum h1_chk r = request_version(p, n, i, strict, h);
    if (r == H1_CHK_INVALID && !strict) r = spaced_target(p, n, ts, &i, h);
    if (r != H1_CHK_VALID) return r;
    i += h->v.version.len;
    while (!strict && i < n && is_ows(p[i]))
        i++;
    r = line_end(p, n, i, &e);
    if (r == H1_CHK_VALID) h->line_len = e;
    return r;
}

static enum h1_chk status_line(const uint8_t *p, size_t n, bool strict, struct h1_head *h)
{
    enum h1_chk r = version_at(p, n, 0, strict, h);
    if (r != H1_CHK_VALID) return r;
    h->v.version = (struct kw_slice){(const char *)p, 8};
    size_t i = 8, e;
    if (i == n) return H1_CHK_NEED;
    if (p[i] != ' ') return H1_CHK_INVALID;
    while (i < n && p[i] == ' ' && !(strict && i > 8))
        i++;
    bool digits = true;
    for (size_t k = 0; k < 3; k++, i++) {
        if (i == n) return H1_CHK_NEED;
        if (!is_digit(p[i])) {
            /* a resync demands a real code; at a message boundary any
             * three visible characters will do (below) */
            if (strict || p[i] <= 0x20 || p[i] >= 0x7f) return H1_CHK_INVALID;
            digits = false;
        }
    }
    h->v.status = digits ? (p[i - 3] - '0') * 100 + (p[i - 2] - '0') * 10 + (p[i - 1] - '0') : 0;
    if (h->v.status < 100) {
        /* RFC 9110 §15: a status code is three digits, 100..599. A server
         * that sends "HTTP/1.0 2XX OK" (sv-http1-noint-status) still
         * answered, and its head frames what follows: reported as a
         * response of unknown status (0), flagged. */
        if (strict) return H1_CHK_INVALID;
        h->v.status = 0;
        h->v.flags |= KW_TXN_F(PARSE_ERROR);
    }
    if (i == n) return H1_CHK_NEED;
    size_t rs = i;
    if (p[i] == ' ') {
        size_t le = h1i_find_lf(p, i, n);
        if (le == n) return H1_CHK_NEED;
        rs = i + 1;
        i = le;
        if (i > rs && p[i - 1] == '\r') i--;
    } else if (p[i] != '\r' && p[i] != '\n') {
        return H1_CHK_INVALID;
    }
    h->v.reason = (struct kw_slice){(const char *)p + rs, i - rs};
    r = line_end(p, n, i, &e);
    if (r == H1_CHK_VALID) h->line_len = e;
    return r;
}

enum h1_chk h1i_start_line(const uint8_t *p, size_t n, int dir, bool strict, size_t limit,
                           struct h1_head *h)
{
    memset(h, 0, sizeof(*h));
    size_t m = n < limit ? n : limit;
    enum h1_chk r = dir == 0 ? request_line(p, m, strict, h) : status_line(p, m, strict, h);
    if (r == H1_CHK_NEED && m == limit) return H1_CHK_INVALID; /* longer than any head we accept */
    return r;
}

size_t h1i_find_head_end(const uint8_t *p, size_t n, size_t *scan)
{
    size_t s = *scan;
    while (s < n) {
        size_t le = h1i_find_lf(p, s, n);
        if (le == n) break;
        if (le == s || (le == s + 1 && p[s] == '\r')) return le + 1;
        s = le + 1;
    }
    *scan = s;
    return 0;
}

/* Content-Length (RFC 9110 §8.6): a list of identical values is accepted;
 * anything else (signs, garbage, differing values, overflow) is bad. */
static void parse_cl(struct kw_slice v, struct h1_head *h)
{
    size_t i = 0;
    do {
        while (i < v.len && is_vws((unsigned char)v.p[i]))
            i++;
        uint64_t x = 0;
        size_t d = 0;
        while (i < v.len && is_digit((unsigned char)v.p[i])) {
            if (x > (UINT64_C(1) << 56)) h->cl_bad = true;
            x = x * 10 + (uint64_t)(v.p[i++] - '0');
            d++;
        }
        while (i < v.len && is_vws((unsigned char)v.p[i]))
            i++;
        if (d == 0 || (i < v.len && v.p[i] != ',') || (h->has_cl && x != h->cl)) h->cl_bad = true;
        if (x > h->cl_max) h->cl_max = x;
        h->has_cl = true;
        h->cl = x;
    } while (i++ < v.len && !h->cl_bad);
}

/* Transfer-Encoding: only whether the LAST coding is chunked matters
 * (RFC 9112 §6.3 rules 4 and 5); a later header overrides. */
static void parse_te(struct kw_slice v, struct h1_head *h)
{
    size_t e = v.len, s;
    while (e > 0 && is_vws((unsigned char)v.p[e - 1]))
        e--;
    s = e;
    while (s > 0 && v.p[s - 1] != ',')
        s--;
    while (s < e && is_vws((unsigned char)v.p[s]))
        s++;
    h->has_te = true;
    h->te_chunked = kw_slice_ieq((struct kw_slice){v.p + s, e - s}, "chunked");
}

static bool name_is(const char *a, const char *lit, size_t n);

/* Length first, then a case-insensitive compare for the few framing
 * headers: most names are rejected by their length alone. */
static void framing_header(struct kw_slice name, struct kw_slice v, struct h1_head *h)
{
    switch (name.len) {
    case 14:
        if (name_is(name.p, "content-length", 14)) parse_cl(v, h);
        break;
    case 17:
        if (name_is(name.p, "transfer-encoding", 17)) parse_te(v, h);
        break;
    case 6:
        if (name_is(name.p, "expect", 6) && kw_slice_ieq(v, "100-continue")) h->expect100 = true;
        break;
    case 7:
        if (name_is(name.p, "upgrade", 7)) h->upgrade = true;
        break;
    default:
        break;
    }
}

static bool is_framing(struct kw_slice name)
{
    return (name.len == 14 && name_is(name.p, "content-length", 14)) ||
           (name.len == 17 && name_is(name.p, "transfer-encoding", 17));
}

/* Does a header name equal `lit` (lower-case letters, digits, '-')
 * ignoring case? Called only after the lengths matched. */
static bool name_is(const char *a, const char *lit, size_t n)
{
    if (((unsigned char)a[0] | 0x20) != (unsigned char)lit[0]) return false;
    if (n >= 8) {
        /* two overlapping 8-byte words, case folded by OR 0x20: only a
         * letter of either case folds to a lower-case letter, and only CR
         * or '-' to '-', so the '-' positions are checked exactly */
        uint64_t a0, a1, l0, l1, fold = UINT64_C(0x2020202020202020);
        memcpy(&a0, a, 8);
        memcpy(&a1, a + n - 8, 8);
        memcpy(&l0, lit, 8);
        memcpy(&l1, lit + n - 8, 8);
        if ((a0 | fold) != l0 || (a1 | fold) != l1) return false;
        for (size_t i = 0; i < n; i++)
            if (lit[i] == '-' && a[i] != '-') return false;
        return true;
    }
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if ((unsigned)(c - 'A') < 26u) c |= 0x20;
        if (c != (unsigned char)lit[i]) return false;
    }
    return true;
}

size_t h1i_parse_headers(const uint8_t *p, size_t from, size_t end, bool partial,
                         struct kw_hdr *hdrs, uint32_t max_hdrs, struct h1_head *h, size_t *scan)
{
    size_t s = from, n = 0, head_end = 0;
    bool prev = false; /* the previous line was a stored header (obs-fold target) */
    h->v.hdrs = hdrs;
    while (s < end) {
        size_t colon, le = h1i_find_lf_colon(p, s, end, &colon), ce = le;
        if (le == end) break; /* incomplete line */
        if (ce > s && p[ce - 1] == '\r') ce--;
        size_t next = le + 1;
        if (ce == s) { /* blank line: end of head */
            head_end = next;
            break;
        }
        if (is_ows(p[s])) {
            /* obs-fold (RFC 9112 §5.2): the value continues; unfolded on copy */
            size_t te = ce;
            while (te > s && is_ows(p[te - 1]))
                te--;
            if (prev && te > s) {
                hdrs[n - 1].value.len = (size_t)((const char *)p + te - hdrs[n - 1].value.p);
                h->folded = true;
                if (is_framing(hdrs[n - 1].name))
                    h->v.flags |= KW_TXN_F(PARSE_ERROR); /* a smuggling sign */
            } else if (!prev)
                h->v.flags |= KW_TXN_F(PARSE_ERROR); /* fold with nothing to continue */
            s = next;
            continue;
        }
        size_t ne = colon < ce ? colon : ce;
        prev = false;
        if (ne == ce || ne == s) {
            h->v.flags |= KW_TXN_F(PARSE_ERROR); /* not a header line: ignored */
            s = next;
            continue;
        }
        size_t vs = ne + 1, ve = ce;
        if (is_ows(p[ne - 1])) {
            h->v.flags |= KW_TXN_F(PARSE_ERROR); /* RFC 9112 §5.1: no space before ':' */
            while (ne > s && is_ows(p[ne - 1]))
                ne--;
        }
        while (vs < ve && is_ows(p[vs]))
            vs++;
        while (ve > vs && is_ows(p[ve - 1]))
            ve--;
        struct kw_slice name = {(const char *)p + s, ne - s}, val = {(const char *)p + vs, ve - vs};
        if (n < max_hdrs) {
            hdrs[n].name = name;
            hdrs[n++].value = val;
            prev = true;
        } else {
            framing_header(name, val, h); /* still honoured; cannot be folded */
            h->hdr_overflow = true;
        }
        s = next;
    }
    if (scan) *scan = s;
    if (!head_end && !partial) return 0;
    /* Framing headers are interpreted once their obs-fold continuations
     * are known (RFC 9112 §5.2: each fold reads as SP), so that
     * "Transfer-Encoding:" CRLF SP "chunked" frames as chunked, as a
     * server that unfolds it does (zeek-http-261-variant-09-te_obs_fold). */
    for (size_t k = 0; k < n; k++) {
        size_t l = hdrs[k].name.len - 6; /* framing names are 6, 7, 14 or 17 bytes long */
        if (l <= 11 && ((UINT32_C(1) << l) & 0x903u))
            framing_header(hdrs[k].name, hdrs[k].value, h);
    }
    h->v.n_hdrs = n;
    if (h->hdr_overflow) h->v.flags |= KW_TXN_F(PARSE_ERROR);
    return head_end;
}

#define ALIGN8(x) (((x) + 7) & ~(size_t)7)

size_t h1i_flat_size(const struct h1_head *h)
{
    const struct h1_msg_view *v = &h->v;
    if (h->folded || !h->base || !h->head_len) return 0;
    /* every slice lies in [base, base + head_len): the first field starts
     * the head and the last header value ends inside it */
    const char *b = (const char *)h->base, *first = v->method.p ? v->method.p : v->version.p;
    if (first != b) return 0;
    if (v->n_hdrs &&
        v->hdrs[v->n_hdrs - 1].value.p + v->hdrs[v->n_hdrs - 1].value.len > b + h->head_len)
        return 0;
    return ALIGN8(ALIGN8(v->n_hdrs * sizeof(struct kw_hdr)) + h->head_len);
}

static struct kw_slice rebase(struct kw_slice s, const uint8_t *from, const uint8_t *to)
{
    if (s.p) s.p = (const char *)to + (s.p - (const char *)from);
    return s;
}

size_t h1i_copy_flat(uint8_t *dst, const struct h1_head *h, struct h1_msg_view *out)
{
    const struct h1_msg_view *v = &h->v;
    size_t arr = ALIGN8(v->n_hdrs * sizeof(struct kw_hdr));
    struct kw_hdr *hdrs = (struct kw_hdr *)(void *)dst;
    uint8_t *b = dst + arr;
    memcpy(b, h->base, h->head_len);
    *out = *v;
    out->method = rebase(v->method, h->base, b);
    out->target = rebase(v->target, h->base, b);
    out->version = rebase(v->version, h->base, b);
    out->reason = rebase(v->reason, h->base, b);
    for (size_t i = 0; i < v->n_hdrs; i++) {
        hdrs[i].name = rebase(v->hdrs[i].name, h->base, b);
        hdrs[i].value = rebase(v->hdrs[i].value, h->base, b);
    }
    out->hdrs = hdrs;
    return ALIGN8(arr + h->head_len);
}

size_t h1i_head_size(const struct h1_msg_view *src)
{
    size_t s = ALIGN8(src->n_hdrs * sizeof(struct kw_hdr)) + src->method.len + src->target.len +
               src->version.len + src->reason.len;
    for (size_t i = 0; i < src->n_hdrs; i++)
        s += src->hdrs[i].name.len + src->hdrs[i].value.len;
    return ALIGN8(s);
}

static struct kw_slice put_slice(uint8_t **w, size_t *room, struct kw_slice s, bool *trunc)
{
    size_t n = s.len <= *room ? s.len : *room;
    if (n < s.len) *trunc = true;
    if (n) memcpy(*w, s.p, n);
    struct kw_slice out = {(const char *)*w, n};
    *w += n;
    *room -= n;
    return out;
}

/* Copy a value, replacing each fold (CR/LF run + SP/HT run) by one SP. */
static struct kw_slice put_value(uint8_t **w, struct kw_slice v, bool folded)
{
    uint8_t *o = *w;
    if (!folded || !memchr(v.p, '\n', v.len)) {
        memcpy(o, v.p, v.len);
        *w += v.len;
        return (struct kw_slice){(const char *)o, v.len};
    }
    size_t k = 0, i = 0;
    while (i < v.len) {
        if (v.p[i] == '\r' || v.p[i] == '\n') {
            while (i < v.len && (v.p[i] == '\r' || v.p[i] == '\n' || is_ows((unsigned char)v.p[i])))
                i++;
            if (k > 0 && i < v.len) o[k++] = ' ';
            continue;
        }
        o[k++] = (uint8_t)v.p[i++];
    }
    *w += k;
    return (struct kw_slice){(const char *)o, k};
}

size_t h1i_copy_head(uint8_t *dst, size_t cap, const struct h1_msg_view *src, bool folded,
                     struct h1_msg_view *out, bool *trunc)
{
    *out = *src;
    *trunc = false;
    size_t line = src->method.len + src->version.len + src->reason.len + src->target.len;
    size_t k = 0, used = line;
    for (; k < src->n_hdrs; k++) {
        size_t need = src->hdrs[k].name.len + src->hdrs[k].value.len;
        if (ALIGN8((k + 1) * sizeof(struct kw_hdr)) + used + need > cap) break;
        used += need;
    }
    if (k < src->n_hdrs) *trunc = true;
    size_t arr = ALIGN8(k * sizeof(struct kw_hdr));
    struct kw_hdr *hdrs = (struct kw_hdr *)(void *)dst;
    uint8_t *w = dst + (arr <= cap ? arr : cap);
    size_t room = cap - (size_t)(w - dst);
    out->method = put_slice(&w, &room, src->method, trunc);
    out->version = put_slice(&w, &room, src->version, trunc);
    out->reason = put_slice(&w, &room, src->reason, trunc);
    out->target = put_slice(&w, &room, src->target, trunc);
    for (size_t i = 0; i < k; i++) {
        struct kw_slice nm = src->hdrs[i].name;
        memcpy(w, nm.p, nm.len);
        hdrs[i].name = (struct kw_slice){(const char *)w, nm.len};
        w += nm.len;
        hdrs[i].value = put_value(&w, src->hdrs[i].value, folded);
    }
    out->hdrs = hdrs;
    out->n_hdrs = k;
    size_t used_b = ALIGN8((size_t)(w - dst));
    return used_b < cap ? used_b : cap;
}
