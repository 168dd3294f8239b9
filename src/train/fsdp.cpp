// fsdp: per-unit all-gather of bf16/fp32 working parameters before forward and
// backward, reduce-scatter of gradients after backward (FSDP2's schedule). Every rank
// runs the same number of microbatches, so the slowest rank sets the pace at every unit.
#include "comm/transports.hpp"
#include "train/strategy.hpp"

namespace minipt {
namespace {

class Fsdp final : public Strategy {
 public:
  Fsdp(ComputeBackend& backend, const ShardLayout& layout, std::unique_ptr<Collectives> coll)
      : backend_(backend), layout_(layout), coll_(std::move(coll)) {
    const auto n = static_cast<size_t>(layout.shard_total());
    master_ = static_cast<float*>(backend.allocate(n * sizeof(float)));
    grad_acc_ = static_cast<float*>(backend.allocate(n * sizeof(float)));
    work_shard_ = backend.allocate(n * dtype_size(backend.param_dtype()));
    int64_t max_shard = 0;
    for (int u = 0; u < layout.num_units(); ++u)
      max_shard = std::max(max_shard, layout.unit(u).shard);
    for (auto& b : scattered_)
      b = backend.allocate(static_cast<size_t>(max_shard) * dtype_size(backend.grad_dtype()));
  }
  ~Fsdp() override {
    backend_.deallocate(master_);
    backend_.deallocate(grad_acc_);
    backend_.deallocate(work_shard_);
    for (auto* b : scattered_) backend_.deallocate(b);
  }
  std::string name() const override { return "fsdp"; }
  std::string transport_name() const override { return coll_->name(); }
  float* master() override { return master_; }
  float* grad_acc() override { return grad_acc_; }

  // The gather source is this rank's working-precision copy of its shard.
  void publish_params(StepContext&) override {
    backend_.cast_params(master_, work_shard_, layout_.shard_total());
    backend_.fill_zero(grad_acc_, static_cast<size_t>(layout_.shard_total()) * sizeof(float));
  }

  Request fetch(StepContext&, int unit, void* dst) override {
    const UnitShard& s = layout_.unit(unit);
    const size_t es = dtype_size(backend_.param_dtype());
    return coll_->allgather(static_cast<char*>(work_shard_) + static_cast<size_t>(s.offset) * es,
                            dst, s.shard, backend_.param_dtype());
  }
  void wait_fetch(StepContext&, Request r) override { coll_->wait(r); }

  Request push(StepContext&, int unit, const void* grads, int slot) override {
    return coll_->reduce_scatter(grads, scattered_[slot], layout_.unit(unit).shard,
                                 backend_.grad_dtype());
  }
  void wait_push(StepContext&, Request r) override { coll_->wait(r); }
  void land_push(StepContext& ctx, int unit, int slot) override {
    const UnitShard& s = layout_.unit(unit);
    ctx.recorder.timed(
        EventKind::accumulate_grad, Lane::compute, {.step = ctx.step, .unit = unit},
        [&] { backend_.accumulate_grad(grad_acc_ + s.offset, scattered_[slot], s.shard); });
  }
  void progress() override { coll_->progress(); }

 private:
  ComputeBackend& backend_;
  const ShardLayout& layout_;
  std::unique_ptr<Collectives> coll_;
  float* master_ = nullptr;
  float* grad_acc_ = nullptr;
  void* work_shard_ = nullptr;
  void* scattered_[2] = {nullptr, nullptr};
};

}  // namespace

std::unique_ptr<Strategy> make_fsdp_strategy(ComputeBackend& backend, const ShardLayout& layout,
                                             MPI_Comm comm, const StrategyOptions& opt) {
  return std::make_unique<Fsdp>(backend, layout,
                                make_collectives(opt.collectives, {comm, backend}));
}

}  // namespace minipt
