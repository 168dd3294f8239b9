// minipt comm benchmark (run/bench/comm): per-unit communication of the two modes on
// the GPUs of one node, one MPI rank per GPU, in the conventions of nccl-tests.
//
// For a unit of S elements (sharded S/n per rank) each row times one whole-unit
// operation, averaged over --iters back-to-back repetitions after --warmup, slowest
// rank reported:
//   fsdp  all-gather / reduce-scatter, bf16: minipt's NCCL transport (issue, then
//         wait() on the compute stream) and ncclAllGather / ncclReduceScatter called
//         directly on one stream;
//   odc   pull: get() of every owner's shard of the unit (fp32 params → bf16 or fp32,
//         or the owners' bf16 copies: ipc-bf16-mirror, whose refresh is odc_publish,
//         S = the bytes it moves through the owner's memory);
//         push: accumulate() of every owner's slice of the unit's gradient into the
//         owners' fp32 accumulators; through CUDA IPC (atomics, or deterministic
//         slots, whose end-of-step sum is odc_reduce_slots), and through the
//         host-staged MPI path;
//   peer  cudaMemcpyPeerAsync of the same bytes from / to each peer GPU (buffers this
//         process allocates on the peer devices), the copy-engine ceiling: fp32 (the
//         f32 pulls and pushes) and bf16 (the same bytes as the bf16-mirror pull).
// Bandwidths: algbw = S_bytes / t with S_bytes the unit in the row's local dtype, and
// busbw = algbw · (n−1)/n, the bytes that cross GPU links per rank per second (the odc
// bf16 rows, but for ipc-bf16-mirror, move fp32 over the links: twice busbw).
// The transports measured are two tables (collectives_cases, onesided_cases): one row per
// transport variant, naming its row of comm/transports.cpp, its settings and the rows it is
// timed in; a new variant is one row there.
// Every row is verified after its timed repetitions (#wrong: elements that differ from
// the value recomputed on the device; integer-valued data keep sums exact). The last
// line is JSON (nlohmann-json, trace/provenance.hpp): the rows, the ranks' devices and the
// run's provenance (version, revision, hosts, devices, MPI library, command line, time).
#include <cuda_bf16.h>
#include <mpi.h>
#include <nccl.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "comm/cuda/cuda_util.hpp"
#include "comm/cuda/gpu_transports.hpp"
#include "comm/cuda/peer_kernels.cuh"
#include "comm/gather.hpp"
#include "trace/provenance.hpp"

