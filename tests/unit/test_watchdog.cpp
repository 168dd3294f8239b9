// Tests of the run.timeout_s watchdog (app/watchdog.hpp): it fires once, after its
// deadline, with the last step it was told; never when stopped in time or when off.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

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

}  // namespace
}  // namespace minipt
