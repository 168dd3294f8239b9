// A small harness for the GPU communication tests, which run under mpirun on machines
// that may have no GPU (CI): it needs neither GoogleTest nor the rest of minipt.
//
// Every rank runs every test; a test fails when any rank's check fails. Without a GPU
// for each rank of the node (or without any GPU, for tests that allow ranks to share
// one), every rank exits with 77, which CTest reports as skipped.
// The last line is "N passed, N failed".
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace minipt::gputest {

constexpr int kSkipExitCode = 77;

struct Env {
  MPI_Comm comm = MPI_COMM_WORLD;
  int rank = 0;
  int size = 1;
  int device = 0;
  cudaStream_t compute = nullptr;
  cudaStream_t pull = nullptr;
  cudaStream_t push = nullptr;
  uint64_t seed = 0;
  int failures = 0;  // this rank's failed checks in the current test

  // Records a failed check (printed with the rank; the first few of each test only).
  void check(bool ok, const std::string& what) {
    if (ok) return;
    if (failures < 5) std::fprintf(stderr, "  rank %d: check failed: %s\n", rank, what.c_str());
    ++failures;
  }
};

#define GPU_TEST_CUDA(call)                                                                    \
  do {                                                                                         \
    const cudaError_t gpu_test_err_ = (call);                                                  \
    if (gpu_test_err_ != cudaSuccess)                                                          \
      throw std::runtime_error(std::string(#call) + ": " + cudaGetErrorString(gpu_test_err_)); \
  } while (0)

// bf16 of x, rounded to nearest even (the reference for device conversions).
inline uint16_t bf16_bits(float x) {
  uint32_t u = 0;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN
  const uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding) >> 16);
}
inline float bf16_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float x = 0;
  std::memcpy(&x, &u, 4);
  return x;
}

// Device buffer holding a copy of a host vector.
template <typename T>
T* to_device(const std::vector<T>& host) {
  T* d = nullptr;
  GPU_TEST_CUDA(cudaMalloc(&d, host.size() * sizeof(T) + 16));
  GPU_TEST_CUDA(cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

// Host copy of a device buffer, read on `stream` after everything queued there: reading
// on the compute stream checks that wait() made it wait for the operation.
template <typename T>
std::vector<T> to_host(const T* d, size_t n, cudaStream_t stream) {
  std::vector<T> host(n);
  GPU_TEST_CUDA(cudaMemcpyAsync(host.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost, stream));
  GPU_TEST_CUDA(cudaStreamSynchronize(stream));
  return host;
}

using TestFn = std::function<void(Env&)>;

// share_gpus: ranks may share a GPU (device = local rank mod GPUs); CUDA IPC works
// between processes on one device, NCCL does not.
inline int run_tests(int argc, char** argv,
                     const std::vector<std::pair<std::string, TestFn>>& tests,
                     bool share_gpus = false) {
  MPI_Init(&argc, &argv);
  Env env;
  MPI_Comm_rank(env.comm, &env.rank);
  MPI_Comm_size(env.comm, &env.size);

  // One GPU per rank of the node, or skip (collectively, so no rank hangs).
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(env.comm, MPI_COMM_TYPE_SHARED, env.rank, MPI_INFO_NULL, &node);
  int local_rank = 0;
  int local_size = 1;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_size);
  MPI_Comm_free(&node);
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
  int enough = (share_gpus ? devices >= 1 : devices >= local_size) ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &enough, 1, MPI_INT, MPI_MIN, env.comm);
  if (!enough) {
    if (env.rank == 0)
      std::printf("SKIPPED: %d GPU(s) for %d rank(s) on a node; these tests need one each\n",
                  devices, local_size);
    MPI_Finalize();
    return kSkipExitCode;
  }
  env.device = local_rank % devices;
  cudaSetDevice(env.device);
  cudaStreamCreateWithFlags(&env.compute, cudaStreamNonBlocking);
  cudaStreamCreateWithFlags(&env.pull, cudaStreamNonBlocking);
  cudaStreamCreateWithFlags(&env.push, cudaStreamNonBlocking);

  uint64_t seed = std::random_device{}();
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, env.comm);
  if (env.rank == 0)
    std::printf("seed %llu, %d ranks\n", static_cast<unsigned long long>(seed), env.size);

  int passed = 0;
  int failed = 0;
  for (const auto& [name, fn] : tests) {
    env.failures = 0;
    env.seed = seed + static_cast<uint64_t>(passed + failed) * 1000003u;
    try {
      fn(env);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "  rank %d: exception: %s\n", env.rank, e.what());
      ++env.failures;
    }
    int any = env.failures;
    MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_SUM, env.comm);
    if (env.rank == 0) std::printf("[%s] %s\n", any == 0 ? "  OK  " : "FAILED", name.c_str());
    (any == 0 ? passed : failed) += 1;
    std::fflush(stdout);
  }
  if (env.rank == 0) std::printf("%d passed, %d failed\n", passed, failed);
  cudaStreamDestroy(env.compute);
  cudaStreamDestroy(env.pull);
  cudaStreamDestroy(env.push);
  MPI_Finalize();
  return failed == 0 ? 0 : 1;
}

}  // namespace minipt::gputest
