#include "compute/kokkos/gemm.hpp"

#include <Kokkos_Core.hpp>
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define MINIPT_X86_VECTOR_KERNELS 1
#include <immintrin.h>
#endif

namespace minipt::kokkos {
namespace {

// Block sizes. MR×NR is the register tile; an A strip (MR×KC) and a B strip (KC×NR)
// must fit in L1 together (float: 6 KiB + 16 KiB), an A block (MC×KC, 96 KiB) in L2.
template <class T>
struct Blocking;
template <>
struct Blocking<float> {
  static constexpr int mr = 6, nr = 16;
  static constexpr int64_t kc = 256, mc = 96, nc = 1024;
};
template <>
struct Blocking<double> {
  static constexpr int mr = 4, nr = 8;
  static constexpr int64_t kc = 128, mc = 96, nc = 512;
};

// Grow-only 64-byte aligned scratch, one per thread and scalar type.
template <class T>
class AlignedScratch {
 public:
  AlignedScratch() = default;
  AlignedScratch(const AlignedScratch&) = delete;
  AlignedScratch& operator=(const AlignedScratch&) = delete;
  ~AlignedScratch() { release(); }
  T* ensure(int64_t count) {
    if (count > capacity_) {
      release();
      data_ = static_cast<T*>(
          ::operator new(static_cast<size_t>(count) * sizeof(T), std::align_val_t(64)));
      capacity_ = count;
    }
    return data_;
  }

