#include "compute/kokkos/vector_math.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include "compute/kokkos/gemm.hpp"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define MINIPT_X86_VECTOR_KERNELS 1
#endif

namespace minipt::kokkos {
namespace {

// 8 float lanes. Vectors are passed by reference only: by value they would change
// the calling convention between the baseline and the AVX2 build (-Wpsabi).
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

#define MINIPT_ALWAYS_INLINE inline __attribute__((always_inline))

MINIPT_ALWAYS_INLINE void splat(v8f& v, float x) { v = v8f{x, x, x, x, x, x, x, x}; }
MINIPT_ALWAYS_INLINE void load8(v8f& v, const float* p) { std::memcpy(&v, p, sizeof v); }
MINIPT_ALWAYS_INLINE void store8(float* p, const v8f& v) { std::memcpy(p, &v, sizeof v); }
// The first n (< 8) lanes from p, the others `fill`.
MINIPT_ALWAYS_INLINE void load_partial(v8f& v, const float* p, int64_t n, float fill) {
  float tmp[8];
  for (int i = 0; i < 8; ++i) tmp[i] = i < n ? p[i] : fill;
  load8(v, tmp);
}
MINIPT_ALWAYS_INLINE void store_partial(float* p, const v8f& v, int64_t n) {
  float tmp[8];
  store8(tmp, v);
  for (int i = 0; i < n; ++i) p[i] = tmp[i];
}
MINIPT_ALWAYS_INLINE float lane_sum(const v8f& v) {
  return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

// exp on 8 lanes, the same maths as exp_approx (kernels.hpp): x = n·ln2 + r,
// e^r by Taylor to r⁶, 2ⁿ through the exponent bits; x < −87 (and −inf) → 0.
MINIPT_ALWAYS_INLINE void exp8(v8f& x) {
  v8f lo, hi, zero;
  splat(lo, -87.0f);
  splat(hi, 88.0f);
  splat(zero, 0.0f);
  v8f xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  const float round = 12582912.0f;  // 1.5·2²³
  const v8f shifted = xc * 1.44269504088896341f + round;
  const v8f n = shifted - round;
  const v8f r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
  v8f p;
  splat(p, 1.0f / 720.0f);
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  v8f round_v;
  splat(round_v, round);
  v8i shifted_bits, round_bits;
  std::memcpy(&shifted_bits, &shifted, sizeof shifted_bits);
  std::memcpy(&round_bits, &round_v, sizeof round_bits);
  const v8i exponent_bits = ((shifted_bits - round_bits) + 127) << 23;  // n + bias, in place
  v8f two_to_n;
  std::memcpy(&two_to_n, &exponent_bits, sizeof two_to_n);
  const v8f result = p * two_to_n;
  x = x < lo ? zero : result;
}

MINIPT_ALWAYS_INLINE float row_max_body(const float* x, int64_t n) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  v8f m, v;
  splat(m, kNegInf);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    load8(v, x + i);
    m = v > m ? v : m;
  }
  if (i < n) {
    load_partial(v, x + i, n - i, kNegInf);
    m = v > m ? v : m;
  }
  float out = kNegInf;
  for (int l = 0; l < 8; ++l) out = m[l] > out ? m[l] : out;
  return out;
}

MINIPT_ALWAYS_INLINE float exp_shifted_sum_body(float* x, int64_t n, float shift) {
  v8f sum, v;
  splat(sum, 0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    load8(v, x + i);
    v -= shift;
    exp8(v);
    store8(x + i, v);
    sum += v;
  }
  if (i < n) {
    load_partial(v, x + i, n - i, -std::numeric_limits<float>::infinity());
    v -= shift;
    exp8(v);  // padding lanes give exactly 0
    store_partial(x + i, v, n - i);
    sum += v;
  }
  return lane_sum(sum);
}

MINIPT_ALWAYS_INLINE void exp_shifted_scaled_body(float* x, int64_t n, float shift, float scale) {
  v8f v;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    load8(v, x + i);
    v -= shift;
    exp8(v);
    store8(x + i, v * scale);
  }
  if (i < n) {
    load_partial(v, x + i, n - i, 0.0f);
    v -= shift;
    exp8(v);
    store_partial(x + i, v * scale, n - i);
  }
}

MINIPT_ALWAYS_INLINE void sigmoid_body(float* x, int64_t n) {
  v8f v;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    load8(v, x + i);
    v = -v;
    exp8(v);
    store8(x + i, 1.0f / (1.0f + v));
  }
  if (i < n) {
    load_partial(v, x + i, n - i, 0.0f);
    v = -v;
    exp8(v);
    store_partial(x + i, 1.0f / (1.0f + v), n - i);
  }
}

float row_max_portable(const float* x, int64_t n) { return row_max_body(x, n); }
float exp_shifted_sum_portable(float* x, int64_t n, float shift) {
  return exp_shifted_sum_body(x, n, shift);
}
void exp_shifted_scaled_portable(float* x, int64_t n, float shift, float scale) {
  exp_shifted_scaled_body(x, n, shift, scale);
}
void sigmoid_portable(float* x, int64_t n) { sigmoid_body(x, n); }

#ifdef MINIPT_X86_VECTOR_KERNELS
__attribute__((target("avx2,fma"))) float row_max_avx2(const float* x, int64_t n) {
  return row_max_body(x, n);
}
__attribute__((target("avx2,fma"))) float exp_shifted_sum_avx2(float* x, int64_t n, float shift) {
  return exp_shifted_sum_body(x, n, shift);
}
__attribute__((target("avx2,fma"))) void exp_shifted_scaled_avx2(float* x, int64_t n, float shift,
                                                                 float scale) {
  exp_shifted_scaled_body(x, n, shift, scale);
}
__attribute__((target("avx2,fma"))) void sigmoid_avx2(float* x, int64_t n) { sigmoid_body(x, n); }
#define MINIPT_DISPATCH(name, ...) \
  (vector_kernels_enabled() ? name##_avx2(__VA_ARGS__) : name##_portable(__VA_ARGS__))
#else
#define MINIPT_DISPATCH(name, ...) name##_portable(__VA_ARGS__)
#endif

}  // namespace

float row_max(const float* x, int64_t n) { return MINIPT_DISPATCH(row_max, x, n); }
float exp_shifted_sum(float* x, int64_t n, float shift) {
  return MINIPT_DISPATCH(exp_shifted_sum, x, n, shift);
}
void exp_shifted_scaled(float* x, int64_t n, float shift, float scale) {
  MINIPT_DISPATCH(exp_shifted_scaled, x, n, shift, scale);
}
void sigmoid_inplace(float* x, int64_t n) { MINIPT_DISPATCH(sigmoid, x, n); }

double row_max(const double* x, int64_t n) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}
double exp_shifted_sum(double* x, int64_t n, double shift) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - shift));
  return sum;
}
void exp_shifted_scaled(double* x, int64_t n, double shift, double scale) {
  for (int64_t i = 0; i < n; ++i) x[i] = scale * std::exp(x[i] - shift);
}
void sigmoid_inplace(double* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = 1.0 / (1.0 + std::exp(-x[i]));
}

}  // namespace minipt::kokkos
