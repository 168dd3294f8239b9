// Times the Kokkos host transformer: forward / recompute / backward of every unit and a
// whole training step (all units + AdamW) on one packed microbatch, and splits the
// compute time into GEMMs, attention and the rest.
//
//   kokkos_step [--layers 2] [--hidden 128] [--heads 4] [--kv-heads 2] [--ffn 512]
//               [--vocab 512] [--tokens 4096] [--sequences 4] [--recompute 1]
//               [--repeats 5] [--portable]
//
// Before timing it checks that the loss is finite and near log(vocab) (the model
// starts untrained) and that one AdamW step on the gradients lowers the loss on the
// same batch. Output ends with one grep-able PERFORMANCE line and one FRACTION line.
#include <Kokkos_Core.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "compute/kokkos/gemm.hpp"
#include "compute/kokkos/kokkos_backend.hpp"
#include "compute/kokkos/transformer.hpp"
#include "model/init.hpp"
#include "model/shape.hpp"
#include "workload/tokens.hpp"

namespace {

using minipt::MicrobatchData;
using minipt::ModelShape;

// Thread CPU time: the machine may be shared, and the Serial space runs on this thread.
double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
double wall_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Options {
  ModelShape shape;
  int64_t tokens = 4096;
  int sequences = 4;
  bool recompute = true;
  int repeats = 5;
  bool portable = false;
};

Options parse(int argc, char** argv) {
  Options o;
  o.shape.layers = 2;
  o.shape.hidden = 128;
  o.shape.heads = 4;
  o.shape.kv_heads = 2;
  o.shape.ffn = 512;
  o.shape.vocab = 512;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> long {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value after %s\n", a.c_str());
        std::exit(2);
      }
      return std::atol(argv[++i]);
    };
    if (a == "--layers")
      o.shape.layers = static_cast<int>(next());
    else if (a == "--hidden")
      o.shape.hidden = static_cast<int>(next());
    else if (a == "--heads")
      o.shape.heads = static_cast<int>(next());
    else if (a == "--kv-heads")
      o.shape.kv_heads = static_cast<int>(next());
    else if (a == "--ffn")
      o.shape.ffn = static_cast<int>(next());
    else if (a == "--vocab")
      o.shape.vocab = static_cast<int>(next());
    else if (a == "--tokens")
      o.tokens = next();
    else if (a == "--sequences")
      o.sequences = static_cast<int>(next());
    else if (a == "--recompute")
      o.recompute = next() != 0;
    else if (a == "--repeats")
      o.repeats = static_cast<int>(next());
    else if (a == "--portable")
      o.portable = true;
    else if (a.rfind("--kokkos", 0) == 0)
      continue;  // Kokkos' own flags
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      std::exit(2);
    }
  }
  return o;
}

// Equal-length sequences (the last one takes the remainder) of Markov tokens.
MicrobatchData make_batch(const Options& o) {
  MicrobatchData mb;
  mb.cu_seqlens.push_back(0);
  const int64_t base = o.tokens / o.sequences;
  for (int s = 0; s < o.sequences; ++s) {
    const int64_t len = s + 1 < o.sequences ? base : o.tokens - base * (o.sequences - 1);
    const auto seq = minipt::sequence_tokens(1, 0, s, len, o.shape.vocab);
    for (int64_t i = 0; i < len; ++i) {
      mb.tokens.push_back(seq[static_cast<size_t>(i)]);
      mb.targets.push_back(i + 1 < len ? seq[static_cast<size_t>(i + 1)] : -1);
      mb.loss_weight.push_back(
          static_cast<float>(1.0 / static_cast<double>(len - 1) / o.sequences));
    }
    mb.cu_seqlens.push_back(static_cast<int32_t>(mb.tokens.size()));
  }
  return mb;
}

struct UnitTimes {
  std::vector<double> forward, recompute, backward;
  double optimizer = 0, step = 0, step_wall = 0;
};

