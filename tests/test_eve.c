/* kw_eve's writer under real output failures: a file-size limit
 * (RLIMIT_FSIZE) that makes writes fail with EFBIG and is then lifted, a
 * process SIGKILLed while it writes, a torn last line left by an older
 * run, log rotation (rename + reopen), a reader slower than the writer
 * (back-pressure), the once-a-second flush and the mode of a new file;
 * and transactions whose http records the writer's thread renders, in
 * order with the other records, through a failing output. Each failing case runs in a forked child so limits
 * and kills stay there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "kw_eve.h"
#include "kw_jw.h"

static char tmpdir[256];

static void path_of(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

static json_t *rec(int i, size_t pad)
{
    char *p = malloc(pad + 1);
    memset(p, 'x', pad);
    p[pad] = 0;
    json_t *r = json_pack("{s:s,s:i,s:s}", "event_type", "test", "n", i, "pad", p);
    free(p);
    return r;
}

/* Lines of a file: every one must be a whole JSON object; *torn is set
 * when the last line has no newline. Returns the number of lines. */
static long check_lines(const char *path, bool *torn, long *max_n)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long n = 0;
    *torn = false;
    if (max_n) *max_n = -1;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n') {
            *torn = true;
            break;
        }
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);
        if (!j) {
            fprintf(stderr, "line %ld is not JSON: %.60s\n", n + 1, line);
            n = -2;
            break;
        }
        if (max_n) *max_n = json_integer_value(json_object_get(j, "n"));
        json_decref(j);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

