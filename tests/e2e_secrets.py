#!/usr/bin/env python3
"""Secrets in query strings never reach an output (issue 15).

curl sends one request per name of the default redaction list to a real
HTTP server (python's http.server) on 127.0.0.1, each carrying a distinct
secret value under that name (as written, upper case and percent-encoded),
while tcpdump records lo. The config's `credentials:` names only the
Authorization header and a cookie, so none of these parameters is a
configured source: the default list alone must redact them. Then
`keywarden run -r` replays the capture with every output on: EVE, the
human alert lines (stdout), syslog, a Slack incoming webhook (rate
limited to a burst of 5 and digests, so it gets fewer messages) and a signed
webhook (tests/tools/receiver.py on 127.0.0.1), the SQLite database.

Checked: no secret value appears in any of them (nor in stderr); every
name shows up in EVE as NAME=REDACTED; the alerts were really delivered
(so the check is not vacuous); and a control parameter that is not on the
list reaches EVE as sent (the redaction is not "drop every query").

syslog: glibc writes to /dev/log, which this machine does not have, and
which belongs to the whole machine. keywarden runs in a private mount
namespace (unshare -m) where /dev is a tmpfs holding null/zero/random/
urandom and a /dev/log bound to this test's own datagram socket. Nothing
outside the namespace changes.

Needs root (tcpdump, unshare): exits 77 (skipped) otherwise.
Usage: e2e_secrets.py KEYWARDEN RECEIVER_PY
"""
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from ops.kwtest import JsonOk, LoCapture, recorded  # tests/ops/kwtest.py: JSON server, tcpdump on lo

SKIP = 77
TOKEN = "kw-e2e-secrets-bearer-0123456789abcdef"

# The default redaction list (analyzer/identity/cred.c, docs/credentials.md).
NAMES = ["token", "access_token", "refresh_token", "id_token", "auth_token", "client_secret",
         "code", "code_verifier", "assertion", "client_assertion", "jwt",
         "password", "passwd", "pass", "pwd",
         "api_key", "apikey", "api-key", "key", "secret", "private_token", "session", "sessionid",
         "signature", "sig", "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token",
         "X-Goog-Signature", "X-Goog-Credential"]


class Api(JsonOk):
    BODY = b'{"ok":true}'


def secret_of(i, form):
    # distinct per request and per form, easy to grep, never a substring
    # of another (fixed width)
    return "Zq%02d%sSECRETv4lue" % (i, form)


def pct(s):
    return "".join("%%%02X" % ord(c) for c in s)


def start_receiver(rx, mode, out):
    p = subprocess.Popen([sys.executable, rx, "--mode", mode, "--out", out] +
                         (["--secret", "kw-e2e-hook-secret"] if mode == "webhook" else []),
                         stdout=subprocess.PIPE, text=True)
    return p, int(p.stdout.readline())


def record(work, port):
    pcap = os.path.join(work, "secrets.pcap")
    cap = LoCapture(pcap, [port])
    for i, name in enumerate(NAMES):
        q = "%s=%s&%s=%s&%s=%s&keep=visible%02d" % (
            name, secret_of(i, "a"), name.upper(), secret_of(i, "b"), pct(name),
            secret_of(i, "c"), i)
        # one endpoint per name (one alert each): letters only, "_"/"-" spelt
        seg = name.lower().replace("_", "u").replace("-", "h")
        url = "http://127.0.0.1:%d/v1/redact/n%s?%s" % (port, seg, q)
        subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", "Authorization: Bearer " + TOKEN,
                        "-H", "Host: api.acme.internal", url], check=True)
    return pcap if cap.stop() else None


def syslog_listener(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.2)
    got = []
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            try:
                got.append(s.recv(65536).decode("utf-8", "replace"))
            except socket.timeout:
                pass

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return got, stop, t


