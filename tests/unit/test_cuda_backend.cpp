// Host-side checks of the CUDA backend that run without a GPU (CI): the attention work
// plan, the factory's errors, and registration. The GPU checks live in tests/gpu.
#ifdef MINIPT_HAVE_CUDA

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

#include "compute/backend.hpp"
#include "compute/cuda/attention.hpp"
#include "compute/cuda/cuda_backend.hpp"
#include "core/error.hpp"

namespace minipt {
namespace {

// Every (sequence, block) pair appears once, for forward and backward, heaviest first.
TEST(CudaAttentionPlan, CoversEveryBlockOnceHeaviestFirst) {
  const std::vector<int32_t> cu{0, 1, 129, 130, 700, 4796};
  for (int variant : {1, 2}) {
    cuda::set_attention_backward_variant(variant);
    const int kb = cuda::attention_backward_key_block();
    const cuda::AttentionWork w = cuda::plan_attention_work(cu);
    std::set<std::pair<int, int>> fwd, bwd;
    for (size_t i = 0; i < w.forward.size(); i += 2) fwd.insert({w.forward[i], w.forward[i + 1]});
    for (size_t i = 0; i < w.backward.size(); i += 2)
      bwd.insert({w.backward[i], w.backward[i + 1]});
    size_t expect_fwd = 0, expect_bwd = 0;
    for (size_t s = 0; s + 1 < cu.size(); ++s) {
      const int len = cu[s + 1] - cu[s];
      expect_fwd += static_cast<size_t>((len + cuda::kAttnFwdBlockM - 1) / cuda::kAttnFwdBlockM);
      expect_bwd += static_cast<size_t>((len + kb - 1) / kb);
    }
    EXPECT_EQ(fwd.size(), expect_fwd);
    EXPECT_EQ(w.forward.size() / 2, expect_fwd);
    EXPECT_EQ(bwd.size(), expect_bwd);
    EXPECT_EQ(w.backward.size() / 2, expect_bwd);
    // Forward work of (s, b) is b + 1 tiles: non-increasing along the list.
    for (size_t i = 2; i < w.forward.size(); i += 2) EXPECT_GE(w.forward[i - 1], w.forward[i + 1]);
    // Backward work is the number of queries at or after the block.
    auto bwd_work = [&](size_t i) {
      return cu[w.backward[i] + 1] - cu[w.backward[i]] - w.backward[i + 1] * kb;
    };
    for (size_t i = 2; i < w.backward.size(); i += 2) EXPECT_GE(bwd_work(i - 2), bwd_work(i));
  }
  cuda::set_attention_backward_variant(2);
}

TEST(CudaAttentionPlan, StatisticsRowsArePaddedPastTheLastTile) {
  for (int64_t t : {1, 127, 128, 129, 65536}) {
    EXPECT_GE(cuda::attention_stat_ld(t), t + 64);
    EXPECT_EQ(cuda::attention_stat_ld(t) % 128, 0);
  }
}

TEST(CudaBackend, IsRegistered) {
  const auto names = available_backends();
  EXPECT_NE(std::find(names.begin(), names.end(), "cuda"), names.end());
}

TEST(CudaBackend, RejectsUnsupportedHeadDim) {
  ModelShape s;
  s.hidden = 96;
  s.heads = 2;  // head_dim 48
  s.kv_heads = 1;
  ComputeOptions opt;
  opt.backend = "cuda";
  EXPECT_THROW(make_cuda_backend(opt, s, 0, 0), ConfigError);
}

TEST(CudaBackend, WithoutDeviceFailsWithAClearMessage) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  ComputeOptions opt;
  opt.backend = "cuda";
  try {
    make_backend(opt, ModelShape{}, 0, 0);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace minipt

#endif  // MINIPT_HAVE_CUDA
