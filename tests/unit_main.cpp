#include <gtest/gtest.h>
#include <mpi.h>

// Unit tests run in one process; MPI is initialised so that library code that asks
// for the rank works, as it would under mpirun -n 1.
int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  MPI_Finalize();
  return rc;
}
