#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Faults that come together on a real probe: 100 reloads in a row while traffic flows (every
packet still in exactly one record, in one of the two files the reloads switch between), and
collectors that never come back (TCP, Kafka, ClickHouse: counted drops, and weir still stops
in bounded time with its accounting balanced). The full disk and SIGTERM at any point of a
replay are in test_operate.py; a ClickHouse shard down while its probe runs is in
test_clickhouse_cluster.py; a Kafka broker down and back in test_kafka.py."""
import json
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CAPTURE = "ipfixprobe__mixed.pcap"


class ReloadStorm(harness.NamespaceCase):
    NAME = "weir-storm"

    def test_hundred_reloads_while_traffic_flows(self):
        files = [os.path.join(self.tmp, "a.jsonl"), os.path.join(self.tmp, "b.jsonl")]
        cfg = os.path.join(self.tmp, "weir.json")

        def write(i):
            with open(cfg + ".new", "w") as f:
                json.dump({"ports": [{"device": "net_af_packet0,iface=wa"}],
                           "timeouts": {"idle_s": 1 + i % 2, "active_s": 30 + 30 * (i % 3)},
                           "ipfix": {"max_delay_ms": 100}, "management": {"listen": "127.0.0.1:9471"},
                           "exporters": [{"format": "jsonl", "url": "file://" + files[i % 2]}]}, f)
            os.replace(cfg + ".new", cfg)  # weir never reads half a file
        write(0)
        summary = os.path.join(self.tmp, "summary.json")
        weir = self.start_weir(cfg, summary)
        sent = []
        stop = threading.Event()

        def traffic():
            while not stop.is_set():
                sent.append(self.send_frames("wb", 10, 2))
        sender = threading.Thread(target=traffic)
        sender.start()
        answers = []
        try:
            for i in range(1, 101):
                write(i)
                out = subprocess.run(self.nsexec + ["curl", "-sS", "--max-time", "20", "-XPOST",
                                                    "http://127.0.0.1:9471/reload"], capture_output=True, text=True)
                answers.append(json.loads(out.stdout) if out.stdout else {"ok": False, "errors": [out.stderr]})
        finally:
            stop.set()
            sender.join()
        self.assertEqual([a for a in answers if not a.get("ok")], [], "every reload applied")
        time.sleep(3)  # the last conversations idle out
        s, _ = self.stop_weir(weir, summary, timeout=90)
        self.assertEqual(s["rx_packets"], sum(sent), "every frame sent was received")
        self.assertGreater(len(sent), 3, "traffic all along the reloads")
        got = 0
        for path in files:
            with open(path) as f:
                for line in f:
                    got += json.loads(line)["packets"]
        self.assertEqual(got, sum(sent), "every packet in exactly one record, in one of the files")


class CollectorsThatNeverReturn(unittest.TestCase):
    def test_dead_collectors_cost_counted_drops_and_a_bounded_stop(self):
        """A TCP collector, a Kafka broker and a ClickHouse server that are never there: the
        replay's records are counted lost at each, and weir exits 0 with balanced accounting
        within the documented bounds (ClickHouse and Kafka get 30 s each to drain at stop)."""
        tmp = harness.scratch(self, "weir-dead-")
        port = harness.free_tcp_port()  # nothing listens there
        cfg = os.path.join(tmp, "weir.json")
        exporters = [{"url": f"tcp://127.0.0.1:{port}"},
                     {"format": "clickhouse", "url": f"http://127.0.0.1:{port}", "batch_rows": 10}]
        if os.environ.get("WEIR_KAFKA_MOCK"):
            exporters.append({"format": "jsonl", "url": f"kafka://127.0.0.1:{port}/flows"})
        with open(cfg, "w") as f:
            json.dump({"ports": [{"device": "net_pcap_dead,rx_pcap=" + harness.capture(CAPTURE)}],
                       "exporters": exporters}, f)
        summary = os.path.join(tmp, "summary.json")
        t0 = time.monotonic()
        p = harness.run_weir(["-c", cfg, "--summary-json", summary], check=False, timeout=200)
        took = time.monotonic() - t0
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLess(took, 120, "stopped in bounded time")
        with open(summary) as f:
            s = json.load(f)
        self.assertTrue(s["accounting"]["balanced"])
        for ex in s["exporters"]:
            self.assertEqual(ex["records"], 0, ex["url"])
            self.assertGreater(ex["lost_records"], 0, ex["url"])
            self.assertGreater(ex["lost_packets"], 0, ex["url"])
        packets = s["exporters"][0]["lost_packets"]
        self.assertTrue(all(ex["lost_packets"] == packets for ex in s["exporters"]), "each lost all of them")
        for ex in exporters:
            self.assertIn(f"exporter {ex.get('format', 'ipfix')} {ex['url']}: delivery failed", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
