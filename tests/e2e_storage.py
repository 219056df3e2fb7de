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

  busy       another connection holds the database's write lock for 10 s
             while a replay raises alerts: the judge does not wait, every
             alert reaches the webhook once (from memory, during the lock),
             everything is stored once the lock goes, exit 0, stderr short.
  receiver   webhooks that answer 302 and 410: `run` lists the alerts
             that failed for good and exits 1; `alerts flush` likewise.
  read_only  the database file chmod 0400 for the user keywarden runs as
             (EACCES), then the database folder bind-mounted read-only in
             a private mount namespace (EROFS): `run` names the cause once,
             delivers every alert, counts what it lost, exits 1; `audit`,
             `baseline show` and `db check` work on the read-only mount.
  corrupt    a page of the database overwritten: `run` refuses it at
             start (quick_check), `db check` lists the damage, exit 1.
  disk_full  the database on a 2 MB tmpfs (private mount namespace) that
             fills mid-run: ENOSPC named once, every audit row and alert
             accounted for exactly, every alert delivered, exit 1; with
             space again, a second run completes the trail (idempotent).
  sigkill    `run` SIGKILLed mid-replay; the database passes db check and
             a second run of the whole capture adds each row once.
  modes      files 0600 and folders 0700 by default (a database readable
             by everyone is narrowed); with storage.group, 0640 and a
             setgid 2750 folder, so a member of the group (nobody, group
             nogroup) can run `audit`, and no one else can.

Traffic for the replay cases: the simulator's demo world (kwsim, one day,
8 alerts), replayed with -r.

Usage: e2e_storage.py CASE KEYWARDEN [KWSIM]
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

from ops.kwtest import JsonOk  # tests/ops/kwtest.py: the shared quiet JSON server

SKIP = 77
TOKEN = "kw-e2e-storage-token-0123456789abcdef"
HOOK_SECRET = "kw-e2e-storage-hook-secret-0123456789"
WORLD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sim", "worlds", "demo.yaml")
DEMO_ALERTS = 8


class Hook(http.server.BaseHTTPRequestHandler):
    """A webhook receiver: /ok answers 200, /gone 410, /moved 302."""
    protocol_version = "HTTP/1.1"
    hits = []
    lock = threading.Lock()

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        with Hook.lock:
            Hook.hits.append((time.time(), self.path, self.headers.get("X-Keywarden-Alert-Id")))
        code = 410 if self.path.startswith("/gone") else 302 if self.path.startswith(
            "/moved") else 200
        self.send_response(code)
        if code == 302:
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()


def start_hook():
    Hook.hits = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def hook_ids(path):
    with Hook.lock:
        return [h[2] for h in Hook.hits if h[1].startswith(path)]


def demo_world(kwsim, work, hook_urls=(), extra=""):
    """kwsim's demo world in work/w, its config pointed at the webhooks."""
    d = os.path.join(work, "w")
    subprocess.run([kwsim, "gen", "--world", WORLD, "-o", d], check=True,
                   capture_output=True)
    cfg = os.path.join(d, "keywarden.yaml")
    with open(cfg, "a") as f:
        if hook_urls:
            f.write("alerts:\n  suppress: { window: 1h }\n  drain_timeout: 10s\n"
                    "  webhooks:\n")
            for u in hook_urls:
                f.write('    - { url: "%s", secret: "env:KW_E2E_HOOK_SECRET" }\n' % u)
        f.write(extra)
    with open(cfg) as f:  # the generated alerts: section is replaced by ours
        text = f.read()
    if hook_urls:
        text = text.replace("alerts:\n  suppress: { window: 1h }\nrules:", "rules:", 1)
        with open(cfg, "w") as f:
            f.write(text)
    os.environ["KW_E2E_HOOK_SECRET"] = HOOK_SECRET
    return d, cfg


def db_rows(db, sql):
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return c.execute(sql).fetchall()
    finally:
        c.close()


def stats_of(eve):
    recs = eve_lines(eve, "stats")
    return recs[-1]["stats"] if recs else {}


class Api(JsonOk):
    BODY = b'{"ok":true}'


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


