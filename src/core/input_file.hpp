// Reading one input file whole (a configuration file, a file it includes, a histogram):
// at most kMaxInputFileBytes, so a huge file or a device such as /dev/zero is an error
// rather than an endless read, and a path that is missing, unreadable or a directory is a
// ConfigError naming it and the OS's reason.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/error.hpp"

namespace minipt {

inline constexpr size_t kMaxInputFileBytes = size_t{16} << 20;

// The file's bytes. Errors: ConfigError(key, "<path>: cannot read <what> (<reason>)") and
// ConfigError(key, "<path>: <what> is larger than 16 MiB (not read further)").
inline std::string read_input_file(const std::string& path, const std::string& key,
                                   const std::string& what) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr)
    throw ConfigError(key, path + ": cannot read " + what + " (" + std::strerror(errno) + ")");
  std::string text;
  char buffer[1 << 16];
  size_t got = 0;
  bool too_big = false;
  while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0) {
    if (text.size() + got > kMaxInputFileBytes) {
      too_big = true;
      break;
    }
    text.append(buffer, got);
  }
  const bool failed = std::ferror(file) != 0;
  const int read_errno = errno;  // e.g. EISDIR: fopen of a directory succeeds, fread fails
  std::fclose(file);
  if (too_big)
    throw ConfigError(key, path + ": " + what + " is larger than " +
                               std::to_string(kMaxInputFileBytes >> 20) +
                               " MiB (not read further)");
  if (failed)
    throw ConfigError(key, path + ": cannot read " + what + " (" + std::strerror(read_errno) + ")");
  return text;
}

}  // namespace minipt
