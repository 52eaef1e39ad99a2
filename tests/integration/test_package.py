#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The Debian package (deploy/package.sh): built from this checkout, its control data, files
and conffiles checked, its md5sums verified, and the packaged (stripped) binary, unpacked,
replays a capture and finds its drivers-config next to itself. Checked in the release pass
only, and made from the release build under test when it is configured for /usr (tests/run.sh
configures it so), else from a build of its own."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CAPTURE = "ipfixprobe__mixed.pcap"


@unittest.skipIf("build-asan" in harness.WEIR, "the package is built and checked in the release pass")
class Package(unittest.TestCase):
    def test_package(self):
        tmp = harness.scratch(self, "weir-deb-")
        # The release build under test is packaged as it is when it was configured for /usr
        # (tests/run.sh does so); otherwise package.sh makes a build of its own.
        build = os.path.dirname(os.path.dirname(os.path.dirname(harness.WEIR)))
        opts = subprocess.run(["meson", "introspect", "--buildoptions", build], capture_output=True, text=True)
        reuse = []
        if opts.returncode == 0:
            o = {x["name"]: x["value"] for x in json.loads(opts.stdout)}
            if o.get("prefix") == "/usr" and o.get("buildtype") == "release":
                reuse = ["--build", build]
        out = subprocess.run([os.path.join(harness.ROOT, "deploy", "package.sh")] + reuse + [os.path.join(tmp, "out")],
                             capture_output=True, text=True, timeout=1800)
        self.assertEqual(out.returncode, 0, out.stderr)
        bad = subprocess.run([os.path.join(harness.ROOT, "deploy", "package.sh"), "--build", tmp, os.path.join(tmp, "x")],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual((bad.returncode, bad.stderr.strip()), (2, f"package: {tmp} is not a meson build directory"))
        deb = out.stdout.strip().splitlines()[-1]
        self.assertTrue(deb.endswith(".deb") and os.path.exists(deb), out.stdout)

        def field(name):
            return subprocess.run(["dpkg-deb", "-f", deb, name], capture_output=True, text=True,
                                  check=True).stdout.strip()
        self.assertEqual(field("Package"), "weir")
        self.assertEqual(field("Architecture"),
                         subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip())
        depends = [d.split()[0] for d in field("Depends").split(", ")]
        for want in ("libc6", "librte-eal23", "librte-ethdev23", "librdkafka1", "libhyperscan5", "libcivetweb1",
                     "libssl3", "dpdk"):
            self.assertIn(want, depends)
        files = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
        paths = {line.split()[-1].lstrip(".") for line in files.splitlines()}
        for want in ("/usr/bin/weir", "/usr/lib/weir/weir-prepare", "/lib/systemd/system/weir.service",
                     "/lib/systemd/system/weir@.service", "/usr/share/man/man8/weir.8.gz",
                     "/usr/share/doc/weir/copyright", "/usr/share/weir/drivers-config/net_pcap.json",
                     "/usr/share/weir/rules/apps.json", "/usr/share/weir/clickhouse/weir.sql",
                     "/usr/share/weir/clickhouse/cluster.sql", "/usr/share/weir/grafana/weir-dashboard.json",
                     "/etc/weir/weir.json", "/etc/default/weir"):
            self.assertIn(want, paths)
        self.assertFalse([l for l in files.splitlines() if " root/root " not in l], "owned by root")
        control = os.path.join(tmp, "DEBIAN")
        subprocess.run(["dpkg-deb", "-e", deb, control], check=True)
        with open(os.path.join(control, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/default/weir", "/etc/weir/rules/apps.json", "/etc/weir/weir.json"])
        root = os.path.join(tmp, "root")
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
        check = subprocess.run(["md5sum", "--quiet", "-c", os.path.join(control, "md5sums")], cwd=root,
                               capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        with open(os.path.join(root, "lib/systemd/system/weir.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/bin/taskset -c ${WEIR_CPUS} /usr/bin/weir -c /etc/weir/weir.json", unit)
        self.assertIn("ExecStartPre=+/usr/lib/weir/weir-prepare", unit)
        man = subprocess.run(["man", "-l", "-Tutf8", os.path.join(root, "usr/share/man/man8/weir.8.gz")],
                             capture_output=True, text=True)
        self.assertEqual(man.returncode, 0, man.stderr)
        import re
        self.assertIn("--web-config FILE", re.sub(".\b", "", man.stdout))
        # The packaged binary, unpacked anywhere, finds its driver profiles beside itself.
        weir = os.path.join(root, "usr/bin/weir")
        self.assertIn("weir 0.1.0", subprocess.run([weir, "--version"], capture_output=True, text=True).stdout)
        capture = harness.capture(CAPTURE)
        flows = os.path.join(tmp, "flows.jsonl")
        p = subprocess.run([weir, "-r", capture, "--export", "jsonl=file://" + flows, "--summary-json",
                            os.path.join(tmp, "summary.json")], capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("profile " + os.path.join(root, "usr/share/weir/drivers-config/net_ring.json"), p.stderr)
        with open(flows) as f:
            rows = [json.loads(line) for line in f]
        self.assertEqual(sum(r["packets"] for r in rows), sum(t.packets for t in harness.load_truth(capture)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
