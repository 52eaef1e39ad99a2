#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Installs what weir needs (Debian packages), builds, and runs every test, unit and integration,
# in a release build and again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh --test
# The captures: WEIR_PCAPS, else the corpus beside the repository, else the 79 small ones bundled
# in captures/ (the tests that need a capture only the corpus has are then skipped, and say so).
if [ -z "${WEIR_PCAPS:-}" ]; then
  WEIR_PCAPS=$(cd .. && pwd)/shared/pcaps
  [ -d "$WEIR_PCAPS" ] || WEIR_PCAPS=$(pwd)/captures
fi
[ -f "$WEIR_PCAPS/MANIFEST.tsv" ] || { echo "tests: no captures at $WEIR_PCAPS (no MANIFEST.tsv)" >&2; exit 1; }
export WEIR_PCAPS
echo "tests: captures from $WEIR_PCAPS"

# Warnings are errors here: the tree builds clean with gcc and clang.
# The release build is configured for /usr so that test_package packages it as it is.
[ -f build/build.ninja ] || meson setup build --buildtype=release -Dwerror=true --prefix=/usr
[ -f build-asan/build.ninja ] || meson setup build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
  -Dwerror=true
stamp() { echo "== $(date -u +%H:%M:%S) $*"; }
stamp "build (release)"
ninja -C build
stamp "build (ASan/UBSan)"
ninja -C build-asan

# DPDK keeps memory it allocated at start-up until exit: leaks reports would be DPDK's, not ours.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for b in build build-asan; do
  stamp "meson test -C $b"
  # The core-link corpus test (every capture with a tunnel, a jumbo frame or an odd link layer,
  # in three modes) replays the even ones in the release pass and one in four of the odd ones
  # under the sanitizers; the decoder has a fuzzer of its own, and WEIR_CORE_LINK_SAMPLE=1
  # replays them all. Detection's no-false-alarm sweep replays every sixth capture in the
  # release pass and a different twelfth under the sanitizers (tests/integration/test_detect.py
  # survey replays them all).
  core=2 core_offset=0 detect=6 offset=0
  [ "$b" = build-asan ] && core=4 core_offset=1 detect=12 offset=3
  WEIR_CORE_LINK_SAMPLE=$core WEIR_CORE_LINK_OFFSET=$core_offset WEIR_DETECT_SAMPLE=$detect \
    WEIR_DETECT_OFFSET=$offset meson test -C "$b" --print-errorlogs || status=1
done
# ThreadSanitizer over the unit tests of code with threads of its own (no DPDK: the EAL's
# threads are not instrumented): suite "threads".
stamp "build (TSan, threaded units)"
[ -f build-tsan/build.ninja ] || meson setup build-tsan --buildtype=debugoptimized -Db_sanitize=thread \
  -Db_lundef=false -Dwerror=true
ninja -C build-tsan $(for t in clickhouse web transport capture history failure_log; do echo tests/unit/${t}_test; done)
stamp "meson test -C build-tsan --suite threads"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 meson test -C build-tsan --suite threads --no-rebuild \
  --print-errorlogs || status=1
stamp "done"
passed=0 failed=0
for b in build build-asan build-tsan; do
  log="$b/meson-logs/testlog.json"
  passed=$((passed + $(grep -c '"result": "OK"' "$log" || true)))
  failed=$((failed + $(grep -c '"result": "\(FAIL\|ERROR\|TIMEOUT\)"' "$log" || true)))
done
skipped=$(cat build/meson-logs/testlog.txt build-asan/meson-logs/testlog.txt 2>/dev/null |
  grep -o 'skipped=[0-9]*' | awk -F= '{s += $2} END {print s + 0}')
echo "$passed passed, $failed failed ($skipped integration cases skipped: captures not at hand, or the long corpus run WEIR_CORPUS_ALL=1 asks for)"
exit $status
