/* test_streams_corpus: keywarden's reassembled streams against tcpflow's on
 * every capture of tests/corpus, byte for byte.
 *
 * For each capture: run the `keywarden streams` path (streams_dump_run) into
 * one folder, and tcpflow 1.6 into another; then every direction keywarden
 * reassembled without a gap must exist in tcpflow's output with the same
 * bytes, and every file tcpflow wrote must exist in keywarden's. A
 * difference fails the test unless it is on the commented list below.
 *
 * The one thing to know: tcpflow takes the link-layer trailer (Ethernet
 * padding of short frames, a captured FCS) for TCP payload, because it does
 * not trim to the IP total length (RFC 791 §3.1, RFC 8200 §3). It then
 * writes those bytes at the segment's sequence number, where they survive
 * at the end of a stream or under a later retransmission. So tcpflow is fed
 * a copy of each capture whose packets are cut at the end of the IP
 * datagram; keywarden reads the original. Nothing else is changed. */
#include <dirent.h>
#include <errno.h>
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
#include <pcap/pcap.h>

#include "dec.h"
#include "kw_exact.h"
#include "streams_dump.h"

/* Where keywarden and tcpflow legitimately differ. file NULL: every
 * difference in that capture. Each entry says why keywarden is right. */
struct known_diff {
    const char *capture;
    const char *file;
    const char *why;
};

static const struct known_diff known[] = {
    /* tcpflow 1.6 writes nothing for link types it does not decode;
     * keywarden's decoder handles them. */
    {"arkime-http-empty-useragent.pcap", NULL, "BSD loopback, IPv6: tcpflow writes nothing"},
    {"sv-http-ipv6-input.pcap", NULL, "BSD loopback, IPv6: tcpflow writes nothing"},
    {"sv-http-post-file-input.pcap", NULL, "BSD loopback, IPv6: tcpflow writes nothing"},
    {"zeek-http-connect-with-header.pcap", NULL, "BSD loopback, IPv6: tcpflow writes nothing"},
    {"zeek-http-basic-auth-with-colon.pcap", NULL, "raw IPv4 link type: tcpflow writes nothing"},
    {"zeek-http-261-variant-03-cl_negative.pcap", NULL, "raw IPv4: tcpflow writes nothing"},
    {"zeek-http-261-variant-09-te_obs_fold.pcap", NULL, "raw IPv4: tcpflow writes nothing"},
    {"zeek-http-261-variant-10-multi_value_te.pcap", NULL, "raw IPv4: tcpflow writes nothing"},
    {"sv-decode-chdlc-01-hdlc-http_1tx.pcap", NULL, "Cisco HDLC: tcpflow writes nothing"},
    {"sv-decode-sll2-02-input.pcap", NULL, "Linux SLL2: tcpflow writes nothing"},
    {"zeek-nflog-http.pcap", NULL, "NFLOG: tcpflow writes nothing"},
    {"arkime-80211http.pcap", NULL, "802.11 + radiotap: tcpflow writes nothing"},
    {"sv-bug-4810-pppoe-session-http.pcap", NULL, "PPPoE session: tcpflow writes nothing"},
    /* One direction tagged (VLAN 3136), the other untagged: keywarden keeps
     * one flow (VLAN is not in the flow key by default) and names both
     * directions with the first packet's VLAN; tcpflow names each by its own
     * tag; it also starts a second client file (c1) after the retransmitted
     * SYN and writes 4 bytes more per direction. keywarden's server stream
     * equals tshark's "follow tcp,raw" byte for byte (checked by hand). */
    {"sv-bug-4376-syn_retransmit_with_ts.pcap", NULL, "asymmetric VLAN tag: names differ"},
    {"zeek-snap-tcp.pcap", NULL, "802.2 LLC/SNAP: tcpflow writes nothing"},
    {"tcpdump-arcnet-rfc1051-arp-icmp-http.pcap", NULL, "ARCnet (RFC 1051): tcpflow writes nothing"},
    /* TSO super-segments (2016-byte IP packets): tcpflow writes nothing;
     * keywarden's stream equals tshark's "follow tcp" (checked by hand). */
    {"tcpdump-ipv4_tcp_http_xml_tso.pcap", NULL, "TSO: tcpflow writes nothing"},
    /* Tunnels: tcpflow does not decapsulate; keywarden writes the inner
     * connections (named by the inner addresses). */
    {"zeek-erspan.pcap", NULL, "ERSPAN: tcpflow does not decapsulate"},
    {"sv-bug-5437-01-input.pcap", NULL, "ERSPAN over GRE: tcpflow does not decapsulate"},
    {"sv-bug-2576-02-temp1.pcap", NULL, "GRE: tcpflow does not decapsulate"},
    {"sv-bug-6402-01-input.pcap", NULL, "GENEVE/GRE: tcpflow does not decapsulate"},
    {"arkime-gre-erspan-vxlan.pcap", NULL, "GRE/ERSPAN/VXLAN: tcpflow does not decapsulate"},
    {"ndpi-6in4tunnel.pcap", NULL, "6in4: tcpflow does not decapsulate"},
    {"zeek-doc-vxlan-overlapping-http-get.pcap", NULL, "VXLAN: tcpflow does not decapsulate"},
    {"zeek-tunnels-vxlan-encapsulated-http.pcap", NULL, "VXLAN: tcpflow does not decapsulate"},
    {"zeek-tunnels-ayiya3.pcap", NULL, "AYIYA (IPv6 in UDP 5072): tcpflow does not decapsulate"},
    {"zeek-tunnels-geneve-many-options.pcap", NULL, "GENEVE: tcpflow does not decapsulate"},
    {"zeek-tunnels-gtp-gtp2_different_udp_port.pcap", NULL, "GTP-U: tcpflow does not"},
    {"ndpi-false_positives.pcapng", NULL, "QinQ + GTP-U: tcpflow does not decapsulate"},
    {"ndpi-http_origin_different_than_host.pcap", NULL, "QinQ + GTP-U: tcpflow does not"},
    /* MPLS: tcpflow misses the connections under these label stacks. */
    {"zeek-mpls-in-vlan.pcap", NULL, "MPLS in VLAN: tcpflow misses connections"},
    {"zeek-mixed-vlan-mpls.pcap", NULL, "VLAN/MPLS mix: tcpflow misses a connection"},
    /* VLAN naming: tcpflow prints the whole 802.1Q TCI, priority bits
     * included (PCP 5, VID 0 -> "--45056"); keywarden prints the VLAN id
     * (IEEE 802.1Q) and nothing for VID 0, a priority tag without a VLAN.
     * The bytes are the same. */
    {"zeek-http-vlan-0.pcap", NULL, "tcpflow names by TCI, not VLAN id"},
    /* The TCP segments after the first bytes arrive as IPv4 fragments.
     * tcpflow 1.6 does not reassemble IP fragments: it writes the bytes of
     * the unfragmented packets with zeros between (28 and 16 bytes, the
     * GET cut after "GET "); keywarden reassembles them
     * (capture/defrag.c) and writes the whole connection, equal to
     * tshark's "follow tcp" (419 and 942 bytes, asserted in test_defrag). */
    {"arkime-socks5-http-302-frag.pcap", NULL, "IPv4 fragments: tcpflow does not reassemble"},
};

