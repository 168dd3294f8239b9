// Element-wise and row-wise kernels of the CUDA backend. Each is memory-bound; they use
// 16-byte accesses where rows allow it (hidden, ffn and vocab are multiples of 8, which
// the backend checks) and fp32 arithmetic throughout.
#include <algorithm>
#include <cmath>

#include "compute/cuda/cuda_check.hpp"
#include "compute/cuda/kernels.hpp"

namespace minipt::cuda {

namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t work, int threads = kThreads) {
  return static_cast<unsigned>(std::max<int64_t>(1, (work + threads - 1) / threads));
}
// Grid-stride kernels: enough blocks to fill the chip several times over.
unsigned stride_blocks(int64_t work) {
  return static_cast<unsigned>(std::min<int64_t>(blocks_for(work), 132 * 16));
}

struct alignas(16) Bf16x8 {
  __nv_bfloat162 v[4];
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// ---------------------------------------------------------------- embedding
__global__ void embedding_forward_kernel(const int32_t* __restrict__ tokens,
                                         const bf16* __restrict__ emb, float* __restrict__ x,
                                         int64_t n_tokens, int hidden) {
  const int64_t chunks = hidden / 8;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_tokens * chunks) return;
  const int64_t t = i / chunks, c = (i % chunks) * 8;
  const Bf16x8 e =
      *reinterpret_cast<const Bf16x8*>(emb + static_cast<int64_t>(tokens[t]) * hidden + c);
  float4* out = reinterpret_cast<float4*>(x + t * hidden + c);
  const float2 a = __bfloat1622float2(e.v[0]), b = __bfloat1622float2(e.v[1]);
  const float2 d = __bfloat1622float2(e.v[2]), f = __bfloat1622float2(e.v[3]);
  out[0] = make_float4(a.x, a.y, b.x, b.y);
  out[1] = make_float4(d.x, d.y, f.x, f.y);
}

__global__ void embedding_backward_kernel(const int32_t* __restrict__ tokens,
                                          const float* __restrict__ dx, float* __restrict__ demb,
                                          int64_t n_tokens, int hidden) {
  const int64_t chunks = hidden / 4;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_tokens * chunks) return;
  const int64_t t = i / chunks, c = (i % chunks) * 4;
  const float4 g = *reinterpret_cast<const float4*>(dx + t * hidden + c);
  atomicAdd(reinterpret_cast<float4*>(demb + static_cast<int64_t>(tokens[t]) * hidden + c), g);
}

// ---------------------------------------------------------------- RMSNorm
// One warp per token row.
__global__ void rmsnorm_forward_kernel(const float* __restrict__ x, const bf16* __restrict__ w,
                                       bf16* __restrict__ y, float* __restrict__ rstd,
                                       int64_t n_tokens, int hidden, float eps) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= n_tokens) return;
  const float4* xr = reinterpret_cast<const float4*>(x + row * hidden);
  const int n4 = hidden / 4;
  float ss = 0.f;
  for (int c = lane; c < n4; c += 32) {
    const float4 v = xr[c];
    ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
  }
  ss = warp_sum(ss);
  const float r = rsqrtf(ss / static_cast<float>(hidden) + eps);
  if (lane == 0) rstd[row] = r;
  const __nv_bfloat162* w2 = reinterpret_cast<const __nv_bfloat162*>(w);
  __nv_bfloat162* y2 = reinterpret_cast<__nv_bfloat162*>(y + row * hidden);
  for (int c = lane; c < n4; c += 32) {
    const float4 v = xr[c];
    const float2 wa = __bfloat1622float2(w2[2 * c]), wb = __bfloat1622float2(w2[2 * c + 1]);
    y2[2 * c] = __floats2bfloat162_rn(v.x * r * wa.x, v.y * r * wa.y);
    y2[2 * c + 1] = __floats2bfloat162_rn(v.z * r * wb.x, v.w * r * wb.y);
  }
}

