#include "train/pipeline.hpp"

#include <stdexcept>

namespace minipt {

UnitPipeline::UnitPipeline(ComputeBackend& backend, Strategy& strategy, const step::ModeRow& mode,
                           Recorder& recorder, const ShardLayout& layout)
    : backend_(backend), strategy_(strategy), mode_(mode), recorder_(recorder), layout_(layout) {
  const auto unit_elems = static_cast<size_t>(layout_.max_padded());
  for (auto& b : fetch_buf_) b = backend_.allocate(unit_elems * dtype_size(backend_.param_dtype()));
  for (auto& b : grad_buf_) b = backend_.allocate(unit_elems * dtype_size(backend_.grad_dtype()));
}

UnitPipeline::~UnitPipeline() {
  for (auto* b : fetch_buf_) backend_.deallocate(b);
  for (auto* b : grad_buf_) backend_.deallocate(b);
}

int64_t UnitPipeline::unit_bytes(int unit, DType dt) const {
  return layout_.unit(unit).padded * static_cast<int64_t>(dtype_size(dt));
}

UnitPipeline::Fetch UnitPipeline::post_fetch(StepContext& ctx, int unit) {
  void* buf = fetch_buf_[next_fetch_slot_];
  next_fetch_slot_ ^= 1;
  // Transports start a fetch after the compute queued so far (the buffer it fills was
  // read by it), so its begin mark is ordered the same way.
  const auto begin = recorder_.mark_after(Lane::pull, Lane::compute);
  return Fetch{strategy_.fetch(ctx, unit, buf), begin, buf};
}

void* UnitPipeline::wait_fetch(StepContext& ctx, const Fetch& f, int microbatch, int unit) {
  const auto w = recorder_.mark(Lane::compute);
  strategy_.wait_fetch(ctx, f.req);
  recorder_.add(EventKind::wait, Lane::compute, w, recorder_.mark(Lane::compute),
                {.step = ctx.step, .microbatch = microbatch, .unit = unit});
  recorder_.add(mode_.fetch_event, Lane::pull, f.begin, recorder_.mark(Lane::pull),
                {.step = ctx.step,
                 .microbatch = microbatch,
                 .unit = unit,
                 .bytes = unit_bytes(unit, backend_.param_dtype())});
  return f.buf;
}

std::pair<void*, int> UnitPipeline::next_grads() {
  const int slot = next_grad_slot_;
  next_grad_slot_ ^= 1;
  return {grad_buf_[slot], slot};
}

void UnitPipeline::push(StepContext& ctx, int microbatch, int unit, void* grads, int slot) {
  if (pending_.req != kNoRequest)
    throw std::logic_error("UnitPipeline::push: the push before it has not landed");
  const auto begin = recorder_.mark_after(Lane::push, Lane::compute);  // after its backward
  pending_ = {strategy_.push(ctx, unit, grads, slot), unit, slot, microbatch, begin};
}

// Exposed time is a compute-lane wait; the push itself is recorded on the push lane.
void UnitPipeline::complete_push(StepContext& ctx) {
  if (pending_.req == kNoRequest) return;
  const auto w = recorder_.mark(Lane::compute);
  strategy_.wait_push(ctx, pending_.req);
  recorder_.add(EventKind::wait, Lane::compute, w, recorder_.mark(Lane::compute),
                {.step = ctx.step, .microbatch = pending_.microbatch, .unit = pending_.unit});
  recorder_.add(mode_.push_event, Lane::push, pending_.begin, recorder_.mark(Lane::push),
                {.step = ctx.step,
                 .microbatch = pending_.microbatch,
                 .unit = pending_.unit,
                 .bytes = unit_bytes(pending_.unit, backend_.grad_dtype())});
  strategy_.land_push(ctx, pending_.unit, pending_.slot);
  pending_ = {};
}

}  // namespace minipt
