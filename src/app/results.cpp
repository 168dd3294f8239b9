// One field table for a run's root attributes, its JSON summary and its console report
// (results.hpp).
#include "app/results.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <variant>

#include "app/commands.hpp"
#include "config/config.hpp"
#include "core/warmup.hpp"
#include "trace/atomic_file.hpp"
#include "trace/provenance.hpp"
#include "trace/waits.hpp"

namespace minipt {

namespace {

using Value = std::variant<std::string, int64_t, double, std::vector<double>>;

// Where a row goes (results.hpp): bits.
enum Where : unsigned { kRoot = 1, kSummary = 2, kPerformance = 4 };
// Which command has the figure.
enum class For { both, run, simulate };

// A row's inputs: the command's facts (root rows; null when only the file is at hand) and
// the run file (summary and PERFORMANCE-only rows).
struct Inputs {
  const RunFacts* facts;
  const RunFile& rf;
};

using In = const Inputs&;

struct Field {
  const char* name;    // attribute, JSON key or PERFORMANCE key
  unsigned where;      // Where bits
  For command;         // which command has it
  const char* format;  // printf format of a number on the console ("%.1f"); unknown: n/a
  Value (*value)(const Inputs&);
};

const Config& cfg(const Inputs& in) { return in.facts->cfg; }
const RunFacts& f(const Inputs& in) { return *in.facts; }
const RunSummary& s(const Inputs& in) { return in.rf.summary; }
std::string prov(const Inputs& in, const char* key) {
  return f(in).provenance.at(key).get<std::string>();
}
std::string joined(const std::vector<std::string>& parts) {  // hosts, devices: ';'
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? ";" : "") + parts[i];
  return out;
}

// clang-format off
const Field kFields[] = {
    // name                            where                    command        console  value
    // Root attributes (and the top-level keys of NAME.json).
    {"minipt_version",                 kRoot,                   For::both,     nullptr, [](In in) -> Value { return prov(in, "minipt_version"); }},
    {"git_revision",                   kRoot,                   For::both,     nullptr, [](In in) -> Value { return prov(in, "git_revision"); }},
    {"config_toml",                    kRoot,                   For::both,     nullptr, [](In in) -> Value { return cfg(in).resolved_toml; }},
    {"mode",                           kRoot | kPerformance,    For::both,     nullptr, [](In in) -> Value { return to_string(cfg(in).run.mode); }},
    {"balance",                        kRoot | kPerformance,    For::both,     nullptr, [](In in) -> Value { return cfg(in).balance.scheme; }},
    {"backend",                        kRoot,                   For::both,     nullptr, [](In in) -> Value { return f(in).backend; }},
    {"transport",                      kRoot,                   For::both,     nullptr, [](In in) -> Value { return f(in).transport; }},
    {"onesided_same_node",             kRoot,                   For::run,      nullptr, [](In in) -> Value { return f(in).onesided_same_node; }},
    {"onesided_other_node",            kRoot,                   For::run,      nullptr, [](In in) -> Value { return f(in).onesided_other_node; }},
    {"collectives_same_node",          kRoot,                   For::run,      nullptr, [](In in) -> Value { return f(in).collectives_same_node; }},
    {"collectives_other_node",         kRoot,                   For::run,      nullptr, [](In in) -> Value { return f(in).collectives_other_node; }},
    {"replica_reduce",                 kRoot,                   For::run,      nullptr, [](In in) -> Value { return f(in).replica_reduce; }},
    {"replica_transport",              kRoot,                   For::run,      nullptr, [](In in) -> Value { return f(in).replica_transport; }},
    {"workload",                       kRoot,                   For::both,     nullptr, [](In in) -> Value { return cfg(in).workload_name; }},
    {"name",                           kRoot,                   For::both,     nullptr, [](In in) -> Value { return cfg(in).run.name; }},
    {"hosts",                          kRoot,                   For::both,     nullptr, [](In in) -> Value { return joined(f(in).hosts); }},
    {"devices",                        kRoot,                   For::both,     nullptr, [](In in) -> Value { return joined(f(in).devices); }},
    {"sim_cost_model",                 kRoot,                   For::simulate, nullptr, [](In in) -> Value { return f(in).sim_cost_model; }},
    {"created_utc",                    kRoot,                   For::both,     nullptr, [](In in) -> Value { return prov(in, "created_utc"); }},
    {"kernel_tuning",                  kRoot,                   For::run,      nullptr, [](In in) -> Value { return f(in).kernel_tuning; }},
    {"peak_tflops_source",             kRoot,                   For::run,      nullptr, [](In in) -> Value { return f(in).peak_tflops_source; }},
    {"run_id",                         kRoot,                   For::both,     nullptr, [](In) -> Value { return new_run_id(); }},
    {"schema_version",                 kRoot,                   For::both,     nullptr, [](In) -> Value { return int64_t{kSchemaVersion}; }},
    {"world_size",                     kRoot,                   For::both,     nullptr, [](In in) -> Value { return int64_t{f(in).world}; }},
    {"clock_error_bound_ns",           kRoot,                   For::both,     nullptr, [](In in) -> Value { return f(in).clock_error_bound_ns; }},
    {"warmup_steps",                   kRoot,                   For::both,     nullptr, [](In in) -> Value { return int64_t{cfg(in).run.warmup_steps}; }},
    {"model_params",                   kRoot,                   For::both,     nullptr, [](In in) -> Value { return int64_t{cfg(in).model.total_params()}; }},
    {"sim_nodes",                      kRoot,                   For::simulate, nullptr, [](In in) -> Value { return int64_t{f(in).sim_nodes}; }},
    {"sim_traced_ranks",               kRoot,                   For::simulate, nullptr, [](In in) -> Value { return int64_t{f(in).sim_traced_ranks}; }},
    {"peak_tflops",                    kRoot,                   For::both,     nullptr, [](In in) -> Value { return f(in).peak_tflops; }},
    {"sim_wall_s",                     kRoot,                   For::simulate, nullptr, [](In in) -> Value { return f(in).sim_wall_s; }},
    // The figures of the measured steps (RunSummary, trace/run_file.hpp).
    {"ranks",                          kPerformance,            For::both,     nullptr, [](In in) -> Value { return in.rf.int_attrs.at("world_size"); }},
    {"tokens_per_s",                   kSummary | kPerformance, For::both,     "%.1f",  [](In in) -> Value { return s(in).tokens_per_s; }},
    {"tokens_per_s_per_rank",          kSummary | kPerformance, For::both,     "%.1f",  [](In in) -> Value { return s(in).tokens_per_s_per_rank; }},
    {"utilization",                    kSummary | kPerformance, For::both,     "%.4f",  [](In in) -> Value { return s(in).utilization; }},
    {"idle_fraction",                  kSummary | kPerformance, For::both,     "%.4f",  [](In in) -> Value { return s(in).idle_fraction; }},
    {"step_ms",                        kSummary | kPerformance, For::both,     "%.3f",  [](In in) -> Value { return s(in).step_ms; }},
    {"mfu",                            kSummary | kPerformance, For::both,     "%.4f",  [](In in) -> Value { return s(in).mfu; }},
    {"peak_mem_gib",                   kPerformance,            For::both,     "%.2f",  [](In in) -> Value { return static_cast<double>(s(in).peak_memory_bytes) / (1 << 30); }},
    {"exposed_communication_fraction", kSummary,                For::both,     nullptr, [](In in) -> Value { return s(in).exposed_communication_fraction; }},
    {"waiting_fraction",               kSummary,                For::both,     nullptr, [](In in) -> Value { return s(in).waiting_fraction; }},
    {"traced_ranks",                   kSummary,                For::both,     nullptr, [](In in) -> Value { return int64_t{s(in).traced_ranks}; }},
    {"steps_measured",                 kSummary,                For::both,     nullptr, [](In in) -> Value { return int64_t{s(in).steps_measured}; }},
    {"tokens",                         kSummary,                For::both,     nullptr, [](In in) -> Value { return s(in).tokens; }},
    {"peak_memory_bytes",              kSummary,                For::both,     nullptr, [](In in) -> Value { return s(in).peak_memory_bytes; }},
    {"utilization_per_rank",           kSummary,                For::both,     nullptr, [](In in) -> Value { return s(in).utilization_per_rank; }},
    {"step_seconds",                   kSummary,                For::both,     nullptr, [](In in) -> Value { return s(in).step_seconds; }},
};
// clang-format on

bool applies(const Field& field, bool simulated) {
  return field.command == For::both || (field.command == For::simulate) == simulated;
}

nlohmann::json to_json(const Value& v) {
  if (const auto* d = std::get_if<double>(&v)) return finite_or_null(*d);
  if (const auto* a = std::get_if<std::vector<double>>(&v)) {
    nlohmann::json out = nlohmann::json::array();
    for (double x : *a) out.push_back(finite_or_null(x));
    return out;
  }
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  return std::get<std::string>(v);
}

// A value as the console prints it: a number the run could not measure (utilization
// without run.trace's events) is n/a.
std::string console_text(const Value& v, const char* format) {
  if (const auto* d = std::get_if<double>(&v)) {
    if (!std::isfinite(*d)) return "n/a";
    char text[64];
    std::snprintf(text, sizeof text, format, *d);
    return text;
  }
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  return std::get<std::string>(v);
}

// The root attributes of the table's rows for this command.
void set_root_attributes(const RunFacts& facts, RunFile& rf) {
  rf.string_attrs.clear();
  rf.int_attrs.clear();
  rf.float_attrs.clear();
  const Inputs in{&facts, rf};
  for (const Field& field : kFields) {
    if (!(field.where & kRoot) || !applies(field, facts.simulated)) continue;
    const Value v = field.value(in);
    if (const auto* str = std::get_if<std::string>(&v)) rf.string_attrs[field.name] = *str;
    if (const auto* i = std::get_if<int64_t>(&v)) rf.int_attrs[field.name] = *i;
    if (const auto* d = std::get_if<double>(&v)) rf.float_attrs[field.name] = *d;
  }
}

// The console report of a finished or simulated run.
void print_report(const RunFacts& facts, const RunFile& rf, bool backend_shown) {
  const Config& cfg = facts.cfg;
  const int world = facts.world;
  const RunSummary& s = rf.summary;
  std::vector<int64_t> tokens(static_cast<size_t>(world)), mbs(static_cast<size_t>(world));
  const int first = first_measured_step(cfg.run.warmup_steps, cfg.run.steps);
  for (const auto& r : rf.steps)
    if (r.step >= first) {
      tokens[static_cast<size_t>(r.rank)] += r.tokens;
      mbs[static_cast<size_t>(r.rank)] += r.microbatches;
    }
  const std::string backend = backend_shown ? "" : " | backend " + rf.string_attrs.at("backend");
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
  const double peak = rf.float_attrs.at("peak_tflops");
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
  std::printf("%s\n", performance_line(rf).c_str());
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
  if (facts.verification) std::printf("VERIFICATION PASSED\n");
  std::fflush(stdout);
}

}  // namespace

