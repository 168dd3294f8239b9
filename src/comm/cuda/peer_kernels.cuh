// Element-wise kernels of the GPU one-sided transports, callable from host code. Every
// pointer may be local or a peer's memory mapped into this process (CUDA IPC); each
// launch goes on the stream given and returns at once.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "compute/backend.hpp"

namespace minipt::gpucomm {

// Thread blocks for `requested` (0 = the default: 2 per multiprocessor of the current
// device, enough loads in flight to saturate NVLink with 512-thread blocks).
int resolve_blocks(int requested);

// dst[i] = src[i] converted from src_dtype to dst_dtype, i < n.
void launch_convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n,
                    int blocks, cudaStream_t stream);

// dst ← src, `bytes` bytes, by the multiprocessors (16-byte accesses; unaligned heads
// and tails, and a destination whose alignment differs from the source's, go through
// cudaMemcpyAsync).
void launch_copy(const void* src, void* dst, int64_t bytes, int blocks, cudaStream_t stream);

// dst[i] += src[i] with fp32 atomic adds of system scope (several GPUs add into one
// owner's memory at once), src of src_dtype.
void launch_atomic_add(float* dst, const void* src, DType src_dtype, int64_t n, int blocks,
                       cudaStream_t stream);

// dst[i] += src[i], plain read-modify-write: only for memory no one else writes at the
// same time (a client's own slot; the own grads on the staged path).
void launch_add(float* dst, const void* src, DType src_dtype, int64_t n, int blocks,
                cudaStream_t stream);

// grads[i] += ((slots[0][i] + slots[1][i]) + ...) + slots[world-1][i], then every
// slots[c][i] = 0; slots[c] starts at slots + c·count. The fixed order makes the sum
// independent of when each client's contribution arrived.
void launch_reduce_slots(float* grads, float* slots, int world, int64_t count, cudaStream_t stream);

}  // namespace minipt::gpucomm
