#!/usr/bin/env bash
# Builds and runs every test: CTest (unit tests, MPI tests at 1/2/4 ranks) on the CPU
# build, the same unit and MPI tests under address/UB sanitizers, 60 s of libFuzzer on the
# configuration parser where clang is present (tests/fuzz/run.sh), a compile of the CUDA
# build where nvcc exists (its GPU tests skip without a GPU), then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
run/deps.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
jobs=$(nproc)

echo "== clang-format check =="
if command -v clang-format >/dev/null 2>&1; then
  git ls-files '*.cpp' '*.hpp' '*.cu' '*.cuh' | xargs clang-format --dry-run --Werror
else
  echo "clang-format not installed: format check skipped"
fi

echo "== cpu build + ctest =="
cmake --preset cpu >/dev/null
cmake --build --preset cpu -j "$jobs"
ctest --preset cpu -j "$jobs"

echo "== cpu-asan build + ctest (unit, mpi) =="
# MPI libraries leak by design at exit; leaks are not what this build looks for
# (GoogleTest discovery runs the test binary at build time, so this covers the build).
export ASAN_OPTIONS=detect_leaks=0
cmake --preset cpu-asan >/dev/null
cmake --build --preset cpu-asan -j "$jobs"
ctest --preset cpu-asan -j "$jobs" -L "unit|mpi" -LE timing

echo "== fuzz: configuration parser, 60 s (skips without clang's libFuzzer) =="
FUZZ_SECONDS=60 tests/fuzz/run.sh

if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "== cuda build (compile check; GPU tests skip without a GPU) =="
  export PATH=$PATH:/usr/local/cuda/bin
  cmake --preset cuda >/dev/null
  cmake --build --preset cuda -j "$jobs"
  ctest --preset cuda -j "$jobs" -L gpu
fi

echo "== pytest =="
export MINIPT_BIN=$PWD/build/cpu/src/minipt
python3 -m pytest -q tests/python
