// The typed configuration of a run: every key, its type, default, allowed values and
// documentation live in one registry (config.cpp), which drives loading, `--set`
// overrides, validation, `minipt --help` and the resolved TOML stored in each file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/transport.hpp"
#include "compute/backend.hpp"
#include "core/input_bundle.hpp"
#include "model/shape.hpp"
#include "workload/workload.hpp"

namespace minipt {

enum class Mode { fsdp, odc };

// balance.refine: automatic = odc plans only (balance_options).
enum class BalanceRefine { automatic, on, off };

struct RunOptions {
  Mode mode = Mode::fsdp;
  int steps = 4;
  int warmup_steps = 1;
  uint64_t seed = 1;
  std::string out = "minipt.h5";
  std::string name;  // label for reports; default: file stem of out
  std::string dump;  // run.dump: write params/batch/losses/grads of one step
  int dump_step = 0;
  bool json = true;      // write NAME.json beside the .h5
  bool trace = true;     // record per-operation events (false: only per-step records)
  double timeout_s = 0;  // run.timeout_s: abort the job when `run` takes longer (0: off)
  // The progress watchdog (app/watchdog.hpp): a step with no progress for
  // max(watchdog_floor_s, watchdog_factor x the slowest step) ends the job.
  double watchdog_factor = 10;    // run.watchdog_factor (0: off)
  double watchdog_floor_s = 300;  // run.watchdog_floor_s
  double watchdog_grace_s = 2;    // run.watchdog_grace_s
};

struct OptimOptions {
  AdamWParams adamw;
  double clip_norm = 1.0;  // 0 disables clipping
};

// [parallel]: hybrid sharding. Each unit is sharded over groups of `shard` consecutive
// ranks and replicated across the world/shard groups; 0 = every rank (full sharding).
// `replica_reduce` (fsdp with replicas): "step" sums the whole gradient shard across the
// replicas after the last microbatch, "unit" each unit's slice as soon as it is final.
enum class ReplicaReduce { step, unit };
struct ParallelOptions {
  int shard = 0;
  ReplicaReduce replica_reduce = ReplicaReduce::step;
};
// The shard group size of a `world`-rank job: cfg.parallel.shard, or world for 0. Throws
// ConfigError("parallel.shard", ...) if it does not divide the world size.
struct Config;
int shard_group_size(const Config& cfg, int world);

// [sim]: the topology `minipt simulate` models (0 = from the cost file / defaults).
struct SimOptions {
  int gpus_per_node = 8;
  double intra_bandwidth_GBps = 0, inter_bandwidth_GBps = 0;
  double intra_latency_us = 0, inter_latency_us = 0;
  // odc's one-sided gets and accumulates between nodes, apart from the collectives:
  // bandwidth 0 and latency < 0 mean "as the collectives' override" (inter_*), else the
  // cost file's comm.inter.get / comm.inter.accumulate rows.
  double onesided_inter_bandwidth_GBps = 0, onesided_inter_latency_us = -1;
  int trace_ranks = 32;
  // Per-(rank, unit, microbatch) compute time variation drawn from the cost file's
  // measured spread (compute.KIND.PASS.cv); 0: none (deterministic unit times).
  int64_t variation_seed = 0;
};

struct Config {
  RunOptions run;
  ModelShape model;
  double model_scale = 1.0;
  WorkloadSpec workload;
  std::string workload_name = "custom";
  BalanceOptions balance;
  CostKind cost_kind = CostKind::flops;
  BalanceRefine balance_refine = BalanceRefine::automatic;  // balance.refine (balance_options)
  double quadratic_a = 1.982, quadratic_b = 2.612;
  ComputeOptions compute;
  CommOptions comm;
  OptimOptions optim;
  SimOptions sim;
  ParallelOptions parallel;
  bool comm_deterministic = false;

  std::string resolved_toml;  // every key with its effective value
  // The command's cost file, parsed, is compute.costs (config/cost_file.hpp:
  // load_cost_file, called by every command's load_command_config).
  // compute.tuning's file, parsed where `run` read it (app/inputs.cpp); null otherwise
  std::shared_ptr<const KernelChoices> tuning_choices;
};

struct KeyDoc {
  std::string key, type, default_value, allowed, help;
};

// Loads the files in order (later ones override earlier ones; a file's `base = [...]`
// list is loaded first, paths relative to that file), applies `overrides`
// ("key=value"), checks every key, type and constraint, and reads the histogram file of
// a histogram workload (into workload.histogram_text). Every file comes through `reader`
// (the disk by default; `run` replays rank 0's bundle on the other ranks). Throws
// ConfigError.
Config load_config(const std::vector<std::string>& files, const std::vector<std::string>& overrides,
                   const InputReader& reader = InputReader());

// Every key with its default and documentation, in registry order.
std::vector<KeyDoc> config_keys();

std::string to_string(Mode m);
std::string to_string(CostKind c);

// The balancing options of a config for `scheme`, with the cost model resolved;
// `equal_counts` (an fsdp plan: equal microbatch counts) also decides balance.refine =
// "auto" (refined only when false).
BalanceOptions balance_options(const Config& cfg, const std::string& scheme, bool equal_counts);

}  // namespace minipt