namespace {

using minipt::DType;
using minipt::Request;

#define CUDA_OK(call) MINIPT_CUDA_CHECK(call)
#define NCCL_OK(call)                                                                 \
  do {                                                                                \
    const ncclResult_t res_ = (call);                                                 \
    if (res_ != ncclSuccess)                                                          \
      throw std::runtime_error(std::string(#call) + ": " + ncclGetErrorString(res_)); \
  } while (0)

// ---- data patterns, recomputed on the device for verification ----
// Integers (exact in bf16 up to 256) for everything that is summed or gathered in
// bf16; the params are general floats, so that the pull's rounding is checked.
__device__ __host__ inline float gather_value(int rank, int64_t j) {
  return static_cast<float>((rank * 7919 + j) % 251 - 125);
}
__device__ __host__ inline float scatter_value(int rank, int64_t i) {
  return static_cast<float>((rank * 3 + i) % 17 - 8);
}
__device__ __host__ inline float param_value(int owner, int64_t j) {
  return static_cast<float>((owner * 131 + j) % 1000) * 0.001f + static_cast<float>(owner);
}
__device__ __host__ inline float grad_value(int rank, int64_t i) {
  return static_cast<float>((rank * 5 + i) % 9 - 4);
}

struct GatherValue {  // shard of `rank`, element j
  int rank;
  __device__ float operator()(int64_t j) const { return gather_value(rank, j); }
};
struct GatheredExpect {  // full buffer after the all-gather
  int64_t shard;
  __device__ float operator()(int64_t i) const {
    return gather_value(static_cast<int>(i / shard), i % shard);
  }
};
struct ScatterValue {
  int rank;
  __device__ float operator()(int64_t i) const { return scatter_value(rank, i); }
};
struct ScatteredExpect {  // own slice of the sum over ranks
  int rank, world;
  int64_t shard;
  __device__ float operator()(int64_t j) const {
    float s = 0;
    for (int r = 0; r < world; ++r) s += scatter_value(r, rank * shard + j);
    return s;
  }
};
struct ParamValue {
  int owner;
  __device__ float operator()(int64_t j) const { return param_value(owner, j); }
};
struct PulledExpect {
  int64_t shard;
  __device__ float operator()(int64_t i) const {
    return param_value(static_cast<int>(i / shard), i % shard);
  }
};
struct GradSliceValue {  // what rank `rank` sends to owner `owner`
  int rank, owner;
  int64_t shard;
  __device__ float operator()(int64_t j) const { return grad_value(rank, owner * shard + j); }
};
struct PushedExpect {  // owner's accumulator after `times` pushes from every rank
  int rank, world, times;
  int64_t shard;
  __device__ float operator()(int64_t j) const {
    float s = 0;
    for (int r = 0; r < world; ++r) s += grad_value(r, rank * shard + j);
    return s * static_cast<float>(times);
  }
};

__device__ inline void store(float* p, float v) { *p = v; }
__device__ inline void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
__device__ inline bool same(float a, float b) { return __float_as_uint(a) == __float_as_uint(b); }
__device__ inline bool same(__nv_bfloat16 a, float b) {
  return __bfloat16_as_ushort(a) == __bfloat16_as_ushort(__float2bfloat16_rn(b));
}

template <typename T, typename F>
__global__ void fill_kernel(T* p, int64_t n, F f) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    store(p + i, f(i));
}

template <typename T, typename F>
__global__ void count_wrong_kernel(const T* p, int64_t n, F f, unsigned long long* wrong) {
  unsigned long long local = 0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    local += same(p[i], f(i)) ? 0 : 1;
  if (local) atomicAdd(wrong, local);
}

template <typename T, typename F>
void fill(T* p, int64_t n, F f, cudaStream_t s = nullptr) {
  fill_kernel<<<1024, 256, 0, s>>>(p, n, f);
  CUDA_OK(cudaGetLastError());
}

unsigned long long* g_wrong = nullptr;  // device counter

template <typename T, typename F>
uint64_t count_wrong(const T* p, int64_t n, F f) {
  CUDA_OK(cudaMemset(g_wrong, 0, sizeof(unsigned long long)));
  count_wrong_kernel<<<1024, 256>>>(p, n, f, g_wrong);
  CUDA_OK(cudaGetLastError());
  unsigned long long host = 0;
  CUDA_OK(cudaMemcpy(&host, g_wrong, sizeof(host), cudaMemcpyDeviceToHost));
  return host;
}

// ---- the run ----
struct Options {
  std::vector<int64_t> sizes{int64_t{1} << 20, int64_t{8} << 20, 46799360, 233061376};
  int iters = 20;
  int warmup = 5;
  int staged_iters = 3;
  bool staged = true;
  int blocks = 0;  // IPC kernels' thread blocks (0 = the transport's default)
};

struct Row {
  std::string op;    // e.g. "allgather"
  std::string impl;  // e.g. "minipt-nccl"
  std::string dtype;
  int64_t elements = 0;
  double bytes = 0;
  double time_us = 0;
  double algbw = 0;  // GB/s
  double busbw = 0;
  uint64_t wrong = 0;
};

struct Context {
  MPI_Comm comm = MPI_COMM_WORLD;
  int rank = 0;
  int world = 1;
  int device = 0;
  cudaStream_t compute{}, pull{}, push{};
  cudaEvent_t start{}, stop{};
  std::vector<Row> rows;
};

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  CUDA_OK(cudaMalloc(&p, bytes));
  return p;
}

// Times `run_once` (which must leave its work ordered before `timing` stream's later
// work) and records a row; `verify` returns this rank's wrong count.
void time_row(Context& cx, Row row, int iters, int warmup, cudaStream_t timing,
              const std::function<void()>& prepare, const std::function<void()>& run_once,
              const std::function<uint64_t()>& verify) {
  if (prepare) prepare();
  CUDA_OK(cudaDeviceSynchronize());
  MPI_Barrier(cx.comm);
  for (int i = 0; i < warmup; ++i) run_once();
  CUDA_OK(cudaDeviceSynchronize());
  MPI_Barrier(cx.comm);
  CUDA_OK(cudaEventRecord(cx.start, timing));
  for (int i = 0; i < iters; ++i) run_once();
  CUDA_OK(cudaEventRecord(cx.stop, timing));
  CUDA_OK(cudaEventSynchronize(cx.stop));
  CUDA_OK(cudaDeviceSynchronize());
  float ms = 0;
  CUDA_OK(cudaEventElapsedTime(&ms, cx.start, cx.stop));
  double t_us = 1000.0 * ms / iters;
  MPI_Allreduce(MPI_IN_PLACE, &t_us, 1, MPI_DOUBLE, MPI_MAX, cx.comm);
  MPI_Barrier(cx.comm);
  uint64_t wrong = verify();
  MPI_Allreduce(MPI_IN_PLACE, &wrong, 1, MPI_UINT64_T, MPI_SUM, cx.comm);
  row.time_us = t_us;
  row.algbw = row.bytes / (t_us * 1e-6) / 1e9;
  row.busbw = row.algbw * (cx.world - 1) / cx.world;
  row.wrong = wrong;
  if (cx.rank == 0) {
    std::printf("%12lld %13.0f  %-14s %-22s %-5s %11.1f %9.2f %9.2f %7llu\n",
                static_cast<long long>(row.elements), row.bytes, row.op.c_str(), row.impl.c_str(),
                row.dtype.c_str(), row.time_us, row.algbw, row.busbw,
                static_cast<unsigned long long>(row.wrong));
    std::fflush(stdout);
  }
  cx.rows.push_back(row);
}

ncclComm_t init_direct_nccl(Context& cx) {
  ncclUniqueId id{};
  if (cx.rank == 0) NCCL_OK(ncclGetUniqueId(&id));
  MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, cx.comm);
  ncclComm_t comm = nullptr;
  NCCL_OK(ncclCommInitRank(&comm, cx.world, id, cx.rank));
  return comm;
}

