#!/usr/bin/env python3
"""Endpoint templates and new_endpoint alerts on traffic shaped like public APIs.

For batches of the APIs in an apis.jsonl (one batch per big provider, the
small providers grouped), `kwsim apis` writes a capture where one contractor
per API calls its endpoints for 5 working days (learning 4, detecting 1, new
endpoints on the last day); `keywarden run` reads it with the generated
config; this script scores the EVE records against the truth:

- template agreement: the http record's `template` against the spec's
  template of the request, parameter names ignored ({customerId} == {id});
- false new_endpoint: an alert whose request's (method, spec template) the
  identity had already called during its learning, or a second alert for a
  new endpoint already alerted; per identity-day of detection;
- recall: the share of (identity, method, spec template) first called after
  learning that raised a new_endpoint alert.

usage: api_eval.py KWSIM KEYWARDEN APIS.jsonl WORKDIR [--seed N]
                   [--families all|F,F] [--batch N] [--report FILE.md]
                   [--check AGREE,FALSE,RECALL] [--keep] [--workers N]
Exit 1 when --check bounds are not met (agreement >= AGREE, false per
identity-day <= FALSE, recall >= RECALL, over all APIs).
"""
import argparse
import collections
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time

BIG = ("googleapis.com", "amazonaws.com", "azure.com", "apitore.com")


def family(api):
    return re.split(r"[/:]", api, 1)[0]


def canon(t):
    t = t.split("?", 1)[0].split("#", 1)[0]
    return re.sub(r"\{[^}]*\}", "{}", t)


def ts_us(s):
    d = datetime.datetime.strptime(s[:26], "%Y-%m-%dT%H:%M:%S.%f")
    return int(d.replace(tzinfo=datetime.timezone.utc).timestamp()) * 1000000 + d.microsecond


def batches(apis, only, size):
    fams = collections.OrderedDict()
    for a in apis:
        f = family(a)
        if only and f not in only and not ("other" in only and f not in BIG):
            continue
        fams.setdefault(f if f in BIG else "other", []).append(a)
    out = []
    for f, names in fams.items():
        for i in range(0, len(names), size):
            out.append((f, names[i:i + size]))
    return out


