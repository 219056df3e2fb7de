#!/usr/bin/env python3
"""An offline replay gives the same results with any number of packet
workers (ARCHITECTURE.md, "Threads"): on the simulator's company world,
`keywarden run -r` with 1 (the single packet thread), 2 and 4 workers writes
byte-identical EVE `http`, `flow` and `alert` lines in the same order, and
the same alerts (kind, identity, count). Workers are asked for with
--workers N and, once, with `capture: { workers: N }` in a config copy.

Usage: e2e_workers.py KEYWARDEN KWSIM WORLD
"""
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

KEPT = ("http", "flow", "alert")


def eve_lines(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("event_type") in KEPT:
                out.append(line.rstrip("\n"))
    return out


def alert_counts(lines):
    c = collections.Counter()
    for line in lines:
        rec = json.loads(line)
        if rec["event_type"] == "alert":
            a = rec.get("alert", {})
            ident = rec.get("identity", {}) or a.get("identity", {})
            c[(a.get("kind") or a.get("signature"), json.dumps(ident, sort_keys=True))] += 1
    return c


def run(kw, sim, name, config, extra):
    out = os.path.join(sim, name)
    os.mkdir(out)
    eve = os.path.join(out, "eve.json")
    cmd = [kw, "run", "-c", config, "-r", os.path.join(sim, "capture.pcap"), "-q",
           "--eve", eve, "--db", os.path.join(out, "kw.db")] + extra
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=300)
    if p.returncode != 0:
        print(f"FAIL {name}: exit {p.returncode}\n{p.stderr}")
        sys.exit(1)
    return eve_lines(eve)


def main():
    kw, kwsim, world = sys.argv[1:4]
    work = tempfile.mkdtemp(prefix="kw-workers-")
    try:
        sim = os.path.join(work, "sim")
        subprocess.run([kwsim, "gen", "--world", world, "--seed", "1", "--days", "3", "-o", sim],
                       check=True, stdout=subprocess.DEVNULL)
        config = os.path.join(sim, "keywarden.yaml")
        config2 = os.path.join(sim, "keywarden-workers2.yaml")
        with open(config, encoding="utf-8") as f, open(config2, "w", encoding="utf-8") as g:
            g.write(f.read() + "\ncapture: { workers: 2 }\n")

        base = run(kw, sim, "w1", config, ["--workers", "1"])
        kinds = collections.Counter(json.loads(x)["event_type"] for x in base)
        print(f"workers 1: {dict(kinds)}")
        if kinds["http"] < 1000 or kinds["alert"] < 1:
            print("FAIL: the world gave too little to compare")
            return 1
        ok = True
        for name, cfg, extra in (("w2", config, ["--workers", "2"]),
                                 ("w4", config, ["--workers", "4"]),
                                 ("w2cfg", config2, [])):
            got = run(kw, sim, name, cfg, extra)
            if got == base:
                print(f"{name}: {len(got)} http/flow/alert lines, byte-identical, same order")
                continue
            ok = False
            print(f"FAIL {name}: {len(got)} lines vs {len(base)}")
            if sorted(got) == sorted(base):
                print("  same multiset, different order")
            if alert_counts(got) != alert_counts(base):
                print(f"  alerts differ: {alert_counts(got)} vs {alert_counts(base)}")
            for i, (a, b) in enumerate(zip(base, got)):
                if a != b:
                    print(f"  first difference at line {i}:\n  1: {a[:300]}\n  N: {b[:300]}")
                    break
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
