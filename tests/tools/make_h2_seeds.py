#!/usr/bin/env python3
"""make_h2_seeds: seeds for fuzz/fuzz_h2.c from the recorded HTTP/2 captures.

Each TCP connection of tests/data/h2/h2-{nghttp,curl,grpc}.pcap becomes
seeds in fuzz_h2's input format (see fuzz_h2.c): its payload chunks per
direction in capture order, as they were on the wire; the same with a gap
in the middle of the longest server chunk; with tiny limits; picked up
midstream (the first chunks dropped).

  make_h2_seeds.py tests/data/h2 fuzz/corpus/fuzz_h2
"""
import os
import struct
import sys

from scapy.all import IP, TCP, rdpcap  # python3-scapy


def connections(pcap):
    conns = {}
    for p in rdpcap(pcap):
        if IP not in p or TCP not in p:
            continue
        ip, tcp = p[IP], p[TCP]
        a, b = (ip.src, tcp.sport), (ip.dst, tcp.dport)
        key = tuple(sorted((a, b)))
        c = conns.setdefault(key, {"client": None, "chunks": [], "seen": set()})
        if tcp.flags & 0x02 and not tcp.flags & 0x10:  # SYN
            c["client"] = a
        data = bytes(tcp.payload)
        if not data or (a, tcp.seq) in c["seen"]:
            continue
        c["seen"].add((a, tcp.seq))
        c["chunks"].append((a, data))
    for c in conns.values():
        if c["client"] and c["chunks"]:
            yield [(0 if src == c["client"] else 1, d) for src, d in c["chunks"]]


def encode(setting, chunks):
    ops, data = [], b""
    for op, d in chunks[:64]:
        if op & 2:
            ops.append(struct.pack(">BH", op, d))
        else:
            ops.append(struct.pack(">BH", op, len(d)))
            data += d
    return bytes([setting]) + b"".join(ops) + b"\xff" + data


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    n = 0
    for name in ("h2-nghttp", "h2-curl", "h2-grpc"):
        for i, chunks in enumerate(connections(os.path.join(src, name + ".pcap"))):
            plain, total = [], 0
            for d, b in chunks:  # keep seeds small: the first 24 KB of a connection
                if total > 24 * 1024:
                    break
                plain.append((d, b[:8192]))  # a cut chunk ends the seed
                total += len(b)
                if len(b) > 8192:
                    break
            seeds = {"": encode(0, plain), "-tiny": encode(1, plain)}
            big = max(range(len(plain)), key=lambda k: len(plain[k][1]))
            d, b = plain[big]
            if len(b) > 64:
                cut = plain[:big] + [(d, b[:20]), (d | 2, len(b) - 40), (d, b[-20:])] + plain[big + 1:]
                seeds["-gap"] = encode(0, cut)
            if len(plain) > 4:
                seeds["-midstream"] = encode(2, plain[3:])
            for suffix, blob in seeds.items():
                with open(os.path.join(out, f"{name}-{i}{suffix}"), "wb") as f:
                    f.write(blob)
                n += 1
    print(f"{n} seeds in {out}")


if __name__ == "__main__":
    main()
