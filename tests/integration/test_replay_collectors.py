#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Replay real captures through net_pcap; the flows nfcapd and tshark collect over IPFIX/UDP on
loopback equal tshark's own per-5-tuple ground truth, with no sequence failures and balanced
packet accounting."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# Ethernet captures covering IPv4/IPv6, extension headers, fragments, VLAN/QinQ, ICMP, DNS/HTTP/TLS/QUIC.
CAPTURES = [
    "ipfixprobe__mixed.pcap",
    "ipfixprobe__vlan.pcap",
    "zeek__dns-edns-ecs.pcap",
    "zeek__ftp_ipv6.pcap",
    "zeek__var-services-std-ports.pcap",
    "joy__firefox58.pcap",
    "ndpi__dnscrypt-v1-and-resolver-pings.pcap",
    "nfstream__1kxun.pcap",
    "suricata-verify__community-id-ipv6_input.pcap",
    "suricata-verify__truncate-applayer-test-01_input.pcap",
    "tcpdump__vrrp.pcap",
    "zeek__quic_chromium-115.0.5790.110-google-de-fragmented.pcap",
]


class ReplayToCollectors(unittest.TestCase):
    def check_capture(self, name):
        capture = harness.capture(name)
        truth = harness.load_truth(capture)
        with harness.Collectors() as col:
            proc, s = harness.replay(capture, col)
            col.finish()
            acc = s["accounting"]
            self.assertTrue(acc["balanced"], proc.stdout)
            self.assertEqual(acc["dropped_in_export_ring"], 0)
            ex = s["exporters"][0]
            self.assertEqual(ex["send_errors"], 0)
            self.assertEqual(ex["lost_records"], 0)
            self.assertEqual(ex["packets"], acc["in_records"])
            self.assertEqual(s["rx_packets"], s["ports"][0]["capture_packets"])
            self.assertEqual(col.nfdump_sequence_failures(), 0)
            nf = col.nfdump_records()
            self.assertEqual(len(nf), ex["records"], "nfcapd has every record weir sent")
            self.assertEqual(harness.compare(nf, truth), [], f"nfdump vs truth for {name}")
            ts = col.tshark_records()
            self.assertEqual(len(ts), ex["records"], "tshark decodes every record weir sent")
            self.assertEqual(harness.compare(ts, truth), [], f"tshark vs truth for {name}")
            # Everything tshark saw as IP is in a record: IP packets = in_records.
            self.assertEqual(sum(t.packets for t in truth), acc["in_records"])


def _make(name):
    return lambda self: self.check_capture(name)


for _n in CAPTURES:
    setattr(ReplayToCollectors, "test_" + _n.replace(".", "_").replace("-", "_"), _make(_n))

if __name__ == "__main__":
    unittest.main(verbosity=2)
