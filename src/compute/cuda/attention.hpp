// Causal variable-length flash attention on packed sequences (bf16 in and out, fp32
// softmax statistics), forward and backward, for head_dim 32, 64 or 128 and grouped
// query attention (heads a multiple of kv_heads).
//
// Layout: q, k and v are row-major [tokens][...] views with a shared leading dimension
// (the fused QKV projection output: per token q heads, then k heads, then v heads);
// head h of token t starts at ptr + t·ld + h·head_dim. The output o is [tokens][heads·
// head_dim] with its own leading dimension. lse2 is [heads][lse_ld] fp32: the base-2
// log-sum-exp of each query row's scaled scores, saved by the forward for the backward.
// Sequences are given by cu_seqlens (nseq+1 offsets); positions restart at 0 in every
// sequence and a query attends to keys of its own sequence at positions ≤ its own.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

namespace minipt::cuda {

constexpr int kAttnFwdBlockM = 128;  // query rows per forward block
constexpr int kAttnFwdBlockN = 64;   // key rows per forward tile

// Backward variant: 1 = 64 keys and 4 warps per block, 2 = 128 keys and 8 warps (the
// default; MINIPT_ATTN_BWD=1 selects 1). Plans must be made after the choice.
int attention_backward_variant();
void set_attention_backward_variant(int variant);
int attention_backward_key_block();  // keys per backward block of the current variant

// Work lists of one packed microbatch: (sequence, block) pairs, heaviest first so the
// long causal rows of long sequences start early and the tail of the grid is short.
struct AttentionWork {
  std::vector<int32_t> forward;   // pairs (seq, query block of kAttnFwdBlockM rows)
  std::vector<int32_t> backward;  // pairs (seq, key block of attention_backward_key_block() rows)
};
AttentionWork plan_attention_work(const std::vector<int32_t>& cu_seqlens);

// Leading dimension of lse2 / the backward's row statistics for `tokens` tokens: padded so
// that whole tiles can be read past the last token.
inline int64_t attention_stat_ld(int64_t tokens) { return (tokens + 127) / 128 * 128 + 128; }

struct AttentionArgs {
  const __nv_bfloat16* q = nullptr;
  const __nv_bfloat16* k = nullptr;
  const __nv_bfloat16* v = nullptr;
  int64_t ld_qkv = 0;
  __nv_bfloat16* o = nullptr;  // forward output; backward input
  int64_t ld_o = 0;
  float* lse2 = nullptr;  // [heads][stat_ld]
  int64_t stat_ld = 0;
  const int32_t* cu_seqlens = nullptr;  // device
  int num_tokens = 0;
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
};

// items: device copy of AttentionWork::forward (num_items pairs).
void attention_forward(const AttentionArgs& a, const int32_t* items, int num_items,
                       cudaStream_t stream);

struct AttentionGradArgs {
  const __nv_bfloat16* d_o = nullptr;  // [tokens][heads·head_dim], leading dim ld_o
  float* row_dot = nullptr;            // scratch [heads][stat_ld]: rowsum(dO∘O)
  float* dq_accum = nullptr;           // scratch [tokens][heads·head_dim] fp32
  // Gradients (bf16), same layout and leading dimension as q, k, v. They may alias q,
  // k and v themselves: each key block's k/v rows are read only by the block that
  // writes their gradients, and dq is written after every block has finished.
  __nv_bfloat16* dq = nullptr;
  __nv_bfloat16* dk = nullptr;
  __nv_bfloat16* dv = nullptr;
};

// items: device copy of AttentionWork::backward.
void attention_backward(const AttentionArgs& a, const AttentionGradArgs& g, const int32_t* items,
                        int num_items, cudaStream_t stream);

}  // namespace minipt::cuda
