#include "sim/simulate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <tuple>
#include <unordered_map>

#include "sim/engine.hpp"
#include "workload/workload.hpp"

namespace minipt {

std::vector<int> traced_ranks(int ranks, int trace_ranks) {
  std::vector<int> out;
  if (ranks <= trace_ranks) {
    for (int r = 0; r < ranks; ++r) out.push_back(r);
    return out;
  }
  for (int i = 0; i < trace_ranks; ++i) {
    const int r = trace_ranks == 1
                      ? 0
                      : static_cast<int>(static_cast<int64_t>(i) * (ranks - 1) / (trace_ranks - 1));
    if (out.empty() || out.back() != r) out.push_back(r);
  }
  return out;
}

namespace {

using sim::Engine;
using sim::Link;
using sim::Signal;
using sim::Task;

int ceil_log2(int n) {
  int k = 0;
  while ((1 << k) < n) ++k;
  return k;
}

// The cost model with the [sim] table's overrides applied.
CostModel with_topology(CostModel m, const SimOptions& s) {
  for (size_t op = 0; op < m.comm.size(); ++op) {
    const bool small = op >= static_cast<size_t>(CommOp::allreduce);
    LinkCost& in = m.comm[op][static_cast<size_t>(LinkClass::intra)];
    LinkCost& ex = m.comm[op][static_cast<size_t>(LinkClass::inter)];
    if (s.intra_bandwidth_GBps > 0 && !small) in.bandwidth_Bps = s.intra_bandwidth_GBps * 1e9;
    if (s.inter_bandwidth_GBps > 0 && !small) ex.bandwidth_Bps = s.inter_bandwidth_GBps * 1e9;
    if (s.intra_latency_us > 0) in.latency_s = s.intra_latency_us * 1e-6;
    if (s.inter_latency_us > 0) ex.latency_s = s.inter_latency_us * 1e-6;
  }
  return m;
}

class Simulation {
 public:
  Simulation(const Config& cfg, int ranks, const CostModel& cost)
      : cfg_(cfg),
        cost_(with_topology(cost, cfg.sim)),
        world_(ranks),
        per_node_(std::min(cfg.sim.gpus_per_node, ranks)),
        nodes_((ranks + per_node_ - 1) / per_node_),
        shard_(shard_group_size(cfg, ranks)),
        layout_(cfg.model, shard_, cfg.model_scale),
        in_(static_cast<size_t>(ranks)),
        out_(static_cast<size_t>(ranks)),
        nic_in_(static_cast<size_t>(nodes_), Link(per_node_)),
        nic_out_(static_cast<size_t>(nodes_), Link(per_node_)),
        pool_in_(ranks),
        pool_out_(ranks),
        nic_pool_in_(ranks),
        nic_pool_out_(ranks),
        pull_signal_(static_cast<size_t>(ranks)),
        push_signal_(static_cast<size_t>(ranks)),
        traced_(static_cast<size_t>(ranks), false),
        busy_ns_(static_cast<size_t>(ranks), 0) {
    for (int r : traced_ranks(ranks, cfg.sim.trace_ranks)) traced_[static_cast<size_t>(r)] = true;
    const StepLengths draw(cfg.workload, cfg.run.seed);  // one step's lengths at a time
    const bool fsdp = cfg.run.mode == Mode::fsdp;
    for (int s = 0; s < cfg.run.steps; ++s) {
      const std::vector<int64_t> lengths = draw(s);
      check_token_budget(lengths, s, cfg.balance.token_budget);
      plans_.push_back(
          plan_step(lengths, ranks, balance_options(cfg, cfg.balance.scheme, fsdp), s));
    }
  }

