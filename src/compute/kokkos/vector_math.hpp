// Row operations built on exp, written so that they vectorise: softmax pieces for
// attention and cross-entropy, and the logistic sigmoid for SwiGLU. The float versions
// use an explicit 8-lane polynomial exp (see exp_approx in kernels.hpp for the maths)
// with GCC/Clang vector extensions, compiled twice, for the baseline ISA and for
// AVX2+FMA, picked at run time like the GEMM micro kernel. The double versions call
// std::exp (they serve the gradient check, where accuracy is the point).
#pragma once

#include <cstdint>

namespace minipt::kokkos {

// max_j x[j]  (−inf for n = 0)
float row_max(const float* x, int64_t n);
double row_max(const double* x, int64_t n);

// x[j] ← exp(x[j] − shift); returns Σ_j x[j] (after).
float exp_shifted_sum(float* x, int64_t n, float shift);
double exp_shifted_sum(double* x, int64_t n, double shift);

// x[j] ← scale·exp(x[j] − shift).
void exp_shifted_scaled(float* x, int64_t n, float shift, float scale);
void exp_shifted_scaled(double* x, int64_t n, double shift, double scale);

// x[j] ← 1 / (1 + exp(−x[j])).
void sigmoid_inplace(float* x, int64_t n);
void sigmoid_inplace(double* x, int64_t n);

}  // namespace minipt::kokkos
