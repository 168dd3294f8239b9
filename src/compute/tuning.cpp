#include "compute/tuning.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace minipt {

namespace {
constexpr std::string_view kFormat = "minipt-tuning";

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}
}  // namespace

std::string KernelChoices::to_json() const {
  // Written by hand for a stable layout: one entry a line, keys sorted (std::map).
  nlohmann::json head = {{"format", kFormat},
                         {"version", kFormatVersion},
                         {"identity", identity},
                         {"entries", entries.size()}};
  std::string out = "{\n  \"header\": " + head.dump() + ",\n  \"choices\": {";
  bool first = true;
  for (const auto& [k, v] : entries) {
    out += first ? "\n    " : ",\n    ";
    out += nlohmann::json(k).dump() + ": " + nlohmann::json(v).dump();
    first = false;
  }
  out += entries.empty() ? "}\n}\n" : "\n  }\n}\n";
  return out;
}

std::string KernelChoices::hash() const { return hex16(fnv1a(to_json())); }

KernelChoices KernelChoices::from_json(std::string_view text, const std::string& source,
                                       const std::string& key) {
  const auto bad = [&](const std::string& why) {
    return ConfigError(key, source + ": not a minipt tuning file (" + why +
                                "); write one with compute.tuning = \"auto\" (the cache "
                                "file it names) or use \"off\"");
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    throw bad("not complete JSON: truncated or damaged");
  }
  if (!j.is_object() || !j.contains("header") || !j.contains("choices"))
    throw bad("no header and choices");
  const nlohmann::json& h = j["header"];
  if (!h.is_object() || h.value("format", std::string()) != kFormat)
    throw bad("header.format is not \"minipt-tuning\"");
  if (!h.contains("version") || !h["version"].is_number_integer() ||
      h["version"].get<int64_t>() != kFormatVersion)
    throw bad("header.version is not " + std::to_string(kFormatVersion));
  if (!h.contains("identity") || !h["identity"].is_string()) throw bad("no header.identity");
  const nlohmann::json& c = j["choices"];
  if (!c.is_object()) throw bad("choices is not an object");
  KernelChoices out;
  out.identity = h["identity"].get<std::string>();
  for (const auto& [k, v] : c.items()) {
    if (!v.is_string()) throw bad("choice '" + k + "' is not a string");
    out.entries.emplace(k, v.get<std::string>());
  }
  if (!h.contains("entries") || !h["entries"].is_number_unsigned() ||
      h["entries"].get<uint64_t>() != out.entries.size())
    throw bad("header.entries does not match the choices: truncated");
  return out;
}

TuningSetting TuningSetting::parse(const std::string& value) {
  TuningSetting s;
  if (value == "auto") return s;
  if (value == "off") {
    s.kind = Kind::off;
    return s;
  }
  if (value.empty())
    throw ConfigError("compute.tuning",
                      "empty; allowed: \"auto\", \"off\" or a tuning file's path");
  s.kind = Kind::file;
  s.path = value;
  return s;
}

std::string TuningSetting::text() const {
  switch (kind) {
    case Kind::automatic:
      return "auto";
    case Kind::off:
      return "off";
    case Kind::file:
      break;
  }
  return path;
}

std::string tuning_cache_path(const std::string& identity) {
  std::filesystem::path dir;
  if (const char* d = std::getenv("MINIPT_TUNING_CACHE"); d != nullptr && d[0] != '\0')
    dir = d;
  else if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && x[0] != '\0')
    dir = std::filesystem::path(x) / "minipt";
  else if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0')
    dir = std::filesystem::path(home) / ".cache" / "minipt";
  else
    dir = std::filesystem::temp_directory_path() / "minipt";
  return (dir / ("tuning-" + hex16(fnv1a(identity)) + ".json")).string();
}

}  // namespace minipt
