#include "compute/kokkos/attention.hpp"

#include <Kokkos_Core.hpp>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "compute/kokkos/gemm.hpp"
#include "compute/kokkos/kernels.hpp"

namespace minipt::kokkos {
namespace {

// Per-thread tile buffers (a work item runs on one thread from start to end).
template <class T>
struct AttentionScratch {
  std::vector<T> scores, probs_grad, out, row_max, row_sum;
  void ensure(int head_dim) {
    scores.resize(static_cast<size_t>(kQueryTile) * kKeyTile);
    probs_grad.resize(scores.size());
    out.resize(static_cast<size_t>(kQueryTile) * head_dim);
    row_max.resize(kQueryTile);
    row_sum.resize(kQueryTile);
  }
};
template <class T>
AttentionScratch<T>& thread_scratch(int head_dim) {
  thread_local AttentionScratch<T> scratch;
  scratch.ensure(head_dim);
  return scratch;
}

// S = scale·Q_tile·K_tileᵀ (nq×nk, leading dimension kKeyTile) with the causal mask:
// entry (i, j) is -inf when key j0+j comes after query i0+i (positions within the
// sequence).
template <class T>
void masked_scores(int64_t nq, int64_t nk, int head_dim, double scale, const T* q_rows,
                   int64_t q_stride, const T* k_rows, int64_t k_stride, int64_t i0, int64_t j0,
                   T* scores) {
  gemm_serial<T>(nq, nk, head_dim, {q_rows, q_stride, 1}, {k_rows, 1, k_stride}, scores, kKeyTile,
                 false);
  const T s = static_cast<T>(scale);
  for (int64_t i = 0; i < nq; ++i) {
    T* row = scores + i * kKeyTile;
    for (int64_t j = 0; j < nk; ++j) row[j] *= s;
    // keys j with j0 + j > i0 + i are in the future of query i
    for (int64_t j = std::max<int64_t>(0, i0 + i - j0 + 1); j < nk; ++j)
      row[j] = -std::numeric_limits<T>::infinity();
  }
}

struct Sequence {
  int64_t start, length;
};

std::vector<Sequence> sequences_of(const int32_t* cu_seqlens, int num_sequences) {
  std::vector<Sequence> out;
  for (int s = 0; s < num_sequences; ++s) {
    const int64_t len = cu_seqlens[s + 1] - cu_seqlens[s];
    if (len > 0) out.push_back({cu_seqlens[s], len});
  }
  return out;
}

}  // namespace

// Forward, one work item = (sequence, kv head, query tile), for every query head of
// the kv head's group. Online softmax over key tiles (Milakov & Gimelshein 2018;
// Dao et al. 2022): per query row keep the running max m, the running sum
// l = Σ exp(s − m) and the unnormalised output O = Σ exp(s − m)·v. A new key tile with
// scores s_j moves the max to m' = max(m, max_j s_j); old terms are rescaled by
// α = exp(m − m'):  l ← α·l + Σ_j exp(s_j − m'),  O ← α·O + Σ_j exp(s_j − m')·v_j.
// At the end o = O/l and lse = m + log l. Only key tiles that start at or before the
// tile's last query are visited (causality); memory is O(tile²) per thread.
template <class T>
void attention_forward(const AttentionShape& shape, const int32_t* cu_seqlens, int num_sequences,
                       const T* q, const T* k, const T* v, T* o, T* lse) {
  const int d = shape.head_dim;
  const int group = shape.heads / shape.kv_heads;
  const int64_t q_stride = static_cast<int64_t>(shape.heads) * d;
  const int64_t k_stride = static_cast<int64_t>(shape.kv_heads) * d;

  struct Item {
    int64_t start, length, tile_start;
    int kv_head;
  };
  std::vector<Item> items;
  for (const Sequence& s : sequences_of(cu_seqlens, num_sequences))
    for (int g = 0; g < shape.kv_heads; ++g)
      for (int64_t i0 = 0; i0 < s.length; i0 += kQueryTile)
        items.push_back({s.start, s.length, i0, g});

  const Item* item_list = items.data();
  for_each_row("minipt::attention_forward", static_cast<int64_t>(items.size()),
               [=](const int64_t index) {
    const Item& it = item_list[index];
    AttentionScratch<T>& ws = thread_scratch<T>(d);
    const int64_t i0 = it.tile_start;
    const int64_t nq = std::min<int64_t>(kQueryTile, it.length - i0);
    const T* k_head = k + it.start * k_stride + it.kv_head * d;
    const T* v_head = v + it.start * k_stride + it.kv_head * d;
    for (int member = 0; member < group; ++member) {
      const int h = it.kv_head * group + member;
      const T* q_rows = q + (it.start + i0) * q_stride + h * d;
      T* scores = ws.scores.data();
      T* out = ws.out.data();
      std::fill(out, out + nq * d, T(0));
      std::fill(ws.row_max.begin(), ws.row_max.end(), -std::numeric_limits<T>::infinity());
      std::fill(ws.row_sum.begin(), ws.row_sum.end(), T(0));
      for (int64_t j0 = 0; j0 < i0 + nq; j0 += kKeyTile) {
        const int64_t nk = std::min<int64_t>(kKeyTile, i0 + nq - j0);
        masked_scores(nq, nk, d, shape.scale, q_rows, q_stride, k_head + j0 * k_stride, k_stride,
                      i0, j0, scores);
        for (int64_t i = 0; i < nq; ++i) {
          T* row = scores + i * kKeyTile;
          const T tile_max = max_of(row, nk);
          const T m_new = std::max(ws.row_max[i], tile_max);
          if (m_new == -std::numeric_limits<T>::infinity()) {  // every key so far masked
            std::fill(row, row + nk, T(0));
            continue;
          }
          const T alpha = exp_of(ws.row_max[i] - m_new);
          for (int64_t j = 0; j < nk; ++j) row[j] = exp_of(row[j] - m_new);
          ws.row_sum[i] = ws.row_sum[i] * alpha + sum_of(row, nk);
          ws.row_max[i] = m_new;
          if (alpha != T(1)) {
            T* out_row = out + i * d;
            for (int c = 0; c < d; ++c) out_row[c] *= alpha;
          }
        }
        gemm_serial<T>(nq, d, nk, {scores, kKeyTile, 1}, {v_head + j0 * k_stride, k_stride, 1},
                       out, d, true);
      }
      for (int64_t i = 0; i < nq; ++i) {
        const int64_t t = it.start + i0 + i;
        const T inv = T(1) / ws.row_sum[i];
        T* o_row = o + t * q_stride + h * d;
        for (int c = 0; c < d; ++c) o_row[c] = out[i * d + c] * inv;
        lse[t * shape.heads + h] = ws.row_max[i] + std::log(ws.row_sum[i]);
      }
    }
  });
}

// Backward. With s_ij = scale·q_i·k_j, P_ij = exp(s_ij − lse_i) and o_i = Σ_j P_ij v_j:
//   dv_j  = Σ_i P_ij · do_i
//   dP_ij = do_i · v_j
//   ds_ij = P_ij · (dP_ij − Σ_l P_il dP_il) = P_ij · (dP_ij − D_i),
//           D_i = Σ_l P_il (do_i·v_l) = do_i · o_i            (softmax Jacobian)
//   dq_i  = scale · Σ_j ds_ij k_j,    dk_j = scale · Σ_i ds_ij q_i
// P is rebuilt tile by tile from the stored lse, never stored whole. One work item =
// (sequence, kv head): it owns the dq rows of its query heads and the dk/dv rows of
// its kv head in that sequence, so the accumulations need no atomics. Key tiles are
// the outer loop (dk, dv of a tile stay in cache), query tiles at or after it inner.
template <class T>
void attention_backward(const AttentionShape& shape, const int32_t* cu_seqlens,
                        int num_sequences, const T* q, const T* k, const T* v, const T* o,
                        const T* lse, const T* dout, T* delta, T* dq, T* dk, T* dv) {
  const int d = shape.head_dim;
  const int heads = shape.heads;
  const int group = shape.heads / shape.kv_heads;
  const int64_t q_stride = static_cast<int64_t>(heads) * d;
  const int64_t k_stride = static_cast<int64_t>(shape.kv_heads) * d;
  const int64_t tokens = cu_seqlens[num_sequences];

  for_each_row("minipt::attention_backward_delta", tokens, [=](const int64_t t) {
    for (int h = 0; h < heads; ++h) {
      const int64_t offset = t * q_stride + h * d;
      delta[t * heads + h] = dot_of(dout + offset, o + offset, d);
    }
    std::fill(dq + t * q_stride, dq + (t + 1) * q_stride, T(0));
    std::fill(dk + t * k_stride, dk + (t + 1) * k_stride, T(0));
    std::fill(dv + t * k_stride, dv + (t + 1) * k_stride, T(0));
  });

  struct Item {
    int64_t start, length;
    int kv_head;
  };
  std::vector<Item> items;
  for (const Sequence& s : sequences_of(cu_seqlens, num_sequences))
    for (int g = 0; g < shape.kv_heads; ++g) items.push_back({s.start, s.length, g});

  const Item* item_list = items.data();
  const T scale = static_cast<T>(shape.scale);
  for_each_row("minipt::attention_backward", static_cast<int64_t>(items.size()),
               [=](const int64_t index) {
    const Item& it = item_list[index];
    AttentionScratch<T>& ws = thread_scratch<T>(d);
    T* probs = ws.scores.data();
    T* grad = ws.probs_grad.data();
    const int64_t kv_offset = it.start * k_stride + it.kv_head * d;
    for (int64_t j0 = 0; j0 < it.length; j0 += kKeyTile) {
      const int64_t nk = std::min<int64_t>(kKeyTile, it.length - j0);
      const T* k_tile = k + kv_offset + j0 * k_stride;
      const T* v_tile = v + kv_offset + j0 * k_stride;
      T* dk_tile = dk + kv_offset + j0 * k_stride;
      T* dv_tile = dv + kv_offset + j0 * k_stride;
      for (int64_t i0 = j0 / kQueryTile * kQueryTile; i0 < it.length; i0 += kQueryTile) {
        const int64_t nq = std::min<int64_t>(kQueryTile, it.length - i0);
        for (int member = 0; member < group; ++member) {
          const int h = it.kv_head * group + member;
          const int64_t q_offset = (it.start + i0) * q_stride + h * d;
          masked_scores(nq, nk, d, shape.scale, q + q_offset, q_stride, k_tile, k_stride, i0, j0,
                        probs);
          for (int64_t i = 0; i < nq; ++i) {
            T* row = probs + i * kKeyTile;
            const T row_lse = lse[(it.start + i0 + i) * heads + h];
            for (int64_t j = 0; j < nk; ++j) row[j] = exp_of(row[j] - row_lse);
          }
          gemm_serial<T>(nq, nk, d, {dout + q_offset, q_stride, 1}, {v_tile, 1, k_stride}, grad,
                         kKeyTile, false);
          for (int64_t i = 0; i < nq; ++i) {
            const T row_delta = delta[(it.start + i0 + i) * heads + h];
            T* g = grad + i * kKeyTile;
            const T* p = probs + i * kKeyTile;
            for (int64_t j = 0; j < nk; ++j) g[j] = p[j] * (g[j] - row_delta) * scale;
          }
          gemm_serial<T>(nk, d, nq, {probs, 1, kKeyTile}, {dout + q_offset, q_stride, 1}, dv_tile,
                         k_stride, true);
          gemm_serial<T>(nq, d, nk, {grad, kKeyTile, 1}, {k_tile, k_stride, 1}, dq + q_offset,
                         q_stride, true);
          gemm_serial<T>(nk, d, nq, {grad, 1, kKeyTile}, {q + q_offset, q_stride, 1}, dk_tile,
                         k_stride, true);
        }
      }
    }
  });
}

template void attention_forward<float>(const AttentionShape&, const int32_t*, int, const float*,
                                       const float*, const float*, float*, float*);
template void attention_forward<double>(const AttentionShape&, const int32_t*, int,
                                        const double*, const double*, const double*, double*,
                                        double*);
template void attention_backward<float>(const AttentionShape&, const int32_t*, int,
                                        const float*, const float*, const float*, const float*,
                                        const float*, const float*, float*, float*, float*,
                                        float*);
template void attention_backward<double>(const AttentionShape&, const int32_t*, int,
                                         const double*, const double*, const double*,
                                         const double*, const double*, const double*, double*,
                                         double*, double*, double*);

}  // namespace minipt::kokkos
