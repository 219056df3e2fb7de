#!/usr/bin/python3
"""make_encap: wrap a real plain Ethernet capture into the encapsulations a
traffic mirror produces, so tests can check that decoding (and later
reassembly) of each twin gives exactly what the plain original gives.

Outputs (one file per encapsulation, same packets, same timestamps):
  vxlan.pcap      UDP 4789, VNI 4242            (AWS VPC Traffic Mirroring)
  geneve.pcap     UDP 6081, VNI 77, 8 bytes of options, protocol 0x6558
  gre.pcap        GRE key 9, protocol 0x6558 (transparent Ethernet)
  erspan1.pcap    GRE 0x88be, no sequence number, no ERSPAN header
  erspan2.pcap    GRE 0x88be + sequence, ERSPAN II header, session 123
  erspan3.pcap    GRE 0x22eb + sequence, ERSPAN III header with the
                  8-byte platform subheader (O bit), session 321
  qinq.pcap       802.1ad 100 outside, 802.1Q 200 inside
  mpls.pcap       two MPLS labels (100, 200) then the IP packet

Headers are written byte by byte (struct) so the layout is exactly the one
the RFCs/drafts describe, not whatever a scapy layer version does; scapy
only reads and writes the pcap files and fills outer checksums.

Run with /usr/bin/python3 (scapy imports there):
  /usr/bin/python3 tests/tools/make_encap.py \
      tests/corpus/sv-http-brotli-ce-input.pcap tests/data/encap
"""
import os
import struct
import sys

from scapy.all import IP, UDP, Ether, PcapReader, PcapWriter, Raw  # noqa: E402

OUTER_SRC, OUTER_DST = "100.64.0.1", "100.64.0.2"
OUTER_MAC_SRC, OUTER_MAC_DST = "02:00:00:00:00:01", "02:00:00:00:00:02"


def outer_ip(proto, payload):
    return Ether(src=OUTER_MAC_SRC, dst=OUTER_MAC_DST) / IP(
        src=OUTER_SRC, dst=OUTER_DST, proto=proto, id=0) / Raw(payload)


def outer_udp(dport, payload, sport):
    return Ether(src=OUTER_MAC_SRC, dst=OUTER_MAC_DST) / IP(
        src=OUTER_SRC, dst=OUTER_DST, id=0) / UDP(sport=sport, dport=dport) / Raw(payload)


def gre(flags, proto, key=None, seq=None):
    h = struct.pack("!HH", flags, proto)
    if key is not None:
        h += struct.pack("!I", key)
    if seq is not None:
        h += struct.pack("!I", seq)
    return h


def vxlan(frame, i):
    # RFC 7348 §5: flags 0x08 (I), VNI in the top 24 bits of the second word.
    hdr = struct.pack("!II", 0x08000000, 4242 << 8)
    # Source port from a flow hash in a real VTEP; constant per flow here.
    return outer_udp(4789, hdr + frame, 49152)


def geneve(frame, i):
    # RFC 8926 §3.4: ver 0, optlen 2 words, protocol 0x6558, VNI 77, then
    # one 8-byte option (class 0x0104, type 1, length 1 word).
    hdr = struct.pack("!BBHI", 2, 0, 0x6558, 77 << 8)
    opt = struct.pack("!HBBI", 0x0104, 1, 1, 0xC0FFEE00)
    return outer_udp(6081, hdr + opt + frame, 49153)


def gre_key(frame, i):
    return outer_ip(47, gre(0x2000, 0x6558, key=9) + frame)


def erspan1(frame, i):
    return outer_ip(47, gre(0x0000, 0x88BE) + frame)


def erspan2(frame, i):
    # ver 1, vlan 0 | cos 0 en 3 t 0 session 123 | reserved 0 index 0
    hdr = struct.pack("!HHI", 0x1000, (3 << 11) | 123, 0)
    return outer_ip(47, gre(0x1000, 0x88BE, seq=i) + hdr + frame)


def erspan3(frame, i):
    # ver 2, vlan 0 | cos 0 bso 0 t 0 session 321 | timestamp | sgt 0 |
    # p 0 ft 0 (Ethernet) hwid 5 d 0 gra 3 o 1, then the platform subheader.
    ts = (i * 1000) & 0xFFFFFFFF
    last = (5 << 4) | (3 << 1) | 1
    hdr = struct.pack("!HHIHH", 0x2000, 321, ts, 0, last)
    platform = struct.pack("!II", 0x08000000 | 7, ts)  # platform id 1
    return outer_ip(47, gre(0x1000, 0x22EB, seq=i) + hdr + platform + frame)


def qinq(frame, i):
    macs, et, rest = frame[:12], frame[12:14], frame[14:]
    tags = struct.pack("!HHHH", 0x88A8, 100, 0x8100, 200)
    return Raw(macs + tags + et + rest)


def mpls(frame, i):
    # RFC 3032: label(20) tc(3) s(1) ttl(8); IP follows bottom of stack.
    if frame[12:14] not in (b"\x08\x00", b"\x86\xdd"):
        raise SystemExit("mpls: only plain IP frames are supported")
    stack = struct.pack("!II", (100 << 12) | 64, (200 << 12) | 0x100 | 64)
    return Raw(frame[:12] + b"\x88\x47" + stack + frame[14:])


KINDS = {
    "vxlan": vxlan,
    "geneve": geneve,
    "gre": gre_key,
    "erspan1": erspan1,
    "erspan2": erspan2,
    "erspan3": erspan3,
    "qinq": qinq,
    "mpls": mpls,
}


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    src, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    frames = []
    for p in PcapReader(src):
        if not isinstance(p, Ether):
            raise SystemExit(f"{src}: needs an Ethernet capture")
        frames.append((p.time, bytes(p)))
    for name, wrap in KINDS.items():
        path = os.path.join(outdir, name + ".pcap")
        w = PcapWriter(path, linktype=1, sync=True)
        for i, (t, frame) in enumerate(frames):
            pkt = wrap(frame, i)
            pkt = Ether(bytes(pkt))  # fill lengths and checksums
            pkt.time = t
            w.write(pkt)
        w.close()
        print(f"{path}: {len(frames)} packets")


if __name__ == "__main__":
    main()