def run_keywarden(kw, work, pcap, slack_port, hook_port):
    cfg = os.path.join(work, "kw.yaml")
    rules = os.path.join(work, "rules.yaml")
    with open(cfg, "w") as f:
        f.write("credentials:\n  - { header: Authorization }\n  - { cookie: sess }\n"
                "alerts:\n"
                "  slack: { webhook_url: \"env:KW_E2E_SLACK\" }\n"
                "  webhooks: [ { url: \"http://127.0.0.1:%d/hook\", secret: \"env:KW_E2E_HOOK\" } ]\n"
                "  syslog: local3\n"
                "  drain_timeout: 3s\n" % hook_port)
    fp = hashlib.sha256(TOKEN.encode()).hexdigest()
    with open(rules, "w") as f:
        f.write("identities:\n  - id: c01\n    name: Acme\n    credentials:\n"
                "      - { sha256: \"%s\" }\n    deny: [ \"* /v1/redact/**\" ]\n" % fp)
    env = dict(os.environ, KW_E2E_SLACK="http://127.0.0.1:%d/services/T0/B0/x" % slack_port,
               KW_E2E_HOOK="kw-e2e-hook-secret")
    sock = os.path.join(work, "log.sock")
    olddev = os.path.join(work, "olddev")
    os.mkdir(olddev)
    got, stop, t = syslog_listener(sock)
    ns = ('mount --make-rprivate / && mount --rbind /dev "$W/olddev" && '
          'mount -t tmpfs kwdev /dev && '
          'for n in null zero random urandom; do touch /dev/$n && '
          'mount --bind "$W/olddev/$n" /dev/$n || exit 9; done && '
          'ln -s /proc/self/fd /dev/fd && touch /dev/log && '
          'mount --bind "$W/log.sock" /dev/log && exec "$@"')
    env["W"] = work
    cmd = ["unshare", "-m", "sh", "-c", ns, "sh", kw, "run", "-c", cfg, "-r", pcap, "--rules",
           rules, "--eve", os.path.join(work, "eve.json"), "--db", os.path.join(work, "kw.db"),
           "--user", "root", "--no-progress"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    time.sleep(0.3)
    stop.set()
    t.join()
    if r.returncode != 0:
        raise SystemExit("keywarden failed (%d): %s" % (r.returncode, r.stderr))
    return r.stdout, r.stderr, got


def main():
    kw, rx = sys.argv[1], sys.argv[2]
    if os.geteuid() != 0:
        print("skipped: needs root for tcpdump on lo and a private mount namespace")
        return SKIP
    for tool in ("tcpdump", "curl", "unshare"):
        if not shutil.which(tool):
            print("skipped: %s not installed" % tool)
            return SKIP
    work = tempfile.mkdtemp(prefix="kw-e2e-secrets-")
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    procs = []
    try:
        pcap = recorded(lambda: record(work, api.server_address[1]))
        slack, slack_port = start_receiver(rx, "slack", os.path.join(work, "slack.jsonl"))
        hook, hook_port = start_receiver(rx, "webhook", os.path.join(work, "hook.jsonl"))
        procs = [slack, hook]
        out, err, syslog = run_keywarden(kw, work, pcap, slack_port, hook_port)
        return check(work, out, err, syslog)
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        api.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def check(work, out, err, syslog):
    outputs = {"eve": read(os.path.join(work, "eve.json")), "stdout": out, "stderr": err,
               "syslog": "\n".join(syslog), "slack": read(os.path.join(work, "slack.jsonl")),
               "webhook": read(os.path.join(work, "hook.jsonl"))}
    # the database and its WAL, as bytes
    for fn in os.listdir(work):
        if fn.startswith("kw.db"):
            outputs[fn] = read(os.path.join(work, fn))
    bad = []
    for i, name in enumerate(NAMES):
        for form in "abc":
            s = secret_of(i, form)
            bad += ["%s: %s (%s, form %s)" % (k, s, name, form) for k, v in outputs.items()
                    if s in v]
    if bad:
        print("FAIL: secrets in outputs:\n  " + "\n  ".join(bad[:20]))
        return 1
    recs = [json.loads(l) for l in outputs["eve"].splitlines() if l.strip()]
    urls = [r["http"]["url"] for r in recs if r.get("event_type") == "http"]
    if len(urls) != len(NAMES):
        print("FAIL: %d http records, want %d" % (len(urls), len(NAMES)))
        return 1
    for i, name in enumerate(NAMES):
        u = [x for x in urls if "keep=visible%02d" % i in x]
        if len(u) != 1:
            print("FAIL: the control parameter of %s is not in EVE as sent" % name)
            return 1
        want = ["%s=REDACTED" % name, "%s=REDACTED" % name.upper(), "%s=REDACTED" % pct(name)]
        if any(w not in u[0] for w in want):
            print("FAIL: %s: %s" % (name, u[0]))
            return 1
    # the alerts were produced and delivered: the no-secret check saw them
    n_alerts = sum(r.get("event_type") == "alert" for r in recs)
    lines = {k: len([l for l in outputs[k].splitlines() if l.strip()])
             for k in ("stdout", "syslog", "slack", "webhook")}
    print("%d names x 3 forms redacted; %d http records, %d alerts; lines: %s" %
          (len(NAMES), len(urls), n_alerts, lines))
    if n_alerts < len(NAMES) or min(lines.values()) < 1:
        print("FAIL: outputs missing (alerts %d, lines %s)" % (n_alerts, lines))
        return 1
    if "REDACTED" not in outputs["slack"] or "REDACTED" not in outputs["webhook"] or \
            "REDACTED" not in outputs["syslog"] or "REDACTED" not in outputs["stdout"]:
        print("FAIL: an alert output does not show the redacted target")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
