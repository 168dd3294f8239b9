// Flash attention backward (FlashAttention-2 scheme) for packed causal sequences.
//
// With s = scale·q·k, P = softmax(s) (row-wise, causal), O = P·V:
//   dV = Pᵀ·dO
//   dP = dO·Vᵀ
//   dS = P ∘ (dP − D),   D_i = Σ_j P_ij dP_ij = rowsum(dO ∘ O)_i   (precomputed)
//   dQ = scale · dS·K,   dK = scale · dSᵀ·Q
// P is recomputed from the saved base-2 log-sum-exp: P = 2^(s₂ − lse₂).
//
// One block owns a block of keys (64 or 128, see the variants below) of one KV head of one sequence
// and keeps their dK and dV in registers while it walks over every query tile at or after the
// diagonal, for every query head of its GQA group (so the group's contributions are summed in
// registers, not in memory). Its warps each own 16 keys and compute the transposed
// products Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ, whose accumulators are directly the A fragments
// of dV += Pᵀ·dO and dK += dSᵀ·Q. dQ needs dS with queries as rows, so dSᵀ goes through
// shared memory (bf16) and is read back transposed by ldmatrix; each warp then adds its
// 16 query rows of dS·K into an fp32 dQ accumulator in global memory with atomics
// (several key blocks contribute to the same query rows). A final pass scales dQ and
// converts it to bf16.
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "compute/cuda/attention.hpp"
#include "compute/cuda/attention_common.cuh"
#include "compute/cuda/cuda_check.hpp"

