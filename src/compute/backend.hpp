// The compute backend interface, in two parts: Device (memory, copies, streams, time
// source) and ComputeBackend, the model on it (forward/backward of one parameter unit on
// a packed microbatch, the loss, and the optimizer on a rank's own fp32 shard).
//
// Memory: every pointer handed to a backend lives in the backend's memory space
// (host for emulated/kokkos, device for cuda) and is allocated through allocate().
// Working parameters (the gathered copy of a unit) are of param_dtype(); gradients
// written by backward() are of grad_dtype(); master shards, optimizer states and the
// accumulated shard gradient are always fp32.
//
// Timing: backends run asynchronously where the hardware does (CUDA streams). The
// trainer brackets every operation with time_source().mark(lane) and resolves the
// marks into nanoseconds once per step, after time_source().synchronize().
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "compute/tuning.hpp"
#include "core/registry.hpp"
#include "model/cost_model.hpp"
#include "model/shape.hpp"

namespace minipt {

enum class MemorySpace { host, device };
enum class DType { f32, bf16 };
inline size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 2; }

// Timeline lanes: one per stream of work a rank can run concurrently.
enum class Lane : int8_t { compute = 0, pull = 1, push = 2 };
constexpr int kNumLanes = 3;

// Source of timestamps on the lanes. Host implementation: mark() reads the steady
// clock. Device implementation: mark() records an event on the lane's stream.
class TimeSource {
 public:
  virtual ~TimeSource() = default;
  using Mark = uint32_t;
  virtual Mark mark(Lane lane) = 0;
  // A mark on `lane` that is ordered after all work already queued on `after`: where a
  // transport's operation starts only once earlier compute is done, its begin mark must
  // be too, or a host that runs ahead of the device would stamp it early.
  virtual Mark mark_after(Lane lane, Lane after) {
    (void)after;
    return mark(lane);
  }
  // Waits until every marked operation has finished.
  virtual void synchronize() = 0;
  // Nanoseconds on the host steady clock (std::chrono::steady_clock) of a mark; valid
  // after synchronize(). reset() forgets all marks (called once per step).
  virtual int64_t resolve_ns(Mark m) = 0;
  virtual void reset() = 0;
};

class HostTimeSource final : public TimeSource {
 public:
  Mark mark(Lane lane) override;
  void synchronize() override {}
  int64_t resolve_ns(Mark m) override { return stamps_.at(m); }
  void reset() override { stamps_.clear(); }

 private:
  std::vector<int64_t> stamps_;
};

int64_t steady_now_ns();

// One packed microbatch, host side. Sequences are concatenated; cu_seqlens has
// nseq+1 entries starting at 0. targets[i] is the next token of the same sequence,
// or -1 for each sequence's last token. loss_weight[i] scales token i's
// cross-entropy: 1 / (sequence length − 1) / (sequences in the minibatch), so that
// the summed loss of a step is the mean over sequences of each sequence's mean token
// loss, whatever the grouping into microbatches and ranks.
struct MicrobatchData {
  std::vector<int32_t> tokens;
  std::vector<int32_t> targets;
  std::vector<float> loss_weight;
  std::vector<int32_t> cu_seqlens;
  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  double sum_sq() const;  // Σ L² over sequences
};

struct AdamWParams {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  int step = 1;  // 1-based, for bias correction
};

// What a device provides, whatever model runs on it: memory in its space, copies to and
// from the host, the native stream of each lane and the lanes' time source. Transports
// and the replica reduction need only this.
class Device {
 public:
  virtual ~Device() = default;
  virtual std::string name() const = 0;         // the backend's row name
  virtual std::string device_name() const = 0;  // e.g. "cpu", "NVIDIA H100 80GB HBM3"
  virtual MemorySpace memory() const = 0;
  virtual TimeSource& time_source() = 0;
  // The native stream of a lane (a cudaStream_t on a CUDA device); nullptr on the host,
  // where every lane runs on the calling thread.
  virtual void* native_stream(Lane lane) {
    (void)lane;
    return nullptr;
  }

