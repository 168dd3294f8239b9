// Transformer shape, its parameter units, their flat layouts and FLOP counts.
//
// The model is cut into "units", each one flat parameter buffer that is sharded,
// gathered and updated as a whole (the FSDP wrapping granularity):
//   unit 0            token embedding            [vocab][hidden]
//   unit 1..layers    one decoder block each     (layout: BlockLayout)
//   unit layers+1     final RMSNorm + LM head    [hidden] then [vocab][hidden]
// No biases anywhere (Qwen2.5 has q/k/v biases; they are <0.1% of FLOPs and omitted).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace minipt {

struct ModelShape {
  int layers = 2;
  int hidden = 128;
  int heads = 4;
  int kv_heads = 2;
  int ffn = 256;
  int vocab = 512;
  double rope_theta = 1.0e6;
  double norm_eps = 1.0e-6;

  // Shaped like Qwen2.5-1.5B (inputs/models/qwen2.5-1.5b.toml says the same).
  static ModelShape qwen2_5_1_5b() { return {28, 1536, 12, 2, 8960, 151936, 1.0e6, 1.0e-6}; }

  int head_dim() const { return hidden / heads; }
  int kv_dim() const { return kv_heads * head_dim(); }
  int num_units() const { return layers + 2; }
  bool is_embedding(int unit) const { return unit == 0; }
  bool is_head(int unit) const { return unit == layers + 1; }
  bool is_block(int unit) const { return unit >= 1 && unit <= layers; }

  // Number of parameters of one unit / of the whole model.
  int64_t unit_params(int unit) const;
  int64_t block_params() const;
  int64_t total_params() const;
  // Parameters that take part in a matmul per token (everything but the embedding
  // lookup and the norms): the "N" of 6·N·tokens.
  int64_t matmul_params() const;

  // Forward FLOPs of one unit on a packed microbatch of `tokens` tokens whose
  // sequence lengths squared sum to `sum_sq` (causal attention: QK^T and PV each
  // cost 2·L²·hidden/2 multiply-adds·2 → 2·hidden·ΣL² FLOPs per block).
  // Backward is 2× forward. A recomputed forward adds one more forward.
  double unit_forward_flops(int unit, int64_t tokens, double sum_sq) const;
  // Model FLOPs of a training step's worth of tokens (forward + backward, no
  // recompute): 6·N·tokens + 6·hidden·layers·ΣL². The MFU numerator.
  double train_flops(int64_t tokens, double sum_sq) const;
};

// Offsets (in elements) of the tensors inside one block's flat buffer. Matrices are
// row-major [out][in] so y = x·Wᵀ.
struct BlockLayout {
  int64_t attn_norm, wq, wk, wv, wo, mlp_norm, w_gate, w_up, w_down, total;
  explicit BlockLayout(const ModelShape& s);
};

// Offsets inside the head unit.
struct HeadLayout {
  int64_t final_norm, lm_head, total;
  explicit HeadLayout(const ModelShape& s);
};

// Element count of unit `unit` when the shape's sizes are scaled by `scale` (≥ 1).
int64_t scaled_numel(const ModelShape& shape, int unit, double scale);

// How one unit's flat buffer is split across `world` ranks: padded to a multiple of
// world, rank r owns elements [r·shard, (r+1)·shard).
struct UnitShard {
  int64_t numel = 0;   // real elements
  int64_t padded = 0;  // numel rounded up to a multiple of world
  int64_t shard = 0;   // padded / world
  int64_t offset = 0;  // where this unit's shard starts in a rank's flat shard buffer
};

// The sharding of every unit. `scale` (0,1] shrinks each unit's element count so
// that emulated runs can move fewer bytes than the real shape (compute time is still
// modelled from the real shape).
class ShardLayout {
 public:
  ShardLayout(const ModelShape& shape, int world, double scale = 1.0);
  int world() const { return world_; }
  int num_units() const { return static_cast<int>(units_.size()); }
  const UnitShard& unit(int u) const { return units_[static_cast<size_t>(u)]; }
  int64_t shard_total() const { return shard_total_; }  // elements a rank owns
  int64_t max_padded() const { return max_padded_; }    // largest gathered unit

 private:
  int world_;
  std::vector<UnitShard> units_;
  int64_t shard_total_ = 0;
  int64_t max_padded_ = 0;
};

}  // namespace minipt
