#!/usr/bin/env bash
# Builds minipt and the CUDA backend's GPU checks and benchmark with CMake + Ninja on a
# GPU machine (no Kokkos or GoogleTest needed): BUILD_DIR/src/minipt,
# BUILD_DIR/tests/gpu/{cuda_attention_check,cuda_model_check}, BUILD_DIR/tests/bench/cuda_step,
# BUILD_DIR/tests/gpu_comm/comm_bench.
# cuDNN attention is built in when the cuDNN frontend headers are in .deps/ (run/deps.sh)
# and cuDNN is found: CUDNN_ROOT, else the Python environment's nvidia.cudnn wheel, else
# the CUDA install.
# Usage: tests/gpu/build_cuda.sh [BUILD_DIR]   (run from the repository root; default build-cuda)
set -euo pipefail
build=${1:-build-cuda}
py=${PYTHON:-$(command -v /opt/torch/.venv/bin/python || command -v python3)}
cudnn_root=${CUDNN_ROOT:-$("$py" -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)}
export PATH=${CUDA_HOME:-/usr/local/cuda}/bin:$PATH
mkdir -p "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMINIPT_WERROR=ON -DMINIPT_ENABLE_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" -DMINIPT_ENABLE_KOKKOS=OFF \
  ${cudnn_root:+-DMINIPT_CUDNN_ROOT="$cudnn_root"} >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; exit 1; }
grep "minipt .*cuda=" "$build/configure.log" || true
ninja -C "$build" minipt cuda_step cuda_attention_check cuda_model_check comm_bench >/dev/null
echo "built: $build/src/minipt, tests/gpu/cuda_{attention,model}_check, tests/bench/cuda_step, tests/gpu_comm/comm_bench"
