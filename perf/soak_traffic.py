#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Steady churning traffic for a soak: out of IFACE (inside the soak's namespace), every second
NEW short UDP conversations that were never seen before (4 packets each way, then silence, so
they idle out) and packets of LONG long-lived conversations, paced evenly over the second.
Runs for SECONDS, then prints the frames sent.

usage: soak_traffic.py IFACE SECONDS [NEW [LONG]]     (defaults: 500 new/s, 1000 long)
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from sendframes import frame  # noqa: E402  (the same Ethernet/IPv4/UDP frames as the tests send)


def main():
    iface, seconds = sys.argv[1], float(sys.argv[2])
    new = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    long_lived = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    sent = 0
    serial = 0
    start = time.monotonic()
    tick = 0
    while time.monotonic() - start < seconds:
        burst = []
        for _ in range(new):  # conversations never seen before: a new source each
            serial += 1
            a = struct.pack("!I", 0x0A500000 | (serial >> 16 & 0xFF) << 8 | (serial >> 8 & 0xFF))
            b = struct.pack("!I", 0x0A510000 | (serial & 0xFFFF))
            sport = 1024 + serial % 60000
            for _ in range(4):
                burst.append(frame(a, b, sport, 53, b"soak" * 16))
                burst.append(frame(b, a, 53, sport, b"soak" * 16))
        for i in range(long_lived):  # the same conversations every second
            a = struct.pack("!I", 0x0A520000 | i)
            burst.append(frame(a, b"\x0a\x53\x00\x01", 40000 + i % 20000, 443, b"soak" * 16))
        t0 = time.monotonic()
        for k, f in enumerate(burst):
            s.send(f)
            sent += 1
            if k % 200 == 199:  # paced over the second, not in one burst
                lag = t0 + (k + 1) / len(burst) * 0.95 - time.monotonic()
                if lag > 0:
                    time.sleep(lag)
        tick += 1
        rest = start + tick - time.monotonic()
        if rest > 0:
            time.sleep(rest)
    print(sent)


if __name__ == "__main__":
    main()
