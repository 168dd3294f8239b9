// A command's inputs: its configuration, read once on rank 0 and agreed by every rank,
// and the check that its outputs can be written.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "app/commands.hpp"
#include "comm/mpi_transports.hpp"
#include "config/config.hpp"
#include "config/cost_file.hpp"
#include "config/toml.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "step/run_plan.hpp"
#include "trace/atomic_file.hpp"
#include "trace/run_file.hpp"
#include "workload/workload.hpp"

namespace minipt {

Config load_command_config(const CommandLine& cl, const InputReader& reader) {
  std::vector<std::string> overrides = cl.overrides;
  // Quoted and escaped as TOML, so that any file name (quotes, backslashes) comes through.
  if (!cl.out.empty()) overrides.push_back("run.out=" + toml::Value::of_string(cl.out).to_toml());
  Config cfg = load_config(cl.configs, overrides, reader);
  // The command's cost file, parsed once: simulate's --cost, else compute.cost_model.
  if (!cl.cost.empty())
    load_cost_file(cfg, cl.cost, "--cost", reader);
  else
    load_cost_file(cfg, cfg.compute.cost_model, "compute.cost_model", reader);
  return cfg;
}

namespace {

// check_writable probes a temp beside PATH, but the final rename onto PATH also fails when PATH is
// a directory; catch that before the run rather than after it.
void check_not_directory(const std::string& path, const std::string& key) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw ConfigError(key, "cannot write '" + path + "': it is a directory");
}

}  // namespace

std::string json_path(const std::string& h5) { return h5.substr(0, h5.size() - 3) + ".json"; }

void check_json_output(const Config& cfg) {
  if (cfg.run.json) check_not_directory(json_path(cfg.run.out), "run.json");
}

// Rank 0 checks that the outputs can be written; every rank learns the verdict.
void check_outputs(const Config& cfg, MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::string error;
  if (rank == 0) {
    try {
      check_not_directory(cfg.run.out, "run.out");
      check_json_output(cfg);
      check_writable(cfg.run.out, "run.out");
      if (!cfg.run.dump.empty()) check_not_directory(cfg.run.dump, "run.dump");
      if (!cfg.run.dump.empty()) check_writable(cfg.run.dump, "run.dump");
    } catch (const ConfigError& e) {
      error = e.what();
    }
  }
  int len = static_cast<int>(error.size());
  MPI_Bcast(&len, 1, MPI_INT, 0, comm);
  error.resize(static_cast<size_t>(len));
  MPI_Bcast(error.data(), len, MPI_CHAR, 0, comm);
  if (len > 0) throw ConfigError("", error);
}

namespace {

// The arguments a rank's input depends on, in order, as they were written.
std::vector<std::string> input_arguments(const CommandLine& cl) {
  std::vector<std::string> args;
  for (const auto& c : cl.configs) args.push_back("--config " + c);
  for (const auto& s : cl.overrides) args.push_back("--set " + s);
  if (!cl.out.empty()) args.push_back("--out " + cl.out);
  return args;
}

// "" if `mine` are rank 0's arguments, else the first that differs.
std::string argument_difference(const std::vector<std::string>& mine,
                                const std::vector<std::string>& root) {
  size_t i = 0;
  while (i < mine.size() && i < root.size() && mine[i] == root[i]) ++i;
  if (i == mine.size() && i == root.size()) return "";
  const auto quoted = [](const std::vector<std::string>& v, size_t k) {
    return k < v.size() ? "'" + v[k] + "'" : std::string("nothing");
  };
  return "its command line differs from rank 0's: " + quoted(mine, i) + " where rank 0 has " +
         quoted(root, i) +
         " (every rank runs on the files rank 0 reads, so every rank must be given the same "
         "--config, --set and --out)";
}

// The failure of the first rank that has one, as a ConfigError on every rank: rank 0's
// message as it is, another's naming the rank.
void throw_first_failure(MPI_Comm comm, const std::string& mine) {
  if (const auto [first, text] = first_failure(comm, mine); first >= 0)
    throw ConfigError("", first == 0 ? text : "rank " + std::to_string(first) + ": " + text);
}

// What `run` checks before any work: the configuration (its cost file parsed), the
// workload it draws (the run plan checks every step) and the tuning file.
RunPlan load_checked_plan(const CommandLine& cl, const InputReader& reader, int world) {
  Config cfg = load_command_config(cl, reader);
  if (cfg.compute.tuning.kind == TuningSetting::Kind::file)
    cfg.tuning_choices = std::make_shared<const KernelChoices>(KernelChoices::from_json(
        reader.read(cfg.compute.tuning.path, "compute.tuning", "tuning file"),
        cfg.compute.tuning.path, "compute.tuning"));
  return RunPlan(cfg, world);
}

}  // namespace

