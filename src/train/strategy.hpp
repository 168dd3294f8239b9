// A data-parallel strategy: where a unit's working parameters come from before its
// forward/backward, and where its gradients go afterwards. The step loop
// (trainer.cpp) is the same for every strategy; fsdp.cpp and odc.cpp differ only here.
#pragma once

#include <memory>
#include <string>

#include "comm/transport.hpp"
#include "compute/backend.hpp"
#include "model/shape.hpp"
#include "trace/recorder.hpp"

namespace minipt {

// What a strategy may use; owned by the trainer.
struct StepContext {
  ComputeBackend& backend;
  Control& control;
  Recorder& recorder;
  const ShardLayout& layout;
  int rank = 0;
  int step = 0;
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;
  virtual std::string transport_name() const = 0;

  // This rank's fp32 master shard and gradient accumulator (layout.shard_total()
  // elements each, in the backend's memory space).
  virtual float* master() = 0;
  virtual float* grad_acc() = 0;
  // Called once after the master shard is initialised, and after every optimizer step
  // (the step program's publish; odc's publish_barrier follows it).
  virtual void publish_params(StepContext& ctx) = 0;

  // Starts bringing unit `unit`'s full working parameters (param_dtype, layout padded
  // size) into `dst`; wait_fetch makes them usable by the compute lane.
  virtual Request fetch(StepContext& ctx, int unit, void* dst) = 0;
  virtual void wait_fetch(StepContext& ctx, Request r) = 0;
  // Starts sending unit `unit`'s full gradient (grad_dtype, padded) from `grads`;
  // `slot` (0/1) names the staging the push may use until complete_push().
  virtual Request push(StepContext& ctx, int unit, const void* grads, int slot) = 0;
  // Completes a push so `grads` may be overwritten.
  virtual void wait_push(StepContext& ctx, Request r) = 0;
  // After wait_push: fsdp adds the received shard into the accumulator (recorded as
  // accumulate_grad); odc has nothing left to do.
  virtual void land_push(StepContext& ctx, int unit, int slot) = 0;
  // The step program's flush: every push of this rank has completed at its owner.
  virtual void flush(StepContext&) {}
  // The step program's barriers (recorded as barrier): every rank has reached it.
  // After the gradient barrier (`gradients`), every gradient of the step is in
  // grad_acc() of its owner.
  virtual void barrier(StepContext& ctx, bool /*gradients*/) {
    ctx.recorder.timed(EventKind::barrier, Lane::compute, {.step = ctx.step},
                       [&] { ctx.control.barrier(); });
  }
  virtual void progress() {}
};

// The transports that reach one class of peers of a rank's shard group (row names of the
// transport tables); "none" where the group has no peer of that class.
struct PeerTransports {
  std::string onesided = "none", collectives = "none";
};

struct StrategyOptions {
  std::string collectives = "mpi";  // a row of collective_transports()
  std::string onesided = "mpi";     // a row of onesided_transports()
  // What those reach each class of peers with (a composite one-sided row such as
  // ipc+staged routes the two classes to different rows).
  PeerTransports same_node, other_node;
  bool deterministic = false;
  int ranks_per_node = 0;           // of the shard group, on each node it spans
  int declared_ranks_per_node = 0;  // comm.ranks_per_node (0: detected)
  bool pull_by_kernel = true;       // ipc odc: bf16 gets by a copy kernel, not the copy engine
};

// Where the ranks of a job sit: `ranks_per_node` ranks on each of `nodes` nodes
// (consecutive ranks share a node).
struct NodeLayout {
  int ranks_per_node = 1;
  int nodes = 1;
};

// comm.ranks_per_node = 0: detected from the shared-memory split of `comm` (ranks that can
// map each other's memory); K > 0: declared K-rank nodes (K must divide the world size,
// else ConfigError). Collective over `comm`.
NodeLayout node_layout(MPI_Comm comm, int declared_ranks_per_node);

// The transports a run uses, from the config's comm.* keys, the compute backend and the
// layout `nodes` of the rank's shard group (ranks_per_node of its ranks on each of the
// `nodes` nodes it spans). The group's peers fall in two classes: on the same node (if
// ranks_per_node > 1) and on other nodes (if nodes > 1, or comm.ranks_per_node = 1, which
// forces the inter-node path). `auto` picks per class, from the transport tables
// (comm/transports.hpp), the highest-priority row that moves the backend's memory and,
// for other nodes, needs no single node: NCCL collectives for GPU runs (both classes),
// CUDA IPC for same-node and host-staged MPI RMA for other-node one-sided access, MPI on
// the host. A group with both classes whose picks differ uses the composite one-sided
// row of the two (ipc+staged). A named transport serves both classes (a composite its
// parts). Forcing IPC on a group that spans nodes is a ConfigError naming comm.onesided
// and comm.ranks_per_node. Pure: no communication.
StrategyOptions choose_transports(const std::string& backend, const std::string& collectives,
                                  const std::string& onesided, int declared_ranks_per_node,
                                  const NodeLayout& nodes);

// "same node: onesided ipc, collectives nccl | other node: none" (the run header).
std::string describe_peer_transports(const StrategyOptions& o);

std::unique_ptr<Strategy> make_fsdp_strategy(ComputeBackend& backend, const ShardLayout& layout,
                                             MPI_Comm comm, const StrategyOptions& opt);
// odc over the shard group `shard` (all of `world` without hybrid sharding).
std::unique_ptr<Strategy> make_odc_strategy(ComputeBackend& backend, const ShardLayout& layout,
                                            MPI_Comm world, MPI_Comm shard,
                                            const StrategyOptions& opt);

}  // namespace minipt