namespace minipt::cuda {

using attn::bf16;

namespace {

// Two variants, both launched per (sequence, key block, KV head):
//   v1: 64 keys, 4 warps (2 blocks per SM);
//   v2: 128 keys, 8 warps (1 block per SM): every query tile and its dQ atomics serve
//       twice as many keys, halving the global traffic and atomics per FLOP.
// Each warp owns 16 keys in both; query tiles are kBwdQueries rows.
constexpr int kBwdQueries = 64;

int g_backward_variant = 0;  // 0: not chosen yet

template <int D, int KB>
constexpr int bwd_smem_bytes() {
  // K, V, 2 stages of Q and dO, dSᵀ (bf16) + 2 stages of lse and D (fp32).
  return (2 * KB * D + 4 * kBwdQueries * D + KB * kBwdQueries) * 2 + 4 * kBwdQueries * 4;
}

template <int D, int KB>
__global__ void __launch_bounds__(KB * 2, KB == 64 ? 2 : 1)
    flash_backward_kernel(AttentionArgs a, AttentionGradArgs gr, const int32_t* __restrict__ items,
                          float scale_log2, float scale) {
  using namespace attn;
  constexpr int BQ = kBwdQueries;
  constexpr int kThreads = KB * 2;  // KB/16 warps
  constexpr int kWarps = KB / 16;
  constexpr int kSteps = D / 16;
  constexpr int kDTiles = D / 8;
  constexpr int kQTiles = BQ / 8;  // n-tiles over the query tile
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* s_k = reinterpret_cast<bf16*>(smem_raw);
  bf16* s_v = s_k + KB * D;
  bf16* s_q = s_v + KB * D;                                 // [2][BQ][D]
  bf16* s_do = s_q + 2 * BQ * D;                            // [2][BQ][D]
  bf16* s_ds = s_do + 2 * BQ * D;                           // [KB keys][BQ queries]
  float* s_lse = reinterpret_cast<float*>(s_ds + KB * BQ);  // [2][BQ]
  float* s_dot = s_lse + 2 * BQ;                            // [2][BQ]

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, c = lane & 3;
  const int kv_head = blockIdx.x;
  const int group = a.heads / a.kv_heads;
  const int seq = items[2 * blockIdx.y], kblock = items[2 * blockIdx.y + 1];
  const int seq_start = a.cu_seqlens[seq];
  const int seq_len = a.cu_seqlens[seq + 1] - seq_start;
  const int k0 = kblock * KB;
  const int first_qtile = k0 / BQ;
  const int num_qtiles = (seq_len + BQ - 1) / BQ - first_qtile;  // query tiles at/after k0
  const int iterations = group * num_qtiles;
  const int64_t ld = a.ld_qkv;
  const int64_t row0 = seq_start;

  const bf16* kg = a.k + row0 * ld + kv_head * D;
  const bf16* vg = a.v + row0 * ld + kv_head * D;
  load_tile<KB, D, kThreads>(s_k, kg, ld, k0, seq_len, tid);
  load_tile<KB, D, kThreads>(s_v, vg, ld, k0, seq_len, tid);

  // Loads the query-side tiles of iteration `it` (head-major, then query tile).
  auto load_query_side = [&](int it, int stage) {
    const int head = kv_head * group + it / num_qtiles;
    const int q0 = (first_qtile + it % num_qtiles) * BQ;
    load_tile<BQ, D, kThreads>(s_q + stage * BQ * D, a.q + row0 * ld + head * D, ld, q0, seq_len,
                               tid);
    load_tile<BQ, D, kThreads>(s_do + stage * BQ * D, gr.d_o + row0 * a.ld_o + head * D, a.ld_o, q0,
                               seq_len, tid);
    // Row statistics: one float per thread (the arrays are padded past the last token).
    const int64_t stat = head * a.stat_ld + seq_start + q0;
    if (tid < BQ) {
      cp_async4(s_lse + stage * BQ + tid, a.lse2 + stat + tid);
    } else if (tid < 2 * BQ) {
      cp_async4(s_dot + stage * BQ + (tid - BQ), gr.row_dot + stat + (tid - BQ));
    }
  };
  load_query_side(0, 0);
  cp_async_commit();

  float dk[kDTiles][4], dv[kDTiles][4];
#pragma unroll
  for (int i = 0; i < kDTiles; ++i) {
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[i][e] = dv[i][e] = 0.f;
  }
  const int warp_k0 = k0 + warp * 16;  // first key of this warp (relative)

  for (int it = 0; it < iterations; ++it) {
    const int stage = it & 1;
    if (it + 1 < iterations) load_query_side(it + 1, (it + 1) & 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const int head = kv_head * group + it / num_qtiles;
    const int q0 = (first_qtile + it % num_qtiles) * BQ;
    const bf16* tq = s_q + stage * BQ * D;
    const bf16* tdo = s_do + stage * BQ * D;
    const float* lse = s_lse + stage * BQ;
    const float* dot = s_dot + stage * BQ;

    // Warp-uniform: every query of this tile precedes every key of this warp, or the
    // warp's keys lie past the sequence end: its dS rows are zero and nothing else to do.
    if (q0 + BQ - 1 < warp_k0 || warp_k0 >= seq_len) {
#pragma unroll
      for (int i = lane; i < 16 * BQ / 8; i += 32) {
        const int r = i / (BQ / 8), ch = i % (BQ / 8);
        *reinterpret_cast<uint4*>(s_ds + tile_offset<BQ>(warp * 16 + r, ch * 8)) =
            make_uint4(0, 0, 0, 0);
      }
    } else {
      // Sᵀ = K·Qᵀ (this warp's 16 keys × BQ queries).
      float st[kQTiles][4];
#pragma unroll
      for (int i = 0; i < kQTiles; ++i) st[i][0] = st[i][1] = st[i][2] = st[i][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < kSteps; ++kk) {
        uint32_t ka[4];
        load_a<D>(ka, s_k, warp * 16, kk * 16, lane);
#pragma unroll
        for (int n2 = 0; n2 < kQTiles / 2; ++n2) {
          uint32_t b[4];
          load_b_nk<D>(b, tq, n2 * 16, kk * 16, lane);
          mma_bf16(st[2 * n2], ka, b[0], b[1]);
          mma_bf16(st[2 * n2 + 1], ka, b[2], b[3]);
        }
      }
      // Pᵀ = 2^(s₂ − lse₂), zero where the query precedes the key or lies past the end.
#pragma unroll
      for (int nt = 0; nt < kQTiles; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int qi = nt * 8 + 2 * c + (e & 1);
          const int query = q0 + qi;
          const int key = warp_k0 + g + (e >> 1) * 8;
          const float p = exp2f(fmaf(st[nt][e], scale_log2, -lse[qi]));
          st[nt][e] = (query >= key && query < seq_len) ? p : 0.f;
        }
      }
      // dV += Pᵀ·dO.
#pragma unroll
      for (int kk = 0; kk < BQ / 16; ++kk) {
        uint32_t p[4];
        p[0] = pack_bf16(st[2 * kk][0], st[2 * kk][1]);
        p[1] = pack_bf16(st[2 * kk][2], st[2 * kk][3]);
        p[2] = pack_bf16(st[2 * kk + 1][0], st[2 * kk + 1][1]);
        p[3] = pack_bf16(st[2 * kk + 1][2], st[2 * kk + 1][3]);
#pragma unroll
        for (int d2 = 0; d2 < kDTiles / 2; ++d2) {
          uint32_t b[4];
          load_b_kn<D>(b, tdo, kk * 16, d2 * 16, lane);
          mma_bf16(dv[2 * d2], p, b[0], b[1]);
          mma_bf16(dv[2 * d2 + 1], p, b[2], b[3]);
        }
      }
      // dPᵀ = V·dOᵀ, then dSᵀ = Pᵀ ∘ (dPᵀ − D) in place of dPᵀ.
      float dpt[kQTiles][4];
#pragma unroll
      for (int i = 0; i < kQTiles; ++i) dpt[i][0] = dpt[i][1] = dpt[i][2] = dpt[i][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < kSteps; ++kk) {
        uint32_t va[4];
        load_a<D>(va, s_v, warp * 16, kk * 16, lane);
#pragma unroll
        for (int n2 = 0; n2 < kQTiles / 2; ++n2) {
          uint32_t b[4];
          load_b_nk<D>(b, tdo, n2 * 16, kk * 16, lane);
          mma_bf16(dpt[2 * n2], va, b[0], b[1]);
          mma_bf16(dpt[2 * n2 + 1], va, b[2], b[3]);
        }
      }
#pragma unroll
      for (int nt = 0; nt < kQTiles; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int qi = nt * 8 + 2 * c + (e & 1);
          // Select rather than multiply: masked rows past the last token may hold
          // non-finite padding statistics, and 0·NaN would leak into dK and dQ.
          dpt[nt][e] = st[nt][e] == 0.f ? 0.f : st[nt][e] * (dpt[nt][e] - dot[qi]);
        }
      }
      // dK += dSᵀ·Q; store dSᵀ (bf16) for the dQ product.
#pragma unroll
      for (int kk = 0; kk < BQ / 16; ++kk) {
        uint32_t ds[4];
        ds[0] = pack_bf16(dpt[2 * kk][0], dpt[2 * kk][1]);
        ds[1] = pack_bf16(dpt[2 * kk][2], dpt[2 * kk][3]);
        ds[2] = pack_bf16(dpt[2 * kk + 1][0], dpt[2 * kk + 1][1]);
        ds[3] = pack_bf16(dpt[2 * kk + 1][2], dpt[2 * kk + 1][3]);
        const int key_row = warp * 16 + g;
        const int qcol = kk * 16 + 2 * c;
        *reinterpret_cast<uint32_t*>(s_ds + tile_offset<BQ>(key_row, qcol)) = ds[0];
        *reinterpret_cast<uint32_t*>(s_ds + tile_offset<BQ>(key_row + 8, qcol)) = ds[1];
        *reinterpret_cast<uint32_t*>(s_ds + tile_offset<BQ>(key_row, qcol + 8)) = ds[2];
        *reinterpret_cast<uint32_t*>(s_ds + tile_offset<BQ>(key_row + 8, qcol + 8)) = ds[3];
#pragma unroll
        for (int d2 = 0; d2 < kDTiles / 2; ++d2) {
          uint32_t b[4];
          load_b_kn<D>(b, tq, kk * 16, d2 * 16, lane);
          mma_bf16(dk[2 * d2], ds, b[0], b[1]);
          mma_bf16(dk[2 * d2 + 1], ds, b[2], b[3]);
        }
      }
    }
    __syncthreads();
    // dQ (BQ queries × D) += dS·K over the block's KB keys: warp w takes query rows
    // (w % 4)·16.. and a 1/(kWarps/4) share of the columns, in chunks of ≤ 64 columns.
    {
      constexpr int kColGroups = kWarps / 4;
      constexpr int kCols = D / kColGroups;
      constexpr int kChunk = kCols < 64 ? kCols : 64;
      const int qrow_local = (warp % 4) * 16;
      const int col0 = (warp / 4) * kCols;
      const int qrow = q0 + qrow_local + g;
      float* dq_base = gr.dq_accum + (row0 + qrow) * (static_cast<int64_t>(a.heads) * D) + head * D;
      const int64_t dq_row8 = 8LL * a.heads * D;
#pragma unroll
      for (int d0 = col0; d0 < col0 + kCols; d0 += kChunk) {
        float acc[kChunk / 8][4];
#pragma unroll
        for (int i = 0; i < kChunk / 8; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KB / 16; ++kk) {
          uint32_t dsa[4];
          load_a_transposed<BQ>(dsa, s_ds, qrow_local, kk * 16, lane);
#pragma unroll
          for (int d2 = 0; d2 < kChunk / 16; ++d2) {
            uint32_t b[4];
            load_b_kn<D>(b, s_k, kk * 16, d0 + d2 * 16, lane);
            mma_bf16(acc[2 * d2], dsa, b[0], b[1]);
            mma_bf16(acc[2 * d2 + 1], dsa, b[2], b[3]);
          }
        }
#pragma unroll
        for (int dt = 0; dt < kChunk / 8; ++dt) {
          const int col = d0 + dt * 8 + 2 * c;
          if (qrow < seq_len) {
            atomicAdd(reinterpret_cast<float2*>(dq_base + col),
                      make_float2(acc[dt][0], acc[dt][1]));
          }
          if (qrow + 8 < seq_len) {
            atomicAdd(reinterpret_cast<float2*>(dq_base + dq_row8 + col),
                      make_float2(acc[dt][2], acc[dt][3]));
          }
        }
      }
    }
    __syncthreads();  // s_ds and this stage are rewritten next iteration
  }

