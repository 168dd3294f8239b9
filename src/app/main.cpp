// minipt: LLM post-training communication proxy. See README.md.
//
// Exit codes: 0 success, 2 bad input (configuration, command line, files), 1 any
// other failure. A rank that fails at run time aborts the whole job with a message
// naming the rank, so nothing hangs. SIGTERM/SIGINT end a rank with the signal's status
// (128 + signal) after a message naming the rank and the signal.
#include <mpi.h>

#include <cstdio>
#include <exception>
#include <vector>

#include "app/commands.hpp"
#include "app/signals.hpp"
#include "compute/backend.hpp"
#include "core/error.hpp"
#include "trace/provenance.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  // Backends' own options (--kokkos-*) are taken out; minipt parses the rest.
  std::vector<char*> own_args = minipt::initialize_backends(argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  minipt::install_termination_handlers(rank);  // SIGTERM, SIGINT: see app/signals.hpp
  int rc = 0;
  try {
    minipt::CommandLine cl = minipt::agree_command_line(static_cast<int>(own_args.size()),
                                                        own_args.data(), MPI_COMM_WORLD);
    cl.argv.assign(argv, argv + argc);
    if (cl.command == "help") {
      if (rank == 0) std::fputs(minipt::help_text().c_str(), stdout);
    } else if (cl.command == "version") {
      if (rank == 0) {
        std::printf("minipt %s (%s) backends:%s\n", MINIPT_VERSION,
                    minipt::source_revision().c_str(), minipt::backends_version().c_str());
      }
    } else if (cl.command == "plan") {
      rc = rank == 0 ? minipt::plan_command(cl) : 0;
    } else if (cl.command == "simulate") {
      rc = rank == 0 ? minipt::simulate_command(cl) : 0;
    } else if (cl.command == "calibrate") {
      rc = rank == 0 ? minipt::calibrate_command(cl) : 0;
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
  minipt::silence_termination_message();  // the work is done: see app/signals.hpp
  minipt::finalize_backends();
  MPI_Finalize();
  return rc;
}
