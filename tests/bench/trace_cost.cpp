// Cost of recording one timeline event on the host: two marks, add(), and the
// per-step resolve in end_step(), averaged over a million events in steps of 2000.
#include <mpi.h>

#include <cstdio>

#include "trace/recorder.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  minipt::HostTimeSource clock;
  minipt::Recorder rec(0, clock, {}, true);
  const int steps = 500, per_step = 2000;
  const int64_t t0 = minipt::steady_now_ns();
  for (int s = 0; s < steps; ++s) {
    const auto b = rec.mark(minipt::Lane::compute);
    for (int i = 0; i < per_step; ++i) {
      const auto m0 = rec.mark(minipt::Lane::compute);
      rec.add(minipt::EventKind::forward, minipt::Lane::compute, m0,
              rec.mark(minipt::Lane::compute), {s, i, i % 30, 0, 4096, 1e9});
    }
    rec.end_step({}, b, rec.mark(minipt::Lane::compute));
  }
  const double ns = static_cast<double>(minipt::steady_now_ns() - t0) / (steps * per_step);
  std::printf("TRACE_COST ns_per_event=%.1f events=%d\n", ns, steps * per_step);
  MPI_Finalize();
  return rec.events().size() == static_cast<size_t>(steps * per_step) ? 0 : 1;
}
