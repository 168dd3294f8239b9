#!/usr/bin/env bash
# Tracing overhead: the same run with run.trace = true and false, alternated, several
# times, on the real (Kokkos) tiny model, whose steps are short, so the recorder's
# cost shows most. Prints each pair's step time and the median overhead.
#   run/bench/trace-overhead.sh [ranks] [pairs]
set -euo pipefail
cd "$(dirname "$0")/../.."
ranks=${1:-2}
pairs=${2:-5}
cmake --preset cpu >/dev/null && cmake --build --preset cpu -j "$(nproc)" --target minipt bench_trace_cost >/dev/null
BIN=build/cpu/src/minipt
tmp=$(mktemp -d)
backend=kokkos
"$BIN" --help | grep -q 'compute.backend.*kokkos' || backend=emulated
args=(run --quiet --config inputs/experiments/tiny.toml --set compute.backend=$backend --set run.steps=6)
step_ms() { run/lib/result "$1" summary.step_ms --format .3f; }  # of a run's JSON summary
echo "trace overhead: tiny model, backend $backend, $ranks ranks, $pairs pairs (on/off alternated)"
ratios=()
for i in $(seq "$pairs"); do
  run/mpirun -n "$ranks" --oversubscribe "$BIN" "${args[@]}" --set run.trace=true --out "$tmp/on.h5" >"$tmp/on.log"
  run/mpirun -n "$ranks" --oversubscribe "$BIN" "${args[@]}" --set run.trace=false --out "$tmp/off.h5" >"$tmp/off.log"
  on=$(step_ms "$tmp/on.json"); off=$(step_ms "$tmp/off.json")
  r=$(python3 -c "print(f'{$on/$off:.4f}')")
  ratios+=("$r")
  echo "  pair $i: step_ms trace on $on | off $off | on/off $r"
done
events=$(python3 -c "import h5py; f=h5py.File('$tmp/on.h5'); print(len(f['/events/rank']))")
python3 - "${ratios[@]}" <<PY
import statistics, sys
r = sorted(map(float, sys.argv[1:]))
m = statistics.median(r)
print(f"TRACE_OVERHEAD median on/off {m:.4f} ({(m-1)*100:+.2f}% of step time), min {r[0]:.4f}, max {r[-1]:.4f}, "
      f"{$events} events in the traced file")
PY
# The A/B above is at the mercy of machine noise; the recorder's own cost is not:
# events per rank per step × ns per event, against the step time.
cost=$(build/cpu/tests/bench/bench_trace_cost | sed 's/.*ns_per_event=\([0-9.]*\).*/\1/')
for cfg in tiny.toml demo.toml; do
  extra=()
  [ "$cfg" = demo.toml ] && extra=(--set run.steps=3) || extra=(--set compute.backend=$backend --set run.steps=6)
  run/mpirun -n 4 --oversubscribe "$BIN" run --quiet --config inputs/experiments/$cfg "${extra[@]}" --out "$tmp/c.h5" >"$tmp/c.log"
  python3 - "$tmp/c.h5" "$(step_ms "$tmp/c.json")" "$cost" "$cfg" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1]); step_ms = float(sys.argv[2]); ns = float(sys.argv[3])
steps = f["/steps/step"][:]; ranks = f.attrs["world_size"]
per = len(f["/events/rank"]) / (len(np.unique(steps)) * ranks)
print(f"TRACE_OVERHEAD_MODEL {sys.argv[4]} 4 ranks: {per:.0f} events/rank/step x {ns:.0f} ns = "
      f"{per*ns/1e6:.3f} ms of a {step_ms:.1f} ms step = {per*ns/1e6/step_ms*100:.3f}%")
PY
done
rm -rf "$tmp"
