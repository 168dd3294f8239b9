#include "compute/kokkos/transformer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <stdexcept>

#include "compute/kokkos/gemm.hpp"
#include "compute/kokkos/kernels.hpp"
#include "compute/kokkos/vector_math.hpp"

namespace minipt::kokkos {
namespace {

int64_t clock_ns(bool thread_cpu) {
  if (thread_cpu) {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  }
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Adds the elapsed time of its scope to one counter of a profile.
class ScopedTimer {
 public:
  ScopedTimer(const ComputeProfile& profile, int64_t& counter)
      : counter_(counter), cpu_(profile.thread_cpu_clock), start_(clock_ns(cpu_)) {}
  ~ScopedTimer() { counter_ += clock_ns(cpu_) - start_; }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  int64_t& counter_;
  bool cpu_;
  int64_t start_;
};

template <class T>
void copy_rows(int64_t rows, int64_t width, const T* src, T* dst) {
  for_each_row("minipt::copy_rows", rows, [=](const int64_t r) {
    std::copy(src + r * width, src + (r + 1) * width, dst + r * width);
  });
}

template <class T>
void zero_rows(int64_t rows, int64_t width, T* dst) {
  for_each_row("minipt::zero_rows", rows,
               [=](const int64_t r) { std::fill(dst + r * width, dst + (r + 1) * width, T(0)); });
}

}  // namespace

template <class T>
void Transformer<T>::BlockActivations::ensure(int64_t tokens, const ModelShape& s) {
  const int64_t h = s.hidden, kv = s.kv_dim(), f = s.ffn;
  inv_rms1.ensure(tokens, "minipt::inv_rms1");
  h1.ensure(tokens * h, "minipt::h1");
  q.ensure(tokens * h, "minipt::q");
  k.ensure(tokens * kv, "minipt::k");
  v.ensure(tokens * kv, "minipt::v");
  o.ensure(tokens * h, "minipt::o");
  lse.ensure(tokens * s.heads, "minipt::lse");
  x1.ensure(tokens * h, "minipt::x1");
  inv_rms2.ensure(tokens, "minipt::inv_rms2");
  h2.ensure(tokens * h, "minipt::h2");
  gate.ensure(tokens * f, "minipt::gate");
  up.ensure(tokens * f, "minipt::up");
  m.ensure(tokens * f, "minipt::swiglu");
}

template <class T>
Transformer<T>::Transformer(const ModelShape& shape, Recompute recompute)
    : shape_(shape), recomputed_(recompute.count(shape.layers)) {
  if (shape.hidden % shape.heads != 0 || shape.heads % shape.kv_heads != 0 ||
      shape.head_dim() % 2 != 0)
    throw std::invalid_argument(
        "kokkos transformer: hidden must divide into heads, heads into kv_heads, and the "
        "head dimension must be even (RoPE)");
  attention_.heads = shape.heads;
  attention_.kv_heads = shape.kv_heads;
  attention_.head_dim = shape.head_dim();
  attention_.scale = 1.0 / std::sqrt(static_cast<double>(shape.head_dim()));
  stream_.resize(static_cast<size_t>(shape.layers) + 1);
  kept_.resize(static_cast<size_t>(shape.layers));
}

template <class T>
int64_t Transformer<T>::head_chunk_tokens() const {
  // Logits are formed for at most ~4M elements at a time (16 MiB in float).
  if (logit_chunk_override_ > 0)
    return std::min<int64_t>(logit_chunk_override_, std::max<int64_t>(tokens_, 1));
  return std::max<int64_t>(1, std::min<int64_t>(tokens_, (int64_t{1} << 22) / shape_.vocab));
}

template <class T>
void Transformer<T>::begin_microbatch(const MicrobatchData& mb) {
  const int64_t n = mb.num_tokens();
  if (mb.cu_seqlens.size() < 2 || mb.cu_seqlens.front() != 0 || mb.cu_seqlens.back() != n ||
      static_cast<int64_t>(mb.targets.size()) != n ||
      static_cast<int64_t>(mb.loss_weight.size()) != n)
    throw std::invalid_argument("kokkos transformer: inconsistent microbatch");
  tokens_ = n;
  ids_ = mb.tokens;
  targets_ = mb.targets;
  weights_ = mb.loss_weight;
  cu_seqlens_ = mb.cu_seqlens;
  positions_.assign(static_cast<size_t>(n), 0);
  int max_length = 1;
  for (size_t s = 0; s + 1 < cu_seqlens_.size(); ++s) {
    if (cu_seqlens_[s + 1] < cu_seqlens_[s])
      throw std::invalid_argument("kokkos transformer: cu_seqlens must not decrease");
    for (int32_t t = cu_seqlens_[s]; t < cu_seqlens_[s + 1]; ++t)
      positions_[static_cast<size_t>(t)] = t - cu_seqlens_[s];
    max_length = std::max(max_length, cu_seqlens_[s + 1] - cu_seqlens_[s]);
  }
  for (int64_t t = 0; t < n; ++t) {
    const int32_t id = ids_[static_cast<size_t>(t)], target = targets_[static_cast<size_t>(t)];
    if (id < 0 || id >= shape_.vocab || target < -1 || target >= shape_.vocab)
      throw std::invalid_argument("kokkos transformer: token or target outside the vocabulary");
  }
  if (max_length > rope_positions_) {
    rope_tables(max_length, shape_.head_dim(), shape_.rope_theta, rope_cos_, rope_sin_);
    rope_positions_ = max_length;
  }

  const int64_t h = shape_.hidden, kv = shape_.kv_dim(), f = shape_.ffn;
  for (auto& s : stream_) s.ensure(n * h, "minipt::residual_stream");
  if (recomputed_ > 0) shared_.ensure(n, shape_);
  for (int u = recomputed_ + 1; u <= shape_.layers; ++u)
    kept_[static_cast<size_t>(u - 1)].ensure(n, shape_);
  shared_holds_ = -1;
  dstream_.ensure(n * h, "minipt::dstream");
  d_hidden_.ensure(n * h, "minipt::d_hidden");
  d_gate_.ensure(n * f, "minipt::d_gate");
  d_up_.ensure(n * f, "minipt::d_up");
  d_attn_out_.ensure(n * h, "minipt::d_attn_out");
  dq_.ensure(n * h, "minipt::dq");
  dk_.ensure(n * kv, "minipt::dk");
  dv_.ensure(n * kv, "minipt::dv");
  delta_.ensure(n * shape_.heads, "minipt::attn_delta");
  final_inv_rms_.ensure(n, "minipt::final_inv_rms");
  final_normed_.ensure(n * h, "minipt::final_normed");
  head_lse_.ensure(n, "minipt::head_lse");
  token_ce_.ensure(n, "minipt::token_ce");
  logits_.ensure(head_chunk_tokens() * shape_.vocab, "minipt::logits");
  loss_ = 0.0;
  sequence_losses_.clear();
}

template <class T>
typename Transformer<T>::BlockActivations& Transformer<T>::activations_for(int unit) {
  return recompute_needed(unit) ? shared_ : kept_[static_cast<size_t>(unit - 1)];
}

template <class T>
void Transformer<T>::forward(int unit, const T* params) {
  if (shape_.is_embedding(unit)) {
    ScopedTimer timer(profile_, profile_.other_ns);
    embedding_forward(tokens_, shape_.hidden, ids_.data(), params, stream_[0].data());
  } else if (shape_.is_block(unit)) {
    block_forward(unit, params, activations_for(unit));
    if (recompute_needed(unit)) shared_holds_ = unit;
  } else if (shape_.is_head(unit)) {
    head_forward(params);
  } else {
    throw std::out_of_range("kokkos transformer: unit out of range");
  }
}

template <class T>
void Transformer<T>::recompute(int unit, const T* params) {
  if (!recompute_needed(unit)) return;
  block_forward(unit, params, shared_);
  shared_holds_ = unit;
}

template <class T>
void Transformer<T>::backward(int unit, const T* params, T* grads) {
  if (shape_.is_embedding(unit)) {
    ScopedTimer timer(profile_, profile_.other_ns);
    embedding_backward(tokens_, shape_.hidden, shape_.vocab, ids_.data(), dstream_.data(), grads);
  } else if (shape_.is_block(unit)) {
    if (recompute_needed(unit) && shared_holds_ != unit)
      throw std::logic_error("kokkos transformer: backward of block " + std::to_string(unit) +
                             " without recompute()");
    block_backward(unit, params, activations_for(unit), grads);
  } else if (shape_.is_head(unit)) {
    head_backward(params, grads);
  } else {
    throw std::out_of_range("kokkos transformer: unit out of range");
  }
}

// Block forward; writes the internals into `a` and the block output into stream_[unit].
template <class T>
void Transformer<T>::block_forward(int unit, const T* params, BlockActivations& a) {
  const BlockLayout lay(shape_);
  const int64_t n = tokens_;
  const int h = shape_.hidden, kv = shape_.kv_dim(), f = shape_.ffn;
  const T* x = stream_[static_cast<size_t>(unit - 1)].data();
  T* out = stream_[static_cast<size_t>(unit)].data();
  {
    ScopedTimer timer(profile_, profile_.other_ns);
    rmsnorm_forward(n, h, x, params + lay.attn_norm, shape_.norm_eps, a.inv_rms1.data(),
                    a.h1.data());
  }
  {
    ScopedTimer timer(profile_, profile_.gemm_ns);
    linear_forward(n, h, h, a.h1.data(), params + lay.wq, a.q.data(), false);
    linear_forward(n, kv, h, a.h1.data(), params + lay.wk, a.k.data(), false);
    linear_forward(n, kv, h, a.h1.data(), params + lay.wv, a.v.data(), false);
  }
  {
    ScopedTimer timer(profile_, profile_.other_ns);
    rope_rotate(n, shape_.heads, shape_.head_dim(), positions_.data(), rope_cos_.data(),
                rope_sin_.data(), a.q.data(), false);
    rope_rotate(n, shape_.kv_heads, shape_.head_dim(), positions_.data(), rope_cos_.data(),
                rope_sin_.data(), a.k.data(), false);
  }
  {
    ScopedTimer timer(profile_, profile_.attention_ns);
    attention_forward(attention_, cu_seqlens_.data(), static_cast<int>(cu_seqlens_.size()) - 1,
                      a.q.data(), a.k.data(), a.v.data(), a.o.data(), a.lse.data());
  }
  {
    ScopedTimer timer(profile_, profile_.other_ns);
    copy_rows(n, h, x, a.x1.data());
  }
  {
    ScopedTimer timer(profile_, profile_.gemm_ns);
    linear_forward(n, h, h, a.o.data(), params + lay.wo, a.x1.data(), true);
  }
  {
    ScopedTimer timer(profile_, profile_.other_ns);
    rmsnorm_forward(n, h, a.x1.data(), params + lay.mlp_norm, shape_.norm_eps, a.inv_rms2.data(),
                    a.h2.data());
  }
  {
    ScopedTimer timer(profile_, profile_.gemm_ns);
    linear_forward(n, f, h, a.h2.data(), params + lay.w_gate, a.gate.data(), false);
    linear_forward(n, f, h, a.h2.data(), params + lay.w_up, a.up.data(), false);
  }
  {
    ScopedTimer timer(profile_, profile_.other_ns);
    swiglu_forward(n, f, a.gate.data(), a.up.data(), a.m.data());
    copy_rows(n, h, a.x1.data(), out);
  }
  {
    ScopedTimer timer(profile_, profile_.gemm_ns);
    linear_forward(n, h, f, a.m.data(), params + lay.w_down, out, true);
  }
}

// Block backward. On entry dstream_ holds ∂loss/∂out; on exit ∂loss/∂x (block input).
// Both residual additions (x1 = x + attn, out = x1 + mlp) pass the gradient through
// unchanged, so each branch's input gradient is added onto dstream_ in place:
//   dstream ← dout + RMSNorm2ᵀ(MLPᵀ(dout))             = ∂loss/∂x1
//   dstream ← dx1 + RMSNorm1ᵀ(QKVᵀ(Attnᵀ(Woᵀ(dx1))))    = ∂loss/∂x
// Each linear y = x·Wᵀ gives dW = dyᵀ·x and dx = dy·W.
template <class T>
void Transformer<T>::block_backward(int unit, const T* params, const BlockActivations& a,
                                    T* grads) {
  const BlockLayout lay(shape_);
  const int64_t n = tokens_;
  const int h = shape_.hidden, kv = shape_.kv_dim(), f = shape_.ffn;
  const T* x = stream_[static_cast<size_t>(unit - 1)].data();
  T* dstream = dstream_.data();
  // MLP
  {
    ScopedTimer timer(profile_, profile_.gemm_ns);
    linear_backward_weight(n, h, f, dstream, a.m.data(), grads + lay.w_down, false);
    linear_backward_input(n, h, f, dstream, params + lay.w_down, d_gate_.data(), false);
  }
  {
    ScopedTimer timer(profile_, profile_.other_ns);
    swiglu_backward(n, f, a.gate.data(), a.up.data(), d_gate_.data(), d_up_.data());
  }
  {
    ScopedTimer timer(profile_, profile_.gemm_ns);
    linear_backward_weight(n, f, h, d_gate_.data(), a.h2.data(), grads + lay.w_gate, false);
    linear_backward_weight(n, f, h, d_up_.data(), a.h2.data(), grads + lay.w_up, false);
    linear_backward_input(n, f, h, d_gate_.data(), params + lay.w_gate, d_hidden_.data(), false);
    linear_backward_input(n, f, h, d_up_.data(), params + lay.w_up, d_hidden_.data(), true);
  }
  {
    ScopedTimer timer(profile_, profile_.other_ns);
    rmsnorm_backward(n, h, a.x1.data(), params + lay.mlp_norm, a.inv_rms2.data(), d_hidden_.data(),
                     dstream, grads + lay.mlp_norm);
  }
  // attention
  {
    ScopedTimer timer(profile_, profile_.gemm_ns);
    linear_backward_weight(n, h, h, dstream, a.o.data(), grads + lay.wo, false);
    linear_backward_input(n, h, h, dstream, params + lay.wo, d_attn_out_.data(), false);
  }
  {
    ScopedTimer timer(profile_, profile_.attention_ns);
    attention_backward(attention_, cu_seqlens_.data(), static_cast<int>(cu_seqlens_.size()) - 1,
                       a.q.data(), a.k.data(), a.v.data(), a.o.data(), a.lse.data(),
                       d_attn_out_.data(), delta_.data(), dq_.data(), dk_.data(), dv_.data());
  }
  {
    ScopedTimer timer(profile_, profile_.other_ns);
    rope_rotate(n, shape_.heads, shape_.head_dim(), positions_.data(), rope_cos_.data(),
                rope_sin_.data(), dq_.data(), true);
    rope_rotate(n, shape_.kv_heads, shape_.head_dim(), positions_.data(), rope_cos_.data(),
                rope_sin_.data(), dk_.data(), true);
  }
  {
    ScopedTimer timer(profile_, profile_.gemm_ns);
    linear_backward_weight(n, h, h, dq_.data(), a.h1.data(), grads + lay.wq, false);
    linear_backward_weight(n, kv, h, dk_.data(), a.h1.data(), grads + lay.wk, false);
    linear_backward_weight(n, kv, h, dv_.data(), a.h1.data(), grads + lay.wv, false);
    linear_backward_input(n, h, h, dq_.data(), params + lay.wq, d_hidden_.data(), false);
    linear_backward_input(n, kv, h, dk_.data(), params + lay.wk, d_hidden_.data(), true);
    linear_backward_input(n, kv, h, dv_.data(), params + lay.wv, d_hidden_.data(), true);
  }
  {
    ScopedTimer timer(profile_, profile_.other_ns);
    rmsnorm_backward(n, h, x, params + lay.attn_norm, a.inv_rms1.data(), d_hidden_.data(), dstream,
                     grads + lay.attn_norm);
  }
}

// Head forward: final RMSNorm, then logits chunk by chunk (never all T×V at once) and
// per token CE_t = lse(z_t) − z_t[target], lse(z) = max z + log Σ_j exp(z_j − max z).
// Keeps the normalised hidden state and lse_t; the backward rebuilds the logits.
template <class T>
void Transformer<T>::head_forward(const T* params) {
  const HeadLayout lay(shape_);
  const int h = shape_.hidden, vocab = shape_.vocab;
  {
    ScopedTimer timer(profile_, profile_.other_ns);
    rmsnorm_forward(tokens_, h, stream_.back().data(), params + lay.final_norm, shape_.norm_eps,
                    final_inv_rms_.data(), final_normed_.data());
  }
  const int64_t chunk = head_chunk_tokens();
  T* logits = logits_.data();
  T* lse = head_lse_.data();
  T* ce = token_ce_.data();
  const int32_t* targets = targets_.data();
  for (int64_t t0 = 0; t0 < tokens_; t0 += chunk) {
    const int64_t rows = std::min(chunk, tokens_ - t0);
    {
      ScopedTimer timer(profile_, profile_.gemm_ns);
      linear_forward(rows, vocab, h, final_normed_.data() + t0 * h, params + lay.lm_head, logits,
                     false);
    }
    ScopedTimer timer(profile_, profile_.other_ns);
    for_each_row("minipt::cross_entropy_forward", rows, [=](const int64_t r) {
      const int64_t t = t0 + r;
      T* z = logits + r * vocab;
      if (targets[t] < 0) {
        lse[t] = 0;
        ce[t] = 0;
        return;
      }
      const T target_logit = z[targets[t]];
      const T zmax = row_max(z, vocab);
      lse[t] = zmax + std::log(exp_shifted_sum(z, vocab, zmax));
      ce[t] = lse[t] - target_logit;
    });
  }
  // Sums in token order, in double, so the loss does not depend on the thread count.
  loss_ = 0.0;
  sequence_losses_.assign(cu_seqlens_.size() - 1, 0.0);
  for (size_t s = 0; s + 1 < cu_seqlens_.size(); ++s) {
    double sum = 0.0;
    int64_t counted = 0;
    for (int64_t t = cu_seqlens_[s]; t < cu_seqlens_[s + 1]; ++t) {
      if (targets_[static_cast<size_t>(t)] < 0) continue;
      loss_ += static_cast<double>(weights_[static_cast<size_t>(t)]) * static_cast<double>(ce[t]);
      sum += static_cast<double>(ce[t]);
      ++counted;
    }
    sequence_losses_[s] = counted > 0 ? sum / static_cast<double>(counted) : 0.0;
  }
}

// Head backward. ∂(w·CE)/∂z_j = w·(softmax(z)_j − [j = target]) with softmax(z)_j =
// exp(z_j − lse). Then dWlm = dzᵀ·hf, dhf = dz·Wlm (chunk by chunk, dWlm summed over
// chunks) and the final RMSNorm backward into dstream_ (which starts at zero: the head
// is the only consumer of the last residual stream).
template <class T>
void Transformer<T>::head_backward(const T* params, T* grads) {
  const HeadLayout lay(shape_);
  const int h = shape_.hidden, vocab = shape_.vocab;
  const int64_t chunk = head_chunk_tokens();
  T* logits = logits_.data();
  const T* lse = head_lse_.data();
  const int32_t* targets = targets_.data();
  const float* weights = weights_.data();
  for (int64_t t0 = 0; t0 < tokens_; t0 += chunk) {
    const int64_t rows = std::min(chunk, tokens_ - t0);
    const T* normed = final_normed_.data() + t0 * h;
    {
      ScopedTimer timer(profile_, profile_.gemm_ns);
      linear_forward(rows, vocab, h, normed, params + lay.lm_head, logits, false);
    }
    {
      ScopedTimer timer(profile_, profile_.other_ns);
      for_each_row("minipt::cross_entropy_backward", rows, [=](const int64_t r) {
        const int64_t t = t0 + r;
        T* z = logits + r * vocab;
        if (targets[t] < 0) {
          std::fill(z, z + vocab, T(0));
          return;
        }
        const T w = static_cast<T>(weights[t]);
        exp_shifted_scaled(z, vocab, lse[t], w);
        z[targets[t]] -= w;
      });
    }
    ScopedTimer timer(profile_, profile_.gemm_ns);
    linear_backward_weight(rows, vocab, h, logits, normed, grads + lay.lm_head, t0 > 0);
    linear_backward_input(rows, vocab, h, logits, params + lay.lm_head, d_hidden_.data() + t0 * h,
                          false);
  }
  ScopedTimer timer(profile_, profile_.other_ns);
  zero_rows(tokens_, h, dstream_.data());
  rmsnorm_backward(tokens_, h, stream_.back().data(), params + lay.final_norm,
                   final_inv_rms_.data(), d_hidden_.data(), dstream_.data(),
                   grads + lay.final_norm);
}

template class Transformer<float>;
template class Transformer<double>;

}  // namespace minipt::kokkos
