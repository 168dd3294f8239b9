#include "train/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "comm/mpi_transports.hpp"
#include "comm/replica.hpp"
#include "comm/transports.hpp"
#include "config/cost_file.hpp"
#include "config/error.hpp"
#include "trace/dump.hpp"
#include "workload/tokens.hpp"

namespace minipt {

UnitTimeFn plan_unit_time(const Config& cfg) {
  auto cost = std::make_shared<const CostModel>(cost_model_of(cfg));
  const bool recompute = cfg.compute.recompute;
  return [cost, recompute](int unit, int pass, int64_t tokens, double sum_sq) {
    if (pass == 2 && !(recompute && cost->shape.is_block(unit))) return 0.0;
    return cost->unit_time(unit, pass, tokens, sum_sq);
  };
}

PlanBound plan_bound(const Config& cfg, int world) {
  const auto lengths = generate_lengths(cfg.workload, cfg.run.seed, cfg.run.steps);
  const UnitTimeFn t = plan_unit_time(cfg);
  const int first = cfg.run.warmup_steps < cfg.run.steps ? cfg.run.warmup_steps : 0;
  PlanBound b;
  for (int s = first; s < cfg.run.steps; ++s) {
    const auto& ls = lengths[static_cast<size_t>(s)];
    const StepPlan micro =
        plan_step(ls, world, balance_options(cfg, BalanceScheme::micro, true), s);
    const StepPlan mini = plan_step(ls, world, balance_options(cfg, BalanceScheme::mini, false), s);
    b.fsdp_s += fsdp_step_time(micro, cfg.model.num_units(), 3, t, shard_group_size(cfg, world));
    b.odc_s += odc_step_time(mini, cfg.model.num_units(), 3, t);
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

// One packed microbatch of this rank: token ids from the learnable Markov streams;
// each token's loss weight 1/(L−1)/N makes a step's loss the mean over its N
// sequences of each sequence's mean token loss, whatever the grouping.
// Offsets of the microbatch's sequences in its packed token rows.
std::vector<int32_t> cu_seqlens_of(const StepPlan& plan, const Microbatch& mb) {
  std::vector<int32_t> cu{0};
  for (int idx : mb.sequences)
    cu.push_back(cu.back() + static_cast<int32_t>(plan.lengths[static_cast<size_t>(idx)]));
  return cu;
}

MicrobatchData build_microbatch(const Config& cfg, int step, const StepPlan& plan,
                                const Microbatch& mb) {
  MicrobatchData d;
  const double n_seq = static_cast<double>(plan.lengths.size());
  d.cu_seqlens = cu_seqlens_of(plan, mb);
  for (int idx : mb.sequences) {
    const int64_t len = plan.lengths[static_cast<size_t>(idx)];
    const auto toks = sequence_tokens(cfg.run.seed, step, idx, len, cfg.model.vocab);
    const float w = len > 1 ? static_cast<float>(1.0 / static_cast<double>(len - 1) / n_seq) : 0.0f;
    for (int64_t i = 0; i < len; ++i) {
      d.tokens.push_back(toks[static_cast<size_t>(i)]);
      const bool last = i + 1 == len;
      d.targets.push_back(last ? -1 : toks[static_cast<size_t>(i + 1)]);
      d.loss_weight.push_back(last ? 0.0f : w);
    }
  }
  return d;
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

}  // namespace

StrategyOptions choose_transports(const std::string& backend, const std::string& collectives,
                                  const std::string& onesided, int declared,
                                  const NodeLayout& nodes) {
  StrategyOptions o;
  const BackendRow* b = compute_backends().find_any(backend);
  const bool device = b != nullptr && b->needs.device_memory;
  const bool across_nodes = nodes.nodes > 1 || declared == 1;
  o.collectives =
      collectives == "auto"
          ? pick_transport(collective_transports(), "comm.collectives", device, across_nodes).name
          : collectives;
  o.onesided =
      onesided == "auto"
          ? pick_transport(onesided_transports(), "comm.onesided", device, across_nodes).name
          : onesided;
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
  o.ranks_per_node = nodes.ranks_per_node;
  return o;
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
          cfg.model_scale) {
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
  const StrategyOptions sopt = strategy_options(cfg_, group_nodes(nodes_, layout_.world()));
  strategy_ = cfg_.run.mode == Mode::fsdp
                  ? make_fsdp_strategy(*backend_, layout_, groups_->shard, sopt)
                  : make_odc_strategy(*backend_, layout_, comm_, groups_->shard, sopt);

  const auto shard_bytes = static_cast<size_t>(layout_.shard_total()) * sizeof(float);
  m_ = static_cast<float*>(backend_->allocate(shard_bytes));
  v_ = static_cast<float*>(backend_->allocate(shard_bytes));
  const auto unit_elems = static_cast<size_t>(layout_.max_padded());
  for (auto& b : fetch_buf_)
    b = backend_->allocate(unit_elems * dtype_size(backend_->param_dtype()));
  for (auto& b : grad_buf_) b = backend_->allocate(unit_elems * dtype_size(backend_->grad_dtype()));

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

  lengths_ = generate_lengths(cfg_.workload, cfg_.run.seed, cfg_.run.steps);
  check_token_budget(lengths_, cfg_.balance.token_budget);
  // Every step's plan, made once; every microbatch shape this rank will run is handed
  // to the backend before the first step (so that, e.g., cuDNN graph builds do not fall
  // into timed steps).
  const bool fsdp = cfg_.run.mode == Mode::fsdp;
  for (int step = 0; step < cfg_.run.steps; ++step) {
    plans_.push_back(plan_step(lengths_[static_cast<size_t>(step)], world_,
                               balance_options(cfg_, cfg_.balance.scheme, fsdp), step));
    for (const Microbatch& mb : plans_.back().ranks[static_cast<size_t>(rank_)].microbatches)
      if (!mb.sequences.empty())
        backend_->prepare_microbatch_shape(cu_seqlens_of(plans_.back(), mb));
  }
}

Trainer::~Trainer() {
  strategy_.reset();
  for (auto* b : fetch_buf_) backend_->deallocate(b);
  for (auto* b : grad_buf_) backend_->deallocate(b);
  backend_->deallocate(m_);
  backend_->deallocate(v_);
}

void Trainer::run(bool verbose, const std::function<void(int step)>& on_step) {
  for (int s = 0; s < cfg_.run.steps; ++s) {
    if (on_step) on_step(s);
    run_step(s, verbose);
  }
}

void Trainer::run_step(int step, bool verbose) {
  const StepPlan& plan = plans_[static_cast<size_t>(step)];
  const RankPlan& mine = plan.ranks[static_cast<size_t>(rank_)];

  // Data loading is not timed: every microbatch is built before the step starts.
  std::vector<MicrobatchData> data;
  std::vector<std::vector<int>> seq_ids;
  int64_t tokens = 0;
  int nonempty = 0;
  for (size_t j = 0; j < mine.microbatches.size(); ++j) {
    const Microbatch& mb = mine.microbatches[j];
    data.push_back(build_microbatch(cfg_, step, plan, mb));
    seq_ids.push_back(mb.sequences);
    tokens += mb.tokens;
    nonempty += mb.sequences.empty() ? 0 : 1;
    for (int idx : mb.sequences)
      sequences_.push_back(
          {step, rank_, static_cast<int32_t>(j), idx, plan.lengths[static_cast<size_t>(idx)]});
  }
  double step_tokens = 0, step_sq = 0;
  for (int64_t l : plan.lengths) {
    step_tokens += static_cast<double>(l);
    step_sq += static_cast<double>(l) * static_cast<double>(l);
  }
  step_flops_.push_back(cfg_.model.train_flops(static_cast<int64_t>(step_tokens), step_sq));

  const bool dumping = !cfg_.run.dump.empty() && step == cfg_.run.dump_step;
  std::vector<std::vector<float>> params_before;
  if (dumping) params_before = gather_parameters();

  StepContext ctx{*backend_, *control_, *recorder_, layout_, rank_, step};
  const auto step_begin = recorder_->mark(Lane::compute);
  double loss = 0;
  std::vector<std::vector<double>> seq_losses;
  for (size_t j = 0; j < data.size(); ++j) {
    const bool empty = data[j].tokens.empty();
    if (empty && !strategy_->joins_empty_microbatches()) continue;
    run_microbatch(ctx, empty ? nullptr : &data[j], static_cast<int>(j), data[j].num_tokens(),
                   data[j].sum_sq());
    if (!empty) {
      loss += backend_->end_microbatch();
      seq_losses.push_back(backend_->sequence_losses());
    } else {
      seq_losses.emplace_back();
    }
  }
  complete_pending_push(ctx);
  strategy_->finish_gradients(ctx);
  if (groups_->replicas > 1)
    recorder_->timed(EventKind::replica_reduce, Lane::compute,
                     {ctx.step, -1, -1, layout_.shard_total() * 4, 0, 0}, [&] {
                       replica_allreduce(*backend_, groups_->replica, strategy_->grad_acc(),
                                         layout_.shard_total(), replica_staging_);
                     });
  recorder_->timed(EventKind::allreduce, Lane::compute, {step, -1, -1, 8, 0, 0},
                   [&] { loss = control_->allreduce_sum(loss); });
  if (dumping) write_dump(step, params_before, seq_ids, seq_losses);
  optimizer_step(ctx);
  const auto step_end = recorder_->mark(Lane::compute);

  StepRecord rec;
  rec.step = step;
  rec.rank = rank_;
  rec.tokens = tokens;
  rec.microbatches = nonempty;
  rec.loss = loss;
  recorder_->end_step(rec, step_begin, step_end);
  losses_.push_back(loss);

  if (verbose) {
    // Step line: the global step time needs every rank's start and end.
    const StepRecord& r = recorder_->steps().back();
    const double t0 = -control_->allreduce_max(static_cast<double>(-r.t_start_ns));
    const double t1 = control_->allreduce_max(static_cast<double>(r.t_end_ns));
    const double busy = control_->allreduce_sum(static_cast<double>(r.compute_ns));
    const double dt = (t1 - t0) * 1e-9;
    if (rank_ == 0) {
      const double util = busy * 1e-9 / (dt * world_);
      std::printf(
          "step %3d | %s | tokens %9.0f | loss %.4f | %9.2f ms | %10.0f tok/s | util %5.1f%% | "
          "idle %5.1f%%\n",
          step, to_string(cfg_.run.mode).c_str(), step_tokens, loss, dt * 1e3, step_tokens / dt,
          100 * util, 100 * (1 - util));
      std::fflush(stdout);
    }
  }
}

void Trainer::run_microbatch(StepContext& ctx, const MicrobatchData* data, int index,
                             int64_t tokens, double sum_sq) {
  const int units = layout_.num_units();
  const DType pdt = backend_->param_dtype();
  const auto fetch_bytes = [&](int u) {
    return layout_.unit(u).padded * static_cast<int64_t>(dtype_size(pdt));
  };
  const auto flops = [&](int u) { return cfg_.model.unit_forward_flops(u, tokens, sum_sq); };
  if (data) backend_->begin_microbatch(*data);

  struct Fetch {
    Request req;
    TimeSource::Mark begin;
    void* buf;
  };
  auto post_fetch = [&](int u) {
    void* buf = fetch_buf_[next_fetch_slot_];
    next_fetch_slot_ ^= 1;
    // Transports start a fetch after the compute queued so far (the buffer it fills was
    // read by it), so its begin mark is ordered the same way.
    const auto b = recorder_->mark_after(Lane::pull, Lane::compute);
    return Fetch{strategy_->fetch(ctx, u, buf), b, buf};
  };
  auto wait_fetch = [&](const Fetch& f, int u) {
    const auto w = recorder_->mark(Lane::compute);
    strategy_->wait_fetch(ctx, f.req);
    recorder_->add(EventKind::wait, Lane::compute, w, recorder_->mark(Lane::compute),
                   {ctx.step, index, u, 0, 0, 0});
    recorder_->add(strategy_->fetch_kind(), Lane::pull, f.begin, recorder_->mark(Lane::pull),
                   {ctx.step, index, u, fetch_bytes(u), 0, 0});
  };

  // Forward: unit u computes while unit u+1's parameters arrive.
  Fetch f = post_fetch(0);
  for (int u = 0; u < units; ++u) {
    wait_fetch(f, u);
    const Fetch cur = f;
    if (u + 1 < units) f = post_fetch(u + 1);
    if (data)
      recorder_->timed(EventKind::forward, Lane::compute, {ctx.step, index, u, 0, tokens, flops(u)},
                       [&] { backend_->forward(u, cur.buf); });
    strategy_->progress();
  }

  // Backward: unit u computes while unit u−1's parameters arrive and unit u+1's
  // gradients leave.
  f = post_fetch(units - 1);
  for (int u = units - 1; u >= 0; --u) {
    wait_fetch(f, u);
    const Fetch cur = f;
    if (u > 0) f = post_fetch(u - 1);
    const int slot = next_grad_slot_;
    next_grad_slot_ ^= 1;
    void* grads = grad_buf_[slot];
    if (data) {
      if (backend_->recompute_needed(u))
        recorder_->timed(EventKind::recompute, Lane::compute,
                         {ctx.step, index, u, 0, tokens, flops(u)},
                         [&] { backend_->recompute(u, cur.buf); });
      recorder_->timed(EventKind::backward, Lane::compute,
                       {ctx.step, index, u, 0, tokens, 2 * flops(u)},
                       [&] { backend_->backward(u, cur.buf, grads); });
    } else {
      backend_->fill_zero(
          grads, static_cast<size_t>(layout_.unit(u).padded) * dtype_size(backend_->grad_dtype()));
    }
    complete_pending_push(ctx);
    push_begin_ = recorder_->mark_after(Lane::push, Lane::compute);  // after its backward
    push_index_ = index;
    pending_push_ = {strategy_->push(ctx, u, grads, slot), u, slot};
    strategy_->progress();
  }
}

// Waits for the gradient push in flight (exposed time is a compute-lane wait) and
// records the push on the push lane.
void Trainer::complete_pending_push(StepContext& ctx) {
  if (pending_push_.req == kNoRequest) return;
  const int u = pending_push_.unit;
  const auto w = recorder_->mark(Lane::compute);
  strategy_->wait_push(ctx, pending_push_.req);
  recorder_->add(EventKind::wait, Lane::compute, w, recorder_->mark(Lane::compute),
                 {ctx.step, push_index_, u, 0, 0, 0});
  const int64_t bytes =
      layout_.unit(u).padded * static_cast<int64_t>(dtype_size(backend_->grad_dtype()));
  recorder_->add(strategy_->push_kind(), Lane::push, push_begin_, recorder_->mark(Lane::push),
                 {ctx.step, push_index_, u, bytes, 0, 0});
  strategy_->land_push(ctx, u, pending_push_.slot);
  pending_push_ = {};
}

void Trainer::optimizer_step(StepContext& ctx) {
  const int64_t n = layout_.shard_total();
  double sq = 0;
  recorder_->timed(EventKind::optimizer, Lane::compute, {ctx.step, -1, -1, 0, 0, 0},
                   [&] { sq = backend_->sum_squares(strategy_->grad_acc(), n); });
  recorder_->timed(EventKind::allreduce, Lane::compute, {ctx.step, -1, -1, 8, 0, 0},
                   [&] { sq = control_->allreduce_sum(sq) / groups_->replicas; });
  const double norm = std::sqrt(sq);
  const double clip = cfg_.optim.clip_norm;
  const float scale = clip > 0 && norm > clip ? static_cast<float>(clip / (norm + 1e-6)) : 1.0f;
  AdamWParams p = cfg_.optim.adamw;
  p.step = ++optimizer_steps_;
  recorder_->timed(EventKind::optimizer, Lane::compute, {ctx.step, -1, -1, 0, 0, 0}, [&] {
    backend_->adamw(strategy_->master(), m_, v_, strategy_->grad_acc(), n, p, scale);
  });
  strategy_->publish_params(ctx);
}

// Every unit's full fp32 buffer (numel elements), reassembled on rank 0 from all
// ranks' copies of `shard_buffer`; empty on the other ranks. Collective.
std::vector<std::vector<float>> Trainer::gather_units(const float* shard_buffer) {
  const auto n = static_cast<size_t>(layout_.shard_total());
  std::vector<float> mine(n);
  backend_->copy_to_host(mine.data(), shard_buffer, n * sizeof(float));
  std::vector<float> all(rank_ == 0 ? n * static_cast<size_t>(world_) : 0);
  MPI_Gather(mine.data(), static_cast<int>(n), MPI_FLOAT, all.data(), static_cast<int>(n),
             MPI_FLOAT, 0, comm_);
  std::vector<std::vector<float>> units;
  if (rank_ != 0) return units;
  for (int u = 0; u < layout_.num_units(); ++u) {
    const UnitShard& s = layout_.unit(u);
    std::vector<float> full;
    full.reserve(static_cast<size_t>(s.padded));
    for (int r = 0; r < layout_.world(); ++r) {  // shard group 0 holds every shard
      const float* p = all.data() + static_cast<size_t>(r) * n + static_cast<size_t>(s.offset);
      full.insert(full.end(), p, p + s.shard);
    }
    full.resize(static_cast<size_t>(s.numel));
    units.push_back(std::move(full));
  }
  return units;
}

std::string verification_problem(const std::vector<double>& losses, const float* shard, int64_t n) {
  for (size_t s = 0; s < losses.size(); ++s)
    if (!std::isfinite(losses[s]))
      return "the loss of step " + std::to_string(s) + " is not finite";
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(shard[i]))
      return "parameter element " + std::to_string(i) + " of the shard is not finite";
  return "";
}

std::string Trainer::verify() {
  const auto n = static_cast<size_t>(layout_.shard_total());
  std::vector<float> mine(n);
  backend_->copy_to_host(mine.data(), strategy_->master(), n * sizeof(float));
  std::string problem = verification_problem(losses_, mine.data(), static_cast<int64_t>(n));
  // Every rank holds the same loss (it is all-reduced).
  const double last = losses_.empty() ? 0.0 : losses_.back();
  if (problem.empty() && control_->allreduce_max(last) != -control_->allreduce_max(-last))
    problem = "the ranks report different losses";
  // Replicas of a shard must hold the same bits: compare a checksum across them.
  uint64_t sum = 1469598103934665603ULL;
  for (float x : mine) {
    uint32_t bits = 0;
    std::memcpy(&bits, &x, sizeof bits);
    sum = (sum ^ bits) * 1099511628211ULL;
  }
  uint64_t lo = sum, hi = sum;
  MPI_Allreduce(&sum, &lo, 1, MPI_UINT64_T, MPI_MIN, groups_->replica);
  MPI_Allreduce(&sum, &hi, 1, MPI_UINT64_T, MPI_MAX, groups_->replica);
  if (problem.empty() && lo != hi)
    problem = "the replicas of shard " + std::to_string(groups_->shard_rank) +
              " hold different parameters";
  // Σx² over one shard group covers every parameter once (replicas hold the same bits).
  double sum_sq = 0;
  for (float x : mine) sum_sq += static_cast<double>(x) * x;
  MPI_Allreduce(MPI_IN_PLACE, &sum_sq, 1, MPI_DOUBLE, MPI_SUM, groups_->shard);
  parameter_norm_ = std::sqrt(sum_sq);
  // The first failing rank's text, on every rank.
  const auto [first, text] = first_failure(comm_, problem);
  return first < 0 ? "" : "rank " + std::to_string(first) + ": " + text;
}

std::vector<std::vector<float>> Trainer::gather_parameters() {
  return gather_units(strategy_->master());
}

void Trainer::write_dump(int step, const std::vector<std::vector<float>>& params_before,
                         const std::vector<std::vector<int>>& seq_ids,
                         const std::vector<std::vector<double>>& seq_losses) {
  // Gradients: the step's accumulated, unclipped gradient of every unit.
  std::vector<std::vector<float>> grads = gather_units(strategy_->grad_acc());
  // Per-sequence losses: (sequence index, loss) pairs from every rank.
  std::vector<double> pairs;
  for (size_t j = 0; j < seq_ids.size(); ++j)
    for (size_t k = 0; k < seq_ids[j].size() && k < seq_losses[j].size(); ++k) {
      pairs.push_back(seq_ids[j][k]);
      pairs.push_back(seq_losses[j][k]);
    }
  int count = static_cast<int>(pairs.size());
  std::vector<int> counts(static_cast<size_t>(world_)), displs(static_cast<size_t>(world_));
  MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, comm_);
  int total = 0;
  for (int r = 0; r < world_; ++r) {
    displs[static_cast<size_t>(r)] = total;
    total += counts[static_cast<size_t>(r)];
  }
  std::vector<double> gathered(static_cast<size_t>(rank_ == 0 ? total : 0));
  MPI_Gatherv(pairs.data(), count, MPI_DOUBLE, gathered.data(), counts.data(), displs.data(),
              MPI_DOUBLE, 0, comm_);
  if (rank_ != 0) return;

  ModelDump d;
  d.step = step;
  d.shape = cfg_.model;
  d.params = params_before;
  d.grads = std::move(grads);
  const auto& lengths = lengths_[static_cast<size_t>(step)];
  d.lengths = lengths;
  for (size_t i = 0; i < lengths.size(); ++i) {
    const auto t =
        sequence_tokens(cfg_.run.seed, step, static_cast<int>(i), lengths[i], cfg_.model.vocab);
    d.tokens.insert(d.tokens.end(), t.begin(), t.end());
  }
  d.sequence_loss.assign(lengths.size(), std::nan(""));
  for (size_t i = 0; i + 1 < gathered.size(); i += 2)
    d.sequence_loss[static_cast<size_t>(gathered[i])] = gathered[i + 1];
  write_model_dump(cfg_.run.dump, d);
}

RunFile Trainer::collect() {
  RunFile rf;
  // Events, steps and sequences are PODs: gather them as bytes.
  auto gather_bytes = [&](const auto& vec) {
    using T = typename std::decay_t<decltype(vec)>::value_type;
    const long long mine = static_cast<long long>(vec.size() * sizeof(T));
    std::vector<long long> sizes(static_cast<size_t>(world_));
    MPI_Gather(&mine, 1, MPI_LONG_LONG, sizes.data(), 1, MPI_LONG_LONG, 0, comm_);
    std::vector<T> out;
    if (rank_ == 0) {
      out = vec;
      for (int r = 1; r < world_; ++r) {
        std::vector<T> part(static_cast<size_t>(sizes[static_cast<size_t>(r)]) / sizeof(T));
        // Chunks of at most 1 GiB keep the int count in range.
        auto* p = reinterpret_cast<char*>(part.data());
        long long left = sizes[static_cast<size_t>(r)];
        while (left > 0) {
          const int chunk = static_cast<int>(std::min<long long>(left, 1LL << 30));
          MPI_Recv(p, chunk, MPI_BYTE, r, 77, comm_, MPI_STATUS_IGNORE);
          p += chunk;
          left -= chunk;
        }
        out.insert(out.end(), part.begin(), part.end());
      }
    } else {
      const auto* p = reinterpret_cast<const char*>(vec.data());
      long long left = mine;
      while (left > 0) {
        const int chunk = static_cast<int>(std::min<long long>(left, 1LL << 30));
        MPI_Send(p, chunk, MPI_BYTE, 0, 77, comm_);
        p += chunk;
        left -= chunk;
      }
    }
    return out;
  };
  rf.events = gather_bytes(recorder_->events());
  rf.steps = gather_bytes(recorder_->steps());
  rf.sequences = gather_bytes(sequences_);
  const int64_t peak = backend_->peak_memory_bytes();
  std::vector<int64_t> peaks(static_cast<size_t>(world_));
  MPI_Gather(&peak, 1, MPI_INT64_T, peaks.data(), 1, MPI_INT64_T, 0, comm_);
  if (rank_ == 0) {
    rf.summary =
        summarize(rf.steps, world_, cfg_.run.warmup_steps, step_flops_, cfg_.compute.peak_tflops);
    rf.summary.peak_memory_per_rank = peaks;
    rf.summary.peak_memory_bytes = *std::max_element(peaks.begin(), peaks.end());
  }
  return rf;
}

}  // namespace minipt
