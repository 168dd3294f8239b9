#include <string>

#include "compute/cuda/cuda_check.hpp"
#include "compute/cuda/gemm.hpp"

namespace minipt::cuda {

Gemm::Gemm(cudaStream_t stream) : stream_(stream) {
  CUBLAS_CHECK(cublasLtCreate(&handle_));
  CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference_));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference_,
                                                    CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &workspace_bytes_, sizeof(workspace_bytes_)));
}

Gemm::~Gemm() {
  for (auto& [key, p] : plans_) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.desc);
  }
  cublasLtMatmulPreferenceDestroy(preference_);
  cudaFree(workspace_);
  cublasLtDestroy(handle_);
}

// Row-major C[M][N] is column-major Cᶜ (N×M) with the same leading dimension, so every
// product is computed as its transpose: Cᶜ = op(B)ᶜ · op(A)ᶜ, cuBLASLt's (m, n, k) being
// (N, M, K). The stored shapes below are the column-major views of the row-major inputs.
const Gemm::Plan& Gemm::plan(const Key& key) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  const auto [op_int, m, n, k, lda, ldb, ldc, c_fp32] = key;
  const GemmOp op = static_cast<GemmOp>(op_int);
  // cuBLASLt operand "A" is our B, operand "B" is our A.
  cublasOperation_t trans_a = CUBLAS_OP_N, trans_b = CUBLAS_OP_N;
  uint64_t a_rows = 0, a_cols = 0, b_rows = 0, b_cols = 0;
  switch (op) {
    case GemmOp::nt:  // B[N][K] is (K×N) column-major → transpose; A[M][K] is (K×M).
      trans_a = CUBLAS_OP_T;
      a_rows = k;
      a_cols = n;
      trans_b = CUBLAS_OP_N;
      b_rows = k;
      b_cols = m;
      break;
    case GemmOp::nn:  // B[K][N] is (N×K); A[M][K] is (K×M).
      trans_a = CUBLAS_OP_N;
      a_rows = n;
      a_cols = k;
      trans_b = CUBLAS_OP_N;
      b_rows = k;
      b_cols = m;
      break;
    case GemmOp::tn:  // B[K][N] is (N×K); A[K][M] is (M×K) → transpose.
      trans_a = CUBLAS_OP_N;
      a_rows = n;
      a_cols = k;
      trans_b = CUBLAS_OP_T;
      b_rows = m;
      b_cols = k;
      break;
  }
  Plan p;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a,
                                              sizeof(trans_a)));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b,
                                              sizeof(trans_b)));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, a_rows, a_cols, ldb));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, b_rows, b_cols, lda));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, c_fp32 ? CUDA_R_32F : CUDA_R_16BF,
                                          static_cast<uint64_t>(n), static_cast<uint64_t>(m), ldc));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.c, p.c, preference_, 1,
                                              &result, &found));
  if (found == 0) {
    throw std::runtime_error("cuBLASLt found no algorithm for a " + std::to_string(m) + "x" +
                             std::to_string(n) + "x" + std::to_string(k) + " product");
  }
  p.algo = result.algo;
  return plans_.emplace(key, p).first->second;
}

void Gemm::run(GemmOp op, int64_t m, int64_t n, int64_t k, const __nv_bfloat16* a, int64_t lda,
               const __nv_bfloat16* b, int64_t ldb, void* c, int64_t ldc, bool c_fp32, float beta,
               const void* c_in) {
  if (m == 0 || n == 0) return;
  const Plan& p = plan(Key{static_cast<int>(op), m, n, k, lda, ldb, ldc, c_fp32});
  const float alpha = 1.0f;
  const void* cin = (beta != 0.0f && c_in != nullptr) ? c_in : c;
  CUBLAS_CHECK(cublasLtMatmul(handle_, p.desc, &alpha, b, p.a, a, p.b, &beta, cin, p.c, c, p.c,
                              &p.algo, workspace_, workspace_bytes_, stream_));
}

}  // namespace minipt::cuda
