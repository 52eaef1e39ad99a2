#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Two workers on net_af_packet (qpairs=2) on a veth pair inside a network namespace made here.
Both directions of every conversation must be counted by exactly one worker (one observation
domain), both workers must get traffic, and every packet sent must be in an exported record."""
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

CONVERSATIONS = 64
PER_DIRECTION = 5


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw)


class MultiQueueAfPacket(harness.NamespaceCase):
    NAME = "weir-mq"

    def test_each_conversation_meets_on_one_worker(self):
        port = 4739
        nfdir = os.path.join(self.tmp, "nfcapd")
        nfcapd = self.netns.nfcapd(nfdir, port)
        self.addCleanup(harness.stop, nfcapd, signal.SIGKILL)
        lo_pcap = os.path.join(self.tmp, "lo.pcapng")
        dumpcap = subprocess.Popen(self.nsexec + ["dumpcap", "-q", "-i", "lo", "-f", f"udp dst port {port}", "-w",
                                                  lo_pcap], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(harness.stop, dumpcap, signal.SIGKILL)
        harness.wait_for(lambda: os.path.exists(lo_pcap) and os.path.getsize(lo_pcap) > 0, what="dumpcap")
        summary = os.path.join(self.tmp, "summary.json")
        weir = subprocess.Popen(self.nsexec + [harness.WEIR, "--drivers-config", harness.DRIVERS, "-i",
                                               "net_af_packet0,iface=wa,qpairs=2", "-w", "2", "--stats-interval", "0",
                                               "--ipfix", f"udp://127.0.0.1:{port}", "--summary-json", summary],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(harness.stop, weir, signal.SIGKILL)
        time.sleep(3)  # EAL and port start
        self.assertIsNone(weir.poll(), weir.stderr.read() if weir.poll() is not None else "")
        sent = int(sh(*self.nsexec, sys.executable, os.path.join(harness.HERE, "sendframes.py"), "wb",
                      str(CONVERSATIONS), str(PER_DIRECTION)).stdout)
        time.sleep(1)
        weir.send_signal(signal.SIGTERM)
        out, err = weir.communicate(timeout=60)
        self.assertEqual(weir.returncode, 0, err)
        time.sleep(0.5)
        harness.stop(dumpcap, signal.SIGINT)
        harness.stop(nfcapd, signal.SIGTERM)
        info = sh("nfdump", "-R", nfdir, "-I").stdout
        self.assertIn("Sequence failures: 0", info)
        self.assertIn(f"Packets: {sent}", info)
        with open(summary) as f:
            s = json.load(f)
        self.assertTrue(s["accounting"]["balanced"], out)
        self.assertEqual(s["exporters"][0]["send_errors"], 0)
        self.assertEqual(s["rx_packets"], sent, out)
        self.assertEqual(s["accounting"]["in_records"], sent)
        per_worker = [w["rx_packets"] for w in s["workers"]]
        self.assertTrue(all(n > 0 for n in per_worker), f"both workers get traffic: {per_worker}")

        fields = sh("tshark", "-n", "-r", lo_pcap, "-d", f"udp.port=={port},cflow", "-T", "fields", "-E",
                    "separator=;", "-e", "cflow.od_id", "-e", "cflow.srcaddr", "-e", "cflow.dstaddr", "-e",
                    "cflow.srcport", "-e", "cflow.dstport", "-e", "cflow.packets").stdout
        domains = collections.defaultdict(set)
        packets = 0
        for line in fields.splitlines():
            od, sa, da, sp, dp, pk = line.split(";")
            if not sa:
                continue  # a template-only message
            cols = [c.split(",") for c in (sa, da, sp, dp, pk)]
            for src, dst, spt, dpt, n in zip(*cols):
                conv = tuple(sorted([(src, int(spt)), (dst, int(dpt))]))
                domains[conv].add(int(od))
                packets += int(n)
        self.assertEqual(len(domains), CONVERSATIONS)
        split = {c: d for c, d in domains.items() if len(d) != 1}
        self.assertEqual(split, {}, "conversations whose directions reached different workers")
        self.assertEqual(packets, sent)
        self.assertEqual(len({next(iter(d)) for d in domains.values()}), 2, "both observation domains export")


if __name__ == "__main__":
    unittest.main(verbosity=2)
