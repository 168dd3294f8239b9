#include "compute/cuda/gemm.hpp"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <optional>
#include <string>

#include "compute/cuda/cuda_check.hpp"

namespace minipt::cuda {

namespace {
// Tuned algorithms of the process, per device and bucket.
struct TunedAlgos {
  std::mutex mutex;
  std::map<
      std::pair<int, std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool>>,
      cublasLtMatmulAlgo_t>
      by_bucket;
};
TunedAlgos& tuned_algos() {
  static TunedAlgos t;
  return t;
}
int current_device() {
  int d = 0;
  CUDA_CHECK(cudaGetDevice(&d));
  return d;
}
}  // namespace

Gemm::Gemm(cudaStream_t stream) : stream_(stream) {
  CUBLAS_CHECK(cublasLtCreate(&handle_));
  CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference_));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference_,
                                                    CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &workspace_bytes_, sizeof(workspace_bytes_)));
  const char* env = std::getenv("MINIPT_GEMM_TUNE");
  tuning_ = !(env != nullptr && env[0] == '0');
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
  const int wanted = tuning_ ? kCandidates : 1;
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(wanted));
  int found = 0;
  CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.c, p.c, preference_,
                                              wanted, results.data(), &found));
  if (found == 0) {
    throw std::runtime_error("cuBLASLt found no algorithm for a " + std::to_string(m) + "x" +
                             std::to_string(n) + "x" + std::to_string(k) + " product");
  }
  for (int i = 0; i < found; ++i)
    if (results[static_cast<size_t>(i)].state == CUBLAS_STATUS_SUCCESS)
      p.candidates.push_back(results[static_cast<size_t>(i)].algo);
  p.algo = p.candidates.empty() ? results[0].algo : p.candidates.front();
  p.tuned = p.candidates.size() <= 1;
  // A shape of an already tuned bucket takes its choice where it applies to this shape.
  if (!p.tuned) {
    TunedAlgos& all = tuned_algos();
    std::optional<cublasLtMatmulAlgo_t> known;
    {
      std::lock_guard<std::mutex> lock(all.mutex);
      auto t = all.by_bucket.find({current_device(), bucket(key)});
      if (t != all.by_bucket.end()) known = t->second;
    }
    cublasLtMatmulHeuristicResult_t check{};
    if (known &&
        cublasLtMatmulAlgoCheck(handle_, p.desc, p.a, p.b, p.c, p.c, &*known, &check) ==
            CUBLAS_STATUS_SUCCESS &&
        check.workspaceSize <= workspace_bytes_) {
      p.algo = *known;
      p.tuned = true;
    }
  }
  return plans_.emplace(key, std::move(p)).first->second;
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
  TunedAlgos& all = tuned_algos();
  std::lock_guard<std::mutex> lock(all.mutex);
  all.by_bucket.emplace(std::make_pair(current_device(), bucket(key)), p.algo);  // the first stays
}

void Gemm::run(GemmOp op, int64_t m, int64_t n, int64_t k, const __nv_bfloat16* a, int64_t lda,
               const __nv_bfloat16* b, int64_t ldb, void* c, int64_t ldc, bool c_fp32, float beta,
               const void* c_in) {
  if (m == 0 || n == 0) return;
  const Key key{static_cast<int>(op), m, n, k, lda, ldb, ldc, c_fp32};
  Plan& p = plan(key);
  const void* cin = (beta != 0.0f && c_in != nullptr) ? c_in : c;
  // Tuning runs the product several times: only where writing the output again gives the
  // same result (it does not read what it writes).
  if (!p.tuned && (beta == 0.0f || cin != c)) tune(key, p, a, b, cin, c, beta);
  CUBLAS_CHECK(matmul(p, p.algo, a, b, cin, c, beta));
}

}  // namespace minipt::cuda
