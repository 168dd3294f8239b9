// The model presets in inputs/models/ load and have the parameter counts of the models
// they are shaped like (Qwen2.5; the 14B and 32B shapes are the reference paper's).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "config/config.hpp"

namespace minipt {
namespace {

struct Preset {
  const char* file;
  int layers, hidden, heads, kv_heads, ffn, vocab;
  double params;  // published parameter count
};

class ModelPresets : public ::testing::TestWithParam<Preset> {};

TEST_P(ModelPresets, ShapeAndParameterCount) {
  const Preset& p = GetParam();
  const Config c = load_config({std::string(MINIPT_SOURCE_DIR) + "/inputs/models/" + p.file}, {});
  EXPECT_EQ(c.model.layers, p.layers);
  EXPECT_EQ(c.model.hidden, p.hidden);
  EXPECT_EQ(c.model.heads, p.heads);
  EXPECT_EQ(c.model.kv_heads, p.kv_heads);
  EXPECT_EQ(c.model.ffn, p.ffn);
  EXPECT_EQ(c.model.vocab, p.vocab);
  const double n = static_cast<double>(c.model.total_params());
  EXPECT_LT(std::abs(n - p.params) / p.params, 0.01) << p.file << ": " << n << " parameters";
}

INSTANTIATE_TEST_SUITE_P(
    Qwen, ModelPresets,
    ::testing::Values(Preset{"qwen2.5-1.5b.toml", 28, 1536, 12, 2, 8960, 151936, 1.78e9},
                      Preset{"qwen2.5-7b.toml", 28, 3584, 28, 4, 18944, 152064, 7.62e9},
                      Preset{"qwen2.5-14b.toml", 48, 5120, 40, 8, 13824, 152064, 14.8e9},
                      Preset{"qwen2.5-32b.toml", 64, 5120, 40, 8, 27648, 152064, 32.8e9}),
    [](const ::testing::TestParamInfo<Preset>& pi) {
      std::string s = pi.param.file;
      s = s.substr(0, s.find(".toml"));
      for (char& ch : s)
        if (ch == '.' || ch == '-') ch = '_';
      return s;
    });

}  // namespace
}  // namespace minipt
