/* test_streams_dump: the tcpflow-style writer fed by a real flow table.
 *
 * Names (IPv4 zero-padded, IPv6, VLAN, cN on reuse), gaps as holes plus
 * the .gaps sidecar and the index, and more live connections than open
 * files allowed (files closed and reopened without losing a byte). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kw_exact.h"
#include "streams_dump.h"

/* The packet's payload in an exact-size heap copy (kw_exact.h): a read
 * past payload_len is an ASan report, not a peek at a string's NUL. */
static void feed_pkt(struct flow_table *t, const struct dec_packet *p)
{
    struct dec_packet q = *p;
    uint8_t *b = kw_exact_dup(p->payload, p->payload_len);
    q.payload = b;
    flow_table_packet(t, &q);
    free(b);
}

static char root[2048];

static int setup(void **state)
{
    snprintf(root, sizeof(root), "%s/test-streams-dump-XXXXXX", KW_BINARY_DIR);
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static struct dec_packet tcp(int64_t t_ms, const char *src, uint16_t sp, const char *dst,
                             uint16_t dp, uint8_t flags, uint32_t seq, const char *data)
{
    struct dec_packet p = {0};
    p.ts = (kw_ts)t_ms * 1000;
    assert_true(kw_addr_parse(src, &p.src));
    assert_true(kw_addr_parse(dst, &p.dst));
    p.sport = sp;
    p.dport = dp;
    p.ip_version = p.src.family;
    p.proto = 6;
    p.tcp_flags = flags;
    p.seq = seq;
    p.payload = (const uint8_t *)data;
    p.payload_len = data ? (uint32_t)strlen(data) : 0;
    p.l3_len = 40 + p.payload_len;
    return p;
}

static void slurp(const char *dir, const char *name, char *buf, size_t cap, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) print_error("missing %s\n", path);
    assert_non_null(f);
    *len = fread(buf, 1, cap, f);
    fclose(f);
}

static void test_names(void **state)
{
    char b[160];
    struct kw_addr a, c;
    assert_true(kw_addr_parse("10.0.0.1", &a));
    assert_true(kw_addr_parse("192.168.100.2", &c));
    streams_dump_name(&a, 54321, &c, 80, 0, b, sizeof(b));
    assert_string_equal(b, "010.000.000.001.54321-192.168.100.002.00080");
    streams_dump_name(&a, 7, &c, 80, 201, b, sizeof(b));
    assert_string_equal(b, "010.000.000.001.00007-192.168.100.002.00080--201");
    assert_true(kw_addr_parse("2001:6f8:900:7c0::2", &a));
    assert_true(kw_addr_parse("2001:6f8:102d:0:2d0:9ff:fee3:e8de", &c));
    streams_dump_name(&a, 80, &c, 59201, 0, b, sizeof(b));
    assert_string_equal(b, "2001:6f8:900:7c0::2.00080-2001:6f8:102d:0:2d0:9ff:fee3:e8de.59201");
}

static struct flow_table *open_table(struct streams_dump **sd, const char *dir)
{
    char err[256];
    assert_int_equal(streams_dump_new(dir, sd, err, sizeof(err)), KW_E_OK);
    struct flow_config cfg;
    flow_config_default(&cfg);
    cfg.max_flows = 1024;
    struct flow_callbacks cb;
    streams_dump_callbacks(*sd, &cb);
    struct flow_table *t = NULL;
    assert_int_equal(flow_table_new(&cfg, &cb, &t), KW_E_OK);
    return t;
}

/* A hole: zeros in the file, "offset length" in NAME.gaps, counts in the
 * index; a reused 4-tuple gets "c1". */
