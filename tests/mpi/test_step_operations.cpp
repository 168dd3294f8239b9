// The operations the step loop issues, per unit and microbatch, through recording
// transports (one registry row each, registered from this file): each wraps the MPI
// transport and logs every call. Checked with the run's own timeline for the order
// against compute:
//  fsdp: per microbatch, every unit gathered before its forward and again before its
//        backward (forward order, then reverse), one reduce-scatter per unit after its
//        backward;
//  odc:  per microbatch and unit, one get per owner before the unit's forward and
//        backward, one accumulate per owner after its backward; per step one flush and
//        exactly two barriers: one before the optimizer, one after it.
// Parity: for fsdp and odc, with and without hybrid sharding, under both replica
// policies, the trainer's operations (the recording transports' calls and its timeline's
// events, in the order it recorded them) equal this rank's step program
// (step/program.hpp), and `minipt simulate` of the same configuration records the same
// events per rank (kind, step, microbatch, unit; waits excepted, since the trainer
// records every wait and the simulator only those where compute waited).
// Runs at 1, 2 and 4 ranks (CTest).
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "comm/transports.hpp"
#include "config/config.hpp"
#include "sim/simulate.hpp"
#include "step/program.hpp"
#include "tiny_job.hpp"
#include "train/trainer.hpp"

namespace minipt {
namespace {

struct Op {
  std::string what{};  // gather, reduce_scatter, get, accumulate, flush
  int64_t count = 0;
  int owner = -1;
};
std::vector<Op> g_log;  // this rank's calls, in order

class RecordingCollectives final : public Collectives {
 public:
  explicit RecordingCollectives(std::unique_ptr<Collectives> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return "recording"; }
  Request allgather(const void* shard, void* full, int64_t count, DType dtype) override {
    g_log.push_back({"gather", count});
    return inner_->allgather(shard, full, count, dtype);
  }
  Request reduce_scatter(const void* full, void* shard_out, int64_t count, DType dtype) override {
    g_log.push_back({"reduce_scatter", count});
    return inner_->reduce_scatter(full, shard_out, count, dtype);
  }
  void wait(Request r) override { inner_->wait(r); }
  void progress() override { inner_->progress(); }

 private:
  std::unique_ptr<Collectives> inner_;
};

class RecordingOneSided final : public OneSided {
 public:
  explicit RecordingOneSided(std::unique_ptr<OneSided> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return "recording"; }
  float* region_params() override { return inner_->region_params(); }
  float* region_grads() override { return inner_->region_grads(); }
  void expose(float* p, float* g, int64_t count) override { inner_->expose(p, g, count); }
  Request get(int owner, int64_t offset, int64_t n, void* dst, DType dt) override {
    g_log.push_back({"get", n, owner});
    return inner_->get(owner, offset, n, dst, dt);
  }
  Request accumulate(int owner, int64_t offset, int64_t n, const void* src, DType dt) override {
    g_log.push_back({"accumulate", n, owner});
    return inner_->accumulate(owner, offset, n, src, dt);
  }
  void wait(Request r) override { inner_->wait(r); }
  void flush() override {
    g_log.push_back({"flush"});
    inner_->flush();
  }
  void progress() override { inner_->progress(); }
  void reduce_slots() override { inner_->reduce_slots(); }
  void publish_params() override { inner_->publish_params(); }
  void sync_local() override { inner_->sync_local(); }