nlohmann::json summary_json(const RunFile& rf, const std::string& h5_path,
                            const nlohmann::json& provenance) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : rf.string_attrs) j[k] = v;
  for (const auto& [k, v] : rf.int_attrs) j[k] = v;
  for (const auto& [k, v] : rf.float_attrs) j[k] = finite_or_null(v);
  nlohmann::json summary = nlohmann::json::object();
  const Inputs in{nullptr, rf};
  for (const Field& field : kFields)
    if (field.where & kSummary) summary[field.name] = to_json(field.value(in));
  j["summary"] = std::move(summary);
  j["h5"] = h5_path;
  j["provenance"] = provenance;
  return j;
}

std::string summary_json_text(const RunFile& rf, const std::string& h5_path,
                              const nlohmann::json& provenance) {
  return json_text(summary_json(rf, h5_path, provenance), 2) + "\n";
}

std::string performance_line(const RunFile& rf) {
  std::string line = "PERFORMANCE";
  const Inputs in{nullptr, rf};
  for (const Field& field : kFields) {
    if (!(field.where & kPerformance)) continue;
    // A root attribute's value is the one the file holds.
    const Value v = !(field.where & kRoot)              ? field.value(in)
                    : rf.string_attrs.count(field.name) ? Value(rf.string_attrs.at(field.name))
                    : rf.int_attrs.count(field.name)    ? Value(rf.int_attrs.at(field.name))
                                                        : Value(rf.float_attrs.at(field.name));
    line += std::string(" ") + field.name + "=" + console_text(v, field.format);
  }
  return line;
}

