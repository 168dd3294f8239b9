// GPU transports: NCCL collectives (fsdp), CUDA-IPC one-sided access over NVLink and
// host-staged MPI RMA one-sided access (odc). Every pointer handed to them is device
// memory of the calling rank's current device (cudaSetDevice is the caller's job).
//
// Streams. Each transport is given the three streams of the rank's lanes: gets and
// all-gathers run on `pull`, accumulates and reduce-scatters on `push`, and wait(r)
// makes `compute` wait for the operation (cudaStreamWaitEvent: the host never blocks
// in wait). Before it starts, every operation waits for all the work that was already
// queued on `compute` when it was issued: its input may have been produced there, and
// its output buffer may still be read there (double-buffered gathers). The trainer
// should therefore issue a prefetch before it launches the compute it should overlap.
//
// Buffer lifetimes. A source or destination buffer must stay allocated, and must not
// be written by anything else, until wait() on the operation's request has been called
// and the compute stream has passed that point (or flush() for one-sided operations).
//
// One-sided step protocol (what the trainer does around the OneSided calls):
//   microbatches: get / accumulate ... ; flush(); barrier 1
//   reduce_slots()          (owner folds pending contributions into its grads)
//   optimizer on the own shard, on `compute`
//   publish_params()        (owner makes its new params readable; staged path)
//   synchronize `compute`; barrier 2
// Synchronising `compute` before barrier 2 also completes reduce_slots()'s zeroing of
// the slots, so no peer can add next step's gradients into a slot being cleared.
#pragma once

#include <cuda_runtime.h>
#include <mpi.h>

#include <memory>
#include <stdexcept>

#include "comm/replica.hpp"
#include "comm/transport.hpp"

namespace minipt {

// The streams of a device's three lanes (Device::native_stream), which the transports
// below are given; std::invalid_argument for a device without streams (host memory).
struct LaneStreams {
  cudaStream_t compute, pull, push;
};
inline LaneStreams lane_streams(Device& device) {
  const auto stream = [&](Lane lane) {
    void* s = device.native_stream(lane);
    if (s == nullptr)
      throw std::invalid_argument("GPU transport: " + device.name() + " has no device streams");
    return static_cast<cudaStream_t>(s);
  };
  return {stream(Lane::compute), stream(Lane::pull), stream(Lane::push)};
}

// NCCL all-gather on `pull` and reduce-scatter (sum) on `push`. Two NCCL communicators
// (one per stream) so that a gather and a reduce-scatter can run at the same time; each
// kind of operation must still be issued in the same order on every rank.
std::unique_ptr<Collectives> make_nccl_collectives(MPI_Comm comm, cudaStream_t compute,
                                                   cudaStream_t pull, cudaStream_t push);

// Knobs of the IPC transport's copy kernels, for benchmarks; defaults are what the
// trainer should use.
struct IpcTuning {
  int blocks = 0;  // thread blocks per get/accumulate kernel; 0 = 2 per multiprocessor
  // fp32 gets through the copy engine (cudaMemcpyAsync on the mapped pointer) instead
  // of a kernel: leaves the multiprocessors to the compute stream.
  bool f32_get_by_copy_engine = true;
  // Each owner keeps a bf16 copy of its params, rewritten by publish_params(), and bf16
  // gets copy that (copy engine) instead of converting fp32 on the fly: half the bytes
  // over NVLink and no multiprocessors. Needs publish_params() after every optimizer
  // step (the step protocol above); without it, bf16 gets return stale params.
  bool bf16_param_mirror = false;
  // With the mirror: bf16 gets copy it with a kernel (16-byte loads, many in flight)
  // instead of the copy engine: closer to the link's read bandwidth, but it takes
  // multiprocessors from the compute stream while it runs.
  bool bf16_get_by_kernel = false;
};

// Intra-node one-sided access over NVLink/PCIe peer mappings: expose() exchanges CUDA IPC
// handles of every rank's params and grads over `comm` (all ranks of `comm` must be
// on one node). get() is a kernel reading the owner's fp32 params through the mapping;
// accumulate() adds with fp32 atomics straight into the owner's grads. With
// `deterministic`, accumulate() instead adds into the calling rank's own slot on the
// owner (world × count fp32 per rank, allocated by expose), and reduce_slots() sums
// the slots in rank order: bitwise reproducible gradients, at world × the memory.
std::unique_ptr<OneSided> make_ipc_onesided(MPI_Comm comm, cudaStream_t compute, cudaStream_t pull,
                                            cudaStream_t push, bool deterministic,
                                            IpcTuning tuning = {});

// Portable inter-node fallback: host-staged MPI RMA. params and grads are mirrored in
// host windows (MPI_Win_allocate, pinned with cudaHostRegister): get() is MPI_Get into
// pinned staging then a host-to-device copy (and conversion) on `pull`; accumulate() is
// a device-to-host copy on `push` then MPI_Accumulate(MPI_SUM) into the owner's host
// window. reduce_slots() adds the host window into the device grads and clears it;
// publish_params() copies the device params into the host window. get() and
// accumulate() block the host for their MPI part (the staging is the price of
// portability). The own rank's shard is read and added on the device directly.
// Transfers move in chunks of `chunk_elements` (0 = 8 Mi elements, 32 MiB).
std::unique_ptr<OneSided> make_staged_onesided(MPI_Comm comm, cudaStream_t compute,
                                               cudaStream_t pull, cudaStream_t push,
                                               int64_t chunk_elements = 0);

// A shard group that spans nodes ("ipc+staged"): make_ipc_onesided over the group's ranks
// on this rank's node (the ranks of `shard` that share memory and, with
// `declared_ranks_per_node` = K > 0, the same block of K consecutive ranks of `world`)
// and make_staged_onesided over all of `shard`; each get and accumulate goes to the one
// that reaches its owner, the step protocol's calls to both.
std::unique_ptr<OneSided> make_node_aware_onesided(MPI_Comm world, MPI_Comm shard,
                                                   int declared_ranks_per_node,
                                                   cudaStream_t compute, cudaStream_t pull,
                                                   cudaStream_t push, bool deterministic,
                                                   IpcTuning tuning = {});

// Hybrid sharding's replica sum on device memory (comm/replica.hpp): an NCCL communicator
// over `replica` (ncclCommInitRank, the id broadcast over it) summing slices of `data` in
// place on a stream of its own, after the work queued on `compute`; wait_all() makes
// `compute` wait for them.
std::unique_ptr<ReplicaComm> make_nccl_replica_comm(MPI_Comm replica, cudaStream_t compute,
                                                    float* data);

}  // namespace minipt
