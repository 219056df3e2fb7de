#!/usr/bin/env python3
"""check_sim: ctest drivers for kwsim (stdlib only).

  check_sim.py determinism KWSIM WORLD WORKDIR
  check_sim.py tshark      KWSIM WORLD WORKDIR [extra kwsim gen args...]
  check_sim.py dense       KWSIM WORKDIR
  check_sim.py loss        KWSIM WORLD WORKDIR
  check_sim.py world       KWSIM WORLD WORKDIR DAYS

The tshark checks are the oracle the issue names: no malformed packet, no bad
IP/TCP/UDP checksum, no expert error, and the HTTP requests tshark rebuilds
equal truth.jsonl (count and method+target multiset, plus client endpoints).
A check that tshark would let pass even on a broken capture is worthless, so
each tshark run is first shown to flag a deliberately corrupted copy.
Exit 77 means skipped (tshark missing)."""
import base64
import collections
import hashlib
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys

SKIP = 77
ERR_FILTER = ("_ws.malformed || _ws.expert.severity >= error || tcp.checksum.status == 2 || "
              "ip.checksum.status == 2 || udp.checksum.status == 2")
PREFS = ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-o",
         "udp.check_checksum:TRUE", "-o", "tcp.desegment_tcp_streams:TRUE", "-o",
         "tcp.reassemble_out_of_order:TRUE", "-o", "http.desegment_body:TRUE"]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def gen(kwsim, world, out, *extra):
    shutil.rmtree(out, ignore_errors=True)
    cmd = [kwsim, "gen", "--world", world, "-o", out] + list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail("%s -> %d: %s" % (" ".join(cmd), r.returncode, r.stderr))
    print(r.stderr.strip())


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def tshark(pcap, args):
    r = subprocess.run(["tshark", "-n", "-r", pcap] + PREFS + args, capture_output=True,
                       text=True)
    if r.returncode != 0:
        fail("tshark failed on %s: %s" % (pcap, r.stderr))
    return [l for l in r.stdout.splitlines() if l.strip()]


def error_rows(pcap, decode):
    return tshark(pcap, decode + ["-Y", ERR_FILTER, "-T", "fields", "-e", "frame.number",
                                  "-e", "_ws.expert.message"])


def self_check(pcap, decode, workdir):
    """Flip one byte inside a TCP payload: tshark must now report a bad checksum."""
    bad = os.path.join(workdir, "corrupt.pcap")
    data = bytearray(open(pcap, "rb").read())
    off, n = 24, 0
    while off + 16 < len(data):
        caplen = int.from_bytes(data[off + 8:off + 12], "little")
        n += 1
        if caplen > 400:
            data[off + 16 + caplen - 7] ^= 0x5A
            del data[off + 16 + caplen:]  # a short file keeps this check fast
            break
        off += 16 + caplen
    open(bad, "wb").write(bytes(data))
    if not error_rows(bad, decode):
        fail("tshark did not flag a corrupted copy: the error filter is blind")


def cmd_determinism(kwsim, world, work):
    a, b, c = (os.path.join(work, x) for x in ("a", "b", "c"))
    gen(kwsim, world, a, "--seed", "7", "--loss", "0.01")
    gen(kwsim, world, b, "--seed", "7", "--loss", "0.01")
    gen(kwsim, world, c, "--seed", "8", "--loss", "0.01")
    files = ["capture.pcap", "truth.jsonl", "incidents.jsonl", "keywarden.yaml"]
    rules = sorted(os.listdir(os.path.join(a, "rules.d")))
    files += [os.path.join("rules.d", r) for r in rules]
    for f in files:
        if not filecmp.cmp(os.path.join(a, f), os.path.join(b, f), shallow=False):
            fail("same seed, different %s" % f)
    for f in ["capture.pcap", "truth.jsonl"]:
        if filecmp.cmp(os.path.join(a, f), os.path.join(c, f), shallow=False):
            fail("seed 7 and seed 8 gave the same %s" % f)
    # Incidents on or off must not change anybody else's traffic.
    d = os.path.join(work, "d")
    gen(kwsim, world, d, "--seed", "7", "--loss", "0.01", "--incidents", "none")
    ta = [t for t in read_jsonl(os.path.join(a, "truth.jsonl")) if not t["incident"]]
    td = read_jsonl(os.path.join(d, "truth.jsonl"))
    key = lambda t: (t["ts"], t["client_ip"], t["client_port"], t["target"])
    if sorted(map(key, ta)) != sorted(map(key, td)):
        fail("switching incidents off changed the ordinary traffic")
    print("determinism ok: %d files identical, seed matters, incidents isolated" % len(files))


