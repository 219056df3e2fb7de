/* fleet_spool: segment files on disk as a bounded FIFO (see
 * fleet_spool.h). Appends are buffered in memory and written by
 * fsp_flush; reads come back through a read buffer refilled with pread,
 * so a record costs no system call of its own either way. Nothing is
 * fsync'ed: the spool is there for NATS being away, not for the machine
 * losing power (a torn tail is cut on open). */
#include "fleet_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "kw_log.h"
#include "kw_time.h"

#define SEG_MAX (4u << 20)
#define WBUF (256u << 10)
#define RBUF (256u << 10)
#define FRAME_HEAD 8

struct seg {
    uint64_t id;
    uint64_t size; /* bytes written to the file (flushed) */
};

struct fsp {
    char dir[3800];
    uint64_t max, seg_max;
    struct seg *segs; /* ascending ids; the last is being written */
    size_t n, cap;
    uint64_t bytes; /* all segments, buffered appends included */
    int wfd;
    uint8_t *wbuf;
    size_t wlen;
    int rfd;
    uint64_t rseg, rbase; /* rbuf holds [rbase, rbase + rlen) of segment rseg */
    uint8_t *rbuf;
    size_t rlen, rcap;
    struct fsp_pos acked;
    bool acked_dirty;
    kw_ts acked_saved;
    struct fsp_stats st;
};

static void seg_path(const struct fsp *s, uint64_t id, char *out, size_t len)
{
    snprintf(out, len, "%s/%016llx.kws", s->dir, (unsigned long long)id);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t crc(const uint8_t *p, size_t n)
{
    return (uint32_t)crc32(0L, p, (uInt)n);
}

static struct seg *seg_find(struct fsp *s, uint64_t id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->segs[i].id == id) return &s->segs[i];
    return NULL;
}

static bool seg_push(struct fsp *s, uint64_t id, uint64_t size)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct seg *g = realloc(s->segs, cap * sizeof *g);
        if (!g) return false;
        s->segs = g;
        s->cap = cap;
    }
    s->segs[s->n++] = (struct seg){id, size};
    return true;
}

/* ---- the acknowledged position ---------------------------------------- */

static void acked_save(struct fsp *s)
{
    char path[4096], tmp[4100];
    snprintf(path, sizeof path, "%s/acked", s->dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        s->st.io_errors++;
        return;
    }
    fprintf(f, "%llu %llu\n", (unsigned long long)s->acked.seg, (unsigned long long)s->acked.off);
    if (fclose(f) != 0 || rename(tmp, path) != 0) s->st.io_errors++;
    s->acked_dirty = false;
    s->acked_saved = kw_ts_wall();
}

static void acked_load(struct fsp *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/acked", s->dir);
    FILE *f = fopen(path, "r");
    unsigned long long a = 0, b = 0;
    if (f && fscanf(f, "%llu %llu", &a, &b) == 2) s->acked = (struct fsp_pos){a, b};
    if (f) fclose(f);
}

/* ---- open: find the segments, cut damaged tails ----------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Valid bytes of a segment: frames up to the first damaged one. */
static uint64_t seg_scan(struct fsp *s, int fd, uint64_t size)
{
    uint64_t off = 0;
    uint8_t head[FRAME_HEAD];
    uint8_t *buf = NULL;
    size_t bcap = 0;
    while (off + FRAME_HEAD <= size) {
        if (pread(fd, head, FRAME_HEAD, (off_t)off) != FRAME_HEAD) break;
        uint32_t len = get32(head);
        if (!len || off + FRAME_HEAD + len > size || len > SEG_MAX) break;
        if (len > bcap) {
            uint8_t *nb = realloc(buf, len);
            if (!nb) break;
            buf = nb;
            bcap = len;
        }
        if (pread(fd, buf, len, (off_t)(off + FRAME_HEAD)) != (ssize_t)len) break;
        if (crc(buf, len) != get32(head + 4)) break;
        off += FRAME_HEAD + len;
    }
    free(buf);
    if (off != size) s->st.cut++;
    return off;
}

