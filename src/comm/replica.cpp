#include "comm/replica.hpp"

#include <algorithm>
#include <climits>

namespace minipt {

ShardGroups::ShardGroups(MPI_Comm world, int size) : shard_size(size) {
  int rank = 0, n = 1;
  MPI_Comm_rank(world, &rank);
  MPI_Comm_size(world, &n);
  replicas = n / size;
  shard_rank = rank % size;
  MPI_Comm_split(world, rank / size, rank, &shard);
  MPI_Comm_split(world, rank % size, rank, &replica);
}

ShardGroups::~ShardGroups() {
  if (shard != MPI_COMM_NULL) MPI_Comm_free(&shard);
  if (replica != MPI_COMM_NULL) MPI_Comm_free(&replica);
}

void replica_allreduce(Device& backend, MPI_Comm replica, float* data, int64_t n,
                       std::vector<float>& staging) {
  float* host = data;
  const bool staged = backend.memory() != MemorySpace::host;
  if (staged) {
    backend.time_source().synchronize();  // the gradients are complete on the device
    staging.resize(static_cast<size_t>(n));
    backend.copy_to_host(staging.data(), data, static_cast<size_t>(n) * sizeof(float));
    host = staging.data();
  }
  for (int64_t done = 0; done < n;) {
    const int chunk = static_cast<int>(std::min<int64_t>(n - done, INT_MAX / 2));
    MPI_Allreduce(MPI_IN_PLACE, host + done, chunk, MPI_FLOAT, MPI_SUM, replica);
    done += chunk;
  }
  if (staged) backend.copy_from_host(data, host, static_cast<size_t>(n) * sizeof(float));
}

}  // namespace minipt
