// The double-buffered unit pipeline of one rank. Two parameter buffers: a unit computes
// from one while the next unit's parameters arrive in the other. Two gradient buffers: a
// unit's backward writes one while the previous unit's gradients leave from the other,
// with at most one push in flight. It records every transfer on its lane (as the mode's
// fetch and push kinds, step/program.hpp) and the compute lane's exposed waits for it;
// what a fetch or push is (a collective, one-sided gets or accumulates) is the strategy's.
#pragma once

#include <utility>

#include "comm/transport.hpp"
#include "compute/backend.hpp"
#include "step/program.hpp"
#include "trace/recorder.hpp"
#include "train/strategy.hpp"

namespace minipt {

class UnitPipeline {
 public:
  UnitPipeline(ComputeBackend& backend, Strategy& strategy, const step::ModeRow& mode,
               Recorder& recorder, const ShardLayout& layout);
  ~UnitPipeline();
  UnitPipeline(const UnitPipeline&) = delete;
  UnitPipeline& operator=(const UnitPipeline&) = delete;

  struct Fetch {
    Request req = kNoRequest;
    TimeSource::Mark begin = 0;
    void* buf = nullptr;
  };
  // Starts bringing unit `unit`'s parameters into the next parameter buffer.
  Fetch post_fetch(StepContext& ctx, int unit);
  // Waits for `f` (unit `unit` of microbatch `microbatch`) and returns its buffer.
  void* wait_fetch(StepContext& ctx, const Fetch& f, int microbatch, int unit);

  // The gradient buffer the next backward writes, and its slot.
  std::pair<void*, int> next_grads();
  // Starts pushing unit `unit`'s gradients; the push before it must have landed.
  void push(StepContext& ctx, int microbatch, int unit, void* grads, int slot);
  // Waits for the push in flight (if any) and lands it (fsdp: into the accumulator).
  void complete_push(StepContext& ctx);

 private:
  int64_t unit_bytes(int unit, DType dt) const;

  ComputeBackend& backend_;
  Strategy& strategy_;
  const step::ModeRow& mode_;
  Recorder& recorder_;
  const ShardLayout& layout_;
  void* fetch_buf_[2] = {nullptr, nullptr};
  void* grad_buf_[2] = {nullptr, nullptr};
  int next_fetch_slot_ = 0;
  int next_grad_slot_ = 0;
  struct Pending {
    Request req = kNoRequest;
    int unit = -1;
    int slot = 0;
    int microbatch = -1;
    TimeSource::Mark begin = 0;
  };
  Pending pending_;
};

}  // namespace minipt
