#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""What a data-center core link carries, replayed from the shared captures: every capture that
MANIFEST.tsv marks as exercising a tunnel or an unusual link layer, a few tunnel captures it does
not tag, and every capture with frames over 2 KB, in the three tunnel modes. The flows weir
exports equal tshark's reading of the same packets: the outermost IP layer in mode "outer", the
innermost carried one with the tunnel that carried it (type, VNI/key/session/label, end points)
in mode "inner", both views in mode "both"; packets in = packets in records + counted drops.

Also: a replay from an unrelated folder without drivers-config/ keeps the capture's own times
(every record's start and end equal tshark's first and last packet of the flow, in ms and ns)."""
import collections
import concurrent.futures
import os
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TUNNEL_TAGS = {"gre", "erspan", "vxlan", "geneve", "gtp", "mpls", "qinq", "vlan", "nsh", "teredo", "ipv6-ext"}
ALSO_TAGS = {"avsp", "ieee8021ah", "sflow", "nhrp", "capwap.data/wlan", "gtpprime/pap/ipcp", "pwethheuristic/pwethcw"}
# Tunnel and link-layer captures MANIFEST.tsv tags only by their outer protocols.
UNTAGGED = ["zeek__tunnels_6in4.pcap", "zeek__tunnels_6in6-tunnel-change.pcap", "zeek__tunnels_6in6in6.pcap",
            "libpcap__filter_AH-IPcomp-IPv6.pcap", "tcpdump__ipv6-srh-ext-header.pcap", "tcpdump__kday1.pcap",
            "tcpdump__kday3.pcap", "tcpdump__pim-packet-assortment.pcap", "zeek__snap-tcp.pcap",
            "tcpdump__LINKTYPE_IPV4_invalid.pcap", "tcpdump__bad-ipv4-version-pgm-heapoverflow.pcap",
            "tcpdump__nsh-over-vxlan-gpe.pcap", "tcpdump__vxlan_port_8472.pcap", "zeek__pbb.pcap",
            "tcpdump__arista_ether.pcap", "tcpdump__ipv6_jumbogram_1.pcap"]

# Where tshark and weir part on purpose. An IPv4 datagram whose total length and UDP length are
# 0 (the capturing host's segmentation offload, "BIG TCP") makes tshark refuse the UDP header
# and stop there, while weir takes the length from the captured frame, as it does for any IPv4
# total length of 0, and opens the VXLAN/Geneve header behind it. The inner and both modes of
# these are checked another way, and their outer flows without ports. (An IPv6 payload length
# of 0 without a Jumbo Payload option means no payload to both.)
OFFLOADED_UDP_TUNNEL = {"tcpdump__bigtcp-ipv4-vxlan-ipv4.pcap", "tcpdump__bigtcp-ipv4-vxlan-ipv6.pcap",
                        "tcpdump__bigtcp-ipv4-geneve-ipv4.pcap", "tcpdump__bigtcp-ipv4-geneve-ipv6.pcap"}


def max_caplen(path):
    """The largest captured frame of a pcap or pcapng file (0 when unreadable)."""
    with open(path, "rb") as f:
        data = f.read()
    best = 0
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        off = 24
        while off + 16 <= len(data):
            cl = struct.unpack(e + "I", data[off + 8:off + 12])[0]
            if cl > 262144:
                break
            best = max(best, cl)
            off += 16 + cl
    elif magic == b"\x0a\x0d\x0d\x0a":
        off, e = 0, "<"
        while off + 12 <= len(data):
            if data[off:off + 4] == b"\x0a\x0d\x0d\x0a":
                e = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            btype, blen = struct.unpack(e + "II", data[off:off + 8])
            if blen < 12:
                break
            if btype == 6 and off + 24 <= len(data):
                best = max(best, struct.unpack(e + "I", data[off + 20:off + 24])[0])
            off += blen
    return best


def select():
    """(file, why) for every capture this test replays."""
    root = harness.pcaps_dir()
    with open(os.path.join(root, "truth", "TRUTH-FAILED.txt")) as f:
        failed = set(f.read().split())
    with open(os.path.join(root, "MANIFEST.tsv")) as f:
        manifest = f.read().splitlines()[1:]
    chosen = {}
    for line in manifest:
        cols = line.split("\t")
        name, linktype, exercises = cols[0], cols[5], cols[7]
        if name in failed or linktype == "unreadable":
            continue
        tags = {t.strip() for t in exercises.split(";")[0].split(",")}
        also = exercises.split("also ")[1].split(";")[0].strip() if "also " in exercises else ""
        if tags & TUNNEL_TAGS or also in ALSO_TAGS or any(a in ALSO_TAGS for a in also.split("/")):
            chosen[name] = "tunnel or link layer"
        elif max_caplen(os.path.join(root, name)) > 2048:
            chosen[name] = "frames over 2 KB"
    for name in harness.present(UNTAGGED):
        chosen.setdefault(name, "tunnel or link layer (untagged)")
    return sorted(chosen.items())


def capture_packets(path):
    """Packets libpcap (so net_pcap) delivers from a capture."""
    import subprocess
    out = subprocess.run(["capinfos", "-c", "-M", path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "Number of packets" in line:
            return int(line.split(":")[1].strip())
    return None


def libpcap_counts():
    """Per capture: (frames, packets libpcap delivers), from the truth folder's COUNTS.tsv."""
    counts = {}
    with open(os.path.join(harness.pcaps_dir(), "truth", "COUNTS.tsv")) as f:
        head = f.readline().rstrip("\n").split("\t")
        for line in f:
            v = dict(zip(head, line.rstrip("\n").split("\t")))
            counts[v["file"]] = (int(v["packets"] or 0), int(v["libpcap_packets"] or 0))
    return counts


