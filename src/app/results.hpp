// The results of a finished `run` or simulated `simulate`, written from one field table
// (results.cpp, kFields): each row names a figure, says how it is computed and formatted,
// which command has it, and where it goes:
//   root:        the timeline's root attribute, and the same key at the top of NAME.json
//   summary:     NAME.json's "summary" object (the timeline's /summary group holds the same
//                RunSummary figures: trace/run_file.cpp)
//   performance: the console's grep-able PERFORMANCE line, key=value in table order
// Besides the table: NAME.json's "h5", "provenance" and "verification" (run: the losses
// and parameter norm it verified; simulate: "not applicable (simulated)"), and the
// console report around the PERFORMANCE line (per-rank table, FRACTION lines, the
// VERIFICATION PASSED line of a verified run). README.md, "Console output and the JSON
// summary", describes both; schema/run-summary.schema.json checks the JSON.
// Untimed code: nothing here runs inside a step.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "trace/run_file.hpp"

namespace minipt {

struct Config;

// What `run` verified (its losses, one per step, and the final parameter norm).
struct Verification {
  std::vector<double> losses;
  double parameter_norm = 0;
};

// What a command knows about its run beyond the RunFile: the table's inputs.
struct RunFacts {
  explicit RunFacts(const Config& config) : cfg(config) {}
  const Config& cfg;
  int world = 1;
  bool simulated = false;     // simulate: the "simulate" rows, else the "run" rows
  nlohmann::json provenance;  // trace/provenance.hpp (simulate: of the simulating process)
  std::string backend, transport;
  std::vector<std::string> hosts, devices;  // one per rank
  int64_t clock_error_bound_ns = 0;
  double peak_tflops = 0;  // the per-rank peak MFU is taken against
  // `run` only.
  std::string onesided_same_node, onesided_other_node, collectives_same_node,
      collectives_other_node, replica_reduce, replica_transport, kernel_tuning, peak_tflops_source;
  std::optional<Verification> verification;
  // `simulate` only.
  std::string sim_cost_model;
  int sim_nodes = 0, sim_traced_ranks = 0;
  double sim_wall_s = 0;
};

// Rank 0, after the last collective: sets rf's root attributes from the table, summarizes
// the waits, writes the timeline cfg.run.out, then (run.json) NAME.json beside it, each to
// a temp file renamed when complete, and prints the console report.
// backend_shown: the run's banner already named the backend (then the report does not).
void write_results(const RunFacts& facts, RunFile& rf, bool backend_shown);

// NAME.json without "verification": every root attribute of rf, the table's "summary"
// rows, "h5" and "provenance". NaN and ±inf become null; strings go in as bytes (json_text
// replaces invalid UTF-8).
nlohmann::json summary_json(const RunFile& rf, const std::string& h5_path,
                            const nlohmann::json& provenance);
// Its text: json_text with indent 2, and a final newline.
std::string summary_json_text(const RunFile& rf, const std::string& h5_path,
                              const nlohmann::json& provenance);

// The PERFORMANCE line (no newline) of a run whose root attributes are set.
std::string performance_line(const RunFile& rf);

}  // namespace minipt
