// CUDA compute backend. See cuda_backend.hpp for what it is; the per-unit maths:
//
// Block (pre-norm decoder layer), x fp32 [T][H]:
//   h  = RMSNorm(x)·w_attn                        (bf16)
//   qkv = h·[Wq;Wk;Wv]ᵀ, RoPE on q and k           (one product: the three matrices are
//                                                   contiguous in the unit's buffer)
//   o  = causal varlen attention(q, k, v)           (bf16, + row log-sum-exp)
//   x1 = x + o·Woᵀ                                  (fp32; the add is the product's β·C)
//   h2 = RMSNorm(x1)·w_mlp
//   gu = h2·[Wgate;Wup]ᵀ, a = silu(gate)·up
//   x2 = x1 + a·Wdownᵀ
// Backward runs the same steps in reverse; weight gradients are fp32 products
// dW = dyᵀ·x written straight into the unit's gradient buffer.
//
// Memory: every block keeps its input x (fp32) and its attention output o with the
// log-sum-exp. A block that recomputes (opt.recompute: the first n blocks) keeps nothing
// else: recompute() rebuilds qkv, x1 and gu from them into one shared set, every product
// but the attention, whose forward (the most expensive kernel per FLOP) is never
// repeated. A block that keeps its activations holds its own qkv, x1, gu and norm
// statistics; the cheap ones, the normed inputs h and h2 and the SwiGLU output a, live in
// one scratch set for all blocks and are rebuilt by element-wise kernels before each
// block's backward. With model.recompute = "auto" the number of keeping blocks is the
// largest that fits the free device memory (decided when the microbatch grows, before
// the first step for every shape the trainer prepares); a microbatch that cannot fit is
// an error saying how much was needed and free and which settings lower it.
//
// Head: the final norm and the LM head run in forward(); the logits never exist for
// the whole microbatch: in chunks of rows, logits (fp32) → loss and dlogits (bf16) →
// dh and dW_lm (accumulated over chunks) immediately, so backward(head) only finishes
// the norm and hands out the gradient.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "compute/cuda/attention.hpp"
#include "compute/cuda/attention_cudnn.hpp"
#include "compute/cuda/cuda_backend.hpp"
#include "compute/cuda/cuda_check.hpp"
#include "compute/cuda/gemm.hpp"
#include "compute/cuda/kernel_table.hpp"
#include "compute/cuda/kernels.hpp"
#include "compute/device_peaks.hpp"
#include "core/error.hpp"
#include "model/init.hpp"

namespace minipt {

namespace {

using cuda::bf16;
using cuda::Gemm;
using cuda::GemmOp;

int64_t host_steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Growable device allocation (contents are not preserved on growth).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) {
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  void reserve(size_t bytes) {
    if (!try_reserve(bytes)) CUDA_CHECK(cudaErrorMemoryAllocation);
  }
  // reserve(), but false (and empty) when the device is out of memory.
  bool try_reserve(size_t bytes) {
    if (bytes <= bytes_) return true;
    if (ptr_ != nullptr) CUDA_CHECK(cudaFree(ptr_));
    ptr_ = nullptr;
    bytes_ = 0;
    const cudaError_t e = cudaMalloc(&ptr_, bytes);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear it: nothing is left broken
      ptr_ = nullptr;
      return false;
    }
    CUDA_CHECK(e);
    bytes_ = bytes;
    return true;
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }
  void release() {
    if (ptr_ != nullptr) CUDA_CHECK(cudaFree(ptr_));
    ptr_ = nullptr;
    bytes_ = 0;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Timestamps on the lanes' streams: a mark records an event; synchronize() waits for
// all streams and records one calibration event whose completion is read on the host
// steady clock; each mark resolves to that host time minus its event-to-calibration
// elapsed time.
class CudaTimeSource final : public TimeSource {
 public:
  explicit CudaTimeSource(const cudaStream_t* streams) : streams_(streams) {}
  ~CudaTimeSource() override {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
    if (calibration_ != nullptr) cudaEventDestroy(calibration_);
  }
  Mark mark(Lane lane) override {
    if (used_ == events_.size()) {
      cudaEvent_t e = nullptr;
      CUDA_CHECK(cudaEventCreate(&e));
      events_.push_back(e);
    }
    CUDA_CHECK(cudaEventRecord(events_[used_], streams_[static_cast<int>(lane)]));
    return static_cast<Mark>(used_++);
  }
  Mark mark_after(Lane lane, Lane after) override {
    const Mark a = mark(after);
    CUDA_CHECK(cudaStreamWaitEvent(streams_[static_cast<int>(lane)], events_[a], 0));
    return mark(lane);
  }
  void synchronize() override {
    for (int l = 0; l < kNumLanes; ++l) CUDA_CHECK(cudaStreamSynchronize(streams_[l]));
    if (calibration_ == nullptr) CUDA_CHECK(cudaEventCreate(&calibration_));
    CUDA_CHECK(cudaEventRecord(calibration_, streams_[0]));
    CUDA_CHECK(cudaEventSynchronize(calibration_));
    calibration_host_ns_ = host_steady_ns();
  }
  int64_t resolve_ns(Mark m) override {
    if (m >= used_) throw std::out_of_range("CudaTimeSource: unknown mark");
    float ms = 0.f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, events_[m], calibration_));
    return calibration_host_ns_ - static_cast<int64_t>(std::llround(static_cast<double>(ms) * 1e6));
  }
  void reset() override { used_ = 0; }

 private:
  const cudaStream_t* streams_;
  std::vector<cudaEvent_t> events_;
  size_t used_ = 0;
  cudaEvent_t calibration_ = nullptr;
  int64_t calibration_host_ns_ = 0;
};

