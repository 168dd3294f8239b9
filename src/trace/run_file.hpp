// The figures of merit of a run and the HDF5 timeline file that stores everything
// (layout documented in README.md, "HDF5 timeline schema").
#pragma once

#include <map>
#include <string>
#include <vector>

#include "trace/events.hpp"
#include "trace/recorder.hpp"

namespace minipt {

struct RunSummary {
  int steps_measured = 0;
  int64_t tokens = 0;  // measured steps, whole job
  double seconds = 0;  // Σ global step times of measured steps
  double tokens_per_s = 0;
  double tokens_per_s_per_rank = 0;
  double step_ms = 0;
  double utilization = 0;  // mean over ranks of compute-busy / wall
  double idle_fraction = 0;
  // Shares of the traced ranks' wall time (trace/waits.hpp; 0 without events): compute-lane
  // waits for a transfer, and waiting for other ranks (fsdp's part of a collective's wait
  // before the last rank posted it, the small all-reduces, odc's barriers).
  double exposed_communication_fraction = 0;
  double waiting_fraction = 0;
  // Ranks with events, over which the two shares above (and the FRACTION lines) are taken:
  // every rank of a traced run, sim.trace_ranks of a larger simulation, 0 without events.
  int traced_ranks = 0;
  double mfu = 0;
  std::vector<double> utilization_per_rank, idle_per_rank;
  std::vector<double> step_seconds;           // every step, global
  std::vector<int64_t> peak_memory_per_rank;  // bytes (ComputeBackend::peak_memory_bytes)
  int64_t peak_memory_bytes = 0;              // max over ranks
};

// `step_flops[s]` is the model FLOPs (ModelShape::train_flops) of step s, whole job.
RunSummary summarize(const std::vector<StepRecord>& steps, int world, int warmup,
                     const std::vector<double>& step_flops, double peak_tflops);

struct RunFile {
  std::map<std::string, std::string> string_attrs;
  std::map<std::string, int64_t> int_attrs;
  std::map<std::string, double> float_attrs;
  std::vector<Event> events;
  std::vector<SequenceRecord> sequences;
  std::vector<StepRecord> steps;
  RunSummary summary;
};

// Writes `path` atomically (trace/atomic_file.hpp: unique temp, checked HDF5 close,
// fsync, rename). Throws std::runtime_error naming `path` and the error on failure;
// no temp remains and an existing `path` is untouched.
void write_run_file(const std::string& path, RunFile& file);

// Creates and removes a unique temp beside `path` to check the output location is writable before
// any work is done. Throws ConfigError(key, ...) if not.
void check_writable(const std::string& path, const std::string& key);

}  // namespace minipt
