#include "compute/emulated/emulated_backend.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>

#include "compute/host_math.hpp"

namespace minipt {
namespace {

class EmulatedBackend final : public ComputeBackend {
 public:
  EmulatedBackend(const ComputeOptions& opt, const ModelShape& shape)
      : opt_(opt), shape_(shape), spin_(opt.emulate == EmulateTime::spin) {}

  std::string name() const override { return "emulated"; }
  std::string device_name() const override { return "emulated"; }
  MemorySpace memory() const override { return MemorySpace::host; }
  DType param_dtype() const override { return DType::f32; }
  DType grad_dtype() const override { return DType::f32; }
  TimeSource& time_source() override { return clock_; }

  void* allocate(size_t bytes) override {
    void* p = std::calloc(bytes ? bytes : 1, 1);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void deallocate(void* p) override { std::free(p); }
  void copy_to_host(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
  }
  void copy_from_host(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
  }

  void init_params(int unit, int64_t begin, int64_t n, float* shard) override {
    for (int64_t i = 0; i < n; ++i)
      shard[i] = static_cast<float>(0.02 * hash_uniform(opt_.seed, unit, begin + i));
  }
  void cast_params(const float* src, void* dst, int64_t n) override {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  }

  void begin_microbatch(const MicrobatchData& mb) override {
    tokens_ = mb.num_tokens();
    sum_sq_ = mb.sum_sq();
    weight_ = 0;
    for (float w : mb.loss_weight) weight_ += w;
    if (opt_.costs) spend(opt_.costs->microbatch_overhead_s);
  }
  void forward(int unit, const void*) override { spend(seconds(unit, 0)); }
  bool recompute_needed(int unit) const override { return opt_.recompute.applies(shape_, unit); }
  int recomputed_blocks() const override { return opt_.recompute.count(shape_.layers); }
  void recompute(int unit, const void*) override { spend(seconds(unit, 2)); }

  // Stand-in gradient: g_i = w·(c_i + 0.01·p_i) with w the microbatch's summed loss
  // weight. Summed over a step's microbatches it is (c_i + 0.01·p_i)·Σw whatever the
  // grouping, so every mode and rank count must reach the same parameters.
  void backward(int unit, const void* params, void* grads) override {
    spend(seconds(unit, 1));
    const int64_t n = scaled_numel(shape_, unit, opt_.param_scale);
    const auto* p = static_cast<const float*>(params);
    auto* g = static_cast<float*>(grads);
    const float w = static_cast<float>(weight_);
    for (int64_t i = 0; i < n; ++i) {
      const float c = 1e-3f * static_cast<float>(1 + (i * 7919) % 13);
      g[i] = w * (c + 0.01f * p[i]);
    }
  }
  // The loss of a uniform predictor: the emulated model does not learn.
  double end_microbatch() override { return weight_ * std::log(static_cast<double>(shape_.vocab)); }
  std::vector<double> sequence_losses() const override { return {}; }

  // With a cost model the per-element costs are spent for the real shape's shard of the
  // scaled buffer (n / param_scale elements).
  void accumulate_grad(float* acc, const void* g, int64_t n) override {
    host_accumulate(acc, static_cast<const float*>(g), n);
    if (opt_.costs) spend(opt_.costs->accumulate_grad_s_per_element * real_elements(n));
  }
  double sum_squares(const float* x, int64_t n) override {
    if (opt_.costs) spend(opt_.costs->sum_squares_s_per_element * real_elements(n));
    return host_sum_squares(x, n);
  }
  void adamw(float* param, float* m, float* v, const float* grad, int64_t n, const AdamWParams& p,
             float grad_scale) override {
    host_adamw(param, m, v, grad, n, p, grad_scale);
    if (opt_.costs) spend(opt_.costs->adamw_s_per_element * real_elements(n));
  }
  void fill_zero(void* x, size_t bytes) override { std::memset(x, 0, bytes); }

 private:
  // A pass's modelled seconds: the cost model's, else FLOPs at peak (model/unit_time).
  double seconds(int unit, int pass) const {
    if (opt_.costs) return opt_.costs->unit_time(unit, pass, tokens_, sum_sq_);
    return flops_unit_seconds(shape_, unit, pass, tokens_, sum_sq_, opt_.peak_tflops);
  }
  double real_elements(int64_t n) const { return static_cast<double>(n) / opt_.param_scale; }

  // Spends `s` seconds. Sleep overshoots by tens of microseconds; the overshoot is carried
  // as debt into the next call so that long runs keep the modelled pace.
  void spend(double s) {
    if (s <= 0) return;
    const auto want = static_cast<int64_t>(s * 1e9);
    const int64_t target = want - debt_ns_;
    const int64_t t0 = steady_now_ns();
    if (target > 0) {
      if (spin_) {
        while (steady_now_ns() - t0 < target) {
        }
      } else {
        std::this_thread::sleep_for(std::chrono::nanoseconds(target));
      }
    }
    debt_ns_ = std::max<int64_t>(0, debt_ns_ + (steady_now_ns() - t0) - want);
  }

  ComputeOptions opt_;
  ModelShape shape_;
  bool spin_;
  HostTimeSource clock_;
  int64_t tokens_ = 0;
  double sum_sq_ = 0;
  double weight_ = 0;
  int64_t debt_ns_ = 0;
};

}  // namespace

std::unique_ptr<ComputeBackend> make_emulated_backend(const ComputeOptions& opt,
                                                      const ModelShape& shape, int) {
  return std::make_unique<EmulatedBackend>(opt, shape);
}

}  // namespace minipt
