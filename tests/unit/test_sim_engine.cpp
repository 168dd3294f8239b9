// The discrete-event core of `minipt simulate` (sim/engine.hpp), the non-negative fit of
// `minipt calibrate` and the cost-model file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

#include "config/cost_file.hpp"
#include "core/error.hpp"
#include "sim/calibrate.hpp"
#include "sim/engine.hpp"
#include "test_files.hpp"

namespace minipt {
namespace {

using sim::Engine;
using sim::Link;
using sim::Signal;
using sim::Task;

// A program that waits `delay`, then for a transfer over `parts`, and notes when it is done.
Task program(Engine& e, double delay, std::vector<Engine::PartSpec> parts, double latency,
             Signal& done, double& finished) {
  co_await e.delay(delay);
  e.transfer(latency, parts, &done);
  co_await done;
  finished = e.now();
}

TEST(SimEngine, OneTransferTakesLatencyPlusWork) {
  Engine e;
  Link l;
  Signal s;
  double t = -1;
  std::vector<Task> p;
  p.push_back(program(e, 1.0, {{&l, 2.0}}, 0.5, s, t));
  e.run(p);
  EXPECT_DOUBLE_EQ(t, 3.5);
}

TEST(SimEngine, TwoTransfersShareALinkFairly) {
  // Both start at 0 with work 1 and 3: together at half speed until the first is done
  // (t = 2), then the second alone: 2 + (3 − 1) = 4.
  Engine e;
  Link l;
  Signal a, b;
  double ta = -1, tb = -1;
  std::vector<Task> p;
  p.push_back(program(e, 0.0, {{&l, 1.0}}, 0.0, a, ta));
  p.push_back(program(e, 0.0, {{&l, 3.0}}, 0.0, b, tb));
  e.run(p);
  EXPECT_NEAR(ta, 2.0, 1e-9);
  EXPECT_NEAR(tb, 4.0, 1e-9);
}

TEST(SimEngine, APoolServesUpToItsCapacityAtFullSpeed) {
  // Capacity 2: two parts run at full speed, a third makes each 2/3.
  Engine e;
  Link pool(2.0);
  Signal s[3];
  double t[3] = {-1, -1, -1};
  std::vector<Task> p;
  for (int i = 0; i < 2; ++i) p.push_back(program(e, 0.0, {{&pool, 1.0}}, 0.0, s[i], t[i]));
  e.run(p);
  EXPECT_NEAR(t[0], 1.0, 1e-9);
  EXPECT_NEAR(t[1], 1.0, 1e-9);
  Engine e2;
  Link pool2(2.0);
  Signal s2[3];
  std::vector<Task> q;
  for (int i = 0; i < 3; ++i) q.push_back(program(e2, 0.0, {{&pool2, 1.0}}, 0.0, s2[i], t[i]));
  e2.run(q);
  for (double x : t) EXPECT_NEAR(x, 1.5, 1e-9);
}

TEST(SimEngine, ATransferEndsWithItsSlowestPart) {
  Engine e;
  Link a, b;
  Signal s;
  double t = -1;
  std::vector<Task> p;
  p.push_back(program(e, 0.0, {{&a, 1.0}, {&b, 4.0}}, 0.0, s, t));
  e.run(p);
  EXPECT_NEAR(t, 4.0, 1e-9);
}

Task waiter(Signal& s, double& when, Engine& e) {
  co_await s;
  when = e.now();
}

TEST(SimEngine, AWaitThatNeverEndsIsReportedAsADeadlock) {
  Engine e;
  Signal never;
  double t = -1;
  std::vector<Task> p;
  p.push_back(waiter(never, t, e));
  EXPECT_THROW(e.run(p), std::logic_error);
}

// Issue 31: at large times now + left/rate rounds to now; the engine must still end
// every part (it used to reschedule the same completion for ever).
TEST(SimEngine, TransfersEndAtLargeTimesWhereTheClockRoundsAwayTheirWork) {
  for (const double start : {1e6, 3e8, 8e9}) {
    Engine e;
    Link l;
    Signal a, b, c;
    double ta = -1, tb = -1, tc = -1;
    std::vector<Task> p;
    // Work far below the clock's resolution at `start`, shared by three parts.
    p.push_back(program(e, start, {{&l, 1e-9}}, 0.0, a, ta));
    p.push_back(program(e, start, {{&l, 3e-9}}, 1e-12, b, tb));
    p.push_back(program(e, start, {{&l, 2.5}}, 0.0, c, tc));
    e.run(p);
    EXPECT_GE(ta, start);
    EXPECT_GE(tb, ta);
    EXPECT_NEAR(tc, start + 2.5, 1e-6 * start);
  }
}

// Many transfers in a row on one link: its virtual clock restarts when it empties, so a
// small transfer after a long history still takes its own time.
Task many(Engine& e, Link& l, int n, double work, double& finished) {
  for (int i = 0; i < n; ++i) {
    Signal s;
    e.transfer(0.0, {{&l, work}}, &s);
    co_await s;
  }
  finished = e.now();
}

TEST(SimEngine, ALinksHistoryDoesNotBlurItsNextTransfer) {
  Engine e;
  Link l;
  double t = -1, u = -1;
  std::vector<Task> p;
  p.push_back(many(e, l, 1000, 1e6, t));
  e.run(p);
  EXPECT_DOUBLE_EQ(t, 1e9);
  Signal s;
  std::vector<Task> q;
  q.push_back(program(e, 0.0, {{&l, 1e-6}}, 0.0, s, u));
  e.run(q);
  EXPECT_NEAR(u - 1e9, 1e-6, 2.5e-7);  // the clock's own resolution at 1e9 s: 1.2e-7
}

TEST(SimEngine, TimesThatAreNotFiniteOrBeyondTheTimelineAreErrors) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (const double delay : {nan, inf, 2 * sim::kMaxTime}) {
    Engine e;
    Link l;
    Signal s;
    double t = -1;
    std::vector<Task> p;
    p.push_back(program(e, delay, {{&l, 1.0}}, 0.0, s, t));
    EXPECT_THROW(e.run(p), sim::TimeRangeError) << delay;
  }
  for (const double work : {inf, 1e300, sim::kMaxTime}) {
    Engine e;
    Link l;
    Signal s, s2;
    double t = -1, t2 = -1;
    std::vector<Task> p;
    p.push_back(program(e, 1.0, {{&l, work}}, 0.0, s, t));
    p.push_back(program(e, 0.0, {{&l, 1.0}}, 0.0, s2, t2));
    EXPECT_THROW(e.run(p), sim::TimeRangeError) << work;
  }
}

TEST(Calibrate, FitRecoversCoefficientsAndDropsNegativeTerms) {
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  for (int i = 1; i <= 20; ++i) {
    const double tokens = 1000.0 * i, sq = 1e6 * i * i;
    x.push_back({1.0, tokens, sq});
    y.push_back(0.002 + 3e-7 * tokens + 5e-12 * sq);
  }
  auto b = fit_nonnegative(x, y);
  EXPECT_NEAR(b[0], 0.002, 1e-9);
  EXPECT_NEAR(b[1], 3e-7, 1e-12);
  EXPECT_NEAR(b[2], 5e-12, 1e-16);
  // A line through the origin with a negative intercept: the intercept is dropped.
  std::vector<std::vector<double>> x2;
  std::vector<double> y2;
  for (int i = 1; i <= 10; ++i) {
    x2.push_back({1.0, static_cast<double>(i)});
    y2.push_back(2.0 * i - 0.5);
  }
  b = fit_nonnegative(x2, y2);
  EXPECT_EQ(b[0], 0.0);
  EXPECT_GT(b[1], 1.9);
}

TEST(CostFile, RoundTripsAndRejectsBadTerms) {
  ModelShape shape;
  CostModel m = flops_cost_model(shape, 100.0, 2, 4);
  m.adamw_s_per_element = 1e-11;
  m.unit[1][1].a = 0.001;
  m.provenance["device"] = "test \"device\"";
  const std::string path = test::write_scratch("cost.toml", format_cost_model(m, {}));
  const CostModel r = read_cost_model(path, "--cost");
  EXPECT_EQ(r.shape.hidden, shape.hidden);
  EXPECT_DOUBLE_EQ(r.adamw_s_per_element, 1e-11);
  EXPECT_EQ(r.provenance.at("device"), "test \"device\"");
  for (int u : {0, 1, shape.layers + 1})
    for (int p = 0; p < 3; ++p)
      EXPECT_NEAR(r.unit_time(u, p, 1000, 1e6), m.unit_time(u, p, 1000, 1e6),
                  1e-8 * (1 + m.unit_time(u, p, 1000, 1e6)));
  EXPECT_DOUBLE_EQ(r.link(CommOp::allgather, LinkClass::intra).bandwidth_Bps,
                   m.link(CommOp::allgather, LinkClass::intra).bandwidth_Bps);

  auto expect_error = [&](const std::string& text, const std::string& needle) {
    const std::string p = test::write_scratch("bad.toml", text);
    try {
      read_cost_model(p, "--cost");
      ADD_FAILURE() << "accepted: " << needle;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("--cost"), std::string::npos) << e.what();
    }
  };
  std::string text = format_cost_model(m, {});
  const auto at = text.find("[compute.block.backward]\na = ");
  ASSERT_NE(at, std::string::npos);
  std::string missing = text;
  missing.erase(at + 25, missing.find('\n', at + 25) - at - 25 + 1);
  expect_error(missing, "compute.block.backward.a is missing");
  std::string negative = text;
  negative.insert(at + 29, "-");
  expect_error(negative, "compute.block.backward.a must be a finite number >= 0");
  expect_error(text + "\n[extra]\nkey = 1\n", "extra.key is not a cost-model key");
  // Issue 31: documented bounds, checked at load, naming the key and the bound.
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string t2 = text;
    const auto i = t2.find(from);
    EXPECT_NE(i, std::string::npos) << from;
    return t2.replace(i, from.size(), to);
  };
  expect_error(replaced("param_bytes = 2", "param_bytes = 2.5"),
               "model.param_bytes must be 2 or 4 (bytes per element; got 2.5)");
  expect_error(replaced("grad_bytes = 4", "grad_bytes = \"4\""), "model.grad_bytes must be 2 or 4");
  const std::string a_at = text.substr(at, text.find('\n', at + 25) - at);
  expect_error(replaced(a_at, "[compute.block.backward]\na = 3000.0"),
               "compute.block.backward.a is 3000, beyond its bound (allowed: 0..1000");
  expect_error(replaced("microbatch_overhead_s = 0.0", "microbatch_overhead_s = 8.67e+05"),
               "compute.microbatch_overhead_s is 867000, beyond its bound");
  const auto bw = text.find("bandwidth_GBps = ", text.find("[comm.inter.allgather]"));
  std::string slow = text;
  slow.replace(bw, slow.find('\n', bw) - bw, "bandwidth_GBps = 1e-20");
  expect_error(slow,
               "comm.inter.allgather.bandwidth_GBps is 1e-20, below its bound (allowed: "
               "1e-06..1000000)");
  const auto lat = text.find("latency_s = ", text.find("[comm.intra.barrier]"));
  std::string late = text;
  late.replace(lat, late.find('\n', lat) - lat, "latency_s = 5");
  expect_error(late, "comm.intra.barrier.latency_s is 5, beyond its bound (allowed: 0..1;");
  ModelShape other = shape;
  other.layers = 3 * shape.layers;  // per-unit costs serve any deeper model
  EXPECT_NO_THROW(check_cost_model_shape(r, other, "--cost"));
  other.layers = shape.layers - 1;  // not a shallower one
  try {
    check_cost_model_shape(r, other, "--cost");
    ADD_FAILURE() << "accepted a file deeper than the configuration";
  } catch (const ConfigError& e) {
    for (const char* needle : {"--cost", "model.layers", "at most 1"})
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
  other.layers = shape.layers;
  other.ffn = 3 * shape.ffn;
  EXPECT_THROW(check_cost_model_shape(r, other, "--cost"), ConfigError);
}

