/* streams_dump: the tcpflow-style writer behind `keywarden streams` (see
 * streams_dump.h for names and the gap format).
 *
 * The one thing to know: a capture can hold far more live connections than
 * a process may open files, so at most SD_MAX_OPEN direction files are open
 * at once; the least recently written is closed and reopened on its next
 * write (positional writes make that invisible in the output). This runs
 * per flow and per write, not per packet decode, so it allocates per flow. */
#include "streams_dump.h"

#include "defrag.h"
#include "kw_hash.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define SD_MIN_OPEN 256
#define SD_MAX_OPEN 65536
#define SD_NAME_MAX 160

struct sd_dir {
    char name[SD_NAME_MAX]; /* empty until the first byte or gap */
    int fd;
    uint64_t off; /* stream offset = file offset of the next byte */
    uint64_t bytes, gaps, gap_bytes;
    struct sd_dir *prev, *next; /* open-file LRU */
};

struct sd_flow {
    struct sd_dir d[2];
};

/* Names already used in this run, with how often (tcpflow's "cN"). */
struct sd_name {
    char *name;
    uint32_t count;
};

struct streams_dump {
    char *dir;
    FILE *index;
    struct sd_dir *open_head, *open_tail;
    unsigned n_open;
    unsigned max_open; /* from RLIMIT_NOFILE, see open_limit() */
    struct sd_name *names;
    size_t names_cap, names_used;
    struct streams_dump_counters cnt;
};

/* Names are built from addresses in the capture: keyed (kw_hash.h). */
static uint64_t name_hash(const char *s)
{
    return kw_siphash(kw_hkey_process(), s, strlen(s));
}

static bool names_grow(struct streams_dump *d)
{
    size_t ncap = d->names_cap ? d->names_cap * 2 : 1024;
    struct sd_name *nn = calloc(ncap, sizeof(*nn));
    if (!nn) return false;
    for (size_t i = 0; i < d->names_cap; i++) {
        if (!d->names[i].name) continue;
        size_t j = name_hash(d->names[i].name) & (ncap - 1);
        while (nn[j].name)
            j = (j + 1) & (ncap - 1);
        nn[j] = d->names[i];
    }
    free(d->names);
    d->names = nn;
    d->names_cap = ncap;
    return true;
}

/* How many times `name` was used before (and counts this use); -1 on
 * allocation failure. */
static long name_use(struct streams_dump *d, const char *name)
{
    if ((d->names_used + 1) * 2 > d->names_cap && !names_grow(d)) return -1;
    size_t j = name_hash(name) & (d->names_cap - 1);
    while (d->names[j].name && strcmp(d->names[j].name, name) != 0)
        j = (j + 1) & (d->names_cap - 1);
    if (!d->names[j].name) {
        if (!(d->names[j].name = strdup(name))) return -1;
        d->names_used++;
    }
    return (long)d->names[j].count++;
}

void streams_dump_name(const struct kw_addr *src, uint16_t sport, const struct kw_addr *dst,
                       uint16_t dport, uint16_t vlan, char *buf, size_t len)
{
    char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
    const struct kw_addr *ad[2] = {src, dst};
    char *out[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        if (ad[i]->family == 6)
            inet_ntop(AF_INET6, ad[i]->a, out[i], INET6_ADDRSTRLEN);
        else
            snprintf(out[i], INET6_ADDRSTRLEN, "%03u.%03u.%03u.%03u", ad[i]->a[0], ad[i]->a[1],
                     ad[i]->a[2], ad[i]->a[3]);
    }
    int n = snprintf(buf, len, "%s.%05u-%s.%05u", a, sport, b, dport);
    if (vlan && n > 0 && (size_t)n < len) snprintf(buf + n, len - (size_t)n, "--%u", vlan);
}

/* How many direction files may stay open: raise the soft descriptor limit
 * to the hard one (a dense capture has thousands of live directions, and
 * closing and reopening them made `streams` slower than tcpflow), keep 64
 * for everything else. */
static unsigned open_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return SD_MIN_OPEN;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = {rl.rlim_max, rl.rlim_max};
        if (up.rlim_cur > SD_MAX_OPEN + 64) up.rlim_cur = SD_MAX_OPEN + 64;
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) rl.rlim_cur = up.rlim_cur;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > SD_MAX_OPEN + 64) return SD_MAX_OPEN;
    return rl.rlim_cur > SD_MIN_OPEN + 64 ? (unsigned)rl.rlim_cur - 64 : SD_MIN_OPEN;
}

enum kw_err streams_dump_new(const char *dir, struct streams_dump **out, char *err, size_t errlen)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create output directory: %s", dir, strerror(errno));
        return KW_E_IO;
    }
    struct streams_dump *d = calloc(1, sizeof(*d));
    if (!d || !(d->dir = strdup(dir)) || !names_grow(d)) {
        if (d) free(d->dir);
        free(d);
        snprintf(err, errlen, "out of memory");
        return KW_E_NOMEM;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/keywarden-streams.tsv", dir);
    d->index = fopen(path, "w");
    if (!d->index) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        streams_dump_destroy(d);
        return KW_E_IO;
    }
    fprintf(d->index, "file\tflow_id\tbytes\tgaps\tgap_bytes\tend\n");
    d->max_open = open_limit();
    *out = d;
    return KW_E_OK;
}

