/* test_source: offline packet sources. Several files merged in time order
 * (real corpus files, and a capture with its own VXLAN twin whose
 * timestamps tie exactly), stdin through a pipe, a file cut mid-packet
 * (all whole packets kept, counted, merge goes on), BPF filters and a bad
 * filter's message, and argument errors. The live test is test_source_live. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <signal.h>

#include <pcap/pcap.h>

#include "source.h"

#define CORPUS KW_TEST_DATA "/corpus/"
#define PLAIN CORPUS "sv-http-brotli-ce-input.pcap" /* 16 packets */
#define TWIN KW_TEST_DATA "/data/encap/vxlan.pcap"  /* same 16, same times */

/* Packet count of a file, straight from libpcap. */
static unsigned count_pcap(const char *path)
{
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline(path, err);
    if (!pc) fail_msg("%s: %s", path, err);
    struct pcap_pkthdr *h;
    const u_char *d;
    unsigned n = 0;
    while (pcap_next_ex(pc, &h, &d) == 1)
        n++;
    pcap_close(pc);
    return n;
}

/* Every test runs twice: read by the caller's thread, then through the
 * reader thread's batches (cap_config.read_ahead). */
static bool g_read_ahead;

static struct cap_source *open_files(const char **files, unsigned n, const char *bpf)
{
    struct cap_config cfg;
    cap_config_default(&cfg);
    cfg.read_ahead = g_read_ahead;
    for (unsigned i = 0; i < n; i++)
        cfg.files[i] = files[i];
    cfg.n_files = n;
    cfg.bpf = bpf;
    struct cap_source *s;
    char err[512];
    enum kw_err e = cap_open(&cfg, &s, err, sizeof(err));
    if (e != KW_E_OK) fail_msg("cap_open: %s", err);
    return s;
}

struct drained {
    unsigned n, per_file[4];
    bool ordered;
};

static struct drained drain(struct cap_source *s)
{
    struct drained d = {0, {0}, true};
    struct cap_pkt p;
    kw_ts last = INT64_MIN;
    enum cap_next r;
    while ((r = cap_next(s, &p)) == CAP_PACKET) {
        if (p.ts < last) d.ordered = false;
        last = p.ts;
        assert_true(p.file_index < 4);
        d.per_file[p.file_index]++;
        assert_non_null(p.data);
        assert_true(p.caplen <= p.wirelen);
        d.n++;
    }
    assert_int_equal(r, CAP_EOF);
    return d;
}

static void test_merge_corpus(void **state)
{
    (void)state;
    const char *files[] = {CORPUS "arkime-http-post-upload.pcap", CORPUS "zeek-http-get.pcap",
                           PLAIN};
    struct cap_source *s = open_files(files, 3, NULL);
    struct drained d = drain(s);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(d.per_file[i], count_pcap(files[i]));
    assert_int_equal(d.n, d.per_file[0] + d.per_file[1] + d.per_file[2]);
    assert_true(d.ordered);
    struct cap_stats st;
    cap_get_stats(s, &st);
    assert_int_equal(st.packets, d.n);
    assert_int_equal(st.truncated_files, 0);
    uint64_t done, total;
    cap_progress(s, &done, &total);
    assert_true(total > 0);
    assert_true(done <= total && done > total / 2);
    cap_close(s);
}

/* The twin has the plain file's timestamps (and the plain file has runs
 * of equal timestamps), so everything ties: the merge must be stable — on
 * equal times the first file's packets first — and keep each file's order.
 * Each twin packet ends with the plain packet of the same rank, which
 * checks that no file's pending packet was overwritten by another read. */
