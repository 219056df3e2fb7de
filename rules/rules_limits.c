/* rules_limits: the `limits:` section of keywarden.yaml (docs/config.md),
 * Suricata-style memcaps and table sizes for the flow table, TCP
 * reassembly, IP defragmentation and the HTTP parsers:
 *
 *   limits: { flow.max: 262144, flow.memcap: 256MiB, stream.memcap: 512MiB,
 *             defrag.memcap: 16MiB, http.max_header_bytes: 64KiB }
 *
 * Keys are written dotted (as above) or nested (`flow: { max: ... }`).
 * The one thing to know: this file only checks each value against the
 * range that makes sense for the whole process; the compiled defaults and
 * the split of totals across packet workers (with the per-worker minimums
 * of the modules) live in analyzer/limits.c, which `run` and `check` both
 * call, so a value one of them refuses the other refuses too. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "rules_int.h"

struct lim_key {
    const char *name;
    bool size; /* bytes with a unit (rv_size); else a count */
    uint64_t lo, hi;
    size_t off; /* in struct rules_res_limits */
};

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define TIB (UINT64_C(1) << 40)
#define OFF(f) offsetof(struct rules_res_limits, f)

/* Ranges: below `lo` a limit breaks what it protects (a memcap smaller
 * than one maximal IP datagram, an HPACK table under RFC 7541's 4096
 * default, a head limit no real request fits); above `hi` it is a typo. */
static const struct lim_key keys[] = {
    {"flow.max", false, 1024, 16777216, OFF(flow_max)},
    {"flow.memcap", true, 1 * MIB, TIB, OFF(flow_memcap)},
    {"stream.memcap", true, 1 * MIB, TIB, OFF(stream_memcap)},
    {"defrag.memcap", true, 64 * KIB, 64 * GIB, OFF(defrag_memcap)},
    {"defrag.max_datagrams", false, 16, 16777216, OFF(defrag_max_datagrams)},
    {"defrag.max_fragments", false, 2, 8192, OFF(defrag_max_fragments)},
    {"http.max_header_bytes", true, 1 * KIB, 512 * KIB, OFF(http_max_header_bytes)},
    {"http.memcap", true, 1 * MIB, TIB, OFF(http_memcap)},
    {"http2.memcap", true, 1 * MIB, TIB, OFF(http2_memcap)},
    {"http2.max_header_list", true, 1 * KIB, 1 * MIB, OFF(http2_max_header_list)},
    {"http2.max_table_size", true, 4 * KIB, 1 * MIB, OFF(http2_max_table_size)},
    {"tls.memcap", true, 1 * MIB, TIB, OFF(tls_memcap)},
    /* a profile is ~10 KiB, all allocated at start: 10 million is 100 GB */
    {"baseline.max_profiles", false, 16, 10000000, OFF(baseline_max_profiles)},
    {"baseline.max_unattributed", false, 1, 10000000, OFF(baseline_max_unattributed)},
    /* under 4 KiB a stream buffer holds less than one ordinary request
     * head; a window is the data held past a hole, at most the buffer
     * (analyzer/limits.c checks the pair) */
    {"stream.max_buffer", true, 4 * KIB, 64 * MIB, OFF(stream_max_buffer)},
    {"stream.ooo_window", true, 4 * KIB, 64 * MIB, OFF(stream_ooo_window)},
    /* a request with fewer than 8 fields is not a real client's */
    {"http.max_headers", false, 8, 4096, OFF(http_max_headers)},
    {"http.max_pending", false, 1, 4096, OFF(http_max_pending)},
    /* RFC 9113 §6.5.2 asks servers for at least 100 concurrent streams;
     * fewer is allowed (a smaller sensor follows fewer of them) */
    {"http2.max_streams", false, 1, 65536, OFF(http2_max_streams)},
    {"classify.max_active", false, 16, 16777216, OFF(classify_max_active)},
    /* a browser sends ~20 fields; CONTINUATION floods (CVE-2024-27316
     * class) send thousands of frames: a few are plenty for a real block
     * (16 KiB frames by default) */
    {"http2.max_headers", false, 8, 4096, OFF(http2_max_headers)},
    {"http2.max_continuations", false, 1, 65536, OFF(http2_max_continuations)},
    {"http2.max_header_block", true, 1 * KIB, 16 * MIB, OFF(http2_max_header_block)},
    /* the HTTP/1 parser refuses buffers under 1 KiB (h1_fifo.c) */
    {"http.request_buffer", true, 1 * KIB, 64 * MIB, OFF(http_request_buffer)},
    {"http.response_buffer", true, 1 * KIB, 512 * KIB, OFF(http_response_buffer)},
    /* tiny segments each cost a slab entry: the count bounds that,
     * stream.ooo_window the bytes */
    {"stream.ooo_max_segments", false, 8, 1048576, OFF(stream_ooo_max_segments)},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const char *const known[] = {"flow.max",
                                    "flow.memcap",
                                    "stream.memcap",
                                    "defrag.memcap",
                                    "defrag.max_datagrams",
                                    "defrag.max_fragments",
                                    "http.max_header_bytes",
                                    "http.memcap",
                                    "http2.memcap",
                                    "http2.max_header_list",
                                    "http2.max_table_size",
                                    "tls.memcap",
                                    "baseline.max_profiles",
                                    "baseline.max_unattributed",
                                    "stream.max_buffer",
                                    "stream.ooo_window",
                                    "http.max_headers",
                                    "http.max_pending",
                                    "http2.max_streams",
                                    "classify.max_active",
                                    "http2.max_headers",
                                    "http2.max_continuations",
                                    "http2.max_header_block",
                                    "http.request_buffer",
                                    "http.response_buffer",
                                    "stream.ooo_max_segments",
                                    NULL};

static void human(uint64_t b, char *out, size_t n)
{
    if (b >= TIB && b % TIB == 0)
        snprintf(out, n, "%lluTiB", (unsigned long long)(b / TIB));
    else if (b >= GIB && b % GIB == 0)
        snprintf(out, n, "%lluGiB", (unsigned long long)(b / GIB));
    else if (b >= MIB && b % MIB == 0)
        snprintf(out, n, "%lluMiB", (unsigned long long)(b / MIB));
    else if (b >= KIB && b % KIB == 0)
        snprintf(out, n, "%lluKiB", (unsigned long long)(b / KIB));
    else
        snprintf(out, n, "%llu bytes", (unsigned long long)b);
}

static void set_value(struct rl_ctx *c, struct fy_node *v, const struct lim_key *k)
{
    char what[64], err[RV_ERRLEN], lo[32], hi[32], hint[128];
    snprintf(what, sizeof what, "limits.%s", k->name);
    const char *s = rl_scalar(c, v, what), *h;
    uint64_t x;
    if (!s) return;
    bool ok = k->size ? rv_size(s, &x, err, &h) : rv_uint(s, UINT64_MAX, &x, err, &h);
    if (!ok) {
        rl_err(c, v, h, "%s: %s", what, err);
        return;
    }
    if (k->size) {
        human(k->lo, lo, sizeof lo);
        human(k->hi, hi, sizeof hi);
    } else {
        snprintf(lo, sizeof lo, "%llu", (unsigned long long)k->lo);
        snprintf(hi, sizeof hi, "%llu", (unsigned long long)k->hi);
    }
    snprintf(hint, sizeof hint, "give a value between %s and %s", lo, hi);
    if (x < k->lo)
        rl_err(c, v, hint, "%s: %s is too small", what, s);
    else if (x > k->hi)
        rl_err(c, v, hint, "%s: %s is too large", what, s);
    else
        *(uint64_t *)((char *)&c->m->config.limits + k->off) = x;
    if (k->off == OFF(stream_ooo_window)) c->m->config.limits.ooo_window_loc = rl_loc(c, v);
}

static const struct lim_key *find(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].name, name)) return &keys[i];
    return NULL;
}

