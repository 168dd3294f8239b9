// GPU one-sided transports (CUDA IPC, deterministic IPC, host-staged MPI RMA, and
// ipc+staged over declared nodes of half the ranks): get() against the owner's params
// converted on the host (fp32 exactly, bf16 rounded to nearest even, aligned and unaligned
// ranges), accumulate() from every rank into every owner against host sums, slot clearing
// across two steps, and publish_params().
#include <algorithm>
#include <functional>
#include <memory>
#include <random>

#include "comm/cuda/gpu_transports.hpp"
#include "gpu_test.hpp"

namespace minipt::gputest {
namespace {

using Factory = std::function<std::unique_ptr<OneSided>(Env&)>;

// Elements per rank: odd, so that vector paths get a tail; the aligned variants of some
// tests set a multiple of 4 for the duration of the test.
int64_t g_count = 100003;

// Runs `fn` with g_count = count.
void with_count(int64_t count, const std::function<void()>& fn) {
  const int64_t saved = g_count;
  g_count = count;
  try {
    fn();
  } catch (...) {
    g_count = saved;
    throw;
  }
  g_count = saved;
}

struct Exposed {
  std::unique_ptr<OneSided> transport;
  float* allocation = nullptr;
  float* params = nullptr;
  float* grads = nullptr;
  std::vector<float> all_params;  // every rank's params, rank-major
  Exposed() = default;
  Exposed(const Exposed&) = delete;
  Exposed& operator=(const Exposed&) = delete;
  ~Exposed() {
    transport.reset();  // collective; before the memory it maps goes away
    cudaFree(allocation);
  }
};

std::vector<float> random_params(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(g_count));
  for (auto& x : v) x = dist(rng);
  return v;
}

// Params and grads share one allocation (as a pooled allocator would place them), at
// offsets from its start, as sub-allocations are.
void expose(Env& env, const Factory& factory, Exposed& ex) {
  const std::vector<float> mine = random_params(env.seed * 31 + static_cast<uint64_t>(env.rank));
  ex.all_params.resize(static_cast<size_t>(g_count * env.size));
  MPI_Allgather(mine.data(), static_cast<int>(g_count), MPI_FLOAT, ex.all_params.data(),
                static_cast<int>(g_count), MPI_FLOAT, env.comm);
  GPU_TEST_CUDA(cudaMalloc(&ex.allocation, static_cast<size_t>(2 * g_count + 64) * 4));
  ex.params = ex.allocation + 4;
  ex.grads = ex.params + g_count + 8;
  GPU_TEST_CUDA(cudaMemcpy(ex.params, mine.data(), mine.size() * 4, cudaMemcpyHostToDevice));
  GPU_TEST_CUDA(cudaMemset(ex.grads, 0, static_cast<size_t>(g_count) * 4));
  ex.transport = factory(env);
  ex.transport->expose(ex.params, ex.grads, g_count);
}

void get_test(Env& env, const Factory& factory) {
  Exposed ex;
  expose(env, factory, ex);
  struct Range {
    int64_t offset, n, dst_shift;
  };
  const Range ranges[] = {{0, g_count, 0},     {1, 77, 1}, {4, g_count - 4, 0},
                          {g_count - 3, 3, 0}, {5, 0, 0},  {12, 4096, 3}};
  char* dst = nullptr;
  GPU_TEST_CUDA(cudaMalloc(&dst, static_cast<size_t>(g_count + 16) * 4));
  for (int owner = 0; owner < env.size; ++owner) {
    for (const Range& range : ranges) {
      for (DType dtype : {DType::f32, DType::bf16}) {
        const size_t elem = dtype_size(dtype);
        GPU_TEST_CUDA(
            cudaMemsetAsync(dst, 0xff, static_cast<size_t>(g_count + 16) * 4, env.compute));
        char* out = dst + static_cast<size_t>(range.dst_shift) * elem;
        Request r = ex.transport->get(owner, range.offset, range.n, out, dtype);
        ex.transport->wait(r);
        const std::vector<char> got =
            to_host(out, static_cast<size_t>(range.n) * elem, env.compute);
        const float* src = ex.all_params.data() + owner * g_count + range.offset;
        size_t wrong = 0;
        for (int64_t i = 0; i < range.n; ++i) {
          if (dtype == DType::f32) {
            wrong += std::memcmp(got.data() + i * 4, src + i, 4) != 0;
          } else {
            const uint16_t expect = bf16_bits(src[i]);
            wrong += std::memcmp(got.data() + i * 2, &expect, 2) != 0;
          }
        }
        env.check(wrong == 0, "get owner " + std::to_string(owner) + " [" +
                                  std::to_string(range.offset) + ", +" + std::to_string(range.n) +
                                  ") " + (dtype == DType::f32 ? "f32" : "bf16") + ": " +
                                  std::to_string(wrong) + " wrong");
      }
    }
  }
  cudaFree(dst);
  ex.transport->flush();
  MPI_Barrier(env.comm);
}

// What client `client` adds into owner `owner`: a bf16 gradient over the whole shard,
// then an fp32 one over [kF32Offset, +kF32Count) (unaligned on purpose). Integer
// values for the atomic transports (exact in any order), general floats for the
// deterministic one (checked bit for bit against the rank-order sum).
constexpr int64_t kF32Offset = 3;
constexpr int64_t kF32Count = 50001;

struct Contribution {
  std::vector<uint16_t> bf16;
  std::vector<float> f32;
};

Contribution contribution(uint64_t seed, int client, int owner, bool integers) {
  std::mt19937_64 rng(seed * 7919 + static_cast<uint64_t>(client * 1000 + owner));
  std::uniform_int_distribution<int> ints(-16, 16);
  std::normal_distribution<float> floats(0.0f, 1.0f);
  auto draw = [&] { return integers ? static_cast<float>(ints(rng)) : floats(rng); };
  Contribution c;
  c.bf16.resize(static_cast<size_t>(g_count));
  for (auto& x : c.bf16) x = bf16_bits(draw());
  c.f32.resize(static_cast<size_t>(kF32Count));
  for (auto& x : c.f32) x = draw();
  return c;
}

// The owner's grads after all ranks' contributions, added as the device does: each
// client's contributions in issue order, then clients in rank order.
std::vector<float> expected_grads(uint64_t seed, int owner, int world, bool integers) {
  std::vector<float> sum(static_cast<size_t>(g_count), 0.0f);
  for (int client = 0; client < world; ++client) {
    const Contribution c = contribution(seed, client, owner, integers);
    for (int64_t i = 0; i < g_count; ++i) {
      float slot = 0.0f + bf16_to_float(c.bf16[static_cast<size_t>(i)]);
      if (i >= kF32Offset && i < kF32Offset + kF32Count)
        slot += c.f32[static_cast<size_t>(i - kF32Offset)];
      sum[static_cast<size_t>(i)] += slot;
    }
  }
  return sum;
}

void accumulate_test(Env& env, const Factory& factory, bool integers) {
  Exposed ex;
  expose(env, factory, ex);
  float* grads = ex.grads;
  std::vector<std::pair<uint16_t*, float*>> sources;
  for (int owner = 0; owner < env.size; ++owner) {
    const Contribution c = contribution(env.seed, env.rank, owner, integers);
    sources.emplace_back(to_device(c.bf16), to_device(c.f32));
  }
  const std::vector<float> once = expected_grads(env.seed, env.rank, env.size, integers);
  for (int step = 1; step <= 2; ++step) {
    // Every rank pushes into every owner, starting at a different owner each.
    for (int k = 0; k < env.size; ++k) {
      const int owner = (env.rank + k) % env.size;
      const auto& [bf16, f32] = sources[static_cast<size_t>(owner)];
      ex.transport->wait(ex.transport->accumulate(owner, 0, g_count, bf16, DType::bf16));
      ex.transport->wait(ex.transport->accumulate(owner, kF32Offset, kF32Count, f32, DType::f32));
    }
    ex.transport->flush();
    MPI_Barrier(env.comm);
    ex.transport->reduce_slots();
    const std::vector<float> got = to_host(grads, static_cast<size_t>(g_count), env.compute);
    MPI_Barrier(env.comm);  // the trainer's second barrier: slots are clear again
    size_t wrong = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      // Step 2 adds the same sum again: exactly twice step 1's result.
      const float expect = static_cast<float>(step) * once[i];
      wrong += std::memcmp(&got[i], &expect, 4) != 0;
    }
    env.check(wrong == 0, "step " + std::to_string(step) + ": " + std::to_string(wrong) + " of " +
                              std::to_string(got.size()) + " grads differ");
  }
  for (auto& [bf16, f32] : sources) {
    cudaFree(bf16);
    cudaFree(f32);
  }
}

