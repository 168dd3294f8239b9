// Intra-node one-sided access through CUDA IPC mappings (see gpu_transports.hpp).
//
// expose() turns each rank's params and grads into pointers every other rank of the
// node can dereference: the owner takes an IPC handle of the allocation holding each
// region (cudaIpcGetMemHandle), sends it with the region's offset inside that
// allocation (MPI_Allgather), and every peer maps the allocation once
// (cudaIpcOpenMemHandle, which also enables peer access) and adds the offset. After
// that, get() and accumulate() are single kernel launches on the caller's streams: a
// pull reads the owner's fp32 params over NVLink and converts on the fly; a push adds
// into the owner's accumulator with fp32 atomics. No process on the owner takes part.
#include <cuda.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "comm/cuda/cuda_util.hpp"
#include "comm/cuda/gpu_transports.hpp"
#include "comm/cuda/peer_kernels.cuh"

namespace minipt {
namespace {

using gpucomm::EventPool;
using gpucomm::StreamEdge;

// cuMemGetAddressRange through the runtime's driver entry point, so that the library
// needs no link to libcuda (the CI machines have only the stub).
using GetAddressRangeFn = CUresult (*)(CUdeviceptr*, size_t*, CUdeviceptr);

GetAddressRangeFn get_address_range_fn() {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult status{};
  MINIPT_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &fn, 12000,
                                                     cudaEnableDefault, &status));
  if (status != cudaDriverEntryPointSuccess || fn == nullptr)
    throw std::runtime_error("cuMemGetAddressRange is not available from the driver");
  return reinterpret_cast<GetAddressRangeFn>(fn);
}

// Base of the allocation that holds `ptr` (IPC handles describe whole allocations).
char* allocation_base(const void* ptr) {
  static const GetAddressRangeFn fn = get_address_range_fn();
  CUdeviceptr base = 0;
  size_t size = 0;
  if (fn(&base, &size, reinterpret_cast<CUdeviceptr>(ptr)) != CUDA_SUCCESS)
    throw std::invalid_argument("IPC one-sided: a region is not device memory from cudaMalloc");
  return reinterpret_cast<char*>(base);
}

// What one rank publishes about its regions. The grads may share the params'
// allocation (a pooled allocator), and an allocation must be mapped only once.
struct ExposedRegions {
  cudaIpcMemHandle_t params_handle;
  cudaIpcMemHandle_t grads_handle;
  cudaIpcMemHandle_t slots_handle;
  cudaIpcMemHandle_t mirror_handle;
  uint64_t params_offset;
  uint64_t grads_offset;
  int32_t grads_share_params_allocation;
  int32_t has_slots;
  int32_t has_mirror;
};