// With x̂ = x·rstd and g = dy∘w:  dx = rstd·(g − x̂·mean(g∘x̂)),  dw = Σ_t dy∘x̂.
// Each warp walks over rows; its dw partial sums live in its own slice of shared memory
// (lane-owned columns, no conflicts) and are added to global dw once per block.
constexpr int kNormBwdWarps = 4;
__global__ void rmsnorm_backward_kernel(const float* __restrict__ x, const bf16* __restrict__ w,
                                        const float* __restrict__ rstd,
                                        const float* __restrict__ dy, const float* residual_grad,
                                        float* dx, bf16* __restrict__ dx_bf16,
                                        float* __restrict__ dw, int64_t n_tokens, int hidden) {
  extern __shared__ float dw_partial[];  // [kNormBwdWarps][hidden]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n4 = hidden / 4;
  for (int j = threadIdx.x; j < kNormBwdWarps * hidden; j += blockDim.x) dw_partial[j] = 0.f;
  __syncthreads();
  float4* my_dw = reinterpret_cast<float4*>(dw_partial + warp * hidden);
  const __nv_bfloat162* w2 = reinterpret_cast<const __nv_bfloat162*>(w);
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * kNormBwdWarps + warp; row < n_tokens;
       row += static_cast<int64_t>(gridDim.x) * kNormBwdWarps) {
    const float4* xr = reinterpret_cast<const float4*>(x + row * hidden);
    const float4* dyr = reinterpret_cast<const float4*>(dy + row * hidden);
    const float r = rstd[row];
    float dot = 0.f;
    for (int c = lane; c < n4; c += 32) {
      const float4 xv = xr[c], gv = dyr[c];
      const float2 wa = __bfloat1622float2(w2[2 * c]), wb = __bfloat1622float2(w2[2 * c + 1]);
      dot += gv.x * wa.x * xv.x + gv.y * wa.y * xv.y + gv.z * wb.x * xv.z + gv.w * wb.y * xv.w;
    }
    dot = warp_sum(dot);
    // mean(g∘x̂)·rstd = rstd²·dot/hidden
    const float k = r * r * r * dot / static_cast<float>(hidden);
    for (int c = lane; c < n4; c += 32) {
      const float4 xv = xr[c], gv = dyr[c];
      const float2 wa = __bfloat1622float2(w2[2 * c]), wb = __bfloat1622float2(w2[2 * c + 1]);
      float4 o;
      o.x = r * gv.x * wa.x - xv.x * k;
      o.y = r * gv.y * wa.y - xv.y * k;
      o.z = r * gv.z * wb.x - xv.z * k;
      o.w = r * gv.w * wb.y - xv.w * k;
      if (residual_grad != nullptr) {
        const float4 rg = reinterpret_cast<const float4*>(residual_grad + row * hidden)[c];
        o.x += rg.x;
        o.y += rg.y;
        o.z += rg.z;
        o.w += rg.w;
      }
      if (dx != nullptr) reinterpret_cast<float4*>(dx + row * hidden)[c] = o;
      if (dx_bf16 != nullptr) {
        __nv_bfloat162* ob = reinterpret_cast<__nv_bfloat162*>(dx_bf16 + row * hidden);
        ob[2 * c] = __floats2bfloat162_rn(o.x, o.y);
        ob[2 * c + 1] = __floats2bfloat162_rn(o.z, o.w);
      }
      float4 acc = my_dw[c];
      acc.x += gv.x * xv.x * r;
      acc.y += gv.y * xv.y * r;
      acc.z += gv.z * xv.z * r;
      acc.w += gv.w * xv.w * r;
      my_dw[c] = acc;
    }
  }
  __syncthreads();
  for (int j = threadIdx.x; j < hidden; j += blockDim.x) {
    float s = 0.f;
#pragma unroll
    for (int q = 0; q < kNormBwdWarps; ++q) s += dw_partial[q * hidden + j];
    atomicAdd(dw + j, s);
  }
}

