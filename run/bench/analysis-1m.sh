#!/usr/bin/env bash
# Times `minipt-analyze utilization` (read a timeline, compute the per-rank breakdown,
# draw and write the PNG) on a synthetic 1M-event file. Target: < 10 s on a 2-core machine.
#   run/bench/analysis-1m.sh [EVENTS] [OUTDIR]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
events="${1:-1000000}"
outdir="${2:-$(mktemp -d)}"
mkdir -p "$outdir"
python="${PYTHON:-python3}"
export PYTHONPATH="$repo/analysis${PYTHONPATH:+:$PYTHONPATH}"
export MPLBACKEND=Agg

if command -v minipt-analyze >/dev/null 2>&1; then
  analyze=(minipt-analyze)
else
  analyze=("$python" -m minipt_analysis)
fi

"$python" -m minipt_analysis.synth -o "$outdir/synthetic-1m.h5" --events "$events" \
  --ranks 8 --mode odc
# Warm the file cache and Python's bytecode cache, then time three runs; report the best
# and the median (first-run import costs are not what this measures).
"${analyze[@]}" utilization "$outdir/synthetic-1m.h5" -o "$outdir/utilization.png" >/dev/null
times=()
for i in 1 2 3; do
  t0=$EPOCHREALTIME
  "${analyze[@]}" utilization "$outdir/synthetic-1m.h5" -o "$outdir/utilization.png" >/dev/null
  t1=$EPOCHREALTIME
  times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
done
sorted=($(printf '%s\n' "${times[@]}" | sort -g))
n_events=$("$python" -c "import h5py,sys; print(h5py.File(sys.argv[1])['/events/rank'].shape[0])" \
  "$outdir/synthetic-1m.h5")
printf 'PERFORMANCE analysis-utilization events=%s best_s=%.2f median_s=%.2f cores=%s figure=%s\n' \
  "$n_events" "${sorted[0]}" "${sorted[1]}" "$(nproc)" "$outdir/utilization.png"
