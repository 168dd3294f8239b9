#include "train/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "comm/mpi_transports.hpp"
#include "comm/replica.hpp"
#include "comm/topology.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"

namespace minipt {

namespace {

// The strategy's transports: comm's choice for this rank's shard group, with the comm.*
// settings they take.
StrategyOptions strategy_options(const Config& cfg, const TransportChoice& transports) {
  StrategyOptions o;
  static_cast<TransportChoice&>(o) = transports;
  o.deterministic = cfg.comm_deterministic;
  o.pull_by_kernel = cfg.comm.odc_pull == OdcPull::kernel;
  return o;
}

}  // namespace

Trainer::Trainer(const Config& cfg, MPI_Comm comm)
    : Trainer(RunPlan(cfg,
                      [&] {
                        int w = 1;
                        MPI_Comm_size(comm, &w);
                        return w;
                      }()),
              comm) {}

Trainer::Trainer(const RunPlan& run_plan, MPI_Comm comm)
    : cfg_(run_plan.config()),
      comm_(comm),
      layout_(
          cfg_.model,
          [&] {
            int w = 1;
            MPI_Comm_size(comm, &w);
            return shard_group_size(cfg_, w);
          }(),
          cfg_.model_scale),
      run_plan_(run_plan) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &world_);
  if (run_plan_.world() != world_)
    throw std::invalid_argument("Trainer: a run plan of " + std::to_string(run_plan_.world()) +
                                " ranks for a communicator of " + std::to_string(world_));
  ComputeOptions copt = cfg_.compute;  // with the cost file in copt.costs, where one is set
  copt.seed = cfg_.run.seed;
  copt.param_scale = cfg_.model_scale;
  backend_ = make_backend(copt, cfg_.model, rank_, local_rank_of(comm_));
  control_ = make_mpi_control(comm_);
  recorder_ = std::make_unique<Recorder>(rank_, backend_->time_source(), align_clocks(comm_),
                                         cfg_.run.trace);
  // Hybrid sharding: the strategy communicates inside this rank's shard group only; the
  // gradient shards are summed across the replicas after the last microbatch.
  const JobTransports job = job_transports(comm_, layout_.world(), cfg_.compute.backend, cfg_.comm);
  nodes_ = job.nodes;
  groups_ = std::make_unique<ShardGroups>(comm_, layout_.world());
  transports_ = strategy_options(cfg_, job.transports);
  strategy_ = cfg_.run.mode == Mode::fsdp
                  ? make_fsdp_strategy(*backend_, layout_, groups_->shard, transports_)
                  : make_odc_strategy(*backend_, layout_, comm_, groups_->shard, transports_);

  const auto shard_bytes = static_cast<size_t>(layout_.shard_total()) * sizeof(float);
  m_ = static_cast<float*>(backend_->allocate(shard_bytes));
  v_ = static_cast<float*>(backend_->allocate(shard_bytes));
  traits_ =
      step::step_traits(cfg_, world_, std::vector<bool>(static_cast<size_t>(layout_.num_units())));
  pipeline_ =
      std::make_unique<UnitPipeline>(*backend_, *strategy_, *traits_.mode, *recorder_, layout_);
  replica_ = std::make_unique<ReplicaReduction>(
      *backend_, *groups_, layout_, strategy_->grad_acc(),
      traits_.mode->replica_per_unit && traits_.replica == step::ReplicaPolicy::unit,
      transports_.replica);

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
  if (traits_.mode->publish_barrier) strategy_->barrier(ctx, false);
  recorder_->discard_pending();  // set-up is not part of any step's timeline

  // Every step's plan, made one step at a time (its lengths drawn then, issue 31: no step's
  // lengths are kept beyond its planning); every microbatch shape this rank will run is
  // handed to the backend before the first step (so that, e.g., cuDNN graph builds do not
  // fall into timed steps). Step 0's plan is kept for step 0; later steps plan again.
  for (int step = 0; step < cfg_.run.steps; ++step) {
    StepPlan plan = run_plan_.plan(step);
    for (const Microbatch& mb : plan.ranks[static_cast<size_t>(rank_)].microbatches)
      if (!mb.sequences.empty()) backend_->prepare_microbatch_shape(cu_seqlens_of(plan, mb));
    if (step == 0) {
      plan_ = std::move(plan);
      plan_step_ = 0;
    }
  }
  tuning_ = tune_kernels(cfg_, *backend_, comm_, layout_, cfg_.run.steps,
                         [this](int step) { return run_plan_.plan(step); });
  // MFU's peak: the configured device peak, else the device's from the backend's table,
  // else compute.peak_tflops (the emulated backends' modelled rate, a CPU's placeholder).
  const bool measures = !compute_backends().at(cfg_.compute.backend, "compute.backend").models_time;
  if (measures && cfg_.compute.device_peak_tflops > 0) {
    peak_tflops_ = cfg_.compute.device_peak_tflops;
    peak_source_ = "compute.device_peak_tflops";
  } else if (measures && backend_->device_peak_tflops() > 0) {
    peak_tflops_ = backend_->device_peak_tflops();
    peak_source_ = "device table: " + backend_->device_name();
  } else {
    peak_tflops_ = cfg_.compute.peak_tflops;
    peak_source_ = "compute.peak_tflops";
  }
}

