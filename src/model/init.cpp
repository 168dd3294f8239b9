#include "model/init.hpp"

#include <cmath>

namespace minipt {

UnitInit unit_init(const ModelShape& shape, int unit, uint64_t seed) {
  UnitInit r;
  r.seed = seed;
  r.unit = unit;
  r.numel = shape.unit_params(unit);
  if (shape.is_block(unit)) {
    const BlockLayout b(shape);
    r.ones_begin[0] = b.attn_norm;
    r.ones_end[0] = b.attn_norm + shape.hidden;
    r.ones_begin[1] = b.mlp_norm;
    r.ones_end[1] = b.mlp_norm + shape.hidden;
  } else if (shape.is_head(unit)) {
    const HeadLayout h(shape);
    r.ones_begin[0] = h.final_norm;
    r.ones_end[0] = h.final_norm + shape.hidden;
  }
  const double amplitude = kInitStd * std::sqrt(3.0);
  r.scale = static_cast<float>(amplitude / 8388608.0);  // 2^23
  return r;
}

}  // namespace minipt
