/* tls_keylog: the NSS key log table and its files (see tls_keylog.h).
 * Entries sit in a fixed array used as a ring (the oldest is reused when
 * full) and are chained from a power-of-two bucket array by client
 * random. */
#include "tls_keylog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kw_log.h"
#include "kw_thread.h"
#include "kw_hash.h"

#define KL_LINE_MAX 512 /* the longest entry: label + 64 + 96 hex digits */

struct kl_entry {
    uint8_t cr[32];
    struct tls_secrets s;
    uint32_t next; /* chain: index + 1, 0 = end */
    uint32_t bucket;
    bool used;
};

struct kl_file {
    char *path;
    bool is_dir, child;
    dev_t dev;
    ino_t ino;
    off_t off;
    bool refused, missing_said;
    char part[KL_LINE_MAX];
    size_t plen;
};

struct tls_keylog {
    pthread_mutex_t mu; /* the table and counters */
    struct kl_entry *e;
    uint32_t *bucket; /* index + 1 */
    uint32_t max, mask, ring;
    _Atomic uint64_t gen;
    struct tls_keylog_counters cnt;
    /* files: touched only by the poller (one thread at a time: poll_mu) */
    pthread_mutex_t poll_mu;
    struct kl_file *f;
    size_t nf;
    pthread_t thr;
    bool thr_on;
    _Atomic bool stop;
    unsigned interval_ms;
};

enum kw_err tls_keylog_new(size_t max_sessions, struct tls_keylog **out)
{
    struct tls_keylog *kl = calloc(1, sizeof *kl);
    if (!kl)
        return KW_E_NOMEM;
    kl->max = max_sessions ? (uint32_t)(max_sessions < (1u << 24) ? max_sessions : 1u << 24)
                           : 65536;
    uint32_t cap = 64;
    while (cap < kl->max * 2)
        cap *= 2;
    kl->mask = cap - 1;
    kl->e = calloc(kl->max, sizeof *kl->e);
    kl->bucket = calloc(cap, sizeof *kl->bucket);
    if (!kl->e || !kl->bucket) {
        free(kl->e);
        free(kl->bucket);
        free(kl);
        return KW_E_NOMEM;
    }
    pthread_mutex_init(&kl->mu, NULL);
    pthread_mutex_init(&kl->poll_mu, NULL);
    *out = kl;
    return KW_E_OK;
}

void tls_keylog_destroy(struct tls_keylog *kl)
{
    if (!kl)
        return;
    if (kl->thr_on) {
        atomic_store(&kl->stop, true);
        pthread_join(kl->thr, NULL);
    }
    OPENSSL_cleanse(kl->e, (size_t)kl->max * sizeof *kl->e);
    free(kl->e);
    free(kl->bucket);
    for (size_t i = 0; i < kl->nf; i++)
        free(kl->f[i].path);
    free(kl->f);
    pthread_mutex_destroy(&kl->mu);
    pthread_mutex_destroy(&kl->poll_mu);
    free(kl);
}

/* Client randoms are chosen by clients: keyed (kw_hash.h). */
static uint32_t cr_hash(const uint8_t cr[32])
{
    return (uint32_t)kw_siphash(kw_hkey_process(), cr, 32);
}

static struct kl_entry *find(struct tls_keylog *kl, const uint8_t cr[32])
{
    for (uint32_t i = kl->bucket[cr_hash(cr) & kl->mask]; i; i = kl->e[i - 1].next)
        if (!memcmp(kl->e[i - 1].cr, cr, 32))
            return &kl->e[i - 1];
    return NULL;
}

static void unlink_entry(struct tls_keylog *kl, uint32_t idx)
{
    struct kl_entry *x = &kl->e[idx];
    uint32_t *pp = &kl->bucket[x->bucket];
    while (*pp && *pp != idx + 1)
        pp = &kl->e[*pp - 1].next;
    if (*pp)
        *pp = x->next;
    OPENSSL_cleanse(x, sizeof *x);
    memset(x, 0, sizeof *x);
}

