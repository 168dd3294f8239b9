// Where the compute lane's time went, with fsdp's waits split into waiting for other
// ranks and communication (the rule is in README.md, "Reading the timeline", and the same
// as analysis/minipt_analysis/waits.py).
#pragma once

#include <cstdint>
#include <vector>

#include "trace/events.hpp"
#include "trace/run_file.hpp"

namespace minipt {

// Per event, in the order given: the ns of a compute-lane `wait` of an fsdp run spent
// before the last rank of its shard group (`group_size` consecutive ranks) posted the
// gather or reduce-scatter it waits for; 0 for every other event.
std::vector<int64_t> waiting_for_ranks_ns(const std::vector<Event>& events, int group_size);

// Compute-lane time of the steps >= first_step, in seconds summed over ranks.
struct TimeShares {
  double compute = 0;    // forward, backward, recompute, accumulate_grad
  double optimizer = 0;  // optimizer
  double exposed = 0;    // waits for a transfer (less fsdp's waiting part), replica_reduce
  double waiting = 0;    // allreduce and fsdp's waiting for the last rank to post
  double barrier = 0;    // odc's barriers
};
TimeShares time_shares(const std::vector<Event>& events, int first_step, bool fsdp, int group_size);

// The number of distinct ranks in `events` (the traced ranks: all of a traced run, the
// sampled ones of a simulation with more ranks than sim.trace_ranks).
int ranks_with_events(const std::vector<Event>& events);

// rf.summary's exposed_communication_fraction and waiting_fraction (waiting: the
// `waiting` and `barrier` shares above) over the measured steps (steps >= warmup, or all
// when none is beyond it) and the traced ranks: time summed over the ranks with events /
// (Σ global step times × their number, rf.summary.traced_ranks). `world` bounds the ranks.
void summarize_waits(RunFile& rf, int world, int warmup, bool fsdp, int group_size);

}  // namespace minipt
