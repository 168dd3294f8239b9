#include "compute/kokkos/kokkos_backend.hpp"

#include <Kokkos_Core.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "compute/kokkos/gemm.hpp"
#include "compute/kokkos/kernels.hpp"
#include "compute/kokkos/transformer.hpp"
#include "model/init.hpp"

namespace minipt {
namespace {

bool g_initialized_here = false;
bool g_finalized = false;

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        const auto start = line.find_first_not_of(' ', colon + 1);
        return start == std::string::npos ? std::string("cpu") : line.substr(start);
      }
    }
  }
  return "cpu";
}

using kokkos::HostExec;

class KokkosBackend final : public ComputeBackend {
 public:
  KokkosBackend(const ComputeOptions& opt, const ModelShape& shape)
      : opt_(opt), shape_(shape), model_(shape, opt.recompute) {}

  std::string name() const override { return "kokkos"; }
  std::string device_name() const override {
    return cpu_model_name() + " (Kokkos " + HostExec::name() + ", " +
           (kokkos::vector_kernels_enabled() ? "avx2+fma" : "portable") + " kernels)";
  }
  MemorySpace memory() const override { return MemorySpace::host; }
  DType param_dtype() const override { return DType::f32; }
  DType grad_dtype() const override { return DType::f32; }
  TimeSource& time_source() override { return clock_; }

  // Zero-filled (View construction initialises), 64-byte aligned by Kokkos.
  void* allocate(size_t bytes) override {
    const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    Kokkos::View<char*, Kokkos::HostSpace> view("minipt::buffer", rounded);
    void* p = view.data();
    allocations_.emplace(p, std::move(view));
    return p;
  }
  void deallocate(void* p) override {
    if (p != nullptr && allocations_.erase(p) == 0)
      throw std::invalid_argument("kokkos backend: deallocate of a pointer it did not allocate");
  }
  void copy_to_host(void* host_dst, const void* src, size_t bytes) override {
    std::memcpy(host_dst, src, bytes);
  }
  void copy_from_host(void* dst, const void* host_src, size_t bytes) override {
    std::memcpy(dst, host_src, bytes);
  }

  void init_params(int unit, int64_t begin, int64_t n, float* shard_fp32) override {
    const UnitInit rule = unit_init(shape_, unit, opt_.seed);  // shared by all backends
    kokkos::for_each_row("minipt::init_params", n,
                         [=](const int64_t i) { shard_fp32[i] = rule.value(begin + i); });
  }
  void cast_params(const float* src, void* dst, int64_t n) override {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  }

  void begin_microbatch(const MicrobatchData& mb) override { model_.begin_microbatch(mb); }
  void forward(int unit, const void* params) override {
    model_.forward(unit, static_cast<const float*>(params));
  }
  bool recompute_needed(int unit) const override { return model_.recompute_needed(unit); }
  int recomputed_blocks() const override { return model_.recomputed_blocks(); }
  void recompute(int unit, const void* params) override {
    model_.recompute(unit, static_cast<const float*>(params));
  }
  void backward(int unit, const void* params, void* grads) override {
    model_.backward(unit, static_cast<const float*>(params), static_cast<float*>(grads));
  }
  double end_microbatch() override { return model_.loss(); }
  std::vector<double> sequence_losses() const override { return model_.sequence_losses(); }

  void accumulate_grad(float* acc, const void* g, int64_t n) override {
    const float* grad = static_cast<const float*>(g);
    Kokkos::parallel_for("minipt::accumulate_grad", Kokkos::RangePolicy<HostExec>(0, n),
                         [=](const int64_t i) { acc[i] += grad[i]; });
  }
  double sum_squares(const float* x, int64_t n) override {
    double total = 0.0;
    Kokkos::parallel_reduce(
        "minipt::sum_squares", Kokkos::RangePolicy<HostExec>(0, n),
        [=](const int64_t i, double& sum) { sum += static_cast<double>(x[i]) * x[i]; }, total);
    return total;
  }
  // AdamW (Loshchilov & Hutter), decoupled weight decay, bias-corrected moments:
  //   g ← grad·grad_scale;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
  //   param ← param − lr·( (m/(1−β1^t)) / (√(v/(1−β2^t)) + eps) + wd·param )
  void adamw(float* param, float* m, float* v, const float* grad, int64_t n, const AdamWParams& p,
             float grad_scale) override {
    const float b1 = p.beta1, b2 = p.beta2, lr = p.lr, eps = p.eps, wd = p.weight_decay;
    const float c1 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(b1), p.step)));
    const float c2 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(b2), p.step)));
    Kokkos::parallel_for("minipt::adamw", Kokkos::RangePolicy<HostExec>(0, n),
                         [=](const int64_t i) {
                           const float g = grad[i] * grad_scale;
                           m[i] = b1 * m[i] + (1.0f - b1) * g;
                           v[i] = b2 * v[i] + (1.0f - b2) * g * g;
                           const float m_hat = m[i] * c1;
                           const float v_hat = v[i] * c2;
                           param[i] -= lr * (m_hat / (std::sqrt(v_hat) + eps) + wd * param[i]);
                         });
  }
  void fill_zero(void* x, size_t bytes) override { std::memset(x, 0, bytes); }

 private:
  ComputeOptions opt_;
  ModelShape shape_;
  HostTimeSource clock_;
  kokkos::Transformer<float> model_;
  std::unordered_map<void*, Kokkos::View<char*, Kokkos::HostSpace>> allocations_;
};

}  // namespace

void kokkos_initialize(int& argc, char** argv) {
  if (g_finalized || Kokkos::is_initialized()) return;
  Kokkos::initialize(argc, argv);
  g_initialized_here = true;
}

void kokkos_finalize() {
  if (!g_initialized_here || !Kokkos::is_initialized()) return;
  Kokkos::finalize();
  g_initialized_here = false;
  g_finalized = true;
}

std::unique_ptr<ComputeBackend> make_kokkos_backend(const ComputeOptions& opt,
                                                    const ModelShape& shape, int rank) {
  (void)rank;  // one host process per rank; nothing rank-specific to pick
  if (!Kokkos::is_initialized()) {
    if (g_finalized) throw std::logic_error("kokkos backend: created after kokkos_finalize()");
    // The application did not initialise Kokkos: do it here, finalise at exit.
    static std::once_flag once;
    std::call_once(once, [] {
      static char program[] = "minipt";
      static char* argv[] = {program, nullptr};
      int argc = 1;
      kokkos_initialize(argc, argv);
      std::atexit(kokkos_finalize);
    });
  }
  return std::make_unique<KokkosBackend>(opt, shape);
}

}  // namespace minipt