static enum kw_err load_segments(struct fsp *s)
{
    DIR *d = opendir(s->dir);
    if (!d) return KW_E_IO;
    uint64_t *ids = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned long long id;
        char tail[8];
        if (sscanf(e->d_name, "%16llx.%4s", &id, tail) != 2 || strcmp(tail, "kws") != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *x = realloc(ids, cap * sizeof *x);
            if (!x) break;
            ids = x;
        }
        ids[n++] = id;
    }
    closedir(d);
    if (n) qsort(ids, n, sizeof *ids, cmp_u64);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        seg_path(s, ids[i], path, sizeof path);
        if (ids[i] < s->acked.seg) { /* acknowledged before the last save */
            unlink(path);
            continue;
        }
        int fd = open(path, O_RDWR | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            if (fd >= 0) close(fd);
            s->st.io_errors++;
            continue;
        }
        uint64_t good = seg_scan(s, fd, (uint64_t)st.st_size);
        if (good != (uint64_t)st.st_size && ftruncate(fd, (off_t)good) != 0) s->st.io_errors++;
        close(fd);
        if (!seg_push(s, ids[i], good)) break;
        s->bytes += good;
    }
    free(ids);
    return KW_E_OK;
}

static enum kw_err new_segment(struct fsp *s)
{
    uint64_t id = s->n ? s->segs[s->n - 1].id + 1 : 1;
    char path[4096];
    seg_path(s, id, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return KW_E_IO;
    if (!seg_push(s, id, 0)) {
        close(fd);
        unlink(path);
        return KW_E_NOMEM;
    }
    if (s->wfd >= 0) close(s->wfd);
    s->wfd = fd;
    return KW_E_OK;
}

static void mkdirs(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0700);
            *p = '/';
        }
    mkdir(buf, 0700);
}

enum kw_err fsp_open(const char *dir, uint64_t max, struct fsp **out)
{
    struct fsp *s = calloc(1, sizeof *s);
    if (!s) return KW_E_NOMEM;
    if (strlen(dir) >= sizeof s->dir) {
        free(s);
        return KW_E_INVAL;
    }
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->max = max;
    s->seg_max = max / 4 < SEG_MAX ? (max / 4 > 65536 ? max / 4 : 65536) : SEG_MAX;
    s->wfd = s->rfd = -1;
    s->wbuf = malloc(WBUF);
    s->rcap = RBUF;
    s->rbuf = malloc(s->rcap);
    enum kw_err e = KW_E_NOMEM;
    if (!s->wbuf || !s->rbuf) goto fail;
    mkdirs(dir);
    acked_load(s);
    if ((e = load_segments(s)) != KW_E_OK || (e = new_segment(s)) != KW_E_OK) goto fail;
    /* an acknowledged position past a cut, or in a segment gone: start at
     * the first segment kept */
    struct seg *g = seg_find(s, s->acked.seg);
    if (!g)
        s->acked = (struct fsp_pos){s->segs[0].id, 0};
    else if (s->acked.off > g->size)
        s->acked.off = g->size;
    *out = s;
    return KW_E_OK;
fail:
    kw_err_log("fleet: spool %s: %s", dir, strerror(errno));
    fsp_close(s);
    return e;
}

void fsp_close(struct fsp *s)
{
    if (!s) return;
    if (s->wfd >= 0) {
        if (fsp_flush(s) != KW_E_OK) kw_warn("fleet: spool: the last appends could not be written");
        close(s->wfd);
    }
    if (s->rfd >= 0) close(s->rfd);
    if (s->segs) acked_save(s);
    free(s->segs);
    free(s->wbuf);
    free(s->rbuf);
    free(s);
}

/* ---- append ------------------------------------------------------------ */

enum kw_err fsp_flush(struct fsp *s)
{
    size_t done = 0;
    while (done < s->wlen) {
        ssize_t w = write(s->wfd, s->wbuf + done, s->wlen - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            s->st.io_errors++;
            /* keep what was not written: a later flush tries again */
            memmove(s->wbuf, s->wbuf + done, s->wlen - done);
            s->wlen -= done;
            s->segs[s->n - 1].size += done;
            return KW_E_IO;
        }
        done += (size_t)w;
    }
    s->segs[s->n - 1].size += done;
    s->wlen = 0;
    return KW_E_OK;
}

enum kw_err fsp_append(struct fsp *s, const uint8_t *rec, size_t len)
{
    uint64_t frame = FRAME_HEAD + (uint64_t)len;
    if (!len || frame > s->seg_max || s->bytes + frame > s->max) return KW_E_LIMIT;
    struct seg *cur = &s->segs[s->n - 1];
    if (cur->size + s->wlen + frame > s->seg_max && cur->size + s->wlen > 0) {
        if (fsp_flush(s) != KW_E_OK) return KW_E_IO;
        if (new_segment(s) != KW_E_OK) return KW_E_IO;
    }
    if (s->wlen + frame > WBUF && fsp_flush(s) != KW_E_OK) return KW_E_IO;
    uint8_t head[FRAME_HEAD];
    put32(head, (uint32_t)len);
    put32(head + 4, crc(rec, len));
    if (frame > WBUF) { /* larger than the buffer: straight to the file */
        if (write(s->wfd, head, FRAME_HEAD) != FRAME_HEAD ||
            write(s->wfd, rec, len) != (ssize_t)len) {
            s->st.io_errors++;
            return KW_E_IO;
        }
        s->segs[s->n - 1].size += frame;
    } else {
        memcpy(s->wbuf + s->wlen, head, FRAME_HEAD);
        memcpy(s->wbuf + s->wlen + FRAME_HEAD, rec, len);
        s->wlen += (size_t)frame;
    }
    s->bytes += frame;
    return KW_E_OK;
}

