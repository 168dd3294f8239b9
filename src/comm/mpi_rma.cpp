#include <stdexcept>
#include <vector>

#include "comm/mpi_transports.hpp"

namespace minipt {
namespace {

// Passive-target RMA: both windows stay under MPI_Win_lock_all for the whole run, so
// no rank's progress ever depends on a target's participation. Gets and accumulates
// are request-based (MPI_Rget / MPI_Raccumulate) for local completion; remote
// completion comes from MPI_Win_flush_all in flush().
class MpiRma final : public OneSided {
 public:
  MpiRma(MPI_Comm comm, int64_t count) : comm_(comm), count_(count) {
    const MPI_Aint bytes = static_cast<MPI_Aint>(count) * static_cast<MPI_Aint>(sizeof(float));
    MPI_Info info;
    MPI_Info_create(&info);
    // Only MPI_SUM on floats is used: lets the implementation use hardware atomics.
    MPI_Info_set(info, "accumulate_ops", "same_op");
    MPI_Win_allocate(bytes, sizeof(float), MPI_INFO_NULL, comm_, &params_, &params_win_);
    MPI_Win_allocate(bytes, sizeof(float), info, comm_, &grads_, &grads_win_);
    MPI_Info_free(&info);
    std::fill(params_, params_ + count, 0.0f);
    std::fill(grads_, grads_ + count, 0.0f);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, params_win_);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, grads_win_);
  }
  ~MpiRma() override {
    MPI_Win_unlock_all(grads_win_);
    MPI_Win_unlock_all(params_win_);
    MPI_Win_free(&grads_win_);
    MPI_Win_free(&params_win_);
  }
  std::string name() const override { return "mpi-rma"; }
  float* region_params() override { return params_; }
  float* region_grads() override { return grads_; }

  void expose(float* params, float* grads, int64_t count) override {
    if (params != params_ || grads != grads_ || count != count_)
      throw std::logic_error("MpiRma::expose: use region_params()/region_grads()");
  }
  Request get(int owner, int64_t offset, int64_t n, void* dst, DType dst_dtype) override {
    MPI_Request r;
    MPI_Rget(dst, static_cast<int>(n), mpi_type(dst_dtype), owner, static_cast<MPI_Aint>(offset),
             static_cast<int>(n), MPI_FLOAT, params_win_, &r);
    return requests_.store(r);
  }
  Request accumulate(int owner, int64_t offset, int64_t n, const void* src,
                     DType src_dtype) override {
    MPI_Request r;
    MPI_Raccumulate(src, static_cast<int>(n), mpi_type(src_dtype), owner,
                    static_cast<MPI_Aint>(offset), static_cast<int>(n), MPI_FLOAT, MPI_SUM,
                    grads_win_, &r);
    return requests_.store(r);
  }
  void wait(Request r) override { requests_.wait(r); }
  void flush() override {
    MPI_Win_flush_all(params_win_);
    MPI_Win_flush_all(grads_win_);
  }
  void progress() override { requests_.test_all(); }
  void sync_local() override {
    MPI_Win_sync(params_win_);
    MPI_Win_sync(grads_win_);
  }

 private:
  MPI_Comm comm_;
  int64_t count_;
  float* params_ = nullptr;
  float* grads_ = nullptr;
  MPI_Win params_win_ = MPI_WIN_NULL, grads_win_ = MPI_WIN_NULL;
  MpiRequestTable requests_;
};

}  // namespace

std::unique_ptr<OneSided> make_mpi_onesided(MPI_Comm comm, int64_t count) {
  return std::make_unique<MpiRma>(comm, count);
}

}  // namespace minipt
