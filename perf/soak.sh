#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A soak: weir on an af_packet port over a veth in a network namespace made here, fed steady
# churning traffic (perf/soak_traffic.py: NEW never-seen conversations per second that idle
# out, plus LONG long-lived ones) for MINUTES, exporting IPFIX to nfcapd inside the namespace.
# Every minute it samples resident memory, flow table entries, export ring occupancy, records
# exported and dropped, and the worker's busy share from /metrics, printing one row each (and
# a TSV under perf/out/); at the end weir is stopped and its accounting checked. Needs root and
# a release build (build/). Not part of the tests: a documented run, see perf/README.md.
# usage: perf/soak.sh [MINUTES] [NEW] [LONG]           (defaults: 30, 500, 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30} new=${2:-500} long=${3:-1000}
ns=weir-soak-$$
tmp=$(mktemp -d /tmp/weir-soak-XXXXXX)
out=perf/out/soak-$(date -u +%Y%m%dT%H%M%SZ).tsv
mkdir -p perf/out "$tmp/nf"
cleanup() {
  [ -n "${weir_pid:-}" ] && kill "$weir_pid" 2> /dev/null || true
  [ -n "${nf_pid:-}" ] && kill "$nf_pid" 2> /dev/null || true
  ip netns del "$ns" 2> /dev/null || true
  [ -n "${keep:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns"
x() { ip netns exec "$ns" "$@"; }
x sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip -n "$ns" link add wa type veth peer name wb
for l in lo wa wb; do ip -n "$ns" link set "$l" up; done
ip netns exec "$ns" nfcapd -w "$tmp/nf" -b 127.0.0.1 -p 4739 -t 60 > /dev/null 2>&1 &
nf_pid=$!
cat > "$tmp/weir.json" <<JSON
{"ports": [{"device": "net_af_packet0,iface=wa"}], "timeouts": {"idle_s": 2, "active_s": 30},
 "ipfix": {"max_delay_ms": 100}, "management": {"listen": "127.0.0.1:9471"},
 "exporters": [{"url": "udp://127.0.0.1:4739"}]}
JSON
ip netns exec "$ns" build/app/weir/weir --drivers-config drivers-config -c "$tmp/weir.json" --stats-interval 0 \
  --summary-json "$tmp/summary.json" > "$tmp/weir.log" 2>&1 &
weir_pid=$!
sleep 4
metric() {  # sum of a metric's samples
  awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF } END { printf "%.0f", s }' "$tmp/metrics"
}
x python3 perf/soak_traffic.py wb $((minutes * 60)) "$new" "$long" > "$tmp/sent" &
traffic=$!
printf 'minute\trss_mib\tflows\tring\trx_packets\trecords\tdropped\tbusy\n' | tee "$out"
for m in $(seq 1 "$minutes"); do
  sleep 60
  x curl -s http://127.0.0.1:9471/metrics > "$tmp/metrics"
  busy=$(awk '$1 ~ /^weir_worker_busy_ratio/ { print $NF }' "$tmp/metrics" | head -1)
  dropped=$(( $(metric weir_exporter_dropped_records_total) + $(metric weir_export_ring_dropped_records_total) ))
  printf '%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$(echo "$(metric process_resident_memory_bytes) / 1048576" | bc -l)" \
    "$(metric weir_flow_table_entries)" "$(metric weir_export_ring_occupancy)" "$(metric weir_port_rx_packets_total)" \
    "$(metric weir_exporter_records_total)" "$dropped" "$busy" | tee -a "$out"
done
wait "$traffic"
sleep 5
kill -TERM "$weir_pid"
wait "$weir_pid" || true
weir_pid=
python3 - "$tmp/summary.json" "$(cat "$tmp/sent")" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
sent = int(sys.argv[2])
port = s["ports"][0]
print(f"frames sent {sent}, received {s['rx_packets']}, missed by the port (imissed) {port['imissed']}, "
      f"accounting balanced: {s['accounting']['balanced']}, records exported {s['exporters'][0]['records']}, "
      f"lost {s['exporters'][0]['lost_records']}")
PY
echo "samples in $out"
