// One-sided access for a shard group that spans nodes (the "ipc+staged" row; see
// gpu_transports.hpp): an IPC transport over the group's ranks on this rank's node and a
// host-staged MPI RMA transport over the whole group, each get and accumulate routed to
// the one that reaches its owner. Both expose the same two regions; the step protocol's
// calls (flush, reduce_slots, publish_params) go to both, so an owner's grads receive
// its node's contributions by IPC atomics and the other nodes' through the host window.
#include <mpi.h>

#include <string>
#include <vector>

#include "comm/cuda/cuda_util.hpp"
#include "comm/cuda/gpu_transports.hpp"

namespace minipt {
namespace {

class NodeAwareOneSided final : public OneSided {
 public:
  NodeAwareOneSided(MPI_Comm world, MPI_Comm shard, int declared_ranks_per_node,
                    cudaStream_t compute, cudaStream_t pull, cudaStream_t push, bool deterministic,
                    IpcTuning tuning) {
    int world_rank = 0, shard_rank = 0, shard_size = 1;
    MINIPT_MPI_CHECK(MPI_Comm_rank(world, &world_rank));
    MINIPT_MPI_CHECK(MPI_Comm_rank(shard, &shard_rank));
    MINIPT_MPI_CHECK(MPI_Comm_size(shard, &shard_size));
    // The group's ranks on this node: those sharing memory, and with declared nodes
    // (comm.ranks_per_node = K) also the same block of K consecutive ranks.
    MPI_Comm shared = MPI_COMM_NULL, node = MPI_COMM_NULL;
    MINIPT_MPI_CHECK(
        MPI_Comm_split_type(shard, MPI_COMM_TYPE_SHARED, shard_rank, MPI_INFO_NULL, &shared));
    const int color = declared_ranks_per_node > 0 ? world_rank / declared_ranks_per_node : 0;
    MINIPT_MPI_CHECK(MPI_Comm_split(shared, color, shard_rank, &node));
    MINIPT_MPI_CHECK(MPI_Comm_free(&shared));
    int node_size = 1;
    MINIPT_MPI_CHECK(MPI_Comm_size(node, &node_size));
    std::vector<int> members(static_cast<size_t>(node_size));
    MINIPT_MPI_CHECK(MPI_Allgather(&shard_rank, 1, MPI_INT, members.data(), 1, MPI_INT, node));
    local_of_.assign(static_cast<size_t>(shard_size), -1);
    for (int i = 0; i < node_size; ++i) local_of_[static_cast<size_t>(members[i])] = i;
    // Each transport duplicates the communicator it is given.
    ipc_ = make_ipc_onesided(node, compute, pull, push, deterministic, tuning);
    MINIPT_MPI_CHECK(MPI_Comm_free(&node));
    staged_ = make_staged_onesided(shard, compute, pull, push);
  }

  std::string name() const override { return ipc_->name() + "+" + staged_->name(); }

  void expose(float* params, float* grads, int64_t count) override {
    ipc_->expose(params, grads, count);
    staged_->expose(params, grads, count);
  }

  Request get(int owner, int64_t offset, int64_t n, void* dst, DType dst_dtype) override {
    const int local = local_of(owner);
    return local >= 0 ? tag(ipc_->get(local, offset, n, dst, dst_dtype), kIpc)
                      : tag(staged_->get(owner, offset, n, dst, dst_dtype), kStaged);
  }

  Request accumulate(int owner, int64_t offset, int64_t n, const void* src,
                     DType src_dtype) override {
    const int local = local_of(owner);
    return local >= 0 ? tag(ipc_->accumulate(local, offset, n, src, src_dtype), kIpc)
                      : tag(staged_->accumulate(owner, offset, n, src, src_dtype), kStaged);
  }

  void wait(Request r) override {
    if (r == kNoRequest) return;
    (r % 2 == kIpc ? *ipc_ : *staged_).wait(r / 2);
  }

  void flush() override {
    ipc_->flush();
    staged_->flush();
  }
  void progress() override {
    ipc_->progress();
    staged_->progress();
  }
  void reduce_slots() override {
    ipc_->reduce_slots();
    staged_->reduce_slots();
  }
  void publish_params() override {
    ipc_->publish_params();
    staged_->publish_params();
  }
  void sync_local() override {
    ipc_->sync_local();
    staged_->sync_local();
  }

 private:
  static constexpr Request kIpc = 0, kStaged = 1;
  // One handle space over both transports' requests: the low bit names the transport.
  static Request tag(Request r, Request which) { return r == kNoRequest ? r : r * 2 + which; }

  int local_of(int owner) const {
    if (owner < 0 || static_cast<size_t>(owner) >= local_of_.size())
      throw std::out_of_range("node-aware one-sided: owner " + std::to_string(owner) +
                              " outside the shard group of " + std::to_string(local_of_.size()));
    return local_of_[static_cast<size_t>(owner)];
  }

  std::vector<int> local_of_;  // shard rank → rank in the node's IPC group, -1: other node
  std::unique_ptr<OneSided> ipc_;
  std::unique_ptr<OneSided> staged_;
};

}  // namespace

std::unique_ptr<OneSided> make_node_aware_onesided(MPI_Comm world, MPI_Comm shard,
                                                   int declared_ranks_per_node,
                                                   cudaStream_t compute, cudaStream_t pull,
                                                   cudaStream_t push, bool deterministic,
                                                   IpcTuning tuning) {
  return std::make_unique<NodeAwareOneSided>(world, shard, declared_ranks_per_node, compute, pull,
                                             push, deterministic, tuning);
}

}  // namespace minipt
