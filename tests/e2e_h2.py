#!/usr/bin/env python3
"""e2e_h2: keywarden on real HTTP/2 recorded on loopback, tshark as the oracle.

Servers and clients nobody here wrote, each recorded by tcpdump on lo:
- nghttpd (nghttp2-server) and nghttp (nghttp2-client) by prior knowledge:
  several streams at once, a server push (PUSH_PROMISE), padding on both
  sides, a request header too large for one frame (HEADERS + CONTINUATION),
  a POST with a body, a Bearer token;
- curl --http2-prior-knowledge: GET, POST, a 404, Basic credentials;
- curl --http2 through nghttpx (nghttp2-proxy): an `Upgrade: h2c` exchange,
  the HTTP/1.1 request becoming stream 1;
- curl over TLS with ALPN h2 to nghttpd with a key log (SSLKEYLOGFILE);
- a gRPC service and client (python3-grpcio): unary and streaming calls,
  statuses OK, UNAUTHENTICATED and PERMISSION_DENIED.

For each: every request tshark decodes is one keywarden `http` record with
the same client port, stream id, method, host, path and status, and nothing
is invented (h2_oracle.py); credentials are attributed to the identities
that claim them; no raw secret reaches any file keywarden writes.

`--save DIR` also copies each capture (and its key log) with its meta file
into DIR: that is how tests/data/h2 was made.

Needs root (tcpdump on lo); exits 77 (skipped) otherwise or when a tool is
missing.
"""
import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2_oracle  # noqa: E402
from ops.kwtest import LoCapture, free_port, recorded, wait_port  # noqa: E402  (tests/ops/kwtest.py)

KW = sys.argv[1]
SAVE = sys.argv[sys.argv.index("--save") + 1] if "--save" in sys.argv else None
TOKEN = "kw_h2_e2e_token_7d1f0c9a3b5e4d2c8f6a"
BASIC = ("acme-h2", "s3cret-h2-pass")
GRPC_TOKEN = "kw_grpc_e2e_token_91b2c3d4e5f60718"


def skip(why):
    print("SKIP:", why)
    sys.exit(77)


def run(cmd, **kw):
    kw.setdefault("text", True)
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


class Servers:
    """Processes started by a scenario; all stopped, by pid, at the end."""

    def __init__(self):
        self.procs = []

    def start(self, cmd, **kw):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def www(work):
    d = os.path.join(work, "www")
    os.makedirs(os.path.join(d, "v1", "orders"), exist_ok=True)
    files = {"index.html": b"hello h2\n", "style.css": b"body{}\n",
             "v1/orders/42": b'{"id":42}\n', "v1/orders/index.html": b"[]\n",
             "big.bin": os.urandom(70000)}
    for n, b in files.items():
        with open(os.path.join(d, n), "wb") as f:
            f.write(b)
    with open(os.path.join(work, "post.json"), "wb") as f:
        f.write(b'{"item":"widget","qty":3}' * 40)
    return d


# ---- scenarios: each records one capture, returns its meta ----------------

def sc_nghttp(work, pcap, srv):
    port = free_port()
    cap = LoCapture(pcap, [port])
    try:
        srv.start(["nghttpd", "--no-tls", "-d", www(work), "-b", "7",
                   "-p", "/index.html=/style.css", str(port)])
        wait_port(port)
        base = f"http://127.0.0.1:{port}"
        auth = ["-H", f"authorization: Bearer {TOKEN}"]
        run(["nghttp", "-n", "-m", "2", "-b", "5"] + auth +
            [f"{base}/index.html", f"{base}/v1/orders/42", f"{base}/big.bin", f"{base}/nope"])
        run(["nghttp", "-n", "-d", os.path.join(work, "post.json")] + auth + [f"{base}/v1/orders/"])
        big = base64.b64encode(os.urandom(24000)).decode()
        run(["nghttp", "-n", "-H", f"x-big: {big}"] + auth + [f"{base}/index.html"])
    finally:
        srv.stop()
        ok = cap.stop()
    return ok and {"ports": [port], "min_requests": 8, "bearer": True}


def sc_curl(work, pcap, srv):
    port = free_port()
    cap = LoCapture(pcap, [port])
    try:
        srv.start(["nghttpd", "--no-tls", "-d", www(work), str(port)])
        wait_port(port)
        base = f"http://127.0.0.1:{port}"
        c = ["curl", "-s", "-o", "/dev/null", "--http2-prior-knowledge"]
        run(c + ["-H", f"Authorization: Bearer {TOKEN}", f"{base}/v1/orders/42"])
        run(c + ["-H", f"Authorization: Bearer {TOKEN}", "--data-binary",
                 "@" + os.path.join(work, "post.json"), f"{base}/v1/orders/index.html"])
        run(c + ["-u", ":".join(BASIC), f"{base}/missing"])
        run(c + ["-u", ":".join(BASIC), f"{base}/big.bin"])
    finally:
        srv.stop()
        ok = cap.stop()
    return ok and {"ports": [port], "min_requests": 4, "bearer": True, "basic": True}


