#!/usr/bin/env python3
"""A storm of distinct alerts: N HTTP/1.1 transactions, each from its own
client address with its own bearer token that the API accepts (200) and
no identity claims. Each raises its own unknown_credential alert, opens
its own suppression window and takes its own unattributed baseline
profile: past dedup_max (4,096) and max_unattributed (9,000) every one
evicts. bench/storm.sh times keywarden on two sizes to show how the cost
grows (linear is the aim). Written by hand: 7 packets per transaction
(handshake, request, response, FINs), 2 ms apart.

usage: storm_gen.py N OUT.pcap
"""
import struct, sys
N = int(sys.argv[1]); out = open(sys.argv[2], 'wb')
out.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b)//2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
def pkt(ts, src, dst, sp, dp, seq, ack, flags, payload=b''):
    tcp = struct.pack('!HHIIBBHHH', sp, dp, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    ph = src + dst + struct.pack('!BBH', 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack('!H', csum(ph + tcp)) + tcp[18:]
    eth = b'\x02\0\0\0\0\x02' + b'\x02\0\0\0\0\x01' + b'\x08\x00'
    fr = eth + ip + tcp
    out.write(struct.pack('<IIII', int(ts), int((ts % 1) * 1e6), len(fr), len(fr)) + fr)
t0 = 1774252800.0
srv = bytes([10, 20, 0, 10])
for i in range(N):
    ts = t0 + i * 0.0005
    cli = bytes([10, 100 + (i >> 16) % 100, (i >> 8) & 255, i & 255])
    sp = 20000 + i % 40000
    req = (b'GET /v1/orders/%d HTTP/1.1\r\nHost: api.storm.example\r\nAuthorization: Bearer stormtok%08dabcdef\r\n\r\n' % (i, i))
    body = b'{"ok":true}'
    resp = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n' % len(body) + body
    pkt(ts, cli, srv, sp, 8080, 1000, 0, 0x02)
    pkt(ts + 0.00001, srv, cli, 8080, sp, 5000, 1001, 0x12)
    pkt(ts + 0.00002, cli, srv, sp, 8080, 1001, 5001, 0x10)
    pkt(ts + 0.00003, cli, srv, sp, 8080, 1001, 5001, 0x18, req)
    pkt(ts + 0.0001, srv, cli, 8080, sp, 5001, 1001 + len(req), 0x18, resp)
    pkt(ts + 0.00011, cli, srv, sp, 8080, 1001 + len(req), 5001 + len(resp), 0x11)
    pkt(ts + 0.00012, srv, cli, 8080, sp, 5001 + len(resp), 1002 + len(req), 0x11)
