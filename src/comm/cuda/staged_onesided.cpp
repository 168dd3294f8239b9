// Host-staged one-sided access with MPI RMA (see gpu_transports.hpp): the portable
// path between nodes, for any MPI, without GPU-aware MPI or NVSHMEM.
//
// Each rank keeps host mirrors of its regions in two MPI windows, page-locked so that
// copies to and from the device run at full PCIe speed:
//   params window: a copy of the device params, refreshed by publish_params();
//   grads window:  where the other ranks' MPI_Accumulate(MPI_SUM) contributions land;
//                  reduce_slots() adds it into the device grads and clears it.
// Transfers go through two pinned staging chunks per direction, so that the MPI part
// of chunk k+1 overlaps the PCIe copy of chunk k.
#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <string>

#include "comm/cuda/cuda_util.hpp"
#include "comm/cuda/gpu_transports.hpp"
#include "comm/cuda/peer_kernels.cuh"

namespace minipt {
namespace {

using gpucomm::EventPool;
using gpucomm::StreamEdge;

// Default elements per staging chunk (32 MiB of fp32): big enough that MPI and PCIe
// run near their peak, small enough that two chunks per direction cost little memory.
constexpr int64_t kDefaultChunk = int64_t{8} << 20;

// One direction's staging: two pinned host chunks, two device chunks, and for each an
// event marking when the device side last finished with it.
struct Staging {
  std::array<float*, 2> host{};
  std::array<float*, 2> device{};
  std::array<cudaEvent_t, 2> done{};

  explicit Staging(int64_t chunk) {
    const auto bytes = static_cast<size_t>(chunk) * sizeof(float);
    for (int b = 0; b < 2; ++b) {
      MINIPT_CUDA_CHECK(cudaMallocHost(&host[b], bytes));
      MINIPT_CUDA_CHECK(cudaMalloc(&device[b], bytes));
      MINIPT_CUDA_CHECK(cudaEventCreateWithFlags(&done[b], cudaEventDisableTiming));
    }
  }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  ~Staging() {
    for (int b = 0; b < 2; ++b) {
      cudaEventDestroy(done[b]);
      cudaFree(device[b]);
      cudaFreeHost(host[b]);
    }
  }
};

class StagedOneSided final : public OneSided {
 public:
  StagedOneSided(MPI_Comm comm, cudaStream_t compute, cudaStream_t pull, cudaStream_t push,
                 int64_t chunk)
      : chunk_(chunk > 0 ? chunk : kDefaultChunk),
        compute_(compute),
        pull_(pull),
        push_(push),
        pull_stage_(chunk_),
        push_stage_(chunk_) {
    MINIPT_MPI_CHECK(MPI_Comm_dup(comm, &comm_));
    MINIPT_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MINIPT_MPI_CHECK(MPI_Comm_size(comm_, &world_));
    blocks_ = gpucomm::resolve_blocks(0);
  }

  ~StagedOneSided() override {
    cudaStreamSynchronize(pull_);
    cudaStreamSynchronize(push_);
    cudaStreamSynchronize(compute_);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;  // too late for MPI; the windows go with the process
    if (count_ >= 0) {
      MPI_Win_unlock_all(params_win_);
      MPI_Win_unlock_all(grads_win_);
      cudaHostUnregister(params_host_);
      cudaHostUnregister(grads_host_);
      MPI_Win_free(&params_win_);
      MPI_Win_free(&grads_win_);
    }
    MPI_Comm_free(&comm_);
  }

  std::string name() const override { return "staged-mpi"; }

  void expose(float* params, float* grads, int64_t count) override {
    if (count_ >= 0) throw std::logic_error("staged one-sided: expose() called twice");
    count_ = count;
    params_ = params;
    grads_ = grads;
    const auto bytes = static_cast<MPI_Aint>(std::max<int64_t>(count, 1) * 4);
    MINIPT_MPI_CHECK(
        MPI_Win_allocate(bytes, sizeof(float), MPI_INFO_NULL, comm_, &params_host_, &params_win_));
    MINIPT_MPI_CHECK(
        MPI_Win_allocate(bytes, sizeof(float), MPI_INFO_NULL, comm_, &grads_host_, &grads_win_));
    MINIPT_CUDA_CHECK(
        cudaHostRegister(params_host_, static_cast<size_t>(bytes), cudaHostRegisterDefault));
    MINIPT_CUDA_CHECK(
        cudaHostRegister(grads_host_, static_cast<size_t>(bytes), cudaHostRegisterDefault));
    std::memset(grads_host_, 0, static_cast<size_t>(bytes));
    MINIPT_MPI_CHECK(MPI_Win_lock_all(0, params_win_));
    MINIPT_MPI_CHECK(MPI_Win_lock_all(0, grads_win_));
    publish_params();
    MINIPT_MPI_CHECK(MPI_Win_sync(grads_win_));
    MINIPT_MPI_CHECK(MPI_Barrier(comm_));
  }

