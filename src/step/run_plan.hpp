// A run's inputs resolved once from the configuration and the world size: the lengths
// (drawn once), each step's plan for the run's scheme, which steps the summary and the
// bound measure, each step's FLOPs. The trainer and the simulator take their plans from
// here; `minipt plan` its bound (the two modes' step times with communication free).
#pragma once

#include <cstdint>
#include <vector>

#include "config/config.hpp"
#include "workload/workload.hpp"

namespace minipt {

struct RunPlan {
  std::vector<std::vector<int64_t>> lengths;  // per step, drawn once
  std::vector<StepPlan> steps;                // per step, balance.scheme's plan
  std::vector<bool> measured;                 // per step: counted by the summary and bound
  std::vector<double> flops;                  // per step: model FLOPs of its sequences
};
// ConfigError (balance.token_budget) if a sequence cannot fit a microbatch.
RunPlan make_run_plan(const Config& cfg, int world);

// The two modes' modelled step times with communication free, for `minipt plan`.
struct PlanBound {
  double fsdp_s = 0, odc_s = 0;
};
// Σ over measured steps (≥ run.warmup_steps, or all if there are no more) of the
// modelled step times of fsdp+micro and odc+mini on `world` ranks.
PlanBound plan_bound(const Config& cfg, int world);
// One step's part of it (fsdp_s, odc_s of that step), and whether plan_bound counts step s.
PlanBound step_bound(const Config& cfg, int world, const std::vector<int64_t>& lengths, int step,
                     const UnitTimeFn& t);
// The two plans of one step that the bound times, fsdp+micro and odc+mini, made side by
// side on two threads for large steps (each the same as made alone), and their bound.
struct BoundPlans {
  StepPlan micro, mini;
};
BoundPlans bound_plans(const Config& cfg, int world, const std::vector<int64_t>& lengths, int step);
PlanBound step_bound(const Config& cfg, int world, const BoundPlans& plans, const UnitTimeFn& t);
bool bound_counts_step(const Config& cfg, int step);
// The unit time the bound and `minipt plan` use: the configuration's cost model
// (config/cost_file.hpp: compute.cost_model, else FLOPs at peak), with no recompute pass
// where model.recompute is off or the unit is not a decoder block.
UnitTimeFn plan_unit_time(const Config& cfg);

}  // namespace minipt
