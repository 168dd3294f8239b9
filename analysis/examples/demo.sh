#!/usr/bin/env bash
# Every minipt-analyze sub-command on two synthetic timelines (fsdp and odc, same tokens).
# Synthetic durations are random: this shows the tools, not a performance result.
#   analysis/examples/demo.sh [OUTDIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-demo-out}"
mkdir -p "$out"
export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
analyze=(python3 -m minipt_analysis)
for mode in fsdp odc; do
  python3 -m minipt_analysis.synth -o "$out/$mode.h5" --mode "$mode" --steps 8 --ranks 4 \
    --layers 6
done
"${analyze[@]}" summary "$out/fsdp.h5" "$out/odc.h5"
"${analyze[@]}" compare "$out/fsdp.h5" "$out/odc.h5"
"${analyze[@]}" utilization "$out/odc.h5" -o "$out/odc-utilization.png"
"${analyze[@]}" timeline "$out/fsdp.h5" "$out/odc.h5" --ranks 0,1 -o "$out/timeline.png"
"${analyze[@]}" perfetto "$out/odc.h5" -o "$out/odc-trace.json"
"${analyze[@]}" validate "$out/fsdp.h5" "$out/odc.h5"
python3 "$here/per_step_idle.py" "$out/odc.h5"
"${analyze[@]}" report "$out" -o "$out/report.html"
