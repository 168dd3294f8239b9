// The host transformer in double precision against (1) an independent, naive
// implementation of the same model (loss equality) and (2) central finite differences
// of its own loss (every parameter group's analytic gradient).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "compute/kokkos/gemm.hpp"
#include "compute/kokkos/transformer.hpp"
#include "model/shape.hpp"
#include "test_kokkos_util.hpp"

namespace minipt {
namespace {

using Params = std::vector<std::vector<double>>;

ModelShape tiny_shape() {
  ModelShape s;
  s.layers = 2;
  s.hidden = 16;
  s.heads = 4;
  s.kv_heads = 2;
  s.ffn = 24;
  s.vocab = 23;
  s.rope_theta = 10000.0;
  return s;
}

// Random parameters large enough that every nonlinearity is exercised (attention far
// from uniform, SiLU away from its linear region): matrices N(0, 0.3²), RMSNorm
// weights 1 ± 0.2.
Params random_params(const ModelShape& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> matrix(0.0, 0.3);
  std::uniform_real_distribution<double> norm(0.8, 1.2);
  Params p(static_cast<size_t>(s.num_units()));
  const BlockLayout b(s);
  const HeadLayout hl(s);
  for (int u = 0; u < s.num_units(); ++u) {
    auto& v = p[static_cast<size_t>(u)];
    v.resize(static_cast<size_t>(s.unit_params(u)));
    for (int64_t i = 0; i < static_cast<int64_t>(v.size()); ++i) {
      bool is_norm = false;
      if (s.is_block(u))
        is_norm = (i >= b.attn_norm && i < b.wq) || (i >= b.mlp_norm && i < b.w_gate);
      if (s.is_head(u)) is_norm = i < hl.lm_head;
      v[static_cast<size_t>(i)] = is_norm ? norm(rng) : matrix(rng);
    }
  }
  return p;
}

MicrobatchData tiny_batch(int vocab) {
  std::mt19937_64 rng(7);
  return test::pack_sequences(
      {test::random_tokens(rng, 5, vocab), test::random_tokens(rng, 7, vocab)}, 2);
}

// ---- naive reference: the model written as plainly as possible (L×L attention) ----
using Matrix = std::vector<std::vector<double>>;

Matrix rmsnorm_ref(const Matrix& x, const double* g, double eps) {
  Matrix y = x;
  for (auto& row : y) {
    double ss = 0;
    for (double e : row) ss += e * e;
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(row.size()) + eps);
    for (size_t j = 0; j < row.size(); ++j) row[j] *= r * g[j];
  }
  return y;
}

Matrix linear_ref(const Matrix& x, const double* w, int out) {  // y = x·Wᵀ, W [out][in]
  Matrix y(x.size(), std::vector<double>(static_cast<size_t>(out), 0.0));
  const size_t in = x[0].size();
  for (size_t t = 0; t < x.size(); ++t)
    for (int o = 0; o < out; ++o)
      for (size_t i = 0; i < in; ++i)
        y[t][static_cast<size_t>(o)] += x[t][i] * w[static_cast<size_t>(o) * in + i];
  return y;
}

void rope_ref(Matrix& x, int heads, int d, const std::vector<int>& pos, double theta) {
  for (size_t t = 0; t < x.size(); ++t)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < d / 2; ++i) {
        const double angle = pos[t] * std::pow(theta, -2.0 * i / d);
        double& a = x[t][static_cast<size_t>(h * d + i)];
        double& b = x[t][static_cast<size_t>(h * d + i + d / 2)];
        const double na = a * std::cos(angle) - b * std::sin(angle);
        const double nb = b * std::cos(angle) + a * std::sin(angle);
        a = na;
        b = nb;
      }
}

