// The process's kernel choices (compute.tuning; compute/tuning.hpp): what Gemm (cuBLASLt
// algorithms) and CudnnAttention (cuDNN plans) look up before they run a shape, and where
// a recording process keeps what it timed. Keys name the kernel and its shape; values are
// the kernel's own encoding of its choice. The trainer sets the table once per job
// (CudaBackend::use_kernel_choices); a change bumps the generation, and every cached plan
// resolves its choice again before its next run, so no choice made before survives it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace minipt::cuda {

// The choice recorded for `key`, if any.
std::optional<std::string> kernel_choice(const std::string& key);
// Records `value` for `key` unless a choice is there already (the first stays).
void record_kernel_choice(const std::string& key, const std::string& value);
// Whether a kernel without a choice is timed at its first call (and recorded) or takes
// the library heuristic's first choice. Standalone tools (no trainer) record.
bool kernel_tuning_records();
// Replaces the table and the mode; bumps the generation.
void set_kernel_choices(std::map<std::string, std::string> entries, bool record);
std::map<std::string, std::string> kernel_choice_entries();
uint64_t kernel_choices_generation();

}  // namespace minipt::cuda
