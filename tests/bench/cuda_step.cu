// Benchmarks of the CUDA backend on the Qwen2.5-1.5B shape (28 layers, hidden 1536, 12
// heads, 2 KV heads, ffn 8960, vocab 151936), one GPU:
//
//   cuda_step step FILE LABEL [--steps N] [--recompute true|false|N|auto] [--peak TFLOPS]
//             [--attention auto|own|cudnn]
//     A training step = every packed microbatch of FILE (one line per microbatch, its
//     sequence lengths) through forward, recompute + backward, gradient accumulation
//     into fp32 shard gradients, then grad-norm, AdamW and the bf16 cast: exactly the
//     calls the trainer makes with world size 1. One warm-up step, then N timed steps.
//     Prints tokens/s, MFU = ModelShape::train_flops / time / peak (causal attention FLOPs
//     halved) and mfu_full with attention counted in full (12·hidden·layers·ΣL², the
//     torchtitan / llm-foundry convention), peak memory and the blocks that recompute
//     (--recompute as model.recompute; default true). The PERFORMANCE line names the
//     attention kernels: "cuda" (own) or "cuda-cudnn". Every microbatch shape is prepared
//     (cuDNN graphs, activation memory) before the warm-up step, as the trainer does.
//   cuda_step attention FILE
//     The attention kernels alone (12 heads, 2 KV heads, head_dim 128) on each
//     microbatch of FILE, own kernels (both backward variants) and cuDNN's fused
//     attention where built in: forward and backward TFLOP/s (causal FLOPs: forward
//     4·D·heads·Σ L(L+1)/2, backward 2.5× forward), medians of 5 runs, timed with events
//     (cuDNN's graph is built in a first, untimed call).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "compute/cuda/attention.hpp"
#include "compute/cuda/attention_cudnn.hpp"
#include "compute/cuda/cuda_backend.hpp"
#include "compute/cuda/cuda_check.hpp"
#include "model/init.hpp"

using namespace minipt;