  RunFile run() {
    std::vector<Task> programs;
    programs.reserve(static_cast<size_t>(world_));
    for (int r = 0; r < world_; ++r) programs.push_back(rank_program(r));
    engine_.run(programs);
    RunFile rf;
    rf.events = std::move(events_);
    rf.steps = std::move(steps_);
    rf.sequences = std::move(sequences_);
    std::vector<double> flops;
    for (const StepPlan& p : plans_) {
      double tokens = 0, sq = 0;
      for (int64_t l : p.lengths) {
        tokens += static_cast<double>(l);
        sq += static_cast<double>(l) * static_cast<double>(l);
      }
      flops.push_back(cfg_.model.train_flops(static_cast<int64_t>(tokens), sq));
    }
    rf.summary =
        summarize(rf.steps, world_, cfg_.run.warmup_steps, flops, cfg_.compute.peak_tflops);
    rf.summary.peak_memory_per_rank.assign(static_cast<size_t>(world_), 0);
    return rf;
  }

 private:
  // A collective of one group of ranks: starts when its last member posts it.
  struct Collective {
    int joined = 0;
    int released = 0;
    Signal done;
  };
  // Collectives are matched by their position in each rank's sequence on one channel
  // (0 pull lane, 1 push lane, 2 compute lane, 3 cross-replica reduction) inside the
  // rank's group on that channel, as MPI and NCCL match them.
  struct Channel {
    std::unordered_map<int64_t, std::unique_ptr<Collective>> open;
    std::vector<int64_t> next;
  };
  // The members of rank r's group on a channel: `count` ranks first, first+stride, ...
  struct Group {
    int id, count, first, stride;
  };
  Group group_of(int channel, int r) const {
    if (channel <= 1) return {r / shard_, shard_, r / shard_ * shard_, 1};       // shard group
    if (channel == 3) return {r % shard_, world_ / shard_, r % shard_, shard_};  // replicas
    return {0, world_, 0, 1};                                                    // the job
  }
  // The link class of a group: one rank, one node, or several nodes.
  LinkClass class_of(const Group& g) const {
    if (g.count == 1) return LinkClass::self;
    const int last = g.first + (g.count - 1) * g.stride;
    return node_of(g.first) == node_of(last) ? LinkClass::intra : LinkClass::inter;
  }

  int node_of(int r) const { return r / per_node_; }
  int64_t ns(double t) const { return static_cast<int64_t>(std::llround(t * 1e9)); }

  void record(int rank, EventKind kind, Lane lane, double t0, double t1, Recorder::Fields f) {
    if (is_compute_kind(kind)) busy_ns_[static_cast<size_t>(rank)] += ns(t1) - ns(t0);
    if (!traced_[static_cast<size_t>(rank)] || !cfg_.run.trace) return;
    events_.push_back(make_event(rank, kind, lane, f, ns(t0), ns(t1)));
  }

  // Joins rank r to its next collective on `channel`; when the group's last rank joins,
  // the collective starts: `bytes_per_rank` cross each member's ingress and egress at the
  // operation's bandwidth (ring), after its latency (a tree's 2·⌈log2 n⌉ hops if `tree`).
  // A group within a node uses the members' own links; one across nodes, its members'
  // share of their nodes' NICs (the links one-sided traffic to other nodes takes), so a
  // collective inside a node and one across nodes in flight together (hybrid sharding's
  // reduce-scatter and per-unit replica sum) do not slow each other down.
  // Returns the collective and its key (for release()).
  std::pair<Collective*, int64_t> join(int channel, int r, CommOp op, double bytes_per_rank,
                                       bool tree) {
    Channel& ch = channels_[static_cast<size_t>(channel)];
    if (ch.next.empty()) ch.next.assign(static_cast<size_t>(world_), 0);
    const Group g = group_of(channel, r);
    const int64_t key = ch.next[static_cast<size_t>(r)]++ * world_ + g.id;
    auto& slot = ch.open[key];
    if (!slot) slot = std::make_unique<Collective>();
    Collective* c = slot.get();
    if (++c->joined < g.count) return {c, key};
    const LinkCost& l = cost_.link(op, class_of(g));
    const double latency = tree ? l.latency_s * 2 * std::max(1, ceil_log2(g.count)) : l.latency_s;
    parts_.clear();
    if (!tree && bytes_per_rank > 0 && l.bandwidth_Bps > 0) {
      const double work = bytes_per_rank / l.bandwidth_Bps;
      const bool across_nodes = class_of(g) == LinkClass::inter;
      for (int i = 0; i < g.count; ++i) {
        const int m = g.first + i * g.stride;
        const auto node = static_cast<size_t>(node_of(m));
        parts_.push_back({across_nodes ? &nic_in_[node] : &in_[static_cast<size_t>(m)], work});
        parts_.push_back({across_nodes ? &nic_out_[node] : &out_[static_cast<size_t>(m)], work});
      }
    }
    engine_.transfer(latency, parts_, &c->done);
    return {c, key};
  }
  void release(int channel, int r, Collective* c, int64_t key) {
    if (++c->released == group_of(channel, r).count)
      channels_[static_cast<size_t>(channel)].open.erase(key);
  }

