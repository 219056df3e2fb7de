#!/usr/bin/env python3
"""Terminal escapes from the wire never reach a terminal raw (issue 15).

A client on 127.0.0.1 sends requests whose Host, User-Agent, path and
Basic user name carry terminal control sequences: ESC (an OSC that retitles
the window, a CSI that clears the screen or moves the cursor up), BEL, BS,
a C1 CSI (U+009B), a right-to-left override (U+202E), DEL and a byte that is
not UTF-8. A real HTTP server (python's http.server) answers; tcpdump
records lo. keywarden replays the capture with its human alert lines on
stdout, then every human-readable command runs over the database it wrote:
audit, baseline show (the list and each profile), rules suggest, and
report (whose page is HTML, checked too).

Checked: none of those outputs (stdout and stderr of each) holds a control
byte other than newline, a C1 control or a bidi override; the escaped
forms (\\x1b, \\u202e) are there, so the hostile text was shown, not
dropped; and the run raised alerts (the alert line check is not vacuous).

Needs root (tcpdump): exits 77 (skipped) otherwise.
Usage: e2e_escapes.py KEYWARDEN
"""
import base64
import hashlib
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

from ops.kwtest import JsonOk, LoCapture, recorded  # tests/ops/kwtest.py: JSON server, tcpdump on lo

SKIP = 77
TOKEN = "kw-e2e-escapes-bearer-0123456789abcdef"
OSC = b"\x1b]0;pwned\x07"            # retitle the terminal
CLS = b"\x1b[2J\x1b[1A"              # clear the screen, cursor up
C1 = "\u009b31m".encode()            # C1 CSI, as UTF-8
RLO = "\u202e".encode()              # right-to-left override

REQUESTS = [
    # a configured identity reaching a denied path: an alert with the lot
    (b"/v1/admin/" + OSC + b"users", b"api" + CLS + b".acme.internal",
     b"curl/8 " + OSC + RLO + b"gnp.exe", "Bearer " + TOKEN),
    (b"/v1/admin/x" + C1 + b"y\x7f", b"api.acme.internal" + C1,
     b"agent\x08\x08\x08\x08\x08root " + CLS + b"\xff", "Bearer " + TOKEN),
    # an unknown Basic user whose claimed name is a control sequence
    (b"/v1/orders", b"api.acme.internal", b"ua" + RLO + b"txt",
     "Basic " + base64.b64encode(b"adm" + CLS + b"in" + RLO + b":pw").decode()),
]


class Api(JsonOk):
    BODY = b'{"ok":true}'


def send(port, path, host, ua, authz):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\nUser-Agent: " + ua +
              b"\r\nAuthorization: " + authz.encode() + b"\r\nConnection: close\r\n\r\n")
    while s.recv(4096):
        pass
    s.close()


def record(work, port):
    pcap = os.path.join(work, "escapes.pcap")
    cap = LoCapture(pcap, [port])
    for r in REQUESTS:
        send(port, *r)
    # every answer recorded before tcpdump stops (Api.BODY once per answer)
    return pcap if cap.stop(until=lambda d: d.count(Api.BODY) >= len(REQUESTS)) else None


# Anything a terminal would act on: C0 controls but newline, DEL, C1
# controls (raw or as UTF-8), bidi embeddings/overrides/isolates.
BAD = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]")


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, timeout=120, **kw)
    return r.returncode, r.stdout, r.stderr


