#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The Kafka exporter against librdkafka's mock cluster (the real Kafka protocol on local ports,
tests/tools/kafka_mock.cpp), read back by a librdkafka consumer: every record of a replay
arrives once, both directions and every record of a conversation in one partition and in
order, the probe's name in every row; IPFIX messages decode per partition; a broker that goes
away costs counted drops and weir recovers when it is back."""
import collections
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MOCK = os.environ.get("WEIR_KAFKA_MOCK", "")
CAPTURE = "ipfixprobe__mixed.pcap"


class Mock:
    """weir-kafka-mock as a child: `prefix` runs it (inside a namespace, say)."""

    def __init__(self, test, brokers, topic, partitions, prefix=()):
        self.p = subprocess.Popen(list(prefix) + [MOCK, str(brokers), topic, str(partitions)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        test.addCleanup(self.close)
        line = self.p.stdout.readline().split()
        test.assertEqual(line[:1], ["bootstrap"], "the mock cluster started")
        self.bootstrap = line[1]
        self.partitions = partitions

    def command(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def consume(self, path, at_least, idle_ms=3000):
        """[(partition, offset, key, bytes)] of the whole topic."""
        answer = self.command(f"consume {path} {at_least} {idle_ms}")
        assert answer.startswith("consumed"), answer
        out = []
        with open(path) as f:
            for line in f:
                part, off, key, value = line.split(" ")
                out.append((int(part), int(off), key, bytes.fromhex(value.strip())))
        return out

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p.stdout.close()


def conversation(row):
    a, b = (row["src"], row["sport"]), (row["dst"], row["dport"])
    return (row["proto"], row["vlan"]) + (min(a, b), max(a, b))


@unittest.skipUnless(MOCK, "weir was built without Kafka (librdkafka)")
class KafkaReplay(unittest.TestCase):
    def replay(self, exporter, extra=()):
        tmp = harness.scratch(self, "weir-kafka-")
        capture = harness.capture(CAPTURE)
        cfg = os.path.join(tmp, "weir.json")
        with open(cfg, "w") as f:
            json.dump({"ports": [{"device": "net_pcap_k,rx_pcap=" + capture}], "probe": "edge-1",
                       "exporters": [exporter]}, f)
        summary = os.path.join(tmp, "summary.json")
        harness.run_weir(["-c", cfg, "--summary-json", summary] + list(extra))
        with open(summary) as f:
            return tmp, capture, json.load(f)

    def test_json_lines_every_record_once_one_partition_per_conversation(self):
        mock = Mock(self, 3, "flows", 6)
        # A 2 s active timeout splits long conversations into several records: they must stay
        # in one partition, in order.
        tmp, capture, s = self.replay({"format": "jsonl", "url": f"kafka://{mock.bootstrap}/flows",
                                       "kafka": {"compression.codec": "lz4"}},
                                      ["--active-timeout", "2"])
        ex = s["exporters"][0]
        self.assertEqual(ex["lost_records"], 0)
        self.assertEqual(ex["queue_full"], 0)
        messages = mock.consume(os.path.join(tmp, "consumed"), ex["messages"])
        self.assertEqual(len(messages), ex["messages"], "every message once")
        rows = []
        for part, off, key, value in messages:
            for line in value.decode().splitlines():
                rows.append((part, off, key, json.loads(line)))
        self.assertEqual(len(rows), ex["records"])
        self.assertTrue(all(r["probe"] == "edge-1" for _, _, _, r in rows))
        recs = [harness.Rec(r["proto"], r["src"], r["dst"], r["sport"], r["dport"], r["packets"], r["bytes"])
                for _, _, _, r in rows]
        self.assertEqual(harness.compare(recs, harness.load_truth(capture)), [])
        where = collections.defaultdict(set)
        order = collections.defaultdict(list)
        for part, off, key, r in rows:
            where[conversation(r)].add((part, key))
            order[(conversation(r), r["src"], r["sport"])].append((off, r["start_ms"]))
        self.assertEqual([c for c, p in where.items() if len(p) != 1], [],
                         "both directions and every record of a conversation under one key, in one partition")
        self.assertGreater(len({p for ps in where.values() for p, _ in ps}), 3, "spread over the partitions")
        split = [o for o in order.values() if len(o) > 1]
        self.assertTrue(split, "the active timeout split some conversations")
        for o in split:
            self.assertEqual([t for _, t in sorted(o)], sorted(t for _, t in o), "in order within the partition")

    def test_ipfix_messages_decode_partition_by_partition(self):
        mock = Mock(self, 1, "ipfix", 4)
        tmp, capture, s = self.replay({"format": "ipfix", "url": f"kafka://{mock.bootstrap}/ipfix",
                                       "mode": "biflow"})
        ex = s["exporters"][0]
        self.assertEqual(ex["lost_records"], 0)
        messages = mock.consume(os.path.join(tmp, "consumed"), ex["messages"] + ex["template_messages"])
        by_part = collections.defaultdict(bytes)
        for part, off, key, value in sorted(messages):
            by_part[part] += value
        records = packets = 0
        for part, data in by_part.items():
            msgs = harness.ipfix_stream(data)  # KeyError if a partition has data before its templates
            self.assertEqual(msgs[0][2][0][0], "templates", f"partition {part} starts with templates")
            records += sum(x[1] for m in msgs for x in m[2] if x[0] == "data")
            packets += sum(x[2] for m in msgs for x in m[2] if x[0] == "data")
        self.assertEqual(records, ex["records"])
        self.assertEqual(packets, sum(t.packets for t in harness.load_truth(capture)))

    def test_bad_property_is_named(self):
        tmp = harness.scratch(self, "weir-kafka-")
        cfg = os.path.join(tmp, "weir.json")
        with open(cfg, "w") as f:
            json.dump({"ports": [{"device": "net_pcap_k,rx_pcap=" + harness.capture(CAPTURE)}],
                       "exporters": [{"format": "jsonl", "url": "kafka://127.0.0.1:1/flows",
                                      "kafka": {"no.such.property": "1"}}]}, f)
        p = harness.run_weir(["-c", cfg], check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("exporters[0].kafka.no.such.property: No such configuration property", p.stderr)


@unittest.skipUnless(MOCK, "weir was built without Kafka (librdkafka)")
class KafkaOutage(harness.NamespaceCase):
    """Live capture on a veth; the only broker goes down, then comes back."""
    NAME = "weir-kafka"

    def test_broker_down_costs_counted_drops_and_weir_recovers(self):
        mock = Mock(self, 1, "flows", 2, prefix=self.nsexec)
        cfg = os.path.join(self.tmp, "weir.json")
        with open(cfg, "w") as f:
            json.dump({"ports": [{"device": "net_af_packet0,iface=wa"}], "timeouts": {"idle_s": 1},
                       "ipfix": {"max_delay_ms": 100}, "management": {"listen": "none"},
                       "exporters": [{"format": "jsonl", "url": f"kafka://{mock.bootstrap}/flows",
                                      "kafka": {"message.timeout.ms": 3000}}]}, f)
        summary = os.path.join(self.tmp, "summary.json")
        weir = self.start_weir(cfg, summary)
        a = self.send_frames("wb", 20, 3)
        time.sleep(4)                                    # idle 1 s: phase A delivered
        self.assertEqual(mock.command("down 1"), "ok")
        b = self.send_frames("wb", 10, 2)                # ends while the broker is away
        time.sleep(8)                                    # past message.timeout.ms: counted lost
        self.assertEqual(mock.command("up 1"), "ok")
        time.sleep(2)
        c = self.send_frames("wb", 30, 2)
        time.sleep(5)
        s, err = self.stop_weir(weir, summary, timeout=90)
        ex = s["exporters"][0]
        self.assertEqual(s["rx_packets"], a + b + c)
        self.assertEqual(ex["lost_packets"], b, "what ended while the broker was away is what was counted lost")
        self.assertEqual(ex["packets"], a + c, "before the outage and after it")
        self.assertIn("delivery failed: Local: Message timed out", err)
        rows = [json.loads(line) for _, _, _, v in mock.consume(os.path.join(self.tmp, "consumed"), 1)
                for line in v.decode().splitlines()]
        self.assertEqual(sum(r["packets"] for r in rows), a + c, "the brokers hold exactly what weir counted sent")
        self.assertEqual(len(rows), ex["records"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
