#!/usr/bin/env bash
# The default experiment: the Qwen2.5-1.5B shape on LongAlign-like lengths, 4 MPI
# ranks, emulated compute; fsdp + LB-Micro against odc + LB-Mini, then the bound
# `minipt plan` predicts. Installs what is missing and builds first.
#   run/demo.sh [extra --set key=value ...]
set -euo pipefail
cd "$(dirname "$0")/.."
run/deps.sh
echo "== building minipt (build/cpu; the first build takes a few minutes, later ones seconds) =="
cmake --preset cpu >/dev/null
# Ninja's [done/total] lines are the progress; without a terminal it prints one per step.
cmake --build --preset cpu -j "$(nproc)" --target minipt
BIN=build/cpu/src/minipt
CONFIG=inputs/experiments/demo.toml
OUT=${MINIPT_DEMO_OUT:-out/demo}
mkdir -p "$OUT"
extra=()
for kv in "$@"; do extra+=(--set "$kv"); done
for pair in "fsdp micro" "odc mini"; do
  set -- $pair
  echo "== $1 + $2 =="
  run/mpirun -n 4 "$BIN" run --config "$CONFIG" --set run.mode="$1" --set balance.scheme="$2" \
    "${extra[@]}" --out "$OUT/$1.h5" | tee "$OUT/$1.log"
done
# The figures from the runs' JSON summaries and the plan's JSON (run/lib/result), rounded
# as the console prints them.
f=$(run/lib/result "$OUT/fsdp.json" summary.tokens_per_s --format .1f)
o=$(run/lib/result "$OUT/odc.json" summary.tokens_per_s --format .1f)
b=$("$BIN" plan --config "$CONFIG" --ranks 4 "${extra[@]}" --json | run/lib/result - ratio --format .4f)
echo
echo "== result =="
python3 - "$f" "$o" "$b" <<'PY'
import sys
f, o, b = map(float, sys.argv[1:])
print(f"fsdp+micro {f:,.0f} tokens/s | odc+mini {o:,.0f} tokens/s | speedup {o/f:.3f}x | "
      f"modelled bound {b:.3f}x | measured/bound {o/f/b:.3f}")
PY
echo "timelines: $OUT/fsdp.h5 $OUT/odc.h5 (JSON summaries beside them)"
# The picture: both timelines on one time axis, and where each rank's time went.
analyze=(python3 -m minipt_analysis)
export PYTHONPATH="$PWD/analysis${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg
"${analyze[@]}" compare "$OUT/fsdp.h5" "$OUT/odc.h5"  # exit 0 unless a file is unreadable
"${analyze[@]}" timeline "$OUT/fsdp.h5" "$OUT/odc.h5" -o "$OUT/timeline.png" >/dev/null
"${analyze[@]}" utilization "$OUT/fsdp.h5" -o "$OUT/utilization-fsdp.png" >/dev/null
"${analyze[@]}" utilization "$OUT/odc.h5" -o "$OUT/utilization-odc.png" >/dev/null
echo "pictures: $OUT/timeline.png (fsdp above odc, one step) and $OUT/utilization-fsdp.png," \
  "$OUT/utilization-odc.png (where each rank's time went)"
