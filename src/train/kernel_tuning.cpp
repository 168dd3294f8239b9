#include "train/kernel_tuning.hpp"

#include <bit>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.hpp"
#include "trace/atomic_file.hpp"
#include "train/step_input.hpp"

namespace minipt {

namespace {

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void broadcast_text(MPI_Comm comm, std::string& text) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  uint64_t n = text.size();
  MPI_Bcast(&n, 1, MPI_UINT64_T, 0, comm);
  if (rank != 0) text.assign(n, '\0');
  for (uint64_t at = 0; at < n;) {  // in chunks an int counts
    const int part = static_cast<int>(std::min<uint64_t>(n - at, uint64_t{1} << 30));
    MPI_Bcast(text.data() + at, part, MPI_CHAR, 0, comm);
    at += static_cast<uint64_t>(part);
  }
}

// One forward and backward of `mb` through every unit on scratch parameters and
// gradients, as a step runs it but without communication.
void run_scratch_microbatch(ComputeBackend& b, const ShardLayout& layout,
                            const MicrobatchData& mb) {
  int64_t most = 0;
  for (int u = 0; u < layout.num_units(); ++u) most = std::max(most, layout.unit(u).padded);
  const auto elements = static_cast<size_t>(most);
  constexpr int64_t kChunk = int64_t{1} << 22;  // fp32 staging of the initial values
  void* params = b.allocate(elements * dtype_size(b.param_dtype()));
  void* grads = b.allocate(elements * dtype_size(b.grad_dtype()));
  auto* staging = static_cast<float*>(b.allocate(static_cast<size_t>(kChunk) * sizeof(float)));
  auto load = [&](int u) {  // the unit's initial values, so the kernels see real data
    const int64_t n = layout.unit(u).numel;
    for (int64_t at = 0; at < n; at += kChunk) {
      const int64_t k = std::min(kChunk, n - at);
      b.init_params(u, at, k, staging);
      b.cast_params(
          staging,
          static_cast<char*>(params) + at * static_cast<int64_t>(dtype_size(b.param_dtype())), k);
    }
  };
  try {
    b.begin_microbatch(mb);
    for (int u = 0; u < layout.num_units(); ++u) {
      load(u);
      b.forward(u, params);
    }
    for (int u = layout.num_units() - 1; u >= 0; --u) {
      load(u);
      if (b.recompute_needed(u)) b.recompute(u, params);
      b.backward(u, params, grads);
    }
    b.end_microbatch();
  } catch (...) {
    b.deallocate(staging);
    b.deallocate(grads);
    b.deallocate(params);
    throw;
  }
  b.deallocate(staging);
  b.deallocate(grads);
  b.deallocate(params);
}

}  // namespace

std::string KernelTuning::text() const {
  if (!active) return "none";
  std::string out = setting + " " + hash + " (" + std::to_string(choices) + " choices";
  if (kind == TuningSetting::Kind::automatic)
    out += ", " + std::to_string(timed) + " timed in this run; cache " + cache;
  return out + ")";
}

std::vector<MicrobatchRef> tuning_microbatches(int steps,
                                               const std::function<StepPlan(int)>& plan_of) {
  std::map<uint64_t, MicrobatchRef> best;
  for (int s = 0; s < steps; ++s) {
    const StepPlan plan = plan_of(s);
    for (size_t r = 0; r < plan.ranks.size(); ++r) {
      const auto& mbs = plan.ranks[r].microbatches;
      for (size_t j = 0; j < mbs.size(); ++j) {
        const int64_t t = mbs[j].tokens;
        if (t <= 0 || mbs[j].sequences.empty()) continue;
        const uint64_t bucket = std::bit_ceil(static_cast<uint64_t>(t));
        auto [it, fresh] = best.try_emplace(bucket);
        if (fresh || t > it->second.tokens)
          it->second = {s, static_cast<int>(r), static_cast<int>(j), t};
      }
    }
  }
  std::vector<MicrobatchRef> out;
  for (const auto& [bucket, ref] : best) out.push_back(ref);
  return out;
}

