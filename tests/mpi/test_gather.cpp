// gather_to_root (comm/gather.hpp): every rank's array, in rank order, on the root, in
// messages no larger than the chunk size; at 1, 2 and 4 ranks (tests/CMakeLists.txt).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "comm/gather.hpp"

namespace minipt {
namespace {

struct Record {  // a POD like the timeline's events
  int64_t when;
  int32_t rank;
  float value;
};

// Rank r's payload: 3·r + 5 records (rank-dependent sizes, none empty).
std::vector<Record> payload(int rank) {
  std::vector<Record> v;
  for (int i = 0; i < 3 * rank + 5; ++i)
    v.push_back({.when = 1000 * rank + i, .rank = rank, .value = 0.5f * static_cast<float>(i)});
  return v;
}

void expect_payloads(const Gathered<Record>& g, int world) {
  ASSERT_EQ(g.begin.size(), static_cast<size_t>(world) + 1);
  size_t total = 0;
  for (int r = 0; r < world; ++r) {
    const std::vector<Record> want = payload(r);
    const auto got = g.of(r);
    ASSERT_EQ(got.size(), want.size()) << "rank " << r;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].when, want[i].when);
      EXPECT_EQ(got[i].rank, want[i].rank);
      EXPECT_EQ(got[i].value, want[i].value);
    }
    total += want.size();
  }
  EXPECT_EQ(g.values.size(), total);
}

TEST(GatherToRoot, EveryRanksRecordsInRankOrderOnTheRoot) {
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  const Gathered<Record> g = gather_to_root(MPI_COMM_WORLD, payload(rank));
  if (rank != 0) {
    EXPECT_TRUE(g.values.empty());
    EXPECT_TRUE(g.begin.empty());
    return;
  }
  expect_payloads(g, world);
}

// A chunk smaller than one record and not dividing it: every payload travels in several
// pieces that split records, and arrives whole.
TEST(GatherToRoot, SmallChunksSplitThePayloadIntoPieces) {
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  for (const int64_t chunk : {int64_t{1}, int64_t{7}, int64_t{sizeof(Record) * 2 + 3}}) {
    for (const int root : {0, world - 1}) {
      const Gathered<Record> g = gather_to_root(MPI_COMM_WORLD, payload(rank), root, chunk);
      if (rank == root)
        expect_payloads(g, world);
      else
        EXPECT_TRUE(g.values.empty());
    }
  }
}

TEST(GatherToRoot, EmptyPayloadsAndSingleValues) {
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  // Odd ranks send nothing.
  std::vector<double> mine;
  if (rank % 2 == 0) mine = {1.5 * rank, -2.0 * rank};
  const Gathered<double> g = gather_to_root(MPI_COMM_WORLD, mine, 0, 3);
  const Gathered<int64_t> one =
      gather_to_root(MPI_COMM_WORLD, std::vector<int64_t>{int64_t{1} << (40 + rank)});
  if (rank != 0) return;
  std::vector<double> want;
  for (int r = 0; r < world; r += 2) want.insert(want.end(), {1.5 * r, -2.0 * r});
  EXPECT_EQ(g.values, want);
  for (int r = 0; r < world; ++r) {
    EXPECT_EQ(g.of(r).size(), r % 2 == 0 ? 2u : 0u);
    EXPECT_EQ(one.values[static_cast<size_t>(r)], int64_t{1} << (40 + r));
  }
}

TEST(GatherToRoot, AChunkOutsideMpisCountsIsRejected) {
  const std::vector<int> mine{1};
  EXPECT_THROW(gather_to_root(MPI_COMM_WORLD, mine, 0, 0), std::invalid_argument);
  EXPECT_THROW(gather_to_root(MPI_COMM_WORLD, mine, 0, int64_t{1} << 31), std::invalid_argument);
}

}  // namespace
}  // namespace minipt
