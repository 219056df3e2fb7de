#!/usr/bin/env python3
"""Backend personalities on the wire (issue 15, item 1).

curl on 127.0.0.1 sends, with a contractor's token, requests whose wire
method and path a deny-only rule allows but which a backend may run as
something else: POST with X-HTTP-Method-Override: DELETE, POST with
?_method=DELETE, GET with X-Original-URL naming an admin path, and a path
whose %252e%252e a second decode turns into '..'. The backend is a small
HTTP server that behaves like the frameworks the override conventions come
from (Express's method-override and ASP.NET Core's UseHttpMethodOverride
honour X-HTTP-Method-Override on POST; Rails/Laravel/Express a _method
key; IIS URL Rewrite routes by X-Original-URL) and records what its
handler ran, so the test shows the trick works against it. tcpdump records
lo; keywarden replays the capture twice:

  generic (the default): every override is judged as a second
    reading: three method_override alerts (the two DELETEs and the admin
    path), none for the benign request; the double-encoded path is flagged
    on its record, not alerted (generic decodes once).
  backend: express: the two DELETEs alert with "express runs it as DELETE
    /v1/orders", X-Original-URL is flagged and not alerted (Express does not
    route by it).

The same two overrides over HTTP/2 (curl by prior knowledge to nghttpd)
alert too. Every http record carries the flags and the override fields, the same
with two packet workers (records cross the worker->judge rings packed).

Needs root (tcpdump): exits 77 (skipped) otherwise.
Usage: e2e_persona.py KEYWARDEN
"""
import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from ops.kwtest import LoCapture, free_port  # tests/ops/kwtest.py: tcpdump on lo

SKIP = 77
TOKEN = "kw-e2e-persona-bearer-0123456789abcdef"
TOKEN2 = "kw-e2e-persona-h2-bearer-0123456789abcdef"  # the HTTP/2 requests
HOST = "api.acme.internal"


class Backend(http.server.BaseHTTPRequestHandler):
    """Runs a handler for the request as an override-honouring framework
    would, and remembers (method, path) per request."""
    protocol_version = "HTTP/1.1"
    ran = []

    def handle_any(self):
        method, path = self.command, urllib.parse.urlsplit(self.path).path
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if method == "POST" and self.headers.get("X-HTTP-Method-Override"):
            method = self.headers["X-HTTP-Method-Override"].upper()
        elif method == "POST" and q.get("_method"):
            method = q["_method"][0].upper()
        if self.headers.get("X-Original-URL"):
            path = urllib.parse.urlsplit(self.headers["X-Original-URL"]).path
        Backend.ran.append((method, urllib.parse.unquote(urllib.parse.unquote(path))))
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = b'{"ok":true}\n'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = handle_any

    def log_message(self, *a):
        pass


# (curl arguments after the URL path, what the backend's handler runs)
REQUESTS = [
    (["-X", "POST", "-H", "X-HTTP-Method-Override: DELETE", "--data", "{}"], "/v1/orders"),
    (["-X", "POST", "--data", "{}"], "/v1/orders?_method=DELETE"),
    (["-H", "X-Original-URL: /v1/admin/users"], "/v1/orders"),
    (["--path-as-is"], "/v1/orders/%252e%252e/admin/users"),
    ([], "/v1/orders/7"),
]


def record(work, port, h2port):
    pcap = os.path.join(work, "persona.pcap")
    cap = LoCapture(pcap, [port, h2port])
    for args, path in REQUESTS:
        subprocess.run(["curl", "-sS", "-o", "/dev/null", "--max-time", "5", "-H", "Host: " + HOST,
                        "-H", "Authorization: Bearer " + TOKEN] + args +
                       ["http://127.0.0.1:%d%s" % (port, path)], check=True)
    # HTTP/2 (prior knowledge) to nghttpd: the same overrides as h2 headers
    for args, path in REQUESTS[0:1] + REQUESTS[2:3]:
        subprocess.run(["curl", "-sS", "-o", "/dev/null", "--max-time", "5", "--http2-prior-knowledge",
                        "-H", "Host: " + HOST, "-H", "Authorization: Bearer " + TOKEN2] + args +
                       ["http://127.0.0.1:%d%s" % (h2port, path)], check=True)
    return pcap if cap.stop() else None


