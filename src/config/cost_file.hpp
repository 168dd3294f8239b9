// The cost model as a readable TOML file (format in README.md, "Cost model files").
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "model/cost_model.hpp"

namespace minipt {

// Fit quality of one calibrated term, written beside it as comments-with-values.
struct FitReport {
  double r2 = 0;
  double worst_residual = 0;  // largest |measured − fitted| / measured
  int samples = 0;
};

// The documented bounds on a cost file's terms (README.md, "Cost model files"), checked at
// load: generous for any hardware, tight enough that the times computed from them stay
// finite and within the timeline's int64 nanoseconds for any allowed workload step.
struct CostBounds {
  double call_s = 1e3;          // a, microbatch_overhead_s: seconds per call
  double per_token_s = 1.0;     // b: seconds per token
  double per_token2_s = 1e-3;   // c: seconds per token^2
  double per_element_s = 1e-3;  // optimizer and accumulate_grad: seconds per element
  double latency_s = 1.0;       // comm latency_s
  double min_GBps = 1e-6;       // comm bandwidth_GBps (0 allowed for allreduce, barrier)
  double max_GBps = 1e6;
};

// The file's text. `reports` is keyed "block.forward" etc.
std::string format_cost_model(const CostModel& m, const std::map<std::string, FitReport>& reports);

// Reads a cost file. `key` names where the path came from (compute.cost_model or --cost)
// for error messages. Throws ConfigError naming the file and the key on a missing or
// unreadable file, an unknown key, a missing or negative term, a term beyond its
// CostBounds, an element size other than 2 or 4, or a value of the wrong type. Comm tables that are
// absent take default_link() (recorded as their source).
CostModel read_cost_model(const std::string& path, const std::string& key);
// The same for a file's bytes already read (`path` names it in errors).
CostModel parse_cost_model(std::string_view text, const std::string& path, const std::string& key);

// Throws ConfigError(key, ...) if `m` was calibrated for another model shape than `shape`,
// naming both, or on more decoder layers than `shape` has (a file calibrated on a few
// layers serves any deeper model of its shape: its costs are per unit).
void check_cost_model_shape(const CostModel& m, const ModelShape& shape, const std::string& key);
// check_cost_model_shape, then `shape` becomes the model's, so that its units are classified
// (embedding, decoder block, LM head, which blocks recompute) with the configuration's layer
// count, not the file's: a 4-layer file on a 48-layer configuration times 48 blocks and one
// head. The file's own layer count stays in provenance["calibrated_layers"].
void adopt_cost_model_shape(CostModel& m, const ModelShape& shape, const std::string& key);

struct Config;
class InputReader;

// A command's cost file, parsed once: `path` read through `reader` (`key`: where the path
// came from, compute.cost_model or --cost), checked against cfg.model and adopting it
// (adopt_cost_model_shape), into cfg.compute.costs, the one form a Config holds it in
// (the emulated backend spends it, the run plan and the simulator price with it). An
// empty `path` leaves cfg.compute.costs unset. ConfigError as read_cost_model.
void load_cost_file(Config& cfg, const std::string& path, const std::string& key,
                    const InputReader& reader);
// The cost model a configuration uses: its cost file as load_cost_file parsed it, else the
// FLOPs-at-peak model with compute.peak_tflops and the backend's element sizes (cuda: bf16
// parameters, fp32 gradients; else fp32 both). std::logic_error if compute.cost_model is
// set but was never loaded (a caller of load_config that skipped load_cost_file).
std::shared_ptr<const CostModel> cost_model_of(const Config& cfg);

}  // namespace minipt
