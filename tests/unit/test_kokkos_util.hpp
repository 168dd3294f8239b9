// Helpers shared by the Kokkos backend tests: packing sequences into microbatches and
// running a whole model step unit by unit.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "compute/backend.hpp"
#include "compute/kokkos/transformer.hpp"
#include "model/shape.hpp"

namespace minipt::test {

// Packs `sequences` into one microbatch. Each token's target is the next token of its
// sequence (−1 for the last) and its loss weight 1/(L−1)/total_sequences, the
// convention of MicrobatchData: the summed loss over all microbatches of a step is the
// mean over sequences of each sequence's mean token loss.
inline MicrobatchData pack_sequences(const std::vector<std::vector<int32_t>>& sequences,
                                     int total_sequences) {
  MicrobatchData mb;
  mb.cu_seqlens.push_back(0);
  for (const auto& seq : sequences) {
    const size_t len = seq.size();
    for (size_t i = 0; i < len; ++i) {
      mb.tokens.push_back(seq[i]);
      mb.targets.push_back(i + 1 < len ? seq[i + 1] : -1);
      mb.loss_weight.push_back(
          len > 1 ? static_cast<float>(1.0 / static_cast<double>(len - 1) / total_sequences)
                  : 0.0f);
    }
    mb.cu_seqlens.push_back(static_cast<int32_t>(mb.tokens.size()));
  }
  return mb;
}

inline std::vector<int32_t> random_tokens(std::mt19937_64& rng, int length, int vocab) {
  std::uniform_int_distribution<int32_t> pick(0, vocab - 1);
  std::vector<int32_t> out(static_cast<size_t>(length));
  for (auto& t : out) t = pick(rng);
  return out;
}

// Forward over every unit; returns Σ w·CE.
template <class T>
double model_loss(kokkos::Transformer<T>& model, const MicrobatchData& mb,
                  const std::vector<std::vector<T>>& params) {
  model.begin_microbatch(mb);
  for (int u = 0; u < model.shape().num_units(); ++u)
    model.forward(u, params[static_cast<size_t>(u)].data());
  return model.loss();
}

// Forward then backward over every unit (recomputing where the model asks);
// returns Σ w·CE and fills grads (one vector per unit).
template <class T>
double model_gradients(kokkos::Transformer<T>& model, const MicrobatchData& mb,
                       const std::vector<std::vector<T>>& params,
                       std::vector<std::vector<T>>& grads) {
  const double loss = model_loss(model, mb, params);
  grads.resize(params.size());
  for (int u = model.shape().num_units() - 1; u >= 0; --u) {
    const size_t i = static_cast<size_t>(u);
    grads[i].assign(params[i].size(), T(0));
    if (model.recompute_needed(u)) model.recompute(u, params[i].data());
    model.backward(u, params[i].data(), grads[i].data());
  }
  return loss;
}

}  // namespace minipt::test
