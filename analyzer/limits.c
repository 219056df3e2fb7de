/* limits: configured totals -> per-worker bounds, `check`'s listing and the
 * stats' hits (see limits.h). */
#include "limits.h"

#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "baseline.h"
#include "classify.h"

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)

/* flow.memcap when the config does not say: room for the default
 * flow.max (262144 flows at ~0.7 KiB each with classification), so that
 * by default flow.max is the bound, as before there was a flow.memcap. */
#define FLOW_MEMCAP_DEFAULT (256 * MIB)
/* Fewest flows a worker may be left with. */
#define FLOW_MIN_PER_WORKER 16

enum kind { COUNT, SIZE };

/* The stats counters a limit's hits are read from ("section.counter"). */
struct lim_row {
    const char *name;
    enum kind kind;
    bool split; /* a total shared by the workers */
    size_t off;
    const char *hits[2]; /* summed; a leading '-' subtracts (a shared counter) */
    const char *what;    /* what a hit does, for the run summary */
};

#define OFF(f) offsetof(struct rules_res_limits, f)
static const struct lim_row rows[] = {
    {"flow.max", COUNT, true, OFF(flow_max), {"flow.flow_limit_hits"}, "oldest flows evicted"},
    {"flow.memcap", SIZE, true, OFF(flow_memcap), {"flow.flow_limit_hits"}, "oldest flows evicted"},
    {"stream.memcap",
     SIZE,
     true,
     OFF(stream_memcap),
     {"flow.memcap_hits"},
     "TCP bytes dropped as gaps"},
    {"defrag.memcap",
     SIZE,
     true,
     OFF(defrag_memcap),
     {"defrag.memcap"},
     "oldest datagrams evicted"},
    {"defrag.max_datagrams",
     COUNT,
     true,
     OFF(defrag_max_datagrams),
     {"defrag.limit_datagrams"},
     "oldest datagrams evicted"},
    {"defrag.max_fragments",
     COUNT,
     false,
     OFF(defrag_max_fragments),
     {"defrag.limit_fragments"},
     "datagrams dropped"},
    {"http.max_header_bytes",
     SIZE,
     false,
     OFF(http_max_header_bytes),
     {"http.header_limit_hits", "-http.header_count_hits"},
     "heads cut, parser resynchronised"},
    {"http.memcap",
     SIZE,
     true,
     OFF(http_memcap),
     {"http.memcap_refusals", "pipeline.h1_refused"},
     "parsers refused or buffers not grown"},
    {"http2.memcap", SIZE, true, OFF(http2_memcap), {"http2.memcap_refusals"}, "buffers not grown"},
    {"http2.max_header_list",
     SIZE,
     false,
     OFF(http2_max_header_list),
     {"http2.header_list_limit", "-http2.header_count_limit"},
     "header lists cut"},
    {"http2.max_table_size",
     SIZE,
     false,
     OFF(http2_max_table_size),
     {"http2.hpack_table_capped"},
     "HPACK tables broken"},
    {"tls.memcap",
     SIZE,
     true,
     OFF(tls_memcap),
     {"tls.memcap_refusals"},
     "TLS connections refused or buffers not grown"},
    /* the baseline lives in the judge: not split over packet workers */
    {"baseline.max_profiles",
     COUNT,
     false,
     OFF(baseline_max_profiles),
     {"baseline.profile_limit"},
     "identities not profiled"},
    {"baseline.max_unattributed",
     COUNT,
     false,
     OFF(baseline_max_unattributed),
     {"baseline.evict_unattributed"},
     "unattributed profiles taken over by newer ones"},
    {"stream.max_buffer",
     SIZE,
     false,
     OFF(stream_max_buffer),
     {"flow.buffer_limit_hits"},
     "oldest unconsumed TCP bytes dropped as gaps"},
    {"stream.ooo_window",
     SIZE,
     false,
     OFF(stream_ooo_window),
     {"flow.ooo_window_gaps"},
     "holes declared gaps early"},
    {"http.max_headers",
     COUNT,
     false,
     OFF(http_max_headers),
     {"http.header_count_hits"},
     "header fields past it dropped"},
    {"http.max_pending",
     COUNT,
     false,
     OFF(http_max_pending),
     {"http.pending_limit_hits"},
     "oldest waiting requests reported without response"},
    {"http2.max_streams",
     COUNT,
     false,
     OFF(http2_max_streams),
     {"http2.streams_refused"},
     "streams not reported"},
    {"classify.max_active",
     COUNT,
     true,
     OFF(classify_max_active),
     {"classify.limit_active"},
     "flows left unclassified"},
    {"http2.max_headers",
     COUNT,
     false,
     OFF(http2_max_headers),
     {"http2.header_count_limit"},
     "header fields past it dropped"},
    {"http2.max_continuations",
     COUNT,
     false,
     OFF(http2_max_continuations),
     {"http2.continuation_floods", "-http2.header_block_limit"},
     "header blocks abandoned, HPACK tables broken"},
    {"http2.max_header_block",
     SIZE,
     false,
     OFF(http2_max_header_block),
     {"http2.header_block_limit"},
     "header blocks abandoned, HPACK tables broken"},
    {"http.request_buffer",
     SIZE,
     false,
     OFF(http_request_buffer),
     {"http.req_arena_hits"},
     "request heads cut or older waiting requests reported without response"},
    {"http.response_buffer",
     SIZE,
     false,
     OFF(http_response_buffer),
     {"http.resp_arena_hits"},
     "response heads cut"},
    {"stream.ooo_max_segments",
     COUNT,
     false,
     OFF(stream_ooo_max_segments),
     {"flow.ooo_segment_hits"},
     "segments past a hole dropped"},
};
#define NROWS (sizeof rows / sizeof rows[0])
_Static_assert(NROWS <= sizeof((struct limits_eff *)0)->written, "limits_eff.written too short");

