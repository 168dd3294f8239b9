#include <gtest/gtest.h>
#include <mpi.h>

#include <vector>

#include "compute/backend.hpp"

// Unit tests run in one process; MPI is initialised so that library code that asks
// for the rank works, as it would under mpirun -n 1.
int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  // Backends take their own options (--kokkos-*); gtest parses the rest.
  std::vector<char*> args = minipt::initialize_backends(argc, argv);
  int own_argc = static_cast<int>(args.size());
  args.push_back(nullptr);
  ::testing::InitGoogleTest(&own_argc, args.data());
  const int rc = RUN_ALL_TESTS();
  minipt::finalize_backends();
  MPI_Finalize();
  return rc;
}