double reference_loss(const ModelShape& s, const MicrobatchData& mb, const Params& p) {
  const size_t n = mb.tokens.size();
  const int h = s.hidden, d = s.head_dim();
  std::vector<int> pos(n), seq_start(n);
  for (size_t q = 0; q + 1 < mb.cu_seqlens.size(); ++q)
    for (int t = mb.cu_seqlens[q]; t < mb.cu_seqlens[q + 1]; ++t) {
      pos[static_cast<size_t>(t)] = t - mb.cu_seqlens[q];
      seq_start[static_cast<size_t>(t)] = mb.cu_seqlens[q];
    }
  Matrix x(n, std::vector<double>(static_cast<size_t>(h)));
  for (size_t t = 0; t < n; ++t)
    for (int j = 0; j < h; ++j)
      x[t][static_cast<size_t>(j)] = p[0][static_cast<size_t>(mb.tokens[t] * h + j)];
  const BlockLayout lay(s);
  for (int b = 1; b <= s.layers; ++b) {
    const double* w = p[static_cast<size_t>(b)].data();
    const Matrix h1 = rmsnorm_ref(x, w + lay.attn_norm, s.norm_eps);
    Matrix q = linear_ref(h1, w + lay.wq, h), k = linear_ref(h1, w + lay.wk, s.kv_dim()),
           v = linear_ref(h1, w + lay.wv, s.kv_dim());
    rope_ref(q, s.heads, d, pos, s.rope_theta);
    rope_ref(k, s.kv_heads, d, pos, s.rope_theta);
    Matrix o(n, std::vector<double>(static_cast<size_t>(h), 0.0));
    for (size_t t = 0; t < n; ++t)
      for (int head = 0; head < s.heads; ++head) {
        const int g = head / (s.heads / s.kv_heads);
        std::vector<double> score;
        for (size_t u = static_cast<size_t>(seq_start[t]); u <= t; ++u) {
          double dot = 0;
          for (int c = 0; c < d; ++c)
            dot += q[t][static_cast<size_t>(head * d + c)] * k[u][static_cast<size_t>(g * d + c)];
          score.push_back(dot / std::sqrt(static_cast<double>(d)));
        }
        const double mx = *std::max_element(score.begin(), score.end());
        double z = 0;
        for (double& e : score) z += (e = std::exp(e - mx));
        for (size_t u = static_cast<size_t>(seq_start[t]), i = 0; u <= t; ++u, ++i)
          for (int c = 0; c < d; ++c)
            o[t][static_cast<size_t>(head * d + c)] +=
                score[i] / z * v[u][static_cast<size_t>(g * d + c)];
      }
    const Matrix attn = linear_ref(o, w + lay.wo, h);
    for (size_t t = 0; t < n; ++t)
      for (int j = 0; j < h; ++j) x[t][static_cast<size_t>(j)] += attn[t][static_cast<size_t>(j)];
    const Matrix h2 = rmsnorm_ref(x, w + lay.mlp_norm, s.norm_eps);
    Matrix gate = linear_ref(h2, w + lay.w_gate, s.ffn);
    const Matrix up = linear_ref(h2, w + lay.w_up, s.ffn);
    for (size_t t = 0; t < n; ++t)
      for (size_t j = 0; j < gate[t].size(); ++j)
        gate[t][j] = gate[t][j] / (1.0 + std::exp(-gate[t][j])) * up[t][j];
    const Matrix mlp = linear_ref(gate, w + lay.w_down, h);
    for (size_t t = 0; t < n; ++t)
      for (int j = 0; j < h; ++j) x[t][static_cast<size_t>(j)] += mlp[t][static_cast<size_t>(j)];
  }
  const HeadLayout hl(s);
  const double* w = p.back().data();
  const Matrix logits =
      linear_ref(rmsnorm_ref(x, w + hl.final_norm, s.norm_eps), w + hl.lm_head, s.vocab);
  double loss = 0;
  for (size_t t = 0; t < n; ++t) {
    if (mb.targets[t] < 0) continue;
    const double mx = *std::max_element(logits[t].begin(), logits[t].end());
    double z = 0;
    for (double e : logits[t]) z += std::exp(e - mx);
    loss += mb.loss_weight[t] * (mx + std::log(z) - logits[t][static_cast<size_t>(mb.targets[t])]);
  }
  return loss;
}

TEST(KokkosModel, MatchesNaiveReference) {
  const ModelShape s = tiny_shape();
  const Params p = random_params(s, 11);
  const MicrobatchData mb = tiny_batch(s.vocab);
  const double expected = reference_loss(s, mb, p);
  for (bool recompute : {false, true}) {
    kokkos::Transformer<double> model(s, recompute);
    EXPECT_NEAR(test::model_loss(model, mb, p), expected, 1e-12 * std::abs(expected));
  }
  // sanity: the loss is that of a real, non-degenerate model
  EXPECT_GT(expected, 0.5);
}

