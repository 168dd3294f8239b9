// Tests of the run.timeout_s watchdog (app/watchdog.hpp): it fires once, after its
// deadline, with the last step it was told; never when stopped in time or when off.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "app/watchdog.hpp"

namespace minipt {
namespace {

using namespace std::chrono_literals;

TEST(Watchdog, FiresAfterTheDeadlineWithTheLastStep) {
  std::promise<int> fired;
  std::future<int> step = fired.get_future();
  const auto start = std::chrono::steady_clock::now();
  Watchdog dog(0.2, [&](int s) { fired.set_value(s); });
  dog.set_step(3);
  dog.set_step(5);
  ASSERT_EQ(step.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(step.get(), 5);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 190ms);
}

TEST(Watchdog, ReportsBeforeTheFirstStep) {
  std::promise<int> fired;
  std::future<int> step = fired.get_future();
  Watchdog dog(0.05, [&](int s) { fired.set_value(s); });
  ASSERT_EQ(step.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(step.get(), -1);
}

TEST(Watchdog, StoppedInTimeOrOffNeverFires) {
  std::atomic<int> calls{0};
  const auto start = std::chrono::steady_clock::now();
  {
    Watchdog dog(30.0, [&](int) { ++calls; });
  }  // destroyed long before the deadline
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "the destructor must not wait";
  {
    Watchdog off(0.0, [&](int) { ++calls; });
  }
  {
    Watchdog negative(-1.0, [&](int) { ++calls; });
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(calls.load(), 0);
}

TEST(Watchdog, MessageNamesRankKeyAndStep) {
  EXPECT_EQ(timeout_message(1, 3, 7, 50),
            "minipt: rank 1: error: run.timeout_s = 3 exceeded (step 7)");
  EXPECT_EQ(timeout_message(0, 2.5, -1, 50),
            "minipt: rank 0: error: run.timeout_s = 2.5 exceeded (before step 0)");
  EXPECT_EQ(timeout_message(3, 10, 50, 50),
            "minipt: rank 3: error: run.timeout_s = 10 exceeded (after the last step)");
}

// The progress watchdog (issue 31), three ranks in one process over real UDP endpoints:
// ranks 0 and 1 keep their watchdogs (their threads answer), rank 2's endpoint is closed
// (a stopped rank's thread does not answer). Ranks 0 and 1 stop progressing at step 4;
// rank 0 reports, naming rank 2 alone.
TEST(ProgressWatchdog, AStalledStepNamesTheRankThatDidNotReachIt) {
  std::vector<WatchdogEndpoint> ends;
  std::vector<WatchdogAddress> peers;
  for (int r = 0; r < 3; ++r) {
    ends.push_back(open_watchdog_endpoint());
    ASSERT_GE(ends.back().fd, 0);
    peers.push_back(ends.back().address);
  }
  ::close(ends[2].fd);  // rank 2: stopped
  const WatchdogOptions o{.factor = 5, .floor_s = 0.3, .grace_s = 0.3};
  std::promise<std::string> first;
  std::atomic<int> reports{0};
  auto on_stall = [&](const std::string& m) {
    if (reports++ == 0) first.set_value(m);
  };
  const auto start = std::chrono::steady_clock::now();
  {
    ProgressWatchdog r0(0, ends[0], peers, o, on_stall);
    ProgressWatchdog r1(1, ends[1], peers, o, on_stall);
    for (int step = 0; step <= 4; ++step) {
      r0.progress(step, 10);
      r1.progress(step, 10);
      std::this_thread::sleep_for(20ms);
    }
    std::future<std::string> message = first.get_future();
    ASSERT_EQ(message.wait_for(10s), std::future_status::ready);
    const std::string m = message.get();
    EXPECT_EQ(m.rfind("minipt: rank 0: error: step 4 stalled: no progress for ", 0), 0u) << m;
    EXPECT_NE(m.find("; rank 2 did not reach step 4 (stopped, hung or dead?)"), std::string::npos)
        << m;
    EXPECT_NE(m.find("run.watchdog_floor_s 0.3"), std::string::npos) << m;
  }
  // The floor (0.3 s) and the grace (0.3 s) at least, far less than 10 s.
  EXPECT_GE(std::chrono::steady_clock::now() - start, 550ms);
}

TEST(ProgressWatchdog, StepsThatProgressOrAnOffWatchdogNeverReport) {
  std::atomic<int> reports{0};
  auto on_stall = [&](const std::string&) { ++reports; };
  WatchdogEndpoint e = open_watchdog_endpoint();
  {
    // The slowest step (0.1 s) x 5 = 0.5 s beyond the floor: steps of 0.1 s never stall.
    ProgressWatchdog dog(0, e, {e.address}, {.factor = 5, .floor_s = 0.05, .grace_s = 0.1},
                         on_stall);
    for (int step = 0; step < 8; ++step) {
      dog.progress(step, 8);
      std::this_thread::sleep_for(100ms);
    }
  }
  {
    ProgressWatchdog off(0, open_watchdog_endpoint(), {}, {.factor = 0, .floor_s = 0}, on_stall);
    off.progress(0, 1);
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(reports.load(), 0);
}

TEST(ProgressWatchdog, MessageNamesEveryMissingRankOrNone) {
  const WatchdogOptions o{.factor = 10, .floor_s = 300, .grace_s = 2};
  EXPECT_EQ(stall_message(0, 7, 10, 301, 300, o, 1.5, {2, 5}),
            "minipt: rank 0: error: step 7 stalled: no progress for 301 s (threshold 300 s = "
            "max(run.watchdog_floor_s 300, run.watchdog_factor 10 x the slowest step 1.5 s)); "
            "ranks 2, 5 did not reach step 7 (stopped, hung or dead?)");
  EXPECT_NE(
      stall_message(1, 10, 10, 400, 300, o, 1, {})
          .find("every rank reached the end of the run (after the last step) (a hang inside it)"),
      std::string::npos);
}

}  // namespace
}  // namespace minipt
