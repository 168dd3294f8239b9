// Hybrid sharding's cross-replica reduction: the ranks that own the same shard in every
// shard group add their gradient shards (an all-reduce over the replica communicator).
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>

#include "compute/backend.hpp"

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

// MPI_Iallreduce on host memory ("mpi"); device memory is staged through the host
// ("mpi-staged": each start() waits for the device and copies the slice to the host,
// wait_all() copies the sums back).
std::unique_ptr<ReplicaComm> make_mpi_replica_comm(Device& backend, MPI_Comm replica, float* data,
                                                   int64_t n);

// The replica transport of a run: with `nccl` (the cuda backend's collectives are NCCL)
// an NCCL communicator over `replica` that sums device memory in place ("nccl";
// comm/cuda/nccl_replica.cpp), else make_mpi_replica_comm.
std::unique_ptr<ReplicaComm> make_replica_comm(Device& backend, MPI_Comm replica, float* data,
                                               int64_t n, bool nccl);

}  // namespace minipt
