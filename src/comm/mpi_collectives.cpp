#include <vector>

#include "comm/mpi_transports.hpp"

namespace minipt {
namespace {

// Non-blocking MPI collectives. Requests index a growing table of MPI_Requests; a
// slot is recycled once waited on.
class MpiCollectives final : public Collectives {
 public:
  explicit MpiCollectives(MPI_Comm comm) : comm_(comm) {}
  std::string name() const override { return "mpi"; }

  Request allgather(const void* shard, void* full, int64_t count, DType dtype) override {
    MPI_Request r;
    MPI_Iallgather(shard, static_cast<int>(count), mpi_type(dtype), full, static_cast<int>(count),
                   mpi_type(dtype), comm_, &r);
    return requests_.store(r);
  }
  Request reduce_scatter(const void* full, void* shard_out, int64_t count, DType dtype) override {
    MPI_Request r;
    MPI_Ireduce_scatter_block(full, shard_out, static_cast<int>(count), mpi_type(dtype), MPI_SUM,
                              comm_, &r);
    return requests_.store(r);
  }
  void wait(Request r) override { requests_.wait(r); }
  // Non-blocking collectives progress only inside MPI calls on most implementations;
  // the trainer calls this between compute chunks.
  void progress() override { requests_.test_all(); }

 private:
  MPI_Comm comm_;
  MpiRequestTable requests_;
};

}  // namespace

std::unique_ptr<Collectives> make_mpi_collectives(MPI_Comm comm) {
  return std::make_unique<MpiCollectives>(comm);
}

}  // namespace minipt