static uint64_t *field(struct rules_res_limits *l, const struct lim_row *r)
{
    return (uint64_t *)((char *)l + r->off);
}

static uint64_t value(const struct rules_res_limits *l, const struct lim_row *r)
{
    return *(const uint64_t *)((const char *)l + r->off);
}

static void human(uint64_t b, char *out, size_t n)
{
    if (b >= GIB && b % GIB == 0)
        snprintf(out, n, "%" PRIu64 "GiB", b / GIB);
    else if (b >= MIB && b % MIB == 0)
        snprintf(out, n, "%" PRIu64 "MiB", b / MIB);
    else if (b >= KIB && b % KIB == 0)
        snprintf(out, n, "%" PRIu64 "KiB", b / KIB);
    else if (b >= 10 * MIB)
        snprintf(out, n, "%.1fMiB", (double)b / (double)MIB);
    else
        snprintf(out, n, "%" PRIu64 " bytes", b);
}

static void defaults(struct rules_res_limits *d)
{
    struct pipeline_config pc;
    pipeline_config_default(&pc);
    memset(d, 0, sizeof *d);
    d->flow_max = pc.flow.max_flows;
    d->flow_memcap = FLOW_MEMCAP_DEFAULT;
    d->stream_memcap = pc.flow.memcap;
    d->defrag_memcap = pc.defrag.memcap;
    d->defrag_max_datagrams = pc.defrag.max_datagrams;
    d->defrag_max_fragments = pc.defrag.max_fragments;
    d->http_max_header_bytes = pc.h1.max_header_bytes;
    d->http_memcap = pc.h1.memcap;
    d->http2_memcap = pc.h2.memcap;
    d->http2_max_header_list = pc.h2.max_header_list;
    d->http2_max_table_size = pc.h2.max_table_size;
    d->tls_memcap = pc.tls.memcap;
    d->baseline_max_profiles = BASELINE_DEFAULT_MAX_PROFILES;
    d->stream_max_buffer = pc.flow.stream_buf_max;
    d->stream_ooo_window = pc.flow.ooo_window;
    d->http_max_headers = pc.h1.max_headers;
    d->http_max_pending = pc.h1.max_pending;
    d->http2_max_streams = pc.h2.max_streams;
    d->classify_max_active = CLASSIFY_DEFAULT_MAX_ACTIVE;
    d->http2_max_headers = pc.h2.max_headers;
    d->http2_max_continuations = pc.h2.max_continuations;
    d->http2_max_header_block = pc.h2.max_header_block;
    d->http_request_buffer = pc.h1.req_arena_bytes;
    d->http_response_buffer = pc.h1.resp_arena_bytes;
    d->stream_ooo_max_segments = pc.flow.ooo_max_segments;
}

/* Bytes n flows take in one pipeline: the table and the per-flow state. */
static uint64_t flows_cost(const struct pipeline_config *pc, uint32_t n)
{
    return flow_table_mem(n) + pipeline_flows_mem(pc, n);
}

/* Appends one error line to err (every error is reported, not only the
 * first: an operator fixing a config for more workers learns all the
 * values to raise at once). */
