#include "sim/engine.hpp"

#include <algorithm>
#include <stdexcept>

namespace minipt::sim {

namespace {
// Parts whose remaining work is below this (seconds) are done: it absorbs the rounding
// of the virtual clock without shifting any time by a measurable amount.
constexpr double kEps = 1e-12;
}  // namespace

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
  l.v_ += l.rate() * (now_ - l.last_t_);
  l.last_t_ = now_;
}

void Engine::reschedule(Link& l) {
  ++l.version_;
  if (l.heap_.empty()) return;
  const double left = std::max(0.0, l.heap_.top().finish_v - l.v_);
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
  while (!queue_.empty()) {
    const Item it = queue_.top();
    queue_.pop();
    now_ = std::max(now_, it.t);
    if (it.h) {
      it.h.resume();
    } else if (it.link) {
      Link& l = *it.link;
      if (it.version != l.version_) continue;  // superseded by a later change
      advance(l);
      std::vector<int> finished;
      while (!l.heap_.empty() && l.heap_.top().finish_v <= l.v_ + kEps) {
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
  for (Task& t : programs) {
    if (t.handle.promise().error) std::rethrow_exception(t.handle.promise().error);
    if (!t.handle.done())
      throw std::logic_error("simulation deadlock: a rank waits for an event that never happens");
  }
}

}  // namespace minipt::sim
