// Synthetic variable-length workloads and the load balancers that split each
// minibatch across ranks and pack each rank's share into microbatches.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minipt {

struct ModelShape;

enum class CostKind { tokens, quadratic, flops };

// What happens to a draw outside [workload.min, workload.max] (workload.tail):
//  clamp:    rounded to the nearer bound (a tail beyond max piles up at max);
//  resample: drawn again until it lands inside (the distribution truncated to the
//            bounds: no mass piled at either);
//  drop:     a draw above max is skipped and the next one drawn (the reference packer's
//            "maximum length" filter, which refills the count); one below min is
//            raised to min as with clamp.
enum class LengthTail { clamp, resample, drop };

struct WorkloadSpec {
  std::string distribution = "lognormal";  // a row of length_distributions()
  double mean = 2048;                      // target mean length (tokens)
  int64_t min = 64;  // every length lies in [min, max] (how: tail; histogram: see below)
  int64_t max = 8192;
  LengthTail tail = LengthTail::clamp;
  double sigma = 1.0;          // lognormal: sigma of log length
  double alpha = 1.5;          // pareto: tail index
  double bimodal_short = 0.0;  // bimodal: mean of short mode (0 → mean/4)
  double bimodal_long = 0.0;   // bimodal: mean of long mode (0 → 4·mean)
  double bimodal_long_fraction = 0.1;
  std::string histogram_file;  // histogram: CSV "length,count" rows
  // histogram: the file's bytes as load_config read them (null: read histogram_file)
  std::shared_ptr<const std::string> histogram_text;
  int minibatch_size = 32;  // sequences per step, whole job
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

// Coefficients of the reference paper's fitted cost a·s² + b·s, s = L/32000
// (1.5B shape: a=1.982, b=2.612; 7B shape: a=4.348, b=8.768).
struct QuadraticCostFit {
  double a = 1.982;
  double b = 2.612;
};

// The SequenceCost of a cost kind. `shape` is used by flops only (linear =
// 6·matmul_params, quadratic = 6·hidden·layers: the per-sequence share of
// ModelShape::train_flops); `fit` by quadratic only.
SequenceCost make_sequence_cost(CostKind kind, const ModelShape& shape,
                                const QuadraticCostFit& fit = {});

// Throws ConfigError naming the offending key and its allowed range if `spec` is not
// usable (an unknown distribution, min > max, mean outside [min, max], sigma ≤ 0, ...).
// Does not read the histogram file; generate_lengths() does.
void validate_workload_spec(const WorkloadSpec& spec);

// Lengths of every sequence of every step. Each distribution (a row of
// length_distributions(), distributions.hpp) draws a real number that is rounded, and
// brought into [min, max] as spec.tail says (clamp: a tail beyond max piles up at max;
// resample and drop draw again). The parameters below are those of the distribution
// before that step, so with resample or drop the mean of the lengths is not `mean`:
//  constant:  mean.
//  uniform:   integers uniform on [min, max] (mean is not used).
//  lognormal: exp(mu + sigma·z), mu = ln(mean) − sigma²/2, so the unclamped mean is mean.
//  pareto:    x_m·U^(−1/alpha), x_m = mean·(alpha−1)/alpha, so the unclamped mean is mean.
//  bimodal:   with probability bimodal_long_fraction a lognormal of mean bimodal_long,
//             else one of mean bimodal_short, both with sigma; the mixture's mean is
//             (1−f)·short + f·long (mean itself only sets the defaults).
//  histogram: lengths of histogram_file drawn in proportion to their counts; with
//             tail = clamp a row outside [min, max] is a ConfigError (never clamped),
//             with resample (drop) the rows outside (above max) are never drawn.
// resample and drop draw at most kTailDrawsPerSequence·minibatch_size + 1024 times a
// step: an acceptance below about 1/kTailDrawsPerSequence is a ConfigError naming
// workload.tail and the bounds, not a loop without end.
// Random numbers come from xoshiro256** with our own transforms (random.hpp), so the
// lengths are the same with every compiler and standard library.
// Depends only on (spec, seed, steps), never on the number of ranks; step s's lengths
// depend only on (spec, seed, s).
// Throws ConfigError naming the key on bad specs (e.g. unreadable histogram file).
std::vector<std::vector<int64_t>> generate_lengths(const WorkloadSpec& spec, uint64_t seed,
                                                   int steps);
// Step by step: StepLengths(spec, seed)(step) == generate_lengths(spec, seed, n)[step] for
// any n > step. The commands draw one step at a time, so no run holds every step's lengths
// at once (the distribution, a histogram file's rows included, is built once).
class StepLengths {
 public:
  StepLengths(const WorkloadSpec& spec, uint64_t seed);  // ConfigError on a bad spec
  std::vector<int64_t> operator()(int step) const;

