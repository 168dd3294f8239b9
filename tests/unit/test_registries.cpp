// The variant tables (config/registry.hpp, compute/backend.hpp, comm/transports.hpp):
// --help's choices are their names, unknown or unbuilt names are ConfigErrors listing
// what is built, `auto` follows priorities and needs, and a transport registered from
// this file alone (one row) is usable by odc.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "comm/mpi_transports.hpp"
#include "comm/transports.hpp"
#include "compute/backend.hpp"
#include "config/config.hpp"
#include "core/error.hpp"
#include "core/registry.hpp"
#include "trace/recorder.hpp"
#include "train/strategy.hpp"
#include "workload/balancers.hpp"
#include "workload/distributions.hpp"

namespace minipt {
namespace {

// ---- A throwaway one-sided transport: its own class and one registry row. ----

// One rank, host memory: get and accumulate are copies into / out of the rank's own
// regions. Requests complete at once.
class LoopbackOneSided final : public OneSided {
 public:
  std::string name() const override { return "loopback"; }
  void expose(float* params, float* grads, int64_t count) override {
    params_ = params;
    grads_ = grads;
    count_ = count;
  }
  Request get(int owner, int64_t offset, int64_t n, void* dst, DType dst_dtype) override {
    check(owner, offset, n, dst_dtype);
    std::memcpy(dst, params_ + offset, static_cast<size_t>(n) * sizeof(float));
    return ++issued_;
  }
  Request accumulate(int owner, int64_t offset, int64_t n, const void* src,
                     DType src_dtype) override {
    check(owner, offset, n, src_dtype);
    const auto* s = static_cast<const float*>(src);
    for (int64_t i = 0; i < n; ++i) grads_[offset + i] += s[i];
    return ++issued_;
  }
  void wait(Request) override {}
  void flush() override {}

  int64_t issued() const { return issued_; }