def run_batch(args, fam, names, work, idx):
    d = os.path.join(work, "b%02d" % idx)
    shutil.rmtree(d, ignore_errors=True)
    t0 = time.time()
    subprocess.run([args.kwsim, "apis", "--specs", args.apis, "-o", d, "--seed", str(args.seed),
                    "--only", ",".join(names)], check=True, stderr=subprocess.DEVNULL)
    t1 = time.time()
    cmd = [args.keywarden, "run", "-c", os.path.join(d, "keywarden.yaml"), "-r",
           os.path.join(d, "capture.pcap"), "-q", "--no-progress"]
    if args.workers > 1:
        cmd += ["--workers", str(args.workers)]
    subprocess.run(cmd, check=True, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t2 = time.time()
    res = score(d, args.learn)
    res["gen_s"], res["run_s"] = t1 - t0, t2 - t1
    if not args.keep:
        for f in ("capture.pcap", "keywarden.db", "keywarden.db-wal", "keywarden.db-shm"):
            try:
                os.remove(os.path.join(d, f))
            except OSError:
                pass
    return res


def score(d, learn_days):
    truth = {}
    first = {}
    pairs_before = set()
    reqs = []
    with open(os.path.join(d, "truth.jsonl")) as f:
        for line in f:
            t = json.loads(line)
            if "template" not in t:
                continue
            reqs.append(t)
            first[t["identity"]] = min(first.get(t["identity"], t["ts"]), t["ts"])
            truth[(t["identity"], t["ts"], t["method"])] = t
    learn_end = {i: v + learn_days * 86400 * 1000000 for i, v in first.items()}
    new_pairs = collections.OrderedDict()
    for t in reqs:
        pair = (t["identity"], t["method"], canon(t["template"]))
        if t["ts"] < learn_end[t["identity"]]:
            pairs_before.add(pair)
    for t in reqs:
        pair = (t["identity"], t["method"], canon(t["template"]))
        if t["ts"] >= learn_end[t["identity"]] and pair not in pairs_before:
            new_pairs.setdefault(pair, t["api"])
    api_of = {t["identity"]: t["api"] for t in reqs}
    per = collections.defaultdict(lambda: collections.Counter())
    examples = collections.defaultdict(list)
    alerted = set()
    with open(os.path.join(d, "eve.json")) as f:
        for line in f:
            if '"event_type":"http"' not in line and '"event_type":"alert"' not in line:
                continue
            r = json.loads(line)
            ident = (r.get("identity") or {}).get("id")
            h = r.get("http") or {}
            if not ident or ident not in api_of:
                continue
            t = truth.get((ident, ts_us(r["timestamp"]), h.get("http_method")))
            api = api_of[ident]
            c = per[api]
            if r["event_type"] == "http":
                if not t:
                    c["unmatched"] += 1
                    continue
                c["txns"] += 1
                if canon(h.get("template", "")) == canon(t["template"]):
                    c["agree"] += 1
                elif len(examples[api]) < 3:
                    examples[api].append((t["template"], h.get("template", "")))
                continue
            if r["alert"]["kind"] != "new_endpoint" or not t:
                continue
            pair = (ident, t["method"], canon(t["template"]))
            if pair in pairs_before:
                c["false"] += 1
                if len(examples["alert:" + api]) < 3:
                    examples["alert:" + api].append((t["method"] + " " + t["template"],
                                                     h.get("template", "")))
            elif pair in alerted:
                c["false"] += 1
                c["dup"] += 1
            else:
                alerted.add(pair)
    for pair, api in new_pairs.items():
        per[api]["new"] += 1
        per[api]["found"] += pair in alerted
    for api in api_of.values():
        per[api]["id_days"] = 1  # one contractor per API, one detection day
    return {"per": {a: dict(c) for a, c in per.items()}, "examples": dict(examples)}


def table(rows, title):
    out = ["| %s | APIs | transactions | template agreement | false new_endpoint / identity-day "
           "| true new endpoints | alerted | recall |" % title,
           "|---|---|---|---|---|---|---|---|"]
    for name, c in rows:
        agree = 100.0 * c["agree"] / c["txns"] if c["txns"] else 0
        fpd = c["false"] / c["id_days"] if c["id_days"] else 0
        rec = 100.0 * c["found"] / c["new"] if c["new"] else 100.0
        out.append("| %s | %d | %d | %.1f %% | %.3f | %d | %d | %.1f %% |" % (
            name, c["id_days"], c["txns"], agree, fpd, c["new"], c["found"], rec))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kwsim")
    ap.add_argument("keywarden")
    ap.add_argument("apis")
    ap.add_argument("work")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--learn", type=int, default=4)
    ap.add_argument("--families", default="all")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--report")
    ap.add_argument("--check")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--examples", action="store_true")
    args = ap.parse_args()
    args.kwsim, args.keywarden, args.apis = (os.path.abspath(x) for x in (args.kwsim, args.keywarden, args.apis))
    apis = []
    with open(args.apis) as f:
        for line in f:
            apis.append(json.loads(line)["api"])
    only = None if args.families == "all" else set(args.families.split(","))
    os.makedirs(args.work, exist_ok=True)
    fam_tot = collections.OrderedDict()
    prov = collections.defaultdict(collections.Counter)
    total = collections.Counter()
    examples = {}
    per_api = {}
    for i, (fam, names) in enumerate(batches(apis, only, args.batch)):
        res = run_batch(args, fam, names, args.work, i)
        per_api.update(res["per"])
        print("batch %d %s: %d APIs, kwsim %.1f s, keywarden %.1f s" % (
            i, fam, len(names), res["gen_s"], res["run_s"]), file=sys.stderr)
        for api, c in res["per"].items():
            fam_tot.setdefault(family(api) if family(api) in BIG else "other", collections.Counter())
            fam_tot[family(api) if family(api) in BIG else "other"].update(c)
            prov[family(api)].update(c)
            total.update(c)
        examples.update(res["examples"])
    rows = [(f, c) for f, c in fam_tot.items()] + [("**all**", total)]
    text = table(rows, "family")
    print(text)
    if args.examples:
        worst = sorted(per_api.items(), key=lambda kv: -kv[1].get("false", 0))[:25]
        for api, c in worst:
            print("false %3d  agree %5.1f %%  %s" % (c.get("false", 0),
                  100.0 * c.get("agree", 0) / max(c.get("txns", 1), 1), api))
        for k, v in sorted(examples.items()):
            print(k, v)
    if args.report:
        with open(args.report, "a") as f:
            f.write("\n" + text + "\n\n")
            f.write(table(sorted(prov.items()), "provider") + "\n")
    if args.check:
        a, fl, rc = (float(x) for x in args.check.split(","))
        agree = 100.0 * total["agree"] / max(total["txns"], 1)
        fpd = total["false"] / max(total["id_days"], 1)
        rec = 100.0 * total["found"] / max(total["new"], 1)
        bad = []
        if agree < a:
            bad.append("agreement %.1f %% < %.1f %%" % (agree, a))
        if fpd > fl:
            bad.append("false new_endpoint %.3f / identity-day > %.3f" % (fpd, fl))
        if rec < rc:
            bad.append("recall %.1f %% < %.1f %%" % (rec, rc))
        if total["unmatched"]:
            bad.append("%d http records matched no truth line" % total["unmatched"])
        if bad:
            print("FAIL: " + "; ".join(bad), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
