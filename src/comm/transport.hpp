// Communication interfaces. fsdp uses Collectives, odc uses OneSided; each transport
// (MPI, NCCL, CUDA IPC, ...) implements one of them in one file.
//
// Every pointer lives in the memory space the transport was created for (host for
// the MPI transports, device for the GPU ones). Sizes are in elements of `dtype`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "compute/backend.hpp"

namespace minipt {

// Handle of a non-blocking operation; wait() completes it.
using Request = int64_t;
constexpr Request kNoRequest = -1;

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual std::string name() const = 0;
  // full[r·count .. (r+1)·count) ← shard of rank r.
  virtual Request allgather(const void* shard, void* full, int64_t count, DType dtype) = 0;
  // shard_out ← Σ_r full_r[rank·count .. (rank+1)·count) (sum over ranks).
  virtual Request reduce_scatter(const void* full, void* shard_out, int64_t count, DType dtype) = 0;
  virtual void wait(Request r) = 0;
  // Lets queued non-blocking operations progress (MPI needs calls to progress).
  virtual void progress() {}
};

// One-sided access to two symmetric regions every rank exposes:
//   params: the rank's fp32 master shard (read by others; owner writes it between
//           the two barriers of a step),
//   grads:  the rank's fp32 gradient accumulator (others add into it).
// Offsets are element offsets inside the owner's region.
class OneSided {
 public:
  virtual ~OneSided() = default;
  virtual std::string name() const = 0;
  // Transports that allocate the two regions themselves (MPI windows) return them here,
  // and the strategy must use them as its master shard and accumulator and hand them
  // to expose(); nullptr (default): the strategy allocates both in the backend's memory.
  virtual float* region_params() { return nullptr; }
  virtual float* region_grads() { return nullptr; }
  // Registers the regions (collective over all ranks; call once).
  virtual void expose(float* params, float* grads, int64_t count) = 0;
  // dst[0..n) ← owner.params[offset .. offset+n), converted to dst_dtype.
  virtual Request get(int owner, int64_t offset, int64_t n, void* dst, DType dst_dtype) = 0;
  // owner.grads[offset .. offset+n) += src[0..n) (src of src_dtype).
  virtual Request accumulate(int owner, int64_t offset, int64_t n, const void* src,
                             DType src_dtype) = 0;
  virtual void wait(Request r) = 0;
  // Completes every get/accumulate this rank issued (remote completion).
  virtual void flush() = 0;
  virtual void progress() {}
  // Folds contributions held back until the end of the minibatch (deterministic
  // per-client slots, host-staged windows) into this rank's grads. Called once per step
  // after the barrier that follows every rank's flush(); default: nothing is held back.
  virtual void reduce_slots() {}
  // Makes the params written since the last call readable by the other ranks (staged
  // transports keep a copy). Called after the optimizer step, before the barrier after
  // which others read again; default: others read the params in place.
  virtual void publish_params() {}
  // Makes local stores to the regions visible to remote access and vice versa (MPI:
  // MPI_Win_sync). Called on both sides of the step's barriers; default: nothing to do.
  virtual void sync_local() {}
};

// Host-side control plane every mode needs (always MPI here).
class Control {
 public:
  virtual ~Control() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void barrier() = 0;
  virtual double allreduce_sum(double x) = 0;
  virtual double allreduce_max(double x) = 0;
};

// comm.odc_pull: who copies pulled bf16 params over CUDA IPC.
enum class OdcPull { kernel, copy_engine };

struct CommOptions {
  std::string collectives = "mpi";     // mpi | nccl (comm/transports.hpp)
  std::string onesided = "mpi";        // mpi | ipc | staged (comm/transports.hpp)
  int ranks_per_node = 0;              // 0 = detect; K > 0: K-rank nodes; 1: inter-node path
  OdcPull odc_pull = OdcPull::kernel;  // kernel | copy-engine (ipc bf16 gets)
};

}  // namespace minipt