// ---------------------------------------------------------------- RoPE
__global__ void rope_table_kernel(float2* table, int max_pos, int head_dim, double theta) {
  const int half = head_dim / 2;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<int64_t>(max_pos) * half) return;
  const int64_t pos = i / half;
  const int k = static_cast<int>(i % half);
  const double inv_freq = pow(theta, -2.0 * k / head_dim);
  double sn, cs;
  sincos(static_cast<double>(pos) * inv_freq, &sn, &cs);
  table[i] = make_float2(static_cast<float>(cs), static_cast<float>(sn));
}

// Rotate-half: for i < D/2, (x_i, x_{i+D/2}) → (x_i·cos − x_{i+D/2}·sin,
// x_{i+D/2}·cos + x_i·sin); the inverse uses −sin. Two adjacent i per thread.
__global__ void rope_kernel(bf16* x, int64_t ld, const int32_t* __restrict__ positions,
                            const float2* __restrict__ table, int64_t n_tokens, int heads,
                            int head_dim, float sign) {
  const int half = head_dim / 2, quarter = head_dim / 4;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_tokens * heads * quarter) return;
  const int64_t t = i / (heads * quarter);
  const int rem = static_cast<int>(i % (heads * quarter));
  const int h = rem / quarter, k = (rem % quarter) * 2;
  bf16* row = x + t * ld + h * head_dim;
  const float4 cs =
      *reinterpret_cast<const float4*>(table + static_cast<int64_t>(positions[t]) * half + k);
  __nv_bfloat162* lo = reinterpret_cast<__nv_bfloat162*>(row + k);
  __nv_bfloat162* hi = reinterpret_cast<__nv_bfloat162*>(row + k + half);
  const float2 a = __bfloat1622float2(*lo), b = __bfloat1622float2(*hi);
  const float s0 = sign * cs.y, s1 = sign * cs.w;
  *lo = __floats2bfloat162_rn(a.x * cs.x - b.x * s0, a.y * cs.z - b.y * s1);
  *hi = __floats2bfloat162_rn(b.x * cs.x + a.x * s0, b.y * cs.z + a.y * s1);
}

// ---------------------------------------------------------------- SwiGLU
__device__ __forceinline__ float sigmoid(float g) { return 1.f / (1.f + __expf(-g)); }

__global__ void swiglu_forward_kernel(const bf16* __restrict__ gu, bf16* __restrict__ a,
                                      int64_t n_tokens, int ffn) {
  const int64_t chunks = ffn / 8;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_tokens * chunks) return;
  const int64_t t = i / chunks, j = (i % chunks) * 8;
  const Bf16x8 gv = *reinterpret_cast<const Bf16x8*>(gu + t * 2 * ffn + j);
  const Bf16x8 uv = *reinterpret_cast<const Bf16x8*>(gu + t * 2 * ffn + ffn + j);
  Bf16x8 out;
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const float2 g = __bfloat1622float2(gv.v[q]), u = __bfloat1622float2(uv.v[q]);
    out.v[q] = __floats2bfloat162_rn(g.x * sigmoid(g.x) * u.x, g.y * sigmoid(g.y) * u.y);
  }
  *reinterpret_cast<Bf16x8*>(a + t * ffn + j) = out;
}

