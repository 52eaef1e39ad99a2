#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Compares the flows nfcapd collected (a folder of nfcapd files) with tshark's own reading of
the capture: packets and IP octets per directional 5-tuple. Exit 0 when they agree.

usage: check_against_tshark.py CAPTURE NFCAPD_DIR
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    capture, nfdir = sys.argv[1], sys.argv[2]
    truth = harness.tshark_truth(capture)
    col = harness.Collectors.__new__(harness.Collectors)
    col.nfdir = nfdir
    recs = col.nfdump_records()
    problems = harness.compare(recs, truth)
    print(f"tshark: {sum(t.packets for t in truth)} IP packets in {len(truth)} directional 5-tuples; "
          f"nfcapd: {sum(r.packets for r in recs)} packets in {len(recs)} records")
    for p in problems:
        print("  MISMATCH", p)
    print("flows match tshark" if not problems else f"{len(problems)} mismatches")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
