// odc: on-demand communication. Each rank still owns one shard of every unit, but
// pulls the shards it needs with one-sided gets and pushes gradient slices into the
// owners' fp32 accumulators with one-sided accumulates. Nothing inside a minibatch
// waits for another rank; ranks may run different numbers of microbatches.
//
// Synchronisation per step: one barrier after the last push (every gradient has
// landed in its owner's accumulator, then the owners run AdamW), and one after the
// optimizer (the updated shards are published before anyone pulls them again). The
// second is cheap: the optimizer's work is the same on every rank.
#include <vector>

#include "comm/transports.hpp"
#include "train/strategy.hpp"

namespace minipt {
namespace {

class Odc final : public Strategy {
 public:
  // `world` owners (the shard group) whose ranks in the transport's communicator start
  // at `first`.
  Odc(ComputeBackend& backend, const ShardLayout& layout, std::unique_ptr<OneSided> os, int world,
      int first)
      : backend_(backend), layout_(layout), os_(std::move(os)), world_(world), first_(first) {
    const auto n = static_cast<size_t>(layout.shard_total());
    if (os_->region_params() != nullptr) {  // the transport allocates them (MPI windows)
      master_ = os_->region_params();
      grad_acc_ = os_->region_grads();
    } else {
      master_ = static_cast<float*>(backend.allocate(n * sizeof(float)));
      grad_acc_ = static_cast<float*>(backend.allocate(n * sizeof(float)));
      owned_ = true;
    }
    os_->expose(master_, grad_acc_, layout.shard_total());
  }
  ~Odc() override {
    os_.reset();
    if (owned_) {
      backend_.deallocate(master_);
      backend_.deallocate(grad_acc_);
    }
  }
  std::string name() const override { return "odc"; }
  std::string transport_name() const override { return os_->name(); }
  float* master() override { return master_; }
  float* grad_acc() override { return grad_acc_; }

  void publish_params(StepContext&) override {
    backend_.fill_zero(grad_acc_, static_cast<size_t>(layout_.shard_total()) * sizeof(float));
    os_->publish_params();                 // e.g. refresh the bf16 mirror peers pull from
    backend_.time_source().synchronize();  // the owner's updates are complete on the device
  }

  Request fetch(StepContext&, int unit, void* dst) override {
    const UnitShard& s = layout_.unit(unit);
    const size_t es = dtype_size(backend_.param_dtype());
    std::vector<Request> reqs;
    for (int r = 0; r < world_; ++r)
      reqs.push_back(os_->get(first_ + r, s.offset, s.shard,
                              static_cast<char*>(dst) + static_cast<size_t>(r * s.shard) * es,
                              backend_.param_dtype()));
    return store(std::move(reqs));
  }
  void wait_fetch(StepContext&, Request r) override { wait_all(r); }

  Request push(StepContext&, int unit, const void* grads, int) override {
    const UnitShard& s = layout_.unit(unit);
    const size_t es = dtype_size(backend_.grad_dtype());
    std::vector<Request> reqs;
    for (int r = 0; r < world_; ++r)
      reqs.push_back(
          os_->accumulate(first_ + r, s.offset, s.shard,
                          static_cast<const char*>(grads) + static_cast<size_t>(r * s.shard) * es,
                          backend_.grad_dtype()));
    return store(std::move(reqs));
  }
  void wait_push(StepContext&, Request r) override { wait_all(r); }
  void land_push(StepContext&, int, int) override {}

  void flush(StepContext&) override { os_->flush(); }
  // After the gradient barrier the transport adds what it held back into the accumulator.
  void barrier(StepContext& ctx, bool gradients) override {
    os_->sync_local();
    ctx.recorder.timed(EventKind::barrier, Lane::compute, {.step = ctx.step},
                       [&] { ctx.control.barrier(); });
    os_->sync_local();
    if (gradients) os_->reduce_slots();
  }
  void progress() override { os_->progress(); }

 private:
  Request store(std::vector<Request> reqs) {
    groups_.push_back(std::move(reqs));
    return static_cast<Request>(groups_.size() - 1);
  }
  void wait_all(Request r) {
    auto& g = groups_.at(static_cast<size_t>(r));
    for (Request x : g) os_->wait(x);
    g.clear();
    // Groups are only ever a few outstanding at once; reset the table when all done.
    bool all_done = true;
    for (const auto& x : groups_) all_done = all_done && x.empty();
    if (all_done) groups_.clear();
  }

  ComputeBackend& backend_;
  const ShardLayout& layout_;
  std::unique_ptr<OneSided> os_;
  int world_;
  int first_;
  float* master_ = nullptr;
  float* grad_acc_ = nullptr;
  bool owned_ = false;
  std::vector<std::vector<Request>> groups_;
};

}  // namespace

std::unique_ptr<Strategy> make_odc_strategy(ComputeBackend& backend, const ShardLayout& layout,
                                            MPI_Comm world, MPI_Comm shard,
                                            const StrategyOptions& opt) {
  int group = 1;
  MPI_Comm_size(shard, &group);
  OneSidedSetup os =
      make_onesided(opt.onesided, {.world = world,
                                   .shard = shard,
                                   .backend = backend,
                                   .count = layout.shard_total(),
                                   .deterministic = opt.deterministic,
                                   .pull_by_kernel = opt.pull_by_kernel,
                                   .declared_ranks_per_node = opt.declared_ranks_per_node});
  return std::make_unique<Odc>(backend, layout, std::move(os.transport), group, os.first_owner);
}

}  // namespace minipt
