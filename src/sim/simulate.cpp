#include "sim/simulate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "sim/collectives.hpp"
#include "sim/engine.hpp"
#include "sim/network.hpp"
#include "step/program.hpp"
#include "step/run_plan.hpp"
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

using sim::Channel;
using sim::Engine;
using sim::Joined;
using sim::Signal;
using sim::Task;
using step::OpKind;

// The executor: every rank's step program (step/program.hpp) replayed on the engine,
// its transfers handed to the collectives and the network.
class Simulation {
 public:
  explicit Simulation(const RunPlan& plan)
      : cfg_(plan.config()),
        topo_(plan.world(), cfg_.sim.gpus_per_node, shard_group_size(cfg_, plan.world())),
        network_(topo_, sim::with_topology(plan.cost(), cfg_.sim)),
        collectives_(engine_, network_),
        cost_(network_.cost()),
        world_(plan.world()),
        shard_(topo_.shard),
        layout_(cfg_.model, shard_, cfg_.model_scale),
        mode_(step::mode_row(cfg_.run.mode)),
        traits_(step::step_traits(cfg_, world_, recompute_of(cfg_))),
        run_plan_(plan),
        pull_signal_(static_cast<size_t>(world_)),
        push_signal_(static_cast<size_t>(world_)),
        traced_(static_cast<size_t>(world_), false),
        busy_ns_(static_cast<size_t>(world_), 0) {
    for (int r : traced_ranks(world_, cfg_.sim.trace_ranks)) traced_[static_cast<size_t>(r)] = true;
    // Every step's plan, held for the whole simulation (ranks may be steps apart).
    for (int s = 0; s < plan.steps(); ++s) plans_.push_back(plan.plan(s));
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
    rf.summary = summarize(rf.steps, world_, cfg_.run.warmup_steps, run_plan_.flops(),
                           cfg_.compute.peak_tflops);
    rf.summary.peak_memory_per_rank.assign(static_cast<size_t>(world_), 0);
    return rf;
  }

 private:
  static std::vector<bool> recompute_of(const Config& cfg) {
    std::vector<bool> out(static_cast<size_t>(cfg.model.num_units()));
    for (int u = 0; u < cfg.model.num_units(); ++u)
      out[static_cast<size_t>(u)] = cfg.compute.recompute.applies(cfg.model, u);
    return out;
  }

  int64_t ns(double t) const { return static_cast<int64_t>(std::llround(t * 1e9)); }

  void record(int rank, EventKind kind, Lane lane, double t0, double t1, Recorder::Fields f) {
    if (is_compute_kind(kind)) busy_ns_[static_cast<size_t>(rank)] += ns(t1) - ns(t0);
    if (!traced_[static_cast<size_t>(rank)] || !cfg_.run.trace) return;
    events_.push_back(make_event(rank, kind, lane, f, ns(t0), ns(t1)));
  }

  // The microbatch a rank's program is in: its tokens and Σ length² (0 when empty).
  struct Current {
    int64_t tokens = 0;
    double sum_sq = 0;
  };

  // The seconds rank r's compute lane spends on `op` of microbatch `mb`: the one place a
  // compute operation is priced. Per-element costs are for the real shape (model.scale
  // only shrinks the buffers).
  // A unit pass takes the cost model's time, times the drawn variation where
  // sim.variation_seed is set (model/cost_model.hpp: time_variation).
  double compute_seconds(int r, int step, const step::Op& op, const Current& mb) const {
    const double shard_elems = static_cast<double>(layout_.shard_total()) / cfg_.model_scale;
    switch (op.kind) {
      case OpKind::compute: {
        const int p = static_cast<int>(op.pass);
        const double t = cost_.unit_time(op.unit, p, mb.tokens, mb.sum_sq);
        if (cfg_.sim.variation_seed == 0 || t <= 0) return t;
        return t * time_variation({static_cast<uint64_t>(cfg_.sim.variation_seed), step, r,
                                   op.microbatch, op.unit, p},
                                  cost_.unit_cv(op.unit, p));
      }
      case OpKind::land:  // fsdp: the scattered shard added into the accumulator
        return cost_.accumulate_grad_s_per_element *
               static_cast<double>(layout_.unit(op.unit).shard) / cfg_.model_scale;
      case OpKind::grad_norm:
        return cost_.sum_squares_s_per_element * shard_elems;
      case OpKind::adamw:
        return cost_.adamw_s_per_element * shard_elems;
      default:
        return 0;
    }
  }

  // A fetch or push in flight.
  struct Pending {
    double begin = 0;
    Signal* done = nullptr;
    Joined coll{};  // fsdp
    int unit = -1, microbatch = -1;
  };

