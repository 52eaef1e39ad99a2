#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Sets up and runs weir on the bundled capture: installs what it needs, builds, starts nfcapd
# on 127.0.0.1, replays captures/zeek__var-services-std-ports.pcap through DPDK's net_pcap with
# IPFIX export to it, prints weir's summary and what nfcapd collected, and checks those flows
# against tshark's reading of the same capture.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh --test
[ -f build/build.ninja ] || meson setup build --buildtype=release
ninja -C build
capture=captures/zeek__var-services-std-ports.pcap
work=$(mktemp -d /tmp/weir-demo.XXXXXX)
port=${WEIR_DEMO_PORT:-4739}
mkdir -p "$work/nfcapd"
nfcapd -w "$work/nfcapd" -b 127.0.0.1 -p "$port" > "$work/nfcapd.log" 2>&1 &
nfcapd_pid=$!
trap 'kill $nfcapd_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do ss -Hlun "sport = :$port" | grep -q . && break; sleep 0.1; done
echo "== weir -r $capture --ipfix udp://127.0.0.1:$port"
build/app/weir/weir --drivers-config drivers-config -r "$capture" --ipfix "udp://127.0.0.1:$port" \
  --summary-json "$work/summary.json"
sleep 0.5
kill -TERM $nfcapd_pid; wait $nfcapd_pid 2>/dev/null || true
echo "== nfcapd collected (nfdump -I)"
nfdump -R "$work/nfcapd" -I | grep -E '^(Flows|Packets|Bytes|Sequence failures):'
echo "== nfdump vs tshark, per conversation"
python3 tests/integration/check_against_tshark.py "$capture" "$work/nfcapd"
echo "(work files in $work)"