namespace {

ModelShape qwen_1p5b() { return ModelShape::qwen2_5_1_5b(); }

std::vector<std::vector<int>> read_lengths(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::vector<std::vector<int>> out;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream is(line);
    std::vector<int> v;
    int x = 0;
    while (is >> x) v.push_back(x);
    if (!v.empty()) out.push_back(v);
  }
  return out;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

MicrobatchData make_microbatch(const std::vector<int>& lengths, int vocab, uint64_t seed) {
  MicrobatchData mb;
  mb.cu_seqlens.push_back(0);
  uint64_t state = seed;
  for (int len : lengths) {
    for (int i = 0; i < len; ++i) {
      state = splitmix64(state);
      mb.tokens.push_back(static_cast<int32_t>(state % static_cast<uint64_t>(vocab)));
    }
    mb.cu_seqlens.push_back(mb.cu_seqlens.back() + len);
  }
  const float nseq = static_cast<float>(lengths.size());
  for (size_t q = 0; q + 1 < mb.cu_seqlens.size(); ++q) {
    const int b = mb.cu_seqlens[q], e = mb.cu_seqlens[q + 1];
    for (int i = b; i < e; ++i) {
      const bool last = i == e - 1;
      mb.targets.push_back(last ? -1 : mb.tokens[static_cast<size_t>(i + 1)]);
      mb.loss_weight.push_back(last || e - b < 2 ? 0.f
                                                 : 1.f / static_cast<float>(e - b - 1) / nseq);
    }
  }
  return mb;
}

double sum_sq(const std::vector<int>& lengths) {
  double s = 0;
  for (int l : lengths) s += static_cast<double>(l) * l;
  return s;
}

int run_step(const std::string& file, const std::string& label, int steps, Recompute recompute,
             double peak_tflops, const std::string& attention) {
  const ModelShape shape = qwen_1p5b();
  const auto batches = read_lengths(file);
  ComputeOptions opt;
  opt.backend = "cuda";
  opt.recompute = recompute;
  opt.attention = attention_kernels(attention);
  auto be = make_cuda_backend(opt, shape, 0, 0);
  const std::string impl =
      be->device_name().find("cudnn attention") != std::string::npos ? "cuda-cudnn" : "cuda";
  const int U = shape.num_units();
  std::vector<float*> master(U), m(U), v(U), acc(U);
  std::vector<void*> work(U);
  int64_t max_unit = 0;
  for (int u = 0; u < U; ++u) {
    const int64_t n = shape.unit_params(u);
    max_unit = std::max(max_unit, n);
    master[u] = static_cast<float*>(be->allocate(n * 4));
    m[u] = static_cast<float*>(be->allocate(n * 4));
    v[u] = static_cast<float*>(be->allocate(n * 4));
    acc[u] = static_cast<float*>(be->allocate(n * 4));
    work[u] = be->allocate(n * 2);
    be->init_params(u, 0, n, master[u]);
    be->cast_params(master[u], work[u], n);
  }
  void* grad = be->allocate(max_unit * 4);
  std::vector<MicrobatchData> mbs;
  int64_t tokens = 0;
  double ssq = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    mbs.push_back(make_microbatch(batches[i], shape.vocab, 1000 + i));
    tokens += mbs.back().num_tokens();
    ssq += sum_sq(batches[i]);
  }
  const double flops = shape.train_flops(tokens, ssq);
  const double flops_full = flops + 6.0 * shape.hidden * shape.layers * ssq;
  for (const auto& mb : mbs) be->prepare_microbatch_shape(mb.cu_seqlens);
  std::printf(
      "[cuda %s] device %s, %zu microbatches, %lld tokens/step, recompute %s (%d of %d blocks), "
      "params %.3fB, train FLOPs/step %.3e (attention share %.1f%%)\n",
      label.c_str(), be->device_name().c_str(), mbs.size(), static_cast<long long>(tokens),
      recompute.text(shape.layers).c_str(), be->recomputed_blocks(), shape.layers,
      shape.total_params() / 1e9, flops, 100.0 * 6.0 * shape.hidden * shape.layers * ssq / flops);
  TimeSource& ts = be->time_source();
  double best = 1e30, total_time = 0, fwd_t = 0, bwd_t = 0, opt_t = 0;
  double loss = 0;
  for (int step = 0; step <= steps; ++step) {
    ts.synchronize();
    const double t0 = now_s();
    double tf = 0, tb = 0;
    for (int u = 0; u < U; ++u) be->fill_zero(acc[u], shape.unit_params(u) * 4);
    loss = 0;
    for (const auto& mb : mbs) {
      be->begin_microbatch(mb);
      ts.synchronize();
      const double a = now_s();
      for (int u = 0; u < U; ++u) be->forward(u, work[u]);
      ts.synchronize();
      const double b = now_s();
      for (int u = U - 1; u >= 0; --u) {
        if (be->recompute_needed(u)) be->recompute(u, work[u]);
        be->backward(u, work[u], grad);
        be->accumulate_grad(acc[u], grad, shape.unit_params(u));
      }
      loss += be->end_microbatch();
      const double c = now_s();
      tf += b - a;
      tb += c - b;
    }
    const double o0 = now_s();
    double norm2 = 0;
    for (int u = 0; u < U; ++u) norm2 += be->sum_squares(acc[u], shape.unit_params(u));
    const float scale = static_cast<float>(std::min(1.0, 1.0 / (std::sqrt(norm2) + 1e-6)));
    AdamWParams p;
    p.step = step + 1;
    for (int u = 0; u < U; ++u) {
      be->adamw(master[u], m[u], v[u], acc[u], shape.unit_params(u), p, scale);
      be->cast_params(master[u], work[u], shape.unit_params(u));
    }
    ts.synchronize();
    const double t1 = now_s();
    const double dt = t1 - t0;
    std::printf(
        "[cuda %s] step %d%s: %.3f s, loss %.4f, grad norm %.3f, %.0f tokens/s, MFU %.1f%%\n",
        label.c_str(), step, step == 0 ? " (warm-up)" : "", dt, loss, std::sqrt(norm2), tokens / dt,
        100.0 * flops / dt / (peak_tflops * 1e12));
    if (step > 0) {
      best = std::min(best, dt);
      total_time += dt;
      fwd_t += tf;
      bwd_t += tb;
      opt_t += t1 - o0;
    }
  }
  size_t free_b = 0, total_b = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  const double mean = total_time / steps;
  std::printf(
      "PERFORMANCE %s %s tokens_per_s %.0f mfu %.4f step_s %.4f tokens %lld "
      "peak_tflops %.0f mem_used_gib %.2f loss %.4f mfu_full %.4f recompute %d\n",
      impl.c_str(), label.c_str(), tokens / mean, flops / mean / (peak_tflops * 1e12), mean,
      static_cast<long long>(tokens), peak_tflops,
      static_cast<double>(
          std::max<int64_t>(be->peak_memory_bytes(), static_cast<int64_t>(total_b - free_b))) /
          (1ull << 30),
      loss, flops_full / mean / (peak_tflops * 1e12), be->recomputed_blocks());
  std::printf("FRACTION %s %s forward %.3f backward+recompute %.3f optimizer %.3f\n", impl.c_str(),
              label.c_str(), fwd_t / total_time, bwd_t / total_time, opt_t / total_time);
  for (int u = 0; u < U; ++u) {
    for (void* q : {static_cast<void*>(master[u]), static_cast<void*>(m[u]),
                    static_cast<void*>(v[u]), static_cast<void*>(acc[u]), work[u]})
      be->deallocate(q);
  }
  be->deallocate(grad);
  return 0;
}

