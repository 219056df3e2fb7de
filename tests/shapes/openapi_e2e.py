#!/usr/bin/env python3
"""OpenAPI in and out, end to end through the command line (issue 10).

Traffic shaped like three public APIs (kwsim apis), then:
1. round trip: `keywarden run` learns templates; `openapi export --host H`
   writes what it learned; a second run of the same capture on a fresh
   database with that document imported (`openapi import --host H`) gives,
   transaction by transaction, the templates the learned model gives on a
   second run of its own (parameter names aside), and every request is
   documented;
2. undocumented_endpoint: with the API's own spec (built from
   tests/data/apis/apis.jsonl, minus the endpoints the contractor first
   calls on the last day) in services[].openapi, every such alert is for one
   of those endpoints and each of them (answered 2xx/3xx) is alerted; with
   the detection left at its default (off), none;
3. broken documents are refused with file:line:col by `openapi import`,
   `check` and `run` (exit 2);
4. `rules suggest` prints lines that allow the learning period;
5. a document broken while `run` reads the capture (SIGHUP) is named with
   file:line:col and the documents in use stay (every template as before).

usage: openapi_e2e.py KWSIM KEYWARDEN APIS.jsonl WORKDIR
"""
import collections
import datetime
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time

APIS = ["amazonaws.com/workdocs/2016-05-01", "clarify.io/1.3.7",
        "googleapis.com/appengine/v1alpha"]
fails = 0


def check(ok, what):
    global fails
    print("%s %s" % ("ok  " if ok else "FAIL", what))
    fails += not ok


def pcap_records(path):
    with open(path, "rb") as f:
        data = f.read()
    head, off, recs = data[:24], 24, []
    while off + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        recs.append(data[off:off + 16 + caplen])
        off += 16 + caplen
    return head, recs


def canon(t):
    return re.sub(r"\{[^}]*\}", "{}", t.split("?", 1)[0].split("#", 1)[0])


def ts_us(s):
    d = datetime.datetime.strptime(s[:26], "%Y-%m-%dT%H:%M:%S.%f")
    return int(d.replace(tzinfo=datetime.timezone.utc).timestamp()) * 1000000 + d.microsecond


def records(eve, kind):
    out = []
    with open(eve) as f:
        for line in f:
            if '"event_type":"%s"' % kind in line:
                out.append(json.loads(line))
    return out


def run(kw, d, db, eve, config=None, extra=()):
    cmd = [kw, "run", "-c", config or os.path.join(d, "keywarden.yaml"), "-r",
           os.path.join(d, "capture.pcap"), "--db", db, "--eve", eve, "-q", "--no-progress"]
    return subprocess.run(cmd + list(extra), cwd=d, capture_output=True, text=True)


def templates(eve):
    return {(r["identity"]["id"], ts_us(r["timestamp"]), r["http"]["http_method"]):
            r["http"].get("template", "") for r in records(eve, "http") if r.get("identity")}


def spec_of(api, hosts_skip):
    """An OpenAPI 3.0 document of one API of apis.jsonl, without some templates."""
    paths = {}
    for e in api["endpoints"]:
        if e["template"] in hosts_skip:
            continue
        params = [{"name": p["name"], "in": "path", "required": True,
                   "schema": {"type": p.get("type", "string")}} for p in e["params"]]
        item = paths.setdefault(e["template"].split("?")[0].split("#")[0], {})
        op = {"responses": {"200": {"description": "ok"}}}
        if params:
            op["parameters"] = params
        item[e["method"].lower()] = op
    return {"openapi": "3.0.3", "info": {"title": api["title"], "version": "1"},
            "servers": [{"url": "http://" + api["host"]}], "paths": paths}


