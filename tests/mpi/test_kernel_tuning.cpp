// compute.tuning: one set of kernel choices per job, the same on every rank and from one
// run to the next. A test backend (one registry row, registered here) wraps the emulated
// backend and "tunes" like a GPU backend does: a recording rank that meets an untuned
// microbatch shape picks a choice of its own (its rank and process id, as different as
// per-process timing is). The job must end with rank 0's choices on every rank, one per
// token bucket of the run's microbatches; auto must write them to the cache and a second
// run must take them from there unchanged; a tuning file must be used as it is, and one
// made for another device refused naming compute.tuning. Runs at 1, 2 and 4 ranks.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <bit>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>

#include "compute/backend.hpp"
#include "config/config.hpp"
#include "core/error.hpp"
#include "tiny_job.hpp"
#include "train/kernel_tuning.hpp"
#include "train/trainer.hpp"

namespace minipt {
namespace {

class TunableBackend final : public ComputeBackend {
 public:
  TunableBackend(std::unique_ptr<ComputeBackend> inner, int rank)
      : inner_(std::move(inner)), rank_(rank) {}
  std::string name() const override { return "tunable"; }
  std::string device_name() const override { return "test device"; }
  MemorySpace memory() const override { return inner_->memory(); }
  TimeSource& time_source() override { return inner_->time_source(); }
  void* allocate(size_t bytes) override { return inner_->allocate(bytes); }
  void deallocate(void* p) override { inner_->deallocate(p); }
  void copy_to_host(void* d, const void* s, size_t n) override { inner_->copy_to_host(d, s, n); }
  void copy_from_host(void* d, const void* s, size_t n) override {
    inner_->copy_from_host(d, s, n);
  }
  void fill_zero(void* x, size_t bytes) override { inner_->fill_zero(x, bytes); }
  DType param_dtype() const override { return inner_->param_dtype(); }
  DType grad_dtype() const override { return inner_->grad_dtype(); }
  void init_params(int u, int64_t b, int64_t n, float* s) override {
    inner_->init_params(u, b, n, s);
  }
  void cast_params(const float* s, void* d, int64_t n) override { inner_->cast_params(s, d, n); }
  void begin_microbatch(const MicrobatchData& mb) override {
    tokens_ = mb.num_tokens();
    inner_->begin_microbatch(mb);
  }
  void forward(int unit, const void* params) override {
    // The "kernel" of this shape: its choice, timed (here: made up) when there is none.
    const std::string key = "unit " + std::to_string(unit) + " bucket " +
                            std::to_string(std::bit_ceil(static_cast<uint64_t>(tokens_)));
    if (choices_.entries.count(key) == 0) {
      EXPECT_TRUE(record_) << "rank " << rank_ << " met an untuned shape after tuning: " << key;
      choices_.entries[key] = "rank " + std::to_string(rank_) + " pid " + std::to_string(getpid());
    }
    used_.insert(key);
    inner_->forward(unit, params);
  }
  bool recompute_needed(int unit) const override { return inner_->recompute_needed(unit); }
  int recomputed_blocks() const override { return inner_->recomputed_blocks(); }
  void recompute(int unit, const void* params) override { inner_->recompute(unit, params); }
  void backward(int unit, const void* p, void* g) override { inner_->backward(unit, p, g); }
  double end_microbatch() override { return inner_->end_microbatch(); }
  std::vector<double> sequence_losses() const override { return inner_->sequence_losses(); }
  void accumulate_grad(float* acc, const void* g, int64_t n) override {
    inner_->accumulate_grad(acc, g, n);
  }
  double sum_squares(const float* x, int64_t n) override { return inner_->sum_squares(x, n); }
  void adamw(float* param, float* m, float* v, const float* grad, int64_t n, const AdamWParams& p,
             float scale) override {
    inner_->adamw(param, m, v, grad, n, p, scale);
  }
  std::string tuning_identity() const override { return identity(); }
  void use_kernel_choices(const KernelChoices& c, bool record) override {
    choices_.entries = c.entries;
    record_ = record;
  }
  KernelChoices kernel_choices() const override { return {identity(), choices_.entries}; }

  static std::string identity() {
    const char* id = std::getenv("TEST_TUNING_IDENTITY");
    return id != nullptr ? id : "test device; lib 1";
  }
  const std::set<std::string>& used() const { return used_; }

