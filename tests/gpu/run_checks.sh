#!/usr/bin/env bash
# Runs the CUDA backend's GPU checks: the attention kernels against a float64 CPU
# reference, the tiny-model run (self-checks + dump), and the float64 PyTorch comparison
# of that dump, then the multi-rank paths with several ranks on this GPU (multi_rank.sh).
# Usage: MINIPT_CUDA_BIN=DIR tests/gpu/run_checks.sh [DUMP_DIR]
# (DIR: the CMake build's tests/gpu, e.g. from tests/gpu/build_cuda.sh).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${MINIPT_CUDA_BIN:-build-cuda/tests/gpu}
dump=${1:-${OUT:-/tmp}/cuda_model_dump}
py=${PYTHON:-$(command -v /opt/torch/.venv/bin/python || command -v python3)}
if ! ldconfig -p 2>/dev/null | grep -q libcublasLt.so.13; then
  extra=$("$py" -c 'import nvidia.cublas, os; print(os.path.join(os.path.dirname(nvidia.cublas.__file__), "lib"))' 2>/dev/null || true)
  export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${extra}:${LD_LIBRARY_PATH:-}
fi
mkdir -p "$dump"
status=0
echo "== cuda_attention_check"; timeout 120 "$bin/cuda_attention_check" || status=1
echo "== cuda_model_check"; timeout 120 "$bin/cuda_model_check" "$dump" || status=1
echo "== torch_reference"; timeout 180 "$py" "$here/torch_reference.py" "$dump" || status=1
# Several ranks on this one GPU (needs NCCL >= 2.30: tests/gpu/multi_rank.sh says how it
# finds or builds one, and exits 77 when it has none).
echo "== multi_rank (several ranks sharing this GPU)"
"$here/multi_rank.sh" "$bin/../../src/minipt" "$dump/multi_rank"
rc=$?
if [[ $rc == 77 ]]; then
  echo "multi-rank GPU checks: SKIPPED (no NCCL >= 2.30; see tests/gpu/multi_rank.sh)"
elif [[ $rc != 0 ]]; then
  status=1
fi
echo "GPU checks: $([[ $status == 0 ]] && echo PASSED || echo FAILED)"
exit $status
