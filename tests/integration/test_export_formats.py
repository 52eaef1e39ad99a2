#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Exporter modes: RFC 5103 biflow records carry the reverse direction's counters (read by
tshark), IPFIX files (RFC 5655) rotate and each file reads back alone, and micro/nanosecond
times are the capture's own."""
import collections
import datetime
import glob
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CAPTURE = "zeek__var-services-std-ports.pcap"


def tshark_blocks(path, port=None):
    """Per 'Flow N' block: the list of (field, value) lines tshark prints."""
    cmd = ["tshark", "-n", "-r", path, "-V"] + (["-d", f"udp.port=={port},cflow"] if port else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    blocks, cur, indent = [], None, 0
    for line in out.splitlines():
        s = line.strip()
        depth = len(line) - len(line.lstrip())
        if re.fullmatch(r"Flow \d+", s):
            cur, indent = [], depth
            blocks.append(cur)
        elif cur is not None and depth > indent:
            m = re.match(r"([A-Za-z ]+): (.*)$", s)
            if m:
                cur.append((m.group(1), m.group(2)))
        elif cur is not None:
            cur = None
    return blocks, out


def parse_time(s):
    """'Jun 24, 2011 15:51:34.548963546 UTC' -> ns since the epoch."""
    m = re.match(r"(\w+ +\d+, \d+ \d+:\d+:\d+)\.(\d+) UTC", s)
    base = datetime.datetime.strptime(m.group(1), "%b %d, %Y %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    frac = (m.group(2) + "000000000")[:9]
    return int(base.timestamp()) * 10**9 + int(frac)


def first_packet_ns(capture):
    out = subprocess.run(["tshark", "-r", capture, "-c", "1", "-T", "fields", "-e", "frame.time_epoch"],
                         capture_output=True, text=True, check=True).stdout.strip()
    sec, _, frac = out.partition(".")
    return int(sec) * 10**9 + int((frac + "000000000")[:9])


class ExportFormats(unittest.TestCase):
    def run_weir(self, exporters, extra=()):
        capture = harness.capture(CAPTURE)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"ports": [{"device": "net_pcap_fmt,rx_pcap=" + capture}], "exporters": exporters}, f)
        self.addCleanup(os.unlink, f.name)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as s:
            summary = s.name
        self.addCleanup(os.unlink, summary)
        harness.run_weir(["-c", f.name, "--summary-json", summary] + list(extra))
        with open(summary) as f:
            return capture, json.load(f)

    def test_biflow_records_carry_the_reverse_direction(self):
        with harness.Collectors() as col:
            capture, s = self.run_weir([{"url": col.url(), "mode": "biflow", "time_unit": "us"}],
                                       ["--idle-timeout", "86400", "--tcp-end-timeout", "86400"])
            col.finish()
            blocks, _ = tshark_blocks(col.lo_pcap, col.port)
        truth = collections.Counter()
        for t in harness.load_truth(capture):
            truth[(t.proto, t.src, t.dst, t.sport, t.dport)] += t.packets
        fwd_total = rev_total = with_reverse = 0
        for b in blocks:
            d = collections.defaultdict(list)
            for k, v in b:
                d[k].append(v)
            if "Packets" not in d:
                continue
            proto = int(re.search(r"\((\d+)\)", d["Protocol"][0]).group(1))
            src, dst = d["SrcAddr"][0], d["DstAddr"][0]
            sp, dp = int(d["SrcPort"][0]), int(d["DstPort"][0])
            fwd = int(d["Packets"][0])
            rev = int(next(v for v in d["Packets"] if "Reverse" in v).split()[0])
            fwd_total += fwd
            rev_total += rev
            if proto in (6, 17) and rev:
                with_reverse += 1
                # Without timeouts splitting them, each direction equals tshark's count.
                self.assertEqual(rev, truth[(proto, dst, src, dp, sp)], (proto, src, dst, sp, dp))
                self.assertEqual(fwd, truth[(proto, src, dst, sp, dp)], (proto, src, dst, sp, dp))
        self.assertGreater(with_reverse, 5)
        self.assertEqual(fwd_total + rev_total, s["accounting"]["in_records"])
        flows = [b for b in blocks if any(k == "Packets" for k, _ in b)]  # not the options records
        self.assertEqual(s["exporters"][0]["records"], len(flows), "one record per conversation")

    def test_options_records_report_statistics_and_interfaces(self):
        with harness.Collectors() as col:
            capture, s = self.run_weir([{"url": col.url()}])
            col.finish()
            self.assertEqual(col.nfdump_sequence_failures(), 0, "options records count in the sequence")
            blocks, _ = tshark_blocks(col.lo_pcap, col.port)
        metering = [dict(b) for b in blocks if any(k == "Ignored Packets" for k, _ in b)]
        interfaces = [dict(b) for b in blocks if any(k == "IfName" for k, _ in b)]
        exporting = [dict(b) for b in blocks if any(k == "FlowsExp" for k, _ in b)]
        self.assertGreaterEqual(len(metering), 2, "at start with the templates, and at shutdown")
        last = metering[-1]  # sent after every flow was exported
        self.assertEqual(int(last["Permanent Packets"]), s["rx_packets"])
        self.assertEqual(int(last["Ignored Packets"]), sum(v for k, v in s["decode_drops"].items()
                                                            if k != "l4_truncated_accounted"))
        self.assertEqual(int(last["Flows"]), s["flows"]["created"])
        self.assertEqual(int(last["Not Sent Flows"]), 0)
        self.assertEqual(last["Observation Domain Name"], socket.gethostname()[:64], "the probe: by default its host name")
        self.assertEqual(interfaces[-1]["IfName"], s["ports"][0]["name"])
        self.assertEqual(int(exporting[-1]["FlowsExp"]), s["exporters"][0]["records"])
        self.assertEqual(s["exporters"][0]["options_records"], len(metering) + len(interfaces) + len(exporting))

    def test_ipfix_files_rotate_and_read_back(self):
        tmp = harness.scratch(self, "weir-files-")
        path = os.path.join(tmp, "flows.ipfix")
        capture, s = self.run_weir([{"url": "file://" + path, "time_unit": "ns", "rotate_mb": 0.002}],
                                   ["--idle-timeout", "86400", "--tcp-end-timeout", "86400"])
        files = sorted(glob.glob(path + "*"))
        self.assertGreater(len(files), 1, "rotated at 2 KiB")
        ex = s["exporters"][0]
        self.assertEqual(ex["send_errors"], 0)
        total, starts = 0, []
        for f in files:
            # Each file is read alone: its data only decodes if its templates are in it too.
            blocks, out = tshark_blocks(f)
            self.assertTrue(blocks, f"{f}: no flow decoded")
            for b in blocks:
                d = dict(b)
                total += int(d.get("Packets", 0))  # options records have none
            starts += [parse_time(v) for b in blocks for k, v in b if k == "StartTime"]
        self.assertEqual(total, s["accounting"]["in_records"])
        self.assertEqual(min(starts), first_packet_ns(capture), "nanosecond times are the capture's")


