#include "train/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "comm/mpi_transports.hpp"
#include "comm/replica.hpp"
#include "comm/transports.hpp"
#include "config/cost_file.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"

namespace minipt {

UnitTimeFn plan_unit_time(const Config& cfg) {
  auto cost = std::make_shared<const CostModel>(cost_model_of(cfg));
  const Recompute recompute = cfg.compute.recompute;
  return [cost, recompute](int unit, int pass, int64_t tokens, double sum_sq) {
    if (pass == 2 && !recompute.applies(cost->shape, unit)) return 0.0;
    return cost->unit_time(unit, pass, tokens, sum_sq);
  };
}

BoundPlans bound_plans(const Config& cfg, int world, const std::vector<int64_t>& lengths,
                       int step) {
  BoundPlans plans;
  for_each_index(2, lengths.size() >= 4096, [&](size_t which) {
    if (which == 0)
      plans.micro = plan_step(lengths, world, balance_options(cfg, "micro", true), step);
    else
      plans.mini = plan_step(lengths, world, balance_options(cfg, "mini", false), step);
  });
  return plans;
}

PlanBound step_bound(const Config& cfg, int world, const BoundPlans& plans, const UnitTimeFn& t) {
  return {fsdp_step_time(plans.micro, cfg.model.num_units(), 3, t, shard_group_size(cfg, world)),
          odc_step_time(plans.mini, cfg.model.num_units(), 3, t)};
}

PlanBound step_bound(const Config& cfg, int world, const std::vector<int64_t>& lengths, int step,
                     const UnitTimeFn& t) {
  return step_bound(cfg, world, bound_plans(cfg, world, lengths, step), t);
}

bool bound_counts_step(const Config& cfg, int step) {
  const int first = cfg.run.warmup_steps < cfg.run.steps ? cfg.run.warmup_steps : 0;
  return step >= first;
}

PlanBound plan_bound(const Config& cfg, int world) {
  const StepLengths draw(cfg.workload, cfg.run.seed);
  const UnitTimeFn t = plan_unit_time(cfg);
  PlanBound b;
  for (int s = 0; s < cfg.run.steps; ++s)
    if (bound_counts_step(cfg, s)) {
      const PlanBound one = step_bound(cfg, world, draw(s), s, t);
      b.fsdp_s += one.fsdp_s;
      b.odc_s += one.odc_s;
    }
  return b;
}

namespace {

StrategyOptions strategy_options(const Config& cfg, const NodeLayout& nodes) {
  StrategyOptions o = choose_transports(cfg.compute.backend, cfg.comm.collectives,
                                        cfg.comm.onesided, cfg.comm.ranks_per_node, nodes);
  o.deterministic = cfg.comm_deterministic;
  o.pull_by_kernel = cfg.comm.odc_pull == "kernel";
  return o;
}

// The nodes one shard group of `shard` consecutive ranks spans: 1 when it fits inside a
// node (node-aligned, as consecutive groups of a divisor of the node size are).
NodeLayout group_nodes(const NodeLayout& job, int shard) {
  NodeLayout g = job;
  g.ranks_per_node = std::min(shard, job.ranks_per_node);
  if (shard % job.ranks_per_node == 0)
    g.nodes = shard / job.ranks_per_node;
  else
    g.nodes = job.ranks_per_node % shard == 0 ? 1 : std::min(job.nodes, 2);
  return g;
}

int local_rank_of(MPI_Comm comm) {
  MPI_Comm node;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int r = 0;
  MPI_Comm_rank(node, &r);
  MPI_Comm_free(&node);
  return r;
}

}  // namespace

NodeLayout node_layout(MPI_Comm comm, int declared) {
  int world = 1;
  MPI_Comm_size(comm, &world);
  NodeLayout n;
  if (declared > 0) {
    if (world % declared != 0)
      throw ConfigError("comm.ranks_per_node",
                        "= " + std::to_string(declared) + " does not divide the world size " +
                            std::to_string(world) + " (0 detects the layout)");
    n.ranks_per_node = declared;
    n.nodes = world / declared;
    return n;
  }
  MPI_Comm node;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int local_rank = 0, local_size = 1;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_size);
  MPI_Comm_free(&node);
  int leader = local_rank == 0 ? 1 : 0;
  MPI_Allreduce(&leader, &n.nodes, 1, MPI_INT, MPI_SUM, comm);
  MPI_Allreduce(&local_size, &n.ranks_per_node, 1, MPI_INT, MPI_MAX, comm);
  return n;
}

