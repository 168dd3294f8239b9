// fn(i) for every i in [0, n), on a few threads when the work is large enough to pay for
// them. Each fn(i) must write only i's own results (and read shared data only), so the
// outcome is the same however many threads run. If some fn(i) throw, every i still runs
// and the exception of the lowest such i is rethrown (the one a loop would throw).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace minipt {

template <class Fn>
void for_each_index(size_t n, bool threaded, Fn&& fn) {
  constexpr size_t kMostThreads = 8;
  const size_t threads =
      threaded ? std::min<size_t>({n, kMostThreads, std::thread::hardware_concurrency()}) : 1;
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::mutex failed;
  size_t first_failure = n;
  std::exception_ptr error;
  {
    std::vector<std::jthread> pool;
    for (size_t t = 0; t < threads; ++t)
      pool.emplace_back([&] {
        for (size_t i = next++; i < n; i = next++) try {
            fn(i);
          } catch (...) {
            const std::lock_guard<std::mutex> lock(failed);
            if (i < first_failure) {
              first_failure = i;
              error = std::current_exception();
            }
          }
      });
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace minipt