// Optional per-kernel-group timing (MINIPT_CUDA_PROFILE=1): events around each named
// region on the compute stream, summed after every microbatch, printed to stderr when
// the backend is destroyed. Off by default: it adds two event records per region.
class RegionProfiler {
 public:
  RegionProfiler() {
    const char* env = std::getenv("MINIPT_CUDA_PROFILE");
    enabled_ = env != nullptr && env[0] == '1';
  }
  ~RegionProfiler() {
    if (!enabled_) return;
    report();
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }
  void begin(const char* name, cudaStream_t s) {
    if (!enabled_) return;
    open_.push_back({name, record(s)});
  }
  void end(cudaStream_t s) {
    if (!enabled_) return;
    const Open o = open_.back();
    open_.pop_back();
    done_.push_back({o.name, o.start, record(s)});
  }
  // After the stream has been synchronised.
  void collect() {
    if (!enabled_) return;
    for (const Done& d : done_) {
      float ms = 0.f;
      CUDA_CHECK(cudaEventElapsedTime(&ms, events_[d.start], events_[d.stop]));
      auto& t = totals_[d.name];
      t.first += ms;
      t.second += 1;
    }
    done_.clear();
    used_ = 0;
  }
  void report() const {
    double sum = 0;
    for (const auto& [n, t] : totals_) sum += t.first;
    std::vector<std::pair<double, std::string>> rows;
    for (const auto& [n, t] : totals_) rows.push_back({t.first, n});
    std::sort(rows.rbegin(), rows.rend());
    std::fprintf(stderr, "PROFILE region            total_ms   share  calls\n");
    for (const auto& [ms, n] : rows) {
      std::fprintf(stderr, "PROFILE %-18s %10.1f %6.1f%% %6ld\n", n.c_str(), ms, 100.0 * ms / sum,
                   static_cast<long>(totals_.at(n).second));
    }
  }

 private:
  struct Open {
    const char* name;
    size_t start;
  };
  struct Done {
    const char* name;
    size_t start, stop;
  };
  size_t record(cudaStream_t s) {
    if (used_ == events_.size()) {
      cudaEvent_t e = nullptr;
      CUDA_CHECK(cudaEventCreate(&e));
      events_.push_back(e);
    }
    CUDA_CHECK(cudaEventRecord(events_[used_], s));
    return used_++;
  }
  bool enabled_ = false;
  std::vector<cudaEvent_t> events_;
  size_t used_ = 0;
  std::vector<Open> open_;
  std::vector<Done> done_;
  std::map<std::string, std::pair<double, long>> totals_;
};

// Intermediate tensors of one block's forward that its backward needs and that cost a
// product to rebuild.
struct BlockActivations {
  DeviceBuffer rstd1, qkv, x1, rstd2, gu;
};
// The ones an element-wise kernel rebuilds: one set shared by every block.
struct BlockScratch {
  DeviceBuffer h, h2, a;
};

class CudaBackend final : public ComputeBackend {
 public:
  CudaBackend(const ComputeOptions& opt, const ModelShape& shape, int rank, int local_rank);
  ~CudaBackend() override;

  std::string name() const override { return "cuda"; }
  std::string device_name() const override { return device_name_; }
  MemorySpace memory() const override { return MemorySpace::device; }
  DType param_dtype() const override { return DType::bf16; }
  DType grad_dtype() const override { return DType::f32; }
  TimeSource& time_source() override { return time_; }

  void* allocate(size_t bytes) override;
  void deallocate(void* p) override;
  void copy_to_host(void* host_dst, const void* src, size_t bytes) override;
  void copy_from_host(void* dst, const void* host_src, size_t bytes) override;
  void init_params(int unit, int64_t begin, int64_t n, float* shard_fp32) override;
  void cast_params(const float* src, void* dst, int64_t n) override;

  void prepare_microbatch_shape(const std::vector<int32_t>& cu_seqlens) override {
    if (cu_seqlens.size() < 2 || cu_seqlens.back() <= 0) return;
    if (cudnn_) cudnn_->prepare(cu_seqlens, shape_.hidden + 2 * shape_.kv_dim(), shape_.hidden);
    reserve_activations(cu_seqlens.back());  // an allocation failure shows before step 0
  }
  void begin_microbatch(const MicrobatchData& mb) override;
  void forward(int unit, const void* params) override;
  bool recompute_needed(int unit) const override {
    return shape_.is_block(unit) && unit <= recomputed_;
  }
  int recomputed_blocks() const override { return recomputed_; }
  void recompute(int unit, const void* params) override;
  void backward(int unit, const void* params, void* grads) override;
  double end_microbatch() override;
  std::vector<double> sequence_losses() const override { return sequence_losses_; }
  // Device memory in use (cudaMemGetInfo: total − free), largest value seen at the end
  // of a microbatch, when activations and the logit chunk are allocated.
  int64_t peak_memory_bytes() const override { return peak_memory_bytes_; }

  void accumulate_grad(float* acc, const void* g, int64_t n) override;
  double sum_squares(const float* x, int64_t n) override;
  void adamw(float* param, float* m, float* v, const float* grad, int64_t n, const AdamWParams& p,
             float grad_scale) override;
  void fill_zero(void* x, size_t bytes) override;

  // Kernel choices: the process's kernel table (kernel_table.hpp), for this device and
  // these library versions.
  std::string tuning_identity() const override { return tuning_identity_; }
  void use_kernel_choices(const KernelChoices& choices, bool record) override {
    cuda::set_kernel_choices(choices.entries, record);
  }
  KernelChoices kernel_choices() const override {
    return KernelChoices{tuning_identity_, cuda::kernel_choice_entries()};
  }
  double device_peak_tflops() const override { return known_device_peak_tflops(gpu_name_); }

  cudaStream_t stream(Lane lane) const { return streams_[static_cast<int>(lane)]; }
  void* native_stream(Lane lane) override { return stream(lane); }

 private:
  cudaStream_t cs() const { return streams_[0]; }
  BlockActivations& acts(int unit) {
    return recompute_needed(unit) ? shared_acts_ : block_acts_[static_cast<size_t>(unit - 1)];
  }
  void reserve_activations(int64_t tokens);
  // The block forward; with `keep_attention` false the attention output saved by the
  // first pass is reused and the block output is not rewritten (recompute).
  void block_forward(int unit, const bf16* params, bool recomputing);
  void block_backward(int unit, const bf16* params, float* grads);
  void head_forward(const bf16* params);
  void head_backward(const bf16* params, float* grads);
  cuda::AttentionArgs attention_args(int unit);

