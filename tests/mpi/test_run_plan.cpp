// One run plan for every command: the trainer's sequences (its /workload rows), the
// simulator's and `minipt plan`'s (RunPlan::step) of each step are the same lengths, placed
// on the same ranks and microbatches, and the summary counts the plan's measured steps.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "sim/simulate.hpp"
#include "step/run_plan.hpp"
#include "tiny_job.hpp"
#include "train/trainer.hpp"

namespace minipt {
namespace {

Config config(const std::string& mode, int warmup) {
  std::vector<std::string> sets = {
      "run.mode=" + mode, "balance.scheme=" + std::string(mode == "odc" ? "mini" : "micro"),
      "run.steps=3", "run.warmup_steps=" + std::to_string(warmup)};
  const std::vector<std::string> tiny = test::tiny_job_overrides();
  sets.insert(sets.end(), tiny.begin(), tiny.end());
  return load_config({}, sets);
}

// Every sequence of every step once, with the plan's length, rank and microbatch.
void expect_the_plans_sequences(const RunPlan& rp, const std::vector<SequenceRecord>& seqs,
                                const std::string& who) {
  SCOPED_TRACE(who);
  for (int s = 0; s < rp.steps(); ++s) {
    RunPlan::Step step = rp.step(s);
    const StepPlan& plan = step.plan();
    std::vector<int> seen(step.lengths().size(), 0);
    for (const SequenceRecord& q : seqs) {
      if (q.step != s) continue;
      ASSERT_GE(q.sequence, 0);
      ASSERT_LT(static_cast<size_t>(q.sequence), step.lengths().size());
      EXPECT_EQ(q.length, step.lengths()[static_cast<size_t>(q.sequence)]);
      seen[static_cast<size_t>(q.sequence)] += 1;
      const auto& mbs = plan.ranks[static_cast<size_t>(q.rank)].microbatches;
      ASSERT_LT(static_cast<size_t>(q.microbatch), mbs.size());
      const auto& in = mbs[static_cast<size_t>(q.microbatch)].sequences;
      EXPECT_NE(std::find(in.begin(), in.end(), q.sequence), in.end())
          << "step " << s << " sequence " << q.sequence;
    }
    for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << "step " << s << " seq " << i;
  }
}

TEST(RunPlan, TrainerSimulatorAndPlanShareEachStepsLengths) {
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  for (const std::string mode : {"fsdp", "odc"})
    for (const int warmup : {0, 1}) {
      SCOPED_TRACE(mode + " warmup " + std::to_string(warmup));
      const RunPlan rp(config(mode, warmup), world);
      Trainer t(rp, MPI_COMM_WORLD);
      t.run(false);
      const RunFile trained = t.collect();
      if (rank != 0) continue;
      expect_the_plans_sequences(rp, trained.sequences, "the trainer");
      EXPECT_EQ(trained.summary.steps_measured, rp.measured_steps());
      const RunFile simulated = simulate(rp);
      expect_the_plans_sequences(rp, simulated.sequences, "the simulator");
      EXPECT_EQ(simulated.summary.steps_measured, rp.measured_steps());
      EXPECT_EQ(simulated.summary.tokens, trained.summary.tokens);
    }
}

TEST(RunPlan, ATrainerRefusesAPlanForAnotherWorld) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  const RunPlan rp(config("fsdp", 1), world + 1);
  EXPECT_THROW({ Trainer t(rp, MPI_COMM_WORLD); }, std::invalid_argument);
}

}  // namespace
}  // namespace minipt
