// Matrix products through cuBLASLt, phrased in row-major terms (the layout every
// tensor of the CUDA backend uses). Inputs are bf16, accumulation is fp32, the output
// is bf16 or fp32 and may add a scaled input matrix of the output's type (beta·Cin),
// which is how residual adds and gradient accumulation are fused into the product.
//
// Algorithm choice: cuBLASLt's heuristic proposes up to kCandidates algorithms per shape.
// A shape takes the choice of the process's kernel table (kernel_table.hpp), looked up for
// its exact shape, then for its token bucket (the token dimension, m of nt/nn and k of tn,
// rounded up to a power of two) where that algorithm applies to the shape. Without one,
// a recording process times every candidate at the shape's first call whose output may be
// written twice (beta == 0, or c_in is not the output: one warm-up, best of two) and
// records the fastest for the bucket (for the exact shape when the bucket's does not
// apply); otherwise the heuristic's first choice runs. The trainer fills the table once
// per job (compute.tuning), so every rank runs the same algorithm for the same shape, and
// two backends of one process given the same shapes compute the same bits.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace minipt::cuda {

enum class GemmOp {
  nt,  // C[M][N] = A[M][K] · B[N][K]ᵀ   (forward: y = x·Wᵀ)
  nn,  // C[M][N] = A[M][K] · B[K][N]    (input gradient: dx = dy·W)
  tn,  // C[M][N] = A[K][M]ᵀ · B[K][N]   (weight gradient: dW = dyᵀ·x)
};

class Gemm {
 public:
  explicit Gemm(cudaStream_t stream);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // C (row-major, leading dimension ldc, fp32 when c_fp32 else bf16)
  //   = op(A, B) + beta · c_in   (c_in of C's type and layout; ignored when beta == 0).
  void run(GemmOp op, int64_t m, int64_t n, int64_t k, const __nv_bfloat16* a, int64_t lda,
           const __nv_bfloat16* b, int64_t ldb, void* c, int64_t ldc, bool c_fp32,
           float beta = 0.0f, const void* c_in = nullptr);

 private:
  static constexpr int kCandidates = 8;
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    std::vector<cublasLtMatmulAlgo_t> candidates;  // the heuristic's, best first
    bool tuned = false;       // algo is final (else timed at the next idempotent call)
    uint64_t generation = 0;  // of the kernel table algo was resolved with
  };
  using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool>;
  Plan& plan(const Key& key);
  static Key bucket(const Key& key);
  // The kernel table's key of a shape (exact) or of its bucket.
  static std::string table_key(const Key& key, bool exact);
  // Takes the table's choice for key, else the heuristic's first (timed later if recording).
  void resolve(const Key& key, Plan& p);
  // Times every candidate of p with these operands and keeps the fastest.
  void tune(const Key& key, Plan& p, const void* a, const void* b, const void* c_in, void* c,
            float beta);
  cublasStatus_t matmul(const Plan& p, const cublasLtMatmulAlgo_t& algo, const void* a,
                        const void* b, const void* c_in, void* c, float beta);

  cudaStream_t stream_;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 64ull << 20;
  cublasLtMatmulPreference_t preference_ = nullptr;
  std::map<Key, Plan> plans_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

}  // namespace minipt::cuda