/* A new file is private (0600), whatever the umask allows. */
static void test_new_file_mode(void **state)
{
    char p[300];
    path_of(p, sizeof p, "mode.json");
    mode_t old = umask(0);
    struct kw_eve *e = NULL;
    assert_int_equal(kw_eve_open(p, &e), KW_E_OK);
    umask(old);
    kw_eve_write(e, rec(1, 10));
    kw_eve_close(e);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

/* A record written without an explicit flush is in the file within a
 * second (read by another descriptor, as a shipper would). */
static void test_flushed_within_a_second(void **state)
{
    char p[300];
    path_of(p, sizeof p, "tick.json");
    struct kw_eve *e = NULL;
    assert_int_equal(kw_eve_open(p, &e), KW_E_OK);
    kw_eve_write(e, rec(1, 10));
    usleep(1100000);
    bool torn;
    assert_int_equal(check_lines(p, &torn, NULL), 1);
    kw_eve_close(e);
}

/* The torn tail an earlier run left (here written by hand, as a kill in
 * the middle of a buffered write leaves it) is cut before appending. */
static void test_torn_tail_cut(void **state)
{
    char p[300];
    path_of(p, sizeof p, "torn.json");
    FILE *f = fopen(p, "w");
    fputs("{\"event_type\":\"test\",\"n\":1}\n{\"event_type\":\"test\",\"n\":2}\n{\"event_ty", f);
    fclose(f);
    struct kw_eve *e = NULL;
    assert_int_equal(kw_eve_open(p, &e), KW_E_OK);
    kw_eve_write(e, rec(3, 10));
    struct kw_eve_stats st;
    kw_eve_flush(e);
    kw_eve_get_stats(e, &st);
    kw_eve_close(e);
    assert_int_equal(st.torn_cut, 1);
    bool torn;
    long max_n;
    assert_int_equal(check_lines(p, &torn, &max_n), 3);
    assert_false(torn);
    assert_int_equal(max_n, 3);
}

/* A writer SIGKILLed at random moments, 12 times, on one file: after each
 * kill the next open leaves only whole JSON lines, records keep coming. */
static void test_sigkill_mid_write(void **state)
{
    char p[300];
    path_of(p, sizeof p, "kill.json");
    unlink(p);
    unsigned cuts = 0;
    for (int round = 0; round < 12; round++) {
        pid_t c = fork();
        assert_true(c >= 0);
        if (c == 0) {
            struct kw_eve *e = NULL;
            if (kw_eve_open(p, &e) != KW_E_OK) _exit(3);
            for (int i = 0;; i++) {
                kw_eve_write(e, rec(i, 3000 + (size_t)(i % 7) * 1000));
                if (i % 50 == 0) kw_eve_flush(e);
            }
        }
        usleep(20000 + (useconds_t)(rand() % 60000));
        kill(c, SIGKILL);
        waitpid(c, NULL, 0);
        bool torn;
        long before = check_lines(p, &torn, NULL);
        assert_true(before >= 0);
        struct kw_eve *e = NULL;
        assert_int_equal(kw_eve_open(p, &e), KW_E_OK);
        kw_eve_write(e, rec(-1, 10));
        struct kw_eve_stats st;
        kw_eve_flush(e);
        kw_eve_get_stats(e, &st);
        kw_eve_close(e);
        cuts += (unsigned)st.torn_cut;
        assert_int_equal(st.torn_cut, torn ? 1 : 0);
        long after = check_lines(p, &torn, NULL);
        assert_false(torn);
        assert_int_equal(after, before + 1);
    }
    fprintf(stderr, "sigkill: 12 kills mid-write, %u torn last lines cut\n", cuts);
}

/* RLIMIT_FSIZE: once the file reaches the limit, writes fail (EFBIG, with
 * SIGXFSZ ignored, as `run` does); records wait, then are dropped and
 * counted; the file never holds half a record. The limit is lifted and
 * writing resumes by itself. Runs in a child (the limit is per process). */
/* In a child: the EVE output at p opened with SIGXFSZ ignored (as `run`
 * does) and, when limit > 0, the file size limited to it; *was gets the
 * limit before, to lift it again. 0, or the child's exit code (10, 11). */
static int open_limited(const char *p, rlim_t limit, struct kw_eve **e, struct rlimit *was)
{
    signal(SIGXFSZ, SIG_IGN);
    if (kw_eve_open(p, e) != KW_E_OK) return 10;
    getrlimit(RLIMIT_FSIZE, was);
    struct rlimit low = {.rlim_cur = limit, .rlim_max = was->rlim_max};
    if (limit && setrlimit(RLIMIT_FSIZE, &low) != 0) return 11;
    return 0;
}

static int fsize_child(const char *p)
{
    struct kw_eve *e = NULL;
    struct rlimit rl;
    int rc = open_limited(p, 100 * 1024, &e, &rl);
    if (rc) return rc;
    int i = 0;
    /* past the 100 KiB limit and both buffers */
    const int n = (int)(2 * KW_EVE_BUF / 1000) + 600;
    for (; i < n; i++)
        kw_eve_write(e, rec(i, 1000));
    kw_eve_flush(e);
    struct kw_eve_stats st;
    kw_eve_get_stats(e, &st);
    if (!st.failing || st.write_errors == 0 || st.dropped == 0) return 12;
    if (st.written + st.dropped + st.buffered != (uint64_t)n) return 13;
    struct stat fs;
    if (stat(p, &fs) != 0 || fs.st_size > 100 * 1024) return 14;
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) return 15; /* the cause goes away */
    usleep(1600000);                                  /* the retry is at most 1 s later */
    for (int k = 0; k < 10; k++, i++)
        kw_eve_write(e, rec(i, 1000));
    kw_eve_flush(e);
    kw_eve_get_stats(e, &st);
    fprintf(stderr, "fsize: written %llu dropped %llu write_errors %llu recoveries %llu\n",
            (unsigned long long)st.written, (unsigned long long)st.dropped,
            (unsigned long long)st.write_errors, (unsigned long long)st.recoveries);
    if (st.failing || st.recoveries != 1) return 16;
    if (st.written + st.dropped != (uint64_t)n + 10) return 17;
    kw_eve_close(e);
    return 0;
}

static void test_file_size_limit(void **state)
{
    char p[300];
    path_of(p, sizeof p, "fsize.json");
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) _exit(fsize_child(p));
    int status;
    waitpid(c, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    bool torn;
    long max_n;
    long n = check_lines(p, &torn, &max_n);
    assert_false(torn);
    assert_true(n > 10);
    assert_int_equal(max_n, (long)(2 * KW_EVE_BUF / 1000) + 609); /* after the recovery */
}

/* logrotate: the file is renamed, kw_eve_reopen() starts a new one; the
 * records before are in the old file, those after in the new. */
static void test_reopen_after_rename(void **state)
{
    char p[300], old[320];
    path_of(p, sizeof p, "rot.json");
    snprintf(old, sizeof old, "%s.1", p);
    struct kw_eve *e = NULL;
    assert_int_equal(kw_eve_open(p, &e), KW_E_OK);
    kw_eve_write(e, rec(1, 10));
    kw_eve_write(e, rec(2, 10));
    assert_int_equal(rename(p, old), 0);
    assert_int_equal(kw_eve_reopen(e), KW_E_OK);
    kw_eve_write(e, rec(3, 10));
    kw_eve_close(e);
    bool torn;
    long max_n;
    assert_int_equal(check_lines(old, &torn, &max_n), 2);
    assert_int_equal(max_n, 2);
    assert_int_equal(check_lines(p, &torn, &max_n), 1);
    assert_int_equal(max_n, 3);
}

