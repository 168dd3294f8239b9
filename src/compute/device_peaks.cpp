#include "compute/device_peaks.hpp"

#include <utility>

namespace minipt {

double known_device_peak_tflops(std::string_view device_name) {
  // Most specific names first: the first whose text occurs in the device's name counts.
  // Datasheet figures without sparsity (the "with sparsity" figures are twice these).
  static constexpr std::pair<std::string_view, double> kPeaks[] = {
      {"GH200", 989.4},      // Grace Hopper: the H100 SXM's tensor cores
      {"H100 NVL", 835.0},   // H100 NVL (PCIe, NVLink bridge)
      {"H100 PCIe", 756.0},  // H100 PCIe
      {"H100", 989.4},       // H100 SXM5 ("NVIDIA H100 80GB HBM3")
      {"H200", 989.4},       // H200 SXM (the H100's compute, more memory)
      {"H800", 989.4},       // H800 SXM
      {"GB200", 2500.0},     // per Blackwell GPU of a GB200 superchip
      {"B200", 2250.0},      // B200 SXM
      {"A100", 312.0},       // A100 SXM and PCIe
      {"A800", 312.0},       // A800
      {"L40S", 362.05},      // L40S
  };
  for (const auto& [name, peak] : kPeaks)
    if (device_name.find(name) != std::string_view::npos) return peak;
  return 0.0;
}

}  // namespace minipt