 private:
  void release() {
    if (data_ != nullptr) ::operator delete(data_, std::align_val_t(64));
    data_ = nullptr;
    capacity_ = 0;
  }
  T* data_ = nullptr;
  int64_t capacity_ = 0;
};

template <class T>
struct PackBuffers {
  AlignedScratch<T> a, b;
};
template <class T>
PackBuffers<T>& thread_pack_buffers() {
  thread_local PackBuffers<T> buffers;
  return buffers;
}

// Copies A(row0.., col0..) (rows×depth) into MR-row strips, k-major, zero-padded.
template <class T>
void pack_a(const MatrixOperand<T>& a, int64_t row0, int64_t col0, int64_t rows, int64_t depth,
            T scale, T* out) {
  constexpr int mr = Blocking<T>::mr;
  for (int64_t strip = 0; strip * mr < rows; ++strip) {
    T* dst = out + strip * mr * depth;
    const int64_t valid = std::min<int64_t>(mr, rows - strip * mr);
    const T* src = a.data + (row0 + strip * mr) * a.row_stride + col0 * a.col_stride;
    if (valid == mr) {  // full strip: constant trip counts, no per-element tests
      const int64_t rs = a.row_stride, cs = a.col_stride;
      for (int64_t p = 0; p < depth; ++p) {
        const T* col = src + p * cs;
        for (int i = 0; i < mr; ++i) dst[p * mr + i] = scale * col[i * rs];
      }
    } else if (a.col_stride == 1) {  // rows contiguous: read along k
      for (int i = 0; i < mr; ++i) {
        if (i < valid) {
          const T* row = src + i * a.row_stride;
          for (int64_t p = 0; p < depth; ++p) dst[p * mr + i] = scale * row[p];
        } else {
          for (int64_t p = 0; p < depth; ++p) dst[p * mr + i] = T(0);
        }
      }
    } else {  // columns contiguous: read along m
      for (int64_t p = 0; p < depth; ++p) {
        const T* col = src + p * a.col_stride;
        for (int i = 0; i < mr; ++i)
          dst[p * mr + i] = i < valid ? scale * col[i * a.row_stride] : T(0);
      }
    }
  }
}

// Copies B strip `strip` (depth×NR starting at (row0, col0 + strip·NR)) k-major, zero-padded.
template <class T>
void pack_b_strip(const MatrixOperand<T>& b, int64_t row0, int64_t col0, int64_t depth,
                  int64_t cols, int64_t strip, int64_t strip_stride, T* out) {
  constexpr int nr = Blocking<T>::nr;
  T* dst = out + strip * strip_stride;
  const int64_t valid = std::min<int64_t>(nr, cols - strip * nr);
  const T* src = b.data + row0 * b.row_stride + (col0 + strip * nr) * b.col_stride;
  if (b.col_stride == 1) {  // rows contiguous: read along n
    for (int64_t p = 0; p < depth; ++p) {
      const T* row = src + p * b.row_stride;
      for (int j = 0; j < nr; ++j) dst[p * nr + j] = j < valid ? row[j] : T(0);
    }
  } else {  // columns contiguous: read along k
    for (int j = 0; j < nr; ++j) {
      if (j < valid) {
        const T* col = src + j * b.col_stride;
        for (int64_t p = 0; p < depth; ++p) dst[p * nr + j] = col[p * b.row_stride];
      } else {
        for (int64_t p = 0; p < depth; ++p) dst[p * nr + j] = T(0);
      }
    }
  }
}

// Writes an MR×NR register tile into C (only the rows×cols that exist).
template <class T, int MR, int NR>
void store_tile(const T (&tile)[MR][NR], T* c, int64_t ldc, int rows, int cols, bool accumulate) {
  for (int i = 0; i < rows; ++i) {
    T* ci = c + i * ldc;
    if (accumulate) {
      for (int j = 0; j < cols; ++j) ci[j] += tile[i][j];
    } else {
      for (int j = 0; j < cols; ++j) ci[j] = tile[i][j];
    }
  }
}

// Portable micro kernel: C tile (+)= Σ_p a_strip[p]·b_strip[p]ᵀ (outer products).
// With constant MR/NR the compiler unrolls i and vectorises j.
template <class T>
void micro_kernel_portable(int64_t depth, const T* a, const T* b, T* c, int64_t ldc, int rows,
                           int cols, bool accumulate) {
  constexpr int mr = Blocking<T>::mr, nr = Blocking<T>::nr;
  T acc[mr][nr] = {};
  for (int64_t p = 0; p < depth; ++p) {
    for (int i = 0; i < mr; ++i) {
      const T ai = a[i];
      for (int j = 0; j < nr; ++j) acc[i][j] += ai * b[j];
    }
    a += mr;
    b += nr;
  }
  store_tile<T, mr, nr>(acc, c, ldc, rows, cols, accumulate);
}

// Portable float kernel with 4-lane vectors (SSE2 on x86-64, NEON on aarch64): the
// 6×16 tile in two 6×8 halves, each with twelve named accumulators that fit the 16
// vector registers; the A strip (L1-resident) is read once per half.
typedef float v4f __attribute__((vector_size(16)));

void micro_kernel_portable_f32(int64_t depth, const float* a, const float* b, float* c, int64_t ldc,
                               int rows, int cols, bool accumulate) {
  alignas(16) float tile[6][16];
  for (int half = 0; half < 2; ++half) {
    const v4f zero = {0, 0, 0, 0};
    v4f c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero, c30 = zero,
        c31 = zero, c40 = zero, c41 = zero, c50 = zero, c51 = zero;
    const float* ap = a;
    const float* bp = b + half * 8;
    for (int64_t p = 0; p < depth; ++p) {
      v4f b0, b1;
      std::memcpy(&b0, bp, sizeof b0);
      std::memcpy(&b1, bp + 4, sizeof b1);
#define MINIPT_ROW(i, lo, hi)                    \
  {                                              \
    const v4f ai = {ap[i], ap[i], ap[i], ap[i]}; \
    lo += ai * b0;                               \
    hi += ai * b1;                               \
  }
      MINIPT_ROW(0, c00, c01)
      MINIPT_ROW(1, c10, c11)
      MINIPT_ROW(2, c20, c21)
      MINIPT_ROW(3, c30, c31)
      MINIPT_ROW(4, c40, c41)
      MINIPT_ROW(5, c50, c51)
#undef MINIPT_ROW
      ap += 6;
      bp += 16;
    }
    const v4f* acc[6][2] = {{&c00, &c01}, {&c10, &c11}, {&c20, &c21},
                            {&c30, &c31}, {&c40, &c41}, {&c50, &c51}};
    for (int i = 0; i < 6; ++i) {
      std::memcpy(&tile[i][half * 8], acc[i][0], sizeof(v4f));
      std::memcpy(&tile[i][half * 8 + 4], acc[i][1], sizeof(v4f));
    }
  }
  store_tile<float, 6, 16>(tile, c, ldc, rows, cols, accumulate);
}

#ifdef MINIPT_X86_VECTOR_KERNELS
// 6×16 float kernel: 12 ymm accumulators, 2 ymm for the B row, 1 broadcast of A.
// Per k step: 2 aligned loads, 6 broadcasts, 12 FMAs (192 flops).
__attribute__((target("avx2,fma"))) void micro_kernel_avx2_6x16(int64_t depth, const float* a,
                                                                const float* b, float* c,
                                                                int64_t ldc, int rows, int cols,
                                                                bool accumulate) {
  // Twelve named accumulators (not an array) so that they live in registers.
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t p = 0; p < depth; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
    __m256 ai = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(ai, b0, c00);
    c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(ai, b0, c10);
    c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(ai, b0, c20);
    c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(ai, b0, c30);
    c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(ai, b0, c40);
    c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(ai, b0, c50);
    c51 = _mm256_fmadd_ps(ai, b1, c51);
    a += 6;
    b += 16;
  }
  alignas(32) float tile[6][16];
  _mm256_store_ps(&tile[0][0], c00);
  _mm256_store_ps(&tile[0][8], c01);
  _mm256_store_ps(&tile[1][0], c10);
  _mm256_store_ps(&tile[1][8], c11);
  _mm256_store_ps(&tile[2][0], c20);
  _mm256_store_ps(&tile[2][8], c21);
  _mm256_store_ps(&tile[3][0], c30);
  _mm256_store_ps(&tile[3][8], c31);
  _mm256_store_ps(&tile[4][0], c40);
  _mm256_store_ps(&tile[4][8], c41);
  _mm256_store_ps(&tile[5][0], c50);
  _mm256_store_ps(&tile[5][8], c51);
  if (rows == 6 && cols == 16) {
    for (int i = 0; i < 6; ++i) {
      float* ci = c + i * ldc;
      __m256 lo = _mm256_load_ps(&tile[i][0]), hi = _mm256_load_ps(&tile[i][8]);
      if (accumulate) {
        lo = _mm256_add_ps(_mm256_loadu_ps(ci), lo);
        hi = _mm256_add_ps(_mm256_loadu_ps(ci + 8), hi);
      }
      _mm256_storeu_ps(ci, lo);
      _mm256_storeu_ps(ci + 8, hi);
    }
    return;
  }
  store_tile<float, 6, 16>(tile, c, ldc, rows, cols, accumulate);
}

// The same 6×16 kernel reading A in place, element (r, p) at a[r·rs + p·cs], instead
// of from a packed strip: for operands that are used once (attention's probability
// tiles) packing would cost about as much as the product. Rows past `rows` read row 0
// (valid memory; those results are not stored).
__attribute__((target("avx2,fma"))) void micro_kernel_avx2_6x16_strided(
    int64_t depth, const float* a, int64_t rs, int64_t cs, const float* b, float* c, int64_t ldc,
    int rows, int cols, bool accumulate) {
  const float* a0 = a;
  const float* a1 = rows > 1 ? a + rs : a;
  const float* a2 = rows > 2 ? a + 2 * rs : a;
  const float* a3 = rows > 3 ? a + 3 * rs : a;
  const float* a4 = rows > 4 ? a + 4 * rs : a;
  const float* a5 = rows > 5 ? a + 5 * rs : a;
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  int64_t off = 0;
  for (int64_t p = 0; p < depth; ++p, off += cs) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
    __m256 ai = _mm256_broadcast_ss(a0 + off);
    c00 = _mm256_fmadd_ps(ai, b0, c00);
    c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a1 + off);
    c10 = _mm256_fmadd_ps(ai, b0, c10);
    c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a2 + off);
    c20 = _mm256_fmadd_ps(ai, b0, c20);
    c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a3 + off);
    c30 = _mm256_fmadd_ps(ai, b0, c30);
    c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a4 + off);
    c40 = _mm256_fmadd_ps(ai, b0, c40);
    c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a5 + off);
    c50 = _mm256_fmadd_ps(ai, b0, c50);
    c51 = _mm256_fmadd_ps(ai, b1, c51);
    b += 16;
  }
  alignas(32) float tile[6][16];
  _mm256_store_ps(&tile[0][0], c00);
  _mm256_store_ps(&tile[0][8], c01);
  _mm256_store_ps(&tile[1][0], c10);
  _mm256_store_ps(&tile[1][8], c11);
  _mm256_store_ps(&tile[2][0], c20);
  _mm256_store_ps(&tile[2][8], c21);
  _mm256_store_ps(&tile[3][0], c30);
  _mm256_store_ps(&tile[3][8], c31);
  _mm256_store_ps(&tile[4][0], c40);
  _mm256_store_ps(&tile[4][8], c41);
  _mm256_store_ps(&tile[5][0], c50);
  _mm256_store_ps(&tile[5][8], c51);
  store_tile<float, 6, 16>(tile, c, ldc, rows, cols, accumulate);
}

