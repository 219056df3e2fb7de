/* kw_eve: EVE JSON line writer and the common parts of records built from
 * a transaction (see kw_eve.h). Field names follow Suricata's EVE so jq,
 * Filebeat and friends read them unchanged. */
#include "kw_eve.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kw_addr.h"
#include "kw_cond.h"
#include "kw_json.h"
#include "kw_jw.h"
#include "kw_thread.h"
#include "kw_log.h"

/* Records are rendered into one buffer of whole lines; the flusher thread
 * writes them with write(2) from a second buffer, so the thread that makes
 * records (the packet or judge thread) does not wait in the kernel for
 * ~150 MB of EVE an hour of busy API traffic writes (issue 13: the write
 * calls were ~8 % of the packet thread). A full buffer is handed over
 * when the other one is written; while a write is under way, a writer
 * that fills its buffer waits for it (back-pressure: never more than two
 * buffers). A failed or partial write never leaves half a record behind
 * (the file is cut back to the size after the last complete write), and
 * what was not written stays in its buffer to be retried.
 *
 * The buffers hold entries, not lines: a record's text, or a transaction
 * packed (kw_txn_pack) whose http record the writing thread renders just
 * before the write (kw_eve_write_txn). Rendering the http record was ~11 %
 * of the packet thread on the small-API capture and packing costs a
 * fraction of it (issue 13); the order of records is the order of entries,
 * so an alert still follows the http record of its transaction. A write
 * that fails keeps its entries and renders them again for the retry (the
 * same bytes: rendering depends on the entry alone). */
#define EVE_BUF KW_EVE_BUF
/* An entry: its kind and the length of what follows. */
enum { ENT_TEXT, ENT_TXN };
struct ent {
    uint32_t len, kind;
};
/* Room for the http record of any transaction: every text field at its
 * worst escaping (a control byte is six characters) and the names. */
#define EVE_TXN_CAP (6 * sizeof(struct kw_txn) + 8192)
#define EVE_FLUSH_US 500000 /* the flusher thread's period: at least once a second */
#define EVE_RETRY_US 1000000
/* After a write the flusher looks for pushed records (alerts) again this
 * soon without being woken: in a storm of alerts, one wake-up (a system
 * call on both sides) per write, not one per alert. */
#define EVE_PUSH_US 2000

/* What the flusher is doing, so that others wake it only when they must. */
enum eve_fstate { F_BUSY, F_SHORT, F_LONG };

struct kw_eve {
    int fd;
    bool is_stdout, regular;
    char *path;
    char *buf; /* entries being added */
    size_t len;
    uint64_t buf_records; /* records in buf */
    char *wbuf;           /* entries handed to the flusher, written before buf */
    size_t wlen;
    uint64_t wbuf_records;
    /* the lines of a block being written, and the transaction being
     * rendered: the writing thread's only (e->writing, or mu held while
     * nobody writes) */
    char *tbuf;
    size_t tcap;
    struct kw_txn *rt;
    uint64_t render_lost; /* entries that could not be rendered (no memory) */
    bool writing;         /* the flusher is writing wbuf without mu: nobody else writes */
    bool push;            /* kw_eve_push: hand buf over as soon as wbuf is written */
    enum eve_fstate fstate;
    off_t good;           /* regular file: size after the last complete write */
    bool failing, closed; /* closed: the reader went away (EPIPE), no retries */
    int err;              /* errno of the current failure */
    kw_ts fail_since, next_try; /* kw_mono_now() times */
    uint64_t dropped_before; /* dropped when the current failure began */
    struct kw_eve_stats st;
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* the flusher: work came, or stop */
    pthread_cond_t room; /* a write ended: wbuf may be free, the output may fail */
    pthread_t flusher;
    bool stop, started;
};

static const char *err_name(int err)
{
    const char *n = strerrorname_np(err);
    return n ? n : "?";
}

/* Writes the whole block. Only the one thread writing now (the flusher
 * with e->writing set, or a caller holding e->mu while nobody writes). */
