#include "sim/calibrate.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>

#include "compute/backend.hpp"
#include "config/toml.hpp"
#include "core/error.hpp"
#include "core/input_file.hpp"
#include "core/warmup.hpp"
#include "sim/timeline_reader.hpp"
#include "step/program.hpp"
#include "trace/events.hpp"
#include "trace/h5.hpp"
#include "trace/provenance.hpp"

namespace minipt {

std::vector<double> fit_nonnegative(const std::vector<std::vector<double>>& x,
                                    const std::vector<double>& y) {
  const size_t k = x.empty() ? 0 : x.front().size();
  std::vector<bool> active(k, true);
  std::vector<double> beta(k, 0.0);
  // Columns scaled to unit maximum keep the normal equations well conditioned.
  std::vector<double> scale(k, 0.0);
  for (const auto& row : x)
    for (size_t j = 0; j < k; ++j) scale[j] = std::max(scale[j], std::abs(row[j]));
  for (size_t j = 0; j < k; ++j)
    if (scale[j] == 0) active[j] = false;
  for (size_t round = 0; round <= k; ++round) {
    std::vector<size_t> cols;
    for (size_t j = 0; j < k; ++j)
      if (active[j]) cols.push_back(j);
    const size_t m = cols.size();
    std::fill(beta.begin(), beta.end(), 0.0);
    if (m == 0) return beta;
    std::vector<std::vector<double>> a(m, std::vector<double>(m + 1, 0.0));
    for (size_t i = 0; i < x.size(); ++i)
      for (size_t p = 0; p < m; ++p) {
        const double xp = x[i][cols[p]] / scale[cols[p]];
        for (size_t q = 0; q < m; ++q) a[p][q] += xp * x[i][cols[q]] / scale[cols[q]];
        a[p][m] += xp * y[i];
      }
    // Gauss-Jordan with partial pivoting; a singular column is dropped.
    bool singular = false;
    for (size_t c = 0; c < m && !singular; ++c) {
      size_t piv = c;
      for (size_t r = c + 1; r < m; ++r)
        if (std::abs(a[r][c]) > std::abs(a[piv][c])) piv = r;
      if (std::abs(a[piv][c]) < 1e-12 * (1 + std::abs(a[c][c]))) {
        active[cols[c]] = false;
        singular = true;
        break;
      }
      std::swap(a[c], a[piv]);
      for (size_t r = 0; r < m; ++r) {
        if (r == c) continue;
        const double f = a[r][c] / a[c][c];
        for (size_t q = c; q <= m; ++q) a[r][q] -= f * a[c][q];
      }
    }
    if (singular) continue;
    bool negative = false;
    for (size_t p = 0; p < m; ++p) {
      beta[cols[p]] = a[p][m] / a[p][p] / scale[cols[p]];
      if (beta[cols[p]] < 0) negative = true;
    }
    if (!negative) return beta;
    // Drop the most negative term and refit.
    size_t worst = cols[0];
    for (size_t c : cols)
      if (beta[c] < beta[worst]) worst = c;
    active[worst] = false;
  }
  std::fill(beta.begin(), beta.end(), 0.0);
  return beta;
}

namespace {

// Read and checked by the one hardened timeline reader (sim/timeline_reader.hpp).
using Timeline = TimelineFile;

Timeline read_timeline(const std::string& path) { return read_timeline_file(path, "calibrate"); }

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto i = static_cast<size_t>(pos);
  const double frac = pos - static_cast<double>(i);
  return i + 1 < v.size() ? v[i] * (1 - frac) + v[i + 1] * frac : v[i];
}

struct LinkSamples {
  std::vector<std::pair<double, double>> points;  // (bytes crossing the link, seconds)
  std::string source;
};

// latency + bytes / bandwidth through the points (one point: the default latency).
LinkCost fit_link(const LinkSamples& s, CommOp op, LinkClass c) {
  LinkCost l = default_link(op, c);
  l.source = s.source;
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  for (const auto& [b, t] : s.points) {
    x.push_back({1.0, b});
    y.push_back(t);
  }
  std::set<double> sizes;
  for (const auto& p : s.points) sizes.insert(p.first);
  if (sizes.size() >= 2) {
    const auto beta = fit_nonnegative(x, y);
    if (beta[1] > 0) {
      l.latency_s = beta[0];
      l.bandwidth_Bps = 1.0 / beta[1];
      return l;
    }
  }
  // One size (or no slope): keep the default latency, the bandwidth through the mean.
  double bytes = 0, secs = 0;
  for (const auto& [b, t] : s.points) {
    bytes += b;
    secs += std::max(t - l.latency_s, 1e-9);
  }
  if (bytes > 0) l.bandwidth_Bps = bytes / secs;
  return l;
}

// Compute-time variation (issue 29): the decoder blocks of one microbatch on one rank run
// the same unit kind on the same tokens, so their modelled time is the same; the spread of
// each block's time around the median of its microbatch's blocks, pooled over ranks and
// steps, is the variation a cost model's per-unit fit cannot have. Appends, per pass, each
// block's time over that median (microbatches of at least 3 blocks).
void collect_variation(const Timeline& t, int first, std::array<std::vector<double>, 3>& ratios) {
  std::map<std::tuple<int, int, int, int>, std::vector<double>> groups;  // (step, rank, mb, pass)
  for (size_t i = 0; i < t.kind.size(); ++i) {
    const auto k = static_cast<EventKind>(t.kind[i]);
    if (t.step[i] < first || t.tokens[i] <= 0 || unit_kind(t.shape, t.unit[i]) != UnitKind::block)
      continue;
    if (k != EventKind::forward && k != EventKind::backward && k != EventKind::recompute) continue;
    const int pass = k == EventKind::forward ? 0 : k == EventKind::backward ? 1 : 2;
    groups[{t.step[i], t.rank[i], t.mb[i], pass}].push_back(static_cast<double>(t.t1[i] - t.t0[i]));
  }
  for (auto& [key, d] : groups) {
    if (d.size() < 3) continue;
    std::vector<double> sorted = d;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<long>(sorted.size() / 2),
                     sorted.end());
    const double median = sorted[sorted.size() / 2];
    if (median <= 0) continue;
    for (double x : d) ratios[static_cast<size_t>(std::get<3>(key))].push_back(x / median);
  }
}