// Medians of 5 timed (forward, backward) pairs after one untimed pair, in ms, timed with
// events on the default stream.
std::pair<double, double> time_attention(const std::function<void()>& fwd,
                                         const std::function<void()>& bwd) {
  cudaEvent_t e[3];
  for (auto& x : e) CUDA_CHECK(cudaEventCreate(&x));
  std::vector<float> tf, tb;
  for (int rep = 0; rep < 6; ++rep) {
    CUDA_CHECK(cudaEventRecord(e[0]));
    fwd();
    CUDA_CHECK(cudaEventRecord(e[1]));
    bwd();
    CUDA_CHECK(cudaEventRecord(e[2]));
    CUDA_CHECK(cudaEventSynchronize(e[2]));
    float f = 0, b = 0;
    CUDA_CHECK(cudaEventElapsedTime(&f, e[0], e[1]));
    CUDA_CHECK(cudaEventElapsedTime(&b, e[1], e[2]));
    if (rep > 0) {
      tf.push_back(f);
      tb.push_back(b);
    }
  }
  for (auto& x : e) CUDA_CHECK(cudaEventDestroy(x));
  std::sort(tf.begin(), tf.end());
  std::sort(tb.begin(), tb.end());
  return {tf[tf.size() / 2], tb[tb.size() / 2]};
}

