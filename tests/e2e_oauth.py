#!/usr/bin/env python3
"""e2e_oauth (issue 17): authorization the API should have refused, seen on
the wire.

A small real HTTP API on 127.0.0.1 (Python's http.server in its own
process) that, like the broken APIs this detection exists for, answers
every authenticated request without looking at scopes, session age or DPoP
proofs (it refuses only when told to, to show refusals stay quiet or low).
curl sends it requests carrying real JWTs and DPoP proofs minted with
libcrypto (tests/kwmint: RS256 access tokens, ES256 / RS256 / EdDSA
proofs); tcpdump records lo; `keywarden run -r` reads the recording.

Each request carries ?case=NAME and its own token (so alert suppression
cannot hide a case); the alert kinds raised for each case must be exactly
the expected set: every incident found, correct traffic quiet. No raw
token or proof may appear in EVE or the database.

Needs root (tcpdump on lo); exits 77 (skipped) otherwise.
Usage: e2e_oauth.py KEYWARDEN KWMINT
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from ops.kwtest import LoCapture, free_port, wait_port  # tests/ops/kwtest.py: tcpdump on lo, stopped when quiet

KW, MINT = sys.argv[1], sys.argv[2]
ISS = "https://idp.acme.test"
HOST = "api.acme.test"

SERVER = r'''
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if self.headers.get("X-Refuse"):
            code = 403
        elif not self.headers.get("Authorization"):
            code = 401
        else:
            code = 201 if self.command == "POST" else 200
        body = b'{"ok":true}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_DELETE = handle_any
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''

RULES = f"""
scopes:
  "POST /v1/refunds": refunds:write
  "GET /v1/orders/*": {{ any_of: [ orders:read, [ orders:admin, audit ] ] }}
identities:
  - id: c01
    name: Acme Data Ltd
    credentials: [ {{ jwt: {{ iss: "{ISS}", sub: c01 }} }} ]
    max_scopes: [ "orders:*", refunds:write ]
    session: {{ max_age: 8h }}
  - id: c02
    name: Pet Partners
    credentials: [ {{ jwt: {{ iss: "{ISS}", sub: c02 }} }} ]
detections:
  dpop: {{ window: 2m }}
"""


# The service's OpenAPI document, imported with `keywarden openapi import`:
# its operations' `security` says which scopes they need, in the forms
# public specs use (Swagger Petstore's: an OAuth 2 scheme, an API key as an
# alternative, a document-wide default). The rules file's `scopes:` entry
# for POST /v1/refunds wins over the document's.
SPEC = """openapi: 3.0.3
info: { title: Pets, version: "1" }
security: [ { pets_auth: [ "pets:read" ] } ]
components:
  securitySchemes:
    pets_auth:
      type: oauth2
      flows: { clientCredentials: { tokenUrl: "https://idp.acme.test/token",
               scopes: { "pets:read": read, "pets:write": write, "payments:admin": admin } } }
    api_key: { type: apiKey, name: X-Api-Key, in: header }
paths:
  /v1/pets:
    get: { responses: { "200": { description: ok } } }
    post:
      security: [ { pets_auth: [ "pets:write" ] } ]
      responses: { "201": { description: made } }
  /v1/pets/{petId}:
    get:
      parameters: [ { name: petId, in: path, required: true, schema: { type: integer } } ]
      security: [ { api_key: [] }, { pets_auth: [ "pets:read" ] } ]
      responses: { "200": { description: ok } }
  /v1/refunds:
    post:
      security: [ { pets_auth: [ "payments:admin" ] } ]
      responses: { "201": { description: made } }