// The coefficient of variation of the ratios: 1.4826 × the median absolute deviation from
// 1 (a normal's σ), robust to the few stalls of tens of percent a timeline has at fixed
// positions (the first block's forward), which are not rank-to-rank noise; `plain_sd`
// gets the ordinary standard deviation, for the log.
double robust_cv(const std::vector<double>& ratios, double* plain_sd) {
  std::vector<double> dev;
  double mean = 0, sq = 0;
  for (double x : ratios) {
    dev.push_back(std::abs(x - 1));
    mean += x / static_cast<double>(ratios.size());
  }
  for (double x : ratios) sq += (x - mean) * (x - mean);
  *plain_sd = ratios.size() > 1 ? std::sqrt(sq / static_cast<double>(ratios.size() - 1)) : 0;
  std::nth_element(dev.begin(), dev.begin() + static_cast<long>(dev.size() / 2), dev.end());
  return std::min(0.99, 1.4826 * dev[dev.size() / 2]);
}

// odc's fixed per-step work (issue 29): per rank-step of the measured steps, the time between
// the end of the last optimizer event and the start of the barrier after it (which publishes
// the new shards), covered by no event. Files without such a barrier (fsdp) add nothing.
std::map<std::pair<int, int>, double> odc_publish_gaps(const Timeline& t, int first) {
  std::map<std::pair<int, int>, double> opt_end;  // (rank, step) → last optimizer end, ns
  for (size_t i = 0; i < t.kind.size(); ++i)
    if (t.step[i] >= first && static_cast<EventKind>(t.kind[i]) == EventKind::optimizer) {
      double& e = opt_end[{t.rank[i], t.step[i]}];
      e = std::max(e, static_cast<double>(t.t1[i]));
    }
  std::map<std::pair<int, int>, double> gaps;
  for (size_t i = 0; i < t.kind.size(); ++i) {
    if (t.step[i] < first || static_cast<EventKind>(t.kind[i]) != EventKind::barrier) continue;
    auto it = opt_end.find({t.rank[i], t.step[i]});
    if (it == opt_end.end() || static_cast<double>(t.t0[i]) < it->second) continue;
    gaps[it->first] = (static_cast<double>(t.t0[i]) - it->second) * 1e-9;
  }
  return gaps;
}

