#include "compute/backend.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>

#include "compute/emulated/emulated_backend.hpp"
#include "config/error.hpp"
#ifdef MINIPT_HAVE_KOKKOS
#include "compute/kokkos/kokkos_backend.hpp"
#endif
#ifdef MINIPT_HAVE_CUDA
#include "compute/cuda/cuda_backend.hpp"
#endif

namespace minipt {

int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

TimeSource::Mark HostTimeSource::mark(Lane) {
  stamps_.push_back(steady_now_ns());
  return static_cast<Mark>(stamps_.size() - 1);
}

int64_t ComputeBackend::peak_memory_bytes() const {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;  // Linux reports kilobytes
}

double MicrobatchData::sum_sq() const {
  double s = 0;
  for (size_t i = 1; i < cu_seqlens.size(); ++i) {
    const double l = cu_seqlens[i] - cu_seqlens[i - 1];
    s += l * l;
  }
  return s;
}

std::vector<std::string> available_backends() {
  std::vector<std::string> v{"emulated"};
#ifdef MINIPT_HAVE_KOKKOS
  v.push_back("kokkos");
#endif
#ifdef MINIPT_HAVE_CUDA
  v.push_back("cuda");
#endif
  return v;
}

std::vector<std::string> available_attention() {
  std::vector<std::string> v{"own"};
#ifdef MINIPT_HAVE_CUDNN
  v.push_back("cudnn");
#endif
  return v;
}

std::unique_ptr<ComputeBackend> make_backend(const ComputeOptions& opt, const ModelShape& shape,
                                             int rank, int local_rank) {
  if (opt.backend == "cuda" && opt.attention != "auto") {
    const auto kinds = available_attention();
    if (std::find(kinds.begin(), kinds.end(), opt.attention) == kinds.end()) {
      std::string allowed = "auto";
      for (const auto& k : kinds) allowed += "|" + k;
      throw ConfigError(
          "compute.attention",
          "'" + opt.attention + "' is not available in this build (allowed: " + allowed + ")");
    }
  }
  if (opt.backend == "emulated") return make_emulated_backend(opt, shape, rank);
#ifdef MINIPT_HAVE_KOKKOS
  if (opt.backend == "kokkos") return make_kokkos_backend(opt, shape, rank);
#endif
#ifdef MINIPT_HAVE_CUDA
  if (opt.backend == "cuda") return make_cuda_backend(opt, shape, rank, local_rank);
#endif
  (void)local_rank;
  std::string allowed;
  for (const auto& b : available_backends()) allowed += (allowed.empty() ? "" : "|") + b;
  throw ConfigError(
      "compute.backend",
      "'" + opt.backend + "' is not available in this build (allowed: " + allowed + ")");
}

}  // namespace minipt