class IpcOneSided final : public OneSided {
 public:
  IpcOneSided(MPI_Comm comm, cudaStream_t compute, cudaStream_t pull, cudaStream_t push,
              bool deterministic, IpcTuning tuning)
      : compute_(compute),
        pull_(pull),
        push_(push),
        deterministic_(deterministic),
        tuning_(tuning) {
    MINIPT_MPI_CHECK(MPI_Comm_dup(comm, &comm_));
    MINIPT_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MINIPT_MPI_CHECK(MPI_Comm_size(comm_, &world_));
    MPI_Comm node = MPI_COMM_NULL;
    MINIPT_MPI_CHECK(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
    int node_size = 0;
    MINIPT_MPI_CHECK(MPI_Comm_size(node, &node_size));
    MINIPT_MPI_CHECK(MPI_Comm_free(&node));
    if (node_size != world_)
      throw std::runtime_error("IPC one-sided needs every rank on one node (" +
                               std::to_string(node_size) + " of " + std::to_string(world_) +
                               " share this one); use the staged transport across nodes");
    tuning_.blocks = gpucomm::resolve_blocks(tuning_.blocks);
  }

  ~IpcOneSided() override {
    cudaStreamSynchronize(pull_);
    cudaStreamSynchronize(push_);
    cudaStreamSynchronize(compute_);
    // Peers may still read our params or add into our slots until they are done too.
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Barrier(comm_);
    for (void* p : mapped_) cudaIpcCloseMemHandle(p);
    if (own_slots_ != nullptr) cudaFree(own_slots_);
    if (own_mirror_ != nullptr) cudaFree(own_mirror_);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  std::string name() const override { return deterministic_ ? "ipc-deterministic" : "ipc"; }

  void expose(float* params, float* grads, int64_t count) override {
    if (count_ >= 0) throw std::logic_error("IPC one-sided: expose() called twice");
    count_ = count;
    if (deterministic_) {
      const size_t bytes = static_cast<size_t>(world_) * static_cast<size_t>(count) * 4;
      MINIPT_CUDA_CHECK(cudaMalloc(&own_slots_, bytes));
      MINIPT_CUDA_CHECK(cudaMemset(own_slots_, 0, bytes));
    }
    params_of_.assign(static_cast<size_t>(world_), nullptr);
    grads_of_.assign(static_cast<size_t>(world_), nullptr);
    slots_of_.assign(static_cast<size_t>(world_), nullptr);
    mirror_of_.assign(static_cast<size_t>(world_), nullptr);
    params_of_[static_cast<size_t>(rank_)] = params;
    grads_of_[static_cast<size_t>(rank_)] = grads;
    slots_of_[static_cast<size_t>(rank_)] = own_slots_;
    if (tuning_.bf16_param_mirror) {
      MINIPT_CUDA_CHECK(
          cudaMalloc(&own_mirror_, static_cast<size_t>(std::max<int64_t>(count, 1)) * 2));
      mirror_of_[static_cast<size_t>(rank_)] = own_mirror_;
      publish_params();
    }
    // Every rank's regions must be complete before any peer touches them.
    MINIPT_CUDA_CHECK(cudaDeviceSynchronize());

    ExposedRegions mine{};
    char* params_base = allocation_base(params);
    char* grads_base = allocation_base(grads);
    MINIPT_CUDA_CHECK(cudaIpcGetMemHandle(&mine.params_handle, params_base));
    MINIPT_CUDA_CHECK(cudaIpcGetMemHandle(&mine.grads_handle, grads_base));
    mine.params_offset = static_cast<uint64_t>(reinterpret_cast<char*>(params) - params_base);
    mine.grads_offset = static_cast<uint64_t>(reinterpret_cast<char*>(grads) - grads_base);
    mine.grads_share_params_allocation = grads_base == params_base ? 1 : 0;
    mine.has_slots = deterministic_ ? 1 : 0;
    if (deterministic_) MINIPT_CUDA_CHECK(cudaIpcGetMemHandle(&mine.slots_handle, own_slots_));
    mine.has_mirror = own_mirror_ != nullptr ? 1 : 0;
    if (own_mirror_ != nullptr)
      MINIPT_CUDA_CHECK(cudaIpcGetMemHandle(&mine.mirror_handle, own_mirror_));

    std::vector<ExposedRegions> all(static_cast<size_t>(world_));
    MINIPT_MPI_CHECK(
        MPI_Allgather(&mine, sizeof(mine), MPI_BYTE, all.data(), sizeof(mine), MPI_BYTE, comm_));
    for (int r = 0; r < world_; ++r) {
      const ExposedRegions& peer = all[static_cast<size_t>(r)];
      const auto ur = static_cast<size_t>(r);
      if (r == rank_) continue;
      char* pbase = open(peer.params_handle);
      char* gbase = peer.grads_share_params_allocation ? pbase : open(peer.grads_handle);
      params_of_[ur] = reinterpret_cast<float*>(pbase + peer.params_offset);
      grads_of_[ur] = reinterpret_cast<float*>(gbase + peer.grads_offset);
      if (peer.has_slots) slots_of_[ur] = reinterpret_cast<float*>(open(peer.slots_handle));
      if (peer.has_mirror)
        mirror_of_[ur] = reinterpret_cast<__nv_bfloat16*>(open(peer.mirror_handle));
    }
    MINIPT_MPI_CHECK(MPI_Barrier(comm_));
  }

  Request get(int owner, int64_t offset, int64_t n, void* dst, DType dst_dtype) override {
    check_range("get", owner, offset, n);
    pull_after_compute_.order(compute_, pull_);
    const float* src = params_of_[static_cast<size_t>(owner)] + offset;
    if (dst_dtype == DType::bf16 && tuning_.bf16_param_mirror) {
      const __nv_bfloat16* mirror = mirror_of_[static_cast<size_t>(owner)] + offset;
      if (tuning_.bf16_get_by_kernel)
        gpucomm::launch_copy(mirror, dst, n * 2, tuning_.blocks, pull_);
      else
        MINIPT_CUDA_CHECK(cudaMemcpyAsync(dst, mirror, static_cast<size_t>(n) * 2,
                                          cudaMemcpyDeviceToDevice, pull_));
    } else if (dst_dtype == DType::f32 && tuning_.f32_get_by_copy_engine) {
      MINIPT_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(float),
                                        cudaMemcpyDeviceToDevice, pull_));
    } else {
      gpucomm::launch_convert(src, DType::f32, dst, dst_dtype, n, tuning_.blocks, pull_);
    }
    return events_.record(pull_);
  }

