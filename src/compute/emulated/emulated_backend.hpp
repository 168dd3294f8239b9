// The emulated backend: spends the modelled time of every kernel (FLOPs at
// compute.peak_tflops) and produces a deterministic stand-in gradient, so that
// communication behaviour can be studied without the hardware or at sizes that do
// not fit.
#pragma once

#include <memory>

#include "compute/backend.hpp"

namespace minipt {

std::unique_ptr<ComputeBackend> make_emulated_backend(const ComputeOptions& opt,
                                                      const ModelShape& shape, int rank);

}  // namespace minipt
