"""Helpers the operations tests share (tests/ops/): a real HTTP server on
127.0.0.1 and a client carrying a bearer token, system users made for a
test and removed after it, /proc status fields, waiting for a line, and
tcpdump recordings of lo (LoCapture)."""
import grp
import http.server
import os
import pwd
import re
import socket
import socketserver
import subprocess
import threading
import time
import urllib.request


class JsonOk(http.server.BaseHTTPRequestHandler):
    """Answers every GET 200 with a small JSON body (BODY); quiet. The
    e2e tests in tests/ use it too (from ops.kwtest import JsonOk)."""
    protocol_version = "HTTP/1.1"
    BODY = b'{"ok":true}\n'

    def do_GET(self):
        body = self.BODY
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class ApiServer:
    """python's http.server on 127.0.0.1, a free port, in a thread."""

    def __init__(self):
        socketserver.TCPServer.allow_reuse_address = True
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), JsonOk)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def get(self, path, token):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path),
                                     headers={"Authorization": "Bearer " + token,
                                              "Host": "api.test.internal"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class LoCapture:
    """tcpdump recording TCP ports on lo into a pcap, for the tests that
    record real clients and servers (tests/ and tests/ops/).

    stop() does not stop after a fixed sleep: on a loaded machine the last
    packets (a server's FIN, or the answer to the last request) may still
    be on their way to tcpdump, and a recording cut short makes a test
    fail on the recording, not on keywarden (seen in CI: e2e_escapes lost
    the last response, so its unknown credential was never "accepted").
    It waits until the file has stopped growing for `quiet` seconds (at
    most `limit`), then stops tcpdump, which writes what it holds."""

    def __init__(self, path, ports):
        self.path = path
        flt = " or ".join("tcp port %d" % p for p in ports)
        # -B: with -s 0 on lo (65536-byte MTU) every slot of the kernel's
        # ring holds 256 KiB, so the default 2 MiB buffer holds 8 packets
        # and a burst of small ones (40 handshakes at once) is dropped by
        # the kernel ("234 packets dropped by kernel", e2e_limits_keys)
        self.p = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "--immediate-mode", "-s", "0",
                                   "-B", "32768", "-w", path, flt],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.p.stderr.readline()  # "listening on lo ..."
        time.sleep(0.3)

    def _size(self):
        try:
            return os.path.getsize(self.path)
        except OSError:
            return -1

    def stop(self, quiet=0.5, limit=10.0, until=None):
        """True when tcpdump ran to our stop; False when it was gone before
        (the recording is incomplete: record again). until(data), when
        given, must also hold on the file's bytes: a quiet file only says
        tcpdump wrote nothing lately, and a tcpdump starved of CPU by a
        busy machine writes nothing while the kernel still holds packets
        it loses on SIGTERM (CI: e2e_escapes lost its third exchange while
        e2e_fleet_spool_full ran beside it)."""
        end = time.monotonic() + limit
        last, since = self._size(), time.monotonic()
        while time.monotonic() < end and self.p.poll() is None:
            time.sleep(0.1)
            size = self._size()
            if size != last:
                last, since = size, time.monotonic()
            elif time.monotonic() - since >= quiet:
                if until is None:
                    break
                with open(self.path, "rb") as f:
                    if until(f.read()):
                        break
        alive = self.p.poll() is None
        self.p.terminate()
        self.p.wait()
        return alive


def recorded(record, what="recording", attempts=3):
    """Calls record() until it returns something (a path, the test's
    metadata): it returns None/False when its LoCapture.stop() found that
    tcpdump had ended early, which a loaded CI machine does now and then.
    Fails the test after `attempts` tries."""
    for attempt in range(attempts):
        got = record()
        if got:
            return got
        print("note: tcpdump ended early (%s, attempt %d); recording again" % (what, attempt + 1))
    raise SystemExit("tcpdump kept dying: no complete %s" % what)


_given = set()


def free_port():
    """A TCP port on 127.0.0.1 free at the time of the call and not handed
    out before in this process (the kernel may give a port just closed
    again: two servers of one test would then collide)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given:
            _given.add(port)
            return port


def wait_port(port, proc=None, what=None, t=10.0):
    """Waits until something listens on 127.0.0.1:port (a server the test
    started); fails the test when it never does, or when proc (its
    process) exits first."""
    end = time.monotonic() + t
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise SystemExit("FAIL: %s exited %d" % (what or "server", proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("FAIL: %s did not listen on %d" % (what or "server", port))


class TempUser:
    """A system user for the test; removed afterwards if the test made it."""

    def __init__(self, name):
        self.name = name
        try:
            pwd.getpwnam(name)
            self.made = False
        except KeyError:
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                            "--shell", "/usr/sbin/nologin", name], check=True)
            self.made = True
        pw = pwd.getpwnam(name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid

    def remove(self):
        if self.made:
            subprocess.run(["userdel", self.name], check=False)
            try:
                grp.getgrnam(self.name)
                subprocess.run(["groupdel", self.name], check=False)
            except KeyError:
                pass


def may_change_system():
    """Tests that install the package or create the user `keywarden` change
    the machine for every process on it (a live `run` as root drops to
    that user while it exists): they run in CI (CI=true, one suite on the
    machine) or when asked (KW_TEST_SYSTEM=1), not beside other people's
    test runs on a shared machine."""
    return os.environ.get("CI") == "true" or os.environ.get("KW_TEST_SYSTEM") == "1"


def proc_status(pid, tid=None):
    path = "/proc/%d/status" % pid if tid is None else "/proc/%d/task/%d/status" % (pid, tid)
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def tasks(pid):
    return [int(t) for t in os.listdir("/proc/%d/task" % pid)]


def wait_for(pred, timeout=10.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def wait_ready(pid, threads=4, timeout=10.0):
    """`run` has started its threads (audit writer, delivery, baseline
    saver) and so is past its start-up; a moment more for its signal
    handlers, which it installs right after."""
    ok = wait_for(lambda: os.path.exists("/proc/%d" % pid) and len(tasks(pid)) >= threads,
                  timeout)
    time.sleep(0.5)
    return ok


class StderrLog:
    """Collects a process's stderr lines in a thread (so it never blocks)."""

    def __init__(self, stream):
        self.lines = []
        self.t = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.t.start()

    def _read(self, stream):
        for raw in iter(stream.readline, b""):
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def find(self, pattern):
        rx = re.compile(pattern)
        for l in self.lines:
            if rx.search(l):
                return l
        return None

    def text(self):
        return "\n".join(self.lines)


def eve_records(path, event_type=None):
    out = []
    try:
        with open(path) as f:
            for line in f:
                import json
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if event_type is None or r.get("event_type") == event_type:
                    out.append(r)
    except FileNotFoundError:
        pass
    return out
