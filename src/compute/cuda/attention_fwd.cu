// Flash attention forward (FlashAttention-2 scheme) for packed causal sequences.
//
// One block computes kAttnFwdBlockM query rows of one head of one sequence; each of its
// 4 warps owns 32 rows. Key/value tiles of kAttnFwdBlockN rows stream through shared
// memory (double-buffered cp.async) from the sequence start up to the diagonal. Scores
// are kept in base 2: s₂ = (q·k)·scale·log₂e, so exp2 replaces exp. Online softmax per
// row: running max m and running sum l; when a tile raises the max to m', the earlier
// sum and output rows are rescaled by 2^(m−m'). At the end O /= l and the row's
// log-sum-exp (base 2) m + log₂ l is saved for the backward pass.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "compute/cuda/attention.hpp"
#include "compute/cuda/attention_common.cuh"
#include "compute/cuda/cuda_check.hpp"

namespace minipt::cuda {

using attn::bf16;

namespace {

// 4 warps × 32 query rows: each warp runs two 16-row m-tiles through every product, so
// each K/V fragment read from shared memory feeds two tensor-core instructions. With one
// m-tile per warp the kernel is bound by shared-memory bandwidth (one 512-byte ldmatrix
// per two mma); with two it is closer to balanced. Q is re-read from shared memory at
// each k-step (keeping it in registers would not fit next to the 2×(S, O) accumulators).
constexpr int kFwdWarps = 4;
constexpr int kFwdThreads = kFwdWarps * 32;
constexpr int kRowsPerWarp = kAttnFwdBlockM / kFwdWarps;  // 32
constexpr int kMTiles = kRowsPerWarp / 16;                // 2

template <int D>
constexpr int fwd_smem_bytes() {
  return (kAttnFwdBlockM * D + 4 * kAttnFwdBlockN * D) * 2;
}

template <int D>
__global__ void __launch_bounds__(kFwdThreads, 2)
    flash_forward_kernel(AttentionArgs a, const int32_t* __restrict__ items, float scale_log2) {
  using namespace attn;
  constexpr int BM = kAttnFwdBlockM, BN = kAttnFwdBlockN;
  constexpr int kSteps = D / 16;     // k-steps of Q·Kᵀ
  constexpr int kDTiles = D / 8;     // n-tiles of the output row
  constexpr int kKeyTiles = BN / 8;  // n-tiles of the score row
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* s_q = reinterpret_cast<bf16*>(smem_raw);
  bf16* s_k = s_q + BM * D;      // [2][BN][D]
  bf16* s_v = s_k + 2 * BN * D;  // [2][BN][D]

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, c = lane & 3;
  const int head = blockIdx.x;
  const int seq = items[2 * blockIdx.y], qblock = items[2 * blockIdx.y + 1];
  const int seq_start = a.cu_seqlens[seq];
  const int seq_len = a.cu_seqlens[seq + 1] - seq_start;
  const int q0 = qblock * BM;
  const int kv_head = head / (a.heads / a.kv_heads);
  const bf16* qg = a.q + static_cast<int64_t>(seq_start) * a.ld_qkv + head * D;
  const bf16* kg = a.k + static_cast<int64_t>(seq_start) * a.ld_qkv + kv_head * D;
  const bf16* vg = a.v + static_cast<int64_t>(seq_start) * a.ld_qkv + kv_head * D;

  const int q_last = min(q0 + BM, seq_len) - 1;
  const int num_tiles = q_last / BN + 1;

  load_tile<BM, D, kFwdThreads>(s_q, qg, a.ld_qkv, q0, seq_len, tid);
  load_tile<BN, D, kFwdThreads>(s_k, kg, a.ld_qkv, 0, seq_len, tid);
  load_tile<BN, D, kFwdThreads>(s_v, vg, a.ld_qkv, 0, seq_len, tid);
  cp_async_commit();

  float o_acc[kMTiles][kDTiles][4];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
    for (int i = 0; i < kDTiles; ++i)
      o_acc[mt][i][0] = o_acc[mt][i][1] = o_acc[mt][i][2] = o_acc[mt][i][3] = 0.f;
  float row_max[kMTiles][2], row_sum[kMTiles][2];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
    row_max[mt][0] = row_max[mt][1] = -INFINITY;
    row_sum[mt][0] = row_sum[mt][1] = 0.f;
  }
  const int warp_row0 = warp * kRowsPerWarp;  // within the block
  const int warp_q0 = q0 + warp_row0;         // first query row of this warp (relative)

