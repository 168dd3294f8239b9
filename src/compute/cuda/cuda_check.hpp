// Error checking for every CUDA runtime and cuBLASLt call: a failing call throws
// std::runtime_error naming the call, the file and the line.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace minipt::cuda {

[[noreturn]] inline void throw_cuda_error(const char* what, const char* detail, const char* file,
                                          int line) {
  throw std::runtime_error(std::string("CUDA error at ") + file + ":" + std::to_string(line) +
                           ": " + what + ": " + detail);
}

inline void check_cuda(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess) throw_cuda_error(what, cudaGetErrorString(e), file, line);
}

inline void check_cublas(cublasStatus_t s, const char* what, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    throw_cuda_error(what,
                     (std::string("cublas status ") + std::to_string(static_cast<int>(s))).c_str(),
                     file, line);
  }
}

}  // namespace minipt::cuda

#define CUDA_CHECK(call) ::minipt::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) ::minipt::cuda::check_cublas((call), #call, __FILE__, __LINE__)
// After a kernel launch: launch-configuration errors surface here, with the line.
#define CUDA_CHECK_LAUNCH() \
  ::minipt::cuda::check_cuda(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