 private:
  WorkloadSpec spec_;  // workload.tail and the bounds
  size_t n_;
  int64_t min_, max_;
  uint64_t seed_;
  std::function<double(class Xoshiro256&)> draw_;  // the distribution's LengthSampler
};
std::vector<int64_t> generate_step_lengths(const WorkloadSpec& spec, uint64_t seed, int step);

// The workload budget (README.md, "Workload budget"): at most kMaxRunSequences sequences
// in a run (run.steps x workload.minibatch_size: the /workload table holds one row each)
// and at most kMaxRankSequences per rank per step (what one rank's planning and step
// handle in seconds). Throws ConfigError naming the keys beyond it.
inline constexpr int64_t kMaxRunSequences = int64_t{1} << 25;   // 33,554,432
inline constexpr int64_t kMaxRankSequences = int64_t{1} << 16;  // 65,536
void check_workload_budget(int steps, int minibatch_size, int ranks);
inline constexpr int64_t kTailDrawsPerSequence = 64;

std::string to_string(LengthTail tail);

// Lengths listed in a histogram CSV ("length,count" rows, optional header line, '#'
// comments; read with read_input_file: at most 16 MiB), as (length, count) pairs in file
// order. Throws
// ConfigError("workload.histogram_file", "<path>[:<line>]: <what is wrong>"), also for a
// row whose length lies outside [min_length, max_length] (workload.min, workload.max;
// rows are never clamped, whatever their count).
std::vector<std::pair<int64_t, int64_t>> read_length_histogram(
    const std::string& path, int64_t min_length = 1,
    int64_t max_length = std::numeric_limits<int64_t>::max());
// The same for a file's bytes already read (`path` names it in errors).
std::vector<std::pair<int64_t, int64_t>> parse_length_histogram(
    std::string_view file_text, const std::string& path, int64_t min_length = 1,
    int64_t max_length = std::numeric_limits<int64_t>::max());

// Throws ConfigError("balance.token_budget", ...) naming the first step (0-based) that
// holds a sequence longer than `token_budget`, which no packing could place.
void check_token_budget(const std::vector<std::vector<int64_t>>& lengths_per_step,
                        int64_t token_budget);
// The same for one step's lengths.
void check_token_budget(const std::vector<int64_t>& lengths, int step, int64_t token_budget);

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
  std::string scheme = "micro";  // a row of balancers() (balancers.hpp)
  int64_t token_budget = 65536;
  SequenceCost cost;
  // fsdp: every rank must run the same number of microbatches; ranks with fewer real
  // microbatches get empty ones appended (they still join every collective).
  bool equal_microbatch_counts = true;
  // balance.equal_counts: every rank gets the same number of sequences (as verl requires
  // of RL rollouts); LB-Mini then balances cost under that constraint (LB-Micro always
  // does). Needs the step's sequence count to be a multiple of the ranks.
  bool equal_sequence_counts = false;
  // micro, mini: swap refinement of the rank partition (refine_partition, packing.hpp);
  // mini also tries the equal-count partition. balance.refine decides it per plan
  // (balance_options, config.hpp).
  bool refine = false;
};