// model.recompute = N: blocks 1..N rebuild their internals, the others keep them; any N
// gives the same loss and gradients as keeping every block's, bit for bit (the same
// operations on the same inputs), and recompute_needed() names exactly blocks 1..N.
TEST(KokkosModel, RecomputingTheFirstBlocksOnlyChangesNothing) {
  ModelShape s = tiny_shape();
  s.layers = 3;
  const Params p = random_params(s, 11);
  const MicrobatchData mb = tiny_batch(s.vocab);
  kokkos::Transformer<double> kept(s, false);
  Params expected;
  const double loss = test::model_gradients(kept, mb, p, expected);
  for (int n = 0; n <= s.layers; ++n) {
    kokkos::Transformer<double> model(s, Recompute::first(n));
    EXPECT_EQ(model.recomputed_blocks(), n);
    for (int u = 0; u < s.num_units(); ++u)
      EXPECT_EQ(model.recompute_needed(u), u >= 1 && u <= n) << "n " << n << " unit " << u;
    Params grads;
    EXPECT_EQ(test::model_gradients(model, mb, p, grads), loss) << "n " << n;
    EXPECT_EQ(grads, expected) << "n " << n;
  }
  EXPECT_EQ(kokkos::Transformer<double>(s, Recompute::automatic()).recomputed_blocks(), 3);
}

// ---- gradient check ----
struct Group {
  std::string name;
  int unit;
  int64_t begin, end;
};

std::vector<Group> parameter_groups(const ModelShape& s) {
  std::vector<Group> g{{"embedding", 0, 0, s.unit_params(0)}};
  const BlockLayout b(s);
  for (int u = 1; u <= s.layers; ++u) {
    const std::string p = "block" + std::to_string(u) + ".";
    g.push_back({p + "attn_norm", u, b.attn_norm, b.wq});
    g.push_back({p + "wq", u, b.wq, b.wk});
    g.push_back({p + "wk", u, b.wk, b.wv});
    g.push_back({p + "wv", u, b.wv, b.wo});
    g.push_back({p + "wo", u, b.wo, b.mlp_norm});
    g.push_back({p + "mlp_norm", u, b.mlp_norm, b.w_gate});
    g.push_back({p + "w_gate", u, b.w_gate, b.w_up});
    g.push_back({p + "w_up", u, b.w_up, b.w_down});
    g.push_back({p + "w_down", u, b.w_down, b.total});
  }
  const HeadLayout h(s);
  g.push_back({"final_norm", s.layers + 1, h.final_norm, h.lm_head});
  g.push_back({"lm_head", s.layers + 1, h.lm_head, h.total});
  return g;
}