  ComputeOptions opt_;
  std::unique_ptr<cuda::CudnnAttention> cudnn_;  // set: cuDNN attention, else own kernels
  ModelShape shape_;
  BlockLayout block_;
  HeadLayout head_;
  int device_ = 0;
  std::string device_name_;
  std::string gpu_name_;         // the device's own name (cudaDeviceProp::name)
  std::string tuning_identity_;  // device, attention and library versions
  cudaStream_t streams_[kNumLanes] = {};
  CudaTimeSource time_;
  std::unique_ptr<Gemm> gemm_;

  // Current microbatch.
  int64_t tokens_ = 0;
  int64_t capacity_tokens_ = 0;
  int64_t stat_ld_ = 0;
  int max_seq_len_ = 0;
  int rope_positions_ = 0;
  int num_fwd_items_ = 0, num_bwd_items_ = 0;
  std::vector<int32_t> host_cu_seqlens_, host_targets_;
  std::vector<float> host_weights_, host_token_loss_;
  std::vector<double> sequence_losses_;
  int64_t peak_memory_bytes_ = 0;

  DeviceBuffer ints_;  // tokens | targets | positions | cu_seqlens | fwd items | bwd items
  int32_t* d_tokens_ = nullptr;
  int32_t* d_targets_ = nullptr;
  int32_t* d_positions_ = nullptr;
  int32_t* d_cu_seqlens_ = nullptr;
  int32_t* d_fwd_items_ = nullptr;
  int32_t* d_bwd_items_ = nullptr;
  DeviceBuffer weights_, token_loss_, rope_table_;
  std::vector<DeviceBuffer> saved_x_;    // index u: input of unit u (1..L+1), fp32 [T][H]
  std::vector<DeviceBuffer> saved_o_;    // index u: attention output of block u, bf16
  std::vector<DeviceBuffer> saved_lse_;  // index u: [heads][stat_ld] fp32
  int recomputed_ = 0;  // blocks 1..recomputed_ recompute, the others keep their sets
  BlockActivations shared_acts_;
  std::vector<BlockActivations> block_acts_;  // index unit-1; sized for keeping blocks only
  BlockScratch scratch_;
  // Head.
  int64_t ce_chunk_rows_ = 0;
  DeviceBuffer head_rstd_, logits_, dlogits_, head_weight_grad_;
  // Backward.
  DeviceBuffer dx_, dx_bf16_, dy_, dq_accum_, row_dot_;
  DeviceBuffer dqkv_;  // cuDNN attention, where dq|dk|dv rows do not fit in scratch_.a
  // Buffers whose lives do not overlap share memory:
  //   the head's normed input lives in head forward only, scratch_.h is rebuilt before it
  //   is next read (a block's backward);
  //   the head's input gradient is written in head forward and read in head backward,
  //   dy_ lives inside a block's backward;
  //   a block's d o is made after its backward's last read of h2 (dW_gate,up);
  //   cuDNN's dq|dk|dv are made after the backward's last read of scratch_.a (SwiGLU).
  bf16* head_h() const { return scratch_.h.as<bf16>(); }
  float* head_dh() const { return dy_.as<float>(); }
  bf16* d_o() const { return scratch_.h2.as<bf16>(); }
  bf16* dqkv() const { return dqkv_.bytes() > 0 ? dqkv_.as<bf16>() : scratch_.a.as<bf16>(); }
  DeviceBuffer scalar_;  // one double (sum_squares)
  RegionProfiler prof_;
};

int checked_device_count() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

CudaBackend::CudaBackend(const ComputeOptions& opt, const ModelShape& shape, int rank,
                         int local_rank)
    : opt_(opt), shape_(shape), block_(shape), head_(shape), time_(streams_) {
  if (shape.hidden % shape.heads != 0 || shape.heads % shape.kv_heads != 0) {
    throw ConfigError("model", "hidden must be a multiple of heads and heads of kv_heads");
  }
  const int d = shape.head_dim();
  if (d != 32 && d != 64 && d != 128) {
    throw ConfigError("model",
                      "the cuda backend supports head_dim 32, 64 or 128, not " + std::to_string(d));
  }
  if (shape.hidden % 8 != 0 || shape.ffn % 8 != 0 || shape.vocab % 8 != 0) {
    throw ConfigError("model", "the cuda backend needs hidden, ffn and vocab multiples of 8");
  }
  const int count = checked_device_count();
  if (count == 0) {
    throw std::runtime_error("compute.backend = cuda: no CUDA device is available (rank " +
                             std::to_string(rank) + ")");
  }
  device_ = local_rank % count;
  CUDA_CHECK(cudaSetDevice(device_));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
  device_name_ = prop.name;
  const bool want_cudnn =
      opt.attention == AttentionKernels::cudnn ||
      (opt.attention == AttentionKernels::automatic && cuda::CudnnAttention::available());
  if (want_cudnn)
    cudnn_ =
        std::make_unique<cuda::CudnnAttention>(shape.heads, shape.kv_heads, d, opt.deterministic);
  device_name_ += want_cudnn ? " (cudnn attention)" : " (own attention)";
  gpu_name_ = prop.name;
  int cudart = 0;
  CUDA_CHECK(cudaRuntimeGetVersion(&cudart));
  tuning_identity_ =
      device_name_ + "; sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
      "; cudart " + std::to_string(cudart) + "; cublasLt " + std::to_string(cublasLtGetVersion()) +
      (want_cudnn ? "; cudnn " + std::to_string(cuda::CudnnAttention::library_version()) +
                        (opt.deterministic ? "" : " nondeterministic")
                  : std::string());
  for (auto& s : streams_) CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  gemm_ = std::make_unique<Gemm>(cs());
  scalar_.reserve(sizeof(double));
  block_acts_.resize(static_cast<size_t>(shape.layers));
  recomputed_ = opt_.recompute.count(shape.layers);
  saved_x_.resize(static_cast<size_t>(shape.layers + 2));
  saved_o_.resize(static_cast<size_t>(shape.layers + 1));
  saved_lse_.resize(static_cast<size_t>(shape.layers + 1));
  // Logit chunk: at most 2 GiB of fp32 logits, whole multiples of 64 rows.
  ce_chunk_rows_ = std::max<int64_t>(64, ((1LL << 31) / (4LL * shape.vocab)) / 64 * 64);
  head_weight_grad_.reserve(static_cast<size_t>(shape.vocab) * shape.hidden * sizeof(float));
}