static void test_merge_ties(void **state)
{
    (void)state;
    const char *files[] = {PLAIN, TWIN};
    struct cap_source *s = open_files(files, 2, NULL);
    struct cap_pkt p;
    static uint8_t plain[16][64];
    uint32_t plain_len[16];
    kw_ts plain_ts[16];
    unsigned k[2] = {0, 0}, last_file = 0;
    kw_ts last_ts = INT64_MIN;
    while (cap_next(s, &p) == CAP_PACKET) {
        unsigned f = p.file_index;
        assert_true(f < 2 && k[f] < 16);
        assert_int_equal(p.linktype, DLT_EN10MB);
        assert_true(p.ts >= last_ts);
        if (p.ts == last_ts) assert_true(f >= last_file);
        size_t c = p.caplen < 64 ? p.caplen : 64;
        if (f == 0) {
            memcpy(plain[k[0]], p.data, c);
            plain_len[k[0]] = p.caplen;
            plain_ts[k[0]] = p.ts;
        } else {
            assert_true(k[1] < k[0]); /* its plain twin came first */
            assert_int_equal(p.ts, plain_ts[k[1]]);
            /* 50 bytes of outer Ethernet/IPv4/UDP/VXLAN in front */
            assert_int_equal(p.caplen, plain_len[k[1]] + 50);
            size_t m = plain_len[k[1]] < 64 ? plain_len[k[1]] : 64;
            assert_memory_equal(p.data + 50, plain[k[1]], m);
        }
        k[f]++;
        last_ts = p.ts;
        last_file = f;
    }
    assert_int_equal(k[0], 16);
    assert_int_equal(k[1], 16);
    cap_close(s);
}

/* stdin: a pipe is read as it comes. The child writes the capture and
 * keeps the pipe open until the parent has had every packet (a reader
 * that waited for a full batch, or for the end, would hang here: the
 * alarm turns that into a failure). */
static void on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "test_stdin: packets held back while the pipe stays open\n";
    if (write(2, m, sizeof m - 1) < 0) _exit(98);
    _exit(99);
}

static void test_stdin(void **state)
{
    (void)state;
    int fds[2], go[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* child: cat the file into the pipe, close when told */
        close(fds[0]);
        close(go[1]);
        FILE *f = fopen(PLAIN, "rb");
        char buf[4096];
        size_t k;
        while (f && (k = fread(buf, 1, sizeof(buf), f)) > 0)
            if (write(fds[1], buf, k) != (ssize_t)k) _exit(1);
        char c;
        if (read(go[0], &c, 1) < 0) _exit(2);
        _exit(f ? 0 : 1);
    }
    close(fds[1]);
    close(go[0]);
    int saved = dup(0);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fds[0], 0), 0);
    close(fds[0]);
    clearerr(stdin);
    const char *files[] = {"-"};
    struct cap_source *s = open_files(files, 1, NULL);
    signal(SIGALRM, on_alarm);
    alarm(20);
    struct cap_pkt p;
    for (int i = 0; i < 16; i++) /* all 16, while the pipe is still open */
        assert_int_equal(cap_next(s, &p), CAP_PACKET);
    alarm(0);
    assert_int_equal(write(go[1], "x", 1), 1);
    close(go[1]);
    assert_int_equal(cap_next(s, &p), CAP_EOF);
    uint64_t done, total;
    cap_progress(s, &done, &total);
    cap_close(s);
    assert_int_equal(dup2(saved, 0), 0);
    close(saved);
    clearerr(stdin);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(total, 0); /* unknown size */
}

/* Byte offset of record k (0-based) of a classic pcap file, and its length. */
static long record_offset(const uint8_t *b, size_t n, unsigned k, uint32_t *incl)
{
    size_t off = 24;
    for (unsigned i = 0;; i++) {
        assert_true(off + 16 <= n);
        uint32_t len;
        memcpy(&len, b + off + 8, 4); /* the test files are little-endian */
        if (i == k) {
            *incl = len;
            return (long)off;
        }
        off += 16 + len;
    }
}

static char *write_cut(const char *dir, const char *name, const uint8_t *b, size_t n)
{
    static char path[600];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
    return path;
}