const StepPlan& Trainer::plan_of(int step) {
  if (plan_step_ != step) {
    plan_ = run_plan_.plan(step);
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

// What the operations of one step pass to each other.
struct Trainer::StepState {
  const StepInput& in;
  StepContext ctx;
  const MicrobatchData* data = nullptr;  // the microbatch's input; nullptr: empty
  UnitPipeline::Fetch fetch{};
  void* params = nullptr;
  std::pair<void*, int> grads{nullptr, 0};
  double loss = 0, sq = 0;
  std::vector<std::vector<double>> seq_losses{};
};

// One step, timed from the first microbatch to the published parameters: this rank's
// step program (step/program.hpp), each operation executed with real calls.
void Trainer::run_step(int step, bool verbose) {
  const StepInput in = load_step(step);  // untimed (trainer_untimed.cpp)
  const bool dumping = !cfg_.run.dump.empty() && step == cfg_.run.dump_step;
  std::vector<std::vector<float>> params_before;
  if (dumping) params_before = gather_parameters();
  for (int u = 0; u < layout_.num_units(); ++u)
    traits_.recompute[static_cast<size_t>(u)] = backend_->recompute_needed(u);
  const step::Program program =
      step::build_step(traits_, plan_of(step).ranks[static_cast<size_t>(rank_)]);

  StepState st{in, StepContext{*backend_, *control_, *recorder_, layout_, rank_, step}};
  const auto step_begin = recorder_->mark(Lane::compute);
  replica_->begin_step();
  for (const step::Op& op : program) {
    // The dump holds the gradients before the optimizer changes them.
    if (op.kind == step::OpKind::grad_norm && dumping)
      write_dump(step, params_before, in.seq_ids, st.seq_losses);
    execute(op, st);
  }
  const auto step_end = recorder_->mark(Lane::compute);

  recorder_->end_step({.step = step,
                       .rank = rank_,
                       .tokens = in.tokens,
                       .microbatches = in.nonempty,
                       .loss = st.loss},
                      step_begin, step_end);
  losses_.push_back(st.loss);
  if (verbose) print_step_line(step, st.loss, in.step_tokens);
}

// One operation of the step program. Forward and backward of a unit compute from the
// parameters its wait_fetch made usable; an empty microbatch (fsdp) joins every
// collective with zero gradients.
void Trainer::execute(const step::Op& op, StepState& st) {
  using K = step::OpKind;
  StepContext& ctx = st.ctx;
  const int u = op.unit;
  const auto fields = [&](double flops_factor) {
    const int64_t tokens = st.data->num_tokens();
    return Recorder::Fields{
        .step = ctx.step,
        .microbatch = op.microbatch,
        .unit = u,
        .tokens = tokens,
        .flops = flops_factor * cfg_.model.unit_forward_flops(u, tokens, st.data->sum_sq())};
  };
  switch (op.kind) {
    case K::begin_microbatch: {
      const MicrobatchData& d = st.in.data[static_cast<size_t>(op.microbatch)];
      st.data = d.tokens.empty() ? nullptr : &d;
      if (st.data) backend_->begin_microbatch(d);
      break;
    }
    case K::fetch:
      st.fetch = pipeline_->post_fetch(ctx, u);
      break;
    case K::wait_fetch:
      st.params = pipeline_->wait_fetch(ctx, st.fetch, op.microbatch, u);
      break;
    case K::compute:
      if (op.pass == step::Pass::forward) {
        recorder_->timed(EventKind::forward, Lane::compute, fields(1),
                         [&] { backend_->forward(u, st.params); });
        progress();
      } else if (op.pass == step::Pass::recompute) {
        recorder_->timed(EventKind::recompute, Lane::compute, fields(1),
                         [&] { backend_->recompute(u, st.params); });
      } else {
        st.grads = pipeline_->next_grads();
        recorder_->timed(EventKind::backward, Lane::compute, fields(2),
                         [&] { backend_->backward(u, st.params, st.grads.first); });
      }
      break;
    case K::zero_grads:
      st.grads = pipeline_->next_grads();
      backend_->fill_zero(st.grads.first, static_cast<size_t>(layout_.unit(u).padded) *
                                              dtype_size(backend_->grad_dtype()));
      break;
    case K::land:
      pipeline_->complete_push(ctx);
      break;
    case K::push:
      pipeline_->push(ctx, op.microbatch, u, st.grads.first, st.grads.second);
      progress();
      break;
    case K::replica_start:
      replica_->start(u);
      break;
    case K::end_microbatch:
      st.loss += st.data ? backend_->end_microbatch() : 0.0;
      st.seq_losses.push_back(st.data ? backend_->sequence_losses() : std::vector<double>{});
      break;
    case K::flush:
      strategy_->flush(ctx);
      break;
    case K::gradient_barrier:
      strategy_->barrier(ctx, true);
      break;
    case K::replica_reduce:
      replica_->finish(*recorder_, ctx.step);
      break;
    case K::loss_allreduce:
      recorder_->timed(EventKind::allreduce, Lane::compute, {.step = ctx.step, .bytes = 8},
                       [&] { st.loss = control_->allreduce_sum(st.loss); });
      break;
    case K::grad_norm:
      recorder_->timed(EventKind::optimizer, Lane::compute, {.step = ctx.step}, [&] {
        st.sq = backend_->sum_squares(strategy_->grad_acc(), layout_.shard_total());
      });
      break;
    case K::norm_allreduce:
      recorder_->timed(EventKind::allreduce, Lane::compute, {.step = ctx.step, .bytes = 8},
                       [&] { st.sq = control_->allreduce_sum(st.sq) / groups_->replicas; });
      break;
    case K::adamw:
      adamw(ctx, st.sq);
      break;
    case K::publish:
      strategy_->publish_params(ctx);
      break;
    case K::publish_barrier:
      strategy_->barrier(ctx, false);
      break;
  }
}

void Trainer::progress() {
  strategy_->progress();
  replica_->progress();
}

// AdamW on the rank's shard, the gradient clipped to optim.clip_norm by its norm²
// `sq` over every rank.
void Trainer::adamw(StepContext& ctx, double sq) {
  const double norm = std::sqrt(sq);
  const double clip = cfg_.optim.clip_norm;
  const float scale = clip > 0 && norm > clip ? static_cast<float>(clip / (norm + 1e-6)) : 1.0f;
  AdamWParams p = cfg_.optim.adamw;
  p.step = ++optimizer_steps_;
  recorder_->timed(EventKind::optimizer, Lane::compute, {.step = ctx.step}, [&] {
    backend_->adamw(strategy_->master(), m_, v_, strategy_->grad_acc(), layout_.shard_total(), p,
                    scale);
  });
}

}  // namespace minipt
