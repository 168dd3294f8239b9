// The "kokkos" ComputeBackend as the trainer uses it (fp32): recompute on/off give the
// same gradients, regrouping sequences into microbatches does not change the step's
// gradient, init is independent of shard boundaries, the shard maths is right, and a
// short training run on Markov token streams learns.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "compute/kokkos/kokkos_backend.hpp"
#include "model/init.hpp"
#include "model/shape.hpp"
#include "test_kokkos_util.hpp"
#include "workload/tokens.hpp"

namespace minipt {
namespace {

ModelShape small_shape() {
  ModelShape s;
  s.layers = 2;
  s.hidden = 32;
  s.heads = 4;
  s.kv_heads = 2;
  s.ffn = 64;
  s.vocab = 61;
  return s;
}

std::unique_ptr<ComputeBackend> make(const ModelShape& s, bool recompute, uint64_t seed = 5) {
  ComputeOptions opt;
  opt.backend = "kokkos";
  opt.recompute = recompute;
  opt.seed = seed;
  return make_kokkos_backend(opt, s, 0);
}

// The parameters of every unit, in buffers from the backend.
struct Model {
  ComputeBackend& backend;
  std::vector<float*> params, grads, grad_sum;
  Model(ComputeBackend& b, const ModelShape& s) : backend(b) {
    for (int u = 0; u < s.num_units(); ++u) {
      const int64_t n = s.unit_params(u);
      params.push_back(static_cast<float*>(b.allocate(static_cast<size_t>(n) * 4)));
      grads.push_back(static_cast<float*>(b.allocate(static_cast<size_t>(n) * 4)));
      grad_sum.push_back(static_cast<float*>(b.allocate(static_cast<size_t>(n) * 4)));
      b.init_params(u, 0, n, params.back());
    }
  }
  ~Model() {
    for (auto* v : {&params, &grads, &grad_sum})
      for (float* p : *v) backend.deallocate(p);
  }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // One microbatch through the backend in trainer order; adds its gradients to grad_sum.
  double run_microbatch(const MicrobatchData& mb, const ModelShape& s) {
    backend.begin_microbatch(mb);
    for (int u = 0; u < s.num_units(); ++u) backend.forward(u, params[static_cast<size_t>(u)]);
    for (int u = s.num_units() - 1; u >= 0; --u) {
      const auto i = static_cast<size_t>(u);
      if (backend.recompute_needed(u)) backend.recompute(u, params[i]);
      backend.backward(u, params[i], grads[i]);
      backend.accumulate_grad(grad_sum[i], grads[i], s.unit_params(u));
    }
    return backend.end_microbatch();
  }
  void zero_grad_sum(const ModelShape& s) {
    for (int u = 0; u < s.num_units(); ++u)
      backend.fill_zero(grad_sum[static_cast<size_t>(u)],
                        static_cast<size_t>(s.unit_params(u)) * 4);
  }
};

std::vector<std::vector<int32_t>> some_sequences(int vocab) {
  std::mt19937_64 rng(21);
  std::vector<std::vector<int32_t>> seqs;
  for (int len : {37, 5, 130, 64, 1, 19}) seqs.push_back(test::random_tokens(rng, len, vocab));
  return seqs;
}

TEST(KokkosBackend, RecomputeGivesIdenticalGradients) {
  const ModelShape s = small_shape();
  auto kept = make(s, false), recomputed = make(s, true);
  EXPECT_FALSE(kept->recompute_needed(1));
  EXPECT_TRUE(recomputed->recompute_needed(1));
  EXPECT_FALSE(recomputed->recompute_needed(0));
  EXPECT_FALSE(recomputed->recompute_needed(s.layers + 1));
  Model a(*kept, s), b(*recomputed, s);
  const auto seqs = some_sequences(s.vocab);
  const MicrobatchData mb = test::pack_sequences(seqs, static_cast<int>(seqs.size()));
  a.zero_grad_sum(s);
  b.zero_grad_sum(s);
  EXPECT_EQ(a.run_microbatch(mb, s), b.run_microbatch(mb, s));
  for (int u = 0; u < s.num_units(); ++u) {
    const auto i = static_cast<size_t>(u);
    for (int64_t j = 0; j < s.unit_params(u); ++j)
      ASSERT_EQ(a.grads[i][j], b.grads[i][j]) << "unit " << u << " element " << j;
  }
}

TEST(KokkosBackend, GradientsIndependentOfMicrobatchGrouping) {
  const ModelShape s = small_shape();
  auto backend = make(s, true);
  Model m(*backend, s);
  const auto seqs = some_sequences(s.vocab);
  const int n = static_cast<int>(seqs.size());
  m.zero_grad_sum(s);
  const double loss_one = m.run_microbatch(test::pack_sequences(seqs, n), s);
  std::vector<std::vector<float>> one;
  for (int u = 0; u < s.num_units(); ++u)
    one.emplace_back(m.grad_sum[static_cast<size_t>(u)],
                     m.grad_sum[static_cast<size_t>(u)] + s.unit_params(u));

  m.zero_grad_sum(s);
  const std::vector<std::vector<int32_t>> first(seqs.begin(), seqs.begin() + 2),
      second(seqs.begin() + 2, seqs.end());
  const double loss_two = m.run_microbatch(test::pack_sequences(first, n), s) +
                          m.run_microbatch(test::pack_sequences(second, n), s);
  EXPECT_NEAR(loss_one, loss_two, 1e-6 * loss_one);
  // fp32 tolerance: relative to the unit's largest gradient entry
  for (int u = 0; u < s.num_units(); ++u) {
    const auto i = static_cast<size_t>(u);
    float scale = 0;
    for (float g : one[i]) scale = std::max(scale, std::abs(g));
    ASSERT_GT(scale, 0.0f);
    for (int64_t j = 0; j < s.unit_params(u); ++j)
      ASSERT_NEAR(m.grad_sum[i][j], one[i][static_cast<size_t>(j)], 2e-5f * scale)
          << "unit " << u << " element " << j;
  }
}

TEST(KokkosBackend, InitIndependentOfShardBoundariesAndSharedRule) {
  const ModelShape s = small_shape();
  auto backend = make(s, true, 99);
  for (int u = 0; u < s.num_units(); ++u) {
    const int64_t n = s.unit_params(u);
    std::vector<float> whole(static_cast<size_t>(n) + 3), pieces(whole.size());
    backend->init_params(u, 0, n + 3, whole.data());  // 3 padding elements
    const int64_t cut = n / 3;
    backend->init_params(u, 0, cut, pieces.data());
    backend->init_params(u, cut, n + 3 - cut, pieces.data() + cut);
    EXPECT_EQ(whole, pieces);
    const UnitInit rule = unit_init(s, u, 99);
    for (int64_t j = 0; j < n; j += 7) EXPECT_EQ(whole[static_cast<size_t>(j)], rule.value(j));
    for (int j = 0; j < 3; ++j) EXPECT_EQ(whole[static_cast<size_t>(n + j)], 0.0f);
  }
  // norm weights are 1, matrices small and centred
  std::vector<float> block(static_cast<size_t>(s.unit_params(1)));
  backend->init_params(1, 0, s.unit_params(1), block.data());
  const BlockLayout lay(s);
  EXPECT_EQ(block[static_cast<size_t>(lay.attn_norm)], 1.0f);
  double sum = 0, sum_sq = 0;
  for (int64_t j = lay.wq; j < lay.wk; ++j) {
    sum += block[static_cast<size_t>(j)];
    sum_sq += block[static_cast<size_t>(j)] * block[static_cast<size_t>(j)];
  }
  const double count = static_cast<double>(lay.wk - lay.wq);
  EXPECT_NEAR(std::sqrt(sum_sq / count), 0.02, 0.002);
  EXPECT_NEAR(sum / count, 0.0, 0.002);
}

TEST(KokkosBackend, ShardMaths) {
  const ModelShape s = small_shape();
  auto backend = make(s, true);
  const int64_t n = 1001;
  auto* acc = static_cast<float*>(backend->allocate(n * 4));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(acc) % 64, 0u);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(acc[i], 0.0f);  // zero-filled
  std::vector<float> g(static_cast<size_t>(n)), p(g.size()), m(g.size(), 0.0f), v(g.size(), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    g[static_cast<size_t>(i)] = 0.001f * static_cast<float>(i - 500);
    p[static_cast<size_t>(i)] = 0.01f * static_cast<float>(i % 13);
  }
  backend->accumulate_grad(acc, g.data(), n);
  backend->accumulate_grad(acc, g.data(), n);
  double expect_sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(acc[i], 2.0f * g[static_cast<size_t>(i)]);
    expect_sq += double(acc[i]) * acc[i];
  }
  EXPECT_NEAR(backend->sum_squares(acc, n), expect_sq, 1e-9 * expect_sq);