 private:
  void check(int owner, int64_t offset, int64_t n, DType dtype) const {
    if (owner != 0 || offset < 0 || offset + n > count_ || dtype != DType::f32)
      throw std::invalid_argument("loopback: one rank, fp32, inside the regions only");
  }
  float* params_ = nullptr;
  float* grads_ = nullptr;
  int64_t count_ = 0;
  int64_t issued_ = 0;
};

LoopbackOneSided* g_last_loopback = nullptr;

// The one row. Priority 0: `auto` never picks it.
const bool kLoopbackRegistered = [] {
  onesided_transports().add({.name = "loopback",
                             .description = "test only: one rank's own host memory",
                             .needs = {.single_node = true},
                             .priority = 0,
                             .factory = [](const OneSidedArgs&) {
                               auto t = std::make_unique<LoopbackOneSided>();
                               g_last_loopback = t.get();
                               return OneSidedSetup{std::move(t), 0};
                             }});
  return true;
}();

// ---- A throwaway balancing scheme and length distribution: one row each. ----

// Every sequence on the last rank, one microbatch each (odc only: ranks' counts differ).
const bool kLastRankRegistered = [] {
  balancers().add({.name = "last_rank",
                   .description = "test only: the last rank runs everything",
                   .odc_only = true,
                   .factory = [](const StepItems& items, int world, const BalanceOptions&) {
                     std::vector<std::vector<Microbatch>> out(static_cast<size_t>(world));
                     for (size_t s = 0; s < items.lengths.size(); ++s)
                       out.back().push_back(make_microbatch({static_cast<int>(s)}, items));
                     return out;
                   }});
  return true;
}();

// workload.min and workload.max, alternately.
const bool kEndsRegistered = [] {
  length_distributions().add({.name = "ends",
                              .description = "test only: workload.min and workload.max alternately",
                              .check = [](const WorkloadSpec&) {},
                              .longest =
                                  [](const WorkloadSpec& s) {
                                    return LongestLength{s.max, "workload.max"};
                                  },
                              .factory = [](const WorkloadSpec& s) -> LengthSampler {
                                return [lo = s.min, hi = s.max,
                                        n = std::make_shared<int>(0)](Xoshiro256&) {
                                  return static_cast<double>((*n)++ % 2 == 0 ? lo : hi);
                                };
                              }});
  return true;
}();

// ---- Tests ----

std::string allowed_in_help(const std::string& key) {
  for (const auto& k : config_keys())
    if (k.key == key) return k.allowed;
  ADD_FAILURE() << key << " is not in config_keys()";
  return {};
}

std::string joined(const std::vector<std::string>& v) { return Registry<BackendRow>::join(v); }

TEST(Registries, HelpChoicesAreTheTablesNames) {
  EXPECT_TRUE(kLoopbackRegistered);
  EXPECT_EQ(allowed_in_help("compute.backend"), joined(compute_backends().names()));
  EXPECT_EQ(allowed_in_help("comm.collectives"), "auto|" + joined(collective_transports().names()));
  EXPECT_EQ(allowed_in_help("comm.onesided"), "auto|" + joined(onesided_transports().names()));
  EXPECT_TRUE(kLastRankRegistered && kEndsRegistered);
  EXPECT_EQ(allowed_in_help("balance.scheme"), joined(balancers().names()));
  EXPECT_EQ(allowed_in_help("workload.distribution"), joined(length_distributions().names()));
  EXPECT_EQ(joined(balancers().names()),
            "none|micro|mini|localsort|arrival|localsort-packed|last_rank");
  EXPECT_EQ(joined(length_distributions().names()),
            "constant|uniform|lognormal|pareto|bimodal|histogram|ends");
  // Every variant of the project is named in every build (README's key table).
  EXPECT_EQ(joined(compute_backends().names()), "emulated|kokkos|cuda");
  EXPECT_EQ(joined(collective_transports().names()), "mpi|nccl");
  EXPECT_EQ(joined(onesided_transports().names()), "mpi|ipc|staged|ipc+staged|loopback");
}

TEST(Registries, BuiltRowsHaveFactories) {
  const auto built = compute_backends().built_names();
  EXPECT_EQ(built, available_backends());
  EXPECT_EQ(built.front(), "emulated");
  for (const auto& r : compute_backends().rows()) {
    const bool have = std::find(built.begin(), built.end(), r.name) != built.end();
    EXPECT_EQ(have, static_cast<bool>(r.factory)) << r.name;
  }
#ifndef MINIPT_HAVE_CUDA
  EXPECT_EQ(collective_transports().find("nccl"), nullptr);
  EXPECT_NE(collective_transports().find_any("nccl"), nullptr);
  EXPECT_TRUE(collective_transports().find_any("nccl")->needs.cuda_build);
#endif
}

void expect_config_error(const std::function<void()>& f, const std::string& key,
                         const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected a ConfigError on " << key;
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), key);
    const std::string what = e.what();
    for (const auto& p : parts) EXPECT_NE(what.find(p), std::string::npos) << what;
  }
}

TEST(Registries, UnknownNamesListWhatIsBuilt) {
  const std::string built = "(allowed: " + joined(onesided_transports().built_names()) + ")";
  expect_config_error([] { onesided_transports().at("rdma", "comm.onesided"); }, "comm.onesided",
                      {"'rdma' is not available in this build", built});
  expect_config_error([] { collective_transports().at("gloo", "comm.collectives"); },
                      "comm.collectives", {"'gloo'", "not available in this build", "mpi"});
  expect_config_error(
      [] {
        ComputeOptions opt;
        opt.backend = "tpu";
        make_backend(opt, ModelShape{}, 0, 0);
      },
      "compute.backend",
      {"'tpu' is not available in this build",
       "(allowed: " + joined(compute_backends().built_names()) + ")"});
  EXPECT_EQ(onesided_transports().find("rdma"), nullptr);
  EXPECT_EQ(onesided_transports().find("mpi")->name, "mpi");
}