def replay(kw, work, pcap, backend, extra=(), who="c02"):
    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as f:
        f.write("identities:\n")
        for ident, tok in (("c02", TOKEN), ("c03", TOKEN2)):
            f.write("  - id: %s\n    name: Beta\n    credentials:\n"
                    "      - { sha256: \"%s\" }\n"
                    "    deny: [ \"* /v1/admin/**\", \"DELETE /v1/**\" ]\n" %
                    (ident, hashlib.sha256(tok.encode()).hexdigest()))
    cfg = os.path.join(work, "kw-%s.yaml" % backend)
    with open(cfg, "w") as f:
        f.write("services:\n  - { host: %s, backend: %s }\n" % (HOST, backend))
    tag = backend + "".join(extra) + who
    eve = os.path.join(work, "eve-%s.json" % tag)
    cmd = [kw, "run", "-c", cfg, "-r", pcap, "--rules", rules, "--db",
           os.path.join(work, "kw-%s.db" % tag), "--eve", eve, "--user", "root",
           "--no-progress"] + list(extra)
    r = subprocess.run(cmd, capture_output=True, timeout=120)
    if r.returncode not in (0, 1):
        raise SystemExit("FAIL: run (%s) exited %d: %s" %
                         (backend, r.returncode, r.stderr.decode("utf-8", "replace")))
    recs = [json.loads(l) for l in open(eve) if l.strip()]
    http = [x["http"] for x in recs if x.get("event_type") == "http" and
            x.get("identity", {}).get("id") == who]
    alerts = [x["alert"] for x in recs if x.get("event_type") == "alert" and
              x.get("identity", {}).get("id") == who]
    return http, alerts


def fresh(alerts, kind=None):
    """Alerts as first raised, not the 'N more' updates of an open one."""
    return [a for a in alerts if not re.match(r"\d+ more ", a["summary"]) and
            (kind is None or a["kind"] == kind)]


def repeated(alerts, n):
    return any(a["kind"] == "method_override" and "(%d in all)" % n in a["summary"]
               for a in alerts)


