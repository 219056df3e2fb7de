#!/usr/bin/env python3
"""e2e_tls: keywarden on real TLS recorded on loopback, tshark as the oracle.

Servers and clients nobody here wrote: `openssl s_server -WWW` and curl
(SSLKEYLOGFILE) for TLS 1.3 with its three suites and TLS 1.2 with AES-GCM,
ChaCha20-Poly1305 and AES-CBC; mTLS with a client certificate made here
(TLS 1.2, where it travels in clear, and TLS 1.3, where only decryption
shows it); HAProxy terminating TLS in front of a Python backend and writing
its own key log (log-format). tcpdump records each on lo. Then:

- every `tls` record agrees with tshark's tls.handshake.* fields (SNI,
  version, cipher, JA3, JA3S, server and client certificate SHA-1);
- with the key logs, keywarden's http records are exactly tshark's
  decrypted requests (method, uri, status), nothing invented;
- the client certificate attributes its session and its requests to the
  identity whose rule names it (client_cert sha256 / subject);
- the `tls` object passes Suricata's EVE schema (python3-jsonschema) once
  keywarden's own fields are set aside;
- without key logs the same capture gives the same tls records and no http;
- a key log that others may read is refused (exit 2, how to fix).

Needs root (tcpdump on lo); exits 77 (skipped) otherwise or when a tool is
missing.
"""
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

from ops.kwtest import LoCapture, free_port, recorded, wait_port  # tests/ops/kwtest.py: tcpdump on lo, stopped when quiet

KW = sys.argv[1]
SCHEMA = sys.argv[2] if len(sys.argv) > 2 else None
OURS = {"ja4s", "alpn", "cert_sha256", "client_cert", "decrypted"}


def skip(why):
    print("SKIP:", why)
    sys.exit(77)


def run(cmd, **kw):
    kw.setdefault("text", True)
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def der_hashes(pem):
    der = run(["openssl", "x509", "-in", pem, "-outform", "der"], text=False).stdout
    return hashlib.sha1(der).hexdigest(), hashlib.sha256(der).hexdigest()


def keywarden(pcap, work, keylogs=(), rules=None, tag="run"):
    eve = os.path.join(work, f"{tag}.eve.json")
    # --user root: stay (a "keywarden" user, if the machine has one, could
    # not write to this test's folders)
    cmd = [KW, "run", "-r", pcap, "--eve", eve, "-q", "--db", os.path.join(work, f"{tag}.db"),
           "--user", "root"]
    for k in keylogs:
        cmd += ["--tls-keylog", k]
    if rules:
        cmd += ["--rules", rules]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"keywarden failed ({r.returncode}): {r.stderr}")
    with open(eve) as f:
        return [json.loads(l) for l in f]


def tshark(pcap, keylog, fields, flt):
    cmd = ["tshark", "-r", pcap, "-Y", flt, "-T", "fields", "-E", "separator=|"]
    if keylog:
        cmd += ["-o", f"tls.keylog_file:{keylog}"]
    for f in fields:
        cmd += ["-e", f]
    out = run(cmd).stdout
    return [l.split("|") for l in out.splitlines() if l.strip()]


def check_tls_records(pcap, recs, certs):
    """tls records vs tshark's handshake fields, per client port."""
    ch = {r[0]: r for r in tshark(pcap, None, ["tcp.srcport", "tls.handshake.ja3",
                                             "tls.handshake.extensions_server_name"],
                                 "tls.handshake.type==1")}
    sh = {r[0]: r for r in tshark(pcap, None, ["tcp.dstport", "tls.handshake.ja3s",
                                             "tls.handshake.ciphersuite"],
                                 "tls.handshake.type==2")}
    tls = {str(r["src_port"]): r for r in recs if r["event_type"] == "tls"}
    assert set(tls) == set(ch), f"tls records for ports {sorted(tls)} vs tshark {sorted(ch)}"
    for port, r in tls.items():
        t = r["tls"]
        assert t["ja3"]["hash"] == ch[port][1], (port, t["ja3"], ch[port])
        assert t.get("sni", "") == ch[port][2], (port, t.get("sni"), ch[port])
        assert t["ja3s"]["hash"] == sh[port][1], (port, t["ja3s"], sh[port])
        assert t["server_handshake"]["cipher"] == int(sh[port][2], 0), (port, sh[port])
        if t["version"] == "TLS 1.2" or t["decrypted"]:  # TLS 1.3 hides it without keys
            assert t["fingerprint"].replace(":", "") == certs["server"][0], (port, t)
        else:
            assert "fingerprint" not in t, t
    return tls


