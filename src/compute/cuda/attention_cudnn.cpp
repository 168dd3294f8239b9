// cuDNN fused attention for packed causal sequences; see attention_cudnn.hpp.
#include "compute/cuda/attention_cudnn.hpp"

#include <stdexcept>
#include <string>

#if MINIPT_HAVE_CUDNN

#include <cudnn.h>
#include <cudnn_frontend.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>
#include <unordered_map>

#include "compute/cuda/cuda_check.hpp"
#include "compute/cuda/kernel_table.hpp"
#include "compute/ragged_batch.hpp"

namespace minipt::cuda {

namespace fe = cudnn_frontend;

namespace {

#define MINIPT_CUDNN_CHECK(expr)                                                        \
  do {                                                                                  \
    const cudnnStatus_t s_ = (expr);                                                    \
    if (s_ != CUDNN_STATUS_SUCCESS)                                                     \
      throw std::runtime_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                               ": cuDNN: " + #expr + ": " + cudnnGetErrorString(s_));   \
  } while (0)

#define MINIPT_CUDNN_FE_CHECK(expr)                                                     \
  do {                                                                                  \
    auto e_ = (expr);                                                                   \
    if (!e_.is_good())                                                                  \
      throw std::runtime_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                               ": cuDNN frontend: " + #expr + ": " + e_.get_message()); \
  } while (0)

// Tensor uids of the variant packs.
enum Uid : int64_t {
  kQ = 1,
  kK,
  kV,
  kO,
  kStats,
  kDO,
  kDQ,
  kDK,
  kDV,
  kSeqLen,
  kOffQkv,
  kOffO,
  kOffStats,
};

struct Key {
  int64_t batch, seq, total, ld_qkv, ld_o;
  bool backward;
  auto tie() const { return std::tie(batch, seq, total, ld_qkv, ld_o, backward); }
  bool operator<(const Key& o) const { return tie() < o.tie(); }
};

}  // namespace

struct CudnnAttention::Impl {
  int heads, kv_heads, head_dim;
  bool exact_shapes = false;
  bool verbose = false;  // MINIPT_CUDA_PROFILE=1: the plans and the choice on stderr
  cudnnHandle_t handle = nullptr;
  struct Built {
    std::shared_ptr<fe::graph::Graph> graph;
    int64_t plan = -1;        // the plan it runs; -1 until its first execution chose one
    uint64_t generation = 0;  // of the kernel table plan was chosen with
  };
  std::map<Key, Built> graphs;
  double build_s = 0;
  // Current microbatch.
  int64_t batch = 0, seq = 0, total = 0, ld_qkv = 0, ld_o = 0;
  std::vector<int32_t> host_ints;  // seq_len[batch], off_qkv, off_o, off_stats [batch+1 each]
  int32_t* dev_ints = nullptr;
  size_t dev_ints_capacity = 0;
  void* workspace = nullptr;
  int64_t workspace_bytes = 0;

  int32_t* seq_len() const { return dev_ints; }
  int32_t* off_qkv() const { return dev_ints + batch; }
  int32_t* off_o() const { return dev_ints + 2 * batch + 1; }
  int32_t* off_stats() const { return dev_ints + 3 * batch + 2; }

  Key key(bool backward_pass) const { return Key{batch, seq, total, ld_qkv, ld_o, backward_pass}; }

  void reserve_workspace(int64_t ws) {
    if (ws <= workspace_bytes) return;
    if (workspace != nullptr) CUDA_CHECK(cudaFree(workspace));
    workspace = nullptr;
    CUDA_CHECK(cudaMalloc(&workspace, static_cast<size_t>(ws)));
    workspace_bytes = ws;
  }

  Built& graph_for(const Key& key) {
    auto it = graphs.find(key);
    if (it != graphs.end()) return it->second;
    const auto t0 = std::chrono::steady_clock::now();
    auto g = build(key);
    build_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // The largest workspace of any plan: the kernel table may name any of them.
    reserve_workspace(g->get_autotune_workspace_size());
    Built b;
    b.graph = g;
    if (verbose)
      std::fprintf(stderr, "cudnn %s graph batch %lld seq %lld total %lld: %lld plans\n",
                   key.backward ? "bwd" : "fwd", static_cast<long long>(key.batch),
                   static_cast<long long>(key.seq), static_cast<long long>(key.total),
                   static_cast<long long>(g->get_execution_plan_count()));
    return graphs.emplace(key, b).first->second;
  }