  Request accumulate(int owner, int64_t offset, int64_t n, const void* src,
                     DType src_dtype) override {
    check_range("accumulate", owner, offset, n);
    push_after_compute_.order(compute_, push_);
    const auto uowner = static_cast<size_t>(owner);
    if (deterministic_) {
      // Only this rank writes its slot, so a plain add in stream order suffices.
      float* slot = slots_of_[uowner] + static_cast<int64_t>(rank_) * count_ + offset;
      gpucomm::launch_add(slot, src, src_dtype, n, tuning_.blocks, push_);
    } else {
      gpucomm::launch_atomic_add(grads_of_[uowner] + offset, src, src_dtype, n, tuning_.blocks,
                                 push_);
    }
    return events_.record(push_);
  }

  void wait(Request r) override { events_.stream_wait(r, compute_); }

  void flush() override {
    MINIPT_CUDA_CHECK(cudaStreamSynchronize(pull_));
    MINIPT_CUDA_CHECK(cudaStreamSynchronize(push_));
  }

  // Rewrites the bf16 copy of the own params on the compute stream (after the optimizer
  // that wrote them); the trainer synchronises that stream before the barrier after
  // which peers read again. No peer reads the copy meanwhile: all flushed their gets
  // before the step's first barrier.
  void publish_params() override {
    if (own_mirror_ == nullptr) return;
    gpucomm::launch_convert(params_of_[static_cast<size_t>(rank_)], DType::f32, own_mirror_,
                            DType::bf16, count_, tuning_.blocks, compute_);
  }

  void reduce_slots() override {
    if (!deterministic_) return;
    gpucomm::launch_reduce_slots(grads_of_[static_cast<size_t>(rank_)], own_slots_, world_, count_,
                                 compute_);
  }

 private:
  char* open(const cudaIpcMemHandle_t& handle) {
    void* p = nullptr;
    MINIPT_CUDA_CHECK(cudaIpcOpenMemHandle(&p, handle, cudaIpcMemLazyEnablePeerAccess));
    mapped_.push_back(p);
    return static_cast<char*>(p);
  }

  void check_range(const char* what, int owner, int64_t offset, int64_t n) const {
    if (count_ < 0)
      throw std::logic_error(std::string("IPC one-sided: ") + what + " before expose()");
    if (owner < 0 || owner >= world_ || offset < 0 || n < 0 || offset + n > count_)
      throw std::out_of_range(std::string("IPC one-sided ") + what + ": owner " +
                              std::to_string(owner) + ", range [" + std::to_string(offset) + ", " +
                              std::to_string(offset + n) + ") outside [0, " +
                              std::to_string(count_) + ")");
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int world_ = 1;
  cudaStream_t compute_;
  cudaStream_t pull_;
  cudaStream_t push_;
  bool deterministic_;
  IpcTuning tuning_;
  int64_t count_ = -1;
  float* own_slots_ = nullptr;
  __nv_bfloat16* own_mirror_ = nullptr;
  std::vector<float*> params_of_;
  std::vector<float*> grads_of_;
  std::vector<float*> slots_of_;
  std::vector<__nv_bfloat16*> mirror_of_;
  std::vector<void*> mapped_;
  EventPool events_;
  StreamEdge pull_after_compute_;
  StreamEdge push_after_compute_;
};

}  // namespace

std::unique_ptr<OneSided> make_ipc_onesided(MPI_Comm comm, cudaStream_t compute, cudaStream_t pull,
                                            cudaStream_t push, bool deterministic,
                                            IpcTuning tuning) {
  return std::make_unique<IpcOneSided>(comm, compute, pull, push, deterministic, tuning);
}

}  // namespace minipt