def main():
    kwsim, kw, apis_file, work = (os.path.abspath(a) for a in sys.argv[1:5])
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    d = os.path.join(work, "sim")
    subprocess.run([kwsim, "apis", "--specs", apis_file, "-o", d, "--only", ",".join(APIS),
                    "--rate", "12", "--seed", "3"], check=True, stderr=subprocess.DEVNULL)
    api = {}
    with open(apis_file) as f:
        for line in f:
            a = json.loads(line)
            if a["api"] in APIS:
                api[a["api"]] = a
    hosts = sorted(a["host"] for a in api.values())

    # 1. round trip
    r1 = os.path.join(work, "r1")
    os.makedirs(r1)
    r = run(kw, d, os.path.join(r1, "kw.db"), os.path.join(r1, "eve.json"))
    check(r.returncode == 0, "run 1 (learning) exits 0: %s" % r.stderr.strip()[-300:])
    for h in hosts:
        out = os.path.join(work, h + ".json")
        e = subprocess.run([kw, "openapi", "export", "--db", os.path.join(r1, "kw.db"),
                            "--host", h, "-o", out], capture_output=True, text=True)
        doc = json.load(open(out)) if e.returncode == 0 else {}
        check(e.returncode == 0 and doc.get("openapi") == "3.1.0" and doc.get("paths"),
              "export %s: OpenAPI 3.1 with %d paths" % (h, len(doc.get("paths", {}))))
        ops = [o for p in doc.get("paths", {}).values() for m, o in p.items()
               if m != "parameters"]
        check(all(o.get("x-keywarden-count", 0) > 0 and o.get("responses") and
                  o.get("x-keywarden-first-seen") <= o.get("x-keywarden-last-seen")
                  for o in ops), "export %s: counts, status codes, first/last seen" % h)
    r2a = os.path.join(work, "r2a")
    os.makedirs(r2a)
    shutil.copy(os.path.join(r1, "kw.db"), os.path.join(r2a, "kw.db"))
    r = run(kw, d, os.path.join(r2a, "kw.db"), os.path.join(r2a, "eve.json"))
    check(r.returncode == 0, "run 2a (the learned model, reloaded) exits 0")
    r2b = os.path.join(work, "r2b")
    os.makedirs(r2b)
    for h in hosts:
        e = subprocess.run([kw, "openapi", "import", os.path.join(work, h + ".json"), "--host",
                            h, "--db", os.path.join(r2b, "kw.db")], capture_output=True,
                           text=True)
        check(e.returncode == 0 and "imported" in e.stdout, "import %s: %s" % (h, e.stdout.strip()))
    r = run(kw, d, os.path.join(r2b, "kw.db"), os.path.join(r2b, "eve.json"))
    check(r.returncode == 0, "run 2b (the exported document imported) exits 0")
    ta, tb = templates(os.path.join(r2a, "eve.json")), templates(os.path.join(r2b, "eve.json"))
    diff = [(k, ta[k], tb.get(k)) for k in ta if canon(ta[k]) != canon(tb.get(k, ""))]
    check(len(ta) > 1000 and len(ta) == len(tb) and not diff,
          "round trip: %d transactions, %d with another template %s" % (len(ta), len(diff),
                                                                       diff[:3]))
    st = records(os.path.join(r2b, "eve.json"), "stats")[-1]["stats"]["pipeline"]
    check(st["documented"] == st["transactions"] and st["undocumented"] == 0,
          "every request documented (%d of %d)" % (st["documented"], st["transactions"]))

    # 2. undocumented_endpoint with the API's own spec minus its new endpoints
    truth = [json.loads(l) for l in open(os.path.join(d, "truth.jsonl"))]
    fresh = collections.defaultdict(set)
    for t in truth:
        if t.get("fresh_endpoint"):
            fresh[t["api"]].add(t["template"])
    for name, a in api.items():
        json.dump(spec_of(a, fresh[name]), open(os.path.join(work, a["host"] + ".spec.json"), "w"))
    cfg = open(os.path.join(d, "keywarden.yaml")).read()
    cfg += "services:\n" + "".join("  - { host: %s, openapi: %s }\n" % (
        h, os.path.join(work, h + ".spec.json")) for h in hosts)
    with open(os.path.join(d, "spec.yaml"), "w") as f:
        f.write(cfg)
    rules = os.path.join(d, "rules.d", "apis.yaml")
    base_rules = open(rules).read()
    for on in (False, True):
        with open(rules, "w") as f:
            f.write(base_rules + ("  undocumented_endpoint: { severity: medium }\n" if on else ""))
        rd = os.path.join(work, "u%d" % on)
        os.makedirs(rd)
        r = run(kw, d, os.path.join(rd, "kw.db"), os.path.join(rd, "eve.json"),
                os.path.join(d, "spec.yaml"))
        al = [x for x in records(os.path.join(rd, "eve.json"), "alert")  # digests aside
              if x["alert"]["kind"] == "undocumented_endpoint" and "http" in x]
        if not on:
            check(r.returncode == 0 and not al, "undocumented_endpoint off by default: %d alerts"
                  % len(al))
            continue
        by_key = {(t["identity"], t["ts"], t["method"]): t for t in truth}
        bad, hit = [], set()
        for x in al:
            t = by_key.get((x["identity"]["id"], ts_us(x["timestamp"]), x["http"]["http_method"]))
            if not t or t["template"] not in fresh[t["api"]]:
                bad.append(x["http"]["url"])
            else:
                hit.add((t["api"], t["template"]))
        want = {(t["api"], t["template"]) for t in truth
                if t.get("fresh_endpoint") and 200 <= t["status"] < 400}
        check(r.returncode == 0 and al and not bad and want <= hit,
              "undocumented_endpoint: %d alerts, %d for documented endpoints %s, %d of %d new "
              "endpoints alerted" % (len(al), len(bad), bad[:3], len(want & hit), len(want)))
    with open(rules, "w") as f:
        f.write(base_rules)

    # 5. a document broken while keywarden runs: SIGHUP names it with
    # file:line:col and the documents in use stay (the capture through
    # stdin in two halves, the document broken between them): every
    # template is the one of the run without a reload (u0)
    spec0 = os.path.join(work, hosts[0] + ".spec.json")
    good = open(spec0).read()
    rd = os.path.join(work, "hup")
    os.makedirs(rd)
    p = subprocess.Popen([kw, "run", "-c", os.path.join(d, "spec.yaml"), "-r", "-", "--db",
                          os.path.join(rd, "kw.db"), "--eve", os.path.join(rd, "eve.json"), "-q",
                          "--no-progress"], cwd=d, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    head, recs = pcap_records(os.path.join(d, "capture.pcap"))
    half = len(recs) // 2
    p.stdin.write(head + b"".join(recs[:half]))
    p.stdin.flush()
    time.sleep(1.5)  # let keywarden read it all before the signal
    with open(spec0, "w") as f:
        f.write(good.replace('"paths": {', '"paths": {\n"/x": {"get": {"parameters": '
                             '[{"$ref": "#/nowhere"}]}},', 1))
    p.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    p.stdin.write(b"".join(recs[half:]))
    p.stdin.close()
    err = p.stderr.read().decode()
    rc = p.wait(timeout=120)
    with open(spec0, "w") as f:
        f.write(good)
    check(rc == 0 and spec0 + ":2:" in err and "the ones in use stay" in err,
          "SIGHUP with a broken document names it (%s) and keeps running: exit %d"
          % ([l for l in err.splitlines() if spec0 in l][:1], rc))
    t0, th = templates(os.path.join(work, "u0", "eve.json")), templates(os.path.join(rd, "eve.json"))
    diff = [(k, t0[k], th.get(k)) for k in t0 if t0[k] != th.get(k)]
    check(len(t0) > 1000 and len(th) == len(t0) and not diff,
          "after it, the document in use still gives every template: %d transactions, %d "
          "differ %s" % (len(th), len(diff), diff[:2]))

    # 4. rules suggest: the lines it prints, in a001's rules entry, allow all
    # of its learning period and flag the endpoints it first called later
    e = subprocess.run([kw, "rules", "suggest", "--identity", "a001", "--db",
                        os.path.join(r1, "kw.db"), "-c", os.path.join(d, "keywarden.yaml")],
                       capture_output=True, text=True)
    lines = [l for l in e.stdout.splitlines() if not l.startswith("#") and "- id:" not in l]
    check(e.returncode == 0 and any("scope:" in l for l in lines), "rules suggest prints scope, "
          "sources, schedule: %s" % e.stderr.strip())
    entry = base_rules.split("  - id: a001\n", 1)[1].split("  - id:", 1)[0]
    entry = "\n".join(l for l in entry.splitlines() if l.strip())
    text = "identities:\n  - id: a001\n%s\n%s\n" % (entry, "\n".join(lines))
    sd = os.path.join(work, "suggested")
    os.makedirs(os.path.join(sd, "rules.d"))
    with open(os.path.join(sd, "rules.d", "a001.yaml"), "w") as f:
        f.write(text)
    with open(os.path.join(sd, "keywarden.yaml"), "w") as f:
        f.write(open(os.path.join(d, "keywarden.yaml")).read().replace(
            "rules: rules.d", "rules: %s" % os.path.join(sd, "rules.d")))
    e = subprocess.run([kw, "check", "-c", os.path.join(sd, "keywarden.yaml")],
                       capture_output=True, text=True)
    check(e.returncode == 0, "the suggested rules pass check: %s" % e.stderr.strip()[-300:])
    r = run(kw, d, os.path.join(sd, "kw.db"), os.path.join(sd, "eve.json"),
            os.path.join(sd, "keywarden.yaml"))
    a001 = [t for t in truth if t["identity"] == "a001"]
    learn_end = min(t["ts"] for t in a001) + 4 * 86400 * 1000000
    pol = [x for x in records(os.path.join(sd, "eve.json"), "alert") if "http" in x and
           x.get("identity", {}).get("id") == "a001" and x["alert"]["category"] == "policy"]
    early = [x["alert"]["kind"] for x in pol if ts_us(x["timestamp"]) < learn_end]
    new_ok = {t["template"] for t in a001 if t["phase"] == "detect" and t["fresh_endpoint"]}
    late = [x for x in pol if x["alert"]["kind"] in ("out_of_scope", "method_not_allowed")]
    check(r.returncode == 0 and not early and late, "with them: %d policy alerts in the learning "
          "period %s, %d out_of_scope/method_not_allowed after (%d new endpoints)"
          % (len(early), early[:3], len(late), len(new_ok)))

    # 3. broken documents
    broken = os.path.join(work, "broken.yaml")
    with open(broken, "w") as f:
        f.write("openapi: 3.0.3\ninfo: { title: x }\npaths:\n  /a:\n    get:\n"
                "      parameters: [ { $ref: '#/components/parameters/Gone' } ]\n")
    e = subprocess.run([kw, "openapi", "import", broken, "--host", "x.example", "--db",
                        os.path.join(work, "b.db")], capture_output=True, text=True)
    check(e.returncode == 2 and broken + ":6:" in e.stderr and "goes nowhere" in e.stderr,
          "import refuses a broken document: %s" % e.stderr.strip())
    with open(os.path.join(d, "broken.yaml"), "w") as f:
        f.write(open(os.path.join(d, "keywarden.yaml")).read() +
                "services:\n  - { host: x.example, openapi: %s }\n" % broken)
    e = subprocess.run([kw, "check", "-c", os.path.join(d, "broken.yaml")], capture_output=True,
                       text=True)
    check(e.returncode == 2 and broken + ":6:" in e.stderr, "check names it: exit %d" % e.returncode)
    r = run(kw, d, os.path.join(work, "b.db"), os.path.join(work, "b.json"),
            os.path.join(d, "broken.yaml"))
    check(r.returncode == 2 and broken + ":6:" in r.stderr, "run refuses to start: exit %d"
          % r.returncode)

    # 4. learning off (detections.baseline.learn_templates: false): the model
    # is only read, templates come from segment shapes
    fd = os.path.join(work, "fixed")
    shutil.copytree(os.path.join(d, "rules.d"), os.path.join(fd, "rules.d"))
    rf = os.path.join(fd, "rules.d", "apis.yaml")
    text = open(rf).read()
    with open(rf, "w") as f:
        f.write(text.replace("sensitivity: medium }", "sensitivity: medium, learn_templates: false }"))
    with open(os.path.join(fd, "keywarden.yaml"), "w") as f:
        f.write(open(os.path.join(d, "keywarden.yaml")).read().replace(
            "rules: rules.d", "rules: %s" % os.path.join(fd, "rules.d")))
    r = run(kw, d, os.path.join(fd, "kw.db"), os.path.join(fd, "eve.json"),
            os.path.join(fd, "keywarden.yaml"))
    on = records(os.path.join(r1, "eve.json"), "stats")[-1]["stats"]["shapes"]
    off = records(os.path.join(fd, "eve.json"), "stats")[-1]["stats"]["shapes"] \
        if r.returncode == 0 else {}
    check("learn_templates: false" in open(rf).read() and on["learned"] > 1000 and
          off.get("learned") == 0 and off.get("looked_up", 0) >= on["learned"] and
          off.get("nodes") == 0 and len(templates(os.path.join(fd, "eve.json"))) > 1000,
          "learning off: learned %s, looked up %s, nodes %s (learning on: %d learned)"
          % (off.get("learned"), off.get("looked_up"), off.get("nodes"), on["learned"]))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
