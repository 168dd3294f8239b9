// What a run's operations cost on some hardware: each unit kind's forward, backward and
// recompute time as a function of the microbatch, the optimizer's and the gradient
// accumulation's time per element, and each communication operation's latency and
// bandwidth per link class. Calibrated from measured timelines by `minipt calibrate`
// (sim/calibrate.cpp), stored as TOML (sim/cost_file.cpp), spent by the emulated backend
// (compute.cost_model) and by `minipt simulate`. Without a file, flops_cost_model() gives
// the FLOPs-at-peak model and the documented default links.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "model/shape.hpp"

namespace minipt {

enum class UnitKind { embedding = 0, block = 1, head = 2 };
constexpr std::array<const char*, 3> kUnitKindNames = {"embedding", "block", "head"};
// Passes, as in UnitTimeFn: 0 forward, 1 backward, 2 recompute.
constexpr std::array<const char*, 3> kPassNames = {"forward", "backward", "recompute"};

UnitKind unit_kind(const ModelShape& shape, int unit);

// t(tokens, ΣL²) = a + b·tokens + c·ΣL², seconds.
struct TimeFit {
  double a = 0, b = 0, c = 0;
  bool present = false;  // false: not calibrated (e.g. no recompute in the source runs)
  // Measured spread of one unit pass's time around its expected value (coefficient of
  // variation, 0 ≤ cv < 1): `minipt simulate` draws time_variation() from it when
  // sim.variation_seed is set. 0: deterministic.
  double cv = 0;
  double at(int64_t tokens, double sum_sq) const {
    return a + b * static_cast<double>(tokens) + c * sum_sq;
  }
};

// Communication operations. allgather/reduce_scatter: NCCL ring collectives (bandwidth is
// the bus bandwidth, bytes·(n−1)/n per second); get/accumulate: odc's one-sided pulls and
// pushes (bandwidth over the bytes that cross the link); allreduce/barrier: the small
// synchronising operations (latency per hop of a tree, bandwidth unused).
enum class CommOp { allgather = 0, reduce_scatter, get, accumulate, allreduce, barrier };
constexpr std::array<const char*, 6> kCommOpNames = {"allgather",  "reduce_scatter", "get",
                                                     "accumulate", "allreduce",      "barrier"};
// self: a one-rank group (a device-local copy); intra: peers on one node; inter: peers
// on other nodes.
enum class LinkClass { self = 0, intra, inter };
constexpr std::array<const char*, 3> kLinkClassNames = {"self", "intra", "inter"};

struct LinkCost {
  double latency_s = 0;
  double bandwidth_Bps = 0;  // bytes per second; 0: latency only
  std::string source = "default";
};

struct CostModel {
  ModelShape shape;
  std::array<std::array<TimeFit, 3>, 3> unit{};  // [UnitKind][pass]
  double sum_squares_s_per_element = 0;          // gradient-norm pass of the optimizer
  double adamw_s_per_element = 0;
  double accumulate_grad_s_per_element = 0;  // fsdp: adding a scattered gradient shard
  double microbatch_overhead_s = 0;          // untimed work per microbatch (inputs, launch)
  // odc's fixed work per step outside any event: after the optimizer, before the barrier that
  // publishes the new shards (zeroing the accumulators, refreshing what peers pull, a device
  // synchronisation).
  double odc_step_s = 0;
  std::array<std::array<LinkCost, 3>, 6> comm{};  // [CommOp][LinkClass]
  int param_bytes = 2;                            // bytes per parameter element gathered or pulled
  int grad_bytes = 4;                             // bytes per gradient element reduced or pushed
  std::map<std::string, std::string> provenance;

  // Seconds of unit `unit`'s pass (0 forward, 1 backward, 2 recompute) on a microbatch of
  // `tokens` tokens with Σ length² = sum_sq; 0 for an empty microbatch. A recompute that
  // was not calibrated costs a forward.
  double unit_time(int unit, int pass, int64_t tokens, double sum_sq) const;
  // The coefficient of variation of that pass's time (TimeFit::cv of the fit unit_time uses).
  double unit_cv(int unit, int pass) const;
  const LinkCost& link(CommOp op, LinkClass c) const {
    return comm[static_cast<size_t>(op)][static_cast<size_t>(c)];
  }
};

// The unit time of the FLOPs-at-peak model, the one formula the planner's bound, the
// emulated backend and flops_cost_model() share: unit_forward_flops / peak for the
// forward and the recompute (pass 0, 2), twice that for the backward (pass 1).
double flops_unit_seconds(const ModelShape& shape, int unit, int pass, int64_t tokens,
                          double sum_sq, double peak_tflops);

// The FLOPs-at-peak model (forward = unit_forward_flops / peak, backward 2×, recompute
// 1×; no per-element or per-microbatch costs) with the default links: documented H200
// values (NVLink within a node, one 400 Gb/s NIC per GPU between nodes).
CostModel flops_cost_model(const ModelShape& shape, double peak_tflops, int param_bytes,
                           int grad_bytes);

// The default latency and bandwidth of each operation and link class.
LinkCost default_link(CommOp op, LinkClass c);

// Which unit pass a compute-time variation is drawn for.
struct VariationKey {
  uint64_t seed = 0;  // sim.variation_seed; 0: no variation
  int step = 0, rank = 0, microbatch = 0, unit = 0, pass = 0;
};
// The factor a unit pass's modelled time is multiplied by: lognormal with mean 1 and
// coefficient of variation `cv` (always positive), drawn from a hash of the key, so that
// the same key gives the same factor whatever order a simulation visits them in. 1 when
// seed or cv is 0.
double time_variation(const VariationKey& k, double cv);

}  // namespace minipt