static const struct known_diff *find_known(const char *cap, const char *file)
{
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcmp(known[i].capture, cap) && (!known[i].file || !strcmp(known[i].file, file)))
            return &known[i];
    return NULL;
}

static bool have_tcpflow(void)
{
    return system("command -v tcpflow >/dev/null 2>&1") == 0;
}

/* A copy of the capture with every packet cut at the end of its innermost
 * IP datagram (see the file comment). */
static bool trim_capture(const char *in, const char *out)
{
    char eb[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(in, eb);
    if (!p) return false;
    pcap_t *dead = pcap_open_dead(pcap_datalink(p), 262144);
    pcap_dumper_t *d = dead ? pcap_dump_open(dead, out) : NULL;
    if (!d) {
        if (dead) pcap_close(dead);
        pcap_close(p);
        return false;
    }
    struct dec_ctx dec;
    struct dec_config cfg;
    dec_config_default(&cfg);
    dec_ctx_init(&dec, &cfg);
    struct pcap_pkthdr *h;
    const u_char *data;
    while (pcap_next_ex(p, &h, &data) == 1) {
        struct pcap_pkthdr nh = *h;
        struct dec_packet dp;
        uint8_t *x = kw_exact_dup(data, h->caplen); /* libpcap's buffer hides over-reads */
        if (dec_packet(&dec, pcap_datalink(p), 0, x, h->caplen, h->len, &dp) == DEC_OK &&
            dp.l3 && !dp.truncated) {
            size_t end = (size_t)(dp.l3 - x) + dp.l3_len;
            if (end < nh.caplen) {
                nh.len -= nh.caplen - (uint32_t)end;
                nh.caplen = (uint32_t)end;
            }
        }
        free(x);
        pcap_dump((u_char *)d, &nh, data);
    }
    pcap_dump_close(d);
    pcap_close(dead);
    pcap_close(p);
    return true;
}

static bool read_file(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = n > 0 ? (size_t)n : 0;
    bool ok = *buf && fread(*buf, 1, *len, f) == *len;
    fclose(f);
    return ok;
}

static bool same_file(const char *a, const char *b)
{
    uint8_t *x = NULL, *y = NULL;
    size_t nx, ny;
    bool ok = read_file(a, &x, &nx) && read_file(b, &y, &ny) && nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return ok;
}

struct totals {
    unsigned captures, equal, lossy, known, unexplained;
};

static void report(struct totals *t, const char *cap, const char *file, const char *what)
{
    const struct known_diff *k = find_known(cap, file);
    if (k) {
        t->known++;
        print_message("known: %s %s: %s (%s)\n", cap, file, what, k->why);
        return;
    }
    t->unexplained++;
    print_error("UNEXPLAINED %s %s: %s\n", cap, file, what);
}

/* Index of keywarden's output: names and gap counts. */
struct kw_entry {
    char name[200];
    unsigned long long gaps;
};

static size_t read_index(const char *dir, struct kw_entry *e, size_t max)
{
    char path[4096], line[512];
    snprintf(path, sizeof(path), "%s/keywarden-streams.tsv", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = 0;
    assert_non_null(fgets(line, sizeof(line), f)); /* header */
    while (n < max && fgets(line, sizeof(line), f)) {
        unsigned long long id, bytes;
        if (sscanf(line, "%199[^\t]\t%llu\t%llu\t%llu", e[n].name, &id, &bytes, &e[n].gaps) == 4)
            n++;
    }
    fclose(f);
    return n;
}

#define MAX_ENTRIES 4096

static void compare_capture(const char *cap, const char *kwdir, const char *tfdir, struct totals *t)
{
    static struct kw_entry ent[MAX_ENTRIES];
    size_t n = read_index(kwdir, ent, MAX_ENTRIES);
    char a[4096], b[4096];
    for (size_t i = 0; i < n; i++) {
        if (ent[i].gaps) {
            t->lossy++;
            continue;
        }
        snprintf(a, sizeof(a), "%s/%s", kwdir, ent[i].name);
        snprintf(b, sizeof(b), "%s/%s", tfdir, ent[i].name);
        if (access(b, F_OK) != 0)
            report(t, cap, ent[i].name, "tcpflow has no such file");
        else if (!same_file(a, b))
            report(t, cap, ent[i].name, "bytes differ");
        else
            t->equal++;
    }
    DIR *d = opendir(tfdir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !strcmp(de->d_name, "report.xml") ||
            !strcmp(de->d_name, "alerts.txt"))
            continue;
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = !strcmp(ent[i].name, de->d_name);
        if (!found) report(t, cap, de->d_name, "keywarden has no such file");
    }
    closedir(d);
}

static bool is_capture(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && !strcmp(name + n - 5, ".pcap")) || (n > 7 && !strcmp(name + n - 7, ".pcapng"));
}

