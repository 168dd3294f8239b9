// Per-rank event recorder and the global clock.
//
// Operations are bracketed by TimeSource marks (host clock reads, or CUDA events on
// the lane's stream); once per step the marks are resolved into nanoseconds and
// shifted onto the run's global clock.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <vector>

#include "compute/backend.hpp"
#include "trace/events.hpp"

namespace minipt {

// Offset of this rank's steady clock from the global clock (rank 0's clock, zero at
// the end of alignment) and a bound on the error of any rank's offset.
struct ClockAlignment {
  int64_t offset_ns = 0;       // global = local − offset
  int64_t error_bound_ns = 0;  // max over ranks of half the best round trip
};

// Cristian's algorithm against rank 0, best of `rounds` ping-pongs per rank.
// Collective over `comm`.
ClockAlignment align_clocks(MPI_Comm comm, int rounds = 16);

struct StepRecord {
  int32_t step = 0;
  int32_t rank = 0;
  int64_t tokens = 0;
  int32_t microbatches = 0;
  int64_t t_start_ns = 0, t_end_ns = 0;
  int64_t compute_ns = 0;
  double loss = 0;
};

struct SequenceRecord {
  int32_t step, rank, microbatch, sequence;
  int64_t length;
};

class Recorder {
 public:
  Recorder(int rank, TimeSource& clock, ClockAlignment alignment, bool enabled = true)
      : rank_(rank), clock_(clock), alignment_(alignment), enabled_(enabled) {}

  TimeSource::Mark mark(Lane lane) { return clock_.mark(lane); }
  TimeSource::Mark mark_after(Lane lane, Lane after) { return clock_.mark_after(lane, after); }

  struct Fields {
    int step = 0, microbatch = -1, unit = -1;
    int64_t bytes = 0, tokens = 0;
    double flops = 0;
  };
  void add(EventKind kind, Lane lane, TimeSource::Mark begin, TimeSource::Mark end,
           const Fields& f);

  // Runs `fn` between two marks on `lane` and records it.
  template <typename Fn>
  void timed(EventKind kind, Lane lane, const Fields& f, Fn&& fn) {
    const auto b = mark(lane);
    fn();
    add(kind, lane, b, mark(lane), f);
  }

  // Resolves this step's marks into events (waits for the device), fills the step's
  // start/end/compute time from them and appends the record.
  void end_step(StepRecord rec, TimeSource::Mark step_begin, TimeSource::Mark step_end);

  // Forgets events recorded outside any step (set-up work that is not timed).
  void discard_pending() {
    pending_.clear();
    clock_.synchronize();
    clock_.reset();
  }

  const std::vector<Event>& events() const { return events_; }
  const std::vector<StepRecord>& steps() const { return steps_; }
  const ClockAlignment& alignment() const { return alignment_; }
  int64_t to_global(int64_t local_ns) const { return local_ns - alignment_.offset_ns; }

 private:
  struct Pending {
    Event event;
    TimeSource::Mark begin, end;
  };
  int rank_;
  TimeSource& clock_;
  ClockAlignment alignment_;
  bool enabled_;
  std::vector<Pending> pending_;
  std::vector<Event> events_;
  std::vector<StepRecord> steps_;
};

// One event of `rank` from the recorder's fields, times in global nanoseconds.
inline Event make_event(int rank, EventKind kind, Lane lane, const Recorder::Fields& f,
                        int64_t t_start_ns = 0, int64_t t_end_ns = 0) {
  return Event{.rank = rank,
               .step = f.step,
               .microbatch = f.microbatch,
               .unit = f.unit,
               .kind = kind,
               .lane = static_cast<int8_t>(lane),
               .t_start_ns = t_start_ns,
               .t_end_ns = t_end_ns,
               .bytes = f.bytes,
               .tokens = f.tokens,
               .flops = f.flops};
}

}  // namespace minipt
