#!/usr/bin/env python3
"""The evasion suite against real reverse proxies (issue 15, item 1).

Debian's nginx and Apache httpd run as reverse proxies on 127.0.0.1 (high
ports, temporary configs, in the foreground as this test's children), each
in the two ways deployments write them: nginx `proxy_pass` without a URI
(the client's target forwarded as sent) and with one (nginx's decoded,
normalised URI forwarded), Apache `ProxyPass` (canonicalised) and with
`nocanon` (as sent). Behind them a tiny backend records, for every
request, the raw target and headers it received and what a handler of a
framework that honours the override conventions would run (decode once,
dot segments, `X-HTTP-Method-Override` on POST, `X-Original-URL`).

curl sends the evasion requests (dot segments, encoded dots and slashes,
double encoding, overlong UTF-8, `;params`, case, override headers), one
token each, through every proxy; tcpdump records the client side of the
proxies on lo. keywarden replays it with `backend: generic` and a
deny-only rule (`* /v1/admin/**`, `DELETE /v1/**`).

Checked, per request: when what reached the backend runs a forbidden
method or path, keywarden alerted on that request (its token's identity).
Printed: a table of what each proxy forwarded, what ran, and what
keywarden judged. Nothing here leaves 127.0.0.1.

Needs root (tcpdump), nginx, apache2 and curl: exits 77 (skipped) otherwise.
Usage: e2e_proxies.py KEYWARDEN
"""
import hashlib
import http.server
import json
import os
import posixpath
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from ops.kwtest import LoCapture, free_port, wait_port  # tests/ops/kwtest.py: tcpdump on lo

SKIP = 77
HOST = "api.acme.internal"

# (name, curl arguments, target)
TRICKS = [
    ("plain", [], "/v1/admin/users"),
    ("dots", [], "/v1/orders/../admin/users"),
    ("enc-dots", [], "/v1/orders/%2e%2e/admin/users"),
    ("dbl-enc-dots", [], "/v1/orders/%252e%252e/admin/users"),
    ("enc-slash", [], "/v1/admin%2fusers"),
    ("dbl-enc-slash", [], "/v1/admin%252fusers"),
    ("double-slash", [], "//v1//admin/users"),
    ("matrix", [], "/v1/admin;x=1/users"),
    ("matrix-dots", [], "/v1/orders/..;/admin/users"),
    ("overlong", [], "/v1/orders/%c0%ae%c0%ae/admin/users"),
    ("case", [], "/V1/ADMIN/users"),
    ("method-override", ["-X", "POST", "--data", "{}", "-H", "X-HTTP-Method-Override: DELETE"],
     "/v1/orders"),
    ("original-url", ["-H", "X-Original-URL: /v1/admin/users"], "/v1/orders"),
    ("benign", [], "/v1/orders/7"),
]


class Recorder(http.server.BaseHTTPRequestHandler):
    """The backend: records what reached it and what its handler runs."""
    protocol_version = "HTTP/1.1"
    seen = {}  # token -> (raw target, method run, path run)

    def handle_any(self):
        raw = self.path
        method = self.command
        path = urllib.parse.urlsplit(raw).path
        if method == "POST" and self.headers.get("X-HTTP-Method-Override"):
            method = self.headers["X-HTTP-Method-Override"].upper()
        if self.headers.get("X-Original-URL"):
            path = urllib.parse.urlsplit(self.headers["X-Original-URL"]).path
        run = posixpath.normpath(urllib.parse.unquote(path))
        run = "/" + run.lstrip("/") if run != "." else "/"
        auth = self.headers.get("Authorization", "")
        Recorder.seen[auth.split(" ")[-1]] = (raw, method, run)
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = b'{"ok":true}\n'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = do_PUT = handle_any

    def log_message(self, *a):
        pass


