// Cache-blocked, register-tiled matrix products for the host transformer.
//
// One general routine computes C[m×n] (+)= A[m×k]·B[k×n] where A and B are read
// through (row stride, column stride) pairs, so the three shapes a linear layer needs
// are the same code with different strides (W is row-major [out][in]):
//   y  = x·Wᵀ    forward           A = x,   B(k,n) = W[n][k]
//   dx = dy·W    input gradient    A = dy,  B = W
//   dW = dyᵀ·x   weight gradient   A(m,t) = dy[t][m],  B = x
//
// Structure (Goto/BLIS): the k dimension is cut into KC-deep slabs and n into
// NC-wide panels; each B slab×panel is copied ("packed") into NR-column strips laid
// out k-major, each MC-row block of A into MR-row strips laid out k-major. A micro
// kernel then keeps an MR×NR block of C in vector registers while it streams one A
// strip and one B strip from L1/L2: 2·MR·NR flops per MR+NR loads. Packing pads the
// edges with zeros so the micro kernel never branches inside its k loop.
//
// Float micro kernels: on x86-64 CPUs with AVX2+FMA a hand-written 6×16 intrinsic
// kernel (twelve ymm accumulators), chosen at run time; elsewhere a 6×16 kernel on
// 4-lane vector extensions (SSE2 / NEON). Double (the gradient check) uses a plain
// loop kernel the compiler vectorises. Attention multiplies its small tiles through
// the packed-operand entry points below, packing K/V/Q once per sequence.
#pragma once

#include <cstdint>

namespace minipt::kokkos {

// Read-only view of a matrix operand: element (r, c) is data[r·row_stride + c·col_stride].
template <class T>
struct MatrixOperand {
  const T* data;
  int64_t row_stride;
  int64_t col_stride;
};

template <class T>
MatrixOperand<T> row_major(const T* data, int64_t columns) {
  return {data, columns, 1};
}
template <class T>
MatrixOperand<T> transposed(const T* row_major_data, int64_t columns) {
  return {row_major_data, 1, columns};
}

// C[m×n] (row-major, leading dimension ldc) = A·B, or += A·B when accumulate.
// Parallel over row blocks with Kokkos on the default host execution space; must not
// be called from inside another Kokkos parallel region (attention tiles use the
// packed-operand functions below, which run on the calling thread).
template <class T>
void gemm(int64_t m, int64_t n, int64_t k, MatrixOperand<T> a, MatrixOperand<T> b, T* c,
          int64_t ldc, bool accumulate);

// The three linear-layer shapes (tokens rows; W is [out][in] row-major).
// y[tokens×out] (+)= x[tokens×in]·Wᵀ
template <class T>
void linear_forward(int64_t tokens, int64_t out, int64_t in, const T* x, const T* w, T* y,
                    bool accumulate) {
  gemm<T>(tokens, out, in, row_major(x, in), transposed(w, in), y, out, accumulate);
}
// dx[tokens×in] (+)= dy[tokens×out]·W
template <class T>
void linear_backward_input(int64_t tokens, int64_t out, int64_t in, const T* dy, const T* w, T* dx,
                           bool accumulate) {
  gemm<T>(tokens, in, out, row_major(dy, out), row_major(w, in), dx, in, accumulate);
}
// dW[out×in] (+)= dyᵀ·x
template <class T>
void linear_backward_weight(int64_t tokens, int64_t out, int64_t in, const T* dy, const T* x, T* dw,
                            bool accumulate) {
  gemm<T>(out, in, tokens, transposed(dy, out), row_major(x, in), dw, in, accumulate);
}

// ---- packed operands, for callers that reuse them across many products (attention) ----
// A is packed into strips of gemm_tile_rows() rows, each stored depth-major; B into
// strips of gemm_tile_cols() columns, each stored depth-major, `strip_stride` elements
// apart. A packed A of many rows can be used from any row that is a multiple of the
// strip height (pointer + row·depth); a packed B whose strip_stride exceeds
// tile_cols·depth can be used from any depth offset p (pointer + p·tile_cols), which
// lets one packing of a whole sequence serve every tile of it.
template <class T>
int gemm_tile_rows();
template <class T>
int gemm_tile_cols();
template <class T>
int64_t packed_a_size(int64_t rows, int64_t depth) {
  const int mr = gemm_tile_rows<T>();
  return (rows + mr - 1) / mr * mr * depth;
}
template <class T>
int64_t packed_b_size(int64_t depth, int64_t cols) {
  const int nr = gemm_tile_cols<T>();
  return (cols + nr - 1) / nr * nr * depth;
}
// out ← scale·A (rows×depth), zero-padded to whole strips.
template <class T>
void pack_a_operand(MatrixOperand<T> a, int64_t rows, int64_t depth, T scale, T* out);
// out ← B (depth×cols), zero-padded to whole strips.
template <class T>
void pack_b_operand(MatrixOperand<T> b, int64_t depth, int64_t cols, int64_t strip_stride, T* out);
// C[m×n] (+)= A·B from packed operands (A strips depth k apart; B strips
// b_strip_stride apart), on the calling thread.
template <class T>
void multiply_packed(int64_t m, int64_t n, int64_t k, const T* a_packed, const T* b_packed,
                     int64_t b_strip_stride, T* c, int64_t ldc, bool accumulate);
// C[m×n] (+)= A·B with A read in place (no packing; for operands used once) and B packed.
template <class T>
void multiply_strided_a(int64_t m, int64_t n, int64_t k, MatrixOperand<T> a, const T* b_packed,
                        int64_t b_strip_stride, T* c, int64_t ldc, bool accumulate);

// Whether float products use the AVX2+FMA micro kernel (true when the CPU has it).
// Tests switch it off to check the portable kernel too.
bool vector_kernels_available();
bool vector_kernels_enabled();
void set_vector_kernels_enabled(bool enabled);

}  // namespace minipt::kokkos
