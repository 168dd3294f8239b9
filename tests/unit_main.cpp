#include <gtest/gtest.h>
#include <mpi.h>

#ifdef MINIPT_HAVE_KOKKOS
#include "compute/kokkos/kokkos_backend.hpp"
#endif

// Unit tests run in one process; MPI is initialised so that library code that asks
// for the rank works, as it would under mpirun -n 1.
int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
#ifdef MINIPT_HAVE_KOKKOS
  minipt::kokkos_initialize(argc, argv);
#endif
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
#ifdef MINIPT_HAVE_KOKKOS
  minipt::kokkos_finalize();
#endif
  MPI_Finalize();
  return rc;
}
