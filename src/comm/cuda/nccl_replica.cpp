// Hybrid sharding's cross-replica sum on device memory through NCCL (comm/replica.hpp):
// one NCCL communicator over the replica group and a stream of its own, so that a unit's
// all-reduce overlaps the backward on the compute stream and the group's reduce-scatters
// on the push stream. Nothing is staged through the host and the host never blocks.
#include <nccl.h>

#include <vector>

#include "comm/cuda/cuda_util.hpp"
#include "comm/cuda/gpu_transports.hpp"
#include "comm/cuda/nccl_util.hpp"
#include "comm/replica.hpp"

namespace minipt {
namespace {

class NcclReplicaComm final : public ReplicaComm {
 public:
  NcclReplicaComm(MPI_Comm replica, cudaStream_t compute, float* data)
      : compute_(compute), data_(data) {
    MINIPT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    comm_ = gpucomm::init_nccl_comm(replica);
  }
  ~NcclReplicaComm() override {
    cudaStreamSynchronize(stream_);  // queued sums finish before the communicator goes
    ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override { return "nccl"; }

  // The slice was written on the compute stream (the last accumulate of its unit): the
  // sum starts after everything queued there so far.
  void start(int64_t offset, int64_t n) override {
    after_compute_.order(compute_, stream_);
    MINIPT_NCCL_CHECK(ncclAllReduce(data_ + offset, data_ + offset, static_cast<size_t>(n),
                                    ncclFloat32, ncclSum, comm_, stream_));
    pending_.push_back(events_.record(stream_));
  }

  // The compute stream (gradient norm, optimizer) waits for every sum; the host does not.
  void wait_all() override {
    for (Request r : pending_) events_.stream_wait(r, compute_);
    pending_.clear();
  }

 private:
  cudaStream_t compute_;
  cudaStream_t stream_ = nullptr;
  float* data_;
  ncclComm_t comm_ = nullptr;
  gpucomm::EventPool events_;
  gpucomm::StreamEdge after_compute_;
  std::vector<Request> pending_;
};

}  // namespace

std::unique_ptr<ReplicaComm> make_nccl_replica_comm(MPI_Comm replica, cudaStream_t compute,
                                                    float* data) {
  return std::make_unique<NcclReplicaComm>(replica, compute, data);
}

}  // namespace minipt
