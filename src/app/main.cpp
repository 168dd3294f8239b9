// minipt: LLM post-training communication proxy. See README.md.
//
// Exit codes: 0 success, 2 bad input (configuration, command line, files), 1 any
// other failure. A rank that fails at run time aborts the whole job with a message
// naming the rank, so nothing hangs.
#include <mpi.h>

#include <cstdio>
#include <exception>

#include "app/commands.hpp"
#include "config/error.hpp"
#ifdef MINIPT_HAVE_KOKKOS
#include "compute/kokkos/kokkos_backend.hpp"
#endif

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
#ifdef MINIPT_HAVE_KOKKOS
  minipt::kokkos_initialize(argc, argv);
#endif
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int rc = 0;
  try {
    const minipt::CommandLine cl = minipt::parse_command_line(argc, argv);
    if (cl.command == "help") {
      if (rank == 0) std::fputs(minipt::help_text().c_str(), stdout);
    } else if (cl.command == "version") {
      if (rank == 0) std::printf("minipt %s (%s)\n", MINIPT_VERSION, MINIPT_GIT_REVISION);
    } else if (cl.command == "plan") {
      rc = rank == 0 ? minipt::plan_command(cl) : 0;
    } else {
      rc = minipt::run_command(cl, MPI_COMM_WORLD);
    }
  } catch (const minipt::ConfigError& e) {
    // Every rank parses and validates the same input, so every rank gets here.
    if (rank == 0) std::fprintf(stderr, "minipt: error: %s\n", e.what());
    rc = 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "minipt: rank %d: error: %s\n", rank, e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
#ifdef MINIPT_HAVE_KOKKOS
  minipt::kokkos_finalize();
#endif
  MPI_Finalize();
  return rc;
}