bool cpu_has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
bool cpu_has_avx2_fma() { return false; }
#endif

std::atomic<bool>& vector_kernels_flag() {
  static std::atomic<bool> flag{cpu_has_avx2_fma()};
  return flag;
}

template <class T>
using MicroKernel = void (*)(int64_t, const T*, const T*, T*, int64_t, int, int, bool);

template <class T>
MicroKernel<T> select_micro_kernel() {
#ifdef MINIPT_X86_VECTOR_KERNELS
  if constexpr (std::is_same_v<T, float>) {
    if (vector_kernels_flag().load(std::memory_order_relaxed)) return &micro_kernel_avx2_6x16;
  }
#endif
  if constexpr (std::is_same_v<T, float>) return &micro_kernel_portable_f32;
  return &micro_kernel_portable<T>;
}

// All register tiles of one packed A block × one packed B panel.
template <class T>
void macro_kernel(MicroKernel<T> micro, int64_t rows, int64_t cols, int64_t depth,
                  const T* a_packed, const T* b_packed, int64_t b_strip_stride, T* c, int64_t ldc,
                  bool accumulate) {
  constexpr int mr = Blocking<T>::mr, nr = Blocking<T>::nr;
  for (int64_t jr = 0; jr < cols; jr += nr) {
    const T* b_strip = b_packed + (jr / nr) * b_strip_stride;
    const int tile_cols = static_cast<int>(std::min<int64_t>(nr, cols - jr));
    for (int64_t ir = 0; ir < rows; ir += mr) {
      const int tile_rows = static_cast<int>(std::min<int64_t>(mr, rows - ir));
      micro(depth, a_packed + (ir / mr) * mr * depth, b_strip, c + ir * ldc + jr, ldc, tile_rows,
            tile_cols, accumulate);
    }
  }
}

