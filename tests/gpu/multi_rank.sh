#!/usr/bin/env bash
# Several ranks on ONE GPU: every multi-rank GPU path of minipt (fsdp over NCCL, odc over
# ipc with both comm.odc_pull settings, odc over ipc+staged across declared nodes, hybrid
# sharding in both modes with replica_reduce step and unit) at 2 and 4 ranks against one
# rank, each run twice (tests/gpu/multi_rank.py), then tests/gpu/modes_agree.py at 2 and 4.
# Functional only: ranks that share a GPU time nothing meaningful.
#
# Usage: tests/gpu/multi_rank.sh MINIPT_BIN [RESULTS_DIR]       (from the repository root)
#
# Several ranks per GPU need NCCL >= 2.30 (NCCL_MULTI_RANK_GPU_ENABLE=1; 2.28 answers
# "ncclCommInitRank: invalid usage"). The first of these that is >= 2.30 is used:
#   1. $NCCL_HOME/lib (an install or a build's output);
#   2. the libnccl.so.2 minipt loads as it is (the system's, or LD_LIBRARY_PATH's);
#   3. a pip wheel: `pip install "nvidia-nccl-cu13>=2.30"` (or -cu12), found through the
#      Python of $PYTHON / python3 as nvidia/nccl/lib;
#   4. a build from the public NVIDIA/nccl source given in $NCCL_SRC (a checkout, or a
#      .tar.gz of one: `git clone https://github.com/NVIDIA/nccl` where a network is
#      reachable, then carry it to the GPU machine; never commit it), made for sm_90
#      into ${NCCL_BUILD:-/tmp/nccl} (about 4 minutes on 16 cores; reused when there).
# None of them: exit 77 with the reason (tests/gpu/run_checks.sh then says it skipped).
set -uo pipefail
bin=${1:?usage: tests/gpu/multi_rank.sh MINIPT_BIN [RESULTS_DIR]}
results=${2:-${OUT:-/tmp}/multi_rank}
py=${PYTHON:-$(command -v /opt/torch/.venv/bin/python || command -v python3)}
mkdir -p "$results"

# The NCCL version (e.g. 23007) of a libnccl.so.2, or nothing.
nccl_version() {
  "$py" - "$1" <<'PY' 2>/dev/null
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
v = ctypes.c_int()
if lib.ncclGetVersion(ctypes.byref(v)) == 0:
    print(v.value)
PY
}
ok_version() { [[ -n "$1" && "$1" -ge 23000 ]]; }

found=""
try_dir() {  # a lib directory holding libnccl.so.2
  [[ -z "$found" && -f "$1/libnccl.so.2" ]] || return 1
  local v; v=$(nccl_version "$1/libnccl.so.2")
  echo "multi_rank: $1/libnccl.so.2 is NCCL ${v:-unknown}"
  ok_version "$v" && found=$1
}
[[ -n "${NCCL_HOME:-}" ]] && try_dir "$NCCL_HOME/lib"
loaded=$(ldd "$bin" 2>/dev/null | awk '/libnccl/ {print $3}')
[[ -n "$loaded" ]] && try_dir "$(dirname "$loaded")"
wheel=$("$py" -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null)
[[ -n "$wheel" ]] && try_dir "$wheel"
build=${NCCL_BUILD:-/tmp/nccl}
[[ -z "$found" && -f "$build/lib/libnccl.so.2" ]] && try_dir "$build/lib"
if [[ -z "$found" && -n "${NCCL_SRC:-}" ]]; then
  src=$NCCL_SRC
  if [[ -f "$src" ]]; then
    src=$(mktemp -d)/nccl && mkdir -p "$src" && tar -xzf "$NCCL_SRC" -C "$src" || exit 1
  fi
  echo "multi_rank: building NCCL from $NCCL_SRC into $build (sm_90 only, a few minutes)"
  t0=$SECONDS
  make -C "$src" -j"$(nproc)" src.build BUILDDIR="$build" \
    NVCC_GENCODE="-gencode=arch=compute_90,code=sm_90" >"$results/nccl_build.log" 2>&1 ||
    { tail -20 "$results/nccl_build.log"; echo "multi_rank: the NCCL build failed"; exit 1; }
  echo "multi_rank: NCCL built in $((SECONDS - t0)) s"
  try_dir "$build/lib"
fi
if [[ -z "$found" ]]; then
  echo "multi_rank: SKIPPED: no NCCL >= 2.30 (several ranks per GPU need it): set NCCL_HOME," \
       "install the nvidia-nccl-cu13 wheel (>= 2.30), or give the NVIDIA/nccl source in NCCL_SRC"
  exit 77
fi
export LD_LIBRARY_PATH=$found:${LD_LIBRARY_PATH:-}
export NCCL_MULTI_RANK_GPU_ENABLE=1 NCCL_NVLS_ENABLE=0 NCCL_MAX_CTAS=2
export MINIPT_TUNING_CACHE=${MINIPT_TUNING_CACHE:-$results/tuning-cache}
status=0
MULTI_RANK_JSON=$results/multi_rank.json "$py" tests/gpu/multi_rank.py "$bin" 2 4 || status=1
for n in 2 4; do
  "$py" tests/gpu/modes_agree.py "$bin" "$n" || status=1
done
echo "multi-rank GPU checks (ranks sharing one GPU, functional only):" \
     "$([[ $status == 0 ]] && echo PASSED || echo FAILED)"
exit $status