  // Runs the graph. Its first run (and its first after the kernel table changed) takes the
  // table's plan for the graph (kernel_table.hpp: so every rank, and two attentions of one
  // process given the same shapes, compute the same bits); without one, a recording
  // process times every plan on these tensors, best of two after a warm-up (the passes
  // only write their outputs, so running them again gives the same result), and records
  // the fastest; otherwise the heuristic's first plan (index 0) runs.
  void execute(const Key& key, Built& b, std::unordered_map<int64_t, void*>& vp) {
    if (b.plan < 0 || b.generation != kernel_choices_generation()) {
      b.generation = kernel_choices_generation();
      b.plan = choose_plan(key, b, vp);
    }
    MINIPT_CUDNN_FE_CHECK(b.graph->execute_plan_at_index(handle, vp, workspace, b.plan));
  }

  std::string table_key(const Key& key) const {
    char text[200];
    std::snprintf(
        text, sizeof text, "cudnn %s heads%d,%d d%d batch%lld seq%lld total%lld ld%lld,%lld",
        key.backward ? "bwd" : "fwd", heads, kv_heads, head_dim, static_cast<long long>(key.batch),
        static_cast<long long>(key.seq), static_cast<long long>(key.total),
        static_cast<long long>(key.ld_qkv), static_cast<long long>(key.ld_o));
    return text;
  }

  int64_t choose_plan(const Key& key, Built& b, std::unordered_map<int64_t, void*>& vp) {
    const int64_t n = b.graph->get_execution_plan_count();
    const std::string id = table_key(key);
    if (const std::optional<std::string> known = kernel_choice(id)) {
      char* end = nullptr;
      const long long plan = std::strtoll(known->c_str(), &end, 10);
      if (end != known->c_str() && *end == '\0' && plan >= 0 && plan < n) return plan;
    }
    if (n <= 1 || !kernel_tuning_records()) return 0;
    cudaStream_t stream = nullptr;
    MINIPT_CUDNN_CHECK(cudnnGetStream(handle, &stream));
    cudaEvent_t start = nullptr, stop = nullptr;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    int64_t best = -1;
    float best_ms = 0.f;
    for (int64_t i = 0; i < n; ++i) {
      if (b.graph->execute_plan_at_index(handle, vp, workspace, i).is_bad()) continue;
      float ms = -1.f;
      for (int rep = 0; rep < 2; ++rep) {
        CUDA_CHECK(cudaEventRecord(start, stream));
        MINIPT_CUDNN_FE_CHECK(b.graph->execute_plan_at_index(handle, vp, workspace, i));
        CUDA_CHECK(cudaEventRecord(stop, stream));
        CUDA_CHECK(cudaEventSynchronize(stop));
        float t = 0.f;
        CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
        ms = ms < 0.f ? t : std::min(ms, t);
      }
      if (verbose)
        std::fprintf(stderr, "cudnn %s graph batch %lld seq %lld: plan %lld %.3f ms\n",
                     key.backward ? "bwd" : "fwd", static_cast<long long>(key.batch),
                     static_cast<long long>(key.seq), static_cast<long long>(i), ms);
      if (best < 0 || ms < best_ms) {
        best = i;
        best_ms = ms;
      }
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    if (best < 0) throw std::runtime_error("cudnn attention: no execution plan of the graph runs");
    record_kernel_choice(id, std::to_string(best));
    return best;
  }

  std::shared_ptr<fe::graph::Graph> build(const Key& k) const {
    auto g = std::make_shared<fe::graph::Graph>();
    g->set_io_data_type(fe::DataType_t::BFLOAT16)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
    using TA = fe::graph::Tensor_attributes;
    const int64_t b = k.batch, s = k.seq, d = head_dim, h = heads, hk = kv_heads;
    auto index = [&](const char* name, int64_t uid, int64_t n) {
      return g->tensor(TA().set_name(name)
                           .set_uid(uid)
                           .set_dim({n, 1, 1, 1})
                           .set_stride({1, 1, 1, 1})
                           .set_data_type(fe::DataType_t::INT32));
    };
    auto seq_len = index("seq_len", kSeqLen, b);
    auto off_qkv_t = index("off_qkv", kOffQkv, b + 1);
    auto off_o_t = index("off_o", kOffO, b + 1);
    auto off_st = index("off_stats", kOffStats, b + 1);
    // [batch][heads][seq][dim] views with token stride ld (ragged: the batch stride is
    // replaced by the per-sequence offsets).
    auto rows = [&](TA& t, const char* name, int64_t uid, int64_t nh, int64_t ld,
                    const std::shared_ptr<TA>& off) -> TA& {
      return t.set_name(name)
          .set_uid(uid)
          .set_dim({b, nh, s, d})
          .set_stride({s * ld, d, ld, 1})
          .set_ragged_offset(off);
    };
    auto input = [&](const char* name, int64_t uid, int64_t nh, int64_t ld,
                     const std::shared_ptr<TA>& off) {
      TA t;
      rows(t, name, uid, nh, ld, off);
      return g->tensor(t);
    };
    auto q = input("q", kQ, h, k.ld_qkv, off_qkv_t);
    auto kt = input("k", kK, hk, k.ld_qkv, off_qkv_t);
    auto v = input("v", kV, hk, k.ld_qkv, off_qkv_t);
    // Both passes: scale 1/sqrt(d), per-sequence lengths (padding mask), top-left causal
    // band, packed token totals.
    auto causal_ragged = [&](auto& attr) {
      attr.set_attn_scale(1.0f / std::sqrt(static_cast<float>(d)))
          .set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT)
          .set_diagonal_band_right_bound(0)
          .set_padding_mask(true)
          .set_seq_len_q(seq_len)
          .set_seq_len_kv(seq_len)
          .set_max_total_seq_len_q(k.total)
          .set_max_total_seq_len_kv(k.total);
    };
    if (!k.backward) {
      fe::graph::SDPA_attributes attr;
      causal_ragged(attr.set_name("sdpa_fwd").set_generate_stats(true));
      auto [o, stats] = g->sdpa(q, kt, v, attr);
      o->set_output(true);
      rows(*o, "o", kO, h, k.ld_o, off_o_t);
      stats->set_output(true)
          .set_name("stats")
          .set_uid(kStats)
          .set_data_type(fe::DataType_t::FLOAT)
          .set_dim({b, h, s, 1})
          .set_stride({s * h, 1, h, 1})
          .set_ragged_offset(off_st);
    } else {
      auto o = input("o", kO, h, k.ld_o, off_o_t);
      auto d_o = input("d_o", kDO, h, k.ld_o, off_o_t);
      auto stats = g->tensor(TA().set_name("stats")
                                 .set_uid(kStats)
                                 .set_data_type(fe::DataType_t::FLOAT)
                                 .set_dim({b, h, s, 1})
                                 .set_stride({s * h, 1, h, 1})
                                 .set_ragged_offset(off_st));
      fe::graph::SDPA_backward_attributes attr;
      causal_ragged(attr.set_name("sdpa_bwd"));
      auto [dq, dk, dv] = g->sdpa_backward(q, kt, v, o, d_o, stats, attr);
      dq->set_output(true);
      dk->set_output(true);
      dv->set_output(true);
      rows(*dq, "dq", kDQ, h, k.ld_qkv, off_qkv_t);
      rows(*dk, "dk", kDK, hk, k.ld_qkv, off_qkv_t);
      rows(*dv, "dv", kDV, hk, k.ld_qkv, off_qkv_t);
    }
    MINIPT_CUDNN_FE_CHECK(g->build(handle, {fe::HeurMode_t::A}, fe::BuildPlanPolicy_t::ALL));
    return g;
  }

