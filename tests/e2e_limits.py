#!/usr/bin/env python3
"""`limits:` under a flood (issue 15): keywarden run -r - over a capture of
N tiny flows (default 1,000,000; 200,000 on an ASan build, where RSS is
not asserted; KW_LIMITS_FLOWS sets it) from distinct sources, written here packet by packet into the
pipe, with a config that sets every memcap small. Asserts:

  * the peak RSS of the run (ru_maxrss of the child, os.wait4) minus the
    peak RSS of the same binary and config over a 10-packet capture (the
    fixed part: code, nDPI's tables, SQLite, rings, buffers) stays under
    the sum of the configured memcaps that the traffic can fill
    (flow.memcap + stream.memcap + defrag.memcap + http.memcap + tls.memcap);
  * the stats record counts the hits: flow.memcap hits = flows created -
    flows that fitted (evictions), stream.memcap hits > 0, defrag hits > 0,
    http.max_header_bytes hits = the oversized heads sent, and `check`
    prints the same effective limits.

Traffic, per flow i (10.x.y.z:40000 -> 192.0.2.1:80/443): a SYN; every
8th flow also a 1200-byte HTTP request past a 100-byte hole (held by
reassembly until the hole times out or memory runs out, then parsed by an
HTTP/1 parser that http.memcap bounds); every 16th (+3) a TLS record
announcing a 60,000-byte ClientHello (a 64 KiB buffer each, tls.memcap); every 16th a first IPv4 fragment
of a UDP datagram whose rest never comes (held by defrag); the first 50
flows a full handshake and an HTTP request whose head is over
http.max_header_bytes. Packet time advances 5 us per flow (5 s for a
million): no flow or datagram times out during the run, and a hole becomes
a gap after 2 s (400,000 flows, 60 MB of held segments): every limit is
reached by volume.

usage: e2e_limits.py KEYWARDEN [--defaults] [--workers N]
  --defaults: the same flood with no limits: section, for the contrast in
  the report; nothing asserted.
  --workers N: N packet workers, the totals split among them: the hits
  summed over the workers are asserted as above (but http.memcap, which
  the smaller shares may not reach), RSS is printed, not asserted (the
  worker rings, 8 MiB per worker, fill only under load)."""
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading

MIB = 1 << 20
LIMITS = {"flow.max": 1000000, "flow.memcap": 64 * MIB, "stream.memcap": 16 * MIB,
          "defrag.memcap": 4 * MIB, "http.memcap": 8 * MIB, "tls.memcap": 8 * MIB,
          "http.max_header_bytes": 4096}
BIG_HEADS = 50


def ip4(src, dst, proto, payload, ident=0, frag=0):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0,
                      src, dst)
    s = sum(struct.unpack("!10H", hdr))
    s = (s & 0xffff) + (s >> 16)
    s = (s & 0xffff) + (s >> 16)
    hdr = hdr[:10] + struct.pack("!H", ~s & 0xffff) + hdr[12:]
    return hdr + payload


def tcp(sport, dport, seq, ack, flags, data=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0) + data


ETH = b"\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x01\x08\x00"


