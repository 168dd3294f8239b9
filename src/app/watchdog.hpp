// run.timeout_s: a deadline for the whole of `minipt run` on one rank. A job with a hung
// rank (stopped, deadlocked, waiting on a dead peer) would otherwise sit in a collective
// until the batch system's time limit; the watchdog thread of any rank that is still
// alive takes the whole job down instead.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace minipt {

class Watchdog {
 public:
  // Starts a thread that calls `on_timeout(step)` (step: the last set_step value, -1
  // before any) once `seconds` of wall-clock time have passed since construction,
  // unless the Watchdog is destroyed first. `seconds` <= 0: off, no thread.
  Watchdog(double seconds, std::function<void(int step)> on_timeout);
  ~Watchdog();  // stops the thread (without calling on_timeout if not yet due)
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void set_step(int step) { step_.store(step, std::memory_order_relaxed); }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<int> step_{-1};
  std::thread thread_;
};

// The message of an expired run.timeout_s, without a newline:
// "minipt: rank R: error: run.timeout_s = T exceeded (step S)", where S is `step` if it
// is one of the run's steps, else "before step 0" or "after the last step".
std::string timeout_message(int rank, double timeout_s, int step, int steps);

}  // namespace minipt
