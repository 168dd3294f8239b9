// Shard-level maths on host memory shared by the host backends: AdamW, squared norm,
// gradient accumulation, and the deterministic initial-value hash.
#pragma once

#include <cstdint>

#include "compute/backend.hpp"

namespace minipt {

void host_adamw(float* param, float* m, float* v, const float* grad, int64_t n,
                const AdamWParams& p, float grad_scale);
double host_sum_squares(const float* x, int64_t n);
void host_accumulate(float* acc, const float* g, int64_t n);

// A uniform value in [-1, 1) from (seed, unit, index): initial weights depend only on
// where an element sits in the model, never on how the model is sharded.
double hash_uniform(uint64_t seed, int unit, int64_t index);

}  // namespace minipt