  // dK = scale·Σ dSᵀ·Q, dV as accumulated; bf16 into the gradient rows of this block.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int key = warp_k0 + g + r * 8;
    if (key >= seq_len) continue;
    bf16* dkrow = gr.dk + (row0 + key) * ld + kv_head * D;
    bf16* dvrow = gr.dv + (row0 + key) * ld + kv_head * D;
#pragma unroll
    for (int dt = 0; dt < kDTiles; ++dt) {
      *reinterpret_cast<__nv_bfloat162*>(dkrow + dt * 8 + 2 * c) =
          __floats2bfloat162_rn(dk[dt][2 * r] * scale, dk[dt][2 * r + 1] * scale);
      *reinterpret_cast<__nv_bfloat162*>(dvrow + dt * 8 + 2 * c) =
          __floats2bfloat162_rn(dv[dt][2 * r], dv[dt][2 * r + 1]);
    }
  }
}

// D_i = Σ_d dO_id·O_id for every (token, head); also clears the dQ accumulator. A group
// of D/8 consecutive threads covers one (token, head) row, 8 elements each.
template <int D>
__global__ void attention_row_dot_kernel(AttentionArgs a, AttentionGradArgs gr) {
  const int64_t row_chunks = static_cast<int64_t>(a.heads) * D / 8;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = i < a.num_tokens * row_chunks;
  float sum = 0.f;
  int64_t t = 0;
  int chunk = 0;
  if (active) {
    t = i / row_chunks;
    chunk = static_cast<int>(i % row_chunks);
    const uint4 ov = *reinterpret_cast<const uint4*>(a.o + t * a.ld_o + chunk * 8);
    const uint4 dv = *reinterpret_cast<const uint4*>(gr.d_o + t * a.ld_o + chunk * 8);
    const __nv_bfloat162* o2 = reinterpret_cast<const __nv_bfloat162*>(&ov);
    const __nv_bfloat162* d2 = reinterpret_cast<const __nv_bfloat162*>(&dv);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float2 of = __bfloat1622float2(o2[k]);
      const float2 df = __bfloat1622float2(d2[k]);
      sum += of.x * df.x + of.y * df.y;
    }
    *reinterpret_cast<float4*>(gr.dq_accum + t * a.heads * D + chunk * 8) = make_float4(0, 0, 0, 0);
    *reinterpret_cast<float4*>(gr.dq_accum + t * a.heads * D + chunk * 8 + 4) =
        make_float4(0, 0, 0, 0);
  }
