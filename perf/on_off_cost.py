#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Given worker_bench's lines for one scenario, some without and some with detection (detect=0
and detect=1, run alternately), prints what detection costs: the median cycles per packet both
ways, their ratio, and the observer's memory per worker."""
import statistics
import sys


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv and not kv.startswith("cmd"))


runs = [fields(a) for a in sys.argv[1:] if a.strip()]
off = [float(r["cycles_per_pkt"]) for r in runs if r.get("detect") == "0"]
on = [float(r["cycles_per_pkt"]) for r in runs if r.get("detect") == "1"]
if not off or not on:
    sys.exit("detect_cost: need lines with detect=0 and detect=1")
m_off, m_on = statistics.median(off), statistics.median(on)
mib = next(r["detect_mib"] for r in runs if r.get("detect") == "1")
print(f"detect_cost scenario={runs[0]['scenario']} runs={len(off)}+{len(on)} cycles_per_pkt_off={m_off} "
      f"cycles_per_pkt_on={m_on} ratio={m_on / m_off:.2f} added_cycles={m_on - m_off:.1f} detect_mib={mib}")