std::vector<NamedPath> read_inputs(const CommandLine& cl, const Config& cfg,
                                   const InputBundle& read) {
  std::vector<NamedPath> in;
  for (const auto& [path, bytes] : read.files) {
    const bool named = std::find(cl.configs.begin(), cl.configs.end(), path) != cl.configs.end();
    in.push_back({named                                 ? "--config"
                  : path == cfg.workload.histogram_file ? "workload.histogram_file"
                  : path == cl.cost                     ? "--cost"
                  : path == cfg.compute.cost_model      ? "compute.cost_model"
                                                        : "base (a configuration include)",
                  path});
  }
  return in;
}

RunPlan load_agreed_plan(const CommandLine& cl, MPI_Comm comm) {
  int rank = 0, world = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &world);
  std::optional<RunPlan> plan;
  // Rank 0 reads every input file once, recording the bytes; its error, if any, travels
  // in the bundle, so that every rank exits 2 and only rank 0 prints it.
  InputBundle bundle;
  std::string wire;
  if (rank == 0) {
    bundle.arguments = input_arguments(cl);
    try {
      plan.emplace(load_checked_plan(cl, InputReader::recording_into(bundle), world));
      const Config& cfg = plan->config();
      // The output-path rule: run.out, its JSON, run.dump against each other and the inputs.
      std::vector<NamedPath> outputs = {{"run.out", cfg.run.out}};
      if (cfg.run.json) outputs.push_back({"run.json", json_path(cfg.run.out)});
      if (!cfg.run.dump.empty()) outputs.push_back({"run.dump", cfg.run.dump});
      check_output_paths(outputs, read_inputs(cl, cfg, bundle));
    } catch (const ConfigError& e) {
      bundle.error = e.what();
    }
    wire = bundle.serialize();
  }
  broadcast_bytes(comm, wire, 0);
  if (rank != 0) bundle = InputBundle::deserialize(wire);
  if (!bundle.error.empty()) throw ConfigError("", bundle.error);
  // The other ranks load the same bytes through the same code; a rank given other
  // arguments (an MPMD job) is an error naming it rather than a run on other input.
  std::string error;
  if (rank != 0) {
    try {
      error = argument_difference(input_arguments(cl), bundle.arguments);
      if (error.empty()) plan.emplace(load_checked_plan(cl, InputReader::replaying(bundle), world));
    } catch (const ConfigError& e) {
      error = e.what();
    }
  }
  throw_first_failure(comm, error);
  return std::move(*plan);
}

CommandLine agree_command_line(int argc, char** argv, MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  CommandLine cl;
  std::string error;
  try {
    cl = parse_command_line(argc, argv);
  } catch (const ConfigError& e) {
    error = e.what();
  }
  throw_first_failure(comm, error);
  // plan, simulate and calibrate work on rank 0 alone and run on every rank, so a rank
  // whose command is another would leave the others waiting.
  std::string root_command = cl.command;
  broadcast_bytes(comm, root_command, 0);
  if (cl.command != root_command) {
    error = "its command is '" + cl.command + "' where rank 0's is '" + root_command +
            "' (every rank of the job must be given the same command)";
  }
  throw_first_failure(comm, error);
  return cl;
}

}  // namespace minipt