// d gate = da·u·σ(g)·(1 + g·(1 − σ(g))),  d up = da·g·σ(g).
__global__ void swiglu_backward_kernel(bf16* gu, const bf16* __restrict__ da, int64_t n_tokens,
                                       int ffn) {
  const int64_t chunks = ffn / 8;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_tokens * chunks) return;
  const int64_t t = i / chunks, j = (i % chunks) * 8;
  Bf16x8* gp = reinterpret_cast<Bf16x8*>(gu + t * 2 * ffn + j);
  Bf16x8* up = reinterpret_cast<Bf16x8*>(gu + t * 2 * ffn + ffn + j);
  const Bf16x8 gv = *gp, uv = *up;
  const Bf16x8 dv = *reinterpret_cast<const Bf16x8*>(da + t * ffn + j);
  Bf16x8 dg, du;
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const float2 g = __bfloat1622float2(gv.v[q]), u = __bfloat1622float2(uv.v[q]);
    const float2 d = __bfloat1622float2(dv.v[q]);
    const float sx = sigmoid(g.x), sy = sigmoid(g.y);
    dg.v[q] = __floats2bfloat162_rn(d.x * u.x * sx * (1.f + g.x * (1.f - sx)),
                                    d.y * u.y * sy * (1.f + g.y * (1.f - sy)));
    du.v[q] = __floats2bfloat162_rn(d.x * g.x * sx, d.y * g.y * sy);
  }
  *gp = dg;
  *up = du;
}

// ---------------------------------------------------------------- cross-entropy
// One block per row. Pass 1: running (max, Σexp) per thread with rescaling, merged
// across the block. Pass 2: dlogits = w·(exp(z − lse) − [j = target]).
constexpr int kCeThreads = 512;
__global__ void __launch_bounds__(kCeThreads)
    cross_entropy_kernel(const float* __restrict__ logits, const int32_t* __restrict__ targets,
                         const float* __restrict__ weights, float* __restrict__ token_loss,
                         bf16* __restrict__ dlogits, int vocab) {
  const int64_t row = blockIdx.x;
  const float4* z = reinterpret_cast<const float4*>(logits + row * vocab);
  const int n4 = vocab / 4;
  float m = -INFINITY, s = 0.f;
  for (int c = threadIdx.x; c < n4; c += kCeThreads) {
    const float4 v = z[c];
    const float mx = fmaxf(fmaxf(v.x, v.y), fmaxf(v.z, v.w));
    if (mx > m) {
      s *= __expf(m - mx);
      m = mx;
    }
    s += __expf(v.x - m) + __expf(v.y - m) + __expf(v.z - m) + __expf(v.w - m);
  }
  // Merge (m, s) pairs: warp, then across warps through shared memory.
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float mo = __shfl_xor_sync(0xffffffffu, m, off);
    const float so = __shfl_xor_sync(0xffffffffu, s, off);
    const float mn = fmaxf(m, mo);
    s = (m == -INFINITY ? 0.f : s * __expf(m - mn)) +
        (mo == -INFINITY ? 0.f : so * __expf(mo - mn));
    m = mn;
  }
  __shared__ float sm[kCeThreads / 32], ss[kCeThreads / 32];
  __shared__ float lse_shared;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    sm[warp] = m;
    ss[warp] = s;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float mm = sm[0];
    for (int q = 1; q < kCeThreads / 32; ++q) mm = fmaxf(mm, sm[q]);
    float tot = 0.f;
    for (int q = 0; q < kCeThreads / 32; ++q) tot += ss[q] * __expf(sm[q] - mm);
    lse_shared = mm + logf(tot);
  }
  __syncthreads();
  const float lse = lse_shared;
  const int target = targets[row];
  const float w = target >= 0 ? weights[row] : 0.f;
  if (threadIdx.x == 0) token_loss[row] = target >= 0 ? lse - logits[row * vocab + target] : 0.f;
  __nv_bfloat162* d2 = reinterpret_cast<__nv_bfloat162*>(dlogits + row * vocab);
  for (int c = threadIdx.x; c < n4; c += kCeThreads) {
    const float4 v = z[c];
    float p0 = __expf(v.x - lse) * w, p1 = __expf(v.y - lse) * w;
    float p2 = __expf(v.z - lse) * w, p3 = __expf(v.w - lse) * w;
    const int j = 4 * c;
    if (target == j) p0 -= w;
    if (target == j + 1) p1 -= w;
    if (target == j + 2) p2 -= w;
    if (target == j + 3) p3 -= w;
    d2[2 * c] = __floats2bfloat162_rn(p0, p1);
    d2[2 * c + 1] = __floats2bfloat162_rn(p2, p3);
  }
}

