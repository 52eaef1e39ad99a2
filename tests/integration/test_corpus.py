#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Every capture of the corpus replayed by the binary under test (run it with the ASan/UBSan
build): each run ends with exit 0 and balanced accounting, or with exit 2 and one clear line
saying why (an unreadable file); never a sanitizer report, a crash or a hang. Long: it runs only
with WEIR_CORPUS_ALL=1 (WEIR_CORPUS_SAMPLE=N takes every Nth capture):

    WEIR_CORPUS_ALL=1 WEIR_BIN=build-asan/app/weir/weir python3 tests/integration/test_corpus.py
"""
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "SUMMARY: UndefinedBehavior")


def captures():
    d = harness.pcaps_dir()
    with open(os.path.join(d, "MANIFEST.tsv")) as f:
        names = [l.split("\t")[0] for l in f.read().splitlines()[1:] if l]
    return [n for n in names if os.path.isfile(os.path.join(d, n))]


def replay(name, workdir):
    """(name, problem or None, seconds, exit status)."""
    summary = os.path.join(workdir, name + ".summary.json")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=1", UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    start = time.monotonic()
    try:
        p = subprocess.run([harness.WEIR, "--drivers-config", harness.DRIVERS, "--stats-interval", "0", "--management",
                            "none", "--log-level", "warning", "-r", os.path.join(harness.pcaps_dir(), name),
                            "--summary-json", summary], capture_output=True, text=True, timeout=300, env=env)
    except subprocess.TimeoutExpired:
        return name, "no exit within 300 s", 300.0, None
    secs = time.monotonic() - start
    report = next((m for m in SANITIZER_MARKS if m in p.stderr), None)
    if report:
        return name, f"{report}: {p.stderr[-2000:]}", secs, p.returncode
    if p.returncode == 2:
        lines = [l for l in p.stderr.splitlines() if l.startswith("weir:")]
        return name, None if lines else f"exit 2 without a weir: line: {p.stderr[-500:]}", secs, 2
    if p.returncode != 0:
        return name, f"exit {p.returncode}: {p.stderr[-1000:]}", secs, p.returncode
    try:
        with open(summary) as f:
            acc = json.load(f)["accounting"]
    except (OSError, ValueError, KeyError) as e:
        return name, f"no summary: {e}", secs, 0
    return name, None if acc["balanced"] else f"accounting does not balance: {acc}", secs, 0


@unittest.skipUnless(os.environ.get("WEIR_CORPUS_ALL"), "long: set WEIR_CORPUS_ALL=1 (see the module's docstring)")
class EveryCapture(unittest.TestCase):
    def test_every_capture_ends_cleanly(self):
        names = captures()[::max(1, int(os.environ.get("WEIR_CORPUS_SAMPLE", "1")))]
        workdir = harness.scratch(self, "weir-corpus-")
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda n: replay(n, workdir), names))
        problems = [(n, p) for n, p, _, _ in results if p]
        refused = sum(1 for _, p, _, rc in results if not p and rc == 2)
        slowest = max(results, key=lambda r: r[2])
        print(f"\n{len(names)} captures: {len(names) - refused - len(problems)} replayed with balanced accounting, "
              f"{refused} refused with a reason (exit 2), {len(problems)} problems; "
              f"{sum(r[2] for r in results):.0f} s in all, slowest {slowest[0]} {slowest[2]:.1f} s", file=sys.stderr)
        self.assertEqual(problems, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