/* ---- read -------------------------------------------------------------- */

/* Makes [off, off + need) of segment `id` available in rbuf. */
static bool fill(struct fsp *s, uint64_t id, uint64_t off, size_t need, uint64_t size)
{
    if (s->rseg == id && s->rfd >= 0 && off >= s->rbase && off + need <= s->rbase + s->rlen)
        return true;
    if (s->rseg != id || s->rfd < 0) {
        if (s->rfd >= 0) close(s->rfd);
        char path[4096];
        seg_path(s, id, path, sizeof path);
        s->rfd = open(path, O_RDONLY | O_CLOEXEC);
        s->rseg = id;
        s->rlen = 0;
        if (s->rfd < 0) return false;
    }
    if (need > s->rcap) {
        uint8_t *b = realloc(s->rbuf, need);
        if (!b) return false;
        s->rbuf = b;
        s->rcap = need;
    }
    size_t want = size - off < s->rcap ? (size_t)(size - off) : s->rcap;
    ssize_t r = pread(s->rfd, s->rbuf, want, (off_t)off);
    if (r < (ssize_t)need) {
        s->rlen = 0;
        return false;
    }
    s->rbase = off;
    s->rlen = (size_t)r;
    return true;
}

enum kw_err fsp_read(struct fsp *s, struct fsp_pos *pos, const uint8_t **rec, size_t *len)
{
    for (;;) {
        struct seg *g = seg_find(s, pos->seg);
        if (!g) {
            if (!s->n || pos->seg > s->segs[s->n - 1].id) return KW_E_NOTFOUND;
            size_t i = 0; /* a segment released meanwhile: the next one kept */
            while (i < s->n && s->segs[i].id < pos->seg)
                i++;
            *pos = (struct fsp_pos){s->segs[i].id, 0};
            continue;
        }
        if (pos->off + FRAME_HEAD > g->size) {
            if (g == &s->segs[s->n - 1]) return KW_E_NOTFOUND;
            *pos = (struct fsp_pos){g[1].id, 0};
            continue;
        }
        if (!fill(s, g->id, pos->off, FRAME_HEAD, g->size)) break;
        const uint8_t *h = s->rbuf + (pos->off - s->rbase);
        uint32_t n = get32(h), want = get32(h + 4);
        if (pos->off + FRAME_HEAD + n > g->size ||
            !fill(s, g->id, pos->off, FRAME_HEAD + (size_t)n, g->size))
            break;
        const uint8_t *p = s->rbuf + (pos->off - s->rbase) + FRAME_HEAD;
        if (crc(p, n) != want) break;
        *rec = p;
        *len = n;
        pos->off += FRAME_HEAD + n;
        return KW_E_OK;
    }
    s->st.io_errors++;
    return KW_E_IO;
}

/* ---- release ----------------------------------------------------------- */

struct fsp_pos fsp_acked(const struct fsp *s)
{
    return s->acked;
}

void fsp_release(struct fsp *s, struct fsp_pos pos)
{
    s->acked = pos;
    s->acked_dirty = true;
    size_t k = 0;
    while (k + 1 < s->n && s->segs[k].id < pos.seg) {
        char path[4096];
        seg_path(s, s->segs[k].id, path, sizeof path);
        if (unlink(path) != 0) s->st.io_errors++;
        s->bytes -= s->segs[k].size;
        k++;
    }
    if (k) {
        memmove(s->segs, s->segs + k, (s->n - k) * sizeof *s->segs);
        s->n -= k;
    }
    if (kw_ts_wall() - s->acked_saved >= KW_TS_SEC(1)) acked_save(s);
}

int fsp_empty(const struct fsp *s)
{
    if (s->wlen) return 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->segs[i].id > s->acked.seg ? s->segs[i].size > 0
                                          : s->segs[i].id == s->acked.seg &&
                                                s->segs[i].size > s->acked.off)
            return 0;
    return 1;
}

void fsp_get_stats(const struct fsp *s, struct fsp_stats *out)
{
    *out = s->st;
    out->bytes = s->bytes;
    out->segments = s->n;
}
