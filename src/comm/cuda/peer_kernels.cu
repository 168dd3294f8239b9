// Element-wise kernels of the GPU one-sided transports (see peer_kernels.cuh).
//
// All of them are memory-bound: each thread moves four elements per access (16-byte
// fp32 loads, 8-byte bf16 loads) and keeps kUnroll such loads in flight before the
// first store, because a read over NVLink has a latency of a few microseconds and
// only many outstanding requests hide it. Pointers that are not aligned for the
// four-element accesses take a scalar loop instead.
#include <cuda_bf16.h>

#include <algorithm>
#include <stdexcept>

#include "comm/cuda/cuda_util.hpp"
#include "comm/cuda/peer_kernels.cuh"

namespace minipt::gpucomm {
namespace {

constexpr int kThreads = 512;
constexpr int kUnroll = 4;

__device__ __forceinline__ float load1(const float* p) { return *p; }
__device__ __forceinline__ float load1(const __nv_bfloat16* p) { return __bfloat162float(*p); }

__device__ __forceinline__ float4 load4(const float* p) {
  return *reinterpret_cast<const float4*>(p);
}
__device__ __forceinline__ float4 load4(const __nv_bfloat16* p) {
  const uint2 raw = *reinterpret_cast<const uint2*>(p);
  const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
  const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
  return make_float4(lo.x, lo.y, hi.x, hi.y);
}

// dst ← src (converted; bf16 rounds to nearest even).
struct StoreOp {
  __device__ __forceinline__ void apply1(float* d, float v) const { *d = v; }
  __device__ __forceinline__ void apply1(__nv_bfloat16* d, float v) const {
    *d = __float2bfloat16_rn(v);
  }
  __device__ __forceinline__ void apply4(float* d, float4 v) const {
    *reinterpret_cast<float4*>(d) = v;
  }
  __device__ __forceinline__ void apply4(__nv_bfloat16* d, float4 v) const {
    const __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y);
    const __nv_bfloat162 hi = __floats2bfloat162_rn(v.z, v.w);
    uint2 packed;
    packed.x = *reinterpret_cast<const unsigned int*>(&lo);
    packed.y = *reinterpret_cast<const unsigned int*>(&hi);
    *reinterpret_cast<uint2*>(d) = packed;
  }
};

// dst += src with system-scope atomics: the four-wide form is one vector reduction
// (sm_90), which crosses NVLink as one request instead of four.
struct AtomicAddOp {
  __device__ __forceinline__ void apply1(float* d, float v) const { atomicAdd_system(d, v); }
  __device__ __forceinline__ void apply4(float* d, float4 v) const {
    atomicAdd_system(reinterpret_cast<float4*>(d), v);
  }
};

// dst += src, plain.
struct AddOp {
  __device__ __forceinline__ void apply1(float* d, float v) const { *d += v; }
  __device__ __forceinline__ void apply4(float* d, float4 v) const {
    float4* d4 = reinterpret_cast<float4*>(d);
    float4 old = *d4;
    old.x += v.x;
    old.y += v.y;
    old.z += v.z;
    old.w += v.w;
    *d4 = old;
  }
};

// Four elements per thread and access; the n % 4 tail goes to the first threads.
template <typename In, typename Out, typename Op>
__global__ void __launch_bounds__(kThreads)
    quad_kernel(const In* __restrict__ src, Out* dst, int64_t n, Op op) {
  const int64_t quads = n / 4;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t q = first;
  for (; q + (kUnroll - 1) * stride < quads; q += kUnroll * stride) {
    float4 v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) v[u] = load4(src + 4 * (q + u * stride));
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) op.apply4(dst + 4 * (q + u * stride), v[u]);
  }
  for (; q < quads; q += stride) op.apply4(dst + 4 * q, load4(src + 4 * q));
  const int64_t tail = 4 * quads + first;
  if (tail < n) op.apply1(dst + tail, load1(src + tail));
}

