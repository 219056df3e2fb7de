#!/usr/bin/env python3
"""The evasion suite against real frameworks (issue 15, item 1).

The backend personalities (analyzer/path/persona.c, docs/personalities.md)
say how a framework reads a request: which override header or `_method`
changes the method, which header changes the path, whether `;params`,
case, a suffix, a trailing slash or a second decode matter. Here Debian
12's own frameworks run on 127.0.0.1 (high ports, this test's children),
each a tiny app under tests/frameworks/ with three routes and no business
(`/v1/orders`, `/v1/orders/<id>`, `/v1/admin/users`), answering
"RAN <method> <route>" with the method its handler saw. curl sends the
same trick requests to each (`--path-as-is`, one token each); tcpdump
records lo; keywarden replays the recording twice, with every service's
`backend:` its framework's personality and with `generic`, under a
deny-only rule (`* /v1/admin/**`, `DELETE /v1/**`).

Checked, per framework and request: when the handler that ran was a
forbidden method or route, keywarden alerted on the request with both
replays, the framework's personality and generic (except the documented
limit: `_method` in a form body is never seen); a benign request (every
reading allowed) is alerted by neither.
Printed: a row per request (what ran, what each replay did) and the
summary table of docs/personalities.md. Nothing here leaves 127.0.0.1.

Needs root (tcpdump) and curl; a framework whose Debian package is missing
is left out, and the test exits 77 (skipped) when none is installed.
Usage: e2e_frameworks.py KEYWARDEN
"""
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

from ops.kwtest import LoCapture, free_port, wait_port  # tests/ops/kwtest.py: tcpdump on lo

SKIP = 77
HOST = "api.acme.internal"
HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "frameworks")

POST = ["-X", "POST", "--data", "{}", "-H", "Content-Type: application/json"]
# (name, curl arguments, target, benign). benign: every reading of it is
# allowed by the rule (the wire one, each override, each path reading).
TRICKS = [
    ("plain", [], "/v1/admin/users", False),
    ("dots", [], "/v1/orders/../admin/users", False),
    ("enc-dots", [], "/v1/orders/%2e%2e/admin/users", False),
    ("dbl-enc-dots", [], "/v1/orders/%252e%252e/admin/users", False),
    ("enc-slash", [], "/v1/admin%2fusers", False),
    ("dbl-enc-slash", [], "/v1/admin%252fusers", False),
    ("enc-letter", [], "/v1/%61dmin/users", False),
    ("double-slash", [], "//v1//admin/users", False),
    ("matrix", [], "/v1/admin;x=1/users", False),
    ("matrix-end", [], "/v1/admin/users;x=1", False),
    ("matrix-dots", [], "/v1/orders/..;/admin/users", False),
    ("overlong", [], "/v1/orders/%c0%ae%c0%ae/admin/users", False),
    ("case-upper", [], "/V1/ADMIN/USERS", False),
    ("case-mixed", [], "/v1/Admin/users", False),
    ("suffix", [], "/v1/admin/users.json", False),
    ("trailing", [], "/v1/admin/users/", False),
    ("hmo", POST + ["-H", "X-HTTP-Method-Override: DELETE"], "/v1/orders", False),
    ("xhm", POST + ["-H", "X-HTTP-Method: DELETE"], "/v1/orders", False),
    ("xmo", POST + ["-H", "X-Method-Override: DELETE"], "/v1/orders", False),
    ("qmethod", POST, "/v1/orders?_method=DELETE", False),
    ("form-method", ["-X", "POST", "--data", "_method=DELETE"], "/v1/orders", False),
    ("original-url", ["-H", "X-Original-URL: /v1/admin/users"], "/v1/orders", False),
    ("rewrite-url", ["-H", "X-Rewrite-URL: /v1/admin/users"], "/v1/orders", False),
    ("benign", [], "/v1/orders/7", True),
    ("benign-post", POST, "/v1/orders", True),
    ("benign-case", [], "/V1/ORDERS/7", True),
    ("benign-suffix", [], "/v1/orders/7.json", True),
    ("benign-trailing", [], "/v1/orders/", True),
    ("benign-override", POST + ["-H", "X-HTTP-Method-Override: PUT"], "/v1/orders", True),
    ("benign-matrix", [], "/v1/orders;x=1/7", True),
]
# What keywarden cannot see, by design (docs/personalities.md, Limits):
# bodies are counted, never kept, so a form field `_method` is invisible.
BLIND = {"form-method"}
ROUTES = {"orders": "/v1/orders", "order": "/v1/orders/7", "admin": "/v1/admin/users"}