static void test_truncated(void **state)
{
    (void)state;
    FILE *f = fopen(PLAIN, "rb");
    assert_non_null(f);
    static uint8_t b[16384];
    size_t n = fread(b, 1, sizeof(b), f);
    fclose(f);
    assert_true(n > 24 && n < sizeof(b));
    assert_int_equal(b[0], 0xd4); /* little-endian microsecond pcap */
    char tmpl[] = "/tmp/kw_test_source_XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    uint32_t incl;
    long off = record_offset(b, n, 9, &incl);
    /* Cut in the middle of record 9's data, then in its record header. */
    size_t cuts[2] = {(size_t)off + 16 + incl / 2, (size_t)off + 8};
    for (int c = 0; c < 2; c++) {
        char *path = write_cut(dir, "cut.pcap", b, cuts[c]);
        const char *files[] = {path, TWIN};
        struct cap_source *s = open_files(files, 2, NULL);
        struct drained d = drain(s);
        assert_int_equal(d.per_file[0], 9);  /* records 0..8 are whole */
        assert_int_equal(d.per_file[1], 16); /* and the merge went on */
        assert_true(d.ordered);
        struct cap_stats st;
        cap_get_stats(s, &st);
        assert_int_equal(st.truncated_files, 1);
        assert_int_equal(st.read_errors, 0);
        cap_close(s);
        unlink(path);
    }
    rmdir(dir);
}

static void test_bpf(void **state)
{
    (void)state;
    const char *files[] = {PLAIN, CORPUS "arkime-http-post-upload.pcap"};
    /* tshark -r sv-http-brotli-ce-input.pcap -Y 'tcp.flags.syn==1' -> 2 */
    struct cap_source *s = open_files(files, 1, "tcp[tcpflags] & tcp-syn != 0");
    assert_int_equal(drain(s).n, 2);
    cap_close(s);
    s = open_files(files, 2, "tcp port 443");
    struct drained d = drain(s);
    assert_int_equal(d.per_file[0], 16);
    assert_int_equal(d.per_file[1], 0); /* that one is on port 8080 */
    cap_close(s);

    struct cap_config cfg;
    cap_config_default(&cfg);
    cfg.files[0] = PLAIN;
    cfg.n_files = 1;
    cfg.bpf = "tcp port nope";
    struct cap_source *bad = (struct cap_source *)1;
    char err[512];
    assert_int_equal(cap_open(&cfg, &bad, err, sizeof(err)), KW_E_CONFIG);
    assert_null(bad);
    assert_non_null(strstr(err, "bad BPF filter \"tcp port nope\""));
    assert_non_null(strstr(err, "sv-http-brotli-ce-input.pcap"));
}

static void test_open_errors(void **state)
{
    (void)state;
    struct cap_config cfg;
    cap_config_default(&cfg);
    assert_int_equal(cfg.snaplen, 262144);
    assert_int_equal(cfg.buffer_mb, 64);
    assert_true(cfg.promisc);
    assert_int_equal(cfg.poll_ms, 100);
    struct cap_source *s;
    char err[512];
    assert_int_equal(cap_open(&cfg, &s, err, sizeof(err)), KW_E_INVAL); /* neither */
    assert_non_null(strstr(err, "neither"));
    cfg.files[0] = KW_TEST_DATA "/no/such/file.pcap";
    cfg.n_files = 1;
    assert_int_equal(cap_open(&cfg, &s, err, sizeof(err)), KW_E_IO);
    assert_non_null(strstr(err, "no/such/file.pcap"));
    cfg.files[0] = KW_TEST_DATA "/corpus/MANIFEST.tsv"; /* not a capture */
    assert_int_equal(cap_open(&cfg, &s, err, sizeof(err)), KW_E_IO);
    assert_non_null(strstr(err, "MANIFEST.tsv"));
    cfg.interface = "lo";
    assert_int_equal(cap_open(&cfg, &s, err, sizeof(err)), KW_E_INVAL); /* both */
    cfg.n_files = 0;
    cfg.interface = "kw-no-such-if0";
    assert_int_not_equal(cap_open(&cfg, &s, err, sizeof(err)), KW_E_OK);
    assert_non_null(strstr(err, "kw-no-such-if0"));
}

static void test_break(void **state)
{
    (void)state;
    const char *files[] = {PLAIN};
    struct cap_source *s = open_files(files, 1, NULL);
    struct cap_pkt p;
    assert_int_equal(cap_next(s, &p), CAP_PACKET);
    cap_break(s);
    assert_int_equal(cap_next(s, &p), CAP_EOF);
    cap_close(s);
}