template <class T>
void zero_matrix(int64_t m, int64_t n, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
}

// The blocked product; row blocks and B strips run through Kokkos.
template <class T>
void gemm_blocked(int64_t m, int64_t n, int64_t k, const MatrixOperand<T>& a,
                  const MatrixOperand<T>& b, T* c, int64_t ldc, bool accumulate) {
  using B = Blocking<T>;
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate) zero_matrix(m, n, c, ldc);
    return;
  }
  const MicroKernel<T> micro = select_micro_kernel<T>();
  PackBuffers<T>& caller = thread_pack_buffers<T>();
  using Exec = Kokkos::DefaultHostExecutionSpace;
  for (int64_t jc = 0; jc < n; jc += B::nc) {
    const int64_t panel_cols = std::min<int64_t>(B::nc, n - jc);
    const int64_t strips = (panel_cols + B::nr - 1) / B::nr;
    for (int64_t pc = 0; pc < k; pc += B::kc) {
      const int64_t depth = std::min<int64_t>(B::kc, k - pc);
      const bool add = accumulate || pc > 0;
      T* b_packed = caller.b.ensure(strips * B::nr * depth);
      const int64_t row_blocks = (m + B::mc - 1) / B::mc;
      auto pack_strip = [&](const int64_t s) {
        pack_b_strip(b, pc, jc, depth, panel_cols, s, B::nr * depth, b_packed);
      };
      auto row_block = [&](const int64_t block) {
        const int64_t ic = block * B::mc;
        const int64_t rows = std::min<int64_t>(B::mc, m - ic);
        T* a_packed = thread_pack_buffers<T>().a.ensure((rows + B::mr - 1) / B::mr * B::mr * depth);
        pack_a(a, ic, pc, rows, depth, T(1), a_packed);
        macro_kernel(micro, rows, panel_cols, depth, a_packed, b_packed, B::nr * depth,
                     c + ic * ldc + jc, ldc, add);
      };
      Kokkos::parallel_for("minipt::gemm::pack_b", Kokkos::RangePolicy<Exec>(0, strips),
                           pack_strip);
      Kokkos::parallel_for("minipt::gemm::row_blocks", Kokkos::RangePolicy<Exec>(0, row_blocks),
                           row_block);
    }
  }
}

}  // namespace