 private:
  std::unique_ptr<OneSided> inner_;
};

const bool kRegistered = [] {
  collective_transports().add(
      {.name = "recording",
       .description = "test only: MPI collectives that log every call",
       .factory = [](const CollectivesArgs& a) -> std::unique_ptr<Collectives> {
         return std::make_unique<RecordingCollectives>(
             collective_transports().at("mpi", "comm.collectives").factory(a));
       }});
  onesided_transports().add({.name = "recording",
                             .description = "test only: MPI RMA that logs every call",
                             .factory = [](const OneSidedArgs& a) {
                               OneSidedSetup s =
                                   onesided_transports().at("mpi", "comm.onesided").factory(a);
                               s.transport =
                                   std::make_unique<RecordingOneSided>(std::move(s.transport));
                               return s;
                             }});
  return true;
}();

Config config(const std::string& mode, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> sets = {
      "run.mode=" + mode, "balance.scheme=" + std::string(mode == "odc" ? "mini" : "micro"),
      "comm.collectives=recording", "comm.onesided=recording", "run.steps=2"};
  const std::vector<std::string> tiny = test::tiny_job_overrides();
  sets.insert(sets.end(), tiny.begin(), tiny.end());
  sets.insert(sets.end(), extra.begin(), extra.end());
  return load_config({}, sets);
}

struct Trial {
  std::vector<Event> events{};  // this rank's, from the gathered timeline
  std::vector<Op> log{};
  ShardLayout layout;
  int world = 1, rank = 0;
  std::vector<bool> recompute{};  // the backend's, per unit
};

Trial run(const std::string& mode, const std::vector<std::string>& extra = {}) {
  EXPECT_TRUE(kRegistered);
  const Config cfg = config(mode, extra);
  Trial r{.layout = ShardLayout(cfg.model, 1, 1.0)};
  MPI_Comm_rank(MPI_COMM_WORLD, &r.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &r.world);
  r.layout = ShardLayout(cfg.model, shard_group_size(cfg, r.world), 1.0);
  g_log.clear();
  Trainer t(cfg, MPI_COMM_WORLD);
  for (int u = 0; u < cfg.model.num_units(); ++u)
    r.recompute.push_back(t.backend().recompute_needed(u));
  const size_t setup_ops = g_log.size();  // before step 0 (the first publish)
  t.run(false);
  r.log.assign(g_log.begin() + static_cast<long>(setup_ops), g_log.end());
  // Each rank checks its own events: rank 0 holds everyone's after collect().
  RunFile rf = t.collect();
  std::vector<Event> all = rf.events;
  long long n = static_cast<long long>(all.size());
  MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
  all.resize(static_cast<size_t>(n));
  MPI_Bcast(all.data(), static_cast<int>(n * static_cast<long long>(sizeof(Event))), MPI_BYTE, 0,
            MPI_COMM_WORLD);
  for (const Event& e : all)
    if (e.rank == r.rank) r.events.push_back(e);
  return r;
}

// The compute-lane event of (kind, step, microbatch, unit).
const Event& find(const Trial& r, EventKind kind, int step, int mb, int unit) {
  for (const Event& e : r.events)
    if (e.kind == kind && e.step == step && e.microbatch == mb && e.unit == unit) return e;
  ADD_FAILURE() << "no event of kind " << static_cast<int>(kind) << " step " << step << " mb " << mb
                << " unit " << unit;
  static const Event none{};
  return none;
}

// Per step, the microbatches this rank ran (its forward events of unit 0).
std::map<int, std::vector<int>> microbatches(const Trial& r) {
  std::map<int, std::vector<int>> m;
  for (const Event& e : r.events)
    if (e.kind == EventKind::forward && e.unit == 0) m[e.step].push_back(e.microbatch);
  return m;
}

TEST(StepOperations, Fsdp) {
  const Trial r = run("fsdp");
  const int units = r.layout.num_units();
  size_t at = 0;
  int total_microbatches = 0;
  for (const auto& [step, mbs] : microbatches(r))
    for (const int mb : mbs) {
      ++total_microbatches;
      // Forward gathers 0..U-1, then backward gathers U-1..0 interleaved with one
      // reduce-scatter per unit (the previous unit's, at most one in flight).
      std::vector<std::string> gathers_and_scatters;
      for (int u = 0; u < units; ++u) {
        ASSERT_LT(at, r.log.size());
        EXPECT_EQ(r.log[at].what, "gather");
        EXPECT_EQ(r.log[at++].count, r.layout.unit(u).shard) << "forward gather of unit " << u;
      }
      int gathers = 0, scatters = 0;
      std::vector<int> scatter_counts;
      while (at < r.log.size() && (gathers < units || scatters < units)) {
        const Op& op = r.log[at++];
        if (op.what == "gather") {
          EXPECT_EQ(op.count, r.layout.unit(units - 1 - gathers).shard);
          ++gathers;
        } else {
          EXPECT_EQ(op.what, "reduce_scatter");
          EXPECT_EQ(op.count, r.layout.unit(units - 1 - scatters).shard);
          ++scatters;
        }
      }
      EXPECT_EQ(gathers, units);
      EXPECT_EQ(scatters, units);
      // Against compute: each unit's gather lands before its forward and its backward;
      // its reduce-scatter starts after its backward.
      for (int u = 0; u < units; ++u) {
        const Event& fwd = find(r, EventKind::forward, step, mb, u);
        const Event& bwd = find(r, EventKind::backward, step, mb, u);
        const Event& scatter = find(r, EventKind::reduce_scatter, step, mb, u);
        EXPECT_LT(fwd.t_start_ns, bwd.t_start_ns);
        EXPECT_GE(scatter.t_start_ns, bwd.t_end_ns) << "unit " << u;
        int gathers_of_u = 0;
        for (const Event& e : r.events)
          if (e.kind == EventKind::gather && e.step == step && e.microbatch == mb && e.unit == u) {
            ++gathers_of_u;
            EXPECT_TRUE(e.t_end_ns <= fwd.t_start_ns ||
                        (e.t_start_ns >= fwd.t_end_ns && e.t_end_ns <= bwd.t_start_ns));
          }
        EXPECT_EQ(gathers_of_u, 2) << "unit " << u;
      }
    }
  EXPECT_GT(total_microbatches, 0);
  EXPECT_EQ(at, r.log.size()) << "operations after the last microbatch";
}

TEST(StepOperations, Odc) {
  const Trial r = run("odc");
  const int units = r.layout.num_units();
  const auto per_step = microbatches(r);
  // Per microbatch: 2·U pulls and U pushes of one call per owner; one flush per step.
  std::map<std::string, int> calls;
  for (const Op& op : r.log) ++calls[op.what];
  int mbs = 0;
  for (const auto& [step, list] : per_step) mbs += static_cast<int>(list.size());
  EXPECT_EQ(calls["get"], mbs * 2 * units * r.world);
  EXPECT_EQ(calls["accumulate"], mbs * units * r.world);
  EXPECT_EQ(calls["flush"], 2);  // two steps
  EXPECT_EQ(calls["gather"] + calls["reduce_scatter"], 0);
  for (const Op& op : r.log)
    if (op.what == "get" || op.what == "accumulate") {
      EXPECT_GE(op.owner, 0);
      EXPECT_LT(op.owner, r.world);
    }
  for (int step = 0; step < 2; ++step) {
    std::vector<const Event*> barriers, optimizer;
    int64_t last_push_end = 0;
    for (const Event& e : r.events) {
      if (e.step != step) continue;
      if (e.kind == EventKind::barrier) barriers.push_back(&e);
      if (e.kind == EventKind::optimizer) optimizer.push_back(&e);
      if (e.kind == EventKind::accumulate) last_push_end = std::max(last_push_end, e.t_end_ns);
    }
    ASSERT_EQ(barriers.size(), 2u) << "step " << step;
    ASSERT_FALSE(optimizer.empty());
    std::sort(barriers.begin(), barriers.end(),
              [](const Event* a, const Event* b) { return a->t_start_ns < b->t_start_ns; });
    EXPECT_GE(barriers[0]->t_start_ns, last_push_end);
    for (const Event* o : optimizer) {
      EXPECT_GE(o->t_start_ns, barriers[0]->t_end_ns);
      EXPECT_LE(o->t_end_ns, barriers[1]->t_start_ns);
    }
  }
}

// ---- Parity with the step program and the simulator ----

using Seen = std::tuple<int, EventKind, int, int>;  // step, kind, microbatch, unit

std::string show(const std::vector<Seen>& v, size_t at) {
  std::string out;
  for (size_t i = at; i < std::min(v.size(), at + 4); ++i) {
    const auto& [s, k, mb, u] = v[i];
    out += "(step " + std::to_string(s) + " " +
           std::string(kEventKindNames[static_cast<size_t>(k)]) + " mb " + std::to_string(mb) +
           " unit " + std::to_string(u) + ") ";
  }
  return out.empty() ? "(end)" : out;
}

// Equal, or the first place they differ.
void expect_same(const std::vector<Seen>& want, const std::vector<Seen>& got,
                 const std::string& who) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  EXPECT_TRUE(i == want.size() && i == got.size())
      << who << " differs from the step program at event " << i << " of " << want.size()
      << ": program " << show(want, i) << "; " << who << " " << show(got, i);
}

// This rank's events other than waits, in the order recorded.
std::vector<Seen> seen(const std::vector<Event>& events, int rank) {
  std::vector<Seen> out;
  for (const Event& e : events)
    if (e.rank == rank && e.kind != EventKind::wait)
      out.emplace_back(e.step, e.kind, e.microbatch, e.unit);
  return out;
}

struct Case {
  std::string mode;
  bool hybrid = false;
  std::string replica = "step";
  std::vector<std::string> more{};
  std::vector<std::string> sets(int world) const {
    std::vector<std::string> out = {
        "parallel.shard=" + std::to_string(hybrid ? std::max(1, world / 2) : 0),
        "parallel.replica_reduce=" + replica, "sim.trace_ranks=64"};
    out.insert(out.end(), more.begin(), more.end());
    return out;
  }
  std::string name() const { return mode + (hybrid ? " hybrid" : "") + " replica " + replica; }
};

void check_parity(const Case& c) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  const Trial r = run(c.mode, c.sets(world));
  const Config cfg = config(c.mode, c.sets(world));
  SCOPED_TRACE(c.name() + " at " + std::to_string(world) + " ranks, rank " +
               std::to_string(r.rank));

