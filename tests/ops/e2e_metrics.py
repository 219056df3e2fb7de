#!/usr/bin/env python3
"""Metrics (issue 14): `outputs.metrics` serves Prometheus text exposition.

keywarden runs live on lo with a rules file (one identity whose scope
denies /admin), a webhook sink that answers 410 (gone: failed for good)
and one that is not listening (retried); a real HTTP server and client on
127.0.0.1 make 3 attributed requests, 1 with an unknown key and 1 denied
one. Then the real Prometheus server (Debian `prometheus`), started here
with a temporary config, scrapes 127.0.0.1 every second, and its HTTP API
must return our series with the values the traffic implies; a SIGHUP shows
as a rules reload. `promtool check metrics` lints a scrape, and every
metric name served is documented in docs/metrics.md.

Needs root (capture on lo); exit 77 = skipped otherwise, or without
prometheus/promtool.
Usage: e2e_metrics.py KEYWARDEN DOCS_METRICS_MD
"""
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


class Gone(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that answers 410 Gone: a permanent failure."""
    hits = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Gone.hits += 1
        self.send_response(410)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def prom_query(port, q):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": q}))
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            d = json.load(r)
    except OSError:
        return None
    if d.get("status") != "success":
        return None
    return {tuple(sorted(x["metric"].items())): float(x["value"][1]) for x in d["data"]["result"]}


def value(port, q):
    r = prom_query(port, q)
    if not r:
        return None
    return sum(r.values())


def main():
    kw, doc = os.path.abspath(sys.argv[1]), sys.argv[2]
    if os.geteuid() != 0 or not shutil.which("prometheus") or not shutil.which("promtool"):
        print("skipped: needs root, prometheus and promtool")
        return 77
    work = tempfile.mkdtemp(prefix="kw-metrics-")
    api = kwtest.ApiServer()
    gone = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gone)
    threading.Thread(target=gone.serve_forever, daemon=True).start()
    procs = []
    try:
        return run(kw, doc, work, api, gone, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        api.close()
        gone.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def run(kw, doc, work, api, gone, procs):
    mport, pport, closed = kwtest.free_port(), kwtest.free_port(), kwtest.free_port()
    tok = hashlib.sha256(b"tok-metrics-1").hexdigest()
    with open(os.path.join(work, "rules.yaml"), "w") as f:
        f.write("identities:\n  - id: m1\n    credentials: [ { sha256: \"%s\" } ]\n"
                "    deny: [ \"* /admin/**\" ]\n" % tok)
    with open(os.path.join(work, "keywarden.yaml"), "w") as f:
        f.write("outputs: { metrics: \"127.0.0.1:%d\", eve: eve.json }\n"
                "storage: { database: kw.db }\nrules: rules.yaml\n"
                "capture: { bpf: \"tcp port %d\" }\n"
                "alerts:\n  webhooks:\n"
                "    - { url: \"http://127.0.0.1:%d/hook\", secret: \"env:KW_TEST_HOOK\" }\n"
                "    - { url: \"http://127.0.0.1:%d/hook\", secret: \"env:KW_TEST_HOOK\" }\n"
                % (mport, api.port, gone.server_address[1], closed))
    env = dict(os.environ, KW_TEST_HOOK="metrics-test-hmac-key")
    kwp = subprocess.Popen([kw, "run", "-c", os.path.join(work, "keywarden.yaml"), "-i", "lo",
                            "--user", "root", "-q"], stderr=subprocess.PIPE, env=env)
    procs.append(kwp)
    log = kwtest.StderrLog(kwp.stderr)
    check(kwtest.wait_for(lambda: log.find("metrics at http://127.0.0.1:%d/metrics" % mport))
          is not None, "keywarden says where the metrics are")
    kwtest.wait_ready(kwp.pid)

    with open(os.path.join(work, "prometheus.yml"), "w") as f:
        f.write("global: { scrape_interval: 1s, evaluation_interval: 1s }\n"
                "scrape_configs:\n  - job_name: keywarden\n"
                "    static_configs: [ { targets: [ \"127.0.0.1:%d\" ] } ]\n" % mport)
    prom = subprocess.Popen(["prometheus", "--config.file=" + os.path.join(work, "prometheus.yml"),
                             "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
                             "--web.listen-address=127.0.0.1:%d" % pport],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "prom.log"),
                                                                   "w"))
    procs.append(prom)

    for i in range(3):
        api.get("/v1/orders/%d" % i, "tok-metrics-1")
    api.get("/v1/orders/9", "tok-someone-else")
    api.get("/admin/users", "tok-metrics-1")

    up = kwtest.wait_for(lambda: value(pport, 'up{job="keywarden"}') == 1, timeout=30, step=0.5)
    check(up, "Prometheus scrapes keywarden (up == 1)")
    want = [
        ('keywarden_transactions_total{protocol="HTTP/1"}', 5),
        ('keywarden_attribution_total{result="known"}', 4),
        ('keywarden_attribution_total{result="unknown"}', 1),
        ('keywarden_attribution_total{result="none"}', 0),
        ('keywarden_credentials_total{kind="bearer"}', 5),
        ('keywarden_findings_total{kind="out_of_scope",source="policy"}', 1),
        ('keywarden_alerts_total{kind="out_of_scope"}', 1),
        ('keywarden_audit_rows_total{result="written"}', 5),
    ]
    for q, v in want:
        kwtest.wait_for(lambda: value(pport, q) == v, timeout=20, step=0.5)
        got = value(pport, q)
        check(got == v, "%s = %s (Prometheus says %s)" % (q, v, got))
    unknown_alert = value(pport, 'keywarden_alerts_total{kind="unknown_credential"}')
    check(unknown_alert == 1, "an unknown credential answered 200 -> 1 alert (%s)" % unknown_alert)
    pk = value(pport, "keywarden_packets_total")
    check(pk is not None and pk >= 5 * 6, "packets counted (%s)" % pk)
    sev = value(pport, "sum(keywarden_alerts_by_severity_total)")
    check(sev == 2, "alerts by severity add up to the 2 alerts (%s)" % sev)
    # the 410 receiver: failed for good; the closed port: retried
    fin = kwtest.wait_for(lambda: value(pport, 'sum(keywarden_alert_delivery_failures_total'
                                               '{final="true"})') == 2, timeout=20, step=0.5)
    check(fin, "the sink answering 410 failed for good, per sink (%s; receiver hits %d)"
          % (value(pport, 'sum(keywarden_alert_delivery_failures_total{final="true"})'),
             Gone.hits))
    retr = kwtest.wait_for(lambda: (value(pport, 'sum(keywarden_alert_delivery_failures_total'
                                                 '{final="false"})') or 0) >= 1, timeout=20,
                           step=0.5)
    check(retr, "the sink not listening is retried")
    sinks = prom_query(pport, "keywarden_alert_delivery_failures_total") or {}
    names = {dict(k).get("sink") for k in sinks}
    check(len(names) == 2 and all(re.fullmatch(r"webhook:[0-9a-f]{16}", n or "") for n in names),
          "two sinks, labelled by a hash of the URL, never the URL (%s)" % sorted(names))
    # CPU by thread: the threads a live run with alerts has, each a series
    # of its own; the packet thread has parsed traffic, so its clock moved
    th = prom_query(pport, "keywarden_thread_cpu_seconds_total") or {}
    tnames = {dict(k).get("thread"): v for k, v in th.items()}
    check({"main", "kw-db", "kw-eve", "kw-alerts"} <= set(tnames) and tnames["main"] > 0,
          "CPU seconds by thread name, the packet thread's above 0 (%s)" % tnames)
    # three more on one kept-alive connection, left open: counted as they
    # are made (the parser's http.transactions adds a connection's at its
    # end, which a kept-alive client may not reach for hours)
    ka = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    for i in range(3):
        ka.request("GET", "/v1/orders/%d" % (10 + i),
                   headers={"Authorization": "Bearer tok-metrics-1", "Host": "api.test.internal"})
        ka.getresponse().read()
    q = 'keywarden_transactions_total{protocol="HTTP/1"}'
    kwtest.wait_for(lambda: value(pport, q) == 8, timeout=20, step=0.5)
    check(value(pport, q) == 8, "3 requests on an open kept-alive connection counted at once: "
          "%s = 8 (Prometheus says %s)" % (q, value(pport, q)))
    ka.close()
    kwp.send_signal(signal.SIGHUP)
    ok = kwtest.wait_for(lambda: value(pport, 'keywarden_rules_reloads_total{result="ok"}') == 1,
                         timeout=20, step=0.5)
    check(ok, "a SIGHUP shows as one rules reload")
    check(value(pport, "keywarden_identities") == 1, "identities gauge = 1")

    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5) as r:
        ctype = r.headers.get("Content-Type", "")
        text = r.read().decode()
    check(ctype.startswith("text/plain; version=0.0.4"), "content type %r" % ctype)
    lint = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                          capture_output=True)
    check(lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(),
          "promtool check metrics: clean (%r)" % (lint.stdout + lint.stderr)[:300])
    served = sorted(set(re.findall(r"^# TYPE (\S+)", text, re.M)))
    documented = open(doc).read()
    missing = [n for n in served if n not in documented]
    check(not missing, "every metric served is in docs/metrics.md (%d; missing %s)"
          % (len(served), missing))
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/other" % mport, timeout=5)
        check(False, "other paths are 404")
    except urllib.error.HTTPError as e:
        check(e.code == 404, "other paths are 404 (%d)" % e.code)

    kwp.send_signal(signal.SIGTERM)
    rc = kwp.wait(30)
    log.t.join(5)
    # the 410 sink refused alerts for good: a loss, listed, and exit 1
    # (docs/operations.md)
    check(rc == 1 and log.find(r"failed for good: alert \S+ to webhook:\S+: HTTP 410")
          is not None, "keywarden exits 1 on SIGTERM and lists the alerts that failed for good "
          "(%d)" % rc)
    print("%d failure(s)" % len(failures))
    if failures:
        print(log.text()[-3000:])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