#pragma unroll
  for (int off = 1; off < D / 8; off <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
  if (active && chunk % (D / 8) == 0) gr.row_dot[(chunk / (D / 8)) * a.stat_ld + t] = sum;
}

// dq (bf16, in the q layout) = scale · dq_accum.
__global__ void attention_dq_finalize_kernel(AttentionArgs a, AttentionGradArgs gr, float scale) {
  const int64_t width = static_cast<int64_t>(a.heads) * a.head_dim;
  const int64_t pairs = width / 2;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.num_tokens * pairs) return;
  const int64_t t = i / pairs, col = (i % pairs) * 2;
  const float2 v = *reinterpret_cast<const float2*>(gr.dq_accum + t * width + col);
  *reinterpret_cast<__nv_bfloat162*>(gr.dq + t * a.ld_qkv + col) =
      __floats2bfloat162_rn(v.x * scale, v.y * scale);
}

template <int D, int KB>
void launch_backward_kernel(const AttentionArgs& a, const AttentionGradArgs& g,
                            const int32_t* items, int num_items, cudaStream_t stream,
                            double scale) {
  constexpr int smem = bwd_smem_bytes<D, KB>();
  static bool configured = false;
  if (!configured) {
    CUDA_CHECK(cudaFuncSetAttribute(flash_backward_kernel<D, KB>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    configured = true;
  }
  const dim3 grid(static_cast<unsigned>(a.kv_heads), static_cast<unsigned>(num_items));
  flash_backward_kernel<D, KB><<<grid, KB * 2, smem, stream>>>(
      a, g, items, static_cast<float>(scale * M_LOG2E), static_cast<float>(scale));
  CUDA_CHECK_LAUNCH();
}

template <int D>
void launch_backward(const AttentionArgs& a, const AttentionGradArgs& g, const int32_t* items,
                     int num_items, cudaStream_t stream) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const int64_t chunks = static_cast<int64_t>(a.num_tokens) * a.heads * D / 8;
  attention_row_dot_kernel<D>
      <<<static_cast<unsigned>((chunks + 255) / 256), 256, 0, stream>>>(a, g);
  CUDA_CHECK_LAUNCH();
  if (attention_backward_key_block() == 128) {
    launch_backward_kernel<D, 128>(a, g, items, num_items, stream, scale);
  } else {
    launch_backward_kernel<D, 64>(a, g, items, num_items, stream, scale);
  }
  const int64_t pairs = static_cast<int64_t>(a.num_tokens) * a.heads * D / 2;
  attention_dq_finalize_kernel<<<static_cast<unsigned>((pairs + 255) / 256), 256, 0, stream>>>(
      a, g, static_cast<float>(scale));
  CUDA_CHECK_LAUNCH();
}

}  // namespace

int attention_backward_variant() {
  if (g_backward_variant == 0) {
    const char* env = std::getenv("MINIPT_ATTN_BWD");
    g_backward_variant = (env != nullptr && env[0] == '1') ? 1 : 2;
  }
  return g_backward_variant;
}

void set_attention_backward_variant(int variant) {
  if (variant != 1 && variant != 2)
    throw std::invalid_argument("attention backward variant: 1 or 2");
  g_backward_variant = variant;
}

int attention_backward_key_block() { return attention_backward_variant() == 1 ? 64 : 128; }

void attention_backward(const AttentionArgs& a, const AttentionGradArgs& g, const int32_t* items,
                        int num_items, cudaStream_t stream) {
  if (num_items == 0) return;
  switch (a.head_dim) {
    case 32:
      launch_backward<32>(a, g, items, num_items, stream);
      break;
    case 64:
      launch_backward<64>(a, g, items, num_items, stream);
      break;
    case 128:
      launch_backward<128>(a, g, items, num_items, stream);
      break;
    default:
      throw std::invalid_argument("attention: head_dim " + std::to_string(a.head_dim) +
                                  " not supported (32, 64, 128)");
  }
}

}  // namespace minipt::cuda
