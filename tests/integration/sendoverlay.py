#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Sends test traffic for the core-link tests as raw Ethernet frames out of an interface.

usage: sendoverlay.py IFACE jumbo
         UDP datagrams of 9000-byte IP packets (and small ones between them), both directions
       sendoverlay.py IFACE vxlan CONVERSATIONS PACKETS_PER_DIRECTION
         tenant UDP conversations inside VXLAN between two VTEPs; each direction's outer UDP
         source port is a hash of the inner packet, as real VTEPs send them (RFC 7348), so the
         two directions of one conversation have different outer 5-tuples
Addresses exist only inside the test's network namespace. Prints the frames sent.
"""
import os
import socket
import struct
import sys
import zlib


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sendframes import checksum  # noqa: E402


def ip_udp(src, dst, sport, dport, payload, ident=1):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0, 64, 17, 0, src, dst)
    return ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:] + udp


def eth(dst_mac, src_mac, payload, ethertype=0x0800):
    return dst_mac + src_mac + struct.pack("!H", ethertype) + payload


MAC_A = b"\x02\x00\x00\x00\x00\x0a"
MAC_B = b"\x02\x00\x00\x00\x00\x0b"


def jumbo(s):
    a, b = bytes([10, 90, 0, 1]), bytes([10, 90, 0, 2])
    sent = 0
    for i in range(20):
        size = 9000 if i % 2 == 0 else 200
        s.send(eth(MAC_B, MAC_A, ip_udp(a, b, 40000, 9999, b"J" * (size - 28), i)))
        s.send(eth(MAC_A, MAC_B, ip_udp(b, a, 9999, 40000, b"K" * (size - 28), i)))
        sent += 2
    return sent


def vxlan(s, conversations, per):
    vtep_a, vtep_b = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])
    sent = 0
    for c in range(conversations):
        ta, tb = bytes([172, 16, c >> 8, c & 0xFF]), bytes([172, 17, 0, 1])
        vni = 5000 + c % 4
        for _ in range(per):
            for (src, dst, sport, dport, vs, vd, ms, md) in ((ta, tb, 30000 + c, 53, vtep_a, vtep_b, MAC_A, MAC_B),
                                                              (tb, ta, 53, 30000 + c, vtep_b, vtep_a, MAC_B, MAC_A)):
                inner = eth(b"\x02\x01\x00\x00\x00\x02", b"\x02\x01\x00\x00\x00\x01", ip_udp(src, dst, sport, dport, b"t" * 32))
                entropy = 49152 + (zlib.crc32(src + dst + struct.pack("!HH", sport, dport)) % 16384)
                outer = ip_udp(vs, vd, entropy, 4789, struct.pack("!BBHI", 0x08, 0, 0, vni << 8) + inner)
                s.send(eth(md, ms, outer))
                sent += 1
    return sent


def main():
    iface, kind = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    if kind == "jumbo":
        print(jumbo(s))
    else:
        print(vxlan(s, int(sys.argv[3]), int(sys.argv[4])))


if __name__ == "__main__":
    main()
