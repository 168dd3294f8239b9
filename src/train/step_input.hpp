// What a step feeds the model on one rank, built before the step's clock starts (data
// loading is not timed): each microbatch's packed tokens, targets and loss weights.
#pragma once

#include <cstdint>
#include <vector>

#include "compute/backend.hpp"
#include "config/config.hpp"
#include "trace/recorder.hpp"
#include "workload/workload.hpp"

namespace minipt {

struct StepInput {
  std::vector<MicrobatchData> data;         // one per microbatch of the rank's plan (may be empty)
  std::vector<std::vector<int>> seq_ids;    // the step's sequence indices of each microbatch
  int64_t tokens = 0;                       // this rank's
  int nonempty = 0;                         // this rank's microbatches that hold a sequence
  double step_tokens = 0, step_sum_sq = 0;  // every rank's: Σ L and Σ L²
};

// Offsets of the microbatch's sequences in its packed token rows.
std::vector<int32_t> cu_seqlens_of(const StepPlan& plan, const Microbatch& mb);

// Rank `rank`'s input of step `step` under `plan`; appends its sequence records to
// `sequences`. Token ids come from the learnable Markov streams; each token's loss
// weight 1/(L−1)/N makes a step's loss the mean over its N sequences of each sequence's
// mean token loss, whatever the grouping.
StepInput load_step_input(const Config& cfg, int step, const StepPlan& plan, int rank,
                          std::vector<SequenceRecord>& sequences);

}  // namespace minipt
