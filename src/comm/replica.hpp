// Hybrid sharding's cross-replica reduction: the ranks that own the same shard in every
// shard group add their gradient shards (an all-reduce over the replica communicator).
#pragma once

#include <mpi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "compute/backend.hpp"
#include "core/registry.hpp"

namespace minipt {

// The communicators of a hybrid-sharded job: `shard` joins the `shard_size` consecutive
// ranks of this rank's group, `replica` the world/shard_size ranks holding the same shard
// index in every group. Collective over `world`; freed by the destructor.
struct ShardGroups {
  ShardGroups(MPI_Comm world, int shard_size);
  ~ShardGroups();
  ShardGroups(const ShardGroups&) = delete;
  ShardGroups& operator=(const ShardGroups&) = delete;
  MPI_Comm shard = MPI_COMM_NULL, replica = MPI_COMM_NULL;
  int shard_size = 1, replicas = 1;
  int shard_rank = 0;  // this rank's index inside its group (the shard it owns)
};

// Non-blocking in-place sums, over the replica communicator, of slices of one fp32
// buffer (the gradient accumulator) that lives in the backend's memory. Every replica
// must start the same slices in the same order.
class ReplicaComm {
 public:
  virtual ~ReplicaComm() = default;
  virtual std::string name() const = 0;
  // Starts data[offset .. offset+n) ← Σ over the replicas. The slice must not be written
  // until wait_all(); on a GPU the sum starts after the work queued on the compute lane.
  virtual void start(int64_t offset, int64_t n) = 0;
  // Lets started sums progress (MPI needs calls to progress).
  virtual void progress() {}
  // Completes every started sum: the compute lane may read them afterwards.
  virtual void wait_all() = 0;
};

// What a replica transport's factory gets: the replica communicator and the fp32 buffer
// (`count` elements in the backend's memory) whose slices it sums.
struct ReplicaArgs {
  MPI_Comm replica;
  Device& backend;
  float* data = nullptr;
  int64_t count = 0;
};

struct ReplicaRow {
  std::string name{};
  std::string description{};
  VariantNeeds needs{};
  int priority = 0;
  std::function<std::unique_ptr<ReplicaComm>(const ReplicaArgs&)> factory{};
};

// The replica transports, one row each (registered in replica.cpp): "mpi"
// (MPI_Iallreduce on host memory), "mpi-staged" (device memory staged through the host:
// each start() waits for the device and copies the slice to the host, wait_all() copies
// the sums back), "nccl" (an NCCL communicator summing device memory in place,
// comm/cuda/nccl_replica.cpp; CUDA builds). choose_transports (comm/topology.hpp) picks
// the highest-priority row for the backend's memory.
Registry<ReplicaRow>& replica_transports();

// The replica transport `name` over `args.replica` (a name choose_transports picked:
// std::logic_error when this build lacks it or it moves the other kind of memory).
std::unique_ptr<ReplicaComm> make_replica_comm(const std::string& name, const ReplicaArgs& args);

}  // namespace minipt
