#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The page for a person (GET /) and the history behind it (GET /history): live traffic on a
veth inside a namespace, sampled every second; the rates integrate back to the frames, bytes
and conversations sent; Debian's Chromium, headless, runs the page's script and draws every
graph with the samples (the DOM after the script, and a screenshot)."""
import json
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CHROMIUM = shutil.which("chromium")


class Page(harness.NamespaceCase):
    NAME = "weir-page"

    def get(self, path):
        out = subprocess.run(self.nsexec + ["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}",
                                            f"http://127.0.0.1:9471{path}"], capture_output=True, text=True)
        body, _, code = out.stdout.rpartition("\n")
        return int(code or 0), body

    def test_history_and_page(self):
        cfg = os.path.join(self.tmp, "weir.json")
        with open(cfg, "w") as f:
            json.dump({"ports": [{"device": "net_af_packet0,iface=wa"}], "timeouts": {"idle_s": 1},
                       "ipfix": {"max_delay_ms": 100}, "probe": "page-test",
                       "management": {"listen": "127.0.0.1:9471", "history_step_s": 1},
                       "exporters": [{"format": "jsonl", "url": "file://" + os.path.join(self.tmp, "flows.jsonl")}]},
                      f)
        summary = os.path.join(self.tmp, "summary.json")
        weir = self.start_weir(cfg, summary)
        sent = 0
        for _ in range(3):
            sent += self.send_frames("wb", 20, 5)
            time.sleep(1.5)
        time.sleep(3)  # idle 1 s: every conversation ends and is exported; two more samples
        code, body = self.get("/history?s=60")
        self.assertEqual(code, 200, body)
        h = json.loads(body)
        self.assertEqual(h["step_s"], 1)
        self.assertGreater(len(h["t"]), 5)
        dt = [b - a for a, b in zip([h["t"][0] - 1] + h["t"], h["t"])]
        # The first rate is over the interval before the first time shown; the first sample came
        # before any traffic, so the rates add up to everything.
        code, body = self.get("/history?s=86400&points=5000")
        full = json.loads(body)
        times = full["t"]
        steps = [b - a for a, b in zip(times, times[1:])]
        total = lambda k: sum(v * d for v, d in zip(full[k][1:], steps)) + full[k][0] * 1.0  # noqa: E731
        self.assertAlmostEqual(total("pps"), sent, delta=0.02 * sent)
        self.assertAlmostEqual(total("new_flows_per_s"), 60, delta=2)
        self.assertGreater(max(h["flows_active"]), 0)
        self.assertEqual(h["flows_active"][-1], 0, "every conversation idled out")
        self.assertEqual(max(h["busy"]) <= 1, True)
        self.assertTrue(all(v == 0 for v in h["missed_pps"] + h["export_dropped_per_s"]))
        self.assertTrue(all(d > 0 for d in dt))
        for bad in ("/history?s=5", "/history?points=1", "/history?s=abc"):
            self.assertEqual(self.get(bad)[0], 400, bad)
        code, html = self.get("/")
        self.assertEqual(code, 200)
        self.assertIn("<title>weir</title>", html)
        self.assertNotIn("http://", html.replace("http://www.w3.org/2000/svg", ""), "nothing from elsewhere")
        self.assertTrue(CHROMIUM, "Debian's chromium is needed (deploy/install-deps.sh --test installs it)")
        if CHROMIUM:
            dom = subprocess.run(self.nsexec + [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                                                "--virtual-time-budget=5000", "--dump-dom", "http://127.0.0.1:9471/"],
                                 capture_output=True, text=True, timeout=120).stdout
            after = len(json.loads(self.get("/history?s=3600")[1])["t"])
            shot = os.path.join(self.tmp, "page.png")
            subprocess.run(self.nsexec + [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                                          "--virtual-time-budget=5000", "--window-size=1280,1600",
                                          f"--screenshot={shot}", "http://127.0.0.1:9471/"],
                           capture_output=True, timeout=120)
            self.assertGreater(os.path.getsize(shot), 10000, "a screenshot with something on it")
            import re
            series = dict(re.findall(r'data-series="([a-z_]+)" points="([^"]*)"', dom) +
                          [(k, v) for v, k in re.findall(r'points="([^"]*)"[^>]*data-series="([a-z_]+)"', dom)])
            for k in ("pps", "bps", "flows_active", "new_flows_per_s", "records_per_s", "busy", "events_per_min"):
                self.assertIn(k, series, f"graph {k} drawn")
                # One point per sample of the last hour (one more may have come since the page asked).
                self.assertIn(len(series[k].split()), (after - 1, after), f"{k}: one point per sample")
            self.assertIn('<span id="probe">page-test weir', dom)
            self.assertIn('<div id="error"></div>', dom, "the page reached weir")
            self.assertIn("net_af_packet0", dom, "the ports table")
        s, _ = self.stop_weir(weir, summary)
        self.assertEqual(s["rx_packets"], sent)


if __name__ == "__main__":
    unittest.main(verbosity=2)