int run(const Options& o) {
  const ModelShape& s = o.shape;
  if (o.portable) minipt::kokkos::set_vector_kernels_enabled(false);
  minipt::ComputeOptions copt;
  copt.backend = "kokkos";
  copt.recompute = o.recompute;
  auto backend = minipt::make_kokkos_backend(copt, s, 0);
  minipt::kokkos::Transformer<float> model(s, o.recompute);

  const int units = s.num_units();
  std::vector<std::vector<float>> params(static_cast<size_t>(units)), grads(params.size()),
      m(params.size()), v(params.size());
  for (int u = 0; u < units; ++u) {
    const auto n = static_cast<size_t>(s.unit_params(u));
    params[static_cast<size_t>(u)].resize(n);
    backend->init_params(u, 0, static_cast<int64_t>(n), params[static_cast<size_t>(u)].data());
    grads[static_cast<size_t>(u)].resize(n);
    m[static_cast<size_t>(u)].assign(n, 0.0f);
    v[static_cast<size_t>(u)].assign(n, 0.0f);
  }
  const MicrobatchData mb = make_batch(o);

  UnitTimes t;
  t.forward.assign(static_cast<size_t>(units), 1e30);
  t.recompute.assign(static_cast<size_t>(units), 1e30);
  t.backward.assign(static_cast<size_t>(units), 1e30);
  t.optimizer = t.step = 1e30;
  minipt::kokkos::ComputeProfile best_profile;
  double first_loss = 0, loss_after_update = 0;
  minipt::AdamWParams adam;
  adam.lr = 1e-3f;
  // repeat 0 is the warm-up and the check; the fastest of the rest is reported
  for (int rep = 0; rep <= o.repeats; ++rep) {
    // timed repeats restore the parameters afterwards so every repeat does the same work
    std::vector<std::vector<float>> before;
    if (rep > 0) before = params;
    model.profile() = {};
    model.profile().thread_cpu_clock = true;
    const double step_start = now_s();
    const double step_start_wall = wall_s();
    model.begin_microbatch(mb);
    for (int u = 0; u < units; ++u) {
      const double a = now_s();
      model.forward(u, params[static_cast<size_t>(u)].data());
      t.forward[static_cast<size_t>(u)] = std::min(t.forward[static_cast<size_t>(u)], now_s() - a);
    }
    const double loss = model.loss();
    for (int u = units - 1; u >= 0; --u) {
      const auto i = static_cast<size_t>(u);
      if (model.recompute_needed(u)) {
        const double a = now_s();
        model.recompute(u, params[i].data());
        t.recompute[i] = std::min(t.recompute[i], now_s() - a);
      }
      const double a = now_s();
      model.backward(u, params[i].data(), grads[i].data());
      t.backward[i] = std::min(t.backward[i], now_s() - a);
    }
    const double a = now_s();
    for (int u = 0; u < units; ++u) {
      const auto i = static_cast<size_t>(u);
      backend->adamw(params[i].data(), m[i].data(), v[i].data(), grads[i].data(),
                     static_cast<int64_t>(params[i].size()), adam, 1.0f);
    }
    const double optimizer = now_s() - a;
    const double step = now_s() - step_start;
    const double step_wall = wall_s() - step_start_wall;
    if (rep == 0) {
      first_loss = loss;
      for (auto& x : m) std::fill(x.begin(), x.end(), 0.0f);
      for (auto& x : v) std::fill(x.begin(), x.end(), 0.0f);
      model.begin_microbatch(mb);
      for (int u = 0; u < units; ++u) model.forward(u, params[static_cast<size_t>(u)].data());
      loss_after_update = model.loss();
    } else {
      params = std::move(before);
      t.optimizer = std::min(t.optimizer, optimizer);
      if (step < t.step) {
        t.step = step;
        t.step_wall = step_wall;
        best_profile = model.profile();
      }
    }
  }
  const double log_vocab = std::log(static_cast<double>(s.vocab));
  const bool ok = std::isfinite(first_loss) && std::abs(first_loss - log_vocab) < 0.5 &&
                  loss_after_update < first_loss;

  const double sum_sq = mb.sum_sq();
  const double gemm_flops =
      6.0 * static_cast<double>(s.matmul_params()) * static_cast<double>(o.tokens) +
      (o.recompute ? 2.0 * static_cast<double>(s.matmul_params() - int64_t{s.vocab} * s.hidden) *
                         static_cast<double>(o.tokens)
                   : 0.0) +
      2.0 * s.vocab * s.hidden * static_cast<double>(o.tokens);  // LM head rebuilt in backward
  const double attention_flops = (o.recompute ? 4.0 : 3.0) * 2.0 * s.hidden * s.layers * sum_sq;

  std::printf(
      "# kokkos_step: layers=%d hidden=%d heads=%d kv_heads=%d ffn=%d vocab=%d params=%lld\n",
      s.layers, s.hidden, s.heads, s.kv_heads, s.ffn, s.vocab,
      static_cast<long long>(s.total_params()));
  std::printf(
      "# tokens=%lld sequences=%d recompute=%d kernels=%s exec=%s repeats=%d (min of), times: "
      "thread CPU\n",
      static_cast<long long>(o.tokens), o.sequences, o.recompute ? 1 : 0,
      minipt::kokkos::vector_kernels_enabled() ? "avx2+fma" : "portable",
      Kokkos::DefaultHostExecutionSpace::name(), o.repeats);
  std::printf("# check: loss %.4f (log vocab %.4f), after one AdamW step %.4f -> %s\n", first_loss,
              log_vocab, loss_after_update, ok ? "ok" : "WRONG");
  std::printf("%-6s %12s %12s %12s\n", "unit", "forward_ms", "recompute_ms", "backward_ms");
  for (int u = 0; u < units; ++u) {
    const auto i = static_cast<size_t>(u);
    const std::string name = s.is_embedding(u) ? "embed"
                             : s.is_head(u)    ? "head"
                                               : "block" + std::to_string(u);
    std::printf("%-6s %12.2f %12.2f %12.2f\n", name.c_str(), 1e3 * t.forward[i],
                t.recompute[i] < 1e29 ? 1e3 * t.recompute[i] : 0.0, 1e3 * t.backward[i]);
  }
  const double gemm_s = 1e-9 * static_cast<double>(best_profile.gemm_ns);
  const double attn_s = 1e-9 * static_cast<double>(best_profile.attention_ns);
  const double other_s = 1e-9 * static_cast<double>(best_profile.other_ns);
  const double rest_s = std::max(0.0, t.step - gemm_s - attn_s - other_s);
  std::printf("gemm      %8.2f ms  %7.2f GFLOP  %6.1f GFLOP/s\n", 1e3 * gemm_s, 1e-9 * gemm_flops,
              1e-9 * gemm_flops / gemm_s);
  std::printf(
      "attention %8.2f ms  %7.2f GFLOP  %6.1f GFLOP/s (model count: causal half, bwd = 2x fwd)\n",
      1e3 * attn_s, 1e-9 * attention_flops, 1e-9 * attention_flops / attn_s);
  std::printf("other     %8.2f ms  (norms, RoPE, SwiGLU, cross-entropy, embedding, copies)\n",
              1e3 * other_s);
  std::printf("optimizer %8.2f ms  (AdamW over %lld parameters)\n", 1e3 * t.optimizer,
              static_cast<long long>(s.total_params()));
  std::printf("step      %8.2f ms  %.0f tokens/s  (thread CPU time; wall %.2f ms)\n", 1e3 * t.step,
              static_cast<double>(o.tokens) / t.step, 1e3 * t.step_wall);
  std::printf(
      "PERFORMANCE step_ms=%.2f tokens_per_s=%.0f gemm_gflops=%.1f attention_gflops=%.1f "
      "check=%s\n",
      1e3 * t.step, static_cast<double>(o.tokens) / t.step, 1e-9 * gemm_flops / gemm_s,
      1e-9 * attention_flops / attn_s, ok ? "ok" : "WRONG");
  std::printf("FRACTION gemm=%.3f attention=%.3f other=%.3f optimizer+untimed=%.3f\n",
              gemm_s / t.step, attn_s / t.step, other_s / t.step, rest_s / t.step);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  minipt::kokkos_initialize(argc, argv);
  int rc = 0;
  {
    const Options o = parse(argc, argv);
    rc = run(o);
  }
  minipt::kokkos_finalize();
  return rc;
}