// ---- the transports measured: one row each, the rows of comm/transports.cpp's tables
// (`transport`) that this benchmark can build without the library, with the settings
// of each measured variant; bench_size runs every row's operations ----

// An fsdp collectives transport: all-gather and reduce-scatter rows named `impl`.
struct CollectivesCase {
  const char* transport;  // the row of collective_transports() it measures
  const char* impl;
  std::function<std::unique_ptr<minipt::Collectives>(const Context&)> make;
};

const std::vector<CollectivesCase>& collectives_cases() {
  static const std::vector<CollectivesCase> cases{
      {"nccl", "minipt-nccl",
       [](const Context& cx) {
         return minipt::make_nccl_collectives(cx.comm, cx.compute, cx.pull, cx.push);
       }},
  };
  return cases;
}

// An odc one-sided transport and the rows it is timed in (impl names; nullptr: no row).
struct OneSidedCase {
  const char* transport;  // the row of onesided_transports() it measures
  const char* pull_bf16;  // odc_pull of bf16 params
  const char* pull_f32;   // odc_pull of fp32 params
  const char* push;       // odc_push of bf16 gradients (and fp32 with push_f32)
  bool push_f32;
  bool publish;       // odc_publish: the refresh of the owners' bf16 copies, per step
  bool reduce_slots;  // odc_reduce_slots: the end-of-step sum of deterministic slots
  bool staged;        // the host-staged path: --staged-iters, one warm-up; --no-staged skips it
  std::function<std::unique_ptr<minipt::OneSided>(const Context&, const Options&)> make;
};

std::unique_ptr<minipt::OneSided> ipc(const Context& cx, const Options& opt, bool deterministic,
                                      minipt::IpcTuning tuning) {
  tuning.blocks = opt.blocks;
  return minipt::make_ipc_onesided(cx.comm, cx.compute, cx.pull, cx.push, deterministic, tuning);
}

