#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A core link, live: weir on net_af_packet on a veth pair inside a network namespace made here.

- Jumbo frames at MTU 9000: every frame arrives whole and its octets equal tshark's reading of
  the same frames (dumpcap on the same interface).
- Two workers, a VXLAN conversation whose two directions carry different outer UDP source ports
  (as real VTEPs send them): each tenant conversation comes out once with both directions, in
  uniflow and biflow mode, because the worker that receives a tunneled packet hands it to the
  worker owning its inner conversation."""
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SEND = os.path.join(harness.HERE, "sendoverlay.py")


class LiveCoreLink(harness.NamespaceCase):
    NAME = "weir-cl"

    def run_weir(self, name, workers, send_args, mode="inner", exporter_mode="uniflow"):
        """weir on wa (af_packet, one queue per worker), traffic sent out of wb; returns (summary,
        records, frames sent, stderr)."""
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        out, summary = os.path.join(d, "flows.jsonl"), os.path.join(d, "summary.json")
        cfg = {"ports": [{"device": f"net_af_packet0,iface=wa,qpairs={workers}"}], "workers": workers,
               "tunnels": {"mode": mode}, "stats_interval_s": 0, "summary_json": summary,
               "exporters": [{"format": "jsonl", "url": "file://" + out, "mode": exporter_mode}]}
        path = os.path.join(d, "weir.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        weir = subprocess.Popen(self.netns.exec + [harness.WEIR, "--drivers-config", harness.DRIVERS, "-c", path],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(harness.stop, weir, signal.SIGKILL)
        time.sleep(3)  # EAL and port start
        self.assertIsNone(weir.poll(), weir.stderr.read() if weir.poll() is not None else "")
        sent = int(subprocess.run(self.netns.exec + [sys.executable, SEND, "wb"] + send_args, check=True,
                                  capture_output=True, text=True).stdout)
        time.sleep(1)
        weir.send_signal(signal.SIGTERM)
        _, err = weir.communicate(timeout=60)
        self.assertEqual(weir.returncode, 0, err)
        with open(summary) as f:
            s = json.load(f)
        with open(out) as f:
            recs = [json.loads(l) for l in f]
        self.assertTrue(s["accounting"]["balanced"], s["accounting"])
        self.assertEqual(s["rx_packets"], sent)
        return s, recs, sent, err

    def test_jumbo_frames_arrive_whole(self):
        for link in ("wa", "wb"):
            subprocess.run(["ip", "-n", self.netns.name, "link", "set", link, "mtu", "9000"], check=True)
        pcap = os.path.join(self.tmp, "wa.pcapng")
        dumpcap = subprocess.Popen(self.netns.exec + ["dumpcap", "-q", "-i", "wa", "-f", "udp", "-w", pcap],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(harness.stop, dumpcap, signal.SIGKILL)
        harness.wait_for(lambda: os.path.exists(pcap) and os.path.getsize(pcap) > 0, what="dumpcap")
        s, recs, sent, err = self.run_weir("jumbo", 1, ["jumbo"])
        self.assertIn("frames up to 9728", err)
        time.sleep(0.5)
        harness.stop(dumpcap, signal.SIGINT)
        truth = harness.flows_of(harness.tshark_packets(pcap), inner=True)
        self.assertEqual(sum(v for k, v in truth.items() if k[-1] == "p"), sent, "dumpcap saw every frame")
        self.assertEqual(harness.counter_diff(harness.record_flows(recs), truth), [])
        self.assertEqual(s["decode_drops"]["truncated_ip"], 0)
        self.assertEqual(sum(r["bytes"] for r in recs), 10 * 9000 * 2 + 10 * 200 * 2)

    def check_conversations(self, recs, conversations, per, biflow):
        """Each tenant conversation in one worker (observation domain), both directions whole."""
        by_conv = collections.defaultdict(list)
        for r in recs:
            self.assertEqual(r["tunnel_type"], "vxlan")
            conv = tuple(sorted([(r["src"], r["sport"]), (r["dst"], r["dport"])]))
            by_conv[conv].append(r)
        self.assertEqual(len(by_conv), conversations)
        for conv, rs in by_conv.items():
            self.assertEqual(len({r["domain"] for r in rs}), 1, f"{conv} split across workers: {rs}")
            client = [c for c in conv if c[1] != 53][0][0]
            index = int(client.split(".")[2]) * 256 + int(client.split(".")[3])
            for r in rs:
                self.assertEqual(r["tunnel_id"], 5000 + index % 4, r)
            if biflow:
                self.assertEqual(len(rs), 1, rs)
                self.assertEqual((rs[0]["packets"], rs[0]["rev_packets"]), (per, per))
            else:
                self.assertEqual(sorted(r["packets"] for r in rs), [per, per], rs)
            # The client's packets ran from VTEP .1 to .2, the answers back.
            for r in rs:
                want = ("192.0.2.1", "192.0.2.2") if r["src"] == client else ("192.0.2.2", "192.0.2.1")
                self.assertEqual((r["tunnel_src"], r["tunnel_dst"]), want, r)

    def test_vxlan_directions_with_different_outer_ports_meet(self):
        conversations, per = 64, 3
        for exporter_mode in ("uniflow", "biflow"):
            s, recs, sent, _ = self.run_weir(exporter_mode, 2, ["vxlan", str(conversations), str(per)],
                                             exporter_mode=exporter_mode)
            self.assertEqual(sent, conversations * per * 2)
            self.assertEqual(s["accounting"]["in_records"], sent)
            workers = [w["rx_packets"] for w in s["workers"]]
            self.assertTrue(all(n > 0 for n in workers), f"both workers receive: {workers}")
            self.assertGreater(s["tunnels"]["handed_between_workers"], 0)
            self.assertEqual(s["tunnels"]["handoff_dropped"], 0)
            self.check_conversations(recs, conversations, per, exporter_mode == "biflow")

    def test_outer_mode_keeps_the_vtep_flows(self):
        # The same traffic keyed on the outer headers: flows between the two VTEPs, one per outer
        # source port, none tunneled, nothing handed between workers.
        s, recs, sent, _ = self.run_weir("outer", 2, ["vxlan", "16", "2"], mode="outer")
        self.assertEqual(s["tunnels"]["handed_between_workers"], 0)
        self.assertTrue(all(not r["tunnel_type"] and r["dport"] == 4789 for r in recs))
        self.assertEqual(sum(r["packets"] for r in recs), sent)


if __name__ == "__main__":
    unittest.main(verbosity=2)
