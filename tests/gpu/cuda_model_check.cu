// Trains the tiny model (ModelShape defaults: 2 layers, hidden 128, 4 heads, 2 KV heads,
// ffn 256, vocab 512) for 3 AdamW steps of 2 packed microbatches on the CUDA backend,
// through the ComputeBackend interface exactly as the trainer drives it, and
//  - checks on its own: init_params equals the host evaluation of model/init.hpp bit for
//    bit; recompute on, off and for the first half of the blocks (and "auto") give the
//    same losses and gradients; the per-sequence
//    losses add up to the microbatch loss;
//  - writes everything to a directory for tests/gpu/torch_reference.py, which recomputes
//    the losses, gradients and parameters in float64 with PyTorch and compares.
// Usage: cuda_model_check [dump_dir]
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "compute/cuda/attention_cudnn.hpp"
#include "compute/cuda/cuda_backend.hpp"
#include "gpu_check.hpp"
#include "model/init.hpp"

using namespace minipt;

namespace {

constexpr int kSteps = 3;
constexpr uint64_t kSeed = 7;

struct RunResult {
  std::vector<double> losses;                                  // per step
  std::vector<double> seq_losses;                              // step 1, every sequence in order
  std::vector<std::vector<float>> init, grads1, final_params;  // per unit
};

std::vector<MicrobatchData> make_microbatches(const ModelShape& s) {
  const std::vector<std::vector<int>> lengths{{37, 100, 5}, {64, 129}};
  int nseq = 0;
  for (const auto& l : lengths) nseq += static_cast<int>(l.size());
  uint64_t state = 12345;
  std::vector<MicrobatchData> out;
  for (const auto& ls : lengths) {
    MicrobatchData mb;
    mb.cu_seqlens.push_back(0);
    for (int len : ls) {
      for (int i = 0; i < len; ++i) {
        state = splitmix64(state);
        mb.tokens.push_back(static_cast<int32_t>(state % static_cast<uint64_t>(s.vocab)));
      }
      mb.cu_seqlens.push_back(mb.cu_seqlens.back() + len);
    }
    for (size_t q = 0; q + 1 < mb.cu_seqlens.size(); ++q) {
      const int b = mb.cu_seqlens[q], e = mb.cu_seqlens[q + 1];
      for (int i = b; i < e; ++i) {
        const bool last = i == e - 1;
        mb.targets.push_back(last ? -1 : mb.tokens[static_cast<size_t>(i + 1)]);
        mb.loss_weight.push_back(last ? 0.f : 1.f / static_cast<float>((e - b - 1) * nseq));
      }
    }
    out.push_back(std::move(mb));
  }
  return out;
}

RunResult train(const ModelShape& shape, Recompute recompute,
                const std::vector<MicrobatchData>& mbs, const AdamWParams& adam_base,
                const std::string& attention) {
  ComputeOptions opt;
  opt.backend = "cuda";
  opt.recompute = recompute;
  opt.attention = attention_kernels(attention);
  opt.seed = kSeed;
  auto be = make_cuda_backend(opt, shape, 0, 0);
  const int U = shape.num_units();
  std::vector<float*> master(U), m(U), v(U), acc(U), grad(U);
  std::vector<void*> work(U);
  RunResult r;
  for (int u = 0; u < U; ++u) {
    const int64_t n = shape.unit_params(u);
    master[u] = static_cast<float*>(be->allocate(n * 4));
    m[u] = static_cast<float*>(be->allocate(n * 4));
    v[u] = static_cast<float*>(be->allocate(n * 4));
    acc[u] = static_cast<float*>(be->allocate(n * 4));
    grad[u] = static_cast<float*>(be->allocate(n * 4));
    work[u] = be->allocate(n * 2);
    be->init_params(u, 0, n, master[u]);
    be->cast_params(master[u], work[u], n);
    r.init.emplace_back(static_cast<size_t>(n));
    be->copy_to_host(r.init.back().data(), master[u], n * 4);
  }
  for (int step = 1; step <= kSteps; ++step) {
    for (int u = 0; u < U; ++u) be->fill_zero(acc[u], shape.unit_params(u) * 4);
    double loss = 0;
    for (const auto& mb : mbs) {
      be->begin_microbatch(mb);
      for (int u = 0; u < U; ++u) be->forward(u, work[u]);
      for (int u = U - 1; u >= 0; --u) {
        if (be->recompute_needed(u)) be->recompute(u, work[u]);
        be->backward(u, work[u], grad[u]);
        be->accumulate_grad(acc[u], grad[u], shape.unit_params(u));
      }
      loss += be->end_microbatch();
      if (step == 1) {
        for (double s : be->sequence_losses()) r.seq_losses.push_back(s);
      }
    }
    r.losses.push_back(loss);
    if (step == 1) {
      for (int u = 0; u < U; ++u) {
        r.grads1.emplace_back(static_cast<size_t>(shape.unit_params(u)));
        be->copy_to_host(r.grads1.back().data(), acc[u], shape.unit_params(u) * 4);
      }
    }
    AdamWParams p = adam_base;
    p.step = step;
    for (int u = 0; u < U; ++u) {
      be->adamw(master[u], m[u], v[u], acc[u], shape.unit_params(u), p, 1.0f);
      be->cast_params(master[u], work[u], shape.unit_params(u));
    }
  }
  for (int u = 0; u < U; ++u) {
    r.final_params.emplace_back(static_cast<size_t>(shape.unit_params(u)));
    be->copy_to_host(r.final_params.back().data(), master[u], shape.unit_params(u) * 4);
    for (void* p :
         {static_cast<void*>(master[u]), static_cast<void*>(m[u]), static_cast<void*>(v[u]),
          static_cast<void*>(acc[u]), static_cast<void*>(grad[u]), work[u]})
      be->deallocate(p);
  }
  return r;
}

template <typename T>
void write_array(const std::string& path, const std::vector<T>& v) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()),
          static_cast<std::streamsize>(v.size() * sizeof(T)));
  if (!f) throw std::runtime_error("cannot write " + path);
}

}  // namespace

