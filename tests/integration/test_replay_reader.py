#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Replay through weir's capture reader: a file mapped in place, its packets spread over the
workers by a hash of the outermost headers that is the same both ways. More workers give exactly
the same flows as one; files of different link types replay together; a damaged file stops where
libpcap stops, and the times are the capture's."""
import collections
import csv
import datetime
import json
import os
import shutil
import struct
import unittest

import harness

# Captures chosen for what a split over workers could break: tunnels (the hand-off of inner
# conversations), fragments, VLAN/QinQ/MPLS, IPv6 extension headers, pcapng, non-IP frames.
WORDS = ("vxlan", "geneve", "gtp", "gre", "erspan", "frag", "vlan", "qinq", "mpls", "ipv6", "pcapng", "dns", "tls",
         "http", "scan", "ddos", "flood")


def selection(limit):
    rows = []
    with open(os.path.join(harness.pcaps_dir(), "MANIFEST.tsv")) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            try:
                packets = int(r["packets"])
            except ValueError:
                continue
            text = (r["file"] + " " + r["exercises"]).lower()
            if 10 <= packets <= 20000 and any(w in text for w in WORDS):
                rows.append(r["file"])
    rows.sort()
    step = max(1, len(rows) // limit)
    return rows[::step][:limit]


def flows(records):
    """The records as a multiset, without what says which worker made them (domain) or why a
    record ended (a worker's clock moves with its own packets: idle versus end of capture)."""
    return collections.Counter(
        tuple(sorted((k, str(v)) for k, v in r.items() if k not in ("domain", "end_reason"))) for r in records)


def count_pcap(path):
    """Whole packet records of a pcap file, read as libpcap does."""
    with open(path, "rb") as f:
        data = f.read()
    e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    off, n = 24, 0
    while off + 16 <= len(data):
        cl = struct.unpack(e + "I", data[off + 8:off + 12])[0]
        if off + 16 + cl > len(data):
            break
        off += 16 + cl
        n += 1
    return n


class ReplayReader(unittest.TestCase):
    def test_more_workers_give_the_same_flows(self):
        limit = 12 if os.environ.get("WEIR_CORE_LINK_SAMPLE") else 40
        names = selection(limit)
        self.assertGreaterEqual(len(names), 5 if harness.bundled() else limit * 3 // 4)
        spread = 0
        for name in names:
            path = os.path.join(harness.pcaps_dir(), name)
            got = {}
            for workers in (1, 2, 3):
                d = harness.scratch(self, "weir-rr-")
                p, s, recs = harness.replay_jsonl(path, "inner", d, extra_config={"workers": workers})
                if p.returncode == 2:  # a file libpcap cannot read either: the same for all
                    got[workers] = None
                    continue
                self.assertEqual(p.returncode, 0, f"{name} -w {workers}: {p.stderr[-2000:]}")
                self.assertTrue(s["accounting"]["balanced"], f"{name} -w {workers}")
                self.assertEqual(s["ports"][0]["ipackets"], s["ports"][0]["capture_packets"], name)
                got[workers] = flows(recs)
                if workers > 1 and sum(1 for w in s["workers"] if w["rx_packets"] > 0) == workers:
                    spread += 1
            self.assertEqual(got[2], got[1], f"{name}: -w 2 differs from -w 1")
            self.assertEqual(got[3], got[1], f"{name}: -w 3 differs from -w 1")
        # The hash spreads: most replays keep every worker busy.
        self.assertGreater(spread, len(names) // 2)

    def test_files_of_two_link_types_replay_together(self):
        eth = harness.capture("ipfixprobe__mixed.pcap")
        with open(os.path.join(harness.pcaps_dir(), "MANIFEST.tsv")) as f:
            raw = [r["file"] for r in csv.DictReader(f, delimiter="\t")
                   if r["linktype"] in ("rawip", "rawip4") and r["file"].endswith(".pcap")
                   and os.path.exists(os.path.join(harness.pcaps_dir(), "truth", r["file"] + ".tsv"))][:1]
        if not raw:
            self.skipTest("no raw-IP capture with ground truth at hand")
        raw = os.path.join(harness.pcaps_dir(), raw[0])
        d = harness.scratch(self, "weir-rr-")
        out = os.path.join(d, "flows.jsonl")
        summary = os.path.join(d, "s.json")
        p = harness.run_weir(["-r", eth, "-r", raw, "-r", eth, "-w", "2", "--export", "jsonl=file://" + out,
                              "--summary-json", summary])
        with open(summary) as f:
            s = json.load(f)
        # One port per link type; the Ethernet one reads its two files one after the other.
        self.assertEqual(len(s["ports"]), 2, p.stderr)
        self.assertEqual(s["ports"][0]["capture_packets"], 2 * count_pcap(eth))
        self.assertEqual(s["ports"][1]["capture_packets"], count_pcap(raw))
        self.assertTrue(s["accounting"]["balanced"])
        with open(out) as f:
            recs = [json.loads(line) for line in f]
        truth = sum(t.packets for t in harness.load_truth(eth)) * 2 + sum(t.packets for t in harness.load_truth(raw))
        self.assertEqual(sum(r["packets"] for r in recs), truth)

    def test_a_damaged_file_stops_where_libpcap_stops(self):
        src = harness.capture("ipfixprobe__mixed.pcap")
        d = harness.scratch(self, "weir-rr-")
        cut = os.path.join(d, "cut.pcap")
        with open(src, "rb") as f:
            data = f.read()
        with open(cut, "wb") as f:
            f.write(data[:len(data) // 2])
        whole = count_pcap(cut)
        p, s, recs = harness.replay_jsonl(cut, "inner", d, extra_config={"workers": 2})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"stops after {whole} packets: truncated dump file", p.stderr)
        self.assertEqual(s["rx_packets"], whole)
        self.assertTrue(s["accounting"]["balanced"])
        # Not a capture at all: a clear error naming the file, before anything starts.
        bad = os.path.join(d, "notes.pcap")
        with open(bad, "w") as f:
            f.write("these are notes, not packets\n")
        p = harness.run_weir(["-r", bad], check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn(f"cannot read capture \"{bad}\": unknown file format", p.stderr)

    def test_records_keep_the_capture_times(self):
        # A pcapng file: its interface's time resolution gives the records' times, as tshark reads them.
        names = [n for n in harness.present(["ndpi__avast_securedns.pcapng", "ndpi__bittorrent_tcp_miss.pcapng"])]
        if not names:
            self.skipTest("no pcapng capture at hand")
        path = os.path.join(harness.pcaps_dir(), names[0])
        d = harness.scratch(self, "weir-rr-")
        p, s, recs = harness.replay_jsonl(path, "inner", d, extra_config={"workers": 2}, time_unit="us")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = harness.tshark_rows(path, ["frame.time_epoch"], ["-Y", "ip or ipv6"])
        times = sorted(int(round(float(r["frame.time_epoch"]) * 1e6)) for r in rows if r.get("frame.time_epoch"))
        def us(text):  # "2016-10-28T17:00:22.343123Z"
            t = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
            return int(t.timestamp()) * 1000000 + t.microsecond

        self.assertEqual(min(us(r["start"]) for r in recs), times[0])
        self.assertEqual(max(us(r["end"]) for r in recs), times[-1])


if __name__ == "__main__":
    unittest.main(verbosity=2)
