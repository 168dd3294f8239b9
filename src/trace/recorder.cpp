#include "trace/recorder.hpp"

#include <algorithm>
#include <limits>

namespace minipt {

ClockAlignment align_clocks(MPI_Comm comm, int rounds) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  ClockAlignment a;
  MPI_Barrier(comm);
  // Rank 0 serves each rank in turn: the client sends t0, rank 0 answers with its
  // clock t_s, the client reads t1. offset = (t0+t1)/2 − t_s with error ≤ (t1−t0)/2;
  // the round with the smallest round trip wins.
  for (int peer = 1; peer < size; ++peer) {
    if (rank == 0) {
      for (int i = 0; i < rounds; ++i) {
        int64_t dummy = 0;
        MPI_Recv(&dummy, 1, MPI_INT64_T, peer, 901, comm, MPI_STATUS_IGNORE);
        const int64_t now = steady_now_ns();
        MPI_Send(&now, 1, MPI_INT64_T, peer, 902, comm);
      }
    } else if (rank == peer) {
      int64_t best_rtt = std::numeric_limits<int64_t>::max();
      for (int i = 0; i < rounds; ++i) {
        const int64_t t0 = steady_now_ns();
        MPI_Send(&t0, 1, MPI_INT64_T, 0, 901, comm);
        int64_t ts = 0;
        MPI_Recv(&ts, 1, MPI_INT64_T, 0, 902, comm, MPI_STATUS_IGNORE);
        const int64_t t1 = steady_now_ns();
        if (t1 - t0 < best_rtt) {
          best_rtt = t1 - t0;
          a.offset_ns = (t0 + t1) / 2 - ts;
          a.error_bound_ns = (t1 - t0 + 1) / 2;
        }
      }
    }
  }
  // Global zero: rank 0's clock now.
  int64_t zero = rank == 0 ? steady_now_ns() : 0;
  MPI_Bcast(&zero, 1, MPI_INT64_T, 0, comm);
  a.offset_ns += zero;
  int64_t bound = a.error_bound_ns;
  MPI_Allreduce(&bound, &a.error_bound_ns, 1, MPI_INT64_T, MPI_MAX, comm);
  return a;
}

void Recorder::add(EventKind kind, Lane lane, TimeSource::Mark begin, TimeSource::Mark end,
                   const Fields& f) {
  if (!enabled_) return;
  pending_.push_back({make_event(rank_, kind, lane, f), begin, end});
}

void Recorder::end_step(StepRecord rec, TimeSource::Mark step_begin, TimeSource::Mark step_end) {
  clock_.synchronize();
  rec.t_start_ns = to_global(clock_.resolve_ns(step_begin));
  rec.t_end_ns = to_global(clock_.resolve_ns(step_end));
  rec.compute_ns = 0;
  for (auto& p : pending_) {
    p.event.t_start_ns = to_global(clock_.resolve_ns(p.begin));
    p.event.t_end_ns = std::max(p.event.t_start_ns, to_global(clock_.resolve_ns(p.end)));
    if (is_compute_kind(p.event.kind)) rec.compute_ns += p.event.t_end_ns - p.event.t_start_ns;
    events_.push_back(p.event);
  }
  pending_.clear();
  clock_.reset();
  steps_.push_back(rec);
}

}  // namespace minipt
