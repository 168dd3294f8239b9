// MPI implementations of the communication interfaces, on host memory: the only ones
// CI can run, and the portable fallback everywhere.
#pragma once

#include <mpi.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "comm/transport.hpp"

namespace minipt {

std::unique_ptr<Control> make_mpi_control(MPI_Comm comm);

// The lowest rank of `comm` whose `mine` is non-empty, and its text, on every rank
// (collective); -1 and "" if every rank's is empty. For errors found on some ranks only.
std::pair<int, std::string> first_failure(MPI_Comm comm, std::string mine);
// `bytes` of rank `root` on every rank of `comm` (collective; the size first, then the
// bytes in pieces MPI's int counts can hold).
void broadcast_bytes(MPI_Comm comm, std::string& bytes, int root);
// fsdp: MPI_Iallgather / MPI_Ireduce_scatter_block (sum).
std::unique_ptr<Collectives> make_mpi_collectives(MPI_Comm comm);
// odc: two MPI_Win_allocate'd windows (params, gradient accumulator) under one
// passive-target lock_all epoch; MPI_Rget pulls, MPI_Raccumulate(MPI_SUM) pushes.
// The windows are allocated by MPI: region_params()/region_grads() return them, and
// sync_local() is MPI_Win_sync on both.
std::unique_ptr<OneSided> make_mpi_onesided(MPI_Comm comm, int64_t count);

MPI_Datatype mpi_type(DType t);

// Outstanding MPI requests behind the transports' integer Request handles; a slot is
// recycled once waited on.
class MpiRequestTable {
 public:
  Request store(MPI_Request r);
  void wait(Request r);
  // MPI_Test on everything outstanding: drives progress of non-blocking operations.
  void test_all();

 private:
  std::vector<MPI_Request> requests_;
  std::vector<Request> free_;
};

}  // namespace minipt