def cmd_tshark(kwsim, world, work, extra):
    if not shutil.which("tshark"):
        print("tshark not installed: skipped")
        sys.exit(SKIP)
    out = os.path.join(work, "t")
    gen(kwsim, world, out, "--seed", "11", "--reorder", "0.02", "--retransmit", "0.02", *extra)
    pcap = os.path.join(out, "capture.pcap")
    truth = read_jsonl(os.path.join(out, "truth.jsonl"))
    if not truth:
        fail("empty truth file")
    ports = sorted({t["server_port"] for t in truth})
    h2ports = {t["server_port"] for t in truth if t.get("protocol") == "HTTP/2"}
    decode = []
    for p in ports:
        decode += ["-d", "tcp.port==%d,%s" % (p, "http2" if p in h2ports else "http")]
    self_check(pcap, decode, work)
    errs = error_rows(pcap, decode)
    if errs:
        fail("tshark reports %d bad packets, first: %s" % (len(errs), errs[:5]))
    rows = tshark(pcap, decode + ["-Y", "http.request", "-T", "fields", "-E", "separator=\t",
                                  "-E", "occurrence=a", "-E", "aggregator=\x01", "-e",
                                  "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport",
                                  "-e", "http.request.method", "-e", "http.request.uri"])
    seen = collections.Counter()
    for row in rows:
        src4, src6, sport, methods, uris = row.split("\t")
        # One frame can complete several pipelined requests.
        for m, u in zip(methods.split("\x01"), uris.split("\x01")):
            # Behind a tunnel the outer address comes first: keep the innermost.
            src = src6.split("\x01")[-1] if src6 else src4.split("\x01")[-1]
            seen[(src, int(sport.split("\x01")[-1]), m, u)] += 1
    if h2ports:  # HTTP/2 streams: tshark decodes their HPACK blocks itself
        rows = tshark(pcap, decode + ["-Y", "http2.headers.method", "-T", "fields", "-E",
                                      "separator=\t", "-E", "occurrence=a", "-E",
                                      "aggregator=\x01", "-e", "ip.src", "-e", "ipv6.src",
                                      "-e", "tcp.srcport", "-e", "http2.headers.method",
                                      "-e", "http2.headers.path"])
        for row in rows:
            src4, src6, sport, methods, paths = row.split("\t")
            src = src6.split("\x01")[-1] if src6 else src4.split("\x01")[-1]
            for m, u in zip(methods.split("\x01"), paths.split("\x01")):
                seen[(src, int(sport.split("\x01")[-1]), m, u)] += 1
        check_grpc_status(pcap, decode, truth)
    want = collections.Counter()
    for t in truth:
        target = t["target"]
        seen_t = target
        want[(t["client_ip"], t["client_port"], t["method"], target)] += 1
    # API keys sent as a query parameter are redacted in the truth file.
    params = {t["secret_param"] for t in truth if "secret_param" in t}
    if params:
        fixed = collections.Counter()
        for (ip, port, m, u), n in seen.items():
            for p in params:
                u = re.sub(r"([?&]%s=)[^&]*" % re.escape(p), r"\1REDACTED", u)
            fixed[(ip, port, m, u)] += n
        seen = fixed
    if seen != want:
        missing = list((want - seen).items())[:5]
        extra_ = list((seen - want).items())[:5]
        fail("tshark saw %d requests, truth has %d; missing %s; unexpected %s" %
             (sum(seen.values()), len(truth), missing, extra_))
    pip = sum(1 for t in truth if t["pipelined"])
    spl = sum(1 for t in truth if t["split"])
    h2 = sum(1 for t in truth if t.get("protocol") == "HTTP/2")
    print("tshark ok: %d requests match truth exactly (%d pipelined, %d split, %d HTTP/2 "
          "streams), 0 errors" % (len(truth), pip, spl, h2))


