// `minipt calibrate`: a cost model fitted to measured timelines (and run/bench/comm JSON).
//
// Compute: every forward, backward and recompute event of the measured steps (warm-up
// left out) is one sample of its unit kind and pass, t = a + b·tokens + c·ΣL² fitted by
// least squares with non-negative terms (ΣL² from /workload). Optimizer: the first
// optimizer event of a step is the gradient-norm pass, the second AdamW, each per
// element of the rank's shard; accumulate_grad per element of the unit's shard. The
// untimed work per microbatch is the median, over rank-steps, of the step's compute-lane
// time covered by no event, per microbatch.
// Communication: per operation and link class (self for one rank, intra when every rank
// ran on one host, inter otherwise), latency + bytes/bandwidth fitted to the 10th
// percentile duration of each distinct size (a low quantile: an fsdp gather's event also
// holds the wait for the slowest rank); barriers and small all-reduces from the fastest
// rank of each instance. Rows of run/bench/comm JSON (--comm) take precedence over
// timeline fits for the same operation and class.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/cost_file.hpp"

namespace minipt {

struct Calibration {
  CostModel model;
  std::map<std::string, FitReport> reports;  // "block.forward", ...
  std::string log;                           // what was fitted from what, for the console
};

// Variation (issue 29): the blocks of one microbatch run the same unit on the same tokens;
// the spread of each block's time around its microbatch's median, pooled over ranks and
// steps (1.4826 × median absolute deviation: robust to positional stalls) is each block
// pass's cv, from the timelines or, where `variation` names any, from those only (e.g.
// multi-GPU runs, while the fits come from a 1-GPU run). odc's per-step work: the median
// gap between its last optimizer event and the publishing barrier (left out of the
// per-microbatch untimed work).
// Throws ConfigError naming the file on unreadable input, files of different model
// shapes, or no compute events to fit.
Calibration calibrate(const std::vector<std::string>& timelines,
                      const std::vector<std::string>& comm_json,
                      const std::vector<std::string>& variation = {});

// Least squares t ≈ X·β over rows of X (columns as given), with every β ≥ 0 (terms that
// come out negative are dropped and the rest refitted). Exposed for tests.
std::vector<double> fit_nonnegative(const std::vector<std::vector<double>>& x,
                                    const std::vector<double>& y);

}  // namespace minipt