namespace {

// The row `auto` picks from `table` for a backend on device memory or not, on one node
// or across nodes; ConfigError naming `key` when no row fits.
template <class Row>
const Row& pick_transport(const Registry<Row>& table, const std::string& key, bool device,
                          bool across_nodes) {
  const Row* row = table.pick_auto([&](const VariantNeeds& n) {
    return n.device_memory == device && !(n.single_node && across_nodes);
  });
  if (row == nullptr)
    throw ConfigError(key, std::string("= \"auto\" finds no transport for ") +
                               (device ? "device" : "host") + " memory" +
                               (across_nodes ? " across nodes" : "") + " in " +
                               Registry<Row>::join(table.names()));
  return *row;
}

// The peer classes of a shard group laid out as `nodes`.
struct PeerClasses {
  bool same_node = false, other_node = false;
};

PeerClasses peer_classes(int declared, const NodeLayout& nodes) {
  return {.same_node = nodes.ranks_per_node > 1 && declared != 1,
          .other_node = nodes.nodes > 1 || declared == 1};
}

// The composite one-sided row that routes same-node peers to `same` and the others to
// `other`, or nullptr.
const OneSidedRow* composite_onesided(const std::string& same, const std::string& other) {
  for (const auto& r : onesided_transports().rows())
    if (r.same_node == same && r.other_node == other) return &r;
  return nullptr;
}

}  // namespace

StrategyOptions choose_transports(const std::string& backend, const std::string& collectives,
                                  const std::string& onesided, int declared,
                                  const NodeLayout& nodes) {
  StrategyOptions o;
  const BackendRow* b = compute_backends().find_any(backend);
  const bool device = b != nullptr && b->needs.device_memory;
  const PeerClasses peers = peer_classes(declared, nodes);
  // What reaches each class, and the transport the strategy builds for both.
  std::string coll_same = collectives, coll_other = collectives;
  if (collectives == "auto") {
    coll_same = pick_transport(collective_transports(), "comm.collectives", device, false).name;
    coll_other = pick_transport(collective_transports(), "comm.collectives", device, true).name;
  }
  o.collectives = peers.other_node ? coll_other : coll_same;
  if (peers.other_node && peers.same_node && coll_same != coll_other) coll_same = coll_other;

  std::string os_same = onesided, os_other = onesided;
  if (onesided == "auto") {
    os_same = pick_transport(onesided_transports(), "comm.onesided", device, false).name;
    os_other = pick_transport(onesided_transports(), "comm.onesided", device, true).name;
    o.onesided = peers.other_node ? os_other : os_same;
    if (peers.other_node && peers.same_node && os_same != os_other) {
      if (const OneSidedRow* c = composite_onesided(os_same, os_other))
        o.onesided = c->name;
      else
        os_same = os_other;
    }
  } else {
    o.onesided = onesided;
    if (const OneSidedRow* r = onesided_transports().find_any(onesided);
        r != nullptr && !r->same_node.empty()) {
      os_same = r->same_node;
      os_other = r->other_node;
    }
  }
  const OneSidedRow* row = onesided_transports().find_any(o.onesided);
  if (row != nullptr && row->needs.single_node && nodes.nodes > 1)
    throw ConfigError(
        "comm.onesided",
        "= \"" + o.onesided + "\" needs every rank on one node, but the job spans " +
            std::to_string(nodes.nodes) + " nodes of " + std::to_string(nodes.ranks_per_node) +
            " ranks (comm.ranks_per_node = " + std::to_string(declared) +
            (declared == 0 ? ", detected" : "") + "); use \"auto\" or \"" +
            pick_transport(onesided_transports(), "comm.onesided", row->needs.device_memory, true)
                .name +
            "\"");
  if (peers.same_node) o.same_node = {os_same, coll_same};
  if (peers.other_node) o.other_node = {os_other, coll_other};
  o.ranks_per_node = nodes.ranks_per_node;
  o.declared_ranks_per_node = declared;
  return o;
}

std::string describe_peer_transports(const StrategyOptions& o) {
  const auto one = [](const char* what, const PeerTransports& p) {
    return std::string(what) + (p.onesided == "none" && p.collectives == "none"
                                    ? "none"
                                    : "onesided " + p.onesided + ", collectives " + p.collectives);
  };
  return one("same node: ", o.same_node) + " | " + one("other node: ", o.other_node);
}

