// The ragged-batch shapes and offsets handed to cuDNN's fused attention (pure host code).
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "compute/ragged_batch.hpp"

namespace minipt {
namespace {

TEST(RaggedBatch, RoundsToPowersOfTwoAndPadsWithEmptySequences) {
  // Three sequences (5, 1, 14 tokens), fused QKV rows of 16, output rows of 8, 2 heads.
  const RaggedBatch r = make_ragged_batch({0, 5, 6, 20}, 16, 8, 2, false);
  EXPECT_EQ(r.batch, 4);
  EXPECT_EQ(r.seq, 64);
  EXPECT_EQ(r.total, 64);
  EXPECT_EQ(r.seq_len, (std::vector<int32_t>{5, 1, 14, 0}));
  EXPECT_EQ(r.off_qkv, (std::vector<int32_t>{0, 80, 96, 320, 320}));
  EXPECT_EQ(r.off_o, (std::vector<int32_t>{0, 40, 48, 160, 160}));
  EXPECT_EQ(r.off_stats, (std::vector<int32_t>{0, 10, 12, 40, 40}));
}

TEST(RaggedBatch, SimilarMicrobatchesShareAShape) {
  const RaggedBatch a = make_ragged_batch({0, 30000, 50000, 65000}, 2048, 1536, 12, false);
  const RaggedBatch b = make_ragged_batch({0, 20000, 40000, 60000}, 2048, 1536, 12, false);
  EXPECT_EQ(a.batch, 4);
  EXPECT_EQ(a.seq, 32768);
  EXPECT_EQ(a.total, 65536);
  EXPECT_EQ(b.batch, a.batch);
  EXPECT_EQ(b.seq, a.seq);
  EXPECT_EQ(b.total, a.total);
}

TEST(RaggedBatch, ExactShapes) {
  const RaggedBatch r = make_ragged_batch({0, 100, 130, 300}, 16, 8, 2, true);
  EXPECT_EQ(r.batch, 3);
  EXPECT_EQ(r.seq, 192);  // longest 170, rounded up to 64
  EXPECT_EQ(r.total, 320);
  EXPECT_EQ(r.seq_len, (std::vector<int32_t>{100, 30, 170}));
  EXPECT_EQ(r.off_qkv.back(), 300 * 16);
}

TEST(RaggedBatch, RejectsBadOffsetsAndOverflow) {
  EXPECT_THROW(make_ragged_batch({0}, 16, 8, 2, false), std::invalid_argument);
  EXPECT_THROW(make_ragged_batch({1, 5}, 16, 8, 2, false), std::invalid_argument);
  EXPECT_THROW(make_ragged_batch({0, 5, 3}, 16, 8, 2, false), std::invalid_argument);
  // 2^20 tokens of 4096-element rows: 2^32 elements.
  EXPECT_THROW(make_ragged_batch({0, 1 << 20}, 4096, 1024, 32, false), std::invalid_argument);
  EXPECT_NO_THROW(make_ragged_batch({0, 1 << 18}, 4096, 1024, 32, false));
}

}  // namespace
}  // namespace minipt