  // Memory in the device's space; zero-filled.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p) = 0;
  // Host ↔ device copies (blocking).
  virtual void copy_to_host(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void copy_from_host(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void fill_zero(void* x, size_t bytes) = 0;
  // Peak memory this rank used so far, in bytes. Default: the process's peak resident
  // set (host backends); device backends report device memory.
  virtual int64_t peak_memory_bytes() const;
};

// What the model computes on its device: the working-copy and gradient precisions,
// parameter initialisation, each unit's passes on a microbatch, the loss, and the
// shard-level maths of the optimizer.
class ComputeBackend : public Device {
 public:
  virtual DType param_dtype() const = 0;
  virtual DType grad_dtype() const = 0;

  // Deterministic initial values of unit `unit`'s full flat buffer (fp32, numel
  // elements), identical for every world size: each rank fills its own shard from the
  // global element index range [begin, begin+n). `shard_fp32` is in the backend's
  // memory space.
  virtual void init_params(int unit, int64_t begin, int64_t n, float* shard_fp32) = 0;

  // Working copy: converts `n` fp32 master elements to param_dtype() (no-op copy for f32).
  virtual void cast_params(const float* src, void* dst, int64_t n) = 0;

  // Microbatch life cycle. forward() is called for units 0..L+1 in order, then
  // backward() for units L+1..0; `params` is the unit's gathered working copy
  // (param_dtype, at least numel elements), `grads` receives the unit's gradient for
  // this microbatch (grad_dtype, overwritten, not accumulated; padding left zero).
  // Returns false from recompute_needed() when activations were kept.
  // Optional, before the first step: whatever a microbatch of these sequences (offsets
  // as in MicrobatchData::cu_seqlens) needs compiled or planned is done now, outside the
  // timed steps (the cuda backend builds its cuDNN attention graphs). Default: nothing.
  virtual void prepare_microbatch_shape(const std::vector<int32_t>& cu_seqlens) {
    (void)cu_seqlens;
  }
  virtual void begin_microbatch(const MicrobatchData& mb) = 0;
  virtual void forward(int unit, const void* params) = 0;
  virtual bool recompute_needed(int unit) const = 0;
  // Blocks that recompute (1..n): ComputeOptions::recompute resolved for this model and,
  // for "auto", this device's memory (known after the first microbatch is prepared).
  virtual int recomputed_blocks() const = 0;
  virtual void recompute(int unit, const void* params) = 0;
  virtual void backward(int unit, const void* params, void* grads) = 0;
  // Weighted loss of the microbatch (Σ weight·CE); blocks until known.
  virtual double end_microbatch() = 0;
  // Mean token cross-entropy of each sequence of the last microbatch (for run.dump);
  // backends that do not compute a real loss return an empty vector.
  virtual std::vector<double> sequence_losses() const = 0;
  // Shard-level maths, on the backend's memory (all fp32 except where noted).
  // accumulate: acc[i] += g[i] (g of grad_dtype()).
  virtual void accumulate_grad(float* acc, const void* g, int64_t n) = 0;
  virtual double sum_squares(const float* x, int64_t n) = 0;
  // param -= lr·(m̂/(√v̂+eps) + wd·param) with grad·grad_scale (clipping folded in).
  virtual void adamw(float* param, float* m, float* v, const float* grad, int64_t n,
                     const AdamWParams& p, float grad_scale) = 0;

  // Kernel tuning (compute.tuning, compute/tuning.hpp). A backend that picks kernels by
  // timing them returns what its choices depend on (device, library versions); "" for
  // one that has nothing to tune, which then ignores the two calls below.
  virtual std::string tuning_identity() const { return ""; }
  // From now on every kernel takes its choice in `choices`; a kernel without one is timed
  // at its first call and the choice kept when `record`, else takes the library
  // heuristic's first choice (nothing timed, the same on every rank).
  virtual void use_kernel_choices(const KernelChoices& choices, bool record) {
    (void)choices;
    (void)record;
  }
  // Every choice made or taken so far (identity set).
  virtual KernelChoices kernel_choices() const { return {}; }
  // Dense bf16 peak of the device in TFLOP/s where the backend knows it (the cuda
  // backend: a table of known devices), else 0: MFU then uses compute.peak_tflops.
  virtual double device_peak_tflops() const { return 0; }
};

// model.recompute: which decoder blocks rebuild their activations before their backward
// instead of keeping them from the forward. Blocks 1..n recompute, n+1..layers keep
// theirs (all activations coexist at the end of the forward, so which blocks keep does
// not change the peak; the first ones are chosen). `true` recomputes every block,
// `false` none, a count n the first n, and `automatic` lets the cuda backend keep as
// many blocks as its device memory holds (the other backends recompute every block).
struct Recompute {
  static constexpr int kAll = -1, kAuto = -2;
  int blocks = kAll;  // kAll, kAuto, or a count 0..layers
  Recompute() = default;
  // true/false read as every block / none, as the boolean key did.
  Recompute(bool every) : blocks(every ? kAll : 0) {}  // NOLINT(google-explicit-constructor)
  static Recompute first(int n) {
    Recompute r;
    r.blocks = n;
    return r;
  }
  static Recompute automatic() {
    Recompute r;
    r.blocks = kAuto;
    return r;
  }
  bool is_auto() const { return blocks == kAuto; }
  // Blocks that recompute in a model of `layers` blocks (automatic: every block).
  int count(int layers) const { return blocks < 0 ? layers : std::min(blocks, layers); }
  bool applies(const ModelShape& s, int unit) const {
    return s.is_block(unit) && unit <= count(s.layers);
  }
  // As the configuration writes it: true, false, a count or "auto".
  std::string text(int layers) const {
    if (blocks == kAuto) return "auto";
    const int n = count(layers);
    return n == layers ? "true" : n == 0 ? "false" : std::to_string(n);
  }
};

// compute.emulate (emulated backend): how modelled time is spent.
enum class EmulateTime { sleep, spin };
// compute.attention (cuda backend): automatic = cudnn where built in, else own.
enum class AttentionKernels { automatic, own, cudnn };
// "auto", "own", "cudnn": the configuration's names.
std::string to_string(AttentionKernels a);
// The kernels of a name to_string gives; std::invalid_argument naming the allowed ones.
AttentionKernels attention_kernels(const std::string& name);

struct ComputeOptions {
  std::string backend = "emulated";
  double peak_tflops = 989.0;                                // emulated timing and MFU
  EmulateTime emulate = EmulateTime::sleep;                  // emulated: sleep | spin
  AttentionKernels attention = AttentionKernels::automatic;  // cuda: auto | own | cudnn
  Recompute recompute{};
  uint64_t seed = 1;
  double param_scale = 1.0;  // emulated only: units hold scaled_numel(shape, u, scale) elements
  std::string cost_model;    // emulated: cost file path ("" = FLOPs at peak_tflops)
  TuningSetting tuning{};    // compute.tuning: auto | off | a tuning file
  double device_peak_tflops = 0;  // cuda: MFU's peak (0: device_peak_tflops() or peak_tflops)
  bool deterministic = false;     // cuda: deterministic kernels where the library offers both
  // emulated: the loaded cost file (config/cost_file.hpp: load_cost_file)
  std::shared_ptr<const CostModel> costs;
};

// The compute backends: one row each in compute_backends() (backend.cpp); a new backend
// is its own file plus one row there.
struct BackendRow {
  std::string name{};
  std::string description{};
  VariantNeeds needs{};
  int priority = 0;  // compute.backend has no `auto`
  // It spends modelled time instead of computing: model.scale and compute.cost_model
  // apply to it only.
  bool models_time = false;
  int param_bytes = 4;  // bytes of each parameter it gathers and pulls (bf16: 2)
  std::function<std::unique_ptr<ComputeBackend>(const ComputeOptions& opt, const ModelShape& shape,
                                                int rank, int local_rank)>
      factory{};
  // Optional, process-wide: set-up before any backend of the row is made, given the
  // program's arguments (program name first); removes the arguments it consumed.
  std::function<void(std::vector<char*>& args)> initialize{};
  // Optional: after the last backend is gone.
  std::function<void()> finalize{};
  // Optional: what `minipt --version` adds about the row (e.g. "attention: own cudnn").
  std::function<std::string()> version_details{};
};
Registry<BackendRow>& compute_backends();

// The backend of opt.backend: ConfigError("compute.backend", ...) when this build lacks it.
std::unique_ptr<ComputeBackend> make_backend(const ComputeOptions& opt, const ModelShape& shape,
                                             int rank, int local_rank);
// The backends this build has (compute_backends().built_names()).
std::vector<std::string> available_backends();
// Attention kernels of the cuda backend in this build (compute.attention): own, cudnn.
std::vector<std::string> available_attention();
// What `minipt --version` prints after "backends:": the built backends, then each
// row's version details (" emulated kokkos; cuda attention: own cudnn").
std::string backends_version();

// Runs every built backend's initialize on `argc/argv` once, before any backend is made;
// returns the arguments left for minipt's own parser (program name first). Pair with
// finalize_backends() after every backend is gone.
std::vector<char*> initialize_backends(int argc, char** argv);
void finalize_backends();

}  // namespace minipt
