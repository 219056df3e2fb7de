#!/usr/bin/env python3
"""bench/fleet_feed.py: feeds pcap halves to sensors as if captured now.

  fleet_feed.py SECONDS SENSOR_CMD_FILE PCAP [PCAP...]

Each PCAP (classic, µs) goes to the stdin of one `keywarden run -r -`
sensor, whose command line is the matching line of SENSOR_CMD_FILE
(JSON list per line). The packets of all files are written in one merged
time order, their timestamps rewritten to the wall clock at the moment
they are written, the whole capture spread over SECONDS: so the judge's
latency (wall time when judged - packet time) is the time from the packet
reaching the sensor to its record being judged (bench/fleet.sh). Exits
when every sensor has exited."""
import json
import struct
import subprocess
import sys
import time


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    if struct.unpack("<I", data[:4])[0] != 0xa1b2c3d4:
        sys.exit("%s: not a little-endian µs pcap" % path)
    out, off = [], 24
    while off + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[off:off + 16])
        out.append((sec * 1000000 + usec, data[off + 16:off + 16 + incl], orig))
        off += 16 + incl
    return data[:24], out


def main():
    seconds = float(sys.argv[1])
    cmds = [json.loads(line) for line in open(sys.argv[2]) if line.strip()]
    pcaps = sys.argv[3:]
    if len(cmds) != len(pcaps):
        sys.exit("one sensor command per pcap")
    merged, hdrs = [], []
    for i, p in enumerate(pcaps):
        hdr, pk = packets(p)
        hdrs.append(hdr)
        merged += [(ts, i, rec, orig) for ts, rec, orig in pk]
    merged.sort(key=lambda x: x[0])
    t0, span = merged[0][0], max(1, merged[-1][0] - merged[0][0])
    procs = [subprocess.Popen(c, stdin=subprocess.PIPE) for c in cmds]
    for p, h in zip(procs, hdrs):
        p.stdin.write(h)
    start = time.time()
    for n, (ts, i, rec, orig) in enumerate(merged):
        due = start + (ts - t0) / span * seconds
        now = time.time()
        if due > now + 0.002:
            for p in procs:
                p.stdin.flush()
            time.sleep(due - now)
            now = time.time()
        us = int(now * 1e6)
        procs[i].stdin.write(struct.pack("<IIII", us // 1000000, us % 1000000, len(rec), orig))
        procs[i].stdin.write(rec)
    for p in procs:
        p.stdin.close()
    rc = max(p.wait() for p in procs)
    print("fed %d packets in %.1f s" % (len(merged), time.time() - start), file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
