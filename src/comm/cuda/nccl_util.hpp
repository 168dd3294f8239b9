// NCCL helpers shared by the NCCL transports: an error check that throws with the failing
// call and its place, and a communicator over the ranks of an MPI communicator.
#pragma once

#include <mpi.h>
#include <nccl.h>

#include <stdexcept>
#include <string>

#include "comm/cuda/cuda_util.hpp"

namespace minipt::gpucomm {

inline void check_nccl(ncclResult_t res, const char* call, const char* file, int line) {
  if (res != ncclSuccess)
    throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call + ": " +
                             ncclGetErrorString(res));
}
#define MINIPT_NCCL_CHECK(call) ::minipt::gpucomm::check_nccl((call), #call, __FILE__, __LINE__)

// One NCCL communicator over the ranks of `comm` (same rank order), its unique id made by
// rank 0 and broadcast over MPI. Collective over `comm`.
inline ncclComm_t init_nccl_comm(MPI_Comm comm) {
  int rank = 0;
  int size = 0;
  MINIPT_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MINIPT_MPI_CHECK(MPI_Comm_size(comm, &size));
  ncclUniqueId id{};
  if (rank == 0) MINIPT_NCCL_CHECK(ncclGetUniqueId(&id));
  MINIPT_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, comm));
  ncclComm_t nccl = nullptr;
  MINIPT_NCCL_CHECK(ncclCommInitRank(&nccl, size, id, rank));
  return nccl;
}

}  // namespace minipt::gpucomm