def start_express(work, port):
    if not os.path.isdir("/usr/share/nodejs/express") or not shutil.which("node"):
        return None
    env = dict(os.environ, NODE_PATH="/usr/share/nodejs:/usr/lib/nodejs")
    return subprocess.Popen(["node", os.path.join(APPS, "express_app.js"), str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# Debian's own interpreter: python3-django is installed for it, whatever
# python3 runs this test.
DEBIAN_PY = "/usr/bin/python3"


def start_django(work, port):
    if subprocess.run([DEBIAN_PY, "-c", "import django"], capture_output=True).returncode:
        return None
    return subprocess.Popen([DEBIAN_PY, os.path.join(APPS, "django_app.py"), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=work)


def start_flask(work, port):
    if subprocess.run([DEBIAN_PY, "-c", "import flask"], capture_output=True).returncode:
        return None
    return subprocess.Popen([DEBIAN_PY, os.path.join(APPS, "flask_app.py"), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=work)


JARS = "/usr/share/java"
# Debian's jar names: libspring-*-java 4.3.30 installs spring3-*.jar
SPRING_CP = ["spring3-%s.jar" % m for m in ("core", "beans", "context", "aop", "expression",
                                             "web", "web.servlet")] + \
    ["tomcat9-%s.jar" % m for m in ("catalina", "coyote", "util", "util-scan", "juli", "api",
                                    "servlet-api", "annotations-api", "jaspic-api", "el-api",
                                    "jsp-api")] + ["commons-logging.jar"]
ECJ = "eclipse-jdt-core.jar"  # the Eclipse compiler Tomcat compiles JSPs with


def start_spring(work, port):
    cp = [os.path.join(JARS, j) for j in SPRING_CP]
    if not shutil.which("java") or not all(os.path.exists(j) for j in cp + [
            os.path.join(JARS, ECJ)]):
        return None
    out = os.path.join(work, "spring")
    # Java 8 class files: Spring 4.3's ASM cannot enhance newer ones (its
    # @Configuration class failed to load when compiled for 17)
    os.makedirs(os.path.join(out, "classes"))
    r = subprocess.run(["java", "-cp", os.path.join(JARS, ECJ),
                        "org.eclipse.jdt.internal.compiler.batch.Main", "-8", "-proc:none",
                        "-nowarn", "-cp", ":".join(cp), "-d", os.path.join(out, "classes"),
                        os.path.join(APPS, "SpringApp.java")], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit("FAIL: ECJ did not compile SpringApp.java: %s" % r.stdout + r.stderr)
    return subprocess.Popen(["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp",
                             ":".join([os.path.join(out, "classes")] + cp), "SpringApp",
                             str(port), out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# (name, personality its `backend:` names, start(work, port) -> Popen or None)
FRAMEWORKS = [
    ("express", "express", start_express),
    ("django", "django", start_django),
    ("spring", "spring", start_spring),
    ("flask", "generic", start_flask),  # no flask personality
]


def token(fw, trick):
    return "kw-fw-%s-%s" % (fw, trick)


def send(port, fw, trick, args, target):
    """What ran: (method, route) from the handler's answer, or None; the status."""
    r = subprocess.run(["curl", "-sS", "--path-as-is", "-w", "\n%{http_code}", "--max-time", "5",
                        "-H", "Host: " + HOST, "-H", "Authorization: Bearer " + token(fw, trick)] +
                       args + ["http://127.0.0.1:%d%s" % (port, target)],
                       capture_output=True, text=True, errors="replace")
    body, _, code = r.stdout.rpartition("\n")
    m = re.match(r"RAN (\S+) (\S+)$", body.strip())
    return ((m.group(1), m.group(2)) if m and code.startswith("2") else None), code or "-"


def forbidden(method, route):
    return route == "admin" or method == "DELETE"


def replay(kw, work, pcap, ports, own):
    """Alert kinds per identity, and (method, path, flags) as judged."""
    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as f:
        f.write("identities:\n")
        for fw in ports:
            for name, _, _, _ in TRICKS:
                t = token(fw, name)
                f.write("  - id: %s\n    credentials: [ { sha256: \"%s\" } ]\n"
                        "    deny: [ \"* /v1/admin/**\", \"DELETE /v1/**\" ]\n" %
                        (t, hashlib.sha256(t.encode()).hexdigest()))
    cfg = os.path.join(work, "kw.yaml")
    with open(cfg, "w") as f:
        f.write("services:\n")
        for fw, port in ports.items():
            f.write("  - { host: \"%s:%d\", backend: %s }\n" %
                    (HOST, port, dict((n, p) for n, p, _ in FRAMEWORKS)[fw] if own else "generic"))
    eve, db = os.path.join(work, "eve.json"), os.path.join(work, "kw.db")
    for p in (eve, db):
        if os.path.exists(p):
            os.unlink(p)
    r = subprocess.run([kw, "run", "-c", cfg, "-r", pcap, "--rules", rules, "--db", db,
                        "--eve", eve, "--user", "root", "--no-progress", "-q"],
                       capture_output=True, timeout=120)
    if r.returncode not in (0, 1):
        raise SystemExit("FAIL: run exited %d: %s" %
                         (r.returncode, r.stderr.decode("utf-8", "replace")))
    recs = [json.loads(line) for line in open(eve) if line.strip()]
    alerted, judged = {}, {}
    for x in recs:
        ident = (x.get("identity") or {}).get("id")
        if x.get("event_type") == "alert":
            alerted.setdefault(ident, []).append(x["alert"]["kind"])
        elif x.get("event_type") == "http" and ident:
            h = x["http"]
            judged[ident] = "%s %s" % (h.get("effective_method") or h.get("http_method"),
                                       h.get("effective_path") or h.get("path"))
    return alerted, judged


def main():
    kw = sys.argv[1]
    if os.geteuid() != 0:
        print("skipped: needs root for tcpdump on lo")
        return SKIP
    for tool in ("tcpdump", "curl"):
        if not shutil.which(tool):
            print("skipped: %s not installed (scripts/setup.sh installs it)" % tool)
            return SKIP
    work = tempfile.mkdtemp(prefix="kw-e2e-frameworks-")
    os.chmod(work, 0o755)
    procs, ports = {}, {}
    try:
        for name, _, start in FRAMEWORKS:
            port = free_port()
            p = start(work, port)
            if p is None:
                print("left out: %s (its Debian package is not installed; scripts/setup.sh)" %
                      name)
                continue
            procs[name], ports[name] = p, port
        if not procs:
            print("skipped: no framework installed (scripts/setup.sh installs them)")
            return SKIP
        for name, p in procs.items():
            wait_port(ports[name], p, name, t=45.0)
        pcap = os.path.join(work, "frameworks.pcap")
        cap = LoCapture(pcap, list(ports.values()))
        ran, status = {}, {}
        for fw, port in ports.items():
            for name, args, target, _ in TRICKS:
                ran[(fw, name)], status[(fw, name)] = send(port, fw, name, args, target)
        if not cap.stop():
            raise SystemExit("FAIL: tcpdump ended early")
        return check(kw, work, pcap, ports, ran, status)
    finally:
        for p in procs.values():
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


def check(kw, work, pcap, ports, ran, status):
    own_alerts, own_judged = replay(kw, work, pcap, ports, True)
    gen_alerts, _ = replay(kw, work, pcap, ports, False)
    persona = dict((n, p) for n, p, _ in FRAMEWORKS)
    fails, table = [], []
    print("%-8s %-16s %-38s %-20s %-4s %-26s %s" % ("fw", "trick", "sent", "ran", "",
                                                    "own personality", "generic"))
    for fw in ports:
        n = forb = own = gen = extra = gextra = 0
        missed = []
        for name, _, target, benign in TRICKS:
            t = token(fw, name)
            got = ran[(fw, name)]
            bad = bool(got) and forbidden(*got)
            a_own, a_gen = own_alerts.get(t, []), gen_alerts.get(t, [])
            n += 1
            forb += bad
            own += bool(bad and a_own)
            gen += bool(bad and a_gen)
            extra += bool(a_own and not bad)
            gextra += bool(a_gen and not bad)
            print("%-8s %-16s %-38s %-20s %-4s %-26s %s" % (
                fw, name, target, ("%s %s" % got) if got else "(%s)" % status[(fw, name)],
                "FORB" if bad else "",
                ",".join(sorted(set(a_own))) or "- (%s)" % own_judged.get(t, "no record"),
                ",".join(sorted(set(a_gen))) or "-"))
            if bad and not (a_own and a_gen):
                missed.append(name + ("" if a_own else " (own)") + ("" if a_gen else " (generic)"))
                if name not in BLIND:
                    fails.append("%s %s: the handler ran %s %s; alerted as %s: %s, as generic: "
                                 "%s" % (fw, name, got[0], ROUTES[got[1]], persona[fw],
                                         a_own or "no", a_gen or "no"))
            if name in ("plain", "benign") and not got:
                fails.append("%s %s: no handler ran (%s): the app is broken, the suite proves "
                             "nothing" % (fw, name, status[(fw, name)]))
            if benign and (a_own or a_gen):
                fails.append("%s %s: benign, alerted (%s / generic %s)" % (fw, name, a_own,
                                                                           a_gen))
        table.append("| %s (`%s`) | %d | %d | %d | %d | %s | %d / %d |" % (
            fw, persona[fw], n, forb, own, gen, ", ".join(missed) or "0", extra, gextra))
    print("\n| framework (backend) | requests | ran forbidden | alerted, own | alerted, generic "
          "| missed | alerted, not run forbidden (own / generic) |\n|---|---|---|---|---|---|---|")
    print("\n".join(table))
    if fails:
        print("FAIL:\n  " + "\n  ".join(fails))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