template <class T>
void gemm(int64_t m, int64_t n, int64_t k, MatrixOperand<T> a, MatrixOperand<T> b, T* c,
          int64_t ldc, bool accumulate) {
  gemm_blocked(m, n, k, a, b, c, ldc, accumulate);
}

template <class T>
int gemm_tile_rows() {
  return Blocking<T>::mr;
}
template <class T>
int gemm_tile_cols() {
  return Blocking<T>::nr;
}

template <class T>
void pack_a_operand(MatrixOperand<T> a, int64_t rows, int64_t depth, T scale, T* out) {
  pack_a(a, 0, 0, rows, depth, scale, out);
}

template <class T>
void pack_b_operand(MatrixOperand<T> b, int64_t depth, int64_t cols, int64_t strip_stride, T* out) {
  for (int64_t s = 0; s * Blocking<T>::nr < cols; ++s)
    pack_b_strip(b, 0, 0, depth, cols, s, strip_stride, out);
}

template <class T>
void multiply_packed(int64_t m, int64_t n, int64_t k, const T* a_packed, const T* b_packed,
                     int64_t b_strip_stride, T* c, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate) zero_matrix(m, n, c, ldc);
    return;
  }
  macro_kernel(select_micro_kernel<T>(), m, n, k, a_packed, b_packed, b_strip_stride, c, ldc,
               accumulate);
}

template <class T>
void multiply_strided_a(int64_t m, int64_t n, int64_t k, MatrixOperand<T> a, const T* b_packed,
                        int64_t b_strip_stride, T* c, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate) zero_matrix(m, n, c, ldc);
    return;
  }
#ifdef MINIPT_X86_VECTOR_KERNELS
  if constexpr (std::is_same_v<T, float>) {
    if (vector_kernels_flag().load(std::memory_order_relaxed)) {
      constexpr int mr = Blocking<T>::mr, nr = Blocking<T>::nr;
      for (int64_t jr = 0; jr < n; jr += nr) {
        const T* b_strip = b_packed + (jr / nr) * b_strip_stride;
        const int tile_cols = static_cast<int>(std::min<int64_t>(nr, n - jr));
        for (int64_t ir = 0; ir < m; ir += mr)
          micro_kernel_avx2_6x16_strided(
              k, a.data + ir * a.row_stride, a.row_stride, a.col_stride, b_strip, c + ir * ldc + jr,
              ldc, static_cast<int>(std::min<int64_t>(mr, m - ir)), tile_cols, accumulate);
      }
      return;
    }
  }
#endif
  T* a_packed = thread_pack_buffers<T>().a.ensure(packed_a_size<T>(m, k));
  pack_a(a, 0, 0, m, k, T(1), a_packed);
  macro_kernel(select_micro_kernel<T>(), m, n, k, a_packed, b_packed, b_strip_stride, c, ldc,
               accumulate);
}

#define MINIPT_INSTANTIATE_PACKED(T)                                                           \
  template int gemm_tile_rows<T>();                                                            \
  template int gemm_tile_cols<T>();                                                            \
  template void pack_a_operand<T>(MatrixOperand<T>, int64_t, int64_t, T, T*);                  \
  template void pack_b_operand<T>(MatrixOperand<T>, int64_t, int64_t, int64_t, T*);            \
  template void multiply_packed<T>(int64_t, int64_t, int64_t, const T*, const T*, int64_t, T*, \
                                   int64_t, bool);                                             \
  template void multiply_strided_a<T>(int64_t, int64_t, int64_t, MatrixOperand<T>, const T*,   \
                                      int64_t, T*, int64_t, bool);
MINIPT_INSTANTIATE_PACKED(float)
MINIPT_INSTANTIATE_PACKED(double)
#undef MINIPT_INSTANTIATE_PACKED

template void gemm<float>(int64_t, int64_t, int64_t, MatrixOperand<float>, MatrixOperand<float>,
                          float*, int64_t, bool);
template void gemm<double>(int64_t, int64_t, int64_t, MatrixOperand<double>, MatrixOperand<double>,
                           double*, int64_t, bool);

bool vector_kernels_available() { return cpu_has_avx2_fma(); }
bool vector_kernels_enabled() { return vector_kernels_flag().load(); }
void set_vector_kernels_enabled(bool enabled) {
  vector_kernels_flag().store(enabled && cpu_has_avx2_fma());
}

}  // namespace minipt::kokkos
