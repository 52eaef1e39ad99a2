#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Replays the same generated captures with weir, softflowd and pmacctd (nfprobe plugin), each
# exporting IPFIX to nfcapd on 127.0.0.1, in one run. Prints packets per second of each (net of
# its fixed start-up cost, measured on a one-packet capture), the ratio of weir to the faster
# peer, and whether all three exported the packet total the generator says the capture holds.
#
# usage: perf/peers.sh [--flows "1000 1000000"] [--packets 2000000] [--workers "1 2"]
#                      [--weir BIN] [--no-peers]
# --weir replays with another weir binary (an earlier build, for a before/after in one run);
# --no-peers leaves softflowd and pmacctd out.
# weir replays each capture once per worker count (-w N, workers placed on the CPUs by --lcores
# so that N workers use N CPUs; the capture reader and control thread share the first).
# Needs root (installs softflowd, pmacct, nfdump, tshark from Debian) and ../shared/tools.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tools=${WEIR_TOOLS:-$(cd .. && pwd)/shared/tools}
flows_list="1000 1000000"
packets=2000000
workers_list="1"
weir_bin=""
peers="softflowd-ipfix pmacctd-ipfix"
reps=3
while [ $# -gt 0 ]; do
  case $1 in
    --flows) flows_list=$2; shift 2 ;;
    --packets) packets=$2; shift 2 ;;
    --workers) workers_list=$2; shift 2 ;;
    --weir) weir_bin=$2; shift 2 ;;
    --no-peers) peers=""; shift ;;
    *) echo "usage: perf/peers.sh [--flows \"1000 1000000\"] [--packets N] [--workers \"1 2\"]" >&2; exit 2 ;;
  esac
done
if [ -n "$weir_bin" ]; then
  weir=$(realpath "$weir_bin")
else
  [ -f build-release/build.ninja ] || meson setup build-release --buildtype=release -Dtests=false > /dev/null
  ninja -C build-release > /dev/null
  weir=$root/build-release/app/weir/weir
fi
# nfcapd asks for a 128 MiB socket buffer (-B); the kernel caps it at net.core.rmem_max, and a
# smaller buffer loses datagrams of a fast replay on loopback. Raised for the run, put back after.
rmem_was=$(sysctl -n net.core.rmem_max)
if [ "$rmem_was" -lt 134217728 ]; then
  sysctl -qw net.core.rmem_max=134217728
  trap 'sysctl -qw net.core.rmem_max=$rmem_was' EXIT
fi
work=${WEIR_PEERS_WORK:-/tmp/weir-peers}
mkdir -p "$work"
port=47970

# weir's run: wall seconds and the packets nfcapd decoded.
run_weir() {  # capture dir capacity workers
  local f=$1 d=$2 cap=$3 w=${4:-1}
  # Worker k on CPU k mod n: with -w 1 the worker has a CPU to itself, with -w 2 on 2 CPUs one
  # worker shares the first with the reader and the control thread.
  local n lc="0@0" k
  n=$(nproc)
  for k in $(seq "$w"); do lc="$lc,$k@$((k % n))"; done
  rm -rf "$d"; mkdir -p "$d/nf"
  nfcapd -w "$d/nf" -b 127.0.0.1 -p $port -B 134217728 > "$d/nfcapd.log" 2>&1 &
  local nfc=$!
  for _ in $(seq 50); do ss -Hlun "sport = :$port" | grep -q . && break; sleep 0.1; done
  local t0 t1
  t0=$(date +%s.%N)
  "$weir" --drivers-config "$root/drivers-config" -r "$f" --ipfix "udp://127.0.0.1:$port" --stats-interval 0 \
    --capacity "$cap" -w "$w" -- --lcores="$lc" > "$d/weir.out" 2> "$d/weir.err"
  t1=$(date +%s.%N)
  sleep 1
  kill -TERM $nfc; wait $nfc 2>/dev/null || true
  local pk
  pk=$(nfdump -R "$d/nf" -I 2>/dev/null | awk '/^Packets:/ {print $2}')
  echo "$(echo "$t1 - $t0" | bc -l) ${pk:-0}"
}

echo "# $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%F)"
echo "# command: perf/peers.sh --flows \"$flows_list\" --packets $packets --workers \"$workers_list\"${weir_bin:+ --weir $weir_bin}$([ -z "$peers" ] && echo " --no-peers")"
echo "# weir: $weir"
for flows in $flows_list; do
  cap=$work/gen-${packets}p-${flows}f.pcap
  [ -f "$cap" ] || python3 "$tools/mkpcap.py" -n "$packets" -f "$flows" -o "$cap" > /dev/null
  want=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['packets'])" "$cap.json")
  one=$work/one-$(basename "$cap")
  python3 - "$cap" "$one" <<'PY'
import struct, sys
f = open(sys.argv[1], "rb"); gh = f.read(24); rh = f.read(16)
cap = struct.unpack("<IIII", rh)[2]
open(sys.argv[2], "wb").write(gh + rh + f.read(cap))
PY
  cat "$cap" > /dev/null  # page cache: time the probes, not the disk
  capacity=$((flows * 2 > 65536 ? flows * 2 : 65536))
  # Medians of $reps runs, as run-peers.sh does for the peers; the one-packet capture measures
  # the fixed start-up cost (EAL, zeroing the flow table), which is subtracted.
  printf "capture=%s flows=%s packets=%s\n" "$(basename "$cap")" "$flows" "$want"
  same=yes weir_mpps=0
  for w in $workers_list; do
    base_w=$(for _ in $(seq $reps); do run_weir "$one" "$work/weir-base" "$capacity" "$w"; done | awk '{print $1}' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    runs=$(for _ in $(seq $reps); do run_weir "$cap" "$work/weir-run" "$capacity" "$w"; done)
    wall=$(awk '{print $1}' <<<"$runs" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    pk=$(awk '{print $2}' <<<"$runs" | sort -u | tr '\n' ' ' | sed 's/ $//')
    net=$(echo "$wall - $base_w" | bc -l)
    mpps=$(echo "$pk / $net / 1000000" | bc -l)
    printf "  peer=weir workers=%s packets=%s wall_s=%.3f net_s=%.3f net_mpps=%.3f\n" "$w" "$pk" "$wall" "$net" "$mpps"
    [ "$pk" = "$want" ] || same=no
    if [ "$(echo "$mpps > $weir_mpps" | bc -l)" = 1 ]; then weir_mpps=$mpps; fi
  done
  best=0 best_name=""
  for peer in $peers; do
    line=$("$tools/run-peers.sh" -P "$peer" -r $reps -n -p $((port + 10)) -w "$work/$peer" "$cap" 2>/dev/null | awk -v p="$peer" '$1 == p')
    ppk=$(awk '{print $2}' <<<"$line"); pw=$(awk '{print $4}' <<<"$line"); pnet=$(awk '{print $6}' <<<"$line")
    pm=$(awk '{print $7}' <<<"$line")
    printf "  peer=%s packets=%s wall_s=%s net_s=%s net_mpps=%s\n" "$peer" "${ppk:-?}" "${pw:-?}" "${pnet:-?}" "${pm:-?}"
    [ "${ppk:-}" = "$want" ] || same=no
    if [[ "${pm:-}" =~ ^[0-9.]+$ ]] && [ "$(echo "$pm > $best" | bc -l)" = 1 ]; then best=$pm best_name=$peer; fi
  done
  if [ "$best_name" ]; then
    printf "  ratio weir/%s=%.2f same_packet_totals=%s\n" "$best_name" "$(echo "$weir_mpps / $best" | bc -l)" "$same"
  fi
done