// Splits one step's sequences over `world` ranks and packs microbatches.
//  none:  rank r takes sequences r, r+world, ... (a plain data loader), packs in order.
//  micro: LB-Micro — Karmarkar–Karp with equal sequence counts per rank, then each rank
//         packs under the token budget; the microbatch count is made equal across
//         ranks (max) and each rank's sequences are re-spread over that many
//         microbatches to balance cost (Karmarkar–Karp on cost, or greedy
//         cheapest-bin-with-room, whichever fits the budget with the lower maximum). A
//         rank whose re-spread does not fit keeps the largest count below that does and
//         gets empty microbatches appended.
//  Packing a rank's share (micro and mini) uses the fewest microbatches found, searched
//  upwards from ⌈tokens/budget⌉, each split balancing cost as above (a share of more
//  than 256 sequences searches with the greedy alone and compares the two at the end).
//  localsort: the reference's LocalSort (the paper's collective baseline) — each rank
//         keeps its share as drawn (rank r takes sequences r, r+world, ..., as `none`),
//         sorted by length, shortest first, one sequence per microbatch (that order is
//         kept); counts are made equal across ranks by padding with empty microbatches.
//  localsort-packed: the same share, longest first, packed in that order under the token
//         budget (a new microbatch whenever the next sequence does not fit).
//  arrival: no balancing — the same round-robin share in arrival order, one sequence per
//         microbatch (that order is kept; padded as localsort); the RL baseline.
//  mini:  LB-Mini — Karmarkar–Karp with unequal counts (balances total cost), each rank
//         packs its own microbatches; counts may differ across ranks.
//  With opt.refine, micro's and mini's rank partition is swap-refined
//  (refine_partition, packing.hpp), and mini with free counts also makes the refined
//  equal-count partition and keeps it when its spread is smaller and its heaviest rank
//  no heavier.
// Every scheme but localsort sorts each rank's microbatches by descending cost; with
// opt.equal_microbatch_counts every rank is padded with empty microbatches to the
// largest count. `step` (0-based, or -1 if unknown) only labels error messages.
// Throws ConfigError (key balance.token_budget) if a sequence is longer than the
// budget, std::invalid_argument if world < 1.
StepPlan plan_step(const std::vector<int64_t>& lengths, int world, const BalanceOptions& opt,
                   int step = -1);

// Karmarkar–Karp (largest differencing) partition of `costs` into `parts` subsets.
// If `equal_counts`, every subset gets ⌊n/parts⌋ or ⌈n/parts⌉ items. Returns the item
// indices of each subset.
std::vector<std::vector<int>> karmarkar_karp(const std::vector<double>& costs, int parts,
                                             bool equal_counts);

// Modelled time, with communication free, of one step under each mode, from a
// per-unit, per-pass time function (pass 0 forward, 1 backward, 2 recompute):
//  fsdp: Σ_microbatch Σ_unit Σ_pass max_rank t  (every unit waits for the slowest rank);
//        with hybrid sharding (`group` > 0 consecutive ranks per shard group) the max is
//        over the group's ranks and the step is the slowest group's
//  odc:  max_rank Σ_microbatch Σ_unit Σ_pass t   (only the minibatch barrier)
// For plans of 4096 sequences or more, t is called from several threads at once (the sums
// are the same as on one).
using UnitTimeFn = std::function<double(int unit, int pass, int64_t tokens, double sum_sq)>;
double fsdp_step_time(const StepPlan& plan, int num_units, int num_passes, const UnitTimeFn& t,
                      int group = 0);
double odc_step_time(const StepPlan& plan, int num_units, int num_passes, const UnitTimeFn& t);

// The time function of a compute-bound rank: unit_forward_flops / peak_flops for the
// forward (pass 0) and the recompute (pass 2), twice that for the backward (pass 1).
UnitTimeFn flops_unit_time(const ModelShape& shape, double peak_flops);

}  // namespace minipt
