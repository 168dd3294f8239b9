// The step program: one rank's training step as an ordered list of operations, made
// once from that rank's plan and the mode's traits. The trainer (train/trainer.cpp)
// executes it with real calls; the simulator (sim/simulate.cpp) replays the same list on
// its discrete-event engine. A new operation is one OpKind, one kOps row, the place the
// builder emits it, and one case in each of the two interpreters.
//
// A microbatch is: begin, then per unit (forward order) fetch the next unit, wait for
// this one, forward; then per unit (reverse order) fetch the next, wait for this one,
// recompute and backward (or zero gradients for an empty microbatch that the mode joins),
// land the push in flight and push this unit's gradients; end. After the last microbatch:
// land the last push, the mode's flush and barrier, the replica reduction, the loss and
// norm reductions, the optimizer and the publication of the new shard.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "compute/backend.hpp"
#include "config/config.hpp"
#include "model/cost_model.hpp"
#include "trace/events.hpp"
#include "workload/workload.hpp"

namespace minipt::step {

// A unit's compute passes, numbered as the cost model's unit_time() numbers them.
enum class Pass : int8_t { forward = 0, backward = 1, recompute = 2 };

enum class OpKind : int8_t {
  begin_microbatch,  // the microbatch's input is handed to compute
  fetch,             // starts bringing the unit's parameters (the mode's fetch kind)
  wait_fetch,        // compute waits for the fetch of the unit; records it
  compute,           // a pass of the unit on the microbatch
  zero_grads,        // an empty microbatch's zero gradient of the unit (fsdp joins)
  land,              // waits for the push in flight and lands it (records it)
  push,              // starts sending the unit's gradients (the mode's push kind)
  replica_start,     // starts the unit's replica sum (parallel.replica_reduce = unit)
  end_microbatch,    // the microbatch's loss is taken
  flush,             // completes every one-sided push of the rank
  gradient_barrier,  // every rank's gradients have landed
  replica_reduce,    // sums the gradient shard over the replicas (starts what is left)
  loss_allreduce,    // the step's loss over every rank
  grad_norm,         // optimizer: the shard's sum of squares
  norm_allreduce,    // the gradient norm over every rank
  adamw,             // optimizer: AdamW on the shard
  publish,           // the new shard is made readable
  publish_barrier,   // every rank's new shard is published
};
constexpr int kOpKinds = 18;

// What an operation kind is: its lane, whether it computes (compute-lane busy time) or
// communicates, and the event it records (`records_fetch`/`records_push`: the mode's
// fetch or push kind; none where it records nothing). The optimizer's two sub-phases are
// told apart by `name`, which calibrate reads.
struct OpRow {
  OpKind kind;
  std::string_view name;
  Lane lane;
  bool computes;
  bool communicates;
  bool records_event;  // records `event` (or the mode's fetch/push kind)
  EventKind event;
  bool records_fetch = false, records_push = false;
};
extern const std::array<OpRow, kOpKinds> kOps;
inline const OpRow& row(OpKind k) { return kOps[static_cast<size_t>(k)]; }

// How parallel.replica_reduce sums the gradient shards across replicas.
enum class ReplicaPolicy : int8_t { step, unit };

// A data-parallel mode's traits: one row per Mode.
struct ModeRow {
  Mode mode;
  std::string_view name;
  EventKind fetch_event, push_event;
  CommOp fetch_op, push_op;
  bool joins_empty_microbatches;  // fsdp: every rank joins every collective
  bool lands_into_accumulator;    // land adds the received shard (accumulate_grad)
  bool flushes;                   // flush + gradient barrier before the optimizer
  bool publish_barrier;           // a barrier after publishing the new shard
  bool replica_per_unit;          // may sum replicas per unit (gradients final on landing)
};
extern const std::array<ModeRow, 2> kModes;
const ModeRow& mode_row(Mode m);

// One operation. `microbatch` and `unit` are -1 where not tied to one.
struct Op {
  OpKind kind = OpKind::begin_microbatch;
  Pass pass = Pass::forward;  // compute only
  int16_t unit = -1;
  int32_t microbatch = -1;
};
using Program = std::vector<Op>;

// Everything but the plan that a rank's step is made from.
struct StepTraits {
  const ModeRow* mode = nullptr;
  int units = 0;                // the shard layout's units
  std::vector<bool> recompute;  // per unit: a recompute pass before its backward
  int replicas = 1;             // shard groups summed after the last microbatch
  ReplicaPolicy replica = ReplicaPolicy::step;
  // Replica sums start per unit as the last microbatch's gradients land (else per step).
  bool replica_per_unit() const {
    return replicas > 1 && replica == ReplicaPolicy::unit && mode->replica_per_unit;
  }
};
StepTraits step_traits(const Config& cfg, int world, const std::vector<bool>& recompute);

// Writes one rank's step a few operations at a time: each call of next() replaces `out`
// with the next segment (a microbatch's start, one unit's forward or backward, its end,
// what follows the last microbatch), false when the step is written. The simulator
// replays each segment before the next is written, so that the programs of 16,384 ranks
// in flight together stay small; build_step() writes the whole step from the same calls.
class StepWriter {
 public:
  StepWriter(const StepTraits& traits, const RankPlan& plan);
  bool next(Program& out);

 private:
  enum class Phase : int8_t { begin, forward, backward, finish, done };
  void land(Program& out);
  void finish(Program& out);

  const StepTraits& traits_;
  const RankPlan& plan_;
  int last_ = -1;  // the plan's last microbatch
  Phase phase_ = Phase::begin;
  int j_ = 0, u_ = 0;  // the microbatch and unit written next
  bool empty_ = false;
  Op pending_{};  // the push in flight, if in_flight_
  bool in_flight_ = false;
};
Program build_step(const StepTraits& traits, const RankPlan& plan);

// The events (kind, microbatch, unit) a program records on its rank, in the order the
// interpreters record them (waits excluded: they are recorded only where compute waited).
struct RecordedEvent {
  EventKind kind;
  int microbatch, unit;
  bool operator==(const RecordedEvent&) const = default;
};
std::vector<RecordedEvent> recorded_events(const Program& p, const ModeRow& mode);

// The operation that records the n-th event of kind `k` after a step's last microbatch
// (the optimizer's: 0 grad_norm, 1 adamw, the same in every mode), for readers of a
// timeline that tell sub-phases apart by name; begin_microbatch where there is none.
OpKind tail_op_recording(EventKind k, int n);

}  // namespace minipt::step