static void test_gaps_and_reuse(void **state)
{
    char dir[4096], buf[256];
    size_t n;
    snprintf(dir, sizeof(dir), "%s/gaps", root);
    struct streams_dump *sd;
    struct flow_table *t = open_table(&sd, dir);
    struct dec_packet ps[] = {
        tcp(0, "10.0.0.1", 40000, "10.0.0.2", 80, DEC_TH_SYN, 99, NULL),
        tcp(1, "10.0.0.1", 40000, "10.0.0.2", 80, DEC_TH_ACK, 100, "ab"),
        tcp(2, "10.0.0.1", 40000, "10.0.0.2", 80, DEC_TH_ACK, 104, "ef"),
        tcp(3, "10.0.0.1", 40000, "10.0.0.2", 80, DEC_TH_RST, 106, NULL),
        tcp(4, "10.0.0.1", 40000, "10.0.0.2", 80, DEC_TH_SYN, 5000, NULL),
        tcp(5, "10.0.0.1", 40000, "10.0.0.2", 80, DEC_TH_ACK, 5001, "again"),
    };
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
        feed_pkt(t, &ps[i]);
    flow_table_flush(t, 10000);
    assert_int_equal(streams_dump_finish(sd), KW_E_OK);
    assert_int_equal(streams_dump_counters(sd)->gaps, 1);
    slurp(dir, "010.000.000.001.40000-010.000.000.002.00080", buf, sizeof(buf), &n);
    assert_int_equal(n, 6);
    assert_memory_equal(buf, "ab\0\0ef", 6);
    slurp(dir, "010.000.000.001.40000-010.000.000.002.00080.gaps", buf, sizeof(buf), &n);
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "2 2\n", 4);
    slurp(dir, "010.000.000.001.40000-010.000.000.002.00080c1", buf, sizeof(buf), &n);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "again", 5);
    slurp(dir, "keywarden-streams.tsv", buf, sizeof(buf) - 1, &n);
    buf[n] = 0;
    assert_non_null(strstr(buf, "010.000.000.001.40000-010.000.000.002.00080\t1\t4\t1\t2\tclosed"));
    assert_non_null(
        strstr(buf, "010.000.000.001.40000-010.000.000.002.00080c1\t2\t5\t0\t0\tshutdown"));
    flow_table_destroy(t);
    streams_dump_destroy(sd);
}

/* 600 connections open at once (more than the open-file cap): every file
 * still gets all of its bytes, in order. The cap follows RLIMIT_NOFILE, so
 * the test lowers it (soft and hard) to force the close-and-reopen path:
 * 320 descriptors leave room for 256 files. */
static void test_many_open(void **state)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/many", root);
    struct rlimit rl = {320, 320};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    struct streams_dump *sd;
    struct flow_table *t = open_table(&sd, dir);
    enum { N = 600 };
    char first[16], second[16];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < N; i++) {
            snprintf(first, sizeof(first), "<%d>", i);
            snprintf(second, sizeof(second), "[%d]", i);
            const char *d = round ? second : first;
            struct dec_packet p =
                tcp(round * 1000 + i, "10.0.1.1", (uint16_t)(20000 + i), "10.0.2.2", 80, DEC_TH_ACK,
                    round ? 1000 + (uint32_t)strlen(first) : 1000, d);
            feed_pkt(t, &p);
        }
    flow_table_flush(t, 5000000);
    assert_int_equal(streams_dump_finish(sd), KW_E_OK);
    assert_true(streams_dump_counters(sd)->fd_reopens > 0);
    assert_int_equal(streams_dump_counters(sd)->files, N);
    for (int i = 0; i < N; i += 37) {
        char name[128], want[40], buf[64];
        size_t n;
        snprintf(name, sizeof(name), "010.000.001.001.%05d-010.000.002.002.00080", 20000 + i);
        snprintf(want, sizeof(want), "<%d>[%d]", i, i);
        slurp(dir, name, buf, sizeof(buf), &n);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(buf, want, n);
    }
    flow_table_destroy(t);
    streams_dump_destroy(sd);
}

static void test_bad_dir(void **state)
{
    struct streams_dump *sd = NULL;
    char err[256] = "";
    assert_int_not_equal(streams_dump_new("/proc/no/such/dir", &sd, err, sizeof(err)), KW_E_OK);
    assert_non_null(strstr(err, "/proc/no/such/dir"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_gaps_and_reuse),
        cmocka_unit_test(test_many_open),
        cmocka_unit_test(test_bad_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
