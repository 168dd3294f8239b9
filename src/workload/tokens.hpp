// Learnable synthetic token streams: a seeded first-order Markov chain over the
// vocabulary in which every token has a few likely successors, so a model's loss
// can fall well below log(vocab). Lengths come from the workload distribution.
#pragma once

#include <cstdint>
#include <vector>

namespace minipt {

// Token ids of sequence `index` of step `step`, identical on every rank count.
std::vector<int32_t> sequence_tokens(uint64_t seed, int step, int index, int64_t length,
                                     int vocab);

}  // namespace minipt