def start_nginx(work, backend, ports):
    """Two servers: proxy_pass without a URI (as sent), with one (normalised)."""
    d = os.path.join(work, "nginx")
    os.makedirs(os.path.join(d, "logs"))
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""pid %(d)s/nginx.pid;
error_log %(d)s/logs/error.log;
worker_processes 1;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %(d)s/body; proxy_temp_path %(d)s/proxy;
  fastcgi_temp_path %(d)s/fcgi; uwsgi_temp_path %(d)s/uwsgi; scgi_temp_path %(d)s/scgi;
  server { listen 127.0.0.1:%(a)d; location / { proxy_pass http://127.0.0.1:%(b)d; } }
  server { listen 127.0.0.1:%(u)d; location / { proxy_pass http://127.0.0.1:%(b)d/; } }
}
""" % {"d": d, "a": ports[0], "u": ports[1], "b": backend})
    p = subprocess.Popen(["nginx", "-p", d, "-c", conf, "-g", "daemon off;"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for port in ports:
        wait_port(port, p, "nginx")
    return p


def start_apache(work, backend, ports):
    """Two virtual hosts: ProxyPass (canonicalised) and with nocanon."""
    d = os.path.join(work, "apache")
    os.makedirs(d)
    conf = os.path.join(d, "httpd.conf")
    mods = "/usr/lib/apache2/modules"
    with open(conf, "w") as f:
        f.write("""ServerRoot %(d)s
LoadModule mpm_event_module %(m)s/mod_mpm_event.so
LoadModule authz_core_module %(m)s/mod_authz_core.so
LoadModule proxy_module %(m)s/mod_proxy.so
LoadModule proxy_http_module %(m)s/mod_proxy_http.so
ServerName 127.0.0.1
PidFile %(d)s/httpd.pid
ErrorLog %(d)s/error.log
Mutex file:%(d)s default
DefaultRuntimeDir %(d)s
User www-data
Group www-data
StartServers 1
ServerLimit 1
ThreadsPerChild 8
MaxRequestWorkers 8
Listen 127.0.0.1:%(a)d
Listen 127.0.0.1:%(n)d
<VirtualHost 127.0.0.1:%(a)d>
  ProxyPass "/" "http://127.0.0.1:%(b)d/"
</VirtualHost>
<VirtualHost 127.0.0.1:%(n)d>
  AllowEncodedSlashes NoDecode
  ProxyPass "/" "http://127.0.0.1:%(b)d/" nocanon
</VirtualHost>
""" % {"d": d, "m": mods, "a": ports[0], "n": ports[1], "b": backend})
    os.chmod(d, 0o755)
    p = subprocess.Popen(["apache2", "-f", conf, "-DFOREGROUND"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for port in ports:
        wait_port(port, p, "apache2")
    return p


def token(proxy, trick):
    return "kw-proxy-%s-%s" % (proxy, trick)


def send(port, proxy, trick, args, target):
    r = subprocess.run(["curl", "-sS", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}",
                        "--max-time", "5", "-H", "Host: " + HOST, "-H",
                        "Authorization: Bearer " + token(proxy, trick)] + args +
                       ["http://127.0.0.1:%d%s" % (port, target)],
                       capture_output=True, text=True)
    return r.stdout.strip() or "-"


def forbidden(method, path):
    return path == "/v1/admin" or path.startswith("/v1/admin/") or \
        (method == "DELETE" and path.startswith("/v1/"))


def main():
    kw = sys.argv[1]
    if os.geteuid() != 0:
        print("skipped: needs root for tcpdump on lo")
        return SKIP
    for tool in ("tcpdump", "curl", "nginx", "apache2"):
        if not shutil.which(tool):
            print("skipped: %s not installed (scripts/setup.sh installs it)" % tool)
            return SKIP
    work = tempfile.mkdtemp(prefix="kw-e2e-proxies-")
    os.chmod(work, 0o755)
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    b = api.server_address[1]
    procs = []
    try:
        proxies = {}
        np = [free_port(), free_port()]
        procs.append(start_nginx(work, b, np))
        proxies["nginx"], proxies["nginx-uri"] = np
        ap = [free_port(), free_port()]
        procs.append(start_apache(work, b, ap))
        proxies["apache"], proxies["apache-nocanon"] = ap
        pcap = os.path.join(work, "proxies.pcap")
        cap = LoCapture(pcap, list(proxies.values()))
        status = {}
        for proxy, port in proxies.items():
            for name, args, target in TRICKS:
                status[(proxy, name)] = send(port, proxy, name, args, target)
        if not cap.stop():
            raise SystemExit("FAIL: tcpdump ended early")
        return check(kw, work, pcap, proxies, status)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        api.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def replay(kw, work, pcap, proxies, services):
    """Alert kinds per identity, and (method, path, flags) as judged."""
    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as f:
        f.write("identities:\n")
        for proxy in proxies:
            for name, _, _ in TRICKS:
                t = token(proxy, name)
                f.write("  - id: %s\n    credentials: [ { sha256: \"%s\" } ]\n"
                        "    deny: [ \"* /v1/admin/**\", \"DELETE /v1/**\" ]\n" %
                        (t, hashlib.sha256(t.encode()).hexdigest()))
    cfg = os.path.join(work, "kw.yaml")
    with open(cfg, "w") as f:
        f.write("services:\n" + "".join("  - { host: \"%s\", backend: %s }\n" % hb
                                        for hb in services))
    eve = os.path.join(work, "eve.json")
    if os.path.exists(eve):
        os.unlink(eve)
    db = os.path.join(work, "kw.db")
    if os.path.exists(db):
        os.unlink(db)
    r = subprocess.run([kw, "run", "-c", cfg, "-r", pcap, "--rules", rules, "--db", db,
                        "--eve", eve, "--user", "root", "--no-progress", "-q"],
                       capture_output=True, timeout=120)
    if r.returncode not in (0, 1):
        raise SystemExit("FAIL: run exited %d: %s" %
                         (r.returncode, r.stderr.decode("utf-8", "replace")))
    recs = [json.loads(l) for l in open(eve) if l.strip()]
    alerted = {}
    for x in recs:
        if x.get("event_type") == "alert":
            alerted.setdefault(x.get("identity", {}).get("id"), []).append(x["alert"]["kind"])
    judged = {}
    for x in recs:
        if x.get("event_type") == "http" and x.get("identity"):
            h = x["http"]
            judged[x["identity"]["id"]] = (h.get("effective_method") or h.get("http_method"),
                                           h.get("effective_path") or h.get("path"),
                                           ",".join(h.get("flags", [])))
    return alerted, judged


def check(kw, work, pcap, proxies, status):
    alerted, judged = replay(kw, work, pcap, proxies, [(HOST, "generic")])
    fails, rows = [], []
    caught = missed = 0
    for proxy in proxies:
        for name, _, target in TRICKS:
            t = token(proxy, name)
            got = Recorder.seen.get(t)
            ran = "%s %s" % (got[1], got[2]) if got else "(not forwarded: %s)" % status[(proxy, name)]
            bad = bool(got) and forbidden(got[1], got[2])
            kinds = alerted.get(t, [])
            j = judged.get(t)
            rows.append("%-15s %-16s %-38s %-30s %-5s %s" % (
                proxy, name, got[0] if got else "-", ran, "FORB" if bad else "",
                ("alert " + ",".join(sorted(set(kinds)))) if kinds else
                ("judged %s %s [%s]" % j if j else "no record")))
            if bad and not kinds:
                missed += 1
                fails.append("%s %s: the backend ran %s, keywarden did not alert (%s)" %
                             (proxy, name, ran, j))
            elif bad:
                caught += 1
    print("%-15s %-16s %-38s %-30s %-5s %s" % ("proxy", "trick", "backend received", "ran",
                                               "", "keywarden (generic)"))
    print("\n".join(rows))
    print("forbidden at the backend: %d, alerted: %d, missed: %d" % (caught + missed, caught,
                                                                      missed))
    if not caught:
        fails.append("no forbidden request reached the backend: the suite proves nothing")
    # The same capture judged as if the proxy were the backend (its own
    # personality per port): what the app behind honours is then missed.
    # This is why a service names the framework that runs the handler.
    services = [("%s:%d" % (HOST, port), proxy.split("-")[0]) for proxy, port in proxies.items()]
    alerted, _ = replay(kw, work, pcap, proxies, services)
    missed_as = []
    for proxy in proxies:
        for name, _, _ in TRICKS:
            got = Recorder.seen.get(token(proxy, name))
            if got and forbidden(got[1], got[2]) and not alerted.get(token(proxy, name)):
                missed_as.append("%s/%s" % (proxy, name))
    print("judged as backend nginx/apache instead: missed %d: %s" %
          (len(missed_as), " ".join(missed_as)))
    if sorted({m.split("/")[1] for m in missed_as}) != ["method-override", "original-url"]:
        fails.append("as nginx/apache, want exactly the override tricks missed, got %s" %
                     missed_as)
    if fails:
        print("FAIL:\n  " + "\n  ".join(fails))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
