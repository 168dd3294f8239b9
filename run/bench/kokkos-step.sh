#!/usr/bin/env bash
# The Kokkos host backend's training step on the tiny model (2 layers, hidden 128,
# 4 heads / 2 KV heads, ffn 512, vocab 512) at 4,096 tokens, in a few packings and
# both recompute settings, plus the portable (non-AVX2) kernels for comparison.
# Builds kokkos_step in $BUILD (default build-kokkos) and runs it; run from the
# repository root. Times are thread CPU time (the machine may be shared), the
# wall-clock step time is printed next to it. REPEATS (5): timed repeats, min reported.
set -euo pipefail
build=${BUILD:-build-kokkos}
repeats=${REPEATS:-5}
if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMINIPT_ENABLE_CUDA=OFF >/dev/null
fi
cmake --build "$build" --target kokkos_step -j "${JOBS:-2}" >/dev/null
bin="$build/tests/bench/kokkos_step"
run() {
  echo "== $*"
  "$bin" --repeats "$repeats" "$@"
  echo
}
run --sequences 4 --recompute 1
run --sequences 4 --recompute 0
run --sequences 8 --recompute 1
run --sequences 1 --recompute 1
run --sequences 4 --recompute 1 --portable