Trainer::Trainer(const Config& cfg, MPI_Comm comm)
    : cfg_(cfg),
      comm_(comm),
      layout_(
          cfg.model,
          [&] {
            int w = 1;
            MPI_Comm_size(comm, &w);
            return shard_group_size(cfg, w);
          }(),
          cfg.model_scale),
      draw_(cfg.workload, cfg.run.seed) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &world_);
  ComputeOptions copt = cfg_.compute;
  copt.seed = cfg_.run.seed;
  copt.param_scale = cfg_.model_scale;
  if (!cfg_.compute.cost_model.empty())
    copt.costs = std::make_shared<const CostModel>(cost_model_of(cfg_));
  backend_ = make_backend(copt, cfg_.model, rank_, local_rank_of(comm_));
  control_ = make_mpi_control(comm_);
  recorder_ = std::make_unique<Recorder>(rank_, backend_->time_source(), align_clocks(comm_),
                                         cfg_.run.trace);
  nodes_ = node_layout(comm_, cfg_.comm.ranks_per_node);
  // Hybrid sharding: the strategy communicates inside this rank's shard group only; the
  // gradient shards are summed across the replicas after the last microbatch.
  groups_ = std::make_unique<ShardGroups>(comm_, layout_.world());
  transports_ = strategy_options(cfg_, group_nodes(nodes_, layout_.world()));
  strategy_ = cfg_.run.mode == Mode::fsdp
                  ? make_fsdp_strategy(*backend_, layout_, groups_->shard, transports_)
                  : make_odc_strategy(*backend_, layout_, comm_, groups_->shard, transports_);

  const auto shard_bytes = static_cast<size_t>(layout_.shard_total()) * sizeof(float);
  m_ = static_cast<float*>(backend_->allocate(shard_bytes));
  v_ = static_cast<float*>(backend_->allocate(shard_bytes));
  pipeline_ = std::make_unique<UnitPipeline>(*backend_, *strategy_, *recorder_, layout_);
  replica_ = std::make_unique<ReplicaReduction>(
      *backend_, *groups_, layout_, strategy_->grad_acc(),
      cfg_.run.mode == Mode::fsdp && cfg_.parallel.replica_reduce == "unit",
      transports_.collectives == "nccl");
  pipeline_->on_landed([this](int microbatch, int unit) { replica_->landed(microbatch, unit); });

  // Each rank initialises its own shard of every unit from the global element index,
  // straight into the master shard (backend memory); padding stays zero.
  backend_->fill_zero(strategy_->master(), shard_bytes);
  for (int u = 0; u < layout_.num_units(); ++u) {
    const UnitShard& s = layout_.unit(u);
    const int64_t begin = groups_->shard_rank * s.shard;
    const int64_t n = std::clamp<int64_t>(s.numel - begin, 0, s.shard);
    if (n > 0) backend_->init_params(u, begin, n, strategy_->master() + s.offset);
  }
  StepContext ctx{*backend_, *control_, *recorder_, layout_, rank_, -1};
  strategy_->publish_params(ctx);
  recorder_->discard_pending();  // set-up is not part of any step's timeline

  // Every step's plan, made one step at a time (its lengths drawn then, issue 31: no step's
  // lengths are kept beyond its planning); every microbatch shape this rank will run is
  // handed to the backend before the first step (so that, e.g., cuDNN graph builds do not
  // fall into timed steps). Step 0's plan is kept for step 0; later steps plan again.
  for (int step = 0; step < cfg_.run.steps; ++step) {
    StepPlan plan = make_plan(step);
    for (const Microbatch& mb : plan.ranks[static_cast<size_t>(rank_)].microbatches)
      if (!mb.sequences.empty()) backend_->prepare_microbatch_shape(cu_seqlens_of(plan, mb));
    if (step == 0) {
      plan_ = std::move(plan);
      plan_step_ = 0;
    }
  }
}

StepPlan Trainer::make_plan(int step) const {
  const std::vector<int64_t> lengths = draw_(step);
  check_token_budget(lengths, step, cfg_.balance.token_budget);
  return plan_step(lengths, world_,
                   balance_options(cfg_, cfg_.balance.scheme, cfg_.run.mode == Mode::fsdp), step);
}

const StepPlan& Trainer::plan_of(int step) {
  if (plan_step_ != step) {
    plan_ = make_plan(step);
    plan_step_ = step;
  }
  return plan_;
}

Trainer::~Trainer() {
  replica_.reset();  // sums in flight end before the accumulator goes
  pipeline_.reset();
  strategy_.reset();
  backend_->deallocate(m_);
  backend_->deallocate(v_);
}

void Trainer::run(bool verbose, const std::function<void(int step)>& on_step) {
  for (int s = 0; s < cfg_.run.steps; ++s) {
    if (on_step) on_step(s);
    run_step(s, verbose);
  }
}