/* A capture of ~9 MiB written with libpcap's own writer: packets of every
 * size from 60 bytes to 64 KiB, so batches of the read-ahead fill, a
 * packet that does not fit goes first into the next batch, and the 8
 * batches go round more than once while the test reads slowly (the reader
 * waits for a batch to come back). The same packets, bytes and times
 * come out with and without read-ahead. */
static void test_read_ahead_same(void **state)
{
    (void)state;
    char path[] = "/tmp/kw_test_ra_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 262144);
    pcap_dumper_t *dump = pcap_dump_open(dead, path);
    assert_non_null(dump);
    static uint8_t pkt[65536];
    uint64_t rng = 7;
    size_t total = 0;
    unsigned n = 0;
    while (total < (9u << 20)) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        uint32_t len = 60 + (uint32_t)((rng >> 33) % (n % 7 == 0 ? 65536 - 60 : 1500));
        for (uint32_t i = 0; i < len; i++)
            pkt[i] = (uint8_t)(n * 31 + i);
        struct pcap_pkthdr h = {.ts = {.tv_sec = 1700000000 + n / 1000, .tv_usec = n % 1000},
                                .caplen = len,
                                .len = len + (n & 1)};
        pcap_dump((u_char *)dump, &h, pkt);
        total += len;
        n++;
    }
    pcap_dump_close(dump);
    pcap_close(dead);

    const char *files[] = {path};
    bool saved = g_read_ahead;
    g_read_ahead = false;
    struct cap_source *a = open_files(files, 1, NULL);
    g_read_ahead = true;
    struct cap_source *b = open_files(files, 1, NULL);
    g_read_ahead = saved;
    struct cap_pkt pa, pb;
    unsigned k = 0;
    for (;; k++) {
        enum cap_next ra = cap_next(a, &pa), rb = cap_next(b, &pb);
        assert_int_equal(ra, rb);
        if (ra != CAP_PACKET) break;
        assert_int_equal(pa.ts, pb.ts);
        assert_int_equal(pa.caplen, pb.caplen);
        assert_int_equal(pa.wirelen, pb.wirelen);
        assert_int_equal(pa.linktype, pb.linktype);
        assert_int_equal(pa.file_index, pb.file_index);
        assert_memory_equal(pa.data, pb.data, pa.caplen);
        if (k % 1024 == 0) usleep(2000); /* let the reader fill every batch and wait */
    }
    assert_int_equal(k, n);
    struct cap_stats st;
    cap_get_stats(b, &st);
    assert_int_equal(st.packets, n);
    uint64_t done, size;
    cap_progress(b, &done, &size);
    assert_int_equal(done, size); /* the reader read it all */
    cap_close(a);
    cap_close(b);
    unlink(path);
}

/* cap_close while the reader is ahead and waiting for a batch back, and
 * cap_break while it fills one: both end without a hang or a leak (ASan). */
static void test_read_ahead_close_early(void **state)
{
    (void)state;
    const char *files[] = {CORPUS "arkime-http-post-upload.pcap", PLAIN};
    bool saved = g_read_ahead;
    g_read_ahead = true;
    struct cap_source *s = open_files(files, 2, NULL);
    struct cap_pkt p;
    assert_int_equal(cap_next(s, &p), CAP_PACKET);
    cap_close(s);
    s = open_files(files, 2, NULL);
    cap_break(s);
    assert_int_equal(cap_next(s, &p), CAP_EOF);
    cap_close(s);
    g_read_ahead = saved;
}

static int direct(void **state)
{
    (void)state;
    g_read_ahead = false;
    return 0;
}

static int read_ahead(void **state)
{
    (void)state;
    g_read_ahead = true;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_corpus), cmocka_unit_test(test_merge_ties),
        cmocka_unit_test(test_stdin),        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bpf),          cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_break),
    };
    const struct CMUnitTest ra_tests[] = {
        cmocka_unit_test(test_read_ahead_same),
        cmocka_unit_test(test_read_ahead_close_early),
    };
    int failed = cmocka_run_group_tests_name("direct", tests, direct, NULL);
    failed += cmocka_run_group_tests_name("read_ahead", tests, read_ahead, NULL);
    failed += cmocka_run_group_tests_name("read_ahead_only", ra_tests, NULL, NULL);
    return failed;
}
