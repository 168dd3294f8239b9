#include "trace/summary_json.hpp"

#include "trace/provenance.hpp"

namespace minipt {

namespace {

nlohmann::json finite_array(const std::vector<double>& values) {
  nlohmann::json a = nlohmann::json::array();
  for (double v : values) a.push_back(finite_or_null(v));
  return a;
}

}  // namespace

nlohmann::json summary_json(const RunFile& rf, const std::string& h5_path,
                            const nlohmann::json& provenance) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : rf.string_attrs) j[k] = v;
  for (const auto& [k, v] : rf.int_attrs) j[k] = v;
  for (const auto& [k, v] : rf.float_attrs) j[k] = finite_or_null(v);
  const RunSummary& s = rf.summary;
  j["summary"] = {
      {"tokens_per_s", finite_or_null(s.tokens_per_s)},
      {"tokens_per_s_per_rank", finite_or_null(s.tokens_per_s_per_rank)},
      {"step_ms", finite_or_null(s.step_ms)},
      {"utilization", finite_or_null(s.utilization)},
      {"idle_fraction", finite_or_null(s.idle_fraction)},
      {"exposed_communication_fraction", finite_or_null(s.exposed_communication_fraction)},
      {"waiting_fraction", finite_or_null(s.waiting_fraction)},
      {"traced_ranks", s.traced_ranks},
      {"mfu", finite_or_null(s.mfu)},
      {"steps_measured", s.steps_measured},
      {"tokens", s.tokens},
      {"peak_memory_bytes", s.peak_memory_bytes},
      {"utilization_per_rank", finite_array(s.utilization_per_rank)},
      {"step_seconds", finite_array(s.step_seconds)}};
  j["h5"] = h5_path;
  j["provenance"] = provenance;
  return j;
}

std::string summary_json_text(const RunFile& rf, const std::string& h5_path,
                              const nlohmann::json& provenance) {
  return json_text(summary_json(rf, h5_path, provenance), 2) + "\n";
}

}  // namespace minipt