COUNTS = None


def without_ports(agg):
    out = collections.Counter()
    for k, v in agg.items():
        out[k[:3] + (0, 0) + k[5:]] += v
    return out


def check_capture(name):
    """Problems replaying one capture in the three modes (an empty list: none)."""
    global COUNTS
    if COUNTS is None:
        COUNTS = libpcap_counts()
    path = harness.capture(name)
    frames, delivered = COUNTS.get(name, (0, 0))
    # A file libpcap stops reading early (damaged, or pcapng with interfaces of different link
    # types) is compared over the packets it delivers.
    packets = harness.tshark_packets(path, count=delivered if delivered < frames else None)
    outer = harness.flows_of(packets, inner=False)
    inner = harness.flows_of(packets, inner=True)
    problems = []
    work = tempfile.mkdtemp(prefix="weir-corelink-")
    try:
        for mode in ("outer", "inner", "both"):
            d = os.path.join(work, mode)
            os.makedirs(d)
            p, s, recs = harness.replay_jsonl(path, mode, d)
            where = f"{name} [{mode}]"
            if p.returncode != 0 or s is None:
                problems.append(f"{where}: exit {p.returncode}: {p.stderr[-400:]}")
                continue
            acc = s["accounting"]
            if not acc["balanced"]:
                problems.append(f"{where}: accounting does not balance: {acc}")
            if s["rx_packets"] != s["ports"][0]["capture_packets"]:
                problems.append(f"{where}: received {s['rx_packets']} of {s['ports'][0]['capture_packets']} packets")
            if acc["dropped_in_export_ring"] or acc["dropped_between_workers"]:
                problems.append(f"{where}: packets lost in a replay: {acc}")
            in_records = sum(r["packets"] for r in recs if not r["outer_copy"])
            if in_records != acc["in_records"]:
                problems.append(f"{where}: the file holds {in_records} packets in records, the summary says {acc['in_records']}")
            if mode == "outer":
                got = harness.record_flows(recs, with_tunnel=False)
                if any(r["tunnel_type"] for r in recs):
                    problems.append(f"{where}: a tunnel opened in mode outer")
                if name in OFFLOADED_UDP_TUNNEL:  # tshark refuses the UDP header, so shows no ports
                    got, want = without_ports(got), without_ports(outer)
                else:
                    want = outer
                problems += [f"{where}: {x}" for x in harness.counter_diff(got, want)]
                continue
            primary = harness.record_flows(recs, copies=False)
            if name in OFFLOADED_UDP_TUNNEL:
                tun = [r for r in recs if r["tunnel_type"] and not r["outer_copy"]]
                if len(tun) != 1 or tun[0]["tunnel_type"] not in name or tun[0]["packets"] != 1:
                    problems.append(f"{where}: expected one tunneled packet of the kind the name says, got {tun}")
            else:
                problems += [f"{where}: {x}" for x in harness.counter_diff(primary, inner)]
            if mode == "both":
                # The outer view: the tunnels' own flows plus the packets no tunnel carried.
                view = harness.record_flows([r for r in recs if r["outer_copy"] or not r["tunnel_type"]],
                                            with_tunnel=False)
                want = outer
                if name in OFFLOADED_UDP_TUNNEL:
                    view, want = without_ports(view), without_ports(outer)
                problems += [f"{where} outer view: {x}" for x in harness.counter_diff(view, want)]
                tunneled = sum(r["packets"] for r in recs if r["tunnel_type"] and not r["outer_copy"])
                if acc["outer_copies"] != tunneled:
                    problems.append(f"{where}: {acc['outer_copies']} outer copies for {tunneled} tunneled packets")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return problems


