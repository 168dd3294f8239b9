#include "app/watchdog.hpp"

#include <chrono>
#include <sstream>
#include <string>
#include <utility>

namespace minipt {

Watchdog::Watchdog(double seconds, std::function<void(int step)> on_timeout) {
  if (!(seconds > 0)) return;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(seconds));
  thread_ = std::thread([this, deadline, on_timeout = std::move(on_timeout)] {
    std::unique_lock<std::mutex> lock(mutex_);
    if (wake_.wait_until(lock, deadline, [this] { return stopping_; })) return;
    lock.unlock();
    on_timeout(step_.load(std::memory_order_relaxed));
  });
}

Watchdog::~Watchdog() {
  if (!thread_.joinable()) return;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::string timeout_message(int rank, double timeout_s, int step, int steps) {
  std::ostringstream s;
  s << "minipt: rank " << rank << ": error: run.timeout_s = " << timeout_s << " exceeded (";
  if (step < 0)
    s << "before step 0";
  else if (step >= steps)
    s << "after the last step";
  else
    s << "step " << step;
  s << ")";
  return s.str();
}

}  // namespace minipt