def catches(pid, sig):
    """The process has a handler for sig (SigCgt in /proc/PID/status)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        pass
    return False


def fifo_hup_steps(p, port, rules, eve, lock):
    ok = True
    # "during start-up": once the process exists far enough to have
    # handlers (keywarden installs them first thing) and while the locked
    # database still holds it up. A fixed sleep was not enough under
    # ASan on a loaded machine: the signal came before main().
    until = time.monotonic() + 30
    while not catches(p.pid, signal.SIGHUP) and time.monotonic() < until and p.poll() is None:
        time.sleep(0.02)
    time.sleep(0.2)
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


def case_busy(kw, work, kwsim):
    srv = start_hook()
    url = "http://127.0.0.1:%d/ok" % srv.server_address[1]
    d, cfg = demo_world(kwsim, work, [url])
    db, eve = os.path.join(work, "kw.db"), os.path.join(work, "eve.json")
    ok = True
    # the database exists (schema made by a first run over no packets)
    empty = os.path.join(work, "empty.pcap")
    with open(empty, "wb") as f:
        f.write(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    r = subprocess.run([kw, "run", "-q", "-c", cfg, "-r", empty, "--db", db, "--eve", eve],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL: the first run: %d %s" % (r.returncode, r.stderr))
        return 1
    os.unlink(eve)
    lock = sqlite3.connect(db, timeout=0, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    lock.execute("INSERT INTO schema_versions VALUES('e2e-lock', 1)")
    t0 = time.time()
    p = subprocess.Popen([kw, "run", "-q", "-c", cfg, "-r", os.path.join(d, "capture.pcap"),
                          "--db", db, "--eve", eve], stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(6)
        alerts_in_eve = len(eve_lines(eve, "alert"))
        during = len(hook_ids("/ok"))
        print("with the lock held 6 s: %d alerts in EVE, %d delivered" % (alerts_in_eve, during))
        if alerts_in_eve < DEMO_ALERTS:
            print("FAIL: the judge waited for the database (want %d alerts in EVE)"
                  % DEMO_ALERTS)
            ok = False
        if during < DEMO_ALERTS:
            print("FAIL: delivery waited for the database")
            ok = False
        time.sleep(max(0.0, 10 - (time.time() - t0)))
        lock.execute("ROLLBACK")
        lock.close()
        released = time.time()
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
        srv.shutdown()
    print(err.strip())
    print("exit %d, %.1f s after the lock was released" % (p.returncode, time.time() - released))
    ids = hook_ids("/ok")
    st = stats_of(eve)
    a = st.get("alerts", {})
    stored = db_rows(db, "SELECT count(*) FROM alerts")[0][0]
    pending = db_rows(db, "SELECT count(*) FROM alert_outbox WHERE state!=1")[0][0]
    audit = db_rows(db, "SELECT count(*) FROM audit")[0][0]
    print("delivered %d requests (%d ids); stats: %s; database: %d alerts, %d not delivered, "
          "%d audit rows" % (len(ids), len(set(ids)), json.dumps(a), stored, pending, audit))
    checks = [
        (p.returncode == 0, "exit 0"),
        (len(ids) == DEMO_ALERTS and len(set(ids)) == DEMO_ALERTS, "every alert delivered once"),
        (a.get("delivered") == DEMO_ALERTS and a.get("alerts") == DEMO_ALERTS, "counted as "
         "delivered"),
        (a.get("stored") == DEMO_ALERTS and stored == DEMO_ALERTS, "all stored after the lock"),
        (pending == 0, "the outbox says delivered"),
        (a.get("waiting") == 0 and a.get("lost") == 0 and a.get("not_stored") == 0,
         "nothing waiting or lost"),
        (st.get("audit", {}).get("written") == audit == 324 and
         st.get("audit", {}).get("dropped") == 0 and st.get("audit", {}).get("errors") == 0,
         "324 audit rows, none lost"),
        (st.get("database", {}).get("busy_retries", 0) > 0, "the wait is counted"),
        (len(err.strip().splitlines()) <= 3 and "locked by another connection" in err,
         "stderr names the lock once, short"),
    ]
    for c, what in checks:
        if not c:
            print("FAIL: " + what)
            ok = False
    return 0 if ok else 1


def case_receiver(kw, work, kwsim):
    srv = start_hook()
    port = srv.server_address[1]
    d, cfg = demo_world(kwsim, work, ["http://127.0.0.1:%d/gone" % port,
                                      "http://127.0.0.1:%d/moved" % port])
    db, eve = os.path.join(work, "kw.db"), os.path.join(work, "eve.json")
    ok = True
    try:
        r = subprocess.run([kw, "run", "-q", "-c", cfg, "-r", os.path.join(d, "capture.pcap"),
                            "--db", db, "--eve", eve], capture_output=True, text=True,
                           timeout=120)
        print(r.stderr.strip())
        a = stats_of(eve).get("alerts", {})
        listed = [l for l in r.stderr.splitlines() if "failed for good: alert " in l]
        failed = db_rows(db, "SELECT count(*) FROM alert_outbox WHERE state=2")[0][0]
        checks = [
            (r.returncode == 1, "run exits 1 (want 1, got %d)" % r.returncode),
            (a.get("failed_permanent") == 2 * DEMO_ALERTS == failed,
             "every alert failed for good at both sinks, counted and in the outbox"),
            (len(hook_ids("/gone")) == DEMO_ALERTS and len(hook_ids("/moved")) == DEMO_ALERTS,
             "each alert POSTed once per sink, no retry"),
            (len(listed) == 5 and "and 11 more failed for good" in r.stderr,
             "the summary lists them"),
            (any("HTTP 410" in l for l in listed) and any("HTTP 302" in l for l in listed)
             or "HTTP 302" in r.stderr, "with their cause"),
            ("LOST:" in r.stderr and "16 failed for good" in r.stderr, "the loss is named"),
        ]
        # `alerts flush`: rows left pending by a run whose sink was down
        # (the receiver stopped), flushed once it answers again, 410
        srv.shutdown()
        srv.server_close()
        db2 = os.path.join(work, "kw2.db")
        cfg2 = os.path.join(work, "down.yaml")
        with open(cfg) as f:
            text = f.read().replace('    - { url: "http://127.0.0.1:%d/moved", secret: '
                                    '"env:KW_E2E_HOOK_SECRET" }\n' % port, "")
        with open(cfg2, "w") as f:
            f.write(text.replace("drain_timeout: 10s", "drain_timeout: 1s").replace(
                "rules: rules.d", "rules: %s/rules.d" % d))
        r2 = subprocess.run([kw, "run", "-q", "-c", cfg2, "-r", os.path.join(d, "capture.pcap"),
                             "--db", db2, "--eve", os.path.join(work, "eve2.json")],
                            capture_output=True, text=True, timeout=120)
        waiting = db_rows(db2, "SELECT count(*) FROM alert_outbox WHERE state=0")[0][0]
        print("run with the sink down: exit %d, %d rows waiting" % (r2.returncode, waiting))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Hook)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        f = subprocess.run([kw, "alerts", "flush", "--db", db2, "--timeout", "20", "--webhook",
                            "http://127.0.0.1:%d/gone" % port, "--secret-env",
                            "KW_E2E_HOOK_SECRET"], capture_output=True, text=True, timeout=60)
        print(f.stdout.strip())
        checks += [
            (r2.returncode == 0 and waiting == DEMO_ALERTS,
             "a run whose sinks are down leaves its alerts waiting, exit 0"),
            (f.returncode == 1, "alerts flush exits 1 when alerts failed for good (%d)"
             % f.returncode),
            ("failed for good %d" % DEMO_ALERTS in f.stdout and
             f.stdout.count("failed for good: alert ") == DEMO_ALERTS and "HTTP 410" in f.stdout,
             "alerts flush lists them"),
        ]
    finally:
        srv.shutdown()
    for c, what in checks:
        if not c:
            print("FAIL: " + what)
            ok = False
    return 0 if ok else 1


EMPTY_PCAP = bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")
DEMO_ROWS = 324  # credentialed transactions of the demo world: audit rows


def prime_db(kw, cfg, db, work):
    """Creates the database's schema (a run over a capture with no packet)."""
    empty = os.path.join(work, "empty.pcap")
    with open(empty, "wb") as f:
        f.write(EMPTY_PCAP)
    r = subprocess.run([kw, "run", "-q", "-c", cfg, "-r", empty, "--db", db, "--eve",
                        os.path.join(work, "prime-eve.json")], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("priming %s: %d %s" % (db, r.returncode, r.stderr))


def run_demo(kw, cfg, d, db, eve, pre=(), timeout=120):
    cmd = list(pre) + [kw, "run", "-q", "-c", cfg, "-r", os.path.join(d, "capture.pcap"),
                       "--db", db, "--eve", eve]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def report(checks):
    ok = True
    for c, what in checks:
        print(("ok   " if c else "FAIL ") + what)
        ok = ok and bool(c)
    return 0 if ok else 1


def case_read_only(kw, work, kwsim):
    srv = start_hook()
    url = "http://127.0.0.1:%d/ok" % srv.server_address[1]
    d, cfg = demo_world(kwsim, work, [url])
    dbdir = os.path.join(work, "state")
    os.mkdir(dbdir)
    db, eve = os.path.join(dbdir, "kw.db"), os.path.join(dbdir, "eve.json")
    prime_db(kw, cfg, db, work)
    # 1. EACCES: the file is not writable by the user keywarden runs as
    subprocess.run(["chmod", "-R", "a+rX", work], check=True)
    os.chmod(work, 0o755)
    subprocess.run(["chown", "-R", "65534:65534", dbdir], check=True)
    os.chmod(db, 0o400)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    r = run_demo(kw, cfg, d, db, eve, pre=nobody)
    print(r.stderr.strip())
    st = stats_of(eve)
    ids = hook_ids("/ok")
    checks = [
        (r.returncode == 1, "EACCES: run exits 1 (%d)" % r.returncode),
        (r.stderr.count("(EACCES)") == 2 and "not writable by this user (EACCES)" in r.stderr,
         "EACCES: named at start, and once in the summary"),
        (len(r.stderr.strip().splitlines()) <= 5, "EACCES: stderr short"),
        (sorted(set(ids)) == sorted(ids) and len(ids) == DEMO_ALERTS,
         "EACCES: every alert delivered once from memory (%d)" % len(ids)),
        (st.get("audit", {}).get("errors") == DEMO_ROWS and st["audit"].get("written") == 0,
         "EACCES: 324 audit rows counted as lost"),
        (st.get("alerts", {}).get("not_stored") == DEMO_ALERTS and
         st["alerts"].get("delivered") == DEMO_ALERTS, "EACCES: 8 not stored, 8 delivered"),
        ("LOST: %d audit rows" % DEMO_ROWS in r.stderr, "EACCES: the LOST line"),
        (db_rows(db, "SELECT count(*) FROM audit")[0][0] == 0, "EACCES: the file is unchanged"),
    ]
    # 2. a good run fills the database, then its folder is mounted read-only
    os.chmod(db, 0o600)
    subprocess.run(["chown", "-R", "0:0", dbdir], check=True)
    r = run_demo(kw, cfg, d, db, os.path.join(work, "eve2.json"))
    checks.append((r.returncode == 0, "a normal run fills it (%d %s)" % (r.returncode,
                                                                         r.stderr.strip())))
    script = ("mount --bind {d} {d} && mount -o remount,bind,ro {d} && "
              "{kw} audit --db {db} --json > {w}/audit.jsonl; echo audit=$?; "
              "{kw} baseline show --db {db} > {w}/bs.txt; echo baseline=$?; "
              "{kw} db check --db {db}; echo check=$?; "
              "{kw} run -q -c {cfg} -r {pcap} --db {db} --eve {w}/eve3.json 2>{w}/run.err; "
              "echo run=$?").format(d=dbdir, db=db, kw=kw, w=work, cfg=cfg,
                                    pcap=os.path.join(d, "capture.pcap"))
    m = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=180)
    print(m.stdout.strip())
    print(m.stderr.strip())
    with open(os.path.join(work, "audit.jsonl")) as f:
        audit_rows = sum(1 for _ in f)
    with open(os.path.join(work, "run.err")) as f:
        rerr = f.read()
    print(rerr.strip())
    checks += [
        ("audit=0" in m.stdout and audit_rows == DEMO_ROWS,
         "EROFS: audit reads all %d rows (%d)" % (DEMO_ROWS, audit_rows)),
        ("baseline=0" in m.stdout, "EROFS: baseline show works"),
        ("check=0" in m.stdout and ": ok" in m.stdout, "EROFS: db check says ok"),
        ("run=1" in m.stdout and "read-only file system (EROFS)" in rerr and
         rerr.count("(EROFS)") == 2 and "LOST:" in rerr, "EROFS: run names it, exits 1"),
    ]
    srv.shutdown()
    return report(checks)