class CoreLinkCorpus(unittest.TestCase):
    def test_tunnels_jumbo_frames_and_link_layers_in_three_modes(self):
        chosen = select()
        self.assertGreater(len(chosen), 20 if harness.bundled() else 100, "the selection found the captures")
        # WEIR_CORE_LINK_SAMPLE=N replays every Nth capture, starting at WEIR_CORE_LINK_OFFSET
        # (tests/run.sh: half in the release pass, another quarter under the sanitizers; the
        # decoder is fuzzed besides). Unset, every capture.
        step = max(1, int(os.environ.get("WEIR_CORE_LINK_SAMPLE", "1")))
        offset = int(os.environ.get("WEIR_CORE_LINK_OFFSET", "0")) % step
        names = [name for name, _ in chosen][offset::step]
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(check_capture, names))
        problems = [p for r in results for p in r]
        print(f"{len(names)} of {len(chosen)} captures x 3 modes, {len(problems)} problems")
        self.assertEqual(problems, [])

    def test_replay_keeps_capture_time_from_any_folder(self):
        # No --drivers-config, run from a folder that is not the source tree: the compiled-in
        # profile still takes each packet's time from the capture.
        names = ["zeek__tunnels_gtp_gtp1_gn_normal_incl_fragmentation.pcap", "suricata-verify__vxlan-decoder-03_vxlan.pcap",
                 "zeek__http-qinq-0.pcap", "ndpi__thrift.pcap"]
        elsewhere = tempfile.mkdtemp(prefix="weir-elsewhere-")
        try:
            for name in names:
                path = harness.capture(name)
                packets = harness.tshark_packets(path)
                first, last = {}, {}
                for pk in packets:
                    l = pk.layers[-1]
                    icmp = l.proto in (1, 58)
                    key = (l.proto, l.src, l.dst, 0 if icmp else l.sport, 0 if icmp else l.dport)
                    first[key] = min(first.get(key, pk.time_ns), pk.time_ns)
                    last[key] = max(last.get(key, pk.time_ns), pk.time_ns)
                for unit in ("ms", "ns"):
                    d = tempfile.mkdtemp(dir=elsewhere)
                    p, s, recs = harness.replay_jsonl(path, "inner", d, cwd=elsewhere, drivers=False, time_unit=unit)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertNotIn("profile built-in default", p.stderr)
                    self.assertGreater(len(recs), 0)
                    for r in recs:
                        icmp = r["proto"] in (1, 58)
                        key = (r["proto"], harness.norm(r["src"]), harness.norm(r["dst"]), 0 if icmp else r["sport"],
                               0 if icmp else r["dport"])
                        self.assertIn(key, first, f"{name}: {key} not in tshark's reading")
                        if unit == "ms":
                            self.assertEqual(r["start_ms"], first[key] // 10**6, f"{name} {key}")
                            self.assertEqual(r["end_ms"], last[key] // 10**6, f"{name} {key}")
                        else:
                            self.assertEqual(r["start"], ns_rfc3339(first[key]), f"{name} {key}")
                            self.assertEqual(r["end"], ns_rfc3339(last[key]), f"{name} {key}")
        finally:
            shutil.rmtree(elsewhere, ignore_errors=True)


def ns_rfc3339(ns):
    import datetime
    t = datetime.datetime.fromtimestamp(ns // 10**9, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9:09d}Z"



class TunnelRecordsOnTheWire(unittest.TestCase):
    """IPFIX (uniflow and biflow, ns times, MACs) and NetFlow v9 (MACs) records of tunneled flows,
    in modes inner and both, reach nfcapd and tshark whole: no malformed field, no sequence
    failure, every record read, the VNI in layer2SegmentId as tshark's reading of the packets."""

    def run_case(self, capture, mode):
        path = harness.capture(capture)
        packets = harness.tshark_packets(path)
        vnis = {p.tunnels[-1][1] for p in packets if p.tunnels and p.tunnels[-1][0] == "vxlan"}
        with harness.Collectors() as uni, harness.Collectors() as bi, harness.Collectors() as v9:
            d = tempfile.mkdtemp(prefix="weir-tunwire-")
            self.addCleanup(shutil.rmtree, d, True)
            cfg = {"ports": [{"device": "net_pcap_w,rx_pcap=" + path}], "tunnels": {"mode": mode},
                   "summary_json": os.path.join(d, "s.json"), "stats_interval_s": 0,
                   "exporters": [{"format": "ipfix", "url": uni.url(), "macs": True},
                                 {"format": "ipfix", "url": bi.url(), "mode": "biflow", "time_unit": "ns"},
                                 {"format": "netflow9", "url": v9.url(), "macs": True}]}
            with open(os.path.join(d, "c.json"), "w") as f:
                json.dump(cfg, f)
            harness.run_weir(["-c", os.path.join(d, "c.json")])
            for c in (uni, bi, v9):
                c.finish()
            with open(os.path.join(d, "s.json")) as f:
                s = json.load(f)
            acc = s["accounting"]
            self.assertTrue(acc["balanced"])
            total = acc["in_records"] + acc["outer_copies_in_records"]
            for col, ex, name in ((uni, s["exporters"][0], "ipfix"), (bi, s["exporters"][1], "ipfix biflow"),
                                  (v9, s["exporters"][2], "netflow9")):
                self.assertEqual(col.nfdump_sequence_failures(), 0, name)
                nf = col.nfdump_records()
                self.assertEqual(len(nf), ex["records"], f"{name}: nfcapd has every record")
                self.assertEqual(ex["packets"], total, name)
                if name != "ipfix biflow":  # nfdump adds up one direction of a biflow record only
                    self.assertEqual(sum(r.packets for r in nf), total, f"{name}: packets in nfcapd")
                out = subprocess.run(["tshark", "-n", "-r", col.lo_pcap, "-d", f"udp.port=={col.port},cflow", "-V"],
                                     capture_output=True, text=True, check=True).stdout
                self.assertNotIn("Malformed", out, name)
                self.assertNotIn("[Severity level: Error]", out, name)
                self.assertEqual(len(harness.parse_tshark_flows(out)), ex["records"], f"{name}: tshark reads every record")
            seg = subprocess.run(["tshark", "-n", "-r", uni.lo_pcap, "-d", f"udp.port=={uni.port},cflow", "-T", "fields",
                                  "-e", "cflow.layer2_segment_id"], capture_output=True, text=True, check=True).stdout
            seen = {int(x, 0) for line in seg.split() for x in line.split(",") if x and int(x, 0)}
            self.assertEqual(seen, {1 << 56 | v for v in vnis}, "layer2SegmentId: VXLAN type and VNI")

    def test_vxlan_in_mode_both(self):
        self.run_case("suricata-verify__vxlan-decoder-03_vxlan.pcap", "both")

    def test_gre_erspan_geneve_gtp_in_mode_inner(self):
        for capture in ("zeek__erspanII.pcap", "zeek__tunnels_geneve.pcap", "ndpi__rtmp.pcap", "tcpdump__vxlan.pcap"):
            with self.subTest(capture=capture):
                self.run_case(capture, "inner")


if __name__ == "__main__":
    unittest.main(verbosity=2)