  // odc: rank r pulls (get) or pushes (accumulate) `bytes` — a whole unit, 1/world of it
  // from or to every owner. The bytes of owners on r's node cross r's link and the
  // owners' pools; those of other nodes cross r's node's NICs and the other nodes' pool.
  // `done` is the rank's one signal for that lane (one transfer in flight per lane).
  Signal* one_sided(int r, CommOp op, double bytes) {
    const bool get = op == CommOp::get;
    Signal* s = &(get ? pull_signal_ : push_signal_)[static_cast<size_t>(r)];
    *s = Signal();
    parts_.clear();
    double latency = 0;
    if (shard_ == 1) {
      const LinkCost& l = cost_.link(op, LinkClass::self);
      latency = l.latency_s;
      if (l.bandwidth_Bps > 0) parts_.push_back({&in_[0], bytes / l.bandwidth_Bps});
    } else {
      // Owners are the shard group's ranks; groups are node-aligned when they fit a node.
      const int on_node = std::min(shard_, per_node_);
      const double local = static_cast<double>(on_node - 1) / shard_ * bytes;
      const double remote = static_cast<double>(shard_ - on_node) / shard_ * bytes;
      if (local > 0) {
        const LinkCost& l = cost_.link(op, LinkClass::intra);
        const double w = local / l.bandwidth_Bps;
        latency = std::max(latency, l.latency_s);
        parts_.push_back({get ? &in_[static_cast<size_t>(r)] : &out_[static_cast<size_t>(r)], w});
        parts_.push_back({&pool_out_, w});
        parts_.push_back({&pool_in_, w});
      }
      if (remote > 0) {
        const LinkCost& l = cost_.link(op, LinkClass::inter);
        const double w = remote / l.bandwidth_Bps;
        latency = std::max(latency, l.latency_s);
        const auto n = static_cast<size_t>(node_of(r));
        parts_.push_back({get ? &nic_in_[n] : &nic_out_[n], w});
        parts_.push_back({get ? &nic_pool_out_ : &nic_pool_in_, w});
      }
    }
    engine_.transfer(latency, parts_, s);
    return s;
  }

  // A fetch or push in flight.
  struct Pending {
    double begin = 0;
    Signal* done = nullptr;
    Collective* coll = nullptr;  // fsdp
    int64_t id = 0;              // its position on the channel
    int unit = -1, microbatch = -1;
  };