const std::vector<OneSidedCase>& onesided_cases() {
  using minipt::IpcTuning;
  static const std::vector<OneSidedCase> cases{
      // Atomics into the owners' accumulators; bf16 pulls by kernel, fp32 by copy engine.
      {"ipc", "ipc-kernel", "ipc-copy-engine", "ipc-atomic", true, false, false, false,
       [](const Context& cx, const Options& opt) { return ipc(cx, opt, false, IpcTuning{}); }},
      // Pulls of the owners' bf16 copies (half the bytes, copy engine), and the cost of
      // refreshing the copy once per step.
      {"ipc", "ipc-bf16-mirror", nullptr, nullptr, false, true, false, false,
       [](const Context& cx, const Options& opt) {
         return ipc(cx, opt, false, IpcTuning{.bf16_param_mirror = true});
       }},
      // The same pulls of the bf16 copies by a copy kernel instead of the copy engine.
      {"ipc", "ipc-bf16-mirror-kernel", nullptr, nullptr, false, false, false, false,
       [](const Context& cx, const Options& opt) {
         return ipc(cx, opt, false,
                    IpcTuning{.bf16_param_mirror = true, .bf16_get_by_kernel = true});
       }},
      // fp32 pulls by kernel instead of the copy engine.
      {"ipc", nullptr, "ipc-kernel", nullptr, false, false, false, false,
       [](const Context& cx, const Options& opt) {
         return ipc(cx, opt, false, IpcTuning{.f32_get_by_copy_engine = false});
       }},
      // Deterministic per-client slots, summed at the end of the step.
      {"ipc", nullptr, nullptr, "ipc-deterministic", false, false, true, false,
       [](const Context& cx, const Options& opt) { return ipc(cx, opt, true, IpcTuning{}); }},
      {"staged", "staged-mpi", nullptr, "staged-mpi", false, false, false, true,
       [](const Context& cx, const Options&) {
         return minipt::make_staged_onesided(cx.comm, cx.compute, cx.pull, cx.push);
       }},
  };
  return cases;
}