class Nfacctd(unittest.TestCase):
    """pmacct's nfacctd (print plugin, CSV) collects IPFIX and NetFlow v9 from weir."""

    def collect(self, fmt):
        import signal
        import shutil
        if not shutil.which("nfacctd"):
            self.skipTest("pmacct is not installed")
        tmp = harness.scratch(self, "weir-nfacctd-")
        port = harness.free_udp_port()
        conf = os.path.join(tmp, "nfacctd.conf")
        out = os.path.join(tmp, "flows.csv")
        log = os.path.join(tmp, "nfacctd.log")
        with open(conf, "w") as f:
            f.write(f"daemonize: false\nnfacctd_ip: 127.0.0.1\nnfacctd_port: {port}\nnfacctd_time_new: true\n"
                    "plugins: print\naggregate: src_host, dst_host, src_port, dst_port, proto\nprint_output: csv\n"
                    f"print_output_file: {out}\nprint_output_file_append: true\nprint_refresh_time: 3600\n")
        proc = subprocess.Popen(["nfacctd", "-f", conf], stdout=open(log, "w"), stderr=subprocess.STDOUT)
        self.addCleanup(harness.stop, proc, signal.SIGKILL)
        harness.wait_for(lambda: harness.udp_bound(port), what="nfacctd to bind")
        capture = harness.capture(CAPTURE)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"ports": [{"device": "net_pcap_nfa,rx_pcap=" + capture}],
                       "exporters": [{"format": fmt, "url": f"udp://127.0.0.1:{port}"}]}, f)
        self.addCleanup(os.unlink, f.name)
        harness.run_weir(["-c", f.name])
        import time
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)  # the print plugin writes its cache on SIGINT
        harness.wait_for(lambda: "Purging cache - END" in open(log).read(), timeout=30, what="nfacctd to write")
        proc.wait(timeout=30)
        recs = []
        with open(out) as f:
            for line in f.read().splitlines()[1:]:
                sa, da, sp, dp, pr, pk, by = line.split(",")
                recs.append(harness.Rec(harness.proto_number(pr.upper()), harness.norm(sa), harness.norm(da), int(sp),
                                        int(dp), int(pk), int(by)))
        return capture, recs

    def test_ipfix(self):
        capture, recs = self.collect("ipfix")
        self.assertEqual(harness.compare(recs, harness.load_truth(capture)), [])

    def test_netflow9(self):
        capture, recs = self.collect("netflow9")
        self.assertEqual(harness.compare(recs, harness.load_truth(capture)), [])