def sc_h2c(work, pcap, srv):
    port, backend = free_port(), free_port()
    cap = LoCapture(pcap, [port])
    try:
        srv.start([sys.executable, "-m", "http.server", str(backend), "--bind", "127.0.0.1",
                   "-d", www(work)])
        srv.start(["nghttpx", "-f", f"127.0.0.1,{port};no-tls", "-b", f"127.0.0.1,{backend}",
                   "--conf=/dev/null", "--errorlog-file=/dev/null", "--accesslog-file=/dev/null",
                   "--workers=1"])
        wait_port(backend)
        wait_port(port)
        base = f"http://127.0.0.1:{port}"
        c = ["curl", "-s", "-o", "/dev/null", "--http2", "-H", f"Authorization: Bearer {TOKEN}"]
        run(c + [f"{base}/index.html"])
        run(c + [f"{base}/v1/orders/42", f"{base}/style.css"])
    finally:
        srv.stop()
        ok = cap.stop()
    return ok and {"ports": [port], "min_requests": 3, "bearer": True, "h2c": 2,
                  "decode_as": "http"}


def sc_tls(work, pcap, srv):
    """curl over TLS, ALPN h2, to nghttpd; curl writes the key log."""
    port = free_port()
    key, crt, keys = (os.path.join(work, n) for n in ("srv.key", "srv.crt", "tls.keys"))
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-keyout", key, "-out", crt, "-subj", "/CN=api.acme.internal",
         "-addext", "subjectAltName=DNS:api.acme.internal"])
    if os.path.exists(keys):
        os.unlink(keys)
    cap = LoCapture(pcap, [port])
    try:
        srv.start(["nghttpd", "-d", www(work), str(port), key, crt])
        wait_port(port)
        env = dict(os.environ, SSLKEYLOGFILE=keys)
        base = f"https://api.acme.internal:{port}"
        c = ["curl", "-s", "-k", "-o", "/dev/null", "--http2", "--resolve",
             f"api.acme.internal:{port}:127.0.0.1", "-H", f"Authorization: Bearer {TOKEN}"]
        run(c + [f"{base}/v1/orders/42"], env=env)
        run(c + ["--data-binary", "@" + os.path.join(work, "post.json"),
                 f"{base}/v1/orders/index.html"], env=env)
        run(c + ["--tlsv1.2", "--tls-max", "1.2", f"{base}/index.html"], env=env)
    finally:
        srv.stop()
        ok = cap.stop()
    os.chmod(keys, 0o600)
    return ok and {"ports": [port], "min_requests": 3, "bearer": True, "keylog_path": keys,
                   "decode_as": "tls", "tls": True}


def sc_grpc(work, pcap, srv):
    """python3-grpcio service and client: unary and streaming calls, a
    wrong token (UNAUTHENTICATED) and a forbidden method
    (PERMISSION_DENIED)."""
    port = free_port()
    peer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "h2_grpc_peer.py")
    cap = LoCapture(pcap, [port])
    try:
        s = srv.start(["/usr/bin/python3", peer, "server", str(port), GRPC_TOKEN])
        wait_port(port)
        out = run(["/usr/bin/python3", peer, "client", str(port), GRPC_TOKEN]).stdout.split()
        assert out == ["0", "0", "0", "0", "16", "16", "16", "7"], out
        assert s.poll() is None
    finally:
        srv.stop()
        ok = cap.stop()
    return ok and {"ports": [port], "min_requests": 8, "grpc_statuses": [0, 16, 7], "grpc": True}


SCENARIOS = [("nghttp", sc_nghttp), ("curl", sc_curl), ("h2c", sc_h2c), ("tls", sc_tls),
             ("grpc", sc_grpc)]
NEEDS = {"h2c": ("nghttpx", None), "tls": ("openssl", None), "grpc": (None, "grpc")}


def rules_file(work):
    fp = hashlib.sha256(TOKEN.encode()).hexdigest()
    gfp = hashlib.sha256(GRPC_TOKEN.encode()).hexdigest()
    path = os.path.join(work, "rules.yaml")
    with open(path, "w") as f:
        f.write("identities:\n"
                "  - id: c01\n    name: Acme Data Ltd\n    kind: contractor\n"
                f"    credentials:\n      - {{ sha256: \"{fp}\" }}\n"
                "  - id: c02\n    name: Acme Basic\n    kind: contractor\n"
                f"    credentials:\n      - {{ basic_user: \"{BASIC[0]}\" }}\n"
                "  - id: c03\n    name: Acme gRPC\n    kind: contractor\n"
                f"    credentials:\n      - {{ sha256: \"{gfp}\" }}\n"
                "    scope: [ \"POST /acme.orders.v1.Orders/*\" ]\n"
                "    deny: [ \"* /acme.orders.v1.Orders/DeleteAll\" ]\n"
                "detections:\n  failed_auth: { count: 3, window: 2m }\n")
    return path