void bench_size(Context& cx, const Options& opt, int64_t requested, ncclComm_t direct,
                const std::vector<std::unique_ptr<minipt::Collectives>>& collectives) {
  const int n = cx.world;
  const int me = cx.rank;
  const int64_t shard = requested / n;
  const int64_t total = shard * n;
  const auto ushard = static_cast<size_t>(shard);
  const auto utotal = static_cast<size_t>(total);
  const double bf16_bytes = 2.0 * static_cast<double>(total);
  const double f32_bytes = 4.0 * static_cast<double>(total);
  auto row = [&](const char* op, const char* impl, const char* dtype, double bytes) {
    Row r;
    r.op = op;
    r.impl = impl;
    r.dtype = dtype;
    r.elements = total;
    r.bytes = bytes;
    return r;
  };

  // ---- fsdp ----
  auto* shard_bf16 = static_cast<__nv_bfloat16*>(device_alloc(ushard * 2));
  auto* full_bf16 = static_cast<__nv_bfloat16*>(device_alloc(utotal * 2));
  fill(shard_bf16, shard, GatherValue{me});
  auto poison_full = [&] { CUDA_OK(cudaMemset(full_bf16, 0xff, utotal * 2)); };
  auto verify_gather = [&] { return count_wrong(full_bf16, total, GatheredExpect{shard}); };
  for (size_t c = 0; c < collectives.size(); ++c) {
    minipt::Collectives& coll = *collectives[c];
    time_row(
        cx, row("allgather", collectives_cases()[c].impl, "bf16", bf16_bytes), opt.iters,
        opt.warmup, cx.compute, poison_full,
        [&] { coll.wait(coll.allgather(shard_bf16, full_bf16, shard, DType::bf16)); },
        verify_gather);
  }
  time_row(
      cx, row("allgather", "nccl-direct", "bf16", bf16_bytes), opt.iters, opt.warmup, cx.pull,
      poison_full,
      [&] { NCCL_OK(ncclAllGather(shard_bf16, full_bf16, ushard, ncclBfloat16, direct, cx.pull)); },
      verify_gather);

  fill(full_bf16, total, ScatterValue{me});
  auto poison_shard = [&] { CUDA_OK(cudaMemset(shard_bf16, 0xff, ushard * 2)); };
  auto verify_scatter = [&] {
    return count_wrong(shard_bf16, shard, ScatteredExpect{me, n, shard});
  };
  for (size_t c = 0; c < collectives.size(); ++c) {
    minipt::Collectives& coll = *collectives[c];
    time_row(
        cx, row("reduce_scatter", collectives_cases()[c].impl, "bf16", bf16_bytes), opt.iters,
        opt.warmup, cx.compute, poison_shard,
        [&] { coll.wait(coll.reduce_scatter(full_bf16, shard_bf16, shard, DType::bf16)); },
        verify_scatter);
  }
  time_row(
      cx, row("reduce_scatter", "nccl-direct", "bf16", bf16_bytes), opt.iters, opt.warmup, cx.push,
      poison_shard,
      [&] {
        NCCL_OK(ncclReduceScatter(full_bf16, shard_bf16, ushard, ncclBfloat16, ncclSum, direct,
                                  cx.push));
      },
      verify_scatter);

  // ---- odc: every rank exposes its fp32 params and grads of this unit ----
  auto* params = static_cast<float*>(device_alloc(ushard * 4));
  auto* grads = static_cast<float*>(device_alloc(ushard * 4));
  auto* full_f32 = static_cast<float*>(device_alloc(utotal * 4));
  auto* grad_bf16 = static_cast<__nv_bfloat16*>(device_alloc(utotal * 2));
  auto* grad_f32 = static_cast<float*>(device_alloc(utotal * 4));
  fill(params, shard, ParamValue{me});
  for (int o = 0; o < n; ++o) {
    fill(grad_bf16 + o * shard, shard, GradSliceValue{me, o, shard});
    fill(grad_f32 + o * shard, shard, GradSliceValue{me, o, shard});
  }
  CUDA_OK(cudaMemset(grads, 0, ushard * 4));
  CUDA_OK(cudaDeviceSynchronize());

  // Gets every owner's shard of the unit into the full buffer of `dtype`.
  auto pull_row = [&](minipt::OneSided& os, const char* impl, DType dtype, int iters, int warmup) {
    const bool bf16 = dtype == DType::bf16;
    void* full = bf16 ? static_cast<void*>(full_bf16) : full_f32;
    const size_t elem = minipt::dtype_size(dtype);
    time_row(
        cx, row("odc_pull", impl, bf16 ? "bf16" : "f32", bf16 ? bf16_bytes : f32_bytes), iters,
        warmup, cx.compute, [&] { CUDA_OK(cudaMemset(full, 0xff, utotal * elem)); },
        [&] {
          std::vector<Request> r(static_cast<size_t>(n));
          for (int o = 0; o < n; ++o)
            r[static_cast<size_t>(o)] =
                os.get(o, 0, shard,
                       static_cast<char*>(full) + elem * static_cast<size_t>(o * shard), dtype);
          for (int o = 0; o < n; ++o) os.wait(r[static_cast<size_t>(o)]);
        },
        [&] {
          return bf16 ? count_wrong(full_bf16, total, PulledExpect{shard})
                      : count_wrong(full_f32, total, PulledExpect{shard});
        });
  };
  // Pushes every owner's slice `iters + warmup` times; the accumulators start at zero.
  auto push_rows = [&](minipt::OneSided& os, const char* impl, bool with_f32, int iters,
                       int warmup) {
    for (DType dtype : {DType::bf16, DType::f32}) {
      if (dtype == DType::f32 && !with_f32) continue;
      const void* src = dtype == DType::bf16 ? static_cast<const void*>(grad_bf16) : grad_f32;
      const size_t elem = minipt::dtype_size(dtype);
      time_row(
          cx,
          row("odc_push", impl, dtype == DType::bf16 ? "bf16" : "f32",
              static_cast<double>(elem) * static_cast<double>(total)),
          iters, warmup, cx.compute, [&] { CUDA_OK(cudaMemset(grads, 0, ushard * 4)); },
          [&] {
            std::vector<Request> r(static_cast<size_t>(n));
            for (int k = 0; k < n; ++k) {
              const int o = (me + k) % n;  // start at a different owner on each rank
              r[static_cast<size_t>(k)] = os.accumulate(
                  o, 0, shard,
                  static_cast<const char*>(src) + elem * static_cast<size_t>(o * shard), dtype);
            }
            for (int k = 0; k < n; ++k) os.wait(r[static_cast<size_t>(k)]);
          },
          [&] {
            os.flush();
            MPI_Barrier(cx.comm);
            os.reduce_slots();
            CUDA_OK(cudaStreamSynchronize(cx.compute));
            MPI_Barrier(cx.comm);
            return count_wrong(grads, shard, PushedExpect{me, n, iters + warmup, shard});
          });
    }
  };

  for (const OneSidedCase& c : onesided_cases()) {
    if (c.staged && !opt.staged) continue;
    const int iters = c.staged ? opt.staged_iters : opt.iters;
    const int warmup = c.staged ? 1 : opt.warmup;
    auto os = c.make(cx, opt);
    os->expose(params, grads, shard);
    if (c.pull_bf16) pull_row(*os, c.pull_bf16, DType::bf16, iters, warmup);
    if (c.pull_f32) pull_row(*os, c.pull_f32, DType::f32, iters, warmup);
    if (c.push) push_rows(*os, c.push, c.push_f32, iters, warmup);
    if (c.publish)
      time_row(
          cx, row("odc_publish", c.pull_bf16, "bf16", 6.0 * static_cast<double>(shard)), iters,
          warmup, cx.compute, poison_full, [&] { os->publish_params(); },
          [&] {
            CUDA_OK(cudaDeviceSynchronize());
            MPI_Barrier(cx.comm);
            for (int o = 0; o < n; ++o)
              os->wait(os->get(o, 0, shard, full_bf16 + o * shard, DType::bf16));
            CUDA_OK(cudaDeviceSynchronize());
            MPI_Barrier(cx.comm);
            return count_wrong(full_bf16, total, PulledExpect{shard});
          });
    if (c.reduce_slots)
      // The end-of-step reduction of the slots (world × shard fp32 read, shard written).
      // The slots are clear after the push row's reduction, so the grads must keep the
      // push row's result.
      time_row(
          cx, row("odc_reduce_slots", c.push, "f32", 4.0 * n * static_cast<double>(shard)), iters,
          warmup, cx.compute, nullptr, [&] { os->reduce_slots(); },
          [&] {
            return count_wrong(grads, shard, PushedExpect{me, n, iters + warmup, shard});
          });
  }

  // ---- peer-copy ceiling: the same fp32 bytes with cudaMemcpyPeerAsync ----
  std::vector<float*> on_peer(static_cast<size_t>(n), nullptr);
  for (int p = 0; p < n; ++p) {
    if (p == me) continue;
    CUDA_OK(cudaSetDevice(p));
    on_peer[static_cast<size_t>(p)] = static_cast<float*>(device_alloc(ushard * 4));
    fill(on_peer[static_cast<size_t>(p)], shard, ParamValue{p});
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaSetDevice(cx.device));
    const cudaError_t e = cudaDeviceEnablePeerAccess(p, 0);
    if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled) CUDA_OK(e);
    (void)cudaGetLastError();
  }
  time_row(
      cx, row("peer_read", "cudaMemcpyPeerAsync", "f32", f32_bytes), opt.iters, opt.warmup, cx.pull,
      [&] { CUDA_OK(cudaMemset(full_f32, 0xff, utotal * 4)); },
      [&] {
        for (int p = 0; p < n; ++p) {
          float* dst = full_f32 + p * shard;
          if (p == me)
            CUDA_OK(cudaMemcpyAsync(dst, params, ushard * 4, cudaMemcpyDeviceToDevice, cx.pull));
          else
            CUDA_OK(cudaMemcpyPeerAsync(dst, cx.device, on_peer[static_cast<size_t>(p)], p,
                                        ushard * 4, cx.pull));
        }
      },
      [&] { return count_wrong(full_f32, total, PulledExpect{shard}); });
  // The same bytes as the bf16-mirror pull (S = the unit in bf16): its ceiling.
  std::vector<__nv_bfloat16*> on_peer_bf16(static_cast<size_t>(n), nullptr);
  for (int p = 0; p < n; ++p) {
    CUDA_OK(cudaSetDevice(p == me ? cx.device : p));
    on_peer_bf16[static_cast<size_t>(p)] = static_cast<__nv_bfloat16*>(device_alloc(ushard * 2));
    fill(on_peer_bf16[static_cast<size_t>(p)], shard, ParamValue{p});
    CUDA_OK(cudaDeviceSynchronize());
  }
  CUDA_OK(cudaSetDevice(cx.device));
  time_row(
      cx, row("peer_read", "cudaMemcpyPeerAsync", "bf16", bf16_bytes), opt.iters, opt.warmup,
      cx.pull, poison_full,
      [&] {
        for (int p = 0; p < n; ++p) {
          const int src_dev = p == me ? cx.device : p;
          CUDA_OK(cudaMemcpyPeerAsync(full_bf16 + p * shard, cx.device,
                                      on_peer_bf16[static_cast<size_t>(p)], src_dev, ushard * 2,
                                      cx.pull));
        }
      },
      [&] { return count_wrong(full_bf16, total, PulledExpect{shard}); });
  for (int p = 0; p < n; ++p) {
    CUDA_OK(cudaSetDevice(p == me ? cx.device : p));
    CUDA_OK(cudaFree(on_peer_bf16[static_cast<size_t>(p)]));
  }
  CUDA_OK(cudaSetDevice(cx.device));
  time_row(
      cx, row("peer_write", "cudaMemcpyPeerAsync", "f32", f32_bytes), opt.iters, opt.warmup,
      cx.push, nullptr,
      [&] {
        for (int k = 1; k < n; ++k) {
          const int p = (me + k) % n;
          CUDA_OK(cudaMemcpyPeerAsync(on_peer[static_cast<size_t>(p)], p, grad_f32 + p * shard,
                                      cx.device, ushard * 4, cx.push));
        }
      },
      [&] {
        uint64_t wrong = 0;
        for (int p = 0; p < n; ++p)
          if (p != me)
            wrong +=
                count_wrong(on_peer[static_cast<size_t>(p)], shard, GradSliceValue{me, p, shard});
        return wrong;
      });
  for (int p = 0; p < n; ++p) {
    if (p == me) continue;
    CUDA_OK(cudaSetDevice(p));
    CUDA_OK(cudaFree(on_peer[static_cast<size_t>(p)]));
  }
  CUDA_OK(cudaSetDevice(cx.device));
  for (void* p :
       {static_cast<void*>(shard_bf16), static_cast<void*>(full_bf16), static_cast<void*>(params),
        static_cast<void*>(grads), static_cast<void*>(full_f32), static_cast<void*>(grad_bf16),
        static_cast<void*>(grad_f32)})
    CUDA_OK(cudaFree(p));
}