def case_corrupt(kw, work, kwsim):
    d, cfg = demo_world(kwsim, work)
    db, eve = os.path.join(work, "kw.db"), os.path.join(work, "eve.json")
    r = run_demo(kw, cfg, d, db, eve)
    pages = db_rows(db, "PRAGMA page_count")[0][0]
    psize = db_rows(db, "PRAGMA page_size")[0][0]
    with open(db, "r+b") as f:  # a page in the middle, overwritten
        f.seek(psize * (pages // 2))
        f.write(b"\xa5" * psize)
    c = subprocess.run([kw, "db", "check", "--db", db], capture_output=True, text=True)
    print(c.stdout.strip())
    r2 = run_demo(kw, cfg, d, db, os.path.join(work, "eve2.json"))
    print(r2.stderr.strip())
    return report([
        (r.returncode == 0, "the first run (%d)" % r.returncode),
        (c.returncode == 1 and "damaged" in c.stdout and len(c.stdout.splitlines()) >= 3,
         "db check exits 1 and lists the damage"),
        (r2.returncode == 1 and r2.stderr.count("is damaged") == 1 and
         "keywarden db check" in r2.stderr and len(r2.stderr.strip().splitlines()) <= 2,
         "run refuses it at start, once, saying what to do"),
    ])


def case_disk_full(kw, work, kwsim):
    if os.environ.get("KW_E2E_NS") != "1":  # again, in a private mount namespace
        os.environ["KW_E2E_NS"] = "1"
        return subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable,
                               os.path.abspath(__file__), "disk_full", kw, kwsim,
                               work]).returncode
    srv = start_hook()
    url = "http://127.0.0.1:%d/ok" % srv.server_address[1]
    d, cfg = demo_world(kwsim, work, [url])
    small = os.path.join(work, "small")
    os.mkdir(small)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", small],
                   check=True)
    db, eve = os.path.join(small, "kw.db"), os.path.join(work, "eve.json")
    prime_db(kw, cfg, db, work)
    fs = os.statvfs(small)
    filler = os.path.join(small, "filler")
    # Leave about 64 KB: room for a few alerts (each commit ~20 KB of WAL)
    # but less than the audit batch of the run's 324 rows needs (~100 KB:
    # 160 KB held that batch and 3 alerts, or 7 alerts without it), so those
    # rows are refused whichever job the writer runs first. With
    # 160 KB the batch fitted when it came before the alerts (1 run in ~10
    # under load), and the check on lost audit rows failed on a run that
    # had lost only alerts.
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, fs.f_bavail * fs.f_frsize - 64 * 1024))
    r = run_demo(kw, cfg, d, db, eve)
    print(r.stderr.strip())
    st = stats_of(eve)
    au, al = st.get("audit", {}), st.get("alerts", {})
    ids1 = hook_ids("/ok")
    rows1 = db_rows(db, "SELECT count(*) FROM audit")[0][0]
    stored1 = db_rows(db, "SELECT count(*) FROM alerts")[0][0]
    # stored, and delivered, but the "delivered" state did not fit on the
    # disk: pending in the file, so the next run sends them again
    pending1 = db_rows(db, "SELECT count(*) FROM alert_outbox WHERE state=0")[0][0]
    print("run 1: audit %s; alerts %s; database: %d rows, %d alerts (%d still pending); hook %d" % (
        json.dumps({k: au.get(k) for k in ("queued", "written", "errors", "dropped")}),
        json.dumps({k: al.get(k) for k in ("stored", "not_stored", "delivered", "lost",
                                           "state_unsaved")}),
        rows1, stored1, pending1, len(ids1)))
    checks = [
        (r.returncode == 1, "run 1 exits 1 (%d)" % r.returncode),
        (r.stderr.count("disk full (ENOSPC)") == 2, "ENOSPC named once, and in the summary"),
        (len(r.stderr.strip().splitlines()) <= 8, "stderr short (%d lines)"
         % len(r.stderr.strip().splitlines())),
        (au.get("errors", 0) > 0 and au.get("queued") == DEMO_ROWS and
         au.get("written") + au.get("errors") + au.get("dropped") == DEMO_ROWS and
         au.get("written") == rows1, "audit rows: written (= rows in the file) + lost = 324"),
        (al.get("stored") == stored1 and al.get("stored") + al.get("not_stored") ==
         DEMO_ALERTS, "alerts: stored (= rows in the file) + not stored = 8"),
        (al.get("delivered") == DEMO_ALERTS and sorted(set(ids1)) == sorted(ids1) and
         len(ids1) == DEMO_ALERTS, "every alert delivered once"),
        (pending1 <= al.get("state_unsaved", 0), "a delivery state the disk refused is counted "
         "(%d pending, %s unsaved)" % (pending1, al.get("state_unsaved"))),
        ("LOST: %d audit rows" % au.get("errors", -1) in r.stderr, "the LOST line"),
    ]
    os.unlink(filler)  # and room for the database and its -wal together
    subprocess.run(["mount", "-o", "remount,size=16m", small], check=True)
    r2 = run_demo(kw, cfg, d, db, os.path.join(work, "eve2.json"))
    print(r2.stderr.strip())
    ids2 = hook_ids("/ok")[len(ids1):]
    # a row whose lease run 1 wrote (and not its answer) waits for the lease
    # to expire (timeout + 1 s): maybe past run 2's drain, then it waits
    pending2 = db_rows(db, "SELECT count(*) FROM alert_outbox WHERE state=0")[0][0]
    waiting2 = stats_of(os.path.join(work, "eve2.json")).get("alerts", {}).get("waiting")
    checks += [
        (r2.returncode == 0, "run 2, with space again, exits 0 (%d)" % r2.returncode),
        (db_rows(db, "SELECT count(*) FROM audit")[0][0] == DEMO_ROWS,
         "the trail is complete, each row once"),
        (db_rows(db, "SELECT count(*) FROM alerts")[0][0] == DEMO_ALERTS, "8 alerts stored"),
        (len(ids2) + pending2 == DEMO_ALERTS - stored1 + pending1 and pending2 <= pending1 and
         waiting2 == pending2 and len(set(ids2)) == len(ids2),
         "run 2 sends the %d alerts run 1 could not store and those of the %d whose delivery "
         "it could not record (%d sent, %d still waiting, counted)"
         % (DEMO_ALERTS - stored1, pending1, len(ids2), pending2)),
    ]
    srv.shutdown()
    subprocess.run(["umount", small])
    return report(checks)