def main():
    kw = sys.argv[1]
    if os.geteuid() != 0:
        print("skipped: needs root for tcpdump on lo")
        return SKIP
    for tool in ("tcpdump", "curl", "nghttpd"):
        if not shutil.which(tool):
            print("skipped: %s not installed" % tool)
            return SKIP
    work = tempfile.mkdtemp(prefix="kw-e2e-persona-")
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    h2port = free_port()
    www = os.path.join(work, "www")
    os.makedirs(www)
    h2 = subprocess.Popen(["nghttpd", "--no-tls", "-d", www, str(h2port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", h2port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        for attempt in range(3):
            Backend.ran = []
            pcap = record(work, api.server_address[1], h2port)
            if pcap:
                break
            print("note: tcpdump ended early (attempt %d); recording again" % (attempt + 1))
        else:
            raise SystemExit("tcpdump kept dying: no complete recording")
        return check(kw, work, pcap)
    finally:
        h2.terminate()
        h2.wait()
        api.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def check(kw, work, pcap):
    fails = []
    print("the backend ran:", Backend.ran)
    want_ran = [("DELETE", "/v1/orders"), ("DELETE", "/v1/orders"), ("GET", "/v1/admin/users"),
                ("GET", "/v1/admin/users"), ("GET", "/v1/orders/7")]
    if [(m, os.path.normpath(p)) for m, p in Backend.ran] != want_ran:
        fails.append("the backend did not run what the tricks ask for: %s" % Backend.ran)

    http, alerts = replay(kw, work, pcap, "generic")
    by_url = {(h.get("http_method"), h.get("url")): h for h in http}
    if len(http) != len(REQUESTS):
        fails.append("generic: %d http records, want %d" % (len(http), len(REQUESTS)))
    exp = {
        ("POST", "/v1/orders"): ("method_override", "DELETE", None),
        ("POST", "/v1/orders?_method=DELETE"): ("method_override", "DELETE", None),
        ("GET", "/v1/orders/%252e%252e/admin/users"): ("path_double_encoded", None, None),
    }
    for url, (flag, em, ep) in exp.items():
        h = by_url.get(url)
        if not h or flag not in h.get("flags", []) or h.get("effective_method") != em:
            fails.append("generic: record of %s lacks %s / effective_method %s: %s" %
                         (url, flag, em, h))
    ou = [h for h in http if "url_override" in h.get("flags", [])]
    if len(ou) != 1 or ou[0].get("url_override", {}).get("url") != "/v1/admin/users" or \
            ou[0].get("effective_path") != "/v1/admin/users" or \
            ou[0]["url_override"].get("from") != "X-Original-URL":
        fails.append("generic: X-Original-URL record wrong: %s" % ou)
    mo = fresh(alerts, "method_override")
    print("generic: %d alert records (%s)" % (len(alerts), ", ".join(a["kind"] for a in alerts)))
    for a in alerts:
        print("  ", a["summary"])
    # the second DELETE repeats the first (same subject): one alert and its
    # "1 more ... (2 in all)" update, as for any repeated finding
    if len(mo) != 2 or len(fresh(alerts)) != 2 or not repeated(alerts, 2):
        fails.append("generic: want 2 method_override alerts, the DELETE one twice, got %s" %
                     [(a["kind"], a["summary"]) for a in alerts])
    if not any("with X-HTTP-Method-Override: DELETE; a backend that honours it runs DELETE "
               "/v1/orders" in a["summary"] for a in mo):
        fails.append("generic: no alert naming X-HTTP-Method-Override")
    if not any("X-Original-URL: /v1/admin/users" in a["summary"] for a in mo):
        fails.append("generic: no alert naming X-Original-URL")

    # two packet workers: the records cross the worker->judge rings packed
    # (kw_txn_pack); the overrides and what they ask must survive that
    http2, alerts2 = replay(kw, work, pcap, "generic", ("--workers", "2"))
    keys = ("http_method", "url", "effective_method", "effective_path", "method_override",
            "url_override", "flags")
    one = sorted(json.dumps([h.get(k) for k in keys]) for h in http)
    two = sorted(json.dumps([h.get(k) for k in keys]) for h in http2)
    if one != two or sorted(a["summary"] for a in fresh(alerts)) != \
            sorted(a["summary"] for a in fresh(alerts2)):
        fails.append("generic with 2 workers differs from 1 worker")

    # HTTP/2: the same override headers, as h2 header fields
    h2http, h2alerts = replay(kw, work, pcap, "generic", who="c03")
    print("HTTP/2 generic: %s" % [a["summary"] for a in h2alerts])
    if len(h2http) != 2 or any(h.get("protocol") != "HTTP/2" for h in h2http) or \
            sorted(f for h in h2http for f in h["flags"] if f.endswith("_override")) != \
            ["method_override", "url_override"] or len(fresh(h2alerts, "method_override")) != 2:
        fails.append("HTTP/2: want 2 records flagged method_override/url_override and 2 alerts: "
                     "%s %s" % (h2http, h2alerts))

    http, alerts = replay(kw, work, pcap, "express")
    print("express: %d alerts (%s)" % (len(alerts), ", ".join(a["kind"] for a in alerts)))
    for a in alerts:
        print("  ", a["summary"])
    runs = [a for a in fresh(alerts, "method_override")
            if "express runs it as DELETE /v1/orders" in a["summary"]]
    if len(runs) != 1 or len(fresh(alerts)) != 1 or not repeated(alerts, 2):
        fails.append("express: want the DELETE alert (twice) only, got %s" %
                     [(a["kind"], a["summary"]) for a in alerts])
    ou = [h for h in http if "url_override" in h.get("flags", [])]
    if len(ou) != 1 or "effective_path" in ou[0]:
        fails.append("express: X-Original-URL must be flagged, not followed: %s" % ou)
    if fails:
        print("FAIL:\n  " + "\n  ".join(fails))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
