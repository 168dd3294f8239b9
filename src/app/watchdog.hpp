// run.timeout_s: a deadline for the whole of `minipt run` on one rank. A job with a hung
// rank (stopped, deadlocked, waiting on a dead peer) would otherwise sit in a collective
// until the batch system's time limit; the watchdog thread of any rank that is still
// alive takes the whole job down instead.
#pragma once

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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

// The progress watchdog (issue 31), on by default in `minipt run`: a stalled step ends the
// job. A rank's progress is each step it begins (and the run's end after its last step);
// it is stalled when no progress has come for max(run.watchdog_floor_s,
// run.watchdog_factor x the slowest step it has seen) — the floor alone before its second
// step begins. Every rank's watchdog thread then asks every other rank's watchdog thread
// which step it has begun, over UDP datagrams outside MPI (a stopped, hung or dead rank's
// thread does not answer; a live rank's thread answers even while its main thread waits
// in a collective), waits run.watchdog_grace_s for the answers, and ends the job through
// `on_stall` with a message naming the ranks that did not reach its step (those that
// answered with an earlier step or did not answer). Of the stalled ranks, the lowest that
// answered reports at once; the others report after three graces if the job is still up.
namespace minipt {

struct WatchdogOptions {
  double factor = 10.0;    // run.watchdog_factor: 0 = off
  double floor_s = 300.0;  // run.watchdog_floor_s
  double grace_s = 2.0;    // run.watchdog_grace_s: how long answers are awaited
};

// Where a rank's watchdog listens: IPv4 addresses (network byte order; non-loopback first,
// loopback last) and a UDP port.
struct WatchdogAddress {
  uint32_t ipv4[4] = {0, 0, 0, 0};
  uint16_t port = 0;  // network byte order
  uint16_t count = 0;
};

// A UDP socket bound to an ephemeral port on every interface, and its address.
struct WatchdogEndpoint {
  int fd = -1;
  WatchdogAddress address;
};
// fd -1 if no socket could be made (the watchdog then names no ranks but still ends the job).
WatchdogEndpoint open_watchdog_endpoint();

class ProgressWatchdog {
 public:
  // One rank's watchdog: `self` is its endpoint (the watchdog owns its fd), `peers` every
  // rank's address by rank. factor <= 0: off, no thread. `on_stall(message)` must end the
  // process (MPI_Abort); it is called at most once.
  ProgressWatchdog(int rank, WatchdogEndpoint self, std::vector<WatchdogAddress> peers,
                   WatchdogOptions options, std::function<void(const std::string&)> on_stall);
  ~ProgressWatchdog();
  ProgressWatchdog(const ProgressWatchdog&) = delete;
  ProgressWatchdog& operator=(const ProgressWatchdog&) = delete;

  // (Main thread) this rank began `step` (`steps`: the run's step count, for the message).
  void progress(int step, int steps);

 private:
  void loop();
  int rank_;
  WatchdogEndpoint self_;
  std::vector<WatchdogAddress> peers_;
  WatchdogOptions options_;
  std::function<void(const std::string&)> on_stall_;
  std::mutex mutex_;
  int step_ = -1, steps_ = 0;
  std::chrono::steady_clock::time_point last_;  // the last progress
  double slowest_s_ = 0;                        // the longest gap between two progresses
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// (Collective over `comm`) every rank's watchdog, addresses exchanged with MPI_Allgather.
std::unique_ptr<ProgressWatchdog> start_progress_watchdog(
    MPI_Comm comm, WatchdogOptions options, std::function<void(const std::string&)> on_stall);

// "minipt: rank R: error: step S stalled: no progress for W s (threshold T s = max(
// run.watchdog_floor_s F, run.watchdog_factor K x the slowest step D s)); ranks A, B did
// not reach step S (stopped, hung or dead?)". `missing` empty: "every rank reached step S".
std::string stall_message(int rank, int step, int steps, double waited_s, double threshold_s,
                          const WatchdogOptions& o, double slowest_s,
                          const std::vector<int>& missing);

}  // namespace minipt
