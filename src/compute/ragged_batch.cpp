#include "compute/ragged_batch.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace minipt {

namespace {

int64_t pow2_at_least(int64_t x, int64_t floor) {
  int64_t p = floor;
  while (p < x) p *= 2;
  return p;
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace

RaggedBatch make_ragged_batch(const std::vector<int32_t>& cu_seqlens, int64_t ld_qkv, int64_t ld_o,
                              int heads, bool exact) {
  if (cu_seqlens.size() < 2 || cu_seqlens.front() != 0)
    throw std::invalid_argument("ragged batch: cu_seqlens must start at 0 and hold a sequence");
  const int64_t n = static_cast<int64_t>(cu_seqlens.size()) - 1;
  int64_t longest = 0;
  for (size_t i = 1; i < cu_seqlens.size(); ++i) {
    if (cu_seqlens[i] < cu_seqlens[i - 1])
      throw std::invalid_argument("ragged batch: cu_seqlens must not decrease");
    longest = std::max<int64_t>(longest, cu_seqlens[i] - cu_seqlens[i - 1]);
  }
  const int64_t tokens = cu_seqlens.back();
  const int64_t widest = std::max<int64_t>({ld_qkv, ld_o, static_cast<int64_t>(heads)});
  if (tokens * widest >= (int64_t{1} << 31))
    throw std::invalid_argument("ragged batch: " + std::to_string(tokens) + " tokens of " +
                                std::to_string(widest) +
                                " elements overflow the 32-bit ragged offsets");
  RaggedBatch r;
  r.batch = exact ? n : pow2_at_least(n, 1);
  r.seq = exact ? round_up(std::max<int64_t>(longest, 1), 64) : pow2_at_least(longest, 64);
  r.total = exact ? round_up(std::max<int64_t>(tokens, 1), 64) : pow2_at_least(tokens, 64);
  const auto b = static_cast<size_t>(r.batch);
  r.seq_len.assign(b, 0);
  r.off_qkv.resize(b + 1);
  r.off_o.resize(b + 1);
  r.off_stats.resize(b + 1);
  for (size_t i = 0; i <= b; ++i) {
    const int64_t start = i < cu_seqlens.size() ? cu_seqlens[i] : tokens;
    if (i < b && i + 1 < cu_seqlens.size()) r.seq_len[i] = cu_seqlens[i + 1] - cu_seqlens[i];
    r.off_qkv[i] = static_cast<int32_t>(start * ld_qkv);
    r.off_o[i] = static_cast<int32_t>(start * ld_o);
    r.off_stats[i] = static_cast<int32_t>(start * heads);
  }
  return r;
}

}  // namespace minipt
