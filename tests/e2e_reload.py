#!/usr/bin/env python3
"""SIGHUP reloads the rules of a running `keywarden run`: a broken rules
file is reported with file:line:col and the running rules stay in force; a
good one is swapped in and used for the packets that follow.

The capture is fed through stdin (`-r -`) in three parts, so the test
decides which packets are judged under which rules:
  part 1  rules: none (every credential unknown)
  SIGHUP  rules file broken        -> "reload failed", old rules kept
  SIGHUP  a file crashing libfyaml  -> "reload failed" at its line, still running
  part 2  still no identities
  SIGHUP  rules: the simulator's    -> "rules reloaded"
  part 3  identities attributed

Usage: e2e_reload.py KEYWARDEN KWSIM WORLD
"""
import calendar
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time


def pcap_records(path):
    with open(path, "rb") as f:
        data = f.read()
    head, off, recs = data[:24], 24, []
    while off + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        recs.append(data[off:off + 16 + caplen])
        off += 16 + caplen
    return head, recs


def main():
    kw, kwsim, world = sys.argv[1:4]
    work = tempfile.mkdtemp(prefix="kw-reload-")
    try:
        return run(kw, kwsim, world, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(kw, kwsim, world, work):
    sim = os.path.join(work, "sim")
    subprocess.run([kwsim, "gen", "--world", world, "--seed", "3", "-o", sim], check=True,
                   stdout=subprocess.DEVNULL)
    rules = os.path.join(work, "rules.d")
    os.mkdir(rules)
    live_rules = os.path.join(rules, "world.yaml")
    with open(live_rules, "w") as f:
        f.write("identities: []\n")
    eve = os.path.join(work, "eve.json")
    p = subprocess.Popen([kw, "run", "-q", "-r", "-", "--rules", rules, "--eve", eve,
                          "--db", os.path.join(work, "kw.db")],
                         stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    head, recs = pcap_records(os.path.join(sim, "capture.pcap"))
    third = len(recs) // 3

    def feed(part):
        p.stdin.write(b"".join(part))
        p.stdin.flush()
        time.sleep(1.0)  # let keywarden read it all before the signal

    p.stdin.write(head)
    feed(recs[:third])
    with open(live_rules, "w") as f:
        f.write("identities:\n  - id: x1\n    timezone: Mars/Olympus\n")
    p.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    half = third + third // 2
    feed(recs[third:half])  # the reload happens between packets
    # A file that crashes Debian's libfyaml 0.7.12 (a tab as indentation
    # after '?', upstream issue 57): keywarden must report it and go on.
    with open(live_rules, "w") as f:
        f.write("identities: []\n? -:\t-\n")
    p.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    feed(recs[half:2 * third])
    shutil.copy(os.path.join(sim, "rules.d", os.listdir(os.path.join(sim, "rules.d"))[0]),
                live_rules)
    p.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    feed(recs[2 * third:])
    p.stdin.close()
    err = p.stderr.read().decode()
    rc = p.wait(timeout=60)
    print(err)
    ok = rc == 0
    if "rules reload failed" not in err or "world.yaml:3:" not in err:
        print("FAIL: the broken reload was not reported with file:line:col")
        ok = False
    if "world.yaml:2:1: error: the YAML parser (libfyaml)" not in err:
        print("FAIL: the file that crashes libfyaml was not reported at its line")
        ok = False
    if "rules reloaded (generation 1)" not in err:
        print("FAIL: the good reload was not reported")
        ok = False
    # Attribution by part: nothing attributed before the good reload,
    # something after it.
    with open(eve) as f:
        http = [json.loads(l) for l in f if '"event_type":"http"' in l]
    cut1 = struct.unpack_from("<II", recs[2 * third], 0)
    cut_ts = cut1[0] + cut1[1] / 1e6
    before = after = 0
    for o in http:
        ts = o["timestamp"]
        t = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
        t += float("0." + ts[20:26])
        if "identity" in o:
            if t < cut_ts - 1:
                before += 1
            elif t > cut_ts + 1:
                after += 1
    print("attributed before the good reload: %d, after: %d" % (before, after))
    if before:
        print("FAIL: transactions were attributed before the rules had identities")
        ok = False
    if not after:
        print("FAIL: no transaction attributed after the reload")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