template <typename In, typename Out, typename Op>
__global__ void __launch_bounds__(kThreads)
    scalar_kernel(const In* __restrict__ src, Out* dst, int64_t n, Op op) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    op.apply1(dst + i, load1(src + i));
}

bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

template <typename In, typename Out, typename Op>
void launch_elementwise(const In* src, Out* dst, int64_t n, int blocks, cudaStream_t stream,
                        Op op) {
  if (n <= 0) return;
  const bool vector = aligned(src, 4 * sizeof(In)) && aligned(dst, 4 * sizeof(Out));
  const int64_t items = vector ? (n + 3) / 4 : n;
  const int64_t needed = (items + kThreads - 1) / kThreads;
  const int grid = static_cast<int>(needed < blocks ? needed : blocks);
  if (vector)
    quad_kernel<<<grid, kThreads, 0, stream>>>(src, dst, n, op);
  else
    scalar_kernel<<<grid, kThreads, 0, stream>>>(src, dst, n, op);
  MINIPT_CUDA_CHECK(cudaGetLastError());
}

// dst ← src, bytes: 16-byte accesses with kUnroll loads in flight per thread (a pull of
// the owner's bf16 copy by the multiprocessors: more outstanding NVLink reads than one
// copy engine keeps).
__global__ void __launch_bounds__(kThreads)
    copy16_kernel(const uint4* __restrict__ src, uint4* __restrict__ dst, int64_t vectors) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i + (kUnroll - 1) * stride < vectors; i += kUnroll * stride) {
    uint4 v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) v[u] = src[i + u * stride];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) dst[i + u * stride] = v[u];
  }
  for (; i < vectors; i += stride) dst[i] = src[i];
}

// grads[i] += Σ_c slots[c][i], four elements per thread and access. The slots are only
// read here (a cudaMemsetAsync clears them afterwards at copy speed), and all `world`
// loads of a quad are issued before the first add, so that they are in flight together.
template <bool kVector>
__global__ void __launch_bounds__(kThreads)
    reduce_slots_kernel(float* __restrict__ grads, const float* __restrict__ slots, int world,
                        int64_t count) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if constexpr (kVector) {
    constexpr int kMaxBatch = 8;
    for (int64_t q = first; q < count / 4; q += stride) {
      float4 sum = reinterpret_cast<const float4*>(grads)[q];
      float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      for (int c0 = 0; c0 < world; c0 += kMaxBatch) {
        float4 v[kMaxBatch];
#pragma unroll
        for (int k = 0; k < kMaxBatch; ++k)
          if (c0 + k < world)
            v[k] = reinterpret_cast<const float4*>(slots + static_cast<int64_t>(c0 + k) * count)[q];
#pragma unroll
        for (int k = 0; k < kMaxBatch; ++k) {
          if (c0 + k < world) {
            acc.x += v[k].x;
            acc.y += v[k].y;
            acc.z += v[k].z;
            acc.w += v[k].w;
          }
        }
      }
      sum.x += acc.x;
      sum.y += acc.y;
      sum.z += acc.z;
      sum.w += acc.w;
      reinterpret_cast<float4*>(grads)[q] = sum;
    }
  } else {
    for (int64_t i = first; i < count; i += stride) {
      float acc = 0.0f;
      for (int c = 0; c < world; ++c) acc += slots[static_cast<int64_t>(c) * count + i];
      grads[i] += acc;
    }
  }
}

}  // namespace

int resolve_blocks(int requested) {
  if (requested > 0) return requested;
  int device = 0;
  int sms = 0;
  MINIPT_CUDA_CHECK(cudaGetDevice(&device));
  MINIPT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return 2 * sms;
}

