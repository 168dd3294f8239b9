// Element-wise and row-wise pieces of the transformer on the host, forward and
// backward, templated on the scalar (float for training, double for the gradient
// check). Matrix products live in gemm.hpp, attention in attention.hpp.
//
// Row loops run through Kokkos::parallel_for on the default host execution space;
// every iteration writes only its own row (or its own column block for the weight
// gradients that sum over tokens), so no iteration races with another.
#pragma once

#include <Kokkos_Core.hpp>
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "compute/kokkos/vector_math.hpp"

namespace minipt::kokkos {

using HostExec = Kokkos::DefaultHostExecutionSpace;

template <class F>
void for_each_row(const char* label, int64_t rows, const F& body) {
  Kokkos::parallel_for(label, Kokkos::RangePolicy<HostExec>(0, rows), body);
}

// ---- exp ----
// e^x for float without libm, so loops over it vectorise: x = n·ln2 + r with n an
// integer (rounded by adding 1.5·2²³, which leaves n in the low mantissa bits) and
// |r| ≤ ln2/2; e^r by its Taylor series to r⁶ (truncation r⁷/7! < 1.2e-7, about one
// ulp); 2ⁿ by writing n+127 into the exponent field. ln2 is split in a short high
// part (exact products n·hi) and a correction (Cody–Waite). Below -87 the result is
// flushed to 0 (e^-87 ≈ 1.6e-38, the smallest normal float); x = -inf gives 0, which
// the attention mask relies on. Above 88 it saturates at e^88.
inline float exp_approx(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;
  const float xc = std::min(std::max(x, -87.0f), 88.0f);
  const float shifted = xc * kLog2e + kRound;
  const float n = shifted - kRound;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t e = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(kRound);
  const float two_to_n = std::bit_cast<float>((e + 127) << 23);
  return x < -87.0f ? 0.0f : p * two_to_n;
}
inline float exp_of(float x) { return exp_approx(x); }
inline double exp_of(double x) { return std::exp(x); }

// ---- a dot product split over 8 lanes, so that it vectorises without reassociation ----
template <class T>
T dot_of(const T* x, const T* y, int64_t n) {
  T lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lane[l] += x[i + l] * y[i + l];
  for (; i < n; ++i) lane[0] += x[i] * y[i];
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}
// ---- RMSNorm ----
// y = x · r · g with r = (mean(x²) + eps)^(-1/2), per token over `hidden` features.
// r is kept per token for the backward.
template <class T>
void rmsnorm_forward(int64_t tokens, int hidden, const T* x, const T* weight, double eps,
                     T* inv_rms, T* y) {
  for_each_row("minipt::rmsnorm_forward", tokens, [=](const int64_t t) {
    const T* xt = x + t * hidden;
    T* yt = y + t * hidden;
    const T mean_sq = dot_of(xt, xt, hidden) / static_cast<T>(hidden);
    const T r = T(1) / std::sqrt(mean_sq + static_cast<T>(eps));
    inv_rms[t] = r;
    for (int j = 0; j < hidden; ++j) yt[j] = xt[j] * r * weight[j];
  });
}

// Backward of y_j = x_j·r·g_j, r = (Σ_i x_i²/H + eps)^(-1/2):
//   ∂r/∂x_i = −r³·x_i/H, so
//   dx_i = Σ_j dy_j·∂y_j/∂x_i = r·g_i·dy_i − r³·x_i·(Σ_j dy_j·g_j·x_j)/H
//        = r·(g_i·dy_i − x_i·r²·c/H),  c = Σ_j dy_j·g_j·x_j
//   dg_j = Σ_tokens dy_j·x_j·r
// dx is ADDED to `dx_accum` (the residual branch's gradient is already there).
// dweight is overwritten.
template <class T>
void rmsnorm_backward(int64_t tokens, int hidden, const T* x, const T* weight, const T* inv_rms,
                      const T* dy, T* dx_accum, T* dweight) {
  for_each_row("minipt::rmsnorm_backward_input", tokens, [=](const int64_t t) {
    const T* xt = x + t * hidden;
    const T* dyt = dy + t * hidden;
    T* dxt = dx_accum + t * hidden;
    const T r = inv_rms[t];
    T c = 0;
    for (int j = 0; j < hidden; ++j) c += dyt[j] * weight[j] * xt[j];
    const T k = r * r * c / static_cast<T>(hidden);
    for (int j = 0; j < hidden; ++j) dxt[j] += r * (weight[j] * dyt[j] - xt[j] * k);
  });
  // The weight gradient sums over tokens: parallel over blocks of features instead.
  constexpr int kColumns = 64;
  const int64_t blocks = (hidden + kColumns - 1) / kColumns;
  for_each_row("minipt::rmsnorm_backward_weight", blocks, [=](const int64_t b) {
    const int j0 = static_cast<int>(b * kColumns);
    const int j1 = std::min(hidden, j0 + kColumns);
    T acc[kColumns] = {};
    for (int64_t t = 0; t < tokens; ++t) {
      const T r = inv_rms[t];
      const T* xt = x + t * hidden;
      const T* dyt = dy + t * hidden;
      for (int j = j0; j < j1; ++j) acc[j - j0] += dyt[j] * xt[j] * r;
    }
    for (int j = j0; j < j1; ++j) dweight[j] = acc[j - j0];
  });
}

// ---- rotary position embedding (rotate-half convention) ----
// For head dimension d and pair index i < d/2, frequency θ^(−2i/d); at position p the
// pair (x_i, x_{i+d/2}) is rotated by the angle p·θ^(−2i/d):
//   x'_i       = x_i·cos − x_{i+d/2}·sin
//   x'_{i+d/2} = x_{i+d/2}·cos + x_i·sin
// The rotation is orthogonal, so its backward is the rotation by −angle (transpose):
//   dx_i = dx'_i·cos + dx'_{i+d/2}·sin,  dx_{i+d/2} = dx'_{i+d/2}·cos − dx'_i·sin.
// Tables are [position][d/2], computed in double.
template <class T>
void rope_tables(int max_positions, int head_dim, double theta, std::vector<T>& cos_table,
                 std::vector<T>& sin_table) {
  const int half = head_dim / 2;
  cos_table.resize(static_cast<size_t>(max_positions) * half);
  sin_table.resize(cos_table.size());
  for (int i = 0; i < half; ++i) {
    const double freq = std::pow(theta, -2.0 * i / head_dim);
    for (int p = 0; p < max_positions; ++p) {
      const double angle = p * freq;
      cos_table[static_cast<size_t>(p) * half + i] = static_cast<T>(std::cos(angle));
      sin_table[static_cast<size_t>(p) * half + i] = static_cast<T>(std::sin(angle));
    }
  }
}

// Rotates every head of every token row in place (inverse = backward).
template <class T>
void rope_rotate(int64_t tokens, int heads, int head_dim, const int32_t* positions,
                 const T* cos_table, const T* sin_table, T* x, bool inverse) {
  const int half = head_dim / 2;
  const T sign = inverse ? T(-1) : T(1);
  for_each_row("minipt::rope", tokens, [=](const int64_t t) {
    const T* c = cos_table + static_cast<int64_t>(positions[t]) * half;
    const T* s = sin_table + static_cast<int64_t>(positions[t]) * half;
    for (int h = 0; h < heads; ++h) {
      T* lo = x + (t * heads + h) * head_dim;
      T* hi = lo + half;
      for (int i = 0; i < half; ++i) {
        const T a = lo[i], b = hi[i], si = sign * s[i];
        lo[i] = a * c[i] - b * si;
        hi[i] = b * c[i] + a * si;
      }
    }
  });
}

// A per-thread row of scratch.
template <class T>
T* thread_row_buffer(int64_t n) {
  thread_local std::vector<T> buffer;
  if (static_cast<int64_t>(buffer.size()) < n) buffer.resize(static_cast<size_t>(n));
  return buffer.data();
}

// ---- SwiGLU ----
// m = silu(g)·u, silu(g) = g·σ(g), σ(g) = 1/(1+e^−g).
template <class T>
void swiglu_forward(int64_t tokens, int ffn, const T* gate, const T* up, T* m) {
  for_each_row("minipt::swiglu_forward", tokens, [=](const int64_t t) {
    const int64_t o = t * ffn;
    T* sigmoid = thread_row_buffer<T>(ffn);
    std::copy(gate + o, gate + o + ffn, sigmoid);
    sigmoid_inplace(sigmoid, ffn);
    for (int j = 0; j < ffn; ++j) m[o + j] = gate[o + j] * sigmoid[j] * up[o + j];
  });
}

// Backward, given dm (in `dm_to_dgate`, replaced by dgate):
//   du = dm·silu(g)
//   dg = dm·u·silu'(g),  silu'(g) = σ(g) + g·σ(g)(1−σ(g)) = σ(g)·(1 + g·(1−σ(g)))
template <class T>
void swiglu_backward(int64_t tokens, int ffn, const T* gate, const T* up, T* dm_to_dgate, T* dup) {
  for_each_row("minipt::swiglu_backward", tokens, [=](const int64_t t) {
    const int64_t o = t * ffn;
    T* sigmoid = thread_row_buffer<T>(ffn);
    std::copy(gate + o, gate + o + ffn, sigmoid);
    sigmoid_inplace(sigmoid, ffn);
    for (int j = 0; j < ffn; ++j) {
      const T g = gate[o + j], s = sigmoid[j], dm = dm_to_dgate[o + j];
      dup[o + j] = dm * g * s;
      dm_to_dgate[o + j] = dm * up[o + j] * s * (T(1) + g * (T(1) - s));
    }
  });
}

// ---- embedding ----
template <class T>
void embedding_forward(int64_t tokens, int hidden, const int32_t* ids, const T* table, T* x) {
  for_each_row("minipt::embedding_forward", tokens, [=](const int64_t t) {
    std::copy(table + static_cast<int64_t>(ids[t]) * hidden,
              table + static_cast<int64_t>(ids[t] + 1) * hidden, x + t * hidden);
  });
}

// dTable[id] = Σ over tokens with that id of dx[token]; rows of absent ids are zero.
// Parallel over feature blocks so that no two iterations add into the same element.
template <class T>
void embedding_backward(int64_t tokens, int hidden, int vocab, const int32_t* ids, const T* dx,
                        T* dtable) {
  constexpr int kColumns = 32;
  const int64_t blocks = (hidden + kColumns - 1) / kColumns;
  for_each_row("minipt::embedding_backward", blocks, [=](const int64_t b) {
    const int j0 = static_cast<int>(b * kColumns);
    const int j1 = std::min(hidden, j0 + kColumns);
    for (int64_t v = 0; v < vocab; ++v)
      std::fill(dtable + v * hidden + j0, dtable + v * hidden + j1, T(0));
    for (int64_t t = 0; t < tokens; ++t) {
      T* row = dtable + static_cast<int64_t>(ids[t]) * hidden;
      const T* g = dx + t * hidden;
      for (int j = j0; j < j1; ++j) row[j] += g[j];
    }
  });
}

}  // namespace minipt::kokkos
