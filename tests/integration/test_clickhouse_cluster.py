#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Many probes, one ClickHouse cluster: two clickhouse-server processes on loopback are the two
shards of the cluster "weir" (remote_servers), laid out by deploy/clickhouse/weir.sql and
cluster.sql. Two weir instances with different probe names replay different captures, each into
its shard's local table; the Distributed table weir.flows gives each probe's packets and bytes
as tshark counts them, and the example queries run unchanged on it. One shard is down while its
probe runs: the inserts are retried (counted) and land once it is back, without duplicates."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CAPTURES = {"edge-a": "ipfixprobe__mixed.pcap", "edge-b": "ipfixprobe__vlan.pcap"}


class TwoShards(unittest.TestCase):
    def test_two_probes_two_shards_one_view(self):
        tmp = harness.scratch(self, "weir-chc-")
        shards = []
        for n in (1, 2):
            os.makedirs(os.path.join(tmp, f"s{n}"))
            shards.append(harness.ClickHouse(self, os.path.join(tmp, f"s{n}"), start=False))
        cluster = "<yandex><remote_servers><weir>" + "".join(
            f"<shard><replica><host>127.0.0.1</host><port>{s.tcp}</port></replica></shard>" for s in shards) + \
            "</weir></remote_servers></yandex>"
        for s in shards:
            s.configure({"cluster.xml": cluster})
            s.start()
            s.statements("weir.sql")
            s.statements("cluster.sql")
        self.assertIn("Distributed", shards[0].query("SHOW CREATE TABLE weir.flows"))

        def weir(probe, shard):
            cfg = os.path.join(tmp, probe + ".json")
            with open(cfg, "w") as f:
                json.dump({"ports": [{"device": "net_pcap_" + probe.replace("-", "") + ",rx_pcap=" +
                                      harness.capture(CAPTURES[probe])}], "probe": probe,
                           "exporters": [{"format": "clickhouse", "url": shard.url, "table": "weir.flows_local",
                                          "batch_rows": 20, "user": "weir", "password": shard.PASSWORD}]}, f)
            summary = os.path.join(tmp, probe + ".summary.json")
            p = subprocess.Popen([harness.WEIR, "--drivers-config", harness.DRIVERS, "-c", cfg, "--summary-json",
                                  summary], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.addCleanup(lambda: p.poll() is None and p.kill())
            self.addCleanup(p.stdout.close)
            self.addCleanup(p.stderr.close)
            return p, summary

        a, a_summary = weir("edge-a", shards[0])
        _, err = a.communicate(timeout=120)
        self.assertEqual(a.returncode, 0, err)
        # Shard 2 is down while edge-b replays: its inserts cannot connect and are retried.
        shards[1].stop()
        b, b_summary = weir("edge-b", shards[1])
        time.sleep(6)
        self.assertIsNone(b.poll(), "edge-b waits for its shard, retrying")
        shards[1].start()
        _, err = b.communicate(timeout=120)
        self.assertEqual(b.returncode, 0, err)
        self.assertIn("delivery failed: Couldn't connect to server (batches are retried", err,
                      "the outage is said in the log")
        summaries = {}
        for probe, path in (("edge-a", a_summary), ("edge-b", b_summary)):
            with open(path) as f:
                summaries[probe] = json.load(f)["exporters"][0]
            self.assertEqual(summaries[probe]["lost_records"], 0, probe)
        self.assertGreater(summaries["edge-b"]["retries"], 0)
        self.assertEqual(summaries["edge-a"]["retries"], 0)

        for view in shards:  # either server answers for the whole cluster
            rows = view.query("SELECT probe, count(), sum(packets), sum(bytes) FROM weir.flows GROUP BY probe "
                              "ORDER BY probe").splitlines()
            got = {r.split("\t")[0]: tuple(map(int, r.split("\t")[1:])) for r in rows}
            want = {}
            for probe, capture in CAPTURES.items():
                truth = harness.load_truth(harness.capture(capture))
                want[probe] = (summaries[probe]["records"], sum(t.packets for t in truth), sum(t.octets for t in truth))
            self.assertEqual(got, want, "per probe: every record once, tshark's packets and bytes")
        for n, s in enumerate(shards):
            self.assertEqual(s.query("SELECT DISTINCT probe FROM weir.flows_local").split(), [f"edge-{'ab'[n]}"],
                             "each probe's rows on its own shard")
        # The example queries run on the Distributed table as they are (an error raises); the
        # first, top talkers, has rows from both probes' captures.
        answers = [shards[1].query(s.replace("now() - 3600", "toDateTime(0)").replace("now() - 86400", "toDateTime(0)"))
                   for s in shards[1].statements("queries.sql", run=False)]
        self.assertGreater(len(answers), 3)
        talkers = {line.split("\t")[0] for line in answers[0].splitlines()}
        self.assertTrue(talkers & {"10.5.5.1", "10.5.5.26"} and talkers - {"10.5.5.1", "10.5.5.26"}, talkers)


if __name__ == "__main__":
    unittest.main(verbosity=2)
