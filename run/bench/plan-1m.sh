#!/usr/bin/env bash
# `minipt plan` of one step of SEQUENCES sequences (default 1,000,000) on RANKS ranks
# (default 1,024): wall time and peak memory against the targets (10 s, 1 GiB), the
# planner's scaling benchmark (issue: memory and time bounded by the input).
# Usage: run/bench/plan-1m.sh [SEQUENCES] [RANKS]   (MINIPT: the binary, default build/cpu/src/minipt)
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000000}
ranks=${2:-1024}
bin=${MINIPT:-build/cpu/src/minipt}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
/usr/bin/time -f "%e %M" -o "$log" "$bin" plan --config inputs/experiments/demo.toml \
  --ranks "$ranks" --set workload.minibatch_size="$n" --set run.steps=1 --set run.warmup_steps=0 |
  grep '^BOUND'
read -r wall kib <"$log"
awk -v w="$wall" -v k="$kib" -v n="$n" -v r="$ranks" 'BEGIN {
  printf "plan of %d sequences on %d ranks: %.1f s (target 10 s: %.2fx), %.0f MiB peak (target 1024 MiB)\n",
         n, r, w, w / 10, k / 1024 }'
