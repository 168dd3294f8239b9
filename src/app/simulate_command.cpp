// `minipt simulate`: the scale model's front end (README.md, "Scale model"). Single-process;
// run on rank 0.
#include <cstdio>
#include <vector>

#include "app/commands.hpp"
#include "app/results.hpp"
#include "config/config.hpp"
#include "core/error.hpp"
#include "core/input_bundle.hpp"
#include "core/output_paths.hpp"
#include "sim/calibrate.hpp"
#include "sim/engine.hpp"
#include "sim/simulate.hpp"
#include "step/run_plan.hpp"
#include "trace/atomic_file.hpp"
#include "trace/provenance.hpp"
#include "trace/run_file.hpp"
#include "workload/workload.hpp"

namespace minipt {

int simulate_command(const CommandLine& cl) {
  InputBundle read;
  const Config cfg = load_command_config(cl, InputReader::recording_into(read));
  const int ranks = cl.ranks;
  const std::string key = cl.cost.empty() ? "compute.cost_model" : "--cost";
  const std::string path = cl.cost.empty() ? cfg.compute.cost_model : cl.cost;
  std::vector<NamedPath> outputs = {{"run.out", cfg.run.out}};
  if (cfg.run.json) outputs.push_back({"run.json", json_path(cfg.run.out)});
  check_output_paths(outputs, read_inputs(cl, cfg, read));
  const int per_node = cfg.sim.gpus_per_node;
  if (ranks > per_node && ranks % per_node != 0)
    throw ConfigError(
        "sim.gpus_per_node",
        std::to_string(per_node) + " GPUs per node cannot hold " + std::to_string(ranks) +
            " ranks on whole nodes (--ranks must be a multiple of it, or at most it)");
  check_json_output(cfg);
  const RunPlan run(cfg, ranks);  // the lengths, plans, cost model (its cost file's)
  const CostModel& cost = run.cost();
  check_writable(cfg.run.out, "run.out");

  SimStats stats;
  RunFile rf;
  try {
    rf = simulate(run, &stats);
  } catch (const sim::TimeRangeError& e) {
    // The cost file's terms, or (FLOPs at peak) the lengths and the peak.
    throw ConfigError(path.empty() ? "workload.max, compute.peak_tflops" : key,
                      (path.empty() ? "" : path + ": ") + e.what());
  }
  const std::string device =
      cost.provenance.count("device") ? cost.provenance.at("device") : "FLOPs at peak";
  const int nodes = (ranks + std::min(per_node, ranks) - 1) / std::min(per_node, ranks);
  RunFacts facts(cfg);
  facts.world = ranks;
  facts.simulated = true;
  facts.provenance = provenance(MPI_COMM_SELF, "simulator", cl.argv);
  facts.backend = "simulated";
  facts.transport = "simulated";
  facts.peak_tflops = cfg.compute.peak_tflops;
  facts.sim_cost_model = path.empty() ? "flops" : path;
  facts.sim_nodes = nodes;
  facts.sim_traced_ranks = stats.traced_ranks;
  facts.sim_wall_s = stats.wall_s;
  // One entry per rank, as in a measured file: the simulated node and device.
  for (int r = 0; r < ranks; ++r) {
    facts.hosts.push_back("sim-node" + std::to_string(r / std::min(per_node, ranks)));
    facts.devices.push_back("simulated " + device);
  }
  if (!cl.quiet)
    std::printf("simulated %d ranks (%d nodes of %d) in %.2f s; events stored for %d ranks\n",
                ranks, nodes, std::min(per_node, ranks), stats.wall_s, stats.traced_ranks);
  write_results(facts, rf, false);
  return 0;
}

}  // namespace minipt
