// The step program (step/program.hpp): its tables, the structure it gives a step, and
// the closed-form step-time bound (workload/balance.cpp) evaluated from it.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "config/config.hpp"
#include "core/error.hpp"
#include "step/program.hpp"
#include "step/run_plan.hpp"
#include "train/trainer.hpp"
#include "workload/workload.hpp"

namespace minipt {
namespace {

using step::OpKind;

int count(const step::Program& p, OpKind k, int microbatch = -2) {
  return static_cast<int>(std::count_if(p.begin(), p.end(), [&](const step::Op& op) {
    return op.kind == k && (microbatch == -2 || op.microbatch == microbatch);
  }));
}

step::StepTraits traits(Mode mode, int units, int replicas = 1,
                        step::ReplicaPolicy policy = step::ReplicaPolicy::step) {
  step::StepTraits t;
  t.mode = &step::mode_row(mode);
  t.units = units;
  t.recompute.assign(static_cast<size_t>(units), false);
  t.recompute[1] = true;
  t.replicas = replicas;
  t.replica = policy;
  return t;
}

// Two microbatches, the second empty.
RankPlan plan_with_empty() {
  RankPlan p;
  p.microbatches = {Microbatch{{0, 1}, 10, 0.0}, Microbatch{{}, 0, 0.0}};
  return p;
}

TEST(StepProgram, TablesHaveOneRowPerKindAndMode) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < step::kOps.size(); ++i) {
    EXPECT_EQ(static_cast<size_t>(step::kOps[i].kind), i) << step::kOps[i].name;
    EXPECT_TRUE(names.insert(step::kOps[i].name).second) << step::kOps[i].name;
    EXPECT_FALSE(step::kOps[i].computes && step::kOps[i].communicates) << step::kOps[i].name;
  }
  EXPECT_TRUE(step::mode_row(Mode::fsdp).joins_empty_microbatches);
  EXPECT_FALSE(step::mode_row(Mode::odc).joins_empty_microbatches);
  EXPECT_EQ(step::mode_row(Mode::odc).fetch_event, EventKind::get);
  EXPECT_EQ(step::mode_row(Mode::fsdp).push_event, EventKind::reduce_scatter);
}

TEST(StepProgram, FsdpJoinsAnEmptyMicrobatchOdcSkipsIt) {
  const int units = 4;
  const RankPlan plan = plan_with_empty();
  const step::Program fsdp = step::build_step(traits(Mode::fsdp, units), plan);
  const step::Program odc = step::build_step(traits(Mode::odc, units), plan);
  // fsdp: microbatch 1 fetches every unit twice, pushes zero gradients, computes nothing.
  EXPECT_EQ(count(fsdp, OpKind::fetch, 1), 2 * units);
  EXPECT_EQ(count(fsdp, OpKind::zero_grads, 1), units);
  EXPECT_EQ(count(fsdp, OpKind::push, 1), units);
  EXPECT_EQ(count(fsdp, OpKind::compute, 1), 0);
  // Microbatch 0: forward and backward of every unit, one recompute (unit 1).
  EXPECT_EQ(count(fsdp, OpKind::compute, 0), 2 * units + 1);
  // odc: nothing of microbatch 1; flush and a barrier before the optimizer, one after.
  EXPECT_EQ(count(odc, OpKind::begin_microbatch, 1), 0);
  EXPECT_EQ(count(odc, OpKind::fetch), 2 * units);
  EXPECT_EQ(count(odc, OpKind::flush), 1);
  EXPECT_EQ(count(odc, OpKind::gradient_barrier), 1);
  EXPECT_EQ(count(odc, OpKind::publish_barrier), 1);
  EXPECT_EQ(count(fsdp, OpKind::gradient_barrier) + count(fsdp, OpKind::publish_barrier), 0);
  // Every push lands before the next one starts and before the step's end.
  for (const step::Program* p : {&fsdp, &odc}) {
    int in_flight = 0;
    for (const step::Op& op : *p) {
      if (op.kind == OpKind::push) {
        EXPECT_EQ(in_flight++, 0);
      } else if (op.kind == OpKind::land) {
        EXPECT_EQ(in_flight--, 1);
      } else if (op.kind == OpKind::loss_allreduce) {
        EXPECT_EQ(in_flight, 0);
      }
    }
    EXPECT_EQ(p->back().kind, p == &odc ? OpKind::publish_barrier : OpKind::publish);
  }
}

TEST(StepProgram, ReplicaSumsPerUnitStartAsTheLastMicrobatchLands) {
  const int units = 3;
  const RankPlan plan = plan_with_empty();
  const step::Program unit =
      step::build_step(traits(Mode::fsdp, units, 2, step::ReplicaPolicy::unit), plan);
  std::vector<int> started;
  for (size_t i = 0; i < unit.size(); ++i)
    if (unit[i].kind == OpKind::replica_start) {
      ASSERT_GT(i, 0u);
      EXPECT_EQ(unit[i - 1].kind, OpKind::land);  // right after its landing
      EXPECT_EQ(unit[i - 1].unit, unit[i].unit);
      EXPECT_EQ(unit[i].microbatch, 1);  // the plan's last microbatch (empty, joined)
      started.push_back(unit[i].unit);
    }
  EXPECT_EQ(started, (std::vector<int>{2, 1, 0}));
  EXPECT_EQ(count(unit, OpKind::replica_reduce), 1);
  // Per step, odc (gradients final only after its barrier) and one replica: no starts.
  EXPECT_EQ(count(step::build_step(traits(Mode::fsdp, units, 2), plan), OpKind::replica_start), 0);
  EXPECT_EQ(count(step::build_step(traits(Mode::odc, units, 2, step::ReplicaPolicy::unit), plan),
                  OpKind::replica_start),
            0);
  const step::Program one =
      step::build_step(traits(Mode::fsdp, units, 1, step::ReplicaPolicy::unit), plan);
  EXPECT_EQ(count(one, OpKind::replica_start) + count(one, OpKind::replica_reduce), 0);
}

