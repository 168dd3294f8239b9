#include "trace/run_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <tuple>

#include "core/error.hpp"
#include "core/warmup.hpp"
#include "trace/atomic_file.hpp"
#include "trace/h5.hpp"

namespace minipt {

RunSummary summarize(const std::vector<StepRecord>& steps, int world, int warmup,
                     const std::vector<double>& step_flops, double peak_tflops) {
  RunSummary s;
  int num_steps = 0;
  for (const auto& r : steps) num_steps = std::max(num_steps, r.step + 1);
  // With too few steps to leave the warm-up out, measure them all.
  const int first = first_measured_step(warmup, num_steps);
  std::vector<int64_t> t0(static_cast<size_t>(num_steps), std::numeric_limits<int64_t>::max());
  std::vector<int64_t> t1(static_cast<size_t>(num_steps), std::numeric_limits<int64_t>::min());
  std::vector<double> busy(static_cast<size_t>(world), 0.0);
  for (const auto& r : steps) {
    auto i = static_cast<size_t>(r.step);
    t0[i] = std::min(t0[i], r.t_start_ns);
    t1[i] = std::max(t1[i], r.t_end_ns);
    if (r.step >= first) {
      s.tokens += r.tokens;
      busy[static_cast<size_t>(r.rank)] += static_cast<double>(r.compute_ns) * 1e-9;
    }
  }
  double flops = 0;
  for (int i = 0; i < num_steps; ++i) {
    const double dt =
        static_cast<double>(t1[static_cast<size_t>(i)] - t0[static_cast<size_t>(i)]) * 1e-9;
    s.step_seconds.push_back(dt);
    if (i >= first) {
      s.seconds += dt;
      s.steps_measured += 1;
      if (static_cast<size_t>(i) < step_flops.size()) flops += step_flops[static_cast<size_t>(i)];
    }
  }
  if (s.seconds > 0) {
    s.tokens_per_s = static_cast<double>(s.tokens) / s.seconds;
    s.tokens_per_s_per_rank = s.tokens_per_s / world;
    s.step_ms = s.seconds / s.steps_measured * 1e3;
    s.mfu = flops / (s.seconds * world * peak_tflops * 1e12);
    for (int r = 0; r < world; ++r) {
      const double u = busy[static_cast<size_t>(r)] / s.seconds;
      s.utilization_per_rank.push_back(u);
      s.idle_per_rank.push_back(1.0 - u);
      s.utilization += u / world;
    }
    s.idle_fraction = 1.0 - s.utilization;
  }
  return s;
}

namespace {

using namespace h5;

template <typename Row, typename F>
auto pluck(const std::vector<Row>& rows, F f) {
  std::vector<decltype(f(rows.front()))> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(f(r));
  return out;
}

void write_contents(hid_t file, RunFile& rf) {
  for (const auto& [k, v] : rf.string_attrs) attr_string(file, k, v);
  for (const auto& [k, v] : rf.int_attrs) attr_scalar(file, k, H5T_NATIVE_INT64, v);
  for (const auto& [k, v] : rf.float_attrs) attr_scalar(file, k, H5T_NATIVE_DOUBLE, v);

  auto& ev = rf.events;
  std::sort(ev.begin(), ev.end(), [](const Event& a, const Event& b) {
    return std::tie(a.rank, a.lane, a.t_start_ns, a.t_end_ns) <
           std::tie(b.rank, b.lane, b.t_start_ns, b.t_end_ns);
  });
  {
    H5Id g(H5Gcreate2(file, "events", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
           "H5Gcreate");
    std::vector<std::string> kinds(kEventKindNames.begin(), kEventKindNames.end());
    std::vector<std::string> lanes(kLaneNames.begin(), kLaneNames.end());
    attr_strings(g, "kind_names", kinds);
    attr_strings(g, "lane_names", lanes);
    column(g, "rank", H5T_NATIVE_INT32, pluck(ev, [](const Event& e) { return e.rank; }));
    column(g, "step", H5T_NATIVE_INT32, pluck(ev, [](const Event& e) { return e.step; }));
    column(g, "microbatch", H5T_NATIVE_INT32,
           pluck(ev, [](const Event& e) { return e.microbatch; }));
    column(g, "unit", H5T_NATIVE_INT32, pluck(ev, [](const Event& e) { return e.unit; }));
    column(g, "kind", H5T_NATIVE_INT8,
           pluck(ev, [](const Event& e) { return static_cast<int8_t>(e.kind); }));
    column(g, "lane", H5T_NATIVE_INT8, pluck(ev, [](const Event& e) { return e.lane; }));
    column(g, "t_start_ns", H5T_NATIVE_INT64,
           pluck(ev, [](const Event& e) { return e.t_start_ns; }));
    column(g, "t_end_ns", H5T_NATIVE_INT64, pluck(ev, [](const Event& e) { return e.t_end_ns; }));
    column(g, "bytes", H5T_NATIVE_INT64, pluck(ev, [](const Event& e) { return e.bytes; }));
    column(g, "tokens", H5T_NATIVE_INT64, pluck(ev, [](const Event& e) { return e.tokens; }));
    column(g, "flops", H5T_NATIVE_DOUBLE, pluck(ev, [](const Event& e) { return e.flops; }));
  }
  {
    const auto& sq = rf.sequences;
    H5Id g(H5Gcreate2(file, "workload", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
           "H5Gcreate");
    column(g, "step", H5T_NATIVE_INT32, pluck(sq, [](const SequenceRecord& r) { return r.step; }));
    column(g, "rank", H5T_NATIVE_INT32, pluck(sq, [](const SequenceRecord& r) { return r.rank; }));
    column(g, "microbatch", H5T_NATIVE_INT32,
           pluck(sq, [](const SequenceRecord& r) { return r.microbatch; }));
    column(g, "sequence", H5T_NATIVE_INT32,
           pluck(sq, [](const SequenceRecord& r) { return r.sequence; }));
    column(g, "length", H5T_NATIVE_INT64,
           pluck(sq, [](const SequenceRecord& r) { return r.length; }));
  }
  {
    auto& st = rf.steps;
    std::sort(st.begin(), st.end(), [](const StepRecord& a, const StepRecord& b) {
      return std::tie(a.step, a.rank) < std::tie(b.step, b.rank);
    });
    H5Id g(H5Gcreate2(file, "steps", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "H5Gcreate");
    column(g, "step", H5T_NATIVE_INT32, pluck(st, [](const StepRecord& r) { return r.step; }));
    column(g, "rank", H5T_NATIVE_INT32, pluck(st, [](const StepRecord& r) { return r.rank; }));
    column(g, "tokens", H5T_NATIVE_INT64, pluck(st, [](const StepRecord& r) { return r.tokens; }));
    column(g, "microbatches", H5T_NATIVE_INT32,
           pluck(st, [](const StepRecord& r) { return r.microbatches; }));
    column(g, "t_start_ns", H5T_NATIVE_INT64,
           pluck(st, [](const StepRecord& r) { return r.t_start_ns; }));
    column(g, "t_end_ns", H5T_NATIVE_INT64,
           pluck(st, [](const StepRecord& r) { return r.t_end_ns; }));
    column(g, "compute_ns", H5T_NATIVE_INT64,
           pluck(st, [](const StepRecord& r) { return r.compute_ns; }));
    column(g, "loss", H5T_NATIVE_DOUBLE, pluck(st, [](const StepRecord& r) { return r.loss; }));
  }
  {
    const RunSummary& s = rf.summary;
    H5Id g(H5Gcreate2(file, "summary", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
           "H5Gcreate");
    attr_scalar(g, "tokens_per_s", H5T_NATIVE_DOUBLE, s.tokens_per_s);
    attr_scalar(g, "tokens_per_s_per_rank", H5T_NATIVE_DOUBLE, s.tokens_per_s_per_rank);
    attr_scalar(g, "step_ms", H5T_NATIVE_DOUBLE, s.step_ms);
    attr_scalar(g, "utilization", H5T_NATIVE_DOUBLE, s.utilization);
    attr_scalar(g, "idle_fraction", H5T_NATIVE_DOUBLE, s.idle_fraction);
    attr_scalar(g, "exposed_communication_fraction", H5T_NATIVE_DOUBLE,
                s.exposed_communication_fraction);
    attr_scalar(g, "waiting_fraction", H5T_NATIVE_DOUBLE, s.waiting_fraction);
    attr_scalar(g, "traced_ranks", H5T_NATIVE_INT64, static_cast<int64_t>(s.traced_ranks));
    attr_scalar(g, "mfu", H5T_NATIVE_DOUBLE, s.mfu);
    attr_scalar(g, "steps_measured", H5T_NATIVE_INT64, static_cast<int64_t>(s.steps_measured));
    attr_scalar(g, "tokens", H5T_NATIVE_INT64, s.tokens);
    attr_scalar(g, "peak_memory_bytes", H5T_NATIVE_INT64, s.peak_memory_bytes);
    column(g, "utilization", H5T_NATIVE_DOUBLE, s.utilization_per_rank);
    column(g, "idle_fraction", H5T_NATIVE_DOUBLE, s.idle_per_rank);
    column(g, "peak_memory_bytes", H5T_NATIVE_INT64, s.peak_memory_per_rank);
  }
}

}  // namespace

void write_run_file(const std::string& path, RunFile& rf) {
  h5::write_atomically(path, [&](hid_t file) { write_contents(file, rf); });
}

void check_writable(const std::string& path, const std::string& key) {
  try {
    AtomicFile probe(path);  // the destructor removes the probe
  } catch (const std::runtime_error& e) {
    throw ConfigError(key, e.what());
  }
}

}  // namespace minipt
