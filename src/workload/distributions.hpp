// The length distributions: one row each in length_distributions() (distributions.cpp).
// A row checks the [workload] keys it reads and makes a sampler that turns a random
// stream into real-valued lengths (generate_lengths rounds and clamps them). A new
// distribution is its own file (its check and sampler) plus one row.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/registry.hpp"
#include "workload/random.hpp"
#include "workload/workload.hpp"

namespace minipt {

// One draw, before rounding and clamping to [workload.min, workload.max].
using LengthSampler = std::function<double(Xoshiro256&)>;

// The longest length a distribution can draw, and the key that sets it (for the
// balance.token_budget check); tokens = 0: known only once drawn (a histogram file's
// rows, checked by check_token_budget).
struct LongestLength {
  int64_t tokens = 0;
  std::string set_by{};
};

struct DistributionRow {
  std::string name{};
  std::string description{};
  VariantNeeds needs{};
  int priority = 0;  // no `auto`
  // Throws ConfigError naming the key when a key this distribution reads is out of its
  // range (the keys every distribution shares are checked by validate_workload_spec).
  std::function<void(const WorkloadSpec&)> check{};
  std::function<LongestLength(const WorkloadSpec&)> longest{};
  // The sampler of a checked spec (may read files: a histogram).
  std::function<LengthSampler(const WorkloadSpec&)> factory{};
};

Registry<DistributionRow>& length_distributions();  // workload.distribution

// Shared checks for rows: ConfigError(key) unless min <= value <= max (of the spec).
void check_within_bounds(const char* key, double value, const WorkloadSpec& spec);

}  // namespace minipt
