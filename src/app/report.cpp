// The console report of a finished or simulated run: PERFORMANCE and FRACTION lines.
#include <cmath>
#include <cstdio>

#include "app/commands.hpp"
#include "config/config.hpp"
#include "core/warmup.hpp"
#include "trace/run_file.hpp"
#include "trace/waits.hpp"

namespace minipt {

void print_report(const Config& cfg, const RunFile& rf, int world, bool backend_shown) {
  const RunSummary& s = rf.summary;
  std::vector<int64_t> tokens(static_cast<size_t>(world)), mbs(static_cast<size_t>(world));
  const int first = first_measured_step(cfg.run.warmup_steps, cfg.run.steps);
  for (const auto& r : rf.steps)
    if (r.step >= first) {
      tokens[static_cast<size_t>(r.rank)] += r.tokens;
      mbs[static_cast<size_t>(r.rank)] += r.microbatches;
    }
  const auto b = rf.string_attrs.find("backend");
  const std::string backend =
      backend_shown
          ? ""
          : " | backend " + (b != rf.string_attrs.end() ? b->second : cfg.compute.backend);
  std::printf("\n%s | %s+%s | %d ranks%s | workload %s | %d measured steps\n", cfg.run.name.c_str(),
              to_string(cfg.run.mode).c_str(), cfg.balance.scheme.c_str(), world, backend.c_str(),
              cfg.workload_name.c_str(), s.steps_measured);
  std::printf("  rank |     tokens | microbatches | utilization |   idle\n");
  // Large (simulated) jobs: the first and last 8 ranks.
  for (int r = 0; r < world; ++r) {
    if (world > 24 && r == 8) std::printf("   ... | (%d more ranks)\n", world - 16);
    if (world > 24 && r >= 8 && r < world - 8) continue;
    std::printf("  %4d | %10lld | %12lld | %10.1f%% | %5.1f%%\n", r,
                static_cast<long long>(tokens[static_cast<size_t>(r)]),
                static_cast<long long>(mbs[static_cast<size_t>(r)]),
                100 * s.utilization_per_rank[static_cast<size_t>(r)],
                100 * s.idle_per_rank[static_cast<size_t>(r)]);
  }
  // The peak MFU was taken against (the run's: the device's for a GPU, see Trainer).
  const auto peak_attr = rf.float_attrs.find("peak_tflops");
  const double peak =
      peak_attr != rf.float_attrs.end() ? peak_attr->second : cfg.compute.peak_tflops;
  const auto source = rf.string_attrs.find("peak_tflops_source");
  const std::string from =
      source != rf.string_attrs.end() ? ", from " + source->second : std::string();
  std::printf(
      "  tokens/s %.1f (%.1f per rank) | step %.2f ms | MFU %.1f%% (peak %.1f TFLOP/s per "
      "rank%s) | peak memory %.2f GiB (largest rank)\n",
      s.tokens_per_s, s.tokens_per_s_per_rank, s.step_ms, 100 * s.mfu, peak, from.c_str(),
      static_cast<double>(s.peak_memory_bytes) / (1 << 30));
  if (s.mfu > 1.0)
    std::printf(
        "WARNING: MFU %.2f is above 1: the peak (%.1f TFLOP/s per rank%s) is below what this "
        "device ran; set compute.device_peak_tflops (a GPU) or compute.peak_tflops\n",
        s.mfu, peak, from.c_str());
  // A figure the run could not measure (utilization without run.trace's events) is n/a.
  const auto figure = [](double v) {
    char text[32] = "n/a";
    if (std::isfinite(v)) std::snprintf(text, sizeof text, "%.4f", v);
    return std::string(text);
  };
  std::printf(
      "PERFORMANCE mode=%s balance=%s ranks=%d tokens_per_s=%.1f tokens_per_s_per_rank=%.1f "
      "utilization=%s "
      "idle_fraction=%s step_ms=%.3f mfu=%.4f peak_mem_gib=%.2f\n",
      to_string(cfg.run.mode).c_str(), cfg.balance.scheme.c_str(), world, s.tokens_per_s,
      s.tokens_per_s_per_rank, figure(s.utilization).c_str(), figure(s.idle_fraction).c_str(),
      s.step_ms, s.mfu, static_cast<double>(s.peak_memory_bytes) / (1 << 30));
  // Where the wall time went (measured steps, the ranks with events: all of a traced run,
  // sim.trace_ranks of a larger simulation): one grep-able line each, naming that count.
  const int traced = std::min(ranks_with_events(rf.events), world);
  if (traced > 0 && s.seconds > 0) {
    const TimeShares t =
        time_shares(rf.events, first, cfg.run.mode == Mode::fsdp, shard_group_size(cfg, world));
    const double wall = s.seconds * traced;
    const double other = wall - t.compute - t.exposed - t.waiting - t.barrier - t.optimizer;
    const std::pair<const char*, double> rows[] = {
        {"compute", t.compute},           {"exposed_communication", t.exposed},
        {"waiting_for_ranks", t.waiting}, {"barrier", t.barrier},
        {"optimizer", t.optimizer},       {"other", std::max(0.0, other)}};
    for (const auto& [name, v] : rows)
      std::printf("FRACTION %s %.4f traced_ranks=%d\n", name, v / wall, traced);
  }
  std::printf("timeline: %s\n", cfg.run.out.c_str());
  std::fflush(stdout);
}

}  // namespace minipt