  // The programs, from the same plans the trainer made.
  std::vector<bool> recompute;
  for (int u = 0; u < cfg.model.num_units(); ++u)
    recompute.push_back(cfg.compute.recompute.applies(cfg.model, u));
  EXPECT_EQ(recompute, r.recompute) << "the backend recomputes other units than the simulator";
  const step::StepTraits traits = step::step_traits(cfg, world, recompute);
  const auto lengths = generate_lengths(cfg.workload, cfg.run.seed, cfg.run.steps);
  std::vector<step::Program> programs;  // per step, of every rank
  std::vector<Seen> want_mine;
  std::vector<std::vector<Seen>> want(static_cast<size_t>(world));
  std::vector<Op> want_calls;
  const int group = shard_group_size(cfg, world);
  for (int s = 0; s < cfg.run.steps; ++s) {
    const StepPlan plan =
        plan_step(lengths[static_cast<size_t>(s)], world,
                  balance_options(cfg, cfg.balance.scheme, cfg.run.mode == Mode::fsdp), s);
    for (int q = 0; q < world; ++q) {
      const step::Program p = step::build_step(traits, plan.ranks[static_cast<size_t>(q)]);
      for (const step::RecordedEvent& e : step::recorded_events(p, *traits.mode))
        want[static_cast<size_t>(q)].emplace_back(s, e.kind, e.microbatch, e.unit);
      if (q != r.rank) continue;
      // The transport calls the program makes: a fetch is one gather or one get per
      // owner, a push one reduce-scatter or one accumulate per owner.
      for (const step::Op& op : p) {
        const int64_t n = op.unit >= 0 ? r.layout.unit(op.unit).shard : 0;
        const bool fsdp = traits.mode->fetch_op == CommOp::allgather;
        if (op.kind == step::OpKind::fetch || op.kind == step::OpKind::push) {
          const bool fetch = op.kind == step::OpKind::fetch;
          for (int o = 0; o < (fsdp ? 1 : group); ++o)
            want_calls.push_back(
                {fsdp ? (fetch ? "gather" : "reduce_scatter") : (fetch ? "get" : "accumulate"), n});
        }
        if (op.kind == step::OpKind::flush) want_calls.push_back({"flush"});
      }
    }
  }