std::string fmt(const char* f, double a, double b = 0, double c = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c);
  return buf;
}

// The links a run/bench/comm JSON measured, into m.comm (nlohmann::json::exception on a
// value of the wrong type; the caller names the file).
void read_comm_json(const nlohmann::json& j, const std::string& path, CostModel& m) {
  // The world size: "world" (files before the shared provenance) or provenance.world_size.
  int world = 0;
  if (j.contains("world") && j["world"].is_number_integer())
    world = j["world"].get<int>();
  else if (j.contains("provenance") && j["provenance"].contains("world_size"))
    world = j["provenance"]["world_size"].get<int>();
  if (!j.is_object() || !j.contains("rows") || !j["rows"].is_array() || world < 1 ||
      world > 1000000)
    throw ConfigError("--comm", path +
                                    ": not run/bench/comm output (needs \"rows\" and the world "
                                    "size in \"world\" or \"provenance.world_size\")");
  std::set<std::string> hosts;
  if (j.contains("ranks"))
    for (const auto& r : j["ranks"]) hosts.insert(r.value("host", ""));
  const LinkClass cls = world == 1          ? LinkClass::self
                        : hosts.size() <= 1 ? LinkClass::intra
                                            : LinkClass::inter;
  // The implementation minipt's runs use for each operation, in order of preference.
  const std::map<std::string, std::pair<CommOp, std::vector<std::string>>> pick = {
      {"allgather", {CommOp::allgather, {"minipt-nccl"}}},
      {"reduce_scatter", {CommOp::reduce_scatter, {"minipt-nccl"}}},
      {"odc_pull", {CommOp::get, {"ipc-bf16-mirror-kernel", "ipc-bf16-mirror", "ipc-kernel"}}},
      {"odc_push", {CommOp::accumulate, {"ipc-atomic"}}}};
  for (const auto& [name, what] : pick) {
    for (const std::string& impl : what.second) {
      LinkSamples s;
      s.source = path + " (" + name + " " + impl + ")";
      for (const auto& r : j["rows"]) {
        if (r.value("op", "") != name || r.value("impl", "") != impl) continue;
        const std::string dtype = r.value("dtype", "");
        if (what.first == CommOp::accumulate && dtype != "f32") continue;
        if (what.first == CommOp::get && dtype != "bf16") continue;
        const double bytes = r.value("bytes", 0.0);
        const double us = r.value("time_us", 0.0);
        if (!std::isfinite(bytes) || bytes < 0 || !std::isfinite(us) || us < 0)
          throw ConfigError("--comm", path + ": a " + name +
                                          " row has bytes or time_us that "
                                          "is not a finite number >= 0");
        s.points.push_back({world == 1 ? bytes : bytes * (world - 1) / world, us * 1e-6});
      }
      if (s.points.empty()) continue;
      m.comm[static_cast<size_t>(what.first)][static_cast<size_t>(cls)] =
          fit_link(s, what.first, cls);
      break;
    }
  }
}

}  // namespace

