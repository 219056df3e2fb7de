#!/usr/bin/env python3
"""The per-stream, per-connection and pool keys of `limits:` (issue 15)
honoured by `keywarden run`: for each key, the same capture is read twice,
once with the key set small and once without `limits:`; the small run
must count hits under stats `limits.hits.KEY` and show the limit's effect,
the default run neither. A key that `run` ignored would fail here.

Captures:
  * real HTTP/1.1 recorded on loopback with tcpdump (LoCapture): Python's
    http.server answering ten requests pipelined in one write
    (http.max_pending 2), a request with 40 header fields
    (http.max_headers 16), a request whose head is 20,000 bytes
    (stream.max_buffer 8KiB: reassembly drops what the parser kept
    unconsumed, the request is lost; the default 1 MiB keeps it), and
    40 connections to an echo server held open at once, each sending
    bytes no protocol claims (classify.max_active 16: the 24 beyond the
    pool are never classified); a response head of 3,000 bytes
    (http.response_buffer 1KiB cuts it; the 20,000-byte request head
    above meets http.request_buffer 1KiB);
  * one connection to the echo server sending 40 segments of 200 bytes,
    recorded whole, from which the first data segment and the server's
    packets after its SYN-ACK are then removed, as a mirror that lost
    them would show it (loopback loses nothing): 39 segments wait past
    a hole (stream.ooo_max_segments 16 holds 16 of them);
  * tests/data/h2/h2-nghttp.pcap (nghttp against nghttpd, several
    streams at once: http2.max_streams 1);
  * nghttp against nghttpd recorded on lo: a request with 40 fields
    (http2.max_headers 16) and one whose header block is ~36 KB, sent as
    HEADERS and two CONTINUATION frames (http2.max_continuations 1,
    http2.max_header_block 16KiB);
  * one TCP flow written here (a mirror loses packets, loopback does
    not): a 100-byte hole, then 40 KB past it (stream.ooo_window 16KiB
    declares the hole a gap as soon as 16 KiB lie past it; by default
    the hole waits for its timeout or the flow's end); `keywarden
    streams -c` on the same flow and config must do the same.

Needs root (tcpdump on lo) for the recorded part; exits 77 without it.
usage: e2e_limits_keys.py KEYWARDEN"""
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ops.kwtest import LoCapture, free_port, wait_port  # noqa: E402

PIPELINED = 10
ECHO_CONNS = 40
SEGS = 40
LONG_HEAD = 3000


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"ok %s\n" % self.path.encode()
        self.send_response(200)
        if self.path == "/longhead":
            self.send_header("X-Long", "l" * LONG_HEAD)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def read_responses(s, n):
    """Reads until n responses (each 'ok ...\\n' body) have arrived."""
    got = b""
    while got.count(b"\nok ") < n:
        d = s.recv(65536)
        if not d:
            break
        got += d
    return got


def echo_server(ls, stop):
    conns = []
    ls.settimeout(0.2)
    while not stop.is_set():
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        conns.append(c)
        threading.Thread(target=lambda c=c: [c.sendall(d) for d in iter(lambda: c.recv(4096), b"")],
                         daemon=True).start()