/* A reader slower than the writer (a FIFO nobody reads for a while): the
 * writer's thread blocks in write(2), both 256 KiB buffers fill, and
 * kw_eve_write then waits for room (back-pressure) instead of growing or
 * dropping. Once the reader reads, every record arrives, whole and in
 * order. */
struct slow {
    struct kw_eve *e;
    int n, done;
};

static void *slow_writer(void *arg)
{
    struct slow *s = arg;
    for (int i = 0; i < s->n; i++)
        kw_eve_write(s->e, rec(i, 1000));
    kw_eve_flush(s->e);
    __atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_slow_reader(void **state)
{
    char p[300];
    path_of(p, sizeof p, "slow.fifo");
    assert_int_equal(mkfifo(p, 0600), 0);
    int rfd = open(p, O_RDONLY | O_NONBLOCK); /* the read side first: no wait */
    assert_true(rfd >= 0);
    struct kw_eve *e = NULL;
    assert_int_equal(kw_eve_open(p, &e), KW_E_OK);
    /* far over the pipe and both buffers */
    struct slow s = {.e = e, .n = (int)(3 * KW_EVE_BUF / 1000)};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, slow_writer, &s), 0);
    usleep(300000);
    struct kw_eve_stats st;
    kw_eve_get_stats(e, &st);
    assert_int_equal(__atomic_load_n(&s.done, __ATOMIC_ACQUIRE), 0); /* waiting, not dropping */
    assert_int_equal(st.dropped, 0);
    assert_true(st.buffered <= 2 * KW_EVE_BUF / 1000); /* two buffers, no more */
    fprintf(stderr, "slow reader: writer waits with %llu records buffered\n",
            (unsigned long long)st.buffered);
    assert_int_equal(fcntl(rfd, F_SETFL, 0), 0); /* now read, blocking */
    FILE *f = fdopen(rfd, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    int next = 0;
    while (next < s.n && getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "n")), next);
        json_decref(j);
        next++;
    }
    free(line);
    assert_int_equal(next, s.n);
    pthread_join(th, NULL);
    kw_eve_get_stats(e, &st);
    assert_int_equal(st.written, (uint64_t)s.n);
    assert_int_equal(st.dropped, 0);
    kw_eve_close(e);
    fclose(f);
}

/* Random text: any byte but NUL (control bytes, quotes, broken UTF-8), up
 * to the whole field, or mostly plain letters. */
static void fill(char *f, size_t size, unsigned *seed)
{
    size_t n = (size_t)rand_r(seed) % size;
    bool plain = rand_r(seed) & 1;
    for (size_t i = 0; i < n; i++)
        f[i] = plain && rand_r(seed) % 8 ? (char)('a' + rand_r(seed) % 26)
                                         : (char)(1 + rand_r(seed) % 255);
    f[n] = 0;
}
#define FILL(t, f, seed) fill((t)->f, sizeof((t)->f), seed)

static void random_txn(struct kw_txn *t, unsigned *seed, int i)
{
    kw_txn_clear(t);
    t->flow_id = (uint64_t)rand_r(seed) << 20;
    t->ts = 1700000000000000 + (kw_ts)i * 1000;
    t->resp_ts = rand_r(seed) & 1 ? t->ts + rand_r(seed) % 100000 : 0;
    t->src.family = 4;
    t->dst.family = rand_r(seed) & 1 ? 4 : 6;
    for (size_t k = 0; k < sizeof t->src.a; k++) {
        t->src.a[k] = (uint8_t)rand_r(seed);
        t->dst.a[k] = (uint8_t)rand_r(seed);
    }
    t->sport = (uint16_t)rand_r(seed);
    t->dport = 443;
    t->vlan = rand_r(seed) % 3 ? 0 : (uint16_t)(rand_r(seed) % 4095);
    t->status = rand_r(seed) % 600;
    t->resp_len = (uint64_t)rand_r(seed);
    t->flags = (uint32_t)rand_r(seed) & ((1u << KW_TXN_BIT__COUNT) - 1);
    t->stream_id = rand_r(seed) & 1 ? (uint32_t)rand_r(seed) : 0;
    t->cred.kind = (uint8_t)(rand_r(seed) % 7);
    FILL(t, method, seed);
    FILL(t, protocol, seed);
    FILL(t, hostname, seed);
    FILL(t, url, seed);
    FILL(t, path, seed);
    FILL(t, template_, seed);
    FILL(t, user_agent, seed);
    FILL(t, cred.source, seed);
    FILL(t, cred.fingerprint, seed);
    FILL(t, cred.hint, seed);
    FILL(t, cred.basic_user, seed);
    FILL(t, cred.jwt.iss, seed);
    FILL(t, cred.jwt.sub, seed);
    FILL(t, identity.id, seed);
    FILL(t, identity.name, seed);
    FILL(t, tls.sni, seed);
    FILL(t, tls.version, seed);
}