class AnalystFormats(unittest.TestCase):
    def test_json_lines_equal_the_truth(self):
        capture = harness.capture(CAPTURE)
        tmp = harness.scratch(self, "weir-jsonl-")
        path = os.path.join(tmp, "flows.jsonl")
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"ports": [{"device": "net_pcap_js,rx_pcap=" + capture}],
                       "exporters": [{"format": "jsonl", "url": "file://" + path, "time_unit": "us"}]}, f)
        self.addCleanup(os.unlink, f.name)
        harness.run_weir(["-c", f.name])
        rows = [json.loads(l) for l in open(path)]
        recs = [harness.Rec(r["proto"], r["src"], r["dst"], r["sport"], r["dport"], r["packets"], r["bytes"]) for r in rows]
        self.assertEqual(harness.compare(recs, harness.load_truth(capture)), [])
        first = min(r["start"] for r in rows)
        want = first_packet_ns(capture) // 1000
        self.assertEqual(first, datetime.datetime.fromtimestamp(want // 10**6, datetime.timezone.utc)
                         .strftime("%Y-%m-%dT%H:%M:%S") + f".{want % 10**6:06d}Z")

    def test_clickhouse_receives_the_flows(self):
        tmp = harness.scratch(self, "weir-ch-")
        ch = harness.ClickHouse(self, tmp)
        http, query = ch.http, ch.query
        ch.statements("weir.sql")
        capture = harness.capture(CAPTURE)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"ports": [{"device": "net_pcap_ch,rx_pcap=" + capture}],
                       "exporters": [{"format": "clickhouse", "url": f"http://127.0.0.1:{http}", "table": "weir.flows",
                                      "batch_rows": 20, "user": "weir", "password": ch.PASSWORD}]}, f)
        self.addCleanup(os.unlink, f.name)
        summary = f.name + ".summary"
        self.addCleanup(lambda: os.path.exists(summary) and os.unlink(summary))
        harness.run_weir(["-c", f.name, "--summary-json", summary])
        with open(summary) as fs:
            s = json.load(fs)
        truth = harness.load_truth(capture)
        count, packets, octets = map(int, query("SELECT count(), sum(packets), sum(bytes) FROM weir.flows").split())
        self.assertEqual(packets, sum(t.packets for t in truth))
        self.assertEqual(octets, sum(t.octets for t in truth))
        self.assertEqual(count, s["exporters"][0]["records"])
        self.assertGreater(s["exporters"][0]["messages"], 1, "batched")
        self.assertEqual(s["exporters"][0]["lost_records"], 0)
        # Tenant flows of a VXLAN capture carry their VNI and tunnel end points.
        vxlan = harness.capture("suricata-verify__vxlan-decoder-03_vxlan.pcap")
        with open(f.name, "w") as cf:
            json.dump({"ports": [{"device": "net_pcap_ch,rx_pcap=" + vxlan}],
                       "exporters": [{"format": "clickhouse", "url": f"http://127.0.0.1:{http}", "table": "weir.flows"}]}, cf)
        harness.run_weir(["-c", f.name])
        want = collections.Counter()
        for p in harness.tshark_packets(vxlan):
            if len(p.layers) > 1:
                want[(p.tunnels[-1][1], p.layers[-2].src, p.layers[-2].dst)] += 1
        got = collections.Counter()
        for line in query("SELECT tunnel_id, tunnel_src, tunnel_dst, sum(packets) FROM weir.flows WHERE tunnel_type = 'vxlan' "
                          "GROUP BY tunnel_id, tunnel_src, tunnel_dst").splitlines():
            vni, src, dst, n = line.split("\t")
            got[(int(vni), src, dst)] = int(n)
        self.assertEqual(got, want)
        # Payload inspection's findings: application, HTTP Host, rule ids and tags in their columns.
        rules = f.name + ".rules"
        self.addCleanup(lambda: os.path.exists(rules) and os.unlink(rules))
        with open(rules, "w") as rf:
            json.dump({"rules": [{"id": 1, "pattern": "^GET ", "app": "HTTP", "tag": "get"}]}, rf)
        http_get = harness.capture("zeek__http_get.pcap")
        with open(f.name, "w") as cf:
            json.dump({"ports": [{"device": "net_pcap_ch,rx_pcap=" + http_get}], "inspect": {"rules": rules},
                       "exporters": [{"format": "clickhouse", "url": f"http://127.0.0.1:{http}", "table": "weir.flows"}]}, cf)
        harness.run_weir(["-c", f.name])
        rows = query("SELECT application, http_host, rule_ids, tags, packets FROM weir.flows WHERE application != '' "
                     "ORDER BY packets, bytes").splitlines()
        self.assertEqual(rows, ["HTTP\tbro.org\t[1]\t['get']\t7"] * 2)
        # Zones: each row names the zone of its source and of its destination (the longest prefix
        # that holds the address; "other" for none), so the flow matrix is a GROUP BY away.
        zones = {"hosts": ["172.16.238.0/24"], "router": ["172.16.238.2/32"], "multicast": ["224.0.0.0/4", "ff00::/8"]}
        with open(f.name, "w") as cf:
            json.dump({"ports": [{"device": "net_pcap_ch,rx_pcap=" + capture}], "zones": zones,
                       "exporters": [{"format": "clickhouse", "url": f"http://127.0.0.1:{http}", "table": "weir.flows"}]}, cf)
        harness.run_weir(["-c", f.name])

        def zone(a):
            if a == "172.16.238.2":
                return "router"
            if a.startswith("172.16.238."):
                return "hosts"
            if a.startswith("224.") or a.startswith("ff"):
                return "multicast"
            return "other"
        want = collections.Counter()
        for t in truth:
            want[(zone(t.src), zone(t.dst))] += t.packets
        got = collections.Counter()
        for line in query("SELECT src_zone, dst_zone, sum(packets) FROM weir.flows WHERE src_zone != '' "
                          "GROUP BY src_zone, dst_zone").splitlines():
            sz, dz, n = line.split("\t")
            got[(sz, dz)] = int(n)
        self.assertEqual(got, want)
        # The opt-in columns: MPLS label, flowDirection, handshake halves and size bins (the
        # labelled telnet flow is seen one way only: no SYN-ACK, no handshake time).
        mpls = harness.capture("zeek__mixed-vlan-mpls.pcap")
        with open(f.name, "w") as cf:
            json.dump({"ports": [{"device": "net_pcap_ch,rx_pcap=" + mpls, "direction": "egress"}],
                       "exporters": [{"format": "clickhouse", "url": f"http://127.0.0.1:{http}", "table": "weir.flows",
                                      "mpls": True, "direction": True, "rtt": True, "sizes": True}]}, cf)
        harness.run_weir(["-c", f.name])
        rows = query("SELECT mpls_label, mpls_tc, flow_direction, sum(packets), sum(arraySum(sizes)), "
                     "countIf(rtt_server_us IS NOT NULL) FROM weir.flows WHERE notEmpty(sizes) "
                     "GROUP BY mpls_label, mpls_tc, flow_direction ORDER BY mpls_label").splitlines()
        self.assertEqual(rows, ["29\t6\tegress\t11\t11\t0", "\\N\t\\N\tegress\t36\t36\t4"])
        # The wrong password: every batch refused, counted, and said once in the log.
        with open(f.name, "w") as cf:
            json.dump({"ports": [{"device": "net_pcap_ch,rx_pcap=" + capture}],
                       "exporters": [{"format": "clickhouse", "url": f"http://127.0.0.1:{http}",
                                      "table": "weir.flows", "user": "weir", "password": "guess", "compress": False}]}, cf)
        p = harness.run_weir(["-c", f.name, "--summary-json", summary], check=False)
        with open(summary) as fs:
            s = json.load(fs)
        self.assertEqual(s["exporters"][0]["records"], 0)
        self.assertGreater(s["exporters"][0]["lost_records"], 0)
        self.assertIn("delivery failed: insert answered HTTP 401: Code: 193", p.stderr)
        self.assertIn("Wrong password for user weir", p.stderr)
        # A server that refuses the inserts: counted losses, and the log says so once, with why.
        with open(f.name, "w") as cf:
            json.dump({"ports": [{"device": "net_pcap_ch,rx_pcap=" + capture}],
                       "exporters": [{"format": "clickhouse", "url": f"http://127.0.0.1:{http}", "table": "weir.nosuch",
                                      "batch_rows": 20}]}, cf)
        p = harness.run_weir(["-c", f.name, "--summary-json", summary], check=False)
        with open(summary) as fs:
            s = json.load(fs)
        self.assertEqual(s["exporters"][0]["lost_records"], s["exporters"][0]["records"] + s["exporters"][0]["lost_records"])
        self.assertGreater(s["exporters"][0]["lost_records"], 0)
        failed = [l for l in p.stderr.splitlines() if "delivery failed" in l]
        self.assertEqual(len(failed), 1, p.stderr)
        self.assertIn(f"weir: exporter clickhouse http://127.0.0.1:{http}: delivery failed: insert answered HTTP 404: "
                      "Code: 60", failed[0])
        # The example queries of deploy/ run on this server.
        for statement in ch.statements("queries.sql", run=False):
            sql = statement.replace("now() - 3600", "toDateTime(0)").replace("now() - 86400", "toDateTime(0)")
            self.assertTrue(query(sql).strip(), statement)