def check_http(pcap, keylog, recs):
    """keywarden's decrypted requests are tshark's, nothing invented."""
    want = sorted((r[0], r[1], r[2]) for r in tshark(
        pcap, keylog, ["tcp.srcport", "http.request.method", "http.request.uri"], "http.request"))
    got = sorted((str(r["src_port"]), r["http"]["http_method"], r["http"]["url"])
                 for r in recs if r["event_type"] == "http")
    assert got == want, f"http records\n ours  {got}\n tshark {want}"
    stat = sorted((r[0], r[1]) for r in tshark(
        pcap, keylog, ["tcp.dstport", "http.response.code"], "http.response"))
    ours = sorted((str(r["src_port"]), str(r["http"]["status"]))
                  for r in recs if r["event_type"] == "http")
    if stat:
        assert ours == stat, f"statuses\n ours  {ours}\n tshark {stat}"
    else:
        # tshark 4.0 does not dissect s_server -WWW's close-delimited
        # HTTP/1.0 answers: what curl printed is the reference then
        assert all(r["http"]["status"] == 200 and r["http"]["length"] == len("hello over tls\n")
                   for r in recs if r["event_type"] == "http"), "responses"
    return len(got)


def check_schema(recs):
    if not SCHEMA:
        return 0
    try:
        import jsonschema
    except ImportError:
        print("note: python3-jsonschema missing; schema check skipped")
        return 0
    with open(SCHEMA) as f:
        schema = json.load(f)
    tls_schema = dict(schema["properties"]["tls"])
    tls_schema["$defs"] = schema.get("$defs", {})
    n = 0
    for r in recs:
        if r["event_type"] != "tls":
            continue
        t = {k: v for k, v in r["tls"].items() if k not in OURS}
        jsonschema.validate(t, tls_schema)
        n += 1
    return n


def record(work, w, pcap, keys):
    """The openssl/curl sessions on loopback; the curl command lines, and
    last the two server ports; None when the capture was cut short."""
    for f in (pcap, keys):
        if os.path.exists(f):
            os.unlink(f)
    p_plain, p_mtls = free_port(), free_port()
    cap = LoCapture(pcap, [p_plain, p_mtls])
    srv = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{p_plain}",
                            "-cert", w("srv.crt"), "-key", w("srv.key"), "-WWW", "-quiet"],
                           cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    msrv = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{p_mtls}",
                             "-cert", w("srv.crt"), "-key", w("srv.key"), "-WWW", "-quiet",
                             "-Verify", "1", "-CAfile", w("cli.crt")],
                            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(p_plain)
    wait_port(p_mtls)
    env = dict(os.environ, SSLKEYLOGFILE=keys)
    base = ["curl", "-s", "-k", "--http1.1", "--resolve", f"api.acme.internal:{p_plain}:127.0.0.1",
            "--resolve", f"api.acme.internal:{p_mtls}:127.0.0.1"]
    runs = []
    for s in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"):
        runs.append(["--tlsv1.3", "--tls13-ciphers", s, f"https://api.acme.internal:{p_plain}/r{len(runs)}.html"])
    for s in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
              "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-AES128-SHA", "AES256-SHA256"):
        runs.append(["--tls-max", "1.2", "--ciphers", s, f"https://api.acme.internal:{p_plain}/r{len(runs)}.html"])
    for v in (["--tls-max", "1.2"], ["--tlsv1.3"]):
        runs.append(v + ["--cert", w("cli.crt"), "--key", w("cli.key"),
                         f"https://api.acme.internal:{p_mtls}/r{len(runs)}.html"])
    try:
        for a in runs:
            out = run(base + a, env=env).stdout
            assert out == "hello over tls\n", (a, out)
    finally:  # no server or tcpdump outlives a failed run
        srv.terminate()
        msrv.terminate()
        cap_ok = cap.stop()
    if not cap_ok:
        return None
    return runs + [(p_plain, p_mtls)]