static enum kw_err add_err(char *err, size_t errlen, const char *line)
{
    size_t n = strnlen(err, errlen);
    if (n + 1 < errlen) snprintf(err + n, errlen - n, "%s%s", n ? "\n" : "", line);
    return KW_E_CONFIG;
}

static enum kw_err share_err(const struct rules_config *rc, const char *key, uint64_t total,
                             unsigned w, uint64_t need, enum kind k, char *err, size_t errlen)
{
    char t[32], each[32], nd[32], fix[32];
    if (k == SIZE) {
        human(total, t, sizeof t);
        human(total / w, each, sizeof each);
        human(need, nd, sizeof nd);
        human(need * w, fix, sizeof fix);
    } else {
        snprintf(t, sizeof t, "%" PRIu64, total);
        snprintf(each, sizeof each, "%" PRIu64, total / w);
        snprintf(nd, sizeof nd, "%" PRIu64, need);
        snprintf(fix, sizeof fix, "%" PRIu64, need * w);
    }
    const char *file = rc->limits.loc.line ? rc->limits.loc.file : "limits";
    char where[64] = "";
    if (rc->limits.loc.line) snprintf(where, sizeof where, ":%d", rc->limits.loc.line);
    char line[512];
    snprintf(line, sizeof line,
             "%s%s: error: limits.%s: %s over %u packet workers is %s each, under the %s one "
             "worker needs; give at least %s or use fewer workers",
             file ? file : "config", where, key, t, w, each, nd, fix);
    return add_err(err, errlen, line);
}

