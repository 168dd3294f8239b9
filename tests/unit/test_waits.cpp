// Waiting for other ranks split from communication (trace/waits.cpp) on the hand-built
// two-rank fsdp event set of tests/python/test_waits.py, whose post times are known: the
// same events, the same expected split, so the C++ summary and the analysis agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "trace/events.hpp"
#include "trace/run_file.hpp"
#include "trace/waits.hpp"

namespace minipt {
namespace {

constexpr int64_t kUs = 1000;
// Seconds summed in double: exact to far below a nanosecond here.
constexpr double kTol = 1e-15;

Event ev(int rank, EventKind kind, int lane, int unit, int64_t t0_us, int64_t t1_us, int step = 0) {
  Event e;
  e.rank = rank;
  e.step = step;
  e.microbatch = 0;
  e.unit = unit;
  e.kind = kind;
  e.lane = static_cast<int8_t>(lane);
  e.t_start_ns = t0_us * kUs;
  e.t_end_ns = t1_us * kUs;
  return e;
}

using K = EventKind;

// One step, global window 0-1000 µs, unit 0 and 1, microbatch 0 (times in µs).
//   forward gather of unit 0: rank 0 posts at 0, rank 1 at 300: rank 0's wait 0-400 spends
//     300 waiting for rank 1, 100 in communication; rank 1's wait 300-400 is communication.
//   backward gather of unit 0 (the second occurrence of the same step, microbatch and
//     unit): rank 1 posts at 500, rank 0 at 650; rank 1's wait 550-700: 100 waiting (to
//     650), 50 communication; rank 0's wait 650-700: 50 communication.
//   reduce-scatter of unit 1: rank 1 posts at 800, rank 0 at 830; rank 0's wait 850-900
//     is communication; rank 1's wait 810-820 ends before rank 0's post: waiting only.
std::vector<Event> hand_events() {
  return {
      // rank 0
      ev(0, K::gather, 1, 0, 0, 400),
      ev(0, K::wait, 0, 0, 0, 400),  // [1] 300 waiting
      ev(0, K::forward, 0, 0, 400, 650),
      ev(0, K::gather, 1, 0, 650, 700),
      ev(0, K::wait, 0, 0, 650, 700),  // [4] 0
      ev(0, K::backward, 0, 0, 700, 800),
      ev(0, K::reduce_scatter, 2, 1, 830, 900),
      ev(0, K::reduce_scatter, 2, 0, 800, 820),
      ev(0, K::wait, 0, 1, 850, 900),  // [8] 0
      // rank 1
      ev(1, K::forward, 0, 1, 0, 300),
      ev(1, K::gather, 1, 0, 300, 400),
      ev(1, K::wait, 0, 0, 300, 400),  // [11] 0
      ev(1, K::gather, 1, 0, 500, 700),
      ev(1, K::wait, 0, 0, 550, 700),  // [13] 100 waiting
      ev(1, K::reduce_scatter, 2, 1, 800, 820),
      ev(1, K::wait, 0, 1, 810, 820),  // [15] 10 waiting
      ev(1, K::reduce_scatter, 2, 0, 800, 900),
  };
}

std::vector<int64_t> expected_waiting_ns() {
  std::vector<int64_t> out(17, 0);
  out[1] = 300 * kUs;
  out[13] = 100 * kUs;
  out[15] = 10 * kUs;
  return out;
}

TEST(Waits, SplitIsExactOnKnownPostTimes) {
  EXPECT_EQ(waiting_for_ranks_ns(hand_events(), 2), expected_waiting_ns());
}

TEST(Waits, InputOrderDoesNotMatter) {
  std::vector<Event> events = hand_events();
  std::vector<int64_t> expected = expected_waiting_ns();
  std::reverse(events.begin(), events.end());
  std::reverse(expected.begin(), expected.end());
  EXPECT_EQ(waiting_for_ranks_ns(events, 2), expected);
}

TEST(Waits, GroupsOfHybridShardingWaitOnlyForTheirOwnRanks) {
  // parallel.shard = 1: every rank is its own group, so no rank waits for another.
  EXPECT_EQ(waiting_for_ranks_ns(hand_events(), 1), std::vector<int64_t>(17, 0));
}

TEST(Waits, TimeSharesOfFsdpAndOdc) {
  const std::vector<Event> events = hand_events();
  // Per rank (µs): waiting 300 and 110; communication 100 + 50 + 50 = 200 and
  // 100 + 50 + 0 = 150; compute 250 + 100 and 300.
  const TimeShares fsdp = time_shares(events, 0, true, 2);
  EXPECT_NEAR(fsdp.compute, 650e-6, kTol);
  EXPECT_NEAR(fsdp.waiting, 410e-6, kTol);
  EXPECT_NEAR(fsdp.exposed, 350e-6, kTol);
  EXPECT_NEAR(fsdp.barrier, 0.0, kTol);
  EXPECT_NEAR(fsdp.optimizer, 0.0, kTol);
  // odc's waits are all communication (its waiting is the barrier).
  const TimeShares odc = time_shares(events, 0, false, 2);
  EXPECT_NEAR(odc.waiting, 0.0, kTol);
  EXPECT_NEAR(odc.exposed, 760e-6, kTol);
  // Warm-up steps are left out.
  const TimeShares none = time_shares(events, 1, true, 2);
  EXPECT_NEAR(none.compute + none.waiting + none.exposed, 0.0, kTol);
}

TEST(Waits, SummaryFractionsOverMeasuredSteps) {
  RunFile rf;
  rf.events = hand_events();
  // Step 1 (measured) repeats step 0 (warm-up) 1000 µs later.
  for (Event e : hand_events()) {
    e.step = 1;
    e.t_start_ns += 1000 * kUs;
    e.t_end_ns += 1000 * kUs;
    rf.events.push_back(e);
  }
  for (int step = 0; step < 2; ++step)
    for (int rank = 0; rank < 2; ++rank)
      rf.steps.push_back(StepRecord{.step = step,
                                    .rank = rank,
                                    .tokens = 100,
                                    .microbatches = 1,
                                    .t_start_ns = step * 1000 * kUs,
                                    .t_end_ns = (step + 1) * 1000 * kUs});
  rf.summary = summarize(rf.steps, 2, 1, {}, 10.0);
  ASSERT_DOUBLE_EQ(rf.summary.seconds, 1e-3);
  summarize_waits(rf, 2, 1, true, 2);
  // Over 2 ranks x 1000 µs: 410 µs waiting, 350 µs communication (as the analysis reports).
  EXPECT_NEAR(rf.summary.waiting_fraction, 410.0 / 2000, kTol);
  EXPECT_NEAR(rf.summary.exposed_communication_fraction, 350.0 / 2000, kTol);
  summarize_waits(rf, 2, 1, false, 2);
  EXPECT_NEAR(rf.summary.waiting_fraction, 0.0, kTol);
  EXPECT_NEAR(rf.summary.exposed_communication_fraction, 760.0 / 2000, kTol);
}

// A simulation of more ranks than sim.trace_ranks stores the events of some ranks only:
// the shares are taken over those (issue 30), not diluted by the ranks without events.
TEST(Waits, SummaryFractionsOverTracedRanksOnly) {
  RunFile rf;
  for (int step = 0; step < 2; ++step)
    for (Event e : hand_events()) {
      e.step = step;
      e.rank *= 3;  // events of ranks 0 and 3 of 4
      e.t_start_ns += step * 1000 * kUs;
      e.t_end_ns += step * 1000 * kUs;
      rf.events.push_back(e);
    }
  for (int step = 0; step < 2; ++step)
    for (int rank = 0; rank < 4; ++rank)
      rf.steps.push_back(StepRecord{.step = step,
                                    .rank = rank,
                                    .tokens = 100,
                                    .microbatches = 1,
                                    .t_start_ns = step * 1000 * kUs,
                                    .t_end_ns = (step + 1) * 1000 * kUs});
  rf.summary = summarize(rf.steps, 4, 1, {}, 10.0);
  // odc (the shard groups do not matter): 760 µs of exposed waits over 2 ranks x 1000 µs,
  // not over 4 ranks.
  summarize_waits(rf, 4, 1, false, 2);
  EXPECT_EQ(rf.summary.traced_ranks, 2);
  EXPECT_NEAR(rf.summary.exposed_communication_fraction, 760.0 / 2000, kTol);
  EXPECT_EQ(ranks_with_events(rf.events), 2);
  EXPECT_EQ(ranks_with_events({}), 0);
}

}  // namespace
}  // namespace minipt