CudaBackend::~CudaBackend() {
  cudaDeviceSynchronize();
  gemm_.reset();
  for (auto& s : streams_) {
    if (s != nullptr) cudaStreamDestroy(s);
  }
}

void* CudaBackend::allocate(size_t bytes) {
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(bytes, 16)));
  CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, cs()));
  CUDA_CHECK(cudaStreamSynchronize(cs()));
  return p;
}

// Not checked: deallocation runs in destructors, also while an earlier CUDA error
// unwinds the stack, and a throw there would terminate before that error is reported.
void CudaBackend::deallocate(void* p) {
  if (p != nullptr) cudaFree(p);
}

void CudaBackend::copy_to_host(void* host_dst, const void* src, size_t bytes) {
  for (auto s : streams_) CUDA_CHECK(cudaStreamSynchronize(s));
  CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, cs()));
  CUDA_CHECK(cudaStreamSynchronize(cs()));
}

void CudaBackend::copy_from_host(void* dst, const void* host_src, size_t bytes) {
  for (auto s : streams_) CUDA_CHECK(cudaStreamSynchronize(s));
  CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, cs()));
  CUDA_CHECK(cudaStreamSynchronize(cs()));
}

void CudaBackend::init_params(int unit, int64_t begin, int64_t n, float* shard_fp32) {
  cuda::init_params(unit_init(shape_, unit, opt_.seed), begin, n, shard_fp32, cs());
  CUDA_CHECK(cudaStreamSynchronize(cs()));
}

void CudaBackend::cast_params(const float* src, void* dst, int64_t n) {
  cuda::cast_f32_to_bf16(src, static_cast<bf16*>(dst), n, cs());
}

void CudaBackend::reserve_activations(int64_t t) {
  if (t <= capacity_tokens_) return;
  CUDA_CHECK(cudaStreamSynchronize(cs()));
  const size_t T = static_cast<size_t>(t);
  const size_t H = static_cast<size_t>(shape_.hidden);
  const size_t QKV = H + 2 * static_cast<size_t>(shape_.kv_dim());
  const size_t F = static_cast<size_t>(shape_.ffn);
  const size_t stat = static_cast<size_t>(cuda::attention_stat_ld(t));
  const size_t heads = static_cast<size_t>(shape_.heads);
  const int layers = shape_.layers;
  // Every buffer but the blocks' activation sets, with the bytes it needs for t tokens.
  std::vector<std::pair<DeviceBuffer*, size_t>> fixed;
  auto need = [&](DeviceBuffer& b, size_t bytes) { fixed.emplace_back(&b, bytes); };
  for (int u = 1; u <= layers + 1; ++u) need(saved_x_[u], T * H * 4);
  for (int u = 1; u <= layers; ++u) {
    need(saved_o_[u], T * H * 2);
    need(saved_lse_[u], heads * stat * 4);
  }
  need(scratch_.h, T * H * 2);
  need(scratch_.h2, T * H * 2);
  need(scratch_.a, T * F * 2);
  const size_t chunk = static_cast<size_t>(std::min<int64_t>(ce_chunk_rows_, t));
  need(head_rstd_, T * 4);
  need(logits_, chunk * static_cast<size_t>(shape_.vocab) * 4);
  need(dlogits_, chunk * static_cast<size_t>(shape_.vocab) * 2);
  need(dx_, T * H * 4);
  need(dx_bf16_, T * H * 2);
  need(dy_, T * H * 4);
  if (cudnn_) {
    if (QKV > F) need(dqkv_, T * QKV * 2);  // else in scratch_.a
  } else {
    need(dq_accum_, T * H * 4);
    need(row_dot_, heads * stat * 4);
  }
  need(weights_, T * 4);
  need(token_loss_, T * 4);
  // One block's set: rstd1, qkv, x1, rstd2, gu.
  const std::array<size_t, 5> set_bytes = {T * 4, T * QKV * 2, T * H * 4, T * 4, T * 2 * F * 2};
  auto buffers = [](BlockActivations& a) {
    return std::array<DeviceBuffer*, 5>{&a.rstd1, &a.qkv, &a.x1, &a.rstd2, &a.gu};
  };
  auto growth = [](const DeviceBuffer& b, size_t bytes) {
    return bytes > b.bytes() ? bytes - b.bytes() : size_t{0};
  };
  auto set_growth = [&](BlockActivations& a) {
    size_t g = 0;
    for (size_t i = 0; i < set_bytes.size(); ++i) g += growth(*buffers(a)[i], set_bytes[i]);
    return g;
  };
  size_t per_set = 0;
  for (size_t b : set_bytes) per_set += b;
  size_t fixed_growth = 0;
  for (const auto& [b, bytes] : fixed) fixed_growth += growth(*b, bytes);
  if (opt_.recompute.is_auto()) {
    // The sets are made anew for the new size: what they hold now counts as free.
    for (auto& a : block_acts_)
      for (DeviceBuffer* b : buffers(a)) b->release();
    for (DeviceBuffer* b : buffers(shared_acts_)) b->release();
  }
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (opt_.recompute.is_auto()) {
    // Headroom for what is allocated later (a cuDNN workspace of a graph built in a step,
    // NCCL's buffers at a communicator's first collective) and for fragmentation: 1.5 GiB
    // and 1% of the device (2.9 GiB on an H200; it was 3 GiB and 1% until the 64K step
    // showed 5.2 GiB free at its end).
    const size_t headroom = (size_t{3} << 29) + total_bytes / 100;
    const size_t left =
        free_bytes > fixed_growth + headroom ? free_bytes - fixed_growth - headroom : 0;
    size_t keep = std::min<size_t>(static_cast<size_t>(layers), left / per_set);
    if (keep < static_cast<size_t>(layers))  // the recomputing blocks need the shared set
      keep = left > per_set ? (left - per_set) / per_set : 0;
    recomputed_ = layers - static_cast<int>(keep);
  }
  size_t sets_growth = recomputed_ > 0 ? set_growth(shared_acts_) : 0;
  for (int u = recomputed_ + 1; u <= layers; ++u)
    sets_growth += set_growth(block_acts_[static_cast<size_t>(u - 1)]);
  const size_t needed = fixed_growth + sets_growth;
  // The error before step 0 when the microbatch cannot fit: from the growth computed
  // above, or when an allocation still fails (fragmentation, memory another process took).
  auto out_of_memory = [&](size_t need, const std::string& short_by) {
    const double gib = 1024.0 * 1024.0 * 1024.0;
    char text[768];
    std::snprintf(text, sizeof text,
                  "compute.backend = cuda: a microbatch of %lld tokens needs %.2f GiB more device "
                  "memory (%.2f GiB for the activations of the %d blocks that keep theirs, "
                  "%.2f GiB each, and of the recompute set; %.2f GiB for the rest), but %.2f GiB "
                  "of %.2f GiB are free on GPU %d (%s)%s. Lower it with ",
                  static_cast<long long>(t), static_cast<double>(need) / gib,
                  static_cast<double>(sets_growth) / gib, layers - recomputed_,
                  static_cast<double>(per_set) / gib, static_cast<double>(fixed_growth) / gib,
                  static_cast<double>(free_bytes) / gib, static_cast<double>(total_bytes) / gib,
                  device_, device_name_.c_str(), short_by.c_str());
    const std::string advice =
        recomputed_ < layers
            ? "model.recompute (now " + opt_.recompute.text(layers) +
                  "; true recomputes every block, \"auto\" keeps only as many as fit) or "
                  "balance.token_budget (fewer tokens per microbatch)"
            : std::string(
                  "balance.token_budget (fewer tokens per microbatch; every block "
                  "already recomputes)");
    return ConfigError("", text + advice);
  };
  if (needed > free_bytes) throw out_of_memory(needed, "");
  bool fits = true;
  for (auto& [b, bytes] : fixed) fits = fits && b->try_reserve(bytes);
  auto reserve_set = [&](BlockActivations& a) {
    for (size_t i = 0; i < set_bytes.size(); ++i)
      fits = fits && buffers(a)[i]->try_reserve(set_bytes[i]);
  };
  if (recomputed_ > 0) reserve_set(shared_acts_);
  for (int u = recomputed_ + 1; u <= layers; ++u)
    reserve_set(block_acts_[static_cast<size_t>(u - 1)]);
  if (!fits) {
    // What is left allocated stays (a smaller microbatch may still fit); the capacity
    // stays as it was, so a retry reserves again.
    size_t left = 0, total = 0;
    CUDA_CHECK(cudaMemGetInfo(&left, &total));
    char short_by[160];
    std::snprintf(short_by, sizeof short_by,
                  " and not all of it can be allocated (an allocation failed with %.2f GiB "
                  "left)",
                  static_cast<double>(left) / (1024.0 * 1024.0 * 1024.0));
    throw out_of_memory(needed, short_by);
  }
  capacity_tokens_ = t;
}

