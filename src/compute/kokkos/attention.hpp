// Causal self-attention over packed sequences with grouped-query heads, forward and
// backward, in memory linear in the number of tokens (flash-attention style tiling).
//
// Layout: q, o, dq, do are [tokens][heads·d]; k, v, dk, dv are [tokens][kv_heads·d];
// lse is [tokens][heads]. Query head h reads key/value head h / (heads/kv_heads).
// Token t of a sequence starting at s attends to tokens s..t of the same sequence
// (cu_seqlens gives the sequence starts; nothing crosses a sequence boundary).
#pragma once

#include <cstdint>

namespace minipt::kokkos {

struct AttentionShape {
  int heads = 1;
  int kv_heads = 1;
  int head_dim = 1;
  double scale = 1.0;  // softmax scale, 1/sqrt(head_dim)
};

// Tile sizes: a query tile of kQueryTile rows meets key tiles of kKeyTile rows.
constexpr int kQueryTile = 96;
constexpr int kKeyTile = 64;

// o_t = Σ_s softmax_s(scale·q_t·k_s) v_s and lse_t = log Σ_s exp(scale·q_t·k_s), the
// log-sum-exp that lets the backward rebuild the softmax without storing it.
template <class T>
void attention_forward(const AttentionShape& shape, const int32_t* cu_seqlens, int num_sequences,
                       const T* q, const T* k, const T* v, T* o, T* lse);

// Gradients dq, dk, dv (overwritten) from do, recomputing the probabilities tile by
// tile from lse. `delta` is scratch of [tokens][heads].
template <class T>
void attention_backward(const AttentionShape& shape, const int32_t* cu_seqlens, int num_sequences,
                        const T* q, const T* k, const T* v, const T* o, const T* lse, const T* dout,
                        T* delta, T* dq, T* dk, T* dv);

}  // namespace minipt::kokkos
