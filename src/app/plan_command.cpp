// `minipt plan`: each rank's microbatches per step and the imbalance bound.
#include <cmath>
#include <cstdio>

#include "app/commands.hpp"
#include "config/config.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "step/run_plan.hpp"
#include "trace/provenance.hpp"
#include "workload/workload.hpp"

namespace minipt {

int plan_command(const CommandLine& cl) {
  int world = cl.ranks;
  if (world == 0) MPI_Comm_size(MPI_COMM_WORLD, &world);
  const RunPlan run(load_command_config(cl), world);
  const Config& cfg = run.config();
  const int units = cfg.model.num_units();
  const UnitTimeFn& t = run.unit_time();
  auto microbatch_time = [&](const Microbatch& mb, const StepPlan& plan) {
    double sq = 0;
    for (int i : mb.sequences)
      sq += std::pow(static_cast<double>(plan.lengths[static_cast<size_t>(i)]), 2);
    double s = 0;
    for (int u = 0; u < units; ++u)
      for (int p = 0; p < 3; ++p) s += t(u, p, mb.tokens, sq);
    return s;
  };
  // --json: the bound alone, as one JSON object (for scripts); else the plan as text.
  const bool text = !cl.json;
  nlohmann::json steps = nlohmann::json::array();
  // What differs from the earlier planner is named (refined partitions, a tail other than
  // clamp); with balance.refine = "off" and workload.tail = "clamp" the line is as before.
  std::string extras;
  if (cfg.balance_refine != BalanceRefine::off)
    extras += cfg.balance_refine == BalanceRefine::on ? ", swap-refined plans"
                                                      : ", swap-refined odc plans";
  if (cfg.workload.tail != LengthTail::clamp) extras += ", tail " + to_string(cfg.workload.tail);
  if (text)
    std::printf(
        "plan: %s, %d ranks, %d steps, %d sequences per step, balance %s (cost %s%s), token "
        "budget %lld\n",
        cfg.workload_name.c_str(), world, cfg.run.steps, cfg.workload.minibatch_size,
        cfg.balance.scheme.c_str(), to_string(cfg.cost_kind).c_str(), extras.c_str(),
        static_cast<long long>(cfg.balance.token_budget));
  PlanBound bound;
  for (int s = 0; s < cfg.run.steps; ++s) {
    RunPlan::Step step = run.step(s);
    // The bound's two plans, and this run's own: one of them unless the scheme is neither.
    const PlanBound one = step.bound();
    if (step.measured()) {  // over the steps the summary measures, like `run`
      bound.fsdp_s += one.fsdp_s;
      bound.odc_s += one.odc_s;
    }
    const StepPlan& mine = step.plan();  // this run's own (the bound's where it is one)
    // Each rank's modelled time, per microbatch and in all, on several threads for large
    // steps (the same sums).
    std::vector<double> rank_ms(static_cast<size_t>(world), 0.0);
    std::vector<std::vector<double>> mb_ms(static_cast<size_t>(world));
    for_each_index(rank_ms.size(), step.lengths().size() >= 4096, [&](size_t r) {
      for (const auto& mb : mine.ranks[r].microbatches) {
        mb_ms[r].push_back(microbatch_time(mb, mine) * 1e3);
        rank_ms[r] += mb_ms[r].back();
      }
    });
    // --json: this run's own plan (run.mode + balance.scheme) as each rank's modelled
    // microbatch times, empty microbatches included (what a bubble estimate needs).
    steps.push_back({{"step", s},
                     {"measured", step.measured()},
                     {"fsdp_ms", one.fsdp_s * 1e3},
                     {"odc_ms", one.odc_s * 1e3},
                     {"ratio", one.fsdp_s / one.odc_s},
                     {"microbatch_ms", mb_ms}});
    if (!text) continue;
    std::printf("step %d (%s+%s):\n", s, to_string(cfg.run.mode).c_str(),
                cfg.balance.scheme.c_str());
    for (int r = 0; r < world; ++r) {
      const RankPlan& rp = mine.ranks[static_cast<size_t>(r)];
      const double ms = rank_ms[static_cast<size_t>(r)];
      std::string per;
      for (const auto& mb : rp.microbatches) {
        char b[48];
        std::snprintf(b, sizeof b, "%s%lld", per.empty() ? "" : " ",
                      static_cast<long long>(mb.tokens));
        per += b;
      }
      std::printf(
          "  rank %d: %zu microbatches, %lld tokens, modelled %.2f ms | tokens per microbatch: "
          "%s\n",
          r, rp.microbatches.size(), static_cast<long long>(rp.tokens()), ms, per.c_str());
    }
    std::printf(
        "  modelled step, communication free: fsdp+micro %.2f ms, odc+mini %.2f ms, ratio %.3f\n",
        one.fsdp_s * 1e3, one.odc_s * 1e3, one.fsdp_s / one.odc_s);
  }
  const int measured = run.measured_steps();
  if (text) {
    std::printf("BOUND ranks=%d steps=%d fsdp_ms=%.3f odc_ms=%.3f ratio=%.4f\n", world, measured,
                bound.fsdp_s * 1e3, bound.odc_s * 1e3, bound.fsdp_s / bound.odc_s);
    return 0;
  }
  const nlohmann::json j = {{"ranks", world},
                            {"steps", measured},
                            {"fsdp_ms", bound.fsdp_s * 1e3},
                            {"odc_ms", bound.odc_s * 1e3},
                            {"ratio", bound.fsdp_s / bound.odc_s},
                            {"per_step", steps}};
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}

}  // namespace minipt
