#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Refreshes the captures bundled in captures/ from the full corpus, so that the test suite runs
from a plain clone: each capture, its tshark truth (truth/NAME.tsv), its rows of MANIFEST.tsv and
truth/COUNTS.tsv, TRUTH-FAILED.txt's lines for it, and the licence of every project it comes from.

usage: tests/bundle_captures.py CORPUS [NAME...]
  Without names, refreshes the captures captures/MANIFEST.tsv already lists; with names, bundles
  exactly those (and drops the others)."""
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEST = os.path.join(ROOT, "captures")
DEMO = "zeek__var-services-std-ports.pcap"  # deploy/demo.sh replays it: always bundled
# The licence file of each prefix, as the corpus' LICENSES/ names them.
LICENCES = {
    "zeek": "zeek-COPYING.txt", "tcpdump": "tcpdump-LICENSE.txt", "libpcap": "libpcap-LICENSE.txt",
    "suricata-verify": "suricata-verify-LICENSE.txt", "suricata": "suricata-LICENSE.txt",
    "ndpi": "ndpi-COPYING.txt", "nfstream": "nfstream-LICENSE.txt", "scapy": "scapy-LICENSE.txt",
    "ipfixprobe": "ipfixprobe-LICENSE.txt", "joy": "joy-LICENSE.txt", "kprobe": "kprobe-LICENSE.txt",
    "sgr": "sgr-Favilli-LICENSE.txt", "stopddos": "stopddos-README-license.txt",
}


def table(path):
    with open(path) as f:
        lines = f.read().splitlines()
    return lines[0], {l.split("\t")[0]: l for l in lines[1:] if l}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    corpus = os.path.abspath(sys.argv[1])
    names = sys.argv[2:] or list(table(os.path.join(DEST, "MANIFEST.tsv"))[1])
    names = sorted(set(names) | {DEMO})
    head, manifest = table(os.path.join(corpus, "MANIFEST.tsv"))
    chead, counts = table(os.path.join(corpus, "truth", "COUNTS.tsv"))
    with open(os.path.join(corpus, "truth", "TRUTH-FAILED.txt")) as f:
        failed = set(f.read().split())
    missing = [n for n in names if n not in manifest]
    if missing:
        sys.exit(f"bundle_captures: not in {corpus}/MANIFEST.tsv: {' '.join(missing)}")
    prefixes = {n.split("__")[0] for n in names}
    unknown = prefixes - set(LICENCES)
    if unknown:
        sys.exit(f"bundle_captures: no licence known for {' '.join(sorted(unknown))}")

    for sub in ("truth", "LICENSES"):
        shutil.rmtree(os.path.join(DEST, sub), ignore_errors=True)
        os.makedirs(os.path.join(DEST, sub))
    for f in os.listdir(DEST):
        if "__" in f and f not in names:
            os.unlink(os.path.join(DEST, f))
    size = 0
    for n in names:
        shutil.copyfile(os.path.join(corpus, n), os.path.join(DEST, n))
        size += os.path.getsize(os.path.join(DEST, n))
        truth = os.path.join(corpus, "truth", n + ".tsv")
        if os.path.exists(truth):
            shutil.copyfile(truth, os.path.join(DEST, "truth", n + ".tsv"))
    for p in sorted(prefixes):
        shutil.copyfile(os.path.join(corpus, "LICENSES", LICENCES[p]), os.path.join(DEST, "LICENSES", LICENCES[p]))
    with open(os.path.join(DEST, "MANIFEST.tsv"), "w") as f:
        f.write("\n".join([head] + [manifest[n] for n in names]) + "\n")
    with open(os.path.join(DEST, "truth", "COUNTS.tsv"), "w") as f:
        f.write("\n".join([chead] + [counts[n] for n in names if n in counts]) + "\n")
    with open(os.path.join(DEST, "truth", "TRUTH-FAILED.txt"), "w") as f:
        f.write("".join(n + "\n" for n in names if n in failed))
    print(f"bundle_captures: {len(names)} captures, {size / 1e6:.2f} MB, licences of {', '.join(sorted(prefixes))}")


if __name__ == "__main__":
    main()
