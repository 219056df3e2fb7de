#!/usr/bin/env python3
"""Claimed identities are called so (issue 15).

keywarden attributes a request to an identity from a Basic user name or a
JWT's iss+sub claims without checking the password or the signature: the
server's answer vouches for them, keywarden does not. An alert about such
an identity must say so, and the records must say how each identity was
attributed.

curl on 127.0.0.1 sends, to python's http.server (which answers 200 to
anything), a denied request as c01 (claimed by its Basic user name, any
password), one as c02 (claimed by a JWT's iss and sub; the signature is
garbage) and one as c03 (a bearer token whose SHA-256 is in the rules);
tcpdump records lo and keywarden replays it.

Checked: the alert lines of c01 and c02 say "claimed identity" with the
claim named, c03's does not; the EVE identity objects carry attribution
basic_user / jwt / credential and claimed true only for the first two.

Needs root (tcpdump): exits 77 (skipped) otherwise.
Usage: e2e_claimed.py KEYWARDEN
"""
import base64
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

from ops.kwtest import JsonOk, LoCapture, recorded  # tests/ops/kwtest.py: JSON server, tcpdump on lo

SKIP = 77
TOKEN = "kw-e2e-claimed-bearer-0123456789abcdef"


def b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


JWT = b64({"alg": "RS256", "typ": "JWT"}) + "." + \
    b64({"iss": "https://idp.acme.test", "sub": "svc-etl", "exp": 4102444800}) + ".c2lnbmF0dXJl"
CALLS = [  # (who, curl auth arguments)
    ("c01", ["-u", "acme-etl:any-password-at-all"]),
    ("c02", ["-H", "Authorization: Bearer " + JWT]),
    ("c03", ["-H", "Authorization: Bearer " + TOKEN]),
]
RULES = """identities:
  - id: c01
    name: Acme ETL
    credentials: [ {{ basic_user: acme-etl }} ]
    deny: [ "* /v1/admin/**" ]
  - id: c02
    name: Acme Svc
    credentials: [ {{ jwt: {{ iss: "https://idp.acme.test", sub: svc-etl }} }} ]
    deny: [ "* /v1/admin/**" ]
  - id: c03
    name: Acme Key
    credentials: [ {{ sha256: "{fp}" }} ]
    deny: [ "* /v1/admin/**" ]
"""


def main():
    kw = sys.argv[1]
    if os.geteuid() != 0:
        print("skipped: needs root for tcpdump on lo")
        return SKIP
    for tool in ("tcpdump", "curl"):
        if not shutil.which(tool):
            print("skipped: %s not installed" % tool)
            return SKIP
    work = tempfile.mkdtemp(prefix="kw-e2e-claimed-")
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), JsonOk)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    port = api.server_address[1]
    try:
        pcap = os.path.join(work, "claimed.pcap")

        def record():
            cap = LoCapture(pcap, [port])
            for who, auth in CALLS:
                subprocess.run(["curl", "-s", "-o", "/dev/null", *auth, "-H", "Host: api.acme.test",
                                "http://127.0.0.1:%d/v1/admin/users?by=%s" % (port, who)],
                               check=True, timeout=10)
            return cap.stop()

        recorded(record)
        return check(kw, work, pcap)
    finally:
        api.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def check(kw, work, pcap):
    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as f:
        f.write(RULES.format(fp=hashlib.sha256(TOKEN.encode()).hexdigest()))
    eve = os.path.join(work, "eve.json")
    r = subprocess.run([kw, "run", "-r", pcap, "--rules", rules, "--db", os.path.join(work, "kw.db"),
                        "--eve", eve, "--user", "root", "--no-progress"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode not in (0, 1):
        print("FAIL: run exited %d: %s" % (r.returncode, r.stderr))
        return 1
    lines = [l for l in r.stdout.splitlines() if " ALERT " in l]
    recs = [json.loads(l) for l in open(eve)]
    fails = []
    want = {"c01": ("basic_user", True, "claimed identity: a Basic user name"),
            "c02": ("jwt", True, "claimed identity: the token's iss and sub claims"),
            "c03": ("credential", False, None)}
    for who, (via, claimed, words) in want.items():
        line = [l for l in lines if (" %s " % who) in l]
        http = [x for x in recs if x.get("event_type") == "http"
                and x.get("identity", {}).get("id") == who]
        alerts = [x for x in recs if x.get("event_type") == "alert"
                  and x.get("identity", {}).get("id") == who]
        print("%s: %d alert line(s), %d http, %d alert record(s): %s" %
              (who, len(line), len(http), len(alerts), line[:1]))
        if not line or not http or not alerts:
            fails.append("%s: no alert line, http or alert record" % who)
            continue
        for x in http + alerts:
            ident = x["identity"]
            if ident.get("attribution") != via or bool(ident.get("claimed")) != claimed:
                fails.append("%s: %s identity %r, want attribution %s claimed %s" %
                             (who, x["event_type"], ident, via, claimed))
        summary = alerts[0]["alert"].get("summary", "")
        if words and (words not in line[0] or words not in summary):
            fails.append("%s: alert does not say %r: %s" % (who, words, line[0]))
        if not words and "claimed identity" in line[0] + summary:
            fails.append("%s: a fingerprint match called claimed: %s" % (who, line[0]))
    if TOKEN in open(eve).read() or "any-password-at-all" in open(eve).read():
        fails.append("a secret reached the EVE file")
    for f in fails:
        print("FAIL: " + f)
    if not fails:
        print("ok: claimed identities named as such (Basic user, JWT claims); a fingerprint match not")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