void CudaBackend::begin_microbatch(const MicrobatchData& mb) {
  const int64_t t = mb.num_tokens();
  if (mb.cu_seqlens.empty() || mb.cu_seqlens.front() != 0 || mb.cu_seqlens.back() != t ||
      static_cast<int64_t>(mb.targets.size()) != t ||
      static_cast<int64_t>(mb.loss_weight.size()) != t) {
    throw std::invalid_argument(
        "cuda backend: inconsistent microbatch (cu_seqlens/targets/weights)");
  }
  tokens_ = t;
  stat_ld_ = cuda::attention_stat_ld(t);
  reserve_activations(t);
  host_cu_seqlens_ = mb.cu_seqlens;
  host_targets_ = mb.targets;
  host_weights_ = mb.loss_weight;
  max_seq_len_ = 0;
  std::vector<int32_t> positions(static_cast<size_t>(t));
  for (size_t s = 0; s + 1 < mb.cu_seqlens.size(); ++s) {
    const int32_t b = mb.cu_seqlens[s], e = mb.cu_seqlens[s + 1];
    max_seq_len_ = std::max(max_seq_len_, e - b);
    for (int32_t i = b; i < e; ++i) positions[static_cast<size_t>(i)] = i - b;
  }
  cuda::AttentionWork work;
  if (cudnn_) {
    cudnn_->set_sequences(mb.cu_seqlens, shape_.hidden + 2 * shape_.kv_dim(), shape_.hidden, cs());
  } else {
    work = cuda::plan_attention_work(mb.cu_seqlens);
  }
  num_fwd_items_ = static_cast<int>(work.forward.size() / 2);
  num_bwd_items_ = static_cast<int>(work.backward.size() / 2);
  // One upload of every integer array.
  std::vector<int32_t> ints;
  ints.reserve(static_cast<size_t>(3 * t) + mb.cu_seqlens.size() + work.forward.size() +
               work.backward.size());
  ints.insert(ints.end(), mb.tokens.begin(), mb.tokens.end());
  ints.insert(ints.end(), mb.targets.begin(), mb.targets.end());
  ints.insert(ints.end(), positions.begin(), positions.end());
  ints.insert(ints.end(), mb.cu_seqlens.begin(), mb.cu_seqlens.end());
  ints.insert(ints.end(), work.forward.begin(), work.forward.end());
  ints.insert(ints.end(), work.backward.begin(), work.backward.end());
  CUDA_CHECK(cudaStreamSynchronize(cs()));  // the previous microbatch may still read ints_
  ints_.reserve(ints.size() * 4 + 16);
  int32_t* base = ints_.as<int32_t>();
  d_tokens_ = base;
  d_targets_ = d_tokens_ + t;
  d_positions_ = d_targets_ + t;
  d_cu_seqlens_ = d_positions_ + t;
  d_fwd_items_ = d_cu_seqlens_ + mb.cu_seqlens.size();
  d_bwd_items_ = d_fwd_items_ + work.forward.size();
  CUDA_CHECK(cudaMemcpyAsync(base, ints.data(), ints.size() * 4, cudaMemcpyHostToDevice, cs()));
  CUDA_CHECK(cudaMemcpyAsync(weights_.as<float>(), mb.loss_weight.data(),
                             static_cast<size_t>(t) * 4, cudaMemcpyHostToDevice, cs()));
  if (max_seq_len_ > rope_positions_) {
    const int n = std::max(max_seq_len_, 4096);
    rope_table_.reserve(static_cast<size_t>(n) * shape_.head_dim() / 2 * sizeof(float2));
    cuda::rope_table(rope_table_.as<float2>(), n, shape_.head_dim(), shape_.rope_theta, cs());
    rope_positions_ = n;
  }
  // The host vectors above must outlive the asynchronous copies.
  CUDA_CHECK(cudaStreamSynchronize(cs()));
}

