#include "step/run_plan.hpp"

#include <memory>

#include "config/cost_file.hpp"
#include "core/parallel.hpp"

namespace minipt {

RunPlan make_run_plan(const Config& cfg, int world) {
  RunPlan rp;
  rp.lengths = generate_lengths(cfg.workload, cfg.run.seed, cfg.run.steps);
  check_token_budget(rp.lengths, cfg.balance.token_budget);
  const bool fsdp = cfg.run.mode == Mode::fsdp;
  for (int s = 0; s < cfg.run.steps; ++s) {
    rp.steps.push_back(plan_step(rp.lengths[static_cast<size_t>(s)], world,
                                 balance_options(cfg, cfg.balance.scheme, fsdp), s));
    rp.measured.push_back(bound_counts_step(cfg, s));
    double tokens = 0, sq = 0;
    for (int64_t l : rp.lengths[static_cast<size_t>(s)]) {
      tokens += static_cast<double>(l);
      sq += static_cast<double>(l) * static_cast<double>(l);
    }
    rp.flops.push_back(cfg.model.train_flops(static_cast<int64_t>(tokens), sq));
  }
  return rp;
}

UnitTimeFn plan_unit_time(const Config& cfg) {
  auto cost = std::make_shared<const CostModel>(cost_model_of(cfg));
  const Recompute recompute = cfg.compute.recompute;
  return [cost, recompute](int unit, int pass, int64_t tokens, double sum_sq) {
    if (pass == 2 && !recompute.applies(cost->shape, unit)) return 0.0;
    return cost->unit_time(unit, pass, tokens, sum_sq);
  };
}

BoundPlans bound_plans(const Config& cfg, int world, const std::vector<int64_t>& lengths,
                       int step) {
  BoundPlans plans;
  for_each_index(2, lengths.size() >= 4096, [&](size_t which) {
    if (which == 0)
      plans.micro = plan_step(lengths, world, balance_options(cfg, "micro", true), step);
    else
      plans.mini = plan_step(lengths, world, balance_options(cfg, "mini", false), step);
  });
  return plans;
}

PlanBound step_bound(const Config& cfg, int world, const BoundPlans& plans, const UnitTimeFn& t) {
  return {fsdp_step_time(plans.micro, cfg.model.num_units(), 3, t, shard_group_size(cfg, world)),
          odc_step_time(plans.mini, cfg.model.num_units(), 3, t)};
}

PlanBound step_bound(const Config& cfg, int world, const std::vector<int64_t>& lengths, int step,
                     const UnitTimeFn& t) {
  return step_bound(cfg, world, bound_plans(cfg, world, lengths, step), t);
}

bool bound_counts_step(const Config& cfg, int step) {
  const int first = cfg.run.warmup_steps < cfg.run.steps ? cfg.run.warmup_steps : 0;
  return step >= first;
}

PlanBound plan_bound(const Config& cfg, int world) {
  const auto lengths = generate_lengths(cfg.workload, cfg.run.seed, cfg.run.steps);
  const UnitTimeFn t = plan_unit_time(cfg);
  PlanBound b;
  for (int s = 0; s < cfg.run.steps; ++s)
    if (bound_counts_step(cfg, s)) {
      const PlanBound one = step_bound(cfg, world, lengths[static_cast<size_t>(s)], s, t);
      b.fsdp_s += one.fsdp_s;
      b.odc_s += one.odc_s;
    }
  return b;
}

}  // namespace minipt