// ---------------------------------------------------------------- shard maths
__global__ void cast_kernel(const float* __restrict__ src, bf16* __restrict__ dst, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    dst[i] = __float2bfloat16_rn(src[i]);
  }
}

__global__ void add_kernel(float* __restrict__ acc, const float* __restrict__ g, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    acc[i] += g[i];
  }
}

__global__ void sum_squares_kernel(const float* __restrict__ x, int64_t n, double* result) {
  double s = 0.0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double v = x[i];
    s += v * v;
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
  __shared__ double partial[kThreads / 32];
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double tot = 0.0;
    for (int q = 0; q < kThreads / 32; ++q) tot += partial[q];
    atomicAdd(result, tot);
  }
}

// Decoupled AdamW: p ← p − lr·(m̂/(√v̂ + eps) + wd·p), m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
__global__ void adamw_kernel(float* __restrict__ param, float* __restrict__ m,
                             float* __restrict__ v, const float* __restrict__ grad, int64_t n,
                             AdamWConstants c) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = grad[i] * c.grad_scale;
    const float mi = c.beta1 * m[i] + (1.f - c.beta1) * g;
    const float vi = c.beta2 * v[i] + (1.f - c.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float mhat = mi / c.bias_correction1, vhat = vi / c.bias_correction2;
    const float p = param[i];
    param[i] = p - c.lr * (mhat / (sqrtf(vhat) + c.eps) + c.weight_decay * p);
  }
}

__global__ void init_kernel(UnitInit rule, int64_t begin, int64_t n, float* out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = rule.value(begin + i);
  }
}

}  // namespace

void embedding_forward(const int32_t* tokens, const bf16* embedding, float* x, int64_t n_tokens,
                       int hidden, cudaStream_t s) {
  if (n_tokens == 0) return;
  embedding_forward_kernel<<<blocks_for(n_tokens * hidden / 8), kThreads, 0, s>>>(
      tokens, embedding, x, n_tokens, hidden);
  CUDA_CHECK_LAUNCH();
}

void embedding_backward(const int32_t* tokens, const float* dx, float* d_embedding,
                        int64_t n_tokens, int hidden, cudaStream_t s) {
  if (n_tokens == 0) return;
  embedding_backward_kernel<<<blocks_for(n_tokens * hidden / 4), kThreads, 0, s>>>(
      tokens, dx, d_embedding, n_tokens, hidden);
  CUDA_CHECK_LAUNCH();
}

void rmsnorm_forward(const float* x, const bf16* w, bf16* y, float* rstd, int64_t n_tokens,
                     int hidden, float eps, cudaStream_t s) {
  if (n_tokens == 0) return;
  constexpr int kRowsPerBlock = kThreads / 32;
  rmsnorm_forward_kernel<<<blocks_for(n_tokens, kRowsPerBlock), kThreads, 0, s>>>(
      x, w, y, rstd, n_tokens, hidden, eps);
  CUDA_CHECK_LAUNCH();
}