enum kw_err limits_resolve(const struct rules_config *rc, unsigned workers, struct limits_eff *e,
                           char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    if (errlen) err[0] = 0;
    enum kw_err rv = KW_E_OK;
    e->workers = workers > 1 ? workers : 1;
    unsigned w = e->workers;
    defaults(&e->total);
    for (size_t i = 0; i < NROWS; i++) {
        uint64_t v = value(&rc->limits, &rows[i]);
        if (v) {
            *field(&e->total, &rows[i]) = v;
            e->written[i] = true;
        }
    }
    /* a tenth of the profiles is kept for configured identities unless
     * the config says otherwise (baseline.h) */
    if (!e->total.baseline_max_unattributed)
        e->total.baseline_max_unattributed =
            e->total.baseline_max_profiles - e->total.baseline_max_profiles / 10;
    if (e->total.baseline_max_unattributed > e->total.baseline_max_profiles) {
        const char *file = rc->limits.loc.line ? rc->limits.loc.file : NULL;
        char line[512];
        snprintf(line, sizeof line,
                 "%s:%d: error: limits.baseline.max_unattributed: %" PRIu64
                 " is more than baseline.max_profiles (%" PRIu64 "); give at most that",
                 file ? file : "config", rc->limits.loc.line, e->total.baseline_max_unattributed,
                 e->total.baseline_max_profiles);
        rv = add_err(err, errlen, line);
    }
    const struct rules_res_limits *t = &e->total;
    if (t->stream_ooo_window > t->stream_max_buffer) {
        char w1[32], b1[32];
        human(t->stream_ooo_window, w1, sizeof w1);
        human(t->stream_max_buffer, b1, sizeof b1);
        /* the window's own line (it may be within a default buffer) */
        const struct rules_loc *l =
            rc->limits.ooo_window_loc.line ? &rc->limits.ooo_window_loc : &rc->limits.loc;
        char line[512];
        snprintf(line, sizeof line,
                 "%s:%d: error: limits.stream.ooo_window: %s is more than stream.max_buffer (%s), "
                 "which holds what lies past a hole too; give at most that",
                 l->file ? l->file : "config", l->line, w1, b1);
        rv = add_err(err, errlen, line);
    }
    if (t->classify_max_active / w < 1)
        rv = share_err(rc, "classify.max_active", t->classify_max_active, w, 1, COUNT, err,
                       errlen);
    e->classify_max_active = (uint32_t)(t->classify_max_active / w);
    struct pipeline_config pc;
    pipeline_config_default(&pc);
    pc.classify_max_active = e->classify_max_active;
    pc.flow.stream_buf_max = (uint32_t)t->stream_max_buffer;
    pc.flow.ooo_window = (uint32_t)t->stream_ooo_window;
    pc.h1.max_headers = (uint32_t)t->http_max_headers;
    pc.h1.max_pending = (uint32_t)t->http_max_pending;
    pc.h2.max_streams = (uint32_t)t->http2_max_streams;
    pc.h1.max_header_bytes = (uint32_t)t->http_max_header_bytes;
    pc.h2.max_header_list = (uint32_t)t->http2_max_header_list;
    pc.h2.max_table_size = (uint32_t)t->http2_max_table_size;
    pc.h2.max_headers = (uint32_t)t->http2_max_headers;
    pc.h2.max_continuations = (uint32_t)t->http2_max_continuations;
    pc.h2.max_header_block = (uint32_t)t->http2_max_header_block;
    pc.h1.req_arena_bytes = (uint32_t)t->http_request_buffer;
    pc.h1.resp_arena_bytes = (uint32_t)t->http_response_buffer;
    pc.flow.ooo_max_segments = (uint32_t)t->stream_ooo_max_segments;

    /* flows: flow.max's share, or fewer if flow.memcap's share holds fewer */
    uint64_t nmax = t->flow_max / w, mem = t->flow_memcap / w;
    if (nmax > UINT32_MAX) nmax = UINT32_MAX;
    uint32_t n = (uint32_t)nmax;
    if (nmax < FLOW_MIN_PER_WORKER) {
        /* flow.memcap is checked against the fewest flows a worker may have */
        rv = share_err(rc, "flow.max", t->flow_max, w, FLOW_MIN_PER_WORKER, COUNT, err, errlen);
        n = FLOW_MIN_PER_WORKER;
    }
    if (flows_cost(&pc, n) > mem) {
        uint32_t lo = 0, hi = n; /* largest n with cost(n) <= mem */
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo + 1) / 2;
            if (flows_cost(&pc, mid) <= mem)
                lo = mid;
            else
                hi = mid - 1;
        }
        n = lo;
        e->flow_by_memcap = true;
        if (n < FLOW_MIN_PER_WORKER)
            rv = share_err(rc, "flow.memcap", t->flow_memcap, w,
                           flows_cost(&pc, FLOW_MIN_PER_WORKER), SIZE, err, errlen);
    }
    e->flow_max = n;
    e->flow_mem = flows_cost(&pc, n);

    /* one full direction of a TCP stream; one maximal IP datagram; one
     * fully grown HTTP/1 parser; the two HPACK tables and one header block
     * of an HTTP/2 connection */
    const struct {
        const char *key;
        uint64_t total, need;
        uint64_t *share;
    } caps[] = {
        {"stream.memcap", t->stream_memcap, pc.flow.stream_buf_max, &e->stream_memcap},
        {"defrag.memcap", t->defrag_memcap, 64 * KIB, &e->defrag_memcap},
        {"http.memcap", t->http_memcap, h1_conn_mem(&pc.h1), &e->http_memcap},
        {"http2.memcap", t->http2_memcap,
         2 * (uint64_t)pc.h2.max_table_size + pc.h2.max_header_block, &e->http2_memcap},
        {"tls.memcap", t->tls_memcap, tls_conn_mem(&pc.tls), &e->tls_memcap},
    };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        if (caps[i].total / w < caps[i].need)
            rv = share_err(rc, caps[i].key, caps[i].total, w, caps[i].need, SIZE, err, errlen);
        *caps[i].share = caps[i].total / w;
    }
    if (t->defrag_max_datagrams / w < 4)
        rv = share_err(rc, "defrag.max_datagrams", t->defrag_max_datagrams, w, 4, COUNT, err,
                       errlen);
    e->defrag_max_datagrams = (uint32_t)(t->defrag_max_datagrams / w);
    return rv;
}

bool limits_same(const struct rules_res_limits *a, const struct rules_res_limits *b)
{
    for (size_t i = 0; i < NROWS; i++)
        if (value(a, &rows[i]) != value(b, &rows[i])) return false;
    return true;
}

