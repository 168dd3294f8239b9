// A run's inputs resolved once from the configuration and the world size, for every
// command (`run`'s trainer, `simulate`, `plan`) and the summary: each step's lengths
// (from the run's one generator), its plan for the run's scheme and, when asked, the
// bound's two plans, the cost model (the configuration's, parsed once), which steps are
// measured (core/warmup.hpp), each step's FLOPs.
// Lengths are drawn step by step (README.md, "Workload budget": no command holds every
// step's lengths at once): the constructor draws each step once to check it and take its
// FLOPs, step(s) draws step s when it is planned; both from the same StepLengths, so every
// command sees the same lengths of step s.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "config/config.hpp"
#include "model/cost_model.hpp"
#include "workload/workload.hpp"

namespace minipt {

// The two modes' modelled step times with communication free (`minipt plan`'s bound).
struct PlanBound {
  double fsdp_s = 0, odc_s = 0;
};
// The two plans of one step that the bound times: fsdp+micro and odc+mini.
struct BoundPlans {
  StepPlan micro, mini;
};

class RunPlan {
 public:
  // ConfigError (naming the keys) on a workload beyond the budget (check_workload_budget),
  // a step whose lengths cannot be drawn (workload.tail) or that holds a sequence no
  // microbatch fits (balance.token_budget), a cost model the configuration cannot use.
  RunPlan(const Config& cfg, int world);

  // One step: its lengths, drawn once, and the plans made from them when asked.
  class Step {
   public:
    int index() const { return step_; }
    const std::vector<int64_t>& lengths() const { return lengths_; }
    bool measured() const { return run_->measured(step_); }
    double flops() const { return run_->flops()[static_cast<size_t>(step_)]; }
    // The run's plan (balance.scheme, equal microbatch counts for fsdp): the bound's plan
    // of the same scheme and mode where bound_plans() made it (the same plan).
    const StepPlan& plan();
    // The bound's two plans, made side by side on two threads for large steps (each the
    // same as made alone).
    const BoundPlans& bound_plans();
    // The bound's modelled step times of this step (bound_plans() timed).
    PlanBound bound();

   private:
    friend class RunPlan;
    Step(const RunPlan& run, int step);
    const RunPlan* run_;
    int step_;
    std::vector<int64_t> lengths_;
    std::optional<BoundPlans> bound_;
    std::optional<StepPlan> own_;
  };
  Step step(int s) const;
  // Step s's plan for the run's scheme (step(s).plan()).
  StepPlan plan(int s) const;

  const Config& config() const { return cfg_; }
  int world() const { return world_; }
  int steps() const { return cfg_.run.steps; }
  // The warm-up rule (first_measured_step): whether the summary and the bound count step s.
  bool measured(int s) const;
  int measured_steps() const;
  // Per step: the model FLOPs (forward and backward) of its sequences.
  const std::vector<double>& flops() const { return flops_; }
  // The configuration's cost model (config/cost_file.hpp: cost_model_of).
  const CostModel& cost() const { return *cost_; }
  // The unit time the bound and `minipt plan` use: cost(), with no recompute pass where
  // model.recompute is off or the unit is not a decoder block.
  const UnitTimeFn& unit_time() const { return unit_time_; }
  // Σ over the measured steps of the bound (the BOUND line).
  PlanBound bound() const;

 private:
  Config cfg_;
  int world_;
  StepLengths draw_;  // the run's lengths, one step at a time
  std::vector<double> flops_;
  std::shared_ptr<const CostModel> cost_;
  UnitTimeFn unit_time_;
};

}  // namespace minipt
