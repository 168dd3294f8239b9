// Kernels of the host transformer against plain reference loops: the blocked GEMM in
// its three linear-layer shapes (both micro kernels), the tiled attention forward and
// backward over several tiles and sequences, the polynomial exp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "compute/kokkos/attention.hpp"
#include "compute/kokkos/gemm.hpp"
#include "compute/kokkos/kernels.hpp"

namespace minipt {
namespace {

using kokkos::MatrixOperand;

template <class T>
std::vector<T> random_vector(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<T> v(n);
  for (auto& e : v) e = static_cast<T>(u(rng));
  return v;
}

// C (+)= A·B with A, B given by strides; compared entry by entry with a double loop,
// tolerance relative to Σ|a||b| (the size of the rounding the sum can accumulate).
template <class T>
void check_gemm(int64_t m, int64_t n, int64_t k, bool a_transposed, bool b_transposed,
                bool accumulate, double tolerance) {
  const auto a = random_vector<T>(static_cast<size_t>(m * k), 1);
  const auto b = random_vector<T>(static_cast<size_t>(k * n), 2);
  const MatrixOperand<T> av =
      a_transposed ? MatrixOperand<T>{a.data(), 1, m} : MatrixOperand<T>{a.data(), k, 1};
  const MatrixOperand<T> bv =
      b_transposed ? MatrixOperand<T>{b.data(), 1, k} : MatrixOperand<T>{b.data(), n, 1};
  const int64_t ldc = n + 3;  // C is a sub-matrix of a wider array
  auto c = random_vector<T>(static_cast<size_t>(m * ldc), 3);
  const auto c0 = c;
  kokkos::gemm<T>(m, n, k, av, bv, c.data(), ldc, accumulate);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double expect = accumulate ? static_cast<double>(c0[static_cast<size_t>(i * ldc + j)]) : 0.0;
      double magnitude = std::abs(expect);
      for (int64_t p = 0; p < k; ++p) {
        const double x = av.data[i * av.row_stride + p * av.col_stride];
        const double y = bv.data[p * bv.row_stride + j * bv.col_stride];
        expect += x * y;
        magnitude += std::abs(x * y);
      }
      ASSERT_NEAR(static_cast<double>(c[static_cast<size_t>(i * ldc + j)]), expect,
                  tolerance * (magnitude + 1e-30))
          << "m=" << m << " n=" << n << " k=" << k << " at (" << i << "," << j << ")";
    }
  // columns beyond n untouched
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = n; j < ldc; ++j)
      ASSERT_EQ(c[static_cast<size_t>(i * ldc + j)], c0[static_cast<size_t>(i * ldc + j)]);
}

template <class T>
void check_all_gemm_shapes(double tolerance) {
  // sizes straddle the register tile (6×16 / 4×8) and the cache blocks (MC 96,
  // KC 256/128, NC 1024/512)
  const int64_t sizes[][3] = {{1, 1, 1}, {7, 19, 5}, {97, 33, 300}, {13, 1100, 20}, {200, 17, 129}};
  for (const auto& s : sizes)
    for (bool at : {false, true})
      for (bool bt : {false, true})
        for (bool acc : {false, true}) check_gemm<T>(s[0], s[1], s[2], at, bt, acc, tolerance);
}

TEST(KokkosGemm, DoubleMatchesReference) { check_all_gemm_shapes<double>(1e-14); }

TEST(KokkosGemm, FloatMatchesReferenceBothKernels) {
  const bool saved = kokkos::vector_kernels_enabled();
  for (bool vector : {false, true}) {
    if (vector && !kokkos::vector_kernels_available()) continue;
    kokkos::set_vector_kernels_enabled(vector);
    check_all_gemm_shapes<float>(1e-6);
  }
  kokkos::set_vector_kernels_enabled(saved);
}

