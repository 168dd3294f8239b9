// `minipt calibrate`: fits the scale model's cost file to measured timelines (README.md,
// "Scale model"). Single-process; run on rank 0.
#include <cstdio>
#include <vector>

#include "app/commands.hpp"
#include "config/config.hpp"
#include "config/cost_file.hpp"
#include "core/error.hpp"
#include "core/input_bundle.hpp"
#include "core/output_paths.hpp"
#include "sim/calibrate.hpp"
#include "sim/engine.hpp"
#include "sim/simulate.hpp"
#include "trace/atomic_file.hpp"
#include "trace/provenance.hpp"
#include "trace/run_file.hpp"
#include "trace/waits.hpp"
#include "workload/workload.hpp"

namespace minipt {

int calibrate_command(const CommandLine& cl) {
  // The output is checked before the fit: not an input, not a directory, writable.
  std::vector<NamedPath> inputs;
  for (const auto& p : cl.inputs) inputs.push_back({"calibrate (a timeline)", p});
  for (const auto& p : cl.comm) inputs.push_back({"--comm", p});
  for (const auto& p : cl.variation) inputs.push_back({"--variation", p});
  check_output_paths({{"--out", cl.out}}, inputs);
  check_writable(cl.out, "--out");
  const Calibration c = calibrate(cl.inputs, cl.comm, cl.variation);
  const std::string text = format_cost_model(c.model, c.reports);
  // What simulate and run will accept (CostBounds): a fit beyond them is an error here.
  try {
    parse_cost_model(text, cl.out, "calibrate");
  } catch (const ConfigError& e) {
    throw ConfigError("calibrate", std::string("the fitted cost model is out of bounds: ") +
                                       e.what() + " (timelines too short or damaged?)");
  }
  write_file_atomically(cl.out, text);
  std::printf("calibrated from %zu timeline(s) and %zu comm file(s):\n%s", cl.inputs.size(),
              cl.comm.size(), c.log.c_str());
  std::printf("cost model: %s\n", cl.out.c_str());
  return 0;
}

}  // namespace minipt
