// When hybrid sharding sums the gradient shards across replicas (parallel.replica_reduce):
//   step: one all-reduce of the whole accumulated shard after the last microbatch;
//   unit: each unit's slice as soon as the last microbatch's reduce-scatter of that unit
//         has landed in the accumulator, left in flight while the backward goes on to the
//         units below, and waited for before the optimizer (fsdp only: odc's gradients
//         are final only after its barrier, so odc always reduces per step).
// Either way the step records one replica_reduce event on the compute lane: the blocking
// all-reduce (step), or the wait for the sums still in flight (unit: the exposed part).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "comm/replica.hpp"
#include "model/shape.hpp"
#include "trace/recorder.hpp"

namespace minipt {

class ReplicaReduction {
 public:
  // Sums `grads` (layout.shard_total() fp32 elements in the backend's memory) over
  // groups.replica with the replica transport `transport` (a row of replica_transports());
  // nothing to do when there is one replica.
  ReplicaReduction(Device& backend, const ShardGroups& groups, const ShardLayout& layout,
                   float* grads, bool per_unit, const std::string& transport);

  bool active() const { return comm_ != nullptr; }
  bool per_unit() const { return per_unit_; }
  // "none" without replicas, else the ReplicaComm's name (mpi, mpi-staged, nccl).
  std::string transport() const { return comm_ ? comm_->name() : "none"; }

  // A step starts.
  void begin_step();
  // Starts unit `unit`'s sum (the step program's replica_start: the last microbatch's
  // gradient of the unit has landed in the accumulator).
  void start(int unit);
  void progress() {
    if (comm_) comm_->progress();
  }
  // Starts every unit not yet started (from the last unit down, the order of the
  // backward), waits for all; records the replica_reduce event of `step`.
  void finish(Recorder& recorder, int step);

 private:
  const ShardLayout& layout_;
  bool per_unit_;
  std::unique_ptr<ReplicaComm> comm_;
  std::vector<bool> started_;
};

}  // namespace minipt