void write_results(const RunFacts& facts, RunFile& rf, bool backend_shown) {
  const Config& cfg = facts.cfg;
  set_root_attributes(facts, rf);
  summarize_waits(rf, facts.world, cfg.run.warmup_steps, cfg.run.mode == Mode::fsdp,
                  shard_group_size(cfg, facts.world));
  write_run_file(cfg.run.out, rf);
  if (cfg.run.json) {
    nlohmann::json j = summary_json(rf, cfg.run.out, facts.provenance);
    if (facts.verification) {
      // What the fsdp and odc runs of one problem must agree on (run/suite checks it).
      const std::vector<double>& losses = facts.verification->losses;
      nlohmann::json finite = nlohmann::json::array();
      for (double l : losses) finite.push_back(finite_or_null(l));
      j["verification"] = {
          {"passed", true},
          {"final_loss", losses.empty() ? nlohmann::json(nullptr) : finite_or_null(losses.back())},
          {"losses", finite},
          {"parameter_norm", finite_or_null(facts.verification->parameter_norm)}};
    } else {
      j["verification"] = "not applicable (simulated)";
    }
    write_file_atomically(json_path(cfg.run.out), json_text(j, 2) + "\n");
  }
  print_report(facts, rf, backend_shown);
}

}  // namespace minipt