cuda::AttentionArgs CudaBackend::attention_args(int unit) {
  BlockActivations& a = acts(unit);
  const int64_t H = shape_.hidden, KV = shape_.kv_dim();
  cuda::AttentionArgs args;
  const bf16* qkv = a.qkv.as<bf16>();
  args.q = qkv;
  args.k = qkv + H;
  args.v = qkv + H + KV;
  args.ld_qkv = H + 2 * KV;
  args.o = saved_o_[unit].as<bf16>();
  args.ld_o = H;
  args.lse2 = saved_lse_[unit].as<float>();
  args.stat_ld = stat_ld_;
  args.cu_seqlens = d_cu_seqlens_;
  args.num_tokens = static_cast<int>(tokens_);
  args.heads = shape_.heads;
  args.kv_heads = shape_.kv_heads;
  args.head_dim = shape_.head_dim();
  return args;
}

void CudaBackend::forward(int unit, const void* params) {
  if (tokens_ == 0) return;
  const bf16* p = static_cast<const bf16*>(params);
  if (shape_.is_embedding(unit)) {
    prof_.begin("embedding", cs());
    cuda::embedding_forward(d_tokens_, p, saved_x_[1].as<float>(), tokens_, shape_.hidden, cs());
    prof_.end(cs());
  } else if (shape_.is_head(unit)) {
    head_forward(p);
  } else {
    block_forward(unit, p, false);
  }
}

void CudaBackend::recompute(int unit, const void* params) {
  if (tokens_ == 0 || !shape_.is_block(unit)) return;
  block_forward(unit, static_cast<const bf16*>(params), true);
}

void CudaBackend::block_forward(int unit, const bf16* p, bool recomputing) {
  const int64_t T = tokens_, H = shape_.hidden, KV = shape_.kv_dim(), F = shape_.ffn;
  const int64_t QKV = H + 2 * KV;
  BlockActivations& a = acts(unit);
  const float* x = saved_x_[unit].as<float>();
  const float eps = static_cast<float>(shape_.norm_eps);
  prof_.begin(recomputing ? "re:norm_fwd" : "norm_fwd", cs());
  cuda::rmsnorm_forward(x, p + block_.attn_norm, scratch_.h.as<bf16>(), a.rstd1.as<float>(), T,
                        shape_.hidden, eps, cs());
  prof_.end(cs());
  prof_.begin(recomputing ? "re:gemm_qkv_fwd" : "gemm_qkv_fwd", cs());
  gemm_->run(GemmOp::nt, T, QKV, H, scratch_.h.as<bf16>(), H, p + block_.wq, H, a.qkv.as<void>(),
             QKV, false);
  prof_.end(cs());
  prof_.begin(recomputing ? "re:rope" : "rope", cs());
  cuda::rope_apply(a.qkv.as<bf16>(), QKV, d_positions_, rope_table_.as<float2>(), T,
                   shape_.heads + shape_.kv_heads, shape_.head_dim(), false, cs());
  prof_.end(cs());
  if (!recomputing) {
    prof_.begin(recomputing ? "re:attn_fwd" : "attn_fwd", cs());
    if (cudnn_) {
      cudnn_->forward(attention_args(unit), cs());
    } else {
      cuda::attention_forward(attention_args(unit), d_fwd_items_, num_fwd_items_, cs());
    }
    prof_.end(cs());
  }
  prof_.begin(recomputing ? "re:gemm_wo_fwd" : "gemm_wo_fwd", cs());
  gemm_->run(GemmOp::nt, T, H, H, saved_o_[unit].as<bf16>(), H, p + block_.wo, H, a.x1.as<void>(),
             H, true, 1.0f, x);
  prof_.end(cs());
  prof_.begin(recomputing ? "re:norm_fwd" : "norm_fwd", cs());
  cuda::rmsnorm_forward(a.x1.as<float>(), p + block_.mlp_norm, scratch_.h2.as<bf16>(),
                        a.rstd2.as<float>(), T, shape_.hidden, eps, cs());
  prof_.end(cs());
  prof_.begin(recomputing ? "re:gemm_gu_fwd" : "gemm_gu_fwd", cs());
  gemm_->run(GemmOp::nt, T, 2 * F, H, scratch_.h2.as<bf16>(), H, p + block_.w_gate, H,
             a.gu.as<void>(), 2 * F, false);
  prof_.end(cs());
  prof_.begin(recomputing ? "re:swiglu_fwd" : "swiglu_fwd", cs());
  cuda::swiglu_forward(a.gu.as<bf16>(), scratch_.a.as<bf16>(), T, shape_.ffn, cs());
  prof_.end(cs());
  if (!recomputing) {
    prof_.begin(recomputing ? "re:gemm_down_fwd" : "gemm_down_fwd", cs());
    gemm_->run(GemmOp::nt, T, H, F, scratch_.a.as<bf16>(), F, p + block_.w_down, F,
               saved_x_[unit + 1].as<void>(), H, true, 1.0f, a.x1.as<float>());
    prof_.end(cs());
  }
}