def case_sigkill(kw, work, kwsim):
    srv = start_hook()
    url = "http://127.0.0.1:%d/ok" % srv.server_address[1]
    d, cfg = demo_world(kwsim, work, [url])
    db, eve = os.path.join(work, "kw.db"), os.path.join(work, "eve.json")
    with open(os.path.join(d, "capture.pcap"), "rb") as f:
        pcap = f.read()
    p = subprocess.Popen([kw, "run", "-q", "-c", cfg, "-r", "-", "--db", db, "--eve", eve],
                         stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    half = len(pcap) // 2
    for i in range(0, half, 16384):  # a capture arriving over 2 s, killed half way
        p.stdin.write(pcap[i:min(i + 16384, half)])
        p.stdin.flush()
        time.sleep(2.0 * 16384 / half)
    time.sleep(0.3)
    p.send_signal(signal.SIGKILL)
    p.wait()
    rows_killed = db_rows(db, "SELECT count(*) FROM audit")[0][0]
    c = subprocess.run([kw, "db", "check", "--db", db], capture_output=True, text=True)
    r = run_demo(kw, cfg, d, db, os.path.join(work, "eve2.json"))
    print(r.stderr.strip())
    ids = hook_ids("/ok")
    rows = db_rows(db, "SELECT count(*) FROM audit")[0][0]
    print("killed with %d audit rows written; after the second run %d; hook %d requests, %d ids"
          % (rows_killed, rows, len(ids), len(set(ids))))
    srv.shutdown()
    return report([
        (0 < rows_killed < DEMO_ROWS, "killed mid-replay (%d rows)" % rows_killed),
        (c.returncode == 0, "db check after SIGKILL: %s" % c.stdout.strip()),
        (r.returncode == 0, "the second run exits 0"),
        (rows == DEMO_ROWS, "each audit row once (%d)" % rows),
        (db_rows(db, "SELECT count(*) FROM alerts")[0][0] == DEMO_ALERTS, "8 alerts stored"),
        (len(set(ids)) == DEMO_ALERTS and len(ids) <= DEMO_ALERTS + 1,
         "every alert delivered, at most one twice (in flight at the kill)"),
    ])


def case_modes(kw, work, kwsim):
    import grp
    import stat
    d, cfg = demo_world(kwsim, work)
    subprocess.run(["chmod", "-R", "a+rX", work], check=True)
    os.chmod(work, 0o755)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    gid = grp.getgrnam("nogroup").gr_gid

    def mode(p):
        st = os.stat(p)
        return stat.S_IMODE(st.st_mode), st.st_gid

    # default: keywarden creates the folders and files
    s1 = os.path.join(work, "s1", "state")
    db1, eve1 = os.path.join(s1, "kw.db"), os.path.join(work, "s1", "log", "eve.json")
    r1 = run_demo(kw, cfg, d, db1, eve1)
    a1 = subprocess.run(nobody + [kw, "audit", "--db", db1, "--json"], capture_output=True,
                        text=True)
    # an existing database readable by everyone is narrowed
    s2 = os.path.join(work, "s2")
    os.mkdir(s2)
    db2 = os.path.join(s2, "kw.db")
    shutil.copy(db1, db2)
    os.chmod(db2, 0o644)
    r2 = run_demo(kw, cfg, d, db2, os.path.join(s2, "eve.json"))
    # storage.group: nogroup
    g3 = os.path.join(work, "g3")
    cfg3 = os.path.join(work, "group.yaml")
    with open(cfg) as f:
        text = f.read().replace("storage: { database: keywarden.db }",
                                "storage: { database: keywarden.db, group: nogroup }")
    with open(cfg3, "w") as f:
        f.write(text.replace("rules: rules.d", "rules: %s/rules.d" % d))
    db3, eve3 = os.path.join(g3, "kw.db"), os.path.join(g3, "eve.json")
    r3 = run_demo(kw, cfg3, d, db3, eve3)
    a3 = subprocess.run(nobody + [kw, "audit", "--db", db3, "--json"], capture_output=True,
                        text=True)
    print(r1.stderr.strip(), r2.stderr.strip(), r3.stderr.strip(), a1.stderr.strip(),
          a3.stderr.strip(), sep="\n")
    print("default: folder %o, database %o, EVE %o; narrowed %o; group: folder %o gid %d, "
          "database %o gid %d, EVE %o gid %d" % (
              mode(s1)[0], mode(db1)[0], mode(eve1)[0], mode(db2)[0], mode(g3)[0], mode(g3)[1],
              mode(db3)[0], mode(db3)[1], mode(eve3)[0], mode(eve3)[1]))
    return report([
        (r1.returncode == 0 and r3.returncode == 0 and r2.returncode == 0, "runs exit 0"),
        (mode(s1)[0] == 0o700 and mode(os.path.dirname(eve1))[0] == 0o700,
         "new folders 0700"),
        (mode(db1)[0] == 0o600 and mode(eve1)[0] == 0o600, "new database and EVE 0600"),
        (a1.returncode != 0, "another user cannot read the database"),
        (mode(db2)[0] == 0o640 and "was readable by every user" in r2.stderr,
         "a database readable by everyone is narrowed, and said"),
        (mode(g3) == (0o2750, gid), "storage.group: folder 2750, the group's"),
        (mode(db3) == (0o640, gid) and mode(eve3) == (0o640, gid),
         "storage.group: database and EVE 0640, the group's"),
        (a3.returncode == 0 and len(a3.stdout.splitlines()) == DEMO_ROWS,
         "a member of the group reads the audit trail (%d rows)" % len(a3.stdout.splitlines())),
    ])


CASES = {"fifo_hup": (case_fifo_hup, True), "check_bpf": (case_check_bpf, False),
         "busy": (case_busy, False), "receiver": (case_receiver, False),
         "read_only": (case_read_only, True), "corrupt": (case_corrupt, False),
         "disk_full": (case_disk_full, True), "sigkill": (case_sigkill, False),
         "modes": (case_modes, True)}


def main():
    case, kw = sys.argv[1], sys.argv[2]
    kwsim = sys.argv[3] if len(sys.argv) > 3 else None
    fn, needs_root = CASES[case]
    if needs_root and os.geteuid() != 0:
        print("SKIP: %s needs root" % case)
        return SKIP
    if os.environ.get("KW_E2E_NS") == "1" and len(sys.argv) > 4:
        return fn(kw, sys.argv[4], kwsim)  # the namespaced half of a case
    work = tempfile.mkdtemp(prefix="kw-storage-%s-" % case)
    try:
        if fn.__code__.co_argcount == 3:
            if not kwsim:
                print("SKIP: %s needs kwsim" % case)
                return SKIP
            return fn(kw, work, kwsim)
        return fn(kw, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
