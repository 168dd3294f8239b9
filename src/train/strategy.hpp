// A data-parallel strategy: where a unit's working parameters come from before its
// forward/backward, and where its gradients go afterwards. The step loop
// (trainer.cpp) is the same for every strategy; fsdp.cpp and odc.cpp differ only here.
#pragma once

#include <memory>
#include <string>

#include "comm/topology.hpp"
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

// The transports a strategy builds (comm/topology.hpp's choice for the rank's shard group)
// and the comm.* settings they take.
struct StrategyOptions : TransportChoice {
  bool deterministic = false;
  bool pull_by_kernel = true;  // ipc odc: bf16 gets by a copy kernel, not the copy engine
};

std::unique_ptr<Strategy> make_fsdp_strategy(ComputeBackend& backend, const ShardLayout& layout,
                                             MPI_Comm comm, const StrategyOptions& opt);
// odc over the shard group `shard` (all of `world` without hybrid sharding).
std::unique_ptr<Strategy> make_odc_strategy(ComputeBackend& backend, const ShardLayout& layout,
                                            MPI_Comm world, MPI_Comm shard,
                                            const StrategyOptions& opt);

}  // namespace minipt