TEST(CostFile, VariationAndOdcStepRoundTripAndAVariationAboveTheMeanIsRejected) {
  ModelShape shape;
  CostModel m = flops_cost_model(shape, 100.0, 2, 4);
  m.unit[static_cast<size_t>(UnitKind::block)][1].cv = 0.02;
  m.odc_step_s = 0.001;
  const std::string text = format_cost_model(m, {});
  const CostModel r = parse_cost_model(text, "c.toml", "--cost");
  EXPECT_DOUBLE_EQ(r.unit[static_cast<size_t>(UnitKind::block)][1].cv, 0.02);
  EXPECT_DOUBLE_EQ(r.unit[static_cast<size_t>(UnitKind::block)][0].cv, 0.0);
  EXPECT_DOUBLE_EQ(r.odc_step_s, 0.001);
  const auto at = text.find("cv = 0.02");
  ASSERT_NE(at, std::string::npos);
  for (const char* bad : {"1.0", "3.5", "-0.1"}) {
    std::string t = text;
    t.replace(at, 9, std::string("cv = ") + bad);
    try {
      parse_cost_model(t, "c.toml", "--cost");
      ADD_FAILURE() << "accepted cv = " << bad;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("compute.block.backward.cv"), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("--cost"), std::string::npos) << e.what();
    }
  }
}

