// The run plan (step/run_plan.hpp): each step's lengths from the run's one draw, its plan
// for the run's scheme and the bound's plans, the one warm-up rule (core/warmup.hpp), the
// per-step FLOPs and the configuration's cost model, parsed once (load_cost_file).
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/cost_file.hpp"
#include "core/error.hpp"
#include "core/input_bundle.hpp"
#include "core/warmup.hpp"
#include "step/run_plan.hpp"
#include "test_files.hpp"
#include "workload/workload.hpp"

namespace minipt {
namespace {

Config small(const std::vector<std::string>& extra) {
  std::vector<std::string> sets = {"workload.distribution=lognormal",
                                   "workload.mean=300",
                                   "workload.min=16",
                                   "workload.max=2048",
                                   "workload.minibatch_size=12",
                                   "balance.token_budget=2048",
                                   "run.steps=3"};
  sets.insert(sets.end(), extra.begin(), extra.end());
  return load_config({}, sets);
}

void expect_same_plan(const StepPlan& a, const StepPlan& b) {
  EXPECT_EQ(a.lengths, b.lengths);
  ASSERT_EQ(a.ranks.size(), b.ranks.size());
  for (size_t r = 0; r < a.ranks.size(); ++r) {
    ASSERT_EQ(a.ranks[r].microbatches.size(), b.ranks[r].microbatches.size()) << "rank " << r;
    for (size_t j = 0; j < a.ranks[r].microbatches.size(); ++j)
      EXPECT_EQ(a.ranks[r].microbatches[j].sequences, b.ranks[r].microbatches[j].sequences);
  }
}

// Step s's lengths are the workload's (the same values however they are asked for), its
// plan is balance.scheme's on them, its FLOPs those of its sequences.
TEST(RunPlan, EachStepIsTheSchemesPlanOfTheOneDraw) {
  for (const auto& [mode, scheme] : std::vector<std::pair<std::string, std::string>>{
           {"odc", "mini"}, {"fsdp", "micro"}, {"fsdp", "none"}, {"odc", "localsort"}}) {
    SCOPED_TRACE(mode + "+" + scheme);
    const Config cfg = small({"run.mode=" + mode, "balance.scheme=" + scheme});
    const RunPlan rp(cfg, 4);
    const auto all = generate_lengths(cfg.workload, cfg.run.seed, cfg.run.steps);
    ASSERT_EQ(rp.steps(), 3);
    ASSERT_EQ(rp.flops().size(), 3u);
    for (int s = 0; s < 3; ++s) {
      RunPlan::Step step = rp.step(s);
      EXPECT_EQ(step.index(), s);
      EXPECT_EQ(step.lengths(), all[static_cast<size_t>(s)]);
      const StepPlan want = plan_step(all[static_cast<size_t>(s)], 4,
                                      balance_options(cfg, scheme, mode == "fsdp"), s);
      expect_same_plan(step.plan(), want);
      expect_same_plan(rp.plan(s), want);
      EXPECT_EQ(&step.plan(), &step.plan()) << "made once per step";
      double tokens = 0, sq = 0;
      for (int64_t l : all[static_cast<size_t>(s)]) {
        tokens += static_cast<double>(l);
        sq += static_cast<double>(l) * static_cast<double>(l);
      }
      EXPECT_EQ(step.flops(), cfg.model.train_flops(static_cast<int64_t>(tokens), sq));
    }
  }
}

// The bound's two plans are fsdp+micro and odc+mini of the same lengths; where the run's
// scheme is one of them, its plan is that very plan (not a second one).
TEST(RunPlan, TheRunsPlanIsTheBoundsPlanOfItsScheme) {
  for (const auto& [mode, scheme] : std::vector<std::pair<std::string, std::string>>{
           {"fsdp", "micro"}, {"odc", "mini"}, {"odc", "micro"}, {"fsdp", "none"}}) {
    SCOPED_TRACE(mode + "+" + scheme);
    const Config cfg = small({"run.mode=" + mode, "balance.scheme=" + scheme});
    const RunPlan rp(cfg, 4);
    RunPlan::Step step = rp.step(1);
    const BoundPlans& bound = step.bound_plans();
    expect_same_plan(bound.micro,
                     plan_step(step.lengths(), 4, balance_options(cfg, "micro", true), 1));
    expect_same_plan(bound.mini,
                     plan_step(step.lengths(), 4, balance_options(cfg, "mini", false), 1));
    const StepPlan* shared = mode == "fsdp" && scheme == "micro" ? &bound.micro
                             : mode == "odc" && scheme == "mini" ? &bound.mini
                                                                 : nullptr;
    if (shared != nullptr)
      EXPECT_EQ(&step.plan(), shared);
    else
      EXPECT_TRUE(&step.plan() != &bound.micro && &step.plan() != &bound.mini);
    expect_same_plan(step.plan(), rp.plan(1));
    // The BOUND line: the measured steps' bounds summed.
    PlanBound sum;
    for (int s = 0; s < rp.steps(); ++s)
      if (rp.measured(s)) {
        const PlanBound one = rp.step(s).bound();
        sum.fsdp_s += one.fsdp_s;
        sum.odc_s += one.odc_s;
      }
    EXPECT_GT(sum.odc_s, 0);
    EXPECT_EQ(rp.bound().fsdp_s, sum.fsdp_s);
    EXPECT_EQ(rp.bound().odc_s, sum.odc_s);
  }
}

// The one warm-up rule: steps from run.warmup_steps on, or every step when none is beyond
// the warm-up (a configuration cannot ask for that; a timeline of fewer steps can).
TEST(RunPlan, MeasuredStepsFollowTheOneWarmUpRule) {
  EXPECT_EQ(first_measured_step(0, 3), 0);
  EXPECT_EQ(first_measured_step(1, 3), 1);
  EXPECT_EQ(first_measured_step(2, 3), 2);
  EXPECT_EQ(first_measured_step(3, 3), 0);  // steps == warmup: all measured
  EXPECT_EQ(first_measured_step(5, 3), 0);
  EXPECT_EQ(first_measured_step(1, 0), 0);
  for (const int warmup : {0, 1, 2}) {
    const RunPlan rp(small({"run.warmup_steps=" + std::to_string(warmup)}), 2);
    for (int s = 0; s < 3; ++s) {
      EXPECT_EQ(rp.measured(s), s >= warmup) << warmup << " " << s;
      EXPECT_EQ(rp.step(s).measured(), s >= warmup) << warmup << " " << s;
    }
    EXPECT_EQ(rp.measured_steps(), 3 - warmup);
  }
  Config edge = small({});
  edge.run.warmup_steps = edge.run.steps;  // past validation: the rule's edge
  const RunPlan rp(edge, 2);
  for (int s = 0; s < 3; ++s) EXPECT_TRUE(rp.measured(s)) << s;
  EXPECT_EQ(rp.measured_steps(), 3);
}

// A workload no plan can hold is a ConfigError naming the key, before any step is planned.
TEST(RunPlan, AnImpossibleWorkloadIsAConfigError) {
  Config tight = small({});
  tight.balance.token_budget = tight.workload.min - 1;  // no sequence fits a microbatch
  try {
    const RunPlan rp(tight, 2);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "balance.token_budget");
  }
  const Config big = small({"workload.minibatch_size=" + std::to_string(kMaxRankSequences + 1)});
  try {
    const RunPlan rp(big, 1);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("workload.minibatch_size"), std::string::npos);
  }
}

