#include "step/run_plan.hpp"

#include "config/cost_file.hpp"
#include "core/parallel.hpp"
#include "core/warmup.hpp"
#include "workload/balancers.hpp"

namespace minipt {

namespace {

UnitTimeFn bound_unit_time(std::shared_ptr<const CostModel> cost, const Recompute& recompute) {
  return [cost = std::move(cost), recompute](int unit, int pass, int64_t tokens, double sum_sq) {
    if (pass == 2 && !recompute.applies(cost->shape, unit)) return 0.0;
    return cost->unit_time(unit, pass, tokens, sum_sq);
  };
}

}  // namespace

RunPlan::RunPlan(const Config& cfg, int world)
    : cfg_(cfg),
      world_(world),
      draw_(
          (check_workload_budget(cfg.run.steps, cfg.workload.minibatch_size, world), cfg.workload),
          cfg.run.seed) {
  flops_.reserve(static_cast<size_t>(cfg_.run.steps));
  for (int s = 0; s < cfg_.run.steps; ++s) {
    const std::vector<int64_t> lengths = draw_(s);
    check_token_budget(lengths, s, cfg_.balance.token_budget);
    double tokens = 0, sq = 0;
    for (int64_t l : lengths) {
      tokens += static_cast<double>(l);
      sq += static_cast<double>(l) * static_cast<double>(l);
    }
    flops_.push_back(cfg_.model.train_flops(static_cast<int64_t>(tokens), sq));
  }
  cost_ = cost_model_of(cfg_);
  unit_time_ = bound_unit_time(cost_, cfg_.compute.recompute);
}

bool RunPlan::measured(int s) const {
  return s >= first_measured_step(cfg_.run.warmup_steps, cfg_.run.steps);
}

int RunPlan::measured_steps() const {
  return cfg_.run.steps - first_measured_step(cfg_.run.warmup_steps, cfg_.run.steps);
}

RunPlan::Step::Step(const RunPlan& run, int step)
    : run_(&run), step_(step), lengths_(run.draw_(step)) {}

RunPlan::Step RunPlan::step(int s) const { return Step(*this, s); }

StepPlan RunPlan::plan(int s) const {
  Step st = step(s);
  st.plan();  // the run's own plan (no bound plans made)
  return std::move(*st.own_);
}

const StepPlan& RunPlan::Step::plan() {
  const Config& cfg = run_->cfg_;
  const bool fsdp = cfg.run.mode == Mode::fsdp;
  if (bound_ && cfg.balance.scheme == kBoundSchemeFsdp && fsdp) return bound_->micro;
  if (bound_ && cfg.balance.scheme == kBoundSchemeOdc && !fsdp) return bound_->mini;
  if (!own_)
    own_.emplace(
        plan_step(lengths_, run_->world_, balance_options(cfg, cfg.balance.scheme, fsdp), step_));
  return *own_;
}

const BoundPlans& RunPlan::Step::bound_plans() {
  if (bound_) return *bound_;
  const Config& cfg = run_->cfg_;
  BoundPlans plans;
  for_each_index(2, lengths_.size() >= 4096, [&](size_t which) {
    if (which == 0)
      plans.micro =
          plan_step(lengths_, run_->world_, balance_options(cfg, kBoundSchemeFsdp, true), step_);
    else
      plans.mini =
          plan_step(lengths_, run_->world_, balance_options(cfg, kBoundSchemeOdc, false), step_);
  });
  return bound_.emplace(std::move(plans));
}

PlanBound RunPlan::Step::bound() {
  const Config& cfg = run_->cfg_;
  const BoundPlans& plans = bound_plans();
  const int units = cfg.model.num_units();
  return {
      fsdp_step_time(plans.micro, units, 3, run_->unit_time_, shard_group_size(cfg, run_->world_)),
      odc_step_time(plans.mini, units, 3, run_->unit_time_)};
}

PlanBound RunPlan::bound() const {
  PlanBound b;
  for (int s = 0; s < steps(); ++s)
    if (measured(s)) {
      const PlanBound one = step(s).bound();
      b.fsdp_s += one.fsdp_s;
      b.odc_s += one.odc_s;
    }
  return b;
}

}  // namespace minipt