static struct kl_entry *get_or_add(struct tls_keylog *kl, const uint8_t cr[32])
{
    struct kl_entry *x = find(kl, cr);
    if (x)
        return x;
    uint32_t idx = kl->ring++ % kl->max;
    if (kl->e[idx].used) {
        unlink_entry(kl, idx);
        kl->cnt.evicted++;
    }
    x = &kl->e[idx];
    memcpy(x->cr, cr, 32);
    x->used = true;
    x->bucket = cr_hash(cr) & kl->mask;
    x->next = kl->bucket[x->bucket];
    kl->bucket[x->bucket] = idx + 1;
    return x;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex field [p, p+n) into out (n/2 bytes); false on a bad digit. */
static bool unhex(const char *p, size_t n, uint8_t *out)
{
    for (size_t i = 0; i + 1 < n; i += 2) {
        int a = hexval(p[i]), b = hexval(p[i + 1]);
        if (a < 0 || b < 0)
            return false;
        out[i / 2] = (uint8_t)(a << 4 | b);
    }
    return n % 2 == 0;
}

static const struct {
    const char *label;
    uint8_t bit;
} labels[] = {
    {"CLIENT_RANDOM", TLS_SEC_MASTER},
    {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", TLS_SEC_CHTS},
    {"SERVER_HANDSHAKE_TRAFFIC_SECRET", TLS_SEC_SHTS},
    {"CLIENT_TRAFFIC_SECRET_0", TLS_SEC_CTS0},
    {"SERVER_TRAFFIC_SECRET_0", TLS_SEC_STS0},
};
static const char *const unused_labels[] = {"CLIENT_EARLY_TRAFFIC_SECRET", "EXPORTER_SECRET",
                                            "CLIENT_TRAFFIC_SECRET_N", "SERVER_TRAFFIC_SECRET_N",
                                            "EARLY_EXPORTER_SECRET", "RSA"};

/* Splits "LABEL CR SECRET": 0 fields ok, -1 malformed, 1 unused label. */
static int split(const char *s, size_t n, uint8_t *bit, const char **cr, const char **sec,
                 size_t *sec_len)
{
    const char *sp1 = memchr(s, ' ', n);
    if (!sp1)
        return -1;
    size_t ll = (size_t)(sp1 - s);
    *bit = 0;
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
        if (strlen(labels[i].label) == ll && !memcmp(s, labels[i].label, ll))
            *bit = labels[i].bit;
    if (!*bit) {
        for (size_t i = 0; i < sizeof unused_labels / sizeof unused_labels[0]; i++)
            if (strlen(unused_labels[i]) == ll && !memcmp(s, unused_labels[i], ll))
                return 1;
        return -1;
    }
    *cr = sp1 + 1;
    if ((size_t)(s + n - *cr) < 65 || (*cr)[64] != ' ')
        return -1;
    *sec = *cr + 65;
    *sec_len = (size_t)(s + n - *sec);
    return 0;
}

static int add_line_locked(struct tls_keylog *kl, const char *s, size_t n)
{
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (!n || s[0] == '#')
        return 0;
    kl->cnt.lines++;
    uint8_t bit, cr[32], sec[48];
    const char *crh, *sech;
    size_t sl;
    int r = split(s, n, &bit, &crh, &sech, &sl);
    if (r == 1) {
        kl->cnt.ignored_labels++;
        return 0;
    }
    bool master = bit == TLS_SEC_MASTER;
    if (r < 0 || !unhex(crh, 64, cr) || (master ? sl != 96 : (sl != 64 && sl != 96)) ||
        !unhex(sech, sl, sec)) {
        kl->cnt.bad_lines++;
        OPENSSL_cleanse(sec, sizeof sec);
        return -1;
    }
    struct kl_entry *x = get_or_add(kl, cr);
    uint8_t *dst = master                ? x->s.master
                   : bit == TLS_SEC_CHTS ? x->s.chts
                   : bit == TLS_SEC_SHTS ? x->s.shts
                   : bit == TLS_SEC_CTS0 ? x->s.cts0
                                         : x->s.sts0;
    memcpy(dst, sec, sl / 2);
    if (!master)
        x->s.len13 = (uint8_t)(sl / 2);
    x->s.have |= bit;
    OPENSSL_cleanse(sec, sizeof sec);
    kl->cnt.secrets++;
    atomic_fetch_add(&kl->gen, 1);
    return 1;
}

int tls_keylog_add_line(struct tls_keylog *kl, const char *line, size_t len)
{
    pthread_mutex_lock(&kl->mu);
    int r = add_line_locked(kl, line, len);
    pthread_mutex_unlock(&kl->mu);
    return r;
}

bool tls_keylog_lookup(struct tls_keylog *kl, const uint8_t cr[32], struct tls_secrets *out)
{
    pthread_mutex_lock(&kl->mu);
    kl->cnt.lookups++;
    struct kl_entry *x = find(kl, cr);
    if (x) {
        *out = x->s;
        kl->cnt.hits++;
    }
    pthread_mutex_unlock(&kl->mu);
    return x != NULL;
}

uint64_t tls_keylog_generation(const struct tls_keylog *kl)
{
    return atomic_load(&((struct tls_keylog *)kl)->gen);
}

void tls_keylog_get_counters(struct tls_keylog *kl, struct tls_keylog_counters *out)
{
    pthread_mutex_lock(&kl->mu);
    *out = kl->cnt;
    pthread_mutex_unlock(&kl->mu);
}

/* ---- files ----------------------------------------------------------- */

static bool others_may(mode_t m)
{
    return (m & (S_IROTH | S_IWOTH)) != 0;
}

static struct kl_file *file_add(struct tls_keylog *kl, const char *path, bool is_dir, bool child)
{
    struct kl_file *f = realloc(kl->f, (kl->nf + 1) * sizeof *f);
    if (!f)
        return NULL;
    kl->f = f;
    f = &kl->f[kl->nf];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path)
        return NULL;
    f->is_dir = is_dir;
    f->child = child;
    kl->nf++;
    return f;
}

/* Lines of buf (with the file's partial line in front) into the table. */
static size_t feed_lines(struct tls_keylog *kl, struct kl_file *f, const char *buf, size_t n)
{
    size_t added = 0, start = 0;
    pthread_mutex_lock(&kl->mu);
    for (size_t i = 0; i < n; i++) {
        if (buf[i] != '\n')
            continue;
        size_t len = i + 1 - start;
        if (f->plen) {
            if (f->plen + len <= sizeof f->part) {
                memcpy(f->part + f->plen, buf + start, len);
                added += add_line_locked(kl, f->part, f->plen + len) > 0;
            } else {
                kl->cnt.bad_lines++;
            }
            OPENSSL_cleanse(f->part, sizeof f->part);
            f->plen = 0;
        } else {
            added += add_line_locked(kl, buf + start, len) > 0;
        }
        start = i + 1;
    }
    size_t rest = n - start;
    if (rest && f->plen + rest <= sizeof f->part) {
        memcpy(f->part + f->plen, buf + start, rest);
        f->plen += rest;
    } else if (rest) {
        kl->cnt.bad_lines++; /* an over-long line: dropped */
        f->plen = 0;
    }
    pthread_mutex_unlock(&kl->mu);
    return added;
}

static void count(struct tls_keylog *kl, uint64_t *c)
{
    pthread_mutex_lock(&kl->mu);
    (*c)++;
    pthread_mutex_unlock(&kl->mu);
}

static size_t read_file(struct tls_keylog *kl, struct kl_file *f)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno != ENOENT)
            count(kl, &kl->cnt.read_errors);
        return 0;
    }
    struct stat st;
    size_t added = 0;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return 0;
    }
    if (others_may(st.st_mode)) {
        if (!f->refused) {
            kw_warn("tls keylog %s: refused, others may read it (mode %04o); it holds the keys "
                    "of every session it names: chmod o-rwx it",
                    f->path, (unsigned)(st.st_mode & 07777));
            count(kl, &kl->cnt.refused_files);
        }
        f->refused = true;
        close(fd);
        return 0;
    }
    f->refused = false;
    if (st.st_dev != f->dev || st.st_ino != f->ino || st.st_size < f->off) {
        if (f->ino)
            count(kl, &kl->cnt.reopened);
        f->dev = st.st_dev;
        f->ino = st.st_ino;
        f->off = 0;
        f->plen = 0;
    }
    char buf[65536];
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof buf, f->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            count(kl, &kl->cnt.read_errors);
        if (n <= 0)
            break;
        f->off += n;
        added += feed_lines(kl, f, buf, (size_t)n);
    }
    OPENSSL_cleanse(buf, sizeof buf);
    close(fd);
    return added;
}

