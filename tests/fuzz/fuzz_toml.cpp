// libFuzzer target: the configuration parser (src/config/toml.cpp over toml++) on
// arbitrary bytes. Input it refuses must be a ConfigError (exit 2 in minipt); anything
// else (a crash, a sanitizer report, another exception, a hang) is a bug. What it
// accepts must format and parse back to the same table, and parse_value (the `--set`
// path) must refuse or accept the same way.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/toml.hpp"
#include "core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const minipt::toml::Table t = minipt::toml::parse(text, "fuzz");
    std::string again;
    try {
      again = minipt::toml::format_table(t);
    } catch (const minipt::ConfigError&) {
      return 0;  // a table TOML cannot express as flat keys: refused, not a bug
    }
    const minipt::toml::Table u = minipt::toml::parse(again, "fuzz-again");
    if (u.size() != t.size()) __builtin_trap();
    for (const auto& [k, v] : t) {
      const auto it = u.find(k);
      if (it == u.end() || !it->second.same_value(v)) __builtin_trap();
    }
  } catch (const minipt::ConfigError&) {
  }
  try {
    (void)minipt::toml::parse_value(text, "fuzz.key");
  } catch (const minipt::ConfigError&) {
  }
  return 0;
}
