// compute.backend = "kokkos": the real transformer (transformer.hpp) on the host
// through Kokkos, fp32 parameters and gradients, AdamW with fp32 states.
#pragma once

#include <memory>

#include "compute/backend.hpp"
#include "model/shape.hpp"

namespace minipt {

std::unique_ptr<ComputeBackend> make_kokkos_backend(const ComputeOptions& opt,
                                                    const ModelShape& shape, int rank);

// Kokkos::initialize / finalize, safe to call more than once: the first initialize
// wins (unless the application initialised Kokkos itself), finalize acts once and only
// after an initialize made here. Every Kokkos object (backends) must be gone before
// kokkos_finalize().
void kokkos_initialize(int& argc, char** argv);
void kokkos_finalize();

}  // namespace minipt
