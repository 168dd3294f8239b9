// The run summary NAME.json written beside the HDF5 timeline: every file attribute of the
// run (string, integer and float attributes of RunFile), "summary" (the figures of
// /summary), "h5" (the timeline's path) and "provenance" (trace/provenance.hpp).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "trace/run_file.hpp"

namespace minipt {

// NaN and ±inf become null; strings go in as bytes (json_text replaces invalid UTF-8).
nlohmann::json summary_json(const RunFile& rf, const std::string& h5_path,
                            const nlohmann::json& provenance);

// The file's text: summary_json as json_text with indent 2, and a final newline.
std::string summary_json_text(const RunFile& rf, const std::string& h5_path,
                              const nlohmann::json& provenance);

}  // namespace minipt
