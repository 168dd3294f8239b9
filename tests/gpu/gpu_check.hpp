// Small helpers for the GPU check programs (plain executables, so they build where
// GoogleTest is absent): exit code 77 = skipped (no device), 1 = a check failed.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace gpu_check {

constexpr int kSkip = 77;

inline bool have_device() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    cudaGetLastError();
    return false;
  }
  return true;
}

// ‖a − b‖ / ‖b‖ in double; NaN anywhere → +inf.
template <typename A, typename B>
double rel_l2(const std::vector<A>& a, const std::vector<B>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = static_cast<double>(a[i]), y = static_cast<double>(b[i]);
    if (!std::isfinite(x)) return INFINITY;
    num += (x - y) * (x - y);
    den += y * y;
  }
  return std::sqrt(num / (den > 0 ? den : 1.0));
}

struct Tally {
  int failures = 0;
  void check(bool ok, const char* what, double value, double limit) {
    std::printf("%-6s %-48s %.3e (limit %.1e)\n", ok ? "ok" : "FAIL", what, value, limit);
    if (!ok) ++failures;
  }
  void below(const char* what, double value, double limit) {
    check(value <= limit, what, value, limit);
  }
};

}  // namespace gpu_check