static int write_all(struct kw_eve *e, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(e->fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* tbuf with room for `more` bytes after `used`; false without memory. */
static bool tbuf_room(struct kw_eve *e, size_t used, size_t more)
{
    if (e->tcap - used >= more) return true;
    size_t cap = e->tcap ? e->tcap : EVE_BUF;
    while (cap - used < more)
        cap *= 2;
    char *t = realloc(e->tbuf, cap);
    if (!t) return false;
    e->tbuf = t;
    e->tcap = cap;
    return true;
}

/* The lines of a block of entries, in tbuf; their length. An entry that
 * cannot be rendered (no memory for tbuf) is left out and counted. */
static size_t render_block(struct kw_eve *e, const char *p, size_t n)
{
    size_t out = 0;
    for (size_t at = 0; at + sizeof(struct ent) <= n;) {
        struct ent h;
        memcpy(&h, p + at, sizeof h);
        const char *body = p + at + sizeof h;
        at += sizeof h + h.len;
        if (h.kind == ENT_TEXT) {
            if (!tbuf_room(e, out, (size_t)h.len + 1)) {
                e->render_lost++;
                continue;
            }
            memcpy(e->tbuf + out, body, h.len);
            out += h.len;
            e->tbuf[out++] = '\n';
            continue;
        }
        if (!e->rt && !(e->rt = malloc(sizeof *e->rt))) {
            e->render_lost++;
            continue;
        }
        kw_txn_unpack(e->rt, body);
        struct kw_jw w;
        if (!tbuf_room(e, out, EVE_TXN_CAP + 1)) {
            e->render_lost++;
            continue;
        }
        kw_jw_init(&w, e->tbuf + out, EVE_TXN_CAP);
        kw_eve_jw_http_record(&w, e->rt);
        if (!kw_jw_ok(&w)) { /* cannot happen: EVE_TXN_CAP holds the worst case */
            e->render_lost++;
            continue;
        }
        out += w.len;
        e->tbuf[out++] = '\n';
    }
    return out;
}

/* One block of whole records to the file: after a failed attempt, the
 * partial write it may have left is cut first. Same callers as write_all. */
static int put_lines(struct kw_eve *e, const char *p, size_t n, bool after_failure)
{
    if (e->regular && after_failure) {
        struct stat st;
        if (fstat(e->fd, &st) == 0 && st.st_size > e->good && ftruncate(e->fd, e->good) != 0)
            return errno;
    }
    int err = write_all(e, p, n);
    if (!err && e->regular)
        e->good = lseek(e->fd, 0, SEEK_END);
    return err;
}

/* A block of entries to the file, rendered first. Same callers. */
static int put_block(struct kw_eve *e, const char *p, size_t n, bool after_failure)
{
    return put_lines(e, e->tbuf, render_block(e, p, n), after_failure);
}

static void drop_all(struct kw_eve *e)
{
    e->st.dropped += e->buf_records + e->wbuf_records;
    e->len = e->wlen = 0;
    e->buf_records = e->wbuf_records = 0;
}

static void fail(struct kw_eve *e, int err, kw_ts now)
{
    if (!e->failing || err != e->err)
        kw_warn("EVE %s: cannot write: %s (%s); records wait in memory (%u KiB), then are "
                "dropped and counted, until writing works again",
                e->path, strerror(err), err_name(err), 2 * EVE_BUF >> 10);
    if (!e->failing) {
        e->fail_since = now;
        e->dropped_before = e->st.dropped;
    }
    e->failing = true;
    e->err = err;
    e->st.write_errors++;
    e->next_try = now + EVE_RETRY_US;
    if (err == EPIPE && !e->regular) {
        /* nobody reads any more (`--eve - | head`): nothing will change */
        e->closed = true;
        drop_all(e);
    }
}

/* The outcome of writing `records` records. Called with e->mu held. */
static void settle(struct kw_eve *e, int err, uint64_t records)
{
    kw_ts now = kw_mono_now();
    if (err) {
        fail(e, err, now);
        return;
    }
    e->st.written += records;
    if (e->failing) {
        kw_warn("EVE %s: writing again after %.1f s; %llu records dropped meanwhile", e->path,
                (double)(now - e->fail_since) / 1e6,
                (unsigned long long)(e->st.dropped - e->dropped_before));
        e->failing = false;
        e->st.recoveries++;
    }
}

/* Waits until the flusher is not writing. Called with e->mu held. */
static void wait_idle(struct kw_eve *e)
{
    while (e->writing)
        pthread_cond_wait(&e->room, &e->mu);
}

/* Writes one buffer out in the calling thread and empties it; false when
 * the write failed (what it holds stays, to be retried). Called with e->mu
 * held while nobody else writes. */
static bool put_buffer(struct kw_eve *e, const char *p, size_t *len, uint64_t *records)
{
    if (!*len || e->closed)
        return true;
    int err = put_block(e, p, *len, e->failing);
    settle(e, err, err ? 0 : *records);
    if (err)
        return false;
    *len = 0;
    *records = 0;
    return true;
}

/* Writes out both buffers in order, in the calling thread. Called with
 * e->mu held. */
static void flush_locked(struct kw_eve *e)
{
    wait_idle(e);
    if (put_buffer(e, e->wbuf, &e->wlen, &e->wbuf_records))
        put_buffer(e, e->buf, &e->len, &e->buf_records);
}

/* buf becomes the flusher's wbuf (which must be empty). Called with e->mu
 * held; the caller wakes the flusher (after unlocking) when it is not
 * the flusher. */
static void hand_over(struct kw_eve *e)
{
    char *t = e->wbuf;
    e->wbuf = e->buf;
    e->wlen = e->len;
    e->wbuf_records = e->buf_records;
    e->buf = t;
    e->len = 0;
    e->buf_records = 0;
    e->push = false;
}

/* Frees buf for `need` more bytes when it can: hands it to the flusher,
 * waiting for the write under way if there is one. Not while the output
 * fails: records are then dropped, never waited for. Called with e->mu
 * held; true when the flusher must be woken. */
static bool make_room(struct kw_eve *e, size_t need)
{
    while (e->len + need > EVE_BUF && e->len) {
        if (!e->wlen) {
            hand_over(e);
            return e->fstate != F_BUSY;
        }
        if (e->failing || e->closed || e->stop || !e->started)
            return false;
        pthread_cond_wait(&e->room, &e->mu);
    }
    return false;
}

/* Appends one record (text without newline). Called with e->mu held;
 * true when the flusher must be woken (after unlocking). */
static bool append_locked(struct kw_eve *e, const char *text, size_t n)
{
    if (e->closed) {
        e->st.dropped++;
        return false;
    }
    bool wake = false;
    size_t need = sizeof(struct ent) + n;
    if (e->len + need > EVE_BUF)
        wake = make_room(e, need);
    if (e->len + need > EVE_BUF) {
        if (e->failing || e->len) { /* no room while the output fails */
            e->st.dropped++;
            return wake;
        }
        /* one record larger than the buffer: written on its own, after
         * what the flusher holds */
        flush_locked(e);
        if (e->failing || e->closed) {
            e->st.dropped++;
            return false;
        }
        char *line = malloc(n + 1);
        int err = line ? 0 : ENOMEM;
        if (line) {
            memcpy(line, text, n);
            line[n] = '\n';
            err = put_lines(e, line, n + 1, false);
            free(line);
        }
        if (err) {
            if (e->regular && ftruncate(e->fd, e->good) != 0) { /* the partial line */
            }
            e->st.dropped++;
        }
        settle(e, err, err ? 0 : 1);
        return false;
    }
    struct ent h = {(uint32_t)n, ENT_TEXT};
    memcpy(e->buf + e->len, &h, sizeof h);
    memcpy(e->buf + e->len + sizeof h, text, n);
    e->len += need;
    e->buf_records++;
    return wake;
}

/* Appends a transaction for its http record, packed straight into buf.
 * Called with e->mu held; true when the flusher must be woken. */
static bool append_txn_locked(struct kw_eve *e, const struct kw_txn *t)
{
    if (e->closed) {
        e->st.dropped++;
        return false;
    }
    size_t need = sizeof(struct ent) + KW_TXN_PACKED_MAX;
    bool wake = e->len + need > EVE_BUF ? make_room(e, need) : false;
    if (e->len + need > EVE_BUF) { /* the output fails: no room */
        e->st.dropped++;
        return wake;
    }
    size_t n = kw_txn_pack(t, e->buf + e->len + sizeof(struct ent));
    struct ent h = {(uint32_t)n, ENT_TXN};
    memcpy(e->buf + e->len, &h, sizeof h);
    e->len += sizeof h + n;
    e->buf_records++;
    return wake;
}

/* A record cut short by a kill (SIGKILL, power loss) is the last line of
 * the file without its newline; appending after it would glue two records
 * into one invalid line. It is cut off before anything is appended. */
static void cut_torn_tail(struct kw_eve *e)
{
    struct stat st;
    if (fstat(e->fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
        e->good = 0;
        return;
    }
    off_t end = st.st_size, pos = end;
    char chunk[4096];
    for (;;) {
        off_t from = pos > (off_t)sizeof chunk ? pos - (off_t)sizeof chunk : 0;
        ssize_t n = pread(e->fd, chunk, (size_t)(pos - from), from);
        if (n <= 0)
            break;
        ssize_t i = n - 1;
        while (i >= 0 && chunk[i] != '\n')
            i--;
        if (i >= 0) {
            pos = from + i + 1;
            break;
        }
        pos = from;
        if (from == 0)
            break;
    }
    if (pos < end) {
        if (ftruncate(e->fd, pos) == 0) {
            e->st.torn_cut++;
            kw_warn("EVE %s: cut an incomplete last record (%lld bytes) left by an interrupted "
                    "run",
                    e->path, (long long)(end - pos));
        } else {
            kw_warn("EVE %s: cannot cut an incomplete last record: %s", e->path, strerror(errno));
            pos = end;
        }
    }
    e->good = pos;
}

static int open_file(struct kw_eve *e)
{
    /* 0600: records hold who called what (CONVENTIONS: files keywarden
     * creates are private; an existing file keeps its mode) */
    int fd = open(e->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600); /* read: the tail check */
    if (fd < 0)
        return errno;
    struct stat st;
    e->fd = fd;
    e->regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (e->regular)
        cut_torn_tail(e);
    return 0;
}

/* The flusher: writes wbuf without holding mu, hands buf over when asked
 * (kw_eve_push), every EVE_FLUSH_US, and retries a failing output every
 * EVE_RETRY_US. */
static void *flusher_main(void *arg)
{
    struct kw_eve *e = arg;
    kw_thread_role("kw-eve", true);
    pthread_mutex_lock(&e->mu);
    kw_ts tick = kw_mono_now() + EVE_FLUSH_US, wrote = 0;
    while (!e->stop) {
        kw_ts now = kw_mono_now();
        bool due = !e->failing || now >= e->next_try;
        if (e->wlen && due && !e->closed) {
            bool after_failure = e->failing;
            size_t n = e->wlen;
            uint64_t records = e->wbuf_records;
            e->writing = true;
            pthread_mutex_unlock(&e->mu);
            int err = put_block(e, e->wbuf, n, after_failure);
            pthread_mutex_lock(&e->mu);
            e->writing = false;
            wrote = kw_mono_now();
            settle(e, err, err ? 0 : records);
            if (!err) {
                e->wlen = 0;
                e->wbuf_records = 0;
            }
            pthread_cond_broadcast(&e->room);
            continue;
        }
        if (now >= tick) {
            tick = now + EVE_FLUSH_US;
            if (e->len)
                e->push = true;
        }
        if (!e->wlen && e->len && e->push && !e->closed) {
            hand_over(e);
            continue;
        }
        kw_ts until = tick;
        if (e->wlen && e->failing && e->next_try < until)
            until = e->next_try;
        e->fstate = F_LONG;
        if (now < wrote + EVE_PUSH_US && wrote + EVE_PUSH_US < until) {
            until = wrote + EVE_PUSH_US;
            e->fstate = F_SHORT;
        }
        kw_cond_wait_until(&e->cv, &e->mu, until);
        e->fstate = F_BUSY;
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

enum kw_err kw_eve_open(const char *path, struct kw_eve **out)
{
    struct kw_eve *e = calloc(1, sizeof *e);
    if (!e)
        return KW_E_NOMEM;
    e->fd = -1;
    e->path = strdup(path);
    e->buf = malloc(EVE_BUF);
    e->wbuf = malloc(EVE_BUF);
    if (!e->path || !e->buf || !e->wbuf) {
        kw_eve_close(e);
        return KW_E_NOMEM;
    }
    if (strcmp(path, "-") == 0) {
        e->fd = STDOUT_FILENO;
        e->is_stdout = true;
    } else {
        int err = open_file(e);
        if (err) {
            kw_err_log("cannot open EVE file %s: %s (%s)", path, strerror(err), err_name(err));
            kw_eve_close(e);
            return KW_E_IO;
        }
    }
    pthread_mutex_init(&e->mu, NULL);
    kw_cond_init(&e->cv); /* the flusher's deadlines are on the monotonic clock */
    pthread_cond_init(&e->room, NULL);
    e->started = pthread_create(&e->flusher, NULL, flusher_main, e) == 0;
    if (!e->started) {
        pthread_cond_destroy(&e->room);
        pthread_cond_destroy(&e->cv);
        pthread_mutex_destroy(&e->mu);
        kw_eve_close(e);
        return KW_E_NOMEM;
    }
    *out = e;
    return KW_E_OK;
}

enum kw_err kw_eve_reopen(struct kw_eve *e)
{
    if (!e || e->is_stdout)
        return KW_E_OK;
    pthread_mutex_lock(&e->mu);
    flush_locked(e); /* what is buffered belongs to the old file */
    int old = e->fd;
    int err = open_file(e);
    enum kw_err rc = KW_E_OK;
    if (err) {
        e->fd = old; /* keep writing where we were */
        kw_warn("EVE %s: cannot reopen: %s (%s); still writing to the file opened before",
                e->path, strerror(err), err_name(err));
        rc = KW_E_IO;
    } else {
        close(old);
        e->st.reopens++;
        if (e->failing && e->len == 0 && e->wlen == 0) /* a new file: nothing left to retry */
            e->failing = false;
        e->next_try = 0;
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

void kw_eve_close(struct kw_eve *e)
{
    if (!e)
        return;
    if (e->started) {
        pthread_mutex_lock(&e->mu);
        e->stop = true;
        pthread_cond_signal(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->flusher, NULL);
        pthread_mutex_lock(&e->mu);
        flush_locked(e);
        if (e->len || e->wlen) { /* still failing at the end: these are lost */
            kw_warn("EVE %s: %llu records could not be written before exit", e->path,
                    (unsigned long long)(e->buf_records + e->wbuf_records));
            drop_all(e);
        }
        pthread_mutex_unlock(&e->mu);
        pthread_cond_destroy(&e->room);
        pthread_cond_destroy(&e->cv);
        pthread_mutex_destroy(&e->mu);
    }
    if (e->fd >= 0 && !e->is_stdout)
        close(e->fd);
    free(e->buf);
    free(e->wbuf);
    free(e->tbuf);
    free(e->rt);
    free(e->path);
    free(e);
}

void kw_eve_write(struct kw_eve *e, json_t *rec)
{
    if (e && rec) {
        char *s = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
        bool wake = false;
        pthread_mutex_lock(&e->mu);
        if (s)
            wake = append_locked(e, s, strlen(s));
        else
            e->st.dropped++;
        pthread_mutex_unlock(&e->mu);
        if (wake)
            pthread_cond_signal(&e->cv);
        free(s);
    }
    json_decref(rec);
}

void kw_eve_write_text(struct kw_eve *e, const char *text, size_t len)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    bool wake = append_locked(e, text, len);
    pthread_mutex_unlock(&e->mu);
    if (wake)
        pthread_cond_signal(&e->cv);
}

void kw_eve_write_txn(struct kw_eve *e, const struct kw_txn *t)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    bool wake = append_txn_locked(e, t);
    pthread_mutex_unlock(&e->mu);
    if (wake)
        pthread_cond_signal(&e->cv);
}

uint64_t kw_eve_dropped(struct kw_eve *e)
{
    struct kw_eve_stats st;
    kw_eve_get_stats(e, &st);
    return st.dropped;
}

void kw_eve_get_stats(struct kw_eve *e, struct kw_eve_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    *out = e->st;
    out->dropped += e->render_lost;
    out->failing = e->failing;
    out->buffered = e->buf_records + e->wbuf_records;
    pthread_mutex_unlock(&e->mu);
}

void kw_eve_flush(struct kw_eve *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    if (!e->failing || kw_mono_now() >= e->next_try)
        flush_locked(e);
    pthread_mutex_unlock(&e->mu);
}

void kw_eve_push(struct kw_eve *e)
{
    if (!e)
        return;
    bool wake = false;
    pthread_mutex_lock(&e->mu);
    if (e->len && !e->closed) {
        e->push = true;
        wake = e->fstate == F_LONG; /* busy or looking again shortly: no need */
    }
    pthread_mutex_unlock(&e->mu);
    if (wake)
        pthread_cond_signal(&e->cv);
}

const char *kw_tunnel_type_name(unsigned type)
{
    static const char *const names[] = {"none", "vxlan", "geneve", "gre", "erspan"};
    return type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

/* ---- records of a transaction, written with kw_jw --------------------- */

void kw_eve_jw_txn_header(struct kw_jw *w, const struct kw_txn *t, const char *event_type,
                          kw_ts ts)
{
    char tsb[40], a[64], b[64];
    kw_jw_str_k(w, KW_JK("timestamp"), kw_ts_format(ts, tsb, sizeof tsb));
    kw_jw_int_k(w, KW_JK("flow_id"), (int64_t)(t->flow_id & INT64_MAX));
    kw_jw_str_k(w, KW_JK("event_type"), event_type);
    kw_jw_str_k(w, KW_JK("src_ip"), kw_addr_str(&t->src, a, sizeof a));
    kw_jw_int_k(w, KW_JK("src_port"), t->sport);
    kw_jw_str_k(w, KW_JK("dest_ip"), kw_addr_str(&t->dst, b, sizeof b));
    kw_jw_int_k(w, KW_JK("dest_port"), t->dport);
    kw_jw_str_k(w, KW_JK("proto"), "TCP");
    if (t->vlan) {
        kw_jw_arr_begin_k(w, KW_JK("vlan"));
        kw_jw_int(w, NULL, t->vlan);
        kw_jw_arr_end(w);
    }
    if (t->tunnel_type) {
        kw_jw_obj_begin_k(w, KW_JK("tunnel"));
        kw_jw_str_k(w, KW_JK("type"), kw_tunnel_type_name(t->tunnel_type));
        kw_jw_int_k(w, KW_JK("id"), t->tunnel_id);
        kw_jw_obj_end(w);
    }
}

void kw_eve_jw_http(struct kw_jw *w, const struct kw_txn *t)
{
    kw_jw_obj_begin_k(w, KW_JK("http"));
    kw_jw_str_opt_k(w, KW_JK("hostname"), t->hostname);
    kw_jw_str_opt_k(w, KW_JK("url"), t->url);
    kw_jw_str_opt_k(w, KW_JK("http_method"), t->method);
    kw_jw_str_opt_k(w, KW_JK("protocol"), t->protocol);
    if (t->status)
        kw_jw_int_k(w, KW_JK("status"), t->status);
    if (!(t->flags & KW_TXN_F(NO_RESPONSE)))
        kw_jw_int_k(w, KW_JK("length"), (int64_t)t->resp_len);
    if (!(t->flags & KW_TXN_F(NO_REQUEST)))
        kw_jw_int_k(w, KW_JK("request_length"), (int64_t)t->req_len);
    kw_jw_str_opt_k(w, KW_JK("http_user_agent"), t->user_agent);
    kw_jw_str_opt_k(w, KW_JK("path"), t->path);
    kw_jw_str_opt_k(w, KW_JK("template"), t->template_);
    if (t->resp_ts && t->ts && t->resp_ts >= t->ts)
        kw_jw_ms_k(w, KW_JK("duration_ms"), t->resp_ts - t->ts);
    if (t->stream_id) { /* as Suricata's http record of an HTTP/2 stream */
        kw_jw_obj_begin_k(w, KW_JK("http2"));
        kw_jw_int_k(w, KW_JK("stream_id"), t->stream_id);
        kw_jw_obj_end(w);
    }
    if (t->flags & KW_TXN_F(GRPC) || t->has_grpc_status) {
        kw_jw_obj_begin_k(w, KW_JK("grpc"));
        if (t->has_grpc_status)
            kw_jw_int_k(w, KW_JK("status"), t->grpc_status);
        kw_jw_str_opt_k(w, KW_JK("message"), t->grpc_message);
        kw_jw_obj_end(w);
    }
    /* what the request asked the backend to run instead, as sent, and
     * what the service's backend personality says its handler ran
     * (docs/personalities.md); absent when nothing */
    if (t->ovr_method[0]) {
        kw_jw_obj_begin_k(w, KW_JK("method_override"));
        kw_jw_str_k(w, KW_JK("from"), kw_txn_ovr_src_name(t->ovr_method_src));
        kw_jw_str_k(w, KW_JK("method"), t->ovr_method);
        kw_jw_obj_end(w);
    }
    if (t->ovr_url[0]) {
        kw_jw_obj_begin_k(w, KW_JK("url_override"));
        kw_jw_str_k(w, KW_JK("from"), kw_txn_ovr_src_name(t->ovr_url_src));
        kw_jw_str_k(w, KW_JK("url"), t->ovr_url);
        kw_jw_obj_end(w);
    }
    if (t->eff_method[0]) kw_jw_str_k(w, KW_JK("effective_method"), t->eff_method);
    if (t->eff_path[0]) kw_jw_str_k(w, KW_JK("effective_path"), t->eff_path);
    kw_jw_arr_begin_k(w, KW_JK("flags"));
    for (unsigned bit = 0; bit < KW_TXN_BIT__COUNT; bit++)
        if (t->flags & (UINT32_C(1) << bit))
            kw_jw_str(w, NULL, kw_txn_flag_name(bit));
    kw_jw_arr_end(w);
    kw_jw_obj_end(w);
}

const char *kw_eve_cred_kind_name(unsigned k)
{
    static const char *const names[] = {"none",    "bearer", "jwt",        "basic",
                                        "api_key", "other",  "client_cert"};
    return k < sizeof names / sizeof names[0] ? names[k] : "unknown";
}

void kw_eve_jw_cred(struct kw_jw *w, const struct kw_txn *t)
{
    const struct kw_cred *c = &t->cred;
    if (c->kind == KW_CRED_NONE)
        return;
    kw_jw_obj_begin_k(w, KW_JK("credential"));
    kw_jw_str_k(w, KW_JK("kind"), kw_eve_cred_kind_name(c->kind));
    kw_jw_str_opt_k(w, KW_JK("source"), c->source);
    kw_jw_str_opt_k(w, KW_JK("fingerprint"), c->fingerprint);
    kw_jw_str_opt_k(w, KW_JK("hint"), c->hint);
    kw_jw_str_opt_k(w, KW_JK("user"), c->basic_user);
    if (c->kind == KW_CRED_CLIENT_CERT)
        kw_jw_str_opt_k(w, KW_JK("subject"), c->cert_subject);
    if (c->kind == KW_CRED_JWT) {
        kw_jw_obj_begin_k(w, KW_JK("jwt"));
        kw_jw_str_opt_k(w, KW_JK("iss"), c->jwt.iss);
        kw_jw_str_opt_k(w, KW_JK("sub"), c->jwt.sub);
        kw_jw_str_opt_k(w, KW_JK("aud"), c->jwt.aud);
        kw_jw_str_opt_k(w, KW_JK("client_id"), c->jwt.client_id);
        kw_jw_str_opt_k(w, KW_JK("alg"), c->jwt.alg);
        if (c->jwt.has_exp)
            kw_jw_int_k(w, KW_JK("exp"), c->jwt.exp);
        if (c->jwt.has_iat)
            kw_jw_int_k(w, KW_JK("iat"), c->jwt.iat);
        if (c->jwt.has_auth_time)
            kw_jw_int_k(w, KW_JK("auth_time"), c->jwt.auth_time);
        if (c->jwt.has_scope)
            kw_jw_str_k(w, KW_JK("scope"), c->jwt.scope);
        kw_jw_str_opt_k(w, KW_JK("cnf_jkt"), c->jwt.cnf_jkt);
        kw_jw_obj_end(w);
    }
    if (c->dpop_scheme)
        kw_jw_str_k(w, KW_JK("scheme"), "DPoP");
    kw_eve_jw_dpop(w, &c->dpop);
    kw_jw_obj_end(w);
}

void kw_eve_jw_dpop(struct kw_jw *w, const struct kw_dpop *d)
{
    if (d->state == KW_DPOP_NONE)
        return;
    kw_jw_obj_begin_k(w, KW_JK("dpop"));
    kw_jw_str_k(w, KW_JK("proof"), d->state == KW_DPOP_BAD ? "invalid"
                          : d->sig_valid         ? "valid"
                                                 : "bad_signature");
    kw_jw_str_opt_k(w, KW_JK("error"), d->error);
    kw_jw_str_opt_k(w, KW_JK("alg"), d->alg);
    kw_jw_str_opt_k(w, KW_JK("htm"), d->htm);
    kw_jw_str_opt_k(w, KW_JK("htu"), d->htu);
    if (d->has_iat)
        kw_jw_int_k(w, KW_JK("iat"), d->iat);
    kw_jw_str_opt_k(w, KW_JK("jti"), d->jti);
    kw_jw_str_opt_k(w, KW_JK("jkt"), d->jkt);
    if (d->has_ath)
        kw_jw_str_k(w, KW_JK("ath"), d->ath_match ? "match" : "mismatch");
    kw_jw_obj_end(w);
}

void kw_eve_jw_identity(struct kw_jw *w, const struct kw_txn *t)
{
    if (!t->identity.id[0])
        return;
    kw_jw_obj_begin_k(w, KW_JK("identity"));
    kw_jw_str_opt_k(w, KW_JK("id"), t->identity.id);
    kw_jw_str_opt_k(w, KW_JK("name"), t->identity.name);
    kw_jw_str_opt_k(w, KW_JK("kind"), t->identity.kind);
    kw_jw_str_opt_k(w, KW_JK("attribution"), t->identity.via);
    if (kw_identity_claimed(&t->identity))
        kw_jw_bool_k(w, KW_JK("claimed"), true);
    kw_jw_obj_end(w);
}

void kw_eve_jw_http_record(struct kw_jw *w, const struct kw_txn *t)
{
    kw_jw_obj_begin(w, NULL);
    kw_eve_jw_txn_header(w, t, "http", t->ts);
    kw_eve_jw_http(w, t);
    if (t->flags & KW_TXN_F(TLS)) {
        kw_jw_obj_begin_k(w, KW_JK("tls"));
        kw_jw_str_opt_k(w, KW_JK("sni"), t->tls.sni);
        kw_jw_str_k(w, KW_JK("version"), t->tls.version);
        kw_jw_str_opt_k(w, KW_JK("ja4"), t->tls.ja4);
        kw_jw_bool_k(w, KW_JK("decrypted"), t->tls.decrypted);
        kw_jw_obj_end(w);
    }
    kw_eve_jw_cred(w, t);
    kw_eve_jw_identity(w, t);
    kw_jw_obj_end(w);
}

/* ---- the same as jansson objects, for records built around them (alerts).
 * One writer defines the fields; these parse its text back. */

enum { EVE_PART_HEADER, EVE_PART_HTTP, EVE_PART_CRED, EVE_PART_IDENTITY };

static json_t *render(const struct kw_txn *t, int part, const char *event_type, kw_ts ts)
{
    size_t cap = 65536;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    struct kw_jw w;
    kw_jw_init(&w, buf, cap);
    kw_jw_obj_begin(&w, NULL);
    if (part == EVE_PART_HEADER)
        kw_eve_jw_txn_header(&w, t, event_type, ts);
    else if (part == EVE_PART_HTTP)
        kw_eve_jw_http(&w, t);
    else if (part == EVE_PART_CRED)
        kw_eve_jw_cred(&w, t);
    else
        kw_eve_jw_identity(&w, t);
    kw_jw_obj_end(&w);
    json_t *o = kw_jw_ok(&w) ? json_loadb(buf, w.len, 0, NULL) : NULL;
    free(buf);
    if (!o || part == EVE_PART_HEADER)
        return o;
    /* the part's single member */
    json_t *v = json_object_size(o) ? json_incref(json_object_iter_value(json_object_iter(o)))
                                    : NULL;
    json_decref(o);
    return v;
}

json_t *kw_eve_txn_header(const struct kw_txn *t, const char *event_type, kw_ts ts)
{
    return render(t, EVE_PART_HEADER, event_type, ts);
}

json_t *kw_eve_http_obj(const struct kw_txn *t)
{
    return render(t, EVE_PART_HTTP, NULL, 0);
}

json_t *kw_eve_cred_obj(const struct kw_txn *t)
{
    return render(t, EVE_PART_CRED, NULL, 0);
}

json_t *kw_eve_identity_obj(const struct kw_txn *t)
{
    return render(t, EVE_PART_IDENTITY, NULL, 0);
}
