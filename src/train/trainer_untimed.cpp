// The trainer's untimed work, apart from the timed step (trainer.cpp): the step's input
// and console line, gathering shards to rank 0, the model dump, the in-run verification
// and collecting every rank's timeline.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "comm/gather.hpp"
#include "comm/mpi_transports.hpp"
#include "compute/backend.hpp"
#include "trace/dump.hpp"
#include "train/trainer.hpp"
#include "workload/tokens.hpp"

namespace minipt {

StepInput Trainer::load_step(int step) {
  return load_step_input(cfg_, step, plan_of(step), rank_, sequences_);
}

// The step line: the global step time needs every rank's start and end (collective).
void Trainer::print_step_line(int step, double loss, double step_tokens) {
  const StepRecord& r = recorder_->steps().back();
  const double t0 = -control_->allreduce_max(static_cast<double>(-r.t_start_ns));
  const double t1 = control_->allreduce_max(static_cast<double>(r.t_end_ns));
  const double busy = control_->allreduce_sum(static_cast<double>(r.compute_ns));
  const double dt = (t1 - t0) * 1e-9;
  if (rank_ != 0) return;
  const double util = busy * 1e-9 / (dt * world_);
  // Stand-in gradients (a backend that models time) give a loss that says nothing.
  char loss_column[32] = "";
  if (!compute_backends().at(cfg_.compute.backend, "compute.backend").models_time)
    std::snprintf(loss_column, sizeof loss_column, " loss %.4f |", loss);
  // Compute-busy time comes from the events (run.trace): without them it is unknown.
  char util_columns[48] = "util   n/a | idle   n/a";
  if (cfg_.run.trace)
    std::snprintf(util_columns, sizeof util_columns, "util %5.1f%% | idle %5.1f%%", 100 * util,
                  100 * (1 - util));
  std::printf("step %3d | %s | tokens %9.0f |%s %9.2f ms | %10.0f tok/s | %s\n", step,
              to_string(cfg_.run.mode).c_str(), step_tokens, loss_column, dt * 1e3,
              step_tokens / dt, util_columns);
  std::fflush(stdout);
}

// Every unit's full fp32 buffer (numel elements), reassembled on rank 0 from all
// ranks' copies of `shard_buffer`; empty on the other ranks. Collective.
std::vector<std::vector<float>> Trainer::gather_units(const float* shard_buffer) {
  const auto n = static_cast<size_t>(layout_.shard_total());
  std::vector<float> mine(n);
  backend_->copy_to_host(mine.data(), shard_buffer, n * sizeof(float));
  const std::vector<float> all = gather_to_root(comm_, mine).values;
  std::vector<std::vector<float>> units;
  if (rank_ != 0) return units;
  for (int u = 0; u < layout_.num_units(); ++u) {
    const UnitShard& s = layout_.unit(u);
    std::vector<float> full;
    full.reserve(static_cast<size_t>(s.padded));
    for (int r = 0; r < layout_.world(); ++r) {  // shard group 0 holds every shard
      const float* p = all.data() + static_cast<size_t>(r) * n + static_cast<size_t>(s.offset);
      full.insert(full.end(), p, p + s.shard);
    }
    full.resize(static_cast<size_t>(s.numel));
    units.push_back(std::move(full));
  }
  return units;
}

std::string verification_problem(const std::vector<double>& losses, const float* shard, int64_t n) {
  for (size_t s = 0; s < losses.size(); ++s)
    if (!std::isfinite(losses[s]))
      return "the loss of step " + std::to_string(s) + " is not finite";
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(shard[i]))
      return "parameter element " + std::to_string(i) + " of the shard is not finite";
  return "";
}

