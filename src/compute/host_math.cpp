#include "compute/host_math.hpp"

#include <cmath>

#include "model/init.hpp"

namespace minipt {

// Decoupled weight decay (Loshchilov & Hutter): the decay is applied to the parameter
// directly, not through the gradient, so it is not rescaled by the adaptive step.
void host_adamw(float* param, float* m, float* v, const float* grad, int64_t n,
                const AdamWParams& p, float grad_scale) {
  const double bc1 = 1.0 - std::pow(static_cast<double>(p.beta1), p.step);
  const double bc2 = 1.0 - std::pow(static_cast<double>(p.beta2), p.step);
  const float step_size = static_cast<float>(p.lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i] * grad_scale;
    m[i] = p.beta1 * m[i] + (1.0f - p.beta1) * g;
    v[i] = p.beta2 * v[i] + (1.0f - p.beta2) * g * g;
    const float denom = std::sqrt(v[i]) * inv_sqrt_bc2 + p.eps;
    param[i] -= step_size * m[i] / denom + p.lr * p.weight_decay * param[i];
  }
}

double host_sum_squares(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return s;
}

void host_accumulate(float* acc, const float* g, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += g[i];
}

double hash_uniform(uint64_t seed, int unit, int64_t index) {
  const uint64_t z = splitmix64(seed * 0x9E3779B97F4A7C15ULL ^ (static_cast<uint64_t>(unit) << 40) ^
                                static_cast<uint64_t>(index));
  return static_cast<double>(z >> 11) * 0x1.0p-53 * 2.0 - 1.0;
}

}  // namespace minipt