  // Starts rank r's fetch (pull lane) or push (push lane) of unit u.
  Pending post(int r, bool pull, int u, int microbatch) {
    Pending p;
    p.begin = engine_.now();
    p.unit = u;
    p.microbatch = microbatch;
    const int elem = pull ? cost_.param_bytes : cost_.grad_bytes;
    const double bytes = static_cast<double>(layout_.unit(u).padded) * elem;
    if (cfg_.run.mode == Mode::fsdp) {
      const int channel = pull ? 0 : 1;
      // A ring moves S·(n−1)/n through each rank (S for one rank: a copy).
      const double ring = shard_ == 1 ? bytes : bytes * (shard_ - 1) / shard_;
      std::tie(p.coll, p.id) =
          join(channel, r, pull ? CommOp::allgather : CommOp::reduce_scatter, ring, false);
      p.done = &p.coll->done;
    } else {
      p.done = one_sided(r, pull ? CommOp::get : CommOp::accumulate, bytes);
    }
    return p;
  }

  // After waiting for `p` from w0: records the wait (if any) and the transfer, and frees
  // the collective once every rank is past it.
  void completed(int r, int step, bool pull, const Pending& p, double w0) {
    const double t = engine_.now();
    if (t > w0)
      record(r, EventKind::wait, Lane::compute, w0, t,
             {.step = step, .microbatch = p.microbatch, .unit = p.unit});
    const bool fsdp = cfg_.run.mode == Mode::fsdp;
    const EventKind kind = pull ? (fsdp ? EventKind::gather : EventKind::get)
                                : (fsdp ? EventKind::reduce_scatter : EventKind::accumulate);
    const int elem = pull ? cost_.param_bytes : cost_.grad_bytes;
    record(r, kind, pull ? Lane::pull : Lane::push, p.begin, p.done->time(),
           {.step = step,
            .microbatch = p.microbatch,
            .unit = p.unit,
            .bytes = layout_.unit(p.unit).padded * elem});
    if (p.coll) release(pull ? 0 : 1, r, p.coll, p.id);
  }

  // Spends `seconds` on rank r's compute lane and records it as `kind`.
  struct Compute {
    Simulation& s;
    int r;
    EventKind kind;
    double seconds;
    Recorder::Fields f;
    double t0 = 0;
    bool await_ready() {
      t0 = s.engine_.now();
      return seconds <= 0;
    }
    void await_suspend(std::coroutine_handle<> h) { s.engine_.resume_at(t0 + seconds, h); }
    void await_resume() { s.record(r, kind, Lane::compute, t0, s.engine_.now(), f); }
  };
  Compute compute(int r, EventKind kind, double seconds, Recorder::Fields f) {
    return Compute{*this, r, kind, seconds, f};
  }

  // The small synchronising operations: every rank's compute lane joins them in order.
  struct Sync {
    Simulation& s;
    int r, step;
    EventKind kind;
    Collective* c = nullptr;
    int64_t id = 0;
    double t0 = 0;
    bool await_ready() {
      t0 = s.engine_.now();
      if (kind == EventKind::replica_reduce) {
        std::tie(c, id) = s.join_replica_reduce(r, s.layout_.shard_total());
      } else {
        std::tie(c, id) =
            s.join(2, r, kind == EventKind::barrier ? CommOp::barrier : CommOp::allreduce, 0, true);
      }
      return c->done.fired();
    }
    void await_suspend(std::coroutine_handle<> h) { c->done.operator co_await().await_suspend(h); }
    void await_resume() {
      const int64_t bytes = kind == EventKind::allreduce        ? 8
                            : kind == EventKind::replica_reduce ? s.layout_.shard_total() * 4
                                                                : 0;
      s.record(r, kind, Lane::compute, t0, s.engine_.now(), {.step = step, .bytes = bytes});
      s.release(kind == EventKind::replica_reduce ? 3 : 2, r, c, id);
    }
  };
  Sync sync(int r, int step, EventKind kind) { return Sync{*this, r, step, kind}; }

  // Joins rank r to the ring all-reduce across its replicas of `elements` gradient
  // elements: 2·(n−1)/n of them through each rank, at the reduce-scatter bandwidth of the
  // class.
  std::pair<Collective*, int64_t> join_replica_reduce(int r, int64_t elements) {
    const int n = world_ / shard_;
    const double bytes = static_cast<double>(elements) * cost_.grad_bytes * 2.0 * (n - 1) / n;
    return join(3, r, CommOp::reduce_scatter, bytes, false);
  }

