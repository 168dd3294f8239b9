// Command-line front end, one file per part: cli.cpp (usage, --help, parsing), inputs.cpp
// (configuration read once and agreed by the ranks, output checks), results.cpp (root
// attributes, JSON summary and console report from one field table), run_command.cpp,
// plan_command.cpp, simulate_command.cpp, calibrate_command.cpp.
// Untimed code: nothing here runs inside a step.
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

#include "core/input_bundle.hpp"
#include "core/output_paths.hpp"

namespace minipt {

struct CommandLine {
  std::string command;  // run | plan | simulate | calibrate | help | version
  std::vector<std::string> configs;
  std::vector<std::string> overrides;
  std::string out;                     // --out overrides run.out (calibrate: the cost file)
  int ranks = 0;                       // plan, simulate: --ranks (plan: 0 = the MPI world size)
  std::string cost;                    // simulate: --cost COST.toml
  std::vector<std::string> inputs;     // calibrate: RUN.h5 files
  std::vector<std::string> comm;       // calibrate: --comm COMM.json files
  std::vector<std::string> variation;  // calibrate: --variation RUN.h5 files
  bool quiet = false;
  bool json = false;              // plan: --json prints the bound and microbatch times as JSON
  std::vector<std::string> argv;  // the whole command line, for provenance (set by main)
};

// Throws ConfigError("", ...) with a usage hint on bad arguments.
CommandLine parse_command_line(int argc, char** argv);
// (collective) parse_command_line on every rank of `comm`, agreed: a rank whose command
// line does not parse, or whose command differs from rank 0's, is a ConfigError on every
// rank ("rank N: ..." unless N is 0), so that no rank waits in a collective the others
// never reach.
CommandLine agree_command_line(int argc, char** argv, MPI_Comm comm);
std::string usage_text();
std::string help_text();

int run_command(const CommandLine& cl, MPI_Comm comm);
int plan_command(const CommandLine& cl);
int simulate_command(const CommandLine& cl);   // simulate_command.cpp
int calibrate_command(const CommandLine& cl);  // calibrate_command.cpp
// The configuration of a command line: its files (through `reader`), --set overrides and
// --out, with its cost file (simulate's --cost, else compute.cost_model) parsed into
// compute.costs (load_cost_file).
struct Config;
Config load_command_config(const CommandLine& cl, const InputReader& reader = InputReader());
// Every input file a command read through a recording InputReader (`read`: its bundle),
// each named by its role (--config, base, workload.histogram_file, compute.cost_model, --cost),
// for check_output_paths (core/output_paths.hpp).
std::vector<NamedPath> read_inputs(const CommandLine& cl, const Config& cfg,
                                   const InputBundle& read);
// `run` (collective): rank 0 reads the input files and broadcasts their bytes; every rank
// loads and checks the configuration and makes the run plan (which checks the workload)
// from those bytes. Rank 0's input error, or a rank whose --config, --set or --out differ
// from rank 0's, is a ConfigError on every rank (rank 0 prints it).
class RunPlan;
RunPlan load_agreed_plan(const CommandLine& cl, MPI_Comm comm);
// (collective) Rank 0 checks that run.out, its JSON and run.dump can be written; every rank
// gets its ConfigError.
void check_outputs(const Config& cfg, MPI_Comm comm);
// The JSON summary's path beside a timeline FILE.h5: FILE.json.
std::string json_path(const std::string& h5);
// run.json: a ConfigError naming it when FILE.json is a directory.
void check_json_output(const Config& cfg);

}  // namespace minipt