  // Starts rank r's fetch (pull lane) or push (push lane) of unit u: the mode's
  // collective, or one-sided transfers (one signal per rank and lane: one in flight).
  Pending post(int r, bool pull, int u, int microbatch) {
    Pending p;
    p.begin = engine_.now();
    p.unit = u;
    p.microbatch = microbatch;
    const int elem = pull ? cost_.param_bytes : cost_.grad_bytes;
    const double bytes = static_cast<double>(layout_.unit(u).padded) * elem;
    const CommOp op = pull ? mode_.fetch_op : mode_.push_op;
    if (op == CommOp::allgather || op == CommOp::reduce_scatter) {
      // A ring moves S·(n−1)/n through each rank (S for one rank: a copy).
      const double ring = shard_ == 1 ? bytes : bytes * (shard_ - 1) / shard_;
      p.coll = collectives_.join(pull ? Channel::pull : Channel::push, r, op, ring, false);
      p.done = &p.coll.c->done;
    } else {
      Signal* s = &(pull ? pull_signal_ : push_signal_)[static_cast<size_t>(r)];
      *s = Signal();
      const double latency = network_.one_sided(r, op, bytes, parts_);
      engine_.transfer(latency, parts_, s);
      p.done = s;
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
    const int elem = pull ? cost_.param_bytes : cost_.grad_bytes;
    record(r, pull ? mode_.fetch_event : mode_.push_event, pull ? Lane::pull : Lane::push, p.begin,
           p.done->time(),
           {.step = step,
            .microbatch = p.microbatch,
            .unit = p.unit,
            .bytes = layout_.unit(p.unit).padded * elem});
    if (p.coll.c) collectives_.release(r, p.coll);
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
    Joined j{};
    double t0 = 0;
    bool await_ready() {
      t0 = s.engine_.now();
      if (kind == EventKind::replica_reduce)
        j = s.collectives_.join_replica_reduce(r, s.layout_.shard_total());
      else
        j = s.collectives_.join(Channel::control, r,
                                kind == EventKind::barrier ? CommOp::barrier : CommOp::allreduce, 0,
                                true);
      return j.c->done.fired();
    }
    void await_suspend(std::coroutine_handle<> h) {
      j.c->done.operator co_await().await_suspend(h);
    }
    void await_resume() {
      const int64_t bytes = kind == EventKind::allreduce        ? 8
                            : kind == EventKind::replica_reduce ? s.layout_.shard_total() * 4
                                                                : 0;
      s.record(r, kind, Lane::compute, t0, s.engine_.now(), {.step = step, .bytes = bytes});
      s.collectives_.release(r, j);
    }
  };
  Sync sync(int r, int step, EventKind kind) { return Sync{*this, r, step, kind}; }

  // parallel.replica_reduce = "unit" (fsdp): the sums started as the last microbatch's
  // gradients landed, unit by unit, go on beside the backward (sharing the rank's
  // links with it); before the optimizer the rank starts those not started (from the
  // last unit down) and waits for every one still in flight, and that wait is the
  // step's replica_reduce event, as in ReplicaReduction::finish.
  Task finish_replica_units(int r, int step, std::vector<Joined>& in_flight,
                            std::vector<bool>& started) {
    const double t0 = engine_.now();
    for (int u = layout_.num_units() - 1; u >= 0; --u)
      if (!started[static_cast<size_t>(u)])
        in_flight.push_back(collectives_.join_replica_reduce(r, layout_.unit(u).shard));
    for (const Joined& j : in_flight) co_await j.c->done;
    record(r, EventKind::replica_reduce, Lane::compute, t0, engine_.now(),
           {.step = step, .bytes = layout_.shard_total() * 4});
    for (const Joined& j : in_flight) collectives_.release(r, j);
    in_flight.clear();
  }

  // One rank's steps: each step's program replayed a segment at a time.
  Task rank_program(int r) {
    step::Program ops;
    std::vector<Joined> replica_in_flight;
    std::vector<bool> replica_started(static_cast<size_t>(layout_.num_units()));
    for (int step = 0; step < cfg_.run.steps; ++step) {
      const StepPlan& plan = plans_[static_cast<size_t>(step)];
      const RankPlan& mine = plan.ranks[static_cast<size_t>(r)];
      const double step_begin = engine_.now();
      const int64_t busy_before = busy_ns_[static_cast<size_t>(r)];
      StepRecord rec;
      rec.step = step;
      rec.rank = r;
      Pending fetch, push;
      Current mb;
      replica_started.assign(replica_started.size(), false);
      step::StepWriter writer(traits_, mine);
      while (writer.next(ops)) {
        for (const step::Op& op : ops) {
          const Recorder::Fields at{.step = step, .microbatch = op.microbatch, .unit = op.unit};
          switch (op.kind) {
            case OpKind::begin_microbatch: {
              const Microbatch& m = mine.microbatches[static_cast<size_t>(op.microbatch)];
              mb = {};
              for (int i : m.sequences) {
                const int64_t len = plan.lengths[static_cast<size_t>(i)];
                mb.sum_sq += static_cast<double>(len) * static_cast<double>(len);
                sequences_.push_back({step, r, op.microbatch, i, len});
              }
              if (!m.sequences.empty()) {
                mb.tokens = m.tokens;
                rec.tokens += m.tokens;
                rec.microbatches += 1;
                co_await engine_.delay(cost_.microbatch_overhead_s);
              }
              break;
            }
            case OpKind::fetch:
              fetch = post(r, true, op.unit, op.microbatch);
              break;
            case OpKind::wait_fetch: {
              const double w0 = engine_.now();
              co_await *fetch.done;
              completed(r, step, true, fetch, w0);
              break;
            }
            case OpKind::compute: {
              const double fl = cfg_.model.unit_forward_flops(op.unit, mb.tokens, mb.sum_sq);
              const EventKind kind = op.pass == step::Pass::forward    ? EventKind::forward
                                     : op.pass == step::Pass::backward ? EventKind::backward
                                                                       : EventKind::recompute;
              Recorder::Fields f = at;
              f.tokens = mb.tokens;
              f.flops = op.pass == step::Pass::backward ? 2 * fl : fl;
              co_await compute(r, kind, compute_seconds(r, step, op, mb), f);
              break;
            }
            case OpKind::land: {  // the push in flight completes (a wait if it has not)
              const double w0 = engine_.now();
              co_await *push.done;
              completed(r, step, false, push, w0);
              if (mode_.lands_into_accumulator)
                co_await compute(r, EventKind::accumulate_grad, compute_seconds(r, step, op, mb),
                                 {.step = step, .unit = op.unit});
              break;
            }
            case OpKind::push:
              push = post(r, false, op.unit, op.microbatch);
              break;
            case OpKind::replica_start:
              replica_in_flight.push_back(
                  collectives_.join_replica_reduce(r, layout_.unit(op.unit).shard));
              replica_started[static_cast<size_t>(op.unit)] = true;
              break;
            case OpKind::gradient_barrier:
              co_await sync(r, step, EventKind::barrier);
              break;
            case OpKind::publish_barrier:  // untimed before it: odc publishing its shards
              co_await engine_.delay(cost_.odc_step_s);
              co_await sync(r, step, EventKind::barrier);
              break;
            case OpKind::replica_reduce:
              if (traits_.replica_per_unit())
                co_await finish_replica_units(r, step, replica_in_flight, replica_started);
              else
                co_await sync(r, step, EventKind::replica_reduce);
              break;
            case OpKind::loss_allreduce:
            case OpKind::norm_allreduce:
              co_await sync(r, step, EventKind::allreduce);
              break;
            case OpKind::grad_norm:
            case OpKind::adamw:
              co_await compute(r, EventKind::optimizer, compute_seconds(r, step, op, mb),
                               {.step = step});
              break;
            case OpKind::zero_grads:      // free: the gradient buffer is not modelled
            case OpKind::end_microbatch:  // the loss is not modelled
            case OpKind::flush:           // one-sided pushes complete when they land
            case OpKind::publish:
              break;  // the shard is published by the barrier after it
          }
        }
      }
      rec.t_start_ns = ns(step_begin);
      rec.t_end_ns = ns(engine_.now());
      rec.compute_ns = busy_ns_[static_cast<size_t>(r)] - busy_before;
      steps_.push_back(rec);
    }
  }

  const Config& cfg_;
  sim::Topology topo_;
  Engine engine_;
  sim::Network network_;
  sim::Collectives collectives_;
  const CostModel& cost_;
  int world_;
  int shard_;  // ranks per shard group (hybrid sharding), world_ without
  ShardLayout layout_;
  const step::ModeRow& mode_;
  step::StepTraits traits_;
  const RunPlan& run_plan_;      // the lengths, plans, cost model and FLOPs of every step
  std::vector<StepPlan> plans_;  // run_plan_'s plan of every step
  std::vector<Signal> pull_signal_, push_signal_;
  std::vector<Engine::PartSpec> parts_;
  std::vector<bool> traced_;
  std::vector<int64_t> busy_ns_;
  std::vector<Event> events_;
  std::vector<StepRecord> steps_;
  std::vector<SequenceRecord> sequences_;
};

}  // namespace

RunFile simulate(const RunPlan& plan, SimStats* stats) {
  const auto t0 = std::chrono::steady_clock::now();
  Simulation s(plan);
  RunFile rf = s.run();
  if (stats) {
    stats->wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    stats->traced_ranks =
        static_cast<int>(traced_ranks(plan.world(), plan.config().sim.trace_ranks).size());
  }
  return rf;
}

}  // namespace minipt