"""


def skip(why):
    print("SKIP:", why)
    sys.exit(77)


def mint(*args):
    return subprocess.run([MINT, *args], check=True, capture_output=True, text=True).stdout.strip()


def main():
    if os.geteuid() != 0:
        skip("needs root for tcpdump on lo")
    for tool in ("tcpdump", "curl"):
        if not shutil.which(tool):
            skip(f"{tool} not installed")
    work = tempfile.mkdtemp(prefix="kw-oauth-")
    try:
        run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work):
    k = {}
    for name, alg in (("idp", "RS256"), ("client", "ES256"), ("thief", "ES256"), ("rsa", "RS256"),
                      ("ed", "EdDSA")):
        k[name] = os.path.join(work, name + ".pem")
        mint("key", alg, k[name])
    jkt = {n: mint("jkt", k[n]) for n in ("client", "rsa", "ed")}
    now = int(time.time())
    serial = iter(range(1000))

    def token(scope, extra=None):
        claims = {"iss": ISS, "sub": "c01", "iat": now - 60, "exp": now + 3600, "jti": f"t{next(serial)}",
                  "scope": scope}
        claims.update(extra or {})
        return mint("jwt", "RS256", k["idp"], json.dumps(claims))

    def proof(key, alg, htm, path, tok, iat=None, jti=None):
        return mint("dpop", alg, k[key], htm, f"https://{HOST}{path}", str(iat or now),
                    jti or f"p{next(serial)}", tok)

    # (case, method, path, authorization, dpop proof, refuse?, expected kinds)
    cases = []
    c02 = {"sub": "c02"}
    # scopes the OpenAPI document requires (c02 has no rules of its own)
    t = token("pets:write", c02)
    cases.append(("doc_ok", "POST", "/v1/pets", "Bearer " + t, None, False, set()))
    t = token("pets:read", c02)
    cases.append(("doc_accepted", "POST", "/v1/pets", "Bearer " + t, None, False,
                  {"scope_not_granted_accepted"}))
    t = token("pets:write", c02)
    cases.append(("doc_default", "GET", "/v1/pets", "Bearer " + t, None, False,
                  {"scope_not_granted_accepted"}))
    t = token("pets:read", c02)
    cases.append(("doc_refused", "POST", "/v1/pets", "Bearer " + t, None, True, {"scope_not_granted"}))
    t = token("orders:read", c02)
    cases.append(("doc_api_key_alt", "GET", "/v1/pets/5", "Bearer " + t, None, False, set()))
    t = token("refunds:write")
    cases.append(("ok", "POST", "/v1/refunds", "Bearer " + t, None, False, set()))
    t = token("orders:read")
    cases.append(("scope_accepted", "POST", "/v1/refunds", "Bearer " + t, None, False,
                  {"scope_not_granted_accepted"}))
    t = token("orders:read")
    cases.append(("scope_refused", "POST", "/v1/refunds", "Bearer " + t, None, True, {"scope_not_granted"}))
    t = token("orders:admin audit")
    cases.append(("any_of_second", "GET", "/v1/orders/7", "Bearer " + t, None, False, {"scope_escalation"}))
    t = token("orders:read admin:users")
    cases.append(("escalation", "GET", "/v1/orders/8", "Bearer " + t, None, False, {"scope_escalation"}))
    t = token("orders:read", {"auth_time": now - 9 * 3600})
    cases.append(("session_old", "GET", "/v1/orders/9", "Bearer " + t, None, False, {"session_too_old"}))

    def bound(key):
        return token("refunds:write", {"cnf": {"jkt": jkt[key]}})

    t = bound("client")
    p = proof("client", "ES256", "POST", "/v1/refunds", t)
    cases.append(("dpop_ok", "POST", "/v1/refunds", "DPoP " + t, p, False, set()))
    cases.append(("dpop_replay", "POST", "/v1/refunds", "DPoP " + t, p, False, {"dpop_replay"}))
    t = bound("client")
    cases.append(("dpop_htu", "POST", "/v1/refunds", "DPoP " + t,
                  proof("client", "ES256", "POST", "/v1/orders/1", t), False, {"dpop_mismatch"}))
    t = bound("client")
    cases.append(("dpop_stale", "POST", "/v1/refunds", "DPoP " + t,
                  proof("client", "ES256", "POST", "/v1/refunds", t, iat=now - 600), False, {"dpop_stale"}))
    t = bound("client")
    cases.append(("dpop_none", "POST", "/v1/refunds", "DPoP " + t, None, False, {"dpop_missing"}))
    t = bound("client")
    cases.append(("dpop_thief", "POST", "/v1/refunds", "DPoP " + t,
                  proof("thief", "ES256", "POST", "/v1/refunds", t), False, {"dpop_missing"}))
    t = bound("client")
    cases.append(("dpop_refused", "POST", "/v1/refunds", "DPoP " + t, None, True, set()))
    t = bound("rsa")
    cases.append(("dpop_rs256", "POST", "/v1/refunds", "DPoP " + t,
                  proof("rsa", "RS256", "POST", "/v1/refunds", t), False, set()))
    t = bound("ed")
    cases.append(("dpop_eddsa", "POST", "/v1/refunds", "DPoP " + t,
                  proof("ed", "EdDSA", "POST", "/v1/refunds", t), False, set()))

    port = free_port()
    srv = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    pcap = os.path.join(work, "oauth.pcap")
    cap = None
    try:
        wait_port(port)
        cap = LoCapture(pcap, [port])
        for name, method, path, authz, dp, refuse, _ in cases:
            cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method,
                   "-H", f"Host: {HOST}", "-H", f"Authorization: {authz}",
                   f"http://127.0.0.1:{port}{path}?case={name}"]
            if dp:
                cmd += ["-H", f"DPoP: {dp}"]
            if refuse:
                cmd += ["-H", "X-Refuse: 1"]
            if method == "POST":
                cmd += ["-d", "{}", "-H", "Content-Type: application/json"]
            code = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            want = "403" if refuse else ("201" if method == "POST" else "200")
            if code != want:
                raise SystemExit(f"{name}: the server answered {code}, expected {want}")
    finally:
        if cap and not cap.stop():
            print("note: tcpdump ended early")
        srv.terminate()
        srv.wait()

    rules = os.path.join(work, "oauth.yaml")
    with open(rules, "w") as f:
        f.write(RULES)
    eve, db = os.path.join(work, "eve.json"), os.path.join(work, "kw.db")
    spec = os.path.join(work, "pets.yaml")
    with open(spec, "w") as f:
        f.write(SPEC)
    r = subprocess.run([KW, "openapi", "import", spec, "--host", HOST, "--db", db],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"openapi import failed ({r.returncode}): {r.stderr}")
    r = subprocess.run([KW, "run", "-r", pcap, "--rules", rules, "--eve", eve, "--db", db, "-q",
                        "--user", "root"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"keywarden failed ({r.returncode}): {r.stderr}")
    recs = [json.loads(l) for l in open(eve)]
    http = [x for x in recs if x.get("event_type") == "http"]
    if len(http) != len(cases):
        raise SystemExit(f"{len(http)} http records for {len(cases)} requests")
    got = {c[0]: set() for c in cases}
    for a in recs:
        if a.get("event_type") != "alert" or "update_of" in a:
            continue
        url = a.get("http", {}).get("url", "")
        case = url.split("case=")[-1] if "case=" in url else None
        if case not in got:
            raise SystemExit(f"alert on an unknown request: {a['alert']['kind']} {url}")
        got[case].add(a["alert"]["kind"])
    bad = 0
    # the document's requirement is named as such, with its line
    for a in recs:
        url = a.get("http", {}).get("url", "") if a.get("event_type") == "alert" else ""
        if url.endswith("case=doc_accepted") and "update_of" not in a:
            ev = a.get("evidence", {}).get("expected", {})
            if ev.get("from") != "openapi" or ev.get("any_of") != ["pets:write"] \
                    or ":15" not in a["alert"].get("rule", ""):
                print(f"BAD doc_accepted: evidence {ev}, rule {a['alert'].get('rule')}")
                bad += 1
    for name, *_, want in cases:
        mark = "ok " if got[name] == want else "BAD"
        bad += got[name] != want
        print(f"{mark} {name:15} expected {sorted(want)} got {sorted(got[name])}")
    # dpop records: a proof is read and judged valid where it is valid
    for x in http:
        case = x["http"]["url"].split("case=")[-1]
        d = x.get("credential", {}).get("dpop")
        if case in ("dpop_ok", "dpop_rs256", "dpop_eddsa") and (not d or d.get("proof") != "valid"):
            print(f"BAD {case}: dpop record {d}")
            bad += 1

    # secrets: no token or proof (nor any 40-byte piece of one) at rest
    blobs = b""
    for path in (eve, db, db + "-wal"):
        if os.path.exists(path):
            blobs += open(path, "rb").read()
    for name, _, _, authz, dp, *_ in cases:
        for secret in (authz.split(" ", 1)[1], dp):
            if secret and secret[len(secret) // 2 - 20:len(secret) // 2 + 20].encode() in blobs:
                print(f"BAD {name}: a token or proof reached EVE or the database")
                bad += 1
    if bad:
        raise SystemExit(f"{bad} case(s) wrong")
    print(f"all {len(cases)} cases as expected")


if __name__ == "__main__":
    main()