void CudaBackend::block_backward(int unit, const bf16* p, float* grads) {
  const int64_t T = tokens_, H = shape_.hidden, KV = shape_.kv_dim(), F = shape_.ffn;
  const int64_t QKV = H + 2 * KV;
  BlockActivations& a = acts(unit);
  float* dx = dx_.as<float>();      // in: d x2 (block output); out: d x (block input)
  bf16* dxb = dx_bf16_.as<bf16>();  // its bf16 copy
  if (!recompute_needed(unit)) {
    // A keeping block's cheap activations were overwritten by the later blocks' forward:
    // rebuild them element-wise (the same kernels on the same inputs: the same bits).
    const float eps = static_cast<float>(shape_.norm_eps);
    prof_.begin("rebuild", cs());
    cuda::rmsnorm_forward(saved_x_[unit].as<float>(), p + block_.attn_norm, scratch_.h.as<bf16>(),
                          a.rstd1.as<float>(), T, shape_.hidden, eps, cs());
    cuda::rmsnorm_forward(a.x1.as<float>(), p + block_.mlp_norm, scratch_.h2.as<bf16>(),
                          a.rstd2.as<float>(), T, shape_.hidden, eps, cs());
    cuda::swiglu_forward(a.gu.as<bf16>(), scratch_.a.as<bf16>(), T, shape_.ffn, cs());
    prof_.end(cs());
  }
  CUDA_CHECK(cudaMemsetAsync(grads + block_.attn_norm, 0, H * sizeof(float), cs()));
  CUDA_CHECK(cudaMemsetAsync(grads + block_.mlp_norm, 0, H * sizeof(float), cs()));
  // x2 = x1 + a·Wdownᵀ
  prof_.begin("gemm_down_bwd", cs());
  gemm_->run(GemmOp::tn, H, F, T, dxb, H, scratch_.a.as<bf16>(), F, grads + block_.w_down, F, true);
  prof_.end(cs());
  prof_.begin("gemm_down_bwd", cs());
  gemm_->run(GemmOp::nn, T, F, H, dxb, H, p + block_.w_down, F, scratch_.a.as<void>(), F,
             false);  // da
  cuda::swiglu_backward(a.gu.as<bf16>(), scratch_.a.as<bf16>(), T, shape_.ffn, cs());
  prof_.end(cs());
  prof_.begin("gemm_gu_bwd", cs());
  gemm_->run(GemmOp::tn, 2 * F, H, T, a.gu.as<bf16>(), 2 * F, scratch_.h2.as<bf16>(), H,
             grads + block_.w_gate, H, true);
  prof_.end(cs());
  prof_.begin("gemm_gu_bwd", cs());
  gemm_->run(GemmOp::nn, T, H, 2 * F, a.gu.as<bf16>(), 2 * F, p + block_.w_gate, H, dy_.as<void>(),
             H, true);
  prof_.end(cs());
  prof_.begin("norm_bwd", cs());
  cuda::rmsnorm_backward(a.x1.as<float>(), p + block_.mlp_norm, a.rstd2.as<float>(),
                         dy_.as<float>(), dx, dx, dxb, grads + block_.mlp_norm, T, shape_.hidden,
                         cs());
  prof_.end(cs());
  // x1 = x + o·Woᵀ
  prof_.begin("gemm_wo_bwd", cs());
  gemm_->run(GemmOp::tn, H, H, T, dxb, H, saved_o_[unit].as<bf16>(), H, grads + block_.wo, H, true);
  prof_.end(cs());
  prof_.begin("gemm_wo_bwd", cs());
  gemm_->run(GemmOp::nn, T, H, H, dxb, H, p + block_.wo, H, d_o(), H, false);
  prof_.end(cs());
  cuda::AttentionArgs args = attention_args(unit);
  cuda::AttentionGradArgs g;
  g.d_o = d_o();
  g.row_dot = row_dot_.as<float>();
  g.dq_accum = dq_accum_.as<float>();
  // The own kernels' gradients overwrite q, k, v in place; cuDNN's need their own rows.
  bf16* dqkv = cudnn_ ? this->dqkv() : a.qkv.as<bf16>();
  g.dq = dqkv;
  g.dk = dqkv + H;
  g.dv = dqkv + H + KV;
  prof_.begin("attn_bwd", cs());
  if (cudnn_) {
    cudnn_->backward(args, g, cs());
  } else {
    cuda::attention_backward(args, g, d_bwd_items_, num_bwd_items_, cs());
  }
  prof_.end(cs());
  prof_.begin("rope", cs());
  cuda::rope_apply(dqkv, QKV, d_positions_, rope_table_.as<float2>(), T,
                   shape_.heads + shape_.kv_heads, shape_.head_dim(), true, cs());
  prof_.end(cs());
  prof_.begin("gemm_qkv_bwd", cs());
  gemm_->run(GemmOp::tn, QKV, H, T, dqkv, QKV, scratch_.h.as<bf16>(), H, grads + block_.wq, H,
             true);
  prof_.end(cs());
  prof_.begin("gemm_qkv_bwd", cs());
  gemm_->run(GemmOp::nn, T, H, QKV, dqkv, QKV, p + block_.wq, H, dy_.as<void>(), H, true);
  prof_.end(cs());
  prof_.begin("norm_bwd", cs());
  cuda::rmsnorm_backward(saved_x_[unit].as<float>(), p + block_.attn_norm, a.rstd1.as<float>(),
                         dy_.as<float>(), dx, dx, dxb, grads + block_.attn_norm, T, shape_.hidden,
                         cs());
  prof_.end(cs());
}