def main():
    kw = sys.argv[1]
    if os.geteuid() != 0:
        print("skipped: needs root for tcpdump on lo")
        return SKIP
    if not shutil.which("tcpdump"):
        print("skipped: tcpdump not installed")
        return SKIP
    work = tempfile.mkdtemp(prefix="kw-e2e-escapes-")
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        pcap = recorded(lambda: record(work, api.server_address[1]))
        return check(kw, work, pcap)
    finally:
        api.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def check(kw, work, pcap):
    rules = os.path.join(work, "rules.yaml")
    db = os.path.join(work, "kw.db")
    fp = hashlib.sha256(TOKEN.encode()).hexdigest()
    with open(rules, "w") as f:
        f.write("identities:\n  - id: c01\n    name: Acme\n    credentials:\n"
                "      - { sha256: \"%s\" }\n    deny: [ \"* /v1/admin/**\" ]\n" % fp)
    outs = {}
    rc, o, e = run([kw, "run", "-r", pcap, "--rules", rules, "--db", db, "--eve",
                    os.path.join(work, "eve.json"), "--user", "root", "--no-progress"])
    if rc not in (0, 1):
        print("FAIL: run exited %d: %s" % (rc, e.decode("utf-8", "replace")))
        return 1
    outs["run"] = (o, e)
    outs["audit"] = run([kw, "audit", "--db", db])[1:]
    outs["baseline show"] = run([kw, "baseline", "show", "--db", db])[1:]
    keys = [l.split(b"  ")[0] for l in outs["baseline show"][0].splitlines()[1:] if l.strip()]
    for k in keys:
        outs["baseline show " + k.decode("utf-8", "replace")] = run(
            [kw, "baseline", "show", unescape(k), "--db", db])[1:]
    outs["rules suggest"] = run([kw, "rules", "suggest", "--identity", "c01", "--db", db])[1:]
    html = os.path.join(work, "r.html")
    outs["report"] = run([kw, "report", "--rules", rules, "--db", db, "-o", html])[1:]
    with open(html, "rb") as f:
        outs["report page"] = (f.read(), b"")
    bad = []
    for name, (o, e) in outs.items():
        for which, text in (("stdout", o), ("stderr", e)):
            for m in BAD.finditer(text):
                ctx = text[max(0, m.start() - 30):m.end() + 10]
                bad.append("%s %s: %r in ...%r" % (name, which, m.group(0), ctx))
    if bad:
        print("FAIL: raw control bytes reach a terminal:\n  " + "\n  ".join(bad[:20]))
        return 1
    alerts = [l for l in outs["run"][0].splitlines() if b" ALERT " in l]
    allout = b"".join(o + e for o, e in outs.values())
    shown = {w: allout.count(w) for w in (b"\\x1b", b"\\u202e", b"\\u009b", b"\\x08", b"\\xff")}
    print("%d alert lines; profiles %d; escaped forms shown: %s" %
          (len(alerts), len(keys), {k.decode(): v for k, v in shown.items()}))
    if not alerts or any(b"\\x1b" not in l for l in alerts[:1]):
        print("FAIL: no alert line showing the escaped request")
        return 1
    audit = outs["audit"][0]
    if b"\\x1b" not in audit or b"\\u202e" not in audit:
        print("FAIL: audit does not show the escaped host/user")
        # what was recorded and what keywarden made of it, for the next reader
        r = subprocess.run(["tcpdump", "-nn", "-r", pcap], capture_output=True, text=True)
        print("recording (%d packets):\n%s" % (len(r.stdout.splitlines()), r.stdout[-3000:]))
        print("audit:\n" + audit.decode("utf-8", "replace")[-2000:])
        return 1
    if min(shown.values()) < 1:
        print("FAIL: some hostile text was not shown escaped anywhere")
        return 1
    print("ok")
    return 0


def unescape(k):
    """The baseline list shows keys escaped (\\xNN, \\uNNNN); the command
    takes the key itself."""
    s = k.decode("utf-8", "replace")
    out = bytearray()
    i = 0
    while i < len(s):
        if s.startswith("\\x", i) and i + 4 <= len(s):
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        elif s.startswith("\\u", i) and i + 6 <= len(s):
            out += chr(int(s[i + 2:i + 6], 16)).encode()
            i += 6
        else:
            out += s[i].encode()
            i += 1
    return bytes(out)


if __name__ == "__main__":
    sys.exit(main())
