// The shape a fused-attention library (cuDNN) is given for one packed microbatch of
// causal sequences: a batch of `batch` sequences of at most `seq` tokens, `total` tokens
// in all, each sequence's length and the element offsets of its first row in the
// ragged Q/K/V (rows of ld_qkv elements), O (rows of ld_o) and softmax statistics
// (token-major, `heads` per token) buffers. Unused batch entries have length 0 and
// start at the end of the data.
//
// Rounded (exact = false): batch, seq and total are rounded up to powers of two (seq
// and total at least 64), so that microbatches of similar shape share one compiled
// graph. Exact: batch = the number of sequences, seq and total rounded up to 64.
#pragma once

#include <cstdint>
#include <vector>

namespace minipt {

struct RaggedBatch {
  int64_t batch = 0, seq = 0, total = 0;
  std::vector<int32_t> seq_len;                    // [batch]
  std::vector<int32_t> off_qkv, off_o, off_stats;  // [batch + 1] each
};

// Throws std::invalid_argument if cu_seqlens is not 0 = c0 ≤ c1 ≤ … with at least one
// sequence, or if an offset does not fit in 32 bits.
RaggedBatch make_ragged_batch(const std::vector<int32_t>& cu_seqlens, int64_t ld_qkv, int64_t ld_o,
                              int heads, bool exact);

}  // namespace minipt
