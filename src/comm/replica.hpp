// Hybrid sharding's cross-replica reduction: the ranks that own the same shard in every
// shard group add their gradient shards (MPI_Allreduce over the replica communicator).
#pragma once

#include <mpi.h>

#include <cstdint>
#include <vector>

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

// data[0..n) ← Σ over the replica communicator, in place. Device memory is staged
// through the host (`staging` is reused between calls).
void replica_allreduce(Device& backend, MPI_Comm replica, float* data, int64_t n,
                       std::vector<float>& staging);

}  // namespace minipt