/* kw_eve_write_txn gives, line for line, what rendering the record at once
 * gives, in the order the records were written, text records between
 * them; fields full of control bytes (the worst escaping: six characters a
 * byte) are whole; and through an output that fails (RLIMIT_FSIZE, in a
 * child) and comes back, the transactions kept are rendered again, intact.
 * The expected lines are rendered here with the same kw_jw functions: the
 * test is about what the writer's thread does with the packed copies. */
static int txn_child(const char *p, int n, bool fail)
{
    struct kw_eve *e = NULL;
    struct rlimit rl;
    int rc = open_limited(p, fail ? 64 * 1024 : 0, &e, &rl);
    if (rc) return rc;
    static struct kw_txn t;
    unsigned seed = 99;
    for (int i = 0; i < n; i++) {
        random_txn(&t, &seed, i);
        if (i % 5 == 0) {
            char text[64];
            int k = snprintf(text, sizeof text, "{\"event_type\":\"mark\",\"n\":%d}", i);
            kw_eve_write_text(e, text, (size_t)k);
        }
        kw_eve_write_txn(e, &t);
        if (fail && i == n / 2) {
            kw_eve_flush(e); /* fails: the file is full */
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0) return 15;
            usleep(1100000); /* the retry is at most 1 s later */
        }
    }
    kw_eve_flush(e);
    struct kw_eve_stats st;
    kw_eve_get_stats(e, &st);
    if (st.dropped || st.written != (uint64_t)(n + (n + 4) / 5)) return 12;
    if (fail && (!st.write_errors || st.recoveries != 1)) return 13;
    kw_eve_close(e);
    return 0;
}

static void check_txn_file(const char *p, int n)
{
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    static struct kw_txn t;
    static char want[6 * sizeof(struct kw_txn) + 8192];
    unsigned seed = 99;
    char *line = NULL;
    size_t cap = 0;
    for (int i = 0; i < n; i++) {
        random_txn(&t, &seed, i);
        if (i % 5 == 0) {
            assert_true(getline(&line, &cap, f) > 0);
            char mark[64];
            snprintf(mark, sizeof mark, "{\"event_type\":\"mark\",\"n\":%d}\n", i);
            assert_string_equal(line, mark);
        }
        struct kw_jw w;
        kw_jw_init(&w, want, sizeof want - 1);
        kw_eve_jw_http_record(&w, &t);
        assert_true(kw_jw_ok(&w));
        want[w.len] = '\n';
        want[w.len + 1] = 0;
        assert_true(getline(&line, &cap, f) > 0);
        assert_string_equal(line, want);
        json_t *j = json_loads(line, 0, NULL); /* and it is JSON */
        assert_non_null(j);
        json_decref(j);
    }
    assert_int_equal(getline(&line, &cap, f), -1);
    free(line);
    fclose(f);
}

static void test_txn_records(void **state)
{
    for (int fail = 0; fail < 2; fail++) {
        char p[300];
        path_of(p, sizeof p, fail ? "txn-fail.json" : "txn.json");
        const int n = fail ? 60 : 400;
        pid_t c = fork();
        assert_true(c >= 0);
        if (c == 0) _exit(txn_child(p, n, fail));
        int status;
        waitpid(c, &status, 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        check_txn_file(p, n);
    }
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kw-eve-test-XXXXXX");
    srand((unsigned)time(NULL));
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_file_mode),     cmocka_unit_test(test_flushed_within_a_second),
        cmocka_unit_test(test_torn_tail_cut),     cmocka_unit_test(test_sigkill_mid_write),
        cmocka_unit_test(test_file_size_limit),   cmocka_unit_test(test_reopen_after_rename),
        cmocka_unit_test(test_slow_reader),       cmocka_unit_test(test_txn_records),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
