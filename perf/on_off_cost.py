#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Given worker_bench's lines for one scenario, some without and some with a feature (FLAG=0 and
FLAG=1, run alternately), prints what it costs: the median cycles per packet and Mpps both ways,
their ratio, and the memory it adds (detection: the observer's MiB per worker; others: bytes per
flow in the table).
usage: on_off_cost.py FLAG LINE...   (FLAG: detect or extras)"""
import statistics
import sys


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv and not kv.startswith("cmd"))


flag = sys.argv[1]
runs = [fields(a) for a in sys.argv[2:] if a.strip()]
off = [r for r in runs if r.get(flag) == "0"]
on = [r for r in runs if r.get(flag) == "1"]
if not off or not on:
    sys.exit(f"{flag}_cost: need lines with {flag}=0 and {flag}=1")


def median(rs, key):
    return statistics.median(float(r[key]) for r in rs)


c_off, c_on = median(off, "cycles_per_pkt"), median(on, "cycles_per_pkt")
memory = (f"detect_mib={on[0]['detect_mib']}" if flag == "detect" else
          f"bytes_per_flow_off={off[0]['bytes_per_flow']} bytes_per_flow_on={on[0]['bytes_per_flow']}")
print(f"{flag}_cost scenario={runs[0]['scenario']} runs={len(off)}+{len(on)} cycles_per_pkt_off={c_off} "
      f"cycles_per_pkt_on={c_on} mpps_off={median(off, 'mpps')} mpps_on={median(on, 'mpps')} "
      f"ratio={c_on / c_off:.2f} added_cycles={c_on - c_off:.1f} {memory}")
