// The shipped workload presets (inputs/workloads/*.toml) draw what their comments say:
// the truncated mean that matches the public statistic, and no mass piled at a bound.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.hpp"
#include "workload/workload.hpp"

namespace minipt {
namespace {

struct PresetCase {
  const char* file;
  double mean;  // the statistic the preset documents
};

class WorkloadPresets : public ::testing::TestWithParam<PresetCase> {};

TEST_P(WorkloadPresets, MeanMatchesAndNothingPilesAtABound) {
  const PresetCase p = GetParam();
  const Config cfg = load_config({std::string(MINIPT_SOURCE_DIR) + "/inputs/workloads/" + p.file},
                                 {"workload.minibatch_size=200000"});
  EXPECT_EQ(cfg.workload.tail, LengthTail::resample);
  const auto lengths = generate_lengths(cfg.workload, 1, 1)[0];
  double sum = 0;
  size_t at_min = 0, at_max = 0;
  for (const int64_t l : lengths) {
    sum += static_cast<double>(l);
    at_min += l == cfg.workload.min;
    at_max += l == cfg.workload.max;
  }
  const double n = static_cast<double>(lengths.size());
  const double mean = sum / n;
  std::printf("%s: mean %.0f over %zu lengths (documented %.0f), %.4f%% at min, %.4f%% at max\n",
              p.file, mean, lengths.size(), p.mean, 100.0 * static_cast<double>(at_min) / n,
              100.0 * static_cast<double>(at_max) / n);
  EXPECT_NEAR(mean, p.mean, 0.01 * p.mean);
  // A continuous density rounds about (density at the bound) of the mass to each bound:
  // well under 0.1% here; clamping put 43% (LongAlign-like) at the minimum.
  EXPECT_LT(static_cast<double>(at_min) / n, 0.001);
  EXPECT_LT(static_cast<double>(at_max) / n, 0.001);
}

INSTANTIATE_TEST_SUITE_P(Shipped, WorkloadPresets,
                         ::testing::Values(PresetCase{"longalign.toml", 16500},
                                           PresetCase{"swe.toml", 34700},
                                           PresetCase{"short.toml", 2048}),
                         [](const auto& param_info) {
                           std::string name = param_info.param.file;
                           return name.substr(0, name.find('.'));
                         });

// The frozen copies the standard problems use still clamp (their lengths must not change).
TEST(WorkloadPresetsClamped, KeepTheEarlierLengths) {
  for (const char* file : {"longalign-clamped.toml", "swe-clamped.toml"}) {
    const Config cfg =
        load_config({std::string(MINIPT_SOURCE_DIR) + "/inputs/workloads/" + file}, {});
    EXPECT_EQ(cfg.workload.tail, LengthTail::clamp) << file;
  }
}

}  // namespace
}  // namespace minipt