def record(work):
    """Records the HTTP/1.1 and echo traffic; returns the pcap path."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hport = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    eport = ls.getsockname()[1]
    stop = threading.Event()
    threading.Thread(target=echo_server, args=(ls, stop), daemon=True).start()
    wait_port(hport)
    path = os.path.join(work, "lo.pcap")
    cap = LoCapture(path, [hport, eport])
    # ten requests in one write: all queued before the first answer
    s = socket.create_connection(("127.0.0.1", hport))
    s.sendall(b"".join(b"GET /pipe/%d HTTP/1.1\r\nHost: api.test\r\n\r\n" % i
                       for i in range(PIPELINED)))
    assert read_responses(s, PIPELINED).count(b"HTTP/1.1 200") == PIPELINED
    s.close()
    # 40 header fields
    s = socket.create_connection(("127.0.0.1", hport))
    s.sendall(b"GET /many HTTP/1.1\r\nHost: api.test\r\n" +
              b"".join(b"X-Field-%d: v%d\r\n" % (i, i) for i in range(38)) + b"\r\n")
    read_responses(s, 1)
    s.close()
    # a 20,000-byte head in two segments: the parser keeps the first
    # 10,000 bytes unconsumed (no end of head yet), in the stream buffer
    s = socket.create_connection(("127.0.0.1", hport))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = b"GET /big HTTP/1.1\r\nHost: api.test\r\nX-Pad: " + b"p" * 19950 + b"\r\n\r\n"
    s.sendall(head[:10000])
    time.sleep(0.1)
    s.sendall(head[10000:])
    read_responses(s, 1)
    s.close()
    # a 3,000-byte response head
    s = socket.create_connection(("127.0.0.1", hport))
    s.sendall(b"GET /longhead HTTP/1.1\r\nHost: api.test\r\n\r\n")
    read_responses(s, 1)
    s.close()
    # 40 segments of 200 bytes, one write each (TCP_NODELAY, paced)
    s = socket.create_connection(("127.0.0.1", eport))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    seg_port = s.getsockname()[1]
    for i in range(SEGS):
        s.sendall(b"\xa6SEG%03d" % i + b"s" * 193)
        time.sleep(0.005)
    got = b""
    while got.count(b"\xa6SEG") < SEGS:
        d = s.recv(65536)
        if not d:
            break
        got += d
    s.close()
    # 40 connections open at once, each with bytes no protocol claims
    conns = [socket.create_connection(("127.0.0.1", eport)) for _ in range(ECHO_CONNS)]
    for i, c in enumerate(conns):
        c.sendall(bytes([0xA5, i]) + os.urandom(62))
    for c in conns:
        c.recv(4096)
    for c in conns:
        c.close()
    # every echo conversation whole in the file (sent and echoed, and the
    # FINs): a recording cut short would test the recording, not keywarden
    marks = [bytes([0xA5, i]) for i in range(ECHO_CONNS)]
    ok = cap.stop(until=lambda d: d.count(b"ok /big") >= 1 and d.count(b"ok /pipe/") >= 10 and
                  d.count(b"ok /longhead") >= 1 and d.count(b"\xa6SEG%03d" % (SEGS - 1)) >= 2 and
                  all(d.count(m) >= 2 for m in marks), quiet=1.0, limit=20.0)
    stop.set()
    srv.shutdown()
    if not ok:
        sys.exit("FAIL: tcpdump ended before the test stopped it")
    return path, eport, seg_port


def pcap_split(src, keep, out_a, out_b):
    """Copies the packets of pcap `src` to out_a when keep(tcp) says "a",
    to out_b when "b", nowhere when None; tcp = (sport, dport, flags,
    payload). IPv4 over Ethernet (tcpdump -i lo) or Linux cooked."""
    with open(src, "rb") as f:
        gh, data = f.read(24), f.read()
    magic, = struct.unpack("<I", gh[:4])
    e = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
    link = struct.unpack(e + "I", gh[20:24])[0]
    l2 = {1: 14, 113: 16, 276: 20}[link]
    outs = {"a": [gh], "b": [gh]}
    off = 0
    while off + 16 <= len(data):
        incl = struct.unpack(e + "I", data[off + 8:off + 12])[0]
        rec, frame = data[off:off + 16], data[off + 16:off + 16 + incl]
        off += 16 + incl
        ip = frame[l2:]
        ihl = (ip[0] & 15) * 4
        tl = struct.unpack("!H", ip[2:4])[0]
        t = ip[ihl:tl]
        doff = (t[12] >> 4) * 4
        where = keep((struct.unpack("!H", t[0:2])[0], struct.unpack("!H", t[2:4])[0], t[13],
                      t[doff:]))
        if where:
            outs[where] += [rec, frame]
    for name, path in (("a", out_a), ("b", out_b)):
        with open(path, "wb") as f:
            f.write(b"".join(outs[name]))


def lose_packets(lo, eport, seg_port, work):
    """Splits the recording: the 40-segment flow, with its first data
    segment and the server's packets after the SYN-ACK removed (their
    ACKs would declare the hole at once), to ooo.pcap; the rest to
    rest.pcap."""
    ooo, rest = os.path.join(work, "ooo.pcap"), os.path.join(work, "rest.pcap")

    def keep(t):
        sport, dport, flags, payload = t
        if seg_port not in (sport, dport):
            return "b"
        if sport == eport and not flags & 0x02:
            return None
        if payload.startswith(b"\xa6SEG000"):
            return None
        return "a"
    pcap_split(lo, keep, ooo, rest)
    return ooo, rest


H2_FIELDS = 40


def record_h2(work):
    """nghttp against nghttpd by prior knowledge: 40 fields, then a header
    block of ~36 KB (HEADERS + 2 CONTINUATION at the 16 KiB default frame
    size). None when the recording was cut short."""
    import base64
    www = os.path.join(work, "www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("hi\n")
    port = free_port()
    path = os.path.join(work, "h2.pcap")
    cap = LoCapture(path, [port])
    srv = subprocess.Popen(["nghttpd", "--no-tls", "-d", www, str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, srv, "nghttpd")
        url = "http://127.0.0.1:%d/index.html" % port
        fields = sum((["-H", "x-f-%d: v%d" % (i, i)] for i in range(H2_FIELDS)), [])
        subprocess.run(["nghttp", "-n"] + fields + [url], check=True)
        big = base64.b64encode(os.urandom(36000)).decode()
        subprocess.run(["nghttp", "-n", "-H", "x-big: " + big, url], check=True)
    finally:
        srv.terminate()
        srv.wait()
        ok = cap.stop()
    return path if ok else None


def ip4(src, dst, payload):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, 6, 0, src, dst)
    return hdr + payload


def tcp(sport, dport, seq, ack, flags, data=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0) + data


def hole_pcap(path):
    """One flow: handshake, a 100-byte hole, then 40 x 1000 bytes past it,
    1 ms apart (well inside the 2 s gap timeout), no ACK from the server
    that would declare the hole at once."""
    eth = b"\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x01\x08\x00"
    c, s = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    pkts = [ip4(c, s, tcp(40000, 8080, 1000, 0, 0x02)),
            ip4(s, c, tcp(8080, 40000, 5000, 1001, 0x12)),
            ip4(c, s, tcp(40000, 8080, 1001, 5001, 0x10))]
    for i in range(40):
        pkts.append(ip4(c, s, tcp(40000, 8080, 1101 + i * 1000, 5001, 0x18, b"d" * 1000)))
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for i, p in enumerate(pkts):
            fr = eth + p
            f.write(struct.pack("<IIII", 1_700_000_000, i * 1000, len(fr), len(fr)))
            f.write(fr)


def run(kw, work, pcap, limits, name):
    cfg = os.path.join(work, name + ".yaml")
    with open(cfg, "w") as f:
        f.write("storage: { database: %s/%s.db }\n" % (work, name))
        if limits:
            f.write("limits:\n" + "".join("  %s: %s\n" % kv for kv in limits.items()))
    chk = subprocess.run([kw, "check", "-c", cfg], capture_output=True, text=True)
    if chk.returncode != 0:
        sys.exit("FAIL: check -c %s:\n%s%s" % (name, chk.stdout, chk.stderr))
    for k in limits:
        if not any(l.split()[:1] == [k] and "(config)" in l for l in chk.stdout.splitlines()):
            sys.exit("FAIL: check does not show %s as configured:\n%s" % (k, chk.stdout))
    p = subprocess.run([kw, "run", "-c", cfg, "-r", pcap, "--eve", "-"], capture_output=True)
    if p.returncode != 0:
        sys.exit("FAIL: run %s exited %d: %s" % (name, p.returncode, p.stderr.decode()))
    recs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith(b"{")]
    st = [r["stats"] for r in recs if r.get("event_type") == "stats"][-1]
    http = [r["http"] for r in recs if r.get("event_type") == "http"]
    return st, http, p.stderr.decode()


def hits(st, key):
    return st["limits"]["hits"][key]


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    return cond


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    kw = sys.argv[1]
    good = True
    with tempfile.TemporaryDirectory(prefix="kw-limkeys-") as work:
        # http2.max_streams on the corpus capture
        h2 = os.path.join(HERE, "data", "h2", "h2-nghttp.pcap")
        d_st, d_http, _ = run(kw, work, h2, {}, "h2d")
        l_st, l_http, l_err = run(kw, work, h2, {"http2.max_streams": 1}, "h2l")
        good &= check(hits(d_st, "http2.max_streams") == 0 and
                      hits(l_st, "http2.max_streams") > 0,
                      "http2.max_streams 1: hits %d (default %d)" %
                      (hits(l_st, "http2.max_streams"), hits(d_st, "http2.max_streams")))
        good &= check(len(l_http) < len(d_http),
                      "http2.max_streams 1: %d http records (default %d)" %
                      (len(l_http), len(d_http)))
        good &= check("http2.max_streams" in l_err, "run's summary names http2.max_streams")

        # stream.ooo_window on a written flow
        hp = os.path.join(work, "hole.pcap")
        hole_pcap(hp)
        d_st, _, _ = run(kw, work, hp, {}, "oood")
        l_st, _, _ = run(kw, work, hp, {"stream.ooo_window": "16KiB"}, "oool")
        good &= check(hits(d_st, "stream.ooo_window") == 0 and
                      hits(l_st, "stream.ooo_window") == 1,
                      "stream.ooo_window 16KiB: hits %d (default %d)" %
                      (hits(l_st, "stream.ooo_window"), hits(d_st, "stream.ooo_window")))

        # `keywarden streams -c` sizes reassembly by the same limits (it
        # used the compiled defaults whatever the config said)
        cfg = os.path.join(work, "oool.yaml")  # written by run() above
        sd = subprocess.run([kw, "streams", "-r", hp, "-o", os.path.join(work, "sd")],
                            capture_output=True, text=True)
        sl = subprocess.run([kw, "streams", "-c", cfg, "-r", hp, "-o", os.path.join(work, "sl")],
                            capture_output=True, text=True)

        def ctr(p, name):
            for l in p.stderr.splitlines():
                if l.split()[:1] == [name]:
                    return int(l.split()[1])
            return None
        good &= check(sd.returncode == 0 and sl.returncode == 0 and
                      ctr(sd, "flow.ooo_window_gaps") == 0 and
                      ctr(sl, "flow.ooo_window_gaps") == 1,
                      "streams -c (stream.ooo_window 16KiB): flow.ooo_window_gaps %s "
                      "(without -c %s)" % (ctr(sl, "flow.ooo_window_gaps"),
                                           ctr(sd, "flow.ooo_window_gaps")))
        bad = os.path.join(work, "bad.yaml")
        with open(bad, "w") as f:
            f.write("limits:\n  stream.ooo_window: 1KiB\n")
        sb = subprocess.run([kw, "streams", "-c", bad, "-r", hp, "-o", os.path.join(work, "sb")],
                            capture_output=True, text=True)
        good &= check(sb.returncode == 2 and "bad.yaml:2:" in sb.stderr and
                      not os.path.exists(os.path.join(work, "sb")),
                      "streams -c with a bad limit: exit %d, %s" %
                      (sb.returncode, sb.stderr.strip().splitlines()[:1]))

        if os.geteuid() != 0:
            print("SKIP: the recorded part needs root (tcpdump on lo)")
            return 0 if good else 1
        for attempt in range(3):
            # a busy machine's tcpdump may lose packets: record again
            lo, eport, seg_port = record(work)
            ooo, lo = lose_packets(lo, eport, seg_port, work)
            d_st, d_http, _ = run(kw, work, lo, {}, "lod")
            paths = sorted(h.get("path", "") for h in d_http)
            answered = [h for h in d_http if h.get("status") == 200 and
                        not set(h.get("flags", [])) - {"pipelined"}]
            if len(answered) == PIPELINED + 3 and d_st["flow"]["tcp_gaps"] == 0:
                break
            print("recording %d incomplete (%d clean answers, %d gaps): again" %
                  (attempt + 1, len(answered), d_st["flow"]["tcp_gaps"]))
        good &= check(len(answered) == PIPELINED + 3 and "/big" in paths,
                      "default: %d answered requests, /big among them" % len(answered))
        for key in ("http.max_pending", "http.max_headers", "stream.max_buffer",
                    "classify.max_active", "http.request_buffer", "http.response_buffer"):
            good &= check(hits(d_st, key) == 0, "default: %s hits 0" % key)
        good &= check(d_st["classify"]["limit_active"] == 0, "default: every echo flow classified")

        st, http, _ = run(kw, work, lo, {"http.max_pending": 2}, "pend")
        pipe = [h for h in http if h.get("path", "").startswith("/pipe/")]
        lone = [h for h in pipe if h.get("status") != 200]
        good &= check(hits(st, "http.max_pending") == PIPELINED - 2 and len(lone) > 0,
                      "http.max_pending 2: hits %d, %d of %d pipelined requests reported "
                      "without their answer" % (hits(st, "http.max_pending"), len(lone), len(pipe)))

        st, http, _ = run(kw, work, lo, {"http.max_headers": 16}, "hdrs")
        many = [h for h in http if h.get("path") == "/many"]
        good &= check(hits(st, "http.max_headers") == 1 and hits(st, "http.max_header_bytes") == 0
                      and many and "parse_error" in many[0].get("flags", []),
                      "http.max_headers 16: hits %d, /many flagged %s" %
                      (hits(st, "http.max_headers"), many[0].get("flags") if many else None))

        st, http, _ = run(kw, work, lo, {"stream.max_buffer": "8KiB", "stream.ooo_window": "8KiB"},
                          "buf")
        big = [h for h in http if h.get("path") == "/big"]
        good &= check(hits(st, "stream.max_buffer") > 0 and big and
                      "gap_in_request" in big[0].get("flags", []),
                      "stream.max_buffer 8KiB: hits %d, /big flagged %s (its first bytes "
                      "dropped)" % (hits(st, "stream.max_buffer"),
                                    big[0].get("flags") if big else None))

        st, _, _ = run(kw, work, lo, {"classify.max_active": 16}, "cls")
        good &= check(hits(st, "classify.max_active") >= ECHO_CONNS - 16,
                      "classify.max_active 16: hits %d (%d connections open at once)" %
                      (hits(st, "classify.max_active"), ECHO_CONNS))

        # the HTTP/1 head copies: /big's 20,000-byte request head, the
        # 3,000-byte response head of /longhead
        # (/many's 40 fields take ~2 KB of the request buffer with their
        # index: 4KiB keeps them)
        for key, val, path, side in (("http.request_buffer", "4KiB", "/big", "request"),
                                     ("http.response_buffer", "1KiB", "/longhead", "response")):
            dflt = [h for h in d_http if h.get("path") == path]
            st, http, _ = run(kw, work, lo, {key: val}, key.split(".")[1])
            cut = [h for h in http if h.get("path") == path]
            good &= check(hits(st, key) == 1 and bool(cut) and
                          "field_truncated" in cut[0]["flags"] and bool(dflt) and
                          "field_truncated" not in dflt[0].get("flags", []),
                          "%s %s: hits %d, the %s head of %s flagged %s (default %s)" %
                          (key, val, hits(st, key), side, path, cut[0]["flags"] if cut else None,
                           dflt[0].get("flags") if dflt else None))

        # stream.ooo_max_segments: 39 segments wait past the lost one
        d_st, _, _ = run(kw, work, ooo, {}, "segd")
        st, _, _ = run(kw, work, ooo, {"stream.ooo_max_segments": 16}, "segl")
        # (the 17th gives the hole up as a gap: the rest are in order)
        good &= check(hits(d_st, "stream.ooo_max_segments") == 0 and
                      hits(st, "stream.ooo_max_segments") == 1 and
                      st["flow"]["tcp_gap_bytes"] == d_st["flow"]["tcp_gap_bytes"] == 200,
                      "stream.ooo_max_segments 16: hits %d (default %d), the lost 200 bytes "
                      "a gap in both (%d, %d)" %
                      (hits(st, "stream.ooo_max_segments"),
                       hits(d_st, "stream.ooo_max_segments"), st["flow"]["tcp_gap_bytes"],
                       d_st["flow"]["tcp_gap_bytes"]))

        # the HTTP/2 header block keys on a recording of nghttp
        h2r = None
        for attempt in range(3):
            h2r = record_h2(work)
            if h2r:
                break
        if not h2r:
            sys.exit("FAIL: tcpdump ended before the test stopped it (h2)")
        d_st, d_http, _ = run(kw, work, h2r, {}, "h2rd")
        keys = ("http2.max_headers", "http2.max_continuations", "http2.max_header_block")
        good &= check(len(d_http) == 2 and all(h.get("status") == 200 for h in d_http) and
                      all(hits(d_st, k) == 0 for k in keys),
                      "h2 default: statuses %s, flags %s, no hit" %
                      ([h.get("status") for h in d_http], [h.get("flags") for h in d_http]))
        st, http, _ = run(kw, work, h2r, {"http2.max_headers": 16}, "h2hd")
        good &= check(hits(st, "http2.max_headers") == 1 and
                      hits(st, "http2.max_header_list") == hits(d_st, "http2.max_header_list") and
                      sum("field_truncated" in h.get("flags", []) for h in http) >
                      sum("field_truncated" in h.get("flags", []) for h in d_http),
                      "http2.max_headers 16: hits %d, flags %s" %
                      (hits(st, "http2.max_headers"), [h.get("flags") for h in http]))
        for key, val in (("http2.max_continuations", 1), ("http2.max_header_block", "16KiB")):
            st, http, _ = run(kw, work, h2r, {key: val}, key.split(".")[1])
            other = [k for k in keys if k != key]
            undec = [h for h in http if "headers_undecodable" in h.get("flags", [])]
            good &= check(hits(st, key) == 1 and all(hits(st, k) == 0 for k in other) and
                          st["http2"]["hpack_broken"] >= 1 and bool(undec),
                          "%s %s: hits %d, %d of %d records with headers undecodable "
                          "(default 0 of %d)" % (key, val, hits(st, key), len(undec), len(http),
                                                  len(d_http)))
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
