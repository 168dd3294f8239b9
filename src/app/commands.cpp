#include "app/commands.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>

#include "app/watchdog.hpp"
#include "comm/mpi_transports.hpp"
#include "config/config.hpp"
#include "config/toml.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "trace/atomic_file.hpp"
#include "trace/provenance.hpp"
#include "trace/summary_json.hpp"
#include "trace/waits.hpp"
#include "train/trainer.hpp"
#include "workload/workload.hpp"

namespace minipt {

std::string usage_text() {
  return "usage: minipt run  --config FILE [--config FILE ...] [--set key=value ...] [--out "
         "FILE.h5] [--quiet]\n"
         "       minipt plan --config FILE [--config FILE ...] [--set key=value ...] [--ranks N] "
         "[--json]\n"
         "       minipt simulate --config FILE [...] [--set key=value ...] --ranks N [--cost "
         "COST.toml] [--out FILE.h5] [--quiet]\n"
         "       minipt calibrate RUN.h5 [RUN.h5 ...] [--comm COMM.json ...] [--variation "
         "RUN.h5 ...] --out COST.toml\n"
         "       minipt --help | --version\n";
}

std::string help_text() {
  std::ostringstream s;
  s << "minipt " << MINIPT_VERSION << ": LLM post-training communication proxy (fsdp vs odc)\n\n"
    << usage_text()
    << "\n  run    trains under MPI (mpirun -n N minipt run ...), writes the HDF5 timeline\n"
       "         (run.out) and a JSON summary beside it, prints a PERFORMANCE line\n"
       "  plan   prints each rank's microbatches per step and the modelled step time of\n"
       "         fsdp+micro and odc+mini with communication free: their ratio bounds\n"
       "         what odc can gain from imbalance (--json: the bound and each rank's\n"
       "         modelled microbatch times, as JSON)\n"
       "  simulate  predicts a run on N ranks in one process (discrete-event simulation with\n"
       "         the same plan and operation structure; [sim] keys set the topology) and\n"
       "         writes the same HDF5 timeline (backend \"simulated\") and PERFORMANCE line\n"
       "  calibrate fits a cost model (unit times, per-element costs, link latency and\n"
       "         bandwidth) to measured timelines and run/bench/comm JSON, writes it as TOML;\n"
       "         --variation: timelines the unit-time spread is measured from instead\n\n"
       "Configuration: TOML files, later files and --set override earlier ones; a file may\n"
       "list `base = [\"other.toml\", ...]` to load first (relative to itself). Under\n"
       "mpirun, `run` reads the files (and the histogram and cost files they name) on rank 0\n"
       "only and sends their bytes to the other ranks, which must be given the same\n"
       "--config, --set and --out.\n"
       "Every key (type, default, allowed values):\n\n";
  std::string section;
  for (const auto& k : config_keys()) {
    const std::string sec = k.key.substr(0, k.key.find('.'));
    if (sec != section) {
      s << "[" << sec << "]\n";
      section = sec;
    }
    s << "  " << k.key << " (" << k.type << ") = " << k.default_value;
    if (!k.allowed.empty()) s << "   allowed: " << k.allowed;
    s << "\n      " << k.help << "\n";
  }
  s << "\nExit codes: 0 ok, 2 bad input (message names the key), 1 run-time failure.\n";
  return s.str();
}

namespace {

// Every option, and the commands that take it: the parser is built from this table, and an
// option given to another command is named as such, not as unknown.
enum class Opt { config, set, out, quiet, ranks, cost, comm, json, variation };
struct OptionSpec {
  Opt id;
  const char* names;     // CLI11's spelling: short and long names
  const char* commands;  // the commands that take it, '|'-separated
};
constexpr OptionSpec kOptions[] = {
    {Opt::config, "-c,--config", "run|plan|simulate"},
    {Opt::set, "-s,--set", "run|plan|simulate"},
    {Opt::out, "-o,--out", "run|simulate|calibrate"},
    {Opt::quiet, "-q,--quiet", "run|simulate"},
    {Opt::ranks, "--ranks", "plan|simulate"},
    {Opt::cost, "--cost", "simulate"},
    {Opt::comm, "--comm", "calibrate"},
    {Opt::json, "--json", "plan"},
    {Opt::variation, "--variation", "calibrate"},
};
constexpr const char* kCommands[] = {"run", "plan", "simulate", "calibrate"};

// Whether WORD is one of the SEP-separated items of LIST.
bool listed(const std::string& list, const std::string& word, char sep) {
  return (sep + list + sep).find(sep + word + sep) != std::string::npos;
}

[[noreturn]] void bad_usage(const std::string& key, const std::string& message) {
  throw ConfigError(key, message + "\n" + usage_text());
}

// What CLI11 fills in, before the checks: --ranks as given, and the top-level --version.
struct Parsed {
  CommandLine cl;
  std::string ranks;
  bool version = false;
};

void add_options(CLI::App& sub, Parsed& p) {
  const std::string command = sub.get_name();
  for (const OptionSpec& o : kOptions) {
    if (!listed(o.commands, command, '|')) continue;
    switch (o.id) {
      case Opt::config:  // repeatable, one value each time
        sub.add_option(o.names, p.cl.configs)->allow_extra_args(false)->take_all();
        break;
      case Opt::set:
        sub.add_option(o.names, p.cl.overrides)->allow_extra_args(false)->take_all();
        break;
      case Opt::comm:
        sub.add_option(o.names, p.cl.comm)->allow_extra_args(false)->take_all();
        break;
      case Opt::variation:
        sub.add_option(o.names, p.cl.variation)->allow_extra_args(false)->take_all();
        break;
      case Opt::out:  // given twice: the last one
        sub.add_option(o.names, p.cl.out)->take_last();
        break;
      case Opt::cost:
        sub.add_option(o.names, p.cl.cost)->take_last();
        break;
      case Opt::ranks:  // checked below, in base 10
        sub.add_option(o.names, p.ranks)->take_last();
        break;
      case Opt::quiet:
        sub.add_flag(o.names, p.cl.quiet);
        break;
      case Opt::json:
        sub.add_flag(o.names, p.cl.json);
        break;
    }
  }
  if (command == "calibrate") sub.add_option("RUN.h5", p.cl.inputs);
}

// ARG, left over by COMMAND's parser: an option of another command, or unknown.
[[noreturn]] void reject_extra(const std::string& command, const std::string& arg) {
  if (arg.size() > 1 && arg[0] == '-') {
    // --name=value, or -x followed by its value or by other short flags.
    const std::string name = arg[1] == '-' ? arg.substr(0, arg.find('=')) : arg.substr(0, 2);
    for (const OptionSpec& o : kOptions)
      if (listed(o.names, name, ','))
        bad_usage(name,
                  std::string("is an option of '") + o.commands + "', not of '" + command + "'");
  }
  bad_usage("", "unknown option '" + arg + "'");
}

bool given(const CLI::App& sub, const std::string& name) {
  const CLI::Option* o = sub.get_option_no_throw(name);
  return o != nullptr && o->count() > 0;
}

}  // namespace

CommandLine parse_command_line(int argc, char** argv) {
  Parsed p;
  CLI::App app("", "minipt");  // prints nothing: usage_text() and help_text() are ours
  app.require_subcommand(0, 1);
  app.add_flag("--version", p.version);
  for (const char* c : kCommands) add_options(*app.add_subcommand(c), p);
  app.add_subcommand("help")->allow_extras();
  app.add_subcommand("version")->allow_extras();

  // CLI11 reads `--opt=` (an empty value) as `--opt` and takes the next argument: pass it as
  // an explicit empty value. CLI11 wants the arguments in reverse order.
  std::vector<std::string> args;
  for (int i = argc - 1; i > 0; --i) {
    const std::string a = argv[i];
    const bool empty_value = a.size() > 3 && a.compare(0, 2, "--") == 0 && a.back() == '=' &&
                             a.find('=') == a.size() - 1;
    if (empty_value) {
      args.emplace_back();
      args.push_back(a.substr(0, a.size() - 1));
    } else {
      args.push_back(a);
    }
  }
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {  // -h or --help anywhere
    p.cl.command = "help";
    return p.cl;
  } catch (const CLI::ExtrasError&) {
    if (app.remaining_size() > 0) {
      bad_usage("", "unknown command '" + app.remaining().front() +
                        "' (allowed: run|plan|simulate|calibrate|--help|--version)");
    }
    const CLI::App& sub = *app.get_subcommands().front();
    reject_extra(sub.get_name(), sub.remaining().front());
  } catch (const CLI::ArgumentMismatch& e) {
    // An option given last, without its value: "--config: 1 required TEXT missing".
    const std::string what = e.what();
    if (what.find(" required ") != std::string::npos)
      bad_usage(what.substr(0, what.find(':')), "needs a value");
    bad_usage("", what);
  } catch (const CLI::ParseError& e) {
    bad_usage("", e.what());
  }

  CommandLine& cl = p.cl;
  const std::vector<CLI::App*> subs = app.get_subcommands();
  if (p.version || (!subs.empty() && subs.front()->get_name() == "version")) {
    cl.command = "version";
    return cl;
  }
  if (subs.empty()) bad_usage("", "no command given");
  const CLI::App& sub = *subs.front();
  cl.command = sub.get_name();
  if (cl.command == "help") return cl;
  const bool calibrate = cl.command == "calibrate";

  if (given(sub, "--out") && cl.out.empty())
    throw ConfigError("--out", "needs a file name (got an empty string)");
  if (given(sub, "--cost") && cl.cost.empty())
    throw ConfigError("--cost", "needs a file name (got an empty string)");
  if (given(sub, "--ranks")) {
    const std::string& v = p.ranks;
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (end == v.c_str() || *end != '\0' || n < 1 || n > 1000000)
      throw ConfigError("--ranks", "'" + v + "' is not a rank count (allowed: 1..1000000)");
    cl.ranks = static_cast<int>(n);
  }
  if (calibrate) {
    if (cl.inputs.empty()) bad_usage("calibrate", "needs at least one measured RUN.h5");
    for (const auto& in : cl.inputs)
      if (in.empty()) throw ConfigError("calibrate", "needs a file name (got an empty string)");
    if (cl.out.empty()) bad_usage("--out", "calibrate needs --out COST.toml");
    return cl;
  }
  if (cl.configs.empty()) bad_usage("--config", "at least one configuration file is required");
  for (const auto& c : cl.configs)
    if (c.empty()) throw ConfigError("--config", "needs a file name (got an empty string)");
  if (cl.command == "simulate" && cl.ranks == 0)
    bad_usage("--ranks", "simulate needs --ranks N (allowed: 1..1000000)");
  return cl;
}

Config load_command_config(const CommandLine& cl, const InputReader& reader) {
  std::vector<std::string> overrides = cl.overrides;
  // Quoted and escaped as TOML, so that any file name (quotes, backslashes) comes through.
  if (!cl.out.empty()) overrides.push_back("run.out=" + toml::Value::of_string(cl.out).to_toml());
  return load_config(cl.configs, overrides, reader);
}

namespace {

// check_writable probes a temp beside PATH, but the final rename onto PATH also fails when PATH is
// a directory; catch that before the run rather than after it.
void check_not_directory(const std::string& path, const std::string& key) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw ConfigError(key, "cannot write '" + path + "': it is a directory");
}

// Rank 0 checks that the outputs can be written; every rank learns the verdict.
void check_outputs(const Config& cfg, MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::string error;
  if (rank == 0) {
    try {
      check_not_directory(cfg.run.out, "run.out");
      if (cfg.run.json)
        check_not_directory(cfg.run.out.substr(0, cfg.run.out.size() - 3) + ".json", "run.json");
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

// The strings of a JSON array joined with ';' (the HDF5 attributes hosts and devices).
std::string joined(const nlohmann::json& strings) {
  std::string out;
  for (size_t i = 0; i < strings.size(); ++i)
    out += (i ? ";" : "") + strings.at(i).get<std::string>();
  return out;
}

std::string json_path(const std::string& h5) { return h5.substr(0, h5.size() - 3) + ".json"; }

}  // namespace

void print_report(const Config& cfg, const RunFile& rf, int world, bool backend_shown) {
  const RunSummary& s = rf.summary;
  std::vector<int64_t> tokens(static_cast<size_t>(world)), mbs(static_cast<size_t>(world));
  const int first = cfg.run.warmup_steps < cfg.run.steps ? cfg.run.warmup_steps : 0;
  for (const auto& r : rf.steps)
    if (r.step >= first) {
      tokens[static_cast<size_t>(r.rank)] += r.tokens;
      mbs[static_cast<size_t>(r.rank)] += r.microbatches;
    }
  const auto b = rf.string_attrs.find("backend");
  const std::string backend =
      backend_shown
          ? ""
          : " | backend " + (b != rf.string_attrs.end() ? b->second : cfg.compute.backend);
  std::printf("\n%s | %s+%s | %d ranks%s | workload %s | %d measured steps\n", cfg.run.name.c_str(),
              to_string(cfg.run.mode).c_str(), cfg.balance.scheme.c_str(), world, backend.c_str(),
              cfg.workload_name.c_str(), s.steps_measured);
  std::printf("  rank |     tokens | microbatches | utilization |   idle\n");
  // Large (simulated) jobs: the first and last 8 ranks.
  for (int r = 0; r < world; ++r) {
    if (world > 24 && r == 8) std::printf("   ... | (%d more ranks)\n", world - 16);
    if (world > 24 && r >= 8 && r < world - 8) continue;
    std::printf("  %4d | %10lld | %12lld | %10.1f%% | %5.1f%%\n", r,
                static_cast<long long>(tokens[static_cast<size_t>(r)]),
                static_cast<long long>(mbs[static_cast<size_t>(r)]),
                100 * s.utilization_per_rank[static_cast<size_t>(r)],
                100 * s.idle_per_rank[static_cast<size_t>(r)]);
  }
  // The peak MFU was taken against (the run's: the device's for a GPU, see Trainer).
  const auto peak_attr = rf.float_attrs.find("peak_tflops");
  const double peak =
      peak_attr != rf.float_attrs.end() ? peak_attr->second : cfg.compute.peak_tflops;
  const auto source = rf.string_attrs.find("peak_tflops_source");
  const std::string from =
      source != rf.string_attrs.end() ? ", from " + source->second : std::string();
  std::printf(
      "  tokens/s %.1f (%.1f per rank) | step %.2f ms | MFU %.1f%% (peak %.1f TFLOP/s per "
      "rank%s) | peak memory %.2f GiB (largest rank)\n",
      s.tokens_per_s, s.tokens_per_s_per_rank, s.step_ms, 100 * s.mfu, peak, from.c_str(),
      static_cast<double>(s.peak_memory_bytes) / (1 << 30));
  if (s.mfu > 1.0)
    std::printf(
        "WARNING: MFU %.2f is above 1: the peak (%.1f TFLOP/s per rank%s) is below what this "
        "device ran; set compute.device_peak_tflops (a GPU) or compute.peak_tflops\n",
        s.mfu, peak, from.c_str());
  // A figure the run could not measure (utilization without run.trace's events) is n/a.
  const auto figure = [](double v) {
    char text[32] = "n/a";
    if (std::isfinite(v)) std::snprintf(text, sizeof text, "%.4f", v);
    return std::string(text);
  };
  std::printf(
      "PERFORMANCE mode=%s balance=%s ranks=%d tokens_per_s=%.1f tokens_per_s_per_rank=%.1f "
      "utilization=%s "
      "idle_fraction=%s step_ms=%.3f mfu=%.4f peak_mem_gib=%.2f\n",
      to_string(cfg.run.mode).c_str(), cfg.balance.scheme.c_str(), world, s.tokens_per_s,
      s.tokens_per_s_per_rank, figure(s.utilization).c_str(), figure(s.idle_fraction).c_str(),
      s.step_ms, s.mfu, static_cast<double>(s.peak_memory_bytes) / (1 << 30));
  // Where the wall time went (measured steps, the ranks with events: all of a traced run,
  // sim.trace_ranks of a larger simulation): one grep-able line each, naming that count.
  const int traced = std::min(ranks_with_events(rf.events), world);
  if (traced > 0 && s.seconds > 0) {
    const TimeShares t =
        time_shares(rf.events, first, cfg.run.mode == Mode::fsdp, shard_group_size(cfg, world));
    const double wall = s.seconds * traced;
    const double other = wall - t.compute - t.exposed - t.waiting - t.barrier - t.optimizer;
    const std::pair<const char*, double> rows[] = {
        {"compute", t.compute},           {"exposed_communication", t.exposed},
        {"waiting_for_ranks", t.waiting}, {"barrier", t.barrier},
        {"optimizer", t.optimizer},       {"other", std::max(0.0, other)}};
    for (const auto& [name, v] : rows)
      std::printf("FRACTION %s %.4f traced_ranks=%d\n", name, v / wall, traced);
  }
  std::printf("timeline: %s\n", cfg.run.out.c_str());
  std::fflush(stdout);
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

// What `run` checks before any work: the configuration and the workload it draws; and
// the one input file it reads besides the configuration's, the cost file.
Config load_checked_config(const CommandLine& cl, const InputReader& reader, int world) {
  Config cfg = load_command_config(cl, reader);
  check_workload_budget(cfg.run.steps, cfg.workload.minibatch_size, world);
  check_step_lengths(cfg.workload, cfg.run.seed, cfg.run.steps, cfg.balance.token_budget);
  if (!cfg.compute.cost_model.empty())
    cfg.cost_model_text = std::make_shared<const std::string>(
        reader.read(cfg.compute.cost_model, "compute.cost_model", "configuration file"));
  if (cfg.compute.tuning.kind == TuningSetting::Kind::file)
    cfg.tuning_choices = std::make_shared<const KernelChoices>(KernelChoices::from_json(
        reader.read(cfg.compute.tuning.path, "compute.tuning", "tuning file"),
        cfg.compute.tuning.path, "compute.tuning"));
  return cfg;
}

}  // namespace

std::vector<NamedPath> read_inputs(const CommandLine& cl, const Config& cfg,
                                   const InputBundle& read) {
  std::vector<NamedPath> in;
  for (const auto& [path, bytes] : read.files) {
    const bool named = std::find(cl.configs.begin(), cl.configs.end(), path) != cl.configs.end();
    in.push_back({named                                 ? "--config"
                  : path == cfg.workload.histogram_file ? "workload.histogram_file"
                  : path == cfg.compute.cost_model      ? "compute.cost_model"
                                                        : "base (a configuration include)",
                  path});
  }
  return in;
}

Config load_agreed_config(const CommandLine& cl, MPI_Comm comm) {
  int rank = 0, world = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &world);
  Config cfg;
  // Rank 0 reads every input file once, recording the bytes; its error, if any, travels
  // in the bundle, so that every rank exits 2 and only rank 0 prints it.
  InputBundle bundle;
  std::string wire;
  if (rank == 0) {
    bundle.arguments = input_arguments(cl);
    try {
      cfg = load_checked_config(cl, InputReader::recording_into(bundle), world);
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
      if (error.empty()) cfg = load_checked_config(cl, InputReader::replaying(bundle), world);
    } catch (const ConfigError& e) {
      error = e.what();
    }
  }
  throw_first_failure(comm, error);
  return cfg;
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

namespace {

// The replica_reduce root attribute: none (one replica), step or unit.
std::string replica_reduce_attr(const ReplicaReduction& rr) {
  if (!rr.active()) return "none";
  return rr.per_unit() ? "unit" : "step";
}

}  // namespace

int run_command(const CommandLine& cl, MPI_Comm comm) {
  int rank = 0, world = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &world);
  const Config cfg = load_agreed_config(cl, comm);
  // run.timeout_s covers everything from here to the last output file on this rank.
  Watchdog watchdog(cfg.run.timeout_s,
                    [rank, timeout = cfg.run.timeout_s, steps = cfg.run.steps](int step) {
                      const std::string msg = timeout_message(rank, timeout, step, steps);
                      std::fprintf(stderr, "%s\n", msg.c_str());
                      std::fflush(stderr);
                      MPI_Abort(MPI_COMM_WORLD, 1);
                      std::_Exit(1);  // MPI_Abort does not return
                    });
  check_outputs(cfg, comm);
  // The progress watchdog (on by default): a stalled step ends the job naming the ranks
  // that did not reach it.
  std::unique_ptr<ProgressWatchdog> progress =
      start_progress_watchdog(comm,
                              {.factor = cfg.run.watchdog_factor,
                               .floor_s = cfg.run.watchdog_floor_s,
                               .grace_s = cfg.run.watchdog_grace_s},
                              [](const std::string& msg) {
                                std::fprintf(stderr, "%s\n", msg.c_str());
                                std::fflush(stderr);
                                MPI_Abort(MPI_COMM_WORLD, 1);
                                std::_Exit(1);  // MPI_Abort does not return
                              });

  Trainer trainer(cfg, comm);
  if (rank == 0 && !cl.quiet) {
    // The device in parentheses, unless it is the backend's own name (emulated).
    const std::string device = trainer.backend().device_name();
    const std::string backend =
        device == cfg.compute.backend ? device : cfg.compute.backend + " (" + device + ")";
    // Hybrid sharding: how and over what the replicas sum their gradient shards.
    const ReplicaReduction& rr = trainer.replica_reduction();
    const std::string replica = rr.active() ? " | replica reduce per " +
                                                  std::string(rr.per_unit() ? "unit" : "step") +
                                                  " over " + rr.transport()
                                            : "";
    std::printf(
        "minipt %s | %s+%s | %d ranks | backend %s | transport %s | %s%s | nodes %dx%d | model "
        "%lld params, recompute %d of %d blocks | workload %s%s\n",
        MINIPT_VERSION, to_string(cfg.run.mode).c_str(), cfg.balance.scheme.c_str(), world,
        backend.c_str(), trainer.transport_name().c_str(),
        describe_peer_transports(trainer.transports()).c_str(), replica.c_str(),
        trainer.nodes().nodes, trainer.nodes().ranks_per_node,
        static_cast<long long>(cfg.model.total_params()), trainer.backend().recomputed_blocks(),
        cfg.model.layers, cfg.workload_name.c_str(),
        trainer.kernel_tuning().setting == "none"
            ? ""
            : (" | tuning " + trainer.kernel_tuning().text()).c_str());
  }
  trainer.run(!cl.quiet, [&](int step) {
    watchdog.set_step(step);
    if (progress) progress->progress(step, cfg.run.steps);
  });
  watchdog.set_step(cfg.run.steps);
  if (progress) progress->progress(cfg.run.steps, cfg.run.steps);
  RunFile rf = trainer.collect();
  // In-run verification (collective): finite losses and parameters, the same loss on every
  // rank, identical parameter shards across replicas. A failure reports no figure of merit.
  const std::string failed = trainer.verify();
  if (!failed.empty()) {
    if (rank == 0) {
      std::printf("VERIFICATION FAILED: %s\n", failed.c_str());
      std::fflush(stdout);
      std::fprintf(stderr, "minipt: error: verification failed: %s\n", failed.c_str());
    }
    return 1;
  }

  const nlohmann::json prov = provenance(comm, trainer.backend().device_name(), cl.argv);
  // Past the last collective: rank 0 writes alone (run.timeout_s still covers it).
  progress.reset();
  if (rank != 0) return 0;

  rf.string_attrs = {{"minipt_version", prov.at("minipt_version").get<std::string>()},
                     {"git_revision", prov.at("git_revision").get<std::string>()},
                     {"config_toml", cfg.resolved_toml},
                     {"mode", to_string(cfg.run.mode)},
                     {"balance", cfg.balance.scheme},
                     {"backend", cfg.compute.backend},
                     {"transport", trainer.transport_name()},
                     {"onesided_same_node", trainer.transports().same_node.onesided},
                     {"onesided_other_node", trainer.transports().other_node.onesided},
                     {"collectives_same_node", trainer.transports().same_node.collectives},
                     {"collectives_other_node", trainer.transports().other_node.collectives},
                     {"replica_reduce", replica_reduce_attr(trainer.replica_reduction())},
                     {"replica_transport", trainer.replica_reduction().transport()},
                     {"workload", cfg.workload_name},
                     {"name", cfg.run.name},
                     {"hosts", joined(prov.at("hosts"))},
                     {"devices", joined(prov.at("devices"))},
                     {"created_utc", prov.at("created_utc").get<std::string>()},
                     {"kernel_tuning", trainer.kernel_tuning().text()},
                     {"peak_tflops_source", trainer.mfu_peak_source()},
                     {"run_id", new_run_id()}};
  rf.int_attrs = {{"schema_version", kSchemaVersion},
                  {"world_size", world},
                  {"clock_error_bound_ns", trainer.clock_error_bound_ns()},
                  {"warmup_steps", cfg.run.warmup_steps},
                  {"model_params", cfg.model.total_params()}};
  rf.float_attrs = {{"peak_tflops", trainer.mfu_peak_tflops()}};
  summarize_waits(rf, world, cfg.run.warmup_steps, cfg.run.mode == Mode::fsdp,
                  shard_group_size(cfg, world));
  write_run_file(cfg.run.out, rf);
  if (cfg.run.json) {
    // What the fsdp and odc runs of one problem must agree on (run/suite checks it).
    nlohmann::json j = summary_json(rf, cfg.run.out, prov);
    nlohmann::json losses = nlohmann::json::array();
    for (double l : trainer.losses()) losses.push_back(finite_or_null(l));
    j["verification"] = {
        {"passed", true},
        {"final_loss", trainer.losses().empty() ? nlohmann::json(nullptr)
                                                : finite_or_null(trainer.losses().back())},
        {"losses", losses},
        {"parameter_norm", finite_or_null(trainer.parameter_norm())}};
    write_file_atomically(json_path(cfg.run.out), json_text(j, 2) + "\n");
  }
  print_report(cfg, rf, world, !cl.quiet);
  std::printf("VERIFICATION PASSED\n");
  std::fflush(stdout);
  return 0;
}

int plan_command(const CommandLine& cl) {
  const Config cfg = load_command_config(cl);
  int world = cl.ranks;
  if (world == 0) MPI_Comm_size(MPI_COMM_WORLD, &world);
  check_workload_budget(cfg.run.steps, cfg.workload.minibatch_size, world);
  check_step_lengths(cfg.workload, cfg.run.seed, cfg.run.steps, cfg.balance.token_budget);
  const StepLengths draw(cfg.workload, cfg.run.seed);  // one step's lengths at a time
  const int units = cfg.model.num_units();
  const UnitTimeFn t = plan_unit_time(cfg);
  auto microbatch_time = [&](const Microbatch& mb, const StepPlan& plan) {
    double sq = 0;
    for (int i : mb.sequences)
      sq += std::pow(static_cast<double>(plan.lengths[static_cast<size_t>(i)]), 2);
    double s = 0;
    for (int u = 0; u < units; ++u)
      for (int p = 0; p < 3; ++p) s += t(u, p, mb.tokens, sq);
    return s;
  };
  // --json: the bound alone, as one JSON object (for scripts); else the plan as text.
  const bool text = !cl.json;
  nlohmann::json steps = nlohmann::json::array();
  // What differs from the earlier planner is named (refined partitions, a tail other than
  // clamp); with balance.refine = "off" and workload.tail = "clamp" the line is as before.
  std::string extras;
  if (cfg.balance_refine != "off")
    extras += cfg.balance_refine == "on" ? ", swap-refined plans" : ", swap-refined odc plans";
  if (cfg.workload.tail != LengthTail::clamp) extras += ", tail " + to_string(cfg.workload.tail);
  if (text)
    std::printf(
        "plan: %s, %d ranks, %d steps, %d sequences per step, balance %s (cost %s%s), token "
        "budget %lld\n",
        cfg.workload_name.c_str(), world, cfg.run.steps, cfg.workload.minibatch_size,
        cfg.balance.scheme.c_str(), to_string(cfg.cost_kind).c_str(), extras.c_str(),
        static_cast<long long>(cfg.balance.token_budget));
  PlanBound bound;
  for (int s = 0; s < cfg.run.steps; ++s) {
    const std::vector<int64_t> ls = draw(s);
    const bool equal = cfg.run.mode == Mode::fsdp;
    // The bound's two plans, and this run's own: one of them unless the scheme is neither.
    const BoundPlans both = bound_plans(cfg, world, ls, s);
    const PlanBound one = step_bound(cfg, world, both, t);
    if (bound_counts_step(cfg, s)) {  // over the steps the summary measures, like `run`
      bound.fsdp_s += one.fsdp_s;
      bound.odc_s += one.odc_s;
    }
    std::optional<StepPlan> own;
    const StepPlan& mine =
        cfg.balance.scheme == "micro" && equal ? both.micro
        : cfg.balance.scheme == "mini" && !equal
            ? both.mini
            : own.emplace(plan_step(ls, world, balance_options(cfg, cfg.balance.scheme, equal), s));
    // Each rank's modelled time, per microbatch and in all, on several threads for large
    // steps (the same sums).
    std::vector<double> rank_ms(static_cast<size_t>(world), 0.0);
    std::vector<std::vector<double>> mb_ms(static_cast<size_t>(world));
    for_each_index(rank_ms.size(), ls.size() >= 4096, [&](size_t r) {
      for (const auto& mb : mine.ranks[r].microbatches) {
        mb_ms[r].push_back(microbatch_time(mb, mine) * 1e3);
        rank_ms[r] += mb_ms[r].back();
      }
    });
    // --json: this run's own plan (run.mode + balance.scheme) as each rank's modelled
    // microbatch times, empty microbatches included (what a bubble estimate needs).
    steps.push_back({{"step", s},
                     {"measured", bound_counts_step(cfg, s)},
                     {"fsdp_ms", one.fsdp_s * 1e3},
                     {"odc_ms", one.odc_s * 1e3},
                     {"ratio", one.fsdp_s / one.odc_s},
                     {"microbatch_ms", mb_ms}});
    if (!text) continue;
    std::printf("step %d (%s+%s):\n", s, to_string(cfg.run.mode).c_str(),
                cfg.balance.scheme.c_str());
    for (int r = 0; r < world; ++r) {
      const RankPlan& rp = mine.ranks[static_cast<size_t>(r)];
      const double ms = rank_ms[static_cast<size_t>(r)];
      std::string per;
      for (const auto& mb : rp.microbatches) {
        char b[48];
        std::snprintf(b, sizeof b, "%s%lld", per.empty() ? "" : " ",
                      static_cast<long long>(mb.tokens));
        per += b;
      }
      std::printf(
          "  rank %d: %zu microbatches, %lld tokens, modelled %.2f ms | tokens per microbatch: "
          "%s\n",
          r, rp.microbatches.size(), static_cast<long long>(rp.tokens()), ms, per.c_str());
    }
    std::printf(
        "  modelled step, communication free: fsdp+micro %.2f ms, odc+mini %.2f ms, ratio %.3f\n",
        one.fsdp_s * 1e3, one.odc_s * 1e3, one.fsdp_s / one.odc_s);
  }
  const int measured =
      cfg.run.warmup_steps < cfg.run.steps ? cfg.run.steps - cfg.run.warmup_steps : cfg.run.steps;
  if (text) {
    std::printf("BOUND ranks=%d steps=%d fsdp_ms=%.3f odc_ms=%.3f ratio=%.4f\n", world, measured,
                bound.fsdp_s * 1e3, bound.odc_s * 1e3, bound.fsdp_s / bound.odc_s);
    return 0;
  }
  const nlohmann::json j = {{"ranks", world},
                            {"steps", measured},
                            {"fsdp_ms", bound.fsdp_s * 1e3},
                            {"odc_ms", bound.odc_s * 1e3},
                            {"ratio", bound.fsdp_s / bound.odc_s},
                            {"per_step", steps}};
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}

}  // namespace minipt