def main():
    if os.geteuid() != 0:
        skip("needs root for tcpdump on lo")
    for tool in ("tcpdump", "tshark", "openssl", "curl"):
        if not shutil.which(tool):
            skip(f"{tool} missing")
    work = tempfile.mkdtemp(prefix="kw_e2e_tls_")
    os.chmod(work, 0o755)
    w = lambda n: os.path.join(work, n)
    # certificates: an RSA server (the ECDHE-RSA suites), a client for mTLS
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", w("srv.key"), "-out", w("srv.crt"), "-subj", "/O=Acme/CN=api.acme.internal",
         "-addext", "subjectAltName=DNS:api.acme.internal"])
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-keyout", w("cli.key"), "-out", w("cli.crt"),
         "-subj", "/O=Acme Data/CN=acme-etl"])
    certs = {"server": der_hashes(w("srv.crt")), "client": der_hashes(w("cli.crt"))}
    for name in ["index.html"] + [f"r{i}.html" for i in range(12)]:
        with open(w(name), "w") as f:
            f.write("hello over tls\n")
    pcap, keys = w("tls.pcap"), w("curl.keys")
    runs = recorded(lambda: record(work, w, pcap, keys))
    p_plain, p_mtls = runs.pop()
    os.chmod(keys, 0o600)

    # identities: the client certificate by sha256, a second rule by subject
    rules = w("rules.yaml")
    with open(rules, "w") as f:
        f.write("identities:\n"
                "  - id: c01\n    name: Acme Data Ltd\n    kind: contractor\n"
                f"    credentials:\n      - {{ client_cert: {{ sha256: \"{certs['client'][1]}\" }} }}\n")
    recs = keywarden(pcap, work, [keys], rules, "keys")
    tls = check_tls_records(pcap, recs, certs)
    n_http = check_http(pcap, keys, recs)
    assert n_http == len(runs), (n_http, len(runs), work)
    assert all(r["tls"]["decrypted"] for r in tls.values()), "a session did not decrypt"
    mtls = [r for r in tls.values() if r["dest_port"] == p_mtls]
    assert len(mtls) == 2
    for r in mtls:
        assert r["tls"]["client_cert"]["sha256"] == certs["client"][1], r["tls"]
        assert r["tls"]["client"]["fingerprint"].replace(":", "") == certs["client"][0]
        assert r["tls"]["client_cert"]["subject"] == "O=Acme Data, CN=acme-etl"
        assert r.get("identity", {}).get("id") == "c01", r
    mhttp = [r for r in recs if r["event_type"] == "http" and r["dest_port"] == p_mtls]
    assert len(mhttp) == 2 and all(r.get("identity", {}).get("id") == "c01" for r in mhttp), mhttp
    # tshark sees the TLS 1.2 client certificate in clear
    cc = tshark(pcap, None, ["tcp.srcport", "tls.handshake.certificate"],
                f"tls.handshake.type==11 && tcp.srcport != {p_mtls} && tcp.srcport != {p_plain}")
    assert len(cc) == 1 and hashlib.sha1(bytes.fromhex(cc[0][1].split(",")[0].replace(":", ""))).hexdigest() == certs["client"][0]
    n_schema = check_schema(recs)

    # no key logs: the same tls records, no http
    recs2 = keywarden(pcap, work, [], rules, "nokeys")
    tls2 = check_tls_records(pcap, recs2, certs)
    assert not [r for r in recs2 if r["event_type"] == "http"]
    assert not any(r["tls"]["decrypted"] for r in tls2.values())
    m13 = [r for r in tls2.values() if r["dest_port"] == p_mtls and r["tls"]["version"] == "TLS 1.3"]
    assert m13 and "client_cert" not in m13[0]["tls"], "a TLS 1.3 client cert without keys?"

    # subject rule, by the one-line form the tls record prints
    with open(rules, "w") as f:
        f.write("identities:\n  - id: c02\n    name: by subject\n    kind: contractor\n"
                "    credentials:\n      - { client_cert: { subject: \"O=Acme Data, CN=acme-etl\" } }\n")
    recs3 = keywarden(pcap, work, [keys], rules, "subject")
    assert all(r.get("identity", {}).get("id") == "c02"
               for r in recs3 if r["event_type"] == "tls" and r["dest_port"] == p_mtls)

    # a key log others may read is refused, saying how to fix it
    os.chmod(keys, 0o644)
    r = subprocess.run([KW, "run", "-r", pcap, "--tls-keylog", keys, "--eve", w("x.json"), "-q",
                        "--db", w("x.db"), "--user", "root"], capture_output=True, text=True)
    assert r.returncode == 2 and "chmod o-rwx" in r.stderr, (r.returncode, r.stderr)
    os.chmod(keys, 0o600)

    hap = haproxy(work, certs)
    sess = session_bytes(work)
    if not os.environ.get("KW_KEEP"):
        shutil.rmtree(work)
    print(f"ok: {len(tls)} TLS sessions agree with tshark, {n_http} decrypted requests equal "
          f"tshark's, {n_schema} tls records pass Suricata's schema, mTLS attributed; {hap}; {sess}")