  // parallel.replica_reduce = "unit" (fsdp): the sums started as the last microbatch's
  // gradients landed, unit by unit, go on beside the backward (sharing the rank's
  // links with it); before the optimizer the rank waits for those still in flight, and
  // that wait is the step's replica_reduce event, as in ReplicaReduction::finish.
  Task finish_replica_units(int r, int step,
                            std::vector<std::pair<Collective*, int64_t>>& in_flight) {
    const double t0 = engine_.now();
    for (auto& entry : in_flight) co_await entry.first->done;
    record(r, EventKind::replica_reduce, Lane::compute, t0, engine_.now(),
           {.step = step, .bytes = layout_.shard_total() * 4});
    for (auto& [c, key] : in_flight) release(3, r, c, key);
    in_flight.clear();
  }

  double accumulate_s(int u) const {
    return cost_.accumulate_grad_s_per_element * static_cast<double>(layout_.unit(u).shard) /
           cfg_.model_scale;
  }

  // Completes the push in flight (a compute-lane wait if it has not finished) and, for
  // fsdp, adds the scattered gradient shard into the accumulator.
  Task land(int r, int step, Pending push) {
    const double w0 = engine_.now();
    co_await *push.done;
    completed(r, step, false, push, w0);
    if (cfg_.run.mode == Mode::fsdp)
      co_await compute(r, EventKind::accumulate_grad, accumulate_s(push.unit),
                       {.step = step, .unit = push.unit});
  }

