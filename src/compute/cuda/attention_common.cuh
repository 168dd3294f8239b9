// Device helpers shared by the flash attention kernels: asynchronous tile copies,
// swizzled shared-memory tiles, ldmatrix and the bf16 tensor-core product
// mma.sync.m16n8k16 (fp32 accumulate).
//
// Fragment layouts of mma.m16n8k16 (g = lane/4, c = lane%4):
//   A (16×16, row-major): a0 = (row g,   k 2c..2c+1)   a1 = (row g+8, k 2c..2c+1)
//                         a2 = (row g,   k 2c+8..)     a3 = (row g+8, k 2c+8..)
//   B (16×8, "col"):      b0 = (k 2c..2c+1, col g)     b1 = (k 2c+8.., col g)
//   C (16×8, fp32):       c0,c1 = (row g, cols 2c, 2c+1)   c2,c3 = (row g+8, same cols)
// So an fp32 accumulator tile of scores (rows × keys) repacks into the A fragment of
// the next product without any data movement: that is how P·V, Pᵀ·dO and dSᵀ·Q read
// their left operand straight from registers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace minipt::cuda::attn {

using bf16 = __nv_bfloat16;

// Element offset of (row, col) in a [rows][D] bf16 tile whose 16-byte chunks are XOR-
// swizzled by row, so that the 8 rows one ldmatrix reads at the same logical column land
// in 8 different bank groups (a row is D·2 bytes; unswizzled they would all collide).
template <int D>
__device__ __forceinline__ int tile_offset(int row, int col) {
  constexpr int kChunks = D / 8;
  const int chunk = col >> 3;
  const int phys = kChunks >= 8 ? (chunk ^ (row & 7)) : (chunk ^ ((row >> 1) & (kChunks - 1)));
  return row * D + phys * 8 + (col & 7);
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global→shared copy; src_bytes 0 writes zeros (used past the sequence end).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_async4(void* dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(smem_addr(dst)), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Copies rows [row0, row0+ROWS) of a [*][ld] bf16 matrix (D columns from g) into a
// swizzled tile; rows at or past `valid_rows` are zero-filled.
template <int ROWS, int D, int THREADS>
__device__ __forceinline__ void load_tile(bf16* tile, const bf16* g, int64_t ld, int row0,
                                          int valid_rows, int tid) {
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int i = tid; i < ROWS * kChunks; i += THREADS) {
    const int r = i / kChunks, c = i % kChunks;
    const bool ok = row0 + r < valid_rows;
    const bf16* src = ok ? g + static_cast<int64_t>(row0 + r) * ld + c * 8 : g;
    cp_async16(tile + tile_offset<D>(r, c * 8), src, ok ? 16 : 0);
  }
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// d += a·b for one 16×8 tile.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// A fragment of rows [row0, row0+16) × cols [col0, col0+16) of a swizzled [*][D] tile.
template <int D>
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const bf16* tile, int row0, int col0,
                                       int lane) {
  const int mi = lane >> 3;
  ldmatrix_x4(a, tile + tile_offset<D>(row0 + (lane & 7) + (mi & 1) * 8, col0 + (mi >> 1) * 8));
}

// B fragments of two adjacent 8-column n-tiles from a tile stored [n][k] (rows are the
// product's columns, e.g. K for S = Q·Kᵀ): r0,r1 → n-tile n0, r2,r3 → n-tile n0+8.
template <int D>
__device__ __forceinline__ void load_b_nk(uint32_t (&b)[4], const bf16* tile, int n0, int k0,
                                          int lane) {
  const int mi = lane >> 3;
  ldmatrix_x4(b, tile + tile_offset<D>(n0 + (lane & 7) + (mi >> 1) * 8, k0 + (mi & 1) * 8));
}

// B fragments of two adjacent n-tiles from a tile stored [k][n] (e.g. V for O = P·V).
template <int D>
__device__ __forceinline__ void load_b_kn(uint32_t (&b)[4], const bf16* tile, int k0, int n0,
                                          int lane) {
  const int mi = lane >> 3;
  ldmatrix_x4_trans(b, tile + tile_offset<D>(k0 + (lane & 7) + (mi & 1) * 8, n0 + (mi >> 1) * 8));
}

// A fragment of the transpose of a tile stored [k][m] (rows m0.., k k0..): used for dS
// from a stored dSᵀ.
template <int D>
__device__ __forceinline__ void load_a_transposed(uint32_t (&a)[4], const bf16* tile, int m0,
                                                  int k0, int lane) {
  const int mi = lane >> 3;
  ldmatrix_x4_trans(a, tile + tile_offset<D>(k0 + (lane & 7) + (mi >> 1) * 8, m0 + (mi & 1) * 8));
}

}  // namespace minipt::cuda::attn