def _pcap_sessions(src, dst, srv_port, day0, placements):
    """Rewrites a tcpdump recording (Ethernet on lo, one TLS session per
    client port) so that session i happens at placements[i] seconds after
    day0, keeping each packet's offset within its session: weeks of
    sessions out of one minute of real ones."""
    with open(src, "rb") as f:
        head, body = f.read(24), f.read()
    magic = struct.unpack("<I", head[:4])[0]
    nano = magic == 0xa1b23c4d
    assert magic in (0xa1b2c3d4, 0xa1b23c4d), hex(magic)
    pkts, order, first = [], {}, {}
    off = 0
    while off + 16 <= len(body):
        sec, frac, incl, orig = struct.unpack("<IIII", body[off:off + 16])
        data = body[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(data) < 14 + 20 + 4 or data[12:14] != b"\x08\x00":
            continue
        ihl = (data[14] & 15) * 4
        sport, dport = struct.unpack(">HH", data[14 + ihl:14 + ihl + 4])
        cport = sport if dport == srv_port else dport
        t = sec + frac / (1e9 if nano else 1e6)
        if cport not in first:
            first[cport] = t
        doff = (data[14 + ihl + 12] >> 4) * 4
        if sport == cport and data[14 + ihl + doff:14 + ihl + doff + 1] == b"\x16" \
                and cport not in order:  # a ClientHello: a session
            order[cport] = len(order)
        pkts.append((cport, t, orig, data))
    # connections without a ClientHello (wait_port's probes) are left out
    pkts = [x for x in pkts if x[0] in order]
    order = {c: i for i, c in enumerate(sorted(order, key=lambda c: first[c]))}
    assert len(order) == len(placements), (len(order), len(placements))
    out = []
    for cport, t, orig, data in pkts:
        nt = day0 + placements[order[cport]] + (t - first[cport])
        out.append((nt, orig, data))
    out.sort(key=lambda x: x[0])
    with open(dst, "wb") as f:
        # snaplen as tcpdump -s 0 writes it: lo's 64 KB segments plus their
        # Ethernet header would be cut at 65535
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
        for nt, orig, data in out:
            us = int(round(nt * 1e6))
            f.write(struct.pack("<IIII", us // 1000000, us % 1000000, len(data), orig) + data)
    return len(out)


def session_bytes(work):
    """Bytes per encrypted session (issue 12), on real sessions without
    keys: openssl s_server -WWW and curl, 26 sessions of a 2 KB document
    placed one a day at 10:00 (the identity's learning period), then one
    session that downloads 6 MB, then an ordinary one. Attributed by source
    address to a configured service. Exactly one alert: volume_spike on the
    large session, saying it was encrypted; the ordinary sessions after it
    stay quiet."""
    w = lambda n: os.path.join(work, n)
    os.makedirs(w("www"), exist_ok=True)
    with open(w("www/small.json"), "w") as f:
        f.write(json.dumps({"items": list(range(400))}))
    with open(w("www/big.bin"), "wb") as f:
        f.write(os.urandom(6 << 20))
    port = free_port()
    pcap = w("sess.pcap")

    def record_sessions():
        cap = LoCapture(pcap, [port])
        srv = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}",
                                "-cert", w("srv.crt"), "-key", w("srv.key"), "-WWW", "-quiet"],
                               cwd=w("www"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            base = ["curl", "-s", "-k", "--http1.1", "-o", "/dev/null", "--resolve",
                    f"api.acme.internal:{port}:127.0.0.1"]
            names = ["small.json"] * 26 + ["big.bin", "small.json", "small.json"]
            for n in names:
                run(base + [f"https://api.acme.internal:{port}/{n}"])
        finally:
            srv.terminate()
            ok = cap.stop()
        return ok

    recorded(record_sessions)
    day0 = 1772582400  # Wed 2026-03-04 00:00 UTC
    places = [d * 86400 + 10 * 3600 for d in range(26)]
    places += [26 * 86400 + 10 * 3600, 26 * 86400 + 11 * 3600, 27 * 86400 + 10 * 3600]
    _pcap_sessions(pcap, w("sess-days.pcap"), port, day0, places)
    with open(w("sess-rules.yaml"), "w") as f:
        f.write("identities:\n  - id: c07\n    name: Nightly ETL\n    kind: contractor\n"
                "    sources: [ 127.0.0.1 ]\n")
    with open(w("sess.yaml"), "w") as f:
        f.write(f"rules: {w('sess-rules.yaml')}\nservices:\n  - {{ host: api.acme.internal }}\n")
    eve = w("sess.eve.json")
    r = subprocess.run([KW, "run", "-r", w("sess-days.pcap"), "-c", w("sess.yaml"), "--eve", eve,
                        "-q", "--db", w("sess.db"), "--user", "root"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"keywarden failed ({r.returncode}): {r.stderr}")
    recs = [json.loads(l) for l in open(eve)]
    tls = [x for x in recs if x["event_type"] == "tls"]
    assert len(tls) == len(places), (len(tls), len(places))
    assert all(x.get("identity", {}).get("id") == "c07" for x in tls), "a session not attributed"
    alerts = [x for x in recs if x["event_type"] == "alert" and "update_of" not in x]
    kinds = [(a["alert"]["kind"], a["timestamp"][:10]) for a in alerts]
    assert kinds == [("volume_spike", "2026-03-30")], kinds
    a = alerts[0]
    assert "encrypted TLS session" in a["alert"]["summary"], a["alert"]["summary"]
    got = a["evidence"]["observed"]["bytes"]
    # tshark as the oracle of what the large session moved (IP bytes, as
    # flow records count them; s_server -WWW may stop early, so not 6 MB)
    big = max((x for x in recs if x["event_type"] == "flow"),
              key=lambda x: x["flow"]["bytes_toclient"])
    ip = tshark(w("sess-days.pcap"), None, ["ip.len"], f"tcp.port == {big['src_port']}")
    want = sum(int(x[0]) for x in ip)
    assert got == want and got > 1 << 20, (got, want)
    stats = [x for x in recs if x["event_type"] == "stats"][-1]
    measured = stats["stats"]["pipeline"]["tls_sessions_measured"]
    assert measured == len(places), stats["stats"]["pipeline"]
    return f"bytes per session: {len(places)} sessions measured, the 6 MB one alerted ({got} bytes)"


def haproxy(work, certs):
    """HAProxy (Debian) terminates TLS and writes the key log itself."""
    if not shutil.which("haproxy"):
        return "haproxy missing: its case skipped"
    w = lambda n: os.path.join(work, n)
    with open(w("srv.pem"), "w") as f:
        f.write(open(w("srv.crt")).read() + open(w("srv.key")).read())
    fe, be = free_port(), free_port()
    line = lambda label, fetch: f"{label} %[ssl_fc_client_random,hex] {fetch}"
    fmt = "\\n".join([line("CLIENT_RANDOM", "%[ssl_fc_session_key,hex]"),
                      line("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "%[ssl_fc_client_handshake_traffic_secret]"),
                      line("SERVER_HANDSHAKE_TRAFFIC_SECRET", "%[ssl_fc_server_handshake_traffic_secret]"),
                      line("CLIENT_TRAFFIC_SECRET_0", "%[ssl_fc_client_traffic_secret_0]"),
                      line("SERVER_TRAFFIC_SECRET_0", "%[ssl_fc_server_traffic_secret_0]")])
    with open(w("hap.cfg"), "w") as f:
        f.write(f"""global
    tune.ssl.keylog on
    log stdout format raw local0
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{fe} ssl crt {w('srv.pem')} alpn http/1.1
    log global
    log-format "{fmt}"
    default_backend be
backend be
    server s1 127.0.0.1:{be}
""")
    keys = w("haproxy.keys")
    pcap = w("haproxy.pcap")

    def record_haproxy():
        cap = LoCapture(pcap, [fe])
        back = subprocess.Popen([sys.executable, "-m", "http.server", str(be), "--bind", "127.0.0.1"],
                                cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(keys, "w") as kf:
            os.chmod(keys, 0o600)
            hp = subprocess.Popen(["haproxy", "-f", w("hap.cfg")], stdout=kf, stderr=subprocess.DEVNULL)
            wait_port(fe)
            wait_port(be)
            for a in (["--tlsv1.3"], ["--tls-max", "1.2"]):
                for i in range(3):
                    out = run(["curl", "-s", "-k", "--http1.1"] + a +
                              [f"https://127.0.0.1:{fe}/index.html?n={i}"]).stdout
                    assert out == "hello over tls\n", out
            # HAProxy logs a connection (here: its keys) when it ends: wait
            # for the 6 x 5 lines before stopping it
            end = time.time() + 10
            while time.time() < end and open(keys).read().count("\n") < 30:
                time.sleep(0.1)
            hp.terminate()
            hp.wait()
        back.terminate()
        return cap.stop()

    recorded(record_haproxy, "HAProxy recording")
    recs = keywarden(pcap, work, [keys], None, "haproxy")
    check_tls_records(pcap, recs, certs)
    n = check_http(pcap, keys, recs)
    assert n == 6, n
    return f"HAProxy's own key log: {n} requests decrypted (TLS 1.3 and 1.2), equal to tshark's"


if __name__ == "__main__":
    main()