void CudaBackend::head_forward(const bf16* p) {
  const int64_t T = tokens_, H = shape_.hidden, V = shape_.vocab;
  const float* x = saved_x_[shape_.layers + 1].as<float>();
  bf16* hf = head_h();
  prof_.begin("head_norm", cs());
  cuda::rmsnorm_forward(x, p + head_.final_norm, hf, head_rstd_.as<float>(), T, shape_.hidden,
                        static_cast<float>(shape_.norm_eps), cs());
  prof_.end(cs());
  const bf16* w = p + head_.lm_head;
  float* dwl = head_weight_grad_.as<float>();
  for (int64_t r0 = 0; r0 < T; r0 += ce_chunk_rows_) {
    const int64_t rows = std::min(ce_chunk_rows_, T - r0);
    prof_.begin("gemm_lm_logits", cs());
    gemm_->run(GemmOp::nt, rows, V, H, hf + r0 * H, H, w, H, logits_.as<void>(), V, true);
    prof_.end(cs());
    prof_.begin("cross_entropy", cs());
    cuda::cross_entropy(logits_.as<float>(), d_targets_ + r0, weights_.as<float>() + r0,
                        token_loss_.as<float>() + r0, dlogits_.as<bf16>(), rows, shape_.vocab,
                        cs());
    prof_.end(cs());
    prof_.begin("gemm_lm_dx", cs());
    gemm_->run(GemmOp::nn, rows, H, V, dlogits_.as<bf16>(), V, w, H, head_dh() + r0 * H, H, true);
    prof_.end(cs());
    prof_.begin("gemm_lm_dw", cs());
    gemm_->run(GemmOp::tn, V, H, rows, dlogits_.as<bf16>(), V, hf + r0 * H, H, dwl, H, true,
               r0 == 0 ? 0.0f : 1.0f, dwl);
    prof_.end(cs());
  }
}

void CudaBackend::head_backward(const bf16* p, float* grads) {
  const int64_t T = tokens_, H = shape_.hidden;
  CUDA_CHECK(cudaMemsetAsync(grads + head_.final_norm, 0, H * sizeof(float), cs()));
  prof_.begin("head_norm", cs());
  cuda::rmsnorm_backward(saved_x_[shape_.layers + 1].as<float>(), p + head_.final_norm,
                         head_rstd_.as<float>(), head_dh(), nullptr, dx_.as<float>(),
                         dx_bf16_.as<bf16>(), grads + head_.final_norm, T, shape_.hidden, cs());
  prof_.end(cs());
  CUDA_CHECK(cudaMemcpyAsync(grads + head_.lm_head, head_weight_grad_.as<float>(),
                             static_cast<size_t>(shape_.vocab) * H * sizeof(float),
                             cudaMemcpyDeviceToDevice, cs()));
}

void CudaBackend::backward(int unit, const void* params, void* grads) {
  float* gr = static_cast<float*>(grads);
  if (tokens_ == 0) {
    CUDA_CHECK(cudaMemsetAsync(gr, 0, static_cast<size_t>(shape_.unit_params(unit)) * 4, cs()));
    return;
  }
  const bf16* p = static_cast<const bf16*>(params);
  if (shape_.is_embedding(unit)) {
    CUDA_CHECK(cudaMemsetAsync(gr, 0, static_cast<size_t>(shape_.unit_params(unit)) * 4, cs()));
    prof_.begin("embedding", cs());
    cuda::embedding_backward(d_tokens_, dx_.as<float>(), gr, tokens_, shape_.hidden, cs());
    prof_.end(cs());
  } else if (shape_.is_head(unit)) {
    head_backward(p, gr);
  } else {
    block_backward(unit, p, gr);
  }
}

double CudaBackend::end_microbatch() {
  host_token_loss_.assign(static_cast<size_t>(tokens_), 0.f);
  if (tokens_ > 0) {
    CUDA_CHECK(cudaMemcpyAsync(host_token_loss_.data(), token_loss_.as<float>(),
                               static_cast<size_t>(tokens_) * 4, cudaMemcpyDeviceToHost, cs()));
  }
  CUDA_CHECK(cudaStreamSynchronize(cs()));
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  peak_memory_bytes_ = std::max(peak_memory_bytes_, static_cast<int64_t>(total_bytes - free_bytes));
  prof_.collect();
  double total = 0.0;
  sequence_losses_.clear();
  for (size_t s = 0; s + 1 < host_cu_seqlens_.size(); ++s) {
    double sum = 0.0;
    int64_t count = 0;
    for (int32_t i = host_cu_seqlens_[s]; i < host_cu_seqlens_[s + 1]; ++i) {
      const size_t k = static_cast<size_t>(i);
      if (host_targets_[k] < 0) continue;
      sum += host_token_loss_[k];
      total += static_cast<double>(host_weights_[k]) * host_token_loss_[k];
      ++count;
    }
    sequence_losses_.push_back(count > 0 ? sum / static_cast<double>(count) : 0.0);
  }
  return total;
}

void CudaBackend::accumulate_grad(float* acc, const void* g, int64_t n) {
  cuda::add_inplace(acc, static_cast<const float*>(g), n, cs());
}

double CudaBackend::sum_squares(const float* x, int64_t n) {
  cuda::sum_squares(x, n, scalar_.as<double>(), cs());
  double r = 0.0;
  CUDA_CHECK(
      cudaMemcpyAsync(&r, scalar_.as<double>(), sizeof(double), cudaMemcpyDeviceToHost, cs()));
  CUDA_CHECK(cudaStreamSynchronize(cs()));
  return r;
}

void CudaBackend::adamw(float* param, float* m, float* v, const float* grad, int64_t n,
                        const AdamWParams& p, float grad_scale) {
  cuda::AdamWConstants c{};
  c.lr = p.lr;
  c.beta1 = p.beta1;
  c.beta2 = p.beta2;
  c.eps = p.eps;
  c.weight_decay = p.weight_decay;
  c.grad_scale = grad_scale;
  c.bias_correction1 = static_cast<float>(1.0 - std::pow(static_cast<double>(p.beta1), p.step));
  c.bias_correction2 = static_cast<float>(1.0 - std::pow(static_cast<double>(p.beta2), p.step));
  cuda::adamw(param, m, v, grad, n, c, cs());
}

void CudaBackend::fill_zero(void* x, size_t bytes) {
  CUDA_CHECK(cudaMemsetAsync(x, 0, bytes, cs()));
}

}  // namespace

std::unique_ptr<ComputeBackend> make_cuda_backend(const ComputeOptions& opt,
                                                  const ModelShape& shape, int rank,
                                                  int local_rank) {
  return std::make_unique<CudaBackend>(opt, shape, rank, local_rank);
}

int cuda_device_count() { return checked_device_count(); }

}  // namespace minipt
