#include "step/program.hpp"

#include <stdexcept>

#include "core/parallel.hpp"

namespace minipt::step {

namespace {
constexpr EventKind kNone = EventKind::wait;  // a row that records nothing names this
}  // namespace

// clang-format off
const std::array<OpRow, kOpKinds> kOps = {{
  // kind                       name                lane           computes communicates records event
  {OpKind::begin_microbatch, "begin_microbatch", Lane::compute, false, false, false, kNone},
  {OpKind::fetch,            "fetch",            Lane::pull,    false, true,  false, kNone},
  {OpKind::wait_fetch,       "wait_fetch",       Lane::pull,    false, true,  true,  kNone, true},
  {OpKind::compute,          "compute",          Lane::compute, true,  false, true,  kNone},
  {OpKind::zero_grads,       "zero_grads",       Lane::compute, false, false, false, kNone},
  {OpKind::land,             "land",             Lane::push,    false, true,  true,  kNone, false, true},
  {OpKind::push,             "push",             Lane::push,    false, true,  false, kNone},
  {OpKind::replica_start,    "replica_start",    Lane::compute, false, true,  false, kNone},
  {OpKind::end_microbatch,   "end_microbatch",   Lane::compute, false, false, false, kNone},
  {OpKind::flush,            "flush",            Lane::push,    false, true,  false, kNone},
  {OpKind::gradient_barrier, "gradient_barrier", Lane::compute, false, true,  true,  EventKind::barrier},
  {OpKind::replica_reduce,   "replica_reduce",   Lane::compute, false, true,  true,  EventKind::replica_reduce},
  {OpKind::loss_allreduce,   "loss_allreduce",   Lane::compute, false, true,  true,  EventKind::allreduce},
  {OpKind::grad_norm,        "grad_norm",        Lane::compute, true,  false, true,  EventKind::optimizer},
  {OpKind::norm_allreduce,   "norm_allreduce",   Lane::compute, false, true,  true,  EventKind::allreduce},
  {OpKind::adamw,            "adamw",            Lane::compute, true,  false, true,  EventKind::optimizer},
  {OpKind::publish,          "publish",          Lane::compute, false, false, false, kNone},
  {OpKind::publish_barrier,  "publish_barrier",  Lane::compute, false, true,  true,  EventKind::barrier},
}};

const std::array<ModeRow, 2> kModes = {{
  // mode      name    fetch event        push event                 fetch op           push op                 joins  lands  flush  pub.bar per-unit
  {Mode::fsdp, "fsdp", EventKind::gather, EventKind::reduce_scatter, CommOp::allgather, CommOp::reduce_scatter, true,  true,  false, false, true},
  {Mode::odc,  "odc",  EventKind::get,    EventKind::accumulate,     CommOp::get,       CommOp::accumulate,     false, false, true,  true,  false},
}};
// clang-format on

namespace {
constexpr bool rows_in_order() {
  for (size_t i = 0; i < kOpKinds; ++i)
    if (static_cast<size_t>(kOps[i].kind) != i) return false;
  return true;
}
}  // namespace

const ModeRow& mode_row(Mode m) {
  static_assert(static_cast<int>(OpKind::publish_barrier) + 1 == kOpKinds);
  static const bool ordered = rows_in_order();
  if (!ordered) throw std::logic_error("step::kOps rows out of OpKind order");
  for (const ModeRow& r : kModes)
    if (r.mode == m) return r;
  throw std::logic_error("step::mode_row: no row for the mode");
}

StepTraits step_traits(const Config& cfg, int world, const std::vector<bool>& recompute) {
  StepTraits t;
  t.mode = &mode_row(cfg.run.mode);
  t.units = cfg.model.num_units();
  t.recompute = recompute;
  t.replicas = world / shard_group_size(cfg, world);
  t.replica = cfg.parallel.replica_reduce == ReplicaReduce::unit ? ReplicaPolicy::unit
                                                                 : ReplicaPolicy::step;
  return t;
}

StepWriter::StepWriter(const StepTraits& traits, const RankPlan& plan)
    : traits_(traits), plan_(plan), last_(static_cast<int>(plan.microbatches.size()) - 1) {}

void StepWriter::land(Program& out) {
  if (!in_flight_) return;
  out.push_back({.kind = OpKind::land, .unit = pending_.unit, .microbatch = pending_.microbatch});
  // Per-unit replica sums start as the last microbatch's gradient of a unit lands.
  if (traits_.replica_per_unit() && pending_.microbatch == last_)
    out.push_back(
        {.kind = OpKind::replica_start, .unit = pending_.unit, .microbatch = pending_.microbatch});
  in_flight_ = false;
}

bool StepWriter::next(Program& out) {
  out.clear();
  const int units = traits_.units;
  const auto at = [&](OpKind k, int u, Pass p = Pass::forward) {
    out.push_back({.kind = k, .pass = p, .unit = static_cast<int16_t>(u), .microbatch = j_});
  };
  for (;;) switch (phase_) {
      case Phase::begin:
        if (j_ == static_cast<int>(plan_.microbatches.size())) {
          phase_ = Phase::finish;
          continue;
        }
        empty_ = plan_.microbatches[static_cast<size_t>(j_)].sequences.empty();
        if (empty_ && !traits_.mode->joins_empty_microbatches) {  // odc skips it
          ++j_;
          continue;
        }
        at(OpKind::begin_microbatch, -1);
        at(OpKind::fetch, 0);
        phase_ = Phase::forward;
        u_ = 0;
        return true;
      case Phase::forward:  // unit u computes while unit u+1's parameters arrive
        at(OpKind::wait_fetch, u_);
        if (u_ + 1 < units) at(OpKind::fetch, u_ + 1);
        if (!empty_) at(OpKind::compute, u_, Pass::forward);
        if (++u_ == units) {
          at(OpKind::fetch, units - 1);
          phase_ = Phase::backward;
          u_ = units - 1;
        }
        return true;
      case Phase::backward:  // unit u computes while unit u-1's parameters arrive and
                             // unit u+1's gradients leave (at most one push in flight)
        at(OpKind::wait_fetch, u_);
        if (u_ > 0) at(OpKind::fetch, u_ - 1);
        if (empty_) {
          at(OpKind::zero_grads, u_);
        } else {
          if (traits_.recompute[static_cast<size_t>(u_)]) at(OpKind::compute, u_, Pass::recompute);
          at(OpKind::compute, u_, Pass::backward);
        }
        land(out);
        at(OpKind::push, u_);
        pending_ = out.back();
        in_flight_ = true;
        if (u_-- == 0) {
          at(OpKind::end_microbatch, -1);
          ++j_;
          phase_ = Phase::begin;
        }
        return true;
      case Phase::finish:
        finish(out);
        phase_ = Phase::done;
        return true;
      case Phase::done:
        return false;
    }
}

void StepWriter::finish(Program& out) {
  land(out);
  const ModeRow& m = *traits_.mode;
  if (m.flushes) {
    out.push_back({.kind = OpKind::flush});
    out.push_back({.kind = OpKind::gradient_barrier});
  }
  if (traits_.replicas > 1) out.push_back({.kind = OpKind::replica_reduce});
  out.push_back({.kind = OpKind::loss_allreduce});
  out.push_back({.kind = OpKind::grad_norm});
  out.push_back({.kind = OpKind::norm_allreduce});
  out.push_back({.kind = OpKind::adamw});
  out.push_back({.kind = OpKind::publish});
  if (m.publish_barrier) out.push_back({.kind = OpKind::publish_barrier});
}

Program build_step(const StepTraits& traits, const RankPlan& plan) {
  Program p, part;
  StepWriter w(traits, plan);
  while (w.next(part)) p.insert(p.end(), part.begin(), part.end());
  return p;
}

std::vector<RecordedEvent> recorded_events(const Program& p, const ModeRow& mode) {
  std::vector<RecordedEvent> out;
  for (const Op& op : p) {
    const OpRow& r = row(op.kind);
    if (!r.records_event) continue;
    EventKind k = r.event;
    if (r.records_fetch) k = mode.fetch_event;
    if (r.records_push) k = mode.push_event;
    if (op.kind == OpKind::compute)
      k = op.pass == Pass::forward    ? EventKind::forward
          : op.pass == Pass::backward ? EventKind::backward
                                      : EventKind::recompute;
    out.push_back({k, op.microbatch, op.unit});
    if (op.kind == OpKind::land && mode.lands_into_accumulator)
      out.push_back({EventKind::accumulate_grad, -1, op.unit});
  }
  return out;
}

OpKind tail_op_recording(EventKind k, int n) {
  static const Program tail = [] {
    StepTraits t;
    t.mode = &mode_row(Mode::fsdp);
    const RankPlan none;
    return build_step(t, none);
  }();
  for (const Op& op : tail)
    if (row(op.kind).records_event && row(op.kind).event == k && n-- == 0) return op.kind;
  return OpKind::begin_microbatch;
}

}  // namespace minipt::step