/* ---- the open-file LRU ---- */

static void lru_unlink(struct streams_dump *d, struct sd_dir *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        d->open_head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    else
        d->open_tail = x->prev;
    x->prev = x->next = NULL;
}

static void lru_front(struct streams_dump *d, struct sd_dir *x)
{
    x->prev = NULL;
    x->next = d->open_head;
    if (d->open_head) d->open_head->prev = x;
    d->open_head = x;
    if (!d->open_tail) d->open_tail = x;
}

static void dir_close(struct streams_dump *d, struct sd_dir *x)
{
    if (x->fd < 0) return;
    /* A trailing gap still belongs to the stream: extend the file. */
    struct stat st;
    if (fstat(x->fd, &st) == 0 && (uint64_t)st.st_size < x->off &&
        ftruncate(x->fd, (off_t)x->off) != 0)
        d->cnt.write_errors++;
    if (close(x->fd) != 0) d->cnt.write_errors++;
    x->fd = -1;
    lru_unlink(d, x);
    d->n_open--;
}

static bool dir_open(struct streams_dump *d, struct flow *f, int dir, struct sd_dir *x)
{
    char path[4096];
    bool fresh = x->name[0] == 0;
    if (fresh) {
        char base[SD_NAME_MAX - 16]; /* room for "c" + 10 digits */
        bool to_srv = dir == FLOW_DIR_TO_SERVER;
        streams_dump_name(to_srv ? &f->cli : &f->srv, to_srv ? f->cli_port : f->srv_port,
                          to_srv ? &f->srv : &f->cli, to_srv ? f->srv_port : f->cli_port, f->vlan,
                          base, sizeof(base));
        long used = name_use(d, base);
        if (used < 0) return false;
        if (used > 0)
            snprintf(x->name, sizeof(x->name), "%sc%u", base, (unsigned)used);
        else
            snprintf(x->name, sizeof(x->name), "%s", base);
        d->cnt.files++;
    } else {
        d->cnt.fd_reopens++;
    }
    if (d->n_open >= d->max_open) dir_close(d, d->open_tail);
    snprintf(path, sizeof(path), "%s/%s", d->dir, x->name);
    x->fd = open(path, O_WRONLY | O_CREAT | (fresh ? O_TRUNC : 0) | O_CLOEXEC, 0644);
    if (x->fd < 0) return false;
    lru_front(d, x);
    d->n_open++;
    return true;
}

static struct sd_dir *dir_get(struct streams_dump *d, struct flow *f, int dir)
{
    struct sd_flow *sf = f->app;
    if (!sf) return NULL;
    struct sd_dir *x = &sf->d[dir];
    if (x->fd >= 0) {
        lru_unlink(d, x);
        lru_front(d, x);
        return x;
    }
    if (!dir_open(d, f, dir, x)) {
        d->cnt.write_errors++;
        return NULL;
    }
    return x;
}

/* ---- flow callbacks ---- */

static void sd_start(void *user, struct flow *f, kw_ts ts)
{
    if (f->proto != 6) return;
    struct sd_flow *sf = calloc(1, sizeof(*sf));
    if (!sf) {
        ((struct streams_dump *)user)->cnt.write_errors++;
        return;
    }
    sf->d[0].fd = sf->d[1].fd = -1;
    f->app = sf;
}

static size_t sd_data(void *user, struct flow *f, int dir, const uint8_t *p, size_t len, kw_ts ts)
{
    struct streams_dump *d = user;
    struct sd_dir *x = dir_get(d, f, dir);
    if (!x) return len;
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(x->fd, p + done, len - done, (off_t)(x->off + done));
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            d->cnt.write_errors++;
            break;
        }
        done += (size_t)w;
    }
    x->off += len;
    x->bytes += len;
    d->cnt.bytes_written += done;
    return len;
}

static void sd_gap(void *user, struct flow *f, int dir, uint64_t len, kw_ts ts)
{
    struct streams_dump *d = user;
    struct sd_dir *x = dir_get(d, f, dir);
    if (!x) return;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.gaps", d->dir, x->name);
    FILE *g = fopen(path, x->gaps ? "a" : "w");
    if (!g || fprintf(g, "%llu %llu\n", (unsigned long long)x->off, (unsigned long long)len) < 0)
        d->cnt.write_errors++;
    if (g && fclose(g) != 0) d->cnt.write_errors++;
    x->off += len;
    x->gaps++;
    x->gap_bytes += len;
    d->cnt.gaps++;
    d->cnt.gap_bytes += len;
}