def check_run(name, meta, pcap, work, rules):
    keylog = meta.get("keylog_path")
    want = h2_oracle.tshark_requests(pcap, meta["ports"], keylog, meta.get("decode_as", "http2"))
    recs = h2_oracle.keywarden_records(KW, pcap, work, name, keylog, rules)
    n = h2_oracle.compare(recs, want, name)
    assert n >= meta["min_requests"], f"{name}: {n} requests, expected >= {meta['min_requests']}"
    http = [r for r in recs if r["event_type"] == "http"]
    who = {r.get("identity", {}).get("id") for r in http if r.get("credential")}
    stats = [r for r in recs if r["event_type"] == "stats"][-1]["stats"]
    if meta.get("bearer"):
        assert "c01" in who, f"{name}: bearer not attributed: {who}"
    if meta.get("basic"):
        assert "c02" in who, f"{name}: basic not attributed: {who}"
    if meta.get("grpc"):
        calls = [r["http"] for r in http if "grpc" in r["http"]]
        assert len(calls) == 8 and all("grpc" in h["flags"] for h in calls), calls
        got = sorted(h["grpc"].get("status") for h in calls)
        assert got == [0, 0, 0, 0, 7, 16, 16, 16], got
        assert "c03" in who, f"{name}: gRPC bearer not attributed: {who}"
        kinds = [(a["alert"]["kind"], a.get("http", {}).get("path")) for a in recs
                 if a["event_type"] == "alert"]
        # the wrong token's UNAUTHENTICATED answers (HTTP 200) are refusals
        assert any(k == "failed_auth_burst" for k, _ in kinds), kinds
        # scope patterns match gRPC paths as they are
        assert ("out_of_scope", "/acme.orders.v1.Orders/DeleteAll") in kinds, kinds
        assert not any(k == "out_of_scope" and p != "/acme.orders.v1.Orders/DeleteAll"
                       for k, p in kinds), kinds
    if meta.get("tls"):
        assert all("tls" in r["http"]["flags"] for r in http), "a request not marked tls"
        assert stats["http2"]["transactions"] >= meta["min_requests"]
    if meta.get("h2c"):
        up = [r for r in http if r["http"].get("http2", {}).get("stream_id") == 1]
        assert len(up) == meta["h2c"], f"{name}: {len(up)} upgraded stream-1 requests"
    assert stats["pipeline"]["h2_flows"] >= 1, stats["pipeline"]
    h2s = stats["http2"]
    for k in ("protocol_errors", "hpack_errors", "hpack_broken", "headers_undecodable"):
        assert h2s[k] == 0, f"{name}: {k} = {h2s[k]}"
    # no secret at rest: not in the EVE file, not in the database
    for f in os.listdir(work):
        if (f.startswith(name + ".") and not f.endswith((".pcap", ".keys"))
                and os.path.isfile(os.path.join(work, f))):
            with open(os.path.join(work, f), "rb") as fh:
                data = fh.read()
            for secret in (TOKEN, BASIC[1], GRPC_TOKEN):
                assert secret.encode() not in data, f"{name}: secret in {f}"
    return n, recs, h2s


def main():
    if os.geteuid() != 0:
        skip("needs root for tcpdump on lo")
    for tool in ("tcpdump", "tshark", "nghttpd", "nghttp", "curl"):
        if not shutil.which(tool):
            skip(f"{tool} missing")
    work = tempfile.mkdtemp(prefix="kw_e2e_h2_")
    os.chmod(work, 0o755)
    rules = rules_file(work)
    total = 0
    for name, fn in SCENARIOS:
        tool, module = NEEDS.get(name, (None, None))
        if tool and not shutil.which(tool):
            print(f"note: {tool} missing: {name} scenario skipped")
            continue
        if module and subprocess.run(["/usr/bin/python3", "-c", f"import {module}"],
                                     capture_output=True).returncode:
            print(f"note: python3 {module} missing (python3-grpcio): {name} scenario skipped")
            continue
        pcap = os.path.join(work, f"{name}.pcap")
        meta = recorded(lambda: fn(work, pcap, Servers()), name)
        n, recs, h2s = check_run(name, meta, pcap, work, rules)
        if name == "nghttp":
            assert h2s["pushes"] >= 1 and h2s["continuations"] >= 1, h2s
        print(f"{name}: {n} requests agree with tshark")
        total += n
        if SAVE:
            os.makedirs(SAVE, exist_ok=True)
            shutil.copy(pcap, os.path.join(SAVE, f"h2-{name}.pcap"))
            m = {k: v for k, v in meta.items() if k in ("ports", "min_requests", "grpc_statuses",
                                                       "decode_as")}
            if meta.get("keylog_path"):
                shutil.copy(meta["keylog_path"], os.path.join(SAVE, f"h2-{name}.keys"))
                m["keylog"] = f"h2-{name}.keys"
            with open(os.path.join(SAVE, f"h2-{name}.json"), "w") as f:
                json.dump(m, f, indent=1)
                f.write("\n")
    print(f"e2e_h2: {total} HTTP/2 requests agree with tshark")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
