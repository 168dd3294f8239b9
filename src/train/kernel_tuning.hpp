// compute.tuning for a run (compute/tuning.hpp): one set of kernel choices for the whole
// job, decided before step 0 and used by every rank.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "compute/backend.hpp"
#include "config/config.hpp"
#include "model/shape.hpp"
#include "workload/workload.hpp"

namespace minipt {

struct KernelTuning {
  // The backend picks kernels (it has a tuning identity); false: nothing to tune.
  bool active = false;
  TuningSetting::Kind kind = TuningSetting::Kind::off;  // compute.tuning, where active
  std::string setting = "none";  // auto | off | the file's path | none (nothing to tune)
  std::string hash;              // of the choices every rank uses ("" for none)
  int64_t choices = 0;           // kernels with a recorded choice
  int64_t timed = 0;             // of them, timed in this job (auto)
  std::string cache;             // auto: the cache file read and extended
  // What provenance and the console record, e.g.
  // "auto 9f3c…e1 (41 choices, 12 timed in this run; cache /root/.cache/minipt/…)".
  std::string text() const;
};

// Collective. Off: every rank takes each library's heuristic choice. A file: every rank
// takes its choices (ConfigError("compute.tuning") when it was made for another device or
// library version). Auto: rank 0 starts from the cache file, runs the forward and
// backward of the largest microbatch of each token bucket (power of two) that any rank
// runs in any step with untuned kernels timed at their first call (scratch parameters and
// gradients; nothing of the run's state changes), extends the cache, and broadcasts its
// choices; every rank then uses them and times nothing more.
// `plan_of(s)` is step s's plan (every rank's), for s in [0, steps): made again here, on
// rank 0 and for auto only, so that no step's plan is kept.
KernelTuning tune_kernels(const Config& cfg, ComputeBackend& backend, MPI_Comm comm,
                          const ShardLayout& layout, int steps,
                          const std::function<StepPlan(int)>& plan_of);

// The microbatches the auto pre-pass runs: for each token bucket (the microbatch's tokens
// rounded up to a power of two), the (step, rank, microbatch) with the most tokens, the
// first such in step, rank, microbatch order.
struct MicrobatchRef {
  int step = 0, rank = 0, microbatch = 0;
  int64_t tokens = 0;
};
std::vector<MicrobatchRef> tuning_microbatches(int steps,
                                               const std::function<StepPlan(int)>& plan_of);
std::vector<MicrobatchRef> tuning_microbatches(const std::vector<StepPlan>& plans);

}  // namespace minipt
