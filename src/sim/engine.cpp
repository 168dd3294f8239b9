#include "sim/engine.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace minipt::sim {

namespace {
// Parts that end within this fraction of the virtual clock of the part whose event fired
// end with it: the same instant up to rounding (a relative, not an absolute, tolerance).
constexpr double kRelTol = 1e-12;
}  // namespace

void Engine::push(const Item& i) {
  if (!std::isfinite(i.t) || i.t > kMaxTime) {
    failed_ = true;
    char b[64];
    std::snprintf(b, sizeof b, "%.6g", i.t);
    throw TimeRangeError(std::string("a simulated time of ") + b +
                         " s is not finite or beyond the timeline's range (at most 9e9 s of "
                         "int64 nanoseconds): a cost term, bandwidth, latency or sequence length "
                         "makes the run too long to simulate");
  }
  queue_.push(i);
}

void Signal::fire(Engine& engine, double t) {
  if (fired_) return;
  fired_ = true;
  time_ = t;
  for (auto h : waiters_) engine.resume_at(t, h);
  waiters_.clear();
  waiters_.shrink_to_fit();
}

void Engine::transfer(double latency, const std::vector<PartSpec>& parts, Signal* done) {
  int id;
  if (!free_transfers_.empty()) {
    id = free_transfers_.back();
    free_transfers_.pop_back();
  } else {
    id = static_cast<int>(transfers_.size());
    transfers_.emplace_back();
  }
  Transfer& tr = transfers_[static_cast<size_t>(id)];
  tr.done = done;
  tr.parts.clear();
  for (const PartSpec& p : parts)
    if (p.work > 0) tr.parts.push_back(p);
  Item it{now_ + std::max(0.0, latency), seq_++, {}, nullptr, 0, -1};
  it.start = id;
  push(it);
}

void Engine::call_at(double t, std::function<void()> fn) {
  int id;
  if (!free_calls_.empty()) {
    id = free_calls_.back();
    free_calls_.pop_back();
    calls_[static_cast<size_t>(id)] = std::move(fn);
  } else {
    id = static_cast<int>(calls_.size());
    calls_.push_back(std::move(fn));
  }
  push({std::max(t, now_), seq_++, {}, nullptr, 0, id});
}

void Engine::advance(Link& l) {
  if (l.heap_.empty())
    l.v_ = 0;  // an idle link restarts its virtual clock: work stays on its own scale
  else
    l.v_ += l.rate() * (now_ - l.last_t_);
  l.last_t_ = now_;
}

void Engine::reschedule(Link& l) {
  ++l.version_;
  if (l.heap_.empty()) return;
  const double left = std::max(0.0, l.heap_.top().finish_v - l.v_);
  // If now + left/rate rounds to now, the event fires now and ends the top part anyway.
  push({now_ + left / l.rate(), seq_++, {}, &l, l.version_, -1});
}

void Engine::start(int id) {
  Transfer& tr = transfers_[static_cast<size_t>(id)];
  tr.parts_left = static_cast<int>(tr.parts.size());
  if (tr.parts_left == 0) {
    finish_part(id);  // nothing to move: done after the latency alone
    return;
  }
  for (const PartSpec& p : tr.parts) {
    Link& l = *p.link;
    advance(l);
    l.heap_.push({l.v_ + p.work, id});
    reschedule(l);
  }
}

void Engine::finish_part(int id) {
  Transfer& tr = transfers_[static_cast<size_t>(id)];
  if (--tr.parts_left > 0) return;
  Signal* done = tr.done;
  tr.done = nullptr;
  tr.parts.clear();
  free_transfers_.push_back(id);
  if (done) done->fire(*this, now_);
}

void Engine::run(std::vector<Task>& programs) {
  for (Task& t : programs) resume_at(0, t.handle);
  while (!queue_.empty() && !failed_) {
    const Item it = queue_.top();
    queue_.pop();
    now_ = std::max(now_, it.t);
    if (it.h) {
      it.h.resume();
    } else if (it.link) {
      Link& l = *it.link;
      if (it.version != l.version_) continue;  // superseded by a later change
      advance(l);
      // This event was scheduled for the top part's end and nothing on the link changed
      // since: that part is done now, whatever the clock's rounding says.
      l.v_ = std::max(l.v_, l.heap_.top().finish_v);
      const double tol = kRelTol * std::abs(l.v_);
      std::vector<int> finished;
      while (!l.heap_.empty() && l.heap_.top().finish_v <= l.v_ + tol) {
        finished.push_back(l.heap_.top().transfer);
        l.heap_.pop();
      }
      reschedule(l);
      for (int id : finished) finish_part(id);
    } else if (it.start >= 0) {
      start(it.start);
    } else if (it.call >= 0) {
      std::function<void()> fn = std::move(calls_[static_cast<size_t>(it.call)]);
      free_calls_.push_back(it.call);
      fn();
    }
  }
  // A program's error first (a TimeRangeError ends the others where they stood).
  for (Task& t : programs)
    if (t.handle.promise().error) std::rethrow_exception(t.handle.promise().error);
  for (Task& t : programs) {
    if (!t.handle.done())
      throw std::logic_error("simulation deadlock: a rank waits for an event that never happens");
  }
}

}  // namespace minipt::sim
