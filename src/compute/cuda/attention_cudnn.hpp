// Causal variable-length attention through cuDNN's fused flash attention (the SDPA
// operation of the cuDNN frontend's graph API), on the packed layout of attention.hpp:
// q, k, v are views of the fused QKV rows, sequences are ragged (no padding), GQA.
//
// Differences from the own kernels of attention.hpp:
// - lse2 receives cuDNN's softmax statistics: the natural-log log-sum-exp of the scaled
//   scores, token-major [tokens][heads] (the buffer must hold tokens·heads floats; the
//   backward reads the same buffer back);
// - the gradients dq, dk, dv must not alias q, k, v; row_dot and dq_accum are unused
//   (cuDNN keeps its own workspace).
//
// A cuDNN graph fixes the batch size, the longest sequence and the token total. Graphs
// are built for those rounded up to powers of two (unused batch entries get length 0)
// and cached, so a run with varying microbatches builds a handful of them; the time
// spent building is reported by build_seconds(). MINIPT_CUDNN_EXACT=1 in the
// environment builds one graph per exact shape instead (compute/ragged_batch.hpp).
//
// Compiled only when cuDNN and the cuDNN frontend headers are found (MINIPT_HAVE_CUDNN);
// available() says whether this build has it.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "compute/cuda/attention.hpp"

namespace minipt::cuda {

class CudnnAttention {
 public:
  static bool available();
  // cudnnGetVersion() of the library in use (0 without cuDNN in this build).
  static long library_version();

  // Throws std::runtime_error if cuDNN is not in this build or cannot start.
  CudnnAttention(int heads, int kv_heads, int head_dim);
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  // The microbatch's sequences (host offsets, cu_seqlens.front() == 0) and the leading
  // dimensions that forward/backward will be called with. Uploads the lengths and ragged
  // offsets on `stream` and returns when they are on the device.
  void set_sequences(const std::vector<int32_t>& cu_seqlens, int64_t ld_qkv, int64_t ld_o,
                     cudaStream_t stream);

  // Builds (and caches) the graphs a microbatch of these sequences will use, so that a
  // run can pay for them before its timed steps. Synchronous; touches no data.
  void prepare(const std::vector<int32_t>& cu_seqlens, int64_t ld_qkv, int64_t ld_o);

  void forward(const AttentionArgs& a, cudaStream_t stream);
  void backward(const AttentionArgs& a, const AttentionGradArgs& g, cudaStream_t stream);

  double build_seconds() const;  // wall time spent building cuDNN graphs so far
  int graphs_built() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace minipt::cuda
