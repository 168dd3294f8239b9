// Collectives through NCCL: all-gather on the pull stream, reduce-scatter (sum) on the
// push stream, one communicator for each (see gpu_transports.hpp).
#include <nccl.h>

#include <string>

#include "comm/cuda/cuda_util.hpp"
#include "comm/cuda/gpu_transports.hpp"
#include "comm/cuda/nccl_util.hpp"

namespace minipt {
namespace {

using gpucomm::init_nccl_comm;

ncclDataType_t nccl_type(DType t) { return t == DType::f32 ? ncclFloat32 : ncclBfloat16; }

class NcclCollectives final : public Collectives {
 public:
  NcclCollectives(MPI_Comm comm, cudaStream_t compute, cudaStream_t pull, cudaStream_t push)
      : compute_(compute), pull_(pull), push_(push) {
    gather_comm_ = init_nccl_comm(comm);
    scatter_comm_ = init_nccl_comm(comm);
  }

  ~NcclCollectives() override {
    // Queued operations must finish before their communicator goes away.
    cudaStreamSynchronize(pull_);
    cudaStreamSynchronize(push_);
    ncclCommDestroy(gather_comm_);
    ncclCommDestroy(scatter_comm_);
  }

  std::string name() const override { return "nccl"; }

  Request allgather(const void* shard, void* full, int64_t count, DType dtype) override {
    gather_after_compute_.order(compute_, pull_);
    MINIPT_NCCL_CHECK(ncclAllGather(shard, full, static_cast<size_t>(count), nccl_type(dtype),
                                    gather_comm_, pull_));
    return events_.record(pull_);
  }

  Request reduce_scatter(const void* full, void* shard_out, int64_t count, DType dtype) override {
    scatter_after_compute_.order(compute_, push_);
    MINIPT_NCCL_CHECK(ncclReduceScatter(full, shard_out, static_cast<size_t>(count),
                                        nccl_type(dtype), ncclSum, scatter_comm_, push_));
    return events_.record(push_);
  }

  void wait(Request r) override { events_.stream_wait(r, compute_); }

 private:
  cudaStream_t compute_;
  cudaStream_t pull_;
  cudaStream_t push_;
  ncclComm_t gather_comm_ = nullptr;
  ncclComm_t scatter_comm_ = nullptr;
  gpucomm::EventPool events_;
  gpucomm::StreamEdge gather_after_compute_;
  gpucomm::StreamEdge scatter_after_compute_;
};

}  // namespace

std::unique_ptr<Collectives> make_nccl_collectives(MPI_Comm comm, cudaStream_t compute,
                                                   cudaStream_t pull, cudaStream_t push) {
  return std::make_unique<NcclCollectives>(comm, compute, pull, push);
}

}  // namespace minipt
