#include "train/replica_reduction.hpp"

namespace minipt {

ReplicaReduction::ReplicaReduction(Device& backend, const ShardGroups& groups,
                                   const ShardLayout& layout, float* grads, bool per_unit,
                                   const std::string& transport)
    : layout_(layout), per_unit_(per_unit) {
  if (groups.replicas > 1)
    comm_ = make_replica_comm(transport, {.replica = groups.replica,
                                          .backend = backend,
                                          .data = grads,
                                          .count = layout.shard_total()});
  started_.assign(static_cast<size_t>(layout.num_units()), false);
}

void ReplicaReduction::begin_step() { started_.assign(started_.size(), false); }

void ReplicaReduction::start(int unit) {
  const UnitShard& s = layout_.unit(unit);
  comm_->start(s.offset, s.shard);
  started_[static_cast<size_t>(unit)] = true;
}

void ReplicaReduction::finish(Recorder& recorder, int step) {
  if (!comm_) return;
  recorder.timed(EventKind::replica_reduce, Lane::compute,
                 {.step = step, .bytes = layout_.shard_total() * 4}, [&] {
                   if (per_unit_) {
                     for (int u = layout_.num_units() - 1; u >= 0; --u)
                       if (!started_[static_cast<size_t>(u)]) start(u);
                   } else {
                     comm_->start(0, layout_.shard_total());
                   }
                   comm_->wait_all();
                 });
}

}  // namespace minipt
