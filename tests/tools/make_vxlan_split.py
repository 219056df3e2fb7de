#!/usr/bin/python3
"""Wraps every packet of a capture in VXLAN as two VTEPs would: the
client side's VTEP (192.0.2.1) sends the client's packets to the server
side's (192.0.2.2) and the other way round, each choosing the outer UDP
source port from a hash of the inner packet's own direction (RFC 7348
§5: "a hash of fields from the inner packet"), VNI 42. So the two
directions of one inner connection travel in two outer flows, which a
PACKET_FANOUT hash of the outer header may put on two sockets.

Usage: /usr/bin/python3 tests/tools/make_vxlan_split.py IN.pcap OUT.pcap
"""
import sys
import zlib

from scapy.all import IP, TCP, UDP, Ether, PcapReader, PcapWriter
from scapy.layers.vxlan import VXLAN


def main():
    src, dst = sys.argv[1:3]
    client = None
    out = PcapWriter(dst, linktype=1, sync=True)
    for p in PcapReader(src):
        if IP not in p or TCP not in p:
            continue
        ip, tcp = p[IP], p[TCP]
        if client is None:  # the first packet is the client's SYN
            client = ip.src
        fwd = ip.src == client
        key = ("%s %d %s %d" % (ip.src, tcp.sport, ip.dst, tcp.dport)).encode()
        sport = 49152 + zlib.crc32(key) % 16384
        outer = (Ether(src="02:00:00:00:00:01" if fwd else "02:00:00:00:00:02",
                       dst="02:00:00:00:00:02" if fwd else "02:00:00:00:00:01") /
                 IP(src="192.0.2.1" if fwd else "192.0.2.2",
                    dst="192.0.2.2" if fwd else "192.0.2.1") /
                 UDP(sport=sport, dport=4789) / VXLAN(vni=42, flags=0x08) / p[Ether])
        outer.time = p.time
        out.write(outer)
    out.close()


if __name__ == "__main__":
    main()