  // AdamW against the formula in double, three steps
  AdamWParams hp;
  hp.lr = 0.01f;
  hp.weight_decay = 0.1f;
  std::vector<double> pd(p.begin(), p.end()), md(g.size(), 0.0), vd(g.size(), 0.0);
  const float grad_scale = 0.5f;
  for (int step = 1; step <= 3; ++step) {
    hp.step = step;
    backend->adamw(p.data(), m.data(), v.data(), acc, n, hp, grad_scale);
    for (size_t i = 0; i < pd.size(); ++i) {
      const double gi = double(acc[i]) * grad_scale;
      md[i] = hp.beta1 * md[i] + (1 - double(hp.beta1)) * gi;
      vd[i] = hp.beta2 * vd[i] + (1 - double(hp.beta2)) * gi * gi;
      const double mh = md[i] / (1 - std::pow(double(hp.beta1), step));
      const double vh = vd[i] / (1 - std::pow(double(hp.beta2), step));
      pd[i] -= hp.lr * (mh / (std::sqrt(vh) + hp.eps) + hp.weight_decay * pd[i]);
    }
  }
  for (size_t i = 0; i < pd.size(); ++i) ASSERT_NEAR(p[i], pd[i], 1e-6) << i;
  backend->fill_zero(acc, n * 4);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(acc[i], 0.0f);
  backend->deallocate(acc);
  EXPECT_EQ(backend->name(), "kokkos");
  EXPECT_EQ(backend->param_dtype(), DType::f32);
  EXPECT_EQ(backend->grad_dtype(), DType::f32);
}

