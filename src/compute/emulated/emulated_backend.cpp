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
      : opt_(opt), shape_(shape), spin_(opt.emulate == "spin") {}

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
  }
  void forward(int unit, const void*) override { spend(flops(unit)); }
  bool recompute_needed(int unit) const override { return opt_.recompute && shape_.is_block(unit); }
  void recompute(int unit, const void*) override { spend(flops(unit)); }

  // Stand-in gradient: g_i = w·(c_i + 0.01·p_i) with w the microbatch's summed loss
  // weight. Summed over a step's microbatches it is (c_i + 0.01·p_i)·Σw whatever the
  // grouping, so every mode and rank count must reach the same parameters.
  void backward(int unit, const void* params, void* grads) override {
    spend(2.0 * flops(unit));
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

  void accumulate_grad(float* acc, const void* g, int64_t n) override {
    host_accumulate(acc, static_cast<const float*>(g), n);
  }
  double sum_squares(const float* x, int64_t n) override { return host_sum_squares(x, n); }
  void adamw(float* param, float* m, float* v, const float* grad, int64_t n, const AdamWParams& p,
             float grad_scale) override {
    host_adamw(param, m, v, grad, n, p, grad_scale);
  }
  void fill_zero(void* x, size_t bytes) override { std::memset(x, 0, bytes); }

 private:
  double flops(int unit) const { return shape_.unit_forward_flops(unit, tokens_, sum_sq_); }

  // Spends flops/peak seconds. Sleep overshoots by tens of microseconds; the overshoot
  // is carried as debt into the next call so that long runs keep the modelled pace.
  void spend(double f) {
    if (tokens_ == 0) return;
    const auto want = static_cast<int64_t>(f / (opt_.peak_tflops * 1e12) * 1e9);
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