class PortIdentity(unittest.TestCase):
    def test_ifindex_name_source_and_dscp_on_the_wire(self):
        """ports[].ifindex/name reach the collectors as ingressInterface (IPFIX, NetFlow v9 INPUT_SNMP)
        and in the interface options records; the exporter sends from its source address with its
        DSCP. Read back with tshark from the loopback capture and with nfdump."""
        capture = harness.capture(CAPTURE)
        with harness.Collectors() as ipfix, harness.Collectors() as v9:
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump({"ports": [{"device": "net_pcap_id,rx_pcap=" + capture, "ifindex": 70001, "name": "core-1"}],
                           "exporters": [{"url": ipfix.url(), "source": "127.0.0.2", "dscp": 46},
                                         {"format": "netflow9", "url": v9.url(), "source": "127.0.0.3", "dscp": 10}]}, f)
            self.addCleanup(os.unlink, f.name)
            harness.run_weir(["-c", f.name])
            ipfix.finish()
            v9.finish()
            for col, src, dscp in ((ipfix, "127.0.0.2", "46"), (v9, "127.0.0.3", "10")):
                out = subprocess.run(["tshark", "-n", "-r", col.lo_pcap, "-d", f"udp.port=={col.port},cflow", "-T", "fields",
                                      "-e", "ip.src", "-e", "ip.dsfield.dscp", "-e", "cflow.inputint"],
                                     capture_output=True, text=True, check=True).stdout
                rows = [l.split("\t") for l in out.splitlines() if l]
                self.assertTrue(rows)
                self.assertEqual({(r[0], r[1]) for r in rows}, {(src, dscp)})
                ifs = {i for r in rows for i in r[2].split(",") if i}
                self.assertEqual(ifs, {"70001"}, col.url())
                nf = subprocess.run(["nfdump", "-R", col.nfdir, "-q", "-o", "fmt:%in"], capture_output=True, text=True,
                                    check=True).stdout.split()
                self.assertTrue(nf)
                self.assertEqual(set(nf), {"70001"})
            names = subprocess.run(["tshark", "-n", "-r", ipfix.lo_pcap, "-d", f"udp.port=={ipfix.port},cflow", "-V"],
                                   capture_output=True, text=True, check=True).stdout
            self.assertTrue(re.search(r"InputInt: 70001\n\s+IfName: core-1\n", names), "interface options record")

    def test_bad_source_is_named(self):
        capture = harness.capture(CAPTURE)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"ports": [{"device": "net_pcap_id,rx_pcap=" + capture, "ifindex": 0}],
                       "exporters": [{"url": "udp://127.0.0.1:4739", "source": "here", "dscp": 64},
                                     {"url": "file:///tmp/x.ipfix", "dscp": 1}]}, f)
        self.addCleanup(os.unlink, f.name)
        p = harness.run_weir(["-c", f.name, "--check"], check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("ports[0].ifindex: expected 1..4294967295, got 0", p.stderr)
        self.assertIn("exporters[0].source: expected an IPv4 or IPv6 address, got \"here\"", p.stderr)
        self.assertIn("exporters[0].dscp: expected 0..63, got 64", p.stderr)
        self.assertIn("exporters[1].dscp: applies to udp:// and tcp:// exporters only", p.stderr)
        with open(f.name, "w") as g:
            json.dump({"ports": [{"device": "net_pcap_id,rx_pcap=" + capture}],
                       "exporters": [{"url": "udp://[::1]:4739", "source": "127.0.0.1"}]}, g)
        p = harness.run_weir(["-c", f.name], check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("source 127.0.0.1 is not an IPv6 address, as the collector's is", p.stderr)


class Sampling(unittest.TestCase):
    """1:10 packet sampling. The rate goes to the collectors as an IPFIX options record, NetFlow
    v9 options and the v5 header: tshark reads it from the IPFIX and v9 packets, and nfcapd
    scales the v5 counts back up (nfcapd 1.7.1 applies only v5's header rate; it ignores
    announced IPFIX and v9 sampling from any exporter). Deterministic: exactly 10 times what weir
    kept, within 10 of the capture's total; random: within 4 standard deviations of it."""
    CAPTURE = "zeek__modbus_modbusBig.pcap"  # 13,622 IPv4 packets, none malformed

    def nfdump_packets(self, col):
        out = subprocess.run(["nfdump", "-N", "-R", col.nfdir, "-q", "-o", "fmt:%pkt"], capture_output=True, text=True,
                             check=True).stdout.split()
        return sum(int(x) for x in out)

    def announced(self, col):
        out = subprocess.run(["tshark", "-n", "-r", col.lo_pcap, "-d", f"udp.port=={col.port},cflow", "-T", "fields",
                              "-e", "cflow.sampling_interval", "-e", "cflow.sampling_algorithm"],
                             capture_output=True, text=True, check=True).stdout
        return {tuple(l.split("\t")) for l in out.splitlines() if l.strip()}

    def run_sampled(self, mode):
        capture = harness.capture(self.CAPTURE)
        total = sum(t.packets for t in harness.load_truth(capture))
        with harness.Collectors() as ipfix, harness.Collectors() as v9, harness.Collectors(tshark=False) as v5:
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump({"ports": [{"device": "net_pcap_s,rx_pcap=" + capture}],
                           "sampling": {"interval": 10, "mode": mode},
                           "exporters": [{"url": ipfix.url()}, {"format": "netflow9", "url": v9.url()},
                                         {"format": "netflow5", "url": v5.url()}]}, f)
            self.addCleanup(os.unlink, f.name)
            summary = f.name + ".summary"
            self.addCleanup(lambda: os.path.exists(summary) and os.unlink(summary))
            p = harness.run_weir(["-c", f.name, "--summary-json", summary])
            for c in (ipfix, v9, v5):
                c.finish()
            with open(summary) as fs:
                s = json.load(fs)
            acc = s["accounting"]
            self.assertTrue(acc["balanced"], p.stdout)
            self.assertEqual(acc["rx_packets"], total)
            self.assertEqual(acc["in_records"] + acc["sampled_out"] + acc["decode_drops"], total)
            kept = acc["in_records"]
            algorithm = "1" if mode == "deterministic" else "2"
            self.assertEqual(self.announced(ipfix), {("10", algorithm)}, "IPFIX sampling options record")
            self.assertEqual(self.announced(v9), {("10", algorithm)}, "NetFlow v9 sampling options")
            self.assertEqual(self.nfdump_packets(ipfix), kept)
            self.assertEqual(self.nfdump_packets(v9), kept)
            per_flow = collections.Counter()
            for r in ipfix.nfdump_records():
                per_flow[(r.src, r.dst, r.sport, r.dport)] += r.packets
            return total, kept, self.nfdump_packets(v5), per_flow

    def every_tenth(self):
        """Per directional flow, the packets that 1-in-10 count-based sampling keeps: the 10th,
        the 20th, ... packet of the capture (one worker)."""
        capture = harness.capture(self.CAPTURE)
        out = subprocess.run(["tshark", "-n", "-r", capture, "-T", "fields", "-e", "ip.src", "-e", "ip.dst",
                              "-e", "tcp.srcport", "-e", "tcp.dstport"], capture_output=True, text=True, check=True).stdout
        want = collections.Counter()
        for i, line in enumerate(out.splitlines()):
            if i % 10 == 9:
                src, dst, sport, dport = line.split("\t")
                want[(src, dst, int(sport), int(dport))] += 1
        return want

    def test_deterministic(self):
        total, kept, scaled, per_flow = self.run_sampled("deterministic")
        self.assertEqual(kept, total // 10)
        self.assertEqual(per_flow, self.every_tenth(), "exactly every 10th packet")
        self.assertEqual(scaled, 10 * kept, "nfcapd scales NetFlow v5 by the header's rate")
        self.assertLess(abs(scaled - total), 10)

    def test_random(self):
        total, kept, scaled, per_flow = self.run_sampled("random")
        sigma = 10 * (total * 0.1 * 0.9) ** 0.5
        self.assertEqual(scaled, 10 * kept)
        self.assertLess(abs(scaled - total), 4 * sigma, f"kept {kept} of {total}")
        self.assertNotEqual(per_flow, self.every_tenth(), "not every 10th packet")


class NetflowFormats(unittest.TestCase):
    def test_netflow_v9_and_v5_reach_nfcapd_and_tshark(self):
        capture = harness.capture(CAPTURE)
        truth = harness.load_truth(capture)
        truth4 = [t for t in truth if ":" not in t.src]
        with harness.Collectors() as v9, harness.Collectors() as v5:
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump({"ports": [{"device": "net_pcap_nf,rx_pcap=" + capture}],
                           "exporters": [{"format": "netflow9", "url": v9.url()},
                                         {"format": "netflow5", "url": v5.url()}]}, f)
            self.addCleanup(os.unlink, f.name)
            summary = f.name + ".summary"
            harness.run_weir(["-c", f.name, "--summary-json", summary])
            self.addCleanup(os.unlink, summary)
            v9.finish()
            v5.finish()
            with open(summary) as fs:
                s = json.load(fs)
            e9, e5 = s["exporters"]
            for col, exp, want, name in ((v9, e9, truth, "v9"), (v5, e5, truth4, "v5")):
                self.assertEqual(col.nfdump_sequence_failures(), 0, name)
                nf = col.nfdump_records()
                self.assertEqual(len(nf), exp["records"], name)
                self.assertEqual(harness.compare(nf, want), [], f"nfdump {name} vs truth")
                ts = col.tshark_records()
                self.assertEqual(len(ts), exp["records"], f"tshark decodes every {name} record")
                self.assertEqual(harness.compare(ts, want), [], f"tshark {name} vs truth")
            # v5 cannot carry IPv6: those packets are counted as skipped, not lost.
            self.assertEqual(e5["skipped_packets"], sum(t.packets for t in truth if ":" in t.src))
            self.assertEqual(e5["packets"] + e5["skipped_packets"], s["accounting"]["in_records"])
            # sysUptime-relative times come out as the capture's own (to the millisecond).
            out = subprocess.run(["nfdump", "-R", v9.nfdir, "-q", "-o", "fmt:%ts"], capture_output=True, text=True,
                                 check=True, env=dict(os.environ, TZ="UTC")).stdout
            first = min(datetime.datetime.strptime(l.strip(), "%Y-%m-%d %H:%M:%S.%f").replace(
                tzinfo=datetime.timezone.utc) for l in out.splitlines() if l.strip())
            want_ms = first_packet_ns(capture) // 1_000_000
            self.assertEqual(int(first.timestamp() * 1000 + 0.5), want_ms)


class TcpExport(harness.NamespaceCase):
    """IPFIX over TCP from a live af_packet capture; the collector dies and comes back."""

    NAME = "weir-tcp"

    def collector(self, out):
        import signal
        p = subprocess.Popen(self.netns.exec + [sys.executable, os.path.join(harness.HERE, "tcp_collector.py"), "4739",
                                                out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(harness.stop, p, signal.SIGKILL)
        harness.wait_for(lambda: subprocess.run(self.netns.exec + ["ss", "-Hltn", "sport = :4739"], capture_output=True,
                                                text=True).stdout.strip() != "", what="collector to listen")
        return p

    def send(self, conversations, per):
        out = subprocess.run(self.netns.exec + [sys.executable, os.path.join(harness.HERE, "sendframes.py"), "wb",
                                                str(conversations), str(per)], capture_output=True, text=True, check=True)
        return int(out.stdout)

    def test_collector_restart(self):
        import signal
        import time
        out = os.path.join(self.tmp, "collected")
        col = self.collector(out)
        cfg = os.path.join(self.tmp, "weir.json")
        with open(cfg, "w") as f:
            json.dump({"ports": [{"device": "net_af_packet0,iface=wa"}], "timeouts": {"idle_s": 1},
                       "ipfix": {"max_delay_ms": 100}, "management": {"listen": "none"},
                       "exporters": [{"url": "tcp://127.0.0.1:4739"}]}, f)
        summary = os.path.join(self.tmp, "summary.json")
        weir = subprocess.Popen(self.netns.exec + [harness.WEIR, "--drivers-config", harness.DRIVERS, "-c", cfg,
                                                   "--stats-interval", "0", "--summary-json", summary],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: weir.poll() is None and weir.kill())
        harness.wait_for(lambda: os.path.exists(os.path.join(out, "conn-0.bin")), timeout=30, what="weir to connect")
        a = self.send(20, 3)
        time.sleep(3)                   # idle 1 s: phase A reaches the collector
        harness.stop(col, signal.SIGKILL)  # the collector dies
        time.sleep(1)
        b = self.send(10, 2)            # ends while nobody listens: counted drops
        time.sleep(3)
        self.collector(out)             # back again: weir reconnects within its backoff
        harness.wait_for(lambda: os.path.exists(os.path.join(out, "conn-1.bin")), timeout=40,
                         what="weir to reconnect")
        c = self.send(30, 2)
        time.sleep(3)
        s, _ = self.stop_weir(weir, summary)
        ex = s["exporters"][0]
        self.assertEqual(s["rx_packets"], a + b + c)
        got = []
        for n in (0, 1):
            with open(os.path.join(out, f"conn-{n}.bin"), "rb") as f:
                msgs = harness.ipfix_stream(f.read())
            self.assertEqual(msgs[0][2][0][0], "templates", f"connection {n} starts with templates")
            # Sequence numbers count every data record, options records included.
            expect = 0
            for seq, _, sets in msgs:
                self.assertEqual(seq, expect, f"connection {n}: sequence")
                expect += sum(x[1] for x in sets if x[0] in ("data", "options"))
            self.assertEqual(msgs[0][0], 0, f"connection {n}: a new session starts its sequence at 0")
            got.append(sum(x[2] for m in msgs for x in m[2] if x[0] == "data"))
        self.assertEqual(got, [a, c], "before the outage and after the reconnect")
        self.assertEqual(ex["lost_packets"], b, "what ended during the outage is exactly what was counted lost")
        self.assertEqual(ex["packets"], a + c)
        self.assertGreaterEqual(ex["reconnects"], 1)



class RecordExtras(unittest.TestCase):
    """The opt-in parts of a record (exporter keys mpls, direction, rtt, sizes) against tshark:
    the top MPLS label of a flow's first frame, flowDirection from ports[].direction, the two
    halves of the TCP handshake (their sum is tshark's tcp.analysis.initial_rtt) and packets
    per IP-length bin, per directional 5-tuple. IPFIX carries them as IE 61, IE 70 and weir's
    enterprise elements 14-17; tshark decodes the records without an error."""
    RTT = CAPTURE                          # TCP handshakes of many services
    MPLS = "zeek__mixed-vlan-mpls.pcap"    # one telnet flow under MPLS label 29, TC 6
    LONG = ["--idle-timeout", "86400", "--tcp-end-timeout", "86400"]
    BOUNDS = (64, 128, 256, 512, 1024, 1500, 9000)

    def config(self, exporters, workdir):
        ports = [{"device": "net_pcap_x0,rx_pcap=" + harness.capture(self.RTT), "direction": "ingress"},
                 {"device": "net_pcap_x1,rx_pcap=" + harness.capture(self.MPLS), "direction": "egress"}]
        path = os.path.join(workdir, "weir.json")
        with open(path, "w") as f:
            json.dump({"ports": ports, "exporters": exporters}, f)
        return path

    def bin_of(self, length):
        return next((i for i, b in enumerate(self.BOUNDS) if length <= b), len(self.BOUNDS))

    def truth(self, capture):
        """Per directional 5-tuple: size bins and MPLS label; per conversation: (tshark's initial
        RTT, SYN to SYN-ACK) in microseconds."""
        fields = ["ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.len", "ipv6.plen", "ip.proto", "ipv6.nxt",
                  "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "tcp.stream", "tcp.analysis.initial_rtt",
                  "tcp.flags", "frame.time_epoch", "mpls.label", "mpls.exp"]
        bins, rtt, mpls = collections.defaultdict(lambda: [0] * 8), {}, {}
        streams, answered, syn = collections.defaultdict(set), {}, {}
        for v in harness.tshark_rows(harness.capture(capture), fields,
                                     ["-o", "ip.defragment:FALSE", "-Y", "ip or ipv6", "-E", "occurrence=f"]):
            if v["ip.src"]:
                src, dst, proto, length = v["ip.src"], v["ip.dst"], v["ip.proto"], int(v["ip.len"])
            else:
                src, dst, proto, length = v["ipv6.src"], v["ipv6.dst"], v["ipv6.nxt"], int(v["ipv6.plen"]) + 40
            sport = int(v["tcp.srcport"] or v["udp.srcport"] or 0)
            dport = int(v["tcp.dstport"] or v["udp.dstport"] or 0)
            key = (int(proto), harness.norm(src), harness.norm(dst), sport, dport)
            bins[key][self.bin_of(length)] += 1
            conv = tuple(sorted([(key[1], sport), (key[2], dport)]))
            if v["tcp.stream"]:
                streams[conv].add(v["tcp.stream"])
                flags, t = int(v["tcp.flags"], 16), float(v["frame.time_epoch"])
                if flags & 0x12 == 0x02:
                    syn.setdefault(conv, t)
                elif flags & 0x12 == 0x12 and conv in syn:
                    answered.setdefault(conv, round((t - syn[conv]) * 1e6))
                if v["tcp.analysis.initial_rtt"]:
                    rtt[conv] = round(float(v["tcp.analysis.initial_rtt"]) * 1e6)
            if v["mpls.label"]:
                mpls[key] = (int(v["mpls.label"]), int(v["mpls.exp"]))
        # A conversation whose ports came back in a second TCP stream is not one handshake; one
        # seen without its SYN-ACK (one side of an asymmetric path) is timed by tshark from the
        # SYN to the client's ACK, which says nothing of the network: weir leaves it unmeasured.
        rtt = {c: (r, answered[c]) for c, r in rtt.items() if len(streams[c]) == 1 and c in answered}
        return bins, rtt, mpls

    def test_json_rows_carry_them(self):
        tmp = harness.scratch(self, "weir-extras-")
        out = os.path.join(tmp, "flows.jsonl")
        cfg = self.config([{"format": "jsonl", "url": "file://" + out, "mpls": True, "direction": True, "rtt": True,
                            "sizes": True}], tmp)
        harness.run_weir(["-c", cfg] + self.LONG)
        with open(out) as f:
            rows = [json.loads(l) for l in f]
        self.assertTrue(rows)
        got_bins, got_rtt, got_dir = collections.defaultdict(lambda: [0] * 8), {}, {}
        got_mpls = {}
        for r in rows:
            key = (r["proto"], harness.norm(r["src"]), harness.norm(r["dst"]), r["sport"], r["dport"])
            self.assertEqual(sum(r["sizes"]), r["packets"], r)
            got_bins[key] = [a + b for a, b in zip(got_bins[key], r["sizes"])]
            got_dir[key] = r["flow_direction"]
            if r["mpls_label"] is not None:
                got_mpls[key] = (r["mpls_label"], r["mpls_tc"])
            if r["rtt_client_us"] is not None:
                self.assertIsNotNone(r["rtt_server_us"], r)
                conv = tuple(sorted([(key[1], key[3]), (key[2], key[4])]))
                got_rtt[conv] = (r["rtt_client_us"] + r["rtt_server_us"], r["rtt_server_us"])
        want_rtt = {}
        for n, capture in enumerate((self.RTT, self.MPLS)):
            bins, rtt, mpls = self.truth(capture)
            want_rtt.update(rtt)
            for key, want in bins.items():
                if key[0] in (6, 17):
                    self.assertEqual(got_bins.get(key), want, f"{capture} {key}: packets per size bin")
                    self.assertEqual(got_dir.get(key), ("ingress", "egress")[n], key)
            if capture == self.MPLS:
                self.assertEqual(mpls, {k: v for k, v in got_mpls.items() if k in bins})
                self.assertEqual(set(mpls.values()), {(29, 6)})
        self.assertGreaterEqual(len(want_rtt), 8)
        self.assertEqual(set(got_rtt), set(want_rtt), "the handshakes weir timed are tshark's")
        for conv, want in want_rtt.items():
            # Each half is rounded to a microsecond.
            for got, truth, what in zip(got_rtt[conv], want, ("SYN to ACK", "SYN to SYN-ACK")):
                self.assertLessEqual(abs(got - truth), 1, f"{conv}: {what} {got} us, tshark {truth} us")

    def test_ipfix_carries_them(self):
        tmp = harness.scratch(self, "weir-extras-")
        with harness.Collectors() as col:
            cfg = self.config([{"url": col.url(), "mode": "biflow", "mpls": True, "direction": True, "rtt": True,
                                "sizes": True}], tmp)
            harness.run_weir(["-c", cfg] + self.LONG)
            col.finish()
            text = subprocess.run(["tshark", "-n", "-r", col.lo_pcap, "-d", f"udp.port=={col.port},cflow", "-V"],
                                  capture_output=True, text=True, check=True).stdout
            fields = subprocess.run(["tshark", "-n", "-r", col.lo_pcap, "-d", f"udp.port=={col.port},cflow", "-T",
                                     "fields", "-e", "cflow.mpls_label", "-e", "cflow.mpls_exp", "-e", "cflow.direction"],
                                    capture_output=True, text=True, check=True).stdout
            recs = col.nfdump_records()
        self.assertNotIn("Malformed", text)
        self.assertNotIn("Expert Info (Error", text)
        labels = {x for l in fields.splitlines() for x in l.split("\t")[0].split(",") if x}
        self.assertIn("29", labels)
        directions = {x for l in fields.splitlines() for x in l.split("\t")[2].split(",") if x}
        self.assertEqual(directions, {"0", "1"}, "ingress for one port, egress for the other")
        self.assertTrue(recs, "nfcapd reads the records with the extra elements")

    def test_refused_where_they_cannot_go(self):
        tmp = harness.scratch(self, "weir-extras-")
        cfg = self.config([{"format": "netflow9", "url": "udp://127.0.0.1:2055", "rtt": True},
                           {"url": "udp://127.0.0.1:4739", "direction": True}], tmp)
        with open(cfg) as f:
            c = json.load(f)
        del c["ports"][1]["direction"]
        with open(cfg, "w") as f:
            json.dump(c, f)
        p = harness.run_weir(["-c", cfg, "--check"], check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("exporters[0].rtt: NetFlow records do not carry it", p.stderr)
        self.assertIn("exporters[1].direction: ports[1] has no \"direction\"", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
