// Element-wise and row-wise kernels of the CUDA backend (everything that is not a
// matrix product or attention). All take a stream and return immediately.
// Conventions: the residual stream and its gradient are fp32 [tokens][hidden]; inputs
// to matrix products are bf16; weight gradients are fp32.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "model/init.hpp"

namespace minipt::cuda {

using bf16 = __nv_bfloat16;

// x[t][:] = float(embedding[tokens[t]][:]).
void embedding_forward(const int32_t* tokens, const bf16* embedding, float* x, int64_t n_tokens,
                       int hidden, cudaStream_t s);
// d_embedding[tokens[t]][:] += dx[t][:] (fp32 atomics; d_embedding pre-zeroed).
void embedding_backward(const int32_t* tokens, const float* dx, float* d_embedding,
                        int64_t n_tokens, int hidden, cudaStream_t s);

// y = x · rstd · w with rstd = 1/√(mean(x²) + eps); y bf16, rstd saved per token.
void rmsnorm_forward(const float* x, const bf16* w, bf16* y, float* rstd, int64_t n_tokens,
                     int hidden, float eps, cudaStream_t s);
// Given dy (fp32), returns dx = residual_grad + ∂(norm)/∂x · dy (fp32, and a bf16 copy
// for the next matrix product; either output may be null) and adds Σ_t dy·x·rstd to dw
// (fp32, pre-zeroed). residual_grad may be null and may alias dx.
void rmsnorm_backward(const float* x, const bf16* w, const float* rstd, const float* dy,
                      const float* residual_grad, float* dx, bf16* dx_bf16, float* dw,
                      int64_t n_tokens, int hidden, cudaStream_t s);

// cos/sin table [max_pos][head_dim/2] of angle pos·θ^(−2i/head_dim), computed in double.
void rope_table(float2* table, int max_pos, int head_dim, double theta, cudaStream_t s);
// Rotate-half RoPE in place on the first `rotated_heads` heads of every token row of a
// [tokens][ld] bf16 matrix (the q heads followed by the k heads of the fused QKV
// output); inverse = true applies the transpose rotation (the backward).
void rope_apply(bf16* x, int64_t ld, const int32_t* positions, const float2* table,
                int64_t n_tokens, int rotated_heads, int head_dim, bool inverse, cudaStream_t s);

// a = silu(gate)·up with gate_up [tokens][2·ffn] (gate columns first).
void swiglu_forward(const bf16* gate_up, bf16* a, int64_t n_tokens, int ffn, cudaStream_t s);
// From da, overwrites gate_up in place with (d gate, d up).
void swiglu_backward(bf16* gate_up, const bf16* da, int64_t n_tokens, int ffn, cudaStream_t s);

// Cross-entropy of `rows` rows of fp32 logits [rows][vocab]: token_loss[r] = lse − logit
// of the target (0 where target < 0) and dlogits = weight·(softmax − onehot) in bf16
// (0 where target < 0).
void cross_entropy(const float* logits, const int32_t* targets, const float* weights,
                   float* token_loss, bf16* dlogits, int64_t rows, int vocab, cudaStream_t s);

// Shard maths.
void cast_f32_to_bf16(const float* src, bf16* dst, int64_t n, cudaStream_t s);
void add_inplace(float* acc, const float* g, int64_t n, cudaStream_t s);
// result (device double, overwritten) = Σ x².
void sum_squares(const float* x, int64_t n, double* result, cudaStream_t s);
struct AdamWConstants {
  float lr, beta1, beta2, eps, weight_decay, grad_scale, bias_correction1, bias_correction2;
};
void adamw(float* param, float* m, float* v, const float* grad, int64_t n, const AdamWConstants& c,
           cudaStream_t s);
// out[i] = rule.value(begin + i).
void init_params(const UnitInit& rule, int64_t begin, int64_t n, float* out, cudaStream_t s);

}  // namespace minipt::cuda