void rmsnorm_backward(const float* x, const bf16* w, const float* rstd, const float* dy,
                      const float* residual_grad, float* dx, bf16* dx_bf16, float* dw,
                      int64_t n_tokens, int hidden, cudaStream_t s) {
  if (n_tokens == 0) return;
  const int smem = kNormBwdWarps * hidden * static_cast<int>(sizeof(float));
  static int configured_smem = 0;
  if (smem > 48 * 1024 && smem > configured_smem) {
    CUDA_CHECK(cudaFuncSetAttribute(rmsnorm_backward_kernel,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    configured_smem = smem;
  }
  const unsigned grid = static_cast<unsigned>(
      std::min<int64_t>((n_tokens + kNormBwdWarps - 1) / kNormBwdWarps, 132 * 4));
  rmsnorm_backward_kernel<<<grid, kNormBwdWarps * 32, smem, s>>>(x, w, rstd, dy, residual_grad, dx,
                                                                 dx_bf16, dw, n_tokens, hidden);
  CUDA_CHECK_LAUNCH();
}

void rope_table(float2* table, int max_pos, int head_dim, double theta, cudaStream_t s) {
  rope_table_kernel<<<blocks_for(static_cast<int64_t>(max_pos) * head_dim / 2), kThreads, 0, s>>>(
      table, max_pos, head_dim, theta);
  CUDA_CHECK_LAUNCH();
}

void rope_apply(bf16* x, int64_t ld, const int32_t* positions, const float2* table,
                int64_t n_tokens, int rotated_heads, int head_dim, bool inverse, cudaStream_t s) {
  if (n_tokens == 0) return;
  rope_kernel<<<blocks_for(n_tokens * rotated_heads * (head_dim / 4)), kThreads, 0, s>>>(
      x, ld, positions, table, n_tokens, rotated_heads, head_dim, inverse ? -1.f : 1.f);
  CUDA_CHECK_LAUNCH();
}

void swiglu_forward(const bf16* gate_up, bf16* a, int64_t n_tokens, int ffn, cudaStream_t s) {
  if (n_tokens == 0) return;
  swiglu_forward_kernel<<<blocks_for(n_tokens * ffn / 8), kThreads, 0, s>>>(gate_up, a, n_tokens,
                                                                            ffn);
  CUDA_CHECK_LAUNCH();
}

void swiglu_backward(bf16* gate_up, const bf16* da, int64_t n_tokens, int ffn, cudaStream_t s) {
  if (n_tokens == 0) return;
  swiglu_backward_kernel<<<blocks_for(n_tokens * ffn / 8), kThreads, 0, s>>>(gate_up, da, n_tokens,
                                                                             ffn);
  CUDA_CHECK_LAUNCH();
}

void cross_entropy(const float* logits, const int32_t* targets, const float* weights,
                   float* token_loss, bf16* dlogits, int64_t rows, int vocab, cudaStream_t s) {
  if (rows == 0) return;
  cross_entropy_kernel<<<static_cast<unsigned>(rows), kCeThreads, 0, s>>>(
      logits, targets, weights, token_loss, dlogits, vocab);
  CUDA_CHECK_LAUNCH();
}

void cast_f32_to_bf16(const float* src, bf16* dst, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  cast_kernel<<<stride_blocks(n), kThreads, 0, s>>>(src, dst, n);
  CUDA_CHECK_LAUNCH();
}

void add_inplace(float* acc, const float* g, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  add_kernel<<<stride_blocks(n), kThreads, 0, s>>>(acc, g, n);
  CUDA_CHECK_LAUNCH();
}

void sum_squares(const float* x, int64_t n, double* result, cudaStream_t s) {
  CUDA_CHECK(cudaMemsetAsync(result, 0, sizeof(double), s));
  if (n == 0) return;
  sum_squares_kernel<<<stride_blocks(n), kThreads, 0, s>>>(x, n, result);
  CUDA_CHECK_LAUNCH();
}

void adamw(float* param, float* m, float* v, const float* grad, int64_t n, const AdamWConstants& c,
           cudaStream_t s) {
  if (n == 0) return;
  adamw_kernel<<<stride_blocks(n), kThreads, 0, s>>>(param, m, v, grad, n, c);
  CUDA_CHECK_LAUNCH();
}

void init_params(const UnitInit& rule, int64_t begin, int64_t n, float* out, cudaStream_t s) {
  if (n == 0) return;
  init_kernel<<<stride_blocks(n), kThreads, 0, s>>>(rule, begin, n, out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace minipt::cuda
