#!/usr/bin/env python3
"""When storage or outputs fail (issue 18): each case creates a real
failure around a real `keywarden run` and checks that it is named once,
counted exactly, retried, and reflected in the exit code.

Cases (one ctest each):
  fifo_hup   a FIFO appears in the rules folder of a live capture on lo;
             SIGHUP must report it and keep capturing, SIGTERM must stop.
             A SIGHUP while start-up waits on a locked database must not
             kill the process.

Traffic: a Python http.server on 127.0.0.1 and urllib requests (real
client, real server), captured on lo with a BPF filter on the server's
port. Nothing leaves lo. Needs root for the capture (and, in later cases,
for mounting a tmpfs in a private mount namespace): skipped (77)
otherwise.

Usage: e2e_storage.py CASE KEYWARDEN
"""
import hashlib
import http.server
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SKIP = 77
TOKEN = "kw-e2e-storage-token-0123456789abcdef"


class Api(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def start_api():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def get(port, path, token=TOKEN):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=5) as r:
        r.read()


def rules_file(path):
    fp = hashlib.sha256(TOKEN.encode()).hexdigest()
    with open(path, "w") as f:
        f.write("identities:\n  - id: e2e1\n    name: E2E contractor\n    kind: contractor\n"
                "    credentials:\n      - { sha256: \"%s\" }\n" % fp)


def eve_lines(path, kind):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            if not line.endswith("\n"):
                break  # a record being written: not complete yet
            o = json.loads(line)
            if o.get("event_type") == kind:
                out.append(o)
    return out


def wait_for(pred, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def case_fifo_hup(kw, work):
    api = start_api()
    port = api.server_address[1]
    rules = os.path.join(work, "rules.d")
    os.mkdir(rules)
    rules_file(os.path.join(rules, "e2e.yaml"))
    eve = os.path.join(work, "eve.json")
    db = os.path.join(work, "kw.db")

    # 1. A SIGHUP during start-up (the database is locked by another
    #    connection, so start-up waits) must not kill the process.
    lock = sqlite3.connect(db, timeout=0, isolation_level=None)
    lock.execute("PRAGMA journal_mode=WAL")
    lock.execute("CREATE TABLE IF NOT EXISTS t(x)")
    lock.execute("BEGIN IMMEDIATE")
    lock.execute("INSERT INTO t VALUES(1)")
    p = subprocess.Popen([kw, "run", "-q", "-i", "lo", "--rules", rules, "--eve", eve,
                          "--db", db, "tcp port %d" % port], stderr=subprocess.PIPE)
    try:
        return fifo_hup_steps(p, port, rules, eve, lock)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
        api.shutdown()


def fifo_hup_steps(p, port, rules, eve, lock):
    ok = True
    time.sleep(0.7)
    p.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    lock.execute("COMMIT")
    lock.close()
    if p.poll() is not None:
        print("FAIL: a SIGHUP during start-up ended the process (rc %s): %s"
              % (p.returncode, p.stderr.read().decode()))
        return 1
    time.sleep(1.0)  # capture open

    # 2. Traffic before the FIFO: attributed.
    for i in range(5):
        get(port, "/v1/before/%d" % i)
    if not wait_for(lambda: len(eve_lines(eve, "http")) >= 5, 10):
        print("FAIL: the first transactions never reached EVE")
        ok = False

    # 3. A FIFO in the rules folder, then SIGHUP: reload fails loudly,
    #    capture goes on.
    os.mkfifo(os.path.join(rules, "zz-fifo.yaml"))
    p.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    for i in range(5):
        get(port, "/v1/after/%d" % i)
    got = wait_for(lambda: sum(1 for o in eve_lines(eve, "http")
                               if "/v1/after/" in o["http"].get("url", "")) >= 5, 10)
    if not got:
        print("FAIL: capture stopped after a SIGHUP with a FIFO in the rules folder")
        ok = False
    after = [o for o in eve_lines(eve, "http") if "/v1/after/" in o["http"].get("url", "")]
    if after and not all(o.get("identity", {}).get("id") == "e2e1" for o in after):
        print("FAIL: the running rules were not kept after the failed reload")
        ok = False

    # 4. SIGTERM stops it.
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        print("FAIL: SIGTERM ignored after a reload with a FIFO in the rules folder")
        return 1
    err = err.decode()
    print(err.strip())
    print("stopped %.2f s after SIGTERM, rc %d" % (time.time() - t0, p.returncode))
    if p.returncode != 0:
        print("FAIL: exit code %d, want 0" % p.returncode)
        ok = False
    if "zz-fifo.yaml: error: not read: it is a FIFO" not in err \
            or "rules reload failed" not in err:
        print("FAIL: the FIFO was not named in the reload error")
        ok = False
    return 0 if ok else 1


def case_check_bpf(kw, work):
    """`check` refuses the BPF filter `run` refuses, with pcap's message."""
    ok = True
    cfg = os.path.join(work, "kw.yaml")
    pcap = os.path.join(work, "empty.pcap")
    with open(pcap, "wb") as f:  # a valid, empty Ethernet capture
        f.write(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    for bpf, want in (("tcp port 80 and and", 2), ("tcp port 80", 0)):
        with open(cfg, "w") as f:
            f.write('capture: { bpf: "%s" }\nstorage: { database: kw.db }\n'
                    'outputs: { eve: eve.json }\n' % bpf)
        c = subprocess.run([kw, "check", "-c", cfg], capture_output=True, text=True)
        r = subprocess.run([kw, "run", "-q", "-c", cfg, "-r", pcap], capture_output=True,
                           text=True)
        print("bpf %r: check rc %d, run rc %d; %s" % (bpf, c.returncode, r.returncode,
                                                      c.stderr.strip()))
        if c.returncode != want or r.returncode != want:
            print("FAIL: want both %d" % want)
            ok = False
        if want and "capture.bpf: bad BPF filter" not in c.stderr:
            print("FAIL: check did not name capture.bpf")
            ok = False
    return 0 if ok else 1


CASES = {"fifo_hup": (case_fifo_hup, True), "check_bpf": (case_check_bpf, False)}


def main():
    case, kw = sys.argv[1], sys.argv[2]
    fn, needs_root = CASES[case]
    if needs_root and os.geteuid() != 0:
        print("SKIP: %s needs root" % case)
        return SKIP
    work = tempfile.mkdtemp(prefix="kw-storage-%s-" % case)
    try:
        return fn(kw, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