// The rows registered above are usable through the configuration alone: the config
// accepts them (and the odc-only check reads the row), the generator draws from the
// distribution and plan_step runs the scheme.
TEST(Registries, ANewSchemeAndDistributionAreOneRowEach) {
  const Config odc = load_config({MINIPT_SOURCE_DIR "/inputs/experiments/demo.toml"},
                                 {"run.mode=odc", "balance.scheme=last_rank",
                                  "workload.distribution=ends", "workload.minibatch_size=6"});
  const auto lengths = generate_lengths(odc.workload, odc.run.seed, 1);
  ASSERT_EQ(lengths.size(), 1u);
  EXPECT_EQ(lengths[0],
            (std::vector<int64_t>{odc.workload.min, odc.workload.max, odc.workload.min,
                                  odc.workload.max, odc.workload.min, odc.workload.max}));
  const StepPlan plan = plan_step(lengths[0], 3, balance_options(odc, "last_rank", false));
  EXPECT_TRUE(plan.ranks[0].microbatches.empty());
  EXPECT_EQ(plan.ranks[2].microbatches.size(), 6u);
  EXPECT_EQ(plan.ranks[2].microbatches[0].tokens, odc.workload.max);  // most expensive first
  expect_config_error(
      [] {
        load_config({MINIPT_SOURCE_DIR "/inputs/experiments/demo.toml"},
                    {"run.mode=fsdp", "balance.scheme=last_rank"});
      },
      "balance.scheme",
      {"\"last_rank\" needs run.mode = \"odc\"", "none|micro|localsort|arrival|localsort-packed"});
}

TEST(Registries, AddingANameTwiceIsAProgrammingError) {
  EXPECT_THROW(collective_transports().add({.name = "mpi"}), std::logic_error);
}

struct TestRow {
  std::string name{}, description{};
  VariantNeeds needs{};
  int priority = 0;
  std::function<int()> factory{};
};

TEST(Registries, PickAutoFollowsPrioritiesAndNeeds) {
  Registry<TestRow> t;
  t.add({.name = "host", .needs = {}, .priority = 10, .factory = [] { return 1; }});
  t.add({.name = "never", .needs = {}, .priority = 0, .factory = [] { return 2; }});
  t.add({.name = "dev_any", .needs = {.device_memory = true}, .priority = 20});
  t.add(
      {.name = "dev_node", .needs = {.device_memory = true, .single_node = true}, .priority = 30});
  t.add({.name = "host_too", .needs = {}, .priority = 10});
  const auto pick = [&](bool device, bool across) {
    const TestRow* r = t.pick_auto([&](const VariantNeeds& n) {
      return n.device_memory == device && !(n.single_node && across);
    });
    return r == nullptr ? std::string("none") : r->name;
  };
  EXPECT_EQ(pick(true, false), "dev_node");  // highest priority that fits
  EXPECT_EQ(pick(true, true), "dev_any");    // the single-node row does not fit
  EXPECT_EQ(pick(false, true), "host");      // a tie goes to the first registered
  EXPECT_EQ(t.pick_auto([](const VariantNeeds& n) { return n.cuda_build; }), nullptr);
  EXPECT_EQ(t.names(),
            (std::vector<std::string>{"host", "never", "dev_any", "dev_node", "host_too"}));
  EXPECT_EQ(t.built_names(), (std::vector<std::string>{"host", "never"}));
  expect_config_error([&] { t.at("dev_any", "test.kind"); }, "test.kind",
                      {"'dev_any' is not available in this build (allowed: host|never)"});
  EXPECT_EQ(t.at("never", "test.kind").factory(), 2);
}

