// Synthetic variable-length workloads and the load balancers that split each
// minibatch across ranks and pack each rank's share into microbatches.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace minipt {

enum class Distribution { constant, uniform, lognormal, pareto, bimodal, histogram };
enum class BalanceScheme { none, micro, mini };
enum class CostKind { tokens, quadratic, flops };

struct WorkloadSpec {
  Distribution distribution = Distribution::lognormal;
  double mean = 2048;          // target mean length (tokens)
  int64_t min = 64;            // every length is clamped to [min, max]
  int64_t max = 8192;
  double sigma = 1.0;          // lognormal: sigma of log length
  double alpha = 1.5;          // pareto: tail index
  double bimodal_short = 0.0;  // bimodal: mean of short mode (0 → mean/4)
  double bimodal_long = 0.0;   // bimodal: mean of long mode (0 → 4·mean)
  double bimodal_long_fraction = 0.1;
  std::string histogram_file;  // histogram: CSV "length,count" rows
  int minibatch_size = 32;     // sequences per step, whole job
};

// Per-sequence cost used for balancing: cost(L) = linear·L + quadratic·L².
//  tokens:    linear 1, quadratic 0
//  quadratic: a·s² + b·s with s = L/32000 (the reference paper's fit)
//  flops:     the model's per-token dense FLOPs and per-sequence attention FLOPs
struct SequenceCost {
  double linear = 1.0;
  double quadratic = 0.0;
  double operator()(int64_t length) const {
    const double l = static_cast<double>(length);
    return linear * l + quadratic * l * l;
  }
};

// Lengths of every sequence of every step. Depends only on (spec, seed, steps),
// never on the number of ranks. Throws ConfigError naming the key on bad specs
// (e.g. unreadable histogram file).
std::vector<std::vector<int64_t>> generate_lengths(const WorkloadSpec& spec, uint64_t seed,
                                                   int steps);

struct Microbatch {
  std::vector<int> sequences;  // indices into the step's length vector, in packing order
  int64_t tokens = 0;
  double cost = 0.0;
};

struct RankPlan {
  std::vector<Microbatch> microbatches;  // sorted by descending cost; may contain empty ones
  int64_t tokens() const;
  double cost() const;
};

struct StepPlan {
  std::vector<int64_t> lengths;  // the step's sequences
  std::vector<RankPlan> ranks;
};

struct BalanceOptions {
  BalanceScheme scheme = BalanceScheme::micro;
  int64_t token_budget = 65536;
  SequenceCost cost;
  // fsdp: every rank must run the same number of microbatches; ranks with fewer real
  // microbatches get empty ones appended (they still join every collective).
  bool equal_microbatch_counts = true;
};

// Splits one step's sequences over `world` ranks and packs microbatches.
//  none:  rank r takes sequences r, r+world, ... (a plain data loader), packs in order.
//  micro: LB-Micro — Karmarkar–Karp with equal sequence counts per rank, then each rank
//         packs under the token budget; the microbatch count is made equal across
//         ranks (max) and each rank's sequences are re-spread over that many
//         microbatches to balance cost.
//  mini:  LB-Mini — Karmarkar–Karp with unequal counts (balances total cost), each rank
//         packs its own microbatches; counts may differ across ranks.
// Throws ConfigError (key balance.token_budget) if a sequence is longer than the budget.
StepPlan plan_step(const std::vector<int64_t>& lengths, int world, const BalanceOptions& opt);

// Karmarkar–Karp (largest differencing) partition of `costs` into `parts` subsets.
// If `equal_counts`, every subset gets ⌊n/parts⌋ or ⌈n/parts⌉ items. Returns the item
// indices of each subset.
std::vector<std::vector<int>> karmarkar_karp(const std::vector<double>& costs, int parts,
                                             bool equal_counts);

// Modelled time, with communication free, of one step under each mode, from a
// per-unit, per-pass time function (pass 0 forward, 1 backward, 2 recompute):
//  fsdp: Σ_microbatch Σ_unit Σ_pass max_rank t  (every unit waits for the slowest rank)
//  odc:  max_rank Σ_microbatch Σ_unit Σ_pass t   (only the minibatch barrier)
using UnitTimeFn = std::function<double(int unit, int pass, int64_t tokens, double sum_sq)>;
double fsdp_step_time(const StepPlan& plan, int num_units, int num_passes, const UnitTimeFn& t);
double odc_step_time(const StepPlan& plan, int num_units, int num_passes, const UnitTimeFn& t);

}  // namespace minipt
