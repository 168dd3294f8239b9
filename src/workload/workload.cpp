// Sequence-length generation: spec validation, the length distributions, histogram
// files, and the per-sequence balancing costs.
#include "workload/workload.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "core/error.hpp"
#include "core/input_file.hpp"
#include "model/shape.hpp"
#include "workload/distributions.hpp"
#include "workload/random.hpp"

namespace minipt {

namespace {

// Distinguishes the length streams from other streams derived from the same seed
// (token streams use their own tag), so that changing one never shifts the other.
constexpr uint64_t kLengthStreamTag = 0x6c656e6774687321ULL;  // "lengths!"

// The text with bytes outside printable ASCII written as \xNN, for error messages.
std::string printable(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += {'\\', 'x', kHex[byte >> 4], kHex[byte & 15]};
    }
  }
  return out;
}

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool parse_int64(std::string_view s, int64_t& value) {
  s = trim(s);
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size();
}

// Rounds a real-valued draw to a length in [lo, hi]. Clamping happens in double
// first, so an overflowing draw (inf) cannot reach llround.
int64_t clamp_length(double x, int64_t lo, int64_t hi) {
  const double clamped = std::clamp(x, static_cast<double>(lo), static_cast<double>(hi));
  return std::clamp<int64_t>(std::llround(clamped), lo, hi);
}

// Too few draws land inside the bounds for resample/drop to fill a step.
ConfigError tail_error(const WorkloadSpec& spec, int step) {
  const std::string which = spec.tail == LengthTail::drop
                                ? "at most workload.max = " + std::to_string(spec.max)
                                : "inside [workload.min, workload.max] = [" +
                                      std::to_string(spec.min) + ", " + std::to_string(spec.max) +
                                      "]";
  return ConfigError("workload.tail",
                     "= \"" + to_string(spec.tail) + "\": fewer than 1 in " +
                         std::to_string(kTailDrawsPerSequence) +
                         " draws of workload.distribution = \"" + spec.distribution + "\" are " +
                         which + " (step " + std::to_string(step) +
                         " could not be filled); widen workload.min/workload.max, move the "
                         "distribution's parameters inside them, or use another tail (allowed: "
                         "clamp|resample|drop)");
}

}  // namespace

SequenceCost make_sequence_cost(CostKind kind, const ModelShape& shape,
                                const QuadraticCostFit& fit) {
  SequenceCost cost;
  switch (kind) {
    case CostKind::tokens:
      cost.linear = 1.0;
      cost.quadratic = 0.0;
      break;
    case CostKind::quadratic: {
      // a·s² + b·s with s = L/32000, expanded into coefficients of L and L².
      constexpr double kScale = 32000.0;
      cost.linear = fit.b / kScale;
      cost.quadratic = fit.a / (kScale * kScale);
      break;
    }
    case CostKind::flops:
      // A sequence's share of ModelShape::train_flops: every token passes every
      // matmul (6 FLOPs per parameter: forward 2, backward 4), and causal attention
      // costs 6·hidden·L² per layer. Packing does not mix sequences in attention,
      // so a microbatch's cost is the sum of its sequences' costs.
      cost.linear = 6.0 * static_cast<double>(shape.matmul_params());
      cost.quadratic = 6.0 * static_cast<double>(shape.hidden) * shape.layers;
      break;
  }
  return cost;
}

void validate_workload_spec(const WorkloadSpec& spec) {
  if (spec.minibatch_size < 1)
    throw ConfigError("workload.minibatch_size",
                      "must be >= 1 (got " + std::to_string(spec.minibatch_size) + ")");
  if (spec.min < 1)
    throw ConfigError("workload.min", "must be >= 1 (got " + std::to_string(spec.min) + ")");
  if (spec.max < spec.min)
    throw ConfigError("workload.max", "must be >= workload.min = " + std::to_string(spec.min) +
                                          " (got " + std::to_string(spec.max) + ")");
  length_distributions().at(spec.distribution, "workload.distribution").check(spec);
}

std::vector<std::pair<int64_t, int64_t>> read_length_histogram(const std::string& path,
                                                               int64_t min_length,
                                                               int64_t max_length) {
  return parse_length_histogram(read_input_file(path, "workload.histogram_file", "histogram file"),
                                path, min_length, max_length);
}