TEST(Registries, TransportsMustMoveTheBackendsMemory) {
  expect_config_error([] { check_transport_memory("emulated", "nccl", "auto"); },
                      "comm.collectives", {"\"nccl\"", "cuda", "(allowed here: auto|mpi)"});
  expect_config_error([] { check_transport_memory("kokkos", "auto", "staged"); }, "comm.onesided",
                      {"\"staged\"", "device memory", "(allowed here: auto|mpi|loopback)"});
  expect_config_error([] { check_transport_memory("cuda", "auto", "mpi"); }, "comm.onesided",
                      {"\"mpi\"", "host memory", "(allowed here: auto|ipc|staged|ipc+staged)"});
  expect_config_error([] { check_transport_memory("emulated", "auto", "ipc+staged"); },
                      "comm.onesided", {"\"ipc+staged\"", "device memory"});
  EXPECT_NO_THROW(check_transport_memory("cuda", "nccl", "ipc"));
  EXPECT_NO_THROW(check_transport_memory("cuda", "nccl", "ipc+staged"));
  EXPECT_NO_THROW(check_transport_memory("emulated", "auto", "loopback"));
}

TEST(Registries, AutoNeverPicksARowOfPriorityZero) {
  EXPECT_EQ(choose_transports("emulated", "auto", "auto", 0, {1, 1}).onesided, "mpi");
}

// A new transport is one file and one row: odc runs on it through make_odc_strategy.
TEST(Registries, OdcRunsOnATransportRegisteredHere) {
  ComputeOptions copt;  // emulated, fp32 parameters and gradients
  const ModelShape shape;
  auto backend = make_backend(copt, shape, 0, 0);
  const ShardLayout layout(shape, 1);
  StrategyOptions opt;
  opt.onesided = "loopback";
  auto odc = make_odc_strategy(*backend, layout, MPI_COMM_SELF, MPI_COMM_SELF, opt);
  ASSERT_NE(g_last_loopback, nullptr);
  LoopbackOneSided& loop = *g_last_loopback;
  EXPECT_EQ(odc->name(), "odc");
  EXPECT_EQ(odc->transport_name(), "loopback");

  auto control = make_mpi_control(MPI_COMM_SELF);
  Recorder recorder(0, backend->time_source(), ClockAlignment{}, false);
  StepContext ctx{*backend, *control, recorder, layout, 0, 0};

  const auto total = static_cast<size_t>(layout.shard_total());
  std::vector<float> params(total);
  for (size_t i = 0; i < total; ++i) params[i] = static_cast<float>(i % 97) * 0.25f;
  backend->copy_from_host(odc->master(), params.data(), total * sizeof(float));
  odc->publish_params(ctx);
  odc->barrier(ctx, false);

  const int unit = 1;
  const UnitShard& s = layout.unit(unit);
  std::vector<float> gathered(static_cast<size_t>(layout.max_padded()), -1.0f);
  odc->wait_fetch(ctx, odc->fetch(ctx, unit, gathered.data()));
  for (int64_t i = 0; i < s.shard; ++i)
    ASSERT_EQ(gathered[static_cast<size_t>(i)], params[static_cast<size_t>(s.offset + i)]) << i;

  std::vector<float> grads(static_cast<size_t>(s.shard), 0.5f);
  odc->wait_push(ctx, odc->push(ctx, unit, grads.data(), 0));
  odc->wait_push(ctx, odc->push(ctx, unit, grads.data(), 1));
  odc->land_push(ctx, unit, 1);
  odc->flush(ctx);
  odc->barrier(ctx, true);
  EXPECT_EQ(loop.issued(), 3);  // one get, two accumulates (one owner)

  std::vector<float> acc(total, -1.0f);
  backend->copy_to_host(acc.data(), odc->grad_acc(), total * sizeof(float));
  for (size_t i = 0; i < total; ++i) {
    const bool in_unit =
        static_cast<int64_t>(i) >= s.offset && static_cast<int64_t>(i) < s.offset + s.shard;
    ASSERT_EQ(acc[i], in_unit ? 1.0f : 0.0f) << i;
  }
}

}  // namespace
}  // namespace minipt