  for (int j = 0; j < num_tiles; ++j) {
    const int stage = j & 1;
    if (j + 1 < num_tiles) {
      const int ns = (j + 1) & 1;
      load_tile<BN, D, kFwdThreads>(s_k + ns * BN * D, kg, a.ld_qkv, (j + 1) * BN, seq_len, tid);
      load_tile<BN, D, kFwdThreads>(s_v + ns * BN * D, vg, a.ld_qkv, (j + 1) * BN, seq_len, tid);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const bf16* tk = s_k + stage * BN * D;
    const bf16* tv = s_v + stage * BN * D;
    const int key0 = j * BN;
    // A warp whose rows all precede this tile's keys has nothing to add (warp-uniform).
    if (key0 <= warp_q0 + kRowsPerWarp - 1) {
      // S = Q·Kᵀ for this warp's 2×16 rows × BN keys.
      float s[kMTiles][kKeyTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
        for (int i = 0; i < kKeyTiles; ++i)
          s[mt][i][0] = s[mt][i][1] = s[mt][i][2] = s[mt][i][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < kSteps; ++kk) {
        uint32_t qa[kMTiles][4];
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt)
          load_a<D>(qa[mt], s_q, warp_row0 + mt * 16, kk * 16, lane);
#pragma unroll
        for (int n2 = 0; n2 < kKeyTiles / 2; ++n2) {
          uint32_t b[4];
          load_b_nk<D>(b, tk, n2 * 16, kk * 16, lane);
#pragma unroll
          for (int mt = 0; mt < kMTiles; ++mt) {
            mma_bf16(s[mt][2 * n2], qa[mt], b[0], b[1]);
            mma_bf16(s[mt][2 * n2 + 1], qa[mt], b[2], b[3]);
          }
        }
      }
      // Causal mask where this tile reaches past the warp's first row (keys past the
      // sequence end are beyond every valid query, so the same test removes them).
      if (key0 + BN - 1 > warp_q0) {
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
          for (int nt = 0; nt < kKeyTiles; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const int key = key0 + nt * 8 + 2 * c + (e & 1);
              const int query = warp_q0 + mt * 16 + g + (e >> 1) * 8;
              if (key > query) s[mt][nt][e] = -INFINITY;
            }
      }
      // Online softmax (two rows per thread and m-tile: g and g+8; a row's 4 owners form
      // a quad).
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          float mx = -INFINITY;
#pragma unroll
          for (int nt = 0; nt < kKeyTiles; ++nt)
            mx = fmaxf(mx, fmaxf(s[mt][nt][2 * r], s[mt][nt][2 * r + 1]));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          // A row fully masked in this tile keeps its max (it saw key 0 in tile 0).
          const float m_new = fmaxf(row_max[mt][r], mx * scale_log2);
          const float alpha = exp2f(row_max[mt][r] - m_new);
          row_max[mt][r] = m_new;
          float sum = 0.f;
#pragma unroll
          for (int nt = 0; nt < kKeyTiles; ++nt) {
            s[mt][nt][2 * r] = exp2f(fmaf(s[mt][nt][2 * r], scale_log2, -m_new));
            s[mt][nt][2 * r + 1] = exp2f(fmaf(s[mt][nt][2 * r + 1], scale_log2, -m_new));
            sum += s[mt][nt][2 * r] + s[mt][nt][2 * r + 1];
          }
          row_sum[mt][r] = row_sum[mt][r] * alpha + sum;
#pragma unroll
          for (int dt = 0; dt < kDTiles; ++dt) {
            o_acc[mt][dt][2 * r] *= alpha;
            o_acc[mt][dt][2 * r + 1] *= alpha;
          }
        }
        // O += P·V, P taken from the score registers as A fragments.
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk) {
        uint32_t p[kMTiles][4];
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          p[mt][0] = pack_bf16(s[mt][2 * kk][0], s[mt][2 * kk][1]);
          p[mt][1] = pack_bf16(s[mt][2 * kk][2], s[mt][2 * kk][3]);
          p[mt][2] = pack_bf16(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
          p[mt][3] = pack_bf16(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
        }
#pragma unroll
        for (int d2 = 0; d2 < kDTiles / 2; ++d2) {
          uint32_t b[4];
          load_b_kn<D>(b, tv, kk * 16, d2 * 16, lane);
#pragma unroll
          for (int mt = 0; mt < kMTiles; ++mt) {
            mma_bf16(o_acc[mt][2 * d2], p[mt], b[0], b[1]);
            mma_bf16(o_acc[mt][2 * d2 + 1], p[mt], b[2], b[3]);
          }
        }
      }
    }
    __syncthreads();  // this stage is overwritten by the prefetch of iteration j+2
  }

