// Checks the flash attention kernels (own, both backward variants, and cuDNN's fused
// attention where built in) against a double-precision CPU reference on packed causal
// sequences of awkward lengths (1, partial tiles, several tiles; for cuDNN also batch
// sizes below its graph's power-of-two batch), for head_dim 32, 64 and 128 with
// grouped-query attention; outputs are poisoned first so an element the kernels never
// write shows up as NaN.
//
// Tolerance: inputs are bf16 and identical for both sides, so the differences come from
// the kernel's bf16 rounding of P (relative 2⁻⁹ per element) and of the outputs, plus
// fp32 accumulation: a relative L2 error of a few 1e-3 is expected; the limits are 1e-2
// for O and 2e-2 for the gradients (dS = P∘(dP − D) loses digits where dP ≈ D).
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "compute/cuda/attention.hpp"
#include "compute/cuda/attention_cudnn.hpp"
#include "compute/cuda/cuda_check.hpp"
#include "gpu_check.hpp"

using minipt::cuda::AttentionArgs;
using minipt::cuda::AttentionGradArgs;

namespace {

float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

template <typename T>
T* to_device(const std::vector<T>& h) {
  T* d = nullptr;
  CUDA_CHECK(cudaMalloc(&d, h.size() * sizeof(T) + 256));
  CUDA_CHECK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}
template <typename T>
std::vector<T> to_host(const T* d, size_t n) {
  std::vector<T> h(n);
  CUDA_CHECK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}
std::vector<float> bf16_to_float(const std::vector<__nv_bfloat16>& v) {
  std::vector<float> f(v.size());
  for (size_t i = 0; i < v.size(); ++i) f[i] = __bfloat162float(v[i]);
  return f;
}

// cudnn: null for the own kernels.
void run_case(int head_dim, int heads, int kv_heads, const std::vector<int>& lengths,
              gpu_check::Tally& tally, minipt::cuda::CudnnAttention* cudnn = nullptr) {
  std::vector<int32_t> cu{0};
  for (int l : lengths) cu.push_back(cu.back() + l);
  const int T = cu.back();
  const int D = head_dim;
  const int64_t ld = static_cast<int64_t>(heads + 2 * kv_heads) * D;
  const int64_t ld_o = static_cast<int64_t>(heads) * D;
  std::mt19937 rng(1234u + static_cast<unsigned>(D * 7 + heads));
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> qkv(static_cast<size_t>(T * ld)), d_o(static_cast<size_t>(T * ld_o));
  for (auto& x : qkv) x = round_bf16(normal(rng));
  for (auto& x : d_o) x = round_bf16(normal(rng));

  // ---- double-precision reference
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const int group = heads / kv_heads;
  std::vector<double> o_ref(static_cast<size_t>(T * ld_o)), lse_ref(static_cast<size_t>(heads * T));
  std::vector<double> dqkv_ref(static_cast<size_t>(T * ld), 0.0);
  auto Q = [&](int t, int h, int d) { return static_cast<double>(qkv[t * ld + h * D + d]); };
  auto K = [&](int t, int h, int d) {
    return static_cast<double>(qkv[t * ld + (heads + h) * D + d]);
  };
  auto V = [&](int t, int h, int d) {
    return static_cast<double>(qkv[t * ld + (heads + kv_heads + h) * D + d]);
  };
  for (size_t s = 0; s + 1 < cu.size(); ++s) {
    for (int h = 0; h < heads; ++h) {
      const int kh = h / group;
      for (int i = cu[s]; i < cu[s + 1]; ++i) {
        const int n = i - cu[s] + 1;
        std::vector<double> p(static_cast<size_t>(n));
        double mx = -INFINITY;
        for (int j = 0; j < n; ++j) {
          double dot = 0;
          for (int d = 0; d < D; ++d) dot += Q(i, h, d) * K(cu[s] + j, kh, d);
          p[j] = dot * scale;
          mx = std::max(mx, p[j]);
        }
        double sum = 0;
        for (int j = 0; j < n; ++j) sum += std::exp(p[j] - mx);
        lse_ref[h * T + i] = mx + std::log(sum);
        for (int j = 0; j < n; ++j) p[j] = std::exp(p[j] - mx) / sum;
        std::vector<double> o(static_cast<size_t>(D), 0.0);
        for (int j = 0; j < n; ++j)
          for (int d = 0; d < D; ++d) o[d] += p[j] * V(cu[s] + j, kh, d);
        for (int d = 0; d < D; ++d) o_ref[i * ld_o + h * D + d] = o[d];
        // backward
        double Di = 0;
        for (int d = 0; d < D; ++d) Di += o[d] * d_o[i * ld_o + h * D + d];
        for (int j = 0; j < n; ++j) {
          const int tj = cu[s] + j;
          double dp = 0;
          for (int d = 0; d < D; ++d) dp += d_o[i * ld_o + h * D + d] * V(tj, kh, d);
          const double ds = p[j] * (dp - Di);
          for (int d = 0; d < D; ++d) {
            dqkv_ref[i * ld + h * D + d] += scale * ds * K(tj, kh, d);
            dqkv_ref[tj * ld + (heads + kh) * D + d] += scale * ds * Q(i, h, d);
            dqkv_ref[tj * ld + (heads + kv_heads + kh) * D + d] += p[j] * d_o[i * ld_o + h * D + d];
          }
        }
      }
    }
  }

  // ---- device
  std::vector<__nv_bfloat16> qkv_b(qkv.size()), do_b(d_o.size());
  for (size_t i = 0; i < qkv.size(); ++i) qkv_b[i] = __float2bfloat16_rn(qkv[i]);
  for (size_t i = 0; i < d_o.size(); ++i) do_b[i] = __float2bfloat16_rn(d_o[i]);
  const int64_t stat_ld = minipt::cuda::attention_stat_ld(T);
  __nv_bfloat16* d_qkv = to_device(qkv_b);
  __nv_bfloat16* d_do = to_device(do_b);
  __nv_bfloat16 *d_out = nullptr, *d_grad = nullptr;
  float *d_lse = nullptr, *d_dot = nullptr, *d_acc = nullptr;
  CUDA_CHECK(cudaMalloc(&d_out, T * ld_o * 2));
  CUDA_CHECK(cudaMalloc(&d_grad, T * ld * 2));
  CUDA_CHECK(cudaMalloc(&d_lse, heads * stat_ld * 4));
  CUDA_CHECK(cudaMalloc(&d_dot, heads * stat_ld * 4));
  CUDA_CHECK(cudaMalloc(&d_acc, T * ld_o * 4));
  CUDA_CHECK(cudaMemset(d_out, 0xff, T * ld_o * 2));  // NaN poison
  CUDA_CHECK(cudaMemset(d_grad, 0xff, T * ld * 2));
  CUDA_CHECK(cudaMemset(d_lse, 0xff, heads * stat_ld * 4));
  const auto work = minipt::cuda::plan_attention_work(cu);
  std::vector<int32_t> all_items = work.forward;
  all_items.insert(all_items.end(), work.backward.begin(), work.backward.end());
  int32_t* d_items = to_device(all_items);
  int32_t* d_cu = to_device(cu);

  AttentionArgs a;
  a.q = d_qkv;
  a.k = d_qkv + heads * D;
  a.v = d_qkv + (heads + kv_heads) * D;
  a.ld_qkv = ld;
  a.o = d_out;
  a.ld_o = ld_o;
  a.lse2 = d_lse;
  a.stat_ld = stat_ld;
  a.cu_seqlens = d_cu;
  a.num_tokens = T;
  a.heads = heads;
  a.kv_heads = kv_heads;
  a.head_dim = D;
  if (cudnn != nullptr) {
    cudnn->set_sequences(cu, ld, ld_o, nullptr);
    cudnn->forward(a, nullptr);
  } else {
    minipt::cuda::attention_forward(a, d_items, static_cast<int>(work.forward.size() / 2), nullptr);
  }
  AttentionGradArgs g;
  g.d_o = d_do;
  g.row_dot = d_dot;
  g.dq_accum = d_acc;
  g.dq = d_grad;
  g.dk = d_grad + heads * D;
  g.dv = d_grad + (heads + kv_heads) * D;
  if (cudnn != nullptr) {
    cudnn->backward(a, g, nullptr);
  } else {
    minipt::cuda::attention_backward(a, g, d_items + work.forward.size(),
                                     static_cast<int>(work.backward.size() / 2), nullptr);
  }
  CUDA_CHECK(cudaDeviceSynchronize());

  const auto o = bf16_to_float(to_host(d_out, static_cast<size_t>(T * ld_o)));
  const auto lse2 = to_host(d_lse, static_cast<size_t>(heads * stat_ld));
  const auto grad = bf16_to_float(to_host(d_grad, static_cast<size_t>(T * ld)));
  double lse_err = 0;
  for (int h = 0; h < heads; ++h)
    for (int t = 0; t < T; ++t) {
      // Own kernels: base-2, [heads][stat_ld]; cuDNN: natural log, [tokens][heads].
      const double v =
          cudnn != nullptr ? lse2[t * heads + h] : lse2[h * stat_ld + t] * std::log(2.0);
      lse_err = std::isfinite(v) ? std::max(lse_err, std::abs(v - lse_ref[h * T + t])) : INFINITY;
    }
  // Split the gradient into its q, k, v columns.
  std::vector<float> parts[3];
  std::vector<double> ref_parts[3];
  for (int t = 0; t < T; ++t)
    for (int64_t c = 0; c < ld; ++c) {
      const int which = c < heads * D ? 0 : (c < (heads + kv_heads) * D ? 1 : 2);
      parts[which].push_back(grad[t * ld + c]);
      ref_parts[which].push_back(dqkv_ref[t * ld + c]);
    }
  const std::string tag = std::string(cudnn != nullptr ? "cudnn " : "") + "D=" + std::to_string(D) +
                          " H=" + std::to_string(heads) + "/" + std::to_string(kv_heads) +
                          " T=" + std::to_string(T) + ": ";
  tally.below((tag + "O rel L2").c_str(), gpu_check::rel_l2(o, o_ref), 1e-2);
  tally.below((tag + "lse max abs").c_str(), lse_err, 1e-3);
  tally.below((tag + "dQ rel L2").c_str(), gpu_check::rel_l2(parts[0], ref_parts[0]), 2e-2);
  tally.below((tag + "dK rel L2").c_str(), gpu_check::rel_l2(parts[1], ref_parts[1]), 2e-2);
  tally.below((tag + "dV rel L2").c_str(), gpu_check::rel_l2(parts[2], ref_parts[2]), 2e-2);
  for (void* p : {static_cast<void*>(d_qkv), static_cast<void*>(d_do), static_cast<void*>(d_out),
                  static_cast<void*>(d_grad), static_cast<void*>(d_lse), static_cast<void*>(d_dot),
                  static_cast<void*>(d_acc), static_cast<void*>(d_items), static_cast<void*>(d_cu)})
    CUDA_CHECK(cudaFree(p));
}

}  // namespace