Calibration calibrate(const std::vector<std::string>& paths,
                      const std::vector<std::string>& comm_json,
                      const std::vector<std::string>& variation_paths) {
  Calibration out;
  CostModel& m = out.model;
  std::ostringstream log;
  std::vector<Timeline> files;
  for (const auto& p : paths) files.push_back(read_timeline(p));
  const ModelShape shape = files.front().shape;
  for (const Timeline& t : files) {
    const ModelShape& s = t.shape;
    if (s.hidden != shape.hidden || s.heads != shape.heads || s.kv_heads != shape.kv_heads ||
        s.ffn != shape.ffn || s.vocab != shape.vocab)
      throw ConfigError("calibrate", t.path + ": another model shape than " + files.front().path +
                                         " (calibrate one shape at a time)");
  }
  m.shape = shape;
  // The file serves any configuration at least as deep as its shallowest source.
  for (const Timeline& t : files) m.shape.layers = std::min(m.shape.layers, t.shape.layers);
  const BackendRow* row = compute_backends().find_any(files.front().backend);
  m.param_bytes = row ? row->param_bytes : 4;
  m.grad_bytes = 4;

  // Compute samples: [kind][pass] → rows (1, tokens, ΣL²), seconds.
  std::array<std::array<std::vector<std::vector<double>>, 3>, 3> xs;
  std::array<std::array<std::vector<double>, 3>, 3> ys;
  double sumsq_s = 0, sumsq_n = 0, adamw_s = 0, adamw_n = 0, acc_s = 0, acc_n = 0;
  std::vector<double> overhead_per_mb, odc_step;
  std::array<std::vector<double>, 3> variation;  // per pass: block time / its microbatch's median
  for (const auto& p : variation_paths) {
    const Timeline v = read_timeline(p);
    int steps = 0;
    for (int st : v.s_step) steps = std::max(steps, st + 1);
    collect_variation(v, first_measured_step(v.warmup, steps), variation);
  }
  std::map<std::pair<int, int>, LinkSamples> links;             // (op, class)
  std::map<std::pair<int, int>, std::vector<double>> sync_min;  // small ops: per-instance min
  for (const Timeline& t : files) {
    std::map<std::tuple<int, int, int>, double> sq;  // (step, rank, mb) → ΣL²
    for (size_t i = 0; i < t.w_len.size(); ++i)
      sq[{t.w_step[i], t.w_rank[i], t.w_mb[i]}] +=
          static_cast<double>(t.w_len[i]) * static_cast<double>(t.w_len[i]);
    int steps = 0;
    for (int s : t.s_step) steps = std::max(steps, s + 1);
    const int first = first_measured_step(t.warmup, steps);
    const ShardLayout layout(t.shape, t.world, t.scale);
    const LinkClass cls =
        t.world == 1 ? LinkClass::self : (t.one_host ? LinkClass::intra : LinkClass::inter);
    std::map<std::pair<int, int>, int> opt_seen;    // (rank, step) → optimizer events
    std::map<std::pair<int, int>, double> covered;  // (rank, step) → compute-lane seconds
    std::map<std::pair<int, int64_t>, std::vector<double>> comm;  // (op, bytes) → seconds
    std::map<std::tuple<int, int, int>, double> sync;     // (op, step, instance) → min seconds
    std::map<std::tuple<int, int, int>, int> sync_count;  // (op, rank, step) → instances
    for (size_t i = 0; i < t.kind.size(); ++i) {
      if (t.step[i] < first) continue;
      const auto k = static_cast<EventKind>(t.kind[i]);
      const double d = static_cast<double>(t.t1[i] - t.t0[i]) * 1e-9;
      if (t.kind[i] >= 0 && t.kind[i] < static_cast<int8_t>(kEventKindNames.size()) &&
          k != EventKind::gather && k != EventKind::reduce_scatter && k != EventKind::get &&
          k != EventKind::accumulate)
        covered[{t.rank[i], t.step[i]}] += d;
      switch (k) {
        case EventKind::forward:
        case EventKind::backward:
        case EventKind::recompute: {
          const int pass = k == EventKind::forward ? 0 : k == EventKind::backward ? 1 : 2;
          const auto kind = static_cast<size_t>(unit_kind(t.shape, t.unit[i]));
          xs[kind][static_cast<size_t>(pass)].push_back(
              {1.0, static_cast<double>(t.tokens[i]), sq[{t.step[i], t.rank[i], t.mb[i]}]});
          ys[kind][static_cast<size_t>(pass)].push_back(d);
          break;
        }
        case EventKind::optimizer: {
          // The step program names the optimizer's sub-phases (grad_norm, adamw).
          const step::OpKind phase = step::tail_op_recording(k, opt_seen[{t.rank[i], t.step[i]}]++);
          const double elems = static_cast<double>(layout.shard_total()) / t.scale;
          if (phase == step::OpKind::grad_norm) {
            sumsq_s += d;
            sumsq_n += elems;
          } else if (phase == step::OpKind::adamw) {
            adamw_s += d;
            adamw_n += elems;
          }
          break;
        }
        case EventKind::accumulate_grad:
          acc_s += d;
          acc_n += static_cast<double>(layout.unit(t.unit[i]).shard) / t.scale;
          break;
        case EventKind::gather:
        case EventKind::reduce_scatter:
        case EventKind::get:
        case EventKind::accumulate: {
          const CommOp op = k == EventKind::gather           ? CommOp::allgather
                            : k == EventKind::reduce_scatter ? CommOp::reduce_scatter
                            : k == EventKind::get            ? CommOp::get
                                                             : CommOp::accumulate;
          comm[{static_cast<int>(op), t.bytes[i]}].push_back(d);
          break;
        }
        case EventKind::barrier:
        case EventKind::allreduce: {
          const int op =
              static_cast<int>(k == EventKind::barrier ? CommOp::barrier : CommOp::allreduce);
          const int inst = sync_count[{op, t.rank[i], t.step[i]}]++;
          auto key = std::make_tuple(op, t.step[i], inst);
          auto it = sync.find(key);
          sync[key] = it == sync.end() ? d : std::min(it->second, d);
          break;
        }
        default:
          break;
      }
    }
    const auto publish = odc_publish_gaps(t, first);
    for (const auto& [key, g] : publish) odc_step.push_back(g);
    if (variation_paths.empty()) collect_variation(t, first, variation);
    for (size_t i = 0; i < t.s_step.size(); ++i) {
      if (t.s_step[i] < first || t.s_mbs[i] <= 0) continue;
      const double span = static_cast<double>(t.s_t1[i] - t.s_t0[i]) * 1e-9;
      // odc's publish gap is a per-step cost of its own (odc_step_s), not per microbatch.
      const auto pub = publish.find({t.s_rank[i], t.s_step[i]});
      const double gap =
          span - covered[{t.s_rank[i], t.s_step[i]}] - (pub == publish.end() ? 0.0 : pub->second);
      overhead_per_mb.push_back(std::max(0.0, gap) / t.s_mbs[i]);
    }
    for (const auto& [key, ds] : comm) {
      const double bytes = static_cast<double>(key.second);
      const double crossing = t.world == 1 ? bytes : bytes * (t.world - 1) / t.world;
      auto& s = links[{key.first, static_cast<int>(cls)}];
      s.points.push_back({crossing, quantile(ds, 0.1)});
      if (s.source.find(t.path) == std::string::npos)
        s.source = s.source.empty() ? t.path : s.source + ";" + t.path;
    }
    const double hops = t.world == 1 ? 1.0 : 2.0 * std::ceil(std::log2(t.world));
    for (const auto& [key, d] : sync)
      sync_min[{std::get<0>(key), static_cast<int>(cls)}].push_back(d / hops);
  }

  // Compute fits.
  for (size_t k = 0; k < 3; ++k)
    for (size_t p = 0; p < 3; ++p) {
      const auto& x = xs[k][p];
      const auto& y = ys[k][p];
      if (x.empty()) continue;
      const auto beta = fit_nonnegative(x, y);
      TimeFit& f = m.unit[k][p];
      f = {beta[0], beta[1], beta[2], true};
      double mean = 0;
      for (double v : y) mean += v / static_cast<double>(y.size());
      double ss_res = 0, ss_tot = 0, worst = 0;
      for (size_t i = 0; i < y.size(); ++i) {
        const double pred = f.a + f.b * x[i][1] + f.c * x[i][2];
        ss_res += (y[i] - pred) * (y[i] - pred);
        ss_tot += (y[i] - mean) * (y[i] - mean);
        if (y[i] > 0) worst = std::max(worst, std::abs(y[i] - pred) / y[i]);
      }
      FitReport r{ss_tot > 0 ? 1 - ss_res / ss_tot : 1.0, worst, static_cast<int>(y.size())};
      const std::string name = std::string(kUnitKindNames[k]) + "." + kPassNames[p];
      out.reports[name] = r;
      log << "  " << name << fmt(": a %.4g s, b %.4g s/token, c %.4g s/token^2", f.a, f.b, f.c)
          << fmt(" | R^2 %.4f, worst residual %.1f%%, %.0f samples\n", r.r2, 100 * r.worst_residual,
                 r.samples);
    }
  for (size_t k = 0; k < 3; ++k)
    for (size_t p = 0; p < 2; ++p)
      if (!m.unit[k][p].present)
        throw ConfigError("calibrate", std::string("no ") + kUnitKindNames[k] + " " +
                                           kPassNames[p] +
                                           " events in the measured steps of the timelines "
                                           "(run with run.trace = true)");
  m.sum_squares_s_per_element = sumsq_n > 0 ? sumsq_s / sumsq_n : 0;
  m.adamw_s_per_element = adamw_n > 0 ? adamw_s / adamw_n : 0;
  m.accumulate_grad_s_per_element = acc_n > 0 ? acc_s / acc_n : 0;
  m.microbatch_overhead_s = overhead_per_mb.empty() ? 0 : quantile(overhead_per_mb, 0.5);
  m.odc_step_s = odc_step.empty() ? 0 : quantile(odc_step, 0.5);
  for (size_t p = 0; p < 3; ++p) {
    TimeFit& f = m.unit[static_cast<size_t>(UnitKind::block)][p];
    if (variation[p].size() < 10 || !f.present) continue;
    double sd = 0;
    f.cv = robust_cv(variation[p], &sd);
    log << "  block." << kPassNames[p]
        << fmt(" variation: cv %.4f (robust; standard deviation %.4f) over %.0f blocks\n", f.cv, sd,
               static_cast<double>(variation[p].size()));
  }
  if (!odc_step.empty())
    log << fmt("  odc per-step work before its publishing barrier: %.3f ms (median of %.0f)\n",
               m.odc_step_s * 1e3, static_cast<double>(odc_step.size()));
  log << fmt("  optimizer: %.4g s/element (norm) + %.4g s/element (AdamW); accumulate_grad %.4g "
             "s/element\n",
             m.sum_squares_s_per_element, m.adamw_s_per_element, m.accumulate_grad_s_per_element)
      << fmt("  untimed work per microbatch: %.3f ms (median over rank-steps)\n",
             m.microbatch_overhead_s * 1e3);

  // Links: defaults, then timeline fits, then comm-bench fits.
  for (size_t op = 0; op < 6; ++op)
    for (size_t c = 0; c < 3; ++c)
      m.comm[op][c] = default_link(static_cast<CommOp>(op), static_cast<LinkClass>(c));
  for (const auto& [key, s] : links) {
    const auto op = static_cast<CommOp>(key.first);
    const auto c = static_cast<LinkClass>(key.second);
    m.comm[static_cast<size_t>(op)][static_cast<size_t>(c)] = fit_link(s, op, c);
  }
  for (const auto& [key, v] : sync_min) {
    LinkCost& l = m.comm[static_cast<size_t>(key.first)][static_cast<size_t>(key.second)];
    l.latency_s = quantile(v, 0.5);
    l.source = "timelines";
  }
  for (const std::string& path : comm_json) {
    // A regular file of at most 16 MiB (read_input_file); any JSON error, of syntax or of a
    // value's type, is an error naming the file.
    const std::string text = read_input_file(path, "--comm", "comm bench JSON");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
      throw ConfigError("--comm", path + ": not JSON (" + std::string(e.what()) + ")");
    }
    try {
      read_comm_json(j, path, m);
    } catch (const nlohmann::json::exception& e) {
      throw ConfigError("--comm", path +
                                      ": not run/bench/comm output (a value of the wrong "
                                      "type: " +
                                      std::string(e.what()) + ")");
    }
  }
  for (size_t c = 0; c < 3; ++c)
    for (size_t op = 0; op < 4; ++op) {
      const LinkCost& l = m.comm[op][c];
      if (l.source.rfind("default", 0) == 0) continue;
      log << "  " << kLinkClassNames[c] << " " << kCommOpNames[op]
          << fmt(": latency %.1f us, bandwidth %.1f GB/s", l.latency_s * 1e6,
                 l.bandwidth_Bps * 1e-9)
          << "  (" << l.source << ")\n";
    }

  std::string sources;
  for (const auto& p : paths) sources += (sources.empty() ? "" : ";") + p;
  for (const auto& p : comm_json) sources += ";" + p;
  for (const auto& p : variation_paths) sources += ";variation:" + p;
  m.provenance = {{"device", files.front().device},
                  {"backend", files.front().backend},
                  {"sources", sources},
                  {"created_utc", utc_now()},
                  {"minipt_version", MINIPT_VERSION},
                  {"git_revision", source_revision()}};
  out.log = log.str();
  return out;
}

}  // namespace minipt
