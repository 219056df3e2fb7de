#!/usr/bin/env python3
"""Endpoint templates on a real API: RabbitMQ's management API recorded on
loopback (record.sh), scored against the routes the server documents
(routes.txt, from its own /api/index.html).

For each http record, the documented route of its method and path (literal
segments before parameters, as a router matches) is the truth; agreement is
the share of records whose template equals it, parameter names aside. The
records that count most are the ones after the first: a template is learned
from what came before. Checks (exit 1 when not met):
- every route word the workload calls stays literal (/api/overview,
  /api/users/without-permissions, ...);
- after its first answer, each user, vhost, exchange and queue name is a
  parameter in its own item route (rule 6, docs/shapes.md);
- agreement >= --min (the value measured when the rule landed).

usage: check.py KEYWARDEN WORKDIR [--pcap F] [--routes F] [--min PCT]
"""
import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def canon(t):
    return re.sub(r"\{[^}]*\}", "{}", t.rstrip("/") or "/")


def route_of(routes, method, path):
    segs = [s for s in path.split("/") if s]
    best = None
    for m, r in routes:
        if m != method:
            continue
        rs = [s for s in r.split("/") if s]
        if len(rs) != len(segs):
            continue
        if all(a == b or a.startswith("{") for a, b in zip(rs, segs)):
            lits = tuple(not a.startswith("{") for a in rs)  # literals first, left to right
            if best is None or lits > best[0]:
                best = (lits, r)
    return best[1] if best else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("keywarden")
    ap.add_argument("work")
    ap.add_argument("--pcap", default=os.path.join(HERE, "..", "..", "data", "real",
                                                   "rabbitmq-mgmt.pcap"))
    ap.add_argument("--routes", default=os.path.join(HERE, "routes.txt"))
    ap.add_argument("--min", type=float, default=0.0)
    a = ap.parse_args()
    routes = [tuple(l.split(" ", 1)) for l in open(a.routes).read().split("\n") if l.strip()]
    os.makedirs(a.work, exist_ok=True)
    eve, db = os.path.join(a.work, "eve.json"), os.path.join(a.work, "kw.db")
    for f in (eve, db):
        if os.path.exists(f):
            os.remove(f)
    subprocess.run([a.keywarden, "run", "-q", "-r", a.pcap, "--eve", eve, "--db", db], check=True)
    recs = []
    for line in open(eve):
        r = json.loads(line)
        if r.get("event_type") == "http":
            h = r["http"]
            recs.append((h["http_method"], h["url"].split("?")[0], h.get("template", "")))
    bad, agree, counted, later = [], 0, 0, {}
    for m, path, tmpl in recs:
        route = route_of(routes, m, path)
        if route is None:
            bad.append("no documented route for %s %s" % (m, path))
            continue
        counted += 1
        ok = canon(tmpl) == canon(route)
        agree += ok
        later.setdefault((m, route), []).append((path, tmpl, ok))
    pct = 100.0 * agree / max(counted, 1)
    print("%d http records, %d with a documented route; template agreement %.1f %%"
          % (len(recs), counted, pct))
    for (m, route), v in sorted(later.items()):
        print("  %-6s %-45s %3d calls, %3d agree; e.g. %s -> %s"
              % (m, route, len(v), sum(x[2] for x in v), v[-1][0], v[-1][1]))
    # route words stay literal
    for m, path, tmpl in recs:
        if route_of(routes, m, path) and "{" not in route_of(routes, m, path) and tmpl != path:
            bad.append("route word merged: %s %s -> %s" % (m, path, tmpl))
    # item names, after their first answer, are parameters in their item route
    items = {"/api/users/{name}", "/api/vhosts/{name}", "/api/exchanges/{vhost}/{name}",
             "/api/queues/{vhost}/{name}"}
    for (m, route), v in later.items():
        if route in items and m == "GET":
            for path, tmpl, _ in v[1:]:
                if not tmpl.endswith("}"):
                    bad.append("item kept literal: %s %s -> %s" % (m, path, tmpl))
    if pct < a.min:
        bad.append("agreement %.1f %% < %.1f %%" % (pct, a.min))
    for b in bad:
        print("FAIL", b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
