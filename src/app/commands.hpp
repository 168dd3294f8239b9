// Command-line front end: argument parsing and the `run` and `plan` sub-commands.
// Untimed code: nothing here runs inside a step.
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

namespace minipt {

struct CommandLine {
  std::string command;  // run | plan | help | version
  std::vector<std::string> configs;
  std::vector<std::string> overrides;
  std::string out;  // --out overrides run.out
  int ranks = 0;    // plan: --ranks (0: the MPI world size)
  bool quiet = false;
  std::vector<std::string> argv;  // the whole command line, for provenance (set by main)
};

// Throws ConfigError("", ...) with a usage hint on bad arguments.
CommandLine parse_command_line(int argc, char** argv);
std::string usage_text();
std::string help_text();

int run_command(const CommandLine& cl, MPI_Comm comm);
int plan_command(const CommandLine& cl);

}  // namespace minipt