void launch_convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n,
                    int blocks, cudaStream_t stream) {
  const auto* src_f32 = static_cast<const float*>(src);
  const auto* src_bf16 = static_cast<const __nv_bfloat16*>(src);
  auto* dst_f32 = static_cast<float*>(dst);
  auto* dst_bf16 = static_cast<__nv_bfloat16*>(dst);
  if (src_dtype == DType::f32 && dst_dtype == DType::f32)
    launch_elementwise(src_f32, dst_f32, n, blocks, stream, StoreOp{});
  else if (src_dtype == DType::f32)
    launch_elementwise(src_f32, dst_bf16, n, blocks, stream, StoreOp{});
  else if (dst_dtype == DType::f32)
    launch_elementwise(src_bf16, dst_f32, n, blocks, stream, StoreOp{});
  else
    launch_elementwise(src_bf16, dst_bf16, n, blocks, stream, StoreOp{});
}

void launch_copy(const void* src, void* dst, int64_t bytes, int blocks, cudaStream_t stream) {
  if (bytes <= 0) return;
  const auto* s = static_cast<const char*>(src);
  auto* d = static_cast<char*>(dst);
  // Head up to 16-byte alignment of the source; the vector body needs both aligned.
  const int64_t head = std::min<int64_t>(
      bytes, static_cast<int64_t>((16 - reinterpret_cast<uintptr_t>(s) % 16) % 16));
  if (!aligned(d + head, 16)) {
    MINIPT_CUDA_CHECK(
        cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  if (head > 0)
    MINIPT_CUDA_CHECK(
        cudaMemcpyAsync(d, s, static_cast<size_t>(head), cudaMemcpyDeviceToDevice, stream));
  const int64_t vectors = (bytes - head) / 16;
  if (vectors > 0) {
    const int64_t needed = (vectors + kThreads - 1) / kThreads;
    const int grid = static_cast<int>(needed < blocks ? needed : blocks);
    copy16_kernel<<<grid, kThreads, 0, stream>>>(reinterpret_cast<const uint4*>(s + head),
                                                 reinterpret_cast<uint4*>(d + head), vectors);
    MINIPT_CUDA_CHECK(cudaGetLastError());
  }
  const int64_t done = head + 16 * vectors;
  if (done < bytes)
    MINIPT_CUDA_CHECK(cudaMemcpyAsync(d + done, s + done, static_cast<size_t>(bytes - done),
                                      cudaMemcpyDeviceToDevice, stream));
}

void launch_atomic_add(float* dst, const void* src, DType src_dtype, int64_t n, int blocks,
                       cudaStream_t stream) {
  if (src_dtype == DType::f32)
    launch_elementwise(static_cast<const float*>(src), dst, n, blocks, stream, AtomicAddOp{});
  else
    launch_elementwise(static_cast<const __nv_bfloat16*>(src), dst, n, blocks, stream,
                       AtomicAddOp{});
}

void launch_add(float* dst, const void* src, DType src_dtype, int64_t n, int blocks,
                cudaStream_t stream) {
  if (src_dtype == DType::f32)
    launch_elementwise(static_cast<const float*>(src), dst, n, blocks, stream, AddOp{});
  else
    launch_elementwise(static_cast<const __nv_bfloat16*>(src), dst, n, blocks, stream, AddOp{});
}

void launch_reduce_slots(float* grads, float* slots, int world, int64_t count,
                         cudaStream_t stream) {
  if (count <= 0) return;
  const bool vector = count % 4 == 0 && aligned(grads, 16) && aligned(slots, 16);
  const int64_t items = vector ? count / 4 : count;
  const int64_t needed = (items + kThreads - 1) / kThreads;
  const int blocks = resolve_blocks(0);
  const int grid = static_cast<int>(needed < blocks ? needed : blocks);
  if (vector)
    reduce_slots_kernel<true><<<grid, kThreads, 0, stream>>>(grads, slots, world, count);
  else
    reduce_slots_kernel<false><<<grid, kThreads, 0, stream>>>(grads, slots, world, count);
  MINIPT_CUDA_CHECK(cudaGetLastError());
  MINIPT_CUDA_CHECK(cudaMemsetAsync(
      slots, 0, static_cast<size_t>(world) * static_cast<size_t>(count) * sizeof(float), stream));
}

}  // namespace minipt::gpucomm
