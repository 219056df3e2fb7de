/* test_source_live: a live capture on `lo` (label "live"). A real capture
 * is rewritten to 127.0.0.1 <-> 127.0.0.2 with zero MACs (tcprewrite) and
 * replayed onto lo with tcpreplay while cap_source captures it through a
 * BPF filter that only this replay matches. Checks: every packet arrives
 * once, in order, with the same TCP payload as the file; a quiet link then
 * gives CAP_TIMEOUT; cap_break stops the loop; kernel counters are filled.
 *
 * Why the kernel count is double: a packet sent on lo passes the packet
 * taps twice, once outgoing (dev_queue_xmit) and once incoming (netif_rx
 * of the loopback driver). The kernel counts both in tp_packets (ps_recv);
 * libpcap drops the outgoing copy on lo in user space, so the application
 * sees each packet once. Skipped (not failed) when not root, when lo is
 * missing, or when tcpreplay/tcprewrite are not installed. Never sends
 * traffic anywhere but lo. */
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pcap/pcap.h>

#include "dec.h"
#include "source.h"

#define PLAIN KW_TEST_DATA "/corpus/sv-http-brotli-ce-input.pcap" /* 16 packets */
#define NPKT 16
#define FILTER "tcp and host 127.0.0.2 and port 52316"

struct seg {
    uint32_t seq;
    uint32_t len;
    uint8_t flags;
};

/* The TCP segments of a capture file, in file order. */
static unsigned file_segments(const char *path, struct seg *out, unsigned max)
{
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline(path, err);
    if (!pc) fail_msg("%s: %s", path, err);
    struct dec_ctx ctx;
    dec_ctx_init(&ctx, NULL);
    struct pcap_pkthdr *h;
    const u_char *d;
    unsigned n = 0;
    while (pcap_next_ex(pc, &h, &d) == 1 && n < max) {
        struct dec_packet p;
        if (dec_packet(&ctx, pcap_datalink(pc), 0, d, h->caplen, h->len, &p) == DEC_OK &&
            p.proto == 6)
            out[n++] = (struct seg){p.seq, p.payload_len, p.tcp_flags};
    }
    pcap_close(pc);
    return n;
}

static void test_live_lo(void **state)
{
    (void)state;
    if (geteuid() != 0 || if_nametoindex("lo") == 0) skip();
    if (system("command -v tcpreplay >/dev/null && command -v tcprewrite >/dev/null") != 0) skip();
    char tmpl[] = "/tmp/kw_live_XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    char lo_pcap[256], cmd[1024];
    snprintf(lo_pcap, sizeof(lo_pcap), "%s/lo.pcap", dir);
    snprintf(cmd, sizeof(cmd),
             "tcprewrite --infile=%s --outfile=%s --srcipmap=0.0.0.0/0:127.0.0.1/32 "
             "--dstipmap=0.0.0.0/0:127.0.0.2/32 --enet-dmac=00:00:00:00:00:00 "
             "--enet-smac=00:00:00:00:00:00 --fixcsum",
             PLAIN, lo_pcap);
    assert_int_equal(system(cmd), 0);
    struct seg want[NPKT + 1];
    assert_int_equal(file_segments(lo_pcap, want, NPKT + 1), NPKT);

    struct cap_config cfg;
    cap_config_default(&cfg);
    cfg.interface = "lo";
    cfg.bpf = FILTER;
    cfg.buffer_mb = 4;
    cfg.poll_ms = 50;
    struct cap_source *s;
    char err[512];
    enum kw_err e = cap_open(&cfg, &s, err, sizeof(err));
    if (e != KW_E_OK) fail_msg("cap_open lo: %s", err);

    /* The ring is open: what tcpreplay sends now waits in it. */
    snprintf(cmd, sizeof(cmd), "tcpreplay -q --topspeed -i lo %s >/dev/null 2>&1", lo_pcap);
    assert_int_equal(system(cmd), 0);

    struct dec_ctx ctx;
    dec_ctx_init(&ctx, NULL);
    unsigned got = 0, quiet = 0;
    struct cap_pkt p;
    /* Bounded: at most 100 quiet polls of 50 ms after the last packet. */
    while (got < NPKT + 4 && quiet < 100) {
        enum cap_next r = cap_next(s, &p);
        if (r == CAP_TIMEOUT) {
            quiet++;
            if (got == NPKT) break; /* all arrived, and the link is quiet: a timeout */
            continue;
        }
        assert_int_equal(r, CAP_PACKET);
        quiet = 0;
        struct dec_packet d;
        assert_int_equal(dec_packet(&ctx, p.linktype, p.ts, p.data, p.caplen, p.wirelen, &d),
                         DEC_OK);
        assert_true(got < NPKT);
        assert_int_equal(d.seq, want[got].seq);
        assert_int_equal(d.payload_len, want[got].len);
        assert_int_equal(d.tcp_flags, want[got].flags);
        got++;
    }
    assert_int_equal(got, NPKT);
    assert_int_equal(cap_next(s, &p), CAP_TIMEOUT); /* quiet link */

    struct cap_stats st;
    cap_get_stats(s, &st);
    print_message("lo: delivered %u, kernel recv %llu drop %llu ifdrop %llu\n", got,
                  (unsigned long long)st.kernel_recv, (unsigned long long)st.kernel_drop,
                  (unsigned long long)st.iface_drop);
    assert_int_equal(st.packets, NPKT);
    /* Each packet is counted once outgoing and once incoming on lo. */
    assert_true(st.kernel_recv == 2 * NPKT || st.kernel_recv == NPKT);
    assert_int_equal(st.kernel_drop, 0);

    cap_break(s);
    assert_int_equal(cap_next(s, &p), CAP_EOF);
    cap_close(s);
    unlink(lo_pcap);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_live_lo)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