static void sd_end(void *user, struct flow *f, enum flow_end_reason why, kw_ts ts)
{
    struct streams_dump *d = user;
    struct sd_flow *sf = f->app;
    if (!sf) return;
    for (int i = 0; i < 2; i++) {
        struct sd_dir *x = &sf->d[i];
        if (!x->name[0]) continue;
        dir_close(d, x);
        fprintf(d->index, "%s\t%llu\t%llu\t%llu\t%llu\t%s\n", x->name, (unsigned long long)f->id,
                (unsigned long long)x->bytes, (unsigned long long)x->gaps,
                (unsigned long long)x->gap_bytes, flow_end_reason_name(why));
    }
    free(sf);
    f->app = NULL;
}

void streams_dump_callbacks(struct streams_dump *d, struct flow_callbacks *cb)
{
    memset(cb, 0, sizeof(*cb));
    cb->user = d;
    cb->on_flow_start = sd_start;
    cb->on_data = sd_data;
    cb->on_gap = sd_gap;
    cb->on_flow_end = sd_end;
}

enum kw_err streams_dump_finish(struct streams_dump *d)
{
    while (d->open_head)
        dir_close(d, d->open_head);
    if (d->index) {
        if (fclose(d->index) != 0) d->cnt.write_errors++;
        d->index = NULL;
    }
    return d->cnt.write_errors ? KW_E_IO : KW_E_OK;
}

const struct streams_dump_counters *streams_dump_counters(const struct streams_dump *d)
{
    return &d->cnt;
}

void streams_dump_destroy(struct streams_dump *d)
{
    if (!d) return;
    while (d->open_head)
        dir_close(d, d->open_head);
    if (d->index) fclose(d->index);
    for (size_t i = 0; i < d->names_cap; i++)
        free(d->names[i].name);
    free(d->names);
    free(d->dir);
    free(d);
}

static enum kw_err run_loop(struct cap_source *src, struct flow_table *ft, struct dec_ctx *dec,
                            struct defrag *df)
{
    struct cap_pkt pkt;
    struct dec_packet dp;
    kw_ts last = 0;
    for (;;) {
        enum cap_next r = cap_next(src, &pkt);
        if (r == CAP_PACKET) {
            last = pkt.ts > last ? pkt.ts : last;
            enum dec_result dr =
                dec_packet(dec, pkt.linktype, pkt.ts, pkt.data, pkt.caplen, pkt.wirelen, &dp);
            if (dr == DEC_SKIP && dp.ip_fragment) dr = defrag_decode(df, dec, &dp);
            if (dr == DEC_OK) flow_table_packet(ft, &dp);
            continue;
        }
        if (r == CAP_TIMEOUT) continue;
        flow_table_flush(ft, last);
        return r == CAP_EOF ? KW_E_OK : KW_E_IO;
    }
}

enum kw_err streams_dump_run(const struct cap_config *cc, const struct flow_config *fcfg_in,
                             const struct defrag_config *dfcfg_in, const char *dir,
                             struct streams_run_stats *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    struct cap_source *src = NULL;
    struct streams_dump *sd = NULL;
    struct flow_table *ft = NULL;
    struct defrag *df = NULL;
    struct dec_ctx dec;
    struct dec_config dcfg;
    dec_config_default(&dcfg);
    dec_ctx_init(&dec, &dcfg);
    if (cap_open(cc, &src, err, errlen) != KW_E_OK) return KW_E_CONFIG;
    enum kw_err e = streams_dump_new(dir, &sd, err, errlen);
    if (e != KW_E_OK) goto out;
    struct flow_config fcfg;
    if (fcfg_in)
        fcfg = *fcfg_in;
    else
        flow_config_default(&fcfg);
    struct flow_callbacks cb;
    streams_dump_callbacks(sd, &cb);
    if ((e = flow_table_new(&fcfg, &cb, &ft)) != KW_E_OK) {
        snprintf(err, errlen, "flow table: %s", kw_strerror(e));
        goto out;
    }
    struct defrag_config dfcfg;
    if (dfcfg_in)
        dfcfg = *dfcfg_in;
    else
        defrag_config_default(&dfcfg);
    if ((e = defrag_new(&dfcfg, &df)) != KW_E_OK) {
        snprintf(err, errlen, "fragment reassembly: %s", kw_strerror(e));
        goto out;
    }
    e = run_loop(src, ft, &dec, df);
    if (e != KW_E_OK)
        snprintf(err, errlen, "error reading the capture; the streams read so far are written");
    if (streams_dump_finish(sd) != KW_E_OK && e == KW_E_OK) {
        snprintf(err, errlen, "%s: some output could not be written", dir);
        e = KW_E_IO;
    }
    st->flow = *flow_table_counters(ft);
    st->dump = sd->cnt;
out:
    cap_get_stats(src, &st->cap);
    st->dec = dec.cnt;
    flow_table_destroy(ft);
    defrag_destroy(df);
    streams_dump_destroy(sd);
    cap_close(src);
    return e;
}
