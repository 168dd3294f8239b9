#include "model/shape.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace minipt {

BlockLayout::BlockLayout(const ModelShape& s) {
  const int64_t h = s.hidden, kv = s.kv_dim(), f = s.ffn;
  int64_t o = 0;
  attn_norm = o;
  o += h;
  wq = o;
  o += h * h;
  wk = o;
  o += kv * h;
  wv = o;
  o += kv * h;
  wo = o;
  o += h * h;
  mlp_norm = o;
  o += h;
  w_gate = o;
  o += f * h;
  w_up = o;
  o += f * h;
  w_down = o;
  o += h * f;
  total = o;
}

HeadLayout::HeadLayout(const ModelShape& s) {
  final_norm = 0;
  lm_head = s.hidden;
  total = s.hidden + static_cast<int64_t>(s.vocab) * s.hidden;
}

int64_t ModelShape::block_params() const { return BlockLayout(*this).total; }

int64_t ModelShape::unit_params(int unit) const {
  if (is_embedding(unit)) return static_cast<int64_t>(vocab) * hidden;
  if (is_head(unit)) return HeadLayout(*this).total;
  if (is_block(unit)) return block_params();
  throw std::out_of_range("unit index out of range");
}

int64_t ModelShape::total_params() const {
  int64_t n = 0;
  for (int u = 0; u < num_units(); ++u) n += unit_params(u);
  return n;
}

int64_t ModelShape::matmul_params() const {
  const int64_t per_block = block_params() - 2LL * hidden;
  return per_block * layers + static_cast<int64_t>(vocab) * hidden;
}

double ModelShape::unit_forward_flops(int unit, int64_t tokens, double sum_sq) const {
  const double t = static_cast<double>(tokens);
  if (is_embedding(unit)) return 0.0;
  if (is_head(unit)) return 2.0 * static_cast<double>(vocab) * hidden * t;
  const double dense = 2.0 * static_cast<double>(block_params() - 2LL * hidden) * t;
  const double attention = 2.0 * hidden * sum_sq;
  return dense + attention;
}

double ModelShape::train_flops(int64_t tokens, double sum_sq) const {
  return 6.0 * static_cast<double>(matmul_params()) * static_cast<double>(tokens) +
         6.0 * static_cast<double>(hidden) * layers * sum_sq;
}

int64_t scaled_numel(const ModelShape& shape, int unit, double scale) {
  const double n = static_cast<double>(shape.unit_params(unit)) * scale;
  return std::max<int64_t>(1, static_cast<int64_t>(std::llround(n)));
}

ShardLayout::ShardLayout(const ModelShape& shape, int world, double scale) : world_(world) {
  if (world < 1) throw std::invalid_argument("world size must be >= 1");
  units_.resize(static_cast<size_t>(shape.num_units()));
  int64_t offset = 0;
  for (int u = 0; u < shape.num_units(); ++u) {
    UnitShard& s = units_[static_cast<size_t>(u)];
    s.numel = scaled_numel(shape, u, scale);
    s.padded = (s.numel + world - 1) / world * world;
    s.shard = s.padded / world;
    s.offset = offset;
    offset += s.shard;
    max_padded_ = std::max(max_padded_, s.padded);
  }
  shard_total_ = offset;
}

}  // namespace minipt
