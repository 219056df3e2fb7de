/* Tests of fleet_merge, the judge's event-time merge: order across
 * sources whatever order they arrive in, waiting for a quiet source,
 * not waiting for a stale one (late counted), resends and reordering
 * inside a source, a gap given up (lost counted), a sensor restarting
 * (new epoch), committed positions and acknowledgement points. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fleet_merge.h"

#define S(x) KW_TS_SEC(x)

static uint64_t g_sseq;

/* One record of sensor/partition with its numbers, pushed to src. */
static void push(struct fm *m, int src, const char *sensor, uint32_t part, uint64_t epoch,
                 uint64_t pseq, uint64_t gseq, kw_ts t, uint8_t kind, uint8_t flags)
{
    struct fw_head h = {.kind = kind,
                        .flags = flags,
                        .partition = part,
                        .epoch = epoch,
                        .pseq = pseq,
                        .gseq = gseq,
                        .time = t};
    snprintf(h.sensor, sizeof h.sensor, "%s", sensor);
    static struct kw_txn txn;
    struct fw_mark mk = {.records = gseq, .dropped = 7};
    uint8_t buf[4096];
    size_t n = fw_encode(&h, &(struct fw_body){.txn = &txn, .mark = &mk}, buf, sizeof buf);
    assert_true(n > 0);
    char reply[64];
    snprintf(reply, sizeof reply, "$JS.ACK.%s.%u.%llu", sensor, part, (unsigned long long)++g_sseq);
    assert_int_equal(fm_push(m, src, buf, n, g_sseq, reply), KW_E_OK);
}

static void txn(struct fm *m, int src, const char *sensor, uint32_t part, uint64_t pseq,
                uint64_t gseq, kw_ts t)
{
    push(m, src, sensor, part, 1, pseq, gseq, t, FW_TXN, 0);
}

static struct fm *make(kw_ts lateness)
{
    struct fm *m = NULL;
    assert_int_equal(fm_new(&(struct fm_config){.lateness = lateness, .source_max = 64}, &m),
                     KW_E_OK);
    return m;
}

/* Releases what can be released; returns the times, in order. Every
 * consumer was read to its end (as the judge's fetches tell the merge). */
static size_t drain(struct fm *m, kw_ts wall, kw_ts *times, size_t max)
{
    for (size_t i = 0; i < fm_sources(m); i++)
        fm_set_drained(m, (int)i, true);
    size_t n = 0;
    struct fm_rec r;
    while (n < max && fm_next(m, wall, &r) == FM_RECORD)
        times[n++] = r.h.time;
    return n;
}

static void test_order_across_sources(void **state)
{
    struct fm *m = make(S(3600));
    int a = fm_source(m, 0, "fra-1"), b = fm_source(m, 0, "bom-1"), c = fm_source(m, 1, "fra-1");
    /* everything of fra-1 arrives before anything of bom-1 */
    txn(m, a, "fra-1", 0, 1, 1, S(10));
    txn(m, c, "fra-1", 1, 1, 2, S(10)); /* same time, later emission: after */
    txn(m, a, "fra-1", 0, 2, 3, S(30));
    push(m, a, "fra-1", 0, 1, 3, 4, S(40), FW_MARK, FW_MARK_END);
    push(m, c, "fra-1", 1, 1, 2, 5, S(40), FW_MARK, FW_MARK_END);
    kw_ts t[16] = {0};
    /* bom-1 is unknown so far: nothing to wait for */
    assert_int_equal(drain(m, 0, t, 1), 1);
    assert_int_equal(t[0], S(10));
    txn(m, b, "bom-1", 0, 1, 1, S(5)); /* it was earlier: late */
    txn(m, b, "bom-1", 0, 2, 2, S(20));
    push(m, b, "bom-1", 0, 1, 3, 3, S(50), FW_MARK, FW_MARK_END);
    size_t n = drain(m, 0, t, 16);
    assert_int_equal(n, 7);
    kw_ts want[] = {S(5), S(10), S(20), S(30), S(40), S(40), S(50)};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(t[i], want[i]);
    struct fm_counters k;
    fm_get_counters(m, &k);
    assert_int_equal(k.late, 1);
    assert_true(fm_all_ended(m)); /* bom-1's END is out */
    fm_destroy(m);
}

