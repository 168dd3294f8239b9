// The step loop shared by every strategy: each step executes this rank's step program
// (step/program.hpp: each microbatch's forward and backward unit by unit through the
// double-buffered pipeline, pipeline.hpp, then the reductions, clipping and AdamW on the
// own shard). The timed step is trainer.cpp; what is not timed
// (input, console, gathers, dump, verification, collection) is trainer_untimed.cpp.
#pragma once

#include <mpi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm/replica.hpp"
#include "config/config.hpp"
#include "step/program.hpp"
#include "step/run_plan.hpp"
#include "trace/recorder.hpp"
#include "trace/run_file.hpp"
#include "train/kernel_tuning.hpp"
#include "train/pipeline.hpp"
#include "train/replica_reduction.hpp"
#include "train/step_input.hpp"
#include "train/strategy.hpp"

namespace minipt {

class Trainer {
 public:
  // The run's plan (step/run_plan.hpp) gives every step's lengths, plan and FLOPs;
  // `run_plan` is made for `comm`'s size. The second form makes the plan of `cfg` itself.
  Trainer(const RunPlan& run_plan, MPI_Comm comm);
  Trainer(const Config& cfg, MPI_Comm comm);
  ~Trainer();

  // Runs every step; prints one line per step on rank 0 if `verbose`. `on_step(s)`, if
  // set, is called before step s starts.
  void run(bool verbose, const std::function<void(int step)>& on_step = {});

  // Collective: gathers every rank's events, steps and sequences to rank 0 and
  // computes the summary. The result is only complete on rank 0.
  RunFile collect();

  // In-run verification (collective): "" if every step's loss and every parameter is
  // finite, the loss is the same on every rank, and the replicas of each shard (hybrid
  // sharding) are bit-identical; else what failed (the same text on every rank).
  std::string verify();
  // The L2 norm of all parameters (fp32 master weights) after the last step, as verify()
  // found it: the same on every rank; the figure the suite compares between modes.
  double parameter_norm() const { return parameter_norm_; }

  // The full fp32 parameters of every unit (collective; complete on rank 0 only).
  std::vector<std::vector<float>> gather_parameters();

  const std::vector<double>& losses() const { return losses_; }
  ComputeBackend& backend() { return *backend_; }
  std::string transport_name() const { return strategy_->transport_name(); }
  const NodeLayout& nodes() const { return nodes_; }
  const ReplicaReduction& replica_reduction() const { return *replica_; }
  // The transports chosen for this rank's shard group, per peer class.
  const StrategyOptions& transports() const { return transports_; }
  int64_t clock_error_bound_ns() const { return recorder_->alignment().error_bound_ns; }
  // The job's kernel choices (compute.tuning), made before step 0.
  const KernelTuning& kernel_tuning() const { return tuning_; }
  // The per-rank peak MFU is taken against, and where it came from.
  double mfu_peak_tflops() const { return peak_tflops_; }
  const std::string& mfu_peak_source() const { return peak_source_; }

 private:
  // Timed (trainer.cpp).
  struct StepState;
  void run_step(int step, bool verbose);
  void execute(const step::Op& op, StepState& st);
  void adamw(StepContext& ctx, double sq);
  void progress();
  // Untimed (trainer_untimed.cpp).
  StepInput load_step(int step);
  void print_step_line(int step, double loss, double step_tokens);
  std::vector<std::vector<float>> gather_units(const float* shard_buffer);
  void write_dump(int step, const std::vector<std::vector<float>>& params_before,
                  const std::vector<std::vector<int>>& seq_ids,
                  const std::vector<std::vector<double>>& seq_losses);

  Config cfg_;
  MPI_Comm comm_;
  int rank_ = 0, world_ = 1;
  NodeLayout nodes_;
  StrategyOptions transports_;
  ShardLayout layout_;
  std::unique_ptr<ComputeBackend> backend_;
  std::unique_ptr<Control> control_;
  std::unique_ptr<Recorder> recorder_;
  std::unique_ptr<ShardGroups> groups_;
  double parameter_norm_ = 0;
  std::unique_ptr<Strategy> strategy_;
  step::StepTraits traits_;  // the mode's row, replicas, recompute (refreshed per step)
  std::unique_ptr<UnitPipeline> pipeline_;
  std::unique_ptr<ReplicaReduction> replica_;
  float* m_ = nullptr;
  float* v_ = nullptr;
  int optimizer_steps_ = 0;
  RunPlan run_plan_;  // every step's lengths, plan and FLOPs
  StepPlan plan_;     // the balancing of step plan_step_ (plan_of)
  int plan_step_ = -1;
  const StepPlan& plan_of(int step);  // step's plan, made once per step
  std::vector<SequenceRecord> sequences_;
  std::vector<double> losses_;
  KernelTuning tuning_;
  double peak_tflops_ = 0;
  std::string peak_source_;
};

// The local part of Trainer::verify(): what is wrong with this rank's losses and
// parameter shard ("" if nothing).
std::string verification_problem(const std::vector<double>& losses, const float* shard, int64_t n);

}  // namespace minipt