TEST(KokkosGemm, ZeroDepthClearsOrKeeps) {
  std::vector<float> c(6, 5.0f);
  kokkos::gemm<float>(2, 3, 0, {nullptr, 0, 1}, {nullptr, 3, 1}, c.data(), 3, true);
  EXPECT_EQ(c, std::vector<float>(6, 5.0f));
  kokkos::gemm<float>(2, 3, 0, {nullptr, 0, 1}, {nullptr, 3, 1}, c.data(), 3, false);
  EXPECT_EQ(c, std::vector<float>(6, 0.0f));
}

TEST(KokkosExp, PolynomialMatchesLibm) {
  double worst = 0;
  for (double x = -87.0; x <= 88.0; x += 0.00173) {
    const float xf = static_cast<float>(x);
    const double expect = std::exp(static_cast<double>(xf));
    worst = std::max(worst, std::abs(kokkos::exp_approx(xf) - expect) / expect);
  }
  EXPECT_LT(worst, 4e-7);
  EXPECT_EQ(kokkos::exp_approx(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(kokkos::exp_approx(-100.0f), 0.0f);
  EXPECT_EQ(kokkos::exp_approx(0.0f), 1.0f);
}

// ---- attention against the L×L definition ----
struct AttentionCase {
  kokkos::AttentionShape shape;
  std::vector<int32_t> cu;
};

template <class T>
void reference_attention(const AttentionCase& c, const std::vector<T>& q, const std::vector<T>& k,
                         const std::vector<T>& v, const std::vector<T>& dout,
                         std::vector<double>& o, std::vector<double>& dq, std::vector<double>& dk,
                         std::vector<double>& dv) {
  const int d = c.shape.head_dim, H = c.shape.heads, G = H / c.shape.kv_heads;
  const int64_t qs = int64_t{H} * d, ks = int64_t{c.shape.kv_heads} * d;
  const int64_t n = c.cu.back();
  o.assign(static_cast<size_t>(n * qs), 0);
  dq.assign(o.size(), 0);
  dk.assign(static_cast<size_t>(n * ks), 0);
  dv.assign(dk.size(), 0);
  for (size_t s = 0; s + 1 < c.cu.size(); ++s)
    for (int h = 0; h < H; ++h) {
      const int g = h / G;
      for (int64_t t = c.cu[s]; t < c.cu[s + 1]; ++t) {
        std::vector<double> p;
        for (int64_t u = c.cu[s]; u <= t; ++u) {
          double dot = 0;
          for (int x = 0; x < d; ++x) dot += double(q[t * qs + h * d + x]) * k[u * ks + g * d + x];
          p.push_back(dot * c.shape.scale);
        }
        const double mx = *std::max_element(p.begin(), p.end());
        double z = 0;
        for (double& e : p) z += (e = std::exp(e - mx));
        for (double& e : p) e /= z;
        for (int64_t u = c.cu[s]; u <= t; ++u)
          for (int x = 0; x < d; ++x)
            o[t * qs + h * d + x] += p[static_cast<size_t>(u - c.cu[s])] * v[u * ks + g * d + x];
        // backward of this row: dp_u = do·v_u, ds = p ⊙ (dp − Σ p dp)
        std::vector<double> dp;
        double sum_pdp = 0;
        for (int64_t u = c.cu[s]; u <= t; ++u) {
          double dot = 0;
          for (int x = 0; x < d; ++x)
            dot += double(dout[t * qs + h * d + x]) * v[u * ks + g * d + x];
          dp.push_back(dot);
          sum_pdp += p[static_cast<size_t>(u - c.cu[s])] * dot;
        }
        for (int64_t u = c.cu[s]; u <= t; ++u) {
          const size_t i = static_cast<size_t>(u - c.cu[s]);
          const double ds = p[i] * (dp[i] - sum_pdp) * c.shape.scale;
          for (int x = 0; x < d; ++x) {
            dq[t * qs + h * d + x] += ds * k[u * ks + g * d + x];
            dk[u * ks + g * d + x] += ds * q[t * qs + h * d + x];
            dv[u * ks + g * d + x] += p[i] * dout[t * qs + h * d + x];
          }
        }
      }
    }
}

template <class T>
void check_attention(double tolerance, int heads = 4, int kv_heads = 2, int head_dim = 8) {
  AttentionCase c;
  c.shape.heads = heads;
  c.shape.kv_heads = kv_heads;
  c.shape.head_dim = head_dim;
  c.shape.scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  // lengths around and across the 96/64 tiles, and a length-1 sequence
  c.cu = {0, 150, 157, 254, 255, 255 + 2 * kokkos::kQueryTile + 1};
  const int64_t n = c.cu.back();
  const size_t qn = static_cast<size_t>(n * heads * head_dim),
               kn = static_cast<size_t>(n * kv_heads * head_dim);
  auto q = random_vector<T>(qn, 5), k = random_vector<T>(kn, 6), v = random_vector<T>(kn, 7),
       dout = random_vector<T>(qn, 8);
  for (auto& e : q) e *= T(3);  // peaky softmax
  std::vector<T> o(qn), lse(static_cast<size_t>(n * heads)), delta(lse.size()), dq(qn), dk(kn),
      dv(kn);
  const int nseq = static_cast<int>(c.cu.size()) - 1;
  kokkos::attention_forward<T>(c.shape, c.cu.data(), nseq, q.data(), k.data(), v.data(), o.data(),
                               lse.data());
  kokkos::attention_backward<T>(c.shape, c.cu.data(), nseq, q.data(), k.data(), v.data(), o.data(),
                                lse.data(), dout.data(), delta.data(), dq.data(), dk.data(),
                                dv.data());
  std::vector<double> ro, rdq, rdk, rdv;
  reference_attention(c, q, k, v, dout, ro, rdq, rdk, rdv);
  auto max_err = [](const std::vector<T>& a, const std::vector<double>& b) {
    double e = 0;
    for (size_t i = 0; i < a.size(); ++i) e = std::max(e, std::abs(double(a[i]) - b[i]));
    return e;
  };
  EXPECT_LT(max_err(o, ro), tolerance);
  EXPECT_LT(max_err(dq, rdq), tolerance);
  EXPECT_LT(max_err(dk, rdk), tolerance);
  EXPECT_LT(max_err(dv, rdv), tolerance);
}

TEST(KokkosAttention, DoubleMatchesDefinitionAcrossTiles) { check_attention<double>(1e-12); }
TEST(KokkosAttention, FloatMatchesDefinitionAcrossTiles) { check_attention<float>(2e-5); }
// no grouping, one kv head for all (MQA), and head sizes that leave partial
// register-tile strips (20 = 16 + 4 columns, 6 < 8)
TEST(KokkosAttention, HeadGroupingsAndOddHeadSizes) {
  check_attention<double>(1e-12, 3, 3, 6);
  check_attention<double>(1e-12, 4, 1, 20);
  check_attention<float>(2e-5, 2, 1, 20);
  check_attention<float>(2e-5, 3, 3, 6);
}

TEST(KokkosRope, RotatesPairsByPositionAngle) {
  const int d = 8, half = 4;
  std::vector<double> cs, sn;
  kokkos::rope_tables(5, d, 100.0, cs, sn);
  const std::vector<int32_t> positions = {0, 3};
  auto x = random_vector<double>(2 * d, 9);
  const auto x0 = x;
  kokkos::rope_rotate<double>(2, 1, d, positions.data(), cs.data(), sn.data(), x.data(), false);
  for (int t = 0; t < 2; ++t)
    for (int i = 0; i < half; ++i) {
      const double angle = positions[static_cast<size_t>(t)] * std::pow(100.0, -2.0 * i / d);
      const double a = x0[static_cast<size_t>(t * d + i)],
                   b = x0[static_cast<size_t>(t * d + i + half)];
      EXPECT_NEAR(x[static_cast<size_t>(t * d + i)], a * std::cos(angle) - b * std::sin(angle),
                  1e-15);
      EXPECT_NEAR(x[static_cast<size_t>(t * d + i + half)],
                  b * std::cos(angle) + a * std::sin(angle), 1e-15);
    }
  kokkos::rope_rotate<double>(2, 1, d, positions.data(), cs.data(), sn.data(), x.data(), true);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], x0[i], 1e-15);
}

}  // namespace
}  // namespace minipt