static void test_wait_for_quiet_source(void **state)
{
    struct fm *m = make(S(60));
    int a = fm_source(m, 0, "a"), b = fm_source(m, 0, "b");
    txn(m, a, "a", 0, 1, 1, S(100));
    txn(m, b, "b", 0, 1, 1, S(90));
    txn(m, a, "a", 0, 2, 2, S(120));
    kw_ts t[8] = {0};
    assert_int_equal(drain(m, 0, t, 8), 1); /* 90; b's clock is 90 ... */
    struct fm_rec r;
    assert_int_equal(fm_next(m, 0, &r), FM_WAIT); /* ... it may still send 95..99 */
    assert_int_equal(fm_waiting_for(m), b);
    push(m, b, "b", 0, 1, 2, 2, S(121), FW_MARK, 0); /* b's clock passes 120 */
    assert_int_equal(drain(m, 0, t, 8), 2);
    assert_int_equal(t[0], S(100));
    assert_int_equal(t[1], S(120));
    /* a runs far ahead: b (clock 121) is stale past 60 s and not waited for */
    txn(m, a, "a", 0, 3, 3, S(200));
    assert_int_equal(fm_next(m, 0, &r), FM_RECORD);
    assert_int_equal(r.h.time, S(121)); /* b's mark was still queued */
    assert_int_equal(fm_next(m, 0, &r), FM_RECORD);
    assert_int_equal(r.h.time, S(200));
    assert_false(r.late);
    txn(m, b, "b", 0, 3, 3, S(150)); /* b comes back: late */
    assert_int_equal(fm_next(m, 0, &r), FM_RECORD);
    assert_true(r.late);
    fm_destroy(m);
}

static void test_not_drained_is_read_first(void **state)
{
    struct fm *m = make(S(60));
    int a = fm_source(m, 0, "a"), b = fm_source(m, 1, "a");
    txn(m, a, "a", 0, 1, 1, S(1));
    txn(m, b, "a", 1, 1, 3, S(5000)); /* far ahead of partition 0 */
    kw_ts t[4] = {0};
    /* partition 0 has more on the server (its fetch came back full) */
    struct fm_rec r;
    assert_int_equal(fm_next(m, 0, &r), FM_RECORD);
    assert_int_equal(r.h.time, S(1));
    assert_int_equal(fm_next(m, 0, &r), FM_WAIT); /* not stale: read it first */
    assert_int_equal(fm_waiting_for(m), a);
    txn(m, a, "a", 0, 2, 2, S(2));
    assert_int_equal(fm_next(m, 0, &r), FM_RECORD);
    assert_int_equal(r.h.time, S(2));
    assert_false(r.late);
    /* drained and 5000 s behind: stale, not waited for */
    assert_int_equal(drain(m, 0, t, 4), 1);
    assert_int_equal(t[0], S(5000));
    fm_destroy(m);
}

static void test_resend_reorder_gap(void **state)
{
    struct fm *m = make(S(60));
    int a = fm_source(m, 2, "a");
    txn(m, a, "a", 2, 1, 1, S(1));
    txn(m, a, "a", 2, 3, 3, S(3)); /* overtook 2 */
    txn(m, a, "a", 2, 2, 2, S(2));
    txn(m, a, "a", 2, 2, 2, S(2)); /* sent twice */
    txn(m, a, "a", 2, 1, 1, S(1)); /* sent again after an ack was lost */
    kw_ts t[8] = {0};
    assert_int_equal(drain(m, 0, t, 8), 3);
    assert_int_equal(t[0], S(1));
    assert_int_equal(t[1], S(2));
    assert_int_equal(t[2], S(3));
    struct fm_counters k;
    txn(m, a, "a", 2, 6, 6, S(6)); /* 4 and 5 never come */
    assert_int_equal(drain(m, S(1000), t, 8), 0);
    fm_get_counters(m, &k);
    assert_int_equal(k.duplicates, 2);
    assert_int_equal(drain(m, S(1000) + FM_GAP_WAIT, t, 8), 1);
    fm_get_counters(m, &k);
    assert_int_equal(k.lost, 2);
    fm_destroy(m);
}

