// NCCL collectives (make_nccl_collectives): all-gather and reduce-scatter results against
// host references built with MPI, in fp32 and bf16, and the stream contract: an
// operation sees what the compute stream produced before it was issued, and after
// wait() the compute stream sees its result.
#include <cstring>
#include <random>

#include "comm/cuda/gpu_transports.hpp"
#include "gpu_test.hpp"

namespace minipt::gputest {
namespace {

// Random shard: fp32 values, or bf16 bit patterns of random floats.
std::vector<uint16_t> random_bf16(size_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = bf16_bits(dist(rng));
  return v;
}
std::vector<float> random_f32(size_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

template <typename T>
void check_allgather(Env& env, DType dtype, const std::vector<T>& shard) {
  auto coll = make_nccl_collectives(env.comm, env.compute, env.pull, env.push);
  const size_t count = shard.size();
  std::vector<T> expect(count * static_cast<size_t>(env.size));
  MPI_Allgather(shard.data(), static_cast<int>(count * sizeof(T)), MPI_BYTE, expect.data(),
                static_cast<int>(count * sizeof(T)), MPI_BYTE, env.comm);
  T* d_shard = to_device(shard);
  T* d_full = nullptr;
  GPU_TEST_CUDA(cudaMalloc(&d_full, expect.size() * sizeof(T)));
  GPU_TEST_CUDA(cudaMemset(d_full, 0xff, expect.size() * sizeof(T)));
  Request r = coll->allgather(d_shard, d_full, static_cast<int64_t>(count), dtype);
  coll->wait(r);
  const std::vector<T> got = to_host(d_full, expect.size(), env.compute);
  size_t wrong = 0;
  for (size_t i = 0; i < expect.size(); ++i)
    wrong += std::memcmp(&got[i], &expect[i], sizeof(T)) != 0;
  env.check(wrong == 0, std::to_string(wrong) + " of " + std::to_string(expect.size()) +
                            " gathered elements differ");
  cudaFree(d_shard);
  cudaFree(d_full);
}

void allgather_f32(Env& env) {
  std::mt19937_64 rng(env.seed + static_cast<uint64_t>(env.rank));
  check_allgather(env, DType::f32, random_f32(10007, rng));
}

void allgather_bf16(Env& env) {
  std::mt19937_64 rng(env.seed + static_cast<uint64_t>(env.rank));
  check_allgather(env, DType::bf16, random_bf16(10007, rng));
}

// Integer values keep every partial sum exact, whatever order NCCL adds in.
template <typename T>
void check_reduce_scatter(Env& env, DType dtype) {
  auto coll = make_nccl_collectives(env.comm, env.compute, env.pull, env.push);
  const size_t count = 5003;
  const size_t total = count * static_cast<size_t>(env.size);
  std::mt19937_64 rng(env.seed + static_cast<uint64_t>(env.rank));
  std::uniform_int_distribution<int> dist(-16, 16);
  std::vector<int> values(total);
  for (auto& v : values) v = dist(rng);
  std::vector<int> sums(total);
  MPI_Allreduce(values.data(), sums.data(), static_cast<int>(total), MPI_INT, MPI_SUM, env.comm);
  std::vector<T> full(total);
  for (size_t i = 0; i < total; ++i) {
    if constexpr (sizeof(T) == 2)
      full[i] = bf16_bits(static_cast<float>(values[i]));
    else
      full[i] = static_cast<float>(values[i]);
  }
  T* d_full = to_device(full);
  T* d_out = nullptr;
  GPU_TEST_CUDA(cudaMalloc(&d_out, count * sizeof(T)));
  Request r = coll->reduce_scatter(d_full, d_out, static_cast<int64_t>(count), dtype);
  coll->wait(r);
  const std::vector<T> got = to_host(d_out, count, env.compute);
  size_t wrong = 0;
  for (size_t i = 0; i < count; ++i) {
    float value = 0;
    if constexpr (sizeof(T) == 2)
      value = bf16_to_float(got[i]);
    else
      value = got[i];
    wrong += value != static_cast<float>(sums[static_cast<size_t>(env.rank) * count + i]);
  }
  env.check(wrong == 0,
            std::to_string(wrong) + " of " + std::to_string(count) + " reduced elements differ");
  cudaFree(d_full);
  cudaFree(d_out);
}

void reduce_scatter_f32(Env& env) { check_reduce_scatter<float>(env, DType::f32); }
void reduce_scatter_bf16(Env& env) { check_reduce_scatter<uint16_t>(env, DType::bf16); }

// The inputs are copied in from pinned host memory on the compute stream right before
// the operations are issued, and the outputs are read on the compute stream right
// after wait(), with no synchronisation in between: the copies take milliseconds, so a
// missing stream edge shows as stale data. Integer values keep the sums exact.
void stream_ordering(Env& env) {
  auto coll = make_nccl_collectives(env.comm, env.compute, env.pull, env.push);
  const size_t count = size_t{4} << 20;
  const size_t total = count * static_cast<size_t>(env.size);
  uint16_t* h_shard = nullptr;
  float* h_grads = nullptr;
  GPU_TEST_CUDA(cudaMallocHost(&h_shard, count * 2));
  GPU_TEST_CUDA(cudaMallocHost(&h_grads, total * 4));
  uint16_t* d_shard = nullptr;
  uint16_t* d_full = nullptr;
  float* d_grads = nullptr;
  float* d_reduced = nullptr;
  GPU_TEST_CUDA(cudaMalloc(&d_shard, count * 2));
  GPU_TEST_CUDA(cudaMalloc(&d_full, total * 2));
  GPU_TEST_CUDA(cudaMalloc(&d_grads, total * 4));
  GPU_TEST_CUDA(cudaMalloc(&d_reduced, count * 4));
  for (int round = 1; round <= 3; ++round) {
    GPU_TEST_CUDA(cudaStreamSynchronize(env.compute));  // the host buffers are free again
    for (size_t i = 0; i < count; ++i)
      h_shard[i] = bf16_bits(static_cast<float>(round * 8 + env.rank));
    for (size_t i = 0; i < total; ++i) h_grads[i] = static_cast<float>(round * (env.rank + 1));
    MPI_Barrier(env.comm);
    GPU_TEST_CUDA(
        cudaMemcpyAsync(d_shard, h_shard, count * 2, cudaMemcpyHostToDevice, env.compute));
    GPU_TEST_CUDA(
        cudaMemcpyAsync(d_grads, h_grads, total * 4, cudaMemcpyHostToDevice, env.compute));
    Request g = coll->allgather(d_shard, d_full, static_cast<int64_t>(count), DType::bf16);
    Request s = coll->reduce_scatter(d_grads, d_reduced, static_cast<int64_t>(count), DType::f32);
    coll->wait(g);
    coll->wait(s);
    const std::vector<uint16_t> full = to_host(d_full, total, env.compute);
    const std::vector<float> reduced = to_host(d_reduced, count, env.compute);
    size_t wrong_full = 0;
    for (size_t i = 0; i < total; ++i)
      wrong_full +=
          full[i] != bf16_bits(static_cast<float>(round * 8 + static_cast<int>(i / count)));
    const float expect = static_cast<float>(round * env.size * (env.size + 1) / 2);
    size_t wrong_reduced = 0;
    for (size_t i = 0; i < count; ++i) wrong_reduced += reduced[i] != expect;
    env.check(wrong_full == 0, "round " + std::to_string(round) + ": " +
                                   std::to_string(wrong_full) + " gathered values stale");
    env.check(wrong_reduced == 0, "round " + std::to_string(round) + ": " +
                                      std::to_string(wrong_reduced) + " reduced values stale");
  }
  cudaFreeHost(h_shard);
  cudaFreeHost(h_grads);
  cudaFree(d_shard);
  cudaFree(d_full);
  cudaFree(d_grads);
  cudaFree(d_reduced);
}

}  // namespace
}  // namespace minipt::gputest

int main(int argc, char** argv) {
  using namespace minipt::gputest;
  return run_tests(argc, argv,
                   {{"allgather_f32", allgather_f32},
                    {"allgather_bf16", allgather_bf16},
                    {"reduce_scatter_f32", reduce_scatter_f32},
                    {"reduce_scatter_bf16", reduce_scatter_bf16},
                    {"stream_ordering", stream_ordering}});
}
