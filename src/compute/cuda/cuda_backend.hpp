// The CUDA compute backend (compute.backend = "cuda"): bf16 working parameters, fp32
// gradients, master weights and optimizer state on the device; cuBLASLt matrix
// products, attention on packed causal sequences (cuDNN's fused flash attention where
// built in, else, or with compute.attention = own, minipt's own kernels), fused element-wise
// kernels, per-layer activation recomputation (opt.recompute) and cudaEvent timing on
// three streams (compute, pull, push).
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "compute/backend.hpp"

namespace minipt {

// Device = local_rank % device_count. Throws std::runtime_error when no CUDA device is
// usable and ConfigError when the shape is unsupported (head_dim must be 32, 64 or 128;
// hidden, ffn and vocab multiples of 8).
std::unique_ptr<ComputeBackend> make_cuda_backend(const ComputeOptions& opt,
                                                  const ModelShape& shape, int rank,
                                                  int local_rank);

// Number of visible CUDA devices (0 when there is no driver or no device), for tests
// that must skip cleanly on machines without a GPU.
int cuda_device_count();

}  // namespace minipt
