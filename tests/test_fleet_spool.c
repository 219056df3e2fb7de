/* Tests of fleet_spool, the sensor's bounded queue on disk: FIFO order
 * across segments, release deletes whole segments, the limit refuses
 * (and frees up after a release), a reopened spool continues from the
 * acknowledged position, and a torn last frame (a crash mid-write) is cut
 * and counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fleet_spool.h"

static char g_dir[256];

static int setup(void **state)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/kw-spool-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void rec(uint8_t *buf, size_t len, unsigned i)
{
    for (size_t k = 0; k < len; k++)
        buf[k] = (uint8_t)(i * 31 + k);
}

static unsigned count_segments(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c kws", g_dir);
    FILE *p = popen(cmd, "r");
    unsigned n = 0;
    if (p && fscanf(p, "%u", &n) != 1) n = 0;
    if (p) pclose(p);
    return n;
}

static void test_fifo_release_reopen(void **state)
{
    struct fsp *s = NULL;
    /* 1 MB: segments of 256 KB */
    assert_int_equal(fsp_open(g_dir, 1u << 20, &s), KW_E_OK);
    uint8_t buf[1000];
    unsigned appended = 0;
    for (;; appended++) {
        rec(buf, sizeof buf, appended);
        enum kw_err e = fsp_append(s, buf, sizeof buf);
        if (e == KW_E_LIMIT) break;
        assert_int_equal(e, KW_E_OK);
    }
    assert_true(appended > 900 && appended < 1049); /* 1 MB / 1008-byte frames */
    assert_int_equal(fsp_flush(s), KW_E_OK);
    assert_true(count_segments() >= 4);

    struct fsp_pos at = fsp_acked(s), mid = {0, 0};
    const uint8_t *r;
    size_t len;
    for (unsigned i = 0; i < appended; i++) {
        assert_int_equal(fsp_read(s, &at, &r, &len), KW_E_OK);
        assert_int_equal(len, sizeof buf);
        rec(buf, sizeof buf, i);
        assert_memory_equal(r, buf, len);
        if (i == appended / 2) mid = at;
    }
    assert_int_equal(fsp_read(s, &at, &r, &len), KW_E_NOTFOUND);
    assert_false(fsp_empty(s));
    fsp_release(s, mid); /* the first half is acknowledged */
    struct fsp_stats st;
    fsp_get_stats(s, &st);
    assert_true(st.bytes < (1u << 20) * 3 / 4);
    rec(buf, sizeof buf, 99999);
    assert_int_equal(fsp_append(s, buf, sizeof buf), KW_E_OK); /* room again */
    fsp_close(s);

    /* a new run continues after the acknowledged half, then the new one */
    assert_int_equal(fsp_open(g_dir, 1u << 20, &s), KW_E_OK);
    at = fsp_acked(s);
    assert_int_equal(fsp_read(s, &at, &r, &len), KW_E_OK);
    rec(buf, sizeof buf, appended / 2 + 1);
    assert_memory_equal(r, buf, len);
    unsigned n = 1;
    while (fsp_read(s, &at, &r, &len) == KW_E_OK)
        n++;
    assert_int_equal(n, appended - appended / 2 - 1 + 1);
    rec(buf, sizeof buf, 99999);
    assert_memory_equal(r, buf, len);
    fsp_release(s, at);
    assert_true(fsp_empty(s));
    fsp_close(s);
}

static void test_torn_tail(void **state)
{
    struct fsp *s = NULL;
    assert_int_equal(fsp_open(g_dir, 1u << 20, &s), KW_E_OK);
    uint8_t buf[300];
    for (unsigned i = 0; i < 10; i++) {
        rec(buf, sizeof buf, i);
        assert_int_equal(fsp_append(s, buf, sizeof buf), KW_E_OK);
    }
    fsp_close(s);
    /* cut the last frame in half, as a crash inside write() would */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "f=$(ls '%s'/*.kws | tail -1); truncate -s -150 \"$f\"", g_dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(fsp_open(g_dir, 1u << 20, &s), KW_E_OK);
    struct fsp_stats st;
    fsp_get_stats(s, &st);
    assert_int_equal(st.cut, 1);
    struct fsp_pos at = fsp_acked(s);
    const uint8_t *r;
    size_t len;
    unsigned n = 0;
    while (fsp_read(s, &at, &r, &len) == KW_E_OK)
        n++;
    assert_int_equal(n, 9);
    /* and appending after the cut works */
    assert_int_equal(fsp_append(s, buf, sizeof buf), KW_E_OK);
    assert_int_equal(fsp_flush(s), KW_E_OK);
    assert_int_equal(fsp_read(s, &at, &r, &len), KW_E_OK);
    fsp_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fifo_release_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