TEST(StepProgram, OptimizerSubPhasesAreNamed) {
  EXPECT_EQ(step::tail_op_recording(EventKind::optimizer, 0), OpKind::grad_norm);
  EXPECT_EQ(step::tail_op_recording(EventKind::optimizer, 1), OpKind::adamw);
  EXPECT_EQ(step::tail_op_recording(EventKind::optimizer, 2), OpKind::begin_microbatch);
  EXPECT_EQ(step::tail_op_recording(EventKind::allreduce, 0), OpKind::loss_allreduce);
  EXPECT_EQ(step::tail_op_recording(EventKind::allreduce, 1), OpKind::norm_allreduce);
}

// The compute seconds of each (microbatch, unit, pass) of rank `r`'s program.
std::map<std::tuple<int, int, int>, double> compute_times(const step::Program& p,
                                                          const StepPlan& plan, int r,
                                                          const UnitTimeFn& t) {
  std::map<std::tuple<int, int, int>, double> out;
  for (const step::Op& op : p) {
    if (op.kind != OpKind::compute) continue;
    const Microbatch& mb =
        plan.ranks[static_cast<size_t>(r)].microbatches[static_cast<size_t>(op.microbatch)];
    double sq = 0;
    for (int i : mb.sequences) {
      const auto l = static_cast<double>(plan.lengths[static_cast<size_t>(i)]);
      sq += l * l;
    }
    out[{op.microbatch, op.unit, static_cast<int>(op.pass)}] =
        t(op.unit, static_cast<int>(op.pass), mb.tokens, sq);
  }
  return out;
}

// The bound `minipt plan` prints, evaluated from the step programs of its two plans:
// odc's slowest rank's compute; fsdp's slowest shard group's sum, over (microbatch,
// unit, pass), of its slowest rank's.
TEST(StepProgram, ClosedFormBoundEqualsTheProgramsCompute) {
  for (const std::string recompute : {"true", "false", "2"})
    for (const auto& [world, shard] :
         std::vector<std::pair<int, int>>{{1, 0}, {4, 0}, {8, 4}, {16, 2}}) {
      SCOPED_TRACE("world " + std::to_string(world) + " shard " + std::to_string(shard) +
                   " recompute " + recompute);
      const Config cfg = load_config(
          {},
          {"workload.distribution=lognormal", "workload.mean=900", "workload.min=16",
           "workload.max=4096", "workload.minibatch_size=" + std::to_string(6 * world),
           "balance.token_budget=4096", "model.layers=3", "model.hidden=64", "model.heads=4",
           "model.kv_heads=2", "model.ffn=128", "model.vocab=97", "model.recompute=" + recompute,
           "parallel.shard=" + std::to_string(shard), "run.steps=2"});
      const RunPlan run(cfg, world);
      const UnitTimeFn& t = run.unit_time();
      std::vector<bool> rec;
      for (int u = 0; u < cfg.model.num_units(); ++u)
        rec.push_back(cfg.compute.recompute.applies(cfg.model, u));
      for (int s = 0; s < cfg.run.steps; ++s) {
        RunPlan::Step step = run.step(s);
        const BoundPlans& plans = step.bound_plans();
        const PlanBound bound = step.bound();
        Config fsdp_cfg = cfg, odc_cfg = cfg;
        fsdp_cfg.run.mode = Mode::fsdp;
        odc_cfg.run.mode = Mode::odc;
        const step::StepTraits ft = step::step_traits(fsdp_cfg, world, rec);
        const step::StepTraits ot = step::step_traits(odc_cfg, world, rec);
        double odc = 0, fsdp = 0;
        for (int r = 0; r < world; ++r) {
          double mine = 0;
          for (const auto& [key, sec] :
               compute_times(step::build_step(ot, plans.mini.ranks[static_cast<size_t>(r)]),
                             plans.mini, r, t))
            mine += sec;
          odc = std::max(odc, mine);
        }
        const int group = shard_group_size(cfg, world);
        for (int first = 0; first < world; first += group) {
          std::map<std::tuple<int, int, int>, double> slowest;
          for (int r = first; r < first + group; ++r)
            for (const auto& [key, sec] :
                 compute_times(step::build_step(ft, plans.micro.ranks[static_cast<size_t>(r)]),
                               plans.micro, r, t))
              slowest[key] = std::max(slowest[key], sec);
          double sum = 0;
          for (const auto& [key, sec] : slowest) sum += sec;
          fsdp = std::max(fsdp, sum);
        }
        EXPECT_GT(odc, 0);
        EXPECT_NEAR(bound.odc_s, odc, 1e-12 * odc) << "step " << s;
        EXPECT_NEAR(bound.fsdp_s, fsdp, 1e-12 * fsdp) << "step " << s;
      }
    }
}

}  // namespace
}  // namespace minipt
