// The command line: usage, --help (every key from the configuration's table) and parsing.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "app/commands.hpp"
#include "config/config.hpp"
#include "core/error.hpp"
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

}  // namespace minipt