def flood(out, n):
    """Writes the pcap to `out` (a binary file); returns the counts sent."""
    w = out.write
    w(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    t0 = 1_700_000_000 * 1_000_000
    srv = bytes([192, 0, 2, 1])
    req = b"GET /v1/items HTTP/1.1\r\nHost: api.test\r\nX-Pad: "
    req += b"p" * (1196 - len(req)) + b"\r\n\r\n"  # 1200 bytes
    sent = {"flows": 0, "ooo": 0, "frags": 0, "big_heads": 0, "tls": 0}
    # a TLS record whose handshake message says 60,000 bytes: its parser
    # grows a 64 KiB buffer for it (tls.memcap)
    hello = b"\x16\x03\x01\x00\x05\x01\x00\xea\x60\x03"
    step = max(5, 5_000_000 // n)  # the same 5 s of packet time for any n

    def pkt(ts, l3):
        frame = ETH + l3
        w(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(frame), len(frame)))
        w(frame)

    for i in range(n):
        src = bytes([10, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff])
        ts = t0 + i * step
        sport = 40000 + (i >> 24)
        if i < BIG_HEADS:
            head = (b"GET /v1/orders HTTP/1.1\r\nHost: api.test\r\nX-Pad: " + b"a" * 6000 +
                    b"\r\n\r\n")
            pkt(ts, ip4(src, srv, 6, tcp(sport, 80, 1000, 0, 0x02)))
            pkt(ts + 1, ip4(srv, src, 6, tcp(80, sport, 5000, 1001, 0x12)))
            pkt(ts + 2, ip4(src, srv, 6, tcp(sport, 80, 1001, 5001, 0x10)))
            pkt(ts + 3, ip4(src, srv, 6, tcp(sport, 80, 1001, 5001, 0x18, head)))
            sent["big_heads"] += 1
        else:
            pkt(ts, ip4(src, srv, 6, tcp(sport, 443, 1000, 0, 0x02)))
            if i % 8 == 0:  # past a 100-byte hole: held
                pkt(ts + 1, ip4(src, srv, 6, tcp(sport, 443, 1101, 0, 0x10, req)))
                sent["ooo"] += 1
            elif i % 16 == 3:
                pkt(ts + 1, ip4(src, srv, 6, tcp(sport, 443, 1001, 0, 0x18, hello)))
                sent["tls"] += 1
        if i % 16 == 1:  # the first fragment of a UDP datagram, never completed
            udp = struct.pack("!HHHH", 5353, 5353, 8 + 2000, 0) + b"u" * 1016
            pkt(ts + 4, ip4(src, srv, 17, udp, ident=i & 0xffff, frag=0x2000))
            sent["frags"] += 1
        sent["flows"] += 1
    return sent


def sanitized(kw):
    """An ASan build: its shadow memory and quarantine make RSS meaningless
    for this test, and it is ~5x slower."""
    with open(kw, "rb") as f:
        return b"__asan_init" in f.read()


def run(kw, cfg, n, work, name):
    """keywarden run -r - fed the flood through a pipe, EVE on stdout (only
    the stats records kept: a million flow records would be 400 MB on
    disk); returns (peak RSS in KiB, the final stats record, stderr, what
    was sent)."""
    cmd = [kw, "run", "-c", cfg, "-r", "-", "--eve", "-"]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    err, stats = [], []

    def read_eve():
        for line in p.stdout:
            if b'"event_type":"stats"' in line:
                stats.append(line)

    threads = [threading.Thread(target=lambda: err.append(p.stderr.read())),
               threading.Thread(target=read_eve)]
    for t in threads:
        t.start()
    sent = {}
    try:
        buf = open(p.stdin.fileno(), "wb", buffering=1 << 20, closefd=False)
        sent = flood(buf, n)
        buf.flush()
    finally:
        p.stdin.close()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    for t in threads:
        t.join()
    stderr = err[0].decode(errors="replace") if err else ""
    if p.returncode != 0:
        sys.exit("FAIL: %s exited %d:\n%s" % (" ".join(cmd), p.returncode, stderr))
    if not stats:
        sys.exit("FAIL: no stats record on stdout")
    return ru.ru_maxrss, json.loads(stats[-1])["stats"], stderr, sent


def write_cfg(work, name, limits, workers=1):
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as f:
        f.write("storage: { database: %s/%s.db }\n" % (work, name))
        f.write("capture: { workers: %d }\n" % workers)
        if limits:
            f.write("limits:\n")
            for k, v in limits.items():
                f.write("  %s: %s\n" % (k, v))
    return path


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    kw = sys.argv[1]
    defaults = "--defaults" in sys.argv[2:]
    workers = 1
    if "--workers" in sys.argv[2:]:
        workers = int(sys.argv[sys.argv.index("--workers") + 1])
    asan = sanitized(kw)
    n = int(os.environ.get("KW_LIMITS_FLOWS", "200000" if asan else "1000000"))
    with tempfile.TemporaryDirectory(prefix="kw-limits-") as work:
        cfg = write_cfg(work, "kw", None if defaults else LIMITS, workers)
        chk = subprocess.run([kw, "check", "-c", cfg], capture_output=True, text=True)
        if chk.returncode != 0:
            sys.exit("FAIL: check refused the config:\n" + chk.stdout + chk.stderr)
        eff = [l for l in chk.stdout.splitlines() if "flows per worker" in l]
        print("check:", eff[0].strip() if eff else "(no effective flows line)")
        base_rss, _, _, _ = run(kw, cfg, 10, work, "base")
        rss, st, stderr, sent = run(kw, cfg, n, work, "flood")
        fl, lim, hits = st["flow"], st["limits"], st["limits"]["hits"]
        print("flows sent %d, ooo segments %d, fragments %d, big heads %d, TLS hellos %d" %
              (sent["flows"], sent["ooo"], sent["frags"], sent["big_heads"], sent["tls"]))
        print("peak RSS: %.1f MiB (10-packet run: %.1f MiB; growth %.1f MiB)" %
              (rss / 1024, base_rss / 1024, (rss - base_rss) / 1024))
        print("flow: created %d, active at end %d, evicted %d, flow_limit_hits %d; "
              "stream memcap_hits %d; defrag memcap %d, limit_datagrams %d, bytes_held %d; "
              "http header_limit_hits %d" %
              (fl["flows_created"], fl["flows_active"], fl["flows_evicted"],
               fl["flow_limit_hits"], fl["memcap_hits"], st["defrag"]["memcap"],
               st["defrag"]["limit_datagrams"], st["defrag"]["bytes_held"],
               st["http"]["header_limit_hits"]))
        print("limits.hits:", json.dumps(hits, sort_keys=True))
        for line in stderr.splitlines():
            if "limits hit" in line:
                print(line)
        if defaults:
            return 0
        bad = []

        def want(ok, what):
            if not ok:
                bad.append(what)

        n_flows = sent["flows"]
        # every flow was created once; the table held what flow.memcap
        # allows and evicted the rest, one hit per eviction
        want(fl["flows_created"] == n_flows, "flows_created %d != %d" % (fl["flows_created"],
                                                                         n_flows))
        cap = fl["flows_created"] - fl["flow_limit_hits"]
        want(fl["flow_limit_hits"] > 0 and fl["flow_limit_hits"] == fl["flows_evicted"],
             "flow_limit_hits %d vs evicted %d" % (fl["flow_limit_hits"], fl["flows_evicted"]))
        want(cap == fl["flows_active"] or fl["flows_active"] == 0,
             "table size %d vs active %d" % (cap, fl["flows_active"]))
        want(hits["flow.memcap"] == fl["flow_limit_hits"] and hits["flow.max"] == 0,
             "limits.hits flow.memcap %s flow.max %s" % (hits["flow.memcap"], hits["flow.max"]))
        want(lim["flow.memcap"] == LIMITS["flow.memcap"], "limits.flow.memcap not echoed")
        want(hits["stream.memcap"] == fl["memcap_hits"] and fl["memcap_hits"] > 0,
             "stream.memcap hits %s (memcap_hits %d)" % (hits["stream.memcap"],
                                                         fl["memcap_hits"]))
        dfh = hits["defrag.memcap"] + hits["defrag.max_datagrams"]
        want(dfh > 0, "no defrag limit hit")
        want(st["defrag"]["bytes_held"] <= LIMITS["defrag.memcap"],
             "defrag bytes_held %d over its memcap" % st["defrag"]["bytes_held"])
        want(hits["http.max_header_bytes"] == sent["big_heads"],
             "http.max_header_bytes hits %s != %d" % (hits["http.max_header_bytes"],
                                                      sent["big_heads"]))
        want(workers > 1 or hits["http.memcap"] > 0, "no http.memcap hit")
        want(lim["workers"] == workers, "limits.workers %s" % lim["workers"])
        want(hits["tls.memcap"] == st["tls"]["memcap_refusals"] and hits["tls.memcap"] > 0,
             "tls.memcap hits %s" % hits["tls.memcap"])
        want("limits hit:" in stderr, "no 'limits hit' line in the run summary")
        if asan or workers > 1:
            print("ASan build or workers: RSS not asserted")
        else:
            # memory: what the flood added stays under the memcaps it can fill
            budget = sum(LIMITS[k] for k in ("flow.memcap", "stream.memcap", "defrag.memcap",
                                             "http.memcap", "tls.memcap")) // 1024
            want(rss - base_rss <= budget,
                 "RSS grew %d KiB, over flow+stream+defrag+http+tls memcaps %d KiB" %
                 (rss - base_rss, budget))
        if bad:
            print("FAIL:\n  " + "\n  ".join(bad))
            return 1
        print("OK")
        return 0


if __name__ == "__main__":
    sys.exit(main())