// The last line: "JSON " and one line of JSON (run/bench/comm writes it to -o FILE).
void print_json(const Context& cx, const Options& opt, int argc, char** argv) {
  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDeviceProperties(&prop, cx.device));
  const nlohmann::json prov =
      minipt::provenance(cx.comm, prop.name, std::vector<std::string>(argv, argv + argc));
  const std::vector<int> all =
      minipt::gather_to_root(cx.comm, std::vector<int>{cx.device, prop.pciBusID}).values;
  if (cx.rank != 0) return;
  int nccl = 0, driver = 0, runtime = 0;
  ncclGetVersion(&nccl);
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  nlohmann::json env = nlohmann::json::object();
  for (const char* name :
       {"NCCL_NVLS_ENABLE", "NCCL_ALGO", "NCCL_PROTO", "CUDA_VISIBLE_DEVICES", "NCCL_P2P_LEVEL"})
    if (const char* v = std::getenv(name)) env[name] = v;
  nlohmann::json ranks = nlohmann::json::array();
  for (int r = 0; r < cx.world; ++r) {
    const size_t i = static_cast<size_t>(r);
    ranks.push_back({{"rank", r},
                     {"host", prov.at("hosts").at(i)},
                     {"device", all[2 * i]},
                     {"name", prov.at("devices").at(i)},
                     {"pci_bus", all[2 * i + 1]}});
  }
  nlohmann::json rows = nlohmann::json::array();
  for (const Row& r : cx.rows)
    rows.push_back({{"op", r.op},
                    {"impl", r.impl},
                    {"dtype", r.dtype},
                    {"elements", r.elements},
                    {"bytes", static_cast<int64_t>(r.bytes)},
                    {"time_us", minipt::finite_or_null(r.time_us)},
                    {"algbw_GBps", minipt::finite_or_null(r.algbw)},
                    {"busbw_GBps", minipt::finite_or_null(r.busbw)},
                    {"wrong", r.wrong}});
  const nlohmann::json js = {{"benchmark", "minipt-comm"},
                             {"provenance", prov},
                             {"iters", opt.iters},
                             {"warmup", opt.warmup},
                             {"ipc_blocks", minipt::gpucomm::resolve_blocks(opt.blocks)},
                             {"nccl_version", nccl},
                             {"cuda_driver", driver},
                             {"cuda_runtime", runtime},
                             {"env", env},
                             {"ranks", ranks},
                             {"rows", rows}};
  std::printf("JSON %s\n", minipt::json_text(js, -1).c_str());
}