// For each group: 6 random entries plus the entry of largest analytic magnitude,
// each differentiated numerically with the fourth-order central difference
//   f'(x) ≈ (f(x−2ε) − 8 f(x−ε) + 8 f(x+ε) − f(x+2ε)) / (12 ε),  ε = 1e-3,
// (truncation O(ε⁴), rounding ~1e-13 here). Error measure, per group, norm-wise over
// the sampled entries: ‖a − n‖₂ / max(‖a‖₂, ‖n‖₂, 1e-8). Bound: 1e-6.
void check_gradients(bool recompute) {
  const ModelShape s = tiny_shape();
  Params p = random_params(s, 11);
  const MicrobatchData mb = tiny_batch(s.vocab);
  kokkos::Transformer<double> model(s, recompute);
  Params grads;
  test::model_gradients(model, mb, p, grads);
  std::mt19937_64 rng(3);
  double worst = 0;
  for (const Group& g : parameter_groups(s)) {
    auto& w = p[static_cast<size_t>(g.unit)];
    const auto& a = grads[static_cast<size_t>(g.unit)];
    std::vector<int64_t> picks;
    std::uniform_int_distribution<int64_t> pick(g.begin, g.end - 1);
    for (int i = 0; i < 6; ++i) picks.push_back(pick(rng));
    int64_t largest = g.begin;
    for (int64_t i = g.begin; i < g.end; ++i)
      if (std::abs(a[static_cast<size_t>(i)]) > std::abs(a[static_cast<size_t>(largest)]))
        largest = i;
    picks.push_back(largest);
    double diff2 = 0, a2 = 0, n2 = 0;
    for (int64_t i : picks) {
      const double x0 = w[static_cast<size_t>(i)];
      constexpr double eps = 1e-3;
      auto f = [&](double x) {
        w[static_cast<size_t>(i)] = x;
        return test::model_loss(model, mb, p);
      };
      const double numeric =
          (f(x0 - 2 * eps) - 8 * f(x0 - eps) + 8 * f(x0 + eps) - f(x0 + 2 * eps)) / (12 * eps);
      w[static_cast<size_t>(i)] = x0;
      const double analytic = a[static_cast<size_t>(i)];
      diff2 += (analytic - numeric) * (analytic - numeric);
      a2 += analytic * analytic;
      n2 += numeric * numeric;
    }
    const double err = std::sqrt(diff2) / std::max({std::sqrt(a2), std::sqrt(n2), 1e-8});
    worst = std::max(worst, err);
    EXPECT_LE(err, 1e-6) << g.name << " (recompute " << recompute << ")";
    EXPECT_GT(a2, 0.0) << g.name << ": sampled gradient entries are all zero";
  }
  std::printf("[ gradcheck ] recompute=%d worst group error %.3e\n", recompute ? 1 : 0, worst);
}

TEST(KokkosGradCheck, KeptActivations) { check_gradients(false); }
TEST(KokkosGradCheck, RecomputedActivations) { check_gradients(true); }

// The float model (the one that trains: polynomial exp, vector kernels, chunked
// logits) against the double model on the same parameters: every unit's gradient
// agrees norm-wise to fp32 accuracy (measured ~1e-6; bound 2e-5). Run with the AVX2 kernels and the
// portable ones, and with the head's logits formed 5 tokens at a time.
TEST(KokkosModel, FloatGradientsMatchDouble) {
  const ModelShape s = tiny_shape();
  const Params pd = random_params(s, 13);
  std::vector<std::vector<float>> pf;
  Params pd_rounded;  // the double model gets the float parameters exactly
  for (const auto& v : pd) {
    pf.emplace_back(v.begin(), v.end());
    pd_rounded.emplace_back(pf.back().begin(), pf.back().end());
  }
  std::mt19937_64 rng(17);
  const MicrobatchData mb = test::pack_sequences(
      {test::random_tokens(rng, 40, s.vocab), test::random_tokens(rng, 3, s.vocab),
       test::random_tokens(rng, 130, s.vocab)},
      3);
  kokkos::Transformer<double> reference(s, false);
  Params gd;
  const double loss_d = test::model_gradients(reference, mb, pd_rounded, gd);
  const bool saved = kokkos::vector_kernels_enabled();
  for (bool vector : {true, false}) {
    kokkos::set_vector_kernels_enabled(vector);
    for (int64_t chunk : {int64_t{0}, int64_t{5}}) {
      kokkos::Transformer<float> model(s, true);
      if (chunk > 0) model.set_logit_chunk_tokens(chunk);
      std::vector<std::vector<float>> gf;
      const double loss_f = test::model_gradients(model, mb, pf, gf);
      EXPECT_NEAR(loss_f, loss_d, 1e-5 * loss_d);
      for (int u = 0; u < s.num_units(); ++u) {
        double diff2 = 0, ref2 = 0;
        const auto& a = gf[static_cast<size_t>(u)];
        const auto& b = gd[static_cast<size_t>(u)];
        for (size_t i = 0; i < a.size(); ++i) {
          diff2 += (a[i] - b[i]) * (a[i] - b[i]);
          ref2 += b[i] * b[i];
        }
        EXPECT_LT(std::sqrt(diff2 / ref2), 2e-5)
            << "unit " << u << " vector kernels " << vector << " chunk " << chunk;
      }
    }
  }
  kokkos::set_vector_kernels_enabled(saved);
}

}  // namespace
}  // namespace minipt
