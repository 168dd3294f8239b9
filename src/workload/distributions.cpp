// The length distribution table.
#include "workload/distributions.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <sstream>
#include <vector>

#include "core/error.hpp"

namespace minipt {

namespace {

std::string format_number(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

std::string bounds_text(const WorkloadSpec& spec) {
  return "[" + std::to_string(spec.min) + ", " + std::to_string(spec.max) + "]";
}

void check_sigma(const WorkloadSpec& spec) {
  if (!(spec.sigma > 0.0 && spec.sigma <= 10.0))
    throw ConfigError("workload.sigma",
                      "must lie in (0, 10] (got " + format_number(spec.sigma) + ")");
}

LongestLength up_to_max(const WorkloadSpec& spec) { return {spec.max, "workload.max"}; }

// A draw from a log-normal distribution with the given arithmetic mean: if
// ln L ~ N(mu, sigma²) then E[L] = exp(mu + sigma²/2), so mu = ln(mean) − sigma²/2.
double lognormal_with_mean(Xoshiro256& rng, double mean, double sigma) {
  const double mu = std::log(mean) - 0.5 * sigma * sigma;
  return std::exp(mu + sigma * rng.normal());
}

// Cumulative counts of a histogram, for sampling in proportion to count.
struct LengthTable {
  std::vector<int64_t> lengths;
  std::vector<int64_t> cumulative;  // cumulative[i] = Σ_{j ≤ i} count_j
};

LengthTable make_length_table(const WorkloadSpec& spec) {
  const std::string& path = spec.histogram_file;
  LengthTable table;
  int64_t total = 0;
  // clamp: a row outside the bounds is an error; resample (drop): the rows outside (above
  // max) are never drawn, which is what drawing again until one lands inside does.
  const bool checked = spec.tail == LengthTail::clamp;
  const int64_t lo = checked ? spec.min : 1;
  const int64_t hi = checked ? spec.max : std::numeric_limits<int64_t>::max();
  const auto rows = spec.histogram_text != nullptr
                        ? parse_length_histogram(*spec.histogram_text, path, lo, hi)
                        : read_length_histogram(path, lo, hi);
  bool any_row = false;
  for (const auto& [length, count] : rows) {
    if (count == 0) continue;
    any_row = true;
    if (length > spec.max || (spec.tail == LengthTail::resample && length < spec.min)) continue;
    if (total > (int64_t{1} << 62) - count)
      throw ConfigError("workload.histogram_file", path + ": counts sum to more than 2^62");
    total += count;
    table.lengths.push_back(length);
    table.cumulative.push_back(total);
  }
  if (total == 0 && any_row)
    throw ConfigError("workload.tail",
                      "= \"" + to_string(spec.tail) + "\" draws no row of " + path +
                          ": every row with a count is " +
                          (spec.tail == LengthTail::drop
                               ? "longer than workload.max = " + std::to_string(spec.max)
                               : "outside [workload.min, workload.max] = " + bounds_text(spec)) +
                          " (widen the bounds; allowed: clamp|resample|drop)");
  if (total == 0) throw ConfigError("workload.histogram_file", path + ": every count is zero");
  return table;
}

DistributionRow constant() {
  return {.name = "constant",
          .description = "every sequence workload.mean tokens",
          .check = [](const WorkloadSpec& s) { check_within_bounds("workload.mean", s.mean, s); },
          .longest =
              [](const WorkloadSpec& s) {
                return LongestLength{std::llround(s.mean), "workload.mean"};
              },
          .factory = [](const WorkloadSpec& s) -> LengthSampler {
            return [mean = s.mean](Xoshiro256&) { return mean; };
          }};
}

DistributionRow uniform() {
  return {.name = "uniform",
          .description = "integers uniform on [workload.min, workload.max]",
          .check = [](const WorkloadSpec&) {},
          .longest = up_to_max,
          .factory = [](const WorkloadSpec& s) -> LengthSampler {
            return [lo = s.min, span = static_cast<uint64_t>(s.max - s.min) + 1](Xoshiro256& rng) {
              return static_cast<double>(lo + static_cast<int64_t>(rng.below(span)));
            };
          }};
}

DistributionRow lognormal() {
  return {.name = "lognormal",
          .description = "exp(mu + workload.sigma * z) with unclamped mean workload.mean",
          .check =
              [](const WorkloadSpec& s) {
                check_within_bounds("workload.mean", s.mean, s);
                check_sigma(s);
              },
          .longest = up_to_max,
          .factory = [](const WorkloadSpec& s) -> LengthSampler {
            return [mean = s.mean, sigma = s.sigma](Xoshiro256& rng) {
              return lognormal_with_mean(rng, mean, sigma);
            };
          }};
}

DistributionRow pareto() {
  return {.name = "pareto",
          .description = "x_m * U^(-1/workload.alpha) with unclamped mean workload.mean",
          .check =
              [](const WorkloadSpec& s) {
                check_within_bounds("workload.mean", s.mean, s);
                if (!(s.alpha > 1.0 && s.alpha <= 100.0))
                  throw ConfigError("workload.alpha",
                                    "must lie in (1, 100] so that the mean is finite (got " +
                                        format_number(s.alpha) + ")");
              },
          .longest = up_to_max,
          .factory = [](const WorkloadSpec& s) -> LengthSampler {
            // Mean alpha·x_m/(alpha − 1) = workload.mean; inverse transform x_m·U^(−1/alpha).
            return [scale = s.mean * (s.alpha - 1.0) / s.alpha, alpha = s.alpha](Xoshiro256& rng) {
              return scale * std::pow(rng.uniform_open0(), -1.0 / alpha);
            };
          }};
}

DistributionRow bimodal() {
  return {.name = "bimodal",
          .description =
              "a lognormal of mean workload.long_mean with probability "
              "workload.long_fraction, else one of mean workload.short_mean",
          .check =
              [](const WorkloadSpec& s) {
                if (s.bimodal_short == 0.0 || s.bimodal_long == 0.0)
                  check_within_bounds("workload.mean", s.mean, s);  // sets the defaults
                check_sigma(s);
                for (const auto& [key, value] : {std::pair{"workload.short_mean", s.bimodal_short},
                                                 std::pair{"workload.long_mean", s.bimodal_long}})
                  if (!(value == 0.0 || (value >= static_cast<double>(s.min) &&
                                         value <= static_cast<double>(s.max))))
                    throw ConfigError(key,
                                      "must be 0 (default) or lie in [workload.min, "
                                      "workload.max] = " +
                                          bounds_text(s) + " (got " + format_number(value) + ")");
                if (!(s.bimodal_long_fraction >= 0.0 && s.bimodal_long_fraction <= 1.0))
                  throw ConfigError(
                      "workload.long_fraction",
                      "must lie in [0, 1] (got " + format_number(s.bimodal_long_fraction) + ")");
              },
          .longest = up_to_max,
          .factory = [](const WorkloadSpec& s) -> LengthSampler {
            const double short_mean = s.bimodal_short > 0.0 ? s.bimodal_short : s.mean / 4.0;
            const double long_mean = s.bimodal_long > 0.0 ? s.bimodal_long : s.mean * 4.0;
            return [=, f = s.bimodal_long_fraction, sigma = s.sigma](Xoshiro256& rng) {
              const bool is_long = rng.uniform() < f;
              return lognormal_with_mean(rng, is_long ? long_mean : short_mean, sigma);
            };
          }};
}

DistributionRow histogram() {
  return {.name = "histogram",
          .description = "the lengths of workload.histogram_file in proportion to their counts",
          .check =
              [](const WorkloadSpec& s) {
                if (s.histogram_file.empty())
                  throw ConfigError("workload.histogram_file",
                                    "required when workload.distribution = \"histogram\"");
              },
          .longest = [](const WorkloadSpec&) { return LongestLength{}; },
          .factory = [](const WorkloadSpec& s) -> LengthSampler {
            auto table = std::make_shared<const LengthTable>(make_length_table(s));
            return [table](Xoshiro256& rng) {
              const auto pick =
                  static_cast<int64_t>(rng.below(static_cast<uint64_t>(table->cumulative.back())));
              const auto it =
                  std::upper_bound(table->cumulative.begin(), table->cumulative.end(), pick);
              return static_cast<double>(
                  table->lengths[static_cast<size_t>(it - table->cumulative.begin())]);
            };
          }};
}

}  // namespace

void check_within_bounds(const char* key, double value, const WorkloadSpec& spec) {
  if (!(value >= static_cast<double>(spec.min) && value <= static_cast<double>(spec.max)))
    throw ConfigError(key, "must lie in [workload.min, workload.max] = " + bounds_text(spec) +
                               " (got " + format_number(value) + ")");
}

Registry<DistributionRow>& length_distributions() {
  static Registry<DistributionRow> table = [] {
    Registry<DistributionRow> t;
    for (DistributionRow (*row)() : {constant, uniform, lognormal, pareto, bimodal, histogram})
      t.add(row());
    return t;
  }();
  return table;
}

}  // namespace minipt
