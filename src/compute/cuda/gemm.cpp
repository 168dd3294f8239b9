#include "compute/cuda/gemm.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <optional>
#include <string>

#include "compute/cuda/cuda_check.hpp"
#include "compute/cuda/kernel_table.hpp"

namespace minipt::cuda {

namespace {
// An algorithm as 128 hex digits (its opaque 8 × 64-bit words) and back.
std::string algo_text(const cublasLtMatmulAlgo_t& algo) {
  static_assert(sizeof(algo.data) == 8 * sizeof(uint64_t));
  std::string out;
  char word[17];
  for (uint64_t w : algo.data) {
    std::snprintf(word, sizeof word, "%016llx", static_cast<unsigned long long>(w));
    out += word;
  }
  return out;
}
std::optional<cublasLtMatmulAlgo_t> algo_of(const std::string& text) {
  if (text.size() != 128) return std::nullopt;
  cublasLtMatmulAlgo_t algo{};
  for (size_t i = 0; i < 8; ++i) {
    const std::string word = text.substr(16 * i, 16);
    if (word.find_first_not_of("0123456789abcdef") != std::string::npos) return std::nullopt;
    algo.data[i] = std::stoull(word, nullptr, 16);
  }
  return algo;
}
}  // namespace

Gemm::Gemm(cudaStream_t stream) : stream_(stream) {
  CUBLAS_CHECK(cublasLtCreate(&handle_));
  CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference_));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference_,
                                                    CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &workspace_bytes_, sizeof(workspace_bytes_)));
  CUDA_CHECK(cudaEventCreate(&start_));
  CUDA_CHECK(cudaEventCreate(&stop_));
}

Gemm::~Gemm() {
  for (auto& [key, p] : plans_) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.desc);
  }
  cudaEventDestroy(start_);
  cudaEventDestroy(stop_);
  cublasLtMatmulPreferenceDestroy(preference_);
  cudaFree(workspace_);
  cublasLtDestroy(handle_);
}

// Row-major C[M][N] is column-major Cᶜ (N×M) with the same leading dimension, so every
// product is computed as its transpose: Cᶜ = op(B)ᶜ · op(A)ᶜ, cuBLASLt's (m, n, k) being
// (N, M, K). The stored shapes below are the column-major views of the row-major inputs.
Gemm::Plan& Gemm::plan(const Key& key) {
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
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(kCandidates));
  int found = 0;
  CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.c, p.c, preference_,
                                              kCandidates, results.data(), &found));
  if (found == 0) {
    throw std::runtime_error("cuBLASLt found no algorithm for a " + std::to_string(m) + "x" +
                             std::to_string(n) + "x" + std::to_string(k) + " product");
  }
  for (int i = 0; i < found; ++i)
    if (results[static_cast<size_t>(i)].state == CUBLAS_STATUS_SUCCESS)
      p.candidates.push_back(results[static_cast<size_t>(i)].algo);
  if (p.candidates.empty()) p.candidates.push_back(results[0].algo);
  resolve(key, p);
  return plans_.emplace(key, std::move(p)).first->second;
}

void Gemm::resolve(const Key& key, Plan& p) {
  p.generation = kernel_choices_generation();
  p.algo = p.candidates.front();
  p.tuned = p.candidates.size() <= 1 || !kernel_tuning_records();
  for (const bool exact : {true, false}) {
    const std::optional<std::string> text = kernel_choice(table_key(key, exact));
    if (!text) continue;
    const std::optional<cublasLtMatmulAlgo_t> known = algo_of(*text);
    cublasLtMatmulHeuristicResult_t check{};
    if (known &&
        cublasLtMatmulAlgoCheck(handle_, p.desc, p.a, p.b, p.c, p.c, &*known, &check) ==
            CUBLAS_STATUS_SUCCESS &&
        check.workspaceSize <= workspace_bytes_) {
      p.algo = *known;
      p.tuned = true;
      return;
    }
  }
}

