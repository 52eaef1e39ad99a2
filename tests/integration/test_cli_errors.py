#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Bad configuration and arguments: one clear message naming the field, exit code 2, nothing
started. A collector that is down costs counted losses, never a hang or a crash."""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CAPTURE = "ipfixprobe__mixed.pcap"


class BadInput(unittest.TestCase):
    def run_config(self, cfg, *args):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(cfg, f)
        self.addCleanup(os.unlink, f.name)
        return harness.run_weir(["-c", f.name] + list(args), check=False, timeout=60)

    def test_wrong_type_and_unknown_key(self):
        p = self.run_config({"ports": [{"device": "net_pcap0,rx_pcap=x.pcap"}], "workers": "two", "colour": 1})
        self.assertEqual(p.returncode, 2)
        self.assertIn("weir: config: workers: expected an integer, got a string \"two\"", p.stderr)
        self.assertIn("weir: config: colour: unknown key", p.stderr)
        self.assertNotIn("EAL", p.stderr, "nothing is started")

    def test_unknown_pci_address(self):
        p = self.run_config({"ports": [{"device": "0000:99:00.0"}]}, "--", "--no-huge", "--no-shconf", "-m", "128",
                            "--lcores=0@0,1@0", "--log-level=error")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("ports[0].device: no DPDK port \"0000:99:00.0\"", p.stderr)

    def test_more_queues_than_the_device_has(self):
        # A live libpcap port has one queue per interface.
        p = self.run_config({"ports": [{"device": "net_pcap0,rx_iface=lo"}], "workers": 2})
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("ports[0]", p.stderr)
        self.assertIn("queue", p.stderr)

    def test_unreadable_capture(self):
        p = harness.run_weir(["-r", "/nonexistent.pcap"], check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("cannot read capture \"/nonexistent.pcap\"", p.stderr)

    def test_bad_option_values(self):
        p = harness.run_weir(["-r", "x.pcap", "--ipfix", "udp://127.0.0.1:99999"], check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("exporters[0].url: port must be 1..65535, got \"99999\"", p.stderr)
        p = harness.run_weir(["--idle-timeout", "soon"], check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--idle-timeout: expected a number, got \"soon\"", p.stderr)

    def test_check_validates_without_starting(self):
        example = os.path.join(harness.ROOT, "deploy", "weir.json.example")
        p = harness.run_weir(["-c", example, "--check"], check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("configuration OK: 1 port(s), 8 worker(s), 1 exporter(s)", p.stdout)
        p = self.run_config({"ports": [{"device": "net_null0"}], "management": {"listen": "nowhere"}}, "--check")
        self.assertEqual(p.returncode, 2)
        self.assertIn("management.listen: expected ADDRESS:PORT", p.stderr)

    def test_check_finds_what_would_fail_at_start(self):
        capture = harness.capture(CAPTURE)
        p = harness.run_weir(["-i", "lo", "--check"], check=False)
        self.assertEqual(p.returncode, 2, p.stdout)
        self.assertIn("ports[0].device: \"lo\" is neither a PCI address (0000:3b:00.0) nor a DPDK virtual device; "
                      "for the kernel interface lo use \"net_af_packet0,iface=lo\"", p.stderr)
        p = harness.run_weir(["-r", "/tmp", "--check"], check=False)
        self.assertEqual(p.returncode, 2, p.stdout)
        self.assertIn("cannot read capture \"/tmp\"", p.stderr)
        p = harness.run_weir(["-r", capture, "--drivers-config", "/nonexistent", "--check"], check=False)
        self.assertEqual(p.returncode, 2, p.stdout)
        self.assertIn("drivers_config: no such folder \"/nonexistent\"", p.stderr)
        p = harness.run_weir(["-r", capture, "--check"], check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("warning: no exporters: flow records are counted and discarded", p.stderr)
        self.assertIn("0 exporter(s) (see the warnings)", p.stdout)
        p = harness.run_weir(["-r", capture, "--ipfix", "udp://127.0.0.1:4739", "--check"], check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("warning", p.stderr)

    def test_option_errors_name_the_option_typed(self):
        for args, msg in ((["--mtu"], "option --mtu needs a value"),
                          (["--ipfix"], "option --ipfix needs a value"),
                          (["--workers"], "option --workers needs a value"),
                          (["-w"], "option -w needs a value"),
                          (["--help=x"], "option --help takes no value"),
                          (["--colour"], "unknown option --colour"),
                          (["-z"], "unknown option -z"),
                          (["--c", "x"], "option --c is ambiguous (--config, --capacity, --check)")):
            p = subprocess.run([harness.WEIR] + args, capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2, args)
            self.assertEqual(p.stderr.splitlines()[0], "weir: " + msg, args)
            self.assertTrue(all(c == "\n" or c.isprintable() for c in p.stderr), repr(p.stderr))

    def test_any_exporter_from_the_command_line(self):
        capture = harness.capture(CAPTURE)
        tmp = harness.scratch(self, "weir-export-")
        out = os.path.join(tmp, "flows.jsonl")
        with harness.Collectors(tshark=False) as v9:
            p = harness.run_weir(["-r", capture, "--export", "jsonl=file://" + out, "--export", "netflow9=" + v9.url(),
                                  "--summary-json", os.path.join(tmp, "s.json")])
            v9.finish()
            got = v9.nfdump_records()
        with open(os.path.join(tmp, "s.json")) as f:
            s = json.load(f)
        self.assertEqual([e["format"] for e in s["exporters"]], ["jsonl", "netflow9"], p.stderr)
        with open(out) as f:
            rows = [json.loads(l) for l in f]
        self.assertEqual(sum(r["packets"] for r in rows), s["accounting"]["in_records"])
        self.assertEqual(sum(r.packets for r in got), s["accounting"]["in_records"])
        p = harness.run_weir(["-r", capture, "--export", "udp://127.0.0.1:2055"], check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--export udp://127.0.0.1:2055: expected FORMAT=URL", p.stderr)
        p = harness.run_weir(["-r", capture, "--export", "sflow=udp://127.0.0.1:6343"], check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("exporters[0].format: expected \"ipfix\"", p.stderr)

    def test_eal_arguments_keep_the_defaults(self):
        capture = harness.capture(CAPTURE)
        # One EAL argument of the user's own must not cost the replay its --no-huge.
        p = harness.run_weir(["-r", capture, "--", "--log-level=info"], check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("EAL: ", p.stderr, "--log-level=info was applied")
        self.assertIn("accounting:", p.stdout)

    def test_eal_failure_says_what_to_do(self):
        with open("/proc/meminfo") as f:
            free = int(next((l.split()[1] for l in f if l.startswith("HugePages_Free:")), 0))
        if free:
            self.skipTest("this machine has hugepages: DPDK starts")
        p = harness.run_weir(["-i", "0000:99:00.0", "--management", "none"], check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("DPDK EAL initialisation failed", p.stderr)
        self.assertIn("weir: DPDK found no usable hugepages", p.stderr)
        self.assertIn("dpdk-devbind.py --bind=vfio-pci", p.stderr)

    def test_man_page_has_every_option(self):
        page = os.path.join(harness.ROOT, "doc", "weir.8")
        p = subprocess.run(["groff", "-man", "-ww", "-z", page], capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        with open(page) as f:
            text = f.read().replace("\\-", "-")
        helptext = subprocess.run([harness.WEIR, "--help"], capture_output=True, text=True, check=True).stdout
        own = helptext.split("Options:")[1].split("EAL arguments")[0]  # weir's options, not DPDK's
        options = set(re.findall(r"(--[a-z][a-z-]+)", own))
        self.assertGreater(len(options), 15)
        for o in sorted(options):
            self.assertTrue(o in text, f"{o} is in --help but not in the man page")

    def test_readme_exporter_example_is_valid(self):
        text = open(os.path.join(harness.ROOT, "README.md")).read()
        block = text.split("One example per exporter")[1].split("```json")[1].split("```")[0]
        p = self.run_config(json.loads(block), "--check")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("8 exporter(s)", p.stdout)

    def test_collector_down_costs_counted_losses(self):
        capture = harness.capture(CAPTURE)
        port = harness.free_udp_port()  # nothing listens there
        proc, s = harness.replay(capture, extra=["--ipfix", f"udp://127.0.0.1:{port}"])
        ex = s["exporters"][0]
        self.assertTrue(s["accounting"]["balanced"])
        self.assertGreater(ex["send_errors"], 0)
        self.assertIn(f"weir: exporter ipfix udp://127.0.0.1:{port}: delivery failed: Connection refused", proc.stderr)
        self.assertEqual(ex["packets"] + ex["lost_packets"], s["accounting"]["in_records"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