static void test_epoch_positions_acks(void **state)
{
    struct fm *m = make(S(60));
    int a = fm_source(m, 0, "a");
    push(m, a, "a", 0, 1, 1, 1, S(1), FW_TXN, 0);
    push(m, a, "a", 0, 1, 2, 2, S(2), FW_TXN, 0);
    /* the sensor restarted: a new epoch; the old one sent no END */
    push(m, a, "a", 0, 5, 1, 1, S(3), FW_TXN, 0);
    kw_ts t[8] = {0};
    assert_int_equal(drain(m, 0, t, 8), 3);
    push(m, a, "a", 0, 1, 3, 3, S(2), FW_TXN, 0); /* the old epoch, after the switch: stale */
    assert_int_equal(drain(m, 0, t, 8), 0);
    uint64_t sseq;
    char reply[FM_REPLY_MAX];
    assert_true(fm_ack_point(m, a, &sseq, reply));
    assert_int_equal(sseq, g_sseq); /* every message done */
    assert_false(fm_ack_point(m, a, &sseq, reply));
    struct fm_counters k;
    fm_get_counters(m, &k);
    assert_int_equal(k.stale, 1);

    fm_destroy(m);
}

static void collect(void *user, const struct fm_position *p)
{
    struct fm_position *dst = user;
    dst[0] = *p;
}

static void test_restart_from_positions(void **state)
{
    struct fm *m = make(S(60));
    int a = fm_source(m, 0, "a");
    for (uint64_t i = 1; i <= 3; i++)
        push(m, a, "a", 0, 9, i, i, S(i), FW_TXN, 0);
    kw_ts t[8] = {0};
    assert_int_equal(drain(m, 0, t, 2), 2); /* judged 1 and 2, then "crash" */
    struct fm_position p;
    fm_positions(m, collect, &p);
    assert_int_equal(p.epoch, 9);
    assert_int_equal(p.pseq, 2);
    assert_int_equal(p.clock, S(2));
    fm_destroy(m);

    m = make(S(60));
    assert_int_equal(fm_load_position(m, &p), KW_E_OK);
    a = fm_source(m, 0, "a");
    for (uint64_t i = 1; i <= 3; i++) /* the consumer redelivers from its ack floor */
        push(m, a, "a", 0, 9, i, i, S(i), FW_TXN, 0);
    assert_int_equal(drain(m, 0, t, 8), 1);
    assert_int_equal(t[0], S(3));
    struct fm_counters k;
    fm_get_counters(m, &k);
    assert_int_equal(k.duplicates, 2);
    assert_int_equal(k.late, 0);
    fm_destroy(m);
}

static void sensor_cb(void *user, const char *sensor, uint64_t records, uint64_t dropped,
                      kw_ts clock, bool ended)
{
    uint64_t *out = user;
    out[0] = records;
    out[1] = dropped;
    out[2] = ended;
}

static void test_marks_report(void **state)
{
    struct fm *m = make(S(60));
    int a = fm_source(m, 0, "a"), b = fm_source(m, 1, "a");
    push(m, a, "a", 0, 1, 1, 11, S(1), FW_MARK, FW_MARK_TICK);
    push(m, b, "a", 1, 1, 1, 12, S(1), FW_MARK, FW_MARK_END);
    kw_ts t[4] = {0};
    /* a's mark, then b's waits: a (same sensor, not ended) may still hold
     * a record emitted between the two */
    assert_int_equal(drain(m, 0, t, 4), 1);
    uint64_t r[3];
    fm_sensor_each(m, sensor_cb, r);
    assert_int_equal(r[0], 11); /* the marks' record counts (gseq here) */
    assert_int_equal(r[1], 7);
    assert_int_equal(r[2], 0); /* partition 0 has not ended */
    assert_false(fm_all_ended(m));
    push(m, a, "a", 0, 1, 2, 13, S(2), FW_MARK, FW_MARK_END);
    assert_int_equal(drain(m, 0, t, 4), 2);
    fm_sensor_each(m, sensor_cb, r);
    assert_int_equal(r[0], 13);
    assert_int_equal(r[2], 1);
    assert_true(fm_all_ended(m));
    fm_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_across_sources),
        cmocka_unit_test(test_wait_for_quiet_source),
        cmocka_unit_test(test_not_drained_is_read_first),
        cmocka_unit_test(test_resend_reorder_gap),
        cmocka_unit_test(test_epoch_positions_acks),
        cmocka_unit_test(test_restart_from_positions),
        cmocka_unit_test(test_marks_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