std::string Gemm::table_key(const Key& key, bool exact) {
  const auto [op, m, n, k, lda, ldb, ldc, c_fp32] = exact ? key : bucket(key);
  char text[160];
  std::snprintf(text, sizeof text, "gemm%s op%d m%lld n%lld k%lld ld%lld,%lld,%lld %s",
                exact ? "" : " bucket", op, static_cast<long long>(m), static_cast<long long>(n),
                static_cast<long long>(k), static_cast<long long>(lda), static_cast<long long>(ldb),
                static_cast<long long>(ldc), c_fp32 ? "f32" : "bf16");
  return text;
}

// The token dimension (m of nt/nn, k of tn) rounded up to a power of two.
Gemm::Key Gemm::bucket(const Key& key) {
  Key b = key;
  auto up = [](int64_t x) { return static_cast<int64_t>(std::bit_ceil(static_cast<uint64_t>(x))); };
  if (static_cast<GemmOp>(std::get<0>(key)) == GemmOp::tn)
    std::get<3>(b) = up(std::get<3>(key));
  else
    std::get<1>(b) = up(std::get<1>(key));
  return b;
}

cublasStatus_t Gemm::matmul(const Plan& p, const cublasLtMatmulAlgo_t& algo, const void* a,
                            const void* b, const void* c_in, void* c, float beta) {
  const float alpha = 1.0f;
  return cublasLtMatmul(handle_, p.desc, &alpha, b, p.a, a, p.b, &beta, c_in, p.c, c, p.c, &algo,
                        workspace_, workspace_bytes_, stream_);
}

void Gemm::tune(const Key& key, Plan& p, const void* a, const void* b, const void* c_in, void* c,
                float beta) {
  float best_ms = std::numeric_limits<float>::max();
  for (const cublasLtMatmulAlgo_t& algo : p.candidates) {
    if (matmul(p, algo, a, b, c_in, c, beta) != CUBLAS_STATUS_SUCCESS) continue;  // warm-up
    float ms = std::numeric_limits<float>::max();
    for (int rep = 0; rep < 2; ++rep) {
      CUDA_CHECK(cudaEventRecord(start_, stream_));
      CUBLAS_CHECK(matmul(p, algo, a, b, c_in, c, beta));
      CUDA_CHECK(cudaEventRecord(stop_, stream_));
      CUDA_CHECK(cudaEventSynchronize(stop_));
      float t = 0.f;
      CUDA_CHECK(cudaEventElapsedTime(&t, start_, stop_));
      ms = std::min(ms, t);
    }
    if (ms < best_ms) {
      best_ms = ms;
      p.algo = algo;
    }
  }
  p.tuned = true;
  // For the bucket, unless the bucket's choice is there and does not apply to this shape.
  const bool bucket_taken = kernel_choice(table_key(key, false)).has_value();
  record_kernel_choice(table_key(key, bucket_taken), algo_text(p.algo));
}

void Gemm::run(GemmOp op, int64_t m, int64_t n, int64_t k, const __nv_bfloat16* a, int64_t lda,
               const __nv_bfloat16* b, int64_t ldb, void* c, int64_t ldc, bool c_fp32, float beta,
               const void* c_in) {
  if (m == 0 || n == 0) return;
  const Key key{static_cast<int>(op), m, n, k, lda, ldb, ldc, c_fp32};
  Plan& p = plan(key);
  if (p.generation != kernel_choices_generation()) resolve(key, p);
  const void* cin = (beta != 0.0f && c_in != nullptr) ? c_in : c;
  // Tuning runs the product several times: only where writing the output again gives the
  // same result (it does not read what it writes).
  if (!p.tuned && (beta == 0.0f || cin != c)) tune(key, p, a, b, cin, c, beta);
  CUBLAS_CHECK(matmul(p, p.algo, a, b, cin, c, beta));
}

}  // namespace minipt::cuda
