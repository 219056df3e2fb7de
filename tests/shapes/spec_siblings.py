#!/usr/bin/env python3
"""Counts, over the public API specs (tests/data/apis/apis.jsonl), the
sibling-route shapes that would be merged by three candidate rules for
telling word values from route words (docs/detection-results.md, "Looked
at, not built"). Not a test: evidence for rules, printed as three lines.

    python3 tests/shapes/spec_siblings.py [tests/data/apis/apis.jsonl]
"""
import collections
import json
import re
import sys

SPECS = sys.argv[1] if len(sys.argv) > 1 else "tests/data/apis/apis.jsonl"
VERSION = re.compile(r"^(v\d+[a-z0-9.]*|\d{4}-\d{2}-\d{2}|\d+(\.\d+)*)$")


def apis():
    for line in open(SPECS):
        a = json.loads(line)
        yield a["api"], [(e["method"], e["template"].split("?")[0].rstrip("/"))
                         for e in a["endpoints"]]


def param(seg):
    return "{" in seg


def tree(paths):
    kids = collections.defaultdict(set)
    for p in paths:
        s = p.split("/")
        for i in range(1, len(s)):
            kids["/".join(s[:i])].add(s[i])
    return kids


# 1. same-method routes differing in exactly one segment before the last
pairs = lit_both = 0
pair_apis = set()
for name, eps in apis():
    shapes = collections.defaultdict(list)
    routes = {(m, tuple("{}" if param(s) else s for s in t.split("/")[1:])) for m, t in eps}
    for m, segs in routes:
        for i, s in enumerate(segs[:-1]):
            if s != "{}":
                shapes[(m, segs[:i], segs[i + 1:])].append(s)
    for (m, pre, post), ws in shapes.items():
        n = len(ws) * (len(ws) - 1) // 2
        if n:
            pairs += n
            pair_apis.add(name)
            if pre and pre[-1] != "{}" and post[0] != "{}":
                lit_both += n
print(f"one segment before the last: {pairs} route pairs in {len(pair_apis)} APIs "
      f"({lit_both} with a literal on both sides)")

# 2. literal sibling parents sharing literal children
for need in (2, 3):
    hits = collections.Counter()
    for name, eps in apis():
        kids = tree({t for _, t in eps})
        for g, ps in kids.items():
            lp = sorted(p for p in ps if p and not param(p))
            for i in range(len(lp)):
                for j in range(i + 1, len(lp)):
                    c1 = {k for k in kids.get(g + "/" + lp[i], ()) if not param(k)}
                    c2 = {k for k in kids.get(g + "/" + lp[j], ()) if not param(k)}
                    if len(c1 & c2) >= need:
                        hits[name] += 1
    print(f"sibling parents sharing >= {need} literal children: {sum(hits.values())} pairs "
          f"in {len(hits)} APIs")

# 3. literal children that are endpoints and continue alike
parents = lit = 0
papis = set()
for name, eps in apis():
    paths = {t for _, t in eps}
    kids = tree(paths)
    for par, ks in kids.items():
        last = par.split("/")[-1]
        if not par or param(last) or VERSION.match(last):
            continue
        items = [k for k in ks if k and not param(k) and par + "/" + k in paths
                 and kids.get(par + "/" + k)]
        cont = collections.Counter(c for k in items for c in kids[par + "/" + k])
        shared = [c for c, n in cont.items() if n >= 2]
        if len(items) >= 2 and shared:
            parents += 1
            papis.add(name)
            lit += any(not param(c) for c in shared)
print(f"items that are endpoints and continue alike: {parents} parents in {len(papis)} APIs "
      f"({lit} with a literal continuation in common)")