// The owner rewrites its params and publishes them; every rank then reads the new ones,
// in fp32 and in bf16.
void publish_test(Env& env, const Factory& factory) {
  Exposed ex;
  expose(env, factory, ex);
  std::vector<float> updated(ex.all_params.begin() + env.rank * g_count,
                             ex.all_params.begin() + (env.rank + 1) * g_count);
  for (auto& x : updated) x = 2.0f * x + 1.0f;
  GPU_TEST_CUDA(cudaMemcpyAsync(ex.params, updated.data(), updated.size() * 4,
                                cudaMemcpyHostToDevice, env.compute));
  ex.transport->publish_params();
  GPU_TEST_CUDA(cudaStreamSynchronize(env.compute));
  MPI_Barrier(env.comm);
  char* dst = nullptr;
  GPU_TEST_CUDA(cudaMalloc(&dst, static_cast<size_t>(g_count) * 4));
  for (int owner = 0; owner < env.size; ++owner) {
    for (DType dtype : {DType::f32, DType::bf16}) {
      const size_t elem = dtype_size(dtype);
      ex.transport->wait(ex.transport->get(owner, 0, g_count, dst, dtype));
      const std::vector<char> got = to_host(dst, static_cast<size_t>(g_count) * elem, env.compute);
      size_t wrong = 0;
      for (int64_t i = 0; i < g_count; ++i) {
        const float expect = 2.0f * ex.all_params[static_cast<size_t>(owner * g_count + i)] + 1.0f;
        if (dtype == DType::f32) {
          wrong += std::memcmp(got.data() + i * 4, &expect, 4) != 0;
        } else {
          const uint16_t bits = bf16_bits(expect);
          wrong += std::memcmp(got.data() + i * 2, &bits, 2) != 0;
        }
      }
      env.check(wrong == 0, "owner " + std::to_string(owner) + " " +
                                (dtype == DType::f32 ? "f32" : "bf16") + ": " +
                                std::to_string(wrong) + " stale params after publish");
    }
  }
  cudaFree(dst);
  ex.transport->flush();
  MPI_Barrier(env.comm);
}

}  // namespace
}  // namespace minipt::gputest

