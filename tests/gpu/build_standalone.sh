#!/usr/bin/env bash
# Builds the CUDA backend's GPU check programs and benchmark with nvcc alone (no CMake,
# MPI, HDF5 or GoogleTest needed): src/compute/cuda, src/model and the three mains.
# Usage: tests/gpu/build_standalone.sh OUT_DIR   (run from the repository root)
set -euo pipefail
out=${1:?output directory}
mkdir -p "$out/obj"
NVCC=${NVCC:-nvcc}
flags=(-std=c++20 -O3 -gencode arch=compute_90,code=sm_90 -I src -I tests/gpu -Xcompiler=-Wall
       --expt-relaxed-constexpr)
srcs=(src/compute/cuda/*.cu src/model/shape.cpp src/model/init.cpp)
pids=()
for s in "${srcs[@]}" tests/gpu/cuda_attention_check.cu tests/gpu/cuda_model_check.cu tests/bench/cuda_step.cu; do
  o="$out/obj/$(basename "${s%.*}").o"
  if [[ ! -f "$o" || "$s" -nt "$o" || -n "$(find src/compute/cuda src/model tests/gpu -newer "$o" -name '*.h*' 2>/dev/null | head -1)" ]]; then
    if [[ "$s" == *.cpp ]]; then
      "$NVCC" -x cu "${flags[@]}" -c "$s" -o "$o" &
    else
      "$NVCC" "${flags[@]}" -c "$s" -o "$o" &
    fi
    pids+=($!)
    if (( ${#pids[@]} >= ${JOBS:-2} )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  fi
done
for p in "${pids[@]}"; do wait "$p"; done
lib=()
for s in "${srcs[@]}"; do lib+=("$out/obj/$(basename "${s%.*}").o"); done
for main in cuda_attention_check cuda_model_check cuda_step; do
  "$NVCC" -gencode arch=compute_90,code=sm_90 -o "$out/$main" "$out/obj/$main.o" "${lib[@]}" -lcublasLt
done
echo "built: $out/cuda_attention_check $out/cuda_model_check $out/cuda_step"
