// Deterministic initial parameter values, shared by every compute backend.
//
// Each element of a unit's flat buffer gets a value that depends only on
// (seed, unit, element index): a splitmix64 hash of those three, turned into a uniform
// number in [-amplitude, amplitude). Norm weights are 1. So every backend, every world
// size and every shard split produce bit-identical fp32 master parameters, and the
// CUDA backend can evaluate the same formula on the device (the function is
// host/device callable and uses only integer maths plus one exactly-specified float
// multiply, so there is no rounding difference between CPU and GPU).
//
// Amplitude: uniform in [-a, a) has standard deviation a/√3; we use std 0.02 (the
// Qwen2/Llama initializer range) for every matrix, embedding and LM head alike.
#pragma once

#include <cstdint>

#include "model/shape.hpp"

#if defined(__CUDACC__)
#define MINIPT_HOST_DEVICE __host__ __device__
#else
#define MINIPT_HOST_DEVICE
#endif

namespace minipt {

constexpr double kInitStd = 0.02;

MINIPT_HOST_DEVICE inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Everything needed to evaluate unit `unit`'s initial value at any element index.
struct UnitInit {
  uint64_t seed = 1;
  int unit = 0;
  int64_t numel = 0;
  // Element ranges [begin, end) that are RMSNorm weights (value 1); unused ranges empty.
  int64_t ones_begin[2] = {0, 0};
  int64_t ones_end[2] = {0, 0};
  // amplitude · 2⁻²³, precomputed so value() is one float multiply.
  float scale = 0.0f;

  // Initial value of element `index` (0 for padding beyond numel).
  MINIPT_HOST_DEVICE float value(int64_t index) const {
    if (index < 0 || index >= numel) return 0.0f;
    for (int r = 0; r < 2; ++r) {
      if (index >= ones_begin[r] && index < ones_end[r]) return 1.0f;
    }
    const uint64_t key = seed * 0xD1B54A32D192ED03ULL +
                         static_cast<uint64_t>(unit + 1) * 0x8CB92BA72F3D8DD7ULL +
                         static_cast<uint64_t>(index);
    // Top 24 bits → integer in [-2²³, 2²³), exactly representable as float.
    const int32_t k = static_cast<int32_t>(splitmix64(key) >> 40) - (1 << 23);
    return static_cast<float>(k) * scale;
  }
};

// The rule for one unit of `shape` (see shape.hpp for the unit layouts).
UnitInit unit_init(const ModelShape& shape, int unit, uint64_t seed);

}  // namespace minipt
