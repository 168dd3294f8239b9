// The discrete-event core of `minipt simulate`: a time-ordered queue, one C++20
// coroutine per simulated rank, one-shot signals, and links modelled as
// processor-sharing servers.
//
// A rank's program is a coroutine that spends time (`co_await sim.delay(s)`) and waits for
// communication (`co_await *signal`), so it reads like the step loop it mirrors
// (train/trainer.cpp). A transfer is split into parts, one per link it crosses; each
// link serves its parts in processor sharing (n parts in progress each get
// min(1, capacity/n) of the link's speed), and the transfer completes when its last part
// does. Work is measured in seconds at full speed (bytes / bandwidth), so operations of
// different bandwidths can share one link.
//
// Robust to any finite input (issue 31): a link's completion event belongs to the part
// at the top of its heap when it was scheduled (a change to the link supersedes it), so
// that part ends when the event fires, whatever rounding did to the clock — no absolute
// epsilon that large times round away, and every event ends at least one part, so the
// engine cannot spin. A link's virtual clock restarts at 0 whenever it empties, keeping
// the work in flight on the scale of its own parts. Every time put on the queue must be
// finite and at most kMaxTime (the timeline stores int64 nanoseconds): anything else is a
// TimeRangeError, raised once, ending the run.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <queue>
#include <stdexcept>
#include <string>
#include <vector>

namespace minipt::sim {

class Engine;

// The largest simulated time, seconds: int64 nanoseconds reach 9.22e9 s.
inline constexpr double kMaxTime = 9.0e9;

// A time that is not finite or beyond kMaxTime (a cost term, bandwidth or workload that
// makes the run longer than the timeline can hold).
struct TimeRangeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A rank program, or a part of one. Starts suspended: the engine resumes a program; a
// part runs when its caller `co_await`s it and hands control back to it when done.
struct Task {
  struct promise_type {
    Task get_return_object() {
      return Task{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        const auto c = h.promise().continuation;
        return c ? c : std::noop_coroutine();
      }
      void await_resume() const noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { error = std::current_exception(); }
    std::exception_ptr error;
    std::coroutine_handle<> continuation;  // the awaiting caller, if a part
  };
  // Awaiting a part runs it now; the caller resumes when it ends.
  struct Awaiter {
    std::coroutine_handle<promise_type> h;
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
      h.promise().continuation = caller;
      return h;
    }
    void await_resume() const {
      if (h.promise().error) std::rethrow_exception(h.promise().error);
    }
  };
  Awaiter operator co_await() const noexcept { return Awaiter{handle}; }
  explicit Task(std::coroutine_handle<promise_type> h) : handle(h) {}
  Task(Task&& o) noexcept : handle(o.handle) { o.handle = {}; }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (handle) handle.destroy();
  }
  std::coroutine_handle<promise_type> handle;
};

// A one-shot event: fires once, at a time; coroutines that wait on it before then are
// resumed at that time, those that wait after it go straight on.
class Signal {
 public:
  bool fired() const { return fired_; }
  double time() const { return time_; }
  void fire(Engine& engine, double t);

  struct Awaiter {
    Signal& s;
    bool await_ready() const noexcept { return s.fired_; }
    void await_suspend(std::coroutine_handle<> h) { s.waiters_.push_back(h); }
    void await_resume() const noexcept {}
  };
  Awaiter operator co_await() { return Awaiter{*this}; }

 private:
  bool fired_ = false;
  double time_ = 0;
  std::vector<std::coroutine_handle<>> waiters_;
};

// A link (or a pool of links) serving parts of transfers in processor sharing.
class Link {
 public:
  explicit Link(double capacity = 1.0) : capacity_(capacity) {}
  double capacity() const { return capacity_; }
  int active() const { return static_cast<int>(heap_.size()); }

 private:
  friend class Engine;
  struct Part {
    double finish_v;  // virtual work at which this part is done
    int transfer;
    bool operator>(const Part& o) const { return finish_v > o.finish_v; }
  };
  double rate() const {
    const double n = static_cast<double>(heap_.size());
    return n > 0 ? (capacity_ < n ? capacity_ / n : 1.0) : 0.0;
  }
  double capacity_;
  double v_ = 0;       // work each part in progress has received
  double last_t_ = 0;  // when v_ was last brought up to date
  uint64_t version_ = 0;
  std::priority_queue<Part, std::vector<Part>, std::greater<>> heap_;
};

class Engine {
 public:
  double now() const { return now_; }

  // Resumes `h` at time `t` (≥ now).
  void resume_at(double t, std::coroutine_handle<> h) { push({t, seq_++, h, nullptr, 0, -1}); }

  struct Delay {
    Engine& e;
    double seconds;
    bool await_ready() const noexcept { return seconds <= 0; }
    void await_suspend(std::coroutine_handle<> h) { e.resume_at(e.now_ + seconds, h); }
    void await_resume() const noexcept {}
  };
  Delay delay(double seconds) { return Delay{*this, seconds}; }

  // A transfer that starts `latency` seconds from now and crosses `parts` (link, work in
  // seconds at full speed); `done` fires when every part is served.
  struct PartSpec {
    Link* link;
    double work;
  };
  void transfer(double latency, const std::vector<PartSpec>& parts, Signal* done);

  // Calls `fn` at time t (for collectives that start when the last member arrives).
  void call_at(double t, std::function<void()> fn);

  // Runs until nothing is left to do. Throws the first exception a program raised.
  void run(std::vector<Task>& programs);

 private:
  struct Item {
    double t;
    uint64_t seq;
    std::coroutine_handle<> h;  // resume this, or
    Link* link;                 // check this link's next completion (if version matches), or
    uint64_t version;
    int call;        // run calls_[call], or
    int start = -1;  // start transfers_[start]
    bool operator>(const Item& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };
  struct Transfer {
    int parts_left = 0;
    Signal* done = nullptr;
    std::vector<PartSpec> parts;
  };
  void push(const Item& i);
  void advance(Link& l);
  void reschedule(Link& l);
  void start(int transfer);
  void finish_part(int transfer);

  double now_ = 0;
  uint64_t seq_ = 0;
  bool failed_ = false;  // a TimeRangeError was raised: the run stops
  std::priority_queue<Item, std::vector<Item>, std::greater<>> queue_;
  std::vector<Transfer> transfers_;
  std::vector<int> free_transfers_;
  std::vector<std::function<void()>> calls_;
  std::vector<int> free_calls_;
};

}  // namespace minipt::sim
