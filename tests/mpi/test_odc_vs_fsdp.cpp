// On the LongAlign-like workload at 8 sequences per rank under emulated compute,
// odc+mini must show a lower idle share and more tokens/s than fsdp+micro, and the
// measured speedup must be within 10% of the bound `minipt plan` predicts.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <string>

#include "config/config.hpp"
#include "train/trainer.hpp"

namespace minipt {
namespace {

Config longalign(int world, const std::string& mode, const std::string& scheme) {
  const std::string inputs = std::string(MINIPT_SOURCE_DIR) + "/inputs/";
  // At the H100 peak a step takes about a second, long against the per-collective
  // overhead of an oversubscribed CPU (at 4× the peak that overhead inflates fsdp).
  // The clamped LongAlign-like lengths: at 2 ranks their bound (1.15) leaves a margin
  // over timing noise that the truncated preset's (1.06) does not.
  return load_config(
      {inputs + "experiments/demo.toml", inputs + "workloads/longalign-clamped.toml"},
      {"run.mode=" + mode, "balance.scheme=" + scheme, "run.steps=5", "run.warmup_steps=1",
       "workload.minibatch_size=" + std::to_string(8 * world), "compute.peak_tflops=989",
       "model.scale=0.0002", "run.out=unused.h5"});
}

RunSummary run(const Config& cfg) {
  Trainer t(cfg, MPI_COMM_WORLD);
  t.run(false);
  return t.collect().summary;
}

TEST(OdcVsFsdp, MiniBeatsMicroWithinTenPercentOfBound) {
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world < 2) GTEST_SKIP() << "needs at least 2 ranks";
  const RunSummary fsdp = run(longalign(world, "fsdp", "micro"));
  const RunSummary odc = run(longalign(world, "odc", "mini"));
  if (rank != 0) return;
  const PlanBound b = RunPlan(longalign(world, "odc", "mini"), world).bound();
  const double bound = b.fsdp_s / b.odc_s;
  const double speedup = odc.tokens_per_s / fsdp.tokens_per_s;
  std::printf(
      "[ odc/fsdp ] ranks=%d fsdp %.0f tok/s idle %.3f | odc %.0f tok/s idle %.3f | speedup %.3f "
      "bound %.3f\n",
      world, fsdp.tokens_per_s, fsdp.idle_fraction, odc.tokens_per_s, odc.idle_fraction, speedup,
      bound);
  EXPECT_LT(odc.idle_fraction, fsdp.idle_fraction);
  EXPECT_GT(odc.tokens_per_s, fsdp.tokens_per_s);
  EXPECT_GT(bound, 1.0);
  EXPECT_NEAR(speedup / bound, 1.0, 0.10);
}

}  // namespace
}  // namespace minipt