// One step, timed from the first microbatch to the published parameters.
void Trainer::run_step(int step, bool verbose) {
  const StepInput in = load_step(step);  // untimed (trainer_untimed.cpp)
  const bool dumping = !cfg_.run.dump.empty() && step == cfg_.run.dump_step;
  std::vector<std::vector<float>> params_before;
  if (dumping) params_before = gather_parameters();

  StepContext ctx{*backend_, *control_, *recorder_, layout_, rank_, step};
  const auto step_begin = recorder_->mark(Lane::compute);
  double loss = 0;
  std::vector<std::vector<double>> seq_losses;
  // fsdp runs every microbatch of the plan (odc's replica reduction is per step).
  replica_->begin_step(static_cast<int>(in.data.size()) - 1);
  for (size_t j = 0; j < in.data.size(); ++j) {
    const bool empty = in.data[j].tokens.empty();
    if (empty && !strategy_->joins_empty_microbatches()) continue;
    run_microbatch(ctx, empty ? nullptr : &in.data[j], static_cast<int>(j), in.data[j].num_tokens(),
                   in.data[j].sum_sq());
    loss += empty ? 0.0 : backend_->end_microbatch();
    seq_losses.push_back(empty ? std::vector<double>{} : backend_->sequence_losses());
  }
  pipeline_->complete_push(ctx);
  strategy_->finish_gradients(ctx);
  replica_->finish(*recorder_, step);
  recorder_->timed(EventKind::allreduce, Lane::compute, {.step = step, .bytes = 8},
                   [&] { loss = control_->allreduce_sum(loss); });
  if (dumping) write_dump(step, params_before, in.seq_ids, seq_losses);
  optimizer_step(ctx);
  const auto step_end = recorder_->mark(Lane::compute);

  recorder_->end_step(
      {.step = step, .rank = rank_, .tokens = in.tokens, .microbatches = in.nonempty, .loss = loss},
      step_begin, step_end);
  losses_.push_back(loss);
  if (verbose) print_step_line(step, loss, in.step_tokens);
}

// Forward unit by unit while the next unit's parameters arrive, then backward in reverse
// while the previous unit's parameters arrive and the next unit's gradients leave. An
// empty microbatch (fsdp) joins every collective with zero gradients.
void Trainer::run_microbatch(StepContext& ctx, const MicrobatchData* data, int index,
                             int64_t tokens, double sum_sq) {
  const int units = layout_.num_units();
  const auto fields = [&](int u, double flops_factor) {
    return Recorder::Fields{
        .step = ctx.step,
        .microbatch = index,
        .unit = u,
        .tokens = tokens,
        .flops = flops_factor * cfg_.model.unit_forward_flops(u, tokens, sum_sq)};
  };
  if (data) backend_->begin_microbatch(*data);

  UnitPipeline::Fetch f = pipeline_->post_fetch(ctx, 0);
  for (int u = 0; u < units; ++u) {
    void* params = pipeline_->wait_fetch(ctx, f, index, u);
    if (u + 1 < units) f = pipeline_->post_fetch(ctx, u + 1);
    if (data)
      recorder_->timed(EventKind::forward, Lane::compute, fields(u, 1),
                       [&] { backend_->forward(u, params); });
    progress();
  }

  f = pipeline_->post_fetch(ctx, units - 1);
  for (int u = units - 1; u >= 0; --u) {
    void* params = pipeline_->wait_fetch(ctx, f, index, u);
    if (u > 0) f = pipeline_->post_fetch(ctx, u - 1);
    const auto [grads, slot] = pipeline_->next_grads();
    if (data) {
      if (backend_->recompute_needed(u))
        recorder_->timed(EventKind::recompute, Lane::compute, fields(u, 1),
                         [&] { backend_->recompute(u, params); });
      recorder_->timed(EventKind::backward, Lane::compute, fields(u, 2),
                       [&] { backend_->backward(u, params, grads); });
    } else {
      backend_->fill_zero(
          grads, static_cast<size_t>(layout_.unit(u).padded) * dtype_size(backend_->grad_dtype()));
    }
    pipeline_->push(ctx, index, u, grads, slot);
    progress();
  }
}

void Trainer::progress() {
  strategy_->progress();
  replica_->progress();
}

void Trainer::optimizer_step(StepContext& ctx) {
  const int64_t n = layout_.shard_total();
  double sq = 0;
  recorder_->timed(EventKind::optimizer, Lane::compute, {.step = ctx.step},
                   [&] { sq = backend_->sum_squares(strategy_->grad_acc(), n); });
  recorder_->timed(EventKind::allreduce, Lane::compute, {.step = ctx.step, .bytes = 8},
                   [&] { sq = control_->allreduce_sum(sq) / groups_->replicas; });
  const double norm = std::sqrt(sq);
  const double clip = cfg_.optim.clip_norm;
  const float scale = clip > 0 && norm > clip ? static_cast<float>(clip / (norm + 1e-6)) : 1.0f;
  AdamWParams p = cfg_.optim.adamw;
  p.step = ++optimizer_steps_;
  recorder_->timed(EventKind::optimizer, Lane::compute, {.step = ctx.step}, [&] {
    backend_->adamw(strategy_->master(), m_, v_, strategy_->grad_acc(), n, p, scale);
  });
  strategy_->publish_params(ctx);
}

}  // namespace minipt