std::vector<int64_t> parse_sizes(const std::string& list) {
  std::vector<int64_t> sizes;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) sizes.push_back(std::stoll(item));
  return sizes;
}

int run(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--sizes")
      opt.sizes = parse_sizes(next());
    else if (a == "--iters")
      opt.iters = std::stoi(next());
    else if (a == "--warmup")
      opt.warmup = std::stoi(next());
    else if (a == "--staged-iters")
      opt.staged_iters = std::stoi(next());
    else if (a == "--no-staged")
      opt.staged = false;
    else if (a == "--blocks")
      opt.blocks = std::stoi(next());
    else
      throw std::invalid_argument(
          "unknown argument " + a +
          " (--sizes a,b,.. --iters N --warmup N --staged-iters N --no-staged --blocks N)");
  }
  Context cx;
  MPI_Comm_rank(cx.comm, &cx.rank);
  MPI_Comm_size(cx.comm, &cx.world);
  MPI_Comm node;
  MPI_Comm_split_type(cx.comm, MPI_COMM_TYPE_SHARED, cx.rank, MPI_INFO_NULL, &node);
  int local = 0, local_size = 0, devices = 0;
  MPI_Comm_rank(node, &local);
  MPI_Comm_size(node, &local_size);
  MPI_Comm_free(&node);
  CUDA_OK(cudaGetDeviceCount(&devices));
  if (local_size > devices || local_size != cx.world)
    throw std::runtime_error("comm_bench needs one node and one GPU per rank");
  cx.device = local;
  CUDA_OK(cudaSetDevice(cx.device));
  CUDA_OK(cudaStreamCreateWithFlags(&cx.compute, cudaStreamNonBlocking));
  CUDA_OK(cudaStreamCreateWithFlags(&cx.pull, cudaStreamNonBlocking));
  CUDA_OK(cudaStreamCreateWithFlags(&cx.push, cudaStreamNonBlocking));
  CUDA_OK(cudaEventCreate(&cx.start));
  CUDA_OK(cudaEventCreate(&cx.stop));
  CUDA_OK(cudaMalloc(&g_wrong, sizeof(unsigned long long)));
  ncclComm_t direct = init_direct_nccl(cx);
  std::vector<std::unique_ptr<minipt::Collectives>> collectives;
  for (const CollectivesCase& c : collectives_cases()) collectives.push_back(c.make(cx));
  if (cx.rank == 0) {
    cudaDeviceProp prop{};
    CUDA_OK(cudaGetDeviceProperties(&prop, cx.device));
    std::printf("# minipt comm bench: %d ranks, one %s each; iters %d, warmup %d, ipc blocks %d\n",
                cx.world, prop.name, opt.iters, opt.warmup,
                minipt::gpucomm::resolve_blocks(opt.blocks));
    std::printf(
        "# busbw = algbw·(n−1)/n; odc bf16 rows (not bf16-mirror) move fp32 over the links (2x "
        "bytes)\n");
    std::printf("%12s %13s  %-14s %-22s %-5s %11s %9s %9s %7s\n", "elements", "S(bytes)", "op",
                "impl", "dtype", "time(us)", "algbw", "busbw", "#wrong");
  }
  for (int64_t size : opt.sizes) bench_size(cx, opt, size, direct, collectives);
  collectives.clear();
  NCCL_OK(ncclCommDestroy(direct));
  print_json(cx, opt, argc, argv);
  uint64_t wrong = 0;
  for (const Row& r : cx.rows) wrong += r.wrong;
  return wrong == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rc = 0;
  try {
    rc = run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "comm_bench: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  MPI_Finalize();
  return rc;
}