void limits_apply(const struct limits_eff *e, struct pipeline_config *pc)
{
    const struct rules_res_limits *t = &e->total;
    pc->flow.max_flows = e->flow_max;
    pc->flow.memcap = e->stream_memcap;
    pc->defrag.memcap = e->defrag_memcap;
    pc->defrag.max_datagrams = e->defrag_max_datagrams;
    pc->defrag.max_fragments = (uint32_t)t->defrag_max_fragments;
    pc->h1.max_header_bytes = (uint32_t)t->http_max_header_bytes;
    pc->h1.memcap = e->http_memcap;
    pc->h2.memcap = e->http2_memcap;
    pc->h2.max_header_list = (uint32_t)t->http2_max_header_list;
    pc->h2.max_table_size = (uint32_t)t->http2_max_table_size;
    pc->tls.memcap = e->tls_memcap;
    pc->flow.stream_buf_max = (uint32_t)t->stream_max_buffer;
    pc->flow.ooo_window = (uint32_t)t->stream_ooo_window;
    pc->h1.max_headers = (uint32_t)t->http_max_headers;
    pc->h1.max_pending = (uint32_t)t->http_max_pending;
    pc->h2.max_streams = (uint32_t)t->http2_max_streams;
    pc->classify_max_active = e->classify_max_active;
    pc->h2.max_headers = (uint32_t)t->http2_max_headers;
    pc->h2.max_continuations = (uint32_t)t->http2_max_continuations;
    pc->h2.max_header_block = (uint32_t)t->http2_max_header_block;
    pc->h1.req_arena_bytes = (uint32_t)t->http_request_buffer;
    pc->h1.resp_arena_bytes = (uint32_t)t->http_response_buffer;
    pc->flow.ooo_max_segments = (uint32_t)t->stream_ooo_max_segments;
}

static void fmt_value(const struct lim_row *r, uint64_t v, char *out, size_t n)
{
    if (r->kind == SIZE)
        human(v, out, n);
    else
        snprintf(out, n, "%" PRIu64, v);
}

void limits_print(const struct limits_eff *e, FILE *f)
{
    if (e->workers > 1)
        fprintf(f,
                "limits (totals, split over %u packet workers; per-message ones apply in "
                "each):\n",
                e->workers);
    else
        fprintf(f, "limits (one packet worker):\n");
    for (size_t i = 0; i < NROWS; i++) {
        const struct lim_row *r = &rows[i];
        char v[32], each[64] = "";
        fmt_value(r, value(&e->total, r), v, sizeof v);
        if (r->split && e->workers > 1) {
            char s[32];
            fmt_value(r, value(&e->total, r) / e->workers, s, sizeof s);
            snprintf(each, sizeof each, ", %s per worker", s);
        }
        fprintf(f, "  %-26s %-10s (%s%s)\n", r->name, v, e->written[i] ? "config" : "default",
                each);
    }
    char m[32];
    human(e->flow_mem, m, sizeof m);
    fprintf(f, "  -> %" PRIu32 " flows per worker (set by %s; %s of flow state at most)\n",
            e->flow_max, e->flow_by_memcap ? "flow.memcap" : "flow.max", m);
}

static uint64_t stat_at(json_t *stats, const char *path)
{
    const char *dot = strchr(path, '.');
    char sec[32];
    if (!dot || (size_t)(dot - path) >= sizeof sec) return 0;
    memcpy(sec, path, (size_t)(dot - path));
    sec[dot - path] = 0;
    json_t *v = json_object_get(json_object_get(stats, sec), dot + 1);
    return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

static uint64_t hits_of(const struct limits_eff *e, size_t i, json_t *stats)
{
    const struct lim_row *r = &rows[i];
    /* flow.max and flow.memcap share the counter: the one that set the
     * table's size takes the hits */
    if ((!strcmp(r->name, "flow.max") && e->flow_by_memcap) ||
        (!strcmp(r->name, "flow.memcap") && !e->flow_by_memcap))
        return 0;
    uint64_t h = 0;
    for (int k = 0; k < 2 && r->hits[k]; k++) {
        if (r->hits[k][0] != '-') {
            h += stat_at(stats, r->hits[k]);
            continue;
        }
        uint64_t sub = stat_at(stats, r->hits[k] + 1);
        h = h > sub ? h - sub : 0;
    }
    return h;
}

json_t *limits_stats_json(const struct limits_eff *e, json_t *stats)
{
    json_t *o = json_object(), *h = json_object();
    json_object_set_new(o, "workers", json_integer((json_int_t)e->workers));
    for (size_t i = 0; i < NROWS; i++) {
        json_object_set_new(o, rows[i].name, json_integer((json_int_t)value(&e->total, &rows[i])));
        json_object_set_new(h, rows[i].name, json_integer((json_int_t)hits_of(e, i, stats)));
    }
    json_object_set_new(o, "hits", h);
    return o;
}

void limits_summary(const struct limits_eff *e, json_t *stats, FILE *f)
{
    bool any = false;
    for (size_t i = 0; i < NROWS; i++) {
        uint64_t h = hits_of(e, i, stats);
        if (!h) continue;
        fprintf(f, "%s %s %" PRIu64 " (%s)", any ? "," : "keywarden: limits hit:", rows[i].name, h,
                rows[i].what);
        any = true;
    }
    if (any) fprintf(f, "; see `limits:` in docs/config.md\n");
}
