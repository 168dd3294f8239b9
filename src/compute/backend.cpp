#include "compute/backend.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "compute/emulated/emulated_backend.hpp"
#include "core/error.hpp"
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

int64_t Device::peak_memory_bytes() const {
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

// The table of compute backends. A row is registered in every build; the code of an
// optional backend (its factory, set-up and version details) only where it is built.
Registry<BackendRow>& compute_backends() {
  static Registry<BackendRow> table = [] {
    Registry<BackendRow> t;
    BackendRow emulated{.name = "emulated",
                        .description = "sleeps/spins the modelled time on the host",
                        .needs = {},
                        .models_time = true,
                        .factory = [](const ComputeOptions& opt, const ModelShape& shape, int rank,
                                      int) { return make_emulated_backend(opt, shape, rank); }};
    t.add(std::move(emulated));

    BackendRow kokkos{.name = "kokkos",
                      .description = "the real model on the host through Kokkos",
                      .needs = {.kokkos_build = true}};
#ifdef MINIPT_HAVE_KOKKOS
    kokkos.factory = [](const ComputeOptions& opt, const ModelShape& shape, int rank, int) {
      return make_kokkos_backend(opt, shape, rank);
    };
    // Kokkos also acts on unprefixed options (`--help` prints its own help), so it sees
    // only the program name and the --kokkos-* options; minipt parses the rest.
    kokkos.initialize = [](std::vector<char*>& args) {
      static std::vector<char*> kokkos_args;  // Kokkos may keep pointers into argv
      kokkos_args.assign(args.begin(), args.begin() + (args.empty() ? 0 : 1));
      std::vector<char*> rest(kokkos_args);
      for (size_t i = 1; i < args.size(); ++i)
        (std::strncmp(args[i], "--kokkos-", 9) == 0 ? kokkos_args : rest).push_back(args[i]);
      int argc = static_cast<int>(kokkos_args.size());
      kokkos_args.push_back(nullptr);
      kokkos_initialize(argc, kokkos_args.data());
      args = std::move(rest);
    };
    kokkos.finalize = [] { kokkos_finalize(); };
#endif
    t.add(std::move(kokkos));

    BackendRow cuda{.name = "cuda",
                    .description = "the real model on GPUs (CUDA, cuBLASLt, cuDNN)",
                    .needs = {.cuda_build = true, .device_memory = true},
                    .param_bytes = 2};
#ifdef MINIPT_HAVE_CUDA
    cuda.factory = [](const ComputeOptions& opt, const ModelShape& shape, int rank,
                      int local_rank) {
      const auto kinds = available_attention();
      const std::string name = to_string(opt.attention);
      if (opt.attention != AttentionKernels::automatic &&
          std::find(kinds.begin(), kinds.end(), name) == kinds.end())
        throw ConfigError("compute.attention",
                          "'" + name + "' is not available in this build (allowed: auto|" +
                              Registry<BackendRow>::join(kinds) + ")");
      return make_cuda_backend(opt, shape, rank, local_rank);
    };
    cuda.version_details = [] {
      return "attention: " + Registry<BackendRow>::join(available_attention(), " ");
    };
#endif
    t.add(std::move(cuda));
    return t;
  }();
  return table;
}

std::vector<std::string> available_backends() { return compute_backends().built_names(); }

std::string to_string(AttentionKernels a) {
  switch (a) {
    case AttentionKernels::own:
      return "own";
    case AttentionKernels::cudnn:
      return "cudnn";
    case AttentionKernels::automatic:
      break;
  }
  return "auto";
}

AttentionKernels attention_kernels(const std::string& name) {
  for (AttentionKernels a :
       {AttentionKernels::automatic, AttentionKernels::own, AttentionKernels::cudnn})
    if (to_string(a) == name) return a;
  throw std::invalid_argument("attention kernels '" + name + "' (allowed: auto|own|cudnn)");
}

std::vector<std::string> available_attention() {
  std::vector<std::string> v{"own"};
#ifdef MINIPT_HAVE_CUDNN
  v.push_back("cudnn");
#endif
  return v;
}

std::string backends_version() {
  std::string s;
  for (const auto& b : available_backends()) s += " " + b;
  for (const auto& r : compute_backends().rows())
    if (r.factory && r.version_details) s += "; " + r.name + " " + r.version_details();
  return s;
}

std::vector<char*> initialize_backends(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
  for (const auto& r : compute_backends().rows())
    if (r.factory && r.initialize) r.initialize(args);
  return args;
}

void finalize_backends() {
  const auto& rows = compute_backends().rows();
  for (auto r = rows.rbegin(); r != rows.rend(); ++r)
    if (r->factory && r->finalize) r->finalize();
}

std::unique_ptr<ComputeBackend> make_backend(const ComputeOptions& opt, const ModelShape& shape,
                                             int rank, int local_rank) {
  const BackendRow& row = compute_backends().at(opt.backend, "compute.backend");
  return row.factory(opt, shape, rank, local_rank);
}

}  // namespace minipt
