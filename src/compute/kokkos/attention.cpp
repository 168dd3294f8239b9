#include "compute/kokkos/attention.hpp"

#include <Kokkos_Core.hpp>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "compute/kokkos/gemm.hpp"
#include "compute/kokkos/kernels.hpp"
#include "compute/kokkos/vector_math.hpp"

namespace minipt::kokkos {
namespace {

// Per-thread buffers (a work item runs on one thread from start to end): the packed
// operands of one (sequence, kv head) and the tiles of one query×key block.
template <class T>
struct AttentionScratch {
  std::vector<T> k_cols, v_cols, k_rows, v_rows, q_scaled, q_rows, dout_a, dout_rows;
  std::vector<T> scores, grad, out, row_max, row_sum;
  void ensure_tiles(int head_dim) {
    scores.resize(static_cast<size_t>(kQueryTile) * kKeyTile);
    grad.resize(scores.size());
    out.resize(static_cast<size_t>(kQueryTile) * head_dim);
    row_max.resize(kQueryTile);
    row_sum.resize(kQueryTile);
  }
};
template <class T>
AttentionScratch<T>& thread_scratch(int head_dim) {
  thread_local AttentionScratch<T> scratch;
  scratch.ensure_tiles(head_dim);
  return scratch;
}

// Packed forms of one head's [length][d] slice (rows `stride` apart), see gemm.hpp:
//   as_columns: B operand of X·(this)ᵀ  (depth d, one column per token)
//   as_rows:    B operand of Y·(this)   (depth = tokens, d columns); strips
//               nr·length apart so a tile starting at token p is pointer + p·nr
//   as_a:       A operand (rows = tokens, depth d), times `scale`
template <class T>
void pack_as_columns(const T* x, int64_t stride, int64_t length, int d, std::vector<T>& out) {
  out.resize(static_cast<size_t>(packed_b_size<T>(d, length)));
  pack_b_operand<T>({x, 1, stride}, d, length, int64_t{gemm_tile_cols<T>()} * d, out.data());
}
template <class T>
int64_t row_strip_stride(int64_t length) {
  return int64_t{gemm_tile_cols<T>()} * length;
}
template <class T>
void pack_as_rows(const T* x, int64_t stride, int64_t length, int d, std::vector<T>& out) {
  out.resize(static_cast<size_t>(packed_b_size<T>(length, d)));
  pack_b_operand<T>({x, stride, 1}, length, d, row_strip_stride<T>(length), out.data());
}
template <class T>
void pack_as_a(const T* x, int64_t stride, int64_t length, int d, T scale, std::vector<T>& out) {
  out.resize(static_cast<size_t>(packed_a_size<T>(length, d)));
  pack_a_operand<T>({x, stride, 1}, length, d, scale, out.data());
}

// S = (scale·Q_tile)·K_tileᵀ into `scores` (leading dimension kKeyTile), then the
// causal mask: entry (i, j) is −inf when key j0+j comes after query i0+i.
template <class T>
void tile_scores(int64_t nq, int64_t nk, int d, const T* q_scaled_packed, const T* k_cols_packed,
                 int64_t i0, int64_t j0, T* scores) {
  multiply_packed<T>(nq, nk, d, q_scaled_packed + i0 * d, k_cols_packed + j0 * d,
                     int64_t{gemm_tile_cols<T>()} * d, scores, kKeyTile, false);
  if (j0 + nk - 1 <= i0) return;  // tile entirely in the past of every query
  for (int64_t i = 0; i < nq; ++i) {
    T* row = scores + i * kKeyTile;
    for (int64_t j = std::max<int64_t>(0, i0 + i - j0 + 1); j < nk; ++j)
      row[j] = -std::numeric_limits<T>::infinity();
  }
}

struct WorkItem {
  int64_t start, length;
  int kv_head;
};

std::vector<WorkItem> work_items(const int32_t* cu_seqlens, int num_sequences, int kv_heads) {
  std::vector<WorkItem> out;
  for (int s = 0; s < num_sequences; ++s) {
    const int64_t len = cu_seqlens[s + 1] - cu_seqlens[s];
    if (len > 0)
      for (int g = 0; g < kv_heads; ++g) out.push_back({cu_seqlens[s], len, g});
  }
  // longest first, so that threads that finish early pick up the short ones
  std::stable_sort(out.begin(), out.end(),
                   [](const WorkItem& a, const WorkItem& b) { return a.length > b.length; });
  return out;
}

}  // namespace

// Forward. One work item = (sequence, kv head): K and V of that head are packed once
// for the whole sequence, then for every query head of the group and every query tile
// an online softmax runs over the key tiles (Milakov & Gimelshein 2018; Dao et al.
// 2022): per query row keep the running max m, the running sum l = Σ exp(s − m) and
// the unnormalised output O = Σ exp(s − m)·v. A key tile with scores s_j moves the max
// to m' = max(m, max_j s_j); old terms are rescaled by α = exp(m − m'):
//   l ← α·l + Σ_j exp(s_j − m'),   O ← α·O + Σ_j exp(s_j − m')·v_j.
// At the end o = O/l and lse = m + log l. Only key tiles that start at or before the
// tile's last query are visited (causality). Memory: packed copies of the sequence's
// K, V, Q (linear in its length) and O(tile²) tiles; never L×L.
template <class T>
void attention_forward(const AttentionShape& shape, const int32_t* cu_seqlens, int num_sequences,
                       const T* q, const T* k, const T* v, T* o, T* lse) {
  const int d = shape.head_dim;
  const int group = shape.heads / shape.kv_heads;
  const int64_t q_stride = static_cast<int64_t>(shape.heads) * d;
  const int64_t k_stride = static_cast<int64_t>(shape.kv_heads) * d;
  const std::vector<WorkItem> items = work_items(cu_seqlens, num_sequences, shape.kv_heads);
  const WorkItem* item_list = items.data();
  const T scale = static_cast<T>(shape.scale);

  for_each_row(
      "minipt::attention_forward", static_cast<int64_t>(items.size()), [=](const int64_t index) {
        const WorkItem& it = item_list[index];
        AttentionScratch<T>& ws = thread_scratch<T>(d);
        const int64_t len = it.length;
        pack_as_columns(k + it.start * k_stride + it.kv_head * d, k_stride, len, d, ws.k_cols);
        pack_as_rows(v + it.start * k_stride + it.kv_head * d, k_stride, len, d, ws.v_rows);
        const int64_t v_strip = row_strip_stride<T>(len);
        T* scores = ws.scores.data();
        T* out = ws.out.data();
        for (int member = 0; member < group; ++member) {
          const int h = it.kv_head * group + member;
          pack_as_a(q + it.start * q_stride + h * d, q_stride, len, d, scale, ws.q_scaled);
          for (int64_t i0 = 0; i0 < len; i0 += kQueryTile) {
            const int64_t nq = std::min<int64_t>(kQueryTile, len - i0);
            std::fill(out, out + nq * d, T(0));
            std::fill(ws.row_max.begin(), ws.row_max.end(), -std::numeric_limits<T>::infinity());
            std::fill(ws.row_sum.begin(), ws.row_sum.end(), T(0));
            for (int64_t j0 = 0; j0 < i0 + nq; j0 += kKeyTile) {
              const int64_t nk = std::min<int64_t>(kKeyTile, i0 + nq - j0);
              tile_scores(nq, nk, d, ws.q_scaled.data(), ws.k_cols.data(), i0, j0, scores);
              for (int64_t i = 0; i < nq; ++i) {
                T* row = scores + i * kKeyTile;
                const T m_new = std::max(ws.row_max[i], row_max(row, nk));
                if (m_new == -std::numeric_limits<T>::infinity()) {  // every key so far masked
                  std::fill(row, row + nk, T(0));
                  continue;
                }
                const T alpha = exp_of(ws.row_max[i] - m_new);
                ws.row_sum[i] = ws.row_sum[i] * alpha + exp_shifted_sum(row, nk, m_new);
                ws.row_max[i] = m_new;
                if (alpha != T(1)) {
                  T* out_row = out + i * d;
                  for (int c = 0; c < d; ++c) out_row[c] *= alpha;
                }
              }
              multiply_strided_a<T>(nq, d, nk, {scores, kKeyTile, 1},
                                    ws.v_rows.data() + j0 * gemm_tile_cols<T>(), v_strip, out, d,
                                    true);
            }
            for (int64_t i = 0; i < nq; ++i) {
              const int64_t t = it.start + i0 + i;
              const T inv = T(1) / ws.row_sum[i];
              T* o_row = o + t * q_stride + h * d;
              for (int c = 0; c < d; ++c) o_row[c] = out[i * d + c] * inv;
              lse[t * shape.heads + h] = ws.row_max[i] + std::log(ws.row_sum[i]);
            }
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
// P is rebuilt tile by tile from the stored lse (bit for bit the forward's scores:
// same packing, same kernel), never stored whole. One work item = (sequence, kv head):
// it owns the dq rows of its query heads and the dk/dv rows of its kv head in that
// sequence, so the accumulations need no atomics. Per query head, key tiles are the
// outer loop (their dk, dv stay in cache), query tiles at or after them inner.
template <class T>
void attention_backward(const AttentionShape& shape, const int32_t* cu_seqlens, int num_sequences,
                        const T* q, const T* k, const T* v, const T* o, const T* lse, const T* dout,
                        T* delta, T* dq, T* dk, T* dv) {
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

  const std::vector<WorkItem> items = work_items(cu_seqlens, num_sequences, shape.kv_heads);
  const WorkItem* item_list = items.data();
  const T scale = static_cast<T>(shape.scale);
  for_each_row(
      "minipt::attention_backward", static_cast<int64_t>(items.size()), [=](const int64_t index) {
        const WorkItem& it = item_list[index];
        AttentionScratch<T>& ws = thread_scratch<T>(d);
        const int64_t len = it.length;
        const int64_t kv_offset = it.start * k_stride + it.kv_head * d;
        const int64_t nr = gemm_tile_cols<T>();
        const int64_t row_strip = row_strip_stride<T>(len);
        pack_as_columns(k + kv_offset, k_stride, len, d, ws.k_cols);
        pack_as_columns(v + kv_offset, k_stride, len, d, ws.v_cols);
        pack_as_rows(k + kv_offset, k_stride, len, d, ws.k_rows);
        T* probs = ws.scores.data();
        T* grad = ws.grad.data();
        for (int member = 0; member < group; ++member) {
          const int h = it.kv_head * group + member;
          const int64_t q_offset = it.start * q_stride + h * d;
          pack_as_a(q + q_offset, q_stride, len, d, scale, ws.q_scaled);
          pack_as_rows(q + q_offset, q_stride, len, d, ws.q_rows);
          pack_as_a(dout + q_offset, q_stride, len, d, T(1), ws.dout_a);
          pack_as_rows(dout + q_offset, q_stride, len, d, ws.dout_rows);
          for (int64_t j0 = 0; j0 < len; j0 += kKeyTile) {
            const int64_t nk = std::min<int64_t>(kKeyTile, len - j0);
            T* dk_tile = dk + kv_offset + j0 * k_stride;
            T* dv_tile = dv + kv_offset + j0 * k_stride;
            for (int64_t i0 = j0 / kQueryTile * kQueryTile; i0 < len; i0 += kQueryTile) {
              const int64_t nq = std::min<int64_t>(kQueryTile, len - i0);
              tile_scores(nq, nk, d, ws.q_scaled.data(), ws.k_cols.data(), i0, j0, probs);
              for (int64_t i = 0; i < nq; ++i)
                exp_shifted_scaled(probs + i * kKeyTile, nk, lse[(it.start + i0 + i) * heads + h],
                                   T(1));
              // dP = dO·Vᵀ, then dS = P ⊙ (dP − D)·scale in place
              multiply_packed<T>(nq, nk, d, ws.dout_a.data() + i0 * d, ws.v_cols.data() + j0 * d,
                                 nr * d, grad, kKeyTile, false);
              for (int64_t i = 0; i < nq; ++i) {
                const T row_delta = delta[(it.start + i0 + i) * heads + h];
                T* g = grad + i * kKeyTile;
                const T* p = probs + i * kKeyTile;
                for (int64_t j = 0; j < nk; ++j) g[j] = p[j] * (g[j] - row_delta) * scale;
              }
              // dV_tile += Pᵀ·dO_tile
              multiply_strided_a<T>(nk, d, nq, {probs, 1, kKeyTile}, ws.dout_rows.data() + i0 * nr,
                                    row_strip, dv_tile, k_stride, true);
              // dQ_tile += dS·K_tile
              multiply_strided_a<T>(nq, d, nk, {grad, kKeyTile, 1}, ws.k_rows.data() + j0 * nr,
                                    row_strip, dq + (it.start + i0) * q_stride + h * d, q_stride,
                                    true);
              // dK_tile += dSᵀ·Q_tile
              multiply_strided_a<T>(nk, d, nq, {grad, 1, kKeyTile}, ws.q_rows.data() + i0 * nr,
                                    row_strip, dk_tile, k_stride, true);
            }
          }
        }
      });
}

template void attention_forward<float>(const AttentionShape&, const int32_t*, int, const float*,
                                       const float*, const float*, float*, float*);
template void attention_forward<double>(const AttentionShape&, const int32_t*, int, const double*,
                                        const double*, const double*, double*, double*);
template void attention_backward<float>(const AttentionShape&, const int32_t*, int, const float*,
                                        const float*, const float*, const float*, const float*,
                                        const float*, float*, float*, float*, float*);
template void attention_backward<double>(const AttentionShape&, const int32_t*, int, const double*,
                                         const double*, const double*, const double*, const double*,
                                         const double*, double*, double*, double*, double*);

}  // namespace minipt::kokkos