  Request get(int owner, int64_t offset, int64_t n, void* dst, DType dst_dtype) override {
    check_range("get", owner, offset, n);
    pull_after_compute_.order(compute_, pull_);
    const size_t elem = dtype_size(dst_dtype);
    if (owner == rank_) {
      convert_on(params_ + offset, DType::f32, dst, dst_dtype, n, pull_);
      return events_.record(pull_);
    }
    for (int64_t done = 0, k = 0; done < n; done += chunk_, ++k) {
      const int b = static_cast<int>(k % 2);
      const int64_t m = std::min(chunk_, n - done);
      // The host chunk is free once the previous copy out of it has finished.
      MINIPT_CUDA_CHECK(cudaEventSynchronize(pull_stage_.done[b]));
      MINIPT_MPI_CHECK(MPI_Get(pull_stage_.host[b], static_cast<int>(m), MPI_FLOAT, owner,
                               static_cast<MPI_Aint>(offset + done), static_cast<int>(m), MPI_FLOAT,
                               params_win_));
      MINIPT_MPI_CHECK(MPI_Win_flush(owner, params_win_));
      char* out = static_cast<char*>(dst) + static_cast<size_t>(done) * elem;
      if (dst_dtype == DType::f32) {
        MINIPT_CUDA_CHECK(cudaMemcpyAsync(out, pull_stage_.host[b], static_cast<size_t>(m) * 4,
                                          cudaMemcpyHostToDevice, pull_));
      } else {
        MINIPT_CUDA_CHECK(cudaMemcpyAsync(pull_stage_.device[b], pull_stage_.host[b],
                                          static_cast<size_t>(m) * 4, cudaMemcpyHostToDevice,
                                          pull_));
        gpucomm::launch_convert(pull_stage_.device[b], DType::f32, out, dst_dtype, m, blocks_,
                                pull_);
      }
      MINIPT_CUDA_CHECK(cudaEventRecord(pull_stage_.done[b], pull_));
    }
    return events_.record(pull_);
  }

  Request accumulate(int owner, int64_t offset, int64_t n, const void* src,
                     DType src_dtype) override {
    check_range("accumulate", owner, offset, n);
    push_after_compute_.order(compute_, push_);
    if (owner == rank_) {
      // Only this rank's push stream writes its device grads before the barrier.
      gpucomm::launch_add(grads_ + offset, src, src_dtype, n, blocks_, push_);
      return events_.record(push_);
    }
    const size_t elem = dtype_size(src_dtype);
    const int64_t chunks = (n + chunk_ - 1) / chunk_;
    // Stage chunk k: convert to fp32 on the device if needed, copy to pinned memory.
    auto stage = [&](int64_t k) {
      const int b = static_cast<int>(k % 2);
      const int64_t done = k * chunk_;
      const int64_t m = std::min(chunk_, n - done);
      const char* in = static_cast<const char*>(src) + static_cast<size_t>(done) * elem;
      const void* f32 = in;
      if (src_dtype != DType::f32) {
        gpucomm::launch_convert(in, src_dtype, push_stage_.device[b], DType::f32, m, blocks_,
                                push_);
        f32 = push_stage_.device[b];
      }
      MINIPT_CUDA_CHECK(cudaMemcpyAsync(push_stage_.host[b], f32, static_cast<size_t>(m) * 4,
                                        cudaMemcpyDeviceToHost, push_));
      MINIPT_CUDA_CHECK(cudaEventRecord(push_stage_.done[b], push_));
    };
    if (chunks > 0) stage(0);
    for (int64_t k = 0; k < chunks; ++k) {
      // Chunk k+1's copy overlaps chunk k's MPI transfer; its host buffer was released
      // by the flush_local at the end of iteration k-1.
      if (k + 1 < chunks) stage(k + 1);
      const int b = static_cast<int>(k % 2);
      const int64_t m = std::min(chunk_, n - k * chunk_);
      MINIPT_CUDA_CHECK(cudaEventSynchronize(push_stage_.done[b]));
      MINIPT_MPI_CHECK(MPI_Accumulate(push_stage_.host[b], static_cast<int>(m), MPI_FLOAT, owner,
                                      static_cast<MPI_Aint>(offset + k * chunk_),
                                      static_cast<int>(m), MPI_FLOAT, MPI_SUM, grads_win_));
      MINIPT_MPI_CHECK(MPI_Win_flush_local(owner, grads_win_));
    }
    return events_.record(push_);
  }