std::vector<std::pair<int64_t, int64_t>> parse_length_histogram(std::string_view file_text,
                                                                const std::string& path,
                                                                int64_t min_length,
                                                                int64_t max_length) {
  std::istringstream in{std::string(file_text)};
  std::vector<std::pair<int64_t, int64_t>> rows;
  std::string line;
  int line_number = 0;
  bool seen_first_line = false;
  while (std::getline(in, line)) {
    ++line_number;
    const std::string_view text = trim(line);
    if (text.empty() || text.front() == '#') continue;
    const size_t comma = text.find(',');
    int64_t length = 0, count = 0;
    const bool numeric = comma != std::string_view::npos &&
                         parse_int64(text.substr(0, comma), length) &&
                         parse_int64(text.substr(comma + 1), count);
    // Only a first line that does not start with a number is a header ("length,count");
    // "100,2.5" is a malformed row, not a header.
    const bool is_header = !seen_first_line && !numeric &&
                           !(std::isdigit(static_cast<unsigned char>(text.front())) ||
                             text.front() == '-' || text.front() == '+');
    seen_first_line = true;
    if (is_header) continue;
    const std::string where = path + ":" + std::to_string(line_number) + ": ";
    if (!numeric)
      throw ConfigError(
          "workload.histogram_file",
          where + "expected 'length,count' (two integers), got '" + printable(text) + "'");
    if (length < 1)
      throw ConfigError("workload.histogram_file",
                        where + "length must be >= 1 (got " + std::to_string(length) + ")");
    if (length < min_length || length > max_length)
      throw ConfigError("workload.histogram_file",
                        where + "length " + std::to_string(length) +
                            " is outside [workload.min, workload.max] = [" +
                            std::to_string(min_length) + ", " + std::to_string(max_length) +
                            "] (widen the bounds or drop the row)");
    if (count < 0)
      throw ConfigError("workload.histogram_file",
                        where + "count must be >= 0 (got " + std::to_string(count) + ")");
    rows.emplace_back(length, count);
  }
  if (rows.empty()) throw ConfigError("workload.histogram_file", path + ": no 'length,count' rows");
  return rows;
}

StepLengths::StepLengths(const WorkloadSpec& spec, uint64_t seed)
    : spec_(spec),
      n_(static_cast<size_t>(spec.minibatch_size)),
      min_(spec.min),
      max_(spec.max),
      seed_(seed) {
  validate_workload_spec(spec);
  draw_ = length_distributions().at(spec.distribution, "workload.distribution").factory(spec);
}

std::vector<int64_t> StepLengths::operator()(int step) const {
  if (step < 0) throw std::invalid_argument("StepLengths: step must be >= 0");
  // One independent stream per step: a step's lengths do not depend on how many
  // steps came before it, so runs of different length share their common prefix.
  Xoshiro256 rng(hash_combine(hash_combine(seed_, kLengthStreamTag), static_cast<uint64_t>(step)));
  std::vector<int64_t> out(n_);
  if (spec_.tail == LengthTail::clamp) {
    for (int64_t& length : out) length = clamp_length(draw_(rng), min_, max_);
    return out;
  }
  // A draw rounds into [min, max] iff it lies in [min − 0.5, max + 0.5) (lengths are
  // >= 1, so llround's halves go up); NaN is outside both. drop keeps short draws (raised
  // to min), resample redraws them too.
  const double below = static_cast<double>(min_) - 0.5;
  const double above = static_cast<double>(max_) + 0.5;
  const bool keep_short = spec_.tail == LengthTail::drop;
  int64_t draws_left = kTailDrawsPerSequence * static_cast<int64_t>(n_) + 1024;
  for (int64_t& length : out) {
    for (;;) {
      if (draws_left-- == 0) throw tail_error(spec_, step);
      const double x = draw_(rng);
      if (x < above && (keep_short || x >= below)) {
        length = clamp_length(x, min_, max_);
        break;
      }
    }
  }
  return out;
}

std::vector<int64_t> generate_step_lengths(const WorkloadSpec& spec, uint64_t seed, int step) {
  return StepLengths(spec, seed)(step);
}

std::vector<std::vector<int64_t>> generate_lengths(const WorkloadSpec& spec, uint64_t seed,
                                                   int steps) {
  if (steps < 0) throw std::invalid_argument("generate_lengths: steps must be >= 0");
  const StepLengths draw(spec, seed);
  std::vector<std::vector<int64_t>> lengths;
  for (int step = 0; step < steps; ++step) lengths.push_back(draw(step));
  return lengths;
}

void check_workload_budget(int steps, int minibatch_size, int ranks) {
  const int64_t total = static_cast<int64_t>(steps) * minibatch_size;
  if (total > kMaxRunSequences)
    throw ConfigError("run.steps, workload.minibatch_size",
                      std::to_string(steps) + " steps x " + std::to_string(minibatch_size) +
                          " sequences = " + std::to_string(total) +
                          " sequences, beyond the budget of " + std::to_string(kMaxRunSequences) +
                          " per run (README.md, \"Workload budget\"; allowed: run.steps x "
                          "workload.minibatch_size <= " +
                          std::to_string(kMaxRunSequences) + ")");
  const int64_t per_rank = (static_cast<int64_t>(minibatch_size) + ranks - 1) / std::max(1, ranks);
  if (per_rank > kMaxRankSequences)
    throw ConfigError("workload.minibatch_size",
                      std::to_string(minibatch_size) + " sequences per step on " +
                          std::to_string(ranks) + " rank(s) is " + std::to_string(per_rank) +
                          " per rank, beyond the budget of " + std::to_string(kMaxRankSequences) +
                          " (README.md, \"Workload budget\"; allowed: workload.minibatch_size "
                          "<= " +
                          std::to_string(kMaxRankSequences) + " x ranks)");
}

std::string to_string(LengthTail tail) {
  switch (tail) {
    case LengthTail::clamp:
      return "clamp";
    case LengthTail::resample:
      return "resample";
    case LengthTail::drop:
      return "drop";
  }
  return "?";
}

}  // namespace minipt