  // Epilogue: normalise, write O (bf16) and the base-2 log-sum-exp.
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float l = row_sum[mt][r];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const float inv = 1.f / l;
      const int row = warp_q0 + mt * 16 + g + r * 8;
      if (row < seq_len) {
        bf16* orow = a.o + static_cast<int64_t>(seq_start + row) * a.ld_o + head * D;
#pragma unroll
        for (int dt = 0; dt < kDTiles; ++dt) {
          *reinterpret_cast<__nv_bfloat162*>(orow + dt * 8 + 2 * c) =
              __floats2bfloat162_rn(o_acc[mt][dt][2 * r] * inv, o_acc[mt][dt][2 * r + 1] * inv);
        }
        if (c == 0) a.lse2[head * a.stat_ld + seq_start + row] = row_max[mt][r] + log2f(l);
      }
    }
}

template <int D>
void launch_forward(const AttentionArgs& a, const int32_t* items, int num_items,
                    cudaStream_t stream) {
  constexpr int smem = fwd_smem_bytes<D>();
  static bool configured = false;
  if (!configured) {
    CUDA_CHECK(cudaFuncSetAttribute(flash_forward_kernel<D>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    configured = true;
  }
  const float scale_log2 = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)) * M_LOG2E);
  const dim3 grid(static_cast<unsigned>(a.heads), static_cast<unsigned>(num_items));
  flash_forward_kernel<D><<<grid, kFwdThreads, smem, stream>>>(a, items, scale_log2);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

AttentionWork plan_attention_work(const std::vector<int32_t>& cu_seqlens) {
  struct Item {
    int32_t seq, block, work;
  };
  std::vector<Item> fwd, bwd;
  for (size_t s = 0; s + 1 < cu_seqlens.size(); ++s) {
    const int32_t len = cu_seqlens[s + 1] - cu_seqlens[s];
    const int32_t nq = (len + kAttnFwdBlockM - 1) / kAttnFwdBlockM;
    for (int32_t b = 0; b < nq; ++b) fwd.push_back({static_cast<int32_t>(s), b, b + 1});
    // Backward work of a key block ∝ the query tiles at or after it.
    const int32_t kb = attention_backward_key_block();
    const int32_t nk = (len + kb - 1) / kb;
    for (int32_t b = 0; b < nk; ++b) bwd.push_back({static_cast<int32_t>(s), b, len - b * kb});
  }
  const auto heavier = [](const Item& x, const Item& y) { return x.work > y.work; };
  std::stable_sort(fwd.begin(), fwd.end(), heavier);
  std::stable_sort(bwd.begin(), bwd.end(), heavier);
  AttentionWork w;
  for (const Item& i : fwd) w.forward.insert(w.forward.end(), {i.seq, i.block});
  for (const Item& i : bwd) w.backward.insert(w.backward.end(), {i.seq, i.block});
  return w;
}

void attention_forward(const AttentionArgs& a, const int32_t* items, int num_items,
                       cudaStream_t stream) {
  if (num_items == 0) return;
  if (a.heads % a.kv_heads != 0)
    throw std::invalid_argument("heads must be a multiple of kv_heads");
  switch (a.head_dim) {
    case 32:
      launch_forward<32>(a, items, num_items, stream);
      break;
    case 64:
      launch_forward<64>(a, items, num_items, stream);
      break;
    case 128:
      launch_forward<128>(a, items, num_items, stream);
      break;
    default:
      throw std::invalid_argument("attention: head_dim " + std::to_string(a.head_dim) +
                                  " not supported (32, 64, 128)");
  }
}

}  // namespace minipt::cuda