int run_attention(const std::string& file) {
  const int heads = 12, kv_heads = 2, D = 128;
  const auto batches = read_lengths(file);
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (const auto& lengths : batches) {
    std::vector<int32_t> cu{0};
    double causal_pairs = 0;
    for (int l : lengths) {
      cu.push_back(cu.back() + l);
      causal_pairs += static_cast<double>(l) * (l + 1) / 2;
    }
    const int T = cu.back();
    const int64_t ld = (heads + 2 * kv_heads) * D, ld_o = heads * D;
    const int64_t stat = cuda::attention_stat_ld(T);
    std::vector<__nv_bfloat16> host(static_cast<size_t>(T * ld));
    for (auto& x : host) x = __float2bfloat16_rn(normal(rng));
    __nv_bfloat16 *qkv, *grad, *o, *d_o;
    float *lse, *dot, *acc;
    int32_t *items, *dcu;
    CUDA_CHECK(cudaMalloc(&qkv, T * ld * 2));
    CUDA_CHECK(cudaMalloc(&grad, T * ld * 2));
    CUDA_CHECK(cudaMalloc(&o, T * ld_o * 2));
    CUDA_CHECK(cudaMalloc(&d_o, T * ld_o * 2));
    CUDA_CHECK(cudaMalloc(&lse, heads * stat * 4));
    CUDA_CHECK(cudaMalloc(&dot, heads * stat * 4));
    CUDA_CHECK(cudaMalloc(&acc, T * ld_o * 4));
    CUDA_CHECK(cudaMemcpy(qkv, host.data(), T * ld * 2, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_o, host.data(), T * ld_o * 2, cudaMemcpyHostToDevice));
    // Room for the largest work list (the 64-key backward variant), then cu_seqlens.
    const size_t max_items = 2 * (static_cast<size_t>(T) / 64 + 2 * lengths.size() + 2) * 2;
    CUDA_CHECK(cudaMalloc(&items, (max_items + cu.size()) * 4));
    dcu = items + max_items;
    CUDA_CHECK(cudaMemcpy(dcu, cu.data(), cu.size() * 4, cudaMemcpyHostToDevice));
    cuda::AttentionArgs a;
    a.q = qkv;
    a.k = qkv + heads * D;
    a.v = qkv + (heads + kv_heads) * D;
    a.ld_qkv = ld;
    a.o = o;
    a.ld_o = ld_o;
    a.lse2 = lse;
    a.stat_ld = stat;
    a.cu_seqlens = dcu;
    a.num_tokens = T;
    a.heads = heads;
    a.kv_heads = kv_heads;
    a.head_dim = D;
    cuda::AttentionGradArgs g;
    g.d_o = d_o;
    g.row_dot = dot;
    g.dq_accum = acc;
    g.dq = grad;
    g.dk = grad + heads * D;
    g.dv = grad + (heads + kv_heads) * D;
    const double fwd_flops = 4.0 * D * heads * causal_pairs;
    auto report = [&](const char* impl, std::pair<double, double> t, const std::string& extra) {
      std::printf(
          "ATTENTION %s tokens %d seqs %zu fwd_ms %.3f fwd_tflops %.1f bwd_ms %.3f "
          "bwd_tflops %.1f%s\n",
          impl, T, lengths.size(), t.first, fwd_flops / t.first / 1e9, t.second,
          2.5 * fwd_flops / t.second / 1e9, extra.c_str());
    };
    for (int variant : {2, 1}) {
      cuda::set_attention_backward_variant(variant);
      const auto work = cuda::plan_attention_work(cu);
      std::vector<int32_t> all = work.forward;
      all.insert(all.end(), work.backward.begin(), work.backward.end());
      CUDA_CHECK(cudaMemcpy(items, all.data(), all.size() * 4, cudaMemcpyHostToDevice));
      const auto t = time_attention(
          [&] {
            cuda::attention_forward(a, items, static_cast<int>(work.forward.size() / 2), nullptr);
          },
          [&] {
            cuda::attention_backward(a, g, items + work.forward.size(),
                                     static_cast<int>(work.backward.size() / 2), nullptr);
          });
      report(variant == 2 ? "cuda" : "cuda-bwd-v1", t, "");
    }
    cuda::set_attention_backward_variant(2);
    if (cuda::CudnnAttention::available()) {
      cuda::CudnnAttention cudnn(heads, kv_heads, D);
      cudnn.set_sequences(cu, ld, ld_o, nullptr);
      const auto t = time_attention([&] { cudnn.forward(a, nullptr); },
                                    [&] { cudnn.backward(a, g, nullptr); });
      char extra[64];
      std::snprintf(extra, sizeof(extra), " graph_build_s %.2f", cudnn.build_seconds());
      report("cudnn", t, extra);
    }
    for (void* p : {static_cast<void*>(qkv), static_cast<void*>(grad), static_cast<void*>(o),
                    static_cast<void*>(d_o), static_cast<void*>(lse), static_cast<void*>(dot),
                    static_cast<void*>(acc), static_cast<void*>(items)})
      CUDA_CHECK(cudaFree(p));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: cuda_step step FILE LABEL [--steps N] [--recompute true|false|N|auto] "
                 "[--peak T] "
                 "[--attention auto|own|cudnn]\n"
                 "       cuda_step attention FILE\n");
    return 2;
  }
  if (cuda_device_count() == 0) {
    std::printf("no CUDA device: skipped\n");
    return 77;
  }
  try {
    const std::string mode = argv[1];
    if (mode == "attention") return run_attention(argv[2]);
    int steps = 2;
    Recompute recompute = true;
    double peak = 989.0;
    std::string attention = "auto";
    for (int i = 4; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--steps" && i + 1 < argc)
        steps = std::atoi(argv[++i]);
      else if (a == "--no-recompute")
        recompute = false;
      else if (a == "--recompute" && i + 1 < argc) {
        const std::string r = argv[++i];
        recompute = r == "auto"    ? Recompute::automatic()
                    : r == "true"  ? Recompute(true)
                    : r == "false" ? Recompute(false)
                                   : Recompute::first(std::atoi(r.c_str()));
      } else if (a == "--peak" && i + 1 < argc)
        peak = std::atof(argv[++i]);
      else if (a == "--attention" && i + 1 < argc)
        attention = argv[++i];
    }
    return run_step(argv[2], argc > 3 ? argv[3] : "run", steps, recompute, peak, attention);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_step: %s\n", e.what());
    return 1;
  }
}
