#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Sends UDP conversations, both directions of each, as raw Ethernet frames out of an interface.

usage: sendframes.py IFACE CONVERSATIONS PACKETS_PER_DIRECTION
Addresses are 10.77.x.y and 10.78.x.y; they exist only inside the test's network namespace.
Prints the number of frames sent.
"""
import socket
import struct
import sys


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def frame(src, dst, sport, dport, payload=b"weir-test" * 4):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", 0x0800)
    return eth + ip + udp


def main():
    iface, conv, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    sent = 0
    for i in range(conv):
        a = bytes([10, 77, i >> 8, i & 0xFF])
        b = bytes([10, 78, (i * 7) >> 8 & 0xFF, (i * 7) & 0xFF])
        sport, dport = 20000 + i, 53 + (i % 5)
        for _ in range(per):
            s.send(frame(a, b, sport, dport))
            s.send(frame(b, a, dport, sport))
            sent += 2
    print(sent)


if __name__ == "__main__":
    main()