// The drawn factor: the same key the same factor, 1 without a seed or a spread, and over
// many keys a mean of 1 and the coefficient of variation asked for.
TEST(TimeVariation, IsDeterministicWithMeanOneAndTheGivenSpread) {
  EXPECT_EQ(time_variation({0, 1, 2, 3, 4, 0}, 0.5), 1.0);
  EXPECT_EQ(time_variation({7, 1, 2, 3, 4, 0}, 0.0), 1.0);
  EXPECT_EQ(time_variation({7, 1, 2, 3, 4, 0}, 0.3), time_variation({7, 1, 2, 3, 4, 0}, 0.3));
  EXPECT_NE(time_variation({7, 1, 2, 3, 4, 0}, 0.3), time_variation({8, 1, 2, 3, 4, 0}, 0.3));
  EXPECT_NE(time_variation({7, 1, 2, 3, 4, 0}, 0.3), time_variation({7, 1, 2, 3, 5, 0}, 0.3));
  for (double cv : {0.02, 0.3}) {
    double sum = 0, sq = 0, lo = 1e9;
    const int n = 200000;
    for (int i = 0; i < n; ++i) {
      const double x = time_variation({42, i / 1000, i % 7, (i / 7) % 11, i % 1000, i % 3}, cv);
      sum += x;
      sq += x * x;
      lo = std::min(lo, x);
    }
    const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
    EXPECT_NEAR(mean, 1.0, 4 * cv / std::sqrt(n) + 1e-4) << cv;
    EXPECT_NEAR(sd / mean, cv, 0.03 * cv) << cv;
    EXPECT_GT(lo, 0.0);
  }
}

// A file calibrated on 4 decoder layers, adopted by a 48-layer configuration: unit 5 is a
// block and unit 49 the head (the file's shape would make unit 5 the head).
TEST(CostFile, AdoptedShapeClassifiesUnitsWithTheConfigurationsLayers) {
  ModelShape four;
  four.layers = 4;
  CostModel m = flops_cost_model(four, 100.0, 2, 4);
  m.unit[static_cast<size_t>(UnitKind::block)][0] = {0, 1e-6, 0, true};
  m.unit[static_cast<size_t>(UnitKind::head)][0] = {0, 5e-6, 0, true};
  ModelShape deep = four;
  deep.layers = 48;
  adopt_cost_model_shape(m, deep, "--cost");
  EXPECT_EQ(m.shape.layers, 48);
  EXPECT_EQ(m.provenance.at("calibrated_layers"), "4");
  for (int u = 1; u <= 48; ++u) EXPECT_DOUBLE_EQ(m.unit_time(u, 0, 1000, 0), 1e-3) << u;
  EXPECT_DOUBLE_EQ(m.unit_time(49, 0, 1000, 0), 5e-3);
}

}  // namespace
}  // namespace minipt
