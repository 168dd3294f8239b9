// Dense bf16 peaks of known GPUs, for MFU (compute.device_peak_tflops overrides).
#pragma once

#include <string_view>

namespace minipt {

// The device's dense (no sparsity) bf16 tensor-core peak in TFLOP/s from the vendors'
// datasheets, matched on the name the driver reports (cudaDeviceProp::name, e.g. "NVIDIA
// H100 80GB HBM3"); 0 for a device not in the table.
double known_device_peak_tflops(std::string_view device_name);

}  // namespace minipt
