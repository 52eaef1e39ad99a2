#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A minimal IPFIX-over-TCP collector for tests: accepts connections on 127.0.0.1:PORT one
after another and appends each connection's bytes to OUTDIR/conn-N.bin.

usage: tcp_collector.py PORT OUTDIR
"""
import os
import socket
import sys


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    n = len([f for f in os.listdir(out) if f.startswith("conn-")])
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(4)
    while True:
        conn, _ = srv.accept()
        with conn, open(os.path.join(out, f"conn-{n}.bin"), "wb") as f:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                f.write(data)
                f.flush()
        n += 1


if __name__ == "__main__":
    main()