std::string Trainer::verify() {
  const auto n = static_cast<size_t>(layout_.shard_total());
  std::vector<float> mine(n);
  backend_->copy_to_host(mine.data(), strategy_->master(), n * sizeof(float));
  std::string problem = verification_problem(losses_, mine.data(), static_cast<int64_t>(n));
  // Every rank holds the same loss (it is all-reduced).
  const double last = losses_.empty() ? 0.0 : losses_.back();
  if (problem.empty() && control_->allreduce_max(last) != -control_->allreduce_max(-last))
    problem = "the ranks report different losses";
  // Replicas of a shard must hold the same bits: compare a checksum across them.
  uint64_t sum = 1469598103934665603ULL;
  for (float x : mine) {
    uint32_t bits = 0;
    std::memcpy(&bits, &x, sizeof bits);
    sum = (sum ^ bits) * 1099511628211ULL;
  }
  uint64_t lo = sum, hi = sum;
  MPI_Allreduce(&sum, &lo, 1, MPI_UINT64_T, MPI_MIN, groups_->replica);
  MPI_Allreduce(&sum, &hi, 1, MPI_UINT64_T, MPI_MAX, groups_->replica);
  if (problem.empty() && lo != hi)
    problem = "the replicas of shard " + std::to_string(groups_->shard_rank) +
              " hold different parameters";
  // Σx² over one shard group covers every parameter once (replicas hold the same bits).
  double sum_sq = 0;
  for (float x : mine) sum_sq += static_cast<double>(x) * x;
  MPI_Allreduce(MPI_IN_PLACE, &sum_sq, 1, MPI_DOUBLE, MPI_SUM, groups_->shard);
  parameter_norm_ = std::sqrt(sum_sq);
  // The first failing rank's text, on every rank.
  const auto [first, text] = first_failure(comm_, problem);
  return first < 0 ? "" : "rank " + std::to_string(first) + ": " + text;
}

std::vector<std::vector<float>> Trainer::gather_parameters() {
  return gather_units(strategy_->master());
}

void Trainer::write_dump(int step, const std::vector<std::vector<float>>& params_before,
                         const std::vector<std::vector<int>>& seq_ids,
                         const std::vector<std::vector<double>>& seq_losses) {
  // Gradients: the step's accumulated, unclipped gradient of every unit.
  std::vector<std::vector<float>> grads = gather_units(strategy_->grad_acc());
  // Per-sequence losses: (sequence index, loss) pairs from every rank.
  std::vector<double> pairs;
  for (size_t j = 0; j < seq_ids.size(); ++j)
    for (size_t k = 0; k < seq_ids[j].size() && k < seq_losses[j].size(); ++k) {
      pairs.push_back(seq_ids[j][k]);
      pairs.push_back(seq_losses[j][k]);
    }
  const std::vector<double> gathered = gather_to_root(comm_, pairs).values;
  if (rank_ != 0) return;

  ModelDump d;
  d.step = step;
  d.shape = cfg_.model;
  d.params = params_before;
  d.grads = std::move(grads);
  const auto& lengths = plan_of(step).lengths;
  d.lengths = lengths;
  for (size_t i = 0; i < lengths.size(); ++i) {
    const auto t =
        sequence_tokens(cfg_.run.seed, step, static_cast<int>(i), lengths[i], cfg_.model.vocab);
    d.tokens.insert(d.tokens.end(), t.begin(), t.end());
  }
  d.sequence_loss.assign(lengths.size(), std::nan(""));
  for (size_t i = 0; i + 1 < gathered.size(); i += 2)
    d.sequence_loss[static_cast<size_t>(gathered[i])] = gathered[i + 1];
  write_model_dump(cfg_.run.dump, d);
}

RunFile Trainer::collect() {
  RunFile rf;
  // Events, steps and sequences are PODs: gathered as bytes.
  const auto gather_bytes = [&](const auto& vec) { return gather_to_root(comm_, vec).values; };
  rf.events = gather_bytes(recorder_->events());
  rf.steps = gather_bytes(recorder_->steps());
  rf.sequences = gather_bytes(sequences_);
  const std::vector<int64_t> peaks =
      gather_to_root(comm_, std::vector<int64_t>{backend_->peak_memory_bytes()}).values;
  if (rank_ == 0) {
    rf.summary =
        summarize(rf.steps, world_, cfg_.run.warmup_steps, run_plan_.flops(), peak_tflops_);
    if (!cfg_.run.trace) {
      // Compute-busy time comes from the events: without them it is unknown, not zero.
      const double unknown = std::numeric_limits<double>::quiet_NaN();
      rf.summary.utilization = rf.summary.idle_fraction = unknown;
      std::fill(rf.summary.utilization_per_rank.begin(), rf.summary.utilization_per_rank.end(),
                unknown);
      std::fill(rf.summary.idle_per_rank.begin(), rf.summary.idle_per_rank.end(), unknown);
    }
    rf.summary.peak_memory_per_rank = peaks;
    rf.summary.peak_memory_bytes = *std::max_element(peaks.begin(), peaks.end());
  }
  return rf;
}

}  // namespace minipt