static void scan_dir(struct tls_keylog *kl, size_t di)
{
    DIR *d = opendir(kl->f[di].path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[4096];
        if (snprintf(p, sizeof p, "%s/%s", kl->f[di].path, de->d_name) >= (int)sizeof p)
            continue;
        bool known = false;
        for (size_t i = 0; i < kl->nf && !known; i++)
            known = !strcmp(kl->f[i].path, p);
        struct stat st;
        if (known || stat(p, &st) || !S_ISREG(st.st_mode))
            continue;
        if (file_add(kl, p, false, true))
            count(kl, &kl->cnt.files);
    }
    closedir(d);
}

size_t tls_keylog_poll(struct tls_keylog *kl)
{
    size_t added = 0;
    pthread_mutex_lock(&kl->poll_mu);
    for (size_t i = 0; i < kl->nf; i++)
        if (kl->f[i].is_dir)
            scan_dir(kl, i); /* may grow kl->f */
    for (size_t i = 0; i < kl->nf; i++)
        if (!kl->f[i].is_dir)
            added += read_file(kl, &kl->f[i]);
    pthread_mutex_unlock(&kl->poll_mu);
    return added;
}

enum kw_err tls_keylog_add_path(struct tls_keylog *kl, const char *path, bool must_exist,
                                char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st)) {
        if (must_exist || errno != ENOENT) {
            snprintf(err, errlen, "tls keylog %s: %s", path, strerror(errno));
            return KW_E_CONFIG;
        }
        st.st_mode = S_IFREG;
    } else if (others_may(st.st_mode) && !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen,
                 "tls keylog %s: others may read or write it (mode %04o); it holds the keys of "
                 "every session it names: chmod o-rwx %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        count(kl, &kl->cnt.refused_files);
        return KW_E_CONFIG;
    } else if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "tls keylog %s: not a regular file or a directory", path);
        return KW_E_CONFIG;
    }
    pthread_mutex_lock(&kl->poll_mu);
    bool ok = file_add(kl, path, S_ISDIR(st.st_mode), false) != NULL;
    pthread_mutex_unlock(&kl->poll_mu);
    if (!ok)
        return KW_E_NOMEM;
    if (!S_ISDIR(st.st_mode))
        count(kl, &kl->cnt.files);
    tls_keylog_poll(kl);
    return KW_E_OK;
}

static void *follower(void *arg)
{
    struct tls_keylog *kl = arg;
    kw_thread_role("kw-keylog", false);
    while (!atomic_load(&kl->stop)) {
        struct timespec ts = {kl->interval_ms / 1000, (long)(kl->interval_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        tls_keylog_poll(kl);
    }
    return NULL;
}

enum kw_err tls_keylog_follow(struct tls_keylog *kl, unsigned interval_ms)
{
    if (kl->thr_on)
        return KW_E_OK;
    kl->interval_ms = interval_ms ? interval_ms : 200;
    if (pthread_create(&kl->thr, NULL, follower, kl))
        return KW_E_NOMEM;
    kl->thr_on = true;
    return KW_E_OK;
}
