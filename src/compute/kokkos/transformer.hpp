// The decoder-only transformer on the host, unit by unit (see model/shape.hpp for the
// units and their flat parameter layouts), with every backward written out by hand.
//
//   unit 0      x = E[token]
//   block       h = RMSNorm(x)·g1;  q = h·Wqᵀ, k = h·Wkᵀ, v = h·Wvᵀ  (kv_heads < heads: GQA)
//               q, k ← RoPE(position within the sequence);  o = causal attention(q, k, v)
//               x1 = x + o·Woᵀ;  h2 = RMSNorm(x1)·g2
//               out = x1 + (silu(h2·Wgateᵀ) ⊙ (h2·Wupᵀ))·Wdownᵀ
//   head        z = RMSNorm(x)·gf·Wlmᵀ;  loss = Σ_t w_t·CE(z_t, target_t)  (target −1: none)
//
// Templated on the scalar: float trains, double checks gradients against finite
// differences. Activations: the residual stream (each block's input) is always kept
// for the microbatch; the internals of the blocks that recompute (model.recompute: the
// first n) are rebuilt by recompute(unit) into one shared set, the other blocks keep
// their own.
#pragma once

#include <Kokkos_Core.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "compute/backend.hpp"
#include "compute/kokkos/attention.hpp"
#include "model/shape.hpp"

namespace minipt::kokkos {

// Where compute time went since the last reset, in nanoseconds of the host steady
// clock, or of the calling thread's CPU clock when thread_cpu_clock is set (benchmarks
// on a shared machine: it does not count time the thread spent descheduled; only
// meaningful with a single-threaded execution space).
struct ComputeProfile {
  bool thread_cpu_clock = false;
  int64_t gemm_ns = 0;       // linear layers and the LM head products
  int64_t attention_ns = 0;  // attention forward/backward (its tile products included)
  int64_t other_ns = 0;      // norms, RoPE, SwiGLU, cross-entropy, embedding, copies
};

// Grow-only host array backed by a Kokkos::View (64-byte aligned, not zero-filled).
template <class T>
class HostArray {
 public:
  void ensure(int64_t count, const std::string& label) {
    if (static_cast<int64_t>(view_.extent(0)) < count)
      view_ = Kokkos::View<T*, Kokkos::HostSpace>(
          Kokkos::view_alloc(Kokkos::WithoutInitializing, label), static_cast<size_t>(count));
  }
  T* data() const { return view_.data(); }

 private:
  Kokkos::View<T*, Kokkos::HostSpace> view_;
};

template <class T>
class Transformer {
 public:
  // Blocks 1..recompute.count(layers) rebuild their internals into one shared set before
  // their backward; the others keep their own from the forward.
  Transformer(const ModelShape& shape, Recompute recompute);

  const ModelShape& shape() const { return shape_; }
  void begin_microbatch(const MicrobatchData& mb);
  void forward(int unit, const T* params);
  bool recompute_needed(int unit) const { return shape_.is_block(unit) && unit <= recomputed_; }
  int recomputed_blocks() const { return recomputed_; }
  void recompute(int unit, const T* params);
  // grads: the unit's gradient of Σ w·CE for this microbatch (numel elements, overwritten).
  void backward(int unit, const T* params, T* grads);
  // Σ_t w_t·CE_t of the microbatch; valid after the head unit's forward.
  double loss() const { return loss_; }
  // Mean token cross-entropy of each sequence (tokens with a target only).
  const std::vector<double>& sequence_losses() const { return sequence_losses_; }

  ComputeProfile& profile() { return profile_; }
  // Tokens whose logits are formed at once in the head (default: ~4M logits); tests
  // set it small to exercise the chunking. Takes effect at the next begin_microbatch.
  void set_logit_chunk_tokens(int64_t tokens) { logit_chunk_override_ = tokens; }

 private:
  struct BlockActivations {
    HostArray<T> inv_rms1, h1, q, k, v, o, lse, x1, inv_rms2, h2, gate, up, m;
    void ensure(int64_t tokens, const ModelShape& s);
  };

  void block_forward(int unit, const T* params, BlockActivations& a);
  void block_backward(int unit, const T* params, const BlockActivations& a, T* grads);
  void head_forward(const T* params);
  void head_backward(const T* params, T* grads);
  BlockActivations& activations_for(int unit);
  int64_t head_chunk_tokens() const;

  ModelShape shape_;
  int recomputed_;  // blocks 1..recomputed_ recompute
  AttentionShape attention_;

  // current microbatch
  int64_t tokens_ = 0;
  std::vector<int32_t> ids_, targets_, cu_seqlens_, positions_;
  std::vector<float> weights_;
  std::vector<T> rope_cos_, rope_sin_;
  int rope_positions_ = 0;

  std::vector<HostArray<T>> stream_;    // residual stream: stream_[u] = output of unit u
  std::vector<BlockActivations> kept_;  // per block (index unit-1; blocks that keep)
  BlockActivations shared_;             // one block at a time (blocks that recompute)
  int shared_holds_ = -1;               // which block's internals shared_ holds
  HostArray<T> dstream_;                // gradient w.r.t. the residual stream
  HostArray<T> d_hidden_, d_gate_, d_up_, d_attn_out_, dq_, dk_, dv_, delta_;
  HostArray<T> final_inv_rms_, final_normed_, head_lse_, token_ce_, logits_;

  int64_t logit_chunk_override_ = 0;
  double loss_ = 0.0;
  std::vector<double> sequence_losses_;
  ComputeProfile profile_;
};

extern template class Transformer<float>;
extern template class Transformer<double>;

}  // namespace minipt::kokkos