int main(int argc, char** argv) {
  using namespace minipt;
  using namespace minipt::gputest;
  const Factory ipc = [](Env& e) {
    return make_ipc_onesided(e.comm, e.compute, e.pull, e.push, false);
  };
  const Factory ipc_kernel_f32 = [](Env& e) {
    IpcTuning tuning;
    tuning.f32_get_by_copy_engine = false;
    tuning.blocks = 3;  // few blocks: every thread loops over many elements
    return make_ipc_onesided(e.comm, e.compute, e.pull, e.push, false, tuning);
  };
  const Factory ipc_bf16_mirror = [](Env& e) {
    IpcTuning tuning;
    tuning.bf16_param_mirror = true;
    return make_ipc_onesided(e.comm, e.compute, e.pull, e.push, false, tuning);
  };
  const Factory ipc_deterministic = [](Env& e) {
    return make_ipc_onesided(e.comm, e.compute, e.pull, e.push, true);
  };
  const Factory staged = [](Env& e) {
    return make_staged_onesided(e.comm, e.compute, e.pull, e.push);
  };
  // Chunks much smaller than a shard: the double-buffered pipelines run many rounds.
  const Factory staged_small_chunks = [](Env& e) {
    return make_staged_onesided(e.comm, e.compute, e.pull, e.push, 4099);
  };
  // ipc+staged over nodes of half the ranks (declared): the node's peers through IPC, the
  // others host-staged (2 ranks: every peer is on the other node).
  const auto half_the_ranks = [](Env& e) {
    int size = 1;
    MPI_Comm_size(e.comm, &size);
    return std::max(size / 2, 1);
  };
  const Factory node_aware = [&](Env& e) {
    return make_node_aware_onesided(e.comm, e.comm, half_the_ranks(e), e.compute, e.pull, e.push,
                                    false);
  };
  const Factory node_aware_mirror = [&](Env& e) {  // the tuning the trainer uses
    IpcTuning tuning;
    tuning.bf16_param_mirror = true;
    tuning.bf16_get_by_kernel = true;
    return make_node_aware_onesided(e.comm, e.comm, half_the_ranks(e), e.compute, e.pull, e.push,
                                    false, tuning);
  };
  return run_tests(
      argc, argv,
      {{"ipc.get", [&](Env& e) { get_test(e, ipc); }},
       {"ipc.accumulate", [&](Env& e) { accumulate_test(e, ipc, true); }},
       {"ipc.publish", [&](Env& e) { publish_test(e, ipc); }},
       {"ipc_kernel_f32.get", [&](Env& e) { get_test(e, ipc_kernel_f32); }},
       {"ipc_kernel_f32.accumulate", [&](Env& e) { accumulate_test(e, ipc_kernel_f32, true); }},
       {"ipc_bf16_mirror.get", [&](Env& e) { get_test(e, ipc_bf16_mirror); }},
       {"ipc_bf16_mirror.publish", [&](Env& e) { publish_test(e, ipc_bf16_mirror); }},
       {"ipc_deterministic.get", [&](Env& e) { get_test(e, ipc_deterministic); }},
       {"ipc_deterministic.accumulate",
        [&](Env& e) { accumulate_test(e, ipc_deterministic, false); }},
       {"ipc_deterministic.accumulate_aligned",
        [&](Env& e) { with_count(100000, [&] { accumulate_test(e, ipc_deterministic, false); }); }},
       {"ipc.accumulate_aligned",
        [&](Env& e) { with_count(100000, [&] { accumulate_test(e, ipc, true); }); }},
       {"staged.get", [&](Env& e) { get_test(e, staged); }},
       {"staged.accumulate", [&](Env& e) { accumulate_test(e, staged, true); }},
       {"staged.publish", [&](Env& e) { publish_test(e, staged); }},
       {"staged_small_chunks.get", [&](Env& e) { get_test(e, staged_small_chunks); }},
       {"staged_small_chunks.accumulate",
        [&](Env& e) { accumulate_test(e, staged_small_chunks, true); }},
       {"node_aware.get", [&](Env& e) { get_test(e, node_aware); }},
       {"node_aware.accumulate", [&](Env& e) { accumulate_test(e, node_aware, true); }},
       {"node_aware.publish", [&](Env& e) { publish_test(e, node_aware); }},
       {"node_aware_mirror.get", [&](Env& e) { get_test(e, node_aware_mirror); }},
       {"node_aware_mirror.publish", [&](Env& e) { publish_test(e, node_aware_mirror); }}},
      /*share_gpus=*/true);
}