int main() {
  if (!gpu_check::have_device()) {
    std::printf("no CUDA device: skipped\n");
    return gpu_check::kSkip;
  }
  gpu_check::Tally tally;
  const std::vector<int> lengths{1, 17, 64, 65, 130, 300, 7};
  for (int variant : {2, 1}) {
    minipt::cuda::set_attention_backward_variant(variant);
    std::printf("-- backward variant %d\n", variant);
    run_case(32, 4, 2, lengths, tally);
    run_case(64, 4, 1, lengths, tally);
    run_case(128, 6, 2, lengths, tally);
    run_case(128, 2, 2, {513, 40, 129}, tally);
  }
  if (minipt::cuda::CudnnAttention::available()) {
    std::printf("-- cuDNN fused attention\n");
    // One object per shape, reused across batches as the backend does (graph cache,
    // sequences changing between calls).
    minipt::cuda::CudnnAttention c32(4, 2, 32), c64(4, 1, 64), c128(6, 2, 128), c128b(2, 2, 128);
    run_case(32, 4, 2, lengths, tally, &c32);
    run_case(64, 4, 1, lengths, tally, &c64);
    run_case(128, 6, 2, lengths, tally, &c128);
    run_case(128, 6, 2, {300, 1, 77}, tally, &c128);
    run_case(128, 2, 2, {513, 40, 129}, tally, &c128b);
    run_case(128, 2, 2, {2000}, tally, &c128b);
  } else {
    std::printf("-- cuDNN fused attention: not in this build\n");
  }
  std::printf("%s: %d failure(s)\n", tally.failures ? "FAILED" : "PASSED", tally.failures);
  return tally.failures ? 1 : 0;
}