  // One rank's steps, mirroring Trainer::run_step and run_microbatch.
  Task rank_program(int r) {
    const bool fsdp = cfg_.run.mode == Mode::fsdp;
    const int units = layout_.num_units();
    // Per-element costs are for the real shape (model.scale only shrinks the buffers).
    const double shard_elems = static_cast<double>(layout_.shard_total()) / cfg_.model_scale;
    for (int step = 0; step < cfg_.run.steps; ++step) {
      const StepPlan& plan = plans_[static_cast<size_t>(step)];
      const RankPlan& mine = plan.ranks[static_cast<size_t>(r)];
      const double step_begin = engine_.now();
      const int64_t busy_before = busy_ns_[static_cast<size_t>(r)];
      StepRecord rec;
      rec.step = step;
      rec.rank = r;
      Pending push;
      // Replica sums per unit start when the last microbatch's gradient of a unit lands.
      const bool replica_per_unit =
          fsdp && shard_ < world_ && cfg_.parallel.replica_reduce == "unit";
      const int last = static_cast<int>(mine.microbatches.size()) - 1;
      std::vector<std::pair<Collective*, int64_t>> replica_in_flight;
      auto land_push = [&]() -> Task {
        co_await land(r, step, push);
        if (replica_per_unit && push.microbatch == last)
          replica_in_flight.push_back(join_replica_reduce(r, layout_.unit(push.unit).shard));
      };
      for (size_t j = 0; j < mine.microbatches.size(); ++j) {
        const Microbatch& mb = mine.microbatches[j];
        const bool empty = mb.sequences.empty();
        if (empty && !fsdp) continue;  // odc skips empty microbatches; fsdp joins them
        const int index = static_cast<int>(j);
        double sq = 0;
        for (int i : mb.sequences) {
          const int64_t len = plan.lengths[static_cast<size_t>(i)];
          sq += static_cast<double>(len) * static_cast<double>(len);
          sequences_.push_back({step, r, index, i, len});
        }
        if (!empty) {
          rec.tokens += mb.tokens;
          rec.microbatches += 1;
          co_await engine_.delay(cost_.microbatch_overhead_s);
        }
        auto pass = [&](int u, int p) {
          return empty ? 0.0 : cost_.unit_time(u, p, mb.tokens, sq);
        };
        auto fields = [&](int u, double f) {
          return Recorder::Fields{
              .step = step, .microbatch = index, .unit = u, .tokens = mb.tokens, .flops = f};
        };
        // Forward: unit u computes while unit u+1's parameters arrive.
        Pending f = post(r, true, 0, index);
        for (int u = 0; u < units; ++u) {
          const double w0 = engine_.now();
          co_await *f.done;
          completed(r, step, true, f, w0);
          if (u + 1 < units) f = post(r, true, u + 1, index);
          if (!empty)
            co_await compute(r, EventKind::forward, pass(u, 0),
                             fields(u, cfg_.model.unit_forward_flops(u, mb.tokens, sq)));
        }
        // Backward: unit u computes while unit u−1's parameters arrive and unit u+1's
        // gradients leave.
        f = post(r, true, units - 1, index);
        for (int u = units - 1; u >= 0; --u) {
          const double w0 = engine_.now();
          co_await *f.done;
          completed(r, step, true, f, w0);
          if (u > 0) f = post(r, true, u - 1, index);
          if (!empty) {
            const double fl = cfg_.model.unit_forward_flops(u, mb.tokens, sq);
            if (cfg_.compute.recompute.applies(cfg_.model, u))
              co_await compute(r, EventKind::recompute, pass(u, 2), fields(u, fl));
            co_await compute(r, EventKind::backward, pass(u, 1), fields(u, 2 * fl));
          }
          if (push.done) co_await land_push();
          push = post(r, false, u, index);
        }
      }
      if (push.done) co_await land_push();
      if (!fsdp) co_await sync(r, step, EventKind::barrier);  // every gradient has landed
      if (replica_per_unit)
        co_await finish_replica_units(r, step, replica_in_flight);
      else if (shard_ < world_)
        co_await sync(r, step, EventKind::replica_reduce);
      co_await sync(r, step, EventKind::allreduce);  // the loss
      co_await compute(r, EventKind::optimizer, cost_.sum_squares_s_per_element * shard_elems,
                       {.step = step});
      co_await sync(r, step, EventKind::allreduce);  // the gradient norm
      co_await compute(r, EventKind::optimizer, cost_.adamw_s_per_element * shard_elems,
                       {.step = step});
      if (!fsdp) co_await sync(r, step, EventKind::barrier);  // the new shards are published
      rec.t_start_ns = ns(step_begin);
      rec.t_end_ns = ns(engine_.now());
      rec.compute_ns = busy_ns_[static_cast<size_t>(r)] - busy_before;
      steps_.push_back(rec);
    }
  }

  const Config& cfg_;
  CostModel cost_;
  int world_, per_node_, nodes_;
  int shard_;  // ranks per shard group (hybrid sharding), world_ without
  ShardLayout layout_;
  Engine engine_;
  std::vector<Link> in_, out_, nic_in_, nic_out_;
  Link pool_in_, pool_out_, nic_pool_in_, nic_pool_out_;
  std::vector<StepPlan> plans_;
  Channel channels_[4];
  std::vector<Signal> pull_signal_, push_signal_;
  std::vector<Engine::PartSpec> parts_;
  std::vector<bool> traced_;
  std::vector<int64_t> busy_ns_;
  std::vector<Event> events_;
  std::vector<StepRecord> steps_;
  std::vector<SequenceRecord> sequences_;
};

}  // namespace

RunFile simulate(const Config& cfg, int ranks, const CostModel& cost, SimStats* stats) {
  const auto t0 = std::chrono::steady_clock::now();
  Simulation s(cfg, ranks, cost);
  RunFile rf = s.run();
  if (stats) {
    stats->wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    stats->traced_ranks = static_cast<int>(traced_ranks(ranks, cfg.sim.trace_ranks).size());
  }
  return rf;
}

}  // namespace minipt
