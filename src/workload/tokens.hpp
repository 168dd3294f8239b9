// Learnable synthetic token streams: a seeded first-order Markov chain over the
// vocabulary in which every token has a few likely successors, so a model's loss
// can fall well below log(vocab). Lengths come from the workload distribution.
#pragma once

#include <cstdint>
#include <vector>

namespace minipt {

// Token ids of sequence `index` of step `step`, identical on every rank count.
std::vector<int32_t> sequence_tokens(uint64_t seed, int step, int index, int64_t length, int vocab);

// Successor `which` (0..3) of `token`: the chain's likely next tokens (0.225 each).
int32_t token_successor(int32_t token, int which, int vocab);

// Conditional entropy (nats per token) of the chain when a token's four successors are
// distinct: the loss a model that has learnt the chain approaches. Hash collisions
// among successors (likely only for tiny vocabularies) make the true value lower.
double token_stream_entropy(int vocab);

}  // namespace minipt
