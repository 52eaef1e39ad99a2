#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Compares this tree's worker pipeline with an earlier revision's, in one run: builds
# worker_bench of REV in a scratch worktree, then runs every scenario both have, alternating
# old and new ROUNDS times, and prints each line and the median new/old ratio of Mpps.
# usage: perf/compare.sh REV [--quick] [--rounds N] [--scenario NAME]...
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: perf/compare.sh REV [--quick] [--rounds N] [--scenario NAME]...}
shift
packets=20000000 rounds=3 only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) packets=4000000 ;;
    --rounds) rounds=$2; shift ;;
    --scenario) only+=("$2"); shift ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
short=$(git rev-parse --short "$rev")
old_tree=build-perf-$short/src
old_build=build-perf-$short/build
if [ ! -x "$old_build/perf/worker_bench" ]; then
  rm -rf "build-perf-$short"
  mkdir -p "build-perf-$short"
  git worktree add --detach "$old_tree" "$rev" > /dev/null
  meson setup "$old_build" "$old_tree" --buildtype=release -Dtests=false > /dev/null
  ninja -C "$old_build" perf/worker_bench > /dev/null
  git worktree remove --force "$old_tree"
fi
[ -f build-release/build.ninja ] || meson setup build-release --buildtype=release -Dtests=false > /dev/null
ninja -C build-release perf/worker_bench > /dev/null
old=$old_build/perf/worker_bench
new=build-release/perf/worker_bench
echo "# $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%F); old = $short, new = $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')"
scenarios=$(comm -12 <($old --scenario list | sort) <($new --scenario list | sort))
[ ${#only[@]} -gt 0 ] && scenarios=$(printf '%s\n' "${only[@]}")
for s in $scenarios; do
  o=() n=()
  for _ in $(seq "$rounds"); do
    o+=("$($old --scenario "$s" --packets "$packets" | grep -o 'mpps=[0-9.]*' | cut -d= -f2)")
    n+=("$($new --scenario "$s" --packets "$packets" | grep -o 'mpps=[0-9.]*' | cut -d= -f2)")
  done
  python3 - "$s" "${o[*]}" "${n[*]}" <<'EOF'
import statistics, sys
s, o, n = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
mo, mn = statistics.median(o), statistics.median(n)
print(f"scenario={s} old_mpps={mo:.2f} new_mpps={mn:.2f} ratio={mn / mo:.3f} old_runs={o} new_runs={n}")
EOF
done
