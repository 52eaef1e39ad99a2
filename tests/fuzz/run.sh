#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Runs every libFuzzer target for SECONDS each (default 60) from its seeds, and prints one line
# per target: executions, coverage (edges), features, corpus size, and whether it found anything.
# The fuzz build instruments the libraries too (meson option fuzz), so coverage is the code's,
# not only the harness'. Corpora grow in build-fuzz/corpus/TARGET and are kept between runs;
# findings (crash-*, leak-*, timeout-*) land in build-fuzz/findings/TARGET.
# usage: tests/fuzz/run.sh [SECONDS] [TARGET...]     (targets: decode inspect config web export rules capture query)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode inspect config web export rules capture query)
[ -f build-fuzz/build.ninja ] || CXX=clang++ CC=clang meson setup build-fuzz -Dfuzz=true \
  -Db_sanitize=address,undefined -Db_lundef=false > /dev/null
ninja -C build-fuzz $(printf 'tests/fuzz/%s_fuzz ' "${targets[@]}") > /dev/null

# Seeds: the configuration examples for the loader; for the packet targets, the first 512 bytes
# of every distinct frame of the bundled pcap captures.
seed_frames() {
  python3 - "$1" captures/*.pcap <<'EOF'
import hashlib, os, struct, sys
out = sys.argv[1]
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    if len(data) < 24:
        continue
    e = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}.get(data[:4])
    if not e:
        continue
    off = 24
    while off + 16 <= len(data):
        cl = struct.unpack(e + "I", data[off + 8:off + 12])[0]
        frame = data[off + 16:off + 16 + min(cl, 512)]
        off += 16 + cl
        name = hashlib.sha1(frame).hexdigest()
        with open(os.path.join(out, name), "wb") as f:
            f.write(frame)
EOF
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
printf '%-8s %10s %8s %8s %8s %s\n' target execs edges features corpus result
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$t findings=build-fuzz/findings/$t
  mkdir -p "$corpus" "$findings"
  if [ -z "$(ls -A "$corpus")" ]; then
    if [ "$t" = capture ]; then  # the first 4 KiB of every bundled capture file, and past findings
      for f in captures/*.pcap captures/*.pcapng; do head -c 4096 "$f" > "$corpus/$(basename "$f")"; done
      cp tests/fuzz/seeds/capture/* "$corpus"/
    elif [ -d "tests/fuzz/seeds/$t" ]; then
      cp "tests/fuzz/seeds/$t"/* "$corpus"/
    else
      seed_frames "$corpus"
    fi
  fi
  extra=()
  [ "$t" = decode ] && extra=(-max_len=2048)
  [ "$t" = inspect ] && extra=(-max_len=4096)
  [ "$t" = capture ] && extra=(-max_len=8192)
  log=build-fuzz/findings/$t.log
  status=0
  build-fuzz/tests/fuzz/${t}_fuzz "${extra[@]}" -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix="$findings/" "$corpus" > "$log" 2>&1 || status=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|pulse|NEW|REDUCE)' "$log" | tail -1 || true)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  [ -n "$execs" ] || execs="?"
  edges=$(echo "$done_line" | grep -o 'cov: [0-9]*' | cut -d' ' -f2)
  ft=$(echo "$done_line" | grep -o 'ft: [0-9]*' | cut -d' ' -f2)
  corp=$(echo "$done_line" | grep -o 'corp: [0-9]*' | cut -d' ' -f2)
  result=clean
  [ $status -ne 0 ] && result="FOUND (see $findings, $log)"
  printf '%-8s %10s %8s %8s %8s %s\n' "$t" "$execs" "${edges:-?}" "${ft:-?}" "${corp:-?}" "$result"
done