  // The trainer: its transport calls and its timeline.
  ASSERT_EQ(r.log.size(), want_calls.size()) << "transport calls";
  for (size_t i = 0; i < want_calls.size(); ++i) {
    EXPECT_EQ(r.log[i].what, want_calls[i].what) << "call " << i;
    EXPECT_EQ(r.log[i].count, want_calls[i].count) << "call " << i;
  }
  expect_same(want[static_cast<size_t>(r.rank)], seen(r.events, r.rank), "the trainer");

  // The simulator, every rank's events.
  const RunFile sim = simulate(RunPlan(cfg, world));
  for (int q = 0; q < world; ++q)
    expect_same(want[static_cast<size_t>(q)], seen(sim.events, q),
                "the simulator's rank " + std::to_string(q));
}

TEST(StepParity, Fsdp) { check_parity({"fsdp"}); }
TEST(StepParity, FsdpHybridReplicaStep) { check_parity({"fsdp", true, "step"}); }
TEST(StepParity, FsdpHybridReplicaUnit) { check_parity({"fsdp", true, "unit"}); }
TEST(StepParity, FsdpReplicaUnitWithoutHybrid) { check_parity({"fsdp", false, "unit"}); }
TEST(StepParity, Odc) { check_parity({"odc"}); }
TEST(StepParity, OdcHybridReplicaStep) { check_parity({"odc", true, "step"}); }
TEST(StepParity, OdcHybridReplicaUnit) { check_parity({"odc", true, "unit"}); }
TEST(StepParity, OdcReplicaUnitWithoutHybrid) { check_parity({"odc", false, "unit"}); }
TEST(StepParity, FsdpRecomputeFirstBlock) {
  check_parity({"fsdp", true, "unit", {"model.recompute=1"}});
}
TEST(StepParity, OdcRecomputeOff) {
  check_parity({"odc", true, "step", {"model.recompute=false"}});
}

}  // namespace
}  // namespace minipt