  void wait(Request r) override { events_.stream_wait(r, compute_); }

  void flush() override {
    MINIPT_MPI_CHECK(MPI_Win_flush_all(grads_win_));
    MINIPT_CUDA_CHECK(cudaStreamSynchronize(pull_));
    MINIPT_CUDA_CHECK(cudaStreamSynchronize(push_));
  }

  void progress() override {
    int flag = 0;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_, &flag, MPI_STATUS_IGNORE);
  }

  // grads += host grads window; window ← 0. Blocks the host until the device has read
  // the window (the window cannot be cleared earlier).
  void reduce_slots() override {
    if (count_ < 0) return;
    MINIPT_MPI_CHECK(MPI_Win_sync(grads_win_));
    // The device chunks of the pull direction serve here too; flush() emptied the pull
    // stream, and the edge keeps that true whatever the caller did since.
    compute_after_pull_.order(pull_, compute_);
    for (int64_t done = 0, k = 0; done < count_; done += chunk_, ++k) {
      const int b = static_cast<int>(k % 2);
      const int64_t m = std::min(chunk_, count_ - done);
      MINIPT_CUDA_CHECK(cudaMemcpyAsync(pull_stage_.device[b], grads_host_ + done,
                                        static_cast<size_t>(m) * 4, cudaMemcpyHostToDevice,
                                        compute_));
      gpucomm::launch_add(grads_ + done, pull_stage_.device[b], DType::f32, m, blocks_, compute_);
    }
    MINIPT_CUDA_CHECK(cudaStreamSynchronize(compute_));
    std::memset(grads_host_, 0, static_cast<size_t>(count_) * sizeof(float));
    MINIPT_MPI_CHECK(MPI_Win_sync(grads_win_));
  }

  // params window ← device params (waits for the compute stream, which wrote them).
  void publish_params() override {
    if (count_ < 0) return;
    MINIPT_CUDA_CHECK(cudaMemcpyAsync(params_host_, params_,
                                      static_cast<size_t>(count_) * sizeof(float),
                                      cudaMemcpyDeviceToHost, compute_));
    MINIPT_CUDA_CHECK(cudaStreamSynchronize(compute_));
    MINIPT_MPI_CHECK(MPI_Win_sync(params_win_));
  }

 private:
  void convert_on(const float* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n,
                  cudaStream_t stream) {
    if (src_dtype == dst_dtype)
      MINIPT_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * dtype_size(dst_dtype),
                                        cudaMemcpyDeviceToDevice, stream));
    else
      gpucomm::launch_convert(src, src_dtype, dst, dst_dtype, n, blocks_, stream);
  }

  void check_range(const char* what, int owner, int64_t offset, int64_t n) const {
    if (count_ < 0)
      throw std::logic_error(std::string("staged one-sided: ") + what + " before expose()");
    if (owner < 0 || owner >= world_ || offset < 0 || n < 0 || offset + n > count_)
      throw std::out_of_range(std::string("staged one-sided ") + what + ": owner " +
                              std::to_string(owner) + ", range [" + std::to_string(offset) + ", " +
                              std::to_string(offset + n) + ") outside [0, " +
                              std::to_string(count_) + ")");
  }

  int64_t chunk_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int world_ = 1;
  int blocks_ = 0;
  cudaStream_t compute_;
  cudaStream_t pull_;
  cudaStream_t push_;
  int64_t count_ = -1;
  float* params_ = nullptr;
  float* grads_ = nullptr;
  float* params_host_ = nullptr;
  float* grads_host_ = nullptr;
  MPI_Win params_win_ = MPI_WIN_NULL;
  MPI_Win grads_win_ = MPI_WIN_NULL;
  Staging pull_stage_;
  Staging push_stage_;
  StreamEdge compute_after_pull_;
  EventPool events_;
  StreamEdge pull_after_compute_;
  StreamEdge push_after_compute_;
};

}  // namespace

std::unique_ptr<OneSided> make_staged_onesided(MPI_Comm comm, cudaStream_t compute,
                                               cudaStream_t pull, cudaStream_t push,
                                               int64_t chunk_elements) {
  return std::make_unique<StagedOneSided>(comm, compute, pull, push, chunk_elements);
}

}  // namespace minipt