static void test_corpus_vs_tcpflow(void **state)
{
    if (!have_tcpflow()) {
        print_message("SKIP: tcpflow is not installed (scripts/setup.sh installs it)\n");
        skip();
    }
    char root[2048], corpus[2048], cmd[16384];
    snprintf(root, sizeof(root), "%s/test-streams-corpus", KW_BINARY_DIR);
    snprintf(corpus, sizeof(corpus), "%s/corpus", KW_TEST_DATA);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", root, root);
    assert_int_equal(system(cmd), 0);
    DIR *d = opendir(corpus);
    assert_non_null(d);
    struct totals t = {0};
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_capture(de->d_name) || strchr(de->d_name, '\'')) continue;
        char in[4608], kwdir[4608], tfdir[4608], trimmed[4608], err[512];
        snprintf(in, sizeof(in), "%s/%s", corpus, de->d_name);
        snprintf(kwdir, sizeof(kwdir), "%s/kw-%s", root, de->d_name);
        snprintf(tfdir, sizeof(tfdir), "%s/tf-%s", root, de->d_name);
        snprintf(trimmed, sizeof(trimmed), "%s/trim-%s.pcap", root, de->d_name);
        struct cap_config cc;
        cap_config_default(&cc);
        cc.files[0] = in;
        cc.n_files = 1;
        struct streams_run_stats st;
        enum kw_err e = streams_dump_run(&cc, NULL, NULL, kwdir, &st, err, sizeof(err));
        if (e != KW_E_OK) print_error("%s: %s\n", de->d_name, err);
        assert_int_equal(e, KW_E_OK);
        assert_true(trim_capture(in, trimmed));
        snprintf(cmd, sizeof(cmd), "tcpflow -r '%s' -o '%s' >/dev/null 2>&1", trimmed, tfdir);
        if (system(cmd) != 0)
            mkdir(tfdir, 0755); /* tcpflow refused the file: compare against nothing */
        compare_capture(de->d_name, kwdir, tfdir, &t);
        t.captures++;
    }
    closedir(d);
    print_message("corpus: %u captures, %u directions byte-identical to tcpflow, %u lossy "
                  "(gaps, not compared), %u known differences, %u unexplained\n",
                  t.captures, t.equal, t.lossy, t.known, t.unexplained);
    assert_true(t.captures > 0);
    assert_true(t.equal > 0);
    assert_int_equal(t.unexplained, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

/* The name without a "--VLAN" suffix (a QinQ twin is tagged, the original
 * is not). */
static void strip_vlan(const char *in, char *out, size_t len)
{
    snprintf(out, len, "%s", in);
    char *v = strstr(out, "--");
    if (v) *v = 0;
}

/* tests/data/encap holds VXLAN, GENEVE, GRE, ERSPAN I/II/III, QinQ and
 * MPLS twins of one plain corpus capture (see its README): each must give
 * exactly the streams of the original. */
static void test_encap_twins(void **state)
{
    static const char *twins[] = {"vxlan.pcap",   "geneve.pcap",  "gre.pcap",  "erspan1.pcap",
                                  "erspan2.pcap", "erspan3.pcap", "qinq.pcap", "mpls.pcap"};
    char dir[2048], root[2048], cmd[8192], err[512];
    snprintf(dir, sizeof(dir), "%s/data/encap", KW_TEST_DATA);
    if (access(dir, F_OK) != 0) {
        print_message("SKIP: %s does not exist yet\n", dir);
        skip();
    }
    snprintf(root, sizeof(root), "%s/test-streams-encap", KW_BINARY_DIR);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", root, root);
    assert_int_equal(system(cmd), 0);
    char orig[4096], origdir[4096];
    snprintf(orig, sizeof(orig), "%s/corpus/sv-http-brotli-ce-input.pcap", KW_TEST_DATA);
    snprintf(origdir, sizeof(origdir), "%s/plain", root);
    struct cap_config cc;
    cap_config_default(&cc);
    cc.files[0] = orig;
    cc.n_files = 1;
    struct streams_run_stats st;
    assert_int_equal(streams_dump_run(&cc, NULL, NULL, origdir, &st, err, sizeof(err)), KW_E_OK);
    static struct kw_entry plain[16], twin[16];
    size_t np = read_index(origdir, plain, 16);
    assert_int_equal(np, 2); /* one connection, two directions */
    for (size_t i = 0; i < sizeof(twins) / sizeof(twins[0]); i++) {
        char in[4096], out[4096];
        snprintf(in, sizeof(in), "%s/%s", dir, twins[i]);
        snprintf(out, sizeof(out), "%s/%s", root, twins[i]);
        cc.files[0] = in;
        assert_int_equal(streams_dump_run(&cc, NULL, NULL, out, &st, err, sizeof(err)), KW_E_OK);
        size_t nt = read_index(out, twin, 16);
        if (nt != np) print_error("%s: %zu stream files, want %zu\n", twins[i], nt, np);
        assert_int_equal(nt, np);
        for (size_t j = 0; j < nt; j++) {
            char name[200], a[4608], b[4608];
            strip_vlan(twin[j].name, name, sizeof(name));
            assert_int_equal(twin[j].gaps, 0);
            snprintf(a, sizeof(a), "%s/%s", out, twin[j].name);
            snprintf(b, sizeof(b), "%s/%s", origdir, name);
            if (!same_file(a, b))
                print_error("%s: %s differs from the plain capture's %s\n", twins[i], twin[j].name,
                            name);
            assert_true(same_file(a, b));
        }
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_vs_tcpflow),
        cmocka_unit_test(test_encap_twins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