  // The variant pack entries both passes share.
  std::unordered_map<int64_t, void*> pack(const AttentionArgs& a) const {
    return {{kSeqLen, seq_len()},
            {kOffQkv, off_qkv()},
            {kOffO, off_o()},
            {kOffStats, off_stats()},
            {kQ, const_cast<__nv_bfloat16*>(a.q)},
            {kK, const_cast<__nv_bfloat16*>(a.k)},
            {kV, const_cast<__nv_bfloat16*>(a.v)},
            {kO, a.o},
            {kStats, a.lse2}};
  }
};

bool CudnnAttention::available() { return true; }
long CudnnAttention::library_version() { return static_cast<long>(cudnnGetVersion()); }

CudnnAttention::CudnnAttention(int heads, int kv_heads, int head_dim) : impl_(new Impl) {
  if (heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0 || head_dim % 8 != 0 || head_dim > 256)
    throw std::invalid_argument("cudnn attention: unsupported heads " + std::to_string(heads) +
                                "/" + std::to_string(kv_heads) + " head_dim " +
                                std::to_string(head_dim));
  impl_->heads = heads;
  impl_->kv_heads = kv_heads;
  impl_->head_dim = head_dim;
  const char* exact = std::getenv("MINIPT_CUDNN_EXACT");
  impl_->exact_shapes = exact != nullptr && exact[0] == '1';
  const char* profile = std::getenv("MINIPT_CUDA_PROFILE");
  impl_->verbose = profile != nullptr && profile[0] == '1';
  MINIPT_CUDNN_CHECK(cudnnCreate(&impl_->handle));
}

CudnnAttention::~CudnnAttention() {
  if (impl_->dev_ints != nullptr) cudaFree(impl_->dev_ints);
  if (impl_->workspace != nullptr) cudaFree(impl_->workspace);
  impl_->graphs.clear();
  if (impl_->handle != nullptr) cudnnDestroy(impl_->handle);
}

void CudnnAttention::set_sequences(const std::vector<int32_t>& cu_seqlens, int64_t ld_qkv,
                                   int64_t ld_o, cudaStream_t stream) {
  Impl& m = *impl_;
  const RaggedBatch r = make_ragged_batch(cu_seqlens, ld_qkv, ld_o, m.heads, m.exact_shapes);
  m.batch = r.batch;
  m.seq = r.seq;
  m.total = r.total;
  m.ld_qkv = ld_qkv;
  m.ld_o = ld_o;
  // One upload: seq_len | off_qkv | off_o | off_stats (the accessors' layout).
  m.host_ints = r.seq_len;
  for (const auto* v : {&r.off_qkv, &r.off_o, &r.off_stats})
    m.host_ints.insert(m.host_ints.end(), v->begin(), v->end());
  CUDA_CHECK(cudaStreamSynchronize(stream));  // earlier work may still read dev_ints
  const size_t bytes = m.host_ints.size() * sizeof(int32_t);
  if (bytes > m.dev_ints_capacity) {
    if (m.dev_ints != nullptr) CUDA_CHECK(cudaFree(m.dev_ints));
    m.dev_ints = nullptr;
    CUDA_CHECK(cudaMalloc(&m.dev_ints, bytes));
    m.dev_ints_capacity = bytes;
  }
  CUDA_CHECK(
      cudaMemcpyAsync(m.dev_ints, m.host_ints.data(), bytes, cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void CudnnAttention::prepare(const std::vector<int32_t>& cu_seqlens, int64_t ld_qkv, int64_t ld_o) {
  Impl& m = *impl_;
  const RaggedBatch r = make_ragged_batch(cu_seqlens, ld_qkv, ld_o, m.heads, m.exact_shapes);
  for (const bool backward_pass : {false, true})
    m.graph_for(Key{r.batch, r.seq, r.total, ld_qkv, ld_o, backward_pass});
}

void CudnnAttention::forward(const AttentionArgs& a, cudaStream_t stream) {
  Impl& m = *impl_;
  if (a.ld_qkv != m.ld_qkv || a.ld_o != m.ld_o)
    throw std::invalid_argument("cudnn attention: leading dimensions differ from set_sequences");
  const Key key = m.key(false);
  Impl::Built& g = m.graph_for(key);
  auto vp = m.pack(a);
  MINIPT_CUDNN_CHECK(cudnnSetStream(m.handle, stream));
  m.execute(key, g, vp);
}

void CudnnAttention::backward(const AttentionArgs& a, const AttentionGradArgs& gr,
                              cudaStream_t stream) {
  Impl& m = *impl_;
  if (a.ld_qkv != m.ld_qkv || a.ld_o != m.ld_o)
    throw std::invalid_argument("cudnn attention: leading dimensions differ from set_sequences");
  if (gr.dq == a.q || gr.dk == a.k || gr.dv == a.v)
    throw std::invalid_argument("cudnn attention: gradients must not alias q, k, v");
  const Key key = m.key(true);
  Impl::Built& g = m.graph_for(key);
  auto vp = m.pack(a);
  vp[kDO] = const_cast<__nv_bfloat16*>(gr.d_o);
  vp[kDQ] = gr.dq;
  vp[kDK] = gr.dk;
  vp[kDV] = gr.dv;
  MINIPT_CUDNN_CHECK(cudnnSetStream(m.handle, stream));
  m.execute(key, g, vp);
}

double CudnnAttention::build_seconds() const { return impl_->build_s; }
int CudnnAttention::graphs_built() const { return static_cast<int>(impl_->graphs.size()); }

}  // namespace minipt::cuda

#else  // !MINIPT_HAVE_CUDNN

namespace minipt::cuda {

struct CudnnAttention::Impl {};

namespace {
[[noreturn]] void not_built() {
  throw std::runtime_error(
      "cudnn attention: this build has no cuDNN (configure with cuDNN and the cuDNN frontend "
      "headers: run/deps.sh fetches them into .deps/)");
}
}  // namespace

// No object can exist (the constructor throws), so the members below are never reached.
bool CudnnAttention::available() { return false; }
long CudnnAttention::library_version() { return 0; }
CudnnAttention::CudnnAttention(int, int, int) { not_built(); }
CudnnAttention::~CudnnAttention() = default;
void CudnnAttention::set_sequences(const std::vector<int32_t>&, int64_t, int64_t, cudaStream_t) {
  not_built();
}
void CudnnAttention::prepare(const std::vector<int32_t>&, int64_t, int64_t) { not_built(); }
void CudnnAttention::forward(const AttentionArgs&, cudaStream_t) { not_built(); }
void CudnnAttention::backward(const AttentionArgs&, const AttentionGradArgs&, cudaStream_t) {
  not_built();
}
double CudnnAttention::build_seconds() const { not_built(); }
int CudnnAttention::graphs_built() const { not_built(); }

}  // namespace minipt::cuda

#endif