// The cost file is parsed once, into compute.costs, and the run plan prices with that very
// model; without one, FLOPs at compute.peak_tflops.
TEST(RunPlan, TheCostModelIsTheConfigurationsParsedOnce) {
  Config cfg = small({"compute.backend=emulated", "compute.peak_tflops=100"});
  const RunPlan flops(cfg, 2);
  EXPECT_DOUBLE_EQ(flops.cost().unit_time(1, 0, 1000, 1e6),
                   flops_unit_seconds(cfg.model, 1, 0, 1000, 1e6, 100.0));
  EXPECT_EQ(flops.unit_time()(1, 1, 1000, 1e6), flops.cost().unit_time(1, 1, 1000, 1e6));

  CostModel m = flops_cost_model(cfg.model, 50.0, 4, 4);
  const std::string path = test::write_scratch("cost.toml", format_cost_model(m, {}));
  cfg.compute.cost_model = path;
  EXPECT_THROW(cost_model_of(cfg), std::logic_error) << "set but never loaded";
  InputBundle read;
  load_cost_file(cfg, path, "compute.cost_model", InputReader::recording_into(read));
  ASSERT_TRUE(cfg.compute.costs);
  EXPECT_EQ(read.files.count(path), 1u) << "read through the command's reader";
  const RunPlan costed(cfg, 2);
  EXPECT_EQ(&costed.cost(), cfg.compute.costs.get()) << "the parsed model itself, not a copy";
  EXPECT_DOUBLE_EQ(costed.cost().unit_time(1, 0, 1000, 1e6),
                   flops_unit_seconds(cfg.model, 1, 0, 1000, 1e6, 50.0));
  load_cost_file(cfg, "", "compute.cost_model", InputReader());
  EXPECT_FALSE(cfg.compute.costs);
  try {
    load_cost_file(cfg, path + ".gone", "--cost", InputReader());
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "--cost");
  }
}

}  // namespace
}  // namespace minipt
