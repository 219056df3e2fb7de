/* Tests of the pipeline glue (analyzer/pipeline.c) on real captures:
 * what reaches the EVE file, and the bound on live HTTP parsers (a
 * connection beyond it is not parsed, and is counted, never silent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pipeline.h"
#include "source.h"

struct run_result {
    struct pipeline_counters cnt;
    unsigned http_lines, flow_lines;
};

static void run_capture(const char *name, uint32_t max_conns, struct run_result *out)
{
    char path[1024], eve_path[] = "/tmp/kw-pipe-eve-XXXXXX";
    snprintf(path, sizeof path, "%s/corpus/%s", KW_TEST_DATA, name);
    int fd = mkstemp(eve_path);
    assert_true(fd >= 0);
    close(fd);
    struct kw_eve *eve = NULL;
    assert_int_equal(kw_eve_open(eve_path, &eve), KW_E_OK);

    struct pipeline_config pc;
    pipeline_config_default(&pc);
    pc.classify = false;
    pc.eve = eve;
    if (max_conns)
        pc.h1.max_conns = max_conns;
    struct pipeline *p = NULL;
    assert_int_equal(pipeline_new(&pc, &p), KW_E_OK);

    struct cap_config cc;
    cap_config_default(&cc);
    cc.files[cc.n_files++] = path;
    struct cap_source *src = NULL;
    char err[256];
    assert_int_equal(cap_open(&cc, &src, err, sizeof err), KW_E_OK);
    struct cap_pkt pkt;
    while (cap_next(src, &pkt) == CAP_PACKET)
        pipeline_packet(p, &pkt);
    pipeline_finish(p);
    out->cnt = *pipeline_counters(p);
    cap_close(src);
    pipeline_destroy(p);
    kw_eve_close(eve);

    FILE *f = fopen(eve_path, "r");
    assert_non_null(f);
    char line[65536];
    out->http_lines = out->flow_lines = 0;
    while (fgets(line, sizeof line, f)) {
        out->http_lines += strstr(line, "\"event_type\":\"http\"") != NULL;
        out->flow_lines += strstr(line, "\"event_type\":\"flow\"") != NULL;
    }
    fclose(f);
    unlink(eve_path);
}

/* Every transaction becomes one EVE http record; 1,000 requests on one
 * keep-alive connection whose capture lost one response: 1,000 records
 * (999 pairs and the request whose answer is missing), one flow. */
static void test_records(void **state)
{
    struct run_result r;
    run_capture("zeek-http-1000-requests-one-dropped-response.pcap", 0, &r);
    assert_int_equal(r.cnt.transactions, 1000);
    assert_int_equal(r.http_lines, 1000);
    assert_int_equal(r.cnt.http_flows, 1);
    assert_int_equal(r.cnt.h1_refused, 0);
    assert_int_equal(r.cnt.eve_overflow, 0);
}

/* With room for one live parser, connections that overlap it are refused
 * and counted: parsed + refused = all HTTP connections of the free run,
 * and fewer transactions come out, none invented. */
static void test_parser_bound(void **state)
{
    struct run_result all, one;
    run_capture("ndpi-1kxun.pcap", 0, &all);
    run_capture("ndpi-1kxun.pcap", 1, &one);
    assert_true(all.cnt.http_flows > 10);
    assert_int_equal(all.cnt.h1_refused, 0);
    assert_true(one.cnt.h1_refused > 0);
    assert_int_equal(one.cnt.http_flows + one.cnt.h1_refused, all.cnt.http_flows);
    assert_true(one.cnt.transactions < all.cnt.transactions);
    assert_int_equal(one.flow_lines, all.flow_lines); /* every flow still has its record */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_parser_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