struct nest_arg {
    const char *prefix;
};

static bool nested_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                        void *arg)
{
    (void)k;
    const struct nest_arg *a = arg;
    char full[64];
    snprintf(full, sizeof full, "%s.%s", a->prefix, key);
    const struct lim_key *lk = find(full);
    if (!lk) return false;
    set_value(c, v, lk);
    return true;
}

static bool limits_pair(struct rl_ctx *c, const char *key, struct fy_node *k, struct fy_node *v,
                        void *arg)
{
    (void)arg;
    const struct lim_key *lk = find(key);
    if (lk) {
        set_value(c, v, lk);
        return true;
    }
    /* nested: flow: { max: N, memcap: 64MiB } */
    if (!v || fy_node_get_type(v) != FYNT_MAPPING || strchr(key, '.')) return false;
    const char *sub[NKEYS + 1];
    size_t n = 0, plen = strlen(key);
    for (size_t i = 0; i < NKEYS; i++)
        if (!strncmp(keys[i].name, key, plen) && keys[i].name[plen] == '.')
            sub[n++] = keys[i].name + plen + 1;
    if (!n) return false;
    sub[n] = NULL;
    char where[48];
    snprintf(where, sizeof where, "limits.%s", key);
    struct nest_arg a = {key};
    rl_walk_map(c, v, where, sub, nested_pair, &a);
    (void)k;
    return true;
}

void rl_limits(struct rl_ctx *c, struct fy_node *k, struct fy_node *n)
{
    c->m->config.limits.loc = rl_loc(c, k);
    rl_walk_map(c, n, "limits", known, limits_pair, NULL);
}
