#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>

#include "comm/mpi_transports.hpp"

namespace minipt {
namespace {

class MpiControl final : public Control {
 public:
  explicit MpiControl(MPI_Comm comm) : comm_(comm) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void barrier() override { MPI_Barrier(comm_); }
  double allreduce_sum(double x) override {
    double y = 0;
    MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_SUM, comm_);
    return y;
  }
  double allreduce_max(double x) override {
    double y = 0;
    MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_MAX, comm_);
    return y;
  }

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

}  // namespace

MPI_Datatype mpi_type(DType t) {
  if (t == DType::f32) return MPI_FLOAT;
  throw std::runtime_error("MPI transports move fp32 only (bf16 needs a GPU transport)");
}

Request MpiRequestTable::store(MPI_Request r) {
  if (!free_.empty()) {
    const Request id = free_.back();
    free_.pop_back();
    requests_[static_cast<size_t>(id)] = r;
    return id;
  }
  requests_.push_back(r);
  return static_cast<Request>(requests_.size() - 1);
}

void MpiRequestTable::wait(Request r) {
  if (r == kNoRequest) return;
  MPI_Wait(&requests_.at(static_cast<size_t>(r)), MPI_STATUS_IGNORE);
  free_.push_back(r);
}

void MpiRequestTable::test_all() {
  int flag = 0;
  for (auto& r : requests_)
    if (r != MPI_REQUEST_NULL) MPI_Test(&r, &flag, MPI_STATUS_IGNORE);
}

std::pair<int, std::string> first_failure(MPI_Comm comm, std::string mine) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  int failed = mine.empty() ? INT_MAX : rank, first = INT_MAX;
  MPI_Allreduce(&failed, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == INT_MAX) return {-1, ""};
  int len = static_cast<int>(mine.size());
  MPI_Bcast(&len, 1, MPI_INT, first, comm);
  mine.resize(static_cast<size_t>(len));
  MPI_Bcast(mine.data(), len, MPI_CHAR, first, comm);
  return {first, mine};
}

void broadcast_bytes(MPI_Comm comm, std::string& bytes, int root) {
  uint64_t size = bytes.size();
  MPI_Bcast(&size, 1, MPI_UINT64_T, root, comm);
  bytes.resize(static_cast<size_t>(size));
  constexpr uint64_t kPiece = uint64_t{1} << 30;
  for (uint64_t at = 0; at < size; at += kPiece) {
    const int n = static_cast<int>(std::min(kPiece, size - at));
    MPI_Bcast(bytes.data() + at, n, MPI_CHAR, root, comm);
  }
}

std::unique_ptr<Control> make_mpi_control(MPI_Comm comm) {
  return std::make_unique<MpiControl>(comm);
}

}  // namespace minipt