def check_grpc_status(pcap, decode, truth):
    """Every grpc-status tshark reads (trailers, or the one HEADERS of a
    refused call) against the truth's, as a multiset."""
    rows = tshark(pcap, decode + ["-Y", 'http2.header.name == "grpc-status"', "-T", "fields",
                                  "-E", "separator=\t", "-E", "occurrence=a", "-E",
                                  "aggregator=\x01", "-e", "http2.header.name",
                                  "-e", "http2.header.value"])
    seen = collections.Counter()
    for row in rows:
        names, values = row.split("\t")
        for n, v in zip(names.split("\x01"), values.split("\x01")):
            if n == "grpc-status":
                seen[int(v)] += 1
    want = collections.Counter(t["grpc_status"] for t in truth if "grpc_status" in t)
    if not want:
        fail("an HTTP/2 world without gRPC calls: the grpc-status check checks nothing")
    if seen != want:
        fail("grpc-status: tshark %s, truth %s" % (dict(seen), dict(want)))
    print("tshark: %d grpc-status values as in the truth %s" % (sum(want.values()), dict(want)))


def cmd_dense(kwsim, work):
    if not shutil.which("tshark"):
        print("tshark not installed: skipped")
        sys.exit(SKIP)
    pcap = os.path.join(work, "dense.pcap")
    os.makedirs(work, exist_ok=True)
    r = subprocess.run([kwsim, "dense", "--size", "2M", "--conns", "64", "-o", pcap,
                        "--seed", "3"], capture_output=True, text=True)
    if r.returncode != 0:
        fail("kwsim dense: " + r.stderr)
    print(r.stderr.strip())
    size = os.path.getsize(pcap)
    if not 2_000_000 <= size < 2_400_000:
        fail("asked for 2 MB, got %d bytes" % size)
    decode = ["-d", "tcp.port==8080,http"]
    self_check(pcap, decode, work)
    errs = error_rows(pcap, decode)
    if errs:
        fail("tshark reports %d bad packets in dense output: %s" % (len(errs), errs[:5]))
    rows = tshark(pcap, decode + ["-Y", "http.request || http.response", "-T", "fields",
                                  "-E", "occurrence=a", "-e", "http.request.method",
                                  "-e", "http.response.code"])
    reqs = [r for r in rows if not r.startswith("\t")]
    resp = [r for r in rows if r.startswith("\t")]
    if len(reqs) < 100 or abs(len(reqs) - len(resp)) > 64:
        fail("dense: %d requests and %d responses" % (len(reqs), len(resp)))
    print("dense ok: %d bytes, %d requests, %d responses, 0 errors" % (size, len(reqs), len(resp)))
    # The small-API mix of bench/run.sh (issue 13): what it promises, as
    # tshark sees it: 1-3 KB transactions, POSTs, gzip, chunked, pipelining.
    pcap = os.path.join(work, "small.pcap")
    r = subprocess.run([kwsim, "dense", "--small", "--size", "2M", "--conns", "64", "-o", pcap,
                        "--seed", "3"], capture_output=True, text=True)
    if r.returncode != 0:
        fail("kwsim dense --small: " + r.stderr)
    errs = error_rows(pcap, decode)
    if errs:
        fail("tshark reports %d bad packets in dense --small output: %s" % (len(errs), errs[:5]))
    rows = tshark(pcap, decode + ["-Y", "http.request || http.response", "-T", "fields",
                                  "-E", "occurrence=a", "-E", "aggregator=\x01",
                                  "-e", "tcp.stream", "-e", "http.request.method",
                                  "-e", "http.response.code", "-e", "http.content_encoding",
                                  "-e", "http.transfer_encoding", "-e", "tcp.reassembled.length",
                                  "-e", "tcp.len"])
    nreq = nresp = gz = chunked = pipelined = 0
    sizes, last = [], {}
    for row in rows:
        stream, meth, code, ce, te, rlen, tlen = row.split("\t")
        for m in filter(None, meth.split("\x01")):
            nreq += 1
            pipelined += last.get(stream) == "req"
            last[stream] = "req"
        if code:
            nresp += 1
            last[stream] = "resp"
            gz += "gzip" in ce
            chunked += "chunked" in te
            sizes.append(int((rlen or tlen).split("\x01")[-1]))
    if nreq < 500 or abs(nreq - nresp) > 64:
        fail("dense --small: %d requests and %d responses" % (nreq, nresp))
    sizes.sort()
    med = sizes[len(sizes) // 2]
    if not 700 <= med <= 3000 or sizes[-1] > 4000:
        fail("dense --small: response sizes median %d, max %d (want ~1-3 KB)" % (med, sizes[-1]))
    if min(gz, chunked, pipelined) < nreq // 50:
        fail("dense --small: %d gzip, %d chunked, %d pipelined of %d" %
             (gz, chunked, pipelined, nreq))
    print("dense --small ok: %d requests, %d responses (median %d B on the wire), "
          "%d gzip, %d chunked, %d pipelined, 0 errors" % (nreq, nresp, med, gz, chunked, pipelined))


def cmd_loss(kwsim, world, work):
    a, b = os.path.join(work, "full"), os.path.join(work, "lossy")
    gen(kwsim, world, a, "--seed", "5")
    gen(kwsim, world, b, "--seed", "5", "--loss", "0.03")
    ta, tb = read_jsonl(os.path.join(a, "truth.jsonl")), read_jsonl(os.path.join(b, "truth.jsonl"))
    if any(t["lost"] for t in ta):
        fail("a capture without loss marks transactions lost")
    lost = sum(1 for t in tb if t["lost"])
    strip = lambda ts: [{k: v for k, v in t.items() if k != "lost"} for t in ts]
    if strip(ta) != strip(tb):
        fail("loss changed the transactions themselves, not only what the mirror saw")
    if len(ta) != len(tb) or not 0 < lost < len(tb):
        fail("loss 3%%: %d of %d transactions marked lost (full run had %d)" %
             (lost, len(tb), len(ta)))
    pa = os.path.getsize(os.path.join(a, "capture.pcap"))
    pb = os.path.getsize(os.path.join(b, "capture.pcap"))
    if pb >= pa:
        fail("the lossy capture is not smaller (%d >= %d)" % (pb, pa))
    print("loss ok: %d of %d transactions touched, capture %d -> %d bytes" %
          (lost, len(tb), pa, pb))


DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def parse_days(text):
    if text == "daily":
        return set(range(7))
    out = set()
    for part in text.split(","):
        a, _, b = part.partition("-")
        i, j = DAYS.index(a), DAYS.index(b or a)
        while True:
            out.add(i)
            if i == j:
                break
            i = (i + 1) % 7
    return out


def parse_rules(path):
    """The few keys this check needs from the generated rules file."""
    ids, cur = {}, None
    for line in open(path):
        m = re.match(r"  - id: (\S+)", line)
        if m:
            cur = ids.setdefault(m.group(1), {"fps": set()})
        m = re.match(r"    timezone: (\S+)", line)
        if m and cur is not None:
            cur["tz"] = m.group(1)
        m = re.match(r'    schedule: \{ days: "([a-z,-]+)", hours: "(\d+):(\d+)-(\d+):(\d+)", '
                     r"grace: (\d+)m", line)
        if m and cur is not None:
            cur["days"] = parse_days(m.group(1))
            h1, m1, h2, m2 = map(int, m.group(2, 3, 4, 5))
            cur["hours"] = (h1 * 60 + m1, h2 * 60 + m2)
            cur["grace"] = int(m.group(6))
        m = re.match(r'      - \{ sha256: "([0-9a-f]{64})" \}', line)
        if m and cur is not None:
            cur["fps"].add("sha256:" + m.group(1))
    return ids


def schedule_distance(rule, ts_us):
    """Minutes outside the schedule (0 = inside), in the identity's zone."""
    import datetime
    import zoneinfo
    tz = zoneinfo.ZoneInfo(rule["tz"])
    t = datetime.datetime.fromtimestamp(ts_us / 1e6, tz)
    a, b = rule["hours"]
    best = None
    for back in (0, 1):  # a shift that crosses midnight belongs to the day it starts
        day = (t - datetime.timedelta(days=back)).date()
        if (day.isoweekday() % 7) not in rule["days"]:
            continue
        start = datetime.datetime.combine(day, datetime.time(a // 60, a % 60), tz)
        end_day = day + datetime.timedelta(days=1 if b <= a else 0)
        end = datetime.datetime.combine(end_day, datetime.time(0), tz) + \
            datetime.timedelta(minutes=b) if b == 1440 else \
            datetime.datetime.combine(end_day, datetime.time(b // 60, b % 60), tz)
        if start <= t < end:
            return 0
        d = (t - end).total_seconds() / 60 if t >= end else (start - t).total_seconds() / 60
        best = d if best is None else min(best, d)
    return 1e9 if best is None else best


def secrets_in_capture(pcap):
    data = open(pcap, "rb").read()
    found = set()
    # Terminators are required: a request cut across segments must not yield
    # a truncated "secret" (the same secret shows up whole elsewhere).
    for pat in (rb"Authorization: Bearer ([\x21-\x7e]+)\r\n", rb"X-API-Key: ([\x21-\x7e]+)\r\n",
                rb"[?&]api_key=([A-Za-z0-9_]+)[ &]"):
        found |= {m.group(1).decode() for m in re.finditer(pat, data)}
    users, passwords = set(), set()
    for m in re.finditer(rb"Authorization: Basic ([A-Za-z0-9+/=]+)\r\n", data):
        user, _, pw = base64.b64decode(m.group(1)).decode().partition(":")
        users.add(user)
        passwords.add(pw)
    return found, users, passwords


def cmd_world(kwsim, world, work, days):
    out = os.path.join(work, "w")
    gen(kwsim, world, out, "--seed", "3", "--days", days, "--noise", "0.2")
    truth = read_jsonl(os.path.join(out, "truth.jsonl"))
    incidents = read_jsonl(os.path.join(out, "incidents.jsonl"))
    name = re.search(r"^world: (\S+)", open(world).read(), re.M).group(1)
    rules = parse_rules(os.path.join(out, "rules.d", name + ".yaml"))
    # 1. Every staged incident happened and is in the truth.
    tagged = collections.Counter(t["incident"] for t in truth)
    for inc in incidents:
        if inc["requests"] < 1 or tagged[inc["id"]] != inc["requests"]:
            fail("incident %s: %d requests, truth has %d" %
                 (inc["id"], inc["requests"], tagged[inc["id"]]))
    # 2. No secret from the capture reaches the truth, incidents or rules.
    secrets, users, passwords = secrets_in_capture(os.path.join(out, "capture.pcap"))
    texts = [open(os.path.join(out, f)).read() for f in
             ("truth.jsonl", "incidents.jsonl", "keywarden.yaml", "rules.d/%s.yaml" % name)]
    for sec in secrets | passwords:
        if any(sec in t for t in texts):
            fail("a secret from the capture leaked into the outputs: %s..." % sec[:6])
    # 3. Fingerprints are sha256 of the secret as sent (Basic: of the user).
    fps = {t["fingerprint"] for t in truth}
    want = {"sha256:" + hashlib.sha256(s.encode()).hexdigest() for s in secrets | users}
    if not want <= fps or len(want) < 0.8 * len(fps):
        fail("fingerprints in truth differ from sha256 of the secrets on the wire: %d of %d "
             "found" % (len(want & fps), len(want)))
    for ident, r in rules.items():
        used = {t["fingerprint"] for t in truth if t["identity"] == ident}
        if r["fps"] and used and not used <= r["fps"]:
            fail("rules fingerprint of %s does not match its traffic" % ident)
    # 4. Ordinary traffic keeps to the schedule in local time (DST included),
    #    benign lateness stays within grace, off_hours incidents do not.
    kinds = {i["id"]: i["scenario"] for i in incidents}
    checked = 0
    for t in truth:
        r = rules.get(t["identity"])
        if not r or "tz" not in r:
            continue
        d = schedule_distance(r, t["ts"])
        scen = kinds.get(t["incident"], "")
        if scen in ("", "busy_day", "weekend_work", "dst_shift", "new_id") and d > 0:
            fail("%s at %s is %.0f min outside its schedule" % (t["identity"], t["time"], d))
        if scen == "late_work" and d > r["grace"]:
            fail("late_work of %s at %s is beyond grace" % (t["identity"], t["time"]))
        if scen in ("off_hours",) and d <= r["grace"]:
            fail("off_hours request of %s at %s is within schedule+grace" %
                 (t["identity"], t["time"]))
        checked += 1
    print("world ok: %d transactions, %d incidents, %d schedule checks, %d secrets kept out" %
          (len(truth), len(incidents), checked, len(secrets | passwords)))


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        sys.exit(2)
    mode, kwsim = sys.argv[1], sys.argv[2]
    if mode == "determinism":
        cmd_determinism(kwsim, sys.argv[3], sys.argv[4])
    elif mode == "tshark":
        cmd_tshark(kwsim, sys.argv[3], sys.argv[4], sys.argv[5:])
    elif mode == "dense":
        cmd_dense(kwsim, sys.argv[3])
    elif mode == "world":
        cmd_world(kwsim, sys.argv[3], sys.argv[4], sys.argv[5])
    elif mode == "loss":
        cmd_loss(kwsim, sys.argv[3], sys.argv[4])
    else:
        fail("unknown mode " + mode)


if __name__ == "__main__":
    main()
