#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Given worker_bench's lines for a scenario without and with payload inspection, prints what
inspection costs: cycles per packet both ways, their ratio, and cycles per inspected byte."""
import sys


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv and not kv.startswith("cmd"))


off, on = fields(sys.argv[1]), fields(sys.argv[2])
c_off, c_on = float(off["cycles_per_pkt"]), float(on["cycles_per_pkt"])
b = float(on["inspected_bytes_per_pkt"])
per_byte = f"{(c_on - c_off) / b:.1f}" if b else "n/a"
print(f"inspect_cost scenario={off['scenario']} cycles_per_pkt_off={c_off} cycles_per_pkt_on={c_on} "
      f"ratio={c_on / c_off:.2f} inspected_bytes_per_pkt={b} cycles_per_inspected_byte={per_byte}")