TEST(KokkosBackend, SequenceLossesAreMeanTokenCrossEntropy) {
  const ModelShape s = small_shape();
  auto backend = make(s, true);
  Model m(*backend, s);
  const auto seqs = some_sequences(s.vocab);
  const int n = static_cast<int>(seqs.size());
  const double loss = m.run_microbatch(test::pack_sequences(seqs, n), s);
  const std::vector<double> per_seq = backend->sequence_losses();
  ASSERT_EQ(per_seq.size(), seqs.size());
  // loss weights 1/(L−1)/n make the microbatch loss the mean of the sequence means
  // (the length-1 sequence has no target and contributes 0)
  double mean = 0;
  for (double l : per_seq) mean += l / n;
  EXPECT_NEAR(loss, mean, 1e-6 * loss);
  // untrained: every sequence near log(vocab)
  for (size_t i = 0; i < seqs.size(); ++i)
    if (seqs[i].size() > 1) {
      EXPECT_NEAR(per_seq[i], std::log(double(s.vocab)), 0.3);
    }
}

// Training run: model layers 2, hidden 64, heads 4, kv_heads 2, ffn 128, vocab 128;
// 120 AdamW steps (lr 1e-2, β 0.9/0.95, no weight decay, gradient clipping at norm 1)
// on 8 Markov sequences of 96 tokens per step (workload/tokens.hpp: every token has 4
// likely successors), two microbatches per step, recompute on. Uniform guessing costs
// log(128) = 4.85 nats; the chain's entropy is token_stream_entropy(128) ≈ 2.1. The
// loss (mean over the step's sequences) must fall to at most half its first value.
TEST(KokkosTraining, MarkovLossHalves) {
  ModelShape s;
  s.layers = 2;
  s.hidden = 64;
  s.heads = 4;
  s.kv_heads = 2;
  s.ffn = 128;
  s.vocab = 128;
  auto backend = make(s, true, 3);
  Model m(*backend, s);
  std::vector<std::vector<float>> adam_m, adam_v;
  for (int u = 0; u < s.num_units(); ++u) {
    adam_m.emplace_back(static_cast<size_t>(s.unit_params(u)), 0.0f);
    adam_v.emplace_back(static_cast<size_t>(s.unit_params(u)), 0.0f);
  }
  AdamWParams hp;
  hp.lr = 1e-2f;
  hp.weight_decay = 0.0f;
  constexpr int kSteps = 120, kSequences = 8, kLength = 96;
  double first = 0, last = 0;
  for (int step = 0; step < kSteps; ++step) {
    std::vector<std::vector<int32_t>> seqs;
    for (int i = 0; i < kSequences; ++i)
      seqs.push_back(sequence_tokens(11, step, i, kLength, s.vocab));
    m.zero_grad_sum(s);
    const std::vector<std::vector<int32_t>> a(seqs.begin(), seqs.begin() + kSequences / 2),
        b(seqs.begin() + kSequences / 2, seqs.end());
    const double loss = m.run_microbatch(test::pack_sequences(a, kSequences), s) +
                        m.run_microbatch(test::pack_sequences(b, kSequences), s);
    double norm_sq = 0;
    for (int u = 0; u < s.num_units(); ++u)
      norm_sq += backend->sum_squares(m.grad_sum[static_cast<size_t>(u)], s.unit_params(u));
    const float clip = static_cast<float>(std::min(1.0, 1.0 / (std::sqrt(norm_sq) + 1e-12)));
    hp.step = step + 1;
    for (int u = 0; u < s.num_units(); ++u) {
      const auto i = static_cast<size_t>(u);
      backend->adamw(m.params[i], adam_m[i].data(), adam_v[i].data(), m.grad_sum[i],
                     s.unit_params(u), hp, clip);
    }
    if (step == 0) first = loss;
    last = loss;
    if (step % 20 == 0 || step == kSteps - 1)
      std::printf("[ training ] step %3d loss %.4f\n", step, loss);
  }
  EXPECT_NEAR(first, std::log(128.0), 0.2);
  EXPECT_LE(last, 0.5 * first) << "first " << first << " last " << last;
}

}  // namespace
}  // namespace minipt