std::vector<MicrobatchRef> tuning_microbatches(const std::vector<StepPlan>& plans) {
  return tuning_microbatches(static_cast<int>(plans.size()),
                             [&plans](int s) { return plans[static_cast<size_t>(s)]; });
}

KernelTuning tune_kernels(const Config& cfg, ComputeBackend& backend, MPI_Comm comm,
                          const ShardLayout& layout, int steps,
                          const std::function<StepPlan(int)>& plan_of) {
  KernelTuning t;
  const std::string identity = backend.tuning_identity();
  if (identity.empty()) return t;
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  const TuningSetting& setting = cfg.compute.tuning;
  t.active = true;
  t.kind = setting.kind;
  t.setting = setting.text();
  KernelChoices choices;
  choices.identity = identity;
  if (setting.kind == TuningSetting::Kind::file) {
    if (cfg.tuning_choices == nullptr)  // `run` parses it with the configuration
      throw ConfigError("compute.tuning", setting.path + ": the tuning file was not read");
    choices = *cfg.tuning_choices;
    if (choices.identity != identity)
      throw ConfigError("compute.tuning",
                        setting.path + ": made for '" + choices.identity + "', but rank " +
                            std::to_string(rank) + " runs on '" + identity +
                            "' (allowed: a tuning file made with this device and these "
                            "libraries, \"auto\" or \"off\")");
  } else if (setting.kind == TuningSetting::Kind::automatic) {
    std::string wire;
    if (rank == 0) {
      t.cache = tuning_cache_path(identity);
      KernelChoices cached;
      cached.identity = identity;
      if (std::filesystem::is_regular_file(t.cache)) {
        try {
          KernelChoices read =
              KernelChoices::from_json(read_whole(t.cache), t.cache, "compute.tuning");
          if (read.identity == identity) cached = std::move(read);
        } catch (const ConfigError& e) {
          std::fprintf(stderr, "minipt: tuning cache ignored and rewritten: %s\n", e.what());
        }
      }
      backend.use_kernel_choices(cached, /*record=*/true);
      for (const MicrobatchRef& ref : tuning_microbatches(steps, plan_of)) {
        std::vector<SequenceRecord> unused;
        const StepInput in = load_step_input(cfg, ref.step, plan_of(ref.step), ref.rank, unused);
        run_scratch_microbatch(backend, layout, in.data[static_cast<size_t>(ref.microbatch)]);
      }
      choices = backend.kernel_choices();
      t.timed = static_cast<int64_t>(choices.entries.size() - cached.entries.size());
      if (t.timed > 0) {
        try {
          std::filesystem::create_directories(std::filesystem::path(t.cache).parent_path());
          write_file_atomically(t.cache, choices.to_json());
        } catch (const std::exception& e) {
          std::fprintf(stderr, "minipt: tuning cache not written (the run goes on): %s\n",
                       e.what());
        }
      }
      wire = choices.to_json();
    }
    broadcast_text(comm, wire);
    int64_t timed = t.timed;
    MPI_Bcast(&timed, 1, MPI_INT64_T, 0, comm);
    t.timed = timed;
    if (rank != 0) {
      choices = KernelChoices::from_json(wire, "rank 0's tuning", "compute.tuning");
      if (choices.identity != identity)
        throw ConfigError("compute.tuning", "rank " + std::to_string(rank) + " runs on '" +
                                                identity + "', rank 0 on '" + choices.identity +
                                                "': auto tuning needs the same device and "
                                                "libraries on every rank (allowed here: \"off\")");
    }
    broadcast_text(comm, t.cache);
  }
  backend.use_kernel_choices(choices, /*record=*/false);
  t.hash = choices.hash();
  t.choices = static_cast<int64_t>(choices.entries.size());
  return t;
}

}  // namespace minipt
