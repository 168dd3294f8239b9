// Errors in user input. Every one names the offending key (or file) and, where there
// is a closed set, the allowed values. The executable maps them to exit code 2.
#pragma once

#include <stdexcept>
#include <string>

namespace minipt {

class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& key, const std::string& message)
      : std::runtime_error(key.empty() ? message : key + ": " + message), key_(key) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

}  // namespace minipt