 private:
  std::unique_ptr<ComputeBackend> inner_;
  int rank_ = 0;
  int64_t tokens_ = 0;
  bool record_ = true;
  KernelChoices choices_;
  std::set<std::string> used_;
};

const bool kRegistered = [] {
  compute_backends().add(
      {.name = "tunable",
       .description = "test only: the emulated backend with per-process kernel choices",
       .models_time = true,
       .factory = [](const ComputeOptions& opt, const ModelShape& shape, int rank, int local) {
         ComputeOptions inner = opt;
         inner.backend = "emulated";
         return std::unique_ptr<ComputeBackend>(
             std::make_unique<TunableBackend>(compute_backends()
                                                  .at("emulated", "compute.backend")
                                                  .factory(inner, shape, rank, local),
                                              rank));
       }});
  return true;
}();

std::string scratch_dir() {
  // One directory for the job: rank 0 names it, every rank uses it.
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::string dir;
  if (rank == 0) {
    dir = (std::filesystem::temp_directory_path() / ("minipt_tuning_" + std::to_string(getpid())))
              .string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  int n = static_cast<int>(dir.size());
  MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
  dir.resize(static_cast<size_t>(n));
  MPI_Bcast(dir.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD);
  return dir;
}

Config config(const std::string& mode, const std::string& tuning) {
  std::vector<std::string> sets = test::tiny_job_overrides();
  sets.insert(sets.end(), {"compute.backend=tunable", "run.mode=" + mode,
                           "balance.scheme=" + std::string(mode == "odc" ? "mini" : "micro"),
                           "run.steps=3", "compute.emulate=spin", "compute.tuning=" + tuning});
  Config cfg = load_config({}, sets);
  if (cfg.compute.tuning.kind == TuningSetting::Kind::file) {
    std::ifstream in(cfg.compute.tuning.path);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    cfg.tuning_choices = std::make_shared<const KernelChoices>(
        KernelChoices::from_json(text, cfg.compute.tuning.path, "compute.tuning"));
  }
  return cfg;
}

// Whether every rank holds the same text.
bool same_on_every_rank(const std::string& mine) {
  std::string root = mine;
  int n = static_cast<int>(root.size());
  MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
  root.resize(static_cast<size_t>(n));
  MPI_Bcast(root.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD);
  int same = root == mine ? 1 : 0, all = 0;
  MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all == 1;
}

TEST(KernelTuning, AutoGivesEveryRankRankZerosChoicesAndTheCacheRepeatsThem) {
  ASSERT_TRUE(kRegistered);
  const std::string dir = scratch_dir();
  setenv("MINIPT_TUNING_CACHE", dir.c_str(), 1);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  for (const std::string mode : {"fsdp", "odc"}) {
    if (rank == 0) std::filesystem::remove_all(dir);  // an empty cache
    MPI_Barrier(MPI_COMM_WORLD);
    const Config cfg = config(mode, "auto");
    std::string first_hash;
    {
      Trainer t(cfg, MPI_COMM_WORLD);
      const KernelTuning& k = t.kernel_tuning();
      EXPECT_EQ(k.setting, "auto");
      const auto& b = dynamic_cast<TunableBackend&>(t.backend());
      const KernelChoices c = b.kernel_choices();
      // Every choice is rank 0's, and every rank holds the same ones.
      EXPECT_EQ(static_cast<int64_t>(c.entries.size()), k.choices);
      EXPECT_EQ(k.timed, k.choices) << "an empty cache: every choice is timed in this run";
      for (const auto& [key, value] : c.entries)
        EXPECT_EQ(value.rfind("rank 0 ", 0), 0u) << mode << ": " << key << " -> " << value;
      EXPECT_TRUE(same_on_every_rank(c.to_json())) << mode;
      EXPECT_TRUE(same_on_every_rank(k.hash)) << mode;
      t.run(false);  // no rank meets an untuned shape (TunableBackend::forward checks)
      for (const std::string& key : b.used()) EXPECT_EQ(c.entries.count(key), 1u) << key;
      first_hash = k.hash;
      EXPECT_TRUE(std::filesystem::is_regular_file(tuning_cache_path(TunableBackend::identity())));
    }
    {
      // A second job takes every choice from the cache: nothing timed, the same hash.
      Trainer t(cfg, MPI_COMM_WORLD);
      EXPECT_EQ(t.kernel_tuning().timed, 0) << mode;
      EXPECT_EQ(t.kernel_tuning().hash, first_hash) << mode;
      t.run(false);
    }
    {
      // The cache as a tuning file: used as it is on every rank.
      const std::string file = tuning_cache_path(TunableBackend::identity());
      Trainer t(config(mode, file), MPI_COMM_WORLD);
      EXPECT_EQ(t.kernel_tuning().setting, file);
      EXPECT_EQ(t.kernel_tuning().hash, first_hash) << mode;
      t.run(false);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  unsetenv("MINIPT_TUNING_CACHE");
  if (rank == 0) std::filesystem::remove_all(dir);
}

TEST(KernelTuning, OffTimesNothingAndAForeignFileIsRefusedNamingTheKey) {
  ASSERT_TRUE(kRegistered);
  {
    Trainer t(config("fsdp", "off"), MPI_COMM_WORLD);
    EXPECT_EQ(t.kernel_tuning().choices, 0);
    const auto& b = dynamic_cast<TunableBackend&>(t.backend());
    EXPECT_TRUE(b.kernel_choices().entries.empty());
  }
  const std::string dir = scratch_dir();
  const std::string file = dir + "/foreign.json";
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    KernelChoices other{"another device; lib 2", {{"unit 1 bucket 256", "x"}}};
    std::ofstream(file) << other.to_json();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  try {
    Trainer t(config("fsdp", file), MPI_COMM_WORLD);
    ADD_FAILURE() << "a tuning file of another device was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "compute.tuning");
    EXPECT_NE(std::string(e.what()).find("another device; lib 2"), std::string::npos) << e.what();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace minipt
