#include "config/config.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <set>
#include <sstream>

#include "comm/transports.hpp"
#include "config/toml.hpp"
#include "core/error.hpp"
#include "core/output_paths.hpp"
#include "workload/balancers.hpp"
#include "workload/distributions.hpp"

namespace minipt {
namespace {

enum class KeyType { string, integer, floating, boolean, choice };

// One configuration key. `apply` stores a checked value into the Config.
struct KeySpec {
  std::string key;
  KeyType type;
  std::string default_value;         // TOML text
  std::vector<std::string> choices;  // KeyType::choice
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  std::string help;
  std::function<void(Config&, const toml::Value&)> apply;
  std::string type_text{};  // the type --help shows, where none of KeyType's names fits
};

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::string range_text(const KeySpec& k) {
  const bool lo = std::isfinite(k.min), hi = std::isfinite(k.max);
  std::ostringstream s;
  if (lo && hi)
    s << "[" << k.min << ", " << k.max << "]";
  else if (lo)
    s << ">= " << k.min;
  else if (hi)
    s << "<= " << k.max;
  return s.str();
}

double number_of(const KeySpec& k, const toml::Value& v) {
  if (v.type == toml::Value::Type::integer) return static_cast<double>(v.i);
  if (v.type == toml::Value::Type::floating && k.type == KeyType::floating) return v.f;
  throw ConfigError(k.key, std::string("expected ") +
                               (k.type == KeyType::integer ? "an integer" : "a number") + ", got " +
                               v.type_name() + " " + v.to_toml());
}

double checked_number(const KeySpec& k, const toml::Value& v) {
  const double x = number_of(k, v);
  if (!std::isfinite(x))
    throw ConfigError(k.key, "value " + v.to_toml() + " is not a finite number (allowed: " +
                                 (range_text(k).empty() ? "any finite number" : range_text(k)) +
                                 ")");
  if (x < k.min || x > k.max)
    throw ConfigError(k.key,
                      "value " + v.to_toml() + " is out of range (allowed: " + range_text(k) + ")");
  return x;
}

std::string checked_string(const KeySpec& k, const toml::Value& v) {
  if (v.type != toml::Value::Type::string)
    throw ConfigError(k.key, "expected a string, got " + v.type_name() + " " + v.to_toml());
  if (k.type == KeyType::choice &&
      std::find(k.choices.begin(), k.choices.end(), v.s) == k.choices.end())
    throw ConfigError(k.key,
                      "'" + v.s + "' is not allowed (allowed: " + join(k.choices, "|") + ")");
  return v.s;
}

bool checked_bool(const KeySpec& k, const toml::Value& v) {
  if (v.type != toml::Value::Type::boolean)
    throw ConfigError(k.key, "expected true or false, got " + v.type_name() + " " + v.to_toml());
  return v.b;
}

const double kInf = std::numeric_limits<double>::infinity();

std::vector<KeySpec> build_registry() {
  std::vector<KeySpec> r;
  auto add_int = [&](const std::string& key, int64_t def, double lo, double hi,
                     const std::string& help, std::function<void(Config&, int64_t)> set) {
    KeySpec k{key, KeyType::integer, std::to_string(def), {}, lo, hi, help, {}};
    k.apply = [k, set](Config& c, const toml::Value& v) {
      set(c, static_cast<int64_t>(checked_number(k, v)));
    };
    r.push_back(k);
  };
  auto add_float = [&](const std::string& key, double def, double lo, double hi,
                       const std::string& help, std::function<void(Config&, double)> set) {
    std::ostringstream d;
    d << def;
    std::string text = d.str();
    if (text.find_first_of(".eni") == std::string::npos) text += ".0";
    KeySpec k{key, KeyType::floating, text, {}, lo, hi, help, {}};
    k.apply = [k, set](Config& c, const toml::Value& v) { set(c, checked_number(k, v)); };
    r.push_back(k);
  };
  auto add_string = [&](const std::string& key, const std::string& def, const std::string& help,
                        std::function<void(Config&, const std::string&)> set) {
    KeySpec k{key, KeyType::string, "\"" + def + "\"", {}, -kInf, kInf, help, {}};
    k.apply = [k, set](Config& c, const toml::Value& v) { set(c, checked_string(k, v)); };
    r.push_back(k);
  };
  auto add_choice = [&](const std::string& key, const std::string& def,
                        std::vector<std::string> choices, const std::string& help,
                        std::function<void(Config&, const std::string&)> set) {
    KeySpec k{key, KeyType::choice, "\"" + def + "\"", std::move(choices), -kInf, kInf, help, {}};
    k.apply = [k, set](Config& c, const toml::Value& v) { set(c, checked_string(k, v)); };
    r.push_back(k);
  };
  auto add_bool = [&](const std::string& key, bool def, const std::string& help,
                      std::function<void(Config&, bool)> set) {
    KeySpec k{key, KeyType::boolean, def ? "true" : "false", {}, -kInf, kInf, help, {}};
    k.apply = [k, set](Config& c, const toml::Value& v) { set(c, checked_bool(k, v)); };
    r.push_back(k);
  };
  const double big = 1e15;

  // [run]
  add_choice(
      "run.mode", "fsdp", {"fsdp", "odc"}, "data-parallel communication mode",
      [](Config& c, const std::string& s) { c.run.mode = s == "odc" ? Mode::odc : Mode::fsdp; });
  add_int("run.steps", 4, 1, 1e6, "training steps (minibatches)",
          [](Config& c, int64_t v) { c.run.steps = static_cast<int>(v); });
  add_int("run.warmup_steps", 1, 0, 1e6,
          "first steps left out of the summary figures (fewer than run.steps)",
          [](Config& c, int64_t v) { c.run.warmup_steps = static_cast<int>(v); });
  add_int("run.seed", 1, 0, 9.0e15,
          "seed of the workload, the token streams and the initial weights",
          [](Config& c, int64_t v) { c.run.seed = static_cast<uint64_t>(v); });
  add_string("run.out", "minipt.h5", "timeline file (HDF5); a JSON summary is written beside it",
             [](Config& c, const std::string& s) { c.run.out = s; });
  add_string("run.name", "", "label of the run in reports (default: file stem of run.out)",
             [](Config& c, const std::string& s) { c.run.name = s; });
  add_string("run.dump", "",
             "if set, HDF5 file receiving initial parameters, batch, per-sequence losses and "
             "gradients of step run.dump_step",
             [](Config& c, const std::string& s) { c.run.dump = s; });
  add_int("run.dump_step", 0, 0, 1e6, "step written by run.dump",
          [](Config& c, int64_t v) { c.run.dump_step = static_cast<int>(v); });
  add_bool("run.json", true, "write the JSON summary beside the .h5 file",
           [](Config& c, bool b) { c.run.json = b; });
  add_bool("run.trace", true,
           "record every operation in /events (false: no events, utilization and idle n/a; for "
           "measuring tracing overhead)",
           [](Config& c, bool b) { c.run.trace = b; });
  add_float("run.timeout_s", 0.0, 0.0, 1e9,
            "if > 0: a rank whose whole run (setup, steps, output) takes longer than this many "
            "seconds aborts the job (exit 1), so a hung or stopped rank cannot hang it (0: off)",
            [](Config& c, double v) { c.run.timeout_s = v; });
  add_float("run.watchdog_factor", 10.0, 0.0, 1e6,
            "progress watchdog: a step with no progress on a rank for max(run.watchdog_floor_s, "
            "this x the slowest step so far) ends the job (exit 1) with a message naming the "
            "ranks that did not reach the step (run/slurm/README.md; 0: off)",
            [](Config& c, double v) { c.run.watchdog_factor = v; });
  add_float("run.watchdog_floor_s", 300.0, 0.0, 1e9,
            "progress watchdog: the least time without progress that counts as a stall "
            "(seconds; alone until a step has been timed)",
            [](Config& c, double v) { c.run.watchdog_floor_s = v; });
  add_float("run.watchdog_grace_s", 2.0, 0.1, 600,
            "progress watchdog: how long a stalled rank waits for the other ranks' answers "
            "before naming those that did not reach the step (seconds)",
            [](Config& c, double v) { c.run.watchdog_grace_s = v; });

  // [model]
  add_int("model.layers", 2, 1, 1024, "decoder blocks",
          [](Config& c, int64_t v) { c.model.layers = static_cast<int>(v); });
  add_int("model.hidden", 128, 1, 1e6, "hidden size (divisible by model.heads)",
          [](Config& c, int64_t v) { c.model.hidden = static_cast<int>(v); });
  add_int("model.heads", 4, 1, 1e4, "attention (query) heads",
          [](Config& c, int64_t v) { c.model.heads = static_cast<int>(v); });
  add_int("model.kv_heads", 2, 1, 1e4,
          "key/value heads (grouped-query attention; divides model.heads)",
          [](Config& c, int64_t v) { c.model.kv_heads = static_cast<int>(v); });
  add_int("model.ffn", 256, 1, 1e7, "SwiGLU intermediate size",
          [](Config& c, int64_t v) { c.model.ffn = static_cast<int>(v); });
  add_int("model.vocab", 512, 2, 1e7, "vocabulary size",
          [](Config& c, int64_t v) { c.model.vocab = static_cast<int>(v); });
  add_float("model.rope_theta", 1.0e6, 1.0, kInf, "rotary embedding base",
            [](Config& c, double v) { c.model.rope_theta = v; });
  add_float("model.norm_eps", 1.0e-6, 0.0, 1.0, "RMSNorm epsilon",
            [](Config& c, double v) { c.model.norm_eps = v; });
  {
    // true, false, a block count or "auto": see Recompute (compute/backend.hpp).
    KeySpec k{"model.recompute",
              KeyType::string,
              "true",
              {},
              -kInf,
              kInf,
              "blocks that recompute their activations in backward (per-layer checkpointing): "
              "true every block, false none, N the first N blocks (the others keep theirs), "
              "\"auto\" as few as device memory allows (cuda; elsewhere every block)",
              {},
              "bool/integer/\"auto\""};
    k.apply = [key = k.key](Config& c, const toml::Value& v) {
      if (v.type == toml::Value::Type::boolean) {
        c.compute.recompute = v.b;
      } else if (v.type == toml::Value::Type::integer && v.i >= 0 && v.i <= 1024) {
        c.compute.recompute = Recompute::first(static_cast<int>(v.i));
      } else if (v.type == toml::Value::Type::string && v.s == "auto") {
        c.compute.recompute = Recompute::automatic();
      } else {
        throw ConfigError(key,
                          "expected true, false, a block count 0..model.layers or \"auto\", "
                          "got " +
                              v.type_name() + " " + v.to_toml());
      }
    };
    r.push_back(k);
  }
  add_float("model.scale", 1.0, 1e-9, 1.0,
            "emulated backend only: fraction of each unit's real size that is allocated and moved "
            "(compute time stays that of the full shape)",
            [](Config& c, double v) { c.model_scale = v; });

  // [workload]
  add_string("workload.name", "custom", "label of the workload in reports",
             [](Config& c, const std::string& s) { c.workload_name = s; });
  add_choice("workload.distribution", "lognormal", length_distributions().names(),
             "sequence length distribution (" + length_distributions().described() + ")",
             [](Config& c, const std::string& s) { c.workload.distribution = s; });
  add_float("workload.mean", 2048, 1, big, "mean sequence length (tokens)",
            [](Config& c, double v) { c.workload.mean = v; });
  add_int("workload.min", 64, 2, big, "shortest sequence (tokens)",
          [](Config& c, int64_t v) { c.workload.min = v; });
  add_int("workload.max", 8192, 2, big, "longest sequence (tokens)",
          [](Config& c, int64_t v) { c.workload.max = v; });
  add_choice("workload.tail", "clamp", {"clamp", "resample", "drop"},
             "a draw outside [workload.min, workload.max]: clamp: rounded to the bound (piles "
             "up there); resample: drawn again (truncated distribution); drop: one above "
             "workload.max is skipped and the next drawn (the reference packer's maximum "
             "length), one below workload.min is clamped",
             [](Config& c, const std::string& s) {
               c.workload.tail = s == "resample" ? LengthTail::resample
                                 : s == "drop"   ? LengthTail::drop
                                                 : LengthTail::clamp;
             });
  add_float("workload.sigma", 1.0, 1e-6, 10, "lognormal: standard deviation of log length",
            [](Config& c, double v) { c.workload.sigma = v; });
  add_float("workload.alpha", 1.5, 1.01, 100, "pareto: tail index",
            [](Config& c, double v) { c.workload.alpha = v; });
  add_float("workload.short_mean", 0.0, 0.0, big, "bimodal: mean of the short mode (0: mean/4)",
            [](Config& c, double v) { c.workload.bimodal_short = v; });
  add_float("workload.long_mean", 0.0, 0.0, big, "bimodal: mean of the long mode (0: 4*mean)",
            [](Config& c, double v) { c.workload.bimodal_long = v; });
  add_float("workload.long_fraction", 0.1, 0.0, 1.0, "bimodal: fraction of long sequences",
            [](Config& c, double v) { c.workload.bimodal_long_fraction = v; });
  add_string("workload.histogram_file", "",
             "histogram: CSV of 'length,count' rows (relative to the config file)",
             [](Config& c, const std::string& s) { c.workload.histogram_file = s; });
  add_int("workload.minibatch_size", 32, 1, 1e7, "sequences per step, whole job",
          [](Config& c, int64_t v) { c.workload.minibatch_size = static_cast<int>(v); });

  // [balance]
  add_choice("balance.scheme", "micro", balancers().names(), balancers().described(),
             [](Config& c, const std::string& s) { c.balance.scheme = s; });
  add_bool("balance.equal_counts", false,
           "every rank gets the same number of sequences (as verl requires; "
           "workload.minibatch_size must be a multiple of the ranks)",
           [](Config& c, bool b) { c.balance.equal_sequence_counts = b; });
  add_choice("balance.refine", "auto", {"auto", "on", "off"},
             "swap refinement of micro's and mini's rank partition (the reference packer's): "
             "one-for-one exchanges between the heaviest (or lightest) rank and another while "
             "that lowers the spread; mini also keeps the equal-count partition when better. "
             "auto: odc plans only (their step is the heaviest rank's, which it never makes "
             "heavier); on: fsdp plans too (whose step sums each microbatch's slowest rank, "
             "which it can make slower); off: none",
             [](Config& c, const std::string& s) {
               c.balance_refine = s == "on"    ? BalanceRefine::on
                                  : s == "off" ? BalanceRefine::off
                                               : BalanceRefine::automatic;
             });
  add_int("balance.token_budget", 65536, 1, big, "most tokens in one microbatch",
          [](Config& c, int64_t v) { c.balance.token_budget = v; });
  add_choice("balance.cost", "flops", {"tokens", "quadratic", "flops"},
             "per-sequence cost the balancer equalises", [](Config& c, const std::string& s) {
               c.cost_kind = s == "tokens"      ? CostKind::tokens
                             : s == "quadratic" ? CostKind::quadratic
                                                : CostKind::flops;
             });
  add_float("balance.quadratic_a", 1.982, 0.0, big, "quadratic cost: a in a*s^2 + b*s, s = L/32000",
            [](Config& c, double v) { c.quadratic_a = v; });
  add_float("balance.quadratic_b", 2.612, 0.0, big, "quadratic cost: b in a*s^2 + b*s",
            [](Config& c, double v) { c.quadratic_b = v; });

  // [compute]
  // The variants' choice lists come from their tables (every variant, built or not:
  // constructing one this build lacks is a ConfigError naming the ones it has).
  const auto with_auto = [](std::vector<std::string> names) {
    names.insert(names.begin(), "auto");
    return names;
  };
  add_choice("compute.backend", "emulated", compute_backends().names(),
             compute_backends().described(),
             [](Config& c, const std::string& s) { c.compute.backend = s; });
  add_float("compute.peak_tflops", 989.0, 1e-6, 1e6,
            "per-rank peak (dense bf16 TFLOP/s) for emulated timing and MFU",
            [](Config& c, double v) { c.compute.peak_tflops = v; });
  add_choice("compute.attention", "auto", {"auto", "own", "cudnn"},
             "cuda: attention kernels (own: minipt's flash kernels; cudnn: cuDNN fused attention; "
             "auto: cudnn where built in, else own)",
             [](Config& c, const std::string& s) { c.compute.attention = attention_kernels(s); });
  add_choice("compute.emulate", "sleep", {"sleep", "spin"},
             "emulated: how modelled time is spent (sleep suits oversubscribed CPUs)",
             [](Config& c, const std::string& s) {
               c.compute.emulate = s == "spin" ? EmulateTime::spin : EmulateTime::sleep;
             });
  add_string("compute.tuning", "auto",
             "cuda: kernel choices (cuBLASLt algorithms, cuDNN plans), made once per job and the "
             "same on every rank. auto: rank 0 times the candidates on the run's own microbatch "
             "shapes before step 0, reading and extending the tuning cache "
             "($MINIPT_TUNING_CACHE, else ~/.cache/minipt); off: each library's heuristic "
             "choice, nothing timed; a path: the choices of that tuning file (a cache file of "
             "an earlier run), read once",
             [](Config& c, const std::string& s) { c.compute.tuning = TuningSetting::parse(s); });
  add_bool("compute.deterministic", false,
           "cuda: true: kernels that give the same bits for the same inputs where a library "
           "offers both (cuDNN's attention backward without atomic accumulation; its workspace "
           "is larger: the 1.5B 64K-token microbatch ran out of memory with it on an H100); "
           "false: the faster ones, whose last bits can differ between two runs",
           [](Config& c, bool v) { c.compute.deterministic = v; });
  add_float("compute.device_peak_tflops", 0.0, 0.0, 1e6,
            "cuda: the device's dense bf16 peak (TFLOP/s) that MFU is taken against; 0: from "
            "the table of known devices (the value used is printed), compute.peak_tflops for "
            "a device not in it",
            [](Config& c, double v) { c.compute.device_peak_tflops = v; });
  add_string("compute.cost_model", "",
             "emulated: a cost file (minipt calibrate) whose calibrated times are spent instead "
             "of FLOPs at compute.peak_tflops; also the default --cost of minipt simulate",
             [](Config& c, const std::string& s) { c.compute.cost_model = s; });

  // [comm]
  add_choice("comm.collectives", "auto", with_auto(collective_transports().names()),
             "fsdp transport (auto: nccl with the cuda backend, for peers on every node; else "
             "mpi)",
             [](Config& c, const std::string& s) { c.comm.collectives = s; });
  add_choice("comm.onesided", "auto", with_auto(onesided_transports().names()),
             "odc transport (auto, cuda backend: ipc for a shard group inside a node, "
             "ipc+staged for one spanning nodes (ipc to the same node's peers, staged to the "
             "others), staged with one rank per node; else mpi)",
             [](Config& c, const std::string& s) { c.comm.onesided = s; });
  add_int("comm.ranks_per_node", 0, 0, 1e6,
          "0: detect (ranks sharing memory form a node); K > 0: K-rank nodes of consecutive ranks "
          "(divides the world size; 1 forces the inter-node path on one host)",
          [](Config& c, int64_t v) { c.comm.ranks_per_node = static_cast<int>(v); });
  add_choice("comm.odc_pull", "kernel", {"kernel", "copy-engine"},
             "odc over CUDA IPC: who copies pulled bf16 params (kernel: 16-byte loads, reads "
             "NVLink faster; copy-engine leaves the multiprocessors to compute)",
             [](Config& c, const std::string& s) {
               c.comm.odc_pull = s == "copy-engine" ? OdcPull::copy_engine : OdcPull::kernel;
             });
  add_bool("comm.deterministic", false, "odc: fixed summation order for gradient accumulation",
           [](Config& c, bool b) { c.comm_deterministic = b; });

  // [parallel]
  add_int("parallel.shard", 0, 0, 1e6,
          "ranks each unit is sharded over (hybrid sharding: groups of consecutive ranks, "
          "replicated across world/shard groups; divides the world size); 0: every rank",
          [](Config& c, int64_t v) { c.parallel.shard = static_cast<int>(v); });
  add_choice("parallel.replica_reduce", "step", {"step", "unit"},
             "fsdp with replicas (hybrid sharding): when the gradient shards are summed across "
             "replicas (step: one all-reduce of the whole shard after the last microbatch; unit: "
             "each unit's slice after its last reduce-scatter, overlapped with the rest of the "
             "backward, waited before the optimizer); odc always sums after its barrier",
             [](Config& c, const std::string& s) {
               c.parallel.replica_reduce = s == "unit" ? ReplicaReduce::unit : ReplicaReduce::step;
             });

  // [sim]
  add_int("sim.gpus_per_node", 8, 1, 1e6,
          "simulate: GPUs (ranks) per node; consecutive ranks share a node",
          [](Config& c, int64_t v) { c.sim.gpus_per_node = static_cast<int>(v); });
  add_float("sim.intra_bandwidth_GBps", 0.0, 0.0, 1e6,
            "simulate: bandwidth of every operation between GPUs of one node (0: the cost "
            "file's, else the H200 defaults of README.md; else at least 1e-6)",
            [](Config& c, double v) { c.sim.intra_bandwidth_GBps = v; });
  add_float("sim.inter_bandwidth_GBps", 0.0, 0.0, 1e6,
            "simulate: bandwidth per GPU between nodes (0: the cost file's, else 400 Gb/s "
            "NIC defaults; else at least 1e-6)",
            [](Config& c, double v) { c.sim.inter_bandwidth_GBps = v; });
  add_float("sim.intra_latency_us", 0.0, 0.0, 1e6,
            "simulate: latency of every operation inside a node (0: the cost file's)",
            [](Config& c, double v) { c.sim.intra_latency_us = v; });
  add_float("sim.inter_latency_us", 0.0, 0.0, 1e6,
            "simulate: latency of every operation between nodes (0: the cost file's)",
            [](Config& c, double v) { c.sim.inter_latency_us = v; });
  // A positive number, or "collectives" (the default): the one-sided operations between
  // nodes take the collectives' value.
  auto add_onesided = [&](const std::string& key, bool rate, const std::string& help,
                          std::function<void(Config&, double)> set) {
    const std::string allowed = rate ? "> 0" : ">= 0";
    KeySpec k;
    k.key = key;
    k.type = KeyType::string;
    k.default_value = "\"collectives\"";
    k.help = help;
    k.type_text = "float/\"collectives\"";
    k.apply = [key, allowed, rate, set](Config& c, const toml::Value& v) {
      if (v.type == toml::Value::Type::string && v.s == "collectives") return;
      const bool number =
          v.type == toml::Value::Type::integer || v.type == toml::Value::Type::floating;
      const double x = v.type == toml::Value::Type::integer ? static_cast<double>(v.i) : v.f;
      if (!number || !std::isfinite(x) || (rate ? x <= 0 : x < 0) || x > 1e6)
        throw ConfigError(key, "value " + v.to_toml() + " is not allowed (allowed: a number " +
                                   allowed + " and <= 1e+06, or \"collectives\")");
      set(c, x);
    };
    r.push_back(k);
  };
  add_onesided("sim.onesided_inter_bandwidth_GBps", true,
               "simulate: bandwidth per GPU of odc's one-sided gets and accumulates between "
               "nodes (\"collectives\": as sim.inter_bandwidth_GBps, or the cost file's "
               "comm.inter.get/accumulate rows when that is 0)",
               [](Config& c, double v) { c.sim.onesided_inter_bandwidth_GBps = v; });
  add_onesided("sim.onesided_inter_latency_us", false,
               "simulate: latency of odc's one-sided operations between nodes (\"collectives\": "
               "as sim.inter_latency_us, or the cost file's)",
               [](Config& c, double v) { c.sim.onesided_inter_latency_us = v; });
  add_int("sim.variation_seed", 0, 0, 9e15,
          "simulate: seed of each unit pass's compute time variation, drawn per rank, step, "
          "microbatch and unit from the cost file's measured spread (compute.KIND.PASS.cv); "
          "the same seed gives the same run; 0: no variation",
          [](Config& c, int64_t v) { c.sim.variation_seed = v; });
  add_int("sim.trace_ranks", 32, 1, 1e6,
          "simulate: ranks whose full /events are stored (spread evenly; every rank's /steps "
          "is stored)",
          [](Config& c, int64_t v) { c.sim.trace_ranks = static_cast<int>(v); });

  // [optim]
  add_float("optim.lr", 1e-3, 0.0, 10, "AdamW learning rate",
            [](Config& c, double v) { c.optim.adamw.lr = static_cast<float>(v); });
  add_float("optim.beta1", 0.9, 0.0, 0.999999, "AdamW beta1",
            [](Config& c, double v) { c.optim.adamw.beta1 = static_cast<float>(v); });
  add_float("optim.beta2", 0.95, 0.0, 0.999999, "AdamW beta2",
            [](Config& c, double v) { c.optim.adamw.beta2 = static_cast<float>(v); });
  add_float("optim.eps", 1e-8, 0.0, 1.0, "AdamW epsilon",
            [](Config& c, double v) { c.optim.adamw.eps = static_cast<float>(v); });
  add_float("optim.weight_decay", 0.0, 0.0, 10, "AdamW decoupled weight decay",
            [](Config& c, double v) { c.optim.adamw.weight_decay = static_cast<float>(v); });
  add_float("optim.clip_norm", 1.0, 0.0, big, "gradient clipping by global norm (0: off)",
            [](Config& c, double v) { c.optim.clip_norm = v; });
  return r;
}

const std::vector<KeySpec>& registry() {
  static const std::vector<KeySpec> r = build_registry();
  return r;
}

// Edit distance, for "did you mean" on unknown keys.
size_t distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

const KeySpec& find_key(const std::string& key) {
  for (const auto& k : registry())
    if (k.key == key) return k;
  std::string best;
  size_t best_d = 4;
  for (const auto& k : registry()) {
    const size_t d = distance(key, k.key);
    if (d < best_d) best_d = d, best = k.key;
  }
  std::string msg = "unknown key";
  if (!best.empty()) msg += " (did you mean " + best + "?)";
  msg += "; `minipt --help` lists every key";
  throw ConfigError(key, msg);
}

// Loads `path` and the files it names in `base`, bases first. Relative paths inside a
// file (base, workload.histogram_file) are resolved against the file's directory.
// `including` is the chain of files being loaded (a file in it again is a cycle);
// a base that is already `loaded` is skipped, so two files may share a base (a diamond)
// without the second copy undoing what came between. Files named with --config are
// always applied, in order.
void load_file(const std::string& path, toml::Table& merged, std::vector<std::string>& including,
               std::set<std::string>& loaded, bool is_base, const InputReader& reader) {
  const std::string canon = reader.canonical(path);
  if (std::find(including.begin(), including.end(), canon) != including.end()) {
    std::string chain;
    for (const auto& f : including) chain += f + " -> ";
    throw ConfigError("base", path + ": includes itself (" + chain + canon + ")");
  }
  if (is_base && loaded.count(canon)) return;
  if (including.size() >= 16)
    throw ConfigError("base", path + ": `base` nests more than 16 levels");
  loaded.insert(canon);
  including.push_back(canon);
  toml::Table t = toml::parse(reader.read(path, "", "configuration file"), path);
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  auto resolve = [&](const std::string& p) {
    return std::filesystem::path(p).is_absolute() || dir.empty() ? p : (dir / p).string();
  };
  if (auto it = t.find("base"); it != t.end()) {
    const toml::Value& v = it->second;
    std::vector<std::string> bases;
    if (v.type == toml::Value::Type::string)
      bases.push_back(v.s);
    else if (v.type == toml::Value::Type::array) {
      for (const auto& item : v.items) {
        if (item.type != toml::Value::Type::string)
          throw ConfigError("base", path + ": expected an array of file names");
        bases.push_back(item.s);
      }
    } else {
      throw ConfigError("base", path + ": expected a file name or an array of file names");
    }
    for (const auto& b : bases) load_file(resolve(b), merged, including, loaded, true, reader);
    t.erase(it);
  }
  if (auto it = t.find("workload.histogram_file");
      it != t.end() && it->second.type == toml::Value::Type::string && !it->second.s.empty())
    it->second.s = resolve(it->second.s);
  for (auto& [k, v] : t) merged[k] = v;
  including.pop_back();
}

void validate(const Config& c) {
  const ModelShape& m = c.model;
  if (c.compute.recompute.blocks > m.layers)
    throw ConfigError("model.recompute",
                      "= " + std::to_string(c.compute.recompute.blocks) +
                          " blocks, but the model has model.layers = " + std::to_string(m.layers) +
                          " (allowed: true, false, 0.." + std::to_string(m.layers) +
                          " or \"auto\")");
  if (m.hidden % m.heads != 0)
    throw ConfigError("model.heads", std::to_string(m.heads) + " does not divide model.hidden = " +
                                         std::to_string(m.hidden));
  if (m.heads % m.kv_heads != 0)
    throw ConfigError(
        "model.kv_heads",
        std::to_string(m.kv_heads) + " does not divide model.heads = " + std::to_string(m.heads));
  if (m.head_dim() % 2 != 0)
    throw ConfigError("model.hidden",
                      "head dimension hidden/heads = " + std::to_string(m.head_dim()) +
                          " must be even (rotary embedding)");
  if (c.workload.min > c.workload.max)
    throw ConfigError("workload.min", std::to_string(c.workload.min) + " exceeds workload.max = " +
                                          std::to_string(c.workload.max));
  if (const LongestLength l = length_distributions()
                                  .at(c.workload.distribution, "workload.distribution")
                                  .longest(c.workload);
      l.tokens > c.balance.token_budget)
    throw ConfigError("balance.token_budget",
                      std::to_string(c.balance.token_budget) + " is smaller than " + l.set_by +
                          " = " + std::to_string(l.tokens) +
                          ": a sequence may not fit in one microbatch (allowed: >= " + l.set_by +
                          ")");
  if (c.run.mode == Mode::fsdp && balancers().at(c.balance.scheme, "balance.scheme").odc_only) {
    std::vector<std::string> fsdp_ok;
    for (const BalancerRow& r : balancers().rows())
      if (!r.odc_only) fsdp_ok.push_back(r.name);
    throw ConfigError("balance.scheme", "\"" + c.balance.scheme +
                                            "\" needs run.mode = \"odc\": fsdp runs the same "
                                            "number of microbatches on every rank (allowed with "
                                            "fsdp: " +
                                            join(fsdp_ok, "|") + ")");
  }
  const BackendRow* backend = compute_backends().find_any(c.compute.backend);
  const bool models_time = backend != nullptr && backend->models_time;
  if (!models_time && c.model_scale != 1.0)
    throw ConfigError("model.scale",
                      "only the emulated backend can scale the model (allowed with " +
                          c.compute.backend + ": 1.0)");
  if (!c.compute.cost_model.empty() && !models_time)
    throw ConfigError("compute.cost_model",
                      "is spent by the emulated backend only (compute.backend = \"" +
                          c.compute.backend + "\" measures real time; allowed here: \"\")");
  if (c.run.out.empty()) throw ConfigError("run.out", "must name an output file");
  if (c.run.out.size() < 3 || c.run.out.substr(c.run.out.size() - 3) != ".h5")
    throw ConfigError("run.out", "'" + c.run.out + "' must end in .h5");
  if (!c.run.dump.empty() && entry_path(c.run.dump) == entry_path(c.run.out))
    throw ConfigError("run.dump", "'" + c.run.dump +
                                      "' is the file of run.out: the dump would overwrite the "
                                      "timeline (name another file)");
  // The cost file's bandwidth bound (CostBounds) for the [sim] overrides: 0 keeps the
  // file's; anything else at least 1e-6 GB/s, so no transfer's time runs away.
  for (const auto& [key, v] :
       {std::pair<const char*, double>{"sim.intra_bandwidth_GBps", c.sim.intra_bandwidth_GBps},
        {"sim.inter_bandwidth_GBps", c.sim.inter_bandwidth_GBps}})
    if (v > 0 && v < 1e-6) {
      std::ostringstream x;
      x << v;
      throw ConfigError(key, "value " + x.str() +
                                 " is below the bound of a bandwidth (allowed: 0 for the cost "
                                 "file's, or 1e-06..1e+06)");
    }
  if (c.run.warmup_steps >= c.run.steps)
    throw ConfigError("run.warmup_steps", std::to_string(c.run.warmup_steps) +
                                              " leaves no step to measure in a run of " +
                                              std::to_string(c.run.steps) + " steps (allowed: 0.." +
                                              std::to_string(c.run.steps - 1) + ")");
  if (c.run.dump_step >= c.run.steps)
    throw ConfigError("run.dump_step", std::to_string(c.run.dump_step) +
                                           " is not a step of this run (allowed: 0.." +
                                           std::to_string(c.run.steps - 1) + ")");
  check_transport_memory(c.compute.backend, c.comm.collectives, c.comm.onesided);
}

}  // namespace

std::string to_string(Mode m) { return m == Mode::odc ? "odc" : "fsdp"; }
std::string to_string(CostKind c) {
  return c == CostKind::tokens ? "tokens" : c == CostKind::quadratic ? "quadratic" : "flops";
}
std::vector<KeyDoc> config_keys() {
  std::vector<KeyDoc> out;
  for (const auto& k : registry()) {
    std::string type = !k.type_text.empty()          ? k.type_text
                       : k.type == KeyType::string   ? "string"
                       : k.type == KeyType::integer  ? "integer"
                       : k.type == KeyType::floating ? "float"
                       : k.type == KeyType::boolean  ? "bool"
                                                     : "string";
    std::string allowed = k.type == KeyType::choice ? join(k.choices, "|") : range_text(k);
    out.push_back({k.key, type, k.default_value, allowed, k.help});
  }
  return out;
}

Config load_config(const std::vector<std::string>& files, const std::vector<std::string>& overrides,
                   const InputReader& reader) {
  toml::Table merged;
  for (const auto& k : registry()) merged[k.key] = toml::parse_value(k.default_value, k.key);
  std::vector<std::string> including;
  std::set<std::string> loaded;
  for (const auto& f : files) load_file(f, merged, including, loaded, false, reader);
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError("--set", "'" + o + "' is not of the form key=value");
    const std::string key = o.substr(0, eq);
    find_key(key);
    merged[key] = toml::parse_value(o.substr(eq + 1), key);
  }
  Config c;
  for (const auto& [key, value] : merged) find_key(key).apply(c, value);
  validate(c);
  // After validation, so that a bad key is reported before an unreadable file.
  if (c.workload.distribution == "histogram" && !c.workload.histogram_file.empty())
    c.workload.histogram_text = std::make_shared<const std::string>(
        reader.read(c.workload.histogram_file, "workload.histogram_file", "histogram file"));
  c.resolved_toml = toml::format_table(merged);
  if (c.run.name.empty()) c.run.name = std::filesystem::path(c.run.out).stem().string();
  return c;
}

int shard_group_size(const Config& cfg, int world) {
  const int s = cfg.parallel.shard;
  if (s == 0) return world;
  if (world % s != 0)
    throw ConfigError("parallel.shard", "= " + std::to_string(s) +
                                            " does not divide the world size " +
                                            std::to_string(world) +
                                            " (allowed: a divisor of the ranks, or 0 for all)");
  return s;
}

BalanceOptions balance_options(const Config& cfg, const std::string& scheme, bool equal_counts) {
  BalanceOptions b = cfg.balance;
  b.scheme = scheme;
  b.equal_microbatch_counts = equal_counts;
  b.refine = cfg.balance_refine == BalanceRefine::on ||
             (cfg.balance_refine == BalanceRefine::automatic && !equal_counts);
  b.cost = make_sequence_cost(cfg.cost_kind, cfg.model,
                              QuadraticCostFit{cfg.quadratic_a, cfg.quadratic_b});
  return b;
}

}  // namespace minipt