int main(int argc, char** argv) {
  if (!gpu_check::have_device()) {
    std::printf("no CUDA device: skipped\n");
    return gpu_check::kSkip;
  }
  const ModelShape shape;  // the defaults: the tiny model
  const auto mbs = make_microbatches(shape);
  AdamWParams adam;
  adam.lr = 1e-3f;
  adam.weight_decay = 0.1f;
  // MINIPT_TEST_ATTENTION (auto | own | cudnn) picks the attention kernels of the run
  // that is checked and dumped; where cuDNN is built in, the other kernel set must agree.
  const char* env = std::getenv("MINIPT_TEST_ATTENTION");
  const std::string attention = env != nullptr ? env : "auto";
  const bool have_cudnn = minipt::cuda::CudnnAttention::available();
  const bool uses_cudnn = attention == "cudnn" || (attention == "auto" && have_cudnn);
  std::printf("attention kernels: %s\n", uses_cudnn ? "cudnn" : "own");
  const RunResult a = train(shape, true, mbs, adam, attention);
  const RunResult b = train(shape, false, mbs, adam, attention);
  // Some blocks recompute, the others keep theirs: "auto" on a small model keeps all.
  const RunResult half = train(shape, Recompute::first(shape.layers / 2), mbs, adam, attention);
  const RunResult automatic = train(shape, Recompute::automatic(), mbs, adam, attention);
  gpu_check::Tally tally;
  if (have_cudnn) {
    // Both are bf16 attention with fp32 accumulation: the tolerances of the float64
    // PyTorch comparison (src/compute/cuda/NOTES.md).
    const RunResult c = train(shape, true, mbs, adam, uses_cudnn ? "own" : "cudnn");
    tally.below("own vs cudnn attention: step losses rel L2", gpu_check::rel_l2(a.losses, c.losses),
                5e-3);
    for (int u = 0; u < shape.num_units(); ++u) {
      const std::string what = "own vs cudnn attention: step-1 grads unit " + std::to_string(u);
      tally.below(what.c_str(), gpu_check::rel_l2(a.grads1[u], c.grads1[u]), 5e-2);
    }
  }

  // init_params == host formula, bit for bit.
  int64_t mismatches = 0;
  for (int u = 0; u < shape.num_units(); ++u) {
    const UnitInit rule = unit_init(shape, u, kSeed);
    for (size_t i = 0; i < a.init[u].size(); ++i) {
      if (a.init[u][i] != rule.value(static_cast<int64_t>(i))) ++mismatches;
    }
  }
  tally.check(mismatches == 0, "init_params vs host model/init.hpp (mismatches)",
              static_cast<double>(mismatches), 0);
  tally.below("recompute on/off: step losses rel L2", gpu_check::rel_l2(a.losses, b.losses), 1e-5);
  tally.below("recompute first half/all: step losses rel L2",
              gpu_check::rel_l2(a.losses, half.losses), 1e-5);
  tally.below("recompute auto/all: step losses rel L2",
              gpu_check::rel_l2(a.losses, automatic.losses), 1e-5);
  for (int u = 0; u < shape.num_units(); ++u) {
    const std::string what = "recompute first half/all: step-1 grads unit " + std::to_string(u);
    tally.below(what.c_str(), gpu_check::rel_l2(a.grads1[u], half.grads1[u]), 1e-4);
  }
  for (int u = 0; u < shape.num_units(); ++u) {
    const std::string what = "recompute on/off: step-1 grads unit " + std::to_string(u);
    tally.below(what.c_str(), gpu_check::rel_l2(a.grads1[u], b.grads1[u]), 1e-4);
  }
  // Σ over sequences of mean CE / nseq must equal the weighted microbatch sum.
  double from_seqs = 0;
  for (double s : a.seq_losses) from_seqs += s / static_cast<double>(a.seq_losses.size());
  tally.below("sequence losses vs step-1 loss (abs)", std::abs(from_seqs - a.losses[0]), 1e-4);
  const double uniform = std::log(static_cast<double>(shape.vocab));
  tally.below("step-1 loss vs ln(vocab) (abs)", std::abs(a.losses[0] - uniform), 0.1);
  tally.check(a.losses[2] < a.losses[0], "loss decreases over 3 steps (step-3 loss)", a.losses[2],
              a.losses[0]);
  std::printf("losses:");
  for (double l : a.losses) std::printf(" %.6f", l);
  std::printf("\n");

  if (argc > 1) {
    const std::string dir = argv[1];
    std::ofstream meta(dir + "/meta.txt");
    meta << "layers " << shape.layers << "\nhidden " << shape.hidden << "\nheads " << shape.heads
         << "\nkv_heads " << shape.kv_heads << "\nffn " << shape.ffn << "\nvocab " << shape.vocab
         << "\nrope_theta " << shape.rope_theta << "\nnorm_eps " << shape.norm_eps << "\nsteps "
         << kSteps << "\nmicrobatches " << mbs.size() << "\nlr " << adam.lr << "\nbeta1 "
         << adam.beta1 << "\nbeta2 " << adam.beta2 << "\neps " << adam.eps << "\nweight_decay "
         << adam.weight_decay << "\n";
    for (size_t k = 0; k < mbs.size(); ++k) {
      const std::string p = dir + "/mb" + std::to_string(k) + "_";
      write_array(p + "tokens.i32", mbs[k].tokens);
      write_array(p + "targets.i32", mbs[k].targets);
      write_array(p + "weights.f32", mbs[k].loss_weight);
      write_array(p + "cu.i32", mbs[k].cu_seqlens);
    }
    write_array(dir + "/losses.f64", a.losses);
    write_array(dir + "/seq_losses.f64", a.seq_losses);
    for (int u = 0; u < shape.num_units(); ++u) {
      write_array(dir + "/init_u" + std::to_string(u) + ".f32", a.init[u]);
      write_array(dir + "/grad_u" + std::to_string(u) + ".f32", a.grads1[u]);
      write_array(dir + "/final_u" + std::to_string(u) + ".f32", a.final_params[u]);
    }
    std::printf("dump written to %s\n", dir.c_str());
  }
  std::printf("%s: %d failure(s)\n", tally.failures ? "FAILED" : "PASSED", tally.failures);
  return tally.failures ? 1 : 0;
}
