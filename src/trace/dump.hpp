// run.dump: one step's inputs and results, so an independent implementation (e.g.
// PyTorch) can check the model. Layout (HDF5):
//   attrs   step, loss_convention, model.{layers,hidden,heads,kv_heads,ffn,vocab},
//           model.rope_theta, model.norm_eps
//   /params/unit_NNN   float32 [numel]  parameters at the start of the step
//   /grads/unit_NNN    float32 [numel]  the step's summed gradient, before clipping
//   /batch/tokens      int32   all sequences of the step, concatenated in index order
//   /batch/lengths     int64   per sequence
//   /batch/cu_seqlens  int64   [nseq+1] offsets into tokens
//   /losses/sequence   float64 per sequence: mean next-token cross-entropy
// Unit NNN: 000 embedding, 001..L blocks, L+1 final norm + LM head (src/model/shape.hpp
// gives the flat layouts).
#pragma once

#include <string>
#include <vector>

#include "model/shape.hpp"

namespace minipt {

struct ModelDump {
  int step = 0;
  ModelShape shape;
  std::vector<std::vector<float>> params, grads;
  std::vector<int64_t> lengths;
  std::vector<int32_t> tokens;
  std::vector<double> sequence_loss;
};

void write_model_dump(const std::string& path, const ModelDump& d);

}  // namespace minipt
